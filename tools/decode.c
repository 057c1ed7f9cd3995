/* sk2 decode: an SK2F frame file (from 'sk2 encode') back to PNG: 16-bit grayscale for depth
 * and IR, RGB or RGBA for colour. The file's header is checked against the codec before the
 * payload is decoded, and the decoder refuses a payload that does not fit the header. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#include "sk2/sk2.h"
#include "sk2f.h"

/* The largest file read: a 16384 x 16384 bgra32 frame stored raw, plus the header. */
#define S_MAX_FILE ((size_t)SK2_FRAME_MAX_WIDTH * SK2_FRAME_MAX_HEIGHT * 4 + 4096)

static void s_print_usage(void)
{
    printf("usage: sk2 decode IN OUT.png\n"
           "\n"
           "Decode a frame file written by 'sk2 encode' into a PNG (16-bit grayscale for\n"
           "depth and IR, 8-bit RGB/RGBA for colour).\n"
           "\n"
           "options:\n"
           "  -h, --help       show this help and exit\n");
}

static sk2_stream_kind_t s_kind(sk2_pixel_format_t format)
{
    return format == SK2_PIXEL_DEPTH_MM16 ? SK2_STREAM_DEPTH
           : format == SK2_PIXEL_GRAY16   ? SK2_STREAM_IR
                                          : SK2_STREAM_COLOR;
}

int cli_decode(int argc, char **argv)
{
    static const char optstring[] = "+:hvq";
    static const struct option options[] = {CLI_COMMON_LONG_OPTIONS};
    const cli_parser_t parser = {"decode", optstring, options, s_print_usage, NULL};
    int parsed = cli_parse_options(&parser, argc, argv, NULL);
    if (parsed != CLI_CONTINUE)
        return parsed;
    if (argc - optind != 2)
        return cli_usage_error("decode", "expected IN and OUT.png");
    const char *in_path = argv[optind], *out_path = argv[optind + 1];
    char why[512];
    size_t size = 0;
    sk2_frame_t *frame = NULL;
    int rc = CLI_EXIT_FAILURE;
    uint8_t *bytes = sk2f_slurp(in_path, S_MAX_FILE, &size, why, sizeof why);
    if (!bytes) {
        fprintf(stderr, "sk2 decode: %s: %s\n", in_path, why);
        return CLI_EXIT_FAILURE;
    }
    sk2f_t file;
    if (sk2f_parse(bytes, size, &file, why, sizeof why) != 0) {
        fprintf(stderr, "sk2 decode: %s: %s\n", in_path, why);
        goto out;
    }
    const sk2_codec_t *codec = sk2_codec_find(file.codec);
    if (!codec) {
        fprintf(stderr, "sk2 decode: %s: unknown codec '%s'\n", in_path, file.codec);
        goto out;
    }
    if (!sk2_codec_supports(codec, file.format)) {
        fprintf(stderr, "sk2 decode: %s: codec %s does not take pixel format %d\n", in_path,
                file.codec, (int)file.format);
        goto out;
    }
    frame = sk2_frame_new(s_kind(file.format), file.format, file.width, file.height);
    if (!frame) {
        fprintf(stderr, "sk2 decode: %s: bad frame size %ux%u\n", in_path, file.width, file.height);
        goto out;
    }
    int err = sk2_codec_decode(codec, file.payload, file.payload_len, frame);
    if (err != 0) {
        fprintf(stderr, "sk2 decode: %s: %s payload: %s\n", in_path, file.codec, sk2_strerror(err));
        goto out;
    }
    if (sk2_frame_write_png(frame, out_path, 6, why, sizeof why) != 0) {
        fprintf(stderr, "sk2 decode: %s: %s\n", out_path, why);
        goto out;
    }
    if (!cli_is_quiet())
        printf("%s: %s %ux%u %s\n", out_path, file.codec, file.width, file.height,
               sk2_pixel_format_name(file.format));
    rc = CLI_EXIT_OK;
out:
    sk2_frame_destroy(&frame);
    free(bytes);
    return rc;
}
