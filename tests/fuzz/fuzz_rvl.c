/* libFuzzer target for the rvl decoder: arbitrary bytes decoded into frames of several shapes
 * (fuzz_codec_common.h); sanitizers catch any out-of-bounds access, and whatever is accepted
 * must survive a second round trip unchanged. */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_codec_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_lossless("rvl", data, size);
    return 0;
}
