/* `sk2 stream`: connects to a server, receives frames of every device (or of one) and
 * measures them per stream: frames and rate, bytes on the wire against decoded bytes, and with
 * --check-mock whether each depth frame is exactly the mock scene.
 *
 * Without --stream it reads the version-1 depth endpoint, which any streamkinect2 server has;
 * that endpoint carries no sequence numbers or timestamps, so gaps and latency are reported as
 * unknown rather than guessed. With --stream KIND[:CODEC] it subscribes on sk2's streams
 * endpoint and also reports latency percentiles and the frames missed (sequence gaps). Every
 * wait is bounded by the next status line, the --seconds limit or the connection timeout. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "meter.h"
#include "session.h"
#include "sk2/sk2.h"
#include "stream_frameset.h"

static const char *const s_verb = "stream";

/* Most devices tracked one by one; frames of any more still count in the totals. */
#define STREAM_DEVICES_MAX 4096
/* Mock mismatches described one by one before only counting them. */
#define STREAM_MISMATCH_NOTES 3
/* --stream options at most (the client allows 16 subscriptions per device). */
#define STREAM_WANTED_MAX 8
/* Streams measured one by one (device x stream x codec); frames of any more count in totals. */
#define STREAM_METERS_MAX 256
/* Outages listed one by one in the summary; more are only counted. */
#define STREAM_OUTAGES_MAX 64
/* Streams shown on a status line before "+N more". */
#define STREAM_STATUS_SHOWN 4

/* One --stream: a stream kind and the codec to receive it in. */
typedef struct {
    sk2_stream_kind_t kind;
    const char *codec; /* static name from the codec registry; NULL: the server's default */
} stream_wanted_t;

typedef struct {
    cli_server_args_t server; /* SERVER, --timeout (wait for the server), --browse-timeout */
    long frames;              /* stop after this many frames, 0 = no limit */
    double seconds;           /* stop this long after connecting, 0 = no limit */
    const char *device_id;    /* only this device, or NULL for all */
    bool is_check_mock;       /* compare every frame with the mock scene */
    double status_interval_s; /* seconds between status lines */
    bool has_status;          /* print status lines */
    bool is_json;             /* summary as one JSON line */
    double give_up_s;         /* --give-up-after, 0: never */
    stream_wanted_t wanted[STREAM_WANTED_MAX]; /* --stream; none: the v1 depth endpoint */
    size_t wanted_count;
    unsigned queue_frames; /* --queue: the client's queue bound per stream, 0: none */
    bool is_paused;        /* --paused: start with every stream paused */
} stream_options_t;

typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1];
    uint64_t frames; /* frames received */
    bool is_active;  /* enabled and not removed */
} stream_device_t;

/* The measurements of one stream of one device in one codec. */
typedef struct {
    size_t device;          /* index into stream_t.devices */
    sk2_stream_kind_t kind; /* what it carries */
    const char *codec;      /* static name */
    meter_t meter;
} stream_meter_t;

typedef struct {
    const stream_options_t *opts;
    cli_session_t session;    /* client, clocks, status line */
    stream_device_t *devices; /* every device enabled so far */
    size_t device_count;
    size_t device_cap;
    stream_meter_t *meters; /* one per (device, stream, codec) seen so far */
    size_t meter_count;
    size_t meter_cap;
    uint64_t frames;          /* frames received */
    uint64_t wire_bytes;      /* encoded bytes received */
    uint64_t raw_bytes;       /* decoded pixel bytes */
    uint64_t gaps;            /* frames missed (sequence jumps), streams endpoint only */
    uint64_t mismatches;      /* frames that are not the mock scene */
    uint64_t removed;         /* DEVICE_REMOVED events */
    uint64_t last_frames;     /* frames at the previous status line */
    uint64_t last_wire_bytes; /* wire bytes at the previous status line */
    struct {
        int64_t lost_at_us;        /* wall clock when the loss was noticed */
        int64_t outage_us;         /* how long until the server answered again */
        uint64_t frames;           /* frames received before it */
    } outages[STREAM_OUTAGES_MAX]; /* the gaps in time, for the summary */
    size_t outage_count;
    bool is_paused;        /* every stream paused now (--paused, SIGUSR1) */
    uint64_t pauses;       /* times paused */
    unsigned toggles_seen; /* SIGUSR1s handled */
} stream_t;

/* SIGUSR1s received: each toggles pause of every stream (handled in the loop, not here). */
static volatile sig_atomic_t s_toggles;

static void s_on_usr1(int signum)
{
    (void)signum;
    s_toggles++;
}

enum {
    OPT_FRAMES = 256,
    OPT_SECONDS,
    OPT_DEVICE,
    OPT_CHECK_MOCK,
    OPT_STATUS_INTERVAL,
    OPT_NO_STATUS,
    OPT_JSON,
    OPT_STREAM,
    OPT_MAX_FRAME_MB,
    OPT_GIVE_UP_AFTER,
    OPT_QUEUE,
    OPT_PAUSED,
};

