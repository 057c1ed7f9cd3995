/* The gateway's web thread: one libwebsockets event loop serving the page, the JSON API, the
 * latest frames as images and the WebSocket that pushes frames to the page.
 *
 * libwebsockets parses HTTP and WebSocket and enforces the limits on headers and idle
 * connections; this file only routes. Nothing here waits: a frame is written to a WebSocket
 * only in LWS_CALLBACK_SERVER_WRITEABLE, which libwebsockets delivers once the socket has
 * taken everything written before. Each connection remembers the sequence it last got per
 * stream, so when it can take more it gets the newest frame there is, and whatever came in
 * between is skipped (and counted): a slow browser costs itself frames, and holds no more than
 * one message in memory. Images are made from a shot on first demand and kept with it.
 *
 * Connections are counted and kept in check here, since libwebsockets hands a new connection a
 * header buffer from a fixed pool and makes it queue when the pool is spent: a few hundred
 * peers that connect and say nothing would make everyone else wait for their timeouts. So every
 * connection that is waiting for a request head (new, or idle between keep-alive requests) is
 * on a list, oldest first. At the cap, a new connection closes the oldest of them, and a
 * timer closes those that have waited longer than the head timeout; connections that are
 * being answered or are WebSockets are left alone (when all of them are, a newcomer gets 503).
 * The pool is larger than the cap, so a connection never waits for a buffer. With a token set,
 * every request and WebSocket handshake must carry it (http_auth.h). */
#include <libwebsockets.h>
#include <linux/tcp.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/log_internal.h"
#include "gateway/assets.h"
#include "gateway/foxglove.h"
#include "gateway/gateway_impl.h"
#include "gateway/image.h"
#include "sk2/cloud.h"
#include "sk2/error.h"

_Static_assert(GW_BLOB_PRE >= LWS_PRE, "blob headroom must hold libwebsockets' header");

#define S_WS_SUBS_MAX   48    /* streams one WebSocket may follow */
#define S_WS_MAX        256   /* WebSockets at once; more are refused */
#define S_WS_RX_MAX     16384 /* longest message a browser may send */
#define S_WS_CMDS_MAX   4     /* keyed commands one WebSocket may have in flight */
#define S_WS_OUT_MAX    64    /* refusals waiting to be written to one WebSocket */
#define S_POST_MAX      4096  /* longest body of POST /api/devices/{key}/command */
#define S_VALUE_MAX     256   /* longest string value of a command (as the server's limit) */
#define S_CHUNK         65536 /* HTTP body bytes written per writeable callback */
#define S_COLOR_WS_MAX  640   /* colour frames are shrunk to this width for the page */
#define S_JPEG_QUALITY  85
#define S_HEADER_BYTES  48 /* WebSocket frame header before the device id */
#define S_ENCODING_U16  1  /* payload: uint16 little-endian pixels */
#define S_ENCODING_JPEG 2  /* payload: a JPEG */
#define S_PROTOCOL      "sk2-view"
#define S_HEADERS_MAX   8192  /* bytes of request line and headers we answer */
#define S_HEADER_BUFFER 65536 /* libwebsockets' buffer: between the two, 431 */
#define S_ALLOW         "GET, HEAD"
#define S_MM_MAX        1000000 /* largest ?min=/max= in mm */
#define S_SMALL_BODY    2048    /* bodies up to this go out with the headers */
#define S_SWEEP_US      250000  /* how often waiting connections are checked for the timeout */
/* Connections accepted in one burst, beyond the cap, before the evicted ones are gone (they
 * close on the next turn of the loop). */
#define S_BURST  64
#define S_COOKIE "sk2_token_" /* cookie name, then the port: one per gateway on a host */

typedef struct {
    char key[GW_KEY_MAX + 1]; /* the device's key */
    sk2_stream_kind_t kind;
    bool has_sent;          /* last_sequence is set */
    uint64_t last_sequence; /* of the frame last sent */
} s_sub_t;

typedef struct {
    s_sub_t subs[S_WS_SUBS_MAX];
    size_t sub_count;
    size_t next_sub;     /* round robin between streams */
    uint64_t state_sent; /* state version last sent */
    uint64_t stats_sent; /* stats version last sent */
    char *rx;            /* message being received */
    size_t rx_len;
    bool is_listed;          /* in gw_web.sockets */
    struct lws *wsi;         /* its connection */
    uint64_t serial;         /* names it in the command table (gw->commands) */
    char *out[S_WS_OUT_MAX]; /* answers to bad messages, JSON text, oldest first */
    size_t out_count;
    bool is_overrun; /* out is full: the peer sends faster than it reads */
} s_ws_t;

typedef struct {
    gw_blob_t *body;   /* response body being written */
    size_t sent;       /* bytes of it written */
    bool is_head;      /* the request is HEAD: headers only */
    bool sets_cookie;  /* the token came in the query: the answer sets the cookie */
    bool is_refusing;  /* answering an upgrade we refuse: libwebsockets completes it */
    bool has_answered; /* fallback connection: its 405 is written */
    bool has_body;     /* the request declared a body: answered, then the connection closed */
    uint64_t command;  /* POST .../command: serial of its command while it waits, else 0 */
    char *post;        /* its body, while it comes in (S_POST_MAX bytes) */
    size_t post_len;
    bool is_post_long;                /* the body is longer than S_POST_MAX */
    char post_device[GW_KEY_MAX + 1]; /* the device its path names */
} s_http_t;
/* The fallback protocol (s_raw_callback) uses s_http_t too: libwebsockets allocates a new
 * connection's per-connection data at the fallback protocol's size and may hand it to the HTTP
 * callback (LWS_CALLBACK_CLOSED_HTTP of a request it could not parse), so both must be one
 * type. */

/* One open connection, whatever it speaks; hung on its wsi's opaque user data. */
typedef struct s_conn {
    struct lws *wsi;
    int64_t waiting_since_us; /* monotonic: accepted, or its last answer went out */
    uint64_t bytes_seen;      /* TCP bytes received up to its previous request */
    bool is_waiting;          /* on the waiting list: no request head yet */
    bool is_closing;          /* evicted or timed out: goes on the next turn of the loop */
    struct s_conn *prev;      /* waiting list neighbours, older and newer */
    struct s_conn *next;
} s_conn_t;

struct gw_web {
    sk2_gateway_t *gw;
    s_ws_t *sockets[S_WS_MAX]; /* open WebSockets */
    size_t socket_count;
    uint64_t next_serial; /* of the next WebSocket or command request */
    struct {
        uint64_t serial;
        struct lws *wsi;
    } waiters[GW_COMMANDS_MAX]; /* command requests (POST) waiting for their answer */
    size_t waiter_count;
    uint64_t state_seen;          /* state version the want-counts were last made for */
    s_conn_t *oldest;             /* waiting list, oldest first */
    s_conn_t *newest;             /* and its newest */
    size_t conn_count;            /* connections open and not closing */
    lws_sorted_usec_list_t sweep; /* the head-timeout timer */
};

/* ---- Images of a shot ---------------------------------------------------------------------- */

static bool s_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put_double(uint8_t *p, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(bits >> (8 * i));
}

/* The colour frame as RGB (malloc'd copy), or NULL. */
static uint8_t *s_rgb_of(const sk2_frame_t *frame)
{
    size_t pixels = (size_t)sk2_frame_width(frame) * sk2_frame_height(frame);
    uint8_t *rgb = malloc(pixels * 3);
    if (!rgb)
        return NULL;
    const uint8_t *src = sk2_frame_cdata(frame);
    if (sk2_frame_format(frame) == SK2_PIXEL_RGB24) {
        memcpy(rgb, src, pixels * 3);
    } else {
        for (size_t i = 0; i < pixels; i++) {
            rgb[i * 3] = src[i * 4 + 2];
            rgb[i * 3 + 1] = src[i * 4 + 1];
            rgb[i * 3 + 2] = src[i * 4];
        }
    }
    return rgb;
}

/* The frame for eyes as RGB: depth colour-mapped over [min, max] (auto when min == max == 0;
 * the range used is returned), IR as grey, colour as it is. malloc'd, or NULL. */
static uint8_t *s_view_rgb(const sk2_frame_t *frame, uint16_t *min, uint16_t *max)
{
    sk2_pixel_format_t format = sk2_frame_format(frame);
    if (format != SK2_PIXEL_DEPTH_MM16 && format != SK2_PIXEL_GRAY16)
        return s_rgb_of(frame);
    size_t pixels = (size_t)sk2_frame_width(frame) * sk2_frame_height(frame);
    uint8_t *rgb = malloc(pixels * 3);
    if (!rgb)
        return NULL;
    const uint16_t *data = sk2_frame_cdata16(frame);
    if (*min == 0 && *max == 0)
        gw_image_range(data, pixels, min, max);
    if (format == SK2_PIXEL_DEPTH_MM16)
        gw_image_colormap(data, pixels, *min, *max, rgb);
    else
        gw_image_ir(data, pixels, *max, rgb);
    return rgb;
}

/* The WebSocket message for a shot: a fixed header, the device id, then the pixels (16-bit
 * streams, as they are) or a JPEG (colour, shrunk). See docs/http-api.md. */
static gw_blob_t *s_ws_message(const gw_shot_t *shot)
{
    const sk2_frame_t *frame = shot->frame;
    size_t id_len = strlen(shot->key);
    uint32_t offset = (uint32_t)((S_HEADER_BYTES + id_len + 7) / 8 * 8);
    uint32_t width = sk2_frame_width(frame), height = sk2_frame_height(frame);
    gw_blob_t *blob = NULL;
    uint8_t encoding;
    if (sk2_frame_cdata16(frame)) {
        encoding = S_ENCODING_U16;
        size_t bytes = sk2_frame_size(frame);
        if (!(blob = gw_blob_new(offset + bytes)))
            return NULL;
        uint8_t *dst = blob->data + offset;
        if (s_is_little_endian()) {
            memcpy(dst, sk2_frame_cdata(frame), bytes);
        } else {
            const uint16_t *src = sk2_frame_cdata16(frame);
            for (size_t i = 0; i < bytes / 2; i++) {
                dst[2 * i] = (uint8_t)src[i];
                dst[2 * i + 1] = (uint8_t)(src[i] >> 8);
            }
        }
        blob->len = offset + bytes;
    } else {
        encoding = S_ENCODING_JPEG;
        uint8_t *rgb = s_rgb_of(frame);
        uint32_t w = 0, h = 0;
        uint8_t *small = rgb ? gw_image_shrink(rgb, width, height, S_COLOR_WS_MAX, &w, &h) : NULL;
        free(rgb);
        if (!small || !(blob = gw_blob_new(offset + (size_t)w * h)))
            goto fail;
        blob->len = offset;
        if (gw_image_jpeg(small, w, h, S_JPEG_QUALITY, &blob) != 0)
            goto fail;
        free(small);
        width = w;
        height = h;
        goto header;
    fail:
        free(small);
        gw_blob_unref(&blob);
        return NULL;
    }
header:;
    uint8_t *p = blob->data;
    memset(p, 0, offset);
    memcpy(p, "SK2W", 4);
    p[4] = 1;
    p[5] = (uint8_t)shot->kind;
    p[6] = encoding;
    p[7] = (uint8_t)id_len;
    s_put32(p + 8, width);
    s_put32(p + 12, height);
    s_put_double(p + 16, (double)sk2_frame_sequence(frame));
    s_put_double(p + 24, (double)sk2_frame_capture_time_us(frame));
    s_put_double(p + 32, (double)shot->latency_us);
    s_put32(p + 40, (uint32_t)(shot->wire_bytes > UINT32_MAX ? UINT32_MAX : shot->wire_bytes));
    s_put32(p + 44, offset);
    memcpy(p + S_HEADER_BYTES, shot->key, id_len);
    return blob;
}

