/* What the gateway's front end, client thread (gateway.c, upstream.c) and web thread (web.c)
 * share. Private to libsk2.
 *
 * The shared part is small on purpose: the newest shot of every stream (slots), the JSON that
 * describes servers and devices (state) and their figures (stats), each replaced whole and
 * never changed once published, all under one mutex held only to swap or take a reference;
 * and counters as relaxed atomics. The client thread writes slots, state and stats; the web
 * thread writes only the want-counts of slots. Each side wakes the other: the client thread
 * with lws_cancel_service(), the web thread through the wake pipe. */
#ifndef SK2_GATEWAY_IMPL_H
#define SK2_GATEWAY_IMPL_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gateway/http_auth.h"
#include "gateway/shot.h"
#include "sk2/gateway.h"

struct lws_context;
struct gw_web;
typedef struct gw_fox gw_fox_t;

/* The newest frame of one stream of one device. */
typedef struct {
    char key[GW_KEY_MAX + 1]; /* the device's key, "s<server number>:<device id>" */
    sk2_stream_kind_t kind;
    gw_shot_t *latest;     /* newest shot, or NULL before the first */
    int64_t max_age_us;    /* a newest shot older than this is stale (client thread sets) */
    int ws_wanted;         /* WebSockets subscribed to it now (web thread writes) */
    int fox_wanted;        /* Foxglove subscriptions that need it now (web thread writes) */
    int64_t http_until_us; /* an HTTP request wanted it: keep it subscribed until then
                              (monotonic; web thread writes) */
} gw_slot_t;

#define GW_ENDPOINT_MAX 1024
/* How long an HTTP request for a stream keeps the gateway subscribed to it. */
#define GW_HTTP_LEASE_US 15000000

typedef struct {
    atomic_uint_fast64_t frames_received;
    atomic_uint_fast64_t frames_sent;
    atomic_uint_fast64_t frames_skipped;
    atomic_uint_fast64_t frames_rejected;
    atomic_uint_fast64_t http_requests;
    atomic_uint_fast64_t http_client_errors;
    atomic_uint websockets;
    atomic_uint servers;
    atomic_uint devices;
    atomic_uint http_connections;           /* HTTP and WebSocket connections open now */
    atomic_uint_fast64_t http_evicted;      /* idle connections closed to admit a new one */
    atomic_uint_fast64_t http_refused;      /* connections turned away with 503 (all busy) */
    atomic_uint_fast64_t http_timed_out;    /* closed for not sending a request head in time */
    atomic_uint_fast64_t http_unauthorized; /* requests answered 401 (token missing or wrong) */
    atomic_uint servers_lost;     /* given servers connected once, not now, still retried */
    atomic_uint servers_given_up; /* given servers no longer retried (give_up_after_ms) */
} gw_counters_t;

typedef struct gw_upstream gw_upstream_t;

/* Keyed commands from the page (docs/http-api.md, "Keyed commands"). The web thread fills a
 * free entry (QUEUED) and wakes the client thread, which sends it with sk2_client_command
 * (SENT) and, when the command ends, writes the answer the page gets (DONE) and wakes the web
 * thread; that sends it to the WebSocket of `socket` and frees the entry, or just frees it
 * when that socket has gone. State changes happen under the lock; the fields of a SENT entry
 * belong to the client thread. The table is small on purpose: it bounds what is in flight. */
#define GW_COMMANDS_MAX    16 /* commands in flight in the gateway */
#define GW_COMMAND_KEY_MAX 32 /* longest key name */
#define GW_COMMAND_ID_MAX  64 /* longest sk2 client command id (SK2_CLIENT_COMMAND_ID_MAX) */

typedef enum {
    GW_COMMAND_FREE = 0,
    GW_COMMAND_QUEUED, /* web thread wrote it; the client thread has not taken it yet */
    GW_COMMAND_SENT,   /* handed to the server's client */
    GW_COMMAND_DONE,   /* answer written; the web thread sends it and frees the entry */
} gw_command_state_t;

