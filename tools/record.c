/* `sk2 record`: subscribes to the streams of a server's devices and writes every frame as it
 * arrived (header and encoded payload, no re-encoding) into an sk2 recording, with each
 * device's description. Frames are not decoded: recording costs a copy to the kernel per frame.
 * A status line shows frames, megabytes and drops (sequence gaps). Ctrl-C, --seconds or
 * --frames end it with the index written; a killed recorder or a full disk leaves a file that
 * reads up to its last complete frame.
 *
 * The file is written as FILE.partial-XXXXXX beside FILE and renamed onto FILE once the
 * recording holds at least one frame and is closed: a recorder that never reached its server,
 * or got nothing from it, leaves an existing FILE as it was. A killed recorder leaves the
 * .partial file (readable, as above).
 *
 * What the recorder acknowledges is on the disk: it flushes the file (fdatasync) at most once a
 * second while frames arrive, and the status line's "synced N" and the summary count only
 * frames flushed, so that a power cut after a line was printed keeps every frame it counted.
 *
 * --format mcap records the same sk2 file beside the output (FILE.partial-XXXXXX.sk2r), with the
 * same guarantees, and converts it into FILE with the MCAP export when the recording ends; an
 * MCAP file has no index until it is finished, and a killed recorder's .sk2r converts later. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "output.h"
#include "session.h"
#include "sk2/sk2.h"

static const char *const s_verb = "record";

/* How often the file is flushed to the disk while frames arrive: a power cut loses at most this
 * much, and a slow disk spends at most one flush per interval. */
#define S_SYNC_INTERVAL_US 1000000

static const sk2_stream_kind_t s_kinds[] = {SK2_STREAM_DEPTH, SK2_STREAM_IR, SK2_STREAM_COLOR};
#define S_KINDS (sizeof s_kinds / sizeof s_kinds[0])

typedef struct {
    cli_server_args_t server; /* SERVER, --timeout, --browse-timeout */
    const char *path;
    long frames;
    double seconds;
    const char *device_id;
    bool wants[S_KINDS];         /* --streams; all by default */
    bool is_streams_given;       /* --streams named the kinds: each must record something */
    bool is_forced;              /* --force: replace an existing FILE */
    bool is_lossy_allowed;       /* --allow-lossy: a lossy codec for depth or IR */
    const char *codecs[S_KINDS]; /* --codec KIND=CODEC, NULL: the default choice */
    double status_interval_s;
    bool has_status;
    double give_up_s;             /* --give-up-after, 0: never */
    bool is_mcap;                 /* --format mcap (s_record_mcap_*) */
    const char *mcap_compression; /* --compression, NULL: zstd */
    sk2_mcap_options_t mcap;      /* --cloud, --depth-as (as export's) */
    bool has_mcap_options;        /* either was given */
} record_options_t;

typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1];
    size_t index; /* in the recording */
} record_device_t;

typedef struct {
    const record_options_t *opts;
    cli_session_t session; /* client, clocks, status line */
    sk2_recording_writer_t *writer;
    record_device_t devices[SK2_RECORDING_MAX_DEVICES];
    size_t device_count;
    uint64_t drops;
    uint64_t kind_frames[S_KINDS]; /* frames recorded per kind, all devices */
    bool has_write_failed;
    uint64_t last_bytes, last_frames;
    int64_t last_sync_us;       /* monotonic time of the last flush */
    int64_t last_frame_wall_us; /* when the newest frame was written, wall clock */
    int64_t gap_start_us;       /* while the server is lost: where its gap begins, else 0 */
    uint64_t gaps;              /* gaps marked in the file */
} record_t;

