/* `sk2 serve`: runs a server with N mock devices until Ctrl-C or SIGTERM, printing the control
 * endpoint, the device ids and a status line of the server's counters every interval. With
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

typedef struct {
    long mock;                 /* mock devices to serve, 0..64 */
    const char *name;          /* server name, NULL for the library's default */
    const char *bind;          /* address to bind, "*" for every interface */
    long port;                 /* control port, 0 = chosen by the OS */
    double fps;                /* frames per second per device, 0 = as fast as possible */
    long queue;                /* frames queued per encoder, 0 = library default */
    const char *endpoint_file; /* where to publish the control endpoint, or NULL */
    double status_interval_s;  /* seconds between status lines */
    bool has_status;           /* print status lines */
    bool is_announced;         /* announce over DNS-SD */
    const char *http;          /* ADDR:PORT of the web gateway, or NULL */
    long color_width;          /* mock colour stream size, 0 = the backend's default */
    long color_height;
} serve_options_t;

/* Mock devices added (SIGUSR1) or removed (SIGUSR2) on request, counted by the handlers. */
static volatile sig_atomic_t s_add_requests = 0;
static volatile sig_atomic_t s_remove_requests = 0;

#define S_ADDED_MAX 64

static void s_on_usr(int signum)
{
    if (signum == SIGUSR1)
        s_add_requests++;
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
    OPT_HTTP,
    OPT_COLOR_SIZE,
};

