/* `sk2 inspect`: what a recording (or TUM RGB-D folder) holds: its format and whether it was
 * closed properly, the devices with their streams and intrinsics, and per stream the frames,
 * codec, sequence range, duration, rate, gaps and bytes. Then it reads every frame back and
 * checks it (the chunk's CRC in an sk2 file, that the image decodes in a TUM folder) and lists
 * each damaged one: an index that is whole says nothing about the bytes it points to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "inspect";

typedef struct {
    size_t device;
    sk2_stream_kind_t kind;
    const char *codec;
    bool is_mixed; /* more than one codec */
    uint64_t frames, bytes, first_seq, last_seq, gaps, missing;
    int64_t first_us, last_us;
} inspect_stream_t;

static void s_print_usage(void)
{
    printf("usage: sk2 inspect FILE_OR_TUM_DIR [--index-only] [--max-frame-mb M] [-v|-q]\n"
           "\n"
           "Describes a recording: devices, streams, frame counts, duration, gaps (frames\n"
           "missing from sequence numbers, and outages the recorder marked); frames out\n"
           "of limits (unlike their stream's description, or over the frame budget); and\n"
           "checks every frame (CRC, or that a TUM image decodes), listing the damaged ones.\n"
           "\n"
           "  --index-only   describe from the index alone; do not read the "
           "frames\n" CLI_MAX_FRAME_HELP "\n"
           "Exit status: 0 readable, no frame damaged or out of limits (also when cut short:\n"
           "it says so), 1 not readable or some frame damaged or out of limits, 2 usage.\n");
}

static void s_print_stream_info(const sk2_stream_info_t *info)
{
    printf("    %-5s %s %ux%u %.4g fps", sk2_stream_kind_name(info->kind),
           sk2_pixel_format_name(info->format), info->width, info->height, info->fps);
    if (info->depth_unit_m > 0)
        printf(", unit %.6g m", info->depth_unit_m);
    if (info->has_intrinsics)
        printf(", fx %.6g fy %.6g cx %.6g cy %.6g k1 %.4g k2 %.4g k3 %.4g p1 %.4g p2 %.4g",
               info->intrinsics.fx, info->intrinsics.fy, info->intrinsics.cx, info->intrinsics.cy,
               info->intrinsics.k1, info->intrinsics.k2, info->intrinsics.k3, info->intrinsics.p1,
               info->intrinsics.p2);
    printf("\n");
}

/* Gathers per-stream figures from the index. Returns the number of streams, or 0. */
static size_t s_gather(const sk2_recording_reader_t *reader, inspect_stream_t *streams, size_t max,
                       int64_t *first_us, int64_t *last_us)
{
    size_t count = 0;
    size_t frames = sk2_recording_reader_frame_count(reader);
    for (size_t i = 0; i < frames; i++) {
        sk2_recording_frame_info_t info;
        if (sk2_recording_reader_frame_info(reader, i, &info) != 0)
            continue;
        if (i == 0 || info.capture_time_us < *first_us)
            *first_us = info.capture_time_us;
        if (i == 0 || info.capture_time_us > *last_us)
            *last_us = info.capture_time_us;
        inspect_stream_t *s = NULL;
        for (size_t j = 0; j < count; j++)
            if (streams[j].device == info.device && streams[j].kind == info.kind)
                s = &streams[j];
        if (!s && count == max)
            continue;
        if (!s) {
            s = &streams[count++];
            *s = (inspect_stream_t){.device = info.device,
                                    .kind = info.kind,
                                    .codec = info.codec,
                                    .first_seq = info.sequence,
                                    .last_seq = info.sequence,
                                    .first_us = info.capture_time_us};
        } else if (info.sequence > s->last_seq + 1) {
            s->gaps++;
            s->missing += info.sequence - s->last_seq - 1;
        }
        s->is_mixed |= strcmp(s->codec, info.codec) != 0;
        if (info.sequence > s->last_seq)
            s->last_seq = info.sequence;
        s->last_us = info.capture_time_us;
        s->frames++;
        s->bytes += info.stored_bytes;
    }
    return count;
}