static void s_print_usage(void)
{
    printf("usage: sk2 stream [SERVER] [--stream KIND[:CODEC]]... [--frames N] [--seconds S]\n"
           "                  [--device ID] [--check-mock] [--status-interval S] [--no-status]\n"
           "                  [--json] [--timeout MS] [--browse-timeout S]\n"
           "                  [--max-frame-mb M] [--give-up-after S] [--queue N] [--paused]\n"
           "                  [--keys DIR --server-key KEY] [-v|-q]\n"
           "       sk2 stream SERVER... --frameset [--tolerance-ms MS] [--no-clock] [--json]\n"
           "                  (matched framesets of several servers: --frameset --help)\n"
           "\n"
           "Receives frames from a server and measures them per stream.\n"
           "\n" CLI_TARGET_HELP
           "  --frames N            stop after N frames in all (default: no limit)\n"
           "  --seconds S           stop S seconds after connecting (default: no limit);\n"
           "                        with neither, run until Ctrl-C\n"
           "  --stream KIND[:CODEC] receive this stream (depth, ir or color) in this codec\n"
           "                        (default: the server's default for the stream, see\n"
           "                        sk2 ctl's codec.KIND; sk2d, jpeg for color) from the\n"
           "                        streams endpoint; repeatable, up to %d. Without it: depth\n"
           "                        from the version-1 depth endpoint (depth12)\n"
           "  --device ID           only this device (default: every device, also new ones)\n"
           "  --check-mock          check that every depth frame is the mock scene\n"
           "  --status-interval S   seconds between status lines (default 1)\n"
           "  --no-status           no status lines\n"
           "  --json                print the summary as one JSON object on stdout (status\n"
           "                        lines then go to stderr)\n"
           "  --timeout MS          wait at most MS milliseconds for the server, %d..%d\n"
           "                        (default %d)\n" CLI_MAX_FRAME_HELP CLI_GIVE_UP_HELP
           "  --queue N             keep at most N frames per --stream waiting to be handled,\n"
           "                        dropping the oldest (the newest wins), 1..%d; the drops\n"
           "                        are counted and the server's stats show them\n"
           "  --paused              start with every stream paused (send SIGUSR1 to resume)\n"
           "\n"
           "SIGUSR1 pauses every stream, and the next one resumes them: the server stops\n"
           "sending (and, if nobody else wants them, encoding) while the connection stays.\n"
           "\n"
           "A lost server (no answer within --timeout) is reported on stderr and retried\n"
           "(100 ms, doubling up to 5 s); when it is back the streams are received again and\n"
           "the gap is reported, and listed in the summary (\"outages\" with --json).\n"
           "\n"
           "Per stream it shows fps, MB/s on the wire, compression ratio, latency p50/p99\n"
           "(capture to decoded, over the last %d frames; meaningful when both hosts' clocks\n"
           "agree) and gaps (frames missed, from sequence numbers). The v1 depth endpoint\n"
           "carries no sequence numbers or timestamps: there, gaps and latency are n/a.\n"
           "\n"
           "Exit status: 0 the frame goal was met (or, without --frames, at least one frame\n"
           "arrived, or the streams were left paused) and no mock check failed; 1 nothing\n"
           "arrived, too few frames, a mock check failed or discovery is unavailable; 2 usage\n"
           "(or several servers and none named); 3 server unreachable at the start (or no\n"
           "server found), or lost for longer than --give-up-after.\n",
           STREAM_WANTED_MAX, CLI_TIMEOUT_MIN_MS, CLI_TIMEOUT_MAX_MS,
           SK2_CLIENT_RESPONSE_TIMEOUT_MS, SK2_CLIENT_QUEUE_FRAMES_MAX, METER_LATENCY_SAMPLES);
}

/* Parses KIND[:CODEC] into the next --stream slot. */
static int s_parse_stream(stream_options_t *opts, const char *arg)
{
    static const sk2_stream_kind_t kinds[] = {SK2_STREAM_DEPTH, SK2_STREAM_IR, SK2_STREAM_COLOR};
    if (opts->wanted_count == STREAM_WANTED_MAX)
        return cli_usage_error(s_verb, "at most %d --stream options", STREAM_WANTED_MAX);
    const char *colon = strchr(arg, ':');
    size_t kind_len = colon ? (size_t)(colon - arg) : strlen(arg);
    stream_wanted_t wanted = {0};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        const char *name = sk2_stream_kind_name(kinds[i]);
        if (strlen(name) == kind_len && strncmp(arg, name, kind_len) == 0)
            wanted.kind = kinds[i];
    }
    if (!wanted.kind)
        return cli_usage_error(s_verb, "--stream: unknown stream in '%s' (depth, ir or color)",
                               arg);
    /* Without a codec, the one the server names as the stream's default (its `codec.KIND`). */
    const sk2_codec_t *codec = colon ? sk2_codec_find(colon + 1) : NULL;
    if (colon && !codec)
        return cli_usage_error(s_verb, "--stream: unknown codec '%s' (see sk2 codecs)", colon + 1);
    if (codec && strcmp(sk2_codec_name(codec), SK2_CODEC_DEPTH12) == 0)
        return cli_usage_error(s_verb, "--stream: depth12 is the version-1 endpoint's codec; "
                                       "leave --stream out to receive it");
    wanted.codec = codec ? sk2_codec_name(codec) : NULL;
    for (size_t i = 0; i < opts->wanted_count; i++)
        if (opts->wanted[i].kind == wanted.kind && opts->wanted[i].codec == wanted.codec)
            return CLI_CONTINUE; /* the same twice is one subscription */
    opts->wanted[opts->wanted_count++] = wanted;
    return CLI_CONTINUE;
}

