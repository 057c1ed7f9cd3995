/* The relay: a front end (sk2_relay_t) over an actor thread that owns everything else: the
 * control ROUTER it answers on, one sk2 client per upstream server (the public client, used
 * only for its control conversation: `me`, heartbeats and reconnection), and for each upstream
 * device four sockets: a SUB on the upstream's depth and streams endpoints and an XPUB of our
 * own in front of each.
 *
 * Subscriptions travel up, frames down. The XPUBs are not verbose, so libzmq hands the actor a
 * topic's subscription when its first downstream subscriber arrives and its unsubscription when
 * the last one leaves (also by disconnecting); the actor passes each to the SUB facing the
 * upstream, which passes it to the server. So the upstream encodes and sends a (stream, codec)
 * for a relay exactly while someone below wants it, and counts the relay as one subscriber
 * however many clients it has. Frames are moved from SUB to XPUB as ZeroMQ messages: the topic
 * and payload frames are the very buffers that arrived, and only the header is rewritten, to
 * append this hop's receive time (src/proto/header.c).
 *
 * What the relay serves follows the upstreams' `me`: the actor reads each client's events
 * without waiting, and after each batch compares the client's current `me` with what it serves
 * for that upstream, adding and removing devices. An upstream that stops answering (the client
 * is reconnecting) has its devices removed until it answers again. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <czmq.h>
#include <jansson.h>

#include "core/log_internal.h"
#include "core/runtime.h"
#include "discovery/announcer.h"
#include "proto/curve.h"
#include "proto/header.h"
#include "proto/me.h"
#include "proto/msg.h"
#include "proto/socket.h"
#include "relay/push.h"
#include "server/address.h"
#include "server/clients.h"
#include "server/zap.h"
#include "sk2/error.h"
#include "sk2/relay.h"
#include "sk2/server.h"

/* Control requests answered per turn of the loop, as the server does. */
#define S_CONTROL_BATCH 32
/* Messages moved per socket per turn, so that one busy stream cannot starve the rest. */
#define S_FORWARD_BATCH 64
/* Events read from one upstream client per turn. */
#define S_EVENT_BATCH 256
/* The relay asks each upstream for `me` this often, so device changes reach downstream within
 * about a second (plus the downstream client's own heartbeat). */
#define S_UPSTREAM_HEARTBEAT_MS 1000
/* Queue lengths: per downstream subscriber as the server's XPUBs have them, and what a SUB
 * facing an upstream may hold before the upstream's own high-water mark drops frames. */
#define S_DEPTH_SNDHWM    8
#define S_STREAMS_SNDHWM  4
#define S_UPSTREAM_RCVHWM 8
/* Subscription messages are a flag byte and a topic: nothing longer is read. */
#define S_SUBSCRIPTION_MAX 1024
/* The largest frame header forwarded: 64 bytes, hops and room for fields appended later. */
#define S_HEADER_MAX 1024
/* Same bounds on control connections as the server (src/server/server.c). */
#define S_CONTROL_RCVHWM 16
#define S_CONTROL_SNDHWM 64
#define S_MAX_ROUTING    8
#define S_KEPT_FRAMES    (S_MAX_ROUTING + 5)
/* Descriptors one upstream client may ask to be polled (its control socket and monitors). */
#define S_CLIENT_FDS  8
#define S_MAX_DEVICES SK2_ME_MAX_DEVICES
/* Keyed commands in flight or answered that the relay remembers (docs/topologies.md, "Keyed
 * commands"): as many as 64 clients sending at once, each with several in flight. */
#define S_ROUTES_MAX 256

struct sk2_relay {
    zactor_t *actor;                    /* owns everything below the pipe */
    char *name;                         /* the relay's name in `me`, UTF-8 */
    char endpoint[128];                 /* advertised control endpoint, "" before bind */
    uint16_t port;                      /* bound control port, 0 before bind */
    bool is_announced;                  /* what sk2_relay_set_announce asked for */
    char public_key[SK2_KEY_TEXT_SIZE]; /* Z85, "" unless secure */
};

typedef struct {
    sk2_client_t *client;   /* the control conversation with the upstream */
    char *me_text;          /* the upstream `me` the devices were last synced to, or NULL */
    bool is_live;           /* answering: its devices are served */
    size_t max_frame_bytes; /* the budget its `me` advertises, or the client's if smaller */
    int64_t due_us;         /* when the client has timer work (monotonic) */
    int pusher;             /* for a pushed server, its acceptor key + 1; else 0 */
} s_upstream_t;

typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1]; /* the upstream device's id, kept as it is */
    size_t upstream;                /* index into the actor's upstreams */
    json_t *record;                 /* its entry in our `me`, with our endpoints */
    char *from_depth;               /* the upstream's depth endpoint, or NULL */
    char *from_streams;             /* the upstream's streams endpoint, or NULL */
    zsock_t *up_depth;              /* SUB on from_depth */
    zsock_t *up_streams;            /* SUB on from_streams */
    zsock_t *down_depth;            /* XPUB: the version-1 depth endpoint we serve */
    zsock_t *down_streams;          /* XPUB: the streams endpoint we serve */
    size_t topics;                  /* topics subscribed upstream now */
    uint64_t forwarded;             /* messages forwarded */
    uint64_t refused;               /* messages from upstream that were not frames */
    /* Per stream kind (1..4): the sequence number of the newest frame forwarded, plus one (0
     * before the first). Frames keep their upstream numbers, so this is what a `flow` reply
     * tells a client its frames are behind. */
    uint64_t newest[SK2_STREAM_BODY + 1];
} s_device_t;

/* A keyed command passed upstream: the downstream client's id, the id our upstream client
 * sends it under, and where the answer goes. The relay answers every copy of a downstream id
 * alike and passes it upstream once, so a command is applied once however often the client
 * sends it; the upstream leg is made reliable by the relay's own client, which resends under
 * its id until the server answers or the time-to-live runs out. */
typedef struct {
    bool is_used;
    char down_id[SK2_MSG_COMMAND_ID_MAX + 1];
    char up_id[SK2_CLIENT_COMMAND_ID_MAX + 1];
    size_t upstream;                       /* index into the actor's upstreams */
    zmq_msg_t envelope[S_MAX_ROUTING + 1]; /* of the newest copy: routing frames, delimiter */
    size_t envelope_size;
    json_t *reply;      /* the answer once it came (its id the client's), NULL while pending */
    int64_t expires_us; /* forgotten after this (monotonic): twice the time-to-live */
} s_route_t;

typedef struct {
    zsock_t *pipe;         /* commands from the front end */
    zsock_t *control;      /* ROUTER, NULL until bound */
    const char *name;      /* borrowed from the front end */
    sk2_address_t address; /* where we bound, what we advertise */
    char endpoint[128];    /* advertised control endpoint */
    bool is_announced;     /* announce once bound */
    sk2_announcer_t *announcer;
    s_upstream_t upstreams[SK2_RELAY_UPSTREAMS_MAX];
    size_t upstream_count;
    s_device_t *devices[S_MAX_DEVICES]; /* in order of arrival */
    size_t device_count;
    json_t *me;                     /* cached `me`, NULL when it must be rebuilt */
    sk2_relay_stats_t stats;        /* counters (the count fields are filled on request) */
    uint64_t bad_requests;          /* requests answered with an error */
    s_route_t routes[S_ROUTES_MAX]; /* keyed commands passed upstream */
    sk2_accept_t *accept;           /* push links (--accept-push), or NULL */
    sk2_curve_t curve;              /* our keys when secure downstream (sk2_relay_set_security) */
    sk2_zap_t *zap;         /* checks the keys of clients and pushers, when any socket is secure */
    sk2_clients_t *clients; /* flow states downstream clients sent (server/clients.h) */
} s_actor_t;

