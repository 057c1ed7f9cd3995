/* The gateway's client thread: one sk2 client per server (given by endpoint or found by the
 * browser), all polled in one loop with the wake pipe. Every frame is decoded once, by the
 * client, and becomes the newest shot of its stream; the web thread is woken to send it. Depth
 * is always subscribed, so the API always has a latest depth frame; IR and colour only while
 * a WebSocket or a recent HTTP request wants them, since they cost the server an encode each.
 * Once a second this thread turns its counters into the stats JSON and asks each server for
 * its own. Servers given by endpoint are reconnected every 2 s while lost. */
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "gateway/gateway_impl.h"
#include "sk2/browser.h"
#include "sk2/client.h"
#include "sk2/codec.h"
#include "sk2/server.h"
#include "sk2/sk2.h"
#include "sk2/error.h"

#define S_DEVICES_MAX     64      /* devices followed per server */
#define S_KINDS           3       /* depth, ir, color */
#define S_RECONNECT_US    2000000 /* retry a lost server after this */
#define S_STATS_US        1000000 /* stats window */
#define S_POLL_MAX        512     /* descriptors polled at once */
#define S_DISPATCH_ROUNDS 8       /* dispatch calls per client per loop, so one cannot hog it */
#define S_JSON_MAX        (1u << 20)

static const sk2_stream_kind_t s_kinds[S_KINDS] = {SK2_STREAM_DEPTH, SK2_STREAM_IR,
                                                   SK2_STREAM_COLOR};

typedef struct {
    bool is_offered;          /* the device has this stream */
    bool has_info;            /* info is valid (sk2 servers; not version 1) */
    sk2_stream_info_t info;   /* from `me` */
    char codecs[256];         /* offered codecs, comma-separated */
    const char *codec;        /* subscribed codec (static), NULL if not subscribed */
    uint64_t frames;          /* frames received since the device appeared */
    uint64_t dropped;         /* sequence gaps: frames the server sent that never came */
    uint64_t last_sequence;   /* of the newest frame */
    uint64_t w_frames;        /* this window: frames */
    uint64_t w_wire;          /* encoded bytes */
    uint64_t w_raw;           /* decoded bytes */
    int64_t w_latency_sum_us; /* sum of known latencies */
    uint64_t w_latency_n;     /* how many were known */
    int64_t w_latency_max_us;
    int64_t last_received_us; /* monotonic time of the newest frame, 0 before the first */
    double fps, mbit_s, ratio, latency_ms, latency_max_ms; /* the last full window */
} s_stream_t;

typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1]; /* as its server calls it */
    char key[GW_KEY_MAX + 1];       /* "s<server number>:<id>": unique in the gateway */
    char serial[128];
    char label[65];     /* from `me` (the keyed command `label`), "" if none */
    char location[129]; /* likewise `location` */
    bool is_v1;         /* no streams endpoint: depth12 on the version-1 endpoint */
    s_stream_t streams[S_KINDS];
} s_device_t;

typedef struct s_up s_up_t;

typedef struct {
    s_up_t *up;
    int number;                                 /* stable id "s<number>" for the API */
    char endpoint[GW_ENDPOINT_MAX];             /* control endpoint */
    char browse_name[SK2_BROWSER_NAME_MAX + 1]; /* "" unless found by the browser */
    bool is_given;                              /* given by endpoint: reconnect forever */
    sk2_client_t *client;                       /* while connecting or connected */
    bool is_connected;                          /* `me` arrived */
    bool is_lost;                               /* set inside dispatch, handled after it */
    int64_t reconnect_us;                       /* monotonic time of the next attempt, 0 none */
    int64_t down_since_us;                      /* monotonic time it was lost or added, 0 up */
    bool was_connected;                         /* had a `me` once: a loss is an outage */
    bool is_given_up;                           /* no more attempts (give_up_after_ms) */
    char name[SK2_SERVER_NAME_MAX + 1];         /* from `me` */
    char error[256];                            /* why it is not connected */
    json_t *stats;                              /* the server's last stats reply */
    uint64_t rejected_seen;                     /* client's frames_rejected already counted */
    s_device_t *devices[S_DEVICES_MAX];
    size_t device_count;
} s_server_t;

struct s_up {
    sk2_gateway_t *gw;
    s_server_t *servers[SK2_GATEWAY_SERVERS_MAX];
    size_t server_count;
    int next_number;
    sk2_browser_t *browser;
    bool is_state_dirty;
    int64_t window_start_us;
    int64_t next_stats_us;
};

/* ---- Slots (shared with the web thread) ---------------------------------------------------- */

static void s_slot_add(sk2_gateway_t *gw, const char *key, sk2_stream_kind_t kind,
                       int64_t max_age_us)
{
    pthread_mutex_lock(&gw->lock);
    if (!gw_slot_find(gw, key, kind)) {
        if (gw->slot_count == gw->slot_cap) {
            size_t cap = gw->slot_cap ? gw->slot_cap * 2 : 16;
            gw_slot_t *slots = realloc(gw->slots, cap * sizeof *slots);
            if (!slots) {
                pthread_mutex_unlock(&gw->lock);
                return;
            }
            gw->slots = slots;
            gw->slot_cap = cap;
        }
        gw_slot_t *slot = &gw->slots[gw->slot_count++];
        memset(slot, 0, sizeof *slot);
        snprintf(slot->key, sizeof slot->key, "%s", key);
        slot->kind = kind;
        slot->max_age_us = max_age_us;
    }
    pthread_mutex_unlock(&gw->lock);
}

