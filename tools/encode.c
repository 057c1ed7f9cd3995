/* sk2 encode: one PNG into one encoded frame in an SK2F file (docs/codecs.md). A 16-bit
 * grayscale PNG is a depth frame (or IR with --ir), 8-bit RGB or RGBA a colour frame. Refuses
 * what the codec cannot take, and depth12 on depths it would change unless --allow-lossy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#include "sk2/sk2.h"
#include "sk2f.h"

enum { OPT_ALLOW_LOSSY = 256, OPT_IR };

static void s_print_usage(void)
{
    printf("usage: sk2 encode --codec NAME [--quality Q] [--ir] [--allow-lossy] IN.png OUT\n"
           "\n"
           "Encode one PNG into one frame file (SK2F) with a codec; 'sk2 decode' turns it\n"
           "back. 16-bit grayscale PNGs are depth in mm (IR with --ir), 8-bit RGB or RGBA\n"
           "PNGs colour. 'sk2 codecs' lists the codecs and what they take.\n"
           "\n"
           "options:\n"
           "  -c, --codec NAME    codec to use (required)\n"
           "  -Q, --quality Q     1..100 for codecs with a quality (jpeg); default %d\n"
           "      --ir            a 16-bit PNG is an IR image (gray16), not depth\n"
           "      --allow-lossy   let depth12 drop bits of depths from 4096 mm\n"
           "  -h, --help          show this help and exit\n",
           SK2_CODEC_DEFAULT_QUALITY);
}

/* Pixels depth12 would not return as they are. */
static size_t s_pixels_above_12_bits(const sk2_frame_t *frame)
{
    const uint16_t *px = sk2_frame_cdata16(frame);
    size_t count = (size_t)sk2_frame_width(frame) * sk2_frame_height(frame), above = 0;
    for (size_t i = 0; px && i < count; i++)
        above += px[i] > 0x0fff;
    return above;
}

typedef struct {
    const char *codec_name;
    long quality; /* 0: the codec's default */
    bool is_ir;
    bool allow_lossy;
} encode_options_t;

static int s_apply_option(void *options, int opt, const char *arg)
{
    encode_options_t *opts = options;
    switch (opt) {
    case 'c':
        opts->codec_name = arg;
        break;
    case 'Q':
        if (cli_parse_long(arg, 1, 100, &opts->quality) != 0)
            return cli_usage_error("encode", "--quality takes 1..100, not '%s'", arg);
        break;
    case OPT_IR:
        opts->is_ir = true;
        break;
    case OPT_ALLOW_LOSSY:
        opts->allow_lossy = true;
        break;
    }
    return CLI_CONTINUE;
}

int cli_encode(int argc, char **argv)
{
    static const char optstring[] = "+:hvqc:Q:";
    static const struct option options[] = {
        {"codec", required_argument, NULL, 'c'},
        {"quality", required_argument, NULL, 'Q'},
        {"ir", no_argument, NULL, OPT_IR},
        {"allow-lossy", no_argument, NULL, OPT_ALLOW_LOSSY},
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {"encode", optstring, options, s_print_usage, s_apply_option};
    encode_options_t opts = {0};
    int parsed = cli_parse_options(&parser, argc, argv, &opts);
    if (parsed != CLI_CONTINUE)
        return parsed;
    const char *codec_name = opts.codec_name;
    long quality = opts.quality;
    bool is_ir = opts.is_ir, allow_lossy = opts.allow_lossy;
    if (!codec_name)
        return cli_usage_error("encode", "--codec NAME is required ('sk2 codecs' lists them)");
    if (argc - optind != 2)
        return cli_usage_error("encode", "expected IN.png and OUT");
    const char *in_path = argv[optind], *out_path = argv[optind + 1];
    const sk2_codec_t *codec = sk2_codec_find(codec_name);
    char safe[64];
    if (!codec)
        return cli_usage_error("encode", "unknown codec '%s' ('sk2 codecs' lists them)",
                               cli_safe(codec_name, safe, sizeof safe));
    if (quality && !sk2_codec_has_quality(codec))
        return cli_usage_error("encode", "codec %s has no quality setting", codec_name);

    char why[512];
    sk2_frame_t *frame = NULL;
    uint8_t *buf = NULL;
    sk2_codec_options_t *options_set = NULL;
    int rc = CLI_EXIT_FAILURE;
    if (sk2_frame_read_png(in_path, is_ir ? SK2_PIXEL_GRAY16 : SK2_PIXEL_DEPTH_MM16, &frame, why,
                           sizeof why) != 0) {
        fprintf(stderr, "sk2 encode: %s: %s\n", in_path, why);
        goto out;
    }
    sk2_pixel_format_t format = sk2_frame_format(frame);
    if (!sk2_codec_supports(codec, format)) {
        fprintf(stderr, "sk2 encode: %s: codec %s cannot encode %s images%s\n", in_path, codec_name,
                sk2_pixel_format_name(format),
                sk2_pixel_format_bytes(format) == 2
                    ? " (it is lossy colour; use a depth codec such as sk2d or rvl)"
                    : " (use jpeg or raw for colour)");
        goto out;
    }
    size_t above = strcmp(codec_name, SK2_CODEC_DEPTH12) == 0 ? s_pixels_above_12_bits(frame) : 0;
    if (above && !allow_lossy) {
        fprintf(stderr,
                "sk2 encode: %s: depth12 keeps 12 bits, and %zu pixels are 4096 or more: they "
                "would not come back (--allow-lossy to accept, or use sk2d)\n",
                in_path, above);
        goto out;
    }
    options_set = sk2_codec_options_new();
    size_t cap =
        sk2_codec_encode_bound(codec, format, sk2_frame_width(frame), sk2_frame_height(frame));
    buf = malloc(cap ? cap : 1);
    size_t len = 0;
    int err = !options_set || !buf ? SK2_ENOMEM
                                   : sk2_codec_options_set_quality(options_set, (int)quality);
    if (err == 0)
        err = sk2_codec_encode_opts(codec, frame, options_set, buf, cap, &len);
    if (err != 0) {
        fprintf(stderr, "sk2 encode: %s: %s\n", in_path, sk2_strerror(err));
        goto out;
    }
    sk2f_t file = {.format = format,
                   .width = sk2_frame_width(frame),
                   .height = sk2_frame_height(frame),
                   .payload = buf,
                   .payload_len = len};
    snprintf(file.codec, sizeof file.codec, "%s", codec_name);
    if (sk2f_write(out_path, &file, why, sizeof why) != 0) {
        fprintf(stderr, "sk2 encode: %s: %s\n", out_path, why);
        goto out;
    }
    if (!cli_is_quiet())
        printf("%s: %s %ux%u %s, %zu -> %zu bytes (ratio %.2f)\n", out_path, codec_name, file.width,
               file.height, sk2_pixel_format_name(format), sk2_frame_size(frame), len,
               (double)sk2_frame_size(frame) / (double)(len ? len : 1));
    rc = CLI_EXIT_OK;
out:
    sk2_codec_options_destroy(&options_set);
    free(buf);
    sk2_frame_destroy(&frame);
    return rc;
}
