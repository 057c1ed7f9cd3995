/* The server's table of client flow states: what each sk2 client that sends `flow` messages
 * (docs/protocol.md) has paused, how many frames it lets queue and how many its queue dropped.
 * The server cannot see this from its stream sockets (a paused client is simply one that does
 * not subscribe), so clients say it over the control socket. Pure C on jansson values; the
 * server actor alone owns a table. Private to libsk2. */
#ifndef SK2_SERVER_CLIENTS_H
#define SK2_SERVER_CLIENTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sk2/frame.h"

/* Clients remembered at once; a new client beyond this replaces the one heard from longest
 * ago (counted as evicted). */
#define SK2_CLIENTS_MAX 256
/* Clients listed one by one in `stats` (paused ones first), so that the reply stays well inside
 * the control payload limit; the counts cover every client. */
#define SK2_CLIENTS_LISTED 100
/* Paused streams one `flow` may list. */
#define SK2_CLIENTS_PAUSED_MAX 64
/* Longest client id, bytes. */
#define SK2_CLIENTS_ID_MAX 64
/* Largest queue bound a client may announce (the client's own limit too). */
#define SK2_CLIENTS_QUEUE_MAX 1024

typedef struct sk2_clients sk2_clients_t;

/* A new, empty table (NULL on out of memory). */
sk2_clients_t *sk2_clients_new(void);
void sk2_clients_destroy(sk2_clients_t **self_p);

/* Applies one `flow` payload heard at now_us (monotonic): the whole payload is checked before
 * anything changes. Returns 0 and the reply payload in *reply (owned by the caller), or
 * SK2_EPROTO with a reason fit to send back in why (the table is then unchanged). */
int sk2_clients_update(sk2_clients_t *self, const json_t *payload, int64_t now_us, json_t **reply,
                       char *why, size_t why_size);

/* Appends one entry of a `flow` reply's `sequences` (docs/protocol.md "The flow request"): where
 * a device's stream is, as the number of its newest frame (kept within JSON's exact integers).
 * The server and the relay both answer `flow` with it. */
void sk2_clients_add_sequence(json_t *sequences, const char *device, sk2_stream_kind_t kind,
                              uint64_t sequence);

/* Forgets the clients not heard from within their expiry (three heartbeats and a second). */
void sk2_clients_expire(sk2_clients_t *self, int64_t now_us);

/* The `clients` section of `stats` (after expiring): counts, then a record per client, at most
 * SK2_CLIENTS_LISTED of them. */
json_t *sk2_clients_json(sk2_clients_t *self, int64_t now_us);

/* Clients in the table now. */
size_t sk2_clients_count(const sk2_clients_t *self);

#endif