/* Reads every frame back and prints the damaged ones. Returns how many were damaged. */
static size_t s_verify(sk2_recording_reader_t *reader)
{
    /* TUM folders and MCAP files hand out images, not wire frames: decoding is the check. */
    bool is_tum = strcmp(sk2_recording_reader_format(reader), "sk2") != 0;
    size_t frames = sk2_recording_reader_frame_count(reader);
    size_t damaged = 0;
    for (size_t i = 0; i < frames; i++) {
        sk2_recording_frame_info_t info;
        if (sk2_recording_reader_frame_info(reader, i, &info) != 0)
            continue;
        int rc;
        if (is_tum) {
            /* A TUM folder has no checksums: the best check is that the image decodes (an MCAP
             * file's CRCs were checked at open; decoding checks the messages). */
            sk2_frame_t *frame = NULL;
            rc = sk2_recording_reader_read_frame(reader, i, &frame);
            sk2_frame_destroy(&frame);
        } else {
            const uint8_t *header = NULL, *payload = NULL;
            size_t header_size = 0, payload_size = 0;
            rc = sk2_recording_reader_read_encoded(reader, i, &header, &header_size, &payload,
                                                   &payload_size);
        }
        if (rc == 0)
            continue;
        char safe[1024];
        printf("damaged   frame %zu: device %zu %s sequence %llu: %s\n", i, info.device,
               sk2_stream_kind_name(info.kind), (unsigned long long)info.sequence,
               cli_safe(sk2_recording_reader_why(reader), safe, sizeof safe));
        damaged++;
    }
    return damaged;
}

/* Frames that break the limits (sk2_recording_reader_check_frame): counted, the first named. */
static size_t s_check_limits(sk2_recording_reader_t *reader)
{
    size_t bad = 0;
    char safe[1024];
    for (size_t i = 0; i < sk2_recording_reader_frame_count(reader); i++) {
        if (sk2_recording_reader_check_frame(reader, i) == 0)
            continue;
        if (bad++ == 0)
            printf("limits    %s\n", cli_safe(sk2_recording_reader_why(reader), safe, sizeof safe));
    }
    if (bad)
        printf("limits    %zu frames out of limits (unreadable: replay skips them)\n", bad);
    return bad;
}

typedef struct {
    bool is_index_only;
    size_t max_frame_bytes;
} inspect_options_t;

enum { OPT_INDEX_ONLY = 256, OPT_MAX_FRAME_MB };

static int s_apply_option(void *options, int opt, const char *arg)
{
    inspect_options_t *opts = options;
    if (opt == OPT_INDEX_ONLY)
        opts->is_index_only = true;
    else if (opt == OPT_MAX_FRAME_MB)
        return cli_apply_max_frame_mb(s_verb, arg, &opts->max_frame_bytes);
    return CLI_CONTINUE;
}

