/* `sk2 export` and `sk2 import`: between sk2 recordings and TUM RGB-D folders (16-bit depth
 * PNGs, colour PNGs, depth.txt and rgb.txt with timestamps), the layout SLAM and
 * reconstruction tools read and many public RGB-D datasets come in. Export then import gives
 * back the same pixels and capture times (sk2.json keeps what the layout cannot).
 *
 * Both write under a temporary name beside the output (output.h) and rename it into place
 * only when complete, so Ctrl-C or a failure leaves no half-written output and whatever was
 * there before untouched. On a terminal they show how far they are. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"
#include "sk2/sk2.h"

enum {
    OPT_DEVICE = 256,
    OPT_DEPTH_CODEC,
    OPT_COLOR_CODEC,
    OPT_COLOR_QUALITY,
    OPT_FORCE,
    OPT_FORMAT,
    OPT_ASCII,
    OPT_FRAMES,
    OPT_FRAME,
    OPT_MCAP_COMPRESSION,
    OPT_MCAP_CLOUD,
    OPT_MCAP_DEPTH_AS,
    OPT_COLOR,
    OPT_NO_COLOR
};

/* A progress line on stderr, rewritten in place; only on a terminal and without -q. */
typedef struct {
    const char *verb;
    bool is_shown;
    int last_percent;
} s_progress_t;

static void s_progress_init(s_progress_t *self, const char *verb)
{
    *self = (s_progress_t){
        .verb = verb, .is_shown = !cli_is_quiet() && isatty(STDERR_FILENO), .last_percent = -1};
}

/* Shows done of total and says whether to go on (no Ctrl-C yet). */
static bool s_progress(void *arg, size_t done, size_t total)
{
    s_progress_t *self = arg;
    int percent = total ? (int)(100.0 * (double)done / (double)total) : 100;
    if (self->is_shown && percent != self->last_percent) {
        fprintf(stderr, "\r%s: %zu/%zu frames (%d%%)", self->verb, done, total, percent);
        fflush(stderr);
        self->last_percent = percent;
    }
    return !cli_is_interrupted();
}

static void s_progress_end(s_progress_t *self)
{
    if (self->is_shown && self->last_percent >= 0)
        fprintf(stderr, "\n");
}

/* An export the library refused or that was interrupted: says why, gives the exit status. */
static int s_export_failed(s_progress_t *progress, int rc, const char *why)
{
    s_progress_end(progress);
    if (rc == SK2_EINTR)
        fprintf(stderr, "sk2 export: interrupted (%s); nothing written\n", why);
    else
        fprintf(stderr, "sk2 export: %s\n", why);
    return rc == SK2_EINTR ? CLI_EXIT_INTERRUPTED : CLI_EXIT_FAILURE;
}

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

/* The options of export (--device) and import (--depth-codec, --color-codec, --color-quality,
 * --force). */
typedef struct {
    const char *verb;
    long device;           /* export: the recording's device, -1 = all */
    const char *codecs[2]; /* import: [0] depth and IR, [1] colour */
    long color_quality;    /* import: 1..100, 0 = the codec's default */
    bool is_forced;        /* import: --force */
    /* export to MCAP (s_apply_mcap_option) */
    bool is_mcap;                 /* --format mcap */
    const char *mcap_compression; /* --compression, NULL = not given */
    bool has_mcap_cloud;          /* --cloud: PointCloud2 messages too */
    const char *mcap_depth_as;    /* --depth-as image|png|rvl, NULL = not given (image) */
    /* export to point clouds (the block below cli_export) */
    bool is_cloud;                /* --format ply|pcd */
    sk2_cloud_format_t cloud;     /* which */
    bool is_ascii;                /* --ascii */
    const char *frames;           /* --frames RANGE or --frame N as given, NULL if neither */
    bool is_single;               /* --frame N: one file, not a folder */
    long first_frame, last_frame; /* depth frames, from 0; last -1 = to the end */
    int color;                    /* --color 1 (demanded), --no-color -1, neither 0 (if present) */
} s_options_t;

/* export's --format tum|mcap|ply|pcd: one of the three kinds of output (TUM the default). */
static int s_apply_format(s_options_t *opts, const char *arg)
{
    opts->is_mcap = strcmp(arg, "mcap") == 0;
    opts->is_cloud = !opts->is_mcap && strcmp(arg, "tum") != 0;
    if (opts->is_cloud && sk2_cloud_format_parse(arg, &opts->cloud) != 0)
        return cli_usage_error(opts->verb, "--format takes tum, mcap, ply or pcd, not '%s'", arg);
    return CLI_CONTINUE;
}