/* The image `which` of a shot, made on first use and kept with the shot. Returns a new
 * reference, or NULL on failure. Web thread only. */
static gw_blob_t *s_image(gw_shot_t *shot, gw_image_t which)
{
    if (shot->images[which])
        return gw_blob_ref(shot->images[which]);
    const sk2_frame_t *frame = shot->frame;
    uint32_t width = sk2_frame_width(frame), height = sk2_frame_height(frame);
    gw_blob_t *blob = NULL;
    int rc = -1;
    if (which == GW_IMAGE_WS) {
        blob = s_ws_message(shot);
        rc = blob ? 0 : -1;
    } else if (which == GW_IMAGE_PNG && sk2_frame_cdata16(frame)) {
        rc = gw_image_png(sk2_frame_cdata16(frame), width, height, 1, &blob);
    } else {
        uint16_t min = 0, max = 0;
        uint8_t *rgb = which == GW_IMAGE_PNG ? s_rgb_of(frame) : s_view_rgb(frame, &min, &max);
        if (rgb)
            rc = which == GW_IMAGE_JPEG ? gw_image_jpeg(rgb, width, height, S_JPEG_QUALITY, &blob)
                                        : gw_image_png(rgb, width, height, 3, &blob);
        free(rgb);
    }
    if (rc != 0) {
        gw_blob_unref(&blob);
        return NULL;
    }
    shot->images[which] = blob;
    return gw_blob_ref(blob);
}

/* ---- HTTP responses ------------------------------------------------------------------------ */

static sk2_gateway_t *s_gateway(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* ---- Connections --------------------------------------------------------------------------- */

static s_conn_t *s_conn_of(struct lws *wsi)
{
    return lws_get_opaque_user_data(wsi);
}

static void s_conn_unlink(struct gw_web *web, s_conn_t *conn)
{
    if (!conn->is_waiting)
        return;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        web->oldest = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    else
        web->newest = conn->prev;
    conn->prev = conn->next = NULL;
    conn->is_waiting = false;
}

/* Puts the connection at the new end of the waiting list: it owes a request head from now. */
static void s_conn_wait(struct gw_web *web, s_conn_t *conn)
{
    s_conn_unlink(web, conn);
    if (conn->is_closing)
        return;
    conn->waiting_since_us = sk2_clock_mono_us();
    conn->prev = web->newest;
    conn->next = NULL;
    if (web->newest)
        web->newest->next = conn;
    else
        web->oldest = conn;
    web->newest = conn;
    conn->is_waiting = true;
}

/* The connection has sent a request head: off the list while it is answered (or for good, when
 * it becomes a WebSocket). */
static void s_conn_busy(struct lws *wsi)
{
    s_conn_t *conn = s_conn_of(wsi);
    if (conn)
        s_conn_unlink(s_gateway(wsi)->web, conn);
}

/* Its answer is out and it stays open for another request. */
static void s_conn_idle(struct lws *wsi)
{
    s_conn_t *conn = s_conn_of(wsi);
    if (conn)
        s_conn_wait(s_gateway(wsi)->web, conn);
}

static int s_conn_new(struct lws *wsi)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    s_conn_t *conn = calloc(1, sizeof *conn);
    if (!conn)
        return -1;
    conn->wsi = wsi;
    lws_set_opaque_user_data(wsi, conn);
    gw->web->conn_count++;
    atomic_fetch_add_explicit(&gw->counters.http_connections, 1, memory_order_relaxed);
    s_conn_wait(gw->web, conn);
    return 0;
}

/* Closes a connection from outside its own callbacks: shut down at once, so that the peer and
 * the kernel know now, and freed by libwebsockets on the next turn of the loop (closing it
 * here, from another connection's callback, would pull a socket out of the poll set that
 * libwebsockets is walking). */
static void s_conn_close(sk2_gateway_t *gw, s_conn_t *conn)
{
    struct gw_web *web = gw->web;
    s_conn_unlink(web, conn);
    if (conn->is_closing)
        return;
    conn->is_closing = true;
    web->conn_count--;
    atomic_fetch_sub_explicit(&gw->counters.http_connections, 1, memory_order_relaxed);
    shutdown(lws_get_socket_fd(conn->wsi), SHUT_RDWR);
    lws_set_timeout(conn->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

static void s_conn_gone(struct lws *wsi)
{
    s_conn_t *conn = s_conn_of(wsi);
    if (!conn)
        return;
    sk2_gateway_t *gw = s_gateway(wsi);
    /* libwebsockets keeps its own idle timer on a connection that has begun a head (set to the
     * same timeout) and may close it a moment before the sweep would: still a timeout. */
    if (conn->is_waiting && !conn->is_closing &&
        sk2_clock_mono_us() - conn->waiting_since_us >=
            SK2_GATEWAY_HEAD_TIMEOUT_MS * 1000LL - S_SWEEP_US)
        atomic_fetch_add_explicit(&gw->counters.http_timed_out, 1, memory_order_relaxed);
    s_conn_unlink(gw->web, conn);
    if (!conn->is_closing) {
        gw->web->conn_count--;
        atomic_fetch_sub_explicit(&gw->counters.http_connections, 1, memory_order_relaxed);
    }
    lws_set_opaque_user_data(wsi, NULL);
    free(conn);
}

/* A connection was accepted (fd, not yet adopted). At the cap, the connection that has waited
 * longest for a request head makes room; when none is waiting, every connection is doing real
 * work, and the newcomer is told so and closed. Returns 0 (adopt it) or 1 (closed). */
static int s_admit(sk2_gateway_t *gw, int fd)
{
    struct gw_web *web = gw->web;
    if (web->conn_count < (size_t)gw->max_connections)
        return 0;
    if (web->oldest) {
        s_conn_close(gw, web->oldest);
        atomic_fetch_add_explicit(&gw->counters.http_evicted, 1, memory_order_relaxed);
        return 0;
    }
    /* One small write into a fresh socket's empty buffer: it cannot block, and when it does
     * not go through the peer still sees the connection closed. */
    static const char busy[] =
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
        "content-length: 49\r\nretry-after: 1\r\ncache-control: no-store\r\n"
        "connection: close\r\n\r\n{\"error\":\"too many connections: try again later\"}\n";
    ssize_t n = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n;
    atomic_fetch_add_explicit(&gw->counters.http_refused, 1, memory_order_relaxed);
    return 1;
}

/* Closes the connections that have waited for a request head longer than the head timeout
 * (the list is in waiting order, so only its old end is looked at), then runs again. */
static void s_sweep(lws_sorted_usec_list_t *sul)
{
    struct gw_web *web = lws_container_of(sul, struct gw_web, sweep);
    sk2_gateway_t *gw = web->gw;
    int64_t now_us = sk2_clock_mono_us();
    while (web->oldest &&
           now_us - web->oldest->waiting_since_us >= SK2_GATEWAY_HEAD_TIMEOUT_MS * 1000LL) {
        s_conn_close(gw, web->oldest);
        atomic_fetch_add_explicit(&gw->counters.http_timed_out, 1, memory_order_relaxed);
    }
    lws_sul_schedule(gw->lws, 0, &web->sweep, s_sweep, S_SWEEP_US);
}

/* ---- Access token -------------------------------------------------------------------------- */

/* Whether the request carries the gateway's token (always, when it has none): in an
 * Authorization: Bearer header, in ?token= (then *from_query is set, and the answer sets the
 * cookie) or in the cookie. */
static bool s_is_authorized(struct lws *wsi, sk2_gateway_t *gw, bool *from_query)
{
    *from_query = false;
    if (!gw->has_token)
        return true;
    char buf[4096];
    const char *token;
    size_t len;
    int n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
    if (n > 0 && n < (int)sizeof buf &&
        lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) > 0 &&
        gw_http_bearer(buf, &token, &len) && gw_token_equal(gw->token, token, len))
        return true;
    const char *query = lws_get_urlarg_by_name(wsi, "token=", buf, (int)sizeof buf);
    if (query && gw_token_equal(gw->token, query, strlen(query))) {
        *from_query = true;
        return true;
    }
    n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE);
    char name[32];
    snprintf(name, sizeof name, S_COOKIE "%u", (unsigned)gw->port);
    return n > 0 && n < (int)sizeof buf &&
           lws_hdr_copy(wsi, buf, sizeof buf, WSI_TOKEN_HTTP_COOKIE) > 0 &&
           gw_http_cookie(buf, name, &token, &len) && gw_token_equal(gw->token, token, len);
}

typedef struct {
    const char *name; /* lower case, with the colon: "x-sk2-sequence:" */
    char value[GW_TOKEN_MAX + 96];
} s_header_t;

/* Sends the status line and headers, then the body (taken: *body_p is NULL afterwards) from
 * the writeable callback; for HEAD, the same status and headers (Content-Length included) and
 * no body. Returns what the callback should return. */
