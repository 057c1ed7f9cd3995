/* The Foxglove WebSocket protocol (v1) on the gateway's web thread.
 *
 * Channels come from the gateway's state JSON (the devices and their streams, which the client
 * thread publishes whole): per device and stream an image channel (sensor_msgs/msg/Image, or
 * CompressedImage when the colour stream comes as JPEG), a CameraInfo channel when the stream
 * has intrinsics, and a PointCloud2 channel for depth with intrinsics and a unit. Names follow
 * the MCAP export (/sk2/<token>/<stream>/..., frame ids <token>_<stream>_optical_frame). A
 * channel keeps its id for as long as the gateway runs, so a device that goes and comes back
 * is advertised again under the same id, as the protocol allows for an unchanged channel.
 *
 * Sending works as for the page's WebSocket (web.c): a connection is written to only when
 * libwebsockets says it can take more, one message per callback, and each subscription then
 * gets the newest shot of its stream, so a slow client skips frames (counted) and holds at most
 * the one message libwebsockets is still sending. Each message is encoded once per shot and
 * kept with it (its subscription id is patched in just before the write), so many clients on
 * one channel cost one encode. A point cloud is computed only when someone subscribes to it.
 *
 * Demand: every subscription counts in its stream's slot (fox_wanted), which the client thread
 * reads to subscribe to IR and colour only while someone wants them, as it does for the page.
 *
 * Client messages are bounded (size, subscriptions, answers waiting); anything malformed or
 * unknown gets a status message of level error on that connection alone and changes nothing. */
#include "gateway/foxglove.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "ros2/cdr.h"
#include "sk2/codec.h"
#include "sk2/error.h"
#include "sk2/sk2.h"

#define S_CHANNELS_MAX 2048  /* channels one gateway keeps ids for */
#define S_SUBS_MAX     64    /* subscriptions one connection may hold */
#define S_CONNS_MAX    256   /* Foxglove connections at once; more are refused */
#define S_RX_MAX       65536 /* longest message a client may send */
#define S_OUT_MAX      16    /* status messages waiting for one connection; more are dropped */
#define S_BATCH        32    /* channels per advertise message */
#define S_NAME_MAX     (SK2_ROS2_TOKEN_MAX + 64)
#define S_DATA_HEADER  13 /* opcode, subscription id (u32), receive time (u64, ns) */
#define S_OP_MESSAGE   0x01

typedef enum {
    S_IMAGE = 0,      /* sensor_msgs/msg/Image */
    S_COMPRESSED = 1, /* sensor_msgs/msg/CompressedImage, the server's JPEG */
    S_INFO = 2,       /* sensor_msgs/msg/CameraInfo */
    S_POINTS = 3,     /* sensor_msgs/msg/PointCloud2 */
    S_DEPTH_PNG = 4,  /* CompressedImage, "16UC1; compressedDepth png" */
} s_type_t;

/* A channel; its id is its index + 1. */
typedef struct {
    bool is_live;             /* advertised now: its device and stream are there */
    char key[GW_KEY_MAX + 1]; /* the device's key in the gateway */
    sk2_stream_kind_t kind;
    s_type_t type;
    char topic[S_NAME_MAX];
    char frame_id[S_NAME_MAX];
} s_channel_t;

typedef struct {
    uint32_t id;    /* the client's number for it */
    size_t channel; /* index into the channel table */
    bool has_sent;  /* last_sequence is set */
    uint64_t last_sequence;
} s_sub_t;

typedef struct {
    struct lws *wsi;
    bool has_sent_info;               /* serverInfo is out */
    uint8_t told[S_CHANNELS_MAX / 8]; /* channels advertised to this client and not withdrawn */
    uint64_t channels_seen;           /* channel table version it is in step with */
    s_sub_t subs[S_SUBS_MAX];
    size_t sub_count;
    size_t next_sub; /* round robin between subscriptions */
    char *rx;        /* text message being received */
    size_t rx_len;
    bool is_rx_binary;    /* the message being received is binary (not spoken here) */
    bool is_rx_long;      /* it is over S_RX_MAX: dropped, answered with an error */
    char *out[S_OUT_MAX]; /* status messages, JSON text, oldest first */
    size_t out_count;
} s_conn_t;