static void s_route_answer(s_actor_t *self, s_route_t *route);
static void s_route_done(s_actor_t *self, size_t upstream, const sk2_event_t *event);

/* ---- Devices ------------------------------------------------------------------------------ */

static void s_device_destroy(s_device_t **device_p)
{
    s_device_t *device = *device_p;
    if (!device)
        return;
    zsock_destroy(&device->up_depth);
    zsock_destroy(&device->up_streams);
    zsock_destroy(&device->down_depth);
    zsock_destroy(&device->down_streams);
    json_decref(device->record);
    free(device->from_depth);
    free(device->from_streams);
    free(device);
    *device_p = NULL;
}

/* A SUB facing an upstream endpoint: it reads frames up to the client's budget (plus topic and
 * header), and subscribes to nothing until downstream asks. On a secure upstream it is a CURVE
 * client with the upstream client's own keys, which the server lets in already. */
static zsock_t *s_upstream_sub(const char *endpoint, size_t max_frame_bytes,
                               const sk2_curve_t *curve)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    if (!sub)
        return NULL;
    if (sk2_socket_set_curve_client(sub, curve) != 0 ||
        sk2_socket_set_int(sub, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_int(sub, ZMQ_RCVHWM, S_UPSTREAM_RCVHWM) != 0 ||
        sk2_socket_set_maxmsgsize(sub, (int64_t)sk2_limit_wire_bytes(max_frame_bytes)) != 0 ||
        zsock_connect(sub, "%s", endpoint) != 0) {
        SK2_WARN("relay", "cannot connect to %s", endpoint);
        zsock_destroy(&sub);
    }
    return sub;
}

/* An XPUB downstream clients subscribe to, bound on a port the kernel picks. Writes its
 * advertised endpoint into endpoint. */
static zsock_t *s_downstream_pub(s_actor_t *self, int sndhwm, char *endpoint, size_t size)
{
    zsock_t *pub = zsock_new(ZMQ_XPUB);
    if (!pub)
        return NULL;
    int port = -1;
    if (sk2_socket_set_curve_server(pub, &self->curve) == 0 &&
        sk2_socket_set_int(pub, ZMQ_LINGER, 0) == 0 &&
        sk2_socket_set_int(pub, ZMQ_SNDHWM, sndhwm) == 0 &&
        sk2_socket_set_maxmsgsize(pub, S_SUBSCRIPTION_MAX) == 0 &&
        (!self->address.is_ipv6 || sk2_socket_set_int(pub, ZMQ_IPV6, 1) == 0))
        port = sk2_address_bind_ephemeral(zsock_resolve(pub), self->address.bind_host);
    if (port < 0 || sk2_address_endpoint(self->address.advertise_host, port, endpoint, size) != 0) {
        SK2_WARN("relay", "cannot bind a device endpoint on %s: %s", self->address.bind_host,
                 zmq_strerror(zmq_errno()));
        zsock_destroy(&pub);
    }
    return pub;
}

static const char *s_endpoint_of(const json_t *record, const char *name)
{
    return json_string_value(json_object_get(json_object_get(record, "endpoints"), name));
}

static bool s_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Starts serving one upstream device: sockets both ways and our copy of its `me` record. */
static s_device_t *s_device_new(s_actor_t *self, size_t upstream, const char *id,
                                const json_t *record)
{
    s_device_t *device = calloc(1, sizeof *device);
    if (!device)
        return NULL;
    snprintf(device->id, sizeof device->id, "%s", id);
    device->upstream = upstream;
    const char *depth = s_endpoint_of(record, "depth"), *streams = s_endpoint_of(record, "streams");
    size_t budget = sk2_client_max_frame_bytes(self->upstreams[upstream].client);
    sk2_curve_t curve;
    sk2_client_curve(self->upstreams[upstream].client, &curve);
    char ours[128];
    json_t *endpoints = json_object();
    device->record = json_deep_copy(record);
    bool is_ok = endpoints && device->record;
    if (is_ok && depth) {
        device->from_depth = strdup(depth);
        device->up_depth = s_upstream_sub(depth, budget, &curve);
        device->down_depth = s_downstream_pub(self, S_DEPTH_SNDHWM, ours, sizeof ours);
        is_ok = device->from_depth && device->up_depth && device->down_depth &&
                json_object_set_new(endpoints, "depth", json_string(ours)) == 0;
    }
    if (is_ok && streams) {
        device->from_streams = strdup(streams);
        device->up_streams = s_upstream_sub(streams, budget, &curve);
        device->down_streams = s_downstream_pub(self, S_STREAMS_SNDHWM, ours, sizeof ours);
        is_ok = device->from_streams && device->up_streams && device->down_streams &&
                json_object_set_new(endpoints, "streams", json_string(ours)) == 0;
    }
    /* Endpoints of the upstream's device that we do not relay are left out, not passed on. */
    if (is_ok)
        is_ok = json_object_set(device->record, "endpoints", endpoints) == 0;
    json_decref(endpoints);
    memset(&curve, 0, sizeof curve);
    if (!is_ok)
        s_device_destroy(&device);
    return device;
}

static ssize_t s_find(const s_actor_t *self, const char *id)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (strcmp(self->devices[i]->id, id) == 0)
            return (ssize_t)i;
    return -1;
}

static void s_changed(s_actor_t *self)
{
    json_decref(self->me);
    self->me = NULL;
    if (self->announcer)
        sk2_announcer_set_devices(self->announcer, (unsigned)self->device_count);
}

static void s_remove_at(s_actor_t *self, size_t index)
{
    SK2_INFO("relay", "device %s gone from the relay", self->devices[index]->id);
    s_device_destroy(&self->devices[index]);
    memmove(&self->devices[index], &self->devices[index + 1],
            (self->device_count - index - 1) * sizeof self->devices[0]);
    self->device_count--;
    s_changed(self);
}

static void s_remove_upstream_devices(s_actor_t *self, size_t upstream)
{
    for (size_t i = self->device_count; i-- > 0;)
        if (self->devices[i]->upstream == upstream)
            s_remove_at(self, i);
}

/* Brings the devices served for one upstream in line with its client's current `me`: devices
 * that vanished (or moved to other endpoints) go, new ones come, records are refreshed. */