static int s_respond(struct lws *wsi, s_http_t *http, unsigned status, const char *type,
                     gw_blob_t **body_p, const s_header_t *extra, size_t extra_count)
{
    bool is_head = http && http->is_head;
    sk2_gateway_t *gw = s_gateway(wsi);
    atomic_fetch_add_explicit(&gw->counters.http_requests, 1, memory_order_relaxed);
    if (status >= 400 && status < 500)
        atomic_fetch_add_explicit(&gw->counters.http_client_errors, 1, memory_order_relaxed);
    gw_blob_t *body = *body_p;
    *body_p = NULL;
    uint8_t buf[LWS_PRE + 2048 + S_SMALL_BODY];
    uint8_t *start = buf + LWS_PRE, *p = start, *end = buf + sizeof buf - 1;
    size_t len = body ? body->len : 0;
    static const char nosniff[] = "nosniff";
    static const char no_store[] = "no-store";
    static const char csp[] = "default-src 'self'; img-src 'self' blob: data:; "
                              "connect-src 'self'; frame-ancestors 'none'";
    bool is_ok =
        lws_add_http_common_headers(wsi, status, type, len, &p, end) == 0 &&
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"x-content-type-options:", (const unsigned char *)nosniff,
            (int)strlen(nosniff), &p, end) == 0 &&
        lws_add_http_header_by_name(
            wsi, (const unsigned char *)"cache-control:", (const unsigned char *)no_store,
            (int)strlen(no_store), &p, end) == 0 &&
        lws_add_http_header_by_name(wsi, (const unsigned char *)"content-security-policy:",
                                    (const unsigned char *)csp, (int)strlen(csp), &p, end) == 0;
    for (size_t i = 0; is_ok && i < extra_count; i++)
        is_ok = lws_add_http_header_by_name(wsi, (const unsigned char *)extra[i].name,
                                            (const unsigned char *)extra[i].value,
                                            (int)strlen(extra[i].value), &p, end) == 0;
    if (is_ok && http && http->has_body) {
        static const char close[] = "close";
        is_ok = lws_add_http_header_by_name(
                    wsi, (const unsigned char *)"connection:", (const unsigned char *)close,
                    (int)strlen(close), &p, end) == 0;
    }
    if (is_ok && http && http->sets_cookie) {
        /* The page's own requests and its WebSocket carry the token from here on. HttpOnly: no
         * script reads it; SameSite=Strict: no other site's page sends it. */
        char cookie[GW_TOKEN_MAX + 96];
        int n = snprintf(cookie, sizeof cookie, S_COOKIE "%u=%s; Path=/; HttpOnly; SameSite=Strict",
                         (unsigned)gw->port, gw->token);
        is_ok = n > 0 && (size_t)n < sizeof cookie &&
                lws_add_http_header_by_name(wsi, (const unsigned char *)"set-cookie:",
                                            (const unsigned char *)cookie, n, &p, end) == 0;
    }
    if (!is_ok) {
        gw_blob_unref(&body);
        return -1;
    }
    /* A small body goes out with the headers, in one write (as lws_return_http_status does);
     * a large one from the writeable callback, a chunk at a time. */
    if (len <= S_SMALL_BODY || is_head) {
        size_t body_len = is_head ? 0 : len;
        if (lws_finalize_http_header(wsi, &p, end) != 0 || (size_t)(end - p) < body_len) {
            gw_blob_unref(&body);
            return -1;
        }
        if (body_len)
            memcpy(p, body->data, body_len);
        p += body_len;
        gw_blob_unref(&body);
        if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) < 0)
            return -1;
        s_conn_idle(wsi);
        if (http && http->is_refusing)
            return 1; /* LWS_CALLBACK_HTTP_CONFIRM_UPGRADE: "answered it myself" */
        if (http && http->has_body)
            return -1; /* see s_http_request */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    if (lws_finalize_write_http_header(wsi, start, &p, end) != 0) {
        gw_blob_unref(&body);
        return -1;
    }
    gw_blob_unref(&http->body);
    http->body = body;
    http->sent = 0;
    lws_callback_on_writable(wsi);
    return 0;
}

static gw_blob_t *s_text_blob(const char *text)
{
    size_t len = strlen(text);
    gw_blob_t *blob = gw_blob_new(len);
    if (blob) {
        memcpy(blob->data, text, len);
        blob->len = len;
    }
    return blob;
}

static int s_respond_json(struct lws *wsi, s_http_t *http, unsigned status, json_t *json,
                          const s_header_t *extra, size_t extra_count)
{
    char *text = json ? json_dumps(json, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(json);
    gw_blob_t *body = NULL;
    if (text) {
        size_t len = strlen(text);
        body = gw_blob_new(len + 1);
        if (body) {
            memcpy(body->data, text, len);
            body->data[len] = '\n';
            body->len = len + 1;
        }
        free(text);
    }
    if (!body)
        return -1;
    return s_respond(wsi, http, status, "application/json", &body, extra, extra_count);
}

static int s_respond_error(struct lws *wsi, s_http_t *http, unsigned status, const char *why)
{
    s_header_t allow = {"allow:", S_ALLOW};
    return s_respond_json(wsi, http, status, json_pack("{s:s}", "error", why), &allow,
                          status == 405 ? 1 : 0);
}

/* 401: the token is missing or wrong. Nothing else about the gateway goes out. */
static int s_respond_unauthorized(struct lws *wsi, s_http_t *http)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    atomic_fetch_add_explicit(&gw->counters.http_unauthorized, 1, memory_order_relaxed);
    http->sets_cookie = false;
    s_header_t challenge = {"www-authenticate:", "Bearer realm=\"sk2\""};
    return s_respond_json(wsi, http, 401,
                          json_pack("{s:s}", "error",
                                    "this gateway needs its token: open the URL it printed at "
                                    "start (.../?token=...) or send Authorization: Bearer TOKEN"),
                          &challenge, 1);
}

/* Copies a member of the shared state or stats (or the whole, for member NULL). */
static json_t *s_shared(sk2_gateway_t *gw, bool is_stats, const char *member)
{
    pthread_mutex_lock(&gw->lock);
    json_t *root = json_incref(is_stats ? gw->stats : gw->state);
    pthread_mutex_unlock(&gw->lock);
    json_t *value = member ? json_incref(json_object_get(root, member)) : json_incref(root);
    json_decref(root);
    return value ? value : json_array();
}

static bool s_json_is(const json_t *value, const char *text, size_t len)
{
    const char *s = json_string_value(value);
    return s && json_string_length(value) == len && memcmp(s, text, len) == 0;
}

/* The device a path segment names: its key ("s0:ID"), or its id alone while only one server
 * has a device of that id (so URLs made before keys existed keep working). Returns a new
 * reference, or NULL with *status 404 (no such device) or 409 (several servers have a device
 * of that id: only the key says which). */
static json_t *s_find_device(sk2_gateway_t *gw, const char *name, size_t len, unsigned *status)
{
    json_t *devices = s_shared(gw, false, "devices");
    json_t *by_key = NULL, *by_id = NULL;
    size_t id_matches = 0;
    size_t i;
    json_t *device;
    json_array_foreach(devices, i, device)
    {
        if (s_json_is(json_object_get(device, "key"), name, len))
            by_key = device;
        if (s_json_is(json_object_get(device, "id"), name, len) && id_matches++ == 0)
            by_id = device;
    }
    json_t *found = by_key ? by_key : id_matches == 1 ? by_id : NULL;
    json_incref(found);
    json_decref(devices);
    *status = found ? 200 : id_matches > 1 ? 409 : 404;
    return found;
}

static int s_respond_no_device(struct lws *wsi, s_http_t *http, unsigned status)
{
    return s_respond_error(wsi, http, status,
                           status == 409 ? "several servers have a device of this id: name it by "
                                           "its key (\"key\" in /api/devices, e.g. s0:ID)"
                                         : "no such device");
}

/* A whole number 0..max from the query string; -1 if absent, -2 if malformed. */
static long s_query_number(struct lws *wsi, const char *name, long max)
{
    char buf[32];
    const char *value = lws_get_urlarg_by_name(wsi, name, buf, sizeof buf);
    if (!value)
        return -1;
    if (!*value || strlen(value) > 7 || *value < '0' || *value > '9')
        return -2;
    char *end;
    long v = strtol(value, &end, 10);
    return *end || v < 0 || v > max ? -2 : v;
}

/* Millimetres to a depth stream's own values (rounded, at most 65535); as they are when the
 * stream's unit is unknown. */
static uint16_t s_mm_to_value(long mm, double unit_m)
{
    double v = unit_m > 0 ? (double)mm / (unit_m * 1000.0) : (double)mm;
    return v >= 65535 ? 65535 : (uint16_t)lround(v);
}

/* The newest frame of a stream for an HTTP answer, unless it is older than the stream's bound
 * (the stream has stalled: 503, not an old frame passed off as now). NULL when there is none:
 * then the answer is sent and *rc is what the caller returns. */
static gw_shot_t *s_newest_shot(struct lws *wsi, s_http_t *http, const char *key,
                                sk2_stream_kind_t kind, int64_t *age_us_out, int *rc)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    int64_t now_us = sk2_clock_mono_us();
    pthread_mutex_lock(&gw->lock);
    gw_slot_t *slot = gw_slot_find(gw, key, kind);
    gw_shot_t *shot = NULL;
    int64_t max_age_us = 0;
    bool was_subscribed = true;
    if (slot) {
        /* Depth is always subscribed; IR and colour only while wanted. */
        was_subscribed =
            kind == SK2_STREAM_DEPTH || slot->ws_wanted > 0 || slot->http_until_us > now_us;
        /* Keeps IR and colour subscribed while a program polls them. */
        slot->http_until_us = now_us + GW_HTTP_LEASE_US;
        shot = gw_shot_ref(slot->latest);
        max_age_us = slot->max_age_us;
    }
    pthread_mutex_unlock(&gw->lock);
    if (!slot) {
        *rc = s_respond_error(wsi, http, 404, "no such device or stream");
        return NULL;
    }
    s_header_t retry = {"retry-after:", "1"};
    if (shot && !was_subscribed) /* what is left from the last time it was wanted */
        gw_shot_unref(&shot);
    if (!shot) {
        gw_wake_upstream(gw);
        *rc = s_respond_json(
            wsi, http, 503,
            json_pack("{s:s}", "error", "no frame of this stream yet: subscribed now, retry"),
            &retry, 1);
        return NULL;
    }
    int64_t age_us = now_us - shot->received_us;
    if (age_us > max_age_us) {
        gw_shot_unref(&shot);
        char why[160];
        snprintf(why, sizeof why,
                 "the newest frame of this stream is %.1f s old, more than %.1f s: the stream "
                 "has stalled",
                 (double)age_us / 1e6, (double)max_age_us / 1e6);
        *rc = s_respond_json(wsi, http, 503,
                             json_pack("{s:s, s:I, s:I}", "error", why, "age_ms",
                                       (json_int_t)(age_us / 1000), "max_age_ms",
                                       (json_int_t)(max_age_us / 1000)),
                             &retry, 1);
        return NULL;
    }
    *age_us_out = age_us;
    return shot;
}

