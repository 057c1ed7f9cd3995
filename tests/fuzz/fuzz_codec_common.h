/* What the lossless decoders' fuzz targets share: decode arbitrary bytes into a few frames of
 * fixed shapes; whatever a decoder accepts must be an image it encodes and decodes again to
 * the same pixels. A mismatch aborts, which libFuzzer reports as a crash with the input saved.
 * Included by one fuzz_<codec>.c each, which names the codec. */
#ifndef SK2_FUZZ_CODEC_COMMON_H
#define SK2_FUZZ_CODEC_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/sk2.h"

typedef struct {
    sk2_frame_t *frame;
    sk2_frame_t *again;
    uint8_t *encoded;
    size_t encoded_cap;
} fuzz_target_t;

static fuzz_target_t fuzz_target_new(const sk2_codec_t *codec, sk2_stream_kind_t kind,
                                     sk2_pixel_format_t format, uint32_t width, uint32_t height)
{
    fuzz_target_t target = {
        .frame = sk2_frame_new(kind, format, width, height),
        .again = sk2_frame_new(kind, format, width, height),
        .encoded_cap = sk2_codec_encode_bound(codec, format, width, height),
    };
    target.encoded = malloc(target.encoded_cap);
    if (!codec || !target.frame || !target.again || !target.encoded)
        abort();
    return target;
}

static void fuzz_check(const sk2_codec_t *codec, const fuzz_target_t *target, const uint8_t *data,
                       size_t size)
{
    int rc = sk2_codec_decode(codec, data, size, target->frame);
    if (rc != 0) {
        if (rc != SK2_ECORRUPT)
            abort();
        return;
    }
    size_t len;
    if (sk2_codec_encode(codec, target->frame, target->encoded, target->encoded_cap, &len) != 0)
        abort();
    if (sk2_codec_decode(codec, target->encoded, len, target->again) != 0)
        abort();
    if (memcmp(sk2_frame_cdata(target->frame), sk2_frame_cdata(target->again),
               sk2_frame_size(target->frame)) != 0)
        abort();
}

/* The shapes every lossless target tries: Kinect v2, Azure Kinect binned, odd and tiny. */
static void fuzz_lossless(const char *name, const uint8_t *data, size_t size)
{
    static int is_ready;
    static const sk2_codec_t *codec;
    static fuzz_target_t targets[4];
    if (!is_ready) {
        codec = sk2_codec_find(name);
        targets[0] = fuzz_target_new(codec, SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 512, 424);
        targets[1] = fuzz_target_new(codec, SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 16, 2);
        targets[2] = fuzz_target_new(codec, SK2_STREAM_IR, SK2_PIXEL_GRAY16, 5, 3);
        targets[3] = fuzz_target_new(codec, SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 1, 1);
        is_ready = 1;
    }
    for (int i = 0; i < 4; i++)
        fuzz_check(codec, &targets[i], data, size);
}

#endif
