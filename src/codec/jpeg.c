/* jpeg: lossy colour through libjpeg-turbo's TurboJPEG API, for rgb24 and bgra32 frames.
 *
 * The payload is a baseline JFIF stream as libjpeg-turbo writes it: 4:2:0 chroma subsampling,
 * the caller's quality (default SK2_CODEC_DEFAULT_QUALITY). Any JPEG decoder reads it. The
 * decoder takes any JPEG whose width and height are the frame's (grayscale comes back as
 * equal R, G and B; the alpha of bgra32 as 0xff), and refuses anything libjpeg-turbo warns
 * about (a truncated stream would otherwise decode as grey), and progressive streams with
 * more than 500 scans, whose decoding time has no useful limit otherwise.
 *
 * A TurboJPEG handle per call costs a few microseconds against milliseconds of coding, and
 * keeps the codec free of shared state. */
#include <limits.h>
#include <string.h>

#include <turbojpeg.h>

#include "codec/codec_impl.h"
#include "sk2/error.h"

#define S_SUBSAMPLING TJSAMP_420

static int s_pixel_format(sk2_pixel_format_t format)
{
    return format == SK2_PIXEL_BGRA32 ? TJPF_BGRA : TJPF_RGB;
}

static size_t s_bound(const sk2_codec_shape_t *shape)
{
    /* 4:4:4 needs the most room; the frame limits keep this far below ULONG_MAX. */
    return (size_t)tjBufSize((int)shape->width, (int)shape->height, TJSAMP_444);
}

static int s_encode(const sk2_codec_shape_t *shape, const sk2_codec_params_t *params,
                    const uint8_t *pixels, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    tjhandle handle = tjInitCompress();
    if (!handle)
        return SK2_ENOMEM;
    unsigned char *jpeg = NULL;
    unsigned long jpeg_len = 0;
    int rc = 0;
    /* libjpeg-turbo grows its own buffer; the copy into dst costs little next to the DCT and
     * lets a dst below the bound work whenever the image fits. */
    if (tjCompress2(handle, pixels, (int)shape->width, 0, (int)shape->height,
                    s_pixel_format(shape->format), &jpeg, &jpeg_len, S_SUBSAMPLING, params->quality,
                    0) != 0) {
        rc = SK2_ENOMEM;
        goto out;
    }
    if (jpeg_len > dst_cap) {
        rc = SK2_ENOSPC;
        goto out;
    }
    memcpy(dst, jpeg, jpeg_len);
    *dst_len = jpeg_len;
out:
    tjFree(jpeg);
    tjDestroy(handle);
    return rc;
}

static int s_decode(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                    uint8_t *pixels)
{
    if (src_len == 0 || src_len > ULONG_MAX)
        return SK2_ECORRUPT;
    tjhandle handle = tjInitDecompress();
    if (!handle)
        return SK2_ENOMEM;
    int rc = 0;
    int width, height, subsampling, colorspace;
    if (tjDecompressHeader3(handle, src, (unsigned long)src_len, &width, &height, &subsampling,
                            &colorspace) != 0 ||
        width != (int)shape->width || height != (int)shape->height) {
        rc = SK2_ECORRUPT;
        goto out;
    }
    if (tjDecompress2(handle, src, (unsigned long)src_len, pixels, width, 0, height,
                      s_pixel_format(shape->format), TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
        rc = SK2_ECORRUPT;
out:
    tjDestroy(handle);
    return rc;
}

const struct sk2_codec sk2_codec_jpeg = {
    .name = SK2_CODEC_JPEG,
    .description = "JPEG (libjpeg-turbo, 4:2:0) for colour; lossy, --quality 1..100",
    .is_lossless = false,
    .has_quality = true,
    .formats = SK2_CODEC_FORMAT_BIT(SK2_PIXEL_RGB24) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_BGRA32),
    .bound = s_bound,
    .encode = s_encode,
    .decode = s_decode,
};
