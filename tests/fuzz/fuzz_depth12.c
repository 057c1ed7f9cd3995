/* libFuzzer target for the depth12 decoder: arbitrary bytes from the network decoded into a
 * Kinect-sized frame and a tiny one.
 *
 * Sanitizers catch any out-of-bounds access; beyond that, whatever the decoder accepts must be
 * a real image: every pixel below 4096, and encoding it again and decoding that gives the same
 * pixels back. A mismatch aborts, which libFuzzer reports as a crash with the input saved. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/sk2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A frame to decode into, a second for the round trip, and room for its encoding. Kept for
 * the whole run: the frames' size, not the input, is what this target varies. */
typedef struct {
    sk2_frame_t *frame;
    sk2_frame_t *again;
    uint8_t *encoded;
    size_t encoded_cap;
} target_t;

static target_t s_target_new(sk2_stream_kind_t kind, sk2_pixel_format_t format, uint32_t width,
                             uint32_t height)
{
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
    target_t target = {
        .frame = sk2_frame_new(kind, format, width, height),
        .again = sk2_frame_new(kind, format, width, height),
        .encoded_cap = sk2_codec_encode_bound(codec, format, width, height),
    };
    target.encoded = malloc(target.encoded_cap);
    if (!target.frame || !target.again || !target.encoded)
        abort();
    return target;
}

static void s_check(const target_t *target, const uint8_t *data, size_t size)
{
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
    if (sk2_codec_decode(codec, data, size, target->frame) != 0)
        return;
    const uint16_t *px = sk2_frame_cdata16(target->frame);
    size_t count = (size_t)sk2_frame_width(target->frame) * sk2_frame_height(target->frame);
    for (size_t i = 0; i < count; i++)
        if (px[i] > 0x0fff)
            abort();
    size_t len;
    if (sk2_codec_encode(codec, target->frame, target->encoded, target->encoded_cap, &len) != 0)
        abort();
    if (sk2_codec_decode(codec, target->encoded, len, target->again) != 0)
        abort();
    if (memcmp(sk2_frame_cdata(target->frame), sk2_frame_cdata(target->again),
               sk2_frame_size(target->frame)) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int is_ready;
    static target_t kinect;
    static target_t tiny;
    if (!is_ready) {
        kinect = s_target_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 512, 424);
        tiny = s_target_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 6, 4);
        is_ready = 1;
    }
    s_check(&kinect, data, size);
    s_check(&tiny, data, size);
    return 0;
}