static void s_slots_remove(sk2_gateway_t *gw, const char *key)
{
    gw_shot_t *gone[S_KINDS] = {NULL};
    size_t n = 0;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->slot_count;) {
        if (strcmp(gw->slots[i].key, key) == 0) {
            if (n < S_KINDS)
                gone[n++] = gw->slots[i].latest;
            else
                gw_shot_unref(&gw->slots[i].latest);
            gw->slots[i] = gw->slots[--gw->slot_count];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&gw->lock);
    for (size_t i = 0; i < n; i++)
        gw_shot_unref(&gone[i]);
}

static void s_slot_publish(sk2_gateway_t *gw, gw_shot_t *shot)
{
    gw_shot_t *old = NULL;
    pthread_mutex_lock(&gw->lock);
    gw_slot_t *slot = gw_slot_find(gw, shot->key, shot->kind);
    if (slot) {
        old = slot->latest;
        slot->latest = shot;
        shot = NULL;
    }
    pthread_mutex_unlock(&gw->lock);
    gw_shot_unref(&old);
    gw_shot_unref(&shot);
}

/* Whether the web side wants a stream now. */
static bool s_is_wanted(sk2_gateway_t *gw, const char *key, sk2_stream_kind_t kind, int64_t now_us)
{
    pthread_mutex_lock(&gw->lock);
    gw_slot_t *slot = gw_slot_find(gw, key, kind);
    bool wanted =
        slot && (slot->ws_wanted > 0 || slot->fox_wanted > 0 || slot->http_until_us > now_us);
    pthread_mutex_unlock(&gw->lock);
    return wanted;
}

/* ---- Devices ------------------------------------------------------------------------------- */

static int s_kind_index(sk2_stream_kind_t kind)
{
    for (int i = 0; i < S_KINDS; i++)
        if (s_kinds[i] == kind)
            return i;
    return -1;
}

/* The codec to ask for: lossless and compact for 16-bit streams (sk2d, the best ratio at
 * several hundred MB/s each way; rvl from servers that lack it), JPEG for colour. */
static const char *s_pick_codec(const char *offered, sk2_stream_kind_t kind)
{
    static const char *const depth_order[] = {SK2_CODEC_SK2D, SK2_CODEC_RVL, SK2_CODEC_RAW};
    static const char *const color_order[] = {SK2_CODEC_JPEG, SK2_CODEC_RAW};
    const char *const *order = kind == SK2_STREAM_COLOR ? color_order : depth_order;
    size_t count = kind == SK2_STREAM_COLOR ? 2 : 3;
    for (size_t i = 0; i < count; i++) {
        size_t len = strlen(order[i]);
        for (const char *p = offered; p && *p;) {
            const char *end = strchr(p, ',');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (n == len && memcmp(p, order[i], len) == 0)
                return order[i];
            p = end ? end + 1 : NULL;
        }
    }
    return NULL;
}

static void s_stream_subscribe(s_server_t *server, s_device_t *device, int k, bool is_wanted)
{
    s_stream_t *stream = &device->streams[k];
    if (!stream->is_offered || is_wanted == (stream->codec != NULL))
        return;
    if (device->is_v1) {
        if (s_kinds[k] != SK2_STREAM_DEPTH)
            return;
        int rc = is_wanted ? sk2_client_enable_depth(server->client, device->id)
                           : sk2_client_disable_depth(server->client, device->id);
        if (rc == 0)
            stream->codec = is_wanted ? SK2_CODEC_DEPTH12 : NULL;
    } else if (is_wanted) {
        const char *codec = s_pick_codec(stream->codecs, s_kinds[k]);
        if (codec && sk2_client_subscribe(server->client, device->id, s_kinds[k], codec) == 0)
            stream->codec = codec;
    } else {
        sk2_client_unsubscribe(server->client, device->id, s_kinds[k], stream->codec);
        stream->codec = NULL;
    }
    server->up->is_state_dirty = true;
}

/* Metres per value of a depth stream: from `me`, or mm for a version-1 server's depth12; 0
 * when the server did not say (or for IR and colour). */
static double s_depth_unit_m(const s_device_t *device, int k)
{
    if (s_kinds[k] != SK2_STREAM_DEPTH)
        return 0;
    if (device->is_v1)
        return 0.001;
    return device->streams[k].has_info ? device->streams[k].info.depth_unit_m : 0;
}

/* How old a stream's newest frame may get before the API calls it stale: the gateway's
 * setting, else 2 s or 5 frame periods of the stream's nominal rate, whichever is longer. */
static int64_t s_max_age_us(const sk2_gateway_t *gw, const s_stream_t *stream)
{
    if (gw->max_age_ms > 0)
        return (int64_t)gw->max_age_ms * 1000;
    int64_t max_age_us = 2000000;
    if (stream->has_info && stream->info.fps > 0) {
        double periods_us = 5e6 / stream->info.fps;
        if (periods_us > (double)max_age_us)
            max_age_us = periods_us > 3.6e9 ? 3600000000LL : (int64_t)periods_us;
    }
    return max_age_us;
}