typedef struct {
    gw_command_state_t state;
    uint64_t socket;                  /* serial of the WebSocket that sent it */
    long long ref;                    /* the page's number for it, echoed */
    char device[GW_KEY_MAX + 1];      /* the gateway's device key */
    char key[GW_COMMAND_KEY_MAX + 1]; /* the command's key */
    char *value_json;                 /* the value as JSON text, or NULL */
    int server_number;                /* SENT: the server it went to */
    char id[GW_COMMAND_ID_MAX + 1];   /* SENT: the client's id for it */
    char *answer;                     /* DONE: the command-done message, JSON text */
} gw_command_t;

struct sk2_gateway {
    /* Set before start, read-only afterwards. */
    char *endpoints[SK2_GATEWAY_SERVERS_MAX]; /* servers given by endpoint */
    size_t endpoint_count;
    bool is_browsing;       /* follow discovered servers too */
    int refresh_ms;         /* `who` interval */
    int max_age_ms;         /* newest frame older than this: 503; 0 = from the stream's rate */
    size_t max_frame_bytes; /* every client's frame budget (sk2/limits.h) */
    char *keys;             /* every client's key pair (path), NULL unless secure */
    char *server_key;       /* the servers' public key (text or path), with keys */
    char token[GW_TOKEN_MAX + 1]; /* every request must carry it, when has_token */
    bool has_token;
    bool is_insecure;         /* a non-loopback address may be bound without a token */
    int max_connections;      /* HTTP and WebSocket connections open at once */
    int64_t give_up_after_ms; /* stop retrying a given server after this; 0: never */
    char url[128];            /* "http://address:port/" */
    uint16_t port;            /* bound HTTP port */
    bool is_started;
    struct lws_context *lws; /* the listener, made by bind, serviced by the web thread */
    struct gw_web *web;      /* the web thread's own state (web.c) */
    gw_fox_t *fox;           /* the web thread's Foxglove state (foxglove.c) */

    /* Shared, under lock. */
    pthread_mutex_t lock;
    gw_slot_t *slots;
    size_t slot_count;
    size_t slot_cap;
    json_t *state;          /* {"servers": [...], "devices": [...]}, immutable once set */
    uint64_t state_version; /* bumps with every new state */
    json_t *stats;          /* {"gateway": {...}, "streams": [...], "servers": [...]} */
    uint64_t stats_version;

    gw_command_t commands[GW_COMMANDS_MAX];

    gw_counters_t counters;
    atomic_bool should_stop;
    int wake_pipe[2]; /* web thread -> client thread: wants changed; front end: stop */
    pthread_t client_thread;
    pthread_t web_thread;
    bool has_client_thread;
    bool has_web_thread;
};

/* ---- web.c: the libwebsockets side ---- */

/* Creates the listener on address:port. 0, SK2_EBIND, SK2_EINVAL. Front end thread. */
int gw_web_bind(sk2_gateway_t *gw, const char *address, uint16_t port);
/* The web thread's body. */
void *gw_web_thread(void *arg);
/* Wakes the web thread (thread-safe): something new to send. */
void gw_web_wake(sk2_gateway_t *gw);
/* Frees the listener after the web thread has stopped. */
void gw_web_destroy(sk2_gateway_t *gw);

/* ---- upstream.c: the client thread ---- */
void *gw_upstream_thread(void *arg);

/* ---- gateway.c: shared helpers ---- */

/* The slot of a device's stream by device key, or NULL. Caller holds the lock. */
gw_slot_t *gw_slot_find(sk2_gateway_t *gw, const char *key, sk2_stream_kind_t kind);
/* Wakes the client thread (any thread). */
void gw_wake_upstream(sk2_gateway_t *gw);
/* Empties a command entry (frees its texts). Caller holds the lock. */
void gw_command_clear(gw_command_t *command);
/* "depth", "ir", "color" to a kind; 0 for anything else. */
sk2_stream_kind_t gw_kind_from_name(const char *name, size_t len);

#endif
