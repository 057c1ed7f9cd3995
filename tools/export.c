/* `sk2 export` and `sk2 import`: between sk2 recordings and TUM RGB-D folders (16-bit depth
 * PNGs, colour PNGs, depth.txt and rgb.txt with timestamps), the layout SLAM and
 * reconstruction tools read and many public RGB-D datasets come in. Export then import gives
 * back the same pixels and capture times (sk2.json keeps what the layout cannot). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

enum { OPT_DEVICE = 256, OPT_DEPTH_CODEC, OPT_COLOR_CODEC };

static sk2_recording_reader_t *s_open(const char *verb, const char *path)
{
    sk2_recording_reader_t *reader = sk2_recording_reader_new();
    if (!reader || sk2_recording_reader_open(reader, path) != 0) {
        char safe[1024];
        fprintf(stderr, "sk2 %s: %s: %s\n", verb, cli_safe(path, safe, sizeof safe),
                reader ? sk2_recording_reader_why(reader) : "out of memory");
        sk2_recording_reader_destroy(&reader);
    }
    return reader;
}

/* The options of export (--device) and import (--depth-codec, --color-codec). */
typedef struct {
    const char *verb;
    long device;           /* export: the recording's device, -1 = all */
    const char *codecs[2]; /* import: [0] depth and IR, [1] colour */
} s_options_t;

static int s_apply_option(void *options, int opt, const char *arg)
{
    s_options_t *opts = options;
    if (opt == OPT_DEVICE) {
        if (cli_parse_long(arg, 0, SK2_RECORDING_MAX_DEVICES - 1, &opts->device) != 0)
            return cli_usage_error(opts->verb, "--device must be 0..%d, not '%s'",
                                   SK2_RECORDING_MAX_DEVICES - 1, arg);
    } else if (opt == OPT_DEPTH_CODEC || opt == OPT_COLOR_CODEC) {
        if (!sk2_codec_find(arg))
            return cli_usage_error(opts->verb, "unknown codec '%s' (see `sk2 codecs`)", arg);
        opts->codecs[opt == OPT_COLOR_CODEC] = arg;
    }
    return CLI_CONTINUE;
}

