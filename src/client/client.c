/* The client. Everything happens inside sk2_client_recv(): timers (heartbeat, response
 * timeout) are checked, sockets polled, replies matched to requests and frames decoded, and
 * each result becomes an event in a small queue. No thread is started, so the client fits in
 * any event loop and in language bindings.
 *
 * The control socket is a DEALER speaking to the server's REP (an empty delimiter frame
 * first). Unlike REQ it lets a request time out without wedging the socket, and requests may
 * be pipelined: REP answers them in order, so a FIFO of pending requests matches replies. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "client/estimator.h"
#include "client/event.h"
#include "client/loop.h"
#include "client/ring.h"
#include "core/random.h"
#include "core/log_internal.h"
#include "core/random.h"
#include "proto/clock.h"
#include "proto/curve.h"
#include "proto/header.h"
#include "proto/me.h"
#include "proto/msg.h"
#include "proto/pose.h"
#include "proto/socket.h"
#include "sk2/client.h"
#include "sk2/codec.h"
#include "sk2/device.h"
#include "sk2/error.h"
#include "sk2/recording.h"
#include "sk2/limits.h"

#define S_MAX_PENDING       16    /* requests in flight at once */
#define S_MAX_ENDPOINT      1024  /* longest endpoint string accepted */
#define S_SUB_HWM           4     /* frames queued per stream before libzmq drops */
#define S_MAX_SUBSCRIPTIONS 16    /* (stream, codec) pairs per device */
#define S_RETRY_FIRST_MS    100   /* reconnection: the first interval between attempts */
#define S_RETRY_MAX_MS      5000  /* reconnection: the interval doubles up to this */
#define S_KEEPALIVE_IDLE_S  5     /* TCP keepalive: the first probe after this much silence... */
#define S_KEEPALIVE_INTVL_S 1     /* ...then one a second... */
#define S_KEEPALIVE_CNT     3     /* ...and the connection is dropped after this many unanswered */
#define S_KINDS_ALL         0x1eu /* pause mask bits of every stream kind (1 << kind, 1..4) */
#define S_DRAIN_MAX         256   /* messages read off one socket per poll with a queue bound */
#define S_FLOW_PAUSED_MAX   64    /* paused streams one `flow` lists (the server's limit) */
#define S_CATCHUP_MS        5     /* queue bound: wait this long for more behind a full socket */
#define S_CATCHUP_TOTAL_MS  50    /* ...and no longer than this in all per turn */
#define S_AWAY_MS           100   /* a caller this long between turns was away (busy) */

typedef struct {
    sk2_msg_type_t type; /* what was asked */
    int64_t sent_us;     /* monotonic time it was sent */
    bool is_sync;        /* a `flow` whose reply sets the subscriptions' floors */
} s_pending_t;

/* A keyed command awaiting its answer (sk2_client_command). */
typedef struct {
    char id[SK2_CLIENT_COMMAND_ID_MAX + 1];
    json_t *payload;      /* what is sent, owned; NULL: free slot */
    int64_t first_us;     /* monotonic time of the first send (or of the call) */
    int64_t next_send_us; /* when to send it again */
    int64_t expires_us;   /* when its ttl runs out */
    unsigned sends;       /* times sent so far */
} s_command_t;

typedef struct {
    sk2_stream_kind_t kind;   /* the stream */
    const sk2_codec_t *codec; /* in this encoding */
    bool has_last;            /* whether last_sequence is set */
    uint64_t last_sequence;   /* of the newest frame received, to see gaps */
    sk2_ring_t ring;          /* frames read but not handed out, with a queue bound */
    bool has_floor;           /* whether frames numbered below floor are stale */
    uint64_t floor;           /* the oldest frame still worth handing out after an absence */
} s_subscription_t;

typedef struct {
    char *id;             /* device id from `me` */
    char *depth;          /* its version-1 depth endpoint, or NULL */
    char *streams;        /* its streams endpoint (sk2 servers), or NULL */
    zsock_t *sub;         /* SUB on `depth` while depth is enabled */
    bool wants_depth;     /* depth enabled by the caller: reopened after a reconnection */
    zsock_t *streams_sub; /* SUB on `streams` while anything is subscribed */
    uint64_t received;    /* frames received on `depth`: v1 carries no sequence numbers */
    uint32_t warned;      /* limit reasons already logged for this device (s_reject) */
    unsigned paused;      /* streams paused (bit 1 << kind): unsubscribed, still listed */
    s_subscription_t subscriptions[S_MAX_SUBSCRIPTIONS];
    size_t subscription_count;
} s_device_t;

struct sk2_client {
    char *codecs_text;                  /* buffer behind sk2_client_stream_codecs */
    zsock_t *control;                   /* DEALER, while connected */
    zsock_t *monitor;                   /* PAIR: control's disconnections, with reconnect on */
    unsigned monitor_number;            /* makes each monitor's inproc endpoint unique */
    char *endpoint;                     /* normalised control endpoint */
    bool is_connected;                  /* between connect and disconnect/loss */
    bool has_me;                        /* a valid `me` arrived since connect */
    int heartbeat_ms;                   /* interval of `who` heartbeats */
    int response_timeout_ms;            /* how long a request may wait for its reply */
    int64_t next_heartbeat_us;          /* monotonic time of the next heartbeat */
    s_pending_t pending[S_MAX_PENDING]; /* ring of requests awaiting replies */
    size_t pending_head;                /* index of the oldest */
    size_t pending_count;               /* entries in the ring */
    sk2_me_t *me;                       /* last valid `me` */
    char *me_json;                      /* its text */
    s_device_t *devices;                /* as listed in `me` */
    size_t device_count;                /* entries in devices */
    size_t next_device;                 /* round-robin start for reading streams */
    sk2_event_queue_t queue;            /* events ready for the caller */
    sk2_client_handler_fn *handler;     /* for dispatch */
    void *handler_arg;
    bool is_skipping_decode;  /* sk2_client_set_decode(false): streams frames stay encoded */
    size_t max_frame_bytes;   /* the frame budget (include/sk2/limits.h) */
    uint64_t frames_rejected; /* frames dropped by the limits, for sk2_client_frames_rejected */
    int64_t next_size_who_us; /* monotonic: no `who` for a frame of another size before then */
    sk2_curve_t curve;        /* our keys and the server's, when secure (every socket) */
    sk2_curve_watch_t *watch; /* the control socket's handshakes, while connected securely */
    bool is_reconnect_on;     /* sk2_client_set_reconnect */
    int64_t give_up_after_ms; /* sk2_client_set_give_up_after_ms; 0: never */
    bool is_reconnecting;     /* between RECONNECTING and RECONNECTED */
    int64_t lost_us;          /* monotonic time the loss was noticed */
    int64_t lost_wall_us;     /* the same, wall clock, for the events */
    int retry_ms;             /* the interval before the attempt after the next */
    int64_t next_attempt_us;  /* monotonic time of the next attempt */
    unsigned jitter_seed;     /* rand_r state for the jitter */
    s_command_t commands[SK2_CLIENT_COMMAND_MAX]; /* awaiting answers, in no order */
    size_t command_count;                         /* slots in use */
    uint64_t command_prefix;                      /* random, so ids differ between clients */
    uint64_t command_number;                      /* counts this client's commands */
    sk2_client_resolve_fn *resolve;               /* sk2_client_set_resolver */
    void *resolve_arg;
    void (*resolve_free)(void *arg);
    char id[33];             /* random hex id naming this client in `flow` messages */
    unsigned paused_default; /* pause mask given to devices that appear (pause of all) */
    unsigned queue_frames;   /* the queue bound per subscription; 0: libzmq's queues only */
    uint64_t arrivals;       /* frames put in a ring so far: their order across rings */
    uint64_t frames_dropped; /* frames the rings dropped (oldest first) */
    bool is_flow_on;         /* pause or a queue bound was used: tell the server */
    bool is_flow_due;        /* a change not yet sent */
    bool is_flow_refused;    /* the server knows no `flow` (version 1, older sk2) */
    bool is_syncing;         /* a `flow` asking where the streams are awaits its reply */
    int64_t sync_until_us;   /* monotonic time after which frames are handed out regardless */
    int64_t turn_end_us;     /* monotonic time the last poll returned: tells an absence */
    sk2_estimator_t clock;   /* the server's clock against ours (estimator.h) */
    bool is_clock_on;        /* the server's `me` says it answers clock exchanges */
    bool is_clock_refused;   /* it answered one with an error: not asked again */
    bool is_clock_pending;   /* an exchange awaits its reply (at most one at a time) */
    int64_t clock_t1_us;     /* that exchange's send time, wall clock */
    int clock_burst;         /* exchanges still to send back to back */
    int64_t next_clock_us;   /* monotonic time of the next exchange */
    sk2_clock_discipline_t clock_discipline; /* what the last reply said of the server's clock */
};

/* ---- Event queue -------------------------------------------------------------------------- */

static void s_push_new(sk2_client_t *self, sk2_event_type_t type, const char *device_id, int error,
                       const char *reason)
{
    sk2_event_queue_push(&self->queue, sk2_event_new(type, device_id, error, reason));
}

/* ---- Devices and streams ------------------------------------------------------------------ */

static void s_device_close(s_device_t *device)
{
    zsock_destroy(&device->sub);
}

static void s_device_free(s_device_t *device)
{
    for (size_t i = 0; i < device->subscription_count; i++)
        sk2_ring_clear(&device->subscriptions[i].ring);
    s_device_close(device);
    zsock_destroy(&device->streams_sub);
    free(device->id);
    free(device->depth);
    free(device->streams);
}

/* Every socket's guard against a silent path (packets dropped, no reset), on which libzmq
 * would otherwise wait forever: TCP keepalive, done by the kernel, drops a connection that
 * stopped answering after about 8 s without data, and libzmq connects again. (The control
 * path is also watched by the `who` heartbeat and the response timeout.) Not libzmq's ZMTP
 * heartbeats: libzmq 4.3 can abort or corrupt memory when one resets a connection whose input
 * is stopped ("!_io_error", zeromq/libzmq#3937, #4364), which a SUB with a small RCVHWM often
 * is; `sk2 view` crashed that way as servers stopped. */
static int s_set_keepalive(zsock_t *socket)
{
    int rc = sk2_socket_set_int(socket, ZMQ_TCP_KEEPALIVE, 1);
    if (rc == 0)
        rc = sk2_socket_set_int(socket, ZMQ_TCP_KEEPALIVE_IDLE, S_KEEPALIVE_IDLE_S);
    if (rc == 0)
        rc = sk2_socket_set_int(socket, ZMQ_TCP_KEEPALIVE_INTVL, S_KEEPALIVE_INTVL_S);
    if (rc == 0)
        rc = sk2_socket_set_int(socket, ZMQ_TCP_KEEPALIVE_CNT, S_KEEPALIVE_CNT);
    return rc;
}

/* A SUB socket that reads messages up to the wire size of the frame budget: anything a frame
 * within the budget can be reaches the client and is checked there, with a clear reason,
 * instead of libzmq dropping the connection and reconnecting in a silent loop. */
static zsock_t *s_sub_new(const char *endpoint, size_t max_frame_bytes, const sk2_curve_t *curve,
                          int hwm)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    if (!sub)
        return NULL;
    if (sk2_socket_set_curve_client(sub, curve) != 0 ||
        sk2_socket_set_int(sub, ZMQ_RCVHWM, hwm) != 0 ||
        sk2_socket_set_maxmsgsize(sub, sk2_limit_wire_bytes(max_frame_bytes)) != 0 ||
        sk2_socket_set_int(sub, ZMQ_LINGER, 0) != 0 || s_set_keepalive(sub) != 0 ||
        zsock_connect(sub, "%s", endpoint) != 0)
        zsock_destroy(&sub);
    return sub;
}

static int s_topic_subscribe(zsock_t *sub, const s_subscription_t *subscription, bool on)
{
    char topic[SK2_TOPIC_MAX];
    size_t length = sk2_topic_format(subscription->kind, subscription->codec, topic, sizeof topic);
    return sk2_socket_set_bytes(sub, on ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, topic, length);
}

/* (Re)connects the streams socket and subscribes every topic the device has. Forgets the last
 * sequence numbers unless keep_sequences: after a reconnection they tell frames missed. */
static int s_streams_reopen(s_device_t *device, size_t max_frame_bytes, const sk2_curve_t *curve,
                            bool keep_sequences, int hwm)
{
    zsock_destroy(&device->streams_sub);
    if (device->subscription_count == 0)
        return 0;
    if (!device->streams)
        return SK2_ENOTFOUND;
    device->streams_sub = s_sub_new(device->streams, max_frame_bytes, curve, hwm);
    if (!device->streams_sub)
        return SK2_ECONNECT;
    for (size_t i = 0; i < device->subscription_count; i++) {
        bool is_paused = device->paused & (1u << device->subscriptions[i].kind);
        if (!is_paused &&
            s_topic_subscribe(device->streams_sub, &device->subscriptions[i], true) != 0) {
            zsock_destroy(&device->streams_sub);
            return SK2_ECONNECT;
        }
        if (!keep_sequences) {
            device->subscriptions[i].has_last = false;
            device->subscriptions[i].has_floor = false;
        }
    }
    return 0;
}

static int s_streams_open(s_device_t *device, size_t max_frame_bytes, const sk2_curve_t *curve,
                          int hwm)
{
    return s_streams_reopen(device, max_frame_bytes, curve, false, hwm);
}