/* GET /api/devices/KEY/pointcloud.ply|.pcd: the newest depth frame as a binary point cloud
 * (include/sk2/cloud.h: x, y, z in metres, pixels without a reading left out), deprojected with
 * the intrinsics the server gave. 409 when the server gave no intrinsics or no depth unit. */
static int s_cloud_response(struct lws *wsi, s_http_t *http, const char *key,
                            sk2_cloud_format_t format)
{
    int rc = 0;
    int64_t age_us = 0;
    gw_shot_t *shot = s_newest_shot(wsi, http, key, SK2_STREAM_DEPTH, &age_us, &rc);
    if (!shot)
        return rc;
    if (!shot->has_intrinsics || shot->depth_unit_m <= 0) {
        gw_shot_unref(&shot);
        return s_respond_error(wsi, http, 409,
                               "the server gives no intrinsics or no depth unit for this "
                               "device: its depth cannot be made into points");
    }
    char *data = NULL;
    size_t size = 0, points = 0;
    FILE *file = open_memstream(&data, &size);
    int written = file ? sk2_cloud_write(file, shot->frame, &shot->intrinsics, shot->depth_unit_m,
                                         format, false, &points)
                       : SK2_ENOMEM;
    if (file && fclose(file) != 0 && written == 0)
        written = SK2_ENOMEM;
    gw_blob_t *body = written == 0 ? gw_blob_new(size) : NULL;
    if (body) {
        memcpy(body->data, data, size);
        body->len = size;
    }
    free(data);
    s_header_t headers[4] = {
        {"x-sk2-sequence:", ""},
        {"x-sk2-capture-time-us:", ""},
        {"x-sk2-points:", ""},
        {"content-disposition:", ""},
    };
    snprintf(headers[0].value, 64, "%llu", (unsigned long long)sk2_frame_sequence(shot->frame));
    snprintf(headers[1].value, 64, "%lld", (long long)sk2_frame_capture_time_us(shot->frame));
    snprintf(headers[2].value, 64, "%zu", points);
    snprintf(headers[3].value, 64, "attachment; filename=\"pointcloud-%llu.%s\"",
             (unsigned long long)sk2_frame_sequence(shot->frame),
             sk2_cloud_format_extension(format));
    gw_shot_unref(&shot);
    if (!body)
        return s_respond_error(wsi, http, 500, "cannot make the point cloud");
    return s_respond(wsi, http, 200, "application/octet-stream", &body, headers, 4);
}

/* GET /api/devices/KEY/KIND/latest{.png,-view.png,.jpg}: the newest frame (s_newest_shot). */
static int s_frame_response(struct lws *wsi, s_http_t *http, const char *key,
                            sk2_stream_kind_t kind, const char *file)
{
    gw_image_t which;
    const char *type;
    if (strcmp(file, "latest.png") == 0) {
        which = GW_IMAGE_PNG;
        type = "image/png";
    } else if (strcmp(file, "latest-view.png") == 0) {
        which = GW_IMAGE_VIEW;
        type = "image/png";
    } else if (strcmp(file, "latest.jpg") == 0) {
        which = GW_IMAGE_JPEG;
        type = "image/jpeg";
    } else {
        return s_respond_error(wsi, http, 404, "no such resource");
    }
    /* min and max: mm for depth, the stream's own values for IR. */
    long max_query = kind == SK2_STREAM_DEPTH ? S_MM_MAX : 65535;
    long min = s_query_number(wsi, "min=", max_query), max = s_query_number(wsi, "max=", max_query);
    if (min == -2 || max == -2 || (min >= 0) != (max >= 0) || (min >= 0 && min >= max))
        return s_respond_error(wsi, http, 400,
                               "min and max must be given together, whole numbers (mm for "
                               "depth, at most 1000000; 0..65535 for IR), min < max");

    int rc = 0;
    int64_t age_us = 0;
    gw_shot_t *shot = s_newest_shot(wsi, http, key, kind, &age_us, &rc);
    if (!shot)
        return rc;
    const sk2_frame_t *frame = shot->frame;
    double unit_m = kind == SK2_STREAM_DEPTH ? shot->depth_unit_m : 0;
    gw_blob_t *body = NULL;
    uint16_t lo = 0, hi = 0;
    if (min >= 0 && which != GW_IMAGE_PNG && sk2_frame_cdata16(frame)) {
        lo = kind == SK2_STREAM_DEPTH ? s_mm_to_value(min, unit_m) : (uint16_t)min;
        hi = kind == SK2_STREAM_DEPTH ? s_mm_to_value(max, unit_m) : (uint16_t)max;
        if (lo >= hi) {
            gw_shot_unref(&shot);
            return s_respond_error(wsi, http, 400,
                                   "min and max are the same value in this "
                                   "stream's unit");
        }
        uint8_t *rgb = s_view_rgb(frame, &lo, &hi);
        uint32_t w = sk2_frame_width(frame), h = sk2_frame_height(frame);
        if (rgb && (which == GW_IMAGE_JPEG ? gw_image_jpeg(rgb, w, h, S_JPEG_QUALITY, &body)
                                           : gw_image_png(rgb, w, h, 3, &body)) != 0)
            gw_blob_unref(&body);
        free(rgb);
    } else {
        body = s_image(shot, which);
        if (which != GW_IMAGE_PNG && sk2_frame_cdata16(frame))
            gw_image_range(sk2_frame_cdata16(frame),
                           (size_t)sk2_frame_width(frame) * sk2_frame_height(frame), &lo, &hi);
    }
    s_header_t headers[11] = {
        {"x-sk2-sequence:", ""}, {"x-sk2-capture-time-us:", ""}, {"x-sk2-device-time-us:", ""},
        {"x-sk2-format:", ""},   {"x-sk2-codec:", ""},           {"x-sk2-latency-us:", ""},
        {"x-sk2-age-ms:", ""},
    };
    snprintf(headers[0].value, 64, "%llu", (unsigned long long)sk2_frame_sequence(frame));
    snprintf(headers[1].value, 64, "%lld", (long long)sk2_frame_capture_time_us(frame));
    snprintf(headers[2].value, 64, "%lld", (long long)sk2_frame_device_timestamp_us(frame));
    snprintf(headers[3].value, 64, "%s", sk2_pixel_format_name(sk2_frame_format(frame)));
    snprintf(headers[4].value, 64, "%s", shot->codec);
    snprintf(headers[5].value, 64, "%lld", (long long)shot->latency_us);
    snprintf(headers[6].value, 64, "%lld", (long long)(age_us / 1000));
    size_t count = 7;
    if (kind == SK2_STREAM_DEPTH) {
        headers[count].name = "x-sk2-depth-unit-m:";
        if (unit_m > 0)
            snprintf(headers[count].value, 64, "%.9g", unit_m);
        else
            snprintf(headers[count].value, 64, "unknown");
        count++;
    }
    if (which != GW_IMAGE_PNG && kind != SK2_STREAM_COLOR) {
        headers[count].name = "x-sk2-range:";
        snprintf(headers[count++].value, 64, "%u,%u", (unsigned)lo, (unsigned)hi);
        if (unit_m > 0) {
            headers[count].name = "x-sk2-range-mm:";
            snprintf(headers[count++].value, 64, "%.6g,%.6g", lo * unit_m * 1000.0,
                     hi * unit_m * 1000.0);
        }
    }
    gw_shot_unref(&shot);
    if (!body)
        return s_respond_error(wsi, http, 500, "cannot make the image");
    return s_respond(wsi, http, 200, type, &body, headers, count);
}

static const char *s_content_type(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (!dot)
        return "application/octet-stream";
    if (strcmp(dot, ".html") == 0)
        return "text/html; charset=utf-8";
    if (strcmp(dot, ".js") == 0)
        return "text/javascript; charset=utf-8";
    if (strcmp(dot, ".css") == 0)
        return "text/css; charset=utf-8";
    if (strcmp(dot, ".svg") == 0)
        return "image/svg+xml";
    return "application/octet-stream";
}

static int s_asset_response(struct lws *wsi, s_http_t *http, const char *path)
{
    if (strcmp(path, "/") == 0)
        path = "/index.html";
    for (size_t i = 0; i < gw_asset_count; i++) {
        if (strcmp(gw_assets[i].path, path) != 0)
            continue;
        gw_blob_t *body = gw_blob_new(gw_assets[i].size);
        if (!body)
            return -1;
        memcpy(body->data, gw_assets[i].data, gw_assets[i].size);
        body->len = gw_assets[i].size;
        return s_respond(wsi, http, 200, s_content_type(path), &body, NULL, 0);
    }
    return s_respond_error(wsi, http, 404, "no such page");
}

/* Splits "/a/b/c" into at most `max` segments (pointers into path, with lengths). Returns the
 * count, or max + 1 if there are more. */
static size_t s_split(const char *path, const char **seg, size_t *len, size_t max)
{
    size_t n = 0;
    while (*path == '/') {
        path++;
        if (!*path)
            break;
        if (n == max)
            return max + 1;
        const char *end = strchr(path, '/');
        seg[n] = path;
        len[n] = end ? (size_t)(end - path) : strlen(path);
        n++;
        path += len[n - 1];
    }
    return n;
}

static bool s_seg_is(const char *seg, size_t len, const char *word)
{
    return strlen(word) == len && memcmp(seg, word, len) == 0;
}