static void s_sync(s_actor_t *self, size_t index)
{
    s_upstream_t *upstream = &self->upstreams[index];
    sk2_client_t *client = upstream->client;
    const char *text = sk2_client_me_json(client);
    bool is_live = self->control && text && sk2_client_is_connected(client) &&
                   !sk2_client_is_reconnecting(client);
    if (!is_live) {
        if (upstream->is_live)
            SK2_WARN("relay", "upstream \"%s\" is not answering: its devices leave the relay",
                     sk2_client_server_name(client) ? sk2_client_server_name(client) : "?");
        upstream->is_live = false;
        free(upstream->me_text);
        upstream->me_text = NULL;
        s_remove_upstream_devices(self, index);
        return;
    }
    if (upstream->me_text && strcmp(upstream->me_text, text) == 0)
        return;
    json_t *me = json_loads(text, 0, NULL);
    json_t *devices = json_object_get(me, "devices");
    if (!json_is_array(devices)) {
        json_decref(me);
        return; /* the client checked it; nothing else can be done with it */
    }
    free(upstream->me_text);
    upstream->me_text = strdup(text);
    /* A server advertises its frame budget; no frame above it, or above our client's own,
     * can come through, so the relay advertises the smaller. */
    upstream->max_frame_bytes = sk2_client_max_frame_bytes(client);
    json_int_t advertised = json_integer_value(json_object_get(me, "max_frame_bytes"));
    if (advertised > 0 && (uint64_t)advertised < upstream->max_frame_bytes)
        upstream->max_frame_bytes = (size_t)advertised;
    if (!upstream->is_live)
        SK2_INFO("relay", "upstream \"%s\" answers with %zu devices",
                 sk2_client_server_name(client), json_array_size(devices));
    upstream->is_live = true;
    for (size_t i = self->device_count; i-- > 0;) {
        s_device_t *device = self->devices[i];
        if (device->upstream != index)
            continue;
        const json_t *found = NULL;
        size_t k;
        json_t *record;
        json_array_foreach(devices, k, record)
        {
            if (s_same(json_string_value(json_object_get(record, "id")), device->id))
                found = record;
        }
        if (!found || !s_same(s_endpoint_of(found, "depth"), device->from_depth) ||
            !s_same(s_endpoint_of(found, "streams"), device->from_streams))
            s_remove_at(self, i);
    }
    size_t k;
    json_t *record;
    json_array_foreach(devices, k, record)
    {
        const char *id = json_string_value(json_object_get(record, "id"));
        if (!id || strlen(id) > SK2_DEVICE_ID_MAX)
            continue;
        ssize_t at = s_find(self, id);
        if (at >= 0) {
            if (self->devices[at]->upstream != index) {
                static sk2_ratelimit_t limit;
                if (sk2_ratelimit_pass(&limit, 60000000, NULL))
                    SK2_WARN("relay", "device %s is served by two upstreams; relaying the first",
                             id);
            }
            continue;
        }
        if (self->device_count == S_MAX_DEVICES) {
            SK2_WARN("relay", "device %s left out: the relay serves %d devices at most", id,
                     S_MAX_DEVICES);
            continue;
        }
        s_device_t *device = s_device_new(self, index, id, record);
        if (!device)
            continue;
        SK2_INFO("relay", "device %s relayed from \"%s\"", id, sk2_client_server_name(client));
        self->devices[self->device_count++] = device;
        s_changed(self);
    }
    s_changed(self); /* a record may have changed under the same endpoints */
    json_decref(me);
}

/* ---- Frames and subscriptions ------------------------------------------------------------- */

static void s_refuse(s_actor_t *self, s_device_t *device, const char *why)
{
    device->refused++;
    self->stats.frames_refused++;
    static sk2_ratelimit_t limit;
    uint64_t held = 0;
    if (sk2_ratelimit_pass(&limit, 5000000, &held))
        SK2_WARN("relay",
                 "device %s: message from upstream not forwarded: %s (%llu more not "
                 "logged)",
                 device->id, why, (unsigned long long)held);
}

/* Moves what the upstream streams SUB holds to our streams XPUB: the topic and payload as they
 * came, the header with our receive time appended. */
static void s_forward_streams(s_actor_t *self, s_device_t *device)
{
    void *in = zsock_resolve(device->up_streams), *out = zsock_resolve(device->down_streams);
    for (int n = 0; n < S_FORWARD_BATCH; n++) {
        zmq_msg_t parts[3];
        size_t count = sk2_socket_recv_parts(in, parts, 3);
        if (count == 0)
            return;
        int64_t received_us = sk2_clock_wall_us();
        size_t kept = count < 3 ? count : 3;
        sk2_header_t header;
        char why[192] = "";
        if (count != 3)
            snprintf(why, sizeof why, "a stream message of %zu parts, not 3", count);
        else if (zmq_msg_size(&parts[1]) > S_HEADER_MAX)
            snprintf(why, sizeof why, "a frame header of %zu bytes", zmq_msg_size(&parts[1]));
        else if (sk2_header_read(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), &header, why,
                                 sizeof why) == 0 &&
                 header.payload_size != zmq_msg_size(&parts[2]))
            snprintf(why, sizeof why, "a header announcing %u payload bytes, not %zu",
                     header.payload_size, zmq_msg_size(&parts[2]));
        if (why[0]) {
            s_refuse(self, device, why);
        } else {
            uint8_t bytes[S_HEADER_MAX + 8];
            size_t size = sk2_header_add_hop(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]),
                                             received_us, bytes, sizeof bytes);
            zmq_msg_t head;
            if (size > 0 && zmq_msg_init_size(&head, size) == 0) {
                memcpy(zmq_msg_data(&head), bytes, size);
                zmq_msg_close(&parts[1]);
                parts[1] = head;
            }
            /* A full hop list (or no memory for a longer header) forwards the header as it
             * came: the frame matters more than the record of its path. */
            size_t payload = zmq_msg_size(&parts[2]);
            /* An XPUB never blocks: a subscriber that does not read loses frames at its own
             * high-water mark. */
            if (zmq_msg_send(&parts[0], out, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
                zmq_msg_send(&parts[1], out, ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0 &&
                zmq_msg_send(&parts[2], out, ZMQ_DONTWAIT) >= 0) {
                device->newest[header.kind % (SK2_STREAM_BODY + 1)] = header.sequence + 1;
                device->forwarded++;
                self->stats.frames_forwarded++;
                self->stats.bytes_forwarded += payload;
            }
        }
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* The version-1 depth endpoint carries bare one-part messages: forwarded untouched. */
static void s_forward_depth(s_actor_t *self, s_device_t *device)
{
    void *in = zsock_resolve(device->up_depth), *out = zsock_resolve(device->down_depth);
    for (int n = 0; n < S_FORWARD_BATCH; n++) {
        zmq_msg_t part;
        size_t count = sk2_socket_recv_parts(in, &part, 1);
        if (count == 0)
            return;
        if (count != 1) {
            s_refuse(self, device, "a depth message of several parts");
        } else {
            size_t size = zmq_msg_size(&part);
            if (zmq_msg_send(&part, out, ZMQ_DONTWAIT) >= 0) {
                device->forwarded++;
                self->stats.frames_forwarded++;
                self->stats.bytes_forwarded += size;
            }
        }
        zmq_msg_close(&part);
    }
}

/* Passes downstream (un)subscriptions up. A non-verbose XPUB reports a topic's first
 * subscription and its last unsubscription only, which is exactly when the upstream must
 * start and stop. On the streams endpoint only sk2 topics (kind/codec/) and the empty prefix
 * travel, which bounds what a client can make us subscribe to. */
static void s_subscriptions(s_actor_t *self, s_device_t *device, bool is_streams)
{
    (void)self;
    zsock_t *down = is_streams ? device->down_streams : device->down_depth;
    zsock_t *up = is_streams ? device->up_streams : device->up_depth;
    for (int n = 0; n < S_FORWARD_BATCH; n++) {
        zmq_msg_t part;
        size_t count = sk2_socket_recv_parts(zsock_resolve(down), &part, 1);
        if (count == 0)
            return;
        const uint8_t *data = zmq_msg_data(&part);
        size_t size = zmq_msg_size(&part);
        sk2_stream_kind_t kind;
        const sk2_codec_t *codec;
        bool is_ok =
            count == 1 && size >= 1 && data[0] <= 1 && size - 1 <= SK2_TOPIC_MAX &&
            (!is_streams || size == 1 || sk2_topic_parse(data + 1, size - 1, &kind, &codec) == 0);
        if (is_ok && sk2_socket_set_bytes(up, data[0] ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, data + 1,
                                          size - 1) == 0) {
            if (data[0])
                device->topics++;
            else if (device->topics > 0)
                device->topics--;
            SK2_DEBUG("relay", "device %s: %s %.*s upstream", device->id,
                      data[0] ? "subscribed to" : "unsubscribed from", (int)(size - 1),
                      (const char *)data + 1);
        }
        zmq_msg_close(&part);
    }
}

/* ---- Upstreams ---------------------------------------------------------------------------- */

/* Reads what one upstream client has (events, timers) without waiting, then syncs devices. */
static void s_service(s_actor_t *self, size_t index)
{
    s_upstream_t *upstream = &self->upstreams[index];
    bool is_drained = false;
    for (int n = 0; n < S_EVENT_BATCH && !is_drained; n++) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(upstream->client, &event, 0) != 0) {
            is_drained = true;
            break;
        }
        sk2_event_type_t type = sk2_event_type(event);
        if (type == SK2_EVENT_COMMAND_DONE)
            s_route_done(self, index, event);
        if (type == SK2_EVENT_RECONNECTING || type == SK2_EVENT_DISCONNECTED ||
            type == SK2_EVENT_ERROR)
            SK2_WARN("relay", "upstream \"%s\": %s%s%s",
                     sk2_client_server_name(upstream->client)
                         ? sk2_client_server_name(upstream->client)
                         : "?",
                     sk2_event_type_name(type), *sk2_event_reason(event) ? ": " : "",
                     sk2_event_reason(event));
        sk2_event_destroy(&event);
    }
    int timeout_ms = sk2_client_timeout_ms(upstream->client);
    upstream->due_us = timeout_ms < 0 ? INT64_MAX : sk2_clock_mono_us() + timeout_ms * 1000LL;
    /* The client's descriptors signal edges: with events left over, come back at once. */
    if (!is_drained)
        upstream->due_us = 0;
    s_sync(self, index);
}