/* The streams socket's own queue: with a queue bound of N below S_SUB_HWM, N frames, so that
 * what waits in libzmq below the ring is no more than the ring would keep (taken by sockets
 * opened after the bound is set). */
static int s_streams_hwm(const sk2_client_t *self)
{
    return self->queue_frames > 0 && self->queue_frames < S_SUB_HWM ? (int)self->queue_frames
                                                                    : S_SUB_HWM;
}

static s_device_t *s_find_device(const sk2_client_t *self, const char *id)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (self->devices[i].id && strcmp(self->devices[i].id, id) == 0)
            return &self->devices[i];
    return NULL; /* ids are NULL only in records already moved into a new list */
}

static int s_device_open(s_device_t *device, size_t max_frame_bytes, const sk2_curve_t *curve)
{
    if (device->sub)
        return 0;
    if (!device->depth)
        return SK2_ENOTFOUND;
    device->sub = s_sub_new(device->depth, max_frame_bytes, curve, S_SUB_HWM);
    if (!device->sub)
        return SK2_ECONNECT;
    if (!(device->paused & (1u << SK2_STREAM_DEPTH)) &&
        sk2_socket_set_bytes(device->sub, ZMQ_SUBSCRIBE, "", 0) != 0) {
        zsock_destroy(&device->sub);
        return SK2_ECONNECT;
    }
    return 0;
}

/* ---- Connection ----------------------------------------------------------------------------- */

/* libzmq sends monitor events with a blocking send on its I/O thread, and closing a connected
 * socket reports its disconnection: were the monitor's reader gone first, that send would wait
 * for ever and stall every socket of the process (a relay stopped answering when a pushed
 * server vanished). So the monitor stops, then its reader goes, then the socket. */
static void s_control_close(sk2_client_t *self)
{
    sk2_curve_watch_destroy(&self->watch); /* stops its own monitor first */
    if (self->monitor && self->control)
        zmq_socket_monitor(zsock_resolve(self->control), NULL, 0);
    zsock_destroy(&self->monitor);
    zsock_destroy(&self->control);
}

/* With reconnection on, a server that closes the connection (it stopped, or its host
 * reset it) is known at once from libzmq's monitor, instead of after the response timeout;
 * ZeroMQ would otherwise reconnect underneath and hide a restart whose `me` then looks like
 * any change of devices. Best effort: without a monitor the timeout still notices. */
static void s_monitor_open(sk2_client_t *self)
{
    if (self->watch)
        return; /* the CURVE handshake watch holds the monitor until the handshake succeeds */
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://sk2-client-%p-%u", (void *)self,
             self->monitor_number++);
    if (zmq_socket_monitor(zsock_resolve(self->control), endpoint, ZMQ_EVENT_DISCONNECTED) != 0)
        return;
    self->monitor = zsock_new(ZMQ_PAIR);
    if (self->monitor && zsock_connect(self->monitor, "%s", endpoint) != 0)
        zsock_destroy(&self->monitor);
    if (!self->monitor)
        zmq_socket_monitor(zsock_resolve(self->control), NULL, 0);
}

/* Reads the monitor's events; true if the control connection went down. */
static bool s_monitor_read(sk2_client_t *self)
{
    bool is_down = false;
    while (self->monitor && (zsock_events(self->monitor) & ZMQ_POLLIN)) {
        zmsg_t *event = zmsg_recv(self->monitor);
        if (!event)
            break;
        zframe_t *head = zmsg_first(event);
        if (head && zframe_size(head) >= 2) {
            const uint8_t *data = zframe_data(head);
            uint16_t type = (uint16_t)(data[0] | data[1] << 8);
            is_down |= (type & ZMQ_EVENT_DISCONNECTED) != 0;
        }
        zmsg_destroy(&event);
    }
    return is_down;
}

static void s_command_end(sk2_client_t *self, s_command_t *command, int error, const char *reason,
                          json_t *reply);

/* Forgets what was known of the server's clock (a new connection, or the same server back
 * after an outage, maybe restarted), and with is_on starts a burst of exchanges. */
static void s_clock_restart(sk2_client_t *self, bool is_on)
{
    sk2_estimator_reset(&self->clock);
    self->is_clock_on = is_on;
    self->is_clock_refused = false;
    self->is_clock_pending = false;
    self->clock_burst = SK2_CLIENT_CLOCK_BURST_MAX;
    self->next_clock_us = sk2_clock_mono_us();
    self->clock_discipline = (sk2_clock_discipline_t){.maxerror_us = -1, .esterror_us = -1};
}

static void s_teardown(sk2_client_t *self)
{
    for (size_t i = 0; i < SK2_CLIENT_COMMAND_MAX; i++)
        if (self->commands[i].payload)
            s_command_end(self, &self->commands[i], SK2_ELOST,
                          "the client disconnected before an answer came", NULL);
    for (size_t i = 0; i < self->device_count; i++)
        s_device_free(&self->devices[i]);
    free(self->devices);
    self->devices = NULL;
    self->device_count = 0;
    sk2_me_destroy(&self->me);
    free(self->me_json);
    self->me_json = NULL;
    s_control_close(self);
    free(self->endpoint);
    self->endpoint = NULL;
    self->pending_count = 0;
    self->is_syncing = false;
    self->is_connected = false;
    self->has_me = false;
    self->is_reconnecting = false;
    s_clock_restart(self, false);
}

static char *s_normalise(const char *endpoint);

/* A DEALER to a control endpoint, secure if the client is (with a watch on its handshakes in
 * self->watch, started before it connects); NULL if libzmq refuses (logged at debug level). */
