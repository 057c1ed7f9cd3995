/* libFuzzer target for the png decoder: arbitrary bytes decoded into colour and 16-bit frames
 * of several shapes (fuzz_codec_common.h). The decoder must say 0 or SK2_ECORRUPT and never
 * touch memory outside its buffers (the sanitizers watch); whatever it accepts must survive a
 * second round trip unchanged, since png is lossless. The seeds in corpus/png/ are the
 * encoder's own output for rgb24 16 x 16, bgra32 33 x 7 and depth 16 x 2. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_codec_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int is_ready;
    static const sk2_codec_t *codec;
    static fuzz_target_t targets[3];
    if (!is_ready) {
        codec = sk2_codec_find(SK2_CODEC_PNG);
        targets[0] = fuzz_target_new(codec, SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 16, 16);
        targets[1] = fuzz_target_new(codec, SK2_STREAM_COLOR, SK2_PIXEL_BGRA32, 33, 7);
        targets[2] = fuzz_target_new(codec, SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 1, 1);
        is_ready = 1;
    }
    for (int i = 0; i < 3; i++)
        fuzz_check(codec, &targets[i], data, size);
    /* The 16-bit shapes every lossless decoder is fuzzed with (depth 16 x 2 among them). */
    fuzz_lossless(SK2_CODEC_PNG, data, size);
    return 0;
}
