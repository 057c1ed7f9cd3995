/* The relay: a station that serves the devices of one or more upstream servers (sk2 servers or
 * other relays) as its own, forwarding their frames as they were encoded.
 *
 * Downstream it looks like a server: a control endpoint that answers ping and who with a `me`
 * listing every upstream device, and for each device a version-1 `depth` endpoint and an sk2
 * `streams` endpoint. Upstream it is a client that subscribes to a (device, stream, codec) only
 * while some downstream client subscribes to it, so a relay with many clients costs each server
 * one subscriber. Frames keep their payload, sequence number and timestamps; each relay appends
 * its receive time to the frame header (sk2_event_hops). An upstream that goes silent takes its
 * devices out of the relay's `me` until it answers again. docs/protocol.md "Relays".
 *
 * Like the server, a front end over an actor thread that owns every socket and client; the
 * calls below may come from any one thread at a time. */
#ifndef SK2_RELAY_H
#define SK2_RELAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_relay sk2_relay_t;

/* Most upstream servers one relay follows. */
#define SK2_RELAY_UPSTREAMS_MAX 32

/* Counters of a relay, for sk2_relay_stats. */
typedef struct {
    uint64_t frames_forwarded;  /* stream and depth messages sent on downstream */
    uint64_t bytes_forwarded;   /* their payload bytes */
    uint64_t frames_refused;    /* messages from upstream that were not well-formed frames */
    uint64_t requests;          /* control requests answered */
    size_t upstreams;           /* upstream servers followed */
    size_t upstreams_live;      /* of which answering now */
    size_t devices;             /* devices served now */
    size_t subscriptions;       /* topics subscribed upstream now, all devices together */
    uint64_t commands_passed;   /* keyed commands passed to their device's server */
    uint64_t commands_repeated; /* copies of a command already passed, answered alike */
    uint64_t commands_refused;  /* commands the relay itself answered with a refusal */
    size_t pushers_live;        /* servers pushing to the relay now (sk2_relay_accept_push) */
} sk2_relay_stats_t;

/* A new, unbound relay called `name` (NULL: "sk2 relay on <host name>"). Returns NULL if the
 * name is empty, longer than SK2_SERVER_NAME_MAX bytes or not UTF-8, or on out of memory.
 * Starts the actor thread. */
SK2_EXPORT sk2_relay_t *sk2_relay_new(const char *name);

/* Closes every socket and upstream client, joins the thread, frees; sets *self_p to NULL. Safe
 * on NULL and twice. */
SK2_EXPORT void sk2_relay_destroy(sk2_relay_t **self_p);

/* Whether the relay announces itself over DNS-SD once bound, as a server does (default: yes).
 * Before bind. Returns 0 or SK2_ESTATE. */
SK2_EXPORT int sk2_relay_set_announce(sk2_relay_t *self, bool is_announced);

/* Makes every socket the relay binds downstream (control, depth, streams, and the push port of
 * sk2_relay_accept_push) a CURVE server with the key pair in `keys` (a NAME.key_secret file or a
 * folder holding one, as for sk2_server_set_security) that lets in only the public keys in
 * `allow_dir` (NAME.key files) and the relay's own. A client with another key, or without
 * CURVE, gets nothing: no `me`, no frames. The DNS-SD announcement carries the public key
 * (TXT key=). One secure server or relay per process (libzmq's one ZAP endpoint). Before bind.
 * Returns 0, SK2_EINVAL, SK2_ENOTFOUND (keys or folder), SK2_EUNSUPPORTED (libzmq without
 * CURVE), SK2_EEXIST (another secure server or relay in this process) or SK2_ESTATE (bound, or
 * already secure). */
SK2_EXPORT int sk2_relay_set_security(sk2_relay_t *self, const char *keys, const char *allow_dir);

/* The relay's public key (Z85, 40 characters) if secure, else NULL. Valid until destroy. */
SK2_EXPORT const char *sk2_relay_public_key(const sk2_relay_t *self);

/* Binds the control endpoint on `address` ("127.0.0.1", "*", an IPv6 literal or a host name)
 * and `port` (0: one the kernel picks); device endpoints take ports the kernel picks on the
 * same address. Returns 0, SK2_EINVAL, SK2_ENOTFOUND, SK2_EBIND or SK2_ESTATE (already
 * bound). */
SK2_EXPORT int sk2_relay_bind(sk2_relay_t *self, const char *address, uint16_t port);

/* The bound control port, 0 before bind. */
SK2_EXPORT uint16_t sk2_relay_port(const sk2_relay_t *self);

/* The control endpoint clients should use ("tcp://127.0.0.1:5555"), or NULL before bind.
 * Borrowed for the relay's life. */
SK2_EXPORT const char *sk2_relay_endpoint(const sk2_relay_t *self);