static zsock_t *s_control_new(sk2_client_t *self, const char *endpoint)
{
    zsock_t *control = zsock_new(ZMQ_DEALER);
    if (!control)
        return NULL;
    sk2_curve_watch_destroy(&self->watch);
    if (self->curve.is_on)
        self->watch = sk2_curve_watch_new(control);
    if (sk2_socket_set_curve_client(control, &self->curve) != 0 ||
        (self->curve.is_on && !self->watch) || sk2_socket_set_int(control, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_maxmsgsize(control, SK2_MSG_MAX_PAYLOAD + 1024) != 0 ||
        s_set_keepalive(control) != 0 || zsock_connect(control, "%s", endpoint) != 0) {
        SK2_DEBUG("client", "cannot connect to %s: %s", endpoint, zmq_strerror(zmq_errno()));
        sk2_curve_watch_destroy(&self->watch);
        zsock_destroy(&control);
    }
    return control;
}

static int s_send(sk2_client_t *self, sk2_msg_type_t type, const json_t *payload)
{
    if (self->pending_count == S_MAX_PENDING)
        return SK2_EAGAIN;
    if (!self->control)
        return SK2_ECONNECT;
    int rc = sk2_msg_send(zsock_resolve(self->control), true, type, payload);
    /* The DEALER refuses a message only when it has no pipe to the server (libzmq ends the
     * pipe at once when the handshake is refused, e.g. a plain client at a CURVE server) or
     * the pipe is full. Either way no answer will come: the request counts as sent and lost,
     * so the response timeout reports the server as it would for a loss on the wire, instead
     * of the outcome depending on whether the refusal beat the first send. */
    if (rc == SK2_EAGAIN)
        SK2_DEBUG("client", "%s to %s not queued: no live pipe", sk2_msg_type_name(type),
                  self->endpoint ? self->endpoint : "server");
    else if (rc != 0)
        return rc;
    size_t slot = (self->pending_head + self->pending_count++) % S_MAX_PENDING;
    self->pending[slot] = (s_pending_t){.type = type, .sent_us = sk2_clock_mono_us()};
    return 0;
}

/* The interval before the next attempt: retry_ms shortened at random by up to a fifth, so
 * that the clients of a restarted server do not all knock at once. */
static int64_t s_jittered_us(sk2_client_t *self)
{
    int64_t us = (int64_t)self->retry_ms * 1000;
    return us - (int64_t)(rand_r(&self->jitter_seed) % (unsigned)(us / 5 + 1));
}

/* One reconnection attempt: a fresh control socket (so that nothing queued for the old
 * connection, and no half-dead TCP connection, is reused), to the endpoint the resolver names
 * if there is one, and a `who`. */
static void s_attempt(sk2_client_t *self, int64_t now_us)
{
    s_control_close(self);
    self->pending_count = 0;
    self->is_syncing = false;
    self->is_clock_pending = false;
    if (self->resolve) {
        char found[S_MAX_ENDPOINT + 1];
        char *normal = NULL;
        if (self->resolve(self->resolve_arg, found, sizeof found) == 0 &&
            (normal = s_normalise(found)) && strcmp(normal, self->endpoint) != 0) {
            SK2_INFO("client", "server %s is now at %s", self->endpoint, normal);
            free(self->endpoint);
            self->endpoint = normal;
            normal = NULL;
        }
        free(normal);
    }
    self->control = s_control_new(self, self->endpoint);
    if (self->control) {
        s_monitor_open(self);
        (void)s_send(self, SK2_MSG_WHO, NULL); /* a failure is another attempt later */
    }
    self->next_attempt_us = now_us + s_jittered_us(self);
    self->retry_ms = self->retry_ms * 2 > S_RETRY_MAX_MS ? S_RETRY_MAX_MS : self->retry_ms * 2;
}

/* The server went silent with reconnection on: every socket is closed, but the devices, what
 * was subscribed and the last `me` stay, to be restored when the server answers again. */
static void s_start_reconnect(sk2_client_t *self, int error, const char *reason)
{
    SK2_WARN("client", "server %s lost: %s; reconnecting", self->endpoint, reason);
    for (size_t i = 0; i < self->device_count; i++) {
        s_device_close(&self->devices[i]);
        zsock_destroy(&self->devices[i].streams_sub);
    }
    self->is_reconnecting = true;
    self->has_me = false;
    self->lost_us = sk2_clock_mono_us();
    self->lost_wall_us = sk2_clock_wall_us();
    self->retry_ms = S_RETRY_FIRST_MS;
    sk2_event_t *event = sk2_event_new(SK2_EVENT_RECONNECTING, NULL, error, reason);
    if (event)
        event->lost_at_us = self->lost_wall_us;
    sk2_event_queue_push(&self->queue, event);
    s_attempt(self, self->lost_us);
}

static void s_lost(sk2_client_t *self, int error, const char *reason)
{
    /* A refused key stays refused: retrying would only knock again, so that ends the link. */
    if (self->is_reconnect_on && error != SK2_EAUTH) {
        s_start_reconnect(self, error, reason);
        return;
    }
    SK2_WARN("client", "server %s lost: %s", self->endpoint, reason);
    s_teardown(self);
    s_push_new(self, SK2_EVENT_DISCONNECTED, NULL, error, reason);
}

static int s_request_with(sk2_client_t *self, sk2_msg_type_t type, const json_t *payload)
{
    if (!self->is_connected)
        return SK2_ESTATE;
    /* Every attempt sends its own `who`; anything else waits for the server to be back. */
    if (self->is_reconnecting)
        return type == SK2_MSG_WHO ? 0 : SK2_EAGAIN;
    return s_send(self, type, payload);
}

static int s_request(sk2_client_t *self, sk2_msg_type_t type)
{
    return s_request_with(self, type, NULL);
}

static bool s_who_pending(const sk2_client_t *self)
{
    for (size_t i = 0; i < self->pending_count; i++)
        if (self->pending[(self->pending_head + i) % S_MAX_PENDING].type == SK2_MSG_WHO)
            return true;
    return false;
}

/* Accepts "tcp://h:p", "ipc://...", "inproc://..." or "h:p" (taken as tcp). */
static char *s_normalise(const char *endpoint)
{
    static const char *const verbatim[] = {"ipc://", "inproc://"};
    if (!endpoint || !*endpoint || strlen(endpoint) > S_MAX_ENDPOINT)
        return NULL;
    for (size_t i = 0; i < sizeof verbatim / sizeof verbatim[0]; i++) {
        size_t prefix = strlen(verbatim[i]);
        if (strncmp(endpoint, verbatim[i], prefix) == 0)
            return endpoint[prefix] ? strdup(endpoint) : NULL;
    }
    const char *rest = strncmp(endpoint, "tcp://", 6) == 0 ? endpoint + 6 : endpoint;
    if (strstr(rest, "://"))
        return NULL; /* another transport */
    const char *colon = strrchr(rest, ':');
    if (!colon || colon == rest)
        return NULL;
    char *end = NULL;
    long port = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
        return NULL;
    for (const char *p = rest; p < colon; p++)
        if (*p == '/' || (unsigned char)*p < 0x21)
            return NULL;
    size_t size = strlen(rest) + 7;
    char *normal = malloc(size);
    if (normal)
        snprintf(normal, size, "tcp://%s", rest);
    return normal;
}

/* ---- Replies -------------------------------------------------------------------------------- */

static bool s_moved(const char *before, const char *after)
{
    return (before == NULL) != (after == NULL) || (before && strcmp(before, after) != 0);
}

static void s_apply_me(sk2_client_t *self, sk2_me_t *me)
{
    s_device_t *devices = calloc(me->device_count ? me->device_count : 1, sizeof *devices);
    if (!devices) {
        sk2_me_destroy(&me);
        return;
    }
    bool first = !self->has_me;
    /* A client that never had a `me` is connecting, not coming back, even if it retried. */
    bool is_return = self->is_reconnecting && self->me != NULL;
    if (self->is_reconnecting && !is_return) {
        self->is_reconnecting = false;
        self->next_heartbeat_us = sk2_clock_mono_us() + self->heartbeat_ms * 1000LL;
    }
    if (is_return) {
        sk2_event_t *event = sk2_event_new(SK2_EVENT_RECONNECTED, NULL, 0, NULL);
        if (event) {
            event->outage_us = sk2_clock_mono_us() - self->lost_us;
            event->lost_at_us = self->lost_wall_us;
        }
        sk2_event_queue_push(&self->queue, event);
        SK2_INFO("client", "server %s back after %.1f s", self->endpoint,
                 (double)(sk2_clock_mono_us() - self->lost_us) / 1e6);
        self->is_reconnecting = false;
        self->next_heartbeat_us = sk2_clock_mono_us() + self->heartbeat_ms * 1000LL;
    } else if (first) {
        s_push_new(self, SK2_EVENT_CONNECTED, NULL, 0, NULL);
    }
    /* An sk2 server says how large its frames may get: a lower budget here is worth a word,
     * since frames above it will be dropped (and counted) rather than shown. */
    json_t *server_max = json_object_get(me->payload, "max_frame_bytes");
    if (first && !is_return && json_is_integer(server_max) &&
        json_integer_value(server_max) > (json_int_t)self->max_frame_bytes)
        SK2_INFO("client",
                 "server %s sends frames of up to %lld bytes; this client's limit is %zu: "
                 "larger frames will be dropped",
                 self->endpoint, (long long)json_integer_value(server_max), self->max_frame_bytes);
    /* Keep the state (open streams, counters) of devices still listed; note new ones. */
    for (size_t i = 0; i < me->device_count; i++) {
        const char *depth = sk2_me_endpoint(&me->devices[i], "depth");
        const char *streams = sk2_me_endpoint(&me->devices[i], "streams");
        s_device_t *old = s_find_device(self, me->devices[i].id);
        s_device_t *now = &devices[i];
        if (old) {
            *now = *old;
            old->id = NULL; /* moved */
            old->depth = NULL;
            old->sub = NULL;
            old->wants_depth = false;
            old->streams = NULL;
            old->streams_sub = NULL;
            old->subscription_count = 0;
            if (s_moved(now->depth, depth)) {
                bool was_open = now->sub != NULL;
                s_device_close(now);
                free(now->depth);
                now->depth = depth ? strdup(depth) : NULL;
                if (was_open && now->depth)
                    s_device_open(now, self->max_frame_bytes, &self->curve);
            }
            if (s_moved(now->streams, streams)) {
                free(now->streams);
                now->streams = streams ? strdup(streams) : NULL;
                s_streams_open(now, self->max_frame_bytes, &self->curve, s_streams_hwm(self));
            }
            /* Back from an outage every socket was closed: open again what was wanted. A
             * failure here shows as frames that do not come; the caller may subscribe again. */
            if (is_return && now->wants_depth && now->depth)
                s_device_open(now, self->max_frame_bytes, &self->curve);
            if (is_return && !now->streams_sub && now->subscription_count > 0)
                s_streams_reopen(now, self->max_frame_bytes, &self->curve, true,
                                 s_streams_hwm(self));
        } else {
            now->id = strdup(me->devices[i].id);
            now->depth = depth ? strdup(depth) : NULL;
            now->streams = streams ? strdup(streams) : NULL;
            now->paused = self->paused_default;
            s_push_new(self, SK2_EVENT_DEVICE_ADDED, now->id, 0, NULL);
        }
    }
    for (size_t i = 0; i < self->device_count; i++) {
        if (self->devices[i].id)
            s_push_new(self, SK2_EVENT_DEVICE_REMOVED, self->devices[i].id, 0, NULL);
        s_device_free(&self->devices[i]);
    }
    free(self->devices);
    self->devices = devices;
    self->device_count = me->device_count;
    self->next_device = 0;
    free(self->me_json);
    self->me_json = json_dumps(me->payload, JSON_COMPACT);
    sk2_me_destroy(&self->me);
    self->me = me;
    self->has_me = true;
    /* A server met for the first time, or again after an outage, learns the flow state anew
     * (a restarted one has forgotten it). */
    if (first || is_return)
        self->is_flow_due = self->is_flow_on;
    /* Clock exchanges go only to a server that says it answers them, so that a version-1 peer
     * never sees one. Met anew (or back, perhaps restarted with another clock), its clock is
     * estimated from scratch; a `me` that starts or stops saying so is followed. */
    bool is_clock = json_integer_value(json_object_get(me->payload, "clock")) >= 1;
    if (first || is_return || is_clock != self->is_clock_on)
        s_clock_restart(self, is_clock);
}

/* Whether an error reply says the request's type is unknown to the server (docs/protocol.md:
 * "unknown message type 0x.."), the answer of servers that predate it. */
static bool s_is_unknown_type_error(const json_t *payload)
{
    json_t *reason = json_object_get(payload, "reason");
    return json_is_string(reason) &&
           strncmp(json_string_value(reason), "unknown message type", 20) == 0;
}

static void s_command_reply(sk2_client_t *self, zmsg_t *reply);

/* Parses a server's message; a malformed one becomes an ERROR event. Returns 0 or SK2_EPROTO. */
static int s_parse_reply(sk2_client_t *self, zmsg_t *reply, sk2_msg_t *msg)
{
    const uint8_t *frames[3];
    size_t sizes[3], i = 0;
    for (zframe_t *f = zmsg_first(reply); f && i < 3; f = zmsg_next(reply), i++) {
        frames[i] = zframe_data(f);
        sizes[i] = zframe_size(f);
    }
    char why[256];
    if (sk2_msg_parse(zmsg_size(reply), frames, sizes, SK2_MSG_FROM_SERVER, msg, why, sizeof why) !=
        0) {
        s_push_new(self, SK2_EVENT_ERROR, NULL, SK2_EPROTO, why);
        return SK2_EPROTO;
    }
    return 0;
}

static void s_sync_apply(sk2_client_t *self, const json_t *reply);

/* The answer to a clock exchange: a sample for the estimator, then the next exchange of the
 * burst at once, or the next one a period later. A refusal, or a reply that does not echo our
 * t1 or breaks the limits, is logged once and the server is not asked again until it is met
 * anew: an estimate from a server that gets the exchange wrong would be worse than none. */
static void s_clock_reply(sk2_client_t *self, const sk2_msg_t *msg)
{
    int64_t t4_us = sk2_clock_wall_us();
    int64_t now_us = sk2_clock_mono_us();
    self->is_clock_pending = false;
    char why[256] = "";
    sk2_clock_reply_t reply;
    if (msg->type == SK2_MSG_ERROR) {
        json_t *reason = json_object_get(msg->payload, "reason");
        snprintf(why, sizeof why, "refused: %s",
                 json_is_string(reason) ? json_string_value(reason) : "(no reason given)");
    } else if (msg->type != SK2_MSG_CLOCK_REPLY) {
        snprintf(why, sizeof why, "answered with %s", sk2_msg_type_name(msg->type));
    } else if (sk2_clock_reply_parse(msg->payload, &reply, why, sizeof why) == 0 &&
               reply.t1_us != self->clock_t1_us) {
        snprintf(why, sizeof why, "the reply does not echo our t1");
    }
    if (why[0]) {
        SK2_WARN("client", "server %s: clock exchange %s; no clock estimate for it", self->endpoint,
                 why);
        self->is_clock_refused = true;
        return;
    }
    (void)sk2_estimator_add(&self->clock, self->clock_t1_us, reply.t2_us, reply.t3_us, t4_us);
    if (reply.discipline.is_known)
        self->clock_discipline = reply.discipline;
    /* The burst ends after SK2_CLIENT_CLOCK_BURST exchanges if one of them was fast enough,
     * else goes on a while: on a busy host or link every exchange of a short burst may be
     * slowed, and a few more cost little. */
    if (self->clock_burst > 0) {
        self->clock_burst--;
        if (SK2_CLIENT_CLOCK_BURST_MAX - self->clock_burst >= SK2_CLIENT_CLOCK_BURST &&
            sk2_estimator_at(&self->clock, t4_us).error_us <= SK2_CLIENT_CLOCK_GOOD_US)
            self->clock_burst = 0;
    }
    if (self->clock_burst > 0) {
        self->next_clock_us = now_us;
    } else {
        int period_ms = self->heartbeat_ms < SK2_CLIENT_CLOCK_PERIOD_MS
                            ? self->heartbeat_ms
                            : SK2_CLIENT_CLOCK_PERIOD_MS;
        self->next_clock_us = now_us + (int64_t)period_ms * 1000;
    }
}

/* Whether a clock exchange is to be sent (whenever its time comes). */
static bool s_clock_wanted(const sk2_client_t *self)
{
    return self->is_clock_on && !self->is_clock_refused && !self->is_clock_pending &&
           self->is_connected && self->has_me && !self->is_reconnecting;
}

static void s_clock_send(sk2_client_t *self)
{
    self->clock_t1_us = sk2_clock_wall_us();
    json_t *payload = sk2_clock_request_payload(self->clock_t1_us);
    if (payload && s_send(self, SK2_MSG_CLOCK, payload) == 0)
        self->is_clock_pending = true;
    else /* no room among the requests in flight: at the next turn */
        self->next_clock_us = sk2_clock_mono_us() + 10000;
    json_decref(payload);
}

static void s_reply(sk2_client_t *self, zmsg_t *reply)
{
    zframe_t *delimiter = zmsg_pop(reply);
    bool framed = delimiter && zframe_size(delimiter) == 0;
    zframe_destroy(&delimiter);
    /* Command answers are matched by id, not by order: a command is sent again when its answer
     * is late, so it has no place in the ring of requests answered in turn. */
    zframe_t *type = zmsg_first(reply);
    if (framed && type && zframe_size(type) == 1 && zframe_data(type)[0] == SK2_MSG_COMMAND_REPLY) {
        s_command_reply(self, reply);
        return;
    }
    if (!framed || self->pending_count == 0) {
        s_push_new(self, SK2_EVENT_ERROR, NULL, SK2_EPROTO, "unexpected message from server");
        return;
    }
    s_pending_t request = self->pending[self->pending_head];
    self->pending_head = (self->pending_head + 1) % S_MAX_PENDING;
    self->pending_count--;

    sk2_msg_t msg;
    char why[256];
    if (s_parse_reply(self, reply, &msg) != 0)
        return;
    if (msg.type == SK2_MSG_ERROR && request.type == SK2_MSG_FLOW) {
        /* A server without flow control (version 1, or an older sk2) still serves: pausing
         * and the queue work on this side alone, only its stats will not show them. Any other
         * refusal would come back with every heartbeat: said once, and not asked again. */
        json_t *reason = json_object_get(msg.payload, "reason");
        if (!self->is_flow_refused && s_is_unknown_type_error(msg.payload))
            SK2_INFO("client", "server %s keeps no flow states: pause and queue stay local",
                     self->endpoint);
        else if (!self->is_flow_refused)
            SK2_WARN("client", "server %s refused our flow state (not sent again): %s",
                     self->endpoint,
                     json_is_string(reason) ? json_string_value(reason) : "(no reason given)");
        self->is_flow_refused = true;
        self->is_syncing = false;
    } else if (request.type == SK2_MSG_CLOCK) {
        s_clock_reply(self, &msg);
    } else if (msg.type == SK2_MSG_ERROR) {
        json_t *reason = json_object_get(msg.payload, "reason");
        snprintf(why, sizeof why, "server refused %s: %s", sk2_msg_type_name(request.type),
                 json_is_string(reason) ? json_string_value(reason) : "(no reason given)");
        s_push_new(self, SK2_EVENT_ERROR, NULL, SK2_ESERVER, why);
    } else if (request.type == SK2_MSG_PING && msg.type == SK2_MSG_PONG) {
        sk2_event_t *event = sk2_event_new(SK2_EVENT_PONG, NULL, 0, NULL);
        if (event)
            event->rtt_us = sk2_clock_mono_us() - request.sent_us;
        sk2_event_queue_push(&self->queue, event);
    } else if ((request.type == SK2_MSG_STATS && msg.type == SK2_MSG_STATS_REPLY && msg.payload) ||
               (request.type == SK2_MSG_REPLAY && msg.type == SK2_MSG_REPLAY_REPLY &&
                json_is_object(msg.payload))) {
        sk2_event_t *event = sk2_event_new(
            request.type == SK2_MSG_STATS ? SK2_EVENT_STATS : SK2_EVENT_REPLAY, NULL, 0, NULL);
        if (event && !(event->json = json_dumps(msg.payload, JSON_COMPACT)))
            sk2_event_destroy(&event);
        sk2_event_queue_push(&self->queue, event);
    } else if (request.type == SK2_MSG_FLOW && msg.type == SK2_MSG_FLOW_REPLY) {
        SK2_DEBUG("client", "flow acknowledged");
        if (request.is_sync)
            s_sync_apply(self, msg.payload);
    } else if (request.type == SK2_MSG_WHO && msg.type == SK2_MSG_ME) {
        sk2_me_t *me = NULL;
        if (sk2_me_parse(msg.payload, &me, why, sizeof why) == 0)
            s_apply_me(self, me);
        else
            s_push_new(self, SK2_EVENT_ERROR, NULL, SK2_EPROTO, why);
    } else {
        snprintf(why, sizeof why, "server answered %s with %s", sk2_msg_type_name(request.type),
                 sk2_msg_type_name(msg.type));
        s_push_new(self, SK2_EVENT_ERROR, NULL, SK2_EPROTO, why);
    }
    sk2_msg_clear(&msg);
}

/* ---- Frames ------------------------------------------------------------------------------- */

#define S_SIZE_WHO_INTERVAL_US 200000

/* Drops a frame that breaks the limits: counted, and logged only the first time for this
 * device, stream and reason (rc: SK2_EPROTO not as advertised, SK2_ECORRUPT a payload too long
 * for its size, SK2_ELIMIT over the budget), so a flood of them cannot flood the log. */
static void s_reject(sk2_client_t *self, s_device_t *device, sk2_stream_kind_t kind, int rc,
                     const char *why)
{
    self->frames_rejected++;
    /* A frame not as `me` advertised it is most often the first of a new size (the server's
     * `resolution.KIND` key): ask for `me` now rather than at the next heartbeat, at most
     * every S_SIZE_WHO_INTERVAL_US, so the stream resumes within a round trip. */
    int64_t now_us = sk2_clock_mono_us();
    if (rc == SK2_EPROTO && self->is_connected && now_us >= self->next_size_who_us) {
        self->next_size_who_us = now_us + S_SIZE_WHO_INTERVAL_US;
        s_request(self, SK2_MSG_WHO);
    }
    unsigned reason = rc == SK2_ELIMIT ? 1 : rc == SK2_ECORRUPT ? 2 : 0;
    uint32_t bit = 1u << (((unsigned)kind & 7u) * 4 + reason);
    if (device->warned & bit)
        return;
    device->warned |= bit;
    SK2_WARN("client", "device %s: frame dropped (and any more like it, counted): %s", device->id,
             why);
}

/* Sizes version-1 cameras produce (Kinect v2, OpenNI2 and libfreenect VGA/QVGA, Azure Kinect
 * modes, QQVGA), for a server whose `me` does not say: their pixel counts all differ, so the
 * length a depth12 frame declares picks one. */
static const struct {
    uint32_t width, height;
} s_v1_sizes[] = {{512, 424}, {640, 480},   {320, 240}, {320, 288},
                  {640, 576}, {1024, 1024}, {160, 120}, {80, 60}};

/* The size of a depth12 message on a device's version-1 endpoint, which carries no header:
 * the depth stream's size in `me` (sk2 servers say it), else the camera size whose plane
 * length the message declares, else 512x424 (the original's only size). Returns 0,
 * SK2_ECORRUPT (too short to be depth12), SK2_EPROTO (not a frame of that size) or SK2_ELIMIT
 * (the frame would exceed the budget), with a reason in why. Nothing is allocated. */
static int s_v1_size(sk2_client_t *self, const s_device_t *device, const uint8_t *data, size_t size,
                     uint32_t *width, uint32_t *height, char *why, size_t why_size)
{
    if (size < 4) {
        snprintf(why, why_size, "undecodable depth frame (%zu bytes)", size);
        return SK2_ECORRUPT;
    }
    uint32_t declared = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                        (uint32_t)data[3] << 24;
    sk2_stream_info_t info;
    *width = SK2_MOCK_WIDTH;
    *height = SK2_MOCK_HEIGHT;
    if (sk2_client_stream_info(self, device->id, SK2_STREAM_DEPTH, &info) == 0) {
        *width = info.width;
        *height = info.height;
    } else {
        for (size_t i = 0; i < sizeof s_v1_sizes / sizeof s_v1_sizes[0]; i++)
            if ((uint64_t)s_v1_sizes[i].width * s_v1_sizes[i].height / 2 * 3 == declared) {
                *width = s_v1_sizes[i].width;
                *height = s_v1_sizes[i].height;
            }
    }
    size_t frame_bytes = sk2_limit_frame_bytes(SK2_PIXEL_DEPTH_MM16, *width, *height);
    if (frame_bytes > self->max_frame_bytes) {
        snprintf(why, why_size, "depth frame of %ux%u needs %zu bytes, over the limit of %zu",
                 *width, *height, frame_bytes, self->max_frame_bytes);
        return SK2_ELIMIT;
    }
    size_t bound = sk2_codec_encode_bound(sk2_codec_find(SK2_CODEC_DEPTH12), SK2_PIXEL_DEPTH_MM16,
                                          *width, *height);
    if ((uint64_t)declared != (uint64_t)*width * *height / 2 * 3 || size > bound) {
        snprintf(why, why_size,
                 "depth12 frame declaring %u plane bytes in %zu does not fit its stream (%ux%u)",
                 declared, size, *width, *height);
        return SK2_EPROTO;
    }
    return 0;
}

static void s_read_frame(sk2_client_t *self, s_device_t *device)
{
    zmq_msg_t wire;
    zmq_msg_init(&wire);
    if (zmq_msg_recv(&wire, zsock_resolve(device->sub), ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&wire);
        return;
    }
    size_t size = zmq_msg_size(&wire);
    bool more = zmq_msg_more(&wire);
    uint32_t width = 0, height = 0;
    char why[192];
    int rc = s_v1_size(self, device, zmq_msg_data(&wire), size, &width, &height, why, sizeof why);
    sk2_frame_t *frame = NULL;
    if (rc == 0 && !more) {
        frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, height);
        rc = frame ? sk2_codec_decode(sk2_codec_find(SK2_CODEC_DEPTH12), zmq_msg_data(&wire), size,
                                      frame)
                   : SK2_ENOMEM;
    }
    zmq_msg_close(&wire);
    if (more) {
        /* The depth endpoint carries single-frame messages; skip the rest of this one. */
        zsock_flush(device->sub);
        rc = SK2_EPROTO;
        snprintf(why, sizeof why, "undecodable depth frame (a message of several parts)");
    }
    if (!more && (rc == SK2_ELIMIT || rc == SK2_EPROTO)) {
        sk2_frame_destroy(&frame); /* NULL: refused before allocation */
        s_reject(self, device, (sk2_stream_kind_t)0, rc, why);
        return;
    }
    if (rc != 0) {
        sk2_frame_destroy(&frame);
        s_push_new(self, SK2_EVENT_ERROR, device->id, rc, "undecodable depth frame");
        return;
    }
    sk2_frame_set_sequence(frame, device->received++);
    sk2_event_t *event = sk2_event_new(SK2_EVENT_FRAME, device->id, 0, NULL);
    if (!event) {
        sk2_frame_destroy(&frame);
        return;
    }
    event->frame = frame;
    event->wire_bytes = size;
    event->codec = SK2_CODEC_DEPTH12;
    sk2_event_queue_push(&self->queue, event);
}