static void s_device_add(s_server_t *server, const char *id)
{
    if (server->device_count >= S_DEVICES_MAX || strlen(id) > SK2_DEVICE_ID_MAX) {
        SK2_WARN("gateway", "server %s: device %.64s not followed (limit %d)", server->endpoint, id,
                 S_DEVICES_MAX);
        return;
    }
    s_device_t *device = calloc(1, sizeof *device);
    if (!device)
        return;
    snprintf(device->id, sizeof device->id, "%s", id);
    snprintf(device->key, sizeof device->key, "s%d:%s", server->number, id);
    const char *serial = sk2_client_device_serial(server->client, id);
    snprintf(device->serial, sizeof device->serial, "%s", serial ? serial : "");
    device->is_v1 = sk2_client_device_endpoint(server->client, id, "streams") == NULL;
    for (int k = 0; k < S_KINDS; k++) {
        s_stream_t *stream = &device->streams[k];
        if (device->is_v1) {
            stream->is_offered = s_kinds[k] == SK2_STREAM_DEPTH &&
                                 sk2_client_device_endpoint(server->client, id, "depth");
            continue;
        }
        if (sk2_client_stream_info(server->client, id, s_kinds[k], &stream->info) != 0)
            continue;
        stream->is_offered = stream->has_info = true;
        const char *codecs = sk2_client_stream_codecs(server->client, id, s_kinds[k]);
        snprintf(stream->codecs, sizeof stream->codecs, "%s", codecs ? codecs : "");
    }
    server->devices[server->device_count++] = device;
    for (int k = 0; k < S_KINDS; k++)
        if (device->streams[k].is_offered)
            s_slot_add(server->up->gw, device->key, s_kinds[k],
                       s_max_age_us(server->up->gw, &device->streams[k]));
    s_stream_subscribe(server, device, 0, true);
    server->up->is_state_dirty = true;
}

static void s_device_remove_at(s_server_t *server, size_t index)
{
    s_device_t *device = server->devices[index];
    s_slots_remove(server->up->gw, device->key);
    free(device);
    server->devices[index] = server->devices[--server->device_count];
    server->up->is_state_dirty = true;
}

static s_device_t *s_device_find(s_server_t *server, const char *id, size_t *index)
{
    for (size_t i = 0; i < server->device_count; i++) {
        if (strcmp(server->devices[i]->id, id) == 0) {
            if (index)
                *index = i;
            return server->devices[i];
        }
    }
    return NULL;
}

/* ---- Frames -------------------------------------------------------------------------------- */

static void s_on_frame(s_server_t *server, sk2_event_t *event)
{
    s_device_t *device = s_device_find(server, sk2_event_device_id(event), NULL);
    const sk2_frame_t *frame = sk2_event_frame(event);
    if (!device || !frame)
        return;
    int k = s_kind_index(sk2_frame_kind(frame));
    if (k < 0)
        return;
    s_stream_t *stream = &device->streams[k];
    int64_t latency_us = sk2_event_latency_us(event);
    stream->frames++;
    stream->dropped += sk2_event_gap(event);
    stream->last_sequence = sk2_frame_sequence(frame);
    stream->w_frames++;
    stream->w_wire += sk2_event_wire_bytes(event);
    stream->w_raw += sk2_frame_size(frame);
    if (latency_us >= 0) {
        stream->w_latency_sum_us += latency_us;
        stream->w_latency_n++;
        if (latency_us > stream->w_latency_max_us)
            stream->w_latency_max_us = latency_us;
    }
    stream->last_received_us = sk2_clock_mono_us();
    sk2_frame_t *taken = sk2_event_take_frame(event);
    gw_shot_t *shot = gw_shot_new(&taken, device->key);
    if (!shot)
        return;
    shot->received_us = stream->last_received_us;
    shot->depth_unit_m = s_depth_unit_m(device, k);
    shot->has_intrinsics = device->streams[k].has_info && device->streams[k].info.has_intrinsics;
    if (shot->has_intrinsics)
        shot->intrinsics = device->streams[k].info.intrinsics;
    shot->latency_us = latency_us;
    shot->wire_bytes = sk2_event_wire_bytes(event);
    shot->codec = sk2_event_codec(event);
    /* Foxglove gets colour JPEGs as the server sent them (no second encode, no loss). */
    const uint8_t *payload = NULL;
    size_t payload_size = 0;
    if (s_kinds[k] == SK2_STREAM_COLOR && shot->codec && strcmp(shot->codec, SK2_CODEC_JPEG) == 0 &&
        sk2_event_encoded(event, NULL, NULL, &payload, &payload_size) == 0 && payload_size > 0) {
        gw_blob_t *blob = gw_blob_new(payload_size);
        if (blob) {
            memcpy(blob->data, payload, payload_size);
            blob->len = payload_size;
            shot->images[GW_IMAGE_ENCODED] = blob;
        }
    }
    atomic_fetch_add_explicit(&server->up->gw->counters.frames_received, 1, memory_order_relaxed);
    s_slot_publish(server->up->gw, shot);
    gw_web_wake(server->up->gw);
}

/* ---- Keyed commands from the page ------------------------------------------------------- */

/* The start of a command-done message for the page: its ref, device key and key. */
static json_t *s_command_answer(const gw_command_t *command, bool is_ok)
{
    return json_pack("{s:s, s:I, s:s, s:s, s:b}", "type", "command-done", "ref",
                     (json_int_t)command->ref, "device", command->device, "key", command->key, "ok",
                     is_ok);
}

/* Adds a refusal's code and text to an answer. */
static json_t *s_command_refusal(const gw_command_t *command, const char *code, const char *error)
{
    json_t *answer = s_command_answer(command, false);
    if (answer) {
        json_object_set_new(answer, "code", json_string(code));
        json_object_set_new(answer, "error", json_string(error));
    }
    return answer;
}

/* Hands a command's answer (taken) to the web thread, which sends it to the page. */
static void s_command_finish(sk2_gateway_t *gw, gw_command_t *command, json_t *answer)
{
    char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
    json_decref(answer);
    pthread_mutex_lock(&gw->lock);
    free(command->answer);
    command->answer = text; /* NULL (out of memory): the web thread drops the entry */
    command->state = GW_COMMAND_DONE;
    pthread_mutex_unlock(&gw->lock);
    gw_web_wake(gw);
}

/* The server and device of a gateway device key, or NULL. */
static s_device_t *s_device_of_key(s_up_t *up, const char *key, s_server_t **server_p)
{
    for (size_t i = 0; i < up->server_count; i++)
        for (size_t d = 0; d < up->servers[i]->device_count; d++)
            if (strcmp(up->servers[i]->devices[d]->key, key) == 0) {
                *server_p = up->servers[i];
                return up->servers[i]->devices[d];
            }
    return NULL;
}

