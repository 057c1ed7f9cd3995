/* Events: what sk2_client_recv and sk2_browser_recv hand out. Private layout, public getters.
 * One record for both, so that a program driving a client and a browser in one loop handles
 * one kind of thing; the server fields are only set by the browser. */
#ifndef SK2_CLIENT_EVENT_H
#define SK2_CLIENT_EVENT_H

#include "proto/txt.h"
#include "sk2/client.h"

struct sk2_event {
    sk2_event_type_t type;
    char *device_id;             /* device events and frames, else NULL */
    sk2_frame_t *frame;          /* FRAME: the decoded frame, owned until taken */
    size_t wire_bytes;           /* FRAME: encoded bytes received */
    const char *codec;           /* FRAME: codec name (static) */
    int64_t latency_us;          /* FRAME: capture to decoded, microseconds; -1 if unknown */
    uint64_t gap;                /* FRAME: frames missed just before this one */
    void *wire_msg;              /* FRAME (streams endpoint): the zmsg_t it came in, owned */
    const uint8_t *wire_header;  /* FRAME: its frame header, inside wire_msg */
    size_t wire_header_size;     /* bytes of wire_header */
    const uint8_t *wire_payload; /* FRAME: its encoded payload (wire_bytes long), inside wire_msg */
    char *json;                  /* STATS: the reply, owned */
    int64_t rtt_us;              /* PONG, COMMAND_DONE: round trip, microseconds */
    int error;                   /* DISCONNECTED/ERROR: SK2_E* cause */
    char *reason;                /* DISCONNECTED/ERROR/RECONNECTING: text, else NULL */
    int64_t outage_us;           /* RECONNECTED: how long the link was down, microseconds */
    int64_t lost_at_us;          /* RECONNECTING/RECONNECTED: wall-clock time of the loss */
    char *server_name;           /* SERVER_*: instance name */
    char *endpoint;              /* SERVER_*: tcp://<address>:<port> */
    char *host;                  /* SERVER_*: SRV target */
    uint16_t port;               /* SERVER_*: SRV port */
    char **addresses;            /* SERVER_*: distinct numeric addresses */
    size_t address_count;        /* entries in addresses */
    sk2_txt_t *txt;              /* SERVER_*: TXT pairs, or NULL */
    char *command_id;            /* COMMAND_DONE: the command's id, owned */
    char *command_code;          /* COMMAND_DONE: the refusal's code, owned; NULL if none */
    unsigned command_sends;      /* COMMAND_DONE: times the command was sent */
    struct sk2_event *next;      /* the client's queue */
};

/* A first-in first-out queue of events, linked through their `next`. Zero-initialised is
 * empty. The client and the browser each keep one for the events ready for their caller. */
typedef struct {
    sk2_event_t *head; /* oldest, handed out first */
    sk2_event_t *tail;
} sk2_event_queue_t;

/* Appends an event (the queue owns it). A NULL event (out of memory) is ignored: it is lost,
 * the owner carries on. */
void sk2_event_queue_push(sk2_event_queue_t *queue, sk2_event_t *event);
/* Takes out the oldest event (the caller owns it), or NULL when empty. */
sk2_event_t *sk2_event_queue_pop(sk2_event_queue_t *queue);
/* Destroys every event left. */
void sk2_event_queue_clear(sk2_event_queue_t *queue);

/* A new event of `type` with an optional device id and reason (copied). NULL on OOM. */
sk2_event_t *sk2_event_new(sk2_event_type_t type, const char *device_id, int error,
                           const char *reason);

#endif