static void s_print_usage(void)
{
    printf("usage: sk2 serve [--mock N] [--name NAME] [--bind ADDR] [--port PORT] [--fps F]\n"
           "                 [--queue N] [--endpoint-file PATH] [--status-interval S]\n"
           "                 [--no-status] [--no-announce] [--color-size WxH]\n"
           "                 [--http ADDR:PORT] [-v|-q]\n"
           "\n"
           "Serves N mock depth cameras on a streamkinect2 control endpoint until Ctrl-C.\n"
           "\n"
           "  --mock N               mock devices to serve, 0..64 (default 1)\n"
           "  --name NAME            server name (default \"sk2 on <host name>\")\n"
           "  --bind ADDR            address to bind (default 127.0.0.1; '*' = every interface)\n"
           "  --port PORT            control port, 0..65535 (default 0: the OS picks one)\n"
           "  --fps F                frames per second per device, 0..1000 (default 30;\n"
           "                         0 = as fast as possible)\n"
           "  --queue N              frames waiting per encoder before dropping, 1..64\n"
           "  --endpoint-file PATH   write the control endpoint to PATH (removed on exit)\n"
           "  --status-interval S    seconds between status lines (default 1)\n"
           "  --no-status            no status lines\n"
           "  --no-announce          do not announce the server on the local network\n"
           "  --color-size WxH       the mock colour stream's size (default 1920x1080)\n"
           "  --http ADDR:PORT       also serve the web viewer and HTTP API for these devices\n"
           "                         (e.g. 127.0.0.1:8080; port 0: the OS picks one)\n"
           "\n"
           "SIGUSR1 adds one more mock device; SIGUSR2 removes the newest one.\n"
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

/* Applies one option's value; returns CLI_CONTINUE or an exit code. */
static int s_apply_option(serve_options_t *opts, int opt, const char *arg)
{
    switch (opt) {
    case OPT_MOCK:
        if (cli_parse_long(arg, 0, 64, &opts->mock) != 0)
            return cli_usage_error(s_verb, "--mock must be a whole number 0..64, not '%s'", arg);
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
        if (cli_parse_double(arg, 0.1, 3600.0, &opts->status_interval_s) != 0)
            return cli_usage_error(s_verb, "--status-interval must be 0.1..3600 s, not '%s'", arg);
        break;
    case OPT_NO_STATUS:
        opts->has_status = false;
        break;
    case OPT_NO_ANNOUNCE:
        opts->is_announced = false;
        break;
    case OPT_COLOR_SIZE: {
        char extra;
        if (sscanf(arg, "%4ldx%4ld%c", &opts->color_width, &opts->color_height, &extra) != 2 ||
            opts->color_width < 16 || opts->color_height < 16 || opts->color_width > 1920 ||
            opts->color_height > 1080 || opts->color_width % 2 || opts->color_height % 2)
            return cli_usage_error(s_verb,
                                   "--color-size must be WxH, even, 16x16..1920x1080, not "
                                   "'%s'",
                                   arg);
        break;
    }
    case OPT_HTTP: {
        char address[128];
        uint16_t port;
        if (cli_parse_http(arg, address, sizeof address, &port) != 0)
            return cli_usage_error(s_verb, "--http must be ADDR:PORT, not '%s'", arg);
        opts->http = arg;
        break;
    }
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
        {"http", required_argument, NULL, OPT_HTTP},
        {"color-size", required_argument, NULL, OPT_COLOR_SIZE},
        {"help", no_argument, NULL, 'h'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, optstring, options, NULL)) != -1) {
        if (cli_common_option(opt))
            continue;
        if (opt == 'h') {
            s_print_usage();
            return CLI_EXIT_OK;
        }
        if (opt == '?' || opt == ':')
            return cli_option_error(s_verb, opt, optstring, options, argv);
        int rc = s_apply_option(opts, opt, optarg);
        if (rc != CLI_CONTINUE)
            return rc;
    }
    if (optind < argc)
        return cli_usage_error(s_verb, "unexpected argument '%s'", argv[optind]);
    return CLI_CONTINUE;
}

/* Writes all of buf, retrying after signals (our handlers do not restart system calls). */
static int s_write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes "endpoint\n" to a temporary file beside path and renames it into place, so a reader
 * sees either no file or the whole line. Returns 0 or -1 with errno set. */
static int s_write_endpoint_file(const char *path, const char *endpoint)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof tmp, "%s.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    char line[CLI_ENDPOINT_MAX + 2];
    snprintf(line, sizeof line, "%s\n", endpoint);
    int rc = s_write_all(fd, line, strlen(line));
    if (rc == 0)
        rc = fchmod(fd, 0644); /* mkstemp makes it 0600; the endpoint is no secret */
    int saved = errno;
    if (close(fd) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (rc == 0 && rename(tmp, path) != 0) {
        rc = -1;
        saved = errno;
    }
    if (rc != 0)
        unlink(tmp);
    errno = saved;
    return rc;
}

/* Ids of the mock devices served, oldest first (for SIGUSR2). */
static char s_ids[S_ADDED_MAX][SK2_DEVICE_ID_MAX + 1];
static size_t s_id_count = 0;

/* Opens one mock device and hands it to the server, printing its id. */
static int s_add_mock(sk2_server_t *server, const serve_options_t *opts)
{
    double fps = opts->fps;
    sk2_device_t *device = sk2_device_new("mock");
    if (!device) {
        fprintf(stderr, "sk2 serve: this library has no mock device backend\n");
        return CLI_EXIT_FAILURE;
    }
    /* Opening first fixes the id, which we copy: the server owns the device afterwards. */
    int rc = sk2_device_set_fps(device, fps);
    if (rc == 0 && opts->color_width > 0)
        rc = sk2_device_set_color_size(device, (uint32_t)opts->color_width,
                                       (uint32_t)opts->color_height);
    if (rc == 0)
        rc = sk2_device_open(device);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot open a mock device: %s\n", sk2_strerror(rc));
        sk2_device_destroy(&device);
        return CLI_EXIT_FAILURE;
    }
    char id[SK2_DEVICE_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", sk2_device_id(device));
    rc = sk2_server_add_device(server, &device);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot serve device %s: %s\n", id, sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (s_id_count < S_ADDED_MAX)
        snprintf(s_ids[s_id_count++], sizeof s_ids[0], "%s", id);
    if (fps > 0)
        printf("sk2 serve: device %s (mock, %.4g fps)\n", id, fps);
    else
        printf("sk2 serve: device %s (mock, as fast as possible)\n", id);
    return CLI_EXIT_OK;
}

/* Creates, binds and populates the server; returns CLI_EXIT_OK or an exit code. */
static int s_start(const serve_options_t *opts, sk2_server_t **server_p)
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
    rc = sk2_server_set_announce(server, opts->is_announced);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot set up announcing: %s\n", sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = sk2_server_bind(server, opts->bind, (uint16_t)opts->port);
    if (rc != 0) {
        fprintf(stderr, "sk2 serve: cannot bind %s port %ld: %s\n", opts->bind, opts->port,
                sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    printf("sk2 serve: \"%s\" control endpoint %s\n", sk2_server_name(server),
           sk2_server_endpoint(server));
    for (long i = 0; i < opts->mock; i++) {
        rc = s_add_mock(server, opts);
        if (rc != CLI_EXIT_OK)
            return rc;
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

/* Waits for Ctrl-C, printing a status line every interval. */
static void s_run(sk2_server_t *server, const serve_options_t *opts, cli_status_t *status)
{
    char announced[SK2_SERVER_NAME_MAX + 1] = "";
    const int64_t interval_us = (int64_t)(opts->status_interval_s * 1e6);
    sk2_server_stats_t before = {0};
    sk2_server_stats(server, &before);
    int64_t before_us = sk2_clock_mono_us();
    int64_t next_us = before_us + interval_us;

    sig_atomic_t added = 0, removed = 0;
    while (!cli_is_interrupted()) {
        while (added != s_add_requests) {
            added++;
            cli_status_close(status);
            s_add_mock(server, opts);
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

int cli_serve(int argc, char **argv)
{
    serve_options_t opts = {.mock = 1,
                            .bind = "127.0.0.1",
                            .fps = 30.0,
                            .status_interval_s = 1.0,
                            .has_status = true,
                            .is_announced = true};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;

    int64_t start_us = sk2_clock_mono_us();
    bool has_endpoint_file = false;
    sk2_server_t *server = NULL;
    sk2_gateway_t *gateway = NULL;
    rc = s_start(&opts, &server);
    if (rc != CLI_EXIT_OK)
        goto out;
    /* Written only once the devices are served, so that whoever waits for the file finds them
     * in the first `me`. */
    if (opts.endpoint_file) {
        if (s_write_endpoint_file(opts.endpoint_file, sk2_server_endpoint(server)) != 0) {
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
    /* A parent may hand us these blocked (node's child_process does): take them. */
    sigset_t usr;
    sigemptyset(&usr);
    sigaddset(&usr, SIGUSR1);
    sigaddset(&usr, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &usr, NULL);

    if (opts.http) {
        gateway = sk2_gateway_new();
        if (!gateway || sk2_gateway_add_server(gateway, sk2_server_endpoint(server)) != 0) {
            fprintf(stderr, "sk2 serve: cannot set up the web gateway\n");
            rc = CLI_EXIT_FAILURE;
            goto out;
        }
        rc = cli_gateway_start(s_verb, gateway, opts.http);
        if (rc != CLI_CONTINUE)
            goto out;
    }

    cli_status_t status;
    cli_status_init(&status, stdout, opts.has_status);
    s_run(server, &opts, &status);
    cli_status_close(&status);
    s_print_summary(server, sk2_clock_mono_us() - start_us);
    rc = CLI_EXIT_OK;
out:
    sk2_gateway_destroy(&gateway);
    sk2_server_destroy(&server);
    if (has_endpoint_file)
        unlink(opts.endpoint_file);
    return rc;
}
