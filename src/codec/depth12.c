/* depth12: the streamkinect2 version-1 depth format, byte for byte (docs: PROTOCOL.md, "Depth
 * endpoint").
 *
 * A frame becomes two planes, the bits 4..11 of every pixel (one byte a pixel) and then the
 * bits 0..3 of each pair of pixels (the even pixel in the high nibble), which together take
 * 1.5 bytes a pixel and are compressed as one LZ4 block behind their length as a 4-byte
 * little-endian integer: what python-lz4's `lz4.dumps` wrote. Bits 12..15 are dropped, so
 * depths of 4096 mm and more come back modulo 4096. The format carries no geometry: the
 * decoder learns width and height from the frame it fills and only checks that the pixel
 * count matches. The spec packs the low nibbles row by row; with an even width and unpadded
 * rows that is the same as packing the whole image as one run of pairs, which is what the
 * loops below do. */
#include <limits.h>
#include <stdlib.h>

#include <lz4.h>

#include "codec/codec_impl.h"
#include "codec/scratch.h"
#include "sk2/error.h"

/* The uncompressed length in front of the LZ4 block. */
#define S_HEADER_BYTES 4u

/* The planes must exist somewhere contiguous: LZ4 compresses one buffer into one block and
 * decompresses one block into one buffer, and the planar-to-pixel expansion cannot run in
 * place inside the frame. They live in this thread's scratch buffer (scratch.h). */
static uint8_t *s_scratch(size_t size)
{
    return sk2_scratch(SK2_SCRATCH_DEPTH12, size);
}

/* Both planes of an image of `count` pixels (even). The frame limits keep this below 2^29, so
 * it fits the 4-byte header and LZ4's int. */
static size_t s_plane_bytes(size_t count)
{
    return count / 2 * 3;
}

static void s_split_planes(const uint16_t *pixels, size_t count, uint8_t *high, uint8_t *low)
{
    for (size_t i = 0; i < count; i += 2) {
        uint16_t even = pixels[i];
        uint16_t odd = pixels[i + 1];
        high[i] = (uint8_t)(even >> 4);
        high[i + 1] = (uint8_t)(odd >> 4);
        low[i / 2] = (uint8_t)((even & 0xfu) << 4 | (odd & 0xfu));
    }
}

static void s_join_planes(const uint8_t *high, const uint8_t *low, size_t count, uint16_t *pixels)
{
    for (size_t i = 0; i < count; i += 2) {
        unsigned nibbles = low[i / 2];
        pixels[i] = (uint16_t)((unsigned)high[i] << 4 | nibbles >> 4);
        pixels[i + 1] = (uint16_t)((unsigned)high[i + 1] << 4 | (nibbles & 0xfu));
    }
}

static size_t s_bound(const sk2_codec_shape_t *shape)
{
    if (shape->width % 2 != 0)
        return 0;
    size_t plane_bytes = s_plane_bytes((size_t)shape->width * shape->height);
    return S_HEADER_BYTES + (size_t)LZ4_COMPRESSBOUND(plane_bytes);
}

static int s_encode(const sk2_codec_shape_t *shape, const sk2_codec_params_t *params,
                    const uint8_t *pixels, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    /* The pairs of the low plane are taken within a row: an odd width has no defined layout
     * (the original's numpy pairing fails on one), so it is refused both ways. */
    if (shape->width % 2 != 0)
        return SK2_EUNSUPPORTED;
    if (dst_cap <= S_HEADER_BYTES)
        return SK2_ENOSPC;
    size_t count = (size_t)shape->width * shape->height;
    size_t plane_bytes = s_plane_bytes(count);
    uint8_t *planes = s_scratch(plane_bytes);
    if (!planes)
        return SK2_ENOMEM;
    s_split_planes((const uint16_t *)(const void *)pixels, count, planes, planes + count);

    /* A capacity below the bound is fine as long as the block fits; LZ4 then reports 0. */
    size_t block_cap = dst_cap - S_HEADER_BYTES;
    if (block_cap > INT_MAX)
        block_cap = INT_MAX;
    int block_len = LZ4_compress_default((const char *)planes, (char *)dst + S_HEADER_BYTES,
                                         (int)plane_bytes, (int)block_cap);
    if (block_len <= 0)
        return SK2_ENOSPC;
    sk2_codec_put_le32(dst, (uint32_t)plane_bytes);
    *dst_len = S_HEADER_BYTES + (size_t)block_len;
    return 0;
}

static int s_decode(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                    uint8_t *pixels)
{
    if (shape->width % 2 != 0)
        return SK2_EUNSUPPORTED;
    size_t count = (size_t)shape->width * shape->height;
    size_t plane_bytes = s_plane_bytes(count);
    /* The declared length is the only size in the format: it must be exactly what this frame
     * needs, which also checks the geometry and keeps the scratch at the caller's size. */
    if (src_len < S_HEADER_BYTES || sk2_codec_get_le32(src) != plane_bytes)
        return SK2_ECORRUPT;
    size_t block_len = src_len - S_HEADER_BYTES;
    if (block_len > INT_MAX)
        return SK2_ECORRUPT;
    uint8_t *planes = s_scratch(plane_bytes);
    if (!planes)
        return SK2_ENOMEM;
    /* The safe decoder never reads past the block nor writes past plane_bytes; a block that
     * ends early (truncated, or a shorter image) yields fewer bytes and is refused too. */
    int got = LZ4_decompress_safe((const char *)src + S_HEADER_BYTES, (char *)planes,
                                  (int)block_len, (int)plane_bytes);
    if (got < 0 || (size_t)got != plane_bytes)
        return SK2_ECORRUPT;
    s_join_planes(planes, planes + count, count, (uint16_t *)(void *)pixels);
    return 0;
}

const struct sk2_codec sk2_codec_depth12 = {
    .name = SK2_CODEC_DEPTH12,
    .description = "streamkinect2 v1 depth: low 12 bits in two planes, LZ4; lossy from 4096 mm",
    .is_lossless = false,
    .formats = SK2_CODEC_FORMAT_BIT(SK2_PIXEL_DEPTH_MM16) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_GRAY16),
    .bound = s_bound,
    .encode = s_encode,
    .decode = s_decode,
};
