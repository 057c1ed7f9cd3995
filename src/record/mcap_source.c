/* MCAP files as recordings (the reader's third format, beside sk2 files and TUM folders): the
 * ROS 2 images in an MCAP file become the frames of devices, so `sk2 import`, `serve --replay`,
 * `export` and `inspect` read bags from `ros2 bag record` and files of `sk2 export --format
 * mcap` alike (docs/formats.md, "Reading MCAP").
 *
 * Channels are grouped into devices and streams by their topics: trailing names that say how
 * an image travels (image_raw, image_rect_raw, image, compressed, camera_info, ...) are taken
 * off, the last name left is the stream when it says which ("depth..." depth, "color"/"rgb..."
 * colour, "ir"/"infra..." IR), and what comes before it names the device. A channel sk2 wrote
 * names its device and stream in its metadata (sk2_device_id, sk2_stream, depth_unit_m), which
 * wins over the topic; sk2's Metadata records give the device's serial and backend back.
 *
 * Opening reads every message's header (stamp, size, encoding) once; frames are decoded when
 * read. Frames are sorted by log time (stable: file order among equal times). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "proto/header.h"
#include "record/reader_impl.h"
#include "ros2/cdr_decode.h"
#include "ros2/mcap_read.h"
#include "sk2/error.h"

enum { S_IMAGE = 1, S_COMPRESSED = 2, S_INFO = 3 };

/* A channel's part in the mapping. */
typedef struct {
    uint8_t type;   /* S_IMAGE, S_COMPRESSED, S_INFO; 0 = not used */
    uint8_t kind;   /* stream kind it belongs to; 0 = from the first image's encoding */
    int16_t device; /* index in self->devices, -1 none */
    int8_t stream;  /* index of its stream in the device, -1 not yet */
    bool is_ignored;
    bool has_sequence; /* some message carries a sequence number */
    double unit_m;     /* depth_unit_m from sk2's metadata, 0 if none */
} s_chan_t;

/* Per device and stream: the image channel chosen, and the conversions it needs. */
typedef struct {
    int image_channel; /* channel index, -1 none */
    int info_channel;
    char encoding[SK2_ROS2_IN_MAX_NAME + 1];
    bool is_float; /* 32FC1: converted */
    size_t frames;
    int64_t first_us, last_us;
} s_stream_t;

static bool s_segment_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncmp(s, word, n) == 0;
}

/* Whether a topic's trailing name says how an image travels, not what it shows. */
static bool s_is_transport(const char *s, size_t n)
{
    static const char *const words[] = {"image_raw",  "image_rect_raw", "image_rect",
                                        "image",      "image_color",    "image_mono",
                                        "compressed", "camera_info",    "compressedDepth"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (s_segment_is(s, n, words[i]))
            return true;
    return false;
}

/* The kind a stream's name says, 0 if it says none. */
static sk2_stream_kind_t s_kind_of_name(const char *s, size_t n)
{
    char low[64];
    if (n >= sizeof low)
        return 0;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + 32 : s[i]);
    low[n] = '\0';
    if (strstr(low, "depth"))
        return SK2_STREAM_DEPTH;
    if (strstr(low, "color") || strstr(low, "colour") || strncmp(low, "rgb", 3) == 0)
        return SK2_STREAM_COLOR;
    if (strncmp(low, "infra", 5) == 0 || strcmp(low, "ir") == 0 ||
        (low[0] == 'i' && low[1] == 'r' && low[2] >= '0' && low[2] <= '9'))
        return SK2_STREAM_IR;
    return 0;
}

/* Splits a topic into a device name (its prefix, '/' as '_', letters, digits, '_', '-', '.'
 * kept) and the kind its stream name says. */