static int s_api_response(struct lws *wsi, s_http_t *http, const char *path)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    const char *seg[6];
    size_t len[6];
    size_t n = s_split(path, seg, len, 5);
    if (n == 1)
        return s_respond_json(
            wsi, http, 200,
            json_pack("{s:[s,s,s,s,s,s,s,s,s]}", "endpoints", "/api/servers", "/api/devices",
                      "/api/devices/{id}", "/api/streams", "/api/stats",
                      "/api/devices/{id}/{kind}/latest.png",
                      "/api/devices/{id}/{kind}/latest-view.png|latest.jpg",
                      "/api/devices/{id}/pointcloud.ply|pointcloud.pcd",
                      /* the one resource that is not read with GET: named with its method */
                      "POST /api/devices/{id}/command"),
            NULL, 0);
    if (n == 2 && s_seg_is(seg[1], len[1], "servers"))
        return s_respond_json(
            wsi, http, 200, json_pack("{s:o}", "servers", s_shared(gw, false, "servers")), NULL, 0);
    if (n == 2 && s_seg_is(seg[1], len[1], "devices"))
        return s_respond_json(
            wsi, http, 200, json_pack("{s:o}", "devices", s_shared(gw, false, "devices")), NULL, 0);
    if (n == 2 && s_seg_is(seg[1], len[1], "streams"))
        return s_respond_json(
            wsi, http, 200, json_pack("{s:o}", "streams", s_shared(gw, true, "streams")), NULL, 0);
    if (n == 2 && s_seg_is(seg[1], len[1], "stats")) {
        json_t *stats = s_shared(gw, true, NULL);
        if (!json_is_object(stats)) {
            /* No figures yet: s_shared's stand-in is an array, the answer an object. */
            json_decref(stats);
            stats = json_object();
        }
        return s_respond_json(wsi, http, 200, stats, NULL, 0);
    }
    if (n >= 3 && n <= 5 && s_seg_is(seg[1], len[1], "devices")) {
        unsigned status;
        json_t *device = s_find_device(gw, seg[2], len[2], &status);
        if (!device)
            return s_respond_no_device(wsi, http, status);
        if (n == 3)
            return s_respond_json(wsi, http, 200, device, NULL, 0);
        char key[GW_KEY_MAX + 1];
        const char *device_key = json_string_value(json_object_get(device, "key"));
        snprintf(key, sizeof key, "%s", device_key ? device_key : "");
        json_decref(device);
        if (n == 4 && s_seg_is(seg[3], len[3], "command")) {
            s_header_t allow = {"allow:", "POST"};
            return s_respond_json(
                wsi, http, 405,
                json_pack("{s:s}", "error",
                          "a command is a POST with a JSON body {\"key\", \"value\"}"),
                &allow, 1);
        }
        if (n == 4 && (s_seg_is(seg[3], len[3], "pointcloud.ply") ||
                       s_seg_is(seg[3], len[3], "pointcloud.pcd")))
            return s_cloud_response(wsi, http, key,
                                    seg[3][len[3] - 1] == 'y' ? SK2_CLOUD_PLY : SK2_CLOUD_PCD);
        sk2_stream_kind_t kind = gw_kind_from_name(seg[3], len[3]);
        if (!kind)
            return s_respond_error(wsi, http, 404, "no such stream (depth, ir or color)");
        if (n == 5) {
            char file[32];
            if (len[4] >= sizeof file)
                return s_respond_error(wsi, http, 404, "no such resource");
            memcpy(file, seg[4], len[4]);
            file[len[4]] = '\0';
            return s_frame_response(wsi, http, key, kind, file);
        }
    }
    return s_respond_error(wsi, http, 404, "no such resource");
}

/* Bytes of this request's line and headers. libwebsockets 4.1 keeps the headers it knows by
 * name and those it does not separately and tells only the sizes of the first; so the size
 * is taken from what the connection has received since the previous request (TCP_INFO), which
 * counts every byte the peer sent. The count at the previous request is kept with the
 * connection (s_conn_t), since libwebsockets clears the per-connection data between keep-alive
 * requests. Requests that overflow libwebsockets' buffer (S_HEADER_BUFFER) never
 * get here: it hangs up on them. */
static uint64_t s_request_bytes(struct lws *wsi)
{
    uint64_t known = 0;
    for (int t = 0; t < (int)WSI_TOKEN_COUNT; t++) {
        int n = lws_hdr_total_length(wsi, (enum lws_token_indexes)t);
        known += n > 0 ? (uint64_t)n : 0;
    }
    struct tcp_info info;
    socklen_t size = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(lws_get_socket_fd(wsi), IPPROTO_TCP, TCP_INFO, &info, &size) != 0 ||
        size < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof info.tcpi_bytes_received)
        return known;
    s_conn_t *conn = s_conn_of(wsi);
    uint64_t received = info.tcpi_bytes_received - (conn ? conn->bytes_seen : 0);
    if (conn)
        conn->bytes_seen = info.tcpi_bytes_received;
    return received > known ? received : known;
}

/* Whether the request says a body follows (a Content-Length other than 0, or any
 * Transfer-Encoding). */
static bool s_has_body(struct lws *wsi)
{
    char length[32] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
        return true;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0)
        return false;
    lws_hdr_copy(wsi, length, sizeof length, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    return strspn(length, "0 \t") != strlen(length) || length[0] == '\0';
}

/* ---- POST /api/devices/{key}/command ------------------------------------------------------ */

static json_t *s_command_refusal(json_t *ref, const char *code, const char *error);
static json_t *s_command_queue(sk2_gateway_t *gw, uint64_t serial, json_t *ref, json_t *device,
                               json_t *key, json_t *value, unsigned *status);
static char *s_take_answer(sk2_gateway_t *gw, uint64_t serial);

static bool s_is_command_path(const char *path)
{
    const char *seg[5];
    size_t len[5];
    return s_split(path, seg, len, 4) == 4 && s_seg_is(seg[0], len[0], "api") &&
           s_seg_is(seg[1], len[1], "devices") && s_seg_is(seg[3], len[3], "command") &&
           len[2] <= GW_KEY_MAX;
}

/* The head of a command request: its body (a JSON object, S_POST_MAX bytes at most) comes in
 * LWS_CALLBACK_HTTP_BODY, and is acted on at LWS_CALLBACK_HTTP_BODY_COMPLETION. */
static int s_post_begin(struct lws *wsi, s_http_t *http, const char *path)
{
    const char *seg[5];
    size_t len[5];
    s_split(path, seg, len, 4);
    char length[32] = "";
    int n_len = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    if (n_len <= 0 || n_len >= (int)sizeof length)
        return s_respond_error(wsi, http, 411, "a command needs a JSON body with Content-Length");
    lws_hdr_copy(wsi, length, sizeof length, WSI_TOKEN_HTTP_CONTENT_LENGTH);
    char *end = NULL;
    long n = strtol(length, &end, 10);
    if (end == length || *end || n <= 0)
        return s_respond_error(wsi, http, 400, "a command needs a JSON body");
    if (n > S_POST_MAX)
        return s_respond_error(wsi, http, 413, "a command's body is 4 KiB at most");
    free(http->post);
    if (!(http->post = malloc(S_POST_MAX)))
        return -1;
    http->post_len = 0;
    http->is_post_long = false;
    memcpy(http->post_device, seg[2], len[2]);
    http->post_device[len[2]] = '\0';
    return 0;
}

static int s_post_body(s_http_t *http, const void *in, size_t len)
{
    if (!http->post)
        return 0; /* the body of a request answered already */
    if (http->post_len + len > S_POST_MAX) {
        http->is_post_long = true;
    } else {
        memcpy(http->post + http->post_len, in, len);
        http->post_len += len;
    }
    return 0;
}

static void s_waiter_remove(struct gw_web *web, uint64_t serial)
{
    for (size_t w = 0; w < web->waiter_count; w++) {
        if (web->waiters[w].serial == serial) {
            web->waiters[w] = web->waiters[--web->waiter_count];
            return;
        }
    }
}

/* The whole body is in: the command is queued (its answer goes out in s_post_answer) or
 * refused at once, as over the WebSocket. */
static int s_post_complete(struct lws *wsi, s_http_t *http)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    if (!http->post)
        return 0;
    json_error_t error;
    json_t *body = http->is_post_long ? NULL : json_loadb(http->post, http->post_len, 0, &error);
    free(http->post);
    http->post = NULL;
    if (!json_is_object(body)) {
        char why[256];
        snprintf(why, sizeof why, "the body must be a JSON object {\"key\": K, \"value\": V}%s%s",
                 body || http->is_post_long ? "" : ": ",
                 body || http->is_post_long ? "" : error.text);
        json_decref(body);
        return s_respond_json(wsi, http, http->is_post_long ? 413 : 400,
                              s_command_refusal(NULL, "malformed", why), NULL, 0);
    }
    json_t *ref = json_object_get(body, "ref");
    json_t *own_ref = ref ? json_incref(ref) : json_integer(0);
    json_t *device = json_string(http->post_device);
    uint64_t serial = ++gw->web->next_serial;
    unsigned status;
    json_t *refusal = s_command_queue(gw, serial, own_ref, device, json_object_get(body, "key"),
                                      json_object_get(body, "value"), &status);
    json_decref(own_ref);
    json_decref(device);
    json_decref(body);
    if (refusal)
        return s_respond_json(wsi, http, status, refusal, NULL, 0);
    /* One waiter per queued command, and at most GW_COMMANDS_MAX of those: never full. */
    struct gw_web *web = gw->web;
    web->waiters[web->waiter_count].serial = serial;
    web->waiters[web->waiter_count++].wsi = wsi;
    http->command = serial;
    return 0;
}

/* The answer of a waiting command request, once it has come: 200 when applied, else the
 * refusal with 422 (the server refused), 504 (no answer within the ttl) or 502 (the server
 * was lost, or the command could not be sent). */
static int s_post_answer(struct lws *wsi, s_http_t *http)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    char *text = s_take_answer(gw, http->command);
    if (!text)
        return 0;
    s_waiter_remove(gw->web, http->command);
    http->command = 0;
    json_t *answer = json_loads(text, 0, NULL);
    free(text);
    const char *code = json_string_value(json_object_get(answer, "code"));
    unsigned status = 422;
    if (json_is_true(json_object_get(answer, "ok")))
        status = 200;
    else if (!code || strcmp(code, "lost") == 0 || strcmp(code, "unavailable") == 0)
        status = 502;
    else if (strcmp(code, "timeout") == 0)
        status = 504;
    else if (strcmp(code, "busy") == 0)
        status = 503;
    return s_respond_json(wsi, http, status, answer, NULL, 0);
}

static void s_post_gone(struct lws *wsi, s_http_t *http)
{
    if (http->command)
        s_waiter_remove(s_gateway(wsi)->web, http->command);
    http->command = 0;
    free(http->post);
    http->post = NULL;
}