/* Applies one option's value; returns CLI_CONTINUE or an exit code. */
static int s_apply_option(void *options, int opt, const char *arg)
{
    stream_options_t *opts = options;
    switch (opt) {
    case OPT_FRAMES:
        return cli_apply_frames(s_verb, arg, &opts->frames);
    case OPT_SECONDS:
        return cli_apply_seconds(s_verb, arg, &opts->seconds);
    case OPT_DEVICE:
        return cli_apply_device(s_verb, arg, &opts->device_id);
    case OPT_CHECK_MOCK:
        opts->is_check_mock = true;
        break;
    case OPT_STATUS_INTERVAL:
        return cli_apply_status_interval(s_verb, arg, &opts->status_interval_s);
    case OPT_NO_STATUS:
        opts->has_status = false;
        break;
    case OPT_JSON:
        opts->is_json = true;
        break;
    case CLI_OPT_TIMEOUT:
    case CLI_OPT_BROWSE_TIMEOUT:
    case CLI_OPT_KEYS:
    case CLI_OPT_SERVER_KEY:
        return cli_apply_server_option(s_verb, &opts->server, opt, arg);
    case OPT_STREAM:
        return s_parse_stream(opts, arg);
    case OPT_MAX_FRAME_MB:
        return cli_apply_max_frame_mb(s_verb, arg, NULL);
    case OPT_GIVE_UP_AFTER:
        return cli_apply_give_up_after(s_verb, arg, &opts->give_up_s);
    case OPT_QUEUE: {
        char *end = NULL;
        long frames = strtol(arg, &end, 10);
        if (!*arg || *end || frames < 1 || frames > SK2_CLIENT_QUEUE_FRAMES_MAX)
            return cli_usage_error(s_verb, "--queue: '%s' is not a number of frames from 1 to %d",
                                   arg, SK2_CLIENT_QUEUE_FRAMES_MAX);
        opts->queue_frames = (unsigned)frames;
        break;
    }
    case OPT_PAUSED:
        opts->is_paused = true;
        break;
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, stream_options_t *opts)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"frames", required_argument, NULL, OPT_FRAMES},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"check-mock", no_argument, NULL, OPT_CHECK_MOCK},
        {"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
        {"no-status", no_argument, NULL, OPT_NO_STATUS},
        {"json", no_argument, NULL, OPT_JSON},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"max-frame-mb", required_argument, NULL, OPT_MAX_FRAME_MB},
        {"give-up-after", required_argument, NULL, OPT_GIVE_UP_AFTER},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"paused", no_argument, NULL, OPT_PAUSED},
        CLI_SERVER_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    return cli_parse_server_verb(&parser, argc, argv, opts, &opts->server);
}

/* ---- Devices ---- */

static stream_device_t *s_device_find(stream_t *self, const char *id)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (strcmp(self->devices[i].id, id) == 0)
            return &self->devices[i];
    return NULL;
}

/* The device's entry, made if needed; NULL past the limits (its frames count in totals). */
static stream_device_t *s_device_get(stream_t *self, const char *id)
{
    stream_device_t *device = s_device_find(self, id);
    if (device || strlen(id) > SK2_DEVICE_ID_MAX || self->device_count >= STREAM_DEVICES_MAX)
        return device;
    if (self->device_count == self->device_cap) {
        size_t cap = self->device_cap ? self->device_cap * 2 : 8;
        stream_device_t *devices = realloc(self->devices, cap * sizeof *devices);
        if (!devices)
            return NULL;
        self->devices = devices;
        self->device_cap = cap;
    }
    device = &self->devices[self->device_count++];
    memset(device, 0, sizeof *device);
    memcpy(device->id, id, strlen(id) + 1);
    return device;
}

static size_t s_active_devices(const stream_t *self)
{
    size_t n = 0;
    for (size_t i = 0; i < self->device_count; i++)
        n += self->devices[i].is_active;
    return n;
}

static bool s_is_wanted(const stream_t *self, const char *id)
{
    return !self->opts->device_id || strcmp(self->opts->device_id, id) == 0;
}