int cli_inspect(int argc, char **argv)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"index-only", no_argument, NULL, OPT_INDEX_ONLY},
        {"max-frame-mb", required_argument, NULL, OPT_MAX_FRAME_MB},
        CLI_COMMON_LONG_OPTIONS,
    };
    inspect_options_t opts = {.max_frame_bytes = SK2_LIMIT_FRAME_BYTES};
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    int parsed = cli_parse_options(&parser, argc, argv, &opts);
    if (parsed != CLI_CONTINUE)
        return parsed;
    if (optind + 1 != argc)
        return cli_usage_error(s_verb, "expected one FILE or TUM folder");
    const char *path = argv[optind];
    sk2_recording_reader_t *reader = sk2_recording_reader_new();
    if (reader)
        sk2_recording_reader_set_max_frame_bytes(reader, opts.max_frame_bytes);
    int rc = reader ? sk2_recording_reader_open(reader, path) : SK2_ENOMEM;
    if (rc != 0) {
        fprintf(stderr, "sk2 inspect: %s: %s\n", path,
                reader ? sk2_recording_reader_why(reader) : "out of memory");
        sk2_recording_reader_destroy(&reader);
        return CLI_EXIT_FAILURE;
    }
    unsigned major = 0, minor = 0;
    sk2_recording_reader_version(reader, &major, &minor);
    char safe[1024];
    printf("recording %s\n", cli_safe(path, safe, sizeof safe));
    if (strcmp(sk2_recording_reader_format(reader), "tum") == 0)
        printf("format    TUM RGB-D folder\n");
    else if (strcmp(sk2_recording_reader_format(reader), "mcap") == 0)
        printf("format    MCAP (ROS 2 images), %s\n",
               sk2_recording_reader_has_index(reader)
                   ? "complete"
                   : "cut off: read up to its last whole record");
    else
        printf("format    sk2 %u.%u, %s\n", major, minor,
               sk2_recording_reader_has_index(reader) ? "index ok"
                                                      : "not closed: index rebuilt by scanning");
    const char *note = sk2_recording_reader_why(reader);
    if (*note)
        printf("note      %s\n", cli_safe(note, safe, sizeof safe));
    if (sk2_recording_reader_ignored_bytes(reader) > 0)
        printf("ignored   %llu bytes after the last complete chunk\n",
               (unsigned long long)sk2_recording_reader_ignored_bytes(reader));
    size_t devices = sk2_recording_reader_device_count(reader);
    printf("devices   %zu\n", devices);
    for (size_t d = 0; d < devices; d++) {
        char id[4 * SK2_DEVICE_ID_MAX + 1], serial[4 * SK2_DEVICE_ID_MAX + 1], backend[128];
        printf("  %zu: %s  backend %s  serial %s\n", d,
               cli_safe(sk2_recording_reader_device_id(reader, d), id, sizeof id),
               cli_safe(sk2_recording_reader_device_backend(reader, d), backend, sizeof backend),
               cli_safe(sk2_recording_reader_device_serial(reader, d), serial, sizeof serial));
        for (size_t s = 0; s < sk2_recording_reader_stream_count(reader, d); s++) {
            sk2_stream_info_t info;
            if (sk2_recording_reader_stream_info(reader, d, s, &info) == 0)
                s_print_stream_info(&info);
        }
    }
    inspect_stream_t streams[SK2_RECORDING_MAX_DEVICES * 4];
    int64_t first_us = 0, last_us = 0;
    size_t count =
        s_gather(reader, streams, sizeof streams / sizeof streams[0], &first_us, &last_us);
    size_t frames = sk2_recording_reader_frame_count(reader);
    printf("frames    %zu\n", frames);
    printf("duration  %.3f s\n", frames ? (double)(last_us - first_us) / 1e6 : 0.0);
    for (size_t i = 0; i < count; i++) {
        const inspect_stream_t *s = &streams[i];
        double seconds = (double)(s->last_us - s->first_us) / 1e6;
        printf("  device %zu %-5s %-5s %llu frames, sequence %llu..%llu, %.3f s, %.2f fps, "
               "gaps %llu (%llu frames missing), %.2f MB\n",
               s->device, sk2_stream_kind_name(s->kind), s->is_mixed ? "mixed" : s->codec,
               (unsigned long long)s->frames, (unsigned long long)s->first_seq,
               (unsigned long long)s->last_seq, seconds,
               seconds > 0 ? (double)(s->frames - 1) / seconds : 0.0, (unsigned long long)s->gaps,
               (unsigned long long)s->missing, cli_mb(s->bytes));
    }
    /* Gaps in time the recorder marked: the server was lost between these instants. */
    size_t outages = sk2_recording_reader_gap_count(reader);
    if (outages > 0)
        printf("outages   %zu (the server was lost; nothing recorded in between)\n", outages);
    for (size_t i = 0; i < outages; i++) {
        int64_t start_us = 0, end_us = 0;
        uint64_t before = 0;
        if (sk2_recording_reader_gap(reader, i, &start_us, &end_us, &before) == 0)
            printf("  gap %zu after frame %llu: %.3f s, from %.3f to %.3f s after the first "
                   "frame\n",
                   i, (unsigned long long)before, (double)(end_us - start_us) / 1e6,
                   (double)(start_us - first_us) / 1e6, (double)(end_us - first_us) / 1e6);
    }
    int exit_code = CLI_EXIT_OK;
    if (s_check_limits(reader) > 0)
        exit_code = CLI_EXIT_FAILURE;
    if (!opts.is_index_only) {
        size_t damaged = s_verify(reader);
        printf("checked   %zu frames, %zu damaged\n", frames, damaged);
        if (damaged > 0) {
            fprintf(stderr, "sk2 inspect: %s: %zu of %zu frames are damaged\n",
                    cli_safe(path, safe, sizeof safe), damaged, frames);
            exit_code = CLI_EXIT_FAILURE;
        }
    }
    sk2_recording_reader_destroy(&reader);
    return exit_code;
}