/* export's --compression zstd|lz4|none (MCAP chunks), --cloud and --depth-as image|png|rvl. */
static int s_apply_mcap_option(s_options_t *opts, int opt, const char *arg)
{
    sk2_mcap_depth_t depth;
    if (opt == OPT_MCAP_CLOUD) {
        opts->has_mcap_cloud = true;
    } else if (opt == OPT_MCAP_DEPTH_AS) {
        if (sk2_mcap_depth_parse(arg, &depth) != 0)
            return cli_usage_error(opts->verb, "--depth-as takes image, png or rvl, not '%s'", arg);
        opts->mcap_depth_as = arg;
    } else if (strcmp(arg, "zstd") != 0 && strcmp(arg, "lz4") != 0 && strcmp(arg, "none") != 0) {
        return cli_usage_error(opts->verb, "--compression takes zstd, lz4 or none, not '%s'", arg);
    } else {
        opts->mcap_compression = arg;
    }
    return CLI_CONTINUE;
}

static int s_apply_cloud_option(s_options_t *opts, int opt, const char *arg);

static int s_apply_option(void *options, int opt, const char *arg)
{
    s_options_t *opts = options;
    if (opt == OPT_FORMAT)
        return s_apply_format(opts, arg);
    if (opt == OPT_MCAP_COMPRESSION || opt == OPT_MCAP_CLOUD || opt == OPT_MCAP_DEPTH_AS)
        return s_apply_mcap_option(opts, opt, arg);
    if (opt == OPT_DEVICE) {
        if (cli_parse_long(arg, 0, SK2_RECORDING_MAX_DEVICES - 1, &opts->device) != 0)
            return cli_usage_error(opts->verb, "--device must be 0..%d, not '%s'",
                                   SK2_RECORDING_MAX_DEVICES - 1, arg);
    } else if (opt == OPT_DEPTH_CODEC || opt == OPT_COLOR_CODEC) {
        if (!sk2_codec_find(arg))
            return cli_usage_error(opts->verb, "unknown codec '%s' (see `sk2 codecs`)", arg);
        opts->codecs[opt == OPT_COLOR_CODEC] = arg;
    } else if (opt == OPT_COLOR_QUALITY) {
        if (cli_parse_long(arg, 1, 100, &opts->color_quality) != 0)
            return cli_usage_error(opts->verb, "--color-quality takes 1..100, not '%s'", arg);
    } else if (opt == OPT_FORCE) {
        opts->is_forced = true;
    } else {
        return s_apply_cloud_option(opts, opt, arg);
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
           "       sk2 export FILE OUT.mcap --format mcap [--compression zstd|lz4|none]\n"
           "                  [--depth-as image|png|rvl] [--cloud] [--device N] [-v|-q]\n"
           "       sk2 export FILE DIR --format ply|pcd [--ascii] [--frames RANGE]\n"
           "                  [--color|--no-color] [--device N]\n"
           "       sk2 export FILE OUT.ply|OUT.pcd --format ply|pcd --frame N [--ascii]\n"
           "\n"
           "Writes a recording's frames as a TUM RGB-D folder: depth/*.png (16-bit, 5000 per\n"
           "metre), rgb/*.png, ir/*.png, depth.txt, rgb.txt, ir.txt, and sk2.json.\n"
           "  --device N     which recorded device (default 0; needed if there are several)\n"
           "  --format F     tum (default), or point clouds: ply or pcd, one file per depth\n"
           "                 frame (DIR/000000.ply, ...; clouds.txt lists capture times),\n"
           "                 x y z in metres from the depth intrinsics, pixels without a\n"
           "                 reading left out; coloured when the device has a colour stream\n"
           "                 with intrinsics and depth-to-colour extrinsics: each point gets\n"
           "                 the colour the registration finds in the colour frame nearest\n"
           "                 in capture time (within half a colour frame period; else that\n"
           "                 cloud is written without colour), black where none is seen\n"
           "  --color        demand colour: fail (exit 1) if the recording cannot give it\n"
           "  --no-color     x y z only\n"
           "  --ascii        ply/pcd as text (default binary, about a third of the size)\n"
           "  --frames RANGE depth frames A-B, A- (to the end) or A, counted from 0\n"
           "  --frame N      depth frame N only, written as the single file OUT\n"
           "DIR must not exist or be empty: the export is written into DIR.partial-XXXXXX\n"
           "and renamed to DIR when complete (OUT likewise, and must not exist). On a\n"
           "terminal, a line shows the progress.\n"
           "Exit status: 0 written, 1 cannot read or write, 2 usage (also DIR not empty),\n"
           "130 interrupted (Ctrl-C): nothing is left behind.\n"
           "With --format mcap, writes one MCAP file (ROS 2 messages in CDR: depth as Image\n"
           "16UC1, IR as Image mono16, JPEG colour as CompressedImage, CameraInfo) with every\n"
           "device unless --device; chunks compressed with zstd (default), lz4 or none.\n"
           "  --depth-as M   depth as Image 16UC1 (image, default), or as ROS's compressedDepth\n"
           "                 CompressedImage with a 16-bit PNG (png) or RVL (rvl) at\n"
           "                 /sk2/ID/depth/image_raw/compressedDepth; lossless either way\n"
           "  --cloud        also each depth frame as a PointCloud2 (x y z metres, one point\n"
           "                 per reading) at /sk2/ID/depth/points; needs depth intrinsics\n"
           "OUT.mcap must not exist; it is written as OUT.mcap.partial-XXXXXX and renamed.\n");
}