enum {
    OPT_FRAMES = 256,
    OPT_SECONDS,
    OPT_DEVICE,
    OPT_STREAMS,
    OPT_CODEC,
    OPT_STATUS_INTERVAL,
    OPT_NO_STATUS,
    OPT_FORCE,
    OPT_ALLOW_LOSSY,
    OPT_MAX_FRAME_MB,
    OPT_GIVE_UP_AFTER,
    OPT_MCAP_FORMAT,
    OPT_MCAP_COMPRESSION,
    OPT_MCAP_CLOUD,
    OPT_MCAP_DEPTH_AS,
};

static void s_print_usage(void)
{
    printf("usage: sk2 record [SERVER] -o FILE [--seconds S] [--frames N] [--device ID]\n"
           "                  [--streams LIST] [--codec KIND=CODEC] [--status-interval S]\n"
           "                  [--no-status] [--timeout MS] [--browse-timeout S] [--force]\n"
           "                  [--allow-lossy] [--max-frame-mb M] [--give-up-after S]\n"
           "                  [--keys DIR --server-key KEY] [--format sk2|mcap]\n"
           "                  [--compression zstd|lz4|none] [--depth-as image|png|rvl]\n"
           "                  [--cloud] [-v|-q]\n"
           "\n"
           "Records a server's streams into FILE, frames exactly as sent (no re-encoding).\n"
           "\n" CLI_TARGET_HELP
           "  -o, --output FILE     the recording to write; written as FILE.partial-XXXXXX and\n"
           "                        renamed onto FILE once it holds a frame\n"
           "  --force               replace FILE if it exists (default: refuse)\n"
           "  --seconds S           stop S seconds after connecting\n"
           "  --frames N            stop after N frames in all\n"
           "  --device ID           only this device (default: every device, also new ones)\n"
           "  --streams LIST        comma-separated kinds: depth,ir,color (default: all the\n"
           "                        server offers)\n"
           "  --codec KIND=CODEC    codec to receive a kind in (default: sk2d for depth and IR,\n"
           "                        jpeg for colour, or the first lossless one offered)\n"
           "  --allow-lossy         accept a lossy codec (e.g. jpeg) for depth or IR\n"
           "  --status-interval S   seconds between status lines (default 1)\n"
           "  --no-status           no status lines\n"
           "  --timeout MS          wait at most MS ms for the server (default "
           "%d)\n" CLI_MAX_FRAME_HELP CLI_GIVE_UP_HELP "\n"
           "A lost server is retried until it is back (or --give-up-after); the recording\n"
           "goes on and marks the gap (from the last frame before to the return), which\n"
           "`sk2 inspect` lists.\n"
           "Without --seconds or --frames, records until Ctrl-C. `sk2 inspect FILE` shows\n"
           "what a recording holds; `sk2 serve --replay FILE` plays it. The status line's\n"
           "'synced N' counts the frames flushed to the disk (once a second), which survive\n"
           "a power cut; a killed recorder leaves FILE.partial-XXXXXX: rename it onto FILE.\n"
           "Exit status: 0 frames recorded; 1 none (an existing FILE is kept), a kind named\n"
           "by --streams or --codec recorded nothing, or the file could not be written (it\n"
           "then holds every frame before the failure); 2 usage (also FILE exists without\n"
           "--force); 3 server unreachable at the start, or lost for longer than\n"
           "--give-up-after (the file keeps what was recorded).\n"
           "--format mcap writes FILE as MCAP (as `sk2 export --format mcap`, chunks in\n"
           "--compression, default zstd, and its --depth-as and --cloud): frames are\n"
           "recorded in sk2's format beside it (FILE.partial-XXXXXX.sk2r) and converted\n"
           "when the recording ends, so a killed recorder leaves that file, which\n"
           "`sk2 export` converts.\n",
           SK2_CLIENT_RESPONSE_TIMEOUT_MS);
}

static int s_kind_slot(const char *name, size_t length)
{
    for (size_t i = 0; i < S_KINDS; i++) {
        const char *known = sk2_stream_kind_name(s_kinds[i]);
        if (strlen(known) == length && strncmp(known, name, length) == 0)
            return (int)i;
    }
    return -1;
}