static int s_http_request(struct lws *wsi, s_http_t *http, const char *path)
{
    s_conn_busy(wsi);
    http->is_head = lws_hdr_total_length(wsi, WSI_TOKEN_HEAD_URI) > 0;
    /* Only a command's POST has a body. Any request that declares one is answered and its
     * connection closed instead of kept for the next request, read or not: libwebsockets 4.1
     * spins for ever on a kept connection whose answered request still owes body bytes (the
     * web thread at 100%, every other client unanswered: found by fuzz_http, reproducer in
     * tests/fuzz/crashes/http/). */
    http->has_body = s_has_body(wsi);
    uint64_t request_bytes = s_request_bytes(wsi);
    bool from_query = false;
    if (!s_is_authorized(wsi, s_gateway(wsi), &from_query))
        return s_respond_unauthorized(wsi, http);
    http->sets_cookie = from_query;
    if (lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0 && s_is_command_path(path)) {
        if (request_bytes > S_HEADERS_MAX)
            return s_respond_error(wsi, http, 431, "request headers too large (8 KiB at most)");
        return s_post_begin(wsi, http, path);
    }
    /* The method first: a POST's body may have come in with its headers. */
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0 && !http->is_head)
        return s_respond_error(wsi, http, 405, "only GET and HEAD are served");
    if (http->has_body)
        return s_respond_error(wsi, http, 400, "a GET or HEAD request takes no body");
    if (request_bytes > S_HEADERS_MAX)
        return s_respond_error(wsi, http, 431, "request headers too large (8 KiB at most)");
    if (strlen(path) > 1024)
        return s_respond_error(wsi, http, 414, "path too long");
    if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0)
        return s_api_response(wsi, http, path);
    if (strcmp(path, "/ws") == 0)
        return s_respond_error(wsi, http, 400, "this path takes a WebSocket (protocol sk2-view)");
    return s_asset_response(wsi, http, path);
}

/* Whether a Sec-WebSocket-Key is what RFC 6455 asks for: 16 bytes in base64 (24 characters,
 * the last two "=="). */
static bool s_is_ws_key(const char *key)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return false;
    for (size_t i = 0; i < 22; i++)
        if (!strchr(b64, key[i]))
            return false;
    return true;
}

/* A WebSocket upgrade, before libwebsockets answers it: only to /ws, version 13, a well-formed
 * key and our protocol; anything else gets a clear HTTP answer instead of a socket that half
 * works (libwebsockets 4.1 takes any version and key). Returns 0 (go on), 1 (answered). */
static int s_confirm_upgrade(struct lws *wsi, s_http_t *http, const char *upgrade)
{
    if (!upgrade || strcasecmp(upgrade, "websocket") != 0)
        return 0;
    s_conn_busy(wsi);
    bool from_query = false;
    http->sets_cookie = false;
    if (!s_is_authorized(wsi, s_gateway(wsi), &from_query)) {
        http->is_refusing = true;
        int rc = s_respond_unauthorized(wsi, http);
        http->is_refusing = false;
        return rc;
    }
    char path[64] = "", version[16] = "", key[64] = "", protocols[256] = "";
    if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) < (int)sizeof path)
        lws_hdr_copy(wsi, path, sizeof path, WSI_TOKEN_GET_URI);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_VERSION) < (int)sizeof version)
        lws_hdr_copy(wsi, version, sizeof version, WSI_TOKEN_VERSION);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_KEY) < (int)sizeof key)
        lws_hdr_copy(wsi, key, sizeof key, WSI_TOKEN_KEY);
    if (lws_hdr_total_length(wsi, WSI_TOKEN_PROTOCOL) < (int)sizeof protocols)
        lws_hdr_copy(wsi, protocols, sizeof protocols, WSI_TOKEN_PROTOCOL);
    http->is_refusing = true;
    int rc = 0;
    /* Foxglove and Lichtblick connect to the URL the user gives, path and all: "/". */
    bool is_foxglove = gw_fox_is_offered(protocols);
    if (strcmp(path, is_foxglove ? "/" : "/ws") != 0) {
        rc = s_respond_error(wsi, http, 404,
                             "WebSockets are served on /ws (sk2-view) and / (Foxglove) only");
    } else if (strcmp(version, "13") != 0) {
        /* RFC 6455 4.4: 426 with the version this server speaks. */
        s_header_t supported = {"sec-websocket-version:", "13"};
        rc = s_respond_json(wsi, http, 426,
                            json_pack("{s:s}", "error", "only WebSocket version 13 is spoken"),
                            &supported, 1);
    } else if (!s_is_ws_key(key)) {
        rc = s_respond_error(wsi, http, 400, "Sec-WebSocket-Key is not 16 bytes in base64");
    } else if (!is_foxglove) {
        bool has_protocol = false;
        for (char *save = NULL, *p = strtok_r(protocols, ", ", &save); p && !has_protocol;
             p = strtok_r(NULL, ", ", &save))
            has_protocol = strcmp(p, S_PROTOCOL) == 0;
        if (!has_protocol)
            rc = s_respond_error(wsi, http, 400, "Sec-WebSocket-Protocol must offer " S_PROTOCOL);
    }
    http->is_refusing = false;
    return rc;
}

static int s_http_writeable(struct lws *wsi, s_http_t *http)
{
    if (http->command && !http->body)
        return s_post_answer(wsi, http);
    if (!http->body)
        return 0;
    size_t left = http->body->len - http->sent;
    size_t n = left > S_CHUNK ? S_CHUNK : left;
    bool is_last = n == left;
    /* lws_write may use the LWS_PRE bytes before the pointer: save and restore them, since
     * the blob's bytes there belong to the previous chunk. */
    uint8_t *p = http->body->data + http->sent;
    uint8_t saved[LWS_PRE];
    memcpy(saved, p - LWS_PRE, LWS_PRE);
    int written = lws_write(wsi, p, n, is_last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP);
    memcpy(p - LWS_PRE, saved, LWS_PRE);
    if (written < 0)
        return -1;
    http->sent += n;
    if (!is_last) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    gw_blob_unref(&http->body);
    s_conn_idle(wsi);
    if (http->has_body)
        return -1; /* see s_http_request */
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* ---- WebSocket ----------------------------------------------------------------------------- */

/* Makes every slot's ws_wanted count the sockets that follow it now. */
static void s_recount_wants(sk2_gateway_t *gw)
{
    struct gw_web *web = gw->web;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->slot_count; i++)
        gw->slots[i].ws_wanted = 0;
    for (size_t s = 0; s < web->socket_count; s++) {
        const s_ws_t *ws = web->sockets[s];
        for (size_t i = 0; i < ws->sub_count; i++) {
            gw_slot_t *slot = gw_slot_find(gw, ws->subs[i].key, ws->subs[i].kind);
            if (slot)
                slot->ws_wanted++;
        }
    }
    web->state_seen = gw->state_version;
    pthread_mutex_unlock(&gw->lock);
    gw_wake_upstream(gw);
}

/* The key of the device a subscription names: its key, or its id while only one server has a
 * device of that id; else the name as it is (a device that may come later, or none). */
static void s_resolve_key(sk2_gateway_t *gw, const char *name, char *key, size_t size)
{
    snprintf(key, size, "%s", name);
    bool is_found = false;
    size_t id_matches = 0;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->slot_count && !is_found; i++) {
        const char *slot_key = gw->slots[i].key;
        const char *colon = strchr(slot_key, ':');
        if (strcmp(slot_key, name) == 0) {
            is_found = true;
        } else if (colon && strcmp(colon + 1, name) == 0) {
            if (id_matches == 0 || strcmp(key, slot_key) != 0) {
                snprintf(key, size, "%s", slot_key);
                id_matches++;
            }
        }
    }
    pthread_mutex_unlock(&gw->lock);
    if (is_found || id_matches != 1)
        snprintf(key, size, "%s", name);
}

/* Queues a text message for this socket alone (takes msg): the answer to a message it got
 * wrong. Returns 0, or -1 when too many are waiting (a page that sends faster than it reads
 * its errors is closed). */
static int s_ws_reply(struct lws *wsi, s_ws_t *ws, json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text || ws->out_count >= S_WS_OUT_MAX) {
        free(text);
        ws->is_overrun = ws->out_count >= S_WS_OUT_MAX;
        return -1;
    }
    ws->out[ws->out_count++] = text;
    lws_callback_on_writable(wsi);
    return 0;
}

/* The command-done answer to a command the gateway refuses itself. */
static json_t *s_command_refusal(json_t *ref, const char *code, const char *error)
{
    return json_pack("{s:s, s:O, s:b, s:s, s:s}", "type", "command-done", "ref",
                     json_is_integer(ref) ? ref : json_null(), "ok", false, "code", code, "error",
                     error);
}

/* Checks a command and queues it for the client thread, which sends it to the device's server
 * (upstream.c); its answer is for the socket or request `serial` alone. Returns NULL when
 * queued, else the refusal (a command-done message) with *status the HTTP status for it;
 * nothing is queued then. */
static json_t *s_command_queue(sk2_gateway_t *gw, uint64_t serial, json_t *ref, json_t *device,
                               json_t *key, json_t *value, unsigned *status)
{
    const char *why = NULL;
    *status = 400;
    if (!json_is_integer(ref))
        why = "\"ref\" must be an integer (the answer carries it back)";
    else if (!json_is_string(device) || json_string_length(device) == 0 ||
             json_string_length(device) > GW_KEY_MAX)
        why = "\"device\" must be a device key from /api/devices";
    else if (!json_is_string(key) || json_string_length(key) == 0 ||
             json_string_length(key) > GW_COMMAND_KEY_MAX)
        why = "\"key\" must be a key name (1..32 bytes) or \"list\"";
    else if (value && !json_is_null(value) && !json_is_string(value) && !json_is_number(value) &&
             !json_is_boolean(value))
        why = "\"value\" must be a string, a number or a boolean";
    else if (json_is_string(value) && json_string_length(value) > S_VALUE_MAX)
        why = "\"value\" is longer than 256 bytes";
    if (why)
        return s_command_refusal(ref, "malformed", why);
    unsigned found_status;
    json_t *found =
        s_find_device(gw, json_string_value(device), json_string_length(device), &found_status);
    const char *found_key = json_string_value(json_object_get(found, "key"));
    if (!found_key) {
        json_decref(found);
        *status = found_status == 409 ? 409 : 404;
        return s_command_refusal(ref, "unknown-device",
                                 found_status == 409 ? "several servers have a device of that "
                                                       "id: name it by its key"
                                                     : "no such device in the gateway");
    }
    char *value_json =
        value && !json_is_null(value) ? json_dumps(value, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
    size_t mine = 0;
    gw_command_t *free_entry = NULL;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < GW_COMMANDS_MAX; i++) {
        gw_command_t *command = &gw->commands[i];
        if (command->state == GW_COMMAND_FREE && !free_entry)
            free_entry = command;
        else if (command->state != GW_COMMAND_FREE && command->socket == serial)
            mine++;
    }
    const char *busy = mine >= S_WS_CMDS_MAX ? "at most 4 commands in flight per WebSocket: "
                                               "wait for an answer"
                       : !free_entry ? "at most 16 commands in flight in the gateway: try again"
                       : (value && !json_is_null(value) && !value_json) ? "out of memory"
                                                                        : NULL;
    if (!busy) {
        free_entry->state = GW_COMMAND_QUEUED;
        free_entry->socket = serial;
        free_entry->ref = (long long)json_integer_value(ref);
        snprintf(free_entry->device, sizeof free_entry->device, "%s", found_key);
        snprintf(free_entry->key, sizeof free_entry->key, "%s", json_string_value(key));
        free_entry->value_json = value_json;
        value_json = NULL;
    }
    pthread_mutex_unlock(&gw->lock);
    json_decref(found);
    free(value_json);
    if (busy) {
        *status = 503;
        return s_command_refusal(ref, "busy", busy);
    }
    gw_wake_upstream(gw);
    return NULL;
}

