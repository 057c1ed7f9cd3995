/* png: lossless PNG through libpng, for colour (rgb24, bgra32) and 16-bit depth and IR.
 *
 * The payload is a complete PNG file that any PNG reader opens: 8-bit RGB for rgb24, 8-bit
 * RGBA for bgra32 (the bytes reordered, alpha kept), 16-bit grayscale for depth_mm16 and
 * gray16 (PNG stores samples big-endian). The encoder is set for speed, because the server may
 * run it per frame: one fixed filter instead of libpng's per-row search, and zlib's run-length
 * strategy instead of its string matching (docs/codecs.md has the measurements).
 *
 * The decoder takes any PNG whose width, height, bit depth and colour type are exactly what
 * the frame it fills needs (interlaced or not), and nothing else: no conversions, which would
 * make a stream of another format decode to plausible pixels. It refuses anything libpng
 * warns about or calls a benign error (a bad CRC, extra image data), and bytes after IEND.
 * Before libpng allocates anything for an image, its limits are set to the frame's size, and
 * ancillary chunks are capped in size and number.
 *
 * libpng reports errors by longjmp. Each setjmp sits in a function of its own (s_write_png,
 * s_read_png) that changes no local object after it, so the objects the callbacks change
 * belong to the caller and keep their values (C11 7.13.2.1); the caller frees libpng's
 * structures on every path. */
#include <png.h>
#include <setjmp.h>
#include <string.h>
#include <zlib.h>

#include "codec/codec_impl.h"
#include "sk2/error.h"

/* Paeth on every row, then zlib's Z_RLE (matches at distance 1 only) at level 1. After the
 * Paeth filter an image is mostly small residuals and runs, which Huffman coding and runs
 * capture; string matching adds little to that and costs most of the time. Measured against
 * libpng's defaults (per-row filter search, level 6): a quarter of the encoding time on 1080p
 * colour and a fifth on depth, for a ratio 5% (colour) to 10% (depth) lower, and higher on a
 * photograph. */
#define S_FILTER     PNG_FILTER_PAETH
#define S_STRATEGY   Z_RLE
#define S_ZLIB_LEVEL 1
/* Compressed bytes per IDAT chunk: larger than libpng's 8 KiB, so fewer chunk headers. */
#define S_IDAT_SIZE 65536u
/* The largest ancillary chunk the decoder reads, and how many it keeps; sk2 writes none. */
#define S_CHUNK_MAX   65536u
#define S_CHUNK_CACHE 16u

static const uint8_t s_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static bool s_host_is_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* The PNG bit depth and colour type that hold `format` without loss. */
static void s_png_layout(sk2_pixel_format_t format, int *bit_depth, int *color_type)
{
    switch (format) {
    case SK2_PIXEL_RGB24:
        *bit_depth = 8;
        *color_type = PNG_COLOR_TYPE_RGB;
        break;
    case SK2_PIXEL_BGRA32:
        *bit_depth = 8;
        *color_type = PNG_COLOR_TYPE_RGB_ALPHA;
        break;
    default: /* depth_mm16, gray16: the registry lets no other format through */
        *bit_depth = 16;
        *color_type = PNG_COLOR_TYPE_GRAY;
        break;
    }
}

/* Asks libpng for the byte order and channel order of `format`'s frames. */
static void s_set_transforms(png_structp png, sk2_pixel_format_t format)
{
    int bit_depth, color_type;
    s_png_layout(format, &bit_depth, &color_type);
    if (bit_depth == 16 && s_host_is_little_endian())
        png_set_swap(png);
    if (format == SK2_PIXEL_BGRA32)
        png_set_bgr(png);
}

static void s_on_error(png_structp png, png_const_charp message)
{
    (void)message;
    png_longjmp(png, 1);
}

static void s_ignore_warning(png_structp png, png_const_charp message)
{
    (void)png;
    (void)message;
}

/* Decoding: a warning means damage libpng would otherwise work around. */
static void s_warning_is_error(png_structp png, png_const_charp message)
{
    s_on_error(png, message);
}

/* ---- Encoding ------------------------------------------------------------------------------ */

static size_t s_bound(const sk2_codec_shape_t *shape)
{
    /* The filtered image: a filter byte before each row. */
    size_t image =
        (size_t)shape->height * (1 + (size_t)shape->width * sk2_pixel_format_bytes(shape->format));
    /* zlib's bound for any level and window (deflateBound's fallback), plus its 2-byte header
     * and Adler-32; then a 12-byte header and CRC per IDAT chunk, the signature, IHDR (25
     * bytes) and IEND (12). */
    size_t zlib = image + (image + 7) / 8 + (image + 63) / 64 + 5 + 6;
    size_t chunks = zlib / S_IDAT_SIZE + 1;
    return sizeof s_signature + 25 + zlib + 12 * chunks + 12;
}

/* Where the encoder writes: the caller's buffer, never beyond its capacity. */
typedef struct {
    uint8_t *dst;
    size_t cap; /* bytes */
    size_t len; /* bytes written so far */
    bool is_full;
} s_sink_t;

static void s_write(png_structp png, png_bytep data, size_t length)
{
    s_sink_t *sink = png_get_io_ptr(png);
    if (length > sink->cap - sink->len) {
        sink->is_full = true;
        png_error(png, "output buffer full");
    }
    memcpy(sink->dst + sink->len, data, length);
    sink->len += length;
}