/* Subscribes to each --stream of a device; returns how many subscriptions took. */
static size_t s_subscribe(stream_t *self, const char *id)
{
    char safe[SK2_DEVICE_ID_MAX * 4 + 1];
    size_t taken = 0;
    for (size_t i = 0; i < self->opts->wanted_count; i++) {
        const stream_wanted_t *wanted = &self->opts->wanted[i];
        int rc = sk2_client_subscribe(self->session.client, id, wanted->kind, wanted->codec);
        if (rc == 0) {
            taken++;
            continue;
        }
        const char *offered = sk2_client_stream_codecs(self->session.client, id, wanted->kind);
        cli_status_close(&self->session.status);
        if (rc == SK2_EUNSUPPORTED && offered)
            fprintf(stderr, "sk2 stream: device %s offers %s only in %s\n",
                    cli_safe(id, safe, sizeof safe), sk2_stream_kind_name(wanted->kind), offered);
        else
            fprintf(stderr, "sk2 stream: cannot receive %s/%s of device %s: %s\n",
                    sk2_stream_kind_name(wanted->kind), wanted->codec ? wanted->codec : "(default)",
                    cli_safe(id, safe, sizeof safe),
                    rc == SK2_ENOTFOUND ? "the server has no such stream (a version-1 server "
                                          "has only the depth endpoint)"
                                        : sk2_strerror(rc));
    }
    return taken;
}

static void s_enable(stream_t *self, const char *id)
{
    char safe[SK2_DEVICE_ID_MAX * 4 + 1];
    stream_device_t *device = s_device_get(self, id);
    if (device && device->is_active)
        return;
    if (self->opts->wanted_count > 0) {
        if (s_subscribe(self, id) == 0)
            return;
    } else {
        int rc = sk2_client_enable_depth(self->session.client, id);
        if (rc != 0) {
            cli_status_close(&self->session.status);
            fprintf(stderr, "sk2 stream: cannot stream device %s: %s\n",
                    cli_safe(id, safe, sizeof safe), sk2_strerror(rc));
            return;
        }
    }
    if (device)
        device->is_active = true;
    char endpoint[CLI_ENDPOINT_MAX];
    const char *name = self->opts->wanted_count > 0 ? "streams" : "depth";
    const char *address = sk2_client_device_endpoint(self->session.client, id, name);
    cli_status_note(&self->session.status, "sk2 stream: device %s %s %s",
                    cli_safe(id, safe, sizeof safe), name,
                    address ? cli_safe(address, endpoint, sizeof endpoint) : "?");
}

/* ---- Events ---- */

static void s_on_connected(stream_t *self)
{
    if (self->session.is_connected)
        return;
    cli_session_connected(&self->session, self->opts->seconds, self->opts->status_interval_s);

    size_t count = sk2_client_device_count(self->session.client);
    for (size_t i = 0; i < count; i++) {
        const char *id = sk2_client_device_id(self->session.client, i);
        if (id && s_is_wanted(self, id))
            s_enable(self, id);
    }
    if (s_active_devices(self) > 0)
        return;
    bool has_wanted = false;
    for (size_t i = 0; i < count; i++) {
        const char *id = sk2_client_device_id(self->session.client, i);
        has_wanted |= id && s_is_wanted(self, id);
    }
    if (has_wanted) {
        /* The devices are there but refused every --stream: waiting would not change that. */
        cli_status_close(&self->session.status);
        fprintf(stderr, "sk2 stream: nothing to receive from %s\n", self->session.endpoint);
        self->session.end_rc = CLI_EXIT_FAILURE;
        self->session.is_done = true;
        return;
    }
    cli_status_note(&self->session.status, "sk2 stream: %s serves no %s yet; waiting",
                    self->session.endpoint, self->opts->device_id ? "such device" : "devices");
}

static void s_on_removed(stream_t *self, const char *id)
{
    stream_device_t *device = id ? s_device_find(self, id) : NULL;
    if (!device || !device->is_active)
        return;
    char safe[SK2_DEVICE_ID_MAX * 4 + 1];
    device->is_active = false;
    self->removed++;
    cli_status_note(&self->session.status, "sk2 stream: device %s removed",
                    cli_safe(id, safe, sizeof safe));
}

/* The meter of a frame's stream, made if needed; NULL past the limits. */
static meter_t *s_meter(stream_t *self, const stream_device_t *device, sk2_stream_kind_t kind,
                        const char *codec)
{
    size_t index = (size_t)(device - self->devices);
    for (size_t i = 0; i < self->meter_count; i++) {
        stream_meter_t *m = &self->meters[i];
        if (m->device == index && m->kind == kind && strcmp(m->codec, codec) == 0)
            return &m->meter;
    }
    if (self->meter_count == STREAM_METERS_MAX)
        return NULL;
    if (self->meter_count == self->meter_cap) {
        size_t cap = self->meter_cap ? self->meter_cap * 2 : 8;
        stream_meter_t *meters = realloc(self->meters, cap * sizeof *meters);
        if (!meters)
            return NULL;
        self->meters = meters;
        self->meter_cap = cap;
    }
    stream_meter_t *m = &self->meters[self->meter_count++];
    *m = (stream_meter_t){.device = index, .kind = kind, .codec = codec};
    return &m->meter;
}