static void s_topic_split(const char *topic, char *device, size_t device_size,
                          sk2_stream_kind_t *kind)
{
    size_t end = strlen(topic);
    *kind = 0;
    /* Take off the transport names from the end. */
    for (;;) {
        while (end > 0 && topic[end - 1] == '/')
            end--;
        size_t start = end;
        while (start > 0 && topic[start - 1] != '/')
            start--;
        if (start == end || !s_is_transport(topic + start, end - start))
            break;
        end = start;
    }
    while (end > 0 && topic[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && topic[start - 1] != '/')
        start--;
    if (start < end && (*kind = s_kind_of_name(topic + start, end - start)) != 0)
        end = start; /* the stream's name: the device is what comes before */
    size_t n = 0, i = 0;
    while (i < end && topic[i] == '/')
        i++;
    for (; i < end && n + 1 < device_size; i++) {
        char c = topic[i];
        bool is_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                     c == '-' || c == '.' || c == '_';
        device[n++] = is_ok ? c : '_';
    }
    while (n > 0 && device[n - 1] == '_')
        n--;
    device[n] = '\0';
    if (n == 0)
        snprintf(device, device_size, "mcap");
}

typedef struct {
    sk2_mcap_reader_t *mcap;
    s_chan_t *chans; /* per channel index */
    s_stream_t streams[SK2_RECORDING_MAX_DEVICES][SK2_REC_STREAMS_MAX];
    size_t ignored_channels, skipped_messages;
    char first_ignored[96];
    char skipped_why[200];
    bool has_float, has_partial_model;
} s_map_t;

static int s_device_index(sk2_recording_reader_t *self, const char *id)
{
    for (size_t d = 0; d < self->device_count; d++)
        if (strcmp(self->devices[d].id, id) == 0)
            return (int)d;
    if (self->device_count == SK2_RECORDING_MAX_DEVICES)
        return -1;
    sk2_rec_device_t *d = &self->devices[self->device_count];
    memset(d, 0, sizeof *d);
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->backend, sizeof d->backend, "mcap");
    return (int)self->device_count++;
}

static void s_ignore(s_map_t *map, s_chan_t *chan, const sk2_mcap_channel_t *c)
{
    chan->type = 0;
    chan->is_ignored = true;
    if (map->ignored_channels++ == 0)
        snprintf(map->first_ignored, sizeof map->first_ignored, "%.80s", c->topic);
}

/* The index of the channel a message is on (the reader made sure it exists); the channels are
 * one array, so its place follows from the pointer. */
static size_t s_chan_index(const sk2_mcap_reader_t *mcap, uint16_t id)
{
    return (size_t)(sk2_mcap_reader_channel(mcap, id) - sk2_mcap_reader_channel_at(mcap, 0));
}