struct gw_fox {
    sk2_gateway_t *gw;
    s_channel_t *channels;
    size_t channel_count;
    size_t channel_cap;
    uint64_t channels_version; /* bumps when a channel comes or goes */
    uint64_t state_seen;       /* state version the table was made from */
    s_conn_t *conns[S_CONNS_MAX];
    size_t conn_count;
    sk2_cdr_t cdr; /* scratch for encoding */
    char session[48];
};

/* ---- Channels ------------------------------------------------------------------------------ */

static sk2_ros2_type_t s_ros2_type(s_type_t type)
{
    switch (type) {
    case S_COMPRESSED:
    case S_DEPTH_PNG:
        return SK2_ROS2_COMPRESSED_IMAGE;
    case S_INFO:
        return SK2_ROS2_CAMERA_INFO;
    case S_POINTS:
        return SK2_ROS2_POINT_CLOUD2;
    default:
        return SK2_ROS2_IMAGE;
    }
}

/* Marks the channel (key, kind, type, topic) live, adding it if it is new. Returns whether
 * anything changed. */
static bool s_channel_live(gw_fox_t *fox, const char *key, sk2_stream_kind_t kind, s_type_t type,
                           const char *topic, const char *frame_id, bool *is_now)
{
    for (size_t i = 0; i < fox->channel_count; i++) {
        s_channel_t *ch = &fox->channels[i];
        if (ch->kind == kind && ch->type == type && strcmp(ch->key, key) == 0 &&
            strcmp(ch->topic, topic) == 0) {
            is_now[i] = true;
            bool was_live = ch->is_live;
            ch->is_live = true;
            snprintf(ch->frame_id, sizeof ch->frame_id, "%s", frame_id);
            return !was_live;
        }
    }
    if (fox->channel_count >= S_CHANNELS_MAX) {
        SK2_WARN("gateway", "foxglove: %s not advertised (limit of %d channels)", topic,
                 S_CHANNELS_MAX);
        return false;
    }
    if (fox->channel_count == fox->channel_cap) {
        size_t cap = fox->channel_cap ? fox->channel_cap * 2 : 64;
        s_channel_t *grown = realloc(fox->channels, cap * sizeof *grown);
        if (!grown)
            return false;
        fox->channels = grown;
        fox->channel_cap = cap;
    }
    s_channel_t *ch = &fox->channels[fox->channel_count];
    memset(ch, 0, sizeof *ch);
    ch->is_live = true;
    snprintf(ch->key, sizeof ch->key, "%s", key);
    ch->kind = kind;
    ch->type = type;
    snprintf(ch->topic, sizeof ch->topic, "%s", topic);
    snprintf(ch->frame_id, sizeof ch->frame_id, "%s", frame_id);
    is_now[fox->channel_count++] = true;
    return true;
}

static bool s_has_string(const json_t *array, const char *text)
{
    size_t i;
    json_t *value;
    json_array_foreach(array, i, value)
    {
        const char *s = json_string_value(value);
        if (s && strcmp(s, text) == 0)
            return true;
    }
    return false;
}

