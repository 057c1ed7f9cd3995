/* `sk2 serve`: runs a server until Ctrl-C or SIGTERM with the cameras asked for (--device), N
 * mock devices (--mock), or, given neither, the first camera any camera backend finds and a
 * mock device if none does; it prints the control endpoint, the device ids and a status line
 * of the server's counters every interval. With
 * --endpoint-file it also publishes the control endpoint in a file, replaced atomically so
 * that a script waiting for it never reads half a line; the file is removed on exit. With
 * --http it runs the web gateway (sk2/gateway.h) on its own devices. SIGUSR1 adds one more
 * mock device and SIGUSR2 removes the newest one, so that scripts and tests can make devices
 * come and go. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "serve";

#define S_MAX_DEVICE_OPTIONS 16
#define S_MAX_POSE_OPTIONS   64

/* A --pose DEVICE=FILE, read and checked while parsing. */
typedef struct {
    char device_id[SK2_DEVICE_ID_MAX + 1];
    sk2_pose_t pose;
} serve_pose_t;

typedef struct {
    long mock;                                 /* mock devices to serve, 0..64; -1 = not given */
    const char *devices[S_MAX_DEVICE_OPTIONS]; /* --device BACKEND[:URI], as given */
    size_t device_count;
    double unplug_after_s; /* mock fault injection: unplug the first mock after, 0 = never */
    double replug_after_s; /* ... and plug it back this long after unplugging, 0 = never */
    const char *name;      /* server name, NULL for the library's default */
    const char *bind;      /* address to bind, "*" for every interface */
    long port;             /* control port, 0 = chosen by the OS */
    double fps;            /* frames per second per device, 0 = as fast as possible */
    long color_width;      /* mock colour size, 0 = the backend's default */
    long color_height;
    long jpeg_quality;         /* 0 = the library's default */
    size_t max_frame_bytes;    /* the frame budget of the server and of replays */
    long max_streams;          /* cap on encoded streams, -1 = the library's default */
    long queue;                /* frames queued per encoder, 0 = library default */
    const char *endpoint_file; /* where to publish the control endpoint, or NULL */
    double status_interval_s;  /* seconds between status lines */
    bool has_status;           /* print status lines */
    bool is_announced;         /* announce over DNS-SD */
    const char *replay;        /* recording or TUM folder to serve, or NULL */
    double rate;               /* replay speed, 0 = as fast as possible */
    bool is_looping;           /* replay again after the end */
    bool is_replay_eager;      /* --no-wait: play without waiting for a first listener */
    const char *http;          /* ADDR:PORT of the web gateway, or NULL */
    const char *record_dir;    /* --record-dir: where `sk2 ctl ... record NAME` may write */
    cli_http_access_t access;  /* the gateway's token, --http-insecure, connection cap */
    bool has_hints;            /* print the commands to try next */
    bool is_secure;            /* --secure: CURVE on every socket */
    const char *keys;          /* --keys: the server's key pair (file or folder) */
    const char *allow;         /* --allow: folder of the client keys let in */
    const char *push;          /* --push: a relay's push endpoint to connect out to, or NULL */
    const char *push_keys;     /* --push-keys: our key pair for a CURVE push link */
    const char *relay_key;     /* --relay-key: the relay's public key */
    const char *state;         /* --state: where labels, locations and poses persist */
    serve_pose_t poses[S_MAX_POSE_OPTIONS]; /* --pose DEVICE=FILE, parsed */
    size_t pose_count;
    long clock_offset_ms; /* --clock-offset-ms: shift every time the server reports */
    bool is_mock_align;   /* --mock-align: mocks capture on the wall clock's boundaries */
} serve_options_t;

/* Mock devices added (SIGUSR1) or removed (SIGUSR2) on request, counted by the handlers. */
static volatile sig_atomic_t s_add_requests = 0;
static volatile sig_atomic_t s_remove_requests = 0;
/* Reloads of the allow folder asked for (SIGHUP). */
static volatile sig_atomic_t s_reload_requests = 0;

#define S_ADDED_MAX 64

static void s_on_usr(int signum)
{
    if (signum == SIGUSR1)
        s_add_requests++;
    else if (signum == SIGHUP)
        s_reload_requests++;
    else
        s_remove_requests++;
}

enum {
    OPT_MOCK = 256,
    OPT_NAME,
    OPT_BIND,
    OPT_PORT,
    OPT_FPS,
    OPT_QUEUE,
    OPT_ENDPOINT_FILE,
    OPT_STATUS_INTERVAL,
    OPT_NO_STATUS,
    OPT_NO_ANNOUNCE,
    OPT_DEVICE,
    OPT_UNPLUG_AFTER,
    OPT_REPLUG_AFTER,
    OPT_COLOR_SIZE,
    OPT_JPEG_QUALITY,
    OPT_REPLAY,
    OPT_RATE,
    OPT_LOOP,
    OPT_NO_WAIT,
    OPT_HTTP,
    OPT_HINTS,
    OPT_MAX_FRAME_MB,
    OPT_MAX_STREAMS,
    OPT_SECURE,
    OPT_KEYS,
    OPT_ALLOW,
    OPT_RECORD_DIR,
    OPT_PUSH,
    OPT_PUSH_KEYS,
    OPT_RELAY_KEY,
    OPT_STATE,
    OPT_POSE,
    OPT_CLOCK_OFFSET_MS,
    OPT_MOCK_ALIGN,
};

