/* The gateway: an sk2 client of one or more servers that serves what it receives to web
 * browsers and HTTP programs (the page in web/, a JSON API, the latest frame of any stream as
 * PNG or JPEG, and a WebSocket that pushes frames). `sk2 view` and `sk2 serve --http` run one.
 *
 * Threads: sk2_gateway_start() starts two. The client thread owns the sk2 clients (and the
 * browser, with use_browser): it receives and decodes every frame once and keeps only the
 * newest frame of each stream. The web thread runs the libwebsockets event loop: it answers
 * HTTP, and writes to each WebSocket only when that socket can take more, always the newest
 * frame, so a slow browser skips frames instead of queueing them or slowing anyone else.
 * Images for people (colour-mapped PNG/JPEG) are made lazily, once per frame, and only when
 * someone asks. All calls on one gateway must come from one thread (the one that created it).
 * See docs/http-api.md for what it serves. */
#ifndef SK2_GATEWAY_H
#define SK2_GATEWAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_gateway sk2_gateway_t;

/* Most servers one gateway follows (given and discovered together). */
#define SK2_GATEWAY_SERVERS_MAX 64

/* Counters since start. Plain data. */
typedef struct {
    uint32_t servers;            /* servers known now (connected or not) */
    uint32_t devices;            /* devices known now */
    uint32_t websockets;         /* WebSocket connections open now */
    uint64_t frames_received;    /* frames decoded from the servers */
    uint64_t frames_sent;        /* frames written to WebSockets */
    uint64_t frames_skipped;     /* frames a WebSocket never got because it was behind */
    uint64_t http_requests;      /* HTTP requests answered (any status) */
    uint64_t http_client_errors; /* of which were answered 4xx */
    uint64_t frames_rejected;    /* frames dropped by the frame limits (sk2/limits.h) */
    uint32_t http_connections;   /* HTTP and WebSocket connections open now */
    uint64_t http_evicted;       /* idle connections closed to make room for a new one */
    uint64_t http_refused;       /* connections answered 503 because all were busy */
    uint64_t http_timed_out;     /* closed for not sending a whole request head in time */
    uint64_t http_unauthorized;  /* requests answered 401: token missing or wrong */
} sk2_gateway_stats_t;

/* Connections the gateway holds open at once unless told otherwise, and the range it takes. */
#define SK2_GATEWAY_MAX_CONNECTIONS     256
#define SK2_GATEWAY_MAX_CONNECTIONS_MIN 16
#define SK2_GATEWAY_MAX_CONNECTIONS_MAX 4096
/* How long a connection may take to send a whole request head, from its accept or from the
 * end of its previous answer, before the gateway closes it (ms). */
#define SK2_GATEWAY_HEAD_TIMEOUT_MS 5000

/* A new gateway with no servers, not bound, no threads; NULL on out of memory. */
SK2_EXPORT sk2_gateway_t *sk2_gateway_new(void);

/* Stops both threads, closes every connection and client, frees; sets *self_p to NULL. Safe
 * on NULL. */
SK2_EXPORT void sk2_gateway_destroy(sk2_gateway_t **self_p);

/* Follows the server at this control endpoint ("tcp://host:port" or "host:port"); if it is
 * lost, the gateway reconnects every 2 s, forever unless sk2_gateway_set_give_up_after_ms. Before
 * start. Returns 0, SK2_EINVAL (empty or too long), SK2_ELIMIT (SK2_GATEWAY_SERVERS_MAX reached),
 * SK2_ESTATE (started). */
SK2_EXPORT int sk2_gateway_add_server(sk2_gateway_t *self, const char *endpoint);

/* Also follows every server announced on the local network (DNS-SD, browser.h), as they come
 * and go. Before start. Returns 0 or SK2_ESTATE. If browsing cannot start (no avahi-daemon),
 * start() still succeeds, logs why once, and serves the servers given by endpoint. */
SK2_EXPORT int sk2_gateway_use_browser(sk2_gateway_t *self, bool is_browsing);

/* How often the gateway asks each server for `who` (device changes show this fast), in ms,
 * 100..60000 (default 1000). Before start. Returns 0, SK2_EINVAL or SK2_ESTATE. */
SK2_EXPORT int sk2_gateway_set_refresh_ms(sk2_gateway_t *self, int interval_ms);

/* How old the newest frame of a stream may be (time since the gateway received it) before the
 * HTTP API answers its latest.* resources with 503 instead of serving it, in ms: 100..3600000,
 * or 0 (the default) for max(2000 ms, 5 frame periods of the stream's nominal rate). Before
 * start. Returns 0, SK2_EINVAL or SK2_ESTATE. */
SK2_EXPORT int sk2_gateway_set_max_age_ms(sk2_gateway_t *self, int max_age_ms);
/* The frame budget of every server's client (sk2_client_set_max_frame_bytes): frames over
 * it, or unlike their stream's advertised size, are dropped before allocation and counted in
 * frames_rejected. SK2_LIMIT_FRAME_BYTES_MIN..SK2_LIMIT_FRAME_BYTES_MAX (default
 * SK2_LIMIT_FRAME_BYTES). Before start. Returns 0, SK2_EINVAL or SK2_ESTATE. */