/* export --format mcap: one file, every device unless --device. */
static int s_export_mcap(const s_options_t *opts, const char *path, const char *out)
{
    sk2_recording_reader_t *reader = s_open("export", path);
    if (!reader)
        return CLI_EXIT_FAILURE;
    size_t devices = sk2_recording_reader_device_count(reader);
    const char *compression = opts->mcap_compression ? opts->mcap_compression : "zstd";
    sk2_mcap_options_t with = {.compression = compression, .has_cloud = opts->has_mcap_cloud};
    if (opts->mcap_depth_as)
        sk2_mcap_depth_parse(opts->mcap_depth_as, &with.depth); /* checked when parsed */
    char why[512];
    cli_output_t output = {.temp_path = ""};
    s_progress_t progress;
    s_progress_init(&progress, "export");
    int rc;
    if (opts->device >= (long)devices) {
        rc = cli_usage_error("export", "%s has no device %ld", path, opts->device);
    } else if ((rc = cli_output_begin(&output, "export", out, false, false)) != CLI_CONTINUE) {
        /* said why */
    } else if ((rc = sk2_recording_export_mcap_with(
                    reader, opts->device < 0 ? SK2_MCAP_ALL_DEVICES : (size_t)opts->device,
                    output.temp_path, &with, s_progress, &progress, why, sizeof why)) != 0) {
        rc = s_export_failed(&progress, rc, why);
    } else if (s_progress_end(&progress), cli_output_commit(&output) != 0) {
        rc = CLI_EXIT_FAILURE;
    } else {
        if (!cli_is_quiet())
            printf("sk2 export: %s written to %s (MCAP, %s)\n", path, out, compression);
        rc = CLI_EXIT_OK;
    }
    cli_output_abandon(&output);
    sk2_recording_reader_destroy(&reader);
    return rc;
}

static int s_export_clouds(const s_options_t *opts, const char *path, const char *out);

int cli_export(int argc, char **argv)
{
    static const struct option options[] = {
        {"device", required_argument, NULL, OPT_DEVICE},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"compression", required_argument, NULL, OPT_MCAP_COMPRESSION},
        {"cloud", no_argument, NULL, OPT_MCAP_CLOUD},
        {"depth-as", required_argument, NULL, OPT_MCAP_DEPTH_AS},
        {"ascii", no_argument, NULL, OPT_ASCII},
        {"frames", required_argument, NULL, OPT_FRAMES},
        {"frame", required_argument, NULL, OPT_FRAME},
        {"color", no_argument, NULL, OPT_COLOR},
        {"no-color", no_argument, NULL, OPT_NO_COLOR},
        CLI_COMMON_LONG_OPTIONS,
    };
    s_options_t opts = {.verb = "export", .device = -1, .last_frame = -1};
    int rc = s_parse(options, argc, argv, s_export_usage, &opts);
    long device = opts.device;
    if (rc != CLI_CONTINUE)
        return rc;
    if (opts.mcap_compression && !opts.is_mcap)
        return cli_usage_error("export", "--compression is for --format mcap");
    if ((opts.has_mcap_cloud || opts.mcap_depth_as) && !opts.is_mcap)
        return cli_usage_error("export", "--cloud and --depth-as are for --format mcap (point "
                                         "cloud files: --format ply|pcd)");
    if (opts.is_cloud)
        return s_export_clouds(&opts, argv[optind], argv[optind + 1]);
    if (opts.is_ascii || opts.frames || opts.color)
        return cli_usage_error("export", "--ascii, --frames, --frame, --color and --no-color are "
                                         "for --format ply|pcd");
    const char *path = argv[optind], *dir = argv[optind + 1];
    if (opts.is_mcap)
        return s_export_mcap(&opts, path, dir);
    sk2_recording_reader_t *reader = s_open("export", path);
    if (!reader)
        return CLI_EXIT_FAILURE;
    size_t devices = sk2_recording_reader_device_count(reader);
    rc = CLI_EXIT_FAILURE;
    char why[512];
    cli_output_t output = {.temp_path = ""};
    s_progress_t progress;
    s_progress_init(&progress, "export");
    if (device < 0 && devices > 1) {
        rc = cli_usage_error("export", "%s holds %zu devices: choose one with --device", path,
                             devices);
    } else if (device >= (long)devices) {
        rc = cli_usage_error("export", "%s has no device %ld", path, device);
    } else if ((rc = cli_output_begin(&output, "export", dir, true, false)) != CLI_CONTINUE) {
        /* said why */
    } else if ((rc = sk2_recording_export_tum_with_progress(reader, device < 0 ? 0 : (size_t)device,
                                                            output.temp_path, s_progress, &progress,
                                                            why, sizeof why)) != 0) {
        rc = s_export_failed(&progress, rc, why);
    } else if (s_progress_end(&progress), cli_output_commit(&output) != 0) {
        rc = CLI_EXIT_FAILURE;
    } else {
        if (!cli_is_quiet())
            printf("sk2 export: device %ld of %s written to %s\n", device < 0 ? 0 : device, path,
                   dir);
        rc = CLI_EXIT_OK;
    }
    cli_output_abandon(&output);
    sk2_recording_reader_destroy(&reader);
    return rc;
}