/* Sends the commands the web thread queued, each with its server's client; the client resends
 * it until answered or its ttl runs out, and ends it with COMMAND_DONE (s_on_command_done). */
static void s_take_commands(s_up_t *up)
{
    sk2_gateway_t *gw = up->gw;
    for (size_t i = 0; i < GW_COMMANDS_MAX; i++) {
        gw_command_t *command = &gw->commands[i];
        pthread_mutex_lock(&gw->lock);
        bool is_queued = command->state == GW_COMMAND_QUEUED;
        if (is_queued)
            command->state = GW_COMMAND_SENT;
        pthread_mutex_unlock(&gw->lock);
        if (!is_queued)
            continue;
        s_server_t *server = NULL;
        s_device_t *device = s_device_of_key(up, command->device, &server);
        if (!device || !server->is_connected) {
            s_command_finish(
                gw, command,
                s_command_refusal(command, "unknown-device", "no such device in the gateway now"));
            continue;
        }
        int rc = sk2_client_command(server->client, device->id, command->key, command->value_json,
                                    0, command->id, sizeof command->id);
        if (rc != 0) {
            const char *code = rc == SK2_EUNSUPPORTED ? "unsupported"
                               : rc == SK2_EINVAL     ? "bad-value"
                               : rc == SK2_ELIMIT     ? "busy"
                                                      : "unavailable";
            char why[256];
            snprintf(why, sizeof why, "the gateway could not send it: %s", sk2_strerror(rc));
            s_command_finish(gw, command, s_command_refusal(command, code, why));
            continue;
        }
        command->server_number = server->number;
    }
}

/* The entry of a command this server's client sent, by its id, or NULL. */
static gw_command_t *s_command_sent(s_server_t *server, const char *id)
{
    sk2_gateway_t *gw = server->up->gw;
    gw_command_t *found = NULL;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < GW_COMMANDS_MAX && !found; i++) {
        gw_command_t *command = &gw->commands[i];
        if (command->state == GW_COMMAND_SENT && command->server_number == server->number && id &&
            strcmp(command->id, id) == 0)
            found = command;
    }
    pthread_mutex_unlock(&gw->lock);
    return found;
}

static void s_on_command_done(s_server_t *server, sk2_event_t *event)
{
    gw_command_t *command = s_command_sent(server, sk2_event_command_id(event));
    if (!command)
        return; /* not the page's */
    int error = sk2_event_error(event);
    const char *reason = sk2_event_reason(event);
    json_t *answer;
    if (error == 0) {
        const char *text = sk2_event_json(event);
        json_t *reply = text && strlen(text) < S_JSON_MAX ? json_loads(text, 0, NULL) : NULL;
        answer = s_command_answer(command, true);
        if (answer)
            json_object_set(answer, "value",
                            json_object_get(reply, "value") ? json_object_get(reply, "value")
                                                            : json_null());
        json_decref(reply);
    } else if (error == SK2_ESERVER) {
        answer = s_command_refusal(command, sk2_event_command_code(event), reason);
    } else {
        answer = s_command_refusal(command, error == SK2_ETIMEDOUT ? "timeout" : "lost",
                                   *reason ? reason : sk2_strerror(error));
    }
    s_command_finish(server->up->gw, command, answer);
}

/* A server's client is going: its commands end without an answer. */
static void s_commands_lost(s_server_t *server)
{
    sk2_gateway_t *gw = server->up->gw;
    for (size_t i = 0; i < GW_COMMANDS_MAX; i++) {
        gw_command_t *command = &gw->commands[i];
        pthread_mutex_lock(&gw->lock);
        bool is_lost =
            command->state == GW_COMMAND_SENT && command->server_number == server->number;
        pthread_mutex_unlock(&gw->lock);
        if (is_lost)
            s_command_finish(gw, command,
                             s_command_refusal(command, "lost",
                                               "the gateway lost the server before it answered"));
    }
}

/* ---- Servers ------------------------------------------------------------------------------- */

static void s_server_drop_devices(s_server_t *server)
{
    while (server->device_count > 0)
        s_device_remove_at(server, server->device_count - 1);
}

static void s_on_event(void *arg, sk2_client_t *client, sk2_event_t *event)
{
    s_server_t *server = arg;
    const char *device_id = sk2_event_device_id(event);
    size_t index;
    switch (sk2_event_type(event)) {
    case SK2_EVENT_FRAME:
        s_on_frame(server, event);
        break;
    case SK2_EVENT_CONNECTED: {
        const char *name = sk2_client_server_name(client);
        snprintf(server->name, sizeof server->name, "%s", name ? name : "");
        server->is_connected = true;
        server->was_connected = true;
        server->down_since_us = 0;
        server->error[0] = '\0';
        server->up->is_state_dirty = true;
        break;
    }
    case SK2_EVENT_DEVICE_ADDED:
        if (device_id && !s_device_find(server, device_id, NULL))
            s_device_add(server, device_id);
        break;
    case SK2_EVENT_DEVICE_REMOVED:
        if (device_id && s_device_find(server, device_id, &index))
            s_device_remove_at(server, index);
        break;
    case SK2_EVENT_RECONNECTING: /* the client noticed first; the gateway reconnects itself */
    case SK2_EVENT_DISCONNECTED:
        snprintf(server->error, sizeof server->error, "%s",
                 *sk2_event_reason(event) ? sk2_event_reason(event)
                                          : sk2_strerror(sk2_event_error(event)));
        server->is_lost = true;
        break;
    case SK2_EVENT_STATS: {
        const char *text = sk2_event_json(event);
        json_t *stats = text && strlen(text) < S_JSON_MAX ? json_loads(text, 0, NULL) : NULL;
        json_decref(server->stats);
        server->stats = stats;
        break;
    }
    case SK2_EVENT_COMMAND_DONE:
        s_on_command_done(server, event);
        break;
    case SK2_EVENT_ERROR:
        SK2_DEBUG("gateway", "server %s: %s", server->endpoint, sk2_event_reason(event));
        break;
    default:
        break;
    }
}

