/* `sk2 view`: the web gateway on its own. Follows the servers named on the command line (or,
 * with none, every server announced on the local network, as they come and go), and serves
 * the viewer page and the HTTP API (docs/http-api.md) until Ctrl-C, with a status line of the
 * gateway's counters. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "session.h"
#include "sk2/sk2.h"

static const char *const s_verb = "view";

typedef struct {
    const char *http;         /* ADDR:PORT to serve on */
    cli_http_access_t access; /* token, --http-insecure, connection cap */
    long refresh_ms;          /* `who` interval */
    long max_age_ms;          /* newest frame older than this: 503; 0 = from the stream's rate */
    int browse_ms;            /* how long to look for a server given by name */
    int browse;               /* --browse 1, --no-browse 0, neither -1 */
    bool is_browsing;         /* also follow discovered servers */
    double status_interval_s; /* seconds between status lines */
    bool has_status;
    size_t max_frame_bytes; /* every client's frame budget */
    double give_up_s;       /* --give-up-after, 0: never */
    int server_count;       /* SERVERs given */
} view_options_t;

enum {
    OPT_HTTP = 256,
    OPT_REFRESH,
    OPT_MAX_AGE,
    OPT_BROWSE,
    OPT_NO_BROWSE,
    OPT_BROWSE_TIMEOUT,
    OPT_NO_STATUS,
    OPT_MAX_FRAME_MB,
    OPT_GIVE_UP_AFTER,
};

static void s_print_usage(void)
{
    printf("usage: sk2 view [SERVER...] [--http ADDR:PORT] [--browse | --no-browse]\n"
           "                [--http-token TOKEN|auto] [--http-insecure]\n"
           "                [--http-max-connections N]\n"
           "                [--refresh MS] [--max-age MS] [--browse-timeout S] [--no-status]\n"
           "                [--max-frame-mb M] [--give-up-after S]\n"
           "                [--keys DIR --server-key KEY] [-v|-q]\n"
           "\n"
           "Serves a web page and an HTTP API that show the servers' devices live: depth,\n"
           "IR and colour, a point cloud, figures per stream, and the latest frame of any\n"
           "stream as a 16-bit PNG, a colour-mapped PNG or a JPEG (docs/http-api.md).\n"
           "\n"
           "SERVER is an endpoint (tcp://HOST:PORT or HOST:PORT) or the NAME of a server on\n"
           "the local network. With no SERVER, every server announced on the local network\n"
           "is shown, as they come and go.\n"
           "  --http ADDR:PORT     where to serve (default " CLI_HTTP_DEFAULT ", or the next free\n"
           "                       port of the 10 from there; port 0: the OS picks one). Bind\n"
           "                       to loopback unless others should see it; any other\n"
           "                       address needs --http-token or --http-insecure.\n"
           "%s"
           "  --browse             follow discovered servers as well as the SERVERs given\n"
           "  --no-browse          follow only the SERVERs given\n"
           "  --refresh MS         how often to ask servers for their devices (default 1000)\n"
           "  --max-age MS         answer latest.* with 503 once a stream's newest frame is\n"
           "                       older than MS, 100..3600000 (default: 2 s or 5 frame\n"
           "                       periods, whichever is longer)\n"
           "  --browse-timeout S   look for a NAME for at most S seconds (default 3)\n"
           "  --no-status          no status lines\n" CLI_MAX_FRAME_HELP CLI_GIVE_UP_HELP "\n"
           "A lost SERVER is retried every 2 s; the loss and the return (with the gap) are\n"
           "reported on stderr. With --give-up-after, a SERVER unreachable that long is no\n"
           "longer tried, and once every SERVER is given up (and no browsing) view exits 3.\n"
           "\n"
           "Exit status: 0 after Ctrl-C or SIGTERM, 1 if it cannot serve, 2 usage,\n"
           "3 a SERVER NAME was not found, or every SERVER was given up.\n",
           CLI_HTTP_ACCESS_HELP("                       "));
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    view_options_t *opts = options;
    switch (opt) {
    case OPT_HTTP:
        return cli_apply_http(s_verb, arg, &opts->http);
    case CLI_OPT_HTTP_TOKEN:
    case CLI_OPT_HTTP_INSECURE:
    case CLI_OPT_HTTP_MAX_CONNECTIONS:
        return cli_apply_http_access(s_verb, &opts->access, opt, arg);
    case OPT_REFRESH:
        if (cli_parse_long(arg, 100, 60000, &opts->refresh_ms) != 0)
            return cli_usage_error(s_verb, "--refresh must be 100..60000 ms, not '%s'", arg);
        break;
    case OPT_MAX_AGE:
        if (cli_parse_long(arg, 100, 3600000, &opts->max_age_ms) != 0)
            return cli_usage_error(s_verb, "--max-age must be 100..3600000 ms, not '%s'", arg);
        break;
    case OPT_BROWSE:
    case OPT_NO_BROWSE:
        opts->browse = opt == OPT_BROWSE ? 1 : 0;
        break;
    case OPT_BROWSE_TIMEOUT:
        return cli_parse_browse_timeout(s_verb, arg, &opts->browse_ms);
    case OPT_NO_STATUS:
        opts->has_status = false;
        break;
    case OPT_MAX_FRAME_MB:
        return cli_apply_max_frame_mb(s_verb, arg, &opts->max_frame_bytes);
    case OPT_GIVE_UP_AFTER:
        return cli_apply_give_up_after(s_verb, arg, &opts->give_up_s);
    default:
        return cli_apply_security(s_verb, opt, arg);
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, view_options_t *opts)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"http", required_argument, NULL, OPT_HTTP},
        {"refresh", required_argument, NULL, OPT_REFRESH},
        {"max-age", required_argument, NULL, OPT_MAX_AGE},
        {"browse", no_argument, NULL, OPT_BROWSE},
        {"no-browse", no_argument, NULL, OPT_NO_BROWSE},
        {"browse-timeout", required_argument, NULL, OPT_BROWSE_TIMEOUT},
        {"no-status", no_argument, NULL, OPT_NO_STATUS},
        {"max-frame-mb", required_argument, NULL, OPT_MAX_FRAME_MB},
        {"give-up-after", required_argument, NULL, OPT_GIVE_UP_AFTER},
        CLI_SECURITY_LONG_OPTIONS,
        CLI_HTTP_ACCESS_LONG_OPTIONS,
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    bool has_servers = optind < argc;
    opts->server_count = argc - optind;
    if (opts->browse == 0 && !has_servers)
        return cli_usage_error(s_verb, "--no-browse needs at least one SERVER");
    opts->is_browsing = opts->browse < 0 ? !has_servers : opts->browse == 1;
    return CLI_CONTINUE;
}