/* Sorts channels into devices; the streams are made when their first image is seen. */
static int s_map_channels(sk2_recording_reader_t *self, s_map_t *map)
{
    size_t count = sk2_mcap_reader_channel_count(map->mcap);
    for (size_t i = 0; i < count; i++) {
        const sk2_mcap_channel_t *c = sk2_mcap_reader_channel_at(map->mcap, i);
        const sk2_mcap_schema_t *schema = sk2_mcap_reader_schema(map->mcap, c->schema_id);
        s_chan_t *chan = &map->chans[i];
        *chan = (s_chan_t){.device = -1, .stream = -1};
        const char *name = schema ? schema->name : "";
        chan->type = strcmp(name, "sensor_msgs/msg/Image") == 0             ? S_IMAGE
                     : strcmp(name, "sensor_msgs/msg/CompressedImage") == 0 ? S_COMPRESSED
                     : strcmp(name, "sensor_msgs/msg/CameraInfo") == 0      ? S_INFO
                                                                            : 0;
        if (chan->type == 0 || strcmp(c->message_encoding, "cdr") != 0) {
            s_ignore(map, chan, c);
            continue;
        }
        char device[SK2_DEVICE_ID_MAX + 1];
        sk2_stream_kind_t kind;
        s_topic_split(c->topic, device, sizeof device, &kind);
        const char *id = sk2_mcap_map_get(&c->metadata, "sk2_device_id");
        const char *stream = sk2_mcap_map_get(&c->metadata, "sk2_stream");
        const char *unit = sk2_mcap_map_get(&c->metadata, "depth_unit_m");
        if (id && id[0] && strlen(id) <= SK2_DEVICE_ID_MAX)
            snprintf(device, sizeof device, "%s", id);
        if (stream && sk2_stream_kind_from_name(stream, strlen(stream)))
            kind = sk2_stream_kind_from_name(stream, strlen(stream));
        if (unit) {
            double u = strtod(unit, NULL);
            chan->unit_m = isfinite(u) && u > 0 && u < 1 ? u : 0;
        }
        if (kind == SK2_STREAM_BODY || (chan->type == S_INFO && kind == 0)) {
            s_ignore(map, chan, c);
            continue;
        }
        chan->kind = (uint8_t)kind;
        chan->device = (int16_t)s_device_index(self, device);
        if (chan->device < 0)
            s_ignore(map, chan, c);
    }
    /* sk2's own description of its devices: serial and backend. */
    for (size_t i = 0; i < sk2_mcap_reader_metadata_count(map->mcap); i++) {
        const sk2_mcap_metadata_t *m = sk2_mcap_reader_metadata_at(map->mcap, i);
        if (strncmp(m->name, "sk2.device.", 11) != 0)
            continue;
        const char *id = sk2_mcap_map_get(&m->map, "id");
        for (size_t d = 0; id && d < self->device_count; d++) {
            if (strcmp(self->devices[d].id, id) != 0)
                continue;
            const char *serial = sk2_mcap_map_get(&m->map, "serial");
            const char *backend = sk2_mcap_map_get(&m->map, "backend");
            if (serial && strlen(serial) <= SK2_DEVICE_ID_MAX)
                snprintf(self->devices[d].serial, sizeof self->devices[d].serial, "%s", serial);
            if (backend && backend[0] && strlen(backend) < sizeof self->devices[d].backend)
                snprintf(self->devices[d].backend, sizeof self->devices[d].backend, "%s", backend);
        }
    }
    return 0;
}

/* Size of a JPEG or PNG from its header; false if neither or damaged. */
static bool s_compressed_size(const sk2_ros2_compressed_in_t *in, uint32_t *w, uint32_t *h,
                              const char **codec)
{
    if (in->size >= 24 && memcmp(in->data, "\x89PNG\r\n\x1a\n", 8) == 0) {
        *w = (uint32_t)in->data[16] << 24 | (uint32_t)in->data[17] << 16 |
             (uint32_t)in->data[18] << 8 | in->data[19];
        *h = (uint32_t)in->data[20] << 24 | (uint32_t)in->data[21] << 16 |
             (uint32_t)in->data[22] << 8 | in->data[23];
        *codec = SK2_CODEC_PNG;
        return *w > 0 && *h > 0;
    }
    tjhandle tj = tjInitDecompress();
    int width = 0, height = 0, sub = 0, space = 0;
    bool is_ok = tj && in->size <= 0xffffffffu &&
                 tjDecompressHeader3(tj, in->data, (unsigned long)in->size, &width, &height, &sub,
                                     &space) == 0 &&
                 width > 0 && height > 0;
    if (tj)
        tjDestroy(tj);
    *w = (uint32_t)width;
    *h = (uint32_t)height;
    *codec = SK2_CODEC_JPEG;
    return is_ok;
}

static void s_skip(s_map_t *map, const char *topic, const char *what, const char *detail)
{
    if (map->skipped_messages++ == 0)
        snprintf(map->skipped_why, sizeof map->skipped_why, "on %.60s: %.40s%.60s", topic, what,
                 detail);
}