/* The channels of one device of the state. */
static bool s_device_channels(gw_fox_t *fox, const json_t *devices, const json_t *device,
                              bool *is_now)
{
    const char *key = json_string_value(json_object_get(device, "key"));
    const char *id = json_string_value(json_object_get(device, "id"));
    if (!key || !id || strlen(key) > GW_KEY_MAX)
        return false;
    /* Topics are named by the device id, as in MCAP files; only when two servers have a
     * device of that id does the gateway's key (s0:ID) name them apart. */
    size_t same_id = 0, i;
    json_t *other;
    json_array_foreach(devices, i, other)
    {
        const char *other_id = json_string_value(json_object_get(other, "id"));
        same_id += other_id && strcmp(other_id, id) == 0;
    }
    char token[SK2_ROS2_TOKEN_MAX + 16];
    sk2_ros2_name_token(same_id > 1 ? key : id, token, sizeof token);
    bool is_changed = false;
    json_t *stream;
    json_array_foreach(json_object_get(device, "streams"), i, stream)
    {
        const char *name = json_string_value(json_object_get(stream, "kind"));
        sk2_stream_kind_t kind = name ? gw_kind_from_name(name, strlen(name)) : 0;
        if (!kind)
            continue;
        char topic[S_NAME_MAX], frame_id[S_NAME_MAX];
        snprintf(frame_id, sizeof frame_id, "%s_%s_optical_frame", token, name);
        bool is_jpeg = kind == SK2_STREAM_COLOR &&
                       s_has_string(json_object_get(stream, "codecs"), SK2_CODEC_JPEG);
        snprintf(topic, sizeof topic, "/sk2/%s/%s/image_raw%s", token, name,
                 is_jpeg ? "/compressed" : "");
        is_changed |= s_channel_live(fox, key, kind, is_jpeg ? S_COMPRESSED : S_IMAGE, topic,
                                     frame_id, is_now);
        /* Depth losslessly compressed as ROS's compressed_depth_image_transport publishes it
         * (a 16-bit PNG), for links where 434 KB a frame is too much. */
        const char *format = json_string_value(json_object_get(stream, "format"));
        if (kind == SK2_STREAM_DEPTH && format && strcmp(format, "depth_mm16") == 0) {
            snprintf(topic, sizeof topic, "/sk2/%s/depth/image_raw/compressedDepth", token);
            is_changed |= s_channel_live(fox, key, kind, S_DEPTH_PNG, topic, frame_id, is_now);
        }
        if (!json_is_true(json_object_get(stream, "has_intrinsics")))
            continue;
        snprintf(topic, sizeof topic, "/sk2/%s/%s/camera_info", token, name);
        is_changed |= s_channel_live(fox, key, kind, S_INFO, topic, frame_id, is_now);
        double unit_m = json_real_value(json_object_get(stream, "depth_unit_m"));
        if (kind == SK2_STREAM_DEPTH && unit_m > 0) {
            snprintf(topic, sizeof topic, "/sk2/%s/depth/points", token);
            is_changed |= s_channel_live(fox, key, kind, S_POINTS, topic, frame_id, is_now);
        }
    }
    return is_changed;
}

/* Makes the channel table follow the gateway's state, when that changed. */
static void s_refresh(gw_fox_t *fox)
{
    sk2_gateway_t *gw = fox->gw;
    pthread_mutex_lock(&gw->lock);
    json_t *state = fox->state_seen != gw->state_version ? json_incref(gw->state) : NULL;
    fox->state_seen = gw->state_version;
    pthread_mutex_unlock(&gw->lock);
    if (!state)
        return;
    bool *is_now = calloc(S_CHANNELS_MAX, sizeof *is_now);
    if (!is_now) {
        json_decref(state);
        fox->state_seen = 0; /* try again on the next wake */
        return;
    }
    bool is_changed = false;
    json_t *devices = json_object_get(state, "devices");
    size_t i;
    json_t *device;
    json_array_foreach(devices, i, device) is_changed |=
        s_device_channels(fox, devices, device, is_now);
    for (i = 0; i < fox->channel_count; i++) {
        if (fox->channels[i].is_live && !is_now[i]) {
            fox->channels[i].is_live = false;
            is_changed = true;
        }
    }
    free(is_now);
    json_decref(state);
    if (is_changed)
        fox->channels_version++;
}

/* ---- Demand -------------------------------------------------------------------------------- */

/* Makes every slot's fox_wanted count the subscriptions that need it now, and tells the client
 * thread. Slots come and go with devices, so this runs again whenever the state changes. */
static void s_recount(gw_fox_t *fox)
{
    sk2_gateway_t *gw = fox->gw;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < gw->slot_count; i++)
        gw->slots[i].fox_wanted = 0;
    for (size_t c = 0; c < fox->conn_count; c++) {
        const s_conn_t *conn = fox->conns[c];
        for (size_t s = 0; s < conn->sub_count; s++) {
            const s_channel_t *ch = &fox->channels[conn->subs[s].channel];
            gw_slot_t *slot = gw_slot_find(gw, ch->key, ch->kind);
            if (slot)
                slot->fox_wanted++;
        }
    }
    pthread_mutex_unlock(&gw->lock);
    gw_wake_upstream(gw);
}