static void s_check_mock(stream_t *self, const sk2_frame_t *frame, const char *id,
                         const char *codec)
{
    if (sk2_frame_kind(frame) != SK2_STREAM_DEPTH)
        return; /* the mock's IR and colour are derived from the same scene; depth is exact */
    const uint16_t *depth = sk2_frame_cdata16(frame);
    /* depth12 keeps the low 12 bits; every other depth codec is lossless. */
    unsigned bits = strcmp(codec, SK2_CODEC_DEPTH12) == 0 ? 12 : 16;
    int dx = 0;
    int rc = depth
                 ? sk2_mock_match(depth, sk2_frame_width(frame), sk2_frame_height(frame), bits, &dx)
                 : SK2_EINVAL;
    if (rc == 0)
        return;
    self->mismatches++;
    if (self->mismatches <= STREAM_MISMATCH_NOTES) {
        char safe[SK2_DEVICE_ID_MAX * 4 + 1];
        cli_status_close(&self->session.status);
        fprintf(stderr, "sk2 stream: frame %llu (%ux%u %s) of device %s is not the mock scene%s\n",
                (unsigned long long)self->frames, (unsigned)sk2_frame_width(frame),
                (unsigned)sk2_frame_height(frame), sk2_pixel_format_name(sk2_frame_format(frame)),
                cli_safe(id ? id : "?", safe, sizeof safe),
                self->mismatches == STREAM_MISMATCH_NOTES ? " (further mismatches only counted)"
                                                          : "");
    }
}

static void s_on_frame(stream_t *self, const sk2_event_t *event)
{
    const sk2_frame_t *frame = sk2_event_frame(event);
    const char *id = sk2_event_device_id(event);
    if (!frame)
        return;
    const char *codec = sk2_event_codec(event);
    size_t wire_bytes = sk2_event_wire_bytes(event);
    uint64_t gap = sk2_event_gap(event);
    self->frames++;
    self->wire_bytes += wire_bytes;
    self->raw_bytes += sk2_frame_size(frame);
    self->gaps += gap;
    stream_device_t *device = id ? s_device_get(self, id) : NULL;
    meter_t *meter = device && codec ? s_meter(self, device, sk2_frame_kind(frame), codec) : NULL;
    if (device)
        device->frames++;
    if (meter)
        meter_add(meter, wire_bytes, sk2_frame_size(frame), gap, sk2_event_latency_us(event));
    if (self->opts->is_check_mock)
        s_check_mock(self, frame, id, codec ? codec : "");
    if (self->opts->frames > 0 && self->frames >= (uint64_t)self->opts->frames)
        self->session.is_done = true;
}

static void s_on_event(void *verb, const sk2_event_t *event)
{
    stream_t *self = verb;
    const char *id = sk2_event_device_id(event);
    switch (sk2_event_type(event)) {
    case SK2_EVENT_CONNECTED:
        s_on_connected(self);
        break;
    case SK2_EVENT_DEVICE_ADDED:
        if (self->session.is_connected && id && s_is_wanted(self, id)) {
            /* The first `me` also announces every device, already enabled on CONNECTED. */
            const stream_device_t *known = s_device_find(self, id);
            if (known && known->is_active)
                break;
            /* Said apart from the enable line, so that a device coming back after a removal
             * (unplugged and plugged in again) reads as such in a log. */
            char safe[SK2_DEVICE_ID_MAX * 4 + 1];
            cli_status_note(&self->session.status, "sk2 stream: device %s added",
                            cli_safe(id, safe, sizeof safe));
            s_enable(self, id);
        }
        break;
    case SK2_EVENT_DEVICE_REMOVED:
        s_on_removed(self, id);
        break;
    case SK2_EVENT_FRAME:
        s_on_frame(self, event);
        break;
    case SK2_EVENT_RECONNECTED:
        if (self->outage_count < STREAM_OUTAGES_MAX) {
            self->outages[self->outage_count].lost_at_us = sk2_event_lost_at_us(event);
            self->outages[self->outage_count].outage_us = sk2_event_outage_us(event);
            self->outages[self->outage_count++].frames = self->frames;
        }
        break;
    default:
        break;
    }
}

/* ---- Status and summary ---- */

static double s_ratio(uint64_t raw_bytes, uint64_t wire_bytes)
{
    return wire_bytes > 0 ? (double)raw_bytes / (double)wire_bytes : 0.0;
}

/* A short label for a meter: "depth/sk2d", prefixed by the device's id when there are
 * several devices. */
static const char *s_label(const stream_t *self, const stream_meter_t *m, char *out, size_t size)
{
    char safe[SK2_DEVICE_ID_MAX * 4 + 1];
    if (self->device_count > 1)
        snprintf(out, size, "%.8s %s/%s", cli_safe(self->devices[m->device].id, safe, sizeof safe),
                 sk2_stream_kind_name(m->kind), m->codec);
    else
        snprintf(out, size, "%s/%s", sk2_stream_kind_name(m->kind), m->codec);
    return out;
}

