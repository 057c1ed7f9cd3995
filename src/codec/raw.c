/* raw: the pixels as they are, for links where compression costs more time than it saves
 * (the same host, 10 GbE).
 *
 * No header: the receiver knows format and geometry from elsewhere, and the length must be
 * exactly width * height * bytes per pixel. 16-bit samples travel little-endian whatever the
 * host, like every other number in sk2's formats; on a little-endian host that is one memcpy
 * each way. */
#include <string.h>

#include "codec/codec_impl.h"
#include "sk2/error.h"

static size_t s_bound(const sk2_codec_shape_t *shape)
{
    return (size_t)shape->width * shape->height * sk2_pixel_format_bytes(shape->format);
}

/* Compilers fold this to a constant. */
static bool s_host_is_big_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 0;
}

/* Copies `size` bytes of pixels, swapping each 16-bit sample on a big-endian host. */
static void s_copy(const sk2_codec_shape_t *shape, const uint8_t *src, uint8_t *dst, size_t size)
{
    if (sk2_pixel_format_bytes(shape->format) == 2 && s_host_is_big_endian()) {
        for (size_t i = 0; i < size; i += 2) {
            dst[i] = src[i + 1];
            dst[i + 1] = src[i];
        }
        return;
    }
    memcpy(dst, src, size);
}

static int s_encode(const sk2_codec_shape_t *shape, const sk2_codec_params_t *params,
                    const uint8_t *pixels, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    size_t size = s_bound(shape);
    if (dst_cap < size)
        return SK2_ENOSPC;
    s_copy(shape, pixels, dst, size);
    *dst_len = size;
    return 0;
}

static int s_decode(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                    uint8_t *pixels)
{
    size_t size = s_bound(shape);
    if (src_len != size)
        return SK2_ECORRUPT;
    s_copy(shape, src, pixels, size);
    return 0;
}

const struct sk2_codec sk2_codec_raw = {
    .name = SK2_CODEC_RAW,
    .description = "uncompressed pixels, 16-bit samples little-endian; for the same host or 10 GbE",
    .is_lossless = true,
    .formats = SK2_CODEC_FORMAT_BIT(SK2_PIXEL_DEPTH_MM16) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_GRAY16) |
               SK2_CODEC_FORMAT_BIT(SK2_PIXEL_RGB24) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_BGRA32),
    .bound = s_bound,
    .encode = s_encode,
    .decode = s_decode,
};