/* {"type": "command", "ref": N, "device": KEY, "key": K, "value": V}: queued, or answered at
 * once when wrong (s_command_queue). Returns 0, or -1 to close the socket. */
static int s_ws_command(struct lws *wsi, s_ws_t *ws, json_t *msg)
{
    unsigned status;
    json_t *refusal = s_command_queue(s_gateway(wsi), ws->serial, json_object_get(msg, "ref"),
                                      json_object_get(msg, "device"), json_object_get(msg, "key"),
                                      json_object_get(msg, "value"), &status);
    return refusal ? s_ws_reply(wsi, ws, refusal) : 0;
}

/* {"type": "subscribe", "streams": [{"device": KEY, "kind": "depth"}, ...]} replaces the set of
 * streams the socket follows; {"type": "command", ...} is s_ws_command. Text that is not JSON
 * is answered with an error. Returns 0, or -1 for a message that breaks the protocol. */
static int s_ws_message_in(struct lws *wsi, s_ws_t *ws)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    json_error_t error;
    json_t *msg = json_loadb(ws->rx, ws->rx_len, 0, &error);
    if (!msg) {
        char why[256];
        snprintf(why, sizeof why, "not JSON: %s (at byte %d)", error.text, error.position);
        return s_ws_reply(wsi, ws, json_pack("{s:s, s:s}", "type", "error", "error", why));
    }
    json_t *streams = json_object_get(msg, "streams");
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type && strcmp(type, "command") == 0) {
        int rc = s_ws_command(wsi, ws, msg);
        json_decref(msg);
        return rc;
    }
    if (!type || strcmp(type, "subscribe") != 0 || !json_is_array(streams) ||
        json_array_size(streams) > S_WS_SUBS_MAX) {
        json_decref(msg);
        return -1;
    }
    s_sub_t subs[S_WS_SUBS_MAX];
    size_t count = 0;
    size_t i;
    json_t *entry;
    json_array_foreach(streams, i, entry)
    {
        const char *device = json_string_value(json_object_get(entry, "device"));
        const char *kind_name = json_string_value(json_object_get(entry, "kind"));
        sk2_stream_kind_t kind = kind_name ? gw_kind_from_name(kind_name, strlen(kind_name)) : 0;
        if (!device || !kind || strlen(device) > GW_KEY_MAX) {
            json_decref(msg);
            return -1;
        }
        s_sub_t *sub = &subs[count++];
        memset(sub, 0, sizeof *sub);
        s_resolve_key(gw, device, sub->key, sizeof sub->key);
        sub->kind = kind;
        /* Keep what was sent already for streams followed before. */
        for (size_t k = 0; k < ws->sub_count; k++)
            if (ws->subs[k].kind == kind && strcmp(ws->subs[k].key, sub->key) == 0)
                *sub = ws->subs[k];
    }
    json_decref(msg);
    memcpy(ws->subs, subs, count * sizeof subs[0]);
    ws->sub_count = count;
    ws->next_sub = 0;
    s_recount_wants(gw);
    return 0;
}

static int s_ws_receive(struct lws *wsi, s_ws_t *ws, const void *in, size_t len)
{
    if (lws_frame_is_binary(wsi) || ws->rx_len + len > S_WS_RX_MAX) {
        static const char why[] = "text messages of at most 16 KiB only";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, (unsigned char *)why,
                         strlen(why));
        return -1;
    }
    if (!ws->rx && !(ws->rx = malloc(S_WS_RX_MAX)))
        return -1;
    memcpy(ws->rx + ws->rx_len, in, len);
    ws->rx_len += len;
    if (!lws_is_final_fragment(wsi))
        return 0;
    int rc = s_ws_message_in(wsi, ws);
    ws->rx_len = 0;
    if (rc != 0 && ws->is_overrun) {
        static const char why[] = "too many answers unread: read them before sending more";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why, strlen(why));
        return -1;
    }
    if (rc != 0) {
        static const char why[] = "expected {\"type\":\"subscribe\",\"streams\":[...]} or "
                                  "{\"type\":\"command\",...}";
        lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, (unsigned char *)why, strlen(why));
        return -1;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* Writes a text message {"type": type, "data": value}; takes value. */
static int s_ws_send_json(struct lws *wsi, const char *type, json_t *value)
{
    json_t *msg = json_pack("{s:s, s:o}", "type", type, "data", value ? value : json_null());
    char *text = msg ? json_dumps(msg, JSON_COMPACT | JSON_REAL_PRECISION(10)) : NULL;
    json_decref(msg);
    gw_blob_t *blob = text ? s_text_blob(text) : NULL;
    free(text);
    if (!blob)
        return -1;
    int n = lws_write(wsi, blob->data, blob->len, LWS_WRITE_TEXT);
    gw_blob_unref(&blob);
    return n < 0 ? -1 : 0;
}

/* A command's answer for the socket or request `serial` (malloc'd JSON text, the caller frees
 * it; its entry is freed), or NULL while there is none. */
static char *s_take_answer(sk2_gateway_t *gw, uint64_t serial)
{
    char *text = NULL;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < GW_COMMANDS_MAX && !text; i++) {
        gw_command_t *command = &gw->commands[i];
        if (command->state == GW_COMMAND_DONE && command->socket == serial && command->answer) {
            text = command->answer;
            command->answer = NULL;
            gw_command_clear(command);
        }
    }
    pthread_mutex_unlock(&gw->lock);
    return text;
}

/* The next answer for this socket (malloc'd JSON text, the caller frees it), or NULL: an
 * answer to a bad message, else a command's answer from the client thread (its entry is
 * freed). */
static char *s_ws_next_reply(sk2_gateway_t *gw, s_ws_t *ws)
{
    if (ws->out_count > 0) {
        char *text = ws->out[0];
        memmove(ws->out, ws->out + 1, --ws->out_count * sizeof ws->out[0]);
        return text;
    }
    return s_take_answer(gw, ws->serial);
}

/* Frees the answered commands whose WebSocket has gone (or whose answer could not be made),
 * and the queued ones of a socket that is closing (serial): nobody will read them. */
static void s_commands_drop(sk2_gateway_t *gw, uint64_t closing)
{
    struct gw_web *web = gw->web;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < GW_COMMANDS_MAX; i++) {
        gw_command_t *command = &gw->commands[i];
        if (command->state == GW_COMMAND_QUEUED && command->socket == closing) {
            gw_command_clear(command);
            continue;
        }
        if (command->state != GW_COMMAND_DONE)
            continue;
        bool is_open = false;
        for (size_t s = 0; s < web->socket_count && !is_open; s++)
            is_open = web->sockets[s]->serial == command->socket;
        for (size_t w = 0; w < web->waiter_count && !is_open; w++)
            is_open = web->waiters[w].serial == command->socket;
        if (!is_open || !command->answer)
            gw_command_clear(command);
    }
    pthread_mutex_unlock(&gw->lock);
}

/* One message per writeable callback: the state when it changed, else the stats when they
 * changed, else the newest frame of the next stream that has one this socket has not had. */
static int s_ws_writeable(struct lws *wsi, s_ws_t *ws)
{
    sk2_gateway_t *gw = s_gateway(wsi);
    char *reply = s_ws_next_reply(gw, ws);
    if (reply) {
        /* Answers are few and small: one per callback, ahead of everything, then the rest. */
        gw_blob_t *blob = s_text_blob(reply);
        free(reply);
        int n = blob ? lws_write(wsi, blob->data, blob->len, LWS_WRITE_TEXT) : -1;
        gw_blob_unref(&blob);
        lws_callback_on_writable(wsi);
        return n < 0 ? -1 : 0;
    }
    pthread_mutex_lock(&gw->lock);
    uint64_t state_version = gw->state_version, stats_version = gw->stats_version;
    json_t *state = state_version != ws->state_sent ? json_incref(gw->state) : NULL;
    json_t *stats = !state && stats_version != ws->stats_sent ? json_incref(gw->stats) : NULL;
    gw_shot_t *shot = NULL;
    s_sub_t *sub = NULL;
    size_t pending = 0;
    for (size_t i = 0; i < ws->sub_count; i++) {
        s_sub_t *candidate = &ws->subs[(ws->next_sub + i) % ws->sub_count];
        gw_slot_t *slot = gw_slot_find(gw, candidate->key, candidate->kind);
        if (!slot || !slot->latest ||
            (candidate->has_sent &&
             sk2_frame_sequence(slot->latest->frame) == candidate->last_sequence))
            continue;
        pending++;
        if (!shot && !state && !stats) {
            shot = gw_shot_ref(slot->latest);
            sub = candidate;
            ws->next_sub = (ws->next_sub + i + 1) % ws->sub_count;
        }
    }
    pthread_mutex_unlock(&gw->lock);

    int rc = 0;
    if (state) {
        ws->state_sent = state_version;
        rc = s_ws_send_json(wsi, "state", state);
    } else if (stats) {
        ws->stats_sent = stats_version;
        rc = s_ws_send_json(wsi, "stats", stats);
    } else if (shot) {
        uint64_t sequence = sk2_frame_sequence(shot->frame);
        if (sub->has_sent && sequence > sub->last_sequence + 1)
            atomic_fetch_add_explicit(&gw->counters.frames_skipped,
                                      sequence - sub->last_sequence - 1, memory_order_relaxed);
        sub->has_sent = true;
        sub->last_sequence = sequence;
        gw_blob_t *blob = s_image(shot, GW_IMAGE_WS);
        gw_shot_unref(&shot);
        if (blob) {
            rc = lws_write(wsi, blob->data, blob->len, LWS_WRITE_BINARY) < 0 ? -1 : 0;
            gw_blob_unref(&blob);
            atomic_fetch_add_explicit(&gw->counters.frames_sent, 1, memory_order_relaxed);
            pending--;
        }
    }
    if (rc == 0 && (pending > 0 || state || (stats_version != ws->stats_sent)))
        lws_callback_on_writable(wsi);
    return rc;
}

