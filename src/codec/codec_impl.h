/* What a codec is inside libsk2: a table of pure functions on raw pixel buffers.
 *
 * The registry (registry.c) owns the public sk2_codec_* API: it checks arguments, pixel
 * formats and frame limits once, then calls these functions with a plain description of the
 * image. A codec therefore sees only valid shapes (format it declared, 1 <= width, height <=
 * SK2_FRAME_MAX_*), never a frame object, never a socket. Private to libsk2. */
#ifndef SK2_CODEC_IMPL_H
#define SK2_CODEC_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk2/codec.h"
#include "sk2/frame.h"

/* The bit of `format` in sk2_codec.formats. */
#define SK2_CODEC_FORMAT_BIT(format) (1u << (unsigned)(format))

/* The geometry of the pixels a codec works on. Pixels are row-major without padding
 * (stride = width * sk2_pixel_format_bytes(format)), 16-bit values in host byte order, and
 * aligned for their pixel type. */
typedef struct {
    sk2_pixel_format_t format; /* one the codec declared in `formats` */
    uint32_t width;            /* pixels, 1 .. SK2_FRAME_MAX_WIDTH */
    uint32_t height;           /* pixels, 1 .. SK2_FRAME_MAX_HEIGHT */
} sk2_codec_shape_t;

/* What the caller asked of an encoder, already checked by the registry. Codecs ignore what
 * they have no use for. */
typedef struct {
    int quality; /* 1 .. 100, or 0 for the codec's default; only codecs with has_quality */
} sk2_codec_params_t;

struct sk2_codec {
    const char *name;        /* registry key, e.g. SK2_CODEC_DEPTH12 */
    const char *description; /* one line for people */
    bool is_lossless;        /* decode(encode(p)) == p for every accepted image */
    uint32_t formats;        /* SK2_CODEC_FORMAT_BIT of each accepted pixel format */
    bool has_quality;        /* reads sk2_codec_params_t.quality */

    /* The largest encoding of an image of this shape, or 0 if the codec cannot take it. */
    size_t (*bound)(const sk2_codec_shape_t *shape);
    /* Encodes `pixels` into dst (capacity dst_cap) and stores the length in *dst_len.
     * Returns 0, SK2_EUNSUPPORTED (shape), SK2_ENOSPC (dst too small), SK2_ENOMEM. */
    int (*encode)(const sk2_codec_shape_t *shape, const sk2_codec_params_t *params,
                  const uint8_t *pixels, uint8_t *dst, size_t dst_cap, size_t *dst_len);
    /* Decodes src (hostile bytes, possibly NULL when src_len is 0) into `pixels`, which hold
     * exactly one image of `shape`. Returns 0, SK2_ECORRUPT, SK2_EUNSUPPORTED, SK2_ENOMEM;
     * never reads or writes outside src and pixels. */
    int (*decode)(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                  uint8_t *pixels);
};

/* Every codec, one per file in src/codec/, in registry order (sk2_codec_at numbering, which
 * tools may print, so append rather than insert). XX(id) names the codec's table
 * `sk2_codec_<id>`; adding a codec is one line here. */
#define SK2_CODEC_LIST(XX) XX(depth12) XX(raw) XX(rvl) XX(sk2d) XX(jpeg) XX(png)

/* Little-endian 32-bit words, as depth12 and rvl lay out their counts and words. */
static inline void sk2_codec_put_le32(uint8_t *dst, uint32_t value)
{
    dst[0] = (uint8_t)value;
    dst[1] = (uint8_t)(value >> 8);
    dst[2] = (uint8_t)(value >> 16);
    dst[3] = (uint8_t)(value >> 24);
}

static inline uint32_t sk2_codec_get_le32(const uint8_t *src)
{
    return (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
           (uint32_t)src[3] << 24;
}

#define SK2_CODEC_DECLARE(id) extern const struct sk2_codec sk2_codec_##id;
SK2_CODEC_LIST(SK2_CODEC_DECLARE)
#undef SK2_CODEC_DECLARE

#endif