/* Adds what the server's client dropped by the limits since last time to the gateway's count. */
static void s_count_rejected(s_server_t *server)
{
    uint64_t now = sk2_client_frames_rejected(server->client);
    if (now > server->rejected_seen)
        atomic_fetch_add_explicit(&server->up->gw->counters.frames_rejected,
                                  now - server->rejected_seen, memory_order_relaxed);
    server->rejected_seen = now;
}

static void s_server_close(s_server_t *server)
{
    s_count_rejected(server);
    if (server->client)
        s_commands_lost(server);
    s_server_drop_devices(server);
    sk2_client_destroy(&server->client);
    if (server->is_connected)
        server->up->is_state_dirty = true;
    server->is_connected = false;
    server->is_lost = false;
}

static void s_server_connect(s_server_t *server, int64_t now_us)
{
    server->reconnect_us = now_us + S_RECONNECT_US;
    server->client = sk2_client_new();
    if (!server->client)
        return;
    sk2_client_set_handler(server->client, s_on_event, server);
    /* Only for its prompt notice of a closed connection (RECONNECTING, handled as a loss):
     * without it a quick restart hides under libzmq's own reconnection. */
    sk2_client_set_reconnect(server->client, true);
    sk2_client_set_heartbeat_ms(server->client, server->up->gw->refresh_ms);
    sk2_client_set_max_frame_bytes(server->client, server->up->gw->max_frame_bytes);
    server->rejected_seen = 0;
    int rc = server->up->gw->keys ? sk2_client_set_security(server->client, server->up->gw->keys,
                                                            server->up->gw->server_key)
                                  : 0;
    if (rc == 0)
        rc = sk2_client_connect(server->client, server->endpoint);
    if (rc != 0) {
        snprintf(server->error, sizeof server->error, "cannot connect: %s", sk2_strerror(rc));
        sk2_client_destroy(&server->client);
        server->up->is_state_dirty = true;
    }
}

static s_server_t *s_server_add(s_up_t *up, const char *endpoint, const char *browse_name)
{
    if (up->server_count >= SK2_GATEWAY_SERVERS_MAX) {
        SK2_WARN("gateway", "more than %d servers: %s not followed", SK2_GATEWAY_SERVERS_MAX,
                 endpoint);
        return NULL;
    }
    s_server_t *server = calloc(1, sizeof *server);
    if (!server)
        return NULL;
    server->up = up;
    server->number = up->next_number++;
    snprintf(server->endpoint, sizeof server->endpoint, "%s", endpoint);
    snprintf(server->browse_name, sizeof server->browse_name, "%s", browse_name ? browse_name : "");
    server->is_given = browse_name == NULL;
    server->down_since_us = sk2_clock_mono_us();
    snprintf(server->error, sizeof server->error, "connecting");
    up->servers[up->server_count++] = server;
    up->is_state_dirty = true;
    return server;
}

static void s_server_remove_at(s_up_t *up, size_t index)
{
    s_server_t *server = up->servers[index];
    s_server_close(server);
    json_decref(server->stats);
    free(server);
    up->servers[index] = up->servers[--up->server_count];
    up->is_state_dirty = true;
}

/* ---- Discovery ----------------------------------------------------------------------------- */

static void s_on_browser_event(void *arg, sk2_browser_t *browser, sk2_event_t *event)
{
    (void)browser;
    s_up_t *up = arg;
    const char *name = sk2_event_server_name(event);
    const char *endpoint = sk2_event_endpoint(event);
    sk2_event_type_t type = sk2_event_type(event);
    if (!name)
        return;
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        bool is_same_name = strcmp(server->browse_name, name) == 0;
        bool is_same_endpoint = endpoint && strcmp(server->endpoint, endpoint) == 0;
        if (type == SK2_EVENT_SERVER_REMOVED && is_same_name && !server->is_given) {
            s_server_remove_at(up, i);
            return;
        }
        if (type == SK2_EVENT_SERVER_UPDATED && is_same_name && endpoint && !is_same_endpoint &&
            !server->is_given) {
            s_server_close(server);
            snprintf(server->endpoint, sizeof server->endpoint, "%s", endpoint);
            server->reconnect_us = 1;
            up->is_state_dirty = true;
            return;
        }
        if (is_same_name || is_same_endpoint)
            return; /* known already (perhaps given by endpoint too) */
    }
    if ((type == SK2_EVENT_SERVER_ADDED || type == SK2_EVENT_SERVER_UPDATED) && endpoint) {
        s_server_t *server = s_server_add(up, endpoint, name);
        if (server)
            server->reconnect_us = 1;
    }
}

/* ---- State and stats JSON ------------------------------------------------------------------ */

static json_t *s_intrinsics_json(const sk2_intrinsics_t *k)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "fx", k->fx, "fy", k->fy,
                     "cx", k->cx, "cy", k->cy, "k1", k->k1, "k2", k->k2, "k3", k->k3, "p1", k->p1,
                     "p2", k->p2);
}

static json_t *s_codecs_json(const char *list)
{
    json_t *array = json_array();
    for (const char *p = list; p && *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        json_array_append_new(array, json_stringn(p, n));
        p = end ? end + 1 : NULL;
    }
    return array;
}