static s_subscription_t *s_find_subscription(s_device_t *device, sk2_stream_kind_t kind,
                                             const sk2_codec_t *codec)
{
    for (size_t i = 0; i < device->subscription_count; i++)
        if (device->subscriptions[i].kind == kind && device->subscriptions[i].codec == codec)
            return &device->subscriptions[i];
    return NULL;
}

/* Decodes one message of the streams endpoint: [topic][header][payload]. */
static int s_decode_stream(sk2_client_t *self, s_device_t *device, zmsg_t *msg,
                           sk2_event_t **event_p, sk2_stream_kind_t *rejected, char *why,
                           size_t why_size)
{
    bool is_decoding = !self->is_skipping_decode;
    if (zmsg_size(msg) != 3) {
        snprintf(why, why_size, "stream message of %zu parts, not 3", zmsg_size(msg));
        return SK2_EPROTO;
    }
    zframe_t *topic = zmsg_first(msg), *head = zmsg_next(msg), *payload = zmsg_next(msg);
    sk2_stream_kind_t kind;
    const sk2_codec_t *codec;
    sk2_header_t header;
    int rc = sk2_topic_parse(zframe_data(topic), zframe_size(topic), &kind, &codec);
    if (rc != 0) {
        snprintf(why, why_size, "unknown stream topic");
        return rc;
    }
    rc = sk2_header_read(zframe_data(head), zframe_size(head), &header, why, why_size);
    if (rc != 0)
        return rc;
    if (header.kind != kind || header.codec != codec ||
        header.payload_size != zframe_size(payload)) {
        snprintf(why, why_size, "frame header disagrees with its topic or payload");
        return SK2_EPROTO;
    }
    s_subscription_t *subscription = s_find_subscription(device, kind, codec);
    if (!subscription)
        return SK2_ENOTFOUND; /* in flight from before an unsubscribe */
    /* After an absence or a resume, a frame numbered below the floor waited in ZeroMQ's or the
     * kernel's buffers while newer ones were made: stale, dropped (counted, and in the gap of
     * the next frame). The first frame at or above the floor ends it, as does one numbered at
     * or below the last (a restarted server numbers again from the start). */
    if (subscription->has_floor) {
        bool is_restart = subscription->has_last && header.sequence <= subscription->last_sequence;
        if (header.sequence < subscription->floor && !is_restart) {
            self->frames_dropped++;
            return SK2_ENOTFOUND;
        }
        subscription->has_floor = false;
    }
    /* Checked against the stream's record in `me` and the budget before a byte is allocated:
     * the header alone may announce any size up to the protocol's maximum. */
    sk2_stream_info_t info;
    bool is_advertised = sk2_client_stream_info(self, device->id, kind, &info) == 0;
    rc = sk2_header_check(&header, is_advertised ? &info : NULL, self->max_frame_bytes, why,
                          why_size);
    if (rc != 0) {
        *rejected = kind;
        return rc;
    }
    sk2_frame_t *frame = NULL;
    if (is_decoding) {
        frame = sk2_frame_new(kind, header.format, header.width, header.height);
        if (!frame)
            return SK2_ENOMEM;
        rc = sk2_codec_decode(codec, zframe_data(payload), zframe_size(payload), frame);
    }
    sk2_event_t *event = rc == 0 ? sk2_event_new(SK2_EVENT_FRAME, device->id, 0, NULL) : NULL;
    if (!event) {
        snprintf(why, why_size, "undecodable %s frame in %s", sk2_stream_kind_name(kind),
                 sk2_codec_name(codec));
        sk2_frame_destroy(&frame);
        return rc ? rc : SK2_ENOMEM;
    }
    if (frame) {
        sk2_frame_set_sequence(frame, header.sequence);
        sk2_frame_set_device_timestamp_us(frame, header.device_timestamp_us);
        sk2_frame_set_capture_time_us(frame, header.capture_time_us);
    }
    /* A number at or below the last one means the server started numbering again (it was
     * restarted): no gap can be told, and the frame is not stale, just new. */
    if (subscription->has_last && header.sequence > subscription->last_sequence)
        event->gap = header.sequence - subscription->last_sequence - 1;
    subscription->has_last = true;
    subscription->last_sequence = header.sequence;
    event->frame = frame;
    event->wire_bytes = zframe_size(payload);
    event->codec = sk2_codec_name(codec);
    /* In one clock: the capture time mapped to ours when the server's clock is estimated. */
    event->latency_us = sk2_clock_wall_us() - sk2_client_to_local_us(self, header.capture_time_us);
    event->wire_header = zframe_data(head);
    event->wire_header_size = zframe_size(head);
    event->wire_payload = zframe_data(payload);
    *event_p = event;
    return 0;
}

/* Turns one message of the streams endpoint into a FRAME event (or a rejection, or an error). */
static void s_handle_stream(sk2_client_t *self, s_device_t *device, zmsg_t *msg)
{
    sk2_event_t *event = NULL;
    char why[192];
    sk2_stream_kind_t rejected = (sk2_stream_kind_t)0;
    int rc = s_decode_stream(self, device, msg, &event, &rejected, why, sizeof why);
    if (rc == 0) {
        /* The event keeps the message: sk2_event_encoded hands out its header and payload. */
        event->wire_msg = msg;
        msg = NULL;
    }
    zmsg_destroy(&msg);
    if (rc == 0)
        sk2_event_queue_push(&self->queue, event);
    else if (rejected)
        s_reject(self, device, rejected, rc, why);
    else if (rc != SK2_ENOTFOUND)
        s_push_new(self, SK2_EVENT_ERROR, device->id, rc, why);
}

/* With a queue bound: puts a stream message, still encoded, in its subscription's ring, whose
 * oldest frame goes if it is full (counted). Returns false, leaving msg to the caller, for a
 * message that names no live subscription: s_handle_stream's checks say what is wrong with it. */
static bool s_enqueue(sk2_client_t *self, s_device_t *device, zmsg_t *msg)
{
    sk2_stream_kind_t kind;
    const sk2_codec_t *codec;
    zframe_t *topic = zmsg_first(msg);
    if (zmsg_size(msg) != 3 ||
        sk2_topic_parse(zframe_data(topic), zframe_size(topic), &kind, &codec) != 0)
        return false;
    s_subscription_t *subscription = s_find_subscription(device, kind, codec);
    if (!subscription || (device->paused & (1u << kind)))
        return false;
    if (subscription->ring.capacity != self->queue_frames)
        (void)sk2_ring_resize(&subscription->ring, self->queue_frames, &self->frames_dropped);
    if (sk2_ring_push(&subscription->ring, msg, self->arrivals++))
        self->frames_dropped++;
    return true;
}

/* Reads the streams socket: one message, or with a queue bound everything it holds (up to
 * S_DRAIN_MAX), so that the ring, not libzmq's queue, decides which frames are kept. Returns
 * the messages read. */
static int s_read_stream(sk2_client_t *self, s_device_t *device)
{
    int most = self->queue_frames > 0 ? S_DRAIN_MAX : 1, read = 0;
    for (; read < most; read++) {
        if (!device->streams_sub || !(zsock_events(device->streams_sub) & ZMQ_POLLIN))
            break;
        zmsg_t *msg = zmsg_recv(device->streams_sub);
        if (!msg)
            break;
        if (self->queue_frames == 0 || !s_enqueue(self, device, msg))
            s_handle_stream(self, device, msg);
    }
    return read;
}