/* ---- Export to point clouds (PLY, PCD) ---- */

/* Parses "A-B", "A-" or "A" (depth frames from 0, inclusive) into first and last (-1 = to the
 * end). Returns 0 or -1. */
static int s_parse_range(const char *text, long *first, long *last)
{
    char head[32];
    const char *dash = strchr(text, '-');
    size_t n = dash ? (size_t)(dash - text) : strlen(text);
    if (n == 0 || n >= sizeof head)
        return -1;
    memcpy(head, text, n);
    head[n] = '\0';
    if (cli_parse_long(head, 0, SK2_RECORDING_MAX_FRAMES - 1, first) != 0)
        return -1;
    if (!dash) {
        *last = *first;
        return 0;
    }
    if (dash[1] == '\0') {
        *last = -1;
        return 0;
    }
    return cli_parse_long(dash + 1, *first, SK2_RECORDING_MAX_FRAMES - 1, last);
}

static int s_apply_cloud_option(s_options_t *opts, int opt, const char *arg)
{
    if (opt == OPT_ASCII) {
        opts->is_ascii = true;
    } else if (opt == OPT_FRAMES || opt == OPT_FRAME) {
        if (opts->frames)
            return cli_usage_error(opts->verb, "give one --frames or --frame");
        opts->frames = arg;
        opts->is_single = opt == OPT_FRAME;
        if (opts->is_single
                ? cli_parse_long(arg, 0, SK2_RECORDING_MAX_FRAMES - 1, &opts->first_frame) != 0
                : s_parse_range(arg, &opts->first_frame, &opts->last_frame) != 0)
            return cli_usage_error(opts->verb,
                                   opts->is_single
                                       ? "--frame takes a depth frame number from 0, not '%s'"
                                       : "--frames takes A-B, A- or A (depth frames from 0, "
                                         "A <= B), not '%s'",
                                   arg);
        if (opts->is_single)
            opts->last_frame = opts->first_frame;
    } else if (opt == OPT_COLOR || opt == OPT_NO_COLOR) {
        int want = opt == OPT_COLOR ? 1 : -1;
        if (opts->color && opts->color != want)
            return cli_usage_error(opts->verb, "give --color or --no-color, not both");
        opts->color = want;
    }
    return CLI_CONTINUE;
}

/* Colouring clouds: the device's colour frames sorted by capture time, a registration made
 * once, and the last colour frame decoded (consecutive depth frames often share one). */
typedef struct {
    sk2_registration_t *registration; /* NULL: clouds are written without colour */
    int64_t *times;                   /* capture times of the colour frames, ascending */
    size_t *indices;                  /* their frame indices in the reader, in that order */
    size_t count;
    int64_t tolerance_us; /* half a colour frame period: the farthest a match may lie */
    size_t decoded_index; /* reader index of `decoded`, if not NULL */
    sk2_frame_t *decoded;
    size_t uncolored; /* clouds written without colour for want of a colour frame near enough */
} s_color_t;

static void s_color_free(s_color_t *self)
{
    sk2_registration_destroy(&self->registration);
    sk2_frame_destroy(&self->decoded);
    free(self->times);
    free(self->indices);
}

/* A colour frame's capture time and its index in the reader, sorted by time: a file holds
 * frames in the order they arrived, which need not be the order they were captured in. */
typedef struct {
    int64_t time;
    size_t index;
} s_timed_t;

static int s_timed_compare(const void *a, const void *b)
{
    const s_timed_t *x = a, *y = b;
    return x->time < y->time ? -1 : x->time > y->time ? 1 : x->index < y->index ? -1 : 1;
}

/* Sets up colouring for `device` if the recording can give it: a colour stream with
 * intrinsics, depth-to-colour extrinsics, colour frames, and a registration that accepts them.
 * Returns 0 with self->registration NULL and *why set when it cannot (a reason, not a failure),
 * 0 with it set when it can, -1 on out of memory. */