static json_t *s_device_json(const s_server_t *server, const s_device_t *device)
{
    json_t *streams = json_array();
    for (int k = 0; k < S_KINDS; k++) {
        const s_stream_t *s = &device->streams[k];
        if (!s->is_offered)
            continue;
        json_t *stream = json_pack("{s:s, s:b, s:s?}", "kind", sk2_stream_kind_name(s_kinds[k]),
                                   "subscribed", s->codec != NULL, "codec", s->codec);
        if (s->has_info) {
            json_object_set_new(stream, "format",
                                json_string(sk2_pixel_format_name(s->info.format)));
            json_object_set_new(stream, "width", json_integer(s->info.width));
            json_object_set_new(stream, "height", json_integer(s->info.height));
            json_object_set_new(stream, "fps", json_real(s->info.fps));
            json_object_set_new(stream, "codecs", s_codecs_json(s->codecs));
        } else {
            json_object_set_new(stream, "format", json_string("depth_mm16"));
            json_object_set_new(stream, "width", json_integer(SK2_MOCK_WIDTH));
            json_object_set_new(stream, "height", json_integer(SK2_MOCK_HEIGHT));
            json_object_set_new(stream, "codecs", s_codecs_json(SK2_CODEC_DEPTH12));
        }
        /* Units and intrinsics exactly as the server gave them: a depth stream whose server
         * named no unit says null, a stream without intrinsics says has_intrinsics false, so
         * that no one silently assumes millimetres or a Kinect v2's lens. */
        if (s_kinds[k] == SK2_STREAM_DEPTH) {
            double unit_m = s_depth_unit_m(device, k);
            json_object_set_new(stream, "depth_unit_m",
                                unit_m > 0 ? json_real(unit_m) : json_null());
        }
        bool has_intrinsics = s->has_info && s->info.has_intrinsics;
        json_object_set_new(stream, "has_intrinsics", json_boolean(has_intrinsics));
        if (has_intrinsics)
            json_object_set_new(stream, "intrinsics", s_intrinsics_json(&s->info.intrinsics));
        json_object_set_new(stream, "max_age_ms",
                            json_integer(s_max_age_us(server->up->gw, s) / 1000));
        json_array_append_new(streams, stream);
    }
    json_t *endpoints = json_object();
    const char *names[] = {"depth", "streams"};
    for (size_t i = 0; i < 2; i++) {
        const char *e = sk2_client_device_endpoint(server->client, device->id, names[i]);
        if (e)
            json_object_set_new(endpoints, names[i], json_string(e));
    }
    char server_id[16];
    snprintf(server_id, sizeof server_id, "s%d", server->number);
    json_t *record =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "key", device->key, "id", device->id,
                  "server", server_id, "server_name", server->name, "serial", device->serial,
                  "endpoints", endpoints, "streams", streams);
    if (record && device->label[0])
        json_object_set_new(record, "label", json_string(device->label));
    if (record && device->location[0])
        json_object_set_new(record, "location", json_string(device->location));
    return record;
}

/* A device's label and location change with a keyed command, which changes `me` but no device
 * list: look at them with the statistics and publish the state again when they changed. */
static void s_follow_metadata(s_up_t *up)
{
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        for (size_t d = 0; server->client && d < server->device_count; d++) {
            s_device_t *device = server->devices[d];
            const char *label = sk2_client_device_label(server->client, device->id);
            const char *location = sk2_client_device_location(server->client, device->id);
            if (strcmp(device->label, label ? label : "") != 0 ||
                strcmp(device->location, location ? location : "") != 0) {
                snprintf(device->label, sizeof device->label, "%s", label ? label : "");
                snprintf(device->location, sizeof device->location, "%s", location ? location : "");
                up->is_state_dirty = true;
            }
        }
    }
}

static void s_publish_state(s_up_t *up)
{
    json_t *servers = json_array();
    json_t *devices = json_array();
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        json_t *ids = json_array();
        json_t *keys = json_array();
        for (size_t d = 0; d < server->device_count; d++) {
            json_array_append_new(ids, json_string(server->devices[d]->id));
            json_array_append_new(keys, json_string(server->devices[d]->key));
            json_array_append_new(devices, s_device_json(server, server->devices[d]));
        }
        char id[16];
        snprintf(id, sizeof id, "s%d", server->number);
        const char *me = server->is_connected ? sk2_client_me_json(server->client) : NULL;
        json_t *me_json = me && strlen(me) < S_JSON_MAX ? json_loads(me, 0, NULL) : NULL;
        json_t *endpoints = me_json ? json_object_get(me_json, "endpoints") : NULL;
        json_t *server_json =
            json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s, s:O?, s:o, s:o}", "id", id, "name",
                      server->name, "endpoint", server->endpoint, "connected", server->is_connected,
                      "discovered_as", server->browse_name[0] ? server->browse_name : NULL,
                      "status", server->is_connected ? "connected" : server->error, "endpoints",
                      endpoints, "devices", ids, "device_keys", keys);
        json_decref(me_json);
        json_array_append_new(servers, server_json);
    }
    json_t *state =
        json_pack("{s:s, s:o, s:o}", "sk2", sk2_version(), "servers", servers, "devices", devices);
    sk2_gateway_t *gw = up->gw;
    size_t device_count = json_array_size(devices);
    pthread_mutex_lock(&gw->lock);
    json_t *old = gw->state;
    gw->state = state;
    gw->state_version++;
    pthread_mutex_unlock(&gw->lock);
    json_decref(old);
    atomic_store_explicit(&gw->counters.servers, (unsigned)up->server_count, memory_order_relaxed);
    atomic_store_explicit(&gw->counters.devices, (unsigned)device_count, memory_order_relaxed);
    up->is_state_dirty = false;
    gw_web_wake(gw);
}