static int s_add_upstream(s_actor_t *self, sk2_client_t *client)
{
    if (self->upstream_count == SK2_RELAY_UPSTREAMS_MAX) {
        sk2_client_destroy(&client);
        return SK2_ELIMIT;
    }
    size_t index = self->upstream_count++;
    self->upstreams[index] = (s_upstream_t){.client = client, .due_us = 0};
    s_service(self, index);
    return 0;
}

/* Stops following upstream `index` (a pusher gone): its devices leave, the rest move down. */
static void s_remove_upstream(s_actor_t *self, size_t index)
{
    s_remove_upstream_devices(self, index);
    sk2_client_destroy(&self->upstreams[index].client);
    free(self->upstreams[index].me_text);
    memmove(&self->upstreams[index], &self->upstreams[index + 1],
            (self->upstream_count - index - 1) * sizeof self->upstreams[0]);
    self->upstream_count--;
    for (size_t i = 0; i < self->device_count; i++)
        if (self->devices[i]->upstream > index)
            self->devices[i]->upstream--;
    s_changed(self);
}

/* The acceptor's news: a pusher's facade to follow as an upstream, or one gone. */
static void s_on_pusher(void *arg, int key, bool is_up, const char *name, const char *control)
{
    s_actor_t *self = arg;
    for (size_t i = 0; i < self->upstream_count; i++)
        if (self->upstreams[i].pusher == key + 1) {
            s_remove_upstream(self, i);
            break;
        }
    if (!is_up)
        return;
    sk2_client_t *client = sk2_client_new();
    int rc = client ? sk2_client_set_reconnect(client, true) : SK2_ENOMEM;
    if (rc == 0)
        rc = sk2_client_set_heartbeat_ms(client, S_UPSTREAM_HEARTBEAT_MS);
    if (rc == 0)
        rc = sk2_client_connect(client, control);
    if (rc != 0) {
        SK2_WARN("relay", "cannot follow pusher \"%s\": %s", name, sk2_strerror(rc));
        sk2_client_destroy(&client);
        return;
    }
    if (s_add_upstream(self, client) == 0)
        self->upstreams[self->upstream_count - 1].pusher = key + 1;
    else
        SK2_WARN("relay", "cannot follow pusher \"%s\": %d upstreams already", name,
                 SK2_RELAY_UPSTREAMS_MAX);
}

/* ---- Control ------------------------------------------------------------------------------ */

static json_t *s_me(s_actor_t *self)
{
    if (self->me)
        return self->me;
    json_t *devices = json_array();
    /* The smallest budget of the upstreams we serve: no frame above it can come through. */
    json_int_t budget = SK2_LIMIT_FRAME_BYTES;
    for (size_t i = 0; i < self->upstream_count; i++) {
        size_t theirs = self->upstreams[i].max_frame_bytes;
        if (self->upstreams[i].is_live && (json_int_t)theirs < budget)
            budget = (json_int_t)theirs;
    }
    for (size_t i = 0; i < self->device_count; i++)
        json_array_append(devices, self->devices[i]->record);
    /* `commands`: the relay takes keyed commands and passes each to its device's server. */
    self->me = json_pack("{s:i, s:s, s:{s:s}, s:o, s:I, s:i}", "version", 1, "name", self->name,
                         "endpoints", "control", self->endpoint, "devices", devices,
                         "max_frame_bytes", budget, "commands", 1);
    return self->me;
}

static void s_fill_stats(s_actor_t *self, sk2_relay_stats_t *stats)
{
    *stats = self->stats;
    stats->upstreams = self->upstream_count;
    stats->upstreams_live = 0;
    for (size_t i = 0; i < self->upstream_count; i++)
        stats->upstreams_live += self->upstreams[i].is_live;
    stats->devices = self->device_count;
    stats->pushers_live = 0;
    if (self->accept)
        json_decref(sk2_accept_stats(self->accept, &stats->pushers_live));
    stats->subscriptions = 0;
    for (size_t i = 0; i < self->device_count; i++)
        stats->subscriptions += self->devices[i]->topics;
}

/* The relay's answer to `stats`: its own counters, under "relay" so that a reader of a
 * server's reply finds no device counters it would misread. */
static json_t *s_stats_json(s_actor_t *self)
{
    sk2_relay_stats_t stats;
    s_fill_stats(self, &stats);
    json_t *upstreams = json_array(), *devices = json_array();
    for (size_t i = 0; i < self->upstream_count; i++) {
        const char *name = sk2_client_server_name(self->upstreams[i].client);
        const char *control = sk2_client_server_endpoint(self->upstreams[i].client, "control");
        json_array_append_new(upstreams, json_pack("{s:s?, s:s?, s:b}", "name", name, "control",
                                                   control, "live", self->upstreams[i].is_live));
    }
    for (size_t i = 0; i < self->device_count; i++) {
        const s_device_t *device = self->devices[i];
        json_t *record = json_pack(
            "{s:s, s:I, s:I, s:I}", "id", device->id, "forwarded", (json_int_t)device->forwarded,
            "refused", (json_int_t)device->refused, "subscriptions", (json_int_t)device->topics);
        /* The newest sequence number forwarded per stream, as a server lists the newest its
         * camera made: the figure a `flow` reply carries. */
        json_t *streams = json_array();
        for (int kind = SK2_STREAM_DEPTH; streams && kind <= SK2_STREAM_BODY; kind++)
            if (device->newest[kind] > 0)
                json_array_append_new(
                    streams, json_pack("{s:s, s:I}", "kind",
                                       sk2_stream_kind_name((sk2_stream_kind_t)kind), "newest",
                                       (json_int_t)((device->newest[kind] - 1) &
                                                    (((uint64_t)1 << 53) - 1))));
        if (record && streams)
            json_object_set_new(record, "streams", streams);
        else
            json_decref(streams);
        json_array_append_new(devices, record);
    }
    size_t live = 0;
    json_t *pushers = self->accept ? sk2_accept_stats(self->accept, &live) : json_array();
    json_t *reply = json_pack(
        "{s:i, s:{s:o, s:o, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "version", 1, "relay",
        "upstreams", upstreams, "pushers", pushers, "devices", devices, "frames_forwarded",
        (json_int_t)stats.frames_forwarded, "bytes_forwarded", (json_int_t)stats.bytes_forwarded,
        "frames_refused", (json_int_t)stats.frames_refused, "requests", (json_int_t)stats.requests,
        "bad_requests", (json_int_t)self->bad_requests, "commands_passed",
        (json_int_t)stats.commands_passed, "commands_repeated", (json_int_t)stats.commands_repeated,
        "commands_refused", (json_int_t)stats.commands_refused);
    /* The flow states of the relay's own clients, in the same place and shape as a server's,
     * so that paused clients and queue bounds read alike at either. */
    if (reply && self->clients)
        json_object_set_new(reply, "clients", sk2_clients_json(self->clients, sk2_clock_mono_us()));
    return reply;
}