/* The stream of channel i for an image of this kind and format: made on the first image. */
static int s_stream_for(sk2_recording_reader_t *self, s_map_t *map, size_t i,
                        sk2_stream_kind_t kind, sk2_pixel_format_t format, uint32_t w, uint32_t h,
                        const char *encoding)
{
    s_chan_t *chan = &map->chans[i];
    sk2_rec_device_t *d = &self->devices[chan->device];
    for (size_t s = 0; s < d->stream_count; s++)
        if (d->streams[s].kind == kind)
            return map->streams[chan->device][s].image_channel == (int)i ? (int)s : -1;
    if (d->stream_count == SK2_REC_STREAMS_MAX)
        return -1;
    size_t s = d->stream_count++;
    d->streams[s] = (sk2_stream_info_t){
        .kind = kind,
        .format = format,
        .width = w,
        .height = h,
        .depth_unit_m = kind == SK2_STREAM_DEPTH ? (chan->unit_m > 0 ? chan->unit_m : 0.001) : 0};
    s_stream_t *st = &map->streams[chan->device][s];
    *st = (s_stream_t){.image_channel = (int)i, .info_channel = -1};
    snprintf(st->encoding, sizeof st->encoding, "%s", encoding);
    st->is_float = strcmp(encoding, "32FC1") == 0;
    map->has_float = map->has_float || st->is_float;
    return (int)s;
}

/* Describes message m (an image) as a frame entry, or skips it with a reason. */
static int s_add_image(sk2_recording_reader_t *self, s_map_t *map, size_t m)
{
    const sk2_mcap_message_t *msg = sk2_mcap_reader_message_at(map->mcap, m);
    size_t ci = s_chan_index(map->mcap, msg->channel);
    s_chan_t *chan = &map->chans[ci];
    if (chan->type != S_IMAGE && chan->type != S_COMPRESSED)
        return 0;
    const char *topic = sk2_mcap_reader_channel_at(map->mcap, ci)->topic;
    const uint8_t *data;
    size_t size;
    int rc = sk2_mcap_reader_read(map->mcap, m, &data, &size);
    if (rc != 0)
        return sk2_rec_fail(self, rc, "%s", sk2_mcap_reader_why(map->mcap));
    char why[200];
    uint32_t w = 0, h = 0;
    sk2_stream_kind_t kind = chan->kind;
    sk2_pixel_format_t format = 0;
    int64_t stamp_ns;
    const char *encoding, *codec = SK2_CODEC_RAW;
    sk2_ros2_image_in_t image;
    sk2_ros2_compressed_in_t packed;
    if (chan->type == S_IMAGE) {
        if (sk2_ros2_image_decode(data, size, &image, why, sizeof why) != 0) {
            s_skip(map, topic, "", why);
            return 0;
        }
        w = image.width;
        h = image.height;
        encoding = image.encoding;
        stamp_ns = image.header.stamp_ns;
        if (kind == 0)
            kind = sk2_ros2_image_kind(encoding);
        if (kind == 0 || sk2_ros2_image_format(encoding, kind, &format) != 0) {
            s_skip(map, topic, "encoding ", encoding);
            return 0;
        }
    } else {
        if (sk2_ros2_compressed_image_decode(data, size, &packed, why, sizeof why) != 0) {
            s_skip(map, topic, "", why);
            return 0;
        }
        encoding = packed.format;
        stamp_ns = packed.header.stamp_ns;
        sk2_ros2_compressed_depth_t cd;
        if (sk2_ros2_is_compressed_depth(packed.format)) {
            if (sk2_ros2_compressed_depth_parse(&packed, &cd, why, sizeof why) != 0) {
                s_skip(map, topic, "", why);
                return 0;
            }
            if (kind && kind != SK2_STREAM_DEPTH) {
                s_skip(map, topic, "compressedDepth on a stream that is not depth", "");
                return 0;
            }
            kind = SK2_STREAM_DEPTH;
            format = SK2_PIXEL_DEPTH_MM16;
            w = cd.width;
            h = cd.height;
            codec = cd.is_rvl ? SK2_CODEC_RVL : SK2_CODEC_PNG;
            if (cd.is_float)
                map->has_float = true;
        } else if ((kind = kind ? kind : SK2_STREAM_COLOR) != SK2_STREAM_COLOR ||
                   (format = SK2_PIXEL_RGB24, !s_compressed_size(&packed, &w, &h, &codec))) {
            s_skip(map, topic, "not a colour JPEG or PNG: ", encoding);
            return 0;
        }
    }
    if (w == 0 || h == 0 || w > SK2_ROS2_IN_MAX_SIDE || h > SK2_ROS2_IN_MAX_SIDE) {
        s_skip(map, topic, "its size is 0 or too large", "");
        return 0;
    }
    chan->kind = (uint8_t)kind;
    int s = s_stream_for(self, map, ci, kind, format, w, h, encoding);
    if (s < 0) {
        s_skip(map, topic, "another topic already gives this stream", "");
        return 0;
    }
    const sk2_stream_info_t *info = &self->devices[chan->device].streams[s];
    s_stream_t *st = &map->streams[chan->device][s];
    if (info->width != w || info->height != h || info->format != format ||
        (chan->type == S_IMAGE && strcmp(st->encoding, encoding) != 0)) {
        s_skip(map, topic, "size or encoding changed from the first", "");
        return 0;
    }
    chan->stream = (int8_t)s;
    chan->has_sequence = chan->has_sequence || msg->sequence != 0;
    int64_t time_us = (int64_t)(msg->log_time_ns / 1000);
    sk2_rec_entry_t entry = {
        .offset = m,
        .sequence = msg->sequence,
        .device_timestamp_us = stamp_ns / 1000,
        .capture_time_us = time_us,
        .stored_bytes = (uint32_t)size,
        .width = w,
        .height = h,
        .device = (uint16_t)chan->device,
        .kind = (uint8_t)kind,
        .format = (uint8_t)format,
        .codec = sk2_codec_wire_id(sk2_codec_find(codec)),
        .stored = chan->type == S_IMAGE ? SK2_REC_STORED_MCAP_IMAGE : SK2_REC_STORED_MCAP_PACKED,
    };
    if (st->frames++ == 0 || time_us < st->first_us)
        st->first_us = time_us;
    if (st->frames == 1 || time_us > st->last_us)
        st->last_us = time_us;
    return sk2_rec_entry_push(self, &entry);
}