static void s_ws_list(struct gw_web *web, s_ws_t *ws, bool is_open)
{
    if (is_open) {
        web->sockets[web->socket_count++] = ws;
        ws->is_listed = true;
        return;
    }
    for (size_t i = 0; i < web->socket_count; i++) {
        if (web->sockets[i] == ws) {
            web->sockets[i] = web->sockets[--web->socket_count];
            break;
        }
    }
    ws->is_listed = false;
}

/* ---- Callbacks ----------------------------------------------------------------------------- */

static const struct lws_protocols s_protocols[6];

static void s_on_wake(struct lws *wsi, sk2_gateway_t *gw)
{
    pthread_mutex_lock(&gw->lock);
    bool has_new_state = gw->web->state_seen != gw->state_version;
    pthread_mutex_unlock(&gw->lock);
    /* Slots come and go with devices: count the wants again for the new ones. */
    if (has_new_state)
        s_recount_wants(gw);
    s_commands_drop(gw, 0);
    for (size_t w = 0; w < gw->web->waiter_count; w++)
        lws_callback_on_writable(gw->web->waiters[w].wsi);
    lws_callback_on_writable_all_protocol(lws_get_context(wsi), &s_protocols[1]);
}

static int s_http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                           size_t len)
{
    s_http_t *http = user;
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION: /* user is not ours here: in is the socket */
        return s_admit(s_gateway(wsi), (int)(intptr_t)in);
    case LWS_CALLBACK_SERVER_NEW_CLIENT_INSTANTIATED:
        return s_conn_new(wsi);
    case LWS_CALLBACK_WSI_DESTROY:
        s_conn_gone(wsi);
        break;
    case LWS_CALLBACK_HTTP:
        return s_http_request(wsi, http, in ? in : "/");
    case LWS_CALLBACK_HTTP_WRITEABLE:
        return s_http_writeable(wsi, http);
    case LWS_CALLBACK_HTTP_BODY:
        return http ? s_post_body(http, in, len) : 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        return http ? s_post_complete(wsi, http) : 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (http) {
            gw_blob_unref(&http->body);
            s_post_gone(wsi, http);
        }
        break;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return http ? s_confirm_upgrade(wsi, http, in) : -1;
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return -1; /* a WebSocket without our protocol */
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* Requests libwebsockets' HTTP parser hands over as they are (LWS_SERVER_OPTION_FALLBACK_TO_
 * APPLY_LISTEN_ACCEPT_CONFIG): methods it does not know (TRACE, anything made up) and
 * CONNECT. They get the 405 every method but GET and HEAD gets, then the connection is closed:
 * first our side, then, once the peer has read the answer and closed or after 2 s, for good. */
static int s_raw_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                          size_t len)
{
    (void)in;
    (void)len;
    s_http_t *raw = user;
    sk2_gateway_t *gw = s_gateway(wsi);
    switch (reason) {
    case LWS_CALLBACK_RAW_ADOPT:
        s_conn_busy(wsi); /* timed out below */
        if (raw)
            raw->has_answered = false;
        lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 5);
        lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_RAW_RX:
        return 0; /* the request: nothing in it changes the answer */
    case LWS_CALLBACK_RAW_WRITEABLE: {
        if (!raw)
            return -1;
        if (raw->has_answered) {
            shutdown(lws_get_socket_fd(wsi), SHUT_WR);
            lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, 2);
            return 0;
        }
        static const char body[] = "{\"error\":\"only GET and HEAD are served\"}\n";
        uint8_t buf[LWS_PRE + 512];
        int n = snprintf((char *)buf + LWS_PRE, sizeof buf - LWS_PRE,
                         "HTTP/1.1 405 Method Not Allowed\r\nallow: " S_ALLOW
                         "\r\ncontent-type: application/json\r\ncontent-length: %zu\r\n"
                         "cache-control: no-store\r\nconnection: close\r\n\r\n%s",
                         sizeof body - 1, body);
        raw->has_answered = true;
        atomic_fetch_add_explicit(&gw->counters.http_requests, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&gw->counters.http_client_errors, 1, memory_order_relaxed);
        if (lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_RAW) < 0)
            return -1;
        lws_callback_on_writable(wsi);
        return 0;
    }
    default:
        return 0;
    }
}

static int s_ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    s_ws_t *ws = user;
    sk2_gateway_t *gw = lws_context_user(lws_get_context(wsi));
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return gw->web->socket_count >= S_WS_MAX ? -1 : 0;
    case LWS_CALLBACK_ESTABLISHED:
        memset(ws, 0, sizeof *ws);
        ws->wsi = wsi;
        ws->serial = ++gw->web->next_serial;
        s_ws_list(gw->web, ws, true);
        atomic_fetch_add_explicit(&gw->counters.websockets, 1, memory_order_relaxed);
        lws_callback_on_writable(wsi);
        break;
    case LWS_CALLBACK_CLOSED:
        if (ws->is_listed) {
            s_ws_list(gw->web, ws, false);
            atomic_fetch_sub_explicit(&gw->counters.websockets, 1, memory_order_relaxed);
            s_recount_wants(gw);
            s_commands_drop(gw, ws->serial);
        }
        free(ws->rx);
        ws->rx = NULL;
        while (ws->out_count > 0)
            free(ws->out[--ws->out_count]);
        break;
    case LWS_CALLBACK_RECEIVE:
        return s_ws_receive(wsi, ws, in, len);
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s_ws_writeable(wsi, ws);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        s_on_wake(wsi, gw);
        break;
    default:
        break;
    }
    return 0;
}

static const struct lws_protocols s_protocols[6] = {
    {"http", s_http_callback, sizeof(s_http_t), 0, 0, NULL, 0},
    {S_PROTOCOL, s_ws_callback, sizeof(s_ws_t), 4096, 0, NULL, 0},
    {"sk2-fallback", s_raw_callback, sizeof(s_http_t), 0, 0, NULL, 0},
    {GW_FOX_PROTOCOL, gw_fox_callback, sizeof(void *), GW_FOX_RX_BUFFER, 0, NULL, 0},
    {GW_FOX_PROTOCOL_SDK, gw_fox_callback, sizeof(void *), GW_FOX_RX_BUFFER, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* libwebsockets' own log lines, through sk2's handler: its errors as sk2 warnings (they are
 * mostly about a peer), the rest as debug. */
static void s_lws_log(int level, const char *line)
{
    char text[512];
    snprintf(text, sizeof text, "%s", line);
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == '\r'))
        text[--n] = '\0';
    if (level & LLL_ERR)
        SK2_WARN("gateway", "libwebsockets: %s", text);
    else
        SK2_DEBUG("gateway", "libwebsockets: %s", text);
}

int gw_web_bind(sk2_gateway_t *gw, const char *address, uint16_t port)
{
    gw->web = calloc(1, sizeof *gw->web);
    if (!gw->web)
        return SK2_ENOMEM;
    gw->web->gw = gw;
    if (!(gw->fox = gw_fox_new(gw))) {
        free(gw->web);
        gw->web = NULL;
        return SK2_ENOMEM;
    }
    lws_set_log_level(LLL_ERR | (sk2_log_level() >= SK2_LOG_DEBUG ? LLL_WARN : 0), s_lws_log);
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof info);
    info.port = port;
    info.iface = address;
    info.protocols = s_protocols;
    info.user = gw;
    info.options =
        LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_FALLBACK_TO_APPLY_LISTEN_ACCEPT_CONFIG;
    info.listen_accept_role = "raw-skt";
    info.listen_accept_protocol = "sk2-fallback";
    if (!strchr(address, ':'))
        info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
    /* Limits against idle and slow peers. Every connection holds a header buffer from accept
     * until its headers are in: 64 KiB each, allocated as needed. There are as many buffers as
     * connections can be open (the cap, and the few accepted in one burst before the evicted
     * ones are gone), so that no connection ever queues for one (s_admit keeps the count). The
     * buffer is larger than what is served (S_HEADERS_MAX) so that requests between the two
     * get their 431; libwebsockets 4.1 hangs up on the larger ones without an answer. A peer
     * gets SK2_GATEWAY_HEAD_TIMEOUT_MS for its request head (s_sweep; libwebsockets' own 5 s
     * header timer agrees), 10 s for anything else, and 10 s of keep-alive idling. */
    int connections = gw->max_connections + S_BURST + 8; /* + listener, wake-up pipe */
    info.max_http_header_data = 0;
    info.max_http_header_data2 = S_HEADER_BUFFER;
    info.max_http_header_pool = (unsigned short)connections;
    info.timeout_secs = 10;
    info.timeout_secs_ah_idle = SK2_GATEWAY_HEAD_TIMEOUT_MS / 1000;
    info.keepalive_timeout = 10;
    info.fd_limit_per_thread = (unsigned int)connections;
    info.vhost_name = "sk2";
    gw->lws = lws_create_context(&info);
    if (!gw->lws) {
        gw_fox_destroy(&gw->fox);
        free(gw->web);
        gw->web = NULL;
        return SK2_EBIND;
    }
    struct lws_vhost *vhost = lws_get_vhost_by_name(gw->lws, "sk2");
    int bound = vhost ? lws_get_vhost_listen_port(vhost) : -1;
    if (bound <= 0 || bound > 65535) {
        lws_context_destroy(gw->lws);
        gw->lws = NULL;
        gw_fox_destroy(&gw->fox);
        free(gw->web);
        gw->web = NULL;
        return SK2_EBIND;
    }
    gw->port = (uint16_t)bound;
    return 0;
}

void *gw_web_thread(void *arg)
{
    sk2_gateway_t *gw = arg;
    lws_sul_schedule(gw->lws, 0, &gw->web->sweep, s_sweep, S_SWEEP_US);
    while (!atomic_load(&gw->should_stop))
        if (lws_service(gw->lws, 0) < 0)
            break;
    return NULL;
}

void gw_web_wake(sk2_gateway_t *gw)
{
    if (gw->lws)
        lws_cancel_service(gw->lws);
}

void gw_web_destroy(sk2_gateway_t *gw)
{
    if (gw->lws)
        lws_context_destroy(gw->lws);
    gw->lws = NULL;
    gw_fox_destroy(&gw->fox);
    free(gw->web);
    gw->web = NULL;
}