static int s_color_setup(s_color_t *self, sk2_recording_reader_t *reader, size_t device,
                         const sk2_stream_info_t *depth, const char **why)
{
    *self = (s_color_t){0};
    sk2_stream_info_t color = {0};
    bool has_color = false;
    for (size_t s = 0; s < sk2_recording_reader_stream_count(reader, device); s++) {
        sk2_stream_info_t candidate;
        if (sk2_recording_reader_stream_info(reader, device, s, &candidate) == 0 &&
            candidate.kind == SK2_STREAM_COLOR) {
            color = candidate;
            has_color = true;
        }
    }
    sk2_extrinsics_t extrinsics;
    if (!has_color) {
        *why = "no colour stream";
        return 0;
    }
    if (!color.has_intrinsics) {
        *why = "no colour intrinsics";
        return 0;
    }
    if (sk2_recording_reader_device_depth_to_color(reader, device, &extrinsics) != 0) {
        *why = "no depth-to-colour extrinsics";
        return 0;
    }
    size_t frames = sk2_recording_reader_frame_count(reader);
    s_timed_t *timed = malloc((frames ? frames : 1) * sizeof *timed);
    if (!timed)
        return -1;
    for (size_t i = 0; i < frames; i++) {
        sk2_recording_frame_info_t fi;
        if (sk2_recording_reader_frame_info(reader, i, &fi) == 0 && fi.device == device &&
            fi.kind == SK2_STREAM_COLOR)
            timed[self->count++] = (s_timed_t){fi.capture_time_us, i};
    }
    if (self->count == 0) {
        free(timed);
        *why = "no colour frames";
        return 0;
    }
    qsort(timed, self->count, sizeof *timed, s_timed_compare);
    self->times = malloc(self->count * sizeof *self->times);
    self->indices = malloc(self->count * sizeof *self->indices);
    if (!self->times || !self->indices) {
        free(timed);
        s_color_free(self);
        return -1;
    }
    for (size_t i = 0; i < self->count; i++) {
        self->times[i] = timed[i].time;
        self->indices[i] = timed[i].index;
    }
    free(timed);
    /* The period from the stream's nominal rate, else from the frames themselves; a single
     * colour frame of unknown rate matches any depth frame. */
    double period_us = color.fps > 0.0   ? 1e6 / color.fps
                       : self->count > 1 ? (double)(self->times[self->count - 1] - self->times[0]) /
                                               (double)(self->count - 1)
                                         : -1.0;
    self->tolerance_us = period_us < 0.0 ? INT64_MAX : (int64_t)(period_us / 2.0);
    int rc = sk2_registration_new(&depth->intrinsics, depth->width, depth->height,
                                  depth->depth_unit_m, &color.intrinsics, color.width, color.height,
                                  &extrinsics, &self->registration);
    if (rc != 0) {
        s_color_free(self);
        if (rc == SK2_ENOMEM)
            return -1;
        *why = "colour intrinsics, sizes or extrinsics the registration refuses";
    }
    return 0;
}

/* The colour of each depth pixel for a depth frame captured at time_us, into *colored_p (NULL
 * if no colour frame lies within the tolerance). Returns 0 or says why and returns -1. */
static int s_color_for(s_color_t *self, sk2_recording_reader_t *reader, const sk2_frame_t *depth,
                       int64_t time_us, sk2_frame_t **colored_p)
{
    *colored_p = NULL;
    /* The first colour frame at or after time_us, and the one before it. */
    size_t lo = 0, hi = self->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->times[mid] < time_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t best = lo < self->count ? lo : self->count - 1;
    if (lo > 0 && (lo == self->count || time_us - self->times[lo - 1] <= self->times[lo] - time_us))
        best = lo - 1;
    int64_t gap = self->times[best] - time_us;
    if (gap < 0)
        gap = -gap;
    if (gap > self->tolerance_us) {
        self->uncolored++;
        return 0;
    }
    if (!self->decoded || self->decoded_index != self->indices[best]) {
        sk2_frame_destroy(&self->decoded);
        if (sk2_recording_reader_read_frame(reader, self->indices[best], &self->decoded) != 0) {
            fprintf(stderr, "sk2 export: %s\n", sk2_recording_reader_why(reader));
            return -1;
        }
        self->decoded_index = self->indices[best];
    }
    int rc = sk2_registration_color_to_depth(self->registration, depth, self->decoded, colored_p);
    if (rc != 0) {
        fprintf(stderr,
                "sk2 export: cannot colour depth frame: %s (frame sizes or formats other "
                "than the streams say)\n",
                sk2_strerror(rc));
        return -1;
    }
    return 0;
}

/* Writes depth frame `index` of the reader as a cloud file at file_path, coloured if `color`
 * has a registration and a colour frame near enough. Returns 0 or says why on stderr and
 * returns -1. */