static void s_send_answer(s_actor_t *self, zmq_msg_t *frames, size_t envelope, sk2_msg_type_t type,
                          const json_t *payload)
{
    void *socket = zsock_resolve(self->control);
    for (size_t i = 0; i < envelope; i++) {
        zmq_msg_t copy;
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, &frames[i]);
        if (zmq_msg_send(&copy, socket, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&copy);
            return; /* the client has gone or does not read: its answer is dropped */
        }
    }
    sk2_msg_send(socket, false, type, payload);
}

/* ---- Keyed commands ------------------------------------------------------------------------ */

static void s_route_free(s_route_t *route)
{
    for (size_t i = 0; i < route->envelope_size; i++)
        zmq_msg_close(&route->envelope[i]);
    json_decref(route->reply);
    *route = (s_route_t){.is_used = false};
}

/* Keeps a copy of the envelope of the newest copy of a command: its answer goes there. */
static void s_route_keep_envelope(s_route_t *route, zmq_msg_t *frames, size_t envelope)
{
    for (size_t i = 0; i < route->envelope_size; i++)
        zmq_msg_close(&route->envelope[i]);
    route->envelope_size = 0;
    for (size_t i = 0; i < envelope && i < S_MAX_ROUTING + 1; i++) {
        zmq_msg_init(&route->envelope[i]);
        zmq_msg_copy(&route->envelope[i], &frames[i]);
        route->envelope_size++;
    }
}

static s_route_t *s_route_find(s_actor_t *self, const char *down_id, int64_t now_us)
{
    for (size_t i = 0; i < S_ROUTES_MAX; i++) {
        s_route_t *route = &self->routes[i];
        if (route->is_used && route->expires_us <= now_us)
            s_route_free(route);
        else if (route->is_used && strcmp(route->down_id, down_id) == 0)
            return route;
    }
    return NULL;
}

/* A free slot, or the one that expires first (forgetting it early, with a warning: a copy of
 * it that still comes would be passed upstream again). */
static s_route_t *s_route_slot(s_actor_t *self)
{
    s_route_t *oldest = &self->routes[0];
    for (size_t i = 0; i < S_ROUTES_MAX; i++) {
        if (!self->routes[i].is_used)
            return &self->routes[i];
        if (self->routes[i].expires_us < oldest->expires_us)
            oldest = &self->routes[i];
    }
    static sk2_ratelimit_t limit;
    if (sk2_ratelimit_pass(&limit, 60000000, NULL))
        SK2_WARN("relay",
                 "more than %d keyed commands within their time-to-live: forgetting "
                 "command %s early",
                 S_ROUTES_MAX, oldest->down_id);
    s_route_free(oldest);
    return oldest;
}

/* A refusal in the command-reply format, as the server words its own (src/server/command.c). */
static json_t *s_route_refusal(const char *id, const char *code, const char *reason)
{
    return json_pack("{s:s, s:b, s:s, s:s}", "id", id, "ok", false, "code", code, "error", reason);
}

static void s_route_send(s_actor_t *self, zmq_msg_t *envelope, size_t size, const json_t *reply)
{
    s_send_answer(self, envelope, size, SK2_MSG_COMMAND_REPLY, reply);
}

/* Answers a command from downstream: passes it to the server of its device once, or answers a
 * copy of one already passed (with the answer if it came; a pending one is answered when it
 * comes, to the newest copy's connection). */
static void s_route_command(s_actor_t *self, zmq_msg_t *frames, size_t envelope,
                            const json_t *payload)
{
    bool id_ok = false;
    char why[256];
    int rc = sk2_msg_command_check(payload, &id_ok, why, sizeof why);
    if (!id_ok) {
        self->bad_requests++;
        json_t *error = sk2_msg_error_payload(why);
        s_send_answer(self, frames, envelope, SK2_MSG_ERROR, error);
        json_decref(error);
        return;
    }
    const char *id = json_string_value(json_object_get(payload, "id"));
    json_t *refusal = NULL;
    int64_t now_us = sk2_clock_mono_us();
    s_route_t *route = s_route_find(self, id, now_us);
    if (route) {
        self->stats.commands_repeated++;
        s_route_keep_envelope(route, frames, envelope);
        if (route->reply)
            s_route_send(self, frames, envelope, route->reply);
        return;
    }
    if (rc != 0) {
        refusal = s_route_refusal(id, "malformed", why);
        goto refuse;
    }
    const char *device_id = json_string_value(json_object_get(payload, "device"));
    const char *key = json_string_value(json_object_get(payload, "key"));
    size_t upstream = SIZE_MAX;
    if (device_id) {
        ssize_t at = s_find(self, device_id);
        if (at < 0) {
            snprintf(why, sizeof why, "no device %.64s on this relay", device_id);
            refusal = s_route_refusal(id, "unknown-device", why);
            goto refuse;
        }
        upstream = self->devices[at]->upstream;
    } else {
        /* Without a device: the only device's server, or for `list` the only server. */
        for (size_t i = 0; i < self->device_count; i++) {
            if (upstream != SIZE_MAX && self->devices[i]->upstream != upstream) {
                upstream = SIZE_MAX - 1;
                break;
            }
            upstream = self->devices[i]->upstream;
        }
        bool is_list = key && strcmp(key, "list") == 0;
        if (upstream == SIZE_MAX || upstream == SIZE_MAX - 1 ||
            (!is_list && self->device_count != 1)) {
            snprintf(why, sizeof why,
                     "this relay serves %zu devices: name one (`list` without a device needs "
                     "them all on one server)",
                     self->device_count);
            refusal = s_route_refusal(id, "unknown-device", why);
            goto refuse;
        }
        if (!is_list)
            device_id = self->devices[0]->id;
    }
    /* The time left to the client's command, at least the client library's minimum. */
    json_int_t ttl = json_integer_value(json_object_get(payload, "ttl_ms"));
    if (ttl <= 0)
        ttl = SK2_CLIENT_COMMAND_TTL_MS;
    if (ttl < 100)
        ttl = 100;
    const json_t *value = json_object_get(payload, "value");
    char *value_json = value && !json_is_null(value) ? json_dumps(value, JSON_ENCODE_ANY) : NULL;
    route = s_route_slot(self);
    rc = sk2_client_command(self->upstreams[upstream].client, device_id, key, value_json, (int)ttl,
                            route->up_id, sizeof route->up_id);
    free(value_json);
    if (rc != 0) {
        snprintf(why, sizeof why, "the relay cannot pass the command to its server: %s",
                 rc == SK2_EUNSUPPORTED ? "that server takes no commands (version 1)"
                                        : sk2_strerror(rc));
        refusal = s_route_refusal(id, rc == SK2_EUNSUPPORTED ? "unsupported" : "failed", why);
        goto refuse;
    }
    route->is_used = true;
    snprintf(route->down_id, sizeof route->down_id, "%s", id);
    route->upstream = upstream;
    route->expires_us = now_us + 2 * ttl * 1000;
    s_route_keep_envelope(route, frames, envelope);
    self->stats.commands_passed++;
    /* Our client may already have the answer (it looks only when asked): it comes as an event
     * on the next turn of the loop. */
    self->upstreams[upstream].due_us = 0;
    return;
refuse:
    self->stats.commands_refused++;
    s_route_send(self, frames, envelope, refusal);
    json_decref(refusal);
}