/* Frames in all rings. */
static uint64_t s_queued(const sk2_client_t *self)
{
    uint64_t queued = 0;
    for (size_t i = 0; i < self->device_count; i++)
        for (size_t k = 0; k < self->devices[i].subscription_count; k++)
            queued += self->devices[i].subscriptions[k].ring.count;
    return queued;
}

/* Hands out the frame that came first of all those queued in rings, decoded now (its gap
 * counts the frames its ring dropped). Returns false when every ring is empty. */
static bool s_release(sk2_client_t *self)
{
    s_device_t *device = NULL;
    s_subscription_t *oldest = NULL;
    for (size_t i = 0; i < self->device_count; i++)
        for (size_t k = 0; k < self->devices[i].subscription_count; k++) {
            s_subscription_t *subscription = &self->devices[i].subscriptions[k];
            if (sk2_ring_oldest(&subscription->ring) <
                (oldest ? sk2_ring_oldest(&oldest->ring) : UINT64_MAX)) {
                oldest = subscription;
                device = &self->devices[i];
            }
        }
    if (!oldest)
        return false;
    s_handle_stream(self, device, sk2_ring_pop(&oldest->ring));
    return true;
}

/* ---- Flow control ------------------------------------------------------------------------ */

/* The stream kind of a FRAME event: from its frame, or its wire header when not decoded. */
static sk2_stream_kind_t s_event_kind(const sk2_event_t *event)
{
    if (event->frame)
        return sk2_frame_kind(event->frame);
    if (event->wire_header && event->wire_header_size > 8)
        return (sk2_stream_kind_t)event->wire_header[8];
    return SK2_STREAM_DEPTH; /* the version-1 endpoint carries depth only */
}

/* Takes back the FRAME events of a device's paused streams that are queued but not handed out:
 * after sk2_client_pause returns, none of them reaches the caller. */
static void s_purge_events(sk2_client_t *self, const char *device_id, unsigned kinds)
{
    sk2_event_t **link = &self->queue.head, *last = NULL;
    while (*link) {
        sk2_event_t *event = *link;
        if (event->type == SK2_EVENT_FRAME && event->device_id &&
            strcmp(event->device_id, device_id) == 0 && (kinds & (1u << s_event_kind(event)))) {
            *link = event->next;
            event->next = NULL;
            sk2_event_destroy(&event);
            continue;
        }
        last = event;
        link = &event->next;
    }
    self->queue.tail = last;
}

/* Pauses and resumes a device's streams to match `paused`. A pause unsubscribes the topic on
 * the socket that stays connected, so the server stops sending it (and, when nobody else
 * wants it, encoding it), and drops what was queued of it; a resume subscribes again. While
 * reconnecting there are no sockets: s_streams_reopen and s_device_open follow the mask. */
static void s_set_paused(sk2_client_t *self, s_device_t *device, unsigned paused)
{
    unsigned changed = device->paused ^ paused;
    if (!changed)
        return;
    device->paused = paused;
    for (size_t i = 0; i < device->subscription_count; i++) {
        s_subscription_t *subscription = &device->subscriptions[i];
        unsigned bit = 1u << subscription->kind;
        if (!(changed & bit))
            continue;
        bool is_on = !(paused & bit);
        /* A refused (un)subscription shows as frames that keep coming or do not come back;
         * the frames of a paused stream are dropped here either way. */
        if (device->streams_sub)
            (void)s_topic_subscribe(device->streams_sub, subscription, is_on);
        if (!is_on) {
            sk2_ring_clear(&subscription->ring);
            subscription->has_last = false; /* frames skipped on purpose are no gap */
        }
    }
    unsigned depth = 1u << SK2_STREAM_DEPTH;
    if ((changed & depth) && device->sub)
        (void)sk2_socket_set_bytes(device->sub, (paused & depth) ? ZMQ_UNSUBSCRIBE : ZMQ_SUBSCRIBE,
                                   "", 0);
    if (changed & paused)
        s_purge_events(self, device->id, changed & paused);
}

/* The `flow` payload (docs/protocol.md): who we are, which streams we receive and which of
 * them are paused (at most S_FLOW_PAUSED_MAX listed), the queue bound and the drops so far. */
static json_t *s_flow_payload(const sk2_client_t *self)
{
    json_t *paused = json_array();
    size_t streams = 0;
    for (size_t i = 0; i < self->device_count && paused; i++) {
        const s_device_t *device = &self->devices[i];
        unsigned receives = device->wants_depth ? 1u << SK2_STREAM_DEPTH : 0;
        for (size_t k = 0; k < device->subscription_count; k++)
            receives |= 1u << device->subscriptions[k].kind;
        for (int kind = SK2_STREAM_DEPTH; kind <= SK2_STREAM_BODY; kind++) {
            if (!(receives & (1u << kind)))
                continue;
            streams++;
            if ((device->paused & (1u << kind)) && json_array_size(paused) < S_FLOW_PAUSED_MAX)
                json_array_append_new(paused,
                                      json_pack("{s:s, s:s}", "device", device->id, "kind",
                                                sk2_stream_kind_name((sk2_stream_kind_t)kind)));
        }
    }
    if (!paused)
        return NULL;
    return json_pack("{s:s, s:o, s:I, s:I, s:I, s:i}", "client", self->id, "paused", paused,
                     "streams", (json_int_t)streams, "queue_frames", (json_int_t)self->queue_frames,
                     "dropped", (json_int_t)self->frames_dropped, "heartbeat_ms",
                     self->heartbeat_ms);
}

/* Tells the server our flow state, now if we can, else at the next turn of the timers (or
 * once the server is back). Nothing is sent by a client that never paused or set a queue
 * bound, nor to a server that refused `flow` once. */
static void s_flow_send(sk2_client_t *self)
{
    self->is_flow_due = self->is_flow_on && !self->is_flow_refused;
    if (!self->is_flow_due || !self->is_connected || !self->has_me || self->is_reconnecting)
        return;
    json_t *payload = s_flow_payload(self);
    if (payload && s_send(self, SK2_MSG_FLOW, payload) == 0)
        self->is_flow_due = false;
    json_decref(payload);
}

/* Asks the server where its streams are now: a `flow` (our state, as any), whose reply carries
 * the newest sequence number of every stream. Sent after the caller was away with a queue
 * bound, and on a resume, since frames made long ago may still wait for us in libzmq and the
 * kernel (ours and the server's), older than any in the ring would be. With a queue bound,
 * nothing is handed out until the reply came, or the response timeout ran out (after which the
 * server counts as lost). Returns whether it was sent. */
static bool s_sync_start(sk2_client_t *self)
{
    if (self->is_flow_refused || !self->is_connected || !self->has_me || self->is_reconnecting)
        return false;
    json_t *payload = s_flow_payload(self);
    bool is_sent = payload && s_send(self, SK2_MSG_FLOW, payload) == 0;
    json_decref(payload);
    if (!is_sent)
        return false;
    self->pending[(self->pending_head + self->pending_count - 1) % S_MAX_PENDING].is_sync = true;
    self->is_flow_due = false;
    self->is_syncing = true;
    self->sync_until_us = sk2_clock_mono_us() + (int64_t)self->response_timeout_ms * 1000;
    return true;
}

/* The reply to s_sync_start: every stream it names gets a floor, so that the frames handed out
 * next are at most the queue bound (1 without one) behind the newest the server had made. An
 * entry that names nothing we know, or is malformed, is skipped: a floor only ever drops. */
static void s_sync_apply(sk2_client_t *self, const json_t *reply)
{
    self->is_syncing = false;
    uint64_t keep = self->queue_frames > 0 ? self->queue_frames : 1;
    size_t index;
    json_t *entry;
    json_array_foreach(json_object_get(reply, "sequences"), index, entry)
    {
        const char *device_id = json_string_value(json_object_get(entry, "device"));
        const char *kind_name = json_string_value(json_object_get(entry, "kind"));
        json_t *sequence = json_object_get(entry, "sequence");
        s_device_t *device = device_id ? s_find_device(self, device_id) : NULL;
        if (!device || !kind_name || !json_is_integer(sequence) || json_integer_value(sequence) < 0)
            continue;
        uint64_t newest = (uint64_t)json_integer_value(sequence);
        for (size_t i = 0; i < device->subscription_count; i++) {
            s_subscription_t *subscription = &device->subscriptions[i];
            if (strcmp(sk2_stream_kind_name(subscription->kind), kind_name) != 0 ||
                (device->paused & (1u << subscription->kind)) || newest + 1 < keep)
                continue;
            subscription->has_floor = true;
            subscription->floor = newest + 1 - keep;
        }
    }
}

/* Whether frames in the rings wait for a sync's reply (which ends the wait, as the response
 * timeout does). */
static bool s_is_holding(sk2_client_t *self)
{
    if (self->is_syncing && sk2_clock_mono_us() >= self->sync_until_us) {
        SK2_DEBUG("client", "no reply to the flow sync within %d ms: frames go out as they are",
                  self->response_timeout_ms);
        self->is_syncing = false;
    }
    return self->is_syncing && self->queue_frames > 0;
}

/* ---- The loop ----------------------------------------------------------------------------- */

static int64_t s_give_up_us(const sk2_client_t *self)
{
    return self->give_up_after_ms > 0 ? self->lost_us + self->give_up_after_ms * 1000 : INT64_MAX;
}

/* The earliest resend or expiry of a command, or INT64_MAX. */
static int64_t s_command_next_us(const sk2_client_t *self)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < SK2_CLIENT_COMMAND_MAX; i++) {
        const s_command_t *command = &self->commands[i];
        if (!command->payload)
            continue;
        if (command->expires_us < next)
            next = command->expires_us;
        if (!self->is_reconnecting && command->sends < SK2_CLIENT_COMMAND_MAX_SENDS &&
            command->next_send_us < next)
            next = command->next_send_us;
    }
    return next;
}

static int64_t s_next_timer_us(const sk2_client_t *self)
{
    int64_t commands = s_command_next_us(self);
    if (self->is_reconnecting) {
        int64_t give_up = s_give_up_us(self);
        int64_t next = give_up < self->next_attempt_us ? give_up : self->next_attempt_us;
        return commands < next ? commands : next;
    }
    int64_t next = commands < self->next_heartbeat_us ? commands : self->next_heartbeat_us;
    if (s_clock_wanted(self) && self->next_clock_us < next)
        next = self->next_clock_us;
    if (self->pending_count > 0) {
        int64_t due =
            self->pending[self->pending_head].sent_us + (int64_t)self->response_timeout_ms * 1000;
        if (due < next)
            next = due;
    }
    return next;
}

/* A request older than the response timeout means the server is lost; a due heartbeat sends
 * `who` unless one is pending. Returns when the next timer is due. */
static void s_command_timers(sk2_client_t *self, int64_t now_us);

static int64_t s_run_timers(void *owner)
{
    sk2_client_t *self = owner;
    int64_t now = sk2_clock_mono_us();
    s_command_timers(self, now);
    if (self->is_reconnecting) {
        if (now >= s_give_up_us(self)) {
            char reason[160];
            snprintf(reason, sizeof reason, "no answer from the server for %lld ms; gave up",
                     (long long)((now - self->lost_us) / 1000));
            SK2_WARN("client", "server %s lost: %s", self->endpoint, reason);
            s_teardown(self);
            s_push_new(self, SK2_EVENT_DISCONNECTED, NULL, SK2_ETIMEDOUT, reason);
            return INT64_MAX;
        }
        if (now >= self->next_attempt_us)
            s_attempt(self, now);
        return s_next_timer_us(self);
    }
    if (self->pending_count > 0 && now - self->pending[self->pending_head].sent_us >=
                                       (int64_t)self->response_timeout_ms * 1000) {
        char reason[128];
        snprintf(reason, sizeof reason, "no reply to %s within %d ms",
                 sk2_msg_type_name(self->pending[self->pending_head].type),
                 self->response_timeout_ms);
        s_lost(self, SK2_ETIMEDOUT, reason);
        return INT64_MAX;
    }
    if (now >= self->next_heartbeat_us) {
        if (!s_who_pending(self))
            s_request(self, SK2_MSG_WHO);
        self->next_heartbeat_us = now + (int64_t)self->heartbeat_ms * 1000;
        self->is_flow_due = self->is_flow_on; /* the flow state goes with every heartbeat */
    }
    if (self->is_flow_due)
        s_flow_send(self);
    if (s_clock_wanted(self) && now >= self->next_clock_us)
        s_clock_send(self);
    return s_next_timer_us(self);
}

