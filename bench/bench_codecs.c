/* Codec benchmark: sk2's depth codecs next to general-purpose and image references, on 16-bit
 * PNG depth frames given on the command line (default: the real Azure Kinect frames in
 * tests/data). Prints, per codec, the compression ratio over all files, encode and decode
 * speed in MB/s of raw 16-bit input (10^6 bytes; median of --reps runs over all files, one
 * thread) and whether every frame came back exactly; then sk2d against JPEG-LS per frame set,
 * since sk2d's target is to beat JPEG-LS on each. --json prints the same as one JSON object.
 *
 * References: LZ4 (LZ4_compress_default), zstd levels 1 and 3, blosc (byte shuffle, then lz4
 * or zstd, level 5, one thread), 16-bit PNG through libpng at zlib levels 6 (libpng's
 * default) and 1 (the fastest that compresses), JPEG-LS through CharLS (lossless, NEAR 0,
 * 16 bits a sample, CharLS's default parameters). */
#define _GNU_SOURCE
#include <getopt.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <blosc.h>
#include <charls/charls.h>
#include <lz4.h>
#include <png.h>
#include <zstd.h>

#include "sk2/sk2.h"

typedef struct {
    const char *path;
    const char *set; /* frame set for the per-set table */
    sk2_frame_t *frame;
    sk2_frame_t *back;
} input_t;

/* A codec under test: encode a frame into dst, decode into a frame of the same shape. Return 0
 * or non-zero on failure. `arg` picks a variant (level, sk2 codec). */
typedef struct {
    const char *name;
    const char *note;
    int (*encode)(const void *arg, const sk2_frame_t *in, uint8_t *dst, size_t cap, size_t *len);
    int (*decode)(const void *arg, const uint8_t *src, size_t len, sk2_frame_t *out);
    const void *arg;
} bench_codec_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- sk2's codecs ---- */

static int s_sk2_encode(const void *arg, const sk2_frame_t *in, uint8_t *dst, size_t cap,
                        size_t *len)
{
    return sk2_codec_encode(sk2_codec_find(arg), in, dst, cap, len);
}

static int s_sk2_decode(const void *arg, const uint8_t *src, size_t len, sk2_frame_t *out)
{
    return sk2_codec_decode(sk2_codec_find(arg), src, len, out);
}

/* ---- LZ4 and zstd on the raw little-endian pixels ---- */

static int s_lz4_encode(const void *arg, const sk2_frame_t *in, uint8_t *dst, size_t cap,
                        size_t *len)
{
    int n = LZ4_compress_default((const char *)sk2_frame_cdata(in), (char *)dst,
                                 (int)sk2_frame_size(in), (int)cap);
    *len = (size_t)n;
    return n <= 0;
}

static int s_lz4_decode(const void *arg, const uint8_t *src, size_t len, sk2_frame_t *out)
{
    int n = LZ4_decompress_safe((const char *)src, (char *)sk2_frame_data(out), (int)len,
                                (int)sk2_frame_size(out));
    return n != (int)sk2_frame_size(out);
}

static ZSTD_CCtx *s_zstd_c;
static ZSTD_DCtx *s_zstd_d;

static int s_zstd_encode(const void *arg, const sk2_frame_t *in, uint8_t *dst, size_t cap,
                         size_t *len)
{
    *len = ZSTD_compressCCtx(s_zstd_c, dst, cap, sk2_frame_cdata(in), sk2_frame_size(in),
                             *(const int *)arg);
    return ZSTD_isError(*len);
}

static int s_zstd_decode(const void *arg, const uint8_t *src, size_t len, sk2_frame_t *out)
{
    size_t n = ZSTD_decompressDCtx(s_zstd_d, sk2_frame_data(out), sk2_frame_size(out), src, len);
    return ZSTD_isError(n) || n != sk2_frame_size(out);
}

/* ---- blosc: shuffle the two bytes of each sample apart, then lz4 or zstd ---- */

static int s_blosc_encode(const void *arg, const sk2_frame_t *in, uint8_t *dst, size_t cap,
                          size_t *len)
{
    int n = blosc_compress_ctx(5, BLOSC_SHUFFLE, 2, sk2_frame_size(in), sk2_frame_cdata(in), dst,
                               cap, arg, 0, 1);
    *len = (size_t)n;
    return n <= 0;
}

static int s_blosc_decode(const void *arg, const uint8_t *src, size_t len, sk2_frame_t *out)
{
    int n = blosc_decompress_ctx(src, sk2_frame_data(out), sk2_frame_size(out), 1);
    return n != (int)sk2_frame_size(out);
}

/* ---- 16-bit grayscale PNG in memory ---- */