/* Adds one SERVER argument: an endpoint as it is, a name once found on the network. */
static int s_add_server(sk2_gateway_t *gateway, const char *target, int browse_ms)
{
    char endpoint[CLI_ENDPOINT_MAX];
    if (cli_is_endpoint(target)) {
        if (cli_endpoint_normalise(target, endpoint, sizeof endpoint) != 0)
            return cli_usage_error(s_verb, "bad endpoint '%s'", target);
    } else {
        sk2_browser_t *browser = sk2_browser_new();
        int rc = browser ? sk2_browser_find(browser, target, browse_ms, endpoint, sizeof endpoint)
                         : SK2_ENOMEM;
        char why[256];
        snprintf(why, sizeof why, "%s", browser ? sk2_browser_error(browser) : "");
        sk2_browser_destroy(&browser);
        if (rc != 0) {
            char safe[256];
            fprintf(stderr, "sk2 view: server \"%s\" not found: %s%s%s\n",
                    cli_safe(target, safe, sizeof safe), sk2_strerror(rc), *why ? ": " : "", why);
            return rc == SK2_ETIMEDOUT ? CLI_EXIT_LOST : CLI_EXIT_FAILURE;
        }
    }
    int rc = sk2_gateway_add_server(gateway, endpoint);
    if (rc != 0) {
        fprintf(stderr, "sk2 view: cannot follow %s: %s\n", endpoint, sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    return CLI_CONTINUE;
}

/* Says when given servers are lost and back (with how long), and whether every one of them was
 * given up. Returns true when view should end for that. */
static bool s_watch_links(sk2_gateway_t *gateway, const view_options_t *opts, cli_status_t *status,
                          uint32_t *was_lost, int64_t *lost_since_us)
{
    uint32_t lost = 0, given_up = 0;
    sk2_gateway_links(gateway, &lost, &given_up);
    int64_t now_us = sk2_clock_mono_us();
    if (lost > *was_lost) {
        cli_status_close(status);
        fprintf(stderr, "sk2 view: lost %u server(s); reconnecting\n", (unsigned)lost);
        if (*was_lost == 0)
            *lost_since_us = now_us;
    } else if (lost < *was_lost) {
        cli_status_close(status);
        fprintf(stderr, "sk2 view: server back after %.1f s\n",
                (double)(now_us - *lost_since_us) / 1e6);
    }
    *was_lost = lost;
    if (opts->server_count > 0 && !opts->is_browsing && given_up >= (uint32_t)opts->server_count) {
        cli_status_close(status);
        fprintf(stderr,
                "sk2 view: gave up: no answer from any server for %.1f s "
                "(--give-up-after)\n",
                opts->give_up_s);
        return true;
    }
    return false;
}

static int s_run(sk2_gateway_t *gateway, const view_options_t *opts)
{
    uint32_t was_lost = 0;
    int64_t lost_since_us = 0;
    cli_status_t status;
    cli_status_init(&status, stdout, opts->has_status);
    const int64_t interval_us = (int64_t)(opts->status_interval_s * 1e6);
    sk2_gateway_stats_t before = {0};
    int64_t before_us = sk2_clock_mono_us();
    int64_t next_us = before_us + interval_us;
    while (!cli_is_interrupted()) {
        if (s_watch_links(gateway, opts, &status, &was_lost, &lost_since_us)) {
            cli_status_close(&status);
            return CLI_EXIT_LOST;
        }
        int64_t now_us = sk2_clock_mono_us();
        if (now_us < next_us) {
            cli_sleep_ms(cli_wait_ms(now_us, next_us, 100));
            continue;
        }
        sk2_gateway_stats_t now;
        sk2_gateway_stats(gateway, &now);
        int64_t span = now_us - before_us;
        cli_status_print(
            &status,
            "servers %u devices %u | received %.1f fps | websockets %u sent %.1f "
            "fps skipped %llu | http %llu | rejected %llu",
            (unsigned)now.servers, (unsigned)now.devices,
            cli_per_second(now.frames_received - before.frames_received, span),
            (unsigned)now.websockets, cli_per_second(now.frames_sent - before.frames_sent, span),
            (unsigned long long)now.frames_skipped, (unsigned long long)now.http_requests,
            (unsigned long long)now.frames_rejected);
        before = now;
        before_us = now_us;
        next_us += interval_us;
        if (next_us <= now_us)
            next_us = now_us + interval_us;
    }
    cli_status_close(&status);
    return CLI_EXIT_OK;
}

/* The default --http; compared by address to tell it from one the user typed. */
static const char s_http_default_text[] = CLI_HTTP_DEFAULT;

int cli_view(int argc, char **argv)
{
    view_options_t opts = {.http = s_http_default_text,
                           .refresh_ms = 1000,
                           .browse_ms = CLI_BROWSE_DEFAULT_MS,
                           .browse = -1,
                           .status_interval_s = 1.0,
                           .has_status = true,
                           .max_frame_bytes = SK2_LIMIT_FRAME_BYTES};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    sk2_gateway_t *gateway = sk2_gateway_new();
    if (!gateway) {
        fprintf(stderr, "sk2 view: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    rc = CLI_CONTINUE;
    for (int i = optind; i < argc && rc == CLI_CONTINUE; i++)
        rc = s_add_server(gateway, argv[i], opts.browse_ms);
    if (rc == CLI_CONTINUE) {
        sk2_gateway_use_browser(gateway, opts.is_browsing);
        sk2_gateway_set_refresh_ms(gateway, (int)opts.refresh_ms);
        sk2_gateway_set_max_age_ms(gateway, (int)opts.max_age_ms);
        sk2_gateway_set_max_frame_bytes(gateway, opts.max_frame_bytes);
        sk2_gateway_set_give_up_after_ms(gateway, (int64_t)(opts.give_up_s * 1000.0 + 0.5));
        if (cli_security_keys() || cli_security_server_key()) {
            int set = cli_security_keys() && cli_security_server_key()
                          ? sk2_gateway_set_security(gateway, cli_security_keys(),
                                                     cli_security_server_key())
                          : SK2_EINVAL;
            if (set != 0)
                rc = cli_usage_error(s_verb,
                                     "--keys DIR and --server-key KEY go together and "
                                     "must name a key pair and a key (%s)",
                                     sk2_strerror(set));
        }
    }
    if (rc == CLI_CONTINUE) {
        rc = cli_gateway_start(s_verb, gateway, opts.http, &opts.access,
                               opts.http == s_http_default_text);
    }
    if (rc == CLI_CONTINUE)
        rc = s_run(gateway, &opts);
    sk2_gateway_destroy(&gateway);
    return rc;
}