/* Follows one more upstream server through `client`, which the relay takes (*client_p becomes
 * NULL, also on failure, when it is destroyed): a client made with sk2_client_new and
 * connected (sk2_client_connect, or sk2_client_connect_name to find it by name), not yet read
 * from by anyone else, with any security and budget already set (a secure client's keys are
 * used for the relay's own subscriptions to that server too). The relay turns reconnection
 * on and asks for `me` every second, so that upstream changes reach downstream soon. Returns
 * 0, SK2_EINVAL (NULL, or not connected) or SK2_ELIMIT (SK2_RELAY_UPSTREAMS_MAX reached). */
SK2_EXPORT int sk2_relay_add_upstream(sk2_relay_t *self, sk2_client_t **client_p);

/* Shorthand: a new client connected to `endpoint` ("tcp://host:port"), handed to
 * sk2_relay_add_upstream. Returns what sk2_client_connect or sk2_relay_add_upstream return. */
SK2_EXPORT int sk2_relay_connect(sk2_relay_t *self, const char *endpoint);

/* Push mode (docs/topologies.md "Push"): also accepts servers that connect out to the relay,
 * on tcp://address:port (a camera host behind NAT or a firewall runs sk2_push_new, or
 * `sk2 serve --push`). Each pushing server is followed as an upstream while its link is up; its
 * devices leave the relay's `me` when the link is lost (3 s of silence, or the server's
 * goodbye) and come back when it pushes again. With `keys` (the relay's key pair, as for
 * sk2_server_set_security) and `allow_dir` (pusher public keys, NAME.key) the push port is
 * CURVE-encrypted and lets in only the pushers whose key is allowed (one secure server or
 * relay per process); both NULL: plain, or, on a relay made secure with sk2_relay_set_security,
 * secured with the relay's own keys and allow folder. After sk2_relay_bind. Returns 0,
 * SK2_EINVAL (also one of keys and allow_dir without the other, or a bad key file),
 * SK2_ENOTFOUND (address, keys or folder), SK2_EEXIST (a secure server already in this
 * process), SK2_ESTATE (not bound, already accepting, or keys given to a secure relay) or
 * SK2_EBIND. */
SK2_EXPORT int sk2_relay_accept_push(sk2_relay_t *self, const char *address, uint16_t port,
                                     const char *keys, const char *allow_dir);

/* Fills *stats with the current counters. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_relay_stats(sk2_relay_t *self, sk2_relay_stats_t *stats);

/* ---- The pushing side ------------------------------------------------------------------- */

typedef struct sk2_push sk2_push_t;

/* Pushes the server answering on `server_endpoint` (its control endpoint, reachable from this
 * host) to the relay accepting pushes on `relay_endpoint` ("tcp://host:port" or "host:port"),
 * as `name` (the relay tells pushers apart by it; a new link under a known name replaces the
 * old). One connection, made from this side, carries the relay's requests and subscriptions
 * to the server and the server's replies and frames back; a frame travels only while the relay
 * subscribes to it. A lost link (no answer for 3 s) is reported in the log and made again
 * after 100 ms, doubling to 10 s while it keeps failing. Starts a thread. Returns NULL on a bad
 * argument (name empty, too long or not UTF-8; endpoints malformed) or out of memory. */
SK2_EXPORT sk2_push_t *sk2_push_new(const char *server_endpoint, const char *relay_endpoint,
                                    const char *name);

/* As sk2_push_new, over a CURVE-encrypted link: `keys` is this pusher's key pair (a folder from
 * `sk2 keygen` or its NAME.key_secret file), whose public key the relay must allow, and
 * `relay_key` the relay's public key (40 characters, or its NAME.key file). A relay that
 * refuses the key looks like one that does not answer (retried, logged). Returns NULL also
 * when the keys cannot be read (logged). */
SK2_EXPORT sk2_push_t *sk2_push_new_secure(const char *server_endpoint, const char *relay_endpoint,
                                           const char *name, const char *keys,
                                           const char *relay_key);

/* As sk2_push_new_secure, for a server made secure with sk2_server_set_security: the pusher
 * reaches the server's control and device endpoints as a CURVE client with `server_keys` (a key
 * pair the server lets in; its own, which a secure server always allows, is the natural one)
 * and `server_key` (the server's public key, 40 characters or its NAME.key file). The link is
 * CURVE too (keys and relay_key), so that what the server encrypts for its clients never crosses
 * the network in the clear. Returns NULL as sk2_push_new_secure does, also when server_keys or
 * server_key cannot be read (logged). */
SK2_EXPORT sk2_push_t *sk2_push_new_secure_server(const char *server_endpoint,
                                                  const char *relay_endpoint, const char *name,
                                                  const char *keys, const char *relay_key,
                                                  const char *server_keys, const char *server_key);

/* Says goodbye to the relay (which drops the server's devices at once), closes, frees; sets
 * *self_p to NULL. Safe on NULL and twice. */
SK2_EXPORT void sk2_push_destroy(sk2_push_t **self_p);

/* Whether the relay answers now. */
SK2_EXPORT bool sk2_push_is_linked(sk2_push_t *self);

#ifdef __cplusplus
}
#endif
#endif
