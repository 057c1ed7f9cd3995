/* The server: a front end (sk2_server_t) over an actor thread that owns the control socket
 * (a ROUTER that answers each peer by its envelope, as version 1's REP did) and the table of
 * device pipelines. The front end only sends commands down the actor
 * pipe and waits for the answer, so no server state is ever shared between threads.
 *
 * The control loop answers every request with exactly one reply, promptly: it never waits on
 * a device or an encoder, and refuses anything malformed with an error naming the problem.
 * Device work that can take long (open, start, stop, join, close, and trying lost devices
 * again) runs on a life-cycle worker (src/server/lifecycle.c) that this actor owns: the actor
 * sends it requests and reads its results in its poll loop, and keeps only the table of
 * devices being served. While the front end waits for an add or a removal, the actor goes on
 * answering clients and replies to the front end when the worker's result arrives.
 * Announcing over DNS-SD runs in its own actor (src/discovery/announcer.c), which this one
 * owns, tells the device count and reads state changes from without ever waiting on it. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <czmq.h>
#include <jansson.h>

#include "core/log_internal.h"
#include "core/runtime.h"
#include "discovery/announcer.h"
#include "proto/clock.h"
#include "proto/me.h"
#include "proto/msg.h"
#include "proto/socket.h"
#include "server/address.h"
#include "server/clients.h"
#include "server/command.h"
#include "server/lifecycle.h"
#include "server/pipeline.h"
#include "server/zap.h"
#include "sk2/codec.h"
#include "sk2/error.h"
#include "sk2/recording.h"
#include "sk2/server.h"

#define SK2_MAX_DEVICES          256
#define SK2_DEFAULT_QUEUE_FRAMES 2
/* How often the actor looks for lost devices while it serves any. */
#define S_WATCH_MS 200
/* Control requests answered per turn of the poll loop (see s_answer_batch). */
#define S_CONTROL_BATCH 32
/* Messages the control socket queues per peer. A client has at most a few requests in flight
 * (sk2's a ping and a who, a REQ socket one), so these only bound what a peer that floods or
 * stops reading can make the server hold: beyond S_CONTROL_RCVHWM libzmq stops reading that
 * peer's connection (each message's frames are at most SK2_LIMIT_CONTROL_WIRE), and beyond
 * S_CONTROL_SNDHWM answers to it are dropped. */
#define S_CONTROL_RCVHWM 16
#define S_CONTROL_SNDHWM 64

/* What the front end is waiting for, if anything: it makes one call at a time. */
typedef enum { S_WAIT_NONE, S_WAIT_ADD, S_WAIT_REMOVE } s_wait_t;

/* Tags of RETIRE requests: whether the front end waits for the result. */
#define S_TAG_QUIET 0
#define S_TAG_FRONT 1

struct sk2_server {
    zactor_t *actor;                    /* owns everything below the pipe */
    char *name;                         /* server name, UTF-8 */
    char endpoint[128];                 /* advertised control endpoint, "" before bind */
    uint16_t port;                      /* bound control port, 0 before bind */
    char announced_name[64];            /* last answer of sk2_server_announced_name() */
    char announce_reason[256];          /* last answer of sk2_server_announce_reason() */
    char public_key[SK2_KEY_TEXT_SIZE]; /* Z85, "" unless secure */
};

typedef struct {
    zsock_t *pipe;                              /* commands from the front end */
    zsock_t *control;                           /* ROUTER, NULL until bound */
    zpoller_t *poller;                          /* pipe (+ control once bound) */
    const char *name;                           /* borrowed from the front end */
    sk2_address_t address;                      /* where we bound, what we advertise */
    char endpoint[128];                         /* advertised control endpoint */
    unsigned queue_frames;                      /* per-device encoder queue */
    int jpeg_quality;                           /* for devices added from now on */
    size_t max_frame_bytes;                     /* the frame budget of every device */
    sk2_pipeline_t *pipelines[SK2_MAX_DEVICES]; /* devices, in order of addition */
    size_t count;                               /* entries used in pipelines */
    json_t *me;                                 /* cached `me` payload, rebuilt on change */
    sk2_server_stats_t retired;                 /* counters of devices already removed */
    uint64_t requests;                          /* control requests answered */
    uint64_t bad_requests;                      /* of which with an error */
    uint64_t control_dropped;                   /* answers dropped: peer gone or not reading */
    uint64_t control_ignored;                   /* messages without a request envelope */
    sk2_stream_cap_t cap;       /* encodings of all devices' streams endpoints; outlives them */
    bool is_announced;          /* announce once bound */
    sk2_announcer_t *announcer; /* while announcing */
    zactor_t *worker;           /* the life-cycle worker */
    s_wait_t waiting;           /* the front end's call in progress */
    char waiting_id[SK2_DEVICE_ID_MAX + 1]; /* the id it removes, for S_WAIT_REMOVE */
    sk2_curve_t curve;                      /* the server's keys, when secure */
    sk2_zap_t *zap;                         /* checks client keys, when secure */
    sk2_clients_t *clients;                 /* flow states clients sent (clients.h) */
    sk2_commands_t *commands;               /* keyed commands: keys, metadata, recent ids */
    int64_t clock_offset_us;                /* added to every time reported (--clock-offset-ms) */
} s_actor_t;

/* ---- The actor ------------------------------------------------------------------------ */

static void s_rebuild_me(s_actor_t *self)
{
    json_t *devices = json_array();
    for (size_t i = 0; i < self->count; i++) /* v1 fields first, then sk2's additions */
        json_array_append_new(devices, sk2_commands_describe(self->commands, self->pipelines[i]));
    json_decref(self->me);
    /* max_frame_bytes is an addition version-1 clients ignore: sk2 clients compare it with
     * their own budget and say so when theirs is lower. `commands` says that the server
     * answers keyed commands (version 1 of that channel), `clock` that it answers clock
     * exchanges (0x0d), which sk2 clients send only to a server that says so. */
    self->me =
        json_pack("{s:i, s:s, s:{s:s}, s:o, s:I, s:i, s:i}", "version", 1, "name", self->name,
                  "endpoints", "control", self->endpoint, "devices", devices, "max_frame_bytes",
                  (json_int_t)self->max_frame_bytes, "commands", 1, "clock", 1);
}

static void s_stats(s_actor_t *self, sk2_server_stats_t *stats);