/* ---- Writing ------------------------------------------------------------------------------- */

static int s_write_text(struct lws *wsi, const char *text)
{
    size_t len = strlen(text);
    gw_blob_t *blob = gw_blob_new(len + 1);
    if (!blob)
        return -1;
    memcpy(blob->data, text, len);
    blob->len = len;
    int n = lws_write(wsi, blob->data, blob->len, LWS_WRITE_TEXT);
    gw_blob_unref(&blob);
    return n < 0 ? -1 : 0;
}

static int s_write_json(struct lws *wsi, json_t *msg)
{
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    int rc = text ? s_write_text(wsi, text) : -1;
    free(text);
    return rc;
}

/* Queues a status message of this level for one connection; dropped when too many wait (a
 * client that sends bad messages faster than it reads the answers loses answers, nothing
 * more). */
static void s_status(s_conn_t *conn, int level, const char *message)
{
    json_t *msg = json_pack("{s:s, s:i, s:s}", "op", "status", "level", level, "message", message);
    if (!msg) /* not UTF-8: say less rather than nothing */
        msg = json_pack("{s:s, s:i, s:s}", "op", "status", "level", level, "message",
                        "the message was refused");
    char *text = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    json_decref(msg);
    if (!text || conn->out_count >= S_OUT_MAX) {
        free(text);
        return;
    }
    conn->out[conn->out_count++] = text;
    lws_callback_on_writable(conn->wsi);
}

static json_t *s_server_info(gw_fox_t *fox)
{
    return json_pack("{s:s, s:s, s:[], s:{s:s, s:s}, s:s}", "op", "serverInfo", "name",
                     "sk2 gateway", "capabilities", "metadata", "sk2_version", sk2_version(),
                     "topics", "/sk2/<device>/<depth|ir|color>/...", "sessionId", fox->session);
}

static json_t *s_channel_json(const gw_fox_t *fox, size_t index)
{
    const s_channel_t *ch = &fox->channels[index];
    sk2_ros2_type_t type = s_ros2_type(ch->type);
    return json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)(index + 1), "topic",
                     ch->topic, "encoding", "cdr", "schemaName", sk2_ros2_type_name(type), "schema",
                     sk2_ros2_schema(type), "schemaEncoding", "ros2msg");
}

static bool s_is_told(const s_conn_t *conn, size_t index)
{
    return conn->told[index / 8] & (1u << (index % 8));
}

static void s_set_told(s_conn_t *conn, size_t index, bool is_told)
{
    if (is_told)
        conn->told[index / 8] |= (uint8_t)(1u << (index % 8));
    else
        conn->told[index / 8] &= (uint8_t) ~(1u << (index % 8));
}

/* Brings the client in step with the channel table: withdraws the channels that went (and
 * their subscriptions), then advertises the new ones, S_BATCH a message. Returns 1 when it
 * wrote a message, 0 when the client is in step, -1 on a write error. */
static int s_sync_channels(gw_fox_t *fox, s_conn_t *conn)
{
    if (conn->channels_seen == fox->channels_version)
        return 0;
    json_t *gone = json_array();
    bool has_dropped = false;
    for (size_t i = 0; i < fox->channel_count && gone; i++) {
        if (!s_is_told(conn, i) || fox->channels[i].is_live)
            continue;
        s_set_told(conn, i, false);
        json_array_append_new(gone, json_integer((json_int_t)(i + 1)));
        for (size_t s = 0; s < conn->sub_count;) {
            if (conn->subs[s].channel == i) {
                conn->subs[s] = conn->subs[--conn->sub_count];
                has_dropped = true;
            } else {
                s++;
            }
        }
    }
    if (has_dropped) {
        conn->next_sub = 0;
        s_recount(fox);
    }
    if (gone && json_array_size(gone) > 0)
        return s_write_json(conn->wsi,
                            json_pack("{s:s, s:o}", "op", "unadvertise", "channelIds", gone)) == 0
                   ? 1
                   : -1;
    json_decref(gone);
    json_t *channels = json_array();
    for (size_t i = 0; i < fox->channel_count && channels; i++) {
        if (s_is_told(conn, i) || !fox->channels[i].is_live)
            continue;
        if (json_array_size(channels) == S_BATCH)
            break;
        json_array_append_new(channels, s_channel_json(fox, i));
        s_set_told(conn, i, true);
    }
    if (channels && json_array_size(channels) > 0)
        return s_write_json(conn->wsi,
                            json_pack("{s:s, s:o}", "op", "advertise", "channels", channels)) == 0
                   ? 1
                   : -1;
    json_decref(channels);
    conn->channels_seen = fox->channels_version;
    return 0;
}

