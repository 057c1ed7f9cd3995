/* Frames: a pixel buffer with its geometry and metadata. The pixels live in the same
 * allocation as the header, so a frame is one malloc and one free on the hot path. */
#include <stdlib.h>
#include <string.h>

#include "sk2/frame.h"

struct sk2_frame {
    sk2_stream_kind_t kind;
    sk2_pixel_format_t format;
    uint32_t width;              /* pixels */
    uint32_t height;             /* pixels */
    size_t stride;               /* bytes per row */
    uint64_t sequence;           /* producer's frame counter */
    int64_t device_timestamp_us; /* device clock, microseconds */
    int64_t capture_time_us;     /* wall clock, microseconds since the epoch */
    /* Pixels follow, aligned for 16-bit (and wider) access. */
    _Alignas(16) uint8_t data[];
};

size_t sk2_pixel_format_bytes(sk2_pixel_format_t format)
{
    switch (format) {
    case SK2_PIXEL_DEPTH_MM16:
    case SK2_PIXEL_GRAY16:
        return 2;
    case SK2_PIXEL_RGB24:
        return 3;
    case SK2_PIXEL_BGRA32:
        return 4;
    }
    return 0;
}

const char *sk2_pixel_format_name(sk2_pixel_format_t format)
{
    switch (format) {
    case SK2_PIXEL_DEPTH_MM16:
        return "depth_mm16";
    case SK2_PIXEL_GRAY16:
        return "gray16";
    case SK2_PIXEL_RGB24:
        return "rgb24";
    case SK2_PIXEL_BGRA32:
        return "bgra32";
    }
    return "unknown";
}

const char *sk2_stream_kind_name(sk2_stream_kind_t kind)
{
    switch (kind) {
    case SK2_STREAM_DEPTH:
        return "depth";
    case SK2_STREAM_COLOR:
        return "color";
    case SK2_STREAM_IR:
        return "ir";
    case SK2_STREAM_BODY:
        return "body";
    }
    return "unknown";
}

static int s_kind_is_valid(sk2_stream_kind_t kind)
{
    return kind >= SK2_STREAM_DEPTH && kind <= SK2_STREAM_BODY;
}

sk2_frame_t *sk2_frame_new(sk2_stream_kind_t kind, sk2_pixel_format_t format, uint32_t width,
                           uint32_t height)
{
    size_t bpp = sk2_pixel_format_bytes(format);
    if (!s_kind_is_valid(kind) || bpp == 0 || width == 0 || height == 0 ||
        width > SK2_FRAME_MAX_WIDTH || height > SK2_FRAME_MAX_HEIGHT)
        return NULL;
    /* With both dimensions capped at 2^14 and 4 bytes a pixel, this cannot overflow. */
    size_t size = (size_t)width * height * bpp;
    sk2_frame_t *self = calloc(1, sizeof *self + size);
    if (!self)
        return NULL;
    self->kind = kind;
    self->format = format;
    self->width = width;
    self->height = height;
    self->stride = (size_t)width * bpp;
    return self;
}

void sk2_frame_destroy(sk2_frame_t **self_p)
{
    if (self_p && *self_p) {
        free(*self_p);
        *self_p = NULL;
    }
}

sk2_frame_t *sk2_frame_dup(const sk2_frame_t *self)
{
    size_t total = sizeof *self + sk2_frame_size(self);
    sk2_frame_t *copy = malloc(total);
    if (copy)
        memcpy(copy, self, total);
    return copy;
}

sk2_stream_kind_t sk2_frame_kind(const sk2_frame_t *self)
{
    return self->kind;
}

sk2_pixel_format_t sk2_frame_format(const sk2_frame_t *self)
{
    return self->format;
}

uint32_t sk2_frame_width(const sk2_frame_t *self)
{
    return self->width;
}

uint32_t sk2_frame_height(const sk2_frame_t *self)
{
    return self->height;
}

size_t sk2_frame_stride(const sk2_frame_t *self)
{
    return self->stride;
}

size_t sk2_frame_size(const sk2_frame_t *self)
{
    return self->stride * self->height;
}

uint8_t *sk2_frame_data(sk2_frame_t *self)
{
    return self->data;
}

const uint8_t *sk2_frame_cdata(const sk2_frame_t *self)
{
    return self->data;
}

uint16_t *sk2_frame_data16(sk2_frame_t *self)
{
    return sk2_pixel_format_bytes(self->format) == 2 ? (uint16_t *)(void *)self->data : NULL;
}

const uint16_t *sk2_frame_cdata16(const sk2_frame_t *self)
{
    return sk2_pixel_format_bytes(self->format) == 2 ? (const uint16_t *)(const void *)self->data
                                                     : NULL;
}

uint64_t sk2_frame_sequence(const sk2_frame_t *self)
{
    return self->sequence;
}

void sk2_frame_set_sequence(sk2_frame_t *self, uint64_t sequence)
{
    self->sequence = sequence;
}

int64_t sk2_frame_device_timestamp_us(const sk2_frame_t *self)
{
    return self->device_timestamp_us;
}

void sk2_frame_set_device_timestamp_us(sk2_frame_t *self, int64_t timestamp_us)
{
    self->device_timestamp_us = timestamp_us;
}

int64_t sk2_frame_capture_time_us(const sk2_frame_t *self)
{
    return self->capture_time_us;
}

void sk2_frame_set_capture_time_us(sk2_frame_t *self, int64_t time_us)
{
    self->capture_time_us = time_us;
}