static void s_print_usage(void)
{
    printf("usage: sk2 serve [--device BACKEND[:URI]]... [--mock N] [--name NAME]\n"
           "                 [--bind ADDR] [--port PORT] [--fps F] [--queue N]\n"
           "                 [--endpoint-file PATH] [--status-interval S] [--no-status]\n"
           "                 [--no-announce] [--mock-unplug-after S [--mock-replug-after S]]\n"
           "                 [--color-size WxH] [--jpeg-quality Q]\n"
           "                 [--replay PATH [--rate X] [--loop] [--no-wait]] [--http ADDR:PORT]\n"
           "                 [--http-token TOKEN|auto] [--http-insecure]\n"
           "                 [--http-max-connections N] [--max-frame-mb M]\n"
           "                 [--max-streams N] [--hints] [--record-dir DIR]\n"
           "                 [--secure --keys DIR --allow DIR] [--state FILE]\n"
           "                 [--pose DEVICE=FILE]... [--clock-offset-ms MS] [--mock-align]\n"
           "                 [-v|-q]\n"
           "\n"
           "Serves depth cameras on a streamkinect2 control endpoint until Ctrl-C: cameras\n"
           "(--device), mock ones (--mock) or the devices of a recording (--replay). With\n"
           "none of these: the first camera a camera backend finds (see `sk2 devices`), else\n"
           "one mock device; it says which.\n"
           "\n"
           "  --device B[:URI]       serve the camera of backend B (openni2, freenect) with\n"
           "                         this uri or serial (default: its first camera); up to 16\n"
           "  --mock N               mock devices to serve, 0..64\n"
           "  --mock-unplug-after S  fault injection: 'unplug' the first mock after S seconds\n"
           "  --mock-replug-after S  ... and plug it back S seconds after that\n"
           "  --replay PATH          serve every device of a recording (or TUM RGB-D folder,\n"
           "                         or MCAP file of ROS 2 images) with its recorded\n"
           "                         streams, intrinsics, serial and id\n"
           "  --rate X               replay speed: 1 = as recorded (default), 0 = as fast as\n"
           "                         possible, 0..1000\n"
           "  --loop                 start the recording again after its last frame\n"
           "  --no-wait              play at once (default: hold the first frame until a\n"
           "                         client subscribes to a stream, then play)\n"
           "  --name NAME            server name (default \"sk2 on <host name>\")\n"
           "  --bind ADDR            address to bind (default 127.0.0.1; '*' = every interface)\n"
           "  --port PORT            control port, 0..65535 (default 0: the OS picks one)\n"
           "  --fps F                frames per second per device, 0..1000 (default 30;\n"
           "                         0 = as fast as possible)\n"
           "  --color-size WxH       mock colour stream size, even, 16x16..1920x1080 (default\n"
           "                         1920x1080 like Kinect v2)\n"
           "  --jpeg-quality Q       quality of colour frames sent as jpeg, 1..100 (default %d)\n"
           "  --queue N              frames of each stream that may wait to be encoded, 1..64\n"
           "  --endpoint-file PATH   write the control endpoint to PATH (removed on exit)\n"
           "  --status-interval S    seconds between status lines (default 1)\n"
           "  --no-status            no status lines\n"
           "  --no-announce          do not announce the server on the local network\n"
           "  --max-frame-mb M       frames over M MiB are neither published nor replayed\n"
           "                         (counted as dropped, logged once); 0.004..128 (default\n"
           "                         64). Also the limit of the --http viewer\n"
           "  --max-streams N        encode at most N streams (kind and codec, all devices\n"
           "                         together) at once; a subscription over it gets no\n"
           "                         frames until one ends, and `stats` marks it refused;\n"
           "                         0..4096, 0 = no cap (default %d). The v1 depth\n"
           "                         endpoint is never capped\n"
           "  --http ADDR:PORT       also serve the web viewer and HTTP API for these devices\n"
           "                         (e.g. 127.0.0.1:8080; port 0: the OS picks one); any\n"
           "                         address but loopback needs --http-token\n"
           "                         or --http-insecure\n"
           "%s"
           "  --hints                once serving, print commands to try next with this\n"
           "                         server's real endpoint (what `make run` shows)\n",
           SK2_CODEC_DEFAULT_QUALITY, SK2_SERVER_MAX_STREAMS_DEFAULT,
           CLI_HTTP_ACCESS_HELP("                         "));
    printf("  --record-dir DIR       let clients start and stop recordings of a device's depth\n"
           "                         (sk2 ctl SERVER DEVICE record NAME): new files NAME.sk2r\n"
           "                         in DIR only; without it, `record` is refused\n");
    printf("  --state FILE           keep the labels, locations and poses clients set in FILE\n"
           "                         (JSON, rewritten atomically at each change) and serve\n"
           "                         them again after a restart; FILE need not exist yet\n"
           "  --pose DEVICE=FILE     serve this pose for device DEVICE (an id): FILE holds\n"
           "                         {\"rotation\": [9 numbers, row-major] or [w, x, y, z],\n"
           "                         \"translation\": [x, y, z]} in metres, mapping the\n"
           "                         device's depth optical frame to the rig's world (see\n"
           "                         docs/rigs.md); kept in --state; up to %d\n",
           S_MAX_POSE_OPTIONS);
    printf("  --secure               encrypt and authenticate every socket with CURVE: only\n"
           "                         clients whose public key is in --allow get anything\n"
           "  --keys DIR             the server's key pair (sk2 keygen DIR), or its\n"
           "                         NAME.key_secret file\n"
           "  --allow DIR            folder of the client public keys (NAME.key) let in;\n"
           "                         read again on SIGHUP\n"
           "  --push ENDPOINT        also connect out to the relay accepting pushes there\n"
           "                         (`sk2 relay --accept-push ADDR:PORT`), which then\n"
           "                         serves these devices; for a host behind NAT or a\n"
           "                         firewall. A lost link is retried, 100 ms doubling to\n"
           "                         10 s\n"
           "  --push-keys DIR        encrypt the push link with CURVE using this key pair\n"
           "                         (sk2 keygen DIR; the relay must --allow its key);\n"
           "                         with --secure the default is --keys, and the link is\n"
           "                         always CURVE\n"
           "  --relay-key KEY        the relay's public key (40 characters or NAME.key)\n"
           "  --clock-offset-ms MS   test and demo: report every time (capture and send\n"
           "                         times of frames, clock replies) MS ms ahead of this\n"
           "                         host's clock (behind when negative), as a server whose\n"
           "                         clock is off would; -86400000..86400000 (default 0)\n"
           "  --mock-align           mock frames are captured on period boundaries of this\n"
           "                         host's true clock (before --clock-offset-ms), so mocks\n"
           "                         of several servers capture in lock-step (framesets)\n"
           "\n"
           "Without --secure anyone who can reach the ports reads every frame and sends\n"
           "control messages: bound to anything but loopback, serve says so on stderr.\n"
           "\n"
           "SIGUSR1 adds one more mock device; SIGUSR2 removes the newest one; SIGHUP reads\n"
           "the --allow folder again.\n"
           "\n"
           "The server is announced over DNS-SD (_kinect2._tcp, through avahi-daemon) under\n"
           "its name, on the interface of the bound address, so that `sk2 browse` and\n"
           "streamkinect2 clients find it; bound to 127.0.0.1 (the default), only programs on\n"
           "this machine can. A name taken on the network becomes \"NAME #2\". Without\n"
           "avahi-daemon, serve warns once and serves without announcing.\n"
           "\n"
           "Prints the control endpoint and the device ids on stdout, then a status line.\n"
           "Exit status: 0 after Ctrl-C or SIGTERM, 1 if the server cannot start, 2 usage.\n");
}