static void s_flush(png_structp png)
{
    (void)png;
}

/* Writes the image through libpng into the sink already set on `png`. Returns 0, or -1 when
 * libpng gave up (the sink says whether for lack of room). */
static int s_write_png(png_structp png, png_infop info, const sk2_codec_shape_t *shape,
                       const uint8_t *pixels)
{
    if (setjmp(png_jmpbuf(png)))
        return -1;
    int bit_depth, color_type;
    s_png_layout(shape->format, &bit_depth, &color_type);
    png_set_IHDR(png, info, shape->width, shape->height, bit_depth, color_type, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_compression_level(png, S_ZLIB_LEVEL);
    png_set_compression_strategy(png, S_STRATEGY);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, S_FILTER);
    png_set_compression_buffer_size(png, S_IDAT_SIZE);
    png_write_info(png, info);
    s_set_transforms(png, shape->format);
    size_t stride = (size_t)shape->width * sk2_pixel_format_bytes(shape->format);
    /* libpng filters a copy of each row, so the caller's pixels are only read. */
    for (uint32_t y = 0; y < shape->height; y++)
        png_write_row(png, pixels + (size_t)y * stride);
    png_write_end(png, NULL);
    return 0;
}

static int s_encode(const sk2_codec_shape_t *shape, const sk2_codec_params_t *params,
                    const uint8_t *pixels, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    (void)params;
    s_sink_t sink = {.dst = dst, .cap = dst_cap};
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, s_on_error, s_ignore_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return SK2_ENOMEM;
    }
    png_set_write_fn(png, &sink, s_write, s_flush);
    int rc = s_write_png(png, info, shape, pixels);
    png_destroy_write_struct(&png, &info);
    if (rc != 0)
        return sink.is_full ? SK2_ENOSPC : SK2_ENOMEM;
    *dst_len = sink.len;
    return 0;
}

/* ---- Decoding ------------------------------------------------------------------------------ */

/* What the decoder reads from: the payload, never beyond its end. */
typedef struct {
    const uint8_t *src;
    size_t len; /* bytes */
    size_t pos; /* bytes read so far */
} s_source_t;

static void s_read(png_structp png, png_bytep data, size_t length)
{
    s_source_t *source = png_get_io_ptr(png);
    if (length > source->len - source->pos)
        png_error(png, "truncated");
    memcpy(data, source->src + source->pos, length);
    source->pos += length;
}

/* Reads the image through libpng from the source already set on `png` into `pixels`, after
 * checking that it is exactly the frame's. Returns 0 or SK2_ECORRUPT. */
static int s_read_png(png_structp png, png_infop info, const sk2_codec_shape_t *shape,
                      uint8_t *pixels)
{
    if (setjmp(png_jmpbuf(png)))
        return SK2_ECORRUPT;
    png_read_info(png, info);
    png_uint_32 width, height;
    int bit_depth, color_type, interlace, want_depth, want_type;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    s_png_layout(shape->format, &want_depth, &want_type);
    if (width != shape->width || height != shape->height || bit_depth != want_depth ||
        color_type != want_type)
        return SK2_ECORRUPT;
    s_set_transforms(png, shape->format);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t stride = (size_t)shape->width * sk2_pixel_format_bytes(shape->format);
    if (png_get_rowbytes(png, info) != stride)
        return SK2_ECORRUPT;
    /* An interlaced image's later passes fill in the rows of the earlier ones in place. */
    for (int pass = 0; pass < passes; pass++)
        for (uint32_t y = 0; y < shape->height; y++)
            png_read_row(png, pixels + (size_t)y * stride, NULL);
    png_read_end(png, NULL);
    return 0;
}

static int s_decode(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                    uint8_t *pixels)
{
    if (src_len < sizeof s_signature || memcmp(src, s_signature, sizeof s_signature) != 0)
        return SK2_ECORRUPT;
    s_source_t source = {.src = src, .len = src_len, .pos = sizeof s_signature};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, s_on_error, s_warning_is_error);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return SK2_ENOMEM;
    }
    /* Limits first: libpng checks IHDR against them before it allocates for the image. */
    png_set_user_limits(png, shape->width, shape->height);
    png_set_chunk_malloc_max(png, S_CHUNK_MAX);
    png_set_chunk_cache_max(png, S_CHUNK_CACHE);
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, 0);
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_set_benign_errors(png, 0);
    png_set_read_fn(png, &source, s_read);
    png_set_sig_bytes(png, sizeof s_signature);
    int rc = s_read_png(png, info, shape, pixels);
    png_destroy_read_struct(&png, &info, NULL);
    if (rc == 0 && source.pos != source.len)
        rc = SK2_ECORRUPT; /* bytes after IEND */
    return rc;
}

const struct sk2_codec sk2_codec_png = {
    .name = SK2_CODEC_PNG,
    .description =
        "PNG (libpng, Paeth + zlib RLE) for colour and 16-bit depth/IR; lossless, any reader",
    .is_lossless = true,
    .formats = SK2_CODEC_FORMAT_BIT(SK2_PIXEL_RGB24) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_BGRA32) |
               SK2_CODEC_FORMAT_BIT(SK2_PIXEL_DEPTH_MM16) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_GRAY16),
    .bound = s_bound,
    .encode = s_encode,
    .decode = s_decode,
};
