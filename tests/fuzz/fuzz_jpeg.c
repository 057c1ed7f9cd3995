/* libFuzzer target for the jpeg decoder: arbitrary bytes decoded into rgb24 and bgra32 frames.
 * JPEG is lossy, so there is no round trip to check: the decoder must only say 0 or
 * SK2_ECORRUPT, and never touch memory outside its buffers (the sanitizers watch). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sk2/sk2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static sk2_frame_t *frames[3];
    if (!frames[0]) {
        frames[0] = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 16, 16);
        frames[1] = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_BGRA32, 33, 7);
        frames[2] = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 1, 1);
        if (!frames[0] || !frames[1] || !frames[2])
            abort();
    }
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_JPEG);
    for (int i = 0; i < 3; i++) {
        int rc = sk2_codec_decode(codec, data, size, frames[i]);
        if (rc != 0 && rc != SK2_ECORRUPT)
            abort();
    }
    return 0;
}
