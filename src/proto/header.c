/* Stream-endpoint topics and frame headers. Every number is little-endian and written byte by
 * byte, so the format does not depend on the host. A header is checked completely before any
 * of it is used: a client allocates a frame from width and height, so both are bounded here. */
#include <stdio.h>
#include <string.h>

#include "proto/header.h"
#include "sk2/error.h"

static const uint8_t s_magic[4] = {'s', 'k', '2', 'h'};

/* Wire numbers of codecs: part of the protocol, never renumbered; new codecs are appended. */
static const struct {
    const char *name;
    uint8_t id;
} s_wire_ids[] = {
    {"depth12", 1}, {"raw", 2}, {"rvl", 3}, {"sk2d", 4}, {"jpeg", 5}, {"png", 6},
};

#define S_WIRE_IDS (sizeof s_wire_ids / sizeof s_wire_ids[0])

uint8_t sk2_codec_wire_id(const sk2_codec_t *codec)
{
    const char *name = codec ? sk2_codec_name(codec) : NULL;
    for (size_t i = 0; name && i < S_WIRE_IDS; i++)
        if (strcmp(s_wire_ids[i].name, name) == 0)
            return s_wire_ids[i].id;
    return 0;
}

const sk2_codec_t *sk2_codec_from_wire_id(uint8_t id)
{
    for (size_t i = 0; i < S_WIRE_IDS; i++)
        if (s_wire_ids[i].id == id)
            return sk2_codec_find(s_wire_ids[i].name);
    return NULL;
}

static void s_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t s_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t s_get32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static int s_kind_ok(int kind)
{
    return kind >= SK2_STREAM_DEPTH && kind <= SK2_STREAM_BODY;
}

int sk2_header_write(const sk2_header_t *h, uint8_t out[SK2_HEADER_SIZE])
{
    uint8_t codec = sk2_codec_wire_id(h->codec);
    if (!codec || !s_kind_ok(h->kind) || sk2_pixel_format_bytes(h->format) == 0)
        return SK2_EINVAL;
    memset(out, 0, SK2_HEADER_SIZE);
    memcpy(out, s_magic, sizeof s_magic);
    s_put16(out + 4, SK2_HEADER_VERSION);
    s_put16(out + 6, SK2_HEADER_SIZE);
    out[8] = (uint8_t)h->kind;
    out[9] = (uint8_t)h->format;
    out[10] = codec;
    out[11] = 0; /* flags: none defined */
    s_put32(out + 12, h->width);
    s_put32(out + 16, h->height);
    s_put32(out + 20, h->payload_size);
    s_put64(out + 24, h->sequence);
    s_put64(out + 32, (uint64_t)h->device_timestamp_us);
    s_put64(out + 40, (uint64_t)h->capture_time_us);
    s_put64(out + 48, (uint64_t)h->send_time_us);
    return 0; /* bytes 56..63 are reserved and zero */
}

int sk2_header_read(const uint8_t *in, size_t size, sk2_header_t *h, char *why, size_t why_size)
{
    if (size < SK2_HEADER_SIZE || memcmp(in, s_magic, sizeof s_magic) != 0) {
        snprintf(why, why_size, "not an sk2 frame header (%zu bytes)", size);
        return SK2_EPROTO;
    }
    uint16_t version = s_get16(in + 4);
    uint16_t header_size = s_get16(in + 6);
    if (version != SK2_HEADER_VERSION) {
        snprintf(why, why_size, "frame header version %u (this library reads %d)", version,
                 SK2_HEADER_VERSION);
        return SK2_EPROTO;
    }
    /* Later revisions of version 1 may append fields: accept a longer header, read ours. */
    if (header_size < SK2_HEADER_SIZE || header_size != size) {
        snprintf(why, why_size, "frame header claims %u bytes but has %zu", header_size, size);
        return SK2_EPROTO;
    }
    h->kind = (sk2_stream_kind_t)in[8];
    h->format = (sk2_pixel_format_t)in[9];
    h->width = s_get32(in + 12);
    h->height = s_get32(in + 16);
    h->payload_size = s_get32(in + 20);
    h->sequence = s_get64(in + 24);
    h->device_timestamp_us = (int64_t)s_get64(in + 32);
    h->capture_time_us = (int64_t)s_get64(in + 40);
    h->send_time_us = (int64_t)s_get64(in + 48);
    if (!s_kind_ok(h->kind) || sk2_pixel_format_bytes(h->format) == 0) {
        snprintf(why, why_size, "unknown stream kind %u or pixel format %u", in[8], in[9]);
        return SK2_EPROTO;
    }
    if (h->width == 0 || h->height == 0 || h->width > SK2_FRAME_MAX_WIDTH ||
        h->height > SK2_FRAME_MAX_HEIGHT || h->payload_size > SK2_PAYLOAD_MAX) {
        snprintf(why, why_size, "frame of %ux%u with %u payload bytes is out of bounds", h->width,
                 h->height, h->payload_size);
        return SK2_EPROTO;
    }
    h->codec = sk2_codec_from_wire_id(in[10]);
    if (!h->codec) {
        snprintf(why, why_size, "codec number %u is not known to this library", in[10]);
        return SK2_EUNSUPPORTED;
    }
    return 0;
}

size_t sk2_header_hops(const uint8_t *in, size_t size, int64_t *times_us, size_t max)
{
    if (size < SK2_HEADER_SIZE)
        return 0;
    size_t count = s_get16(in + 56);
    if (count > SK2_HEADER_HOPS_MAX || SK2_HEADER_SIZE + 8 * count > size)
        return 0;
    for (size_t i = 0; i < count && i < max; i++)
        times_us[i] = (int64_t)s_get64(in + SK2_HEADER_SIZE + 8 * i);
    return count;
}