/* True if s is well-formed UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
static bool s_is_utf8(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        size_t n = c < 0x80             ? 0
                   : (c & 0xe0) == 0xc0 ? 1
                   : (c & 0xf0) == 0xe0 ? 2
                   : (c & 0xf8) == 0xf0 ? 3
                                        : 4;
        if (n == 4 || (n == 1 && c < 0xc2) || (n == 3 && c > 0xf4))
            return false;
        unsigned cp = c & (0x7fu >> n);
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3fu);
        }
        if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
            (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false;
        p += n + 1;
    }
    return true;
}

/* Reads and checks one --pose DEVICE=FILE into opts; returns CLI_CONTINUE or exit 2. */
static int s_read_pose(serve_options_t *opts, const char *arg)
{
    const char *equals = strchr(arg, '=');
    size_t id_length = equals ? (size_t)(equals - arg) : 0;
    if (!equals || id_length == 0 || id_length > SK2_DEVICE_ID_MAX || !equals[1])
        return cli_usage_error(s_verb, "--pose takes DEVICE=FILE (a device id, a pose file)");
    if (opts->pose_count == S_MAX_POSE_OPTIONS)
        return cli_usage_error(s_verb, "at most %d --pose options", S_MAX_POSE_OPTIONS);
    const char *path = equals + 1;
    char text[SK2_POSE_TEXT_MAX + 1];
    FILE *in = fopen(path, "rb");
    if (!in)
        return cli_usage_error(s_verb, "--pose: cannot read %s: %s", path, strerror(errno));
    size_t length = fread(text, 1, sizeof text, in);
    bool is_error = ferror(in) != 0;
    fclose(in);
    if (is_error)
        return cli_usage_error(s_verb, "--pose: cannot read %s", path);
    serve_pose_t *entry = &opts->poses[opts->pose_count];
    char why[256];
    if (sk2_pose_parse(text, length, &entry->pose, why, sizeof why) != 0)
        return cli_usage_error(s_verb, "--pose: %s: %s", path, why);
    memcpy(entry->device_id, arg, id_length);
    entry->device_id[id_length] = '\0';
    opts->pose_count++;
    return CLI_CONTINUE;
}