static json_t *s_stream_stats_json(const s_device_t *device, int k, int64_t now_us)
{
    const s_stream_t *s = &device->streams[k];
    json_t *age_ms = s->last_received_us > 0
                         ? json_integer((json_int_t)((now_us - s->last_received_us) / 1000))
                         : json_null();
    return json_pack("{s:s, s:s, s:s, s:b, s:s?, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:f, s:o}",
                     "key", device->key, "device", device->id, "kind",
                     sk2_stream_kind_name(s_kinds[k]), "subscribed", s->codec != NULL, "codec",
                     s->codec, "frames", (json_int_t)s->frames, "sequence",
                     (json_int_t)s->last_sequence, "dropped", (json_int_t)s->dropped, "fps", s->fps,
                     "mbit_s", s->mbit_s, "ratio", s->ratio, "latency_ms", s->latency_ms,
                     "latency_max_ms", s->latency_max_ms, "age_ms", age_ms);
}

/* The client's estimate of a server's clock (sk2_client_clock) as /api/stats gives it: the
 * offset (server clock - the gateway's), its bound and round trip in ms, drift in ppm (null
 * until measured), whether the server's kernel says its clock is disciplined (null unknown);
 * null when there is none (not connected, or a server that answers no clock exchanges). */
static json_t *s_clock_json(const s_server_t *server)
{
    sk2_clock_estimate_t clock;
    if (!server->is_connected || sk2_client_clock(server->client, &clock) != 0)
        return json_null();
    return json_pack("{s:f, s:f, s:f, s:o, s:I, s:o}", "offset_ms",
                     (double)clock.offset_us / 1000.0, "rtt_ms", (double)clock.rtt_us / 1000.0,
                     "error_ms", (double)clock.error_us / 1000.0, "drift_ppm",
                     clock.has_drift ? json_real(clock.drift_ppm) : json_null(), "samples",
                     (json_int_t)clock.samples, "synced",
                     clock.server_synced < 0 ? json_null() : json_boolean(clock.server_synced));
}

static void s_publish_stats(s_up_t *up, int64_t now_us)
{
    double window_s = (double)(now_us - up->window_start_us) / 1e6;
    if (window_s <= 0)
        window_s = 1;
    json_t *streams = json_array();
    json_t *servers = json_array();
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        for (size_t d = 0; d < server->device_count; d++) {
            s_device_t *device = server->devices[d];
            for (int k = 0; k < S_KINDS; k++) {
                s_stream_t *s = &device->streams[k];
                if (!s->is_offered)
                    continue;
                s->fps = (double)s->w_frames / window_s;
                s->mbit_s = (double)s->w_wire * 8 / 1e6 / window_s;
                s->ratio = s->w_wire ? (double)s->w_raw / (double)s->w_wire : 0;
                s->latency_ms =
                    s->w_latency_n ? (double)s->w_latency_sum_us / (double)s->w_latency_n / 1e3 : 0;
                s->latency_max_ms = (double)s->w_latency_max_us / 1e3;
                s->w_frames = s->w_wire = s->w_raw = s->w_latency_n = 0;
                s->w_latency_sum_us = s->w_latency_max_us = 0;
                json_array_append_new(streams, s_stream_stats_json(device, k, now_us));
            }
        }
        char id[16];
        snprintf(id, sizeof id, "s%d", server->number);
        json_array_append_new(servers,
                              json_pack("{s:s, s:s, s:O?, s:o}", "id", id, "name", server->name,
                                        "stats", server->stats, "clock", s_clock_json(server)));
        if (server->is_connected)
            sk2_client_request_stats(server->client);
        s_count_rejected(server);
    }
    sk2_gateway_stats_t c;
    sk2_gateway_stats(up->gw, &c);
    json_t *gateway = json_pack(
        "{s:i, s:i, s:i, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:I, s:I, s:I, s:I}", "servers",
        (int)c.servers, "devices", (int)c.devices, "websockets", (int)c.websockets,
        "frames_received", (json_int_t)c.frames_received, "frames_sent", (json_int_t)c.frames_sent,
        "frames_skipped", (json_int_t)c.frames_skipped, "http_requests",
        (json_int_t)c.http_requests, "http_client_errors", (json_int_t)c.http_client_errors,
        "frames_rejected", (json_int_t)c.frames_rejected, "http_connections",
        (int)c.http_connections, "http_evicted", (json_int_t)c.http_evicted, "http_refused",
        (json_int_t)c.http_refused, "http_timed_out", (json_int_t)c.http_timed_out,
        "http_unauthorized", (json_int_t)c.http_unauthorized);
    json_t *stats =
        json_pack("{s:o, s:o, s:o}", "gateway", gateway, "streams", streams, "servers", servers);
    sk2_gateway_t *gw = up->gw;
    pthread_mutex_lock(&gw->lock);
    json_t *old = gw->stats;
    gw->stats = stats;
    gw->stats_version++;
    pthread_mutex_unlock(&gw->lock);
    json_decref(old);
    up->window_start_us = now_us;
    gw_web_wake(gw);
}

/* ---- The loop ------------------------------------------------------------------------------ */

/* Gives up the given servers that have been unreachable for longer than the gateway allows,
 * and counts the lost ones for sk2_gateway_links. */
static void s_check_links(s_up_t *up, int64_t now_us)
{
    unsigned lost = 0, given_up = 0;
    int64_t limit_us = up->gw->give_up_after_ms * 1000;
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        if (server->is_given && !server->is_given_up && !server->is_connected && limit_us > 0 &&
            server->down_since_us > 0 && now_us - server->down_since_us >= limit_us) {
            s_server_close(server);
            server->is_given_up = true;
            server->reconnect_us = 0;
            snprintf(server->error, sizeof server->error, "given up after %.1f s without an answer",
                     (double)(now_us - server->down_since_us) / 1e6);
            SK2_WARN("gateway", "server %s: %s", server->endpoint, server->error);
            up->is_state_dirty = true;
        }
        given_up += server->is_given_up;
        lost += server->is_given && !server->is_given_up && server->was_connected &&
                !server->is_connected;
    }
    atomic_store_explicit(&up->gw->counters.servers_lost, lost, memory_order_relaxed);
    atomic_store_explicit(&up->gw->counters.servers_given_up, given_up, memory_order_relaxed);
}