typedef struct {
    uint8_t *data;
    size_t cap, len;
    bool is_full;
} membuf_t;

static void s_png_write(png_structp png, png_bytep data, size_t n)
{
    membuf_t *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        m->is_full = true;
        return;
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void s_png_flush(png_structp png)
{
    (void)png;
}

static void s_png_read(png_structp png, png_bytep data, size_t n)
{
    membuf_t *m = png_get_io_ptr(png);
    if (m->len + n > m->cap)
        png_error(png, "truncated");
    memcpy(data, m->data + m->len, n);
    m->len += n;
}

static int s_png_encode(const void *arg, const sk2_frame_t *in, uint8_t *dst, size_t cap,
                        size_t *len)
{
    membuf_t m = {.data = dst, .cap = cap};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return 1;
    }
    png_set_write_fn(png, &m, s_png_write, s_png_flush);
    png_set_compression_level(png, *(const int *)arg);
    uint32_t w = sk2_frame_width(in), h = sk2_frame_height(in);
    png_set_IHDR(png, info, w, h, 16, PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_set_swap(png); /* host little-endian samples; PNG is big-endian */
    const uint16_t *px = sk2_frame_cdata16(in);
    for (uint32_t y = 0; y < h; y++)
        png_write_row(png, (png_const_bytep)(px + (size_t)y * w));
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *len = m.len;
    return m.is_full;
}

static int s_png_decode(const void *arg, const uint8_t *src, size_t len, sk2_frame_t *out)
{
    membuf_t m = {.data = (uint8_t *)src, .cap = len};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        return 1;
    }
    png_set_read_fn(png, &m, s_png_read);
    png_read_info(png, info);
    png_set_swap(png);
    uint32_t w = sk2_frame_width(out), h = sk2_frame_height(out);
    uint16_t *px = sk2_frame_data16(out);
    for (uint32_t y = 0; y < h; y++)
        png_read_row(png, (png_bytep)(px + (size_t)y * w), NULL);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* ---- JPEG-LS (CharLS) ---- */

static int s_jls_encode(const void *arg, const sk2_frame_t *in, uint8_t *dst, size_t cap,
                        size_t *len)
{
    charls_jpegls_encoder *e = charls_jpegls_encoder_create();
    charls_frame_info info = {.width = sk2_frame_width(in),
                              .height = sk2_frame_height(in),
                              .bits_per_sample = 16,
                              .component_count = 1};
    int rc =
        charls_jpegls_encoder_set_frame_info(e, &info) ||
        charls_jpegls_encoder_set_destination_buffer(e, dst, cap) ||
        charls_jpegls_encoder_encode_from_buffer(e, sk2_frame_cdata(in), sk2_frame_size(in), 0) ||
        charls_jpegls_encoder_get_bytes_written(e, len);
    charls_jpegls_encoder_destroy(e);
    return rc;
}

static int s_jls_decode(const void *arg, const uint8_t *src, size_t len, sk2_frame_t *out)
{
    charls_jpegls_decoder *d = charls_jpegls_decoder_create();
    int rc = charls_jpegls_decoder_set_source_buffer(d, src, len) ||
             charls_jpegls_decoder_read_header(d) ||
             charls_jpegls_decoder_decode_to_buffer(d, sk2_frame_data(out), sk2_frame_size(out), 0);
    charls_jpegls_decoder_destroy(d);
    return rc;
}

static const int s_levels[] = {1, 3, 6};

static const bench_codec_t s_codecs[] = {
    {"depth12", "12-bit: lossy from 4096 mm", s_sk2_encode, s_sk2_decode, "depth12"},
    {"raw", "", s_sk2_encode, s_sk2_decode, "raw"},
    {"rvl", "", s_sk2_encode, s_sk2_decode, "rvl"},
    {"sk2d", "", s_sk2_encode, s_sk2_decode, "sk2d"},
    {"png", "sk2's png: Paeth, zlib RLE", s_sk2_encode, s_sk2_decode, "png"},
    {"lz4", "LZ4_compress_default", s_lz4_encode, s_lz4_decode, NULL},
    {"zstd-1", "", s_zstd_encode, s_zstd_decode, &s_levels[0]},
    {"zstd-3", "", s_zstd_encode, s_zstd_decode, &s_levels[1]},
    {"blosc-lz4", "shuffle, level 5", s_blosc_encode, s_blosc_decode, "lz4"},
    {"blosc-zstd", "shuffle, level 5", s_blosc_encode, s_blosc_decode, "zstd"},
    {"png-6", "libpng, zlib level 6 (default)", s_png_encode, s_png_decode, &s_levels[2]},
    {"png-1", "libpng, zlib level 1 (fastest)", s_png_encode, s_png_decode, &s_levels[0]},
    {"jpeg-ls", "CharLS, lossless", s_jls_encode, s_jls_decode, NULL},
};
#define S_CODECS (sizeof s_codecs / sizeof s_codecs[0])

typedef struct {
    double ratio, encode_mb_s, decode_mb_s;
    bool is_exact, has_failed;
    size_t *sizes; /* encoded bytes per input */
} result_t;

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void s_run(const bench_codec_t *codec, input_t *inputs, size_t n, int reps, uint8_t **bufs,
                  size_t cap, result_t *r)
{
    double *enc = calloc((size_t)reps, sizeof *enc), *dec = calloc((size_t)reps, sizeof *dec);
    size_t raw = 0, packed = 0;
    r->is_exact = true;
    for (int rep = 0; rep < reps && !r->has_failed; rep++) {
        double t0 = s_now();
        for (size_t i = 0; i < n && !r->has_failed; i++)
            r->has_failed |=
                codec->encode(codec->arg, inputs[i].frame, bufs[i], cap, &r->sizes[i]) != 0;
        double t1 = s_now();
        for (size_t i = 0; i < n && !r->has_failed; i++)
            r->has_failed |= codec->decode(codec->arg, bufs[i], r->sizes[i], inputs[i].back) != 0;
        double t2 = s_now();
        enc[rep] = t1 - t0;
        dec[rep] = t2 - t1;
    }
    for (size_t i = 0; i < n; i++) {
        raw += sk2_frame_size(inputs[i].frame);
        packed += r->sizes[i];
        r->is_exact &= memcmp(sk2_frame_cdata(inputs[i].frame), sk2_frame_cdata(inputs[i].back),
                              sk2_frame_size(inputs[i].frame)) == 0;
    }
    qsort(enc, (size_t)reps, sizeof *enc, s_cmp_double);
    qsort(dec, (size_t)reps, sizeof *dec, s_cmp_double);
    r->ratio = packed ? (double)raw / (double)packed : 0;
    r->encode_mb_s = (double)raw / enc[reps / 2] / 1e6;
    r->decode_mb_s = (double)raw / dec[reps / 2] / 1e6;
    free(enc);
    free(dec);
}

/* ---- Input ---- */

/* The scene of the six Azure Kinect test frames; any other file is a set of its own. */
static const char *s_set_of(const char *path)
{
    static const char *const scenes[] = {"room", "room", "ceiling", "ceiling", "person", "person"};
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int index;
    char tail[8];
    if (sscanf(base, "frame_%3d.%7s", &index, tail) == 2 && strcmp(tail, "png") == 0 &&
        index >= 0 && index < 6)
        return scenes[index];
    return base;
}

static void s_cpu_model(char *out, size_t size)
{
    snprintf(out, size, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
            snprintf(out, size, "%s", strchr(line, ':') + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

static void s_usage(FILE *out)
{
    fprintf(out, "usage: bench_codecs [--reps N] [--json] [FILE.png ...]\n"
                 "  16-bit grayscale PNGs; default: the Azure Kinect frames in tests/data\n");
}

int main(int argc, char **argv)
{
    int reps = 15;
    bool is_json = false;
    static const struct option options[] = {{"reps", required_argument, NULL, 'r'},
                                            {"json", no_argument, NULL, 'j'},
                                            {"help", no_argument, NULL, 'h'},
                                            {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "r:jh", options, NULL)) != -1) {
        if (opt == 'r' && atoi(optarg) >= 1 && atoi(optarg) <= 100000) {
            reps = atoi(optarg);
        } else if (opt == 'j') {
            is_json = true;
        } else if (opt == 'h') {
            s_usage(stdout);
            return 0;
        } else {
            s_usage(stderr);
            return 2;
        }
    }
    glob_t found = {0};
    char **paths = argv + optind;
    size_t n = (size_t)(argc - optind);
    if (n == 0) {
        glob(SK2_BENCH_DATA_DIR "/depth/azure_kinect/*.png", 0, NULL, &found);
        paths = found.gl_pathv;
        n = found.gl_pathc;
    }
    if (n == 0) {
        fprintf(stderr, "bench_codecs: no input files\n");
        return 1;
    }
    input_t *inputs = calloc(n, sizeof *inputs);
    uint8_t **bufs = calloc(n, sizeof *bufs);
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        inputs[i].path = paths[i];
        inputs[i].set = s_set_of(paths[i]);
        char why[256] = "";
        if (sk2_frame_read_png(paths[i], SK2_PIXEL_DEPTH_MM16, &inputs[i].frame, why, sizeof why) !=
                0 ||
            sk2_frame_format(inputs[i].frame) != SK2_PIXEL_DEPTH_MM16) {
            fprintf(stderr, "bench_codecs: %s: %s\n", paths[i],
                    why[0] ? why : "not a 16-bit grayscale PNG");
            sk2_frame_destroy(&inputs[i].frame);
            return 1;
        }
        inputs[i].back = sk2_frame_dup(inputs[i].frame);
        size_t need = 2 * sk2_frame_size(inputs[i].frame) + 65536;
        cap = need > cap ? need : cap;
    }
    for (size_t i = 0; i < n; i++)
        bufs[i] = malloc(cap);
    s_zstd_c = ZSTD_createCCtx();
    s_zstd_d = ZSTD_createDCtx();
    blosc_init();

    result_t results[S_CODECS];
    for (size_t c = 0; c < S_CODECS; c++) {
        results[c] = (result_t){.sizes = calloc(n, sizeof(size_t))};
        s_run(&s_codecs[c], inputs, n, reps, bufs, cap, &results[c]);
    }

    char cpu[256];
    s_cpu_model(cpu, sizeof cpu);
    size_t sk2d = 3, jls = S_CODECS - 1;
    if (is_json) {
        printf("{\"cpu\": \"%s\", \"reps\": %d, \"files\": [", cpu, reps);
        for (size_t i = 0; i < n; i++)
            printf("%s\"%s\"", i ? ", " : "", inputs[i].path);
        printf("], \"codecs\": [");
        for (size_t c = 0; c < S_CODECS; c++)
            printf("%s{\"name\": \"%s\", \"ratio\": %.3f, \"encode_mb_s\": %.1f, "
                   "\"decode_mb_s\": %.1f, \"exact\": %s, \"failed\": %s, \"note\": \"%s\"}",
                   c ? ", " : "", s_codecs[c].name, results[c].ratio, results[c].encode_mb_s,
                   results[c].decode_mb_s, results[c].is_exact ? "true" : "false",
                   results[c].has_failed ? "true" : "false", s_codecs[c].note);
        printf("], \"sets\": [");
    } else {
        printf("CPU: %s; one thread; %zu file(s); median of %d runs\n"
               "MB = 10^6 bytes of raw 16-bit input\n\n",
               cpu, n, reps);
        printf("| codec | ratio | encode MB/s | decode MB/s | exact | note |\n"
               "| --- | ---: | ---: | ---: | --- | --- |\n");
        for (size_t c = 0; c < S_CODECS; c++)
            printf("| %s | %.2f | %.0f | %.0f | %s | %s |\n", s_codecs[c].name, results[c].ratio,
                   results[c].encode_mb_s, results[c].decode_mb_s,
                   results[c].has_failed ? "FAILED"
                   : results[c].is_exact ? "yes"
                                         : "no",
                   s_codecs[c].note);
        printf("\n| frame set | sk2d ratio | JPEG-LS ratio | sk2d / JPEG-LS |\n"
               "| --- | ---: | ---: | ---: |\n");
    }
    /* Per set, in the order sets first appear. */
    bool *is_done = calloc(n, sizeof *is_done);
    int printed = 0;
    for (size_t i = 0; i < n; i++) {
        if (is_done[i])
            continue;
        size_t raw = 0, a = 0, b = 0;
        for (size_t j = i; j < n; j++) {
            if (strcmp(inputs[j].set, inputs[i].set) != 0)
                continue;
            is_done[j] = true;
            raw += sk2_frame_size(inputs[j].frame);
            a += results[sk2d].sizes[j];
            b += results[jls].sizes[j];
        }
        double ra = (double)raw / (double)a, rb = (double)raw / (double)b;
        if (is_json)
            printf("%s{\"set\": \"%s\", \"sk2d_ratio\": %.3f, \"jpegls_ratio\": %.3f}",
                   printed++ ? ", " : "", inputs[i].set, ra, rb);
        else
            printf("| %s | %.2f | %.2f | %.2f |\n", inputs[i].set, ra, rb, ra / rb);
    }
    if (is_json)
        printf("]}\n");
    free(is_done);
    for (size_t c = 0; c < S_CODECS; c++)
        free(results[c].sizes);
    for (size_t i = 0; i < n; i++) {
        free(bufs[i]);
        sk2_frame_destroy(&inputs[i].frame);
        sk2_frame_destroy(&inputs[i].back);
    }
    free(bufs);
    free(inputs);
    globfree(&found);
    ZSTD_freeCCtx(s_zstd_c);
    ZSTD_freeDCtx(s_zstd_d);
    blosc_destroy();
    return 0;
}