SK2_EXPORT int sk2_gateway_set_max_frame_bytes(sk2_gateway_t *self, size_t max_frame_bytes);
/* Makes every server's client secure (sk2_client_set_security): our key pair (`keys`, a
 * NAME.key_secret file or its folder) and the server's public key (40 characters of Z85 or a
 * certificate file). Both are checked now. Before start. Returns 0, SK2_EINVAL, SK2_ENOTFOUND,
 * SK2_ENOMEM or SK2_ESTATE. */
SK2_EXPORT int sk2_gateway_set_security(sk2_gateway_t *self, const char *keys,
                                        const char *server_key);

/* Requires every HTTP request and WebSocket handshake to carry this token: as
 * "Authorization: Bearer TOKEN", as ?token=TOKEN (the answer then sets a cookie, so that the
 * page's own requests and WebSocket carry it too) or in that cookie. Anything else gets 401.
 * The token is 16..128 characters of [A-Za-z0-9._~-]; NULL removes it. Before bind. Returns 0,
 * SK2_EINVAL (not such a token), SK2_ESTATE (bound already). */
SK2_EXPORT int sk2_gateway_set_token(sk2_gateway_t *self, const char *token);

/* Requires a new random token (128 bits from the kernel, 32 hex digits), as set_token does.
 * Before bind. Returns 0, SK2_ESTATE, SK2_ESYS (no randomness to be had). */
SK2_EXPORT int sk2_gateway_generate_token(sk2_gateway_t *self);

/* The token required, or NULL if none. Borrowed: valid until destroy or the next set_token or
 * generate_token. */
SK2_EXPORT const char *sk2_gateway_token(const sk2_gateway_t *self);

/* Lets bind take an address other than loopback without a token: everyone who reaches the
 * port sees every frame. Before bind. Returns 0, SK2_EINVAL or SK2_ESTATE. */
SK2_EXPORT int sk2_gateway_set_insecure(sk2_gateway_t *self, bool is_insecure);

/* How many HTTP and WebSocket connections the gateway holds open at once,
 * SK2_GATEWAY_MAX_CONNECTIONS_MIN..SK2_GATEWAY_MAX_CONNECTIONS_MAX (default
 * SK2_GATEWAY_MAX_CONNECTIONS). A new connection beyond it closes the connection that has
 * waited longest for a request head (an idle keep-alive or a peer that never finished its
 * request); when every connection is busy answering or is a WebSocket, the new one gets 503.
 * Each connection may hold a 64 KiB header buffer. Before bind. Returns 0, SK2_EINVAL or
 * SK2_ESTATE. */
SK2_EXPORT int sk2_gateway_set_max_connections(sk2_gateway_t *self, int max_connections);

/* How long a server given by endpoint may stay unreachable (lost, or never reached) before the
 * gateway stops trying it, in ms: 100..2^31-1, or 0 (the default) to retry forever. A server
 * given up shows "given up ..." as its status in /api/servers and counts in
 * sk2_gateway_links(). Before start. Returns 0, SK2_EINVAL or SK2_ESTATE. */
SK2_EXPORT int sk2_gateway_set_give_up_after_ms(sk2_gateway_t *self, int64_t give_up_after_ms);

/* The links to servers given by endpoint, now: how many are lost (were connected, are not,
 * still retried) and how many were given up. Any pointer may be NULL. Returns 0 or
 * SK2_EINVAL. Any time after new, from the thread that made the gateway. */
SK2_EXPORT int sk2_gateway_links(sk2_gateway_t *self, uint32_t *lost, uint32_t *given_up);

/* Binds the HTTP and WebSocket listener to address:port (an IPv4 or IPv6 literal; port 0 lets
 * the OS choose). An address other than loopback (127.0.0.0/8, ::1) needs a token
 * (set_token, generate_token) or set_insecure. Returns 0, SK2_EINVAL, SK2_EBIND (address
 * unusable or port taken), SK2_EINSECURE (not loopback, no token, not insecure), SK2_ESTATE
 * (bound already). */
SK2_EXPORT int sk2_gateway_bind(sk2_gateway_t *self, const char *address, uint16_t port);

/* The bound port (0 before bind), and the page's URL ("http://127.0.0.1:8080/"; NULL before
 * bind; valid until destroy). */
SK2_EXPORT uint16_t sk2_gateway_port(const sk2_gateway_t *self);
SK2_EXPORT const char *sk2_gateway_url(const sk2_gateway_t *self);

/* Starts the client and web threads. Returns 0, SK2_ESTATE (not bound, or started), SK2_ESYS,
 * SK2_ENOMEM. */
SK2_EXPORT int sk2_gateway_start(sk2_gateway_t *self);

/* Fills *stats with the counters now. Returns 0 or SK2_EINVAL. Any time after new. */
SK2_EXPORT int sk2_gateway_stats(sk2_gateway_t *self, sk2_gateway_stats_t *stats);

#ifdef __cplusplus
}
#endif
#endif