/* Polls once for at most wait_ms and turns whatever is readable into events. */
static int s_poll(void *owner, int wait_ms)
{
    sk2_client_t *self = owner;
    zmq_pollitem_t items[2 + 2 * SK2_ME_MAX_DEVICES];
    s_device_t *owners[3 + 2 * SK2_ME_MAX_DEVICES];
    bool is_streams[3 + 2 * SK2_ME_MAX_DEVICES];
    size_t n = 0;
    for (size_t k = 0; k < self->device_count; k++) {
        s_device_t *device = &self->devices[(self->next_device + k) % self->device_count];
        zsock_t *sockets[2] = {device->sub, device->streams_sub};
        for (int which = 0; which < 2; which++) {
            if (!sockets[which])
                continue;
            owners[n] = device;
            is_streams[n] = which == 1;
            items[n++] =
                (zmq_pollitem_t){.socket = zsock_resolve(sockets[which]), .events = ZMQ_POLLIN};
        }
    }
    /* The control socket and its monitor last, each only if there is one (between
     * reconnection attempts there may be neither). */
    size_t streams = n, control_at = SIZE_MAX;
    if (self->control) {
        control_at = n;
        items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(self->control), .events = ZMQ_POLLIN};
    }
    if (self->monitor)
        items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(self->monitor), .events = ZMQ_POLLIN};
    if (self->watch)
        items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(sk2_curve_watch_socket(self->watch)),
                                      .events = ZMQ_POLLIN};
    /* Frames waiting in rings are work to do now: look at the sockets without waiting, unless
     * they wait for a sync's reply, which the poll waits for. */
    if (s_queued(self) > 0 && !s_is_holding(self))
        wait_ms = 0;
    else if (s_is_holding(self)) {
        int64_t left_ms = (self->sync_until_us - sk2_clock_mono_us()) / 1000 + 1;
        wait_ms = wait_ms >= 0 && wait_ms < left_ms ? wait_ms : (int)left_ms;
    }
    /* A caller that did not turn the loop for a while was away: what waits for it is old. */
    bool was_away = self->turn_end_us > 0 &&
                    sk2_clock_mono_us() - self->turn_end_us > (int64_t)S_AWAY_MS * 1000;
    int rc_poll = zmq_poll(items, (int)n, wait_ms);
    self->turn_end_us = sk2_clock_mono_us();
    if (rc_poll < 0)
        return zmq_errno() == EINTR ? SK2_EINTR : SK2_ESYS;
    if (self->device_count)
        self->next_device = (self->next_device + 1) % self->device_count;
    /* Frames first, so that a `me` removing a device cannot free a socket polled above. */
    bool is_catching_up = false, has_frames = false;
    for (size_t i = 0; i < streams; i++) {
        if (!(items[i].revents & ZMQ_POLLIN))
            continue;
        if (is_streams[i]) {
            int read = s_read_stream(self, owners[i]);
            is_catching_up |= read > 1 && self->queue_frames;
            has_frames |= read > 0;
        } else
            s_read_frame(self, owners[i]);
    }
    /* Back from an absence with a queue bound: ask the server where its streams are, so that
     * the frames that waited in the buffers below the ring are known for stale when they come
     * (s_sync_start). The reply is read in this turn's catch-up or the next turns. */
    if (self->queue_frames && !self->is_syncing && (is_catching_up || (was_away && has_frames)))
        (void)s_sync_start(self);
    /* A streams socket holding more than one frame means the caller fell behind, and more may
     * wait behind them in libzmq and the kernel, older than the live ones: with a queue bound,
     * read on while they keep coming (each wait short, the whole bounded), so that the ring
     * ends up holding the newest frames rather than the first ones that waited. A caller that
     * keeps up finds one frame at a time and never waits here. */
    int64_t catch_up_until = sk2_clock_mono_us() + S_CATCHUP_TOTAL_MS * 1000;
    while (is_catching_up && sk2_clock_mono_us() < catch_up_until) {
        is_catching_up = false;
        if (zmq_poll(items, (int)streams, S_CATCHUP_MS) <= 0)
            break;
        for (size_t i = 0; i < streams; i++)
            if (is_streams[i] && (items[i].revents & ZMQ_POLLIN))
                is_catching_up |= s_read_stream(self, owners[i]) > 0;
    }
    if (control_at != SIZE_MAX && self->control && (items[control_at].revents & ZMQ_POLLIN)) {
        while (self->control && (zsock_events(self->control) & ZMQ_POLLIN)) {
            zmsg_t *reply = zmsg_recv(self->control);
            if (!reply)
                break;
            s_reply(self, reply);
            zmsg_destroy(&reply);
        }
    }
    /* Last, since a refused handshake tears everything down (or ends the retries). Once the
     * handshake succeeded the watch has stopped its monitor: the disconnection monitor of
     * reconnection takes its place (libzmq has one monitor per socket). */
    char why[192];
    if (self->watch && sk2_curve_watch_read(self->watch, why, sizeof why) == SK2_EAUTH) {
        s_lost(self, SK2_EAUTH, why);
        return 0;
    }
    if (self->watch && sk2_curve_watch_is_done(self->watch)) {
        sk2_curve_watch_destroy(&self->watch);
        if (self->is_reconnect_on && self->control && !self->monitor)
            s_monitor_open(self);
    }
    /* A drop while connected is a loss; during attempts libzmq's own retries and the attempt
     * timer take care of it. */
    /* The monitor is read whether or not poll woke for it: its descriptor is edge-triggered. */
    if (self->monitor && s_monitor_read(self) && !self->is_reconnecting && self->is_connected)
        s_lost(self, SK2_ECONNECT, "the server closed the connection");
    /* One queued frame per turn, after the sockets were read dry: the ring then holds the
     * newest frames there are, and the caller gets the oldest of those. A stale one (below its
     * floor) hands out nothing, so the next is tried; while a sync awaits its reply, none. */
    while (!self->queue.head && !s_is_holding(self) && s_release(self))
        ;
    return 0;
}

static bool s_is_active(void *owner)
{
    return ((sk2_client_t *)owner)->is_connected;
}

static void s_deliver(void *owner, sk2_event_t *event)
{
    sk2_client_t *self = owner;
    if (self->handler)
        self->handler(self->handler_arg, self, event);
}

static const sk2_loop_ops_t s_loop_ops = {
    .is_active = s_is_active,
    .run_timers = s_run_timers,
    .poll = s_poll,
    .deliver = s_deliver,
};

int sk2_client_recv(sk2_client_t *self, sk2_event_t **event_p, int timeout_ms)
{
    if (!self || !event_p)
        return SK2_EINVAL;
    return sk2_loop_recv(&s_loop_ops, self, &self->queue, event_p, timeout_ms);
}

int sk2_client_dispatch(sk2_client_t *self, int timeout_ms)
{
    if (!self)
        return SK2_EINVAL;
    return sk2_loop_dispatch(&s_loop_ops, self, &self->queue, timeout_ms);
}

/* ---- Public calls ------------------------------------------------------------------------- */

sk2_client_t *sk2_client_new(void)
{
    sk2_socket_init();
    sk2_client_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->heartbeat_ms = SK2_CLIENT_HEARTBEAT_MS;
    self->response_timeout_ms = SK2_CLIENT_RESPONSE_TIMEOUT_MS;
    self->max_frame_bytes = SK2_LIMIT_FRAME_BYTES;
    self->jitter_seed = (unsigned)sk2_clock_mono_us() ^ (unsigned)(uintptr_t)self;
    /* An id the server can tell this client's `flow` messages by, across reconnections. */
    uint8_t bytes[16];
    if (sk2_random_bytes(bytes, sizeof bytes) != 0) {
        uint64_t fallback[2] = {(uint64_t)sk2_clock_wall_us(), (uint64_t)(uintptr_t)self};
        memcpy(bytes, fallback, sizeof bytes);
    }
    for (size_t i = 0; i < sizeof bytes; i++)
        snprintf(self->id + 2 * i, 3, "%02x", bytes[i]);
    if (sk2_random_bytes(&self->command_prefix, sizeof self->command_prefix) != 0)
        self->command_prefix = (uint64_t)sk2_clock_wall_us() ^ (uint64_t)(uintptr_t)self;
    return self;
}

int sk2_client_set_reconnect(sk2_client_t *self, bool is_reconnecting)
{
    if (!self)
        return SK2_EINVAL;
    self->is_reconnect_on = is_reconnecting;
    if (is_reconnecting && self->control && !self->monitor)
        s_monitor_open(self);
    if (!is_reconnecting && self->monitor) {
        zmq_socket_monitor(zsock_resolve(self->control), NULL, 0);
        zsock_destroy(&self->monitor);
    }
    return 0;
}

int sk2_client_set_give_up_after_ms(sk2_client_t *self, int64_t give_up_after_ms)
{
    if (!self || give_up_after_ms < 0 || (give_up_after_ms > 0 && give_up_after_ms < 100) ||
        give_up_after_ms > INT32_MAX)
        return SK2_EINVAL;
    self->give_up_after_ms = give_up_after_ms;
    return 0;
}

bool sk2_client_is_reconnecting(const sk2_client_t *self)
{
    return self && self->is_reconnecting;
}

void sk2_client_set_resolver(sk2_client_t *self, sk2_client_resolve_fn *resolve, void *arg,
                             void (*free_arg)(void *arg))
{
    if (!self)
        return;
    if (self->resolve_free)
        self->resolve_free(self->resolve_arg);
    self->resolve = resolve;
    self->resolve_arg = arg;
    self->resolve_free = free_arg;
}

void sk2_client_destroy(sk2_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_client_t *self = *self_p;
    s_teardown(self);
    sk2_event_queue_clear(&self->queue);
    if (self->resolve_free)
        self->resolve_free(self->resolve_arg);
    free(self->codecs_text);
    free(self);
    *self_p = NULL;
}

int sk2_client_set_heartbeat_ms(sk2_client_t *self, int interval_ms)
{
    if (!self || interval_ms < 100 || interval_ms > 3600000)
        return SK2_EINVAL;
    self->heartbeat_ms = interval_ms;
    if (self->is_connected)
        self->next_heartbeat_us = sk2_clock_mono_us() + interval_ms * 1000LL;
    return 0;
}

int sk2_client_set_decode(sk2_client_t *self, bool is_decoding)
{
    if (!self)
        return SK2_EINVAL;
    self->is_skipping_decode = !is_decoding;
    return 0;
}

int sk2_client_set_max_frame_bytes(sk2_client_t *self, size_t max_frame_bytes)
{
    if (!self || max_frame_bytes < SK2_LIMIT_FRAME_BYTES_MIN ||
        max_frame_bytes > SK2_LIMIT_FRAME_BYTES_MAX)
        return SK2_EINVAL;
    if (self->is_connected)
        return SK2_ESTATE; /* the sockets already open were sized for the old budget */
    self->max_frame_bytes = max_frame_bytes;
    return 0;
}

size_t sk2_client_max_frame_bytes(const sk2_client_t *self)
{
    return self ? self->max_frame_bytes : 0;
}

uint64_t sk2_client_frames_rejected(const sk2_client_t *self)
{
    return self ? self->frames_rejected : 0;
}

int sk2_client_set_response_timeout_ms(sk2_client_t *self, int timeout_ms)
{
    if (!self || timeout_ms < 100 || timeout_ms > 600000)
        return SK2_EINVAL;
    self->response_timeout_ms = timeout_ms;
    return 0;
}

int sk2_client_set_security(sk2_client_t *self, const char *keys, const char *server_key)
{
    if (!self || !keys)
        return SK2_EINVAL;
    if (self->is_connected)
        return SK2_ESTATE;
    sk2_curve_t curve;
    int rc = sk2_curve_load_pair(keys, &curve);
    if (rc == 0 && server_key)
        rc = sk2_curve_read_public(server_key, curve.server_key);
    if (rc == 0)
        self->curve = curve;
    return rc;
}

int sk2_client_set_server_key(sk2_client_t *self, const char *server_key)
{
    if (!self || !server_key || !self->curve.is_on)
        return self && server_key ? SK2_ESTATE : SK2_EINVAL;
    if (self->is_connected)
        return SK2_ESTATE;
    return sk2_curve_read_public(server_key, self->curve.server_key);
}

bool sk2_client_is_secure(const sk2_client_t *self)
{
    return self && self->curve.is_on;
}

void sk2_client_curve(const sk2_client_t *self, sk2_curve_t *out)
{
    memset(out, 0, sizeof *out);
    if (self && self->curve.is_on)
        *out = self->curve;
}

const char *sk2_client_server_key(const sk2_client_t *self)
{
    return self && self->curve.server_key[0] ? self->curve.server_key : NULL;
}

int sk2_client_connect(sk2_client_t *self, const char *endpoint)
{
    if (!self)
        return SK2_EINVAL;
    if (self->is_connected)
        return SK2_ESTATE;
    char *normal = s_normalise(endpoint);
    if (!normal)
        return SK2_EINVAL;
    if (self->curve.is_on && !self->curve.server_key[0]) {
        SK2_ERROR("client", "secure, but no server key to connect to %s with", normal);
        free(normal);
        return SK2_EINVAL;
    }
    zsock_t *control = s_control_new(self, normal);
    if (!control) {
        free(normal);
        return SK2_ECONNECT;
    }
    self->control = control;
    if (self->is_reconnect_on)
        s_monitor_open(self);
    self->endpoint = normal;
    self->is_connected = true;
    self->has_me = false;
    self->next_heartbeat_us = sk2_clock_mono_us() + self->heartbeat_ms * 1000LL;
    int rc = s_request(self, SK2_MSG_WHO);
    if (rc != 0)
        s_teardown(self);
    return rc;
}

int sk2_client_disconnect(sk2_client_t *self)
{
    if (!self)
        return SK2_EINVAL;
    if (!self->is_connected)
        return SK2_ESTATE;
    s_teardown(self);
    s_push_new(self, SK2_EVENT_DISCONNECTED, NULL, 0, "disconnected by the application");
    return 0;
}

bool sk2_client_is_connected(const sk2_client_t *self)
{
    return self && self->is_connected;
}

int sk2_client_ping(sk2_client_t *self)
{
    return self ? s_request(self, SK2_MSG_PING) : SK2_EINVAL;
}