static int s_write_cloud(sk2_recording_reader_t *reader, size_t index,
                         const sk2_stream_info_t *info, const s_options_t *opts, s_color_t *color,
                         const char *file_path, size_t *points)
{
    sk2_frame_t *frame = NULL, *colored = NULL;
    int rc = sk2_recording_reader_read_frame(reader, index, &frame);
    if (rc != 0) {
        fprintf(stderr, "sk2 export: %s\n", sk2_recording_reader_why(reader));
        return -1;
    }
    sk2_recording_frame_info_t fi;
    if (color->registration &&
        (sk2_recording_reader_frame_info(reader, index, &fi) != 0 ||
         s_color_for(color, reader, frame, fi.capture_time_us, &colored) != 0)) {
        sk2_frame_destroy(&frame);
        return -1;
    }
    FILE *file = fopen(file_path, "wb");
    rc = file ? sk2_cloud_write_colored(file, frame, &info->intrinsics, info->depth_unit_m, colored,
                                        opts->cloud, opts->is_ascii, points)
              : SK2_ESYS;
    if (file && fclose(file) != 0 && rc == 0)
        rc = SK2_ESYS;
    sk2_frame_destroy(&colored);
    sk2_frame_destroy(&frame);
    if (rc != 0) {
        char safe[1024];
        fprintf(stderr, "sk2 export: cannot write %s: %s\n", cli_safe(file_path, safe, sizeof safe),
                rc == SK2_ESYS ? strerror(errno) : sk2_strerror(rc));
        return -1;
    }
    return 0;
}