/* The `stats` reply: server totals and, per device, per stream and per codec. */
static json_t *s_stats_json(s_actor_t *self)
{
    sk2_server_stats_t totals;
    s_stats(self, &totals);
    json_t *devices = json_array();
    for (size_t i = 0; i < self->count; i++)
        json_array_append_new(devices, sk2_pipeline_stats_json(self->pipelines[i]));
    json_t *stats = json_pack(
        "{s:i, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:o}", "version", 1, "totals",
        "frames_produced", (json_int_t)totals.frames_produced, "frames_encoded",
        (json_int_t)totals.frames_encoded, "frames_published", (json_int_t)totals.frames_published,
        "frames_idle", (json_int_t)totals.frames_idle, "frames_dropped",
        (json_int_t)totals.frames_dropped, "encodings", (json_int_t)totals.encodings, "bytes_raw",
        (json_int_t)totals.bytes_raw, "bytes_published", (json_int_t)totals.bytes_published,
        "requests", (json_int_t)totals.requests, "bad_requests", (json_int_t)totals.bad_requests,
        "devices", devices);
    /* sk2's later additions, after the fields clients already know. */
    json_t *sums = json_object_get(stats, "totals");
    json_object_set_new(sums, "control_dropped", json_integer((json_int_t)totals.control_dropped));
    json_object_set_new(sums, "control_ignored", json_integer((json_int_t)totals.control_ignored));
    json_object_set_new(sums, "streams_refused", json_integer((json_int_t)totals.streams_refused));
    sk2_command_stats_t commands;
    sk2_commands_stats(self->commands, &commands);
    json_object_set_new(sums, "commands", json_integer((json_int_t)commands.received));
    json_object_set_new(sums, "commands_applied", json_integer((json_int_t)commands.applied));
    json_object_set_new(sums, "commands_repeated", json_integer((json_int_t)commands.repeated));
    json_object_set_new(sums, "commands_refused", json_integer((json_int_t)commands.refused));
    json_object_set_new(stats, "max_streams", json_integer(atomic_load(&self->cap.max_streams)));
    json_object_set_new(stats, "streams_encoding", json_integer(atomic_load(&self->cap.active)));
    if (self->clients)
        json_object_set_new(stats, "clients", sk2_clients_json(self->clients, sk2_clock_mono_us()));
    return stats;
}

/* The `replay` request (docs/protocol.md): finds the replay device named by "device" (or the
 * only one), applies "action" through the device's own thread-safe control call, and answers
 * where the replay is. Sets *is_error and returns an error payload for a request it refuses. */
static json_t *s_replay_control(s_actor_t *self, const json_t *request, bool *is_error)
{
    *is_error = true;
    const json_t *device_id = json_object_get(request, "device");
    const json_t *action_name = json_object_get(request, "action");
    const json_t *position = json_object_get(request, "position");
    sk2_replay_action_t action;
    if (!json_is_object(request) || !json_is_string(action_name) ||
        sk2_replay_action_parse(json_string_value(action_name), &action) != 0 ||
        (device_id && !json_is_string(device_id)) ||
        (action == SK2_REPLAY_SEEK && !json_is_number(position)))
        return sk2_msg_error_payload("replay takes {\"device\": ID, \"action\": \"pause\", "
                                     "\"resume\", \"seek\" (with \"position\": seconds) or "
                                     "\"status\"}");
    sk2_pipeline_t *found = NULL;
    size_t replays = 0;
    for (size_t i = 0; i < self->count; i++) {
        sk2_device_t *device = sk2_pipeline_device(self->pipelines[i]);
        bool is_replay = streq(sk2_device_backend(device), "replay");
        replays += is_replay;
        if (device_id
                ? streq(sk2_pipeline_device_id(self->pipelines[i]), json_string_value(device_id))
                : is_replay && !found)
            found = self->pipelines[i];
    }
    if (!found || (!device_id && replays > 1))
        return sk2_msg_error_payload(!found && device_id ? "no such device"
                                     : !found            ? "this server plays no recording"
                                                         : "several replays: name the device");
    sk2_replay_status_t status;
    int rc = sk2_device_replay_control(sk2_pipeline_device(found), action,
                                       position ? json_number_value(position) : 0.0, &status);
    if (rc != 0)
        return sk2_msg_error_payload(rc == SK2_EUNSUPPORTED ? "the device is not a replay"
                                     : rc == SK2_EINVAL     ? "position must be 0 or more seconds"
                                                            : sk2_strerror(rc));
    *is_error = false;
    return json_pack("{s:s, s:s, s:s, s:b, s:f, s:f, s:I, s:I, s:I, s:I}", "device",
                     sk2_pipeline_device_id(found), "action", sk2_replay_action_name(action),
                     "state",
                     status.is_paused    ? "paused"
                     : status.is_waiting ? "waiting"
                     : status.is_ended   ? "ended"
                                         : "playing",
                     "listened", status.is_listened, "position", status.position_s, "duration",
                     status.duration_s, "frame", (json_int_t)status.position, "frames",
                     (json_int_t)status.frames, "played", (json_int_t)status.played, "loops",
                     (json_int_t)status.loops);
}

/* One request as the ROUTER hands it over: the peer's routing id, the routing stack a REP
 * socket would keep (the frames up to and including the empty delimiter), then the request.
 * Only the first S_KEPT_FRAMES frames are kept; the rest are read and freed at once, so a
 * message of many frames costs the server no more than one of a few. */
#define S_MAX_HOPS    8                /* routing frames a request may carry before its delimiter */
#define S_KEPT_FRAMES (S_MAX_HOPS + 5) /* id, hops, delimiter, and three request frames */

typedef struct {
    zmq_msg_t frames[S_KEPT_FRAMES];
    size_t kept;  /* frames initialised in `frames` */
    size_t total; /* frames the message had */
} s_request_t;

/* Reads one whole message off the control socket without waiting. Returns false if none was
 * there (nothing to close then). */
static bool s_request_read(void *socket, s_request_t *request)
{
    request->kept = request->total = 0;
    zmq_msg_t scratch;
    bool is_more = true;
    while (is_more) {
        zmq_msg_t *frame =
            request->kept < S_KEPT_FRAMES ? &request->frames[request->kept] : &scratch;
        zmq_msg_init(frame);
        /* The first frame decides whether there is a message; the rest of it has arrived with
         * it (libzmq delivers a message whole), so these never wait. */
        if (zmq_msg_recv(frame, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(frame);
            return request->total > 0;
        }
        is_more = zmq_msg_more(frame);
        request->total++;
        if (frame == &scratch)
            zmq_msg_close(&scratch);
        else
            request->kept++;
    }
    return true;
}

static void s_request_close(s_request_t *request)
{
    for (size_t i = 0; i < request->kept; i++)
        zmq_msg_close(&request->frames[i]);
    request->kept = 0;
}

/* Sends one answer to the peer the request came from, with its envelope, never waiting: an
 * answer for a peer whose queue is full (it does not read) or who has gone is dropped and
 * counted. With ZMQ_ROUTER_MANDATORY, libzmq says which on the routing frame, before anything
 * of the message is queued. */
static void s_send_answer(s_actor_t *self, s_request_t *request, size_t envelope,
                          sk2_msg_type_t type, const json_t *payload)
{
    void *socket = zsock_resolve(self->control);
    for (size_t i = 0; i < envelope; i++) {
        zmq_msg_t copy;
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, &request->frames[i]);
        if (zmq_msg_send(&copy, socket, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&copy);
            /* Only the routing frame can be refused: once it is taken, libzmq takes the rest
             * of the message (or drops it whole if the peer vanished meanwhile). */
            self->control_dropped++;
            static sk2_ratelimit_t limit;
            uint64_t held = 0;
            if (sk2_ratelimit_pass(&limit, 5000000, &held))
                SK2_INFO("server",
                         "answer dropped: the client %s (%llu more dropped answers not logged)",
                         zmq_errno() == EAGAIN ? "does not read its answers" : "has gone",
                         (unsigned long long)held);
            return;
        }
    }
    if (sk2_msg_send(socket, false, type, payload) != 0)
        self->control_dropped++;
}