int sk2_client_refresh(sk2_client_t *self)
{
    return self ? s_request(self, SK2_MSG_WHO) : SK2_EINVAL;
}

/* Whether a stream's advertised frames are over the budget: refused with a clear error when
 * asked for, rather than every frame being dropped. Logged, since the caller only gets a code. */
static bool s_over_budget(const sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind)
{
    sk2_stream_info_t info;
    if (sk2_client_stream_info(self, device_id, kind, &info) != 0)
        return false;
    size_t bytes = sk2_limit_frame_bytes(info.format, info.width, info.height);
    if (bytes <= self->max_frame_bytes)
        return false;
    SK2_WARN("client", "device %s: %s frames of %ux%u need %zu bytes, over the limit of %zu",
             device_id, sk2_stream_kind_name(kind), info.width, info.height, bytes,
             self->max_frame_bytes);
    return true;
}

int sk2_client_enable_depth(sk2_client_t *self, const char *device_id)
{
    if (!self || !device_id)
        return SK2_EINVAL;
    if (!self->is_connected)
        return SK2_ESTATE;
    s_device_t *device = s_find_device(self, device_id);
    if (!device)
        return SK2_ENOTFOUND;
    if (s_over_budget(self, device_id, SK2_STREAM_DEPTH))
        return SK2_ELIMIT;
    if (self->is_reconnecting) {
        device->wants_depth = device->depth != NULL;
        return device->depth ? 0 : SK2_ENOTFOUND; /* opened when the server is back */
    }
    int rc = s_device_open(device, self->max_frame_bytes, &self->curve);
    device->wants_depth = rc == 0;
    return rc;
}

int sk2_client_disable_depth(sk2_client_t *self, const char *device_id)
{
    if (!self || !device_id)
        return SK2_EINVAL;
    if (!self->is_connected)
        return SK2_ESTATE;
    s_device_t *device = s_find_device(self, device_id);
    if (!device)
        return SK2_ENOTFOUND;
    s_device_close(device);
    device->wants_depth = false;
    return 0;
}

void sk2_client_set_handler(sk2_client_t *self, sk2_client_handler_fn *handler, void *arg)
{
    self->handler = handler;
    self->handler_arg = arg;
}

size_t sk2_client_fds(sk2_client_t *self, int *fds, size_t max)
{
    size_t n = 0;
    if (!self || !self->is_connected)
        return 0;
    zsock_t *own[2] = {self->control, self->monitor};
    for (int which = 0; which < 2; which++) {
        if (!own[which])
            continue;
        if (n < max)
            fds[n] = zsock_fd(own[which]);
        n++;
    }
    for (size_t i = 0; i < self->device_count; i++) {
        zsock_t *sockets[2] = {self->devices[i].sub, self->devices[i].streams_sub};
        for (int which = 0; which < 2; which++) {
            if (!sockets[which])
                continue;
            if (n < max)
                fds[n] = zsock_fd(sockets[which]);
            n++;
        }
    }
    return n;
}

int sk2_client_timeout_ms(const sk2_client_t *self)
{
    if (!self || !self->is_connected)
        return -1;
    if (self->queue.head || s_queued(self) > 0)
        return 0;
    int64_t wait = s_next_timer_us(self) - sk2_clock_mono_us();
    return wait <= 0 ? 0 : (int)((wait + 999) / 1000);
}

const char *sk2_client_server_name(const sk2_client_t *self)
{
    return self && self->me ? self->me->name : NULL;
}

const char *sk2_client_me_json(const sk2_client_t *self)
{
    return self ? self->me_json : NULL;
}

size_t sk2_client_device_count(const sk2_client_t *self)
{
    return self ? self->device_count : 0;
}

const char *sk2_client_device_id(const sk2_client_t *self, size_t index)
{
    return self && index < self->device_count ? self->devices[index].id : NULL;
}

const char *sk2_client_device_endpoint(const sk2_client_t *self, const char *device_id,
                                       const char *name)
{
    if (!self || !self->me || !device_id || !name)
        return NULL;
    const sk2_me_device_t *device = sk2_me_find(self->me, device_id);
    return device ? sk2_me_endpoint(device, name) : NULL;
}