static int s_export_clouds(const s_options_t *opts, const char *path, const char *out)
{
    sk2_recording_reader_t *reader = s_open("export", path);
    if (!reader)
        return CLI_EXIT_FAILURE;
    int rc = CLI_EXIT_FAILURE;
    size_t *depth = NULL, depth_count = 0, total = 0;
    FILE *list = NULL;
    s_color_t color = {0};
    cli_output_t output = {.temp_path = ""};
    s_progress_t progress;
    s_progress_init(&progress, "export");
    size_t devices = sk2_recording_reader_device_count(reader);
    size_t device = opts->device < 0 ? 0 : (size_t)opts->device;
    if (opts->device < 0 && devices > 1) {
        rc = cli_usage_error("export", "%s holds %zu devices: choose one with --device", path,
                             devices);
        goto out;
    }
    if (device >= devices) {
        rc = cli_usage_error("export", "%s has no device %zu", path, device);
        goto out;
    }
    /* The depth stream's model: without it there is no way from pixels to metres. */
    sk2_stream_info_t info = {0};
    bool has_depth = false;
    for (size_t s = 0; s < sk2_recording_reader_stream_count(reader, device); s++) {
        sk2_stream_info_t candidate;
        if (sk2_recording_reader_stream_info(reader, device, s, &candidate) == 0 &&
            candidate.kind == SK2_STREAM_DEPTH) {
            info = candidate;
            has_depth = true;
        }
    }
    if (!has_depth || !info.has_intrinsics) {
        fprintf(stderr, "sk2 export: device %zu of %s has %s: no point clouds to make\n", device,
                path, has_depth ? "no depth intrinsics" : "no depth stream");
        goto out;
    }
    size_t frames = sk2_recording_reader_frame_count(reader);
    depth = calloc(frames ? frames : 1, sizeof *depth);
    if (!depth) {
        fprintf(stderr, "sk2 export: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < frames; i++) {
        sk2_recording_frame_info_t fi;
        if (sk2_recording_reader_frame_info(reader, i, &fi) == 0 && fi.device == device &&
            fi.kind == SK2_STREAM_DEPTH)
            depth[depth_count++] = i;
    }
    if (depth_count == 0) {
        fprintf(stderr,
                "sk2 export: device %zu of %s has no depth frames: no point clouds to make\n",
                device, path);
        goto out;
    }
    size_t first = (size_t)opts->first_frame;
    size_t last = opts->last_frame < 0 ? depth_count - 1 : (size_t)opts->last_frame;
    if (first >= depth_count || last >= depth_count) {
        rc = cli_usage_error("export", "device %zu of %s has %zu depth frames (0..%zu): no %s",
                             device, path, depth_count, depth_count - 1, opts->frames);
        goto out;
    }
    total = last - first + 1;
    const char *no_color_why = "--no-color given";
    if (opts->color >= 0 && s_color_setup(&color, reader, device, &info, &no_color_why) != 0) {
        fprintf(stderr, "sk2 export: out of memory\n");
        goto out;
    }
    if (opts->color > 0 && !color.registration) {
        fprintf(stderr,
                "sk2 export: --color: device %zu of %s has %s, so its points cannot be "
                "coloured; nothing written\n",
                device, path, no_color_why);
        goto out;
    }
    /* cli_output_begin would suggest --force, which export does not take. */
    if (opts->is_single && access(out, F_OK) == 0) {
        char safe[1024];
        rc = cli_usage_error("export", "%s exists: choose a new name",
                             cli_safe(out, safe, sizeof safe));
        goto out;
    }
    if ((rc = cli_output_begin(&output, "export", out, !opts->is_single, false)) != CLI_CONTINUE)
        goto out;
    rc = CLI_EXIT_FAILURE;
    const char *ext = sk2_cloud_format_extension(opts->cloud);
    char file_path[CLI_OUTPUT_PATH_MAX + 32];
    size_t points = 0, all_points = 0;
    if (opts->is_single) {
        if (s_write_cloud(reader, depth[first], &info, opts, &color, output.temp_path, &points) !=
            0)
            goto out;
        all_points = points;
    } else {
        snprintf(file_path, sizeof file_path, "%s/clouds.txt", output.temp_path);
        list = fopen(file_path, "w");
        if (!list) {
            fprintf(stderr, "sk2 export: cannot create clouds.txt: %s\n", strerror(errno));
            goto out;
        }
        fprintf(list,
                "# point clouds (%s, x y z metres%s) of %s device %zu\n# written by sk2\n"
                "# timestamp filename\n",
                ext, color.registration ? ", colour" : "", path, device);
        for (size_t n = first; n <= last; n++) {
            if (!s_progress(&progress, n - first, total)) {
                s_progress_end(&progress);
                fprintf(stderr, "sk2 export: interrupted; nothing written\n");
                rc = CLI_EXIT_INTERRUPTED;
                goto out;
            }
            sk2_recording_frame_info_t fi;
            sk2_recording_reader_frame_info(reader, depth[n], &fi);
            snprintf(file_path, sizeof file_path, "%s/%06zu.%s", output.temp_path, n, ext);
            if (s_write_cloud(reader, depth[n], &info, opts, &color, file_path, &points) != 0)
                goto out;
            all_points += points;
            fprintf(list, "%lld.%06lld %06zu.%s\n", (long long)(fi.capture_time_us / 1000000),
                    (long long)(fi.capture_time_us % 1000000), n, ext);
        }
        s_progress(&progress, total, total);
        s_progress_end(&progress);
        int closed = fclose(list);
        list = NULL;
        if (closed != 0) {
            fprintf(stderr, "sk2 export: cannot write clouds.txt: %s\n", strerror(errno));
            goto out;
        }
    }
    if (cli_output_commit(&output) != 0)
        goto out;
    if (!cli_is_quiet())
        printf("sk2 export: %zu point cloud%s (%zu points; %zu coloured%s%s) of device %zu of %s "
               "written to %s\n",
               total, total == 1 ? "" : "s", all_points,
               color.registration ? total - color.uncolored : 0,
               color.registration ? "" : ", no colour: ", color.registration ? "" : no_color_why,
               device, path, out);
    if (color.uncolored)
        fprintf(stderr,
                "sk2 export: note: %zu of %zu cloud%s written without colour: no colour frame "
                "within %.1f ms of the depth frame\n",
                color.uncolored, total, total == 1 ? "" : "s", (double)color.tolerance_us / 1000.0);
    rc = CLI_EXIT_OK;
out:
    s_color_free(&color);
    if (list)
        fclose(list);
    free(depth);
    cli_output_abandon(&output);
    sk2_recording_reader_destroy(&reader);
    return rc;
}

static void s_import_usage(void)
{
    printf("usage: sk2 import DIR|IN.mcap FILE [--depth-codec C] [--color-codec C]\n"
           "                  [--color-quality Q] [--force] [-v|-q]\n"
           "\n"
           "Turns a TUM RGB-D folder (depth.txt, rgb.txt and their images) or an MCAP file\n"
           "with ROS 2 images (sensor_msgs Image, CompressedImage, CameraInfo in CDR, as\n"
           "`ros2 bag record` or `sk2 export --format mcap` write them) into a recording.\n"
           "MCAP topics are grouped into devices as docs/formats.md says (\"Reading MCAP\").\n"
           "  --depth-codec C     codec for depth and IR (default sk2d; lossless only)\n"
           "  --color-codec C     codec for colour: jpeg (default; lossy), png (lossless,\n"
           "                      some 3-4 times jpeg's size) or raw (lossless and\n"
           "                      uncompressed: 6.2 MB a 1080p frame)\n"
           "  --color-quality Q   jpeg's quality, 1..100 (default %d); jpeg only\n"
           "  --force             replace FILE if it exists (default: refuse)\n"
           "Depth keeps the PNGs' values: TUM's 5000 per metre is recorded as the depth unit\n"
           "(or, for folders sk2 exported, the original unit comes back exactly).\n"
           "From MCAP, 16UC1 depth is millimetres (or the unit sk2's metadata names) and\n"
           "32FC1 depth (metres) is rounded to the nearest millimetre.\n"
           "FILE is written as FILE.partial-XXXXXX and renamed when complete; on a terminal,\n"
           "a line shows the progress.\n"
           "Exit status: 0 written, 1 cannot read or write, 2 usage (also FILE exists without\n"
           "--force), 130 interrupted (Ctrl-C): FILE is left as it was.\n",
           SK2_CODEC_DEFAULT_QUALITY);
}

int cli_import(int argc, char **argv)
{
    static const struct option options[] = {
        {"depth-codec", required_argument, NULL, OPT_DEPTH_CODEC},
        {"color-codec", required_argument, NULL, OPT_COLOR_CODEC},
        {"color-quality", required_argument, NULL, OPT_COLOR_QUALITY},
        {"force", no_argument, NULL, OPT_FORCE},
        CLI_COMMON_LONG_OPTIONS,
    };
    /* Colour is compressed by default: stored raw, a TUM folder of PNGs grows some 17 times. */
    s_options_t opts = {.verb = "import", .codecs = {SK2_CODEC_SK2D, SK2_CODEC_JPEG}};
    int rc = s_parse(options, argc, argv, s_import_usage, &opts);
    const char **codecs = opts.codecs;
    if (rc != CLI_CONTINUE)
        return rc;
    const char *dir = argv[optind], *path = argv[optind + 1];
    if (!sk2_codec_is_lossless(sk2_codec_find(codecs[0])))
        return cli_usage_error("import",
                               "%s is lossy: it would change the depth values; choose "
                               "a lossless codec for depth and IR",
                               codecs[0]);
    const sk2_codec_t *color_codec = sk2_codec_find(codecs[1]);
    if (!sk2_codec_supports(color_codec, SK2_PIXEL_RGB24))
        return cli_usage_error("import", "%s cannot store colour: choose jpeg, png or raw",
                               codecs[1]);
    if (opts.color_quality && !sk2_codec_has_quality(color_codec))
        return cli_usage_error(
            "import", "--color-quality is for jpeg; %s is lossless and has no quality", codecs[1]);
    sk2_codec_options_t *color_options = sk2_codec_options_new();
    if (!color_options ||
        sk2_codec_options_set_quality(color_options, (int)opts.color_quality) != 0) {
        fprintf(stderr, "sk2 import: out of memory\n");
        sk2_codec_options_destroy(&color_options);
        return CLI_EXIT_FAILURE;
    }
    sk2_recording_reader_t *reader = s_open("import", dir);
    if (!reader) {
        sk2_codec_options_destroy(&color_options);
        return CLI_EXIT_FAILURE;
    }
    cli_output_t output;
    rc = cli_output_begin(&output, "import", path, false, opts.is_forced);
    if (rc != CLI_CONTINUE) {
        sk2_recording_reader_destroy(&reader);
        sk2_codec_options_destroy(&color_options);
        return rc;
    }
    s_progress_t progress;
    s_progress_init(&progress, "import");
    sk2_recording_writer_t *writer = sk2_recording_writer_new();
    rc = CLI_EXIT_FAILURE;
    if (!writer || sk2_recording_writer_open(writer, output.temp_path) != 0) {
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
    for (size_t i = 0; i < frames; i++) {
        if (!s_progress(&progress, i, frames)) {
            s_progress_end(&progress);
            fprintf(stderr, "sk2 import: interrupted after %zu of %zu frames; %s not written\n", i,
                    frames, path);
            rc = CLI_EXIT_INTERRUPTED;
            goto out;
        }
        sk2_recording_frame_info_t info;
        sk2_frame_t *frame = NULL;
        sk2_recording_reader_frame_info(reader, i, &info);
        if (sk2_recording_reader_read_frame(reader, i, &frame) != 0) {
            fprintf(stderr, "sk2 import: %s\n", sk2_recording_reader_why(reader));
            goto out;
        }
        bool is_color = info.kind == SK2_STREAM_COLOR;
        int err = sk2_recording_writer_add_frame_opts(writer, info.device, frame,
                                                      sk2_codec_find(codecs[is_color]),
                                                      is_color ? color_options : NULL);
        sk2_frame_destroy(&frame);
        if (err != 0) {
            fprintf(stderr, "sk2 import: %s\n", sk2_recording_writer_why(writer));
            goto out;
        }
    }
    s_progress(&progress, frames, frames);
    s_progress_end(&progress);
    if (sk2_recording_writer_close(writer) != 0) {
        fprintf(stderr, "sk2 import: %s\n", sk2_recording_writer_why(writer));
        goto out;
    }
    if (cli_output_commit(&output) != 0)
        goto out;
    if (!cli_is_quiet())
        printf("sk2 import: %zu frames from %s into %s (%.2f MB)\n", frames, dir, path,
               cli_mb(sk2_recording_writer_bytes(writer)));
    rc = CLI_EXIT_OK;
out:
    sk2_recording_writer_destroy(&writer);
    cli_output_abandon(&output);
    sk2_recording_reader_destroy(&reader);
    sk2_codec_options_destroy(&color_options);
    return rc;
}