static void s_apply_wants(s_up_t *up, int64_t now_us)
{
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        if (!server->is_connected)
            continue;
        for (size_t d = 0; d < server->device_count; d++) {
            s_device_t *device = server->devices[d];
            for (int k = 1; k < S_KINDS; k++) /* depth (k = 0) stays subscribed */
                if (device->streams[k].is_offered)
                    s_stream_subscribe(server, device, k,
                                       s_is_wanted(up->gw, device->key, s_kinds[k], now_us));
        }
    }
}

static int s_min_timeout(int a, int b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static void s_loop_once(s_up_t *up)
{
    sk2_gateway_t *gw = up->gw;
    struct pollfd fds[S_POLL_MAX];
    size_t n = 0;
    int64_t now_us = sk2_clock_mono_us();
    int timeout = (int)((up->next_stats_us - now_us + 999) / 1000);
    if (timeout < 0)
        timeout = 0;
    fds[n++] = (struct pollfd){.fd = gw->wake_pipe[0], .events = POLLIN};
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        if (!server->client) {
            if (server->reconnect_us > 0) {
                int wait = server->reconnect_us <= now_us
                               ? 0
                               : (int)((server->reconnect_us - now_us + 999) / 1000);
                timeout = s_min_timeout(timeout, wait);
            }
            continue;
        }
        int client_fds[16];
        size_t count = sk2_client_fds(server->client, client_fds, 16);
        for (size_t f = 0; f < count && f < 16 && n < S_POLL_MAX; f++)
            fds[n++] = (struct pollfd){.fd = client_fds[f], .events = POLLIN};
        timeout = s_min_timeout(timeout, sk2_client_timeout_ms(server->client));
    }
    if (up->browser) {
        int browser_fds[16];
        size_t count = sk2_browser_fds(up->browser, browser_fds, 16);
        for (size_t f = 0; f < count && f < 16 && n < S_POLL_MAX; f++)
            fds[n++] = (struct pollfd){.fd = browser_fds[f], .events = POLLIN};
        timeout = s_min_timeout(timeout, sk2_browser_timeout_ms(up->browser));
    }
    poll(fds, n, timeout);
    if (fds[0].revents & POLLIN) {
        char drain[64];
        while (read(gw->wake_pipe[0], drain, sizeof drain) > 0) {
        }
    }
    /* ZMQ descriptors are edge-triggered: dispatch every client, whatever poll said. */
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        for (int round = 0; server->client && round < S_DISPATCH_ROUNDS; round++)
            if (sk2_client_dispatch(server->client, 0) <= 0)
                break;
        if (server->is_lost) {
            SK2_INFO("gateway", "server %s lost: %s", server->endpoint, server->error);
            s_server_close(server);
            server->reconnect_us = sk2_clock_mono_us() + S_RECONNECT_US;
            if (server->down_since_us == 0)
                server->down_since_us = sk2_clock_mono_us();
        }
    }
    s_check_links(up, sk2_clock_mono_us());
    if (up->browser)
        sk2_browser_dispatch(up->browser, 0);
    now_us = sk2_clock_mono_us();
    for (size_t i = 0; i < up->server_count; i++) {
        s_server_t *server = up->servers[i];
        if (!server->client && server->reconnect_us > 0 && server->reconnect_us <= now_us)
            s_server_connect(server, now_us);
    }
    s_take_commands(up);
    s_apply_wants(up, now_us);
    if (now_us >= up->next_stats_us) {
        s_follow_metadata(up);
        s_publish_stats(up, now_us);
        up->next_stats_us = now_us + S_STATS_US;
    }
    if (up->is_state_dirty)
        s_publish_state(up);
}

void *gw_upstream_thread(void *arg)
{
    sk2_gateway_t *gw = arg;
    s_up_t *up = calloc(1, sizeof *up);
    if (!up) {
        SK2_ERROR("gateway", "out of memory: no client thread");
        return NULL;
    }
    up->gw = gw;
    int64_t now_us = sk2_clock_mono_us();
    up->window_start_us = now_us;
    up->next_stats_us = now_us + S_STATS_US;
    for (size_t i = 0; i < gw->endpoint_count; i++) {
        char endpoint[GW_ENDPOINT_MAX];
        bool has_scheme = strstr(gw->endpoints[i], "://") != NULL;
        snprintf(endpoint, sizeof endpoint, "%s%s", has_scheme ? "" : "tcp://", gw->endpoints[i]);
        s_server_t *server = s_server_add(up, endpoint, NULL);
        if (server)
            s_server_connect(server, now_us);
    }
    if (gw->is_browsing) {
        up->browser = sk2_browser_new();
        if (up->browser) {
            sk2_browser_set_handler(up->browser, s_on_browser_event, up);
            if (sk2_browser_start(up->browser) != 0) {
                SK2_WARN("gateway", "cannot look for servers on the network: %s",
                         sk2_browser_error(up->browser));
                sk2_browser_destroy(&up->browser);
            }
        }
    }
    s_publish_state(up);
    s_publish_stats(up, now_us);
    while (!atomic_load(&gw->should_stop))
        s_loop_once(up);
    sk2_browser_destroy(&up->browser);
    while (up->server_count > 0)
        s_server_remove_at(up, up->server_count - 1);
    free(up);
    return NULL;
}
