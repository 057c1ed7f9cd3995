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

/* The streamkinect2 version-1 depth format: 12 bits per pixel, LZ4. The only codec allowed on
 * the `depth` endpoint. Lossy: values of 4096 mm and more come back modulo 4096. */
#define SK2_CODEC_DEPTH12 "depth12"

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

/* The largest encoded size of a width x height frame of `format`, or 0 if the codec cannot
 * encode it. A buffer of this size always suffices for sk2_codec_encode. */
SK2_EXPORT size_t sk2_codec_encode_bound(const sk2_codec_t *codec, sk2_pixel_format_t format,
                                         uint32_t width, uint32_t height);

/* Encodes `frame`'s pixels into dst (capacity dst_cap), storing the length in *dst_len.
 * Returns 0, SK2_EUNSUPPORTED (format or geometry the codec cannot take), SK2_ENOSPC. */
SK2_EXPORT int sk2_codec_encode(const sk2_codec_t *codec, const sk2_frame_t *frame, uint8_t *dst,
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
