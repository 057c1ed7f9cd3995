/* `sk2 browse`: lists the streamkinect2 servers on the local network as they come and go, one
 * line per change, until --timeout or Ctrl-C. Everything printed about a server came from the
 * network, so it is stripped of control characters (or JSON-escaped) first. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "browse";

/* Longest --timeout, seconds: a day. */
#define BROWSE_TIMEOUT_MAX_S 86400.0

typedef struct {
    double timeout_s; /* stop after this long, 0 = until Ctrl-C */
    bool is_json;     /* one JSON object per line */
} browse_options_t;

enum { OPT_TIMEOUT = 256, OPT_JSON };

static void s_print_usage(void)
{
    printf(
        "usage: sk2 browse [--timeout S] [--json] [-v|-q]\n"
        "\n"
        "Lists the streamkinect2 servers on the local network (DNS-SD _kinect2._tcp over\n"
        "mDNS, through avahi-daemon) live, as they appear and go, until Ctrl-C.\n"
        "\n"
        "  --timeout S    stop after S seconds, %.1f..%.0f (default: run until Ctrl-C)\n"
        "  --json         one JSON object per line instead of text\n"
        "\n"
        "Lines: + \"NAME\" ENDPOINT (host HOST, N devices)   a server appeared\n"
        "       ~ \"NAME\" ENDPOINT (...)                    what it announces changed\n"
        "       - \"NAME\"                                   it went away\n"
        "JSON:  {\"event\":\"added\"|\"updated\"|\"removed\", \"name\", \"endpoint\", \"host\",\n"
        "        \"port\", \"addresses\":[...], \"txt\":{...}}\n"
        "\n"
        "Any server listed can be given by NAME to info, ping and stream.\n"
        "\n"
        "Exit status: 0 at the timeout or on Ctrl-C, 1 discovery is unavailable (no\n"
        "avahi-daemon, or built without discovery), 2 usage.\n",
        CLI_BROWSE_MIN_S, BROWSE_TIMEOUT_MAX_S);
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    browse_options_t *opts = options;
    switch (opt) {
    case OPT_TIMEOUT:
        if (cli_parse_double(arg, CLI_BROWSE_MIN_S, BROWSE_TIMEOUT_MAX_S, &opts->timeout_s) != 0)
            return cli_usage_error(s_verb, "--timeout must be %.1f..%.0f seconds, not '%s'",
                                   CLI_BROWSE_MIN_S, BROWSE_TIMEOUT_MAX_S, arg);
        break;
    case OPT_JSON:
        opts->is_json = true;
        break;
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, browse_options_t *opts)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    if (optind < argc)
        return cli_usage_error(s_verb, "unexpected argument '%s'", argv[optind]);
    return CLI_CONTINUE;
}

static const char *s_change(sk2_event_type_t type)
{
    switch (type) {
    case SK2_EVENT_SERVER_ADDED:
        return "added";
    case SK2_EVENT_SERVER_REMOVED:
        return "removed";
    default:
        return "updated";
    }
}

static void s_print_json(const sk2_event_t *event)
{
    static const char *const keys[] = {"txtvers", "protocol", "sk2", "devices", "key"};
    printf("{\"event\":\"%s\",\"name\":", s_change(sk2_event_type(event)));
    cli_json_string(stdout, sk2_event_server_name(event));
    printf(",\"endpoint\":");
    cli_json_string(stdout, sk2_event_endpoint(event));
    printf(",\"host\":");
    cli_json_string(stdout, sk2_event_host(event));
    printf(",\"port\":%u,\"addresses\":[", (unsigned)sk2_event_port(event));
    for (size_t i = 0; i < sk2_event_address_count(event); i++) {
        if (i > 0)
            putchar(',');
        cli_json_string(stdout, sk2_event_address(event, i));
    }
    printf("],\"txt\":{");
    bool is_first = true;
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const char *value = sk2_event_txt(event, keys[i]);
        if (!value)
            continue;
        printf("%s\"%s\":", is_first ? "" : ",", keys[i]);
        cli_json_string(stdout, value);
        is_first = false;
    }
    printf("}}\n");
}

static void s_print_text(const sk2_event_t *event)
{
    char name[4 * SK2_BROWSER_NAME_MAX + 1];
    char host[512];
    char devices[64];
    cli_safe(sk2_event_server_name(event), name, sizeof name);
    sk2_event_type_t type = sk2_event_type(event);
    if (type == SK2_EVENT_SERVER_REMOVED) {
        printf("- \"%s\"\n", name);
        return;
    }
    cli_safe(sk2_event_host(event), host, sizeof host);
    const char *count = sk2_event_txt(event, "devices");
    long n = 0;
    if (count && cli_parse_long(count, 0, 1000000, &n) == 0)
        snprintf(devices, sizeof devices, ", %ld device%s", n, n == 1 ? "" : "s");
    else
        devices[0] = '\0'; /* not an sk2 server, or one that does not say */
    char key[4 * SK2_KEY_TEXT_SIZE + 32] = "";
    char safe_key[4 * SK2_KEY_TEXT_SIZE];
    const char *announced = sk2_event_txt(event, "key");
    if (announced)
        snprintf(key, sizeof key, ", secure, key %s",
                 cli_safe(announced, safe_key, sizeof safe_key));
    printf("%c \"%s\" %s (host %s%s%s)\n", type == SK2_EVENT_SERVER_ADDED ? '+' : '~', name,
           sk2_event_endpoint(event), host, devices, key);
}

static void s_on_event(void *arg, sk2_browser_t *browser, sk2_event_t *event)
{
    const browse_options_t *opts = arg;
    char reason[256];
    switch (sk2_event_type(event)) {
    case SK2_EVENT_SERVER_ADDED:
    case SK2_EVENT_SERVER_UPDATED:
    case SK2_EVENT_SERVER_REMOVED:
        if (opts->is_json)
            s_print_json(event);
        else
            s_print_text(event);
        break;
    case SK2_EVENT_ERROR:
        fprintf(stderr, "sk2 browse: %s; waiting for it to come back\n",
                cli_event_reason(event, reason, sizeof reason));
        break;
    default:
        break;
    }
}

int cli_browse(int argc, char **argv)
{
    browse_options_t opts = {0};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    sk2_browser_t *browser = sk2_browser_new();
    if (!browser) {
        fprintf(stderr, "sk2 browse: out of memory\n");
        return CLI_EXIT_FAILURE;
    }
    rc = sk2_browser_start(browser);
    if (rc != 0) {
        char why[512];
        fprintf(stderr, "sk2 browse: discovery unavailable: %s\n",
                cli_safe(sk2_browser_error(browser), why, sizeof why));
        sk2_browser_destroy(&browser);
        return CLI_EXIT_FAILURE;
    }
    sk2_browser_set_handler(browser, s_on_event, &opts);
    const int64_t deadline_us =
        opts.timeout_s > 0 ? sk2_clock_mono_us() + (int64_t)(opts.timeout_s * 1e6) : CLI_NEVER;
    rc = CLI_EXIT_OK;
    while (!cli_is_interrupted()) {
        int64_t now_us = sk2_clock_mono_us();
        if (now_us >= deadline_us)
            break;
        /* Slices of 250 ms: a signal that lands on another thread still stops us soon. */
        int n = sk2_browser_dispatch(browser, cli_wait_ms(now_us, deadline_us, 250));
        if (n < 0 && n != SK2_EINTR) {
            fprintf(stderr, "sk2 browse: %s\n", sk2_strerror(n));
            rc = CLI_EXIT_FAILURE;
            break;
        }
    }
    sk2_browser_destroy(&browser);
    return rc;
}
