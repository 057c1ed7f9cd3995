/* Per-thread scratch memory for codecs: buffers kept between calls, one set per thread.
 *
 * Codecs are called from any thread at once and often need a contiguous work area the size of
 * a frame (LZ4's planes, sk2d's tokens). A malloc per call is free on glibc once warm, but
 * wherever a block that size is always mmapped (musl, or glibc with a fixed M_MMAP_THRESHOLD)
 * each call faults in fresh zeroed pages: measured at +0.1 ms on a 0.13 ms depth12 encode.
 * Buffers kept per thread need no locks and stay warm in the cache. Private to libsk2. */
#ifndef SK2_CODEC_SCRATCH_H
#define SK2_CODEC_SCRATCH_H

#include <stddef.h>
#include <stdint.h>

/* Which buffer: a codec that needs two at once takes two slots. */
typedef enum {
    SK2_SCRATCH_DEPTH12 = 0,
    SK2_SCRATCH_SK2D_TOKENS = 1,
    SK2_SCRATCH_SK2D_ROWS = 2,
    SK2_SCRATCH_SK2D_STREAM = 3,
    SK2_SCRATCH_SLOTS = 4,
} sk2_scratch_slot_t;

/* This thread's buffer `slot` with at least `size` bytes, aligned for any type, or NULL when
 * memory runs out. The previous contents are not kept. Valid until the next call for the same
 * slot on the same thread; freed when the thread exits. */
uint8_t *sk2_scratch(sk2_scratch_slot_t slot, size_t size);

#endif