const char *sk2_client_server_endpoint(const sk2_client_t *self, const char *name)
{
    if (!self || !self->me || !name)
        return NULL;
    json_t *value = json_object_get(json_object_get(self->me->payload, "endpoints"), name);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

/* ---- Extended streams ------------------------------------------------------------------- */

static int s_subscription_args(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind,
                               const char *codec_name, s_device_t **device,
                               const sk2_codec_t **codec)
{
    if (!self || !device_id || !codec_name)
        return SK2_EINVAL;
    if (!self->is_connected)
        return SK2_ESTATE;
    *device = s_find_device(self, device_id);
    *codec = sk2_codec_find(codec_name);
    if (!*device || !(*device)->streams)
        return SK2_ENOTFOUND;
    return *codec ? 0 : SK2_EUNSUPPORTED;
}

/* A device's record in the last `me` (borrowed), or NULL. */
static json_t *s_device_record(const sk2_client_t *self, const char *device_id)
{
    if (!self || !self->me || !device_id)
        return NULL;
    for (size_t i = 0; i < self->me->device_count; i++)
        if (strcmp(self->me->devices[i].id, device_id) == 0)
            return json_array_get(json_object_get(self->me->payload, "devices"), i);
    return NULL;
}

/* The stream record of a device in `me`, or NULL. */
static json_t *s_me_stream(const sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind)
{
    json_t *streams = json_object_get(s_device_record(self, device_id), "streams");
    size_t index;
    json_t *stream;
    json_array_foreach(streams, index, stream)
    {
        json_t *name = json_object_get(stream, "kind");
        if (json_is_string(name) &&
            strcmp(json_string_value(name), sk2_stream_kind_name(kind)) == 0)
            return stream;
    }
    return NULL;
}

static bool s_codec_offered(const sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind,
                            const char *codec)
{
    json_t *codecs = json_object_get(s_me_stream(self, device_id, kind), "codecs");
    size_t index;
    json_t *name;
    json_array_foreach(codecs, index, name)
    {
        if (json_is_string(name) && strcmp(json_string_value(name), codec) == 0)
            return true;
    }
    return false;
}

const char *sk2_client_stream_codec(const sk2_client_t *self, const char *device_id,
                                    sk2_stream_kind_t kind)
{
    return json_string_value(json_object_get(s_me_stream(self, device_id, kind), "codec"));
}

/* The codec a subscription that names none gets: the server's default for the stream, or from
 * a server that names none, what sk2 clients always chose (sk2d, jpeg for colour). */
static const char *s_default_codec(const sk2_client_t *self, const char *device_id,
                                   sk2_stream_kind_t kind)
{
    const char *codec = sk2_client_stream_codec(self, device_id, kind);
    return codec ? codec : kind == SK2_STREAM_COLOR ? SK2_CODEC_JPEG : SK2_CODEC_SK2D;
}

int sk2_client_subscribe(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind,
                         const char *codec_name)
{
    if (self && !codec_name)
        codec_name = s_default_codec(self, device_id, kind);
    s_device_t *device;
    const sk2_codec_t *codec;
    int rc = s_subscription_args(self, device_id, kind, codec_name, &device, &codec);
    if (rc != 0)
        return rc;
    if (!s_me_stream(self, device_id, kind))
        return SK2_ENOTFOUND;
    if (!s_codec_offered(self, device_id, kind, codec_name))
        return SK2_EUNSUPPORTED;
    if (s_over_budget(self, device_id, kind))
        return SK2_ELIMIT;
    if (s_find_subscription(device, kind, codec))
        return 0;
    if (device->subscription_count == S_MAX_SUBSCRIPTIONS)
        return SK2_ELIMIT;
    s_subscription_t *subscription = &device->subscriptions[device->subscription_count++];
    *subscription = (s_subscription_t){.kind = kind, .codec = codec};
    if (self->is_reconnecting)
        return 0; /* subscribed when the server is back */
    if (!device->streams_sub)
        return s_streams_open(device, self->max_frame_bytes, &self->curve, s_streams_hwm(self));
    if (device->paused & (1u << kind))
        return 0; /* subscribed on the wire when resumed */
    rc = s_topic_subscribe(device->streams_sub, subscription, true);
    if (rc != 0)
        device->subscription_count--;
    return rc;
}

int sk2_client_unsubscribe(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind,
                           const char *codec_name)
{
    if (self && !codec_name)
        codec_name = s_default_codec(self, device_id, kind);
    s_device_t *device;
    const sk2_codec_t *codec;
    int rc = s_subscription_args(self, device_id, kind, codec_name, &device, &codec);
    if (rc != 0)
        return rc == SK2_EUNSUPPORTED ? SK2_ENOTFOUND : rc;
    s_subscription_t *subscription = s_find_subscription(device, kind, codec);
    if (!subscription)
        return SK2_ENOTFOUND;
    /* Even if libzmq refuses the unsubscription, the client forgets the topic: frames of it
     * that still come are dropped as unsubscribed (s_find_subscription finds none). */
    if (device->streams_sub && !(device->paused & (1u << kind)))
        (void)s_topic_subscribe(device->streams_sub, subscription, false);
    sk2_ring_clear(&subscription->ring);
    *subscription = device->subscriptions[--device->subscription_count];
    if (device->subscription_count == 0)
        zsock_destroy(&device->streams_sub);
    return 0;
}

static double s_number(json_t *object, const char *key)
{
    json_t *value = json_object_get(object, key);
    return json_is_number(value) ? json_number_value(value) : 0.0;
}

int sk2_client_stream_info(const sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind,
                           sk2_stream_info_t *info)
{
    json_t *stream = s_me_stream(self, device_id, kind);
    if (!stream || !info)
        return stream ? SK2_EINVAL : SK2_ENOTFOUND;
    json_t *format = json_object_get(stream, "format");
    double width = s_number(stream, "width"), height = s_number(stream, "height");
    /* Bounded like a frame, since a client may allocate from these. */
    if (width < 1 || height < 1 || width > SK2_FRAME_MAX_WIDTH || height > SK2_FRAME_MAX_HEIGHT)
        return SK2_ENOTFOUND;
    *info = (sk2_stream_info_t){.kind = kind,
                                .width = (uint32_t)width,
                                .height = (uint32_t)height,
                                .fps = s_number(stream, "fps"),
                                .depth_unit_m = s_number(stream, "depth_unit_m")};
    for (int f = SK2_PIXEL_DEPTH_MM16; f <= SK2_PIXEL_BGRA32; f++)
        if (json_is_string(format) &&
            strcmp(json_string_value(format), sk2_pixel_format_name((sk2_pixel_format_t)f)) == 0)
            info->format = (sk2_pixel_format_t)f;
    json_t *k = json_object_get(stream, "intrinsics");
    if (json_is_object(k)) {
        info->has_intrinsics = true;
        info->intrinsics = (sk2_intrinsics_t){.fx = s_number(k, "fx"),
                                              .fy = s_number(k, "fy"),
                                              .cx = s_number(k, "cx"),
                                              .cy = s_number(k, "cy"),
                                              .k1 = s_number(k, "k1"),
                                              .k2 = s_number(k, "k2"),
                                              .k3 = s_number(k, "k3"),
                                              .p1 = s_number(k, "p1"),
                                              .p2 = s_number(k, "p2")};
    }
    return 0;
}

const char *sk2_client_stream_codecs(sk2_client_t *self, const char *device_id,
                                     sk2_stream_kind_t kind)
{
    json_t *codecs = json_object_get(s_me_stream(self, device_id, kind), "codecs");
    if (!json_is_array(codecs))
        return NULL;
    size_t size = 1, index;
    json_t *name;
    json_array_foreach(codecs, index, name) size += json_string_length(name) + 1;
    char *text = realloc(self->codecs_text, size);
    if (!text)
        return NULL;
    self->codecs_text = text;
    text[0] = '\0';
    json_array_foreach(codecs, index, name)
    {
        if (!json_is_string(name))
            continue;
        if (text[0])
            strcat(text, ",");
        strcat(text, json_string_value(name));
    }
    return text;
}

/* A string field of a device's record, or NULL. */
static const char *s_device_string(const sk2_client_t *self, const char *device_id, const char *key)
{
    json_t *value = json_object_get(s_device_record(self, device_id), key);
    return json_is_string(value) ? json_string_value(value) : NULL;
}

const char *sk2_client_device_serial(const sk2_client_t *self, const char *device_id)
{
    return s_device_string(self, device_id, "serial");
}

const char *sk2_client_device_label(const sk2_client_t *self, const char *device_id)
{
    return s_device_string(self, device_id, "label");
}

const char *sk2_client_device_location(const sk2_client_t *self, const char *device_id)
{
    return s_device_string(self, device_id, "location");
}

/* A rigid transform member of a device's record. */
static int s_device_rigid(const sk2_client_t *self, const char *device_id, const char *key,
                          double translation_max_m, double rotation[9], double translation[3])
{
    if (!self || !device_id || !rotation)
        return SK2_EINVAL;
    json_t *value = json_object_get(s_device_record(self, device_id), key);
    if (!value)
        return SK2_ENOTFOUND;
    char why[200];
    return sk2_rigid_from_json(value, translation_max_m, rotation, translation, why, sizeof why) ==
                   0
               ? 0
               : SK2_EPROTO;
}

int sk2_client_device_pose(const sk2_client_t *self, const char *device_id, sk2_pose_t *pose)
{
    return s_device_rigid(self, device_id, "pose", SK2_POSE_TRANSLATION_MAX_M,
                          pose ? pose->rotation : NULL, pose ? pose->translation : NULL);
}

int sk2_client_device_depth_to_color(const sk2_client_t *self, const char *device_id,
                                     sk2_extrinsics_t *extrinsics)
{
    return s_device_rigid(self, device_id, "depth_to_color", SK2_EXTRINSICS_TRANSLATION_MAX_M,
                          extrinsics ? extrinsics->rotation : NULL,
                          extrinsics ? extrinsics->translation : NULL);
}

const char *sk2_client_device_backend(const sk2_client_t *self, const char *device_id)
{
    return s_device_string(self, device_id, "backend");
}

int sk2_client_request_stats(sk2_client_t *self)
{
    return self ? s_request(self, SK2_MSG_STATS) : SK2_EINVAL;
}

int sk2_client_replay_control(sk2_client_t *self, const char *device_id, const char *action,
                              double position_s)
{
    sk2_replay_action_t parsed;
    if (!self || sk2_replay_action_parse(action, &parsed) != 0 || isnan(position_s) ||
        position_s < 0 || position_s > 1e9 || (device_id && strlen(device_id) > SK2_DEVICE_ID_MAX))
        return SK2_EINVAL;
    json_t *payload = json_pack("{s:s}", "action", action);
    if (payload && parsed == SK2_REPLAY_SEEK)
        json_object_set_new(payload, "position", json_real(position_s));
    if (payload && device_id)
        json_object_set_new(payload, "device", json_string(device_id));
    if (!payload)
        return SK2_ENOMEM;
    int rc = s_request_with(self, SK2_MSG_REPLAY, payload);
    json_decref(payload);
    return rc;
}

/* ---- Flow control (public) --------------------------------------------------------------- */

static int s_pause(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind,
                   bool is_pausing)
{
    if (!self || (unsigned)kind > SK2_STREAM_BODY)
        return SK2_EINVAL;
    unsigned bits = kind ? 1u << kind : S_KINDS_ALL;
    if (device_id) {
        if (!self->is_connected)
            return SK2_ESTATE;
        s_device_t *device = s_find_device(self, device_id);
        if (!device)
            return SK2_ENOTFOUND;
        s_set_paused(self, device, is_pausing ? device->paused | bits : device->paused & ~bits);
    } else {
        self->paused_default =
            is_pausing ? self->paused_default | bits : self->paused_default & ~bits;
        for (size_t i = 0; i < self->device_count; i++) {
            s_device_t *device = &self->devices[i];
            s_set_paused(self, device, is_pausing ? device->paused | bits : device->paused & ~bits);
        }
    }
    self->is_flow_on = true;
    /* A resume asks where the streams are: frames of before the pause may still wait below. */
    if (is_pausing || !s_sync_start(self))
        s_flow_send(self);
    return 0;
}

int sk2_client_pause(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind)
{
    return s_pause(self, device_id, kind, true);
}

int sk2_client_resume(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind)
{
    return s_pause(self, device_id, kind, false);
}

bool sk2_client_is_paused(const sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind)
{
    if (!self || (unsigned)kind > SK2_STREAM_BODY)
        return false;
    unsigned bits = kind ? 1u << kind : S_KINDS_ALL;
    if (!device_id)
        return (self->paused_default & bits) == bits;
    const s_device_t *device = s_find_device(self, device_id);
    return device && (device->paused & bits) == bits;
}

int sk2_client_set_queue_frames(sk2_client_t *self, unsigned frames)
{
    if (!self || frames > SK2_CLIENT_QUEUE_FRAMES_MAX)
        return SK2_EINVAL;
    self->queue_frames = frames;
    if (frames == 0) {
        /* Without a bound, frames go straight to events: hand out what the rings hold first,
         * in the order it came, so that nothing queued is lost or overtaken. */
        while (s_release(self))
            ;
    }
    for (size_t i = 0; i < self->device_count; i++)
        for (size_t k = 0; k < self->devices[i].subscription_count; k++) {
            sk2_ring_t *ring = &self->devices[i].subscriptions[k].ring;
            if (frames == 0)
                sk2_ring_clear(ring);
            else if (sk2_ring_resize(ring, frames, &self->frames_dropped) != 0)
                return SK2_ENOMEM; /* resized again, or dropped, as frames come */
        }
    self->is_flow_on = true;
    s_flow_send(self);
    return 0;
}

unsigned sk2_client_queue_frames(const sk2_client_t *self)
{
    return self ? self->queue_frames : 0;
}

uint64_t sk2_client_frames_dropped(const sk2_client_t *self)
{
    return self ? self->frames_dropped : 0;
}

uint64_t sk2_client_frames_queued(const sk2_client_t *self)
{
    return self ? s_queued(self) : 0;
}

const char *sk2_client_id(const sk2_client_t *self)
{
    return self ? self->id : NULL;
}
/* ---- Keyed commands ---------------------------------------------------------------------- */

/* Ends a command with one COMMAND_DONE event (the answer, or why there is none) and frees its
 * slot. reply may be NULL. */
static void s_command_end(sk2_client_t *self, s_command_t *command, int error, const char *reason,
                          json_t *reply)
{
    sk2_event_t *event = sk2_event_new(SK2_EVENT_COMMAND_DONE, NULL, error, reason);
    if (event) {
        event->command_id = strdup(command->id);
        event->command_sends = command->sends;
        event->rtt_us = reply ? sk2_clock_mono_us() - command->first_us : 0;
        const json_t *device = json_object_get(command->payload, "device");
        if (json_is_string(device))
            event->device_id = strdup(json_string_value(device));
        const json_t *code = json_object_get(reply, "code");
        if (json_is_string(code))
            event->command_code = strdup(json_string_value(code));
        if (reply)
            event->json = json_dumps(reply, JSON_COMPACT);
        if (!event->command_id || (reply && !event->json))
            sk2_event_destroy(&event);
    }
    sk2_event_queue_push(&self->queue, event);
    json_decref(command->payload);
    command->payload = NULL;
    self->command_count--;
}

/* Sends a command (again): a send that would block is simply the next one's job. */
static void s_command_send(sk2_client_t *self, s_command_t *command, int64_t now_us)
{
    command->next_send_us = now_us + (int64_t)SK2_CLIENT_COMMAND_RETRY_MS * 1000;
    if (!self->control || self->is_reconnecting)
        return;
    if (sk2_msg_send(zsock_resolve(self->control), true, SK2_MSG_COMMAND, command->payload) == 0) {
        if (command->sends == 0)
            command->first_us = now_us;
        command->sends++;
    }
}

static void s_command_timers(sk2_client_t *self, int64_t now_us)
{
    for (size_t i = 0; i < SK2_CLIENT_COMMAND_MAX; i++) {
        s_command_t *command = &self->commands[i];
        if (!command->payload)
            continue;
        if (now_us >= command->expires_us) {
            char reason[160];
            snprintf(reason, sizeof reason,
                     "no answer to command %s within its ttl (sent %u times)", command->id,
                     command->sends);
            s_command_end(self, command, SK2_ETIMEDOUT, reason, NULL);
        } else if (now_us >= command->next_send_us &&
                   command->sends < SK2_CLIENT_COMMAND_MAX_SENDS) {
            s_command_send(self, command, now_us);
        }
    }
}

static void s_command_reply(sk2_client_t *self, zmsg_t *reply)
{
    sk2_msg_t msg;
    if (s_parse_reply(self, reply, &msg) != 0)
        return;
    const json_t *id = json_object_get(msg.payload, "id");
    const json_t *ok = json_object_get(msg.payload, "ok");
    s_command_t *command = NULL;
    for (size_t c = 0; c < SK2_CLIENT_COMMAND_MAX && json_is_string(id) && !command; c++)
        if (self->commands[c].payload && streq(self->commands[c].id, json_string_value(id)))
            command = &self->commands[c];
    if (!json_is_boolean(ok) || !json_is_string(id)) {
        s_push_new(self, SK2_EVENT_ERROR, NULL, SK2_EPROTO,
                   "a command-reply without a string \"id\" and a boolean \"ok\"");
    } else if (!command) {
        /* The answer to a copy sent again, after the first answer came: nothing to do. */
        SK2_DEBUG("client", "answer to command %s again: already done", json_string_value(id));
    } else if (json_is_true(ok)) {
        s_command_end(self, command, 0, NULL, msg.payload);
    } else {
        const json_t *error = json_object_get(msg.payload, "error");
        s_command_end(self, command, SK2_ESERVER,
                      json_is_string(error) ? json_string_value(error) : "refused", msg.payload);
    }
    sk2_msg_clear(&msg);
}

int sk2_client_command(sk2_client_t *self, const char *device_id, const char *key,
                       const char *value_json, int ttl_ms, char *id, size_t id_size)
{
    if (!self || !key || !key[0] || strlen(key) > SK2_MSG_COMMAND_KEY_MAX ||
        (device_id && (!device_id[0] || strlen(device_id) > SK2_DEVICE_ID_MAX)) ||
        (ttl_ms != 0 && (ttl_ms < 100 || ttl_ms > 600000)) ||
        (id && id_size < SK2_CLIENT_COMMAND_ID_MAX + 1))
        return SK2_EINVAL;
    json_t *value = NULL;
    if (value_json) {
        json_error_t error;
        value = json_loads(value_json, JSON_DECODE_ANY, &error);
        if (!value || json_is_object(value) || json_is_array(value)) {
            json_decref(value);
            return SK2_EINVAL;
        }
    }
    int rc = 0;
    if (!self->is_connected || (!self->has_me && !self->is_reconnecting))
        rc = SK2_ESTATE;
    else if (self->me && !json_is_integer(json_object_get(self->me->payload, "commands")))
        rc = SK2_EUNSUPPORTED;
    else if (self->command_count == SK2_CLIENT_COMMAND_MAX)
        rc = SK2_ELIMIT;
    s_command_t *command = NULL;
    for (size_t i = 0; rc == 0 && i < SK2_CLIENT_COMMAND_MAX && !command; i++)
        if (!self->commands[i].payload)
            command = &self->commands[i];
    if (rc == 0 && !command)
        rc = SK2_ELIMIT;
    if (rc != 0) {
        json_decref(value);
        return rc;
    }
    if (ttl_ms == 0)
        ttl_ms = SK2_CLIENT_COMMAND_TTL_MS;
    snprintf(command->id, sizeof command->id, "%016llx-%llu",
             (unsigned long long)self->command_prefix, (unsigned long long)++self->command_number);
    json_t *payload = json_pack("{s:s, s:s, s:i}", "id", command->id, "key", key, "ttl_ms", ttl_ms);
    if (payload && device_id)
        json_object_set_new(payload, "device", json_string(device_id));
    if (payload && value)
        json_object_set_new(payload, "value", value);
    else
        json_decref(value);
    if (!payload || (device_id && !json_object_get(payload, "device"))) {
        json_decref(payload);
        return SK2_ENOMEM;
    }
    int64_t now_us = sk2_clock_mono_us();
    command->payload = payload;
    command->sends = 0;
    command->first_us = now_us;
    command->expires_us = now_us + (int64_t)ttl_ms * 1000;
    self->command_count++;
    s_command_send(self, command, now_us);
    if (id)
        snprintf(id, id_size, "%s", command->id);
    return 0;
}

/* ---- One clock ------------------------------------------------------------------------- */

int sk2_client_clock(const sk2_client_t *self, sk2_clock_estimate_t *out)
{
    if (!out)
        return SK2_EINVAL;
    *out = (sk2_clock_estimate_t){
        .server_synced = -1, .server_maxerror_us = -1, .server_esterror_us = -1};
    if (!self)
        return SK2_EINVAL;
    out->is_supported = self->is_clock_on && !self->is_clock_refused;
    out->is_settling = out->is_supported && self->clock_burst > 0;
    sk2_estimate_t estimate = sk2_estimator_at(&self->clock, sk2_clock_wall_us());
    if (!estimate.is_valid)
        return out->is_supported ? SK2_EAGAIN : SK2_EUNSUPPORTED;
    const sk2_clock_discipline_t *d = &self->clock_discipline;
    out->is_valid = true;
    out->offset_us = estimate.offset_us;
    out->rtt_us = estimate.rtt_us;
    out->error_us = estimate.error_us;
    out->has_drift = estimate.has_drift;
    out->drift_ppm = estimate.drift_ppm;
    out->samples = self->clock.samples;
    out->server_synced = d->is_known ? d->is_synced : -1;
    out->server_maxerror_us = d->is_known ? d->maxerror_us : -1;
    out->server_esterror_us = d->is_known ? d->esterror_us : -1;
    return 0;
}

int64_t sk2_client_to_local_us(const sk2_client_t *self, int64_t server_us)
{
    if (!self)
        return server_us;
    /* The offset at the moment in question rather than now: with drift measured they differ
     * by drift x age. That moment in our clock is server_us - offset, to well under a µs of
     * what a second iteration would give. */
    sk2_estimate_t now = sk2_estimator_at(&self->clock, sk2_clock_wall_us());
    if (!now.is_valid)
        return server_us;
    sk2_estimate_t then = sk2_estimator_at(&self->clock, server_us - now.offset_us);
    return server_us - then.offset_us;
}

int64_t sk2_client_to_server_us(const sk2_client_t *self, int64_t local_us)
{
    if (!self)
        return local_us;
    sk2_estimate_t then = sk2_estimator_at(&self->clock, local_us);
    return then.is_valid ? local_us + then.offset_us : local_us;
}
