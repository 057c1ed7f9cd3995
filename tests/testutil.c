/* Helpers shared by the test programs. */
#include <stdio.h>
#include <stdlib.h>

#include <png.h>

#include "testutil.h"

uint8_t *testutil_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)n + 1);
            if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else if (buf) {
                *size = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

const char *testutil_data_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", SK2_TEST_DATA_DIR, name);
    return path;
}

void testutil_fill_noise(sk2_frame_t *frame, uint32_t seed, uint16_t max)
{
    uint16_t *px = sk2_frame_data16(frame);
    size_t n = (size_t)sk2_frame_width(frame) * sk2_frame_height(frame);
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; /* xorshift32: reproducible across platforms */
        x ^= x >> 17;
        x ^= x << 5;
        px[i] = (uint16_t)(x % ((uint32_t)max + 1));
    }
}

/* The libpng part of testutil_read_png16. libpng reports errors by longjmp to the setjmp
 * below; the only locals used after one (png, info) do not change after setjmp, and what was
 * allocated on the way is left in *frame and *row for the caller to free. */
static int s_png_decode(FILE *file, sk2_frame_t **frame, uint8_t **row)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_init_io(png, file);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info);
    png_uint_32 height = png_get_image_height(png, info);
    if (png_get_bit_depth(png, info) != 16 ||
        png_get_color_type(png, info) != PNG_COLOR_TYPE_GRAY ||
        png_get_interlace_type(png, info) != PNG_INTERLACE_NONE) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, height);
    *row = *frame ? malloc((size_t)width * 2) : NULL;
    if (!*row) {
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    uint16_t *px = sk2_frame_data16(*frame);
    for (png_uint_32 y = 0; y < height; y++) {
        png_read_row(png, *row, NULL);
        /* PNG stores 16-bit samples big-endian, whatever the host. */
        for (png_uint_32 x = 0; x < width; x++)
            px[(size_t)y * width + x] = (uint16_t)((*row)[2 * x] << 8 | (*row)[2 * x + 1]);
    }
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

int testutil_read_png16(const char *path, sk2_frame_t **frame)
{
    *frame = NULL;
    FILE *file = fopen(path, "rb");
    if (!file)
        return -1;
    sk2_frame_t *decoded = NULL;
    uint8_t *row = NULL;
    int rc = s_png_decode(file, &decoded, &row);
    fclose(file);
    free(row);
    if (rc == 0)
        *frame = decoded;
    else
        sk2_frame_destroy(&decoded);
    return rc;
}