static void s_put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The message data for a shot on a channel (without its subscription id), made once per shot
 * and kept with it. A new reference, or NULL when the shot cannot be sent on it. */
static gw_blob_t *s_message(gw_fox_t *fox, gw_shot_t *shot, const s_channel_t *ch)
{
    gw_image_t which = ch->type == S_INFO        ? GW_IMAGE_FOX_INFO
                       : ch->type == S_POINTS    ? GW_IMAGE_FOX_POINTS
                       : ch->type == S_DEPTH_PNG ? GW_IMAGE_FOX_DEPTH_PNG
                                                 : GW_IMAGE_FOX_IMAGE;
    if (shot->images[which])
        return gw_blob_ref(shot->images[which]);
    const sk2_frame_t *frame = shot->frame;
    /* ROS stamps cannot be before 1970: a producer without a wall clock gets 0. */
    int64_t stamp_us = sk2_frame_capture_time_us(frame);
    if (stamp_us < 0)
        stamp_us = 0;
    sk2_ros2_header_t header = {stamp_us, ch->frame_id};
    const gw_blob_t *jpeg = shot->images[GW_IMAGE_ENCODED];
    int rc = SK2_EINVAL;
    uint32_t points = 0;
    switch (ch->type) {
    case S_IMAGE:
        rc = sk2_ros2_image_encode(&fox->cdr, &header, frame);
        break;
    case S_COMPRESSED:
        /* Only the server's own JPEG goes out here; a frame that came otherwise is skipped. */
        if (jpeg)
            rc =
                sk2_ros2_compressed_image_encode(&fox->cdr, &header, "jpeg", jpeg->data, jpeg->len);
        break;
    case S_INFO:
        if (shot->has_intrinsics)
            rc = sk2_ros2_camera_info_encode(&fox->cdr, &header, sk2_frame_width(frame),
                                             sk2_frame_height(frame), &shot->intrinsics);
        break;
    case S_DEPTH_PNG:
        rc = sk2_ros2_compressed_depth_encode(&fox->cdr, &header, frame, SK2_ROS2_DEPTH_PNG);
        break;
    case S_POINTS:
        if (shot->has_intrinsics)
            rc = sk2_ros2_pointcloud2_encode(&fox->cdr, &header, frame, &shot->intrinsics,
                                             shot->depth_unit_m, &points);
        break;
    }
    if (rc != 0) {
        SK2_TRACE("gateway", "foxglove: %s: frame %" PRIu64 " not sent: %s", ch->topic,
                  sk2_frame_sequence(frame), sk2_strerror(rc));
        return NULL;
    }
    gw_blob_t *blob = gw_blob_new(S_DATA_HEADER + fox->cdr.size);
    if (!blob)
        return NULL;
    blob->data[0] = S_OP_MESSAGE;
    s_put_le(blob->data + 1, 0, 4);
    s_put_le(blob->data + 5, (uint64_t)stamp_us * 1000u, 8);
    memcpy(blob->data + S_DATA_HEADER, fox->cdr.data, fox->cdr.size);
    blob->len = S_DATA_HEADER + fox->cdr.size;
    shot->images[which] = blob;
    return gw_blob_ref(blob);
}

/* Writes the newest shot of the next subscription that has one it has not had. Returns 1 when
 * it wrote (or more are waiting), 0 when nothing waits, -1 on a write error. */