/* --format sk2|mcap, --compression zstd|lz4|none, --depth-as image|png|rvl and --cloud. */
static int s_apply_mcap_option(record_options_t *opts, int opt, const char *arg)
{
    if (opt == OPT_MCAP_CLOUD || opt == OPT_MCAP_DEPTH_AS) {
        opts->has_mcap_options = true;
        if (opt == OPT_MCAP_CLOUD)
            opts->mcap.has_cloud = true;
        else if (sk2_mcap_depth_parse(arg, &opts->mcap.depth) != 0)
            return cli_usage_error(s_verb, "--depth-as takes image, png or rvl, not '%s'", arg);
    } else if (opt == OPT_MCAP_FORMAT) {
        if (strcmp(arg, "sk2") != 0 && strcmp(arg, "mcap") != 0)
            return cli_usage_error(s_verb, "--format takes sk2 or mcap, not '%s'", arg);
        opts->is_mcap = strcmp(arg, "mcap") == 0;
    } else if (strcmp(arg, "zstd") != 0 && strcmp(arg, "lz4") != 0 && strcmp(arg, "none") != 0) {
        return cli_usage_error(s_verb, "--compression takes zstd, lz4 or none, not '%s'", arg);
    } else {
        opts->mcap_compression = arg;
    }
    return CLI_CONTINUE;
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    record_options_t *opts = options;
    if (opt == OPT_MCAP_FORMAT || opt == OPT_MCAP_COMPRESSION || opt == OPT_MCAP_CLOUD ||
        opt == OPT_MCAP_DEPTH_AS)
        return s_apply_mcap_option(opts, opt, arg);
    switch (opt) {
    case 'o':
        if (!*arg)
            return cli_usage_error(s_verb, "-o needs a file name");
        opts->path = arg;
        break;
    case OPT_FRAMES:
        return cli_apply_frames(s_verb, arg, &opts->frames);
    case OPT_SECONDS:
        return cli_apply_seconds(s_verb, arg, &opts->seconds);
    case OPT_DEVICE:
        return cli_apply_device(s_verb, arg, &opts->device_id);
    case OPT_STREAMS: {
        bool wants[S_KINDS] = {false};
        for (const char *p = arg; *p;) {
            size_t length = strcspn(p, ",");
            int slot = s_kind_slot(p, length);
            if (slot < 0)
                return cli_usage_error(s_verb, "--streams takes depth, ir and color, not '%s'",
                                       arg);
            wants[slot] = true;
            p += length + (p[length] == ',');
        }
        memcpy(opts->wants, wants, sizeof wants);
        opts->is_streams_given = true;
        break;
    }
    case OPT_CODEC: {
        const char *equals = strchr(arg, '=');
        int slot = equals ? s_kind_slot(arg, (size_t)(equals - arg)) : -1;
        if (slot < 0 || !sk2_codec_find(equals + 1))
            return cli_usage_error(s_verb, "--codec takes KIND=CODEC (e.g. depth=rvl), not '%s'",
                                   arg);
        opts->codecs[slot] = equals + 1;
        break;
    }
    case OPT_STATUS_INTERVAL:
        if (cli_parse_double(arg, 0.1, 3600.0, &opts->status_interval_s) != 0)
            return cli_usage_error(s_verb, "--status-interval must be 0.1..3600 s, not '%s'", arg);
        break;
    case OPT_NO_STATUS:
        opts->has_status = false;
        break;
    case CLI_OPT_TIMEOUT:
    case CLI_OPT_BROWSE_TIMEOUT:
    case CLI_OPT_KEYS:
    case CLI_OPT_SERVER_KEY:
        return cli_apply_server_option(s_verb, &opts->server, opt, arg);
    case OPT_FORCE:
        opts->is_forced = true;
        break;
    case OPT_ALLOW_LOSSY:
        opts->is_lossy_allowed = true;
        break;
    case OPT_MAX_FRAME_MB:
        return cli_apply_max_frame_mb(s_verb, arg, NULL);
    case OPT_GIVE_UP_AFTER:
        return cli_apply_give_up_after(s_verb, arg, &opts->give_up_s);
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, record_options_t *opts)
{
    static const char optstring[] = ":ho:vq";
    static const struct option options[] = {
        {"output", required_argument, NULL, 'o'},
        {"frames", required_argument, NULL, OPT_FRAMES},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"streams", required_argument, NULL, OPT_STREAMS},
        {"codec", required_argument, NULL, OPT_CODEC},
        {"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
        {"no-status", no_argument, NULL, OPT_NO_STATUS},
        {"force", no_argument, NULL, OPT_FORCE},
        {"allow-lossy", no_argument, NULL, OPT_ALLOW_LOSSY},
        {"max-frame-mb", required_argument, NULL, OPT_MAX_FRAME_MB},
        {"give-up-after", required_argument, NULL, OPT_GIVE_UP_AFTER},
        {"format", required_argument, NULL, OPT_MCAP_FORMAT},
        {"compression", required_argument, NULL, OPT_MCAP_COMPRESSION},
        {"cloud", no_argument, NULL, OPT_MCAP_CLOUD},
        {"depth-as", required_argument, NULL, OPT_MCAP_DEPTH_AS},
        CLI_SERVER_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    int parsed = cli_parse_server_verb(&parser, argc, argv, opts, &opts->server);
    if (parsed != CLI_CONTINUE)
        return parsed;
    if (!opts->path)
        return cli_usage_error(s_verb, "missing -o FILE");
    if (opts->mcap_compression && !opts->is_mcap)
        return cli_usage_error(s_verb, "--compression is for --format mcap");
    if (opts->has_mcap_options && !opts->is_mcap)
        return cli_usage_error(s_verb, "--cloud and --depth-as are for --format mcap");
    /* A lossy codec changes depth values: a recording made with one is no longer the
     * measurement, and replaying it shows other distances. Only on request. */
    for (size_t slot = 0; slot < S_KINDS; slot++)
        if (opts->codecs[slot] && s_kinds[slot] != SK2_STREAM_COLOR && !opts->is_lossy_allowed &&
            !sk2_codec_is_lossless(sk2_codec_find(opts->codecs[slot])))
            return cli_usage_error(s_verb,
                                   "%s is lossy: it would change the recorded %s values; choose "
                                   "a lossless codec (see `sk2 codecs`) or give --allow-lossy",
                                   opts->codecs[slot], sk2_stream_kind_name(s_kinds[slot]));
    return CLI_CONTINUE;
}

/* The codec to receive a stream in: the one asked for, else the first offered of a preference
 * list (lossless for 16-bit streams; JPEG for colour, as the camera's own compression). */
static const char *s_pick_codec(const record_options_t *opts, size_t slot, const char *offered,
                                char *out, size_t size)
{
    static const char *const depth_order[] = {"sk2d", "rvl", "raw"};
    static const char *const color_order[] = {"jpeg", "raw"};
    const char *const *order = s_kinds[slot] == SK2_STREAM_COLOR ? color_order : depth_order;
    size_t count = s_kinds[slot] == SK2_STREAM_COLOR ? 2 : 3;
    char list[256];
    snprintf(list, sizeof list, ",%s,", offered);
    for (size_t i = 0; i < (opts->codecs[slot] ? 1 : count); i++) {
        const char *want = opts->codecs[slot] ? opts->codecs[slot] : order[i];
        char needle[64];
        snprintf(needle, sizeof needle, ",%s,", want);
        if (strstr(list, needle)) {
            snprintf(out, size, "%s", want);
            return out;
        }
    }
    return NULL;
}

/* Describes a device in the recording and subscribes to its chosen streams. */
static void s_add_device(record_t *self, const char *id)
{
    if (self->opts->device_id && strcmp(self->opts->device_id, id) != 0)
        return;
    for (size_t i = 0; i < self->device_count; i++)
        if (strcmp(self->devices[i].id, id) == 0)
            return;
    char safe[4 * SK2_DEVICE_ID_MAX + 1];
    cli_safe(id, safe, sizeof safe);
    sk2_stream_info_t infos[S_KINDS];
    char codecs[S_KINDS][32];
    size_t count = 0;
    bool chosen[S_KINDS] = {false};
    for (size_t slot = 0; slot < S_KINDS; slot++) {
        const char *offered = sk2_client_stream_codecs(self->session.client, id, s_kinds[slot]);
        if (!self->opts->wants[slot] || !offered ||
            sk2_client_stream_info(self->session.client, id, s_kinds[slot], &infos[count]) != 0)
            continue;
        if (!s_pick_codec(self->opts, slot, offered, codecs[slot], sizeof codecs[slot])) {
            cli_status_note(&self->session.status,
                            "sk2 record: device %s offers no %s for %s (only %s)", safe,
                            self->opts->codecs[slot] ? self->opts->codecs[slot] : "codec",
                            sk2_stream_kind_name(s_kinds[slot]), offered);
            continue;
        }
        chosen[slot] = true;
        count++;
    }
    if (count == 0 || self->device_count >= SK2_RECORDING_MAX_DEVICES) {
        cli_status_note(&self->session.status, "sk2 record: nothing to record from device %s",
                        safe);
        return;
    }
    record_device_t *device = &self->devices[self->device_count];
    /* Where the device is, as its server says: kept in the file for registration and rigs. */
    sk2_pose_t pose;
    sk2_extrinsics_t extrinsics;
    bool has_pose = sk2_client_device_pose(self->session.client, id, &pose) == 0;
    bool has_extrinsics =
        sk2_client_device_depth_to_color(self->session.client, id, &extrinsics) == 0;
    int rc = sk2_recording_writer_add_device_placed(
        self->writer, id, sk2_client_device_serial(self->session.client, id),
        sk2_client_device_backend(self->session.client, id), infos, count, has_pose ? &pose : NULL,
        has_extrinsics ? &extrinsics : NULL, &device->index);
    if (rc != 0) {
        cli_status_close(&self->session.status);
        fprintf(stderr, "sk2 record: %s: %s\n", self->opts->path,
                sk2_recording_writer_why(self->writer));
        self->has_write_failed = self->session.is_done = true;
        return;
    }
    snprintf(device->id, sizeof device->id, "%s", id);
    self->device_count++;
    for (size_t slot = 0; slot < S_KINDS; slot++) {
        if (!chosen[slot])
            continue;
        rc = sk2_client_subscribe(self->session.client, id, s_kinds[slot], codecs[slot]);
        if (rc != 0)
            cli_status_note(
                &self->session.status, "sk2 record: cannot subscribe to %s/%s of %s: %s",
                sk2_stream_kind_name(s_kinds[slot]), codecs[slot], safe, sk2_strerror(rc));
        else
            cli_status_note(&self->session.status, "sk2 record: device %s: %s in %s", safe,
                            sk2_stream_kind_name(s_kinds[slot]), codecs[slot]);
    }
}

static void s_on_connected(record_t *self)
{
    cli_session_connected(&self->session, self->opts->seconds, self->opts->status_interval_s);
    for (size_t i = 0; i < sk2_client_device_count(self->session.client); i++)
        s_add_device(self, sk2_client_device_id(self->session.client, i));
    if (self->device_count == 0 && !self->session.is_done) {
        cli_status_close(&self->session.status);
        fprintf(stderr, "sk2 record: %s has %s\n", self->session.endpoint,
                self->opts->device_id ? "no such device"
                                      : "no device with a streams endpoint (a version-1 server "
                                        "cannot be recorded)");
        self->session.end_rc = CLI_EXIT_FAILURE;
        self->session.is_done = true;
    }
}

/* Flushes the recording when the last flush is S_SYNC_INTERVAL_US old (or at once when
 * is_forced). A disk that refuses to flush ends the recording like a failed write. */
static void s_sync(record_t *self, bool is_forced)
{
    int64_t now = sk2_clock_mono_us();
    if (self->has_write_failed || (!is_forced && now - self->last_sync_us < S_SYNC_INTERVAL_US) ||
        sk2_recording_writer_frames_synced(self->writer) ==
            sk2_recording_writer_frames(self->writer))
        return;
    self->last_sync_us = now;
    if (sk2_recording_writer_sync(self->writer) != 0) {
        cli_status_close(&self->session.status);
        fprintf(stderr, "sk2 record: %s: %s; the file holds %llu frames, %llu of them flushed\n",
                self->opts->path, sk2_recording_writer_why(self->writer),
                (unsigned long long)sk2_recording_writer_frames(self->writer),
                (unsigned long long)sk2_recording_writer_frames_synced(self->writer));
        self->has_write_failed = self->session.is_done = true;
    }
}

static void s_on_frame(record_t *self, const sk2_event_t *event)
{
    const char *id = sk2_event_device_id(event);
    const uint8_t *header = NULL, *payload = NULL;
    size_t header_size = 0, payload_size = 0;
    if (!id || sk2_event_encoded(event, &header, &header_size, &payload, &payload_size) != 0)
        return;
    for (size_t i = 0; i < self->device_count; i++) {
        if (strcmp(self->devices[i].id, id) != 0)
            continue;
        self->drops += sk2_event_gap(event);
        /* The kind is byte 8 of the frame header (docs/protocol.md), checked by the writer. */
        for (size_t slot = 0; slot < S_KINDS && header_size > 8; slot++)
            if ((uint8_t)s_kinds[slot] == header[8])
                self->kind_frames[slot]++;
        self->last_frame_wall_us = sk2_clock_wall_us();
        if (sk2_recording_writer_add_encoded(self->writer, self->devices[i].index, header,
                                             header_size, payload, payload_size) != 0) {
            cli_status_close(&self->session.status);
            fprintf(stderr, "sk2 record: %s: %s; the file holds the %llu frames before\n",
                    self->opts->path, sk2_recording_writer_why(self->writer),
                    (unsigned long long)sk2_recording_writer_frames(self->writer));
            self->has_write_failed = self->session.is_done = true;
        }
        break;
    }
    s_sync(self, false);
    if (self->opts->frames > 0 &&
        sk2_recording_writer_frames(self->writer) >= (uint64_t)self->opts->frames)
        self->session.is_done = true;
}

/* Marks the gap from gap_start_us to now in the recording, once the server is back (or the
 * recording ends without it). A recording that has no device yet has nothing to mark. */
static void s_mark_gap(record_t *self)
{
    int64_t start_us = self->gap_start_us;
    self->gap_start_us = 0;
    if (start_us <= 0 || self->device_count == 0 || self->has_write_failed)
        return;
    int64_t end_us = sk2_clock_wall_us();
    if (sk2_recording_writer_add_gap(self->writer, start_us,
                                     end_us < start_us ? start_us : end_us) != 0) {
        cli_status_close(&self->session.status);
        fprintf(stderr, "sk2 record: %s: cannot mark the gap: %s\n", self->opts->path,
                sk2_recording_writer_why(self->writer));
        return;
    }
    self->gaps++;
    cli_status_note(&self->session.status, "sk2 record: gap of %.1f s marked after frame %llu",
                    (double)(end_us - start_us) / 1e6,
                    (unsigned long long)sk2_recording_writer_frames(self->writer));
}

static void s_on_event(void *verb, const sk2_event_t *event)
{
    record_t *self = verb;
    switch (sk2_event_type(event)) {
    case SK2_EVENT_CONNECTED:
        s_on_connected(self);
        break;
    case SK2_EVENT_DEVICE_ADDED:
        if (self->session.is_connected && sk2_event_device_id(event))
            s_add_device(self, sk2_event_device_id(event));
        break;
    case SK2_EVENT_FRAME:
        s_on_frame(self, event);
        break;
    case SK2_EVENT_RECONNECTING:
        /* The gap starts with the last frame written, not when the loss was noticed: the
         * response timeout lies in between. */
        self->gap_start_us =
            self->last_frame_wall_us > 0 ? self->last_frame_wall_us : sk2_event_lost_at_us(event);
        break;
    case SK2_EVENT_RECONNECTED:
        s_mark_gap(self);
        break;
    default:
        break;
    }
}

static void s_print_status(void *verb, int64_t interval_us)
{
    record_t *self = verb;
    s_sync(self, false);
    uint64_t frames = sk2_recording_writer_frames(self->writer);
    uint64_t bytes = sk2_recording_writer_bytes(self->writer);
    cli_status_print(&self->session.status,
                     "frames %llu | synced %llu | %.1f fps | %.2f MB | %.2f MB/s | drops %llu",
                     (unsigned long long)frames,
                     (unsigned long long)sk2_recording_writer_frames_synced(self->writer),
                     cli_per_second(frames - self->last_frames, interval_us), cli_mb(bytes),
                     cli_mb_per_second(bytes - self->last_bytes, interval_us),
                     (unsigned long long)self->drops);
    self->last_frames = frames;
    self->last_bytes = bytes;
}

/* Where the sk2 recording goes: the temporary output itself, or for --format mcap a file
 * beside it, converted at the end (s_record_mcap_finish). */
static void s_record_path(const record_options_t *opts, const cli_output_t *output, char *path,
                          size_t size)
{
    snprintf(path, size, "%s%s", output->temp_path, opts->is_mcap ? ".sk2r" : "");
}

/* --format mcap: converts the closed sk2 recording into the temporary output. Returns 0 or -1
 * after saying why (the sk2 recording is then kept, and named). */
static int s_record_mcap_finish(const record_options_t *opts, const cli_output_t *output,
                                const char *sk2_path)
{
    if (!opts->is_mcap)
        return 0;
    char why[512];
    sk2_recording_reader_t *reader = sk2_recording_reader_new();
    int rc = reader ? sk2_recording_reader_open(reader, sk2_path) : SK2_ENOMEM;
    sk2_mcap_options_t with = opts->mcap;
    with.compression = opts->mcap_compression;
    if (rc == 0)
        rc = sk2_recording_export_mcap_with(reader, SK2_MCAP_ALL_DEVICES, output->temp_path, &with,
                                            NULL, NULL, why, sizeof why);
    else
        snprintf(why, sizeof why, "%s", reader ? sk2_recording_reader_why(reader) : "no memory");
    sk2_recording_reader_destroy(&reader);
    if (rc != 0) {
        fprintf(stderr, "sk2 record: cannot write %s as MCAP: %s; the frames are in %s\n",
                opts->path, why, sk2_path);
        return -1;
    }
    return 0;
}

int cli_record(int argc, char **argv)
{
    record_options_t opts = {.wants = {true, true, true},
                             .status_interval_s = 1.0,
                             .has_status = true,
                             .server = CLI_SERVER_ARGS_DEFAULT};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    record_t self = {.opts = &opts};
    cli_output_t output;
    rc = cli_output_begin(&output, s_verb, opts.path, false, opts.is_forced);
    if (rc != CLI_CONTINUE)
        return rc;
    char sk2_path[CLI_OUTPUT_PATH_MAX + 8];
    s_record_path(&opts, &output, sk2_path, sizeof sk2_path);
    self.writer = sk2_recording_writer_new();
    if (!self.writer || sk2_recording_writer_open(self.writer, sk2_path) != 0) {
        fprintf(stderr, "sk2 record: %s\n",
                self.writer ? sk2_recording_writer_why(self.writer) : "out of memory");
        sk2_recording_writer_destroy(&self.writer);
        cli_output_abandon(&output);
        return CLI_EXIT_FAILURE;
    }
    rc = cli_session_open(&self.session, s_verb, opts.server.target, opts.server.timeout_ms,
                          opts.server.browse_ms, stdout, opts.has_status);
    if (rc != CLI_CONTINUE) {
        sk2_recording_writer_destroy(&self.writer);
        cli_output_abandon(&output);
        return rc;
    }
    /* Frames are written as they arrived: nothing to decode. */
    sk2_client_set_decode(self.session.client, false);
    cli_session_give_up_after(&self.session, opts.give_up_s);
    static const cli_session_hooks_t hooks = {s_on_event, s_print_status};
    while (cli_session_step(&self.session, &hooks, &self))
        ;
    /* Stopped while the server was away: the gap runs to the end of the recording. */
    if (self.gap_start_us > 0)
        s_mark_gap(&self);
    double seconds = cli_session_seconds(&self.session);
    uint64_t rejected = sk2_client_frames_rejected(self.session.client);
    cli_session_close(&self.session);
    uint64_t frames = sk2_recording_writer_frames(self.writer);
    if (sk2_recording_writer_close(self.writer) != 0 && !self.has_write_failed) {
        fprintf(stderr, "sk2 record: %s: %s\n", opts.path, sk2_recording_writer_why(self.writer));
        self.has_write_failed = true;
    }
    uint64_t bytes = sk2_recording_writer_bytes(self.writer);
    uint64_t synced = sk2_recording_writer_frames_synced(self.writer);
    sk2_recording_writer_destroy(&self.writer);
    /* Success, for the file, is a recording with a frame in it: it replaces FILE even when the
     * server was lost or the disk filled up later (the frames before are the user's). With no
     * frame, FILE stays as it was. */
    bool is_kept = frames > 0 && s_record_mcap_finish(&opts, &output, sk2_path) == 0 &&
                   cli_output_commit(&output) == 0;
    if (!is_kept)
        cli_output_abandon(&output);
    if (opts.is_mcap && (frames == 0 || is_kept))
        unlink(sk2_path);
    printf("sk2 record: %llu frames, %.2f MB in %.2f s from %zu device(s) into %s, drops %llu, "
           "gaps %llu\n",
           (unsigned long long)frames, cli_mb(bytes), seconds, self.device_count,
           is_kept ? opts.path : "nothing", (unsigned long long)self.drops,
           (unsigned long long)self.gaps);
    if (synced < frames)
        printf("sk2 record: only %llu of the frames are known to be on the disk (the last flush "
               "failed)\n",
               (unsigned long long)synced);
    if (rejected)
        printf("sk2 record: %llu frames not recorded: over the frame limit or not as their "
               "stream advertised\n",
               (unsigned long long)rejected);
    if (self.session.end_rc)
        return self.session.end_rc;
    if (self.has_write_failed || (frames > 0 && !is_kept))
        return CLI_EXIT_FAILURE;
    if (frames == 0) {
        fprintf(stderr, "sk2 record: no frames arrived; %s was not written\n", opts.path);
        return CLI_EXIT_FAILURE;
    }
    /* A kind asked for by name that never arrived (not offered, not in that codec, or the
     * device never sent one) is a failed request, not a smaller recording. */
    int missing = 0;
    for (size_t slot = 0; slot < S_KINDS; slot++)
        if (self.kind_frames[slot] == 0 &&
            (opts.codecs[slot] || (opts.is_streams_given && opts.wants[slot]))) {
            fprintf(stderr, "sk2 record: no %s frames were recorded%s%s\n",
                    sk2_stream_kind_name(s_kinds[slot]), opts.codecs[slot] ? " in " : "",
                    opts.codecs[slot] ? opts.codecs[slot] : "");
            missing++;
        }
    return missing ? CLI_EXIT_FAILURE : CLI_EXIT_OK;
}