size_t sk2_header_add_hop(const uint8_t *in, size_t size, int64_t receive_time_us, uint8_t *out,
                          size_t out_size)
{
    if (size < SK2_HEADER_SIZE || size + 8 > out_size || size + 8 > UINT16_MAX ||
        s_get16(in + 6) != size)
        return 0;
    size_t count = s_get16(in + 56);
    if (count >= SK2_HEADER_HOPS_MAX || SK2_HEADER_SIZE + 8 * count > size)
        return 0;
    size_t at = SK2_HEADER_SIZE + 8 * count;
    memcpy(out, in, at);
    s_put64(out + at, (uint64_t)receive_time_us);
    memcpy(out + at + 8, in + at, size - at);
    s_put16(out + 6, (uint16_t)(size + 8));
    s_put16(out + 56, (uint16_t)(count + 1));
    return size + 8;
}

int sk2_header_check(const sk2_header_t *h, const sk2_stream_info_t *advertised,
                     size_t max_frame_bytes, char *why, size_t why_size)
{
    /* The advertised description first: a server that says 512x424 and sends 16384x16384 is
     * wrong (or hostile) whatever the budget, and the size a client shows must not change
     * under it. */
    if (advertised && (h->kind != advertised->kind || h->format != advertised->format ||
                       h->width != advertised->width || h->height != advertised->height)) {
        snprintf(why, why_size, "%s frame of %ux%u %s does not match its stream (%ux%u %s)",
                 sk2_stream_kind_name(h->kind), h->width, h->height,
                 sk2_pixel_format_name(h->format), advertised->width, advertised->height,
                 sk2_pixel_format_name(advertised->format));
        return SK2_EPROTO;
    }
    size_t frame_bytes = sk2_limit_frame_bytes(h->format, h->width, h->height);
    if (frame_bytes == 0 || frame_bytes > max_frame_bytes) {
        snprintf(why, why_size, "%s frame of %ux%u needs %zu bytes, over the limit of %zu",
                 sk2_stream_kind_name(h->kind), h->width, h->height, frame_bytes, max_frame_bytes);
        return SK2_ELIMIT;
    }
    /* No encoder makes more than its bound; a longer payload cannot be a frame of this size. */
    size_t bound = sk2_codec_encode_bound(h->codec, h->format, h->width, h->height);
    if (bound == 0 || h->payload_size > bound) {
        snprintf(why, why_size, "%s payload of %u bytes is more than %s makes of a %ux%u frame",
                 sk2_stream_kind_name(h->kind), h->payload_size, sk2_codec_name(h->codec), h->width,
                 h->height);
        return SK2_ECORRUPT;
    }
    return 0;
}

sk2_stream_kind_t sk2_stream_kind_from_name(const char *name, size_t length)
{
    for (int kind = SK2_STREAM_DEPTH; kind <= SK2_STREAM_BODY; kind++) {
        const char *known = sk2_stream_kind_name((sk2_stream_kind_t)kind);
        if (strlen(known) == length && memcmp(known, name, length) == 0)
            return (sk2_stream_kind_t)kind;
    }
    return (sk2_stream_kind_t)0;
}

size_t sk2_topic_format(sk2_stream_kind_t kind, const sk2_codec_t *codec, char *out, size_t size)
{
    if (!s_kind_ok(kind) || !codec)
        return 0;
    int n = snprintf(out, size, "%s/%s/", sk2_stream_kind_name(kind), sk2_codec_name(codec));
    return n < 0 || (size_t)n >= size ? 0 : (size_t)n;
}

int sk2_topic_parse(const uint8_t *topic, size_t size, sk2_stream_kind_t *kind,
                    const sk2_codec_t **codec)
{
    /* "kind/codec/": both parts non-empty, nothing after the second slash. */
    if (size < 4 || size > SK2_TOPIC_MAX || topic[size - 1] != '/')
        return SK2_EPROTO;
    const uint8_t *slash = memchr(topic, '/', size - 1);
    if (!slash || slash == topic || slash == topic + size - 2)
        return SK2_EPROTO;
    size_t kind_length = (size_t)(slash - topic);
    size_t codec_length = size - kind_length - 2;
    char name[SK2_TOPIC_MAX + 1];
    memcpy(name, slash + 1, codec_length);
    name[codec_length] = '\0';
    if (memchr(name, '/', codec_length) || strlen(name) != codec_length)
        return SK2_EPROTO;
    *kind = sk2_stream_kind_from_name((const char *)topic, kind_length);
    *codec = sk2_codec_find(name);
    return *kind && *codec ? 0 : SK2_EUNSUPPORTED;
}

sk2_header_t sk2_header_of_frame(const sk2_frame_t *frame, const sk2_codec_t *codec,
                                 uint32_t payload_size, int64_t send_time_us)
{
    return (sk2_header_t){
        .kind = sk2_frame_kind(frame),
        .format = sk2_frame_format(frame),
        .codec = codec,
        .width = sk2_frame_width(frame),
        .height = sk2_frame_height(frame),
        .payload_size = payload_size,
        .sequence = sk2_frame_sequence(frame),
        .device_timestamp_us = sk2_frame_device_timestamp_us(frame),
        .capture_time_us = sk2_frame_capture_time_us(frame),
        .send_time_us = send_time_us,
    };
}
