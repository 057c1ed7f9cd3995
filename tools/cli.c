/* Helpers every verb of the sk2 command line shares: the Ctrl-C flag, -v/-q, strict number
 * parsing with usage errors that name the verb, "host:port" endpoints, bounded waits, status
 * lines that rewrite themselves on a terminal and print full lines elsewhere, and units.
 * There is no state here besides the signal flag and the verbosity, both process-wide by
 * nature. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sk2/sk2.h"

static volatile sig_atomic_t s_interrupted = 0;
static int s_verbosity = 0; /* number of -v */
static bool s_is_quiet = false;

/* ---- Signals ---- */

static void s_on_signal(int signum)
{
    /* A second Ctrl-C means the clean shutdown is taking too long: die the default way. */
    if (s_interrupted) {
        signal(signum, SIG_DFL);
        raise(signum);
        return;
    }
    s_interrupted = 1;
}

static const char *s_program = "sk2";

void cli_set_program(const char *path)
{
    if (path && *path)
        s_program = path;
}

const char *cli_program(void)
{
    return s_program;
}

void cli_signals_install(void)
{
    /* CZMQ, under the library, installs its own SIGINT/SIGTERM handler when it first starts
     * unless told not to; that handler would take the signal away from ours, and it would
     * also make the library's actors see CZMQ's interrupted flag. */
    setenv("ZSYS_SIGHANDLER", "false", 1);

    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = s_on_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0; /* no SA_RESTART: a blocking wait must return with EINTR */
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
}

bool cli_is_interrupted(void)
{
    return s_interrupted != 0;
}

/* ---- Verbosity ---- */

static void s_apply_log_level(void)
{
    int level = SK2_LOG_WARN + s_verbosity;
    if (level > SK2_LOG_TRACE)
        level = SK2_LOG_TRACE;
    sk2_log_set_level(s_is_quiet ? SK2_LOG_ERROR : (sk2_log_level_t)level);
}

bool cli_common_option(int opt)
{
    if (opt == 'v')
        s_verbosity++;
    else if (opt == 'q')
        s_is_quiet = true;
    else
        return false;
    s_apply_log_level();
    return true;
}

bool cli_is_quiet(void)
{
    return s_is_quiet;
}

/* ---- Option parsing ---- */