/* Adds to a `flow` reply where each stream is now: the sequence number of the newest frame
 * every device's streams produced. A client that was away or paused tells by it which of the
 * frames still on their way to it are stale (they waited in ZeroMQ's and the kernel's buffers,
 * which no server option can bound for one subscriber of an XPUB without bounding them for
 * all). At most SK2_MAX_DEVICES x 4 entries, well inside the control payload limit. */
static void s_flow_sequences(s_actor_t *self, json_t *reply)
{
    json_t *sequences = json_array();
    for (size_t i = 0; sequences && i < self->count; i++)
        for (int kind = SK2_STREAM_DEPTH; kind <= SK2_STREAM_BODY; kind++) {
            uint64_t sequence;
            if (sk2_pipeline_newest_sequence(self->pipelines[i], (sk2_stream_kind_t)kind,
                                             &sequence) == 0)
                sk2_clients_add_sequence(sequences, sk2_pipeline_device_id(self->pipelines[i]),
                                         (sk2_stream_kind_t)kind, sequence);
        }
    json_object_set_new(reply, "sequences", sequences ? sequences : json_array());
}

/* A client's `flow` (clients.h): remembered and acknowledged, or refused with the reason and
 * nothing changed. */
static void s_flow(s_actor_t *self, s_request_t *request, size_t envelope, const json_t *payload)
{
    char why[256];
    json_t *reply = NULL;
    int rc = self->clients ? sk2_clients_update(self->clients, payload, sk2_clock_mono_us(), &reply,
                                                why, sizeof why)
                           : SK2_ENOMEM;
    if (rc == SK2_ENOMEM)
        snprintf(why, sizeof why, "the server cannot keep flow states (out of memory)");
    if (rc != 0) {
        self->bad_requests++;
        static sk2_ratelimit_t limit;
        uint64_t held = 0;
        if (sk2_ratelimit_pass(&limit, 5000000, &held))
            SK2_WARN("server", "flow refused: %s (%llu more not logged)", why,
                     (unsigned long long)held);
        reply = sk2_msg_error_payload(why);
    }
    if (rc == 0)
        s_flow_sequences(self, reply);
    s_send_answer(self, request, envelope, rc == 0 ? SK2_MSG_FLOW_REPLY : SK2_MSG_ERROR, reply);
    json_decref(reply);
}

/* A clock exchange: the client's t1 back with our receive and send times, in the clock we
 * report (the host's plus --clock-offset-ms), and what the kernel says of the host's clock.
 * Answered here at once, so that the time between t2 and t3 is this function alone. */
static void s_clock(s_actor_t *self, s_request_t *request, size_t envelope, const json_t *payload,
                    int64_t received_us)
{
    char why[256];
    sk2_clock_reply_t reply = {.t2_us = received_us + self->clock_offset_us};
    json_t *answer = NULL;
    if (sk2_clock_request_parse(payload, &reply.t1_us, why, sizeof why) == 0) {
        sk2_clock_discipline_read(&reply.discipline);
        reply.t3_us = sk2_clock_wall_us() + self->clock_offset_us;
        answer = sk2_clock_reply_payload(&reply);
        if (!answer)
            snprintf(why, sizeof why, "clock: this server's clock is out of range");
    }
    if (!answer) {
        self->bad_requests++;
        answer = sk2_msg_error_payload(why);
    }
    s_send_answer(self, request, envelope,
                  json_object_get(answer, "reason") ? SK2_MSG_ERROR : SK2_MSG_CLOCK_REPLY, answer);
    json_decref(answer);
}

/* Answers one request read off the ROUTER, the way the REP socket of version 1 did: the reply
 * goes back with the routing stack the request came with. A message without an empty
 * delimiter, or with nothing after it, or with more than S_MAX_HOPS routing frames, has no
 * envelope a REP socket would have answered to: it is ignored (and counted). */
static void s_answer(s_actor_t *self, s_request_t *request)
{
    int64_t received_us = sk2_clock_wall_us(); /* for a clock exchange's t2 */
    size_t delimiter = 0;
    for (size_t i = 1; i < request->kept && i <= S_MAX_HOPS + 1 && !delimiter; i++)
        if (zmq_msg_size(&request->frames[i]) == 0)
            delimiter = i;
    if (delimiter == 0 || delimiter + 1 >= request->total) {
        self->control_ignored++;
        static sk2_ratelimit_t limit;
        uint64_t held = 0;
        if (sk2_ratelimit_pass(&limit, 5000000, &held))
            SK2_WARN("server",
                     "control message of %zu frames ignored: no request envelope (%llu more "
                     "not logged)",
                     request->total - 1, (unsigned long long)held);
        return;
    }
    size_t envelope = delimiter + 1;
    /* Look at no more than three frames: three already makes the message invalid. */
    const uint8_t *frames[3];
    size_t sizes[3];
    size_t count = request->total - envelope;
    for (size_t i = 0; i < 3 && envelope + i < request->kept; i++) {
        frames[i] = zmq_msg_data(&request->frames[envelope + i]);
        sizes[i] = zmq_msg_size(&request->frames[envelope + i]);
    }
    sk2_msg_t msg;
    char why[256];
    int rc = sk2_msg_parse(count, frames, sizes, SK2_MSG_FROM_CLIENT, &msg, why, sizeof why);
    self->requests++;
    if (rc != 0) {
        self->bad_requests++;
        static sk2_ratelimit_t limit;
        uint64_t held = 0;
        if (sk2_ratelimit_pass(&limit, 5000000, &held))
            SK2_WARN("server", "bad request answered with an error: %s (%llu more not logged)", why,
                     (unsigned long long)held);
        json_t *error = sk2_msg_error_payload(why);
        s_send_answer(self, request, envelope, SK2_MSG_ERROR, error);
        json_decref(error);
        return;
    }
    if (msg.type == SK2_MSG_PING) {
        SK2_DEBUG("server", "ping");
        s_send_answer(self, request, envelope, SK2_MSG_PONG, NULL);
    } else if (msg.type == SK2_MSG_STATS) {
        json_t *stats = s_stats_json(self);
        s_send_answer(self, request, envelope, SK2_MSG_STATS_REPLY, stats);
        json_decref(stats);
    } else if (msg.type == SK2_MSG_FLOW) {
        s_flow(self, request, envelope, msg.payload);
    } else if (msg.type == SK2_MSG_CLOCK) {
        s_clock(self, request, envelope, msg.payload, received_us);
    } else if (msg.type == SK2_MSG_REPLAY) {
        bool is_error = false;
        json_t *reply = s_replay_control(self, msg.payload, &is_error);
        self->bad_requests += is_error;
        s_send_answer(self, request, envelope, is_error ? SK2_MSG_ERROR : SK2_MSG_REPLAY_REPLY,
                      reply);
        json_decref(reply);
    } else if (msg.type == SK2_MSG_COMMAND) {
        int type = SK2_MSG_COMMAND_REPLY;
        bool me_changed = false;
        json_t *reply = sk2_commands_answer(self->commands, msg.payload, self->pipelines,
                                            self->count, &type, &me_changed);
        self->bad_requests += type == SK2_MSG_ERROR;
        if (me_changed)
            s_rebuild_me(self);
        if (reply)
            s_send_answer(self, request, envelope, (sk2_msg_type_t)type, reply);
        else
            self->control_dropped++;
        json_decref(reply);
    } else {
        if (!self->me)
            s_rebuild_me(self);
        s_send_answer(self, request, envelope, SK2_MSG_ME, self->me);
    }
    sk2_msg_clear(&msg);
}

