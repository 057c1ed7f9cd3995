/* PNG reading and writing of frames, over libpng's classic API: the codec verbs' files and
 * TUM RGB-D folders. libpng reports errors by longjmp to the setjmp in each function; what must
 * be freed afterwards is kept in variables that do not change after the setjmp (or are
 * volatile). */
#include "sk2/image.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/error.h"

static bool s_host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

static void s_on_error(png_structp png, png_const_charp message)
{
    char *why = png_get_error_ptr(png);
    snprintf(why, 256, "%s", message);
    png_longjmp(png, 1);
}

static void s_on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

int sk2_frame_read_png(const char *path, sk2_pixel_format_t format16, sk2_frame_t **frame,
                       char *why, size_t why_size)
{
    if (!frame)
        return SK2_EINVAL;
    *frame = NULL;
    char error[256] = "";
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(why, why_size, "cannot open: %s", strerror(errno));
        return SK2_ESYS;
    }
    uint8_t signature[8];
    if (fread(signature, 1, 8, file) != 8 || png_sig_cmp(signature, 0, 8) != 0) {
        fclose(file);
        snprintf(why, why_size, "not a PNG file");
        return SK2_ECORRUPT;
    }
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, error, s_on_error, s_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    sk2_frame_t *volatile result = NULL;
    uint8_t *volatile row = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        sk2_frame_t *f = result;
        sk2_frame_destroy(&f);
        free(row);
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        snprintf(why, why_size, "bad PNG: %s", error[0] ? error : "out of memory");
        return SK2_ECORRUPT;
    }
    png_init_io(png, file);
    png_set_sig_bytes(png, 8);
    png_read_info(png, info);
    int depth = png_get_bit_depth(png, info);
    int type = png_get_color_type(png, info);
    uint32_t width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    sk2_pixel_format_t format;
    if (depth == 16 && type == PNG_COLOR_TYPE_GRAY)
        format = format16;
    else if (depth == 8 && type == PNG_COLOR_TYPE_RGB)
        format = SK2_PIXEL_RGB24;
    else if (depth == 8 && type == PNG_COLOR_TYPE_RGB_ALPHA)
        format = SK2_PIXEL_BGRA32;
    else {
        png_destroy_read_struct(&png, &info, NULL);
        fclose(file);
        snprintf(why, why_size,
                 "%d-bit %s PNG: sk2 takes 16-bit grayscale (depth, IR) or 8-bit RGB/RGBA "
                 "(colour)",
                 depth,
                 type == PNG_COLOR_TYPE_GRAY         ? "grayscale"
                 : type == PNG_COLOR_TYPE_GRAY_ALPHA ? "grayscale+alpha"
                 : type == PNG_COLOR_TYPE_PALETTE    ? "palette"
                 : type == PNG_COLOR_TYPE_RGB        ? "RGB"
                                                     : "RGBA");
        return SK2_EUNSUPPORTED;
    }
    if (depth == 16 && s_host_is_little_endian())
        png_set_swap(png); /* PNG is big-endian; frames hold host order */
    if (format == SK2_PIXEL_BGRA32)
        png_set_bgr(png);
    result = sk2_frame_new(format16 == SK2_PIXEL_GRAY16 && format == format16 ? SK2_STREAM_IR
                           : format == format16                               ? SK2_STREAM_DEPTH
                                                                              : SK2_STREAM_COLOR,
                           format, width, height);
    if (!result)
        png_error(png, "image larger than sk2's frame limits");
    size_t stride = sk2_frame_stride(result);
    int passes = png_set_interlace_handling(png);
    for (int pass = 0; pass < passes; pass++)
        for (uint32_t y = 0; y < height; y++)
            png_read_row(png, sk2_frame_data(result) + (size_t)y * stride, NULL);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    fclose(file);
    *frame = result;
    return 0;
}

int sk2_frame_write_png(const sk2_frame_t *frame, const char *path, int level, char *why,
                        size_t why_size)
{
    char error[256] = "";
    if (!frame || !path || level < 0 || level > 9) {
        snprintf(why, why_size, "no frame or path, or a zlib level outside 0..9");
        return SK2_EINVAL;
    }
    FILE *file = fopen(path, "wb");
    if (!file) {
        snprintf(why, why_size, "cannot create: %s", strerror(errno));
        return SK2_ESYS;
    }
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, error, s_on_error, s_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        fclose(file);
        snprintf(why, why_size, "cannot write PNG: %s", error[0] ? error : "out of memory");
        return SK2_ESYS;
    }
    png_init_io(png, file);
    png_set_compression_level(png, level);
    sk2_pixel_format_t format = sk2_frame_format(frame);
    int depth = sk2_pixel_format_bytes(format) == 2 ? 16 : 8;
    int type = format == SK2_PIXEL_RGB24    ? PNG_COLOR_TYPE_RGB
               : format == SK2_PIXEL_BGRA32 ? PNG_COLOR_TYPE_RGB_ALPHA
                                            : PNG_COLOR_TYPE_GRAY;
    png_set_IHDR(png, info, sk2_frame_width(frame), sk2_frame_height(frame), depth, type,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (depth == 16 && s_host_is_little_endian())
        png_set_swap(png);
    if (format == SK2_PIXEL_BGRA32)
        png_set_bgr(png);
    size_t stride = sk2_frame_stride(frame);
    for (uint32_t y = 0; y < sk2_frame_height(frame); y++)
        png_write_row(png, sk2_frame_cdata(frame) + (size_t)y * stride);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    if (fclose(file) != 0) {
        snprintf(why, why_size, "cannot write: %s", strerror(errno));
        return SK2_ESYS;
    }
    return 0;
}