/* Our upstream client's command ended: the answer goes downstream under the client's id. */
static void s_route_done(s_actor_t *self, size_t upstream, const sk2_event_t *event)
{
    const char *up_id = sk2_event_command_id(event);
    s_route_t *route = NULL;
    for (size_t i = 0; up_id && i < S_ROUTES_MAX && !route; i++)
        if (self->routes[i].is_used && self->routes[i].upstream == upstream &&
            strcmp(self->routes[i].up_id, up_id) == 0)
            route = &self->routes[i];
    if (!route || route->reply)
        return;
    const char *text = sk2_event_json(event);
    json_t *reply = text ? json_loads(text, 0, NULL) : NULL;
    if (json_is_object(reply)) {
        json_object_set_new(reply, "id", json_string(route->down_id));
    } else {
        json_decref(reply);
        char why[256];
        snprintf(why, sizeof why, "no answer from the device's server: %s",
                 *sk2_event_reason(event) ? sk2_event_reason(event)
                                          : sk2_strerror(sk2_event_error(event)));
        reply = s_route_refusal(route->down_id, "failed", why);
    }
    route->reply = reply;
    s_route_answer(self, route);
}

static void s_route_answer(s_actor_t *self, s_route_t *route)
{
    if (route->reply && route->envelope_size > 0)
        s_route_send(self, route->envelope, route->envelope_size, route->reply);
}

/* A downstream client's `flow`, answered as a server answers it (docs/protocol.md "The flow
 * request"): remembered in the relay's own table, or refused with the reason and nothing
 * changed. The reply's `sequences` are the newest frames the relay forwarded, which is where
 * the streams are as far as its clients can see. */
static void s_flow(s_actor_t *self, zmq_msg_t *frames, size_t envelope, const json_t *payload)
{
    char why[256];
    json_t *reply = NULL;
    int rc = self->clients ? sk2_clients_update(self->clients, payload, sk2_clock_mono_us(), &reply,
                                                why, sizeof why)
                           : SK2_ENOMEM;
    if (rc == SK2_ENOMEM)
        snprintf(why, sizeof why, "the relay cannot keep flow states (out of memory)");
    if (rc != 0) {
        self->bad_requests++;
        json_t *error = sk2_msg_error_payload(why);
        s_send_answer(self, frames, envelope, SK2_MSG_ERROR, error);
        json_decref(error);
        return;
    }
    json_t *sequences = json_array();
    for (size_t i = 0; sequences && i < self->device_count; i++)
        for (int kind = SK2_STREAM_DEPTH; kind <= SK2_STREAM_BODY; kind++)
            if (self->devices[i]->newest[kind] > 0)
                sk2_clients_add_sequence(sequences, self->devices[i]->id, (sk2_stream_kind_t)kind,
                                         self->devices[i]->newest[kind] - 1);
    json_object_set_new(reply, "sequences", sequences ? sequences : json_array());
    s_send_answer(self, frames, envelope, SK2_MSG_FLOW_REPLY, reply);
    json_decref(reply);
}

/* Answers one request as the server does (docs/protocol.md "How the sk2 server answers"):
 * with the envelope it came with, or not at all if it has none. */
static void s_answer(s_actor_t *self, zmq_msg_t *frames, size_t kept, size_t total)
{
    size_t delimiter = 0;
    for (size_t i = 1; i < kept && i <= S_MAX_ROUTING + 1 && !delimiter; i++)
        if (zmq_msg_size(&frames[i]) == 0)
            delimiter = i;
    if (delimiter == 0 || delimiter + 1 >= total)
        return;
    size_t envelope = delimiter + 1;
    const uint8_t *parts[3];
    size_t sizes[3];
    for (size_t i = 0; i < 3 && envelope + i < kept; i++) {
        parts[i] = zmq_msg_data(&frames[envelope + i]);
        sizes[i] = zmq_msg_size(&frames[envelope + i]);
    }
    sk2_msg_t msg;
    char why[256];
    int rc =
        sk2_msg_parse(total - envelope, parts, sizes, SK2_MSG_FROM_CLIENT, &msg, why, sizeof why);
    self->stats.requests++;
    if (rc == 0 && msg.type == SK2_MSG_REPLAY) {
        snprintf(why, sizeof why, "a relay does not pass replay requests on; ask the server");
        sk2_msg_clear(&msg);
        rc = SK2_EUNSUPPORTED;
    }
    if (rc != 0) {
        self->bad_requests++;
        json_t *error = sk2_msg_error_payload(why);
        s_send_answer(self, frames, envelope, SK2_MSG_ERROR, error);
        json_decref(error);
        return;
    }
    if (msg.type == SK2_MSG_PING) {
        s_send_answer(self, frames, envelope, SK2_MSG_PONG, NULL);
    } else if (msg.type == SK2_MSG_COMMAND) {
        s_route_command(self, frames, envelope, msg.payload);
    } else if (msg.type == SK2_MSG_FLOW) {
        s_flow(self, frames, envelope, msg.payload);
    } else if (msg.type == SK2_MSG_STATS) {
        json_t *stats = s_stats_json(self);
        s_send_answer(self, frames, envelope, SK2_MSG_STATS_REPLY, stats);
        json_decref(stats);
    } else {
        s_send_answer(self, frames, envelope, SK2_MSG_ME, s_me(self));
    }
    sk2_msg_clear(&msg);
}

static void s_answer_batch(s_actor_t *self)
{
    for (int n = 0; n < S_CONTROL_BATCH; n++) {
        zmq_msg_t frames[S_KEPT_FRAMES];
        size_t total = sk2_socket_recv_parts(zsock_resolve(self->control), frames, S_KEPT_FRAMES);
        if (total == 0)
            return;
        size_t kept = total < S_KEPT_FRAMES ? total : S_KEPT_FRAMES;
        s_answer(self, frames, kept, total);
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&frames[i]);
    }
}

static int s_bind(s_actor_t *self, const char *address, int port)
{
    if (self->control)
        return SK2_ESTATE;
    int rc = sk2_address_resolve(address, &self->address);
    if (rc != 0)
        return rc;
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
        SK2_ERROR("relay", "cannot bind tcp://%s:%d: %s", self->address.bind_host, port,
                  zmq_strerror(zmq_errno()));
        zsock_destroy(&control);
        return SK2_EBIND;
    }
    if (port)
        bound = port;
    sk2_address_endpoint(self->address.advertise_host, bound, self->endpoint,
                         sizeof self->endpoint);
    self->control = control;
    SK2_INFO("relay", "\"%s\" answering on %s", self->name, self->endpoint);
    if (self->is_announced) {
        self->announcer = sk2_announcer_new(
            self->name, (uint16_t)bound, sk2_address_interface(&self->address),
            (unsigned)self->device_count, self->curve.is_on ? self->curve.public_key : NULL);
        if (!self->announcer)
            SK2_WARN("relay", "cannot announce \"%s\": out of memory", self->name);
    }
    /* Devices get endpoints only now: serve what the upstreams already said. */
    for (size_t i = 0; i < self->upstream_count; i++)
        s_service(self, i);
    return bound;
}