/* " p50 1.23 p99 2.34 ms", or " latency n/a" when the stream carries no times. */
static const char *s_latency(const meter_t *meter, char *out, size_t size)
{
    double p50 = meter_latency_ms(meter, 50), p99 = meter_latency_ms(meter, 99);
    if (p50 < 0)
        snprintf(out, size, "latency n/a");
    else
        snprintf(out, size, "p50 %.2f p99 %.2f ms", p50, p99);
    return out;
}

/* Appends the flow state to a status line: " | paused", " | queue N dropped D". */
static void s_flow_status(const stream_t *self, char *line, size_t size)
{
    size_t used = strlen(line);
    if (self->is_paused && used < size)
        used += (size_t)snprintf(line + used, size - used, " | paused");
    if (self->opts->queue_frames && used < size)
        snprintf(line + used, size - used, " | queue %u dropped %llu", self->opts->queue_frames,
                 (unsigned long long)sk2_client_frames_dropped(self->session.client));
}

/* The streams endpoint's status: per stream fps, MB/s, ratio, latency and gaps. */
static void s_print_stream_status(stream_t *self, int64_t interval_us)
{
    char line[1024] = "";
    size_t used = (size_t)snprintf(line, sizeof line, "frames %llu | devices %zu",
                                   (unsigned long long)self->frames, s_active_devices(self));
    for (size_t i = 0; i < self->meter_count; i++) {
        stream_meter_t *m = &self->meters[i];
        uint64_t frames, wire_bytes;
        meter_mark(&m->meter, &frames, &wire_bytes);
        if (i >= STREAM_STATUS_SHOWN || used >= sizeof line)
            continue;
        char label[96], latency[64];
        used += (size_t)snprintf(
            line + used, sizeof line - used, " | %s %.1f fps %.2f MB/s x%.2f %s gaps %llu",
            s_label(self, m, label, sizeof label), cli_per_second(frames, interval_us),
            cli_mb_per_second(wire_bytes, interval_us), meter_ratio(&m->meter),
            s_latency(&m->meter, latency, sizeof latency), (unsigned long long)m->meter.gaps);
    }
    if (self->meter_count > STREAM_STATUS_SHOWN && used < sizeof line)
        snprintf(line + used, sizeof line - used, " | +%zu more",
                 self->meter_count - STREAM_STATUS_SHOWN);
    if (self->opts->is_check_mock && used < sizeof line)
        snprintf(line + strlen(line), sizeof line - strlen(line), " | mismatches %llu",
                 (unsigned long long)self->mismatches);
    s_flow_status(self, line, sizeof line);
    cli_status_print(&self->session.status, "%s", line);
}

static void s_print_status(void *verb, int64_t interval_us)
{
    stream_t *self = verb;
    if (self->opts->wanted_count > 0) {
        s_print_stream_status(self, interval_us);
    } else {
        char mismatches[32] = "n/a", line[512];
        if (self->opts->is_check_mock)
            snprintf(mismatches, sizeof mismatches, "%llu", (unsigned long long)self->mismatches);
        snprintf(line, sizeof line,
                 "frames %llu | %.1f fps | %.2f MB/s wire | ratio %.2f | devices %zu | "
                 "mismatches %s | gaps n/a",
                 (unsigned long long)self->frames,
                 cli_per_second(self->frames - self->last_frames, interval_us),
                 cli_mb_per_second(self->wire_bytes - self->last_wire_bytes, interval_us),
                 s_ratio(self->raw_bytes, self->wire_bytes), s_active_devices(self), mismatches);
        s_flow_status(self, line, sizeof line);
        cli_status_print(&self->session.status, "%s", line);
    }
    self->last_frames = self->frames;
    self->last_wire_bytes = self->wire_bytes;
}

/* A JSON number, or null for an unknown (negative) value. */
static void s_json_number(FILE *out, const char *key, double value)
{
    if (value < 0)
        fprintf(out, ",\"%s\":null", key);
    else
        fprintf(out, ",\"%s\":%.3f", key, value);
}