static int s_send_data(gw_fox_t *fox, s_conn_t *conn)
{
    sk2_gateway_t *gw = fox->gw;
    gw_shot_t *shot = NULL;
    s_sub_t *sub = NULL;
    size_t pending = 0;
    pthread_mutex_lock(&gw->lock);
    for (size_t i = 0; i < conn->sub_count; i++) {
        s_sub_t *candidate = &conn->subs[(conn->next_sub + i) % conn->sub_count];
        const s_channel_t *ch = &fox->channels[candidate->channel];
        gw_slot_t *slot = gw_slot_find(gw, ch->key, ch->kind);
        if (!slot || !slot->latest ||
            (candidate->has_sent &&
             sk2_frame_sequence(slot->latest->frame) == candidate->last_sequence))
            continue;
        pending++;
        if (!shot) {
            shot = gw_shot_ref(slot->latest);
            sub = candidate;
            conn->next_sub = (conn->next_sub + i + 1) % conn->sub_count;
        }
    }
    pthread_mutex_unlock(&gw->lock);
    if (!shot)
        return 0;
    uint64_t sequence = sk2_frame_sequence(shot->frame);
    if (sub->has_sent && sequence > sub->last_sequence + 1)
        atomic_fetch_add_explicit(&gw->counters.frames_skipped, sequence - sub->last_sequence - 1,
                                  memory_order_relaxed);
    sub->has_sent = true;
    sub->last_sequence = sequence;
    gw_blob_t *blob = s_message(fox, shot, &fox->channels[sub->channel]);
    gw_shot_unref(&shot);
    int rc = 0;
    if (blob) {
        /* The blob is shared by every subscriber: its id goes in now, and libwebsockets has
         * sent or copied the message by the time lws_write returns. */
        s_put_le(blob->data + 1, sub->id, 4);
        rc = lws_write(conn->wsi, blob->data, blob->len, LWS_WRITE_BINARY) < 0 ? -1 : 0;
        gw_blob_unref(&blob);
        atomic_fetch_add_explicit(&gw->counters.frames_sent, 1, memory_order_relaxed);
        pending--;
    }
    if (rc != 0)
        return -1;
    return pending > 0 || !blob ? 1 : 0;
}

/* One message per writeable callback: serverInfo first, then answers, then channel changes,
 * then data. */