/* The camera model of each stream: the first CameraInfo of its channel. */
static void s_add_models(sk2_recording_reader_t *self, s_map_t *map)
{
    size_t count = sk2_mcap_reader_message_count(map->mcap);
    bool done[SK2_MCAP_READ_MAX_CHANNELS] = {false};
    for (size_t m = 0; m < count; m++) {
        const sk2_mcap_message_t *msg = sk2_mcap_reader_message_at(map->mcap, m);
        size_t ci = s_chan_index(map->mcap, msg->channel);
        s_chan_t *chan = &map->chans[ci];
        if (chan->type != S_INFO || done[ci])
            continue;
        done[ci] = true;
        const uint8_t *data;
        size_t size;
        sk2_ros2_camera_info_in_t in;
        sk2_intrinsics_t k;
        bool is_partial = false;
        if (sk2_mcap_reader_read(map->mcap, m, &data, &size) != 0 ||
            sk2_ros2_camera_info_decode(data, size, &in, NULL, 0) != 0 ||
            sk2_ros2_camera_info_intrinsics(&in, &k, &is_partial) != 0)
            continue;
        sk2_rec_device_t *d = &self->devices[chan->device];
        for (size_t s = 0; s < d->stream_count; s++)
            if (d->streams[s].kind == chan->kind && !d->streams[s].has_intrinsics &&
                in.width == d->streams[s].width && in.height == d->streams[s].height) {
                d->streams[s].has_intrinsics = true;
                d->streams[s].intrinsics = k;
                map->has_partial_model = map->has_partial_model || is_partial;
            }
    }
}