static void s_print_json(const stream_t *self, double seconds)
{
    double fps = seconds > 0 ? (double)self->frames / seconds : 0.0;
    bool has_seq = self->opts->wanted_count > 0;
    printf("{\"frames\":%llu,\"seconds\":%.3f,\"fps\":%.2f,\"wire_bytes\":%llu,"
           "\"raw_bytes\":%llu,\"ratio\":%.3f,\"devices\":%zu,\"mismatches\":%llu,",
           (unsigned long long)self->frames, seconds, fps, (unsigned long long)self->wire_bytes,
           (unsigned long long)self->raw_bytes, s_ratio(self->raw_bytes, self->wire_bytes),
           self->device_count, (unsigned long long)self->mismatches);
    printf("\"rejected\":%llu,",
           (unsigned long long)sk2_client_frames_rejected(self->session.client));
    if (has_seq)
        printf("\"gaps\":%llu,\"streams\":[", (unsigned long long)self->gaps);
    else
        printf("\"gaps\":null,\"streams\":[");
    for (size_t i = 0; i < self->meter_count; i++) {
        const stream_meter_t *m = &self->meters[i];
        printf("%s{\"device\":", i ? "," : "");
        cli_json_string(stdout, self->devices[m->device].id);
        printf(",\"kind\":\"%s\",\"codec\":\"%s\",\"frames\":%llu,\"fps\":%.2f,"
               "\"wire_bytes\":%llu,\"raw_bytes\":%llu,\"ratio\":%.3f",
               sk2_stream_kind_name(m->kind), m->codec, (unsigned long long)m->meter.frames,
               seconds > 0 ? (double)m->meter.frames / seconds : 0.0,
               (unsigned long long)m->meter.wire_bytes, (unsigned long long)m->meter.raw_bytes,
               meter_ratio(&m->meter));
        s_json_number(stdout, "latency_p50_ms", meter_latency_ms(&m->meter, 50));
        s_json_number(stdout, "latency_p99_ms", meter_latency_ms(&m->meter, 99));
        if (has_seq)
            printf(",\"gaps\":%llu}", (unsigned long long)m->meter.gaps);
        else
            printf(",\"gaps\":null}");
    }
    printf("],\"outages\":%llu,\"outage_seconds\":%.3f,\"outage_list\":[",
           (unsigned long long)self->session.outages, (double)self->session.outage_us / 1e6);
    for (size_t i = 0; i < self->outage_count; i++)
        printf("%s{\"lost_at_us\":%lld,\"seconds\":%.3f,\"frames_before\":%llu}", i ? "," : "",
               (long long)self->outages[i].lost_at_us, (double)self->outages[i].outage_us / 1e6,
               (unsigned long long)self->outages[i].frames);
    printf("],\"lost\":%s,\"queue_frames\":%u,\"queue_dropped\":%llu,\"pauses\":%llu,"
           "\"paused\":%s,\"client\":\"%s\"}\n",
           self->session.is_down ? "true" : "false", self->opts->queue_frames,
           (unsigned long long)sk2_client_frames_dropped(self->session.client),
           (unsigned long long)self->pauses, self->is_paused ? "true" : "false",
           sk2_client_id(self->session.client));
}

static void s_print_text(const stream_t *self, double seconds)
{
    double fps = seconds > 0 ? (double)self->frames / seconds : 0.0;
    printf("sk2 stream: %llu frames in %.2f s (%.1f fps) from %zu device(s), %llu removed\n",
           (unsigned long long)self->frames, seconds, fps, self->device_count,
           (unsigned long long)self->removed);
    printf("  wire %.2f MB (%.2f MB/s), decoded %.2f MB, ratio %.2f\n", cli_mb(self->wire_bytes),
           seconds > 0 ? cli_mb(self->wire_bytes) / seconds : 0.0, cli_mb(self->raw_bytes),
           s_ratio(self->raw_bytes, self->wire_bytes));
    uint64_t rejected = sk2_client_frames_rejected(self->session.client);
    if (rejected)
        printf("  %llu frames dropped: over the frame limit or not as their stream advertised\n",
               (unsigned long long)rejected);
    if (self->opts->is_check_mock)
        printf("  mock check: %llu mismatches\n", (unsigned long long)self->mismatches);
    if (self->opts->wanted_count == 0)
        printf("  gaps and latency: n/a (the v1 depth endpoint has no sequence numbers or "
               "times)\n");
    else
        printf("  gaps: %llu frames missed\n", (unsigned long long)self->gaps);
    if (self->opts->queue_frames)
        printf("  queue: %u frames per stream, %llu dropped (oldest first)\n",
               self->opts->queue_frames,
               (unsigned long long)sk2_client_frames_dropped(self->session.client));
    if (self->pauses)
        printf("  paused %llu time(s)%s\n", (unsigned long long)self->pauses,
               self->is_paused ? ", paused at the end" : "");
    if (self->session.outages > 0)
        printf("  outages: %llu, %.1f s without the server\n",
               (unsigned long long)self->session.outages, (double)self->session.outage_us / 1e6);
    for (size_t i = 0; i < self->outage_count; i++)
        printf("    lost after frame %llu for %.1f s\n",
               (unsigned long long)self->outages[i].frames,
               (double)self->outages[i].outage_us / 1e6);
    char safe[SK2_DEVICE_ID_MAX * 4 + 1];
    for (size_t d = 0; d < self->device_count; d++) {
        printf("  device %s: %llu frames\n", cli_safe(self->devices[d].id, safe, sizeof safe),
               (unsigned long long)self->devices[d].frames);
        for (size_t i = 0; i < self->meter_count; i++) {
            const stream_meter_t *m = &self->meters[i];
            if (m->device != d)
                continue;
            char latency[64];
            printf("    %s/%s: %llu frames, %.1f fps, %.2f MB/s, ratio %.2f, %s, gaps %llu\n",
                   sk2_stream_kind_name(m->kind), m->codec, (unsigned long long)m->meter.frames,
                   seconds > 0 ? (double)m->meter.frames / seconds : 0.0,
                   seconds > 0 ? cli_mb(m->meter.wire_bytes) / seconds : 0.0,
                   meter_ratio(&m->meter), s_latency(&m->meter, latency, sizeof latency),
                   (unsigned long long)m->meter.gaps);
        }
    }
}