void cli_getopt_reset(void)
{
    /* 0, not 1: glibc then also forgets the previous optstring's '+' and its cluster state. */
    optind = 0;
    opterr = 0;
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
    char message[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    if (verb) {
        fprintf(stderr, "sk2 %s: %s\n", verb, message);
        fprintf(stderr, "try 'sk2 %s --help'\n", verb);
    } else {
        fprintf(stderr, "sk2: %s\n", message);
        fprintf(stderr, "try 'sk2 --help'\n");
    }
    return CLI_EXIT_USAGE;
}

/* "--name" for a long option's value, or "-c" for a short one. */
static void s_option_name(int val, const struct option *options, char *out, size_t size)
{
    for (const struct option *o = options; o && o->name; o++) {
        if (o->flag == NULL && o->val == val) {
            snprintf(out, size, "--%s", o->name);
            return;
        }
    }
    snprintf(out, size, "-%c", isprint(val) ? val : '?');
}

static bool s_is_short_option(int val, const char *optstring)
{
    return val > 0 && val < 256 && val != ':' && val != '+' && strchr(optstring, val) != NULL;
}

int cli_option_error(const char *verb, int opt, const char *optstring, const struct option *options,
                     char **argv)
{
    char name[64];
    int bad = optopt;
    if (opt == ':') {
        s_option_name(bad, options, name, sizeof name);
        return cli_usage_error(verb, "option %s needs a value", name);
    }
    /* getopt_long leaves in optopt the short option it did not know, or the value of a known
     * long option that was given an argument it does not take, or 0 for an unknown long one. */
    if (bad == 0)
        return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
    if (bad < 256 && !s_is_short_option(bad, optstring))
        return cli_usage_error(verb, "unknown option '-%c'", isprint(bad) ? bad : '?');
    s_option_name(bad, options, name, sizeof name);
    return cli_usage_error(verb, "option %s takes no value", name);
}

int cli_parse_options(const cli_parser_t *parser, int argc, char **argv, void *opts)
{
    int opt;
    while ((opt = getopt_long(argc, argv, parser->optstring, parser->options, NULL)) != -1) {
        if (cli_common_option(opt))
            continue;
        if (opt == 'h') {
            parser->print_usage();
            return CLI_EXIT_OK;
        }
        if (opt == '?' || opt == ':')
            return cli_option_error(parser->verb, opt, parser->optstring, parser->options, argv);
        int rc = parser->apply ? parser->apply(opts, opt, optarg) : CLI_CONTINUE;
        if (rc != CLI_CONTINUE)
            return rc;
    }
    return CLI_CONTINUE;
}

int cli_apply_timeout(const char *verb, const char *arg, int *timeout_ms)
{
    if (cli_parse_timeout_ms(arg, timeout_ms) != 0)
        return cli_usage_error(verb, "--timeout must be %d..%d ms, not '%s'", CLI_TIMEOUT_MIN_MS,
                               CLI_TIMEOUT_MAX_MS, arg);
    return CLI_CONTINUE;
}

int cli_apply_status_interval(const char *verb, const char *arg, double *interval_s)
{
    if (cli_parse_double(arg, 0.1, 3600.0, interval_s) != 0)
        return cli_usage_error(verb, "--status-interval must be 0.1..3600 s, not '%s'", arg);
    return CLI_CONTINUE;
}

int cli_apply_http(const char *verb, const char *arg, const char **http)
{
    char address[128];
    uint16_t port;
    if (cli_parse_http(arg, address, sizeof address, &port) != 0)
        return cli_usage_error(verb, "--http must be ADDR:PORT, not '%s'", arg);
    *http = arg;
    return CLI_CONTINUE;
}

int cli_apply_frames(const char *verb, const char *arg, long *frames)
{
    if (cli_parse_long(arg, 1, 1000000000L, frames) != 0)
        return cli_usage_error(verb, "--frames must be 1..1000000000, not '%s'", arg);
    return CLI_CONTINUE;
}

int cli_apply_seconds(const char *verb, const char *arg, double *seconds)
{
    if (cli_parse_double(arg, 0.001, 31536000.0, seconds) != 0)
        return cli_usage_error(verb, "--seconds must be 0.001..31536000, not '%s'", arg);
    return CLI_CONTINUE;
}

int cli_apply_device(const char *verb, const char *arg, const char **device_id)
{
    if (!*arg || strlen(arg) > SK2_DEVICE_ID_MAX)
        return cli_usage_error(verb, "--device must be 1..%d bytes", SK2_DEVICE_ID_MAX);
    *device_id = arg;
    return CLI_CONTINUE;
}

int cli_parse_target(const char *verb, int argc, char **argv, const char **target)
{
    if (optind + 1 < argc)
        return cli_usage_error(verb, "unexpected argument '%s'", argv[optind + 1]);
    *target = optind < argc ? argv[optind] : NULL;
    return CLI_CONTINUE;
}

int cli_apply_server_option(const char *verb, cli_server_args_t *args, int opt, const char *arg)
{
    if (opt == CLI_OPT_TIMEOUT)
        return cli_apply_timeout(verb, arg, &args->timeout_ms);
    if (opt == CLI_OPT_BROWSE_TIMEOUT)
        return cli_parse_browse_timeout(verb, arg, &args->browse_ms);
    return cli_apply_security(verb, opt, arg);
}

int cli_parse_server_verb(const cli_parser_t *parser, int argc, char **argv, void *opts,
                          cli_server_args_t *args)
{
    int rc = cli_parse_options(parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    return cli_parse_target(parser->verb, argc, argv, &args->target);
}

int cli_parse_long(const char *text, long min, long max, long *value)
{
    if (!text || !*text || isspace((unsigned char)text[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

int cli_parse_double(const char *text, double min, double max, double *value)
{
    if (!text || !*text || isspace((unsigned char)text[0]))
        return -1;
    char *end = NULL;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v) || v < min || v > max)
        return -1;
    *value = v;
    return 0;
}

int cli_parse_timeout_ms(const char *text, int *timeout_ms)
{
    long v = 0;
    if (cli_parse_long(text, CLI_TIMEOUT_MIN_MS, CLI_TIMEOUT_MAX_MS, &v) != 0)
        return -1;
    *timeout_ms = (int)v;
    return 0;
}

/* ---- Endpoints ---- */

int cli_endpoint_normalise(const char *text, char *out, size_t out_size)
{
    size_t len = strlen(text);
    if (len == 0 || len >= out_size)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c <= ' ' || c == 0x7f)
            return -1;
    }
    if (strstr(text, "://")) {
        memcpy(out, text, len + 1);
        return 0;
    }
    const char *colon = strrchr(text, ':');
    long port = 0;
    if (!colon || colon == text || cli_parse_long(colon + 1, 1, 65535, &port) != 0)
        return -1;
    /* An IPv6 literal must be in brackets, or its last group would read as the port. */
    size_t host_len = (size_t)(colon - text);
    bool is_bracketed = text[0] == '[' && text[host_len - 1] == ']';
    if (memchr(text, ':', host_len) && !is_bracketed)
        return -1;
    int n = snprintf(out, out_size, "tcp://%s", text);
    return (n < 0 || (size_t)n >= out_size) ? -1 : 0;
}

/* ---- Clients ---- */

/* The frame budget of every client this process opens: one process runs one verb. */
static size_t s_max_frame_bytes = SK2_LIMIT_FRAME_BYTES;

int cli_apply_max_frame_mb(const char *verb, const char *arg, size_t *bytes)
{
    double mb = 0;
    const double min_mb = (double)SK2_LIMIT_FRAME_BYTES_MIN / (1 << 20);
    const double max_mb = (double)SK2_LIMIT_FRAME_BYTES_MAX / (1 << 20);
    if (cli_parse_double(arg, min_mb, max_mb, &mb) != 0)
        return cli_usage_error(verb, "--max-frame-mb must be %.3f..%.0f MiB, not '%s'", min_mb,
                               max_mb, arg);
    s_max_frame_bytes = (size_t)(mb * (1 << 20));
    if (s_max_frame_bytes < SK2_LIMIT_FRAME_BYTES_MIN)
        s_max_frame_bytes = SK2_LIMIT_FRAME_BYTES_MIN;
    if (bytes)
        *bytes = s_max_frame_bytes;
    return CLI_CONTINUE;
}

/* The keys of every client this process opens, like the frame budget. */
static const char *s_keys = NULL;
static const char *s_server_key = NULL;

int cli_apply_security(const char *verb, int opt, const char *arg)
{
    if (opt != CLI_OPT_KEYS && opt != CLI_OPT_SERVER_KEY)
        return CLI_CONTINUE;
    if (!*arg)
        return cli_usage_error(verb, "%s needs a value",
                               opt == CLI_OPT_KEYS ? "--keys" : "--server-key");
    *(opt == CLI_OPT_KEYS ? &s_keys : &s_server_key) = arg;
    return CLI_CONTINUE;
}

const char *cli_security_keys(void)
{
    return s_keys;
}

const char *cli_security_server_key(void)
{
    return s_server_key;
}

/* Applies --keys/--server-key to a new client; server_key_found is the key a server announced
 * (NULL if not found by name). Returns CLI_CONTINUE or an exit code after saying why. */
static int s_secure_client(const char *verb, sk2_client_t *client, const char *name,
                           const char *announced_key)
{
    if (!s_keys && !s_server_key)
        return CLI_CONTINUE;
    if (!s_keys)
        return cli_usage_error(verb, "--server-key needs --keys DIR (this client's key pair)");
    if (!sk2_security_is_available()) {
        fprintf(stderr, "sk2 %s: --keys needs CURVE, and this libzmq was built without it\n", verb);
        return CLI_EXIT_FAILURE;
    }
    int rc = sk2_client_set_security(client, s_keys, s_server_key);
    if (rc != 0) {
        fprintf(stderr, "sk2 %s: cannot use --keys %s%s%s: %s\n", verb, s_keys,
                s_server_key ? " --server-key " : "", s_server_key ? s_server_key : "",
                sk2_strerror(rc));
        return rc == SK2_EINVAL || rc == SK2_ENOTFOUND ? CLI_EXIT_USAGE : CLI_EXIT_FAILURE;
    }
    if (s_server_key)
        return CLI_CONTINUE; /* given explicitly: it wins over anything pinned */
    if (!name || !announced_key) {
        fprintf(stderr,
                "sk2 %s: --keys needs --server-key KEY, unless the server is found by name "
                "and announces its key\n",
                verb);
        return CLI_EXIT_USAGE;
    }
    return cli_pin_server_key(verb, client, name, announced_key);
}

int cli_pin_server_key(const char *verb, sk2_client_t *client, const char *name, const char *key)
{
    char path[4096] = "";
    sk2_known_servers_path(path, sizeof path);
    bool is_new = false;
    unsigned line = 0;
    char safe[4 * SK2_BROWSER_NAME_MAX + 1];
    cli_safe(name, safe, sizeof safe);
    int rc = sk2_known_servers_check(NULL, name, key, &is_new, &line);
    if (rc == SK2_EKEYCHANGED) {
        fprintf(stderr,
                "sk2 %s: WARNING: the server \"%s\" announces key %s, not the one pinned for it "
                "in %s (line %u). Someone may be impersonating it. If its key was changed on "
                "purpose, delete line %u of that file and try again.\n",
                verb, safe, key, path, line, line);
        return CLI_EXIT_FAILURE;
    }
    if (rc != 0) {
        fprintf(stderr, "sk2 %s: cannot check %s%s%u: %s\n", verb, path, line ? " line " : "", line,
                sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (is_new && !s_is_quiet)
        fprintf(stderr, "sk2 %s: pinned the key of \"%s\" (%s) in %s\n", verb, safe, key, path);
    rc = sk2_client_set_server_key(client, key);
    return rc == 0 ? CLI_CONTINUE : CLI_EXIT_FAILURE;
}

int cli_client_connect(const char *verb, const char *endpoint_arg, int timeout_ms, char *endpoint,
                       sk2_client_t **client_p)
{
    return cli_client_connect_found(verb, endpoint_arg, NULL, NULL, timeout_ms, endpoint, client_p);
}

int cli_client_connect_found(const char *verb, const char *endpoint_arg, const char *name,
                             const char *announced_key, int timeout_ms, char *endpoint,
                             sk2_client_t **client_p)
{
    *client_p = NULL;
    if (cli_endpoint_normalise(endpoint_arg, endpoint, CLI_ENDPOINT_MAX) != 0)
        return cli_usage_error(verb, "'%s' is not an endpoint (tcp://HOST:PORT or HOST:PORT)",
                               endpoint_arg);
    sk2_client_t *client = sk2_client_new();
    if (!client) {
        fprintf(stderr, "sk2 %s: out of memory\n", verb);
        return CLI_EXIT_FAILURE;
    }
    /* The protocol's 10 s heartbeat means a dead server goes unnoticed for up to 10 s; a
     * person watching a tool wants to know sooner, and one `who` a second costs nothing. */
    int rc = sk2_client_set_response_timeout_ms(client, timeout_ms);
    if (rc == 0)
        rc = sk2_client_set_heartbeat_ms(client, CLI_HEARTBEAT_MS);
    if (rc == 0)
        rc = sk2_client_set_max_frame_bytes(client, s_max_frame_bytes);
    if (rc == 0) {
        int exit_code = s_secure_client(verb, client, name, announced_key);
        if (exit_code != CLI_CONTINUE) {
            sk2_client_destroy(&client);
            return exit_code;
        }
    }
    if (rc == 0)
        rc = sk2_client_connect(client, endpoint);
    if (rc != 0) {
        sk2_client_destroy(&client);
        if (rc == SK2_EINVAL)
            return cli_usage_error(verb, "'%s' is not an endpoint the client accepts", endpoint);
        fprintf(stderr, "sk2 %s: cannot connect to %s: %s\n", verb, endpoint, sk2_strerror(rc));
        return rc == SK2_ECONNECT ? CLI_EXIT_LOST : CLI_EXIT_FAILURE;
    }
    *client_p = client;
    return CLI_CONTINUE;
}

int cli_parse_browse_timeout(const char *verb, const char *text, int *browse_ms)
{
    double seconds = 0;
    if (cli_parse_double(text, CLI_BROWSE_MIN_S, CLI_BROWSE_MAX_S, &seconds) != 0)
        return cli_usage_error(verb, "--browse-timeout must be %.1f..%.0f seconds, not '%s'",
                               CLI_BROWSE_MIN_S, CLI_BROWSE_MAX_S, text);
    *browse_ms = (int)(seconds * 1000.0 + 0.5);
    return CLI_CONTINUE;
}

bool cli_is_endpoint(const char *text)
{
    char endpoint[CLI_ENDPOINT_MAX];
    return strstr(text, "://") != NULL ||
           cli_endpoint_normalise(text, endpoint, sizeof endpoint) == 0;
}

/* Browses for `name` (NULL: the only server); returns CLI_CONTINUE with endpoint set, or an
 * exit code after saying why. */
static int s_find_server(const char *verb, const char *name, int browse_ms, char *endpoint,
                         char *found_name, char *found_key)
{
    char safe[4 * SK2_BROWSER_NAME_MAX + 1];
    sk2_browser_t *browser = sk2_browser_new();
    if (!browser) {
        fprintf(stderr, "sk2 %s: out of memory\n", verb);
        return CLI_EXIT_FAILURE;
    }
    int rc = sk2_browser_start(browser);
    if (rc != 0) {
        fprintf(stderr, "sk2 %s: discovery unavailable: %s\n", verb,
                cli_safe(sk2_browser_error(browser), safe, sizeof safe));
        if (name)
            fprintf(stderr, "sk2 %s: give an endpoint (tcp://HOST:PORT) instead of a name\n", verb);
        sk2_browser_destroy(&browser);
        return CLI_EXIT_FAILURE;
    }
    rc = sk2_browser_find(browser, name, browse_ms, endpoint, CLI_ENDPOINT_MAX);
    int exit_code = CLI_CONTINUE;
    for (size_t i = 0; rc == 0 && i < sk2_browser_server_count(browser); i++) {
        if (strcmp(sk2_browser_server_endpoint(browser, i), endpoint) != 0)
            continue;
        const char *key = sk2_browser_server_key(browser, i);
        snprintf(found_name, SK2_BROWSER_NAME_MAX + 1, "%s", sk2_browser_server_name(browser, i));
        snprintf(found_key, SK2_KEY_TEXT_SIZE, "%s", key ? key : "");
        break;
    }
    if (rc == 0) {
        if (!s_is_quiet)
            fprintf(stderr, "sk2 %s: found \"%s\" at %s\n", verb,
                    cli_safe(name ? name : sk2_browser_server_name(browser, 0), safe, sizeof safe),
                    endpoint);
    } else if (rc == SK2_EEXIST) {
        size_t count = sk2_browser_server_count(browser);
        fprintf(stderr, "sk2 %s: %zu servers on the network; name one of them:\n", verb, count);
        for (size_t i = 0; i < count; i++)
            fprintf(stderr, "  \"%s\"  %s\n",
                    cli_safe(sk2_browser_server_name(browser, i), safe, sizeof safe),
                    sk2_browser_server_endpoint(browser, i));
        exit_code = CLI_EXIT_USAGE;
    } else if (rc == SK2_ETIMEDOUT || rc == SK2_EINTR) {
        if (name)
            fprintf(stderr, "sk2 %s: no server called \"%s\" found within %.1f s\n", verb,
                    cli_safe(name, safe, sizeof safe), browse_ms / 1000.0);
        else
            fprintf(stderr, "sk2 %s: no server found on the network within %.1f s\n", verb,
                    browse_ms / 1000.0);
        exit_code = CLI_EXIT_LOST;
    } else {
        fprintf(stderr, "sk2 %s: browsing failed: %s\n", verb, sk2_strerror(rc));
        exit_code = CLI_EXIT_FAILURE;
    }
    sk2_browser_destroy(&browser);
    return exit_code;
}

int cli_client_open(const char *verb, const char *target, int timeout_ms, int browse_ms,
                    char *endpoint, sk2_client_t **client_p)
{
    *client_p = NULL;
    if (target && cli_is_endpoint(target))
        return cli_client_connect(verb, target, timeout_ms, endpoint, client_p);
    char found[CLI_ENDPOINT_MAX];
    char found_name[SK2_BROWSER_NAME_MAX + 1] = "";
    char found_key[SK2_KEY_TEXT_SIZE] = "";
    int rc = s_find_server(verb, target, browse_ms, found, found_name, found_key);
    if (rc != CLI_CONTINUE)
        return rc;
    rc = cli_client_connect_found(verb, found, found_name[0] ? found_name : NULL,
                                  found_key[0] ? found_key : NULL, timeout_ms, endpoint, client_p);
    /* A server found by name is looked up again whenever the client reconnects, so that one
     * back on another port is found; without it the old endpoint is retried. */
    if (rc == CLI_CONTINUE && sk2_client_follow_name(*client_p, target) != 0 && !s_is_quiet)
        fprintf(stderr, "sk2 %s: cannot follow the server's name; reconnecting to %s only\n", verb,
                endpoint);
    return rc;
}

int cli_report_lost(const char *verb, const char *endpoint, const sk2_event_t *event,
                    int timeout_ms)
{
    int error = event ? sk2_event_error(event) : SK2_ETIMEDOUT;
    if (error == SK2_ETIMEDOUT) {
        fprintf(stderr, "sk2 %s: no answer from %s within %d ms\n", verb, endpoint, timeout_ms);
        return CLI_EXIT_LOST;
    }
    if (error == 0) {
        fprintf(stderr, "sk2 %s: disconnected from %s\n", verb, endpoint);
        return CLI_EXIT_LOST;
    }
    if (error == SK2_EAUTH) {
        char reason[256];
        fprintf(stderr, "sk2 %s: not let in by %s: %s\n", verb, endpoint,
                cli_event_reason(event, reason, sizeof reason));
        return CLI_EXIT_FAILURE;
    }
    char reason[256];
    fprintf(stderr, "sk2 %s: lost %s: %s\n", verb, endpoint,
            cli_event_reason(event, reason, sizeof reason));
    return CLI_EXIT_LOST;
}

const char *cli_event_reason(const sk2_event_t *event, char *out, size_t size)
{
    const char *reason = sk2_event_reason(event);
    if (reason && *reason)
        return cli_safe(reason, out, size);
    snprintf(out, size, "%s", sk2_strerror(sk2_event_error(event)));
    return out;
}

/* ---- JSON ---- */

/* Length of the UTF-8 sequence at p (1..4), or 0 if it is not a valid one. */
static size_t s_utf8_length(const unsigned char *p)
{
    unsigned c = p[0];
    size_t n = c < 0x80             ? 1
               : (c & 0xe0) == 0xc0 ? 2
               : (c & 0xf0) == 0xe0 ? 3
               : (c & 0xf8) == 0xf0 ? 4
                                    : 0;
    if (n == 0 || (n == 2 && c < 0xc2) || (n == 4 && c > 0xf4))
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

void cli_json_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    fputc('"', out);
    while (*p) {
        if (*p == '"' || *p == '\\') {
            fprintf(out, "\\%c", *p++);
        } else if (*p < 0x20 || *p == 0x7f) {
            fprintf(out, "\\u%04x", *p++);
        } else {
            size_t n = s_utf8_length(p);
            if (n == 0) {
                fputs("\\ufffd", out);
                p++;
            } else {
                fwrite(p, 1, n, out);
                p += n;
            }
        }
    }
    fputc('"', out);
}

/* ---- Time ---- */

int cli_wait_ms(int64_t now_us, int64_t deadline_us, int cap_ms)
{
    if (deadline_us <= now_us)
        return 0;
    int64_t left_us = deadline_us - now_us;
    if (left_us >= (int64_t)cap_ms * 1000)
        return cap_ms;
    return (int)((left_us + 999) / 1000);
}

void cli_sleep_ms(int ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* EINTR ends it early, which is what a Ctrl-C wants */
}

/* ---- Text from the network ---- */

const char *cli_safe(const char *s, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t n = 0;
    while (*p && n + 1 < size) {
        /* C1 controls (U+0080..U+009F) are 0xC2 0x80..0x9F in UTF-8. */
        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
            out[n++] = '?';
            p += 2;
            continue;
        }
        out[n++] = (char)(*p < 0x20 || *p == 0x7f ? '?' : *p);
        p++;
    }
    if (size > 0)
        out[n] = '\0';
    return out;
}

/* ---- Status lines ---- */

void cli_status_init(cli_status_t *self, FILE *out, bool is_enabled)
{
    self->out = out;
    self->is_tty = isatty(fileno(out)) == 1;
    self->is_enabled = is_enabled && !s_is_quiet;
    self->is_open = false;
}

static size_t s_terminal_columns(FILE *out)
{
    struct winsize ws;
    if (ioctl(fileno(out), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 0;
}

void cli_status_print(cli_status_t *self, const char *fmt, ...)
{
    if (!self->is_enabled)
        return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (self->is_tty) {
        /* A line that wraps cannot be rewritten with \r: cut it to the terminal's width. */
        size_t columns = s_terminal_columns(self->out);
        if (columns > 1 && strlen(line) >= columns)
            line[columns - 1] = '\0';
        fprintf(self->out, "\r%s\033[K", line);
        self->is_open = true;
    } else {
        fprintf(self->out, "%s\n", line);
    }
    fflush(self->out);
}

void cli_status_note(cli_status_t *self, const char *fmt, ...)
{
    if (s_is_quiet)
        return;
    cli_status_close(self);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(self->out, fmt, ap);
    va_end(ap);
    fputc('\n', self->out);
    fflush(self->out);
}

void cli_status_close(cli_status_t *self)
{
    if (self->is_open) {
        fputc('\n', self->out);
        fflush(self->out);
        self->is_open = false;
    }
}

/* ---- Units ---- */

double cli_per_second(uint64_t count, int64_t interval_us)
{
    return interval_us > 0 ? (double)count * 1e6 / (double)interval_us : 0.0;
}

double cli_mb_per_second(uint64_t bytes, int64_t interval_us)
{
    return cli_per_second(bytes, interval_us) / 1e6;
}

double cli_mb(uint64_t bytes)
{
    return (double)bytes / 1e6;
}

/* ---- Web gateway ---- */

int cli_parse_http(const char *text, char *address, size_t size, uint16_t *port)
{
    const char *colon = strrchr(text, ':');
    if (!colon || colon == text)
        return -1;
    long value;
    if (cli_parse_long(colon + 1, 0, 65535, &value) != 0)
        return -1;
    const char *start = text;
    size_t len = (size_t)(colon - text);
    if (text[0] == '[') {
        if (len < 3 || text[len - 1] != ']')
            return -1;
        start++;
        len -= 2;
    }
    if (len == 0 || len >= size)
        return -1;
    memcpy(address, start, len);
    address[len] = '\0';
    *port = (uint16_t)value;
    return 0;
}

int cli_apply_http_access(const char *verb, cli_http_access_t *access, int opt, const char *arg)
{
    switch (opt) {
    case CLI_OPT_HTTP_TOKEN: {
        if (strcmp(arg, "auto") != 0) {
            /* The gateway is the judge of a token: ask a throwaway one. */
            sk2_gateway_t *probe = sk2_gateway_new();
            int rc = probe ? sk2_gateway_set_token(probe, arg) : SK2_ENOMEM;
            sk2_gateway_destroy(&probe);
            if (rc != 0)
                return cli_usage_error(verb, "--http-token must be auto or 16..128 characters of "
                                             "A-Z a-z 0-9 . _ ~ -");
        }
        access->token = arg;
        break;
    }
    case CLI_OPT_HTTP_INSECURE:
        access->is_insecure = true;
        break;
    case CLI_OPT_HTTP_MAX_CONNECTIONS:
        if (cli_parse_long(arg, SK2_GATEWAY_MAX_CONNECTIONS_MIN, SK2_GATEWAY_MAX_CONNECTIONS_MAX,
                           &access->max_connections) != 0)
            return cli_usage_error(verb, "--http-max-connections must be %d..%d, not '%s'",
                                   SK2_GATEWAY_MAX_CONNECTIONS_MIN, SK2_GATEWAY_MAX_CONNECTIONS_MAX,
                                   arg);
        break;
    default:
        break;
    }
    return CLI_CONTINUE;
}

bool cli_http_access_is_set(const cli_http_access_t *access)
{
    return access->token || access->is_insecure || access->max_connections > 0;
}

/* Every connection is a file: make sure the cap, and the sockets to the servers, fit under the
 * soft limit on open files, raising it towards the hard limit when they do not. */
static void s_raise_file_limit(long max_connections)
{
    struct rlimit limit;
    rlim_t wanted = (rlim_t)max_connections * 2 + 1024;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted)
        return;
    limit.rlim_cur =
        limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted ? limit.rlim_max : wanted;
    setrlimit(RLIMIT_NOFILE, &limit);
}

int cli_gateway_start(const char *verb, sk2_gateway_t *gateway, const char *http,
                      const cli_http_access_t *access, bool may_move)
{
    char address[128];
    uint16_t port = 0;
    if (cli_parse_http(http, address, sizeof address, &port) != 0) {
        fprintf(stderr, "sk2 %s: --http must be ADDR:PORT, not '%s'\n", verb, http);
        return CLI_EXIT_FAILURE;
    }
    bool is_generated = access->token && strcmp(access->token, "auto") == 0;
    int rc = is_generated    ? sk2_gateway_generate_token(gateway)
             : access->token ? sk2_gateway_set_token(gateway, access->token)
                             : 0;
    if (rc == 0)
        rc = sk2_gateway_set_insecure(gateway, access->is_insecure);
    long max_connections =
        access->max_connections > 0 ? access->max_connections : SK2_GATEWAY_MAX_CONNECTIONS;
    if (rc == 0)
        rc = sk2_gateway_set_max_connections(gateway, (int)max_connections);
    if (rc != 0) {
        fprintf(stderr, "sk2 %s: cannot set up the web gateway: %s\n", verb, sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    s_raise_file_limit(max_connections);
    rc = sk2_gateway_bind(gateway, address, port);
    if (rc == SK2_EINSECURE) {
        fprintf(stderr,
                "sk2 %s: refusing to serve HTTP on %s without a token: anyone who reaches it "
                "would see every frame. Add --http-token auto (or --http-token TOKEN) to "
                "require a token, or --http-insecure to serve it open anyway\n",
                verb, http);
        return CLI_EXIT_FAILURE;
    }
    /* The default port may be taken (by `make run`'s server, say): a user who named no port
     * wants a viewer, so take the next free one of a few and say which. */
    for (int step = 1;
         rc == SK2_EBIND && may_move && port != 0 && step < CLI_HTTP_TRIES && port + step <= 65535;
         step++) {
        rc = sk2_gateway_bind(gateway, address, (uint16_t)(port + step));
        if (rc == 0)
            fprintf(stderr, "sk2 %s: %s is in use; serving on port %u instead\n", verb, http,
                    (unsigned)(port + step));
    }
    if (rc != 0) {
        fprintf(stderr, "sk2 %s: cannot serve HTTP on %s: %s\n", verb, http, sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    rc = sk2_gateway_start(gateway);
    if (rc != 0) {
        fprintf(stderr, "sk2 %s: cannot start the web gateway: %s\n", verb, sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    if (is_generated)
        printf("sk2 %s: web viewer %s?token=%s\n", verb, sk2_gateway_url(gateway),
               sk2_gateway_token(gateway));
    else if (access->token)
        printf("sk2 %s: web viewer %s (needs its token: ?token=TOKEN once, or "
               "Authorization: Bearer TOKEN)\n",
               verb, sk2_gateway_url(gateway));
    else
        printf("sk2 %s: web viewer %s\n", verb, sk2_gateway_url(gateway));
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
int cli_write_endpoint_file(const char *path, const char *endpoint)
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