/* Answers what the control socket holds, up to S_CONTROL_BATCH requests, so that the actor
 * gets back to its other sockets between batches however fast requests come. The ROUTER
 * takes one message from each peer in turn, so a peer that floods gets its share of these
 * turns and no more. */
static void s_answer_batch(s_actor_t *self)
{
    s_request_t request;
    for (int i = 0; i < S_CONTROL_BATCH; i++) {
        if (!s_request_read(zsock_resolve(self->control), &request))
            break;
        s_answer(self, &request);
        s_request_close(&request);
    }
}

static int s_bind(s_actor_t *self, const char *address, int port)
{
    if (self->control)
        return SK2_ESTATE;
    int rc = sk2_address_resolve(address, &self->address);
    if (rc != 0)
        return rc;
    /* A ROUTER, not a REP: a REP answers one request at a time and must send before it reads
     * again, so one peer's garbage or silence held up everyone's answers. The ROUTER answers
     * each peer by its envelope (s_answer) and never waits to send (ROUTER_MANDATORY makes a
     * full or vanished peer an error on a non-blocking send, so its answer is dropped and
     * counted rather than queued). */
    self->address.curve = self->curve;
    zsock_t *control = zsock_new(ZMQ_ROUTER);
    if (!control)
        return SK2_ENOMEM;
    if (sk2_socket_set_curve_server(control, &self->curve) != 0 ||
        sk2_socket_set_maxmsgsize(control, SK2_MSG_MAX_WIRE) != 0 ||
        sk2_socket_set_int(control, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_int(control, ZMQ_ROUTER_MANDATORY, 1) != 0 ||
        sk2_socket_set_int(control, ZMQ_SNDHWM, S_CONTROL_SNDHWM) != 0 ||
        sk2_socket_set_int(control, ZMQ_RCVHWM, S_CONTROL_RCVHWM) != 0 ||
        (self->address.is_ipv6 && sk2_socket_set_int(control, ZMQ_IPV6, 1) != 0)) {
        zsock_destroy(&control);
        return SK2_EBIND;
    }
    int bound = port ? zsock_bind(control, "tcp://%s:%d", self->address.bind_host, port)
                     : sk2_address_bind_ephemeral(zsock_resolve(control), self->address.bind_host);
    if (bound < 0) {
        SK2_ERROR("server", "cannot bind tcp://%s:%d: %s", self->address.bind_host, port,
                  zmq_strerror(zmq_errno()));
        zsock_destroy(&control);
        return SK2_EBIND;
    }
    if (port)
        bound = port; /* zsock_bind returns 0, not the port, for an explicit port */
    sk2_address_endpoint(self->address.advertise_host, bound, self->endpoint,
                         sizeof self->endpoint);
    self->control = control;
    zpoller_add(self->poller, control);
    SK2_INFO("server", "\"%s\" answering on %s", self->name, self->endpoint);
    if (self->is_announced) {
        self->announcer = sk2_announcer_new(
            self->name, (uint16_t)bound, sk2_address_interface(&self->address),
            (unsigned)self->count, self->curve.is_on ? self->curve.public_key : NULL);
        if (self->announcer)
            zpoller_add(self->poller, sk2_announcer_actor(self->announcer));
        else
            SK2_WARN("server", "cannot announce \"%s\": out of memory", self->name);
    }
    return bound;
}

/* Tells the worker the settings for devices it opens from now on. */
static void s_send_config(s_actor_t *self)
{
    zsock_send(self->worker, "sbii", "CONFIG", &self->address, sizeof self->address,
               (int)self->queue_frames, self->jpeg_quality);
}

static ssize_t s_find(const s_actor_t *self, const char *id)
{
    for (size_t i = 0; i < self->count; i++)
        if (streq(sk2_pipeline_device_id(self->pipelines[i]), id))
            return (ssize_t)i;
    return -1;
}

/* The device table changed: rebuild `me` and tell the announcer. */
static void s_changed(s_actor_t *self)
{
    s_rebuild_me(self);
    if (self->announcer)
        sk2_announcer_set_devices(self->announcer, (unsigned)self->count);
}

/* Hands a pipeline to the worker to stop and destroy (its final counters come back). */
static void s_retire(s_actor_t *self, sk2_pipeline_t *pipeline, int tag, bool is_lost)
{
    sk2_handoff_release(pipeline);
    zsock_send(self->worker, "spii", "RETIRE", pipeline, tag, is_lost ? 1 : 0);
}

/* Checks what can be checked here, then lets the worker open and start the device; the front
 * end gets its answer when the worker's ADDED arrives. */
static void s_add(s_actor_t *self, sk2_device_t *device)
{
    int verdict = 0;
    if (!self->control)
        verdict = SK2_ESTATE;
    else if (self->count == SK2_MAX_DEVICES)
        verdict = SK2_ELIMIT;
    else if (s_find(self, sk2_device_id(device)) >= 0)
        verdict = SK2_EEXIST;
    self->waiting = S_WAIT_ADD;
    if (device)
        sk2_handoff_release(device);
    zsock_send(self->worker, "spi", "ADD", device, verdict);
}

/* Takes a started pipeline into the table, or gives it back to the worker if it cannot be
 * served after all (an add or a return raced with another of the same id, or the table
 * filled up meanwhile). Returns 0, SK2_EEXIST or SK2_ELIMIT. */
static int s_take(s_actor_t *self, sk2_pipeline_t *pipeline)
{
    int rc = s_find(self, sk2_pipeline_device_id(pipeline)) >= 0 ? SK2_EEXIST
             : self->count == SK2_MAX_DEVICES                    ? SK2_ELIMIT
                                                                 : 0;
    if (rc != 0) {
        s_retire(self, pipeline, S_TAG_QUIET, false);
        return rc;
    }
    sk2_pipeline_set_max_frame_bytes(pipeline, self->max_frame_bytes);
    sk2_pipeline_set_clock_offset_us(pipeline, self->clock_offset_us);
    self->pipelines[self->count++] = pipeline;
    s_changed(self);
    return 0;
}

/* Takes the pipeline out of the table and hands it to the worker. */
static void s_remove_at(s_actor_t *self, size_t index, int tag, bool is_lost)
{
    sk2_pipeline_t *pipeline = self->pipelines[index];
    memmove(&self->pipelines[index], &self->pipelines[index + 1],
            (self->count - index - 1) * sizeof self->pipelines[0]);
    self->count--;
    s_changed(self);
    s_retire(self, pipeline, tag, is_lost);
}

/* A served device goes now (the front end hears when the worker has stopped it); a lost one
 * waiting to come back is the application's to give up on, too, and only the worker knows
 * those. */
static void s_remove(s_actor_t *self, const char *id)
{
    snprintf(self->waiting_id, sizeof self->waiting_id, "%s", id);
    self->waiting = S_WAIT_REMOVE;
    ssize_t index = s_find(self, id);
    if (index >= 0) {
        SK2_INFO("server", "device %s removed", id);
        s_remove_at(self, (size_t)index, S_TAG_FRONT, false);
    } else {
        zsock_send(self->worker, "ss", "FORGET", id);
    }
}

/* Turns lost devices into removals that clients see in `me`; the worker keeps a replacement of
 * each and tries to open it now and then. */
static void s_watch(s_actor_t *self)
{
    for (size_t i = self->count; i-- > 0;) {
        if (!sk2_pipeline_is_lost(self->pipelines[i]))
            continue;
        SK2_WARN("server", "device %s lost: removed until it is back",
                 sk2_pipeline_device_id(self->pipelines[i]));
        s_remove_at(self, i, S_TAG_QUIET, true);
    }
}

static void s_reply(s_actor_t *self, int rc)
{
    self->waiting = S_WAIT_NONE;
    zsock_send(self->pipe, "i", rc);
}

static void s_pointer(zmsg_t *msg, void **pointer)
{
    zframe_t *frame = zmsg_pop(msg);
    *pointer = NULL;
    if (frame && zframe_size(frame) == sizeof *pointer)
        memcpy(pointer, zframe_data(frame), sizeof *pointer);
    zframe_destroy(&frame);
}

static int s_int(zmsg_t *msg)
{
    char *text = zmsg_popstr(msg);
    int value = text ? atoi(text) : SK2_EINVAL;
    zstr_free(&text);
    return value;
}

/* Handles one result from the worker. Returns false once it has said STOPPED. While shutting
 * down (is_stopping), pipelines it hands over are destroyed here: nobody waits for replies any
 * more, so blocking is fine. */
static bool s_result(s_actor_t *self, bool is_stopping)
{
    zmsg_t *msg = zmsg_recv(self->worker);
    if (!msg)
        return false;
    char *what = zmsg_popstr(msg);
    bool keep_going = what && !streq(what, "STOPPED");
    if (what && (streq(what, "ADDED") || streq(what, "BACK"))) {
        bool is_added = streq(what, "ADDED");
        int rc = is_added ? s_int(msg) : 0;
        void *pointer = NULL;
        s_pointer(msg, &pointer);
        if (pointer)
            sk2_handoff_acquire(pointer);
        sk2_pipeline_t *pipeline = pointer;
        if (is_stopping) {
            sk2_pipeline_destroy(&pipeline, NULL);
        } else {
            if (rc == 0 && pipeline) {
                char id[SK2_DEVICE_ID_MAX + 1];
                snprintf(id, sizeof id, "%s", sk2_pipeline_device_id(pipeline));
                rc = s_take(self, pipeline);
                if (rc == 0 && is_added)
                    SK2_INFO("server", "device %s added, depth on %s", id,
                             sk2_pipeline_depth_endpoint(self->pipelines[self->count - 1]));
                else if (rc == 0)
                    SK2_INFO("server", "device %s is back", id);
                else if (!is_added)
                    SK2_ERROR("server", "device %s is back but cannot be served: %s", id,
                              sk2_strerror(rc));
            } else if (rc == 0) {
                rc = SK2_ESYS;
            }
            if (is_added && self->waiting == S_WAIT_ADD)
                s_reply(self, rc);
        }
    } else if (what && streq(what, "RETIRED")) {
        int tag = s_int(msg);
        zframe_t *frame = zmsg_pop(msg);
        if (frame && zframe_size(frame) == sizeof(sk2_server_stats_t)) {
            sk2_server_stats_t stats;
            memcpy(&stats, zframe_data(frame), sizeof stats);
            self->retired.frames_produced += stats.frames_produced;
            self->retired.frames_encoded += stats.frames_encoded;
            self->retired.frames_published += stats.frames_published;
            self->retired.frames_idle += stats.frames_idle;
            self->retired.frames_dropped += stats.frames_dropped;
            self->retired.encodings += stats.encodings;
            self->retired.bytes_raw += stats.bytes_raw;
            self->retired.bytes_published += stats.bytes_published;
            self->retired.encode_time_us += stats.encode_time_us;
        }
        zframe_destroy(&frame);
        if (tag == S_TAG_FRONT && self->waiting == S_WAIT_REMOVE && !is_stopping)
            s_reply(self, 0);
    } else if (what && streq(what, "FORGOT")) {
        int rc = s_int(msg);
        if (self->waiting == S_WAIT_REMOVE && !is_stopping) {
            /* A lost device that came back just before the request is in the table now. */
            ssize_t index = rc == 0 ? -1 : s_find(self, self->waiting_id);
            if (index >= 0) {
                SK2_INFO("server", "device %s removed", self->waiting_id);
                s_remove_at(self, (size_t)index, S_TAG_FRONT, false);
            } else {
                s_reply(self, rc);
            }
        }
    } else if (keep_going) {
        SK2_ERROR("server", "internal: unknown life-cycle result %s", what);
    }
    zstr_free(&what);
    zmsg_destroy(&msg);
    return keep_going;
}

static void s_stats(s_actor_t *self, sk2_server_stats_t *stats)
{
    *stats = self->retired;
    for (size_t i = 0; i < self->count; i++)
        sk2_pipeline_add_stats(self->pipelines[i], stats);
    stats->devices = (uint32_t)self->count;
    stats->requests = self->requests;
    stats->bad_requests = self->bad_requests;
    stats->control_dropped = self->control_dropped;
    stats->control_ignored = self->control_ignored;
    stats->streams_refused = atomic_load(&self->cap.refused);
}

/* Handles one command from the front end; returns false on $TERM. */
static bool s_command(s_actor_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr(msg);
    bool keep_going = true;
    if (!command || streq(command, "$TERM")) {
        keep_going = false;
    } else if (streq(command, "BIND")) {
        char *address = zmsg_popstr(msg);
        char *port = zmsg_popstr(msg);
        int rc = s_bind(self, address, port ? atoi(port) : 0);
        if (rc >= 0)
            s_send_config(self);
        zsock_send(self->pipe, "is", rc, rc >= 0 ? self->endpoint : "");
        zstr_free(&address);
        zstr_free(&port);
    } else if (streq(command, "ADD")) {
        zframe_t *frame = zmsg_pop(msg);
        sk2_device_t *device = NULL;
        if (frame && zframe_size(frame) == sizeof device)
            memcpy(&device, zframe_data(frame), sizeof device);
        if (device)
            sk2_handoff_acquire(device);
        zframe_destroy(&frame);
        if (device)
            s_add(self, device); /* answered when the worker is done */
        else
            zsock_send(self->pipe, "i", SK2_EINVAL);
    } else if (streq(command, "REMOVE")) {
        char *id = zmsg_popstr(msg);
        if (id)
            s_remove(self, id); /* likewise */
        else
            zsock_send(self->pipe, "i", SK2_EINVAL);
        zstr_free(&id);
    } else if (streq(command, "QUEUE")) {
        char *frames = zmsg_popstr(msg);
        self->queue_frames = frames ? (unsigned)atoi(frames) : self->queue_frames;
        s_send_config(self);
        zsock_send(self->pipe, "i", 0);
        zstr_free(&frames);
    } else if (streq(command, "QUALITY")) {
        char *quality = zmsg_popstr(msg);
        self->jpeg_quality = quality ? atoi(quality) : self->jpeg_quality;
        s_send_config(self);
        zsock_send(self->pipe, "i", 0);
        zstr_free(&quality);
    } else if (streq(command, "LIMIT")) {
        char *bytes = zmsg_popstr(msg);
        self->max_frame_bytes = bytes ? (size_t)strtoull(bytes, NULL, 10) : self->max_frame_bytes;
        for (size_t i = 0; i < self->count; i++)
            sk2_pipeline_set_max_frame_bytes(self->pipelines[i], self->max_frame_bytes);
        s_rebuild_me(self);
        zsock_send(self->pipe, "i", 0);
        zstr_free(&bytes);
    } else if (streq(command, "CLOCKOFFSET")) {
        char *offset = zmsg_popstr(msg);
        self->clock_offset_us = offset ? strtoll(offset, NULL, 10) : self->clock_offset_us;
        for (size_t i = 0; i < self->count; i++)
            sk2_pipeline_set_clock_offset_us(self->pipelines[i], self->clock_offset_us);
        zsock_send(self->pipe, "i", 0);
        zstr_free(&offset);
    } else if (streq(command, "RECORDDIR")) {
        char *dir = zmsg_popstr(msg);
        zsock_send(self->pipe, "i",
                   sk2_commands_set_record_dir(self->commands, dir && dir[0] ? dir : NULL));
        zstr_free(&dir);
    } else if (streq(command, "STATE")) {
        char *path = zmsg_popstr(msg);
        char why[512] = "";
        int rc = sk2_commands_set_state_file(self->commands, path, why, sizeof why);
        if (rc == SK2_ECORRUPT || rc == SK2_EINVAL)
            SK2_ERROR("server", "state file refused: %s", why);
        if (rc == 0)
            s_rebuild_me(self);
        zsock_send(self->pipe, "i", rc);
        zstr_free(&path);
    } else if (streq(command, "POSE")) {
        char *id = zmsg_popstr(msg);
        zframe_t *pose = zmsg_pop(msg);
        int rc = SK2_EINVAL;
        sk2_pose_t value;
        if (id && pose && (zframe_size(pose) == 0 || zframe_size(pose) == sizeof value)) {
            if (zframe_size(pose))
                memcpy(&value, zframe_data(pose), sizeof value);
            rc = s_find(self, id) < 0
                     ? SK2_ENOTFOUND
                     : sk2_commands_set_pose(self->commands, id, zframe_size(pose) ? &value : NULL,
                                             self->pipelines, self->count);
        }
        if (rc == 0)
            s_rebuild_me(self);
        zsock_send(self->pipe, "i", rc);
        zstr_free(&id);
        zframe_destroy(&pose);
    } else if (streq(command, "MAXSTREAMS")) {
        char *streams = zmsg_popstr(msg);
        if (streams)
            atomic_store(&self->cap.max_streams, (unsigned)strtoul(streams, NULL, 10));
        zsock_send(self->pipe, "i", 0);
        zstr_free(&streams);
    } else if (streq(command, "ANNOUNCE")) {
        char *on = zmsg_popstr(msg);
        int rc = self->control ? SK2_ESTATE : 0;
        if (rc == 0)
            self->is_announced = on && streq(on, "1");
        zsock_send(self->pipe, "i", rc);
        zstr_free(&on);
    } else if (streq(command, "ANNOUNCED")) {
        sk2_announcer_t *a = self->announcer;
        zsock_send(self->pipe, "iss", a ? (int)sk2_announcer_state(a) : (int)SK2_ANNOUNCE_OFF,
                   a ? sk2_announcer_name(a) : "", a ? sk2_announcer_reason(a) : "");
    } else if (streq(command, "SECURITY")) {
        zframe_t *keys = zmsg_pop(msg);
        char *allow_dir = zmsg_popstr(msg);
        int rc = self->control || self->zap ? SK2_ESTATE : SK2_EINVAL;
        if (rc == SK2_EINVAL && keys && zframe_size(keys) == sizeof self->curve && allow_dir) {
            const sk2_curve_t *curve = (const sk2_curve_t *)zframe_data(keys);
            rc = sk2_zap_new(allow_dir, curve->public_key, &self->zap);
        }
        if (rc == 0) {
            memcpy(&self->curve, zframe_data(keys), sizeof self->curve);
            zpoller_add(self->poller, sk2_zap_socket(self->zap));
        }
        zsock_send(self->pipe, "i", rc);
        zframe_destroy(&keys);
        zstr_free(&allow_dir);
    } else if (streq(command, "RELOAD")) {
        zsock_send(self->pipe, "i", self->zap ? sk2_zap_reload(self->zap) : SK2_ESTATE);
    } else if (streq(command, "STATS")) {
        sk2_server_stats_t stats;
        s_stats(self, &stats);
        zsock_send(self->pipe, "b", &stats, sizeof stats);
    } else {
        SK2_ERROR("server", "internal: unknown actor command %s", command);
        zsock_send(self->pipe, "i", SK2_EINVAL);
    }
    zstr_free(&command);
    zmsg_destroy(&msg);
    return keep_going;
}

static void s_actor(zsock_t *pipe, void *arg)
{
    s_actor_t self = {.pipe = pipe,
                      .name = arg,
                      .queue_frames = SK2_DEFAULT_QUEUE_FRAMES,
                      .jpeg_quality = SK2_CODEC_DEFAULT_QUALITY,
                      .max_frame_bytes = SK2_LIMIT_FRAME_BYTES};
    atomic_init(&self.cap.max_streams, SK2_SERVER_MAX_STREAMS_DEFAULT);
    atomic_init(&self.cap.active, 0);
    atomic_init(&self.cap.refused, 0);
    sk2_runtime_block_signals();
    self.clients = sk2_clients_new();
    self.worker = zactor_new(sk2_lifecycle_actor, &self.cap);
    self.commands = sk2_commands_new();
    self.poller = self.worker && self.commands ? zpoller_new(pipe, self.worker, NULL) : NULL;
    zsock_signal(pipe, 0);
    while (self.poller) {
        zsock_t *which = zpoller_wait(self.poller, self.count > 0 ? S_WATCH_MS : -1);
        if (which == pipe) {
            /* The front end makes one call at a time, so nothing arrives while it waits. */
            if (!s_command(&self))
                break;
        } else if (which && which == (void *)self.worker) {
            s_result(&self, false);
        } else if (which && which == self.control) {
            s_answer_batch(&self);
            /* zpoller answers the first ready socket in its list, and the announcer comes
             * after the control socket: look at it here too, or a flood would starve it. */
            if (self.announcer && (zsock_events(sk2_announcer_actor(self.announcer)) & ZMQ_POLLIN))
                sk2_announcer_read(self.announcer);
        } else if (which && self.zap && which == sk2_zap_socket(self.zap)) {
            sk2_zap_answer(self.zap);
        } else if (which && self.announcer &&
                   which == (void *)sk2_announcer_actor(self.announcer)) {
            sk2_announcer_read(self.announcer);
        } else if (zpoller_terminated(self.poller)) {
            break;
        }
        s_watch(&self);
    }
    /* Goodbye first, so browsers stop offering a server that is about to go. */
    sk2_announcer_destroy(&self.announcer);
    /* Let the worker finish what it is doing; pipelines it still hands over go with the rest.
     * (zactor_destroy alone would discard those results unread.) */
    if (self.worker && zstr_send(self.worker, "STOP") == 0)
        while (s_result(&self, true))
            ;
    zactor_destroy(&self.worker);
    while (self.count > 0)
        sk2_pipeline_destroy(&self.pipelines[--self.count], NULL);
    json_decref(self.me);
    sk2_clients_destroy(&self.clients);
    sk2_commands_destroy(&self.commands);
    zpoller_destroy(&self.poller);
    zsock_destroy(&self.control);
    sk2_zap_destroy(&self.zap); /* last: a secure socket without its handler lets anyone in */
    /* The name is the front end's: it frees it once zactor_destroy has our goodbye, which comes
     * through a ZeroMQ pipe that ThreadSanitizer cannot see. */
    sk2_handoff_release(arg);
}

/* ---- The front end ---------------------------------------------------------------------- */

sk2_server_t *sk2_server_new(const char *name)
{
    sk2_socket_init();
    char fallback[300];
    name = sk2_me_own_name(name, "sk2", fallback, sizeof fallback);
    if (!name)
        return NULL;
    sk2_server_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->name = strdup(name);
    if (self->name)
        self->actor = zactor_new(s_actor, self->name);
    if (!self->actor) {
        free(self->name);
        free(self);
        return NULL;
    }
    return self;
}

void sk2_server_destroy(sk2_server_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_server_t *self = *self_p;
    zactor_destroy(&self->actor);
    sk2_handoff_acquire(self->name); /* the actor's reads of it are over (s_actor) */
    free(self->name);
    free(self);
    *self_p = NULL;
}

int sk2_server_set_queue_frames(sk2_server_t *self, unsigned frames)
{
    if (!self || frames < 1 || frames > 64)
        return SK2_EINVAL;
    int rc = SK2_EINVAL;
    char text[16];
    snprintf(text, sizeof text, "%u", frames);
    if (zstr_sendx(self->actor, "QUEUE", text, NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

int sk2_server_set_max_frame_bytes(sk2_server_t *self, size_t max_frame_bytes)
{
    if (!self || max_frame_bytes < SK2_LIMIT_FRAME_BYTES_MIN ||
        max_frame_bytes > SK2_LIMIT_FRAME_BYTES_MAX)
        return SK2_EINVAL;
    int rc = SK2_EINVAL;
    char text[32];
    snprintf(text, sizeof text, "%zu", max_frame_bytes);
    if (zstr_sendx(self->actor, "LIMIT", text, NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

int sk2_server_set_clock_offset_ms(sk2_server_t *self, int64_t offset_ms)
{
    if (!self || offset_ms < -SK2_SERVER_CLOCK_OFFSET_MAX_MS ||
        offset_ms > SK2_SERVER_CLOCK_OFFSET_MAX_MS)
        return SK2_EINVAL;
    int rc = SK2_EINVAL;
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)offset_ms * 1000);
    if (zstr_sendx(self->actor, "CLOCKOFFSET", text, NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

int sk2_server_set_max_streams(sk2_server_t *self, unsigned max_streams)
{
    if (!self || max_streams > SK2_SERVER_MAX_STREAMS_MAX)
        return SK2_EINVAL;
    int rc = SK2_EINVAL;
    char text[16];
    snprintf(text, sizeof text, "%u", max_streams);
    if (zstr_sendx(self->actor, "MAXSTREAMS", text, NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

int sk2_server_set_record_dir(sk2_server_t *self, const char *dir)
{
    if (!self || (dir && !dir[0]))
        return SK2_EINVAL;
    char *full = NULL;
    struct stat info;
    if (dir &&
        (!(full = realpath(dir, NULL)) || stat(full, &info) != 0 || !S_ISDIR(info.st_mode))) {
        free(full);
        return SK2_ENOTFOUND;
    }
    int rc = SK2_ESYS;
    if (zstr_sendx(self->actor, "RECORDDIR", full ? full : "", NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    free(full);
    return rc;
}

int sk2_server_set_state_file(sk2_server_t *self, const char *path)
{
    if (!self || !path || !path[0] || strlen(path) > 4096)
        return SK2_EINVAL;
    int rc = SK2_ESYS;
    if (zstr_sendx(self->actor, "STATE", path, NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

int sk2_server_set_device_pose(sk2_server_t *self, const char *device_id, const sk2_pose_t *pose)
{
    if (!self || !device_id || strlen(device_id) > SK2_DEVICE_ID_MAX ||
        (pose && sk2_pose_check(pose, NULL, 0) != 0))
        return SK2_EINVAL;
    zmsg_t *msg = zmsg_new();
    if (!msg || zmsg_addstr(msg, "POSE") != 0 || zmsg_addstr(msg, device_id) != 0 ||
        zmsg_addmem(msg, pose, pose ? sizeof *pose : 0) != 0) {
        zmsg_destroy(&msg);
        return SK2_ENOMEM;
    }
    int rc = SK2_ESYS;
    if (zmsg_send(&msg, self->actor) == 0)
        zsock_recv(self->actor, "i", &rc);
    zmsg_destroy(&msg);
    return rc;
}

int sk2_server_set_jpeg_quality(sk2_server_t *self, int quality)
{
    if (!self || quality < 1 || quality > 100)
        return SK2_EINVAL;
    int rc = SK2_EINVAL;
    char text[16];
    snprintf(text, sizeof text, "%d", quality);
    if (zstr_sendx(self->actor, "QUALITY", text, NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

int sk2_server_set_announce(sk2_server_t *self, bool is_announced)
{
    if (!self)
        return SK2_EINVAL;
    if (self->port)
        return SK2_ESTATE;
    int rc = SK2_ESYS;
    if (zstr_sendx(self->actor, "ANNOUNCE", is_announced ? "1" : "0", NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

/* Asks the actor where announcing stands and keeps the strings in the front end. */
static sk2_announce_state_t s_announce_query(sk2_server_t *self)
{
    int state = SK2_ANNOUNCE_OFF;
    char *name = NULL, *reason = NULL;
    if (zstr_send(self->actor, "ANNOUNCED") != 0 ||
        zsock_recv(self->actor, "iss", &state, &name, &reason) != 0)
        state = SK2_ANNOUNCE_OFF;
    snprintf(self->announced_name, sizeof self->announced_name, "%s", name ? name : "");
    snprintf(self->announce_reason, sizeof self->announce_reason, "%s", reason ? reason : "");
    zstr_free(&name);
    zstr_free(&reason);
    return (sk2_announce_state_t)state;
}

sk2_announce_state_t sk2_server_announce_state(sk2_server_t *self)
{
    return self ? s_announce_query(self) : SK2_ANNOUNCE_OFF;
}

const char *sk2_server_announced_name(sk2_server_t *self)
{
    if (!self || s_announce_query(self) != SK2_ANNOUNCE_ACTIVE)
        return NULL;
    return self->announced_name;
}

const char *sk2_server_announce_reason(sk2_server_t *self)
{
    if (!self)
        return "";
    sk2_announce_state_t state = s_announce_query(self);
    return state == SK2_ANNOUNCE_PENDING || state == SK2_ANNOUNCE_FAILED ? self->announce_reason
                                                                         : "";
}

int sk2_server_set_security(sk2_server_t *self, const char *keys, const char *allow_dir)
{
    if (!self || !keys || !allow_dir)
        return SK2_EINVAL;
    if (self->port || self->public_key[0])
        return SK2_ESTATE;
    sk2_curve_t curve;
    int rc = sk2_curve_load_pair(keys, &curve);
    if (rc != 0)
        return rc;
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "SECURITY");
    zmsg_addmem(msg, &curve, sizeof curve);
    zmsg_addstr(msg, allow_dir);
    rc = SK2_ESYS;
    if (zmsg_send(&msg, self->actor) == 0)
        zsock_recv(self->actor, "i", &rc);
    zmsg_destroy(&msg);
    if (rc == 0)
        memcpy(self->public_key, curve.public_key, sizeof self->public_key);
    memset(&curve, 0, sizeof curve); /* the secret key lives on in the actor only */
    return rc;
}

int sk2_server_reload_allow(sk2_server_t *self)
{
    if (!self)
        return SK2_EINVAL;
    int rc = SK2_ESYS;
    if (zstr_send(self->actor, "RELOAD") == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

const char *sk2_server_public_key(const sk2_server_t *self)
{
    return self && self->public_key[0] ? self->public_key : NULL;
}

int sk2_server_bind(sk2_server_t *self, const char *address, uint16_t port)
{
    if (!self || !address)
        return SK2_EINVAL;
    if (self->port)
        return SK2_ESTATE;
    return sk2_address_bind_actor(self->actor, address, port, &self->port, self->endpoint,
                                  sizeof self->endpoint);
}

const char *sk2_server_endpoint(const sk2_server_t *self)
{
    return self && self->port ? self->endpoint : NULL;
}

uint16_t sk2_server_port(const sk2_server_t *self)
{
    return self ? self->port : 0;
}

const char *sk2_server_name(const sk2_server_t *self)
{
    return self ? self->name : NULL;
}

int sk2_server_add_device(sk2_server_t *self, sk2_device_t **device_p)
{
    if (!device_p || !*device_p)
        return SK2_EINVAL;
    if (!self) {
        sk2_device_destroy(device_p);
        return SK2_EINVAL;
    }
    sk2_device_t *device = *device_p;
    *device_p = NULL; /* the actor owns it from here, whatever happens */
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "ADD");
    zmsg_addmem(msg, &device, sizeof device);
    sk2_handoff_release(device);
    int rc = SK2_ESYS;
    if (zmsg_send(&msg, self->actor) == 0)
        zsock_recv(self->actor, "i", &rc);
    else
        sk2_device_destroy(&device);
    zmsg_destroy(&msg);
    return rc;
}

int sk2_server_remove_device(sk2_server_t *self, const char *device_id)
{
    if (!self || !device_id)
        return SK2_EINVAL;
    int rc = SK2_ESYS;
    if (zstr_sendx(self->actor, "REMOVE", device_id, NULL) == 0)
        zsock_recv(self->actor, "i", &rc);
    return rc;
}

int sk2_server_stats(sk2_server_t *self, sk2_server_stats_t *stats)
{
    if (!self || !stats)
        return SK2_EINVAL;
    byte *data = NULL;
    size_t size = 0;
    if (zstr_send(self->actor, "STATS") != 0 || zsock_recv(self->actor, "b", &data, &size) != 0)
        return SK2_ESYS;
    int rc = SK2_ESYS;
    if (data && size == sizeof *stats) {
        memcpy(stats, data, sizeof *stats);
        rc = 0;
    }
    free(data);
    return rc;
}

size_t sk2_server_device_count(sk2_server_t *self)
{
    sk2_server_stats_t stats;
    return sk2_server_stats(self, &stats) == 0 ? stats.devices : 0;
}