/* Applies one option's value; returns CLI_CONTINUE or an exit code. */
static int s_apply_option(void *options, int opt, const char *arg)
{
    serve_options_t *opts = options;
    switch (opt) {
    case OPT_MOCK:
        if (cli_parse_long(arg, 0, 64, &opts->mock) != 0)
            return cli_usage_error(s_verb, "--mock must be a whole number 0..64, not '%s'", arg);
        break;
    case OPT_REPLAY:
        if (!*arg)
            return cli_usage_error(s_verb, "--replay needs a recording or TUM folder");
        opts->replay = arg;
        break;
    case OPT_RATE:
        if (cli_parse_double(arg, 0.0, 1000.0, &opts->rate) != 0)
            return cli_usage_error(s_verb, "--rate must be a number 0..1000, not '%s'", arg);
        break;
    case OPT_LOOP:
        opts->is_looping = true;
        break;
    case OPT_NO_WAIT:
        opts->is_replay_eager = true;
        break;
    case OPT_NAME:
        if (!*arg || strlen(arg) > SK2_SERVER_NAME_MAX || !s_is_utf8(arg))
            return cli_usage_error(s_verb, "--name must be 1..%d bytes of UTF-8",
                                   SK2_SERVER_NAME_MAX);
        opts->name = arg;
        break;
    case OPT_BIND:
        if (!*arg)
            return cli_usage_error(s_verb, "--bind needs an address (or '*')");
        opts->bind = arg;
        break;
    case OPT_PORT:
        if (cli_parse_long(arg, 0, 65535, &opts->port) != 0)
            return cli_usage_error(s_verb, "--port must be 0..65535, not '%s'", arg);
        break;
    case OPT_FPS:
        if (cli_parse_double(arg, 0.0, 1000.0, &opts->fps) != 0)
            return cli_usage_error(s_verb, "--fps must be a number 0..1000, not '%s'", arg);
        break;
    case OPT_COLOR_SIZE: {
        char *x = strchr(arg, 'x');
        char width[16];
        size_t len = x ? (size_t)(x - arg) : 0;
        if (len > 0 && len < sizeof width) {
            memcpy(width, arg, len);
            width[len] = '\0';
        }
        if (!len || len >= sizeof width || cli_parse_long(width, 16, 1920, &opts->color_width) ||
            cli_parse_long(x + 1, 16, 1080, &opts->color_height) || opts->color_width % 2 ||
            opts->color_height % 2)
            return cli_usage_error(
                s_verb, "--color-size must be WxH, even, 16x16..1920x1080, not '%s'", arg);
        break;
    }
    case OPT_MAX_FRAME_MB:
        return cli_apply_max_frame_mb(s_verb, arg, &opts->max_frame_bytes);
    case OPT_CLOCK_OFFSET_MS:
        if (cli_parse_long(arg, -SK2_SERVER_CLOCK_OFFSET_MAX_MS, SK2_SERVER_CLOCK_OFFSET_MAX_MS,
                           &opts->clock_offset_ms) != 0)
            return cli_usage_error(
                s_verb, "--clock-offset-ms must be a whole number %d..%d, not '%s'",
                -SK2_SERVER_CLOCK_OFFSET_MAX_MS, SK2_SERVER_CLOCK_OFFSET_MAX_MS, arg);
        break;
    case OPT_MOCK_ALIGN:
        opts->is_mock_align = true;
        break;
    case OPT_MAX_STREAMS:
        if (cli_parse_long(arg, 0, SK2_SERVER_MAX_STREAMS_MAX, &opts->max_streams) != 0)
            return cli_usage_error(s_verb, "--max-streams must be 0..%d, not '%s'",
                                   SK2_SERVER_MAX_STREAMS_MAX, arg);
        break;
    case OPT_JPEG_QUALITY:
        if (cli_parse_long(arg, 1, 100, &opts->jpeg_quality) != 0)
            return cli_usage_error(s_verb, "--jpeg-quality must be 1..100, not '%s'", arg);
        break;
    case OPT_QUEUE:
        if (cli_parse_long(arg, 1, 64, &opts->queue) != 0)
            return cli_usage_error(s_verb, "--queue must be a whole number 1..64, not '%s'", arg);
        break;
    case OPT_ENDPOINT_FILE:
        if (!*arg)
            return cli_usage_error(s_verb, "--endpoint-file needs a path");
        opts->endpoint_file = arg;
        break;
    case OPT_STATUS_INTERVAL:
        return cli_apply_status_interval(s_verb, arg, &opts->status_interval_s);
    case OPT_NO_STATUS:
        opts->has_status = false;
        break;
    case OPT_NO_ANNOUNCE:
        opts->is_announced = false;
        break;
    case OPT_DEVICE:
        if (!*arg || *arg == ':')
            return cli_usage_error(s_verb, "--device needs a backend name, as BACKEND[:URI]");
        if (opts->device_count == S_MAX_DEVICE_OPTIONS)
            return cli_usage_error(s_verb, "at most %d --device options", S_MAX_DEVICE_OPTIONS);
        opts->devices[opts->device_count++] = arg;
        break;
    case OPT_UNPLUG_AFTER:
    case OPT_REPLUG_AFTER:
        if (cli_parse_double(arg, 0.1, 86400.0,
                             opt == OPT_UNPLUG_AFTER ? &opts->unplug_after_s
                                                     : &opts->replug_after_s) != 0)
            return cli_usage_error(
                s_verb, "%s must be 0.1..86400 s, not '%s'",
                opt == OPT_UNPLUG_AFTER ? "--mock-unplug-after" : "--mock-replug-after", arg);
        break;
    case OPT_HTTP:
        return cli_apply_http(s_verb, arg, &opts->http);
    case CLI_OPT_HTTP_TOKEN:
    case CLI_OPT_HTTP_INSECURE:
    case CLI_OPT_HTTP_MAX_CONNECTIONS:
        return cli_apply_http_access(s_verb, &opts->access, opt, arg);
    case OPT_HINTS:
        opts->has_hints = true;
        break;
    case OPT_RECORD_DIR:
        if (!*arg)
            return cli_usage_error(s_verb, "--record-dir needs a folder");
        opts->record_dir = arg;
        break;
    case OPT_SECURE:
        opts->is_secure = true;
        break;
    case OPT_STATE:
        if (!*arg)
            return cli_usage_error(s_verb, "--state needs a file");
        opts->state = arg;
        break;
    case OPT_POSE:
        return s_read_pose(opts, arg);
    case OPT_PUSH:
        if (!*arg)
            return cli_usage_error(s_verb, "--push needs the relay's ENDPOINT (HOST:PORT)");
        opts->push = arg;
        break;
    case OPT_PUSH_KEYS:
    case OPT_RELAY_KEY:
        if (!*arg)
            return cli_usage_error(s_verb, "%s needs a value",
                                   opt == OPT_PUSH_KEYS ? "--push-keys" : "--relay-key");
        *(opt == OPT_PUSH_KEYS ? &opts->push_keys : &opts->relay_key) = arg;
        break;
    case OPT_KEYS:
    case OPT_ALLOW:
        if (!*arg)
            return cli_usage_error(s_verb, "%s needs a path",
                                   opt == OPT_KEYS ? "--keys" : "--allow");
        *(opt == OPT_KEYS ? &opts->keys : &opts->allow) = arg;
        break;
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, serve_options_t *opts)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"mock", required_argument, NULL, OPT_MOCK},
        {"name", required_argument, NULL, OPT_NAME},
        {"bind", required_argument, NULL, OPT_BIND},
        {"port", required_argument, NULL, OPT_PORT},
        {"fps", required_argument, NULL, OPT_FPS},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"endpoint-file", required_argument, NULL, OPT_ENDPOINT_FILE},
        {"status-interval", required_argument, NULL, OPT_STATUS_INTERVAL},
        {"no-status", no_argument, NULL, OPT_NO_STATUS},
        {"no-announce", no_argument, NULL, OPT_NO_ANNOUNCE},
        {"device", required_argument, NULL, OPT_DEVICE},
        {"mock-unplug-after", required_argument, NULL, OPT_UNPLUG_AFTER},
        {"mock-replug-after", required_argument, NULL, OPT_REPLUG_AFTER},
        {"color-size", required_argument, NULL, OPT_COLOR_SIZE},
        {"jpeg-quality", required_argument, NULL, OPT_JPEG_QUALITY},
        {"max-frame-mb", required_argument, NULL, OPT_MAX_FRAME_MB},
        {"max-streams", required_argument, NULL, OPT_MAX_STREAMS},
        {"replay", required_argument, NULL, OPT_REPLAY},
        {"rate", required_argument, NULL, OPT_RATE},
        {"loop", no_argument, NULL, OPT_LOOP},
        {"no-wait", no_argument, NULL, OPT_NO_WAIT},
        {"http", required_argument, NULL, OPT_HTTP},
        {"hints", no_argument, NULL, OPT_HINTS},
        {"secure", no_argument, NULL, OPT_SECURE},
        {"record-dir", required_argument, NULL, OPT_RECORD_DIR},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"allow", required_argument, NULL, OPT_ALLOW},
        {"push", required_argument, NULL, OPT_PUSH},
        {"push-keys", required_argument, NULL, OPT_PUSH_KEYS},
        {"relay-key", required_argument, NULL, OPT_RELAY_KEY},
        {"state", required_argument, NULL, OPT_STATE},
        {"pose", required_argument, NULL, OPT_POSE},
        {"clock-offset-ms", required_argument, NULL, OPT_CLOCK_OFFSET_MS},
        {"mock-align", no_argument, NULL, OPT_MOCK_ALIGN},
        CLI_HTTP_ACCESS_LONG_OPTIONS,
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    if (optind < argc)
        return cli_usage_error(s_verb, "unexpected argument '%s'", argv[optind]);
    if (opts->replug_after_s > 0 && opts->unplug_after_s <= 0)
        return cli_usage_error(s_verb, "--mock-replug-after needs --mock-unplug-after");
    if (opts->unplug_after_s > 0 && opts->mock == 0)
        return cli_usage_error(s_verb, "--mock-unplug-after needs a mock device");
    if (!opts->replay && (opts->rate != 1.0 || opts->is_looping || opts->is_replay_eager))
        return cli_usage_error(s_verb, "--rate, --loop and --no-wait go with --replay");
    if (opts->is_secure && (!opts->keys || !opts->allow))
        return cli_usage_error(s_verb,
                               "--secure needs --keys DIR (sk2 keygen DIR) and --allow DIR");
    if (!opts->is_secure && (opts->keys || opts->allow))
        return cli_usage_error(s_verb, "--keys and --allow go with --secure");
    /* A secure server's frames must not cross the network in the clear on their way to the
     * relay either: its push link is CURVE, with --push-keys or else the server's own pair. */
    if (opts->is_secure && opts->push && !opts->relay_key)
        return cli_usage_error(s_verb, "--push with --secure needs --relay-key KEY (the link is "
                                       "CURVE too; --push-keys defaults to --keys)");
    if ((opts->push_keys || opts->relay_key) &&
        (!opts->push || (!opts->push_keys && !opts->is_secure) || !opts->relay_key))
        return cli_usage_error(s_verb, "--push-keys and --relay-key go together, with --push "
                                       "(with --secure, --relay-key alone: --keys is the pair)");
    if (!opts->http && cli_http_access_is_set(&opts->access))
        return cli_usage_error(s_verb,
                               "--http-token, --http-insecure and --http-max-connections go "
                               "with --http");
    return CLI_CONTINUE;
}