static int s_writeable(gw_fox_t *fox, s_conn_t *conn)
{
    struct lws *wsi = conn->wsi;
    int rc;
    if (!conn->has_sent_info) {
        conn->has_sent_info = true;
        rc = s_write_json(wsi, s_server_info(fox));
    } else if (conn->out_count > 0) {
        char *text = conn->out[0];
        memmove(conn->out, conn->out + 1, --conn->out_count * sizeof conn->out[0]);
        rc = s_write_text(wsi, text);
        free(text);
    } else {
        rc = s_sync_channels(fox, conn);
        if (rc == 0)
            rc = s_send_data(fox, conn);
        if (rc <= 0)
            return rc;
    }
    if (rc < 0)
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

/* ---- Client messages ----------------------------------------------------------------------- */

static bool s_u32_of(const json_t *value, uint32_t *out)
{
    if (!json_is_integer(value))
        return false;
    json_int_t v = json_integer_value(value);
    if (v < 0 || v > (json_int_t)UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static s_sub_t *s_sub_by_id(s_conn_t *conn, uint32_t id)
{
    for (size_t i = 0; i < conn->sub_count; i++)
        if (conn->subs[i].id == id)
            return &conn->subs[i];
    return NULL;
}

static void s_subscribe(gw_fox_t *fox, s_conn_t *conn, const json_t *msg)
{
    const json_t *list = json_object_get(msg, "subscriptions");
    if (!json_is_array(list) || json_array_size(list) > S_SUBS_MAX) {
        s_status(conn, 2, "subscribe: \"subscriptions\" must be an array of at most 64 entries");
        return;
    }
    char why[160] = "";
    size_t added = 0, i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        uint32_t id = 0, channel_id = 0;
        if (!s_u32_of(json_object_get(entry, "id"), &id) ||
            !s_u32_of(json_object_get(entry, "channelId"), &channel_id)) {
            snprintf(why, sizeof why,
                     "subscribe: entry %zu needs \"id\" and \"channelId\" as "
                     "integers 0..4294967295",
                     i);
            continue;
        }
        size_t index = (size_t)channel_id - 1;
        if (channel_id == 0 || index >= fox->channel_count || !s_is_told(conn, index) ||
            !fox->channels[index].is_live) {
            snprintf(why, sizeof why, "subscribe: no channel %" PRIu32 " is advertised",
                     channel_id);
            continue;
        }
        if (s_sub_by_id(conn, id)) {
            snprintf(why, sizeof why, "subscribe: subscription id %" PRIu32 " is in use", id);
            continue;
        }
        bool is_double = false;
        for (size_t s = 0; s < conn->sub_count; s++)
            is_double |= conn->subs[s].channel == index;
        if (is_double) {
            snprintf(why, sizeof why, "subscribe: channel %" PRIu32 " is subscribed already",
                     channel_id);
            continue;
        }
        if (conn->sub_count == S_SUBS_MAX) {
            snprintf(why, sizeof why, "subscribe: at most %d subscriptions per connection",
                     S_SUBS_MAX);
            continue;
        }
        s_sub_t *sub = &conn->subs[conn->sub_count++];
        memset(sub, 0, sizeof *sub);
        sub->id = id;
        sub->channel = index;
        added++;
    }
    if (why[0])
        s_status(conn, 2, why);
    if (added > 0) {
        s_recount(fox);
        lws_callback_on_writable(conn->wsi);
    }
}

static void s_unsubscribe(gw_fox_t *fox, s_conn_t *conn, const json_t *msg)
{
    const json_t *list = json_object_get(msg, "subscriptionIds");
    if (!json_is_array(list) || json_array_size(list) > S_SUBS_MAX) {
        s_status(conn, 2, "unsubscribe: \"subscriptionIds\" must be an array of at most 64 ids");
        return;
    }
    char why[160] = "";
    size_t removed = 0, i;
    json_t *entry;
    json_array_foreach(list, i, entry)
    {
        uint32_t id = 0;
        s_sub_t *sub = s_u32_of(entry, &id) ? s_sub_by_id(conn, id) : NULL;
        if (!sub) {
            snprintf(why, sizeof why, "unsubscribe: entry %zu is not a subscription id in use", i);
            continue;
        }
        *sub = conn->subs[--conn->sub_count];
        removed++;
    }
    if (why[0])
        s_status(conn, 2, why);
    if (removed > 0) {
        conn->next_sub = 0;
        s_recount(fox);
    }
}

static void s_message_in(gw_fox_t *fox, s_conn_t *conn)
{
    json_error_t error;
    json_t *msg = json_loadb(conn->rx, conn->rx_len, JSON_REJECT_DUPLICATES, &error);
    const char *op = json_string_value(json_object_get(msg, "op"));
    char why[256];
    if (!msg) {
        snprintf(why, sizeof why, "not JSON: %s (at byte %d)", error.text, error.position);
        s_status(conn, 2, why);
    } else if (!op) {
        s_status(conn, 2, "a message must be a JSON object with a string \"op\"");
    } else if (strcmp(op, "subscribe") == 0) {
        s_subscribe(fox, conn, msg);
    } else if (strcmp(op, "unsubscribe") == 0) {
        s_unsubscribe(fox, conn, msg);
    } else {
        /* At most 64 bytes of the op, cut between characters: the answer must stay UTF-8. */
        int n = 0;
        while (op[n] && n < 64)
            n++;
        while (n > 0 && op[n] && ((unsigned char)op[n] & 0xC0) == 0x80)
            n--;
        snprintf(why, sizeof why,
                 "op \"%.*s\" is not supported (this server takes subscribe and unsubscribe)", n,
                 op);
        s_status(conn, 2, why);
    }
    json_decref(msg);
}

static int s_receive(gw_fox_t *fox, s_conn_t *conn, const void *in, size_t len)
{
    struct lws *wsi = conn->wsi;
    if (lws_is_first_fragment(wsi)) {
        conn->rx_len = 0;
        conn->is_rx_binary = lws_frame_is_binary(wsi);
        conn->is_rx_long = false;
    }
    if (!conn->is_rx_binary && !conn->is_rx_long) {
        if (conn->rx_len + len > S_RX_MAX) {
            conn->is_rx_long = true;
        } else {
            if (!conn->rx && !(conn->rx = malloc(S_RX_MAX)))
                return -1;
            memcpy(conn->rx + conn->rx_len, in, len);
            conn->rx_len += len;
        }
    }
    if (!lws_is_final_fragment(wsi))
        return 0;
    if (conn->is_rx_binary)
        s_status(conn, 2,
                 "binary client messages (client publishing, services) are not "
                 "supported");
    else if (conn->is_rx_long)
        s_status(conn, 2, "messages of at most 64 KiB only");
    else
        s_message_in(fox, conn);
    conn->rx_len = 0;
    return 0;
}

/* ---- Connections --------------------------------------------------------------------------- */

static void s_conn_free(gw_fox_t *fox, s_conn_t *conn)
{
    for (size_t i = 0; i < fox->conn_count; i++) {
        if (fox->conns[i] == conn) {
            fox->conns[i] = fox->conns[--fox->conn_count];
            break;
        }
    }
    free(conn->rx);
    while (conn->out_count > 0)
        free(conn->out[--conn->out_count]);
    free(conn);
}

static void s_conn_close(gw_fox_t *fox, s_conn_t *conn)
{
    bool had_subs = conn->sub_count > 0;
    s_conn_free(fox, conn);
    if (had_subs)
        s_recount(fox);
}

int gw_fox_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    sk2_gateway_t *gw = lws_context_user(lws_get_context(wsi));
    gw_fox_t *fox = gw ? gw->fox : NULL;
    s_conn_t **slot = user;
    if (!fox)
        return reason == LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION ? -1 : 0;
    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return fox->conn_count >= S_CONNS_MAX ? -1 : 0;
    case LWS_CALLBACK_ESTABLISHED: {
        s_conn_t *conn = calloc(1, sizeof *conn);
        if (!conn)
            return -1;
        conn->wsi = wsi;
        *slot = conn;
        s_refresh(fox);
        fox->conns[fox->conn_count++] = conn;
        atomic_fetch_add_explicit(&gw->counters.websockets, 1, memory_order_relaxed);
        lws_callback_on_writable(wsi);
        break;
    }
    case LWS_CALLBACK_CLOSED:
        if (slot && *slot) {
            s_conn_close(fox, *slot);
            *slot = NULL;
            atomic_fetch_sub_explicit(&gw->counters.websockets, 1, memory_order_relaxed);
        }
        break;
    case LWS_CALLBACK_RECEIVE:
        return slot && *slot ? s_receive(fox, *slot, in, len) : -1;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return slot && *slot ? s_writeable(fox, *slot) : -1;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED: {
        /* Woken by the client thread: maybe a new state (devices came or went), maybe new
         * frames. Both subprotocols get this; the table is made once. */
        uint64_t seen = fox->state_seen;
        s_refresh(fox);
        if (seen != fox->state_seen)
            s_recount(fox);
        if (fox->conn_count > 0)
            lws_callback_on_writable_all_protocol(lws_get_context(wsi), lws_get_protocol(wsi));
        break;
    }
    default:
        break;
    }
    return 0;
}

/* ---- Module -------------------------------------------------------------------------------- */

bool gw_fox_is_offered(const char *protocols)
{
    char copy[256];
    snprintf(copy, sizeof copy, "%s", protocols ? protocols : "");
    for (char *save = NULL, *p = strtok_r(copy, ", ", &save); p; p = strtok_r(NULL, ", ", &save))
        if (strcmp(p, GW_FOX_PROTOCOL) == 0 || strcmp(p, GW_FOX_PROTOCOL_SDK) == 0)
            return true;
    return false;
}

gw_fox_t *gw_fox_new(sk2_gateway_t *gw)
{
    gw_fox_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->gw = gw;
    /* Tells a client whether it reconnected to the same gateway or to a new one. */
    snprintf(self->session, sizeof self->session, "%ld-%" PRId64, (long)getpid(),
             sk2_clock_wall_us());
    return self;
}

void gw_fox_destroy(gw_fox_t **self_p)
{
    gw_fox_t *self = *self_p;
    *self_p = NULL;
    if (!self)
        return;
    while (self->conn_count > 0)
        s_conn_free(self, self->conns[0]);
    sk2_cdr_free(&self->cdr);
    free(self->channels);
    free(self);
}