/* One command from the front end. Returns false on $TERM. */
static bool s_command(s_actor_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr(msg);
    bool is_running = true;
    if (!command || streq(command, "$TERM")) {
        is_running = false;
    } else if (streq(command, "BIND")) {
        char *address = zmsg_popstr(msg), *port = zmsg_popstr(msg);
        int rc = address && port ? s_bind(self, address, atoi(port)) : SK2_EINVAL;
        zsock_send(self->pipe, "is", rc, self->endpoint);
        zstr_free(&address);
        zstr_free(&port);
    } else if (streq(command, "ANNOUNCE")) {
        char *value = zmsg_popstr(msg);
        self->is_announced = value && streq(value, "1");
        zstr_free(&value);
        zsock_send(self->pipe, "i", 0);
    } else if (streq(command, "ADD")) {
        zframe_t *frame = zmsg_pop(msg);
        sk2_client_t *client = NULL;
        if (frame && zframe_size(frame) == sizeof client)
            memcpy(&client, zframe_data(frame), sizeof client);
        zframe_destroy(&frame);
        sk2_handoff_acquire(client);
        int rc = client ? s_add_upstream(self, client) : SK2_EINVAL;
        zsock_send(self->pipe, "i", rc);
    } else if (streq(command, "ACCEPT")) {
        char *address = zmsg_popstr(msg), *port = zmsg_popstr(msg);
        char *keys = zmsg_popstr(msg), *allow = zmsg_popstr(msg);
        int rc = !address || !port || !keys || !allow  ? SK2_EINVAL
                 : !self->control || self->accept      ? SK2_ESTATE
                 : (*keys != '\0') != (*allow != '\0') ? SK2_EINVAL
                 : self->curve.is_on && *keys          ? SK2_ESTATE
                                                       : 0;
        sk2_address_t where;
        /* A secure relay secures its push port with its own keys and handler; a plain one may
         * secure the push port alone, with a handler of its own for it. */
        sk2_curve_t curve = self->curve;
        sk2_zap_t *zap = NULL;
        if (rc == 0 && *keys)
            rc = sk2_curve_load_pair(keys, &curve);
        if (rc == 0 && *keys)
            rc = sk2_zap_new(allow, curve.public_key, &zap);
        if (rc == 0)
            rc = sk2_address_resolve(address, &where);
        if (rc == 0)
            rc = sk2_accept_new(where.bind_host, atoi(port), &curve, s_on_pusher, self,
                                &self->accept);
        if (rc == 0 && zap) {
            self->zap = zap;
            zap = NULL;
        }
        sk2_zap_destroy(&zap);
        memset(&curve, 0, sizeof curve);
        zsock_send(self->pipe, "i", rc);
        zstr_free(&address);
        zstr_free(&port);
        zstr_free(&keys);
        zstr_free(&allow);
    } else if (streq(command, "SECURE")) {
        /* Before bind: every socket bound from now on is a CURVE server, checked by our ZAP
         * handler, which must be there first (a CURVE socket without one lets every key in). */
        char *keys = zmsg_popstr(msg), *allow = zmsg_popstr(msg);
        int rc = !keys || !allow ? SK2_EINVAL : self->control || self->zap ? SK2_ESTATE : 0;
        sk2_curve_t curve = {0};
        if (rc == 0)
            rc = sk2_curve_load_pair(keys, &curve);
        if (rc == 0)
            rc = sk2_zap_new(allow, curve.public_key, &self->zap);
        if (rc == 0)
            self->curve = curve;
        zsock_send(self->pipe, "is", rc, rc == 0 ? curve.public_key : "");
        memset(&curve, 0, sizeof curve);
        zstr_free(&keys);
        zstr_free(&allow);
    } else if (streq(command, "STATS")) {
        sk2_relay_stats_t stats;
        s_fill_stats(self, &stats);
        zsock_send(self->pipe, "b", &stats, sizeof stats);
    }
    zstr_free(&command);
    zmsg_destroy(&msg);
    return is_running;
}

/* ---- The loop ----------------------------------------------------------------------------- */

static void s_actor(zsock_t *pipe, void *arg)
{
    s_actor_t *self = calloc(1, sizeof *self);
    if (!self) {
        zsock_signal(pipe, 0);
        return;
    }
    self->pipe = pipe;
    self->name = arg;
    self->is_announced = true;
    self->clients = sk2_clients_new();
    sk2_runtime_block_signals();
    zsock_signal(pipe, 0);
    /* Sized for everything at once: pipe, control, announcer, each upstream's descriptors and
     * four sockets per device. */
    enum {
        S_ACCEPT_ITEMS = 1 + SK2_PUSH_MAX + 2 * S_MAX_DEVICES,
        S_ITEMS = 4 + SK2_RELAY_UPSTREAMS_MAX * S_CLIENT_FDS + 4 * S_MAX_DEVICES + S_ACCEPT_ITEMS
    };
    zmq_pollitem_t *items = calloc(S_ITEMS, sizeof *items);
    size_t *owner = calloc(S_ITEMS, sizeof *owner);
    bool is_running = items && owner;
    while (is_running) {
        size_t n = 0;
        items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(pipe), .events = ZMQ_POLLIN};
        size_t control_at = SIZE_MAX, announcer_at = SIZE_MAX, zap_at = SIZE_MAX;
        if (self->zap) {
            zap_at = n;
            items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(sk2_zap_socket(self->zap)),
                                          .events = ZMQ_POLLIN};
        }
        if (self->control) {
            control_at = n;
            items[n++] =
                (zmq_pollitem_t){.socket = zsock_resolve(self->control), .events = ZMQ_POLLIN};
        }
        if (self->announcer) {
            announcer_at = n;
            items[n++] =
                (zmq_pollitem_t){.socket = zsock_resolve(sk2_announcer_actor(self->announcer)),
                                 .events = ZMQ_POLLIN};
        }
        size_t devices_at = n;
        for (size_t i = 0; i < self->device_count; i++) {
            s_device_t *device = self->devices[i];
            zsock_t *sockets[4] = {device->up_depth, device->up_streams, device->down_depth,
                                   device->down_streams};
            for (int k = 0; k < 4; k++) {
                owner[n] = i * 4 + (size_t)k;
                items[n++] =
                    (zmq_pollitem_t){.socket = sockets[k] ? zsock_resolve(sockets[k]) : NULL,
                                     .fd = -1,
                                     .events = sockets[k] ? ZMQ_POLLIN : 0};
            }
        }
        size_t upstreams_at = n;
        int64_t now_us = sk2_clock_mono_us(), due_us = INT64_MAX;
        for (size_t i = 0; i < self->upstream_count; i++) {
            int fds[S_CLIENT_FDS];
            size_t count = sk2_client_fds(self->upstreams[i].client, fds, S_CLIENT_FDS);
            for (size_t k = 0; k < count && k < S_CLIENT_FDS; k++) {
                owner[n] = i;
                items[n++] = (zmq_pollitem_t){.fd = fds[k], .events = ZMQ_POLLIN};
            }
            if (self->upstreams[i].due_us < due_us)
                due_us = self->upstreams[i].due_us;
        }
        size_t accept_at = n, accept_count = 0;
        if (self->accept) {
            accept_count = sk2_accept_items(self->accept, &items[n], S_ACCEPT_ITEMS);
            n += accept_count;
            if (sk2_accept_due_us(self->accept) < due_us)
                due_us = sk2_accept_due_us(self->accept);
        }
        long wait_ms = due_us == INT64_MAX ? -1 : (due_us - now_us + 999) / 1000;
        if (wait_ms < 0 && due_us != INT64_MAX)
            wait_ms = 0;
        if (zmq_poll(items, (int)n, wait_ms) < 0 && zmq_errno() != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            if (!s_command(self))
                break;
            /* The command may have changed devices: poll again with fresh items, and look at
             * every upstream then, since their descriptors' edges are consumed by this poll. */
            for (size_t i = 0; i < self->upstream_count; i++)
                self->upstreams[i].due_us = 0;
            continue;
        }
        if (zap_at != SIZE_MAX && (items[zap_at].revents & ZMQ_POLLIN))
            sk2_zap_answer(self->zap);
        if (control_at != SIZE_MAX && (items[control_at].revents & ZMQ_POLLIN))
            s_answer_batch(self);
        if (announcer_at != SIZE_MAX && (items[announcer_at].revents & ZMQ_POLLIN))
            sk2_announcer_read(self->announcer);
        for (size_t i = devices_at; i < upstreams_at; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            s_device_t *device = self->devices[owner[i] / 4];
            switch (owner[i] % 4) {
            case 0:
                s_forward_depth(self, device);
                break;
            case 1:
                s_forward_streams(self, device);
                break;
            default:
                s_subscriptions(self, device, owner[i] % 4 == 3);
            }
        }
        /* Upstreams last: a sync may remove devices whose sockets were polled above. */
        bool is_due[SK2_RELAY_UPSTREAMS_MAX] = {false};
        for (size_t i = upstreams_at; i < accept_at; i++)
            if (items[i].revents & ZMQ_POLLIN)
                is_due[owner[i]] = true;
        now_us = sk2_clock_mono_us();
        for (size_t i = 0; i < self->upstream_count; i++)
            if (is_due[i] || now_us >= self->upstreams[i].due_us)
                s_service(self, i);
        /* Pushers last of all: one that goes takes its upstream, and the indexes above, away. */
        if (self->accept)
            sk2_accept_handle(self->accept, &items[accept_at], accept_count);
    }
    free(items);
    free(owner);
    sk2_announcer_destroy(&self->announcer);
    sk2_accept_destroy(&self->accept);
    sk2_clients_destroy(&self->clients);
    while (self->device_count > 0)
        s_device_destroy(&self->devices[--self->device_count]);
    for (size_t i = 0; i < self->upstream_count; i++) {
        sk2_client_destroy(&self->upstreams[i].client);
        free(self->upstreams[i].me_text);
    }
    json_decref(self->me);
    for (size_t i = 0; i < S_ROUTES_MAX; i++)
        s_route_free(&self->routes[i]);
    zsock_destroy(&self->control);
    sk2_zap_destroy(&self->zap); /* last: a secure socket without its handler lets anyone in */
    memset(&self->curve, 0, sizeof self->curve);
    free(self);
    sk2_handoff_release(arg);
}