/* Ids of the mock devices served, oldest first (for SIGUSR2). */
static char s_ids[S_ADDED_MAX][SK2_DEVICE_ID_MAX + 1];
static size_t s_id_count = 0;

/* Opens one device of `backend` (the camera `uri`, or its first for NULL) and hands it to the
 * server, printing its id; the serial of a mock goes to mock_serial if not NULL. */
static int s_add_device(sk2_server_t *server, const char *backend, const char *uri,
                        const serve_options_t *opts, char *mock_serial, size_t serial_size)
{
    sk2_device_t *device = sk2_device_new(backend);
    if (!device) {
        fprintf(stderr,
                "sk2 serve: this library has no \"%s\" device backend (see `sk2 devices`)\n",
                backend);
        return CLI_EXIT_FAILURE;
    }
    bool is_mock = strcmp(backend, "mock") == 0;
    /* --mock-align is the mock's one uri (src/device/mock.c). */
    if (is_mock && opts->is_mock_align && !(uri && *uri))
        uri = "align";
    /* Cameras run at their own rate and size; only the mock takes --fps and --color-size. */
    double fps = opts->fps;
    int rc = is_mock ? sk2_device_set_fps(device, fps) : 0;
    if (rc == 0 && is_mock && opts->color_width > 0)
        rc = sk2_device_set_color_size(device, (uint32_t)opts->color_width,
                                       (uint32_t)opts->color_height);
    if (rc == 0 && uri && *uri)
        rc = sk2_device_set_uri(device, uri);
    /* Opening first fixes the id, which we copy: the server owns the device afterwards. */
    if (rc == 0)
        rc = sk2_device_open(device);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot open %s device%s%s: %s\n", backend, uri ? " " : "",
                uri ? uri : "", sk2_strerror(rc));
        sk2_device_destroy(&device);
        return CLI_EXIT_FAILURE;
    }
    char id[SK2_DEVICE_ID_MAX + 1], serial[SK2_CAMERA_SERIAL_MAX + 1];
    snprintf(id, sizeof id, "%s", sk2_device_id(device));
    snprintf(serial, sizeof serial, "%s", sk2_device_serial(device));
    if (mock_serial && is_mock)
        snprintf(mock_serial, serial_size, "%s", serial);
    rc = sk2_server_add_device(server, &device);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot serve device %s: %s\n", id, sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (is_mock && s_id_count < S_ADDED_MAX)
        snprintf(s_ids[s_id_count++], sizeof s_ids[0], "%s", id);
    if (!is_mock)
        printf("sk2 serve: device %s (%s camera, serial %s)\n", id, backend,
               serial[0] ? serial : "none");
    else if (fps > 0)
        printf("sk2 serve: device %s (mock, %.4g fps)\n", id, fps);
    else
        printf("sk2 serve: device %s (mock, as fast as possible)\n", id);
    return CLI_EXIT_OK;
}

/* The replays being served, to say when one reached its end. The pointers are borrowed from
 * the server, which keeps a replay device until it stops (replays are never lost, replaced or
 * removed by a signal); sk2_device_replay_control is safe from this thread. */
static struct {
    sk2_device_t *device;
    char id[SK2_DEVICE_ID_MAX + 1];
    bool is_end_said;
} s_replays[SK2_RECORDING_MAX_DEVICES];
static size_t s_replay_count;

/* Prints a line for each replay that reached its end since the last look. */
static void s_note_replay_ends(cli_status_t *status)
{
    for (size_t i = 0; i < s_replay_count; i++) {
        sk2_replay_status_t now;
        if (sk2_device_replay_control(s_replays[i].device, SK2_REPLAY_STATUS, 0, &now) != 0)
            continue;
        if (now.is_ended && !s_replays[i].is_end_said) {
            char safe[4 * SK2_DEVICE_ID_MAX + 1];
            cli_status_note(status, "sk2 serve: replay of %s reached the end after %llu frames",
                            cli_safe(s_replays[i].id, safe, sizeof safe),
                            (unsigned long long)now.played);
        }
        s_replays[i].is_end_said = now.is_ended; /* a seek starts it again */
    }
}

