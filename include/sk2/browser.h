/* The browser: finds streamkinect2 servers on the local network (DNS-SD `_kinect2._tcp` over
 * mDNS, through avahi-daemon on Linux) and reports them as they come and go.
 *
 * Driven like the client, with no hidden threads: nothing happens unless the caller calls
 * sk2_browser_recv() or sk2_browser_dispatch(), and handlers run inside those calls. To wait
 * in your own poll loop, poll the descriptors from sk2_browser_fds() for reading with the
 * timeout from sk2_browser_timeout_ms(), then call sk2_browser_dispatch(b, 0). They are plain
 * level-triggered sockets (the D-Bus connection to the daemon); they may change after any
 * call, so ask again each time round. One thread at a time.
 *
 * A server is reported once, under its instance name, however many interfaces and IP
 * versions it is seen on: SK2_EVENT_SERVER_ADDED when the first of them is resolved (host,
 * port, address, TXT), SK2_EVENT_SERVER_UPDATED when what it announces changes,
 * SK2_EVENT_SERVER_REMOVED when the last of them goes (goodbye or expiry). The getters for
 * these events are below; the event type itself is shared with the client (client.h). */
#ifndef SK2_BROWSER_H
#define SK2_BROWSER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "client.h"
#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_browser sk2_browser_t;

/* Longest server (instance) name a browser reports, in bytes: one DNS label. */
#define SK2_BROWSER_NAME_MAX 63
/* Most servers a browser tracks at once; more are ignored (and logged). */
#define SK2_BROWSER_SERVERS_MAX 256

/* A new, idle browser owned by the caller; NULL on out of memory. Touches nothing. */
SK2_EXPORT sk2_browser_t *sk2_browser_new(void);

/* Stops browsing, frees every server record and queued event; sets *self_p to NULL. */
SK2_EXPORT void sk2_browser_destroy(sk2_browser_t **self_p);

/* Connects to the mDNS daemon and starts browsing. Returns 0, SK2_EUNSUPPORTED (this libsk2
 * was built without discovery), SK2_ECONNECT (no daemon to talk to: avahi-daemon is not
 * running or the D-Bus system bus is unreachable), SK2_ENOMEM or SK2_ESTATE (started
 * already). On failure sk2_browser_error() says why in words. May block for as long as the
 * daemon takes to answer (local IPC). */
SK2_EXPORT int sk2_browser_start(sk2_browser_t *self);

/* Why the browser cannot browse ("avahi-daemon is not running (Daemon not running)"), or ""
 * while all is well. Borrowed until the next call on the browser. */
SK2_EXPORT const char *sk2_browser_error(const sk2_browser_t *self);

/* Waits up to timeout_ms (0: do not wait, -1: forever) for the next event and hands it to the
 * caller in *event_p (caller destroys it). Types: SERVER_ADDED, SERVER_UPDATED,
 * SERVER_REMOVED, and ERROR when the daemon went away (every server is then reported removed
 * and the browser waits for the daemon to return). Returns 0, SK2_ETIMEDOUT, SK2_EINTR,
 * SK2_ESTATE (not started). */
SK2_EXPORT int sk2_browser_recv(sk2_browser_t *self, sk2_event_t **event_p, int timeout_ms);

/* Receives events inside sk2_browser_dispatch(). The event is borrowed for the call. */
typedef void(sk2_browser_handler_fn)(void *arg, sk2_browser_t *browser, sk2_event_t *event);

SK2_EXPORT void sk2_browser_set_handler(sk2_browser_t *self, sk2_browser_handler_fn *handler,
                                        void *arg);

/* Like recv, but runs the handler for every event that is ready (or drops them without a
 * handler), waiting up to timeout_ms for the first. Returns the number of events handled
 * (>= 0), or SK2_EINTR / SK2_ESTATE. */
SK2_EXPORT int sk2_browser_dispatch(sk2_browser_t *self, int timeout_ms);

/* Writes up to `max` descriptors to poll for reading into fds; returns how many there are. */
SK2_EXPORT size_t sk2_browser_fds(sk2_browser_t *self, int *fds, size_t max);
/* Milliseconds until the browser has timed work, 0 if events are ready, -1 if none. */
SK2_EXPORT int sk2_browser_timeout_ms(const sk2_browser_t *self);