static int s_entry_order(const void *a, const void *b)
{
    const sk2_rec_entry_t *x = a, *y = b;
    if (x->capture_time_us != y->capture_time_us)
        return x->capture_time_us < y->capture_time_us ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int sk2_rec_mcap_open(sk2_recording_reader_t *self)
{
    sk2_mcap_reader_t *mcap = sk2_mcap_reader_new();
    if (!mcap)
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory");
    int fd = self->fd;
    self->fd = -1;
    self->mcap = mcap;
    int rc = sk2_mcap_reader_open_fd(mcap, fd);
    if (rc != 0)
        return sk2_rec_fail(self, rc, "MCAP: %s", sk2_mcap_reader_why(mcap));
    s_map_t *map = calloc(1, sizeof *map);
    size_t channels = sk2_mcap_reader_channel_count(mcap);
    if (map)
        map->chans = calloc(channels + 1, sizeof *map->chans);
    if (!map || !map->chans) {
        if (map)
            free(map->chans);
        free(map);
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory");
    }
    map->mcap = mcap;
    rc = s_map_channels(self, map);
    size_t count = sk2_mcap_reader_message_count(mcap);
    for (size_t m = 0; m < count && rc == 0; m++)
        rc = s_add_image(self, map, m);
    if (rc == 0)
        s_add_models(self, map);
    /* Devices without a stream (only camera models, only skipped images) are dropped, and the
     * frames' device numbers follow. */
    size_t remap[SK2_RECORDING_MAX_DEVICES], kept = 0;
    for (size_t d = 0; rc == 0 && d < self->device_count; d++) {
        remap[d] = kept;
        if (self->devices[d].stream_count == 0)
            continue;
        if (kept != d) {
            self->devices[kept] = self->devices[d];
            memcpy(map->streams[kept], map->streams[d], sizeof map->streams[d]);
        }
        kept++;
    }
    for (size_t i = 0; rc == 0 && i < self->entry_count; i++)
        self->entries[i].device = (uint16_t)remap[self->entries[i].device];
    for (size_t i = 0; rc == 0 && i < channels; i++)
        if (map->chans[i].device >= 0)
            map->chans[i].device = (int16_t)remap[map->chans[i].device];
    if (rc == 0)
        self->device_count = kept;
    for (size_t d = 0; rc == 0 && d < self->device_count; d++) {
        for (size_t s = 0; s < self->devices[d].stream_count; s++) {
            s_stream_t *st = &map->streams[d][s];
            if (st->frames > 1 && st->last_us > st->first_us)
                self->devices[d].streams[s].fps =
                    round((double)(st->frames - 1) * 1e6 / (double)(st->last_us - st->first_us));
        }
    }
    if (rc == 0 && self->entry_count > 1)
        qsort(self->entries, self->entry_count, sizeof *self->entries, s_entry_order);
    /* Streams whose messages carry no sequence (rosbag2 leaves it 0): count frames instead, in
     * time order. */
    uint64_t counters[SK2_RECORDING_MAX_DEVICES][SK2_REC_STREAMS_MAX] = {{0}};
    for (size_t i = 0; rc == 0 && i < self->entry_count; i++) {
        sk2_rec_entry_t *e = &self->entries[i];
        const sk2_mcap_message_t *msg = sk2_mcap_reader_message_at(mcap, e->offset);
        size_t ci = s_chan_index(mcap, msg->channel);
        if (!map->chans[ci].has_sequence)
            e->sequence = counters[e->device][map->chans[ci].stream]++;
    }
    if (rc == 0 && self->device_count == 0)
        rc = sk2_rec_fail(self, SK2_ECORRUPT,
                          "MCAP: no sensor_msgs Image or CompressedImage in CDR this reader can "
                          "use%s%.80s%s",
                          map->skipped_messages ? " (" : "", map->skipped_why,
                          map->skipped_messages ? ")" : "");
    if (rc == 0) {
        self->has_index = sk2_mcap_reader_is_complete(mcap);
        self->ignored_bytes = sk2_mcap_reader_ignored_bytes(mcap);
        char note[sizeof self->why];
        int n = snprintf(note, sizeof note, "%.200s", sk2_mcap_reader_why(mcap));
        if (map->ignored_channels)
            n += snprintf(note + n, sizeof note - (size_t)n,
                          "%s%zu channel(s) of other types or encodings ignored (first %.60s)",
                          n ? "; " : "", map->ignored_channels, map->first_ignored);
        if (map->skipped_messages && (size_t)n < sizeof note)
            n += snprintf(note + n, sizeof note - (size_t)n, "%s%zu image(s) skipped: %.120s",
                          n ? "; " : "", map->skipped_messages, map->skipped_why);
        if (map->has_float && (size_t)n < sizeof note)
            n += snprintf(note + n, sizeof note - (size_t)n,
                          "%s32FC1 depth (metres) converted to the nearest millimetre",
                          n ? "; " : "");
        if (map->has_partial_model && (size_t)n < sizeof note)
            snprintf(note + n, sizeof note - (size_t)n,
                     "%sa camera model has terms sk2's model lacks (skew, k4..k6): dropped",
                     n ? "; " : "");
        memcpy(self->why, note, sizeof note);
    }
    free(map->chans);
    free(map);
    return rc;
}

int sk2_rec_mcap_read_frame(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry,
                            sk2_frame_t **frame_p)
{
    const uint8_t *data;
    size_t size;
    int rc = sk2_mcap_reader_read(self->mcap, (size_t)entry->offset, &data, &size);
    if (rc != 0)
        return sk2_rec_fail(self, rc, "MCAP: %s", sk2_mcap_reader_why(self->mcap));
    char why[200];
    sk2_frame_t *frame = NULL;
    if (entry->stored == SK2_REC_STORED_MCAP_IMAGE) {
        sk2_ros2_image_in_t image;
        rc = sk2_ros2_image_decode(data, size, &image, why, sizeof why);
        if (rc == 0)
            rc = sk2_ros2_image_to_frame(&image, (sk2_stream_kind_t)entry->kind, &frame, why,
                                         sizeof why);
    } else {
        sk2_ros2_compressed_in_t packed;
        rc = sk2_ros2_compressed_image_decode(data, size, &packed, why, sizeof why);
        const sk2_codec_t *codec = sk2_codec_from_wire_id(entry->codec);
        if (rc == 0 && !(frame = sk2_frame_new((sk2_stream_kind_t)entry->kind,
                                               (sk2_pixel_format_t)entry->format, entry->width,
                                               entry->height)))
            rc = SK2_ENOMEM, snprintf(why, sizeof why, "out of memory for a frame");
        sk2_ros2_compressed_depth_t cd = {.packed = packed.data, .packed_size = packed.size};
        if (rc == 0 && sk2_ros2_is_compressed_depth(packed.format))
            rc = sk2_ros2_compressed_depth_parse(&packed, &cd, why, sizeof why);
        if (rc == 0 && (rc = sk2_codec_decode(codec, cd.packed, cd.packed_size, frame)) != 0)
            snprintf(why, sizeof why, "the %s image does not decode: %s", sk2_codec_name(codec),
                     sk2_strerror(rc));
        if (rc == 0 && cd.is_float)
            sk2_ros2_compressed_depth_to_mm(frame, cd.quant_a, cd.quant_b);
    }
    if (rc == 0 &&
        (sk2_frame_width(frame) != entry->width || sk2_frame_height(frame) != entry->height ||
         sk2_frame_format(frame) != (sk2_pixel_format_t)entry->format)) {
        rc = SK2_ECORRUPT;
        snprintf(why, sizeof why, "the message changed since the file was opened");
    }
    if (rc != 0) {
        sk2_frame_destroy(&frame);
        return sk2_rec_fail(self, rc, "MCAP message %llu: %s", (unsigned long long)entry->offset,
                            why);
    }
    sk2_frame_set_sequence(frame, entry->sequence);
    sk2_frame_set_device_timestamp_us(frame, entry->device_timestamp_us);
    sk2_frame_set_capture_time_us(frame, entry->capture_time_us);
    *frame_p = frame;
    return 0;
}