/* Serves every device of a recording as a replay device. */
static int s_add_replays(sk2_server_t *server, const serve_options_t *opts)
{
    sk2_recording_reader_t *reader = sk2_recording_reader_new();
    if (!reader || sk2_recording_reader_open(reader, opts->replay) != 0) {
        fprintf(stderr, "sk2 serve: %s: %s\n", opts->replay,
                reader ? sk2_recording_reader_why(reader) : "out of memory");
        sk2_recording_reader_destroy(&reader);
        return CLI_EXIT_FAILURE;
    }
    size_t count = sk2_recording_reader_device_count(reader);
    sk2_recording_reader_destroy(&reader);
    for (size_t d = 0; d < count; d++) {
        sk2_device_t *device = sk2_device_new("replay");
        int rc = device ? sk2_device_set_replay_source(device, opts->replay, d) : SK2_ENOMEM;
        if (rc == 0)
            rc = sk2_device_set_replay_rate(device, opts->rate);
        if (rc == 0)
            rc = sk2_device_set_replay_loop(device, opts->is_looping);
        if (rc == 0 && opts->max_frame_bytes)
            rc = sk2_device_set_replay_max_frame_bytes(device, opts->max_frame_bytes);
        if (rc == 0)
            rc = sk2_device_set_replay_wait(device, !opts->is_replay_eager);
        if (rc == 0)
            rc = sk2_device_open(device);
        if (rc != 0) {
            fprintf(stderr, "sk2 serve: cannot replay device %zu of %s: %s\n", d, opts->replay,
                    sk2_strerror(rc));
            sk2_device_destroy(&device);
            return CLI_EXIT_FAILURE;
        }
        char id[SK2_DEVICE_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", sk2_device_id(device));
        sk2_device_t *borrowed = device;
        rc = sk2_server_add_device(server, &device);
        if (rc != 0) {
            fprintf(stderr, "sk2 serve: cannot serve device %s: %s\n", id, sk2_strerror(rc));
            return CLI_EXIT_FAILURE;
        }
        if (s_replay_count < SK2_RECORDING_MAX_DEVICES) {
            s_replays[s_replay_count].device = borrowed;
            snprintf(s_replays[s_replay_count].id, sizeof s_replays[s_replay_count].id, "%s", id);
            s_replay_count++;
        }
        char safe[4 * SK2_DEVICE_ID_MAX + 1];
        printf("sk2 serve: device %s (replay of device %zu, rate %.4g%s%s)\n",
               cli_safe(id, safe, sizeof safe), d, opts->rate, opts->is_looping ? ", looping" : "",
               opts->is_replay_eager ? "" : ", waits for a first listener");
    }
    return CLI_EXIT_OK;
}

/* No --device, no --mock: the first camera any camera backend sees, else one mock. */
static int s_add_default(sk2_server_t *server, const serve_options_t *opts, char *mock_serial,
                         size_t serial_size)
{
    char looked[256] = "";
    for (size_t i = 0; i < sk2_device_backend_count(); i++) {
        if (!sk2_device_backend_is_camera(i))
            continue;
        const char *backend = sk2_device_backend_name(i);
        sk2_camera_info_t camera;
        int count = sk2_device_backend_enumerate(i, &camera, 1);
        size_t used = strlen(looked);
        snprintf(looked + used, sizeof looked - used, "%s%s %d", used ? ", " : "", backend,
                 count < 0 ? 0 : count);
        if (count <= 0)
            continue;
        char safe[4 * SK2_CAMERA_NAME_MAX + 1];
        cli_safe(camera.name, safe, sizeof safe);
        printf("sk2 serve: serving the first camera found: %s %s (%s)\n", backend, camera.uri,
               safe);
        return s_add_device(server, backend, camera.uri, opts, NULL, 0);
    }
    printf("sk2 serve: no camera found (%s); serving a mock device\n",
           looked[0] ? looked : "no camera backend built in");
    return s_add_device(server, "mock", NULL, opts, mock_serial, serial_size);
}

/* True if only programs on this machine can reach what is bound to address. */
static bool s_is_loopback_bind(const char *address)
{
    return strncmp(address, "127.", 4) == 0 || strcmp(address, "::1") == 0 ||
           strcmp(address, "[::1]") == 0 || strcmp(address, "localhost") == 0;
}

/* Creates, binds and populates the server; returns CLI_EXIT_OK or an exit code. The first
 * mock's serial goes to mock_serial, for fault injection. */
static int s_start(const serve_options_t *opts, sk2_server_t **server_p, char *mock_serial,
                   size_t serial_size)
{
    sk2_server_t *server = sk2_server_new(opts->name);
    *server_p = server;
    if (!server) {
        fprintf(stderr, "sk2 serve: cannot create the server (out of memory?)\n");
        return CLI_EXIT_FAILURE;
    }
    int rc = opts->queue > 0 ? sk2_server_set_queue_frames(server, (unsigned)opts->queue) : 0;
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot set --queue: %s\n", sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = opts->record_dir ? sk2_server_set_record_dir(server, opts->record_dir) : 0;
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot use --record-dir %s: %s\n", opts->record_dir,
                rc == SK2_ENOTFOUND ? "not a folder" : sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = opts->state ? sk2_server_set_state_file(server, opts->state) : 0;
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot use --state %s: %s (the log says why)\n", opts->state,
                sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = opts->jpeg_quality > 0 ? sk2_server_set_jpeg_quality(server, (int)opts->jpeg_quality) : 0;
    if (rc == 0 && opts->max_frame_bytes)
        rc = sk2_server_set_max_frame_bytes(server, opts->max_frame_bytes);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot set --jpeg-quality: %s\n", sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = opts->clock_offset_ms ? sk2_server_set_clock_offset_ms(server, opts->clock_offset_ms) : 0;
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot set --clock-offset-ms: %s\n", sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = opts->max_streams >= 0 ? sk2_server_set_max_streams(server, (unsigned)opts->max_streams)
                                : 0;
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot set --max-streams: %s\n", sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = sk2_server_set_announce(server, opts->is_announced);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot set up announcing: %s\n", sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (opts->is_secure) {
        if (!sk2_security_is_available()) {
            fprintf(stderr, "sk2 serve: --secure needs CURVE, and this libzmq was built without "
                            "it (no libsodium)\n");
            return CLI_EXIT_FAILURE;
        }
        rc = sk2_server_set_security(server, opts->keys, opts->allow);
        if (rc != 0) {
            fprintf(stderr,
                    "sk2 serve: cannot make the server secure with --keys %s --allow %s: "
                    "%s\n",
                    opts->keys, opts->allow, sk2_strerror(rc));
            return CLI_EXIT_FAILURE;
        }
    }
    rc = sk2_server_bind(server, opts->bind, (uint16_t)opts->port);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot bind %s port %ld: %s\n", opts->bind, opts->port,
                sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (opts->is_secure)
        printf("sk2 serve: secure (CURVE); server public key %s\n", sk2_server_public_key(server));
    else if (!s_is_loopback_bind(opts->bind))
        fprintf(stderr,
                "sk2 serve: WARNING: bound to %s without --secure: anyone who can reach these "
                "ports can read every frame and send control messages (see `sk2 serve --help`, "
                "--secure)\n",
                opts->bind);
    printf("sk2 serve: \"%s\" control endpoint %s\n", sk2_server_name(server),
           sk2_server_endpoint(server));
    for (size_t i = 0; i < opts->device_count; i++) {
        char backend[64];
        const char *colon = strchr(opts->devices[i], ':');
        size_t length = colon ? (size_t)(colon - opts->devices[i]) : strlen(opts->devices[i]);
        snprintf(backend, sizeof backend, "%.*s", (int)(length < 63 ? length : 63),
                 opts->devices[i]);
        rc = s_add_device(server, backend, colon ? colon + 1 : NULL, opts, mock_serial,
                          mock_serial[0] ? 0 : serial_size);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    for (long i = 0; i < opts->mock; i++) {
        rc =
            s_add_device(server, "mock", NULL, opts, mock_serial, mock_serial[0] ? 0 : serial_size);
        if (rc != CLI_EXIT_OK)
            return rc;
    }
    if (opts->replay)
        return s_add_replays(server, opts);
    if (opts->mock < 0 && opts->device_count == 0)
        return s_add_default(server, opts, mock_serial, serial_size);
    return CLI_EXIT_OK;
}

/* Serves the --pose poses, once the devices are there. A bad pose file stopped serve while
 * parsing, before anything started; an id this server does not serve is a usage error too. */
static int s_apply_poses(sk2_server_t *server, const serve_options_t *opts)
{
    for (size_t i = 0; i < opts->pose_count; i++) {
        int rc = sk2_server_set_device_pose(server, opts->poses[i].device_id, &opts->poses[i].pose);
        if (rc == SK2_ENOTFOUND)
            return cli_usage_error(s_verb, "--pose: this server has no device %s",
                                   opts->poses[i].device_id);
        if (rc != 0) {
            fprintf(stderr, "sk2 serve: cannot set the pose of %s: %s\n", opts->poses[i].device_id,
                    sk2_strerror(rc));
            return CLI_EXIT_FAILURE;
        }
    }
    return CLI_EXIT_OK;
}

static void s_print_status(cli_status_t *status, const sk2_server_stats_t *now,
                           const sk2_server_stats_t *before, int64_t interval_us)
{
    uint64_t frames = now->frames_published - before->frames_published;
    uint64_t bytes = now->bytes_published - before->bytes_published;
    cli_status_print(status,
                     "devices %u | frames produced %llu encoded %llu published %llu dropped %llu"
                     " | %.1f fps | %.2f MB/s",
                     (unsigned)now->devices, (unsigned long long)now->frames_produced,
                     (unsigned long long)now->frames_encoded,
                     (unsigned long long)now->frames_published,
                     (unsigned long long)now->frames_dropped, cli_per_second(frames, interval_us),
                     cli_mb_per_second(bytes, interval_us));
}

/* True if clients on other machines cannot reach the endpoint. */
static bool s_is_loopback(const char *endpoint)
{
    return strncmp(endpoint, "tcp://127.", 10) == 0 || strncmp(endpoint, "tcp://[::1]", 11) == 0;
}

/* Says when the server is announced, and under which name (it changes after a conflict).
 * Failures are not repeated here: the library has logged them once already. */
static void s_note_announce(sk2_server_t *server, cli_status_t *status, char *last, size_t size)
{
    const char *name = sk2_server_announced_name(server);
    if (!name || strcmp(name, last) == 0)
        return;
    snprintf(last, size, "%s", name);
    char safe[4 * SK2_SERVER_NAME_MAX + 1];
    cli_safe(name, safe, sizeof safe);
    if (s_is_loopback(sk2_server_endpoint(server)))
        cli_status_note(status,
                        "sk2 serve: announced as \"%s\" to this machine only (bound to "
                        "loopback; --bind '*' to be found on the network)",
                        safe);
    else
        cli_status_note(status, "sk2 serve: announced as \"%s\"", safe);
}

/* Mock fault injection on schedule: unplug the first mock, and later plug it back. */
static void s_inject(const serve_options_t *opts, const char *mock_serial, int64_t start_us,
                     int64_t now_us, int64_t *unplugged_us, cli_status_t *status)
{
    if (opts->unplug_after_s <= 0 || !mock_serial[0])
        return;
    if (*unplugged_us == 0 && now_us - start_us >= (int64_t)(opts->unplug_after_s * 1e6)) {
        sk2_mock_set_unplugged(mock_serial, true);
        *unplugged_us = now_us;
        cli_status_note(status, "sk2 serve: mock %s unplugged (fault injection)", mock_serial);
    } else if (*unplugged_us > 0 && opts->replug_after_s > 0 &&
               now_us - *unplugged_us >= (int64_t)(opts->replug_after_s * 1e6)) {
        sk2_mock_set_unplugged(mock_serial, false);
        *unplugged_us = -1; /* done */
        cli_status_note(status, "sk2 serve: mock %s plugged back (fault injection)", mock_serial);
    }
}

/* Waits for Ctrl-C, printing a status line every interval. */
static void s_run(sk2_server_t *server, const serve_options_t *opts, cli_status_t *status,
                  const char *mock_serial)
{
    int64_t unplugged_us = 0;
    char announced[SK2_SERVER_NAME_MAX + 1] = "";
    const int64_t interval_us = (int64_t)(opts->status_interval_s * 1e6);
    sk2_server_stats_t before = {0};
    sk2_server_stats(server, &before);
    int64_t before_us = sk2_clock_mono_us();
    int64_t next_us = before_us + interval_us;
    const int64_t start_us = before_us;

    sig_atomic_t added = 0, removed = 0, reloaded = 0;
    while (!cli_is_interrupted()) {
        while (reloaded != s_reload_requests) {
            reloaded++;
            cli_status_close(status);
            int keys = sk2_server_reload_allow(server);
            if (keys >= 0)
                printf("sk2 serve: allow folder %s read again: %d client key%s allowed\n",
                       opts->allow ? opts->allow : "", keys, keys == 1 ? "" : "s");
            else
                fprintf(stderr, "sk2 serve: cannot read the allow folder again: %s\n",
                        sk2_strerror(keys));
        }
        while (added != s_add_requests) {
            added++;
            cli_status_close(status);
            s_add_device(server, "mock", NULL, opts, NULL, 0);
        }
        while (removed != s_remove_requests) {
            removed++;
            if (s_id_count > 0 && sk2_server_remove_device(server, s_ids[--s_id_count]) == 0) {
                cli_status_close(status);
                printf("sk2 serve: device %s removed\n", s_ids[s_id_count]);
            }
        }
        if (opts->is_announced)
            s_note_announce(server, status, announced, sizeof announced);
        int64_t now_us = sk2_clock_mono_us();
        s_inject(opts, mock_serial, start_us, now_us, &unplugged_us, status);
        s_note_replay_ends(status);
        if (now_us < next_us) {
            /* Short naps, so that a signal caught by another thread still stops us soon. */
            cli_sleep_ms(cli_wait_ms(now_us, next_us, 100));
            continue;
        }
        sk2_server_stats_t now = {0};
        if (sk2_server_stats(server, &now) == 0) {
            s_print_status(status, &now, &before, now_us - before_us);
            before = now;
            before_us = now_us;
        }
        next_us += interval_us;
        if (next_us <= now_us)
            next_us = now_us + interval_us;
    }
    /* A replay that ended just before the stop is still said, not lost to the loop's timing. */
    s_note_replay_ends(status);
}

static void s_print_summary(sk2_server_t *server, int64_t elapsed_us)
{
    sk2_server_stats_t stats = {0};
    if (sk2_server_stats(server, &stats) != 0)
        return;
    printf("sk2 serve: stopped after %.1f s: devices %u, frames produced %llu encoded %llu "
           "published %llu dropped %llu, %.2f MB published, requests %llu (%llu bad)\n",
           (double)elapsed_us / 1e6, (unsigned)stats.devices,
           (unsigned long long)stats.frames_produced, (unsigned long long)stats.frames_encoded,
           (unsigned long long)stats.frames_published, (unsigned long long)stats.frames_dropped,
           cli_mb(stats.bytes_published), (unsigned long long)stats.requests,
           (unsigned long long)stats.bad_requests);
}

/* What a newcomer types next, with this server's real endpoint, so that the first minutes need
 * no guessing of ports (`make run` passes --hints). The tool's path is the one it was started
 * by, so the lines work as shown from the same directory. */
static void s_print_hints(const char *endpoint, const char *url)
{
    const char *sk2 = cli_program();
    printf("sk2 serve: try, in another terminal:\n"
           "  %s info %s\n"
           "  %s stream %s --frames 90 --check-mock\n"
           "  %s stream %s --stream depth --stream ir --seconds 3\n"
           "  %s record %s -o take.sk2r --seconds 5\n",
           sk2, endpoint, sk2, endpoint, sk2, endpoint, sk2, endpoint);
    if (url)
        printf("  open %s in a browser (the web viewer of this server)\n", url);
    else
        printf("  %s view %s\n", sk2, endpoint);
}

int cli_serve(int argc, char **argv)
{
    serve_options_t opts = {.mock = -1,
                            .max_streams = -1,
                            .bind = "127.0.0.1",
                            .fps = 30.0,
                            .status_interval_s = 1.0,
                            .has_status = true,
                            .is_announced = true,
                            .rate = 1.0};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;

    int64_t start_us = sk2_clock_mono_us();
    bool has_endpoint_file = false;
    sk2_server_t *server = NULL;
    char mock_serial[SK2_CAMERA_SERIAL_MAX + 1] = "";
    sk2_gateway_t *gateway = NULL;
    sk2_push_t *push = NULL;
    rc = s_start(&opts, &server, mock_serial, sizeof mock_serial);
    if (rc != CLI_EXIT_OK)
        goto out;
    rc = s_apply_poses(server, &opts);
    if (rc != CLI_EXIT_OK)
        goto out;
    /* Written only once the devices are served, so that whoever waits for the file finds them
     * in the first `me`. */
    if (opts.endpoint_file) {
        if (cli_write_endpoint_file(opts.endpoint_file, sk2_server_endpoint(server)) != 0) {
            fprintf(stderr, "sk2 serve: cannot write %s: %s\n", opts.endpoint_file,
                    strerror(errno));
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        has_endpoint_file = true;
    }

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_usr;
    sigemptyset(&action.sa_mask);
    sigaction(SIGUSR1, &action, NULL);
    sigaction(SIGUSR2, &action, NULL);
    if (opts.is_secure)
        sigaction(SIGHUP, &action, NULL);
    /* A parent may hand us these blocked (node's child_process does): take them. */
    sigset_t usr;
    sigemptyset(&usr);
    sigaddset(&usr, SIGUSR1);
    sigaddset(&usr, SIGUSR2);
    sigaddset(&usr, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &usr, NULL);

    if (opts.http) {
        gateway = sk2_gateway_new();
        if (!gateway || sk2_gateway_add_server(gateway, sk2_server_endpoint(server)) != 0) {
            fprintf(stderr, "sk2 serve: cannot set up the web gateway\n");
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        if (opts.max_frame_bytes)
            sk2_gateway_set_max_frame_bytes(gateway, opts.max_frame_bytes);
        /* A secure server's own gateway connects with the server's key pair, which its ZAP
         * handler always allows: no key of its own to make or to allow. */
        if (opts.is_secure && (rc = sk2_gateway_set_security(gateway, opts.keys,
                                                             sk2_server_public_key(server))) != 0) {
            fprintf(stderr, "sk2 serve: cannot make the web gateway's connection secure: %s\n",
                    sk2_strerror(rc));
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        rc = cli_gateway_start(s_verb, gateway, opts.http, &opts.access, false);
        if (rc != CLI_CONTINUE)
            goto out;
    }

    if (opts.push) {
        /* A secure server lets its own key pair in, so the pusher reaches it with that. */
        const char *link_keys = opts.push_keys ? opts.push_keys : opts.keys;
        if (opts.is_secure)
            push = sk2_push_new_secure_server(sk2_server_endpoint(server), opts.push,
                                              sk2_server_name(server), link_keys, opts.relay_key,
                                              opts.keys, sk2_server_public_key(server));
        else if (opts.push_keys)
            push = sk2_push_new_secure(sk2_server_endpoint(server), opts.push,
                                       sk2_server_name(server), opts.push_keys, opts.relay_key);
        else
            push = sk2_push_new(sk2_server_endpoint(server), opts.push, sk2_server_name(server));
        if (!push) {
            fprintf(stderr,
                    "sk2 serve: cannot push to '%s': give the relay as HOST:PORT (and "
                    "readable --push-keys and --relay-key)\n",
                    opts.push);
            rc = CLI_EXIT_USAGE;
            goto out;
        }
        if (!cli_is_quiet())
            printf("sk2 serve: pushing to relay %s\n", opts.push);
    }

    if (opts.has_hints)
        s_print_hints(sk2_server_endpoint(server), gateway ? sk2_gateway_url(gateway) : NULL);

    cli_status_t status;
    cli_status_init(&status, stdout, opts.has_status);
    s_run(server, &opts, &status, mock_serial);
    cli_status_close(&status);
    s_print_summary(server, sk2_clock_mono_us() - start_us);
    rc = CLI_EXIT_OK;
out:
    sk2_push_destroy(&push);
    sk2_gateway_destroy(&gateway);
    sk2_server_destroy(&server);
    if (has_endpoint_file)
        unlink(opts.endpoint_file);
    return rc;
}