/* True once the daemon has told everything it knows now and every server it named has been
 * resolved or has failed to: the list below is then as complete as a look at the network
 * can make it (servers can still come later). */
SK2_EXPORT bool sk2_browser_is_settled(const sk2_browser_t *self);

/* The servers known now, in the order they were found. Strings are borrowed until the next
 * recv/dispatch/find. Index past the end: NULL. */
SK2_EXPORT size_t sk2_browser_server_count(const sk2_browser_t *self);
SK2_EXPORT const char *sk2_browser_server_name(const sk2_browser_t *self, size_t index);
SK2_EXPORT const char *sk2_browser_server_endpoint(const sk2_browser_t *self, size_t index);
/* The CURVE public key a secure server announces (TXT key=, 40 characters of Z85), or NULL
 * (not secure, or not a well-formed key). Borrowed like the name. */
SK2_EXPORT const char *sk2_browser_server_key(const sk2_browser_t *self, size_t index);

/* Runs the browser (starting it if needed; handlers run as in dispatch) until it knows the
 * server called `name` (ASCII case ignored), or, for name NULL, until it is settled and
 * knows exactly one server, for at most timeout_ms. Copies that server's control endpoint
 * into endpoint. Returns 0; SK2_ETIMEDOUT (not found in time); SK2_EEXIST (name NULL and
 * several servers: list them with sk2_browser_server_name); SK2_ENOSPC (endpoint too small);
 * or sk2_browser_start()'s errors; SK2_EINTR. */
SK2_EXPORT int sk2_browser_find(sk2_browser_t *self, const char *name, int timeout_ms,
                                char *endpoint, size_t size);

/* Finds the server called `name` (NULL: the only server on the network) with a temporary
 * browser, as sk2_browser_find(), connects the client to it and follows the name for
 * reconnection (sk2_client_follow_name; a failure there is only logged). A secure client without a
 * server key (sk2_client_set_security) takes the key the server announces, pinned on first
 * use in the known_servers file (security.h): a server whose key differs from the pinned one
 * is refused with SK2_EKEYCHANGED (logged with the file and line to delete). Returns 0
 * (connecting, as sk2_client_connect), sk2_browser_find()'s errors, SK2_EKEYCHANGED,
 * SK2_EAUTH (secure, and the server announces no key), sk2_known_servers_check()'s or
 * sk2_client_connect()'s. */
SK2_EXPORT int sk2_client_connect_name(sk2_client_t *client, const char *name, int timeout_ms);

/* Makes a reconnecting client (sk2_client_set_reconnect) look `name` (NULL: the only server)
 * up again on each attempt, through a browser of its own, started at the first attempt and
 * kept as long as the client, so that a server back under the same name on another port or
 * address is found (if browsing fails, the attempt uses the last endpoint). Each attempt may
 * wait up to 250 ms for the daemon. sk2_client_connect_name does this itself. Returns 0,
 * SK2_EINVAL or SK2_ENOMEM. */
SK2_EXPORT int sk2_client_follow_name(sk2_client_t *client, const char *name);

/* ---- Getters for SERVER_ADDED, SERVER_UPDATED and SERVER_REMOVED events ----
 * Strings are borrowed from the event; NULL (or 0) for other events. */

/* The instance name the server is announced under ("Kitchen", "Kitchen #2"). */
SK2_EXPORT const char *sk2_event_server_name(const sk2_event_t *self);
/* The control endpoint to connect to, "tcp://<numeric address>:<port>" (IPv4 preferred). For
 * REMOVED, the last one known. */
SK2_EXPORT const char *sk2_event_endpoint(const sk2_event_t *self);
/* The host the service points at (SRV target, "kitchen.local"), and its port. */
SK2_EXPORT const char *sk2_event_host(const sk2_event_t *self);
SK2_EXPORT uint16_t sk2_event_port(const sk2_event_t *self);
/* Every address the server was resolved to (one per interface and IP version, distinct). */
SK2_EXPORT size_t sk2_event_address_count(const sk2_event_t *self);
SK2_EXPORT const char *sk2_event_address(const sk2_event_t *self, size_t index);
/* The value of a TXT key the server announces ("devices" -> "2"; "" for a key without a
 * value), or NULL if absent. sk2 servers announce txtvers, protocol, sk2 and devices. */
SK2_EXPORT const char *sk2_event_txt(const sk2_event_t *self, const char *key);

#ifdef __cplusplus
}
#endif
#endif