/* Reads a verb's options and its two operands; returns CLI_CONTINUE or an exit code. */
static int s_parse(const struct option *options, int argc, char **argv, void (*usage)(void),
                   s_options_t *opts)
{
    const cli_parser_t parser = {opts->verb, ":hvq", options, usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    if (optind + 2 != argc)
        return cli_usage_error(opts->verb, "expected two arguments");
    return CLI_CONTINUE;
}

static void s_export_usage(void)
{
    printf("usage: sk2 export FILE DIR [--device N] [-v|-q]\n"
           "\n"
           "Writes a recording's frames as a TUM RGB-D folder: depth/*.png (16-bit, 5000 per\n"
           "metre), rgb/*.png, ir/*.png, depth.txt, rgb.txt, ir.txt, and sk2.json.\n"
           "  --device N   which recorded device (default 0; needed when there are several)\n"
           "Exit status: 0 written, 1 cannot read or write, 2 usage.\n");
}

int cli_export(int argc, char **argv)
{
    static const struct option options[] = {
        {"device", required_argument, NULL, OPT_DEVICE},
        CLI_COMMON_LONG_OPTIONS,
    };
    s_options_t opts = {.verb = "export", .device = -1};
    int rc = s_parse(options, argc, argv, s_export_usage, &opts);
    long device = opts.device;
    if (rc != CLI_CONTINUE)
        return rc;
    const char *path = argv[optind], *dir = argv[optind + 1];
    sk2_recording_reader_t *reader = s_open("export", path);
    if (!reader)
        return CLI_EXIT_FAILURE;
    size_t devices = sk2_recording_reader_device_count(reader);
    rc = CLI_EXIT_FAILURE;
    char why[512];
    if (device < 0 && devices > 1) {
        rc = cli_usage_error("export", "%s holds %zu devices: choose one with --device", path,
                             devices);
    } else if (device >= (long)devices) {
        rc = cli_usage_error("export", "%s has no device %ld", path, device);
    } else if (sk2_recording_export_tum(reader, device < 0 ? 0 : (size_t)device, dir, why,
                                        sizeof why) != 0) {
        fprintf(stderr, "sk2 export: %s\n", why);
    } else {
        if (!cli_is_quiet())
            printf("sk2 export: device %ld of %s written to %s\n", device < 0 ? 0 : device, path,
                   dir);
        rc = CLI_EXIT_OK;
    }
    sk2_recording_reader_destroy(&reader);
    return rc;
}

static void s_import_usage(void)
{
    printf("usage: sk2 import DIR FILE [--depth-codec C] [--color-codec C] [-v|-q]\n"
           "\n"
           "Turns a TUM RGB-D folder (depth.txt, rgb.txt and their images) into a recording.\n"
           "  --depth-codec C   codec for depth and IR (default sk2d, lossless)\n"
           "  --color-codec C   codec for colour (default raw, lossless; jpeg is smaller)\n"
           "Depth keeps the PNGs' values: TUM's 5000 per metre is recorded as the depth unit\n"
           "(or, for folders sk2 exported, the original unit comes back exactly).\n"
           "Exit status: 0 written, 1 cannot read or write, 2 usage.\n");
}

int cli_import(int argc, char **argv)
{
    static const struct option options[] = {
        {"depth-codec", required_argument, NULL, OPT_DEPTH_CODEC},
        {"color-codec", required_argument, NULL, OPT_COLOR_CODEC},
        CLI_COMMON_LONG_OPTIONS,
    };
    s_options_t opts = {.verb = "import", .codecs = {SK2_CODEC_SK2D, SK2_CODEC_RAW}};
    int rc = s_parse(options, argc, argv, s_import_usage, &opts);
    const char **codecs = opts.codecs;
    if (rc != CLI_CONTINUE)
        return rc;
    const char *dir = argv[optind], *path = argv[optind + 1];
    sk2_recording_reader_t *reader = s_open("import", dir);
    if (!reader)
        return CLI_EXIT_FAILURE;
    sk2_recording_writer_t *writer = sk2_recording_writer_new();
    rc = CLI_EXIT_FAILURE;
    if (!writer || sk2_recording_writer_open(writer, path) != 0) {
        fprintf(stderr, "sk2 import: %s\n",
                writer ? sk2_recording_writer_why(writer) : "no memory");
        goto out;
    }
    for (size_t d = 0; d < sk2_recording_reader_device_count(reader); d++) {
        sk2_stream_info_t infos[8];
        size_t count = sk2_recording_reader_stream_count(reader, d);
        for (size_t s = 0; s < count && s < 8; s++)
            sk2_recording_reader_stream_info(reader, d, s, &infos[s]);
        size_t index = 0;
        if (sk2_recording_writer_add_device(writer, sk2_recording_reader_device_id(reader, d),
                                            sk2_recording_reader_device_serial(reader, d),
                                            sk2_recording_reader_device_backend(reader, d), infos,
                                            count < 8 ? count : 8, &index) != 0 ||
            index != d) {
            fprintf(stderr, "sk2 import: %s\n", sk2_recording_writer_why(writer));
            goto out;
        }
    }
    size_t frames = sk2_recording_reader_frame_count(reader);
    for (size_t i = 0; i < frames && !cli_is_interrupted(); i++) {
        sk2_recording_frame_info_t info;
        sk2_frame_t *frame = NULL;
        sk2_recording_reader_frame_info(reader, i, &info);
        if (sk2_recording_reader_read_frame(reader, i, &frame) != 0) {
            fprintf(stderr, "sk2 import: %s\n", sk2_recording_reader_why(reader));
            goto out;
        }
        const char *name = codecs[info.kind == SK2_STREAM_COLOR];
        int err = sk2_recording_writer_add_frame(writer, info.device, frame, sk2_codec_find(name));
        sk2_frame_destroy(&frame);
        if (err != 0) {
            fprintf(stderr, "sk2 import: %s\n", sk2_recording_writer_why(writer));
            goto out;
        }
    }
    if (sk2_recording_writer_close(writer) != 0) {
        fprintf(stderr, "sk2 import: %s\n", sk2_recording_writer_why(writer));
        goto out;
    }
    if (cli_is_interrupted()) {
        fprintf(stderr, "sk2 import: interrupted; %s holds the frames before\n", path);
        goto out;
    }
    if (!cli_is_quiet())
        printf("sk2 import: %zu frames from %s into %s (%.2f MB)\n", frames, dir, path,
               cli_mb(sk2_recording_writer_bytes(writer)));
    rc = CLI_EXIT_OK;
out:
    sk2_recording_writer_destroy(&writer);
    sk2_recording_reader_destroy(&reader);
    return rc;
}
