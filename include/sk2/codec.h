/* Codecs: pure functions from frames to bytes and back, found by name in one registry.
 *
 * Codecs know nothing of networks or threads; every function here is safe to call from any
 * thread at once. Decoders treat their input as hostile: they check every size against the
 * frame they decode into and return an error rather than read or write out of bounds. */
#ifndef SK2_CODEC_H
#define SK2_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_codec sk2_codec_t;
/* Encoder settings beyond the codec's defaults (today: JPEG quality). */
typedef struct sk2_codec_options sk2_codec_options_t;

/* The streamkinect2 version-1 depth format: 12 bits per pixel, LZ4. The only codec allowed on
 * the `depth` endpoint. Lossy: values of 4096 mm and more come back modulo 4096. */
#define SK2_CODEC_DEPTH12 "depth12"
/* The pixels as they are (16-bit values little-endian): any format; for fast links. */
#define SK2_CODEC_RAW "raw"
/* Wilson's RVL (2017), byte for byte: lossless 16-bit depth or IR, very fast, ratio ~3-4. */
#define SK2_CODEC_RVL "rvl"
/* sk2's own lossless 16-bit depth/IR codec: prediction + Huffman, see docs/codecs.md. */
#define SK2_CODEC_SK2D "sk2d"
/* JPEG through libjpeg-turbo: lossy colour (rgb24, bgra32), quality 1..100. */
#define SK2_CODEC_JPEG "jpeg"
/* PNG through libpng: lossless colour (rgb24, bgra32) and 16-bit depth/IR, any reader opens it. */
#define SK2_CODEC_PNG "png"

/* The quality a codec with has_quality uses when none is set. */
#define SK2_CODEC_DEFAULT_QUALITY 90

/* How many codecs the registry holds; codecs are numbered 0 .. count-1. */
SK2_EXPORT size_t sk2_codec_count(void);
/* The codec at `index`, or NULL past the end. Codecs are static: never freed. */
SK2_EXPORT const sk2_codec_t *sk2_codec_at(size_t index);
/* The codec called `name`, or NULL if there is none. */
SK2_EXPORT const sk2_codec_t *sk2_codec_find(const char *name);

SK2_EXPORT const char *sk2_codec_name(const sk2_codec_t *codec);
/* One line for people: what the codec does and what it keeps. */
SK2_EXPORT const char *sk2_codec_description(const sk2_codec_t *codec);
/* True when decode(encode(f)) == f for every frame the codec accepts. */
SK2_EXPORT bool sk2_codec_is_lossless(const sk2_codec_t *codec);
/* True when the codec can encode frames of this pixel format. */
SK2_EXPORT bool sk2_codec_supports(const sk2_codec_t *codec, sk2_pixel_format_t format);
/* True when the codec reads the quality option (lossy codecs such as jpeg). */
SK2_EXPORT bool sk2_codec_has_quality(const sk2_codec_t *codec);

/* The largest encoded size of a width x height frame of `format`, or 0 if the codec cannot
 * encode it. A buffer of this size always suffices for sk2_codec_encode. */
SK2_EXPORT size_t sk2_codec_encode_bound(const sk2_codec_t *codec, sk2_pixel_format_t format,
                                         uint32_t width, uint32_t height);

/* Encodes `frame`'s pixels into dst (capacity dst_cap), storing the length in *dst_len.
 * Returns 0, SK2_EUNSUPPORTED (format or geometry the codec cannot take), SK2_ENOSPC. */
SK2_EXPORT int sk2_codec_encode(const sk2_codec_t *codec, const sk2_frame_t *frame, uint8_t *dst,
                                size_t dst_cap, size_t *dst_len);

/* New encoder options, all at the codecs' defaults; caller destroys them. NULL when out of
 * memory. Options are plain data: one set may serve many encodes, on one thread at a time. */
SK2_EXPORT sk2_codec_options_t *sk2_codec_options_new(void);
/* Frees the options and sets *self_p to NULL. Safe on NULL and on an already-NULL pointer. */
SK2_EXPORT void sk2_codec_options_destroy(sk2_codec_options_t **self_p);
/* Quality for codecs that have one: 1 (smallest) .. 100 (best), or 0 for the codec's default
 * (SK2_CODEC_DEFAULT_QUALITY). Returns 0, or SK2_EINVAL outside 0..100. Lossless codecs ignore
 * it. */
SK2_EXPORT int sk2_codec_options_set_quality(sk2_codec_options_t *self, int quality);
/* The quality set, 0 when none was. */
SK2_EXPORT int sk2_codec_options_quality(const sk2_codec_options_t *self);

/* sk2_codec_encode with options; NULL options means the defaults. Same returns. */
SK2_EXPORT int sk2_codec_encode_opts(const sk2_codec_t *codec, const sk2_frame_t *frame,
                                     const sk2_codec_options_t *options, uint8_t *dst,
                                     size_t dst_cap, size_t *dst_len);

/* Decodes src into `frame`, whose format, width and height say what is expected. Returns 0,
 * SK2_ECORRUPT (malformed, truncated or of another size), SK2_EUNSUPPORTED. On error the
 * frame's pixels are unspecified but the frame stays valid. */
SK2_EXPORT int sk2_codec_decode(const sk2_codec_t *codec, const uint8_t *src, size_t src_len,
                                sk2_frame_t *frame);

#ifdef __cplusplus
}
#endif
#endif