static void s_print_summary(stream_t *self)
{
    cli_status_close(&self->session.status);
    double seconds = cli_session_seconds(&self->session);
    if (self->opts->is_json)
        s_print_json(self, seconds);
    else
        s_print_text(self, seconds);
}

/* ---- The loop ---- */

/* Pauses or resumes every stream, and says so. */
static void s_flow_set(stream_t *self, bool is_paused)
{
    int rc = is_paused ? sk2_client_pause(self->session.client, NULL, 0)
                       : sk2_client_resume(self->session.client, NULL, 0);
    if (rc != 0) {
        cli_status_close(&self->session.status);
        fprintf(stderr, "sk2 stream: cannot %s: %s\n", is_paused ? "pause" : "resume",
                sk2_strerror(rc));
        return;
    }
    self->is_paused = is_paused;
    self->pauses += is_paused;
    cli_status_note(&self->session.status, "sk2 stream: %s",
                    is_paused ? "paused (SIGUSR1 resumes)" : "resumed");
}

/* --queue, --paused and the SIGUSR1 handler. CLI_CONTINUE or an exit code. */
static int s_flow_open(stream_t *self)
{
    if (self->opts->queue_frames) {
        int rc = sk2_client_set_queue_frames(self->session.client, self->opts->queue_frames);
        if (rc != 0) {
            fprintf(stderr, "sk2 stream: --queue: %s\n", sk2_strerror(rc));
            return CLI_EXIT_FAILURE;
        }
    }
    if (self->opts->queue_frames && self->opts->wanted_count == 0) {
        fprintf(stderr, "sk2 stream: --queue needs --stream (the version-1 depth endpoint has "
                        "no queue of the client's own)\n");
        return CLI_EXIT_USAGE;
    }
    if (self->opts->is_paused)
        s_flow_set(self, true);
    /* No SA_RESTART: the wait inside recv ends on the signal, so the toggle is prompt. */
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_usr1;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, NULL);
    return CLI_CONTINUE;
}

/* Applies the SIGUSR1s that came since the last turn. */
static void s_flow_toggle(stream_t *self)
{
    while (self->toggles_seen != (unsigned)s_toggles) {
        self->toggles_seen++;
        s_flow_set(self, !self->is_paused);
    }
}

/* The exit code once the loop has ended. */
static int s_exit_code(const stream_t *self)
{
    if (self->session.end_rc)
        return self->session.end_rc;
    if (self->mismatches > 0)
        return CLI_EXIT_FAILURE;
    if (self->frames == 0 && !self->is_paused) {
        fprintf(stderr, "sk2 stream: no frames arrived\n");
        return CLI_EXIT_FAILURE;
    }
    /* Ctrl-C ends a run early on purpose: then any frame is a success. */
    uint64_t goal = (uint64_t)self->opts->frames;
    if (goal > 0 && self->frames < goal && !cli_is_interrupted()) {
        fprintf(stderr, "sk2 stream: only %llu of %llu frames arrived\n",
                (unsigned long long)self->frames, (unsigned long long)goal);
        return CLI_EXIT_FAILURE;
    }
    return CLI_EXIT_OK;
}

int cli_stream(int argc, char **argv)
{
    stream_options_t opts = {
        .server = CLI_SERVER_ARGS_DEFAULT, .status_interval_s = 1.0, .has_status = true};
    /* Several servers matched into framesets: a mode of its own (stream_frameset.c). */
    if (stream_is_frameset(argc, argv))
        return stream_frameset(argc, argv);
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;

    stream_t self = {.opts = &opts};
    /* With --json, stdout holds only the summary: status lines and notes go to stderr. */
    rc = cli_session_open(&self.session, s_verb, opts.server.target, opts.server.timeout_ms,
                          opts.server.browse_ms, opts.is_json ? stderr : stdout, opts.has_status);
    if (rc != CLI_CONTINUE)
        return rc;
    cli_session_give_up_after(&self.session, opts.give_up_s);
    rc = s_flow_open(&self);
    if (rc != CLI_CONTINUE) {
        cli_session_close(&self.session);
        return rc;
    }
    static const cli_session_hooks_t hooks = {s_on_event, s_print_status};
    while (cli_session_step(&self.session, &hooks, &self))
        s_flow_toggle(&self);
    s_print_summary(&self);
    rc = s_exit_code(&self);
    cli_session_close(&self.session);
    for (size_t i = 0; i < self.meter_count; i++)
        meter_free(&self.meters[i].meter);
    free(self.meters);
    free(self.devices);
    return rc;
}