/* ---- The front end ------------------------------------------------------------------------ */

sk2_relay_t *sk2_relay_new(const char *name)
{
    sk2_socket_init();
    char fallback[300];
    name = sk2_me_own_name(name, "sk2 relay", fallback, sizeof fallback);
    if (!name)
        return NULL;
    sk2_relay_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->is_announced = true;
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

void sk2_relay_destroy(sk2_relay_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_relay_t *self = *self_p;
    zactor_destroy(&self->actor);
    sk2_handoff_acquire(self->name);
    free(self->name);
    free(self);
    *self_p = NULL;
}

int sk2_relay_set_announce(sk2_relay_t *self, bool is_announced)
{
    if (!self)
        return SK2_EINVAL;
    if (self->port)
        return SK2_ESTATE;
    int rc = SK2_ESYS;
    if (zstr_sendx(self->actor, "ANNOUNCE", is_announced ? "1" : "0", NULL) != 0 ||
        zsock_recv(self->actor, "i", &rc) != 0)
        return SK2_ESYS;
    self->is_announced = is_announced;
    return rc;
}

int sk2_relay_bind(sk2_relay_t *self, const char *address, uint16_t port)
{
    if (!self || !address)
        return SK2_EINVAL;
    if (self->port)
        return SK2_ESTATE;
    return sk2_address_bind_actor(self->actor, address, port, &self->port, self->endpoint,
                                  sizeof self->endpoint);
}

const char *sk2_relay_endpoint(const sk2_relay_t *self)
{
    return self && self->port ? self->endpoint : NULL;
}

uint16_t sk2_relay_port(const sk2_relay_t *self)
{
    return self ? self->port : 0;
}

int sk2_relay_add_upstream(sk2_relay_t *self, sk2_client_t **client_p)
{
    if (!client_p || !*client_p)
        return SK2_EINVAL;
    sk2_client_t *client = *client_p;
    *client_p = NULL;
    /* A secure client is followed with its own keys: the relay's SUBs take them too. */
    int rc = !self || !sk2_client_is_connected(client) ? SK2_EINVAL : 0;
    if (rc == 0)
        rc = sk2_client_set_reconnect(client, true);
    if (rc == 0)
        rc = sk2_client_set_heartbeat_ms(client, S_UPSTREAM_HEARTBEAT_MS);
    if (rc != 0) {
        sk2_client_destroy(&client);
        return rc;
    }
    sk2_handoff_release(client);
    if (zsock_send(self->actor, "sb", "ADD", &client, sizeof client) != 0 ||
        zsock_recv(self->actor, "i", &rc) != 0)
        return SK2_ESYS; /* the actor has gone (out of memory); the client went with it */
    return rc;
}

int sk2_relay_connect(sk2_relay_t *self, const char *endpoint)
{
    if (!self || !endpoint)
        return SK2_EINVAL;
    sk2_client_t *client = sk2_client_new();
    if (!client)
        return SK2_ENOMEM;
    int rc = sk2_client_connect(client, endpoint);
    if (rc != 0) {
        sk2_client_destroy(&client);
        return rc;
    }
    return sk2_relay_add_upstream(self, &client);
}

int sk2_relay_accept_push(sk2_relay_t *self, const char *address, uint16_t port, const char *keys,
                          const char *allow_dir)
{
    if (!self || !address || port == 0 || !keys != !allow_dir)
        return SK2_EINVAL;
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    int rc = SK2_ESYS;
    if (zstr_sendx(self->actor, "ACCEPT", address, port_text, keys ? keys : "",
                   allow_dir ? allow_dir : "", NULL) != 0 ||
        zsock_recv(self->actor, "i", &rc) != 0)
        return SK2_ESYS;
    return rc;
}

int sk2_relay_set_security(sk2_relay_t *self, const char *keys, const char *allow_dir)
{
    if (!self || !keys || !allow_dir)
        return SK2_EINVAL;
    if (self->port || self->public_key[0])
        return SK2_ESTATE;
    int rc = SK2_ESYS;
    char *key = NULL;
    if (zstr_sendx(self->actor, "SECURE", keys, allow_dir, NULL) != 0 ||
        zsock_recv(self->actor, "is", &rc, &key) != 0)
        return SK2_ESYS;
    if (rc == 0 && key)
        snprintf(self->public_key, sizeof self->public_key, "%s", key);
    zstr_free(&key);
    return rc;
}

const char *sk2_relay_public_key(const sk2_relay_t *self)
{
    return self && self->public_key[0] ? self->public_key : NULL;
}

int sk2_relay_stats(sk2_relay_t *self, sk2_relay_stats_t *stats)
{
    if (!self || !stats)
        return SK2_EINVAL;
    zframe_t *frame = NULL;
    if (zstr_send(self->actor, "STATS") != 0 || zsock_recv(self->actor, "f", &frame) != 0)
        return SK2_ESYS;
    int rc = SK2_ESYS;
    if (frame && zframe_size(frame) == sizeof *stats) {
        memcpy(stats, zframe_data(frame), sizeof *stats);
        rc = 0;
    }
    zframe_destroy(&frame);
    return rc;
}
