/* The gateway's images for people and programs. libpng writes into a blob through a write
 * callback; errors come back by longjmp to the setjmp in gw_image_png, after which only
 * variables that did not change since the setjmp are used. The colour map is a handful of
 * stops with linear steps between them: cheap per pixel, and easy to repeat exactly in the
 * page's JavaScript. */
#include "gateway/image.h"

#include <math.h>
#include <png.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

/* Near to far: red, orange, yellow, green, cyan, blue, dark blue (web/app.js: STOPS). */
static const uint8_t s_stops[][3] = {
    {200, 30, 30},  {245, 130, 30}, {240, 220, 50}, {80, 200, 90},
    {40, 190, 220}, {40, 90, 220},  {40, 30, 120},
};
#define S_STOP_COUNT (sizeof s_stops / sizeof s_stops[0])
/* One entry per 1/1024 of the range. */
#define S_LUT_SIZE 1024

static uint8_t s_lut[S_LUT_SIZE][3];
static pthread_once_t s_lut_once = PTHREAD_ONCE_INIT;

static void s_lut_build(void)
{
    for (int i = 0; i < S_LUT_SIZE; i++) {
        double t = (double)i / (S_LUT_SIZE - 1) * (S_STOP_COUNT - 1);
        int k = (int)t;
        if (k >= (int)S_STOP_COUNT - 1)
            k = (int)S_STOP_COUNT - 2;
        double f = t - k;
        for (int c = 0; c < 3; c++)
            s_lut[i][c] = (uint8_t)lround(s_stops[k][c] * (1 - f) + s_stops[k + 1][c] * f);
    }
}

void gw_image_range(const uint16_t *pixels, size_t n, uint16_t *min, uint16_t *max)
{
    uint16_t lo = UINT16_MAX, hi = 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t v = pixels[i];
        if (v == 0)
            continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    *min = hi ? lo : 0;
    *max = hi;
}

void gw_image_colormap(const uint16_t *depth, size_t n, uint16_t min_mm, uint16_t max_mm,
                       uint8_t *rgb)
{
    pthread_once(&s_lut_once, s_lut_build);
    uint32_t span = max_mm > min_mm ? (uint32_t)(max_mm - min_mm) : 1;
    for (size_t i = 0; i < n; i++, rgb += 3) {
        uint16_t d = depth[i];
        if (d == 0) {
            rgb[0] = rgb[1] = rgb[2] = 0;
            continue;
        }
        uint32_t off = d <= min_mm ? 0 : d >= max_mm ? span : (uint32_t)(d - min_mm);
        const uint8_t *c = s_lut[(uint64_t)off * (S_LUT_SIZE - 1) / span];
        rgb[0] = c[0];
        rgb[1] = c[1];
        rgb[2] = c[2];
    }
}

void gw_image_ir(const uint16_t *ir, size_t n, uint16_t max, uint8_t *rgb)
{
    double scale = max ? 1.0 / max : 0;
    for (size_t i = 0; i < n; i++, rgb += 3) {
        uint8_t g = (uint8_t)lround(255.0 * sqrt(ir[i] * scale));
        rgb[0] = rgb[1] = rgb[2] = g;
    }
}

uint8_t *gw_image_shrink(const uint8_t *rgb, uint32_t width, uint32_t height, uint32_t max_width,
                         uint32_t *out_width, uint32_t *out_height)
{
    uint32_t factor = 1;
    while (width / factor > max_width && width / (factor + 1) > 0)
        factor++;
    uint32_t ow = width / factor, oh = height / factor;
    if (ow == 0 || oh == 0)
        return NULL;
    uint8_t *out = malloc((size_t)ow * oh * 3);
    if (!out)
        return NULL;
    uint32_t area = factor * factor;
    for (uint32_t y = 0; y < oh; y++) {
        for (uint32_t x = 0; x < ow; x++) {
            uint32_t sum[3] = {0, 0, 0};
            for (uint32_t dy = 0; dy < factor; dy++) {
                const uint8_t *src = rgb + (((size_t)(y * factor + dy) * width) + x * factor) * 3;
                for (uint32_t dx = 0; dx < factor; dx++, src += 3) {
                    sum[0] += src[0];
                    sum[1] += src[1];
                    sum[2] += src[2];
                }
            }
            uint8_t *dst = out + ((size_t)y * ow + x) * 3;
            for (int c = 0; c < 3; c++)
                dst[c] = (uint8_t)(sum[c] / area);
        }
    }
    *out_width = ow;
    *out_height = oh;
    return out;
}

static bool s_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

typedef struct {
    gw_blob_t *blob;
    bool has_failed;
} s_png_sink_t;

static void s_png_write(png_structp png, png_bytep data, size_t len)
{
    s_png_sink_t *sink = png_get_io_ptr(png);
    if (sink->has_failed || gw_blob_reserve(sink->blob, sink->blob->len + len) != 0) {
        sink->has_failed = true;
        png_error(png, "out of memory");
    }
    memcpy(sink->blob->data + sink->blob->len, data, len);
    sink->blob->len += len;
}

static void s_png_flush(png_structp png)
{
    (void)png;
}

static void s_png_on_error(png_structp png, png_const_charp message)
{
    (void)message;
    png_longjmp(png, 1);
}

static void s_png_on_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

int gw_image_png(const void *pixels, uint32_t width, uint32_t height, int channels,
                 gw_blob_t **blob)
{
    size_t stride = (size_t)width * (channels == 1 ? 2 : 3);
    if (!*blob && !(*blob = gw_blob_new(stride * height / 2 + 1024)))
        return -1;
    s_png_sink_t sink = {.blob = *blob};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, s_png_on_error, s_png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return -1;
    }
    png_set_write_fn(png, &sink, s_png_write, s_png_flush);
    png_set_compression_level(png, 1);
    /* Sub alone: most of what the default filter search gains on depth, at a fraction of
     * the time. */
    png_set_filter(png, 0, PNG_FILTER_SUB);
    png_set_IHDR(png, info, width, height, channels == 1 ? 16 : 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (channels == 1 && s_is_little_endian())
        png_set_swap(png);
    const uint8_t *row = pixels;
    for (uint32_t y = 0; y < height; y++, row += stride)
        png_write_row(png, (png_const_bytep)row);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

int gw_image_jpeg(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                  gw_blob_t **blob)
{
    tjhandle handle = tjInitCompress();
    if (!handle)
        return -1;
    unsigned char *jpeg = NULL;
    unsigned long jpeg_len = 0;
    int rc = -1;
    if (tjCompress2(handle, rgb, (int)width, 0, (int)height, TJPF_RGB, &jpeg, &jpeg_len, TJSAMP_420,
                    quality, TJFLAG_FASTDCT) != 0)
        goto out;
    if (!*blob && !(*blob = gw_blob_new(jpeg_len)))
        goto out;
    if (gw_blob_reserve(*blob, (*blob)->len + jpeg_len) != 0)
        goto out;
    memcpy((*blob)->data + (*blob)->len, jpeg, jpeg_len);
    (*blob)->len += jpeg_len;
    rc = 0;
out:
    tjFree(jpeg);
    tjDestroy(handle);
    return rc;
}
