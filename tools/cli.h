/* What every verb of the sk2 command line shares: exit codes, signal handling, option
 * parsing helpers, endpoint normalisation, status lines and human units. Built on the public
 * API only. Everything here runs on the main thread. */
#ifndef SK2_TOOL_CLI_H
/* Heartbeat of the tools' clients, ms: how soon a dead server is noticed (plus --timeout). */
#define CLI_HEARTBEAT_MS 1000
#define SK2_TOOL_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sk2/sk2.h"

/* Exit codes, documented in `sk2 --help`. */
#define CLI_EXIT_OK      0
#define CLI_EXIT_FAILURE 1 /* runtime failure: nothing arrived, check failed, bind failed */
#define CLI_EXIT_USAGE   2 /* unknown verb or option, bad number, missing argument */
#define CLI_EXIT_LOST    3 /* server unreachable or lost */
/* Stopped by Ctrl-C (SIGINT) or SIGTERM before finishing, as shells report 128 + SIGINT; used
 * by verbs whose output is all-or-nothing (export, import). */
#define CLI_EXIT_INTERRUPTED 130

/* Returned by option parsers when the verb should go on running (any other value is an exit
 * code). */
#define CLI_CONTINUE (-1)

/* A deadline that never comes, for "no limit". */
#define CLI_NEVER INT64_MAX

/* Range of --timeout, milliseconds: what sk2_client_set_response_timeout_ms() accepts. */
#define CLI_TIMEOUT_MIN_MS 100
#define CLI_TIMEOUT_MAX_MS 600000

/* Longest endpoint the tool accepts, in bytes with the NUL. */
#define CLI_ENDPOINT_MAX 1024

#if defined(__GNUC__) || defined(__clang__)
#define CLI_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define CLI_PRINTF(fmt, args)
#endif

/* One verb: runs with argv[0] = the verb's name and returns the exit code. */
typedef int(cli_verb_fn)(int argc, char **argv);

cli_verb_fn cli_serve;
cli_verb_fn cli_ping;
cli_verb_fn cli_info;
cli_verb_fn cli_stream;
cli_verb_fn cli_browse;
cli_verb_fn cli_codecs;
cli_verb_fn cli_encode;
cli_verb_fn cli_decode;
cli_verb_fn cli_devices;
cli_verb_fn cli_record;
cli_verb_fn cli_inspect;
cli_verb_fn cli_export;
cli_verb_fn cli_import;
cli_verb_fn cli_replay;
cli_verb_fn cli_ctl;
cli_verb_fn cli_view;
cli_verb_fn cli_keygen;
cli_verb_fn cli_relay;

/* ---- Signals ---- */

/* Makes SIGINT and SIGTERM set a flag instead of killing the process. Installed without
 * SA_RESTART so that a blocking wait in the library returns SK2_EINTR. Idempotent. */
void cli_signals_install(void);

/* The path the sk2 tool was started by (argv[0] of main), for messages that show commands to
 * type; "sk2" until cli_set_program() is called. */
void cli_set_program(const char *path);
const char *cli_program(void);
/* True once SIGINT or SIGTERM arrived. */
bool cli_is_interrupted(void);

/* ---- Verbosity (-v, -q) ---- */

/* Handles the options every verb accepts ('v' and 'q'); returns false for any other. */
bool cli_common_option(int opt);
/* True after -q: no status lines or notes, only results and errors. */
bool cli_is_quiet(void);

/* ---- Option parsing ---- */

/* Makes the next getopt_long() start afresh on a new argv. */
void cli_getopt_reset(void);
/* Prints "sk2 VERB: message" and the hint to try --help on stderr; returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *verb, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Reports what getopt_long() returned as '?' or ':' (opt) as a usage error. */
int cli_option_error(const char *verb, int opt, const char *optstring, const struct option *options,
                     char **argv);

/* The entries every verb's long-option table ends with: --help, --verbose, --quiet. */
#define CLI_COMMON_LONG_OPTIONS                                                                    \
    {"help", no_argument, NULL, 'h'}, {"verbose", no_argument, NULL, 'v'},                         \
        {"quiet", no_argument, NULL, 'q'},                                                         \
    {                                                                                              \
        NULL, 0, NULL, 0                                                                           \
    }

/* Applies one of a verb's own options (opt as getopt_long returned it, arg its value or NULL)
 * to the verb's option struct; returns CLI_CONTINUE or an exit code (a usage error). */
typedef int(cli_apply_fn)(void *opts, int opt, const char *arg);

/* How a verb's command line is read. */
typedef struct {
    const char *verb;             /* for messages: "sk2 VERB: ..." */
    const char *optstring;        /* starts with ":" ("+:" to stop at the first operand) and
                                   * includes "hvq" */
    const struct option *options; /* ends with CLI_COMMON_LONG_OPTIONS */
    void (*print_usage)(void);    /* --help, on stdout */
    cli_apply_fn *apply;          /* the verb's own options; NULL if it has none */
} cli_parser_t;

/* Reads the options of argv: -v/-q, --help (prints the usage: returns CLI_EXIT_OK), unknown
 * options and missing values (usage errors), and the verb's own through apply. Returns
 * CLI_CONTINUE with optind at the first operand, or an exit code. */
int cli_parse_options(const cli_parser_t *parser, int argc, char **argv, void *opts);
/* --timeout MS (CLI_TIMEOUT_MIN_MS..CLI_TIMEOUT_MAX_MS) and --status-interval S (0.1..3600),
 * the same for every verb: return CLI_CONTINUE or a usage error naming the range. */
int cli_apply_timeout(const char *verb, const char *arg, int *timeout_ms);
int cli_apply_status_interval(const char *verb, const char *arg, double *interval_s);
/* --frames N (1..10^9), --seconds S (0.001 .. a year) and --device ID (1..SK2_DEVICE_ID_MAX
 * bytes) of the verbs that receive: CLI_CONTINUE or a usage error naming the range. */
int cli_apply_frames(const char *verb, const char *arg, long *frames);
int cli_apply_seconds(const char *verb, const char *arg, double *seconds);
int cli_apply_device(const char *verb, const char *arg, const char **device_id);
/* --max-frame-mb M: the frame budget (include/sk2/limits.h) in MiB, for the clients this
 * process opens afterwards (cli_client_connect applies it) or for a server or replay (the
 * value is stored in *bytes too). CLI_CONTINUE or a usage error naming the range. */
int cli_apply_max_frame_mb(const char *verb, const char *arg, size_t *bytes);
#define CLI_MAX_FRAME_HELP                                                                         \
    "  --max-frame-mb M      drop (and count) frames that would decode to more than M MiB,\n"      \
    "                        or that differ from their stream's advertised size; 0.004..128\n"     \
    "                        (default 64)\n"

/* For verbs that take at most one SERVER operand: sets *target to it, or NULL. Returns
 * CLI_CONTINUE or a usage error for a second operand. */
int cli_parse_target(const char *verb, int argc, char **argv, const char **target);

/* ---- Verbs that ask one server something (info, ping) ---- */

/* What their command lines share: [SERVER] [--timeout MS] [--browse-timeout S]. */
typedef struct {
    const char *target; /* SERVER as given, NULL: the only server */
    int timeout_ms;     /* wait for each answer, and the client's response timeout */
    int browse_ms;      /* look for a server by name this long */
} cli_server_args_t;

/* The defaults: the library's response timeout, CLI_BROWSE_DEFAULT_MS. */
#define CLI_SERVER_ARGS_DEFAULT                                                                    \
    {                                                                                              \
        .target = NULL, .timeout_ms = SK2_CLIENT_RESPONSE_TIMEOUT_MS,                              \
        .browse_ms = CLI_BROWSE_DEFAULT_MS                                                         \
    }

enum { CLI_OPT_TIMEOUT = 0x1000, CLI_OPT_BROWSE_TIMEOUT, CLI_OPT_KEYS, CLI_OPT_SERVER_KEY };

/* --keys DIR and --server-key KEY_OR_FILE of every verb that opens clients: the long options
 * and their help lines. cli_apply_security applies them (for the clients this process opens
 * afterwards, through cli_client_connect) and returns CLI_CONTINUE or a usage error. */
#define CLI_SECURITY_LONG_OPTIONS                                                                  \
    {"keys", required_argument, NULL, CLI_OPT_KEYS},                                               \
    {                                                                                              \
        "server-key", required_argument, NULL, CLI_OPT_SERVER_KEY                                  \
    }
#define CLI_SECURITY_HELP                                                                          \
    "  --keys DIR          connect securely (CURVE) with the key pair in DIR (sk2 keygen)\n"       \
    "  --server-key KEY    the server's public key (40 characters, or its NAME.key file);\n"       \
    "                      by NAME, the key it announces is pinned on first use in\n"              \
    "                      ~/.config/sk2/known_servers\n"
int cli_apply_security(const char *verb, int opt, const char *arg);
/* The key pair and server key given (NULL if none). */
const char *cli_security_keys(void);
const char *cli_security_server_key(void);

/* The end of such a verb's long-option table, after its own options: --timeout,
 * --browse-timeout, then CLI_COMMON_LONG_OPTIONS. */
#define CLI_SERVER_LONG_OPTIONS                                                                    \
    {"timeout", required_argument, NULL, CLI_OPT_TIMEOUT},                                         \
        {"browse-timeout", required_argument, NULL, CLI_OPT_BROWSE_TIMEOUT},                       \
        CLI_SECURITY_LONG_OPTIONS, CLI_COMMON_LONG_OPTIONS

/* Applies --timeout or --browse-timeout (opt CLI_OPT_TIMEOUT or CLI_OPT_BROWSE_TIMEOUT) to
 * args: CLI_CONTINUE or a usage error. For the verb's apply function, for those two opts. */
int cli_apply_server_option(const char *verb, cli_server_args_t *args, int opt, const char *arg);
/* Reads the options (through parser, whose apply hands the shared ones to
 * cli_apply_server_option) and then the SERVER operand into args->target. Returns
 * CLI_CONTINUE or an exit code. */
int cli_parse_server_verb(const cli_parser_t *parser, int argc, char **argv, void *opts,
                          cli_server_args_t *args);

/* Parses a whole decimal integer in min..max; returns 0 or -1 (junk, empty, out of range). */
int cli_parse_long(const char *text, long min, long max, long *value);
/* Parses a whole finite decimal number in min..max; returns 0 or -1. */
int cli_parse_double(const char *text, double min, double max, double *value);
/* Parses a --timeout in milliseconds, CLI_TIMEOUT_MIN_MS..CLI_TIMEOUT_MAX_MS (what the client
 * accepts as its response timeout); returns 0 or -1. */
int cli_parse_timeout_ms(const char *text, int *timeout_ms);

/* ---- Endpoints ---- */

/* Writes "tcp://host:port" for "host:port" (endpoints with a "scheme://" are copied as they
 * are) into out. Returns 0, or -1 if the text is empty, has no port, a bad port, control
 * characters, or does not fit. */
int cli_endpoint_normalise(const char *text, char *out, size_t out_size);

/* ---- Clients ---- */

/* Normalises endpoint_arg into endpoint (CLI_ENDPOINT_MAX bytes), creates a client whose
 * response timeout is timeout_ms and connects it. Returns CLI_CONTINUE with *client_p set, or
 * an exit code after saying why on stderr (2 for a malformed endpoint, 3 if it cannot
 * connect, 1 otherwise); *client_p is then NULL. */
int cli_client_connect(const char *verb, const char *endpoint_arg, int timeout_ms, char *endpoint,
                       sk2_client_t **client_p);
/* The same for a server found by name that announced announced_key (NULL: none): with --keys
 * and no --server-key, that key is checked against, or pinned in, the known_servers file
 * (cli_pin_server_key). */
int cli_client_connect_found(const char *verb, const char *endpoint_arg, const char *name,
                             const char *announced_key, int timeout_ms, char *endpoint,
                             sk2_client_t **client_p);
/* Checks key against the one pinned for name (pinning it if there is none) and makes it the
 * client's server key. Returns CLI_CONTINUE, or 1 after saying why (a changed key: which line
 * of which file to delete). */
int cli_pin_server_key(const char *verb, sk2_client_t *client, const char *name, const char *key);
/* How long info, ping and stream browse for a server given by name (or none), in ms. */
#define CLI_BROWSE_DEFAULT_MS 3000
/* Range of --browse-timeout, seconds. */
#define CLI_BROWSE_MIN_S 0.1
#define CLI_BROWSE_MAX_S 600.0

/* Parses --browse-timeout S into *browse_ms; returns CLI_CONTINUE or a usage error. */
int cli_parse_browse_timeout(const char *verb, const char *text, int *browse_ms);

/* The lines every verb that takes a server prints in its --help about ENDPOINT and NAME. */
#define CLI_TARGET_HELP                                                                            \
    "SERVER is an endpoint (tcp://HOST:PORT or HOST:PORT) or the NAME of a server on the\n"        \
    "local network, as `sk2 browse` lists it; without SERVER, the only server there.\n"            \
    "  --browse-timeout S  look for NAME (or the only server) for at most S seconds\n"             \
    "                      (default 3)\n" CLI_SECURITY_HELP

/* True if text is meant as an endpoint ("scheme://...", or HOST:PORT with a numeric port);
 * anything else is a server name to look for on the network. */
bool cli_is_endpoint(const char *text);

/* Like cli_client_connect, but `target` may also be a server name, or NULL for the only server
 * on the network: then it browses for up to browse_ms first (saying on stderr what it found,
 * unless -q). Extra exit codes: 1 discovery is unavailable (why is said), 2 several servers
 * and none named (they are listed), 3 none found in time. */
int cli_client_open(const char *verb, const char *target, int timeout_ms, int browse_ms,
                    char *endpoint, sk2_client_t **client_p);

/* Says on stderr why a DISCONNECTED event (or NULL: a wait that ran out) ended the connection
 * to endpoint; returns CLI_EXIT_LOST. */
int cli_report_lost(const char *verb, const char *endpoint, const sk2_event_t *event,
                    int timeout_ms);

/* An event's reason, made safe to print, or the text of its error code if it has none. */
const char *cli_event_reason(const sk2_event_t *event, char *out, size_t size);

/* ---- Web gateway (serve --http, view) ---- */

/* The default --http address of `sk2 view`. */
#define CLI_HTTP_DEFAULT "127.0.0.1:8080"
/* Ports tried from the default one up when it is taken and the user named none. */
#define CLI_HTTP_TRIES 10

/* Splits --http ADDR:PORT ("127.0.0.1:8080", "[::1]:0") into address (size bytes) and port.
 * Returns 0 or -1 (no port, bad port, empty or too long address). */
int cli_parse_http(const char *text, char *address, size_t size, uint16_t *port);
/* --http ADDR:PORT: checks it and keeps it in *http; CLI_CONTINUE or a usage error. */
int cli_apply_http(const char *verb, const char *arg, const char **http);

/* The gateway's access options, shared by serve --http and view. */
typedef struct {
    const char *token;    /* --http-token: a token, "auto" (generate one), or NULL */
    bool is_insecure;     /* --http-insecure: no token needed off loopback */
    long max_connections; /* --http-max-connections, or 0 for the gateway's default */
} cli_http_access_t;

enum { CLI_OPT_HTTP_TOKEN = 0x1100, CLI_OPT_HTTP_INSECURE, CLI_OPT_HTTP_MAX_CONNECTIONS };

/* The access options' entries, for a verb's long-option table. */
#define CLI_HTTP_ACCESS_LONG_OPTIONS                                                               \
    {"http-token", required_argument, NULL, CLI_OPT_HTTP_TOKEN},                                   \
        {"http-insecure", no_argument, NULL, CLI_OPT_HTTP_INSECURE},                               \
    {                                                                                              \
        "http-max-connections", required_argument, NULL, CLI_OPT_HTTP_MAX_CONNECTIONS              \
    }

/* Their lines of a usage text; PAD is the spaces that start a description line. */
#define CLI_HTTP_ACCESS_HELP(PAD)                                                                  \
    "  --http-token TOKEN|auto\n" PAD                                                              \
    "every HTTP request and WebSocket must carry TOKEN (16..128\n" PAD                             \
    "characters of A-Z a-z 0-9 . _ ~ -) as ?token=, a cookie or\n" PAD                             \
    "Authorization: Bearer; auto makes a random one and prints\n" PAD "the URL with it\n"          \
    "  --http-insecure\n" PAD "serve on an address other than loopback without a token:\n" PAD     \
    "anyone who reaches the port sees every frame\n"                                               \
    "  --http-max-connections N\n" PAD                                                             \
    "HTTP and WebSocket connections open at once, 16..4096\n" PAD                                  \
    "(default 256); a new one beyond it closes the one that has\n" PAD                             \
    "waited longest for a request\n"

/* Applies one access option (opt one of CLI_OPT_HTTP_*) to *access: CLI_CONTINUE or a usage
 * error. Other opts: CLI_CONTINUE, nothing changed. */
int cli_apply_http_access(const char *verb, cli_http_access_t *access, int opt, const char *arg);
/* Whether any access option was given (a verb whose --http is optional refuses them alone). */
bool cli_http_access_is_set(const cli_http_access_t *access);

/* Binds and starts a gateway that is set up already (access applied: token, insecure, cap),
 * then prints "sk2 VERB: web viewer URL" on stdout, the URL with ?token= when the token was
 * generated. Raises the soft limit on open files towards the hard one if the cap needs it.
 * With may_move (the user named no address), a port in use makes it try the next
 * CLI_HTTP_TRIES - 1 ports and say which it took. Returns CLI_CONTINUE, or CLI_EXIT_FAILURE
 * after saying why on stderr (also when the address is not loopback and there is neither a
 * token nor --http-insecure). */
int cli_gateway_start(const char *verb, sk2_gateway_t *gateway, const char *http,
                      const cli_http_access_t *access, bool may_move);

/* ---- JSON ---- */

/* Writes s as a JSON string (quoted and escaped; invalid UTF-8 bytes become U+FFFD). */
void cli_json_string(FILE *out, const char *s);

/* ---- Time ---- */

/* Milliseconds from now_us until deadline_us, rounded up, in 0..cap_ms. */
int cli_wait_ms(int64_t now_us, int64_t deadline_us, int cap_ms);
/* Sleeps up to ms milliseconds; returns early when a signal arrives. */
void cli_sleep_ms(int ms);

/* ---- Text from the network ---- */

/* Copies s into out (truncating to size) with control characters (C0, DEL and C1) replaced by
 * '?', so that names and ids from a server cannot drive the terminal. Returns out. */
const char *cli_safe(const char *s, char *out, size_t size);

/* ---- Status lines ---- */

/* Where periodic status lines go. On a terminal one line is rewritten in place; elsewhere
 * each status is a full line. */
typedef struct {
    FILE *out;       /* stdout or stderr */
    bool is_tty;     /* out is a terminal: rewrite one line */
    bool is_enabled; /* print status lines at all (false with --no-status or -q) */
    bool is_open;    /* a rewritten line is on screen without its newline */
} cli_status_t;

void cli_status_init(cli_status_t *self, FILE *out, bool is_enabled);
/* Prints one status line (no newline in fmt). */
void cli_status_print(cli_status_t *self, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Prints a full line to the status stream, under the status line (not with -q). */
void cli_status_note(cli_status_t *self, const char *fmt, ...) CLI_PRINTF(2, 3);
/* Ends a rewritten line so that other output starts on a fresh line. */
void cli_status_close(cli_status_t *self);

/* ---- Units ---- */

/* Events per second over an interval in microseconds (0 for an empty interval). */
double cli_per_second(uint64_t count, int64_t interval_us);
/* Megabytes (10^6 bytes) per second over an interval in microseconds. */
double cli_mb_per_second(uint64_t bytes, int64_t interval_us);
/* Bytes in megabytes (10^6 bytes). */
double cli_mb(uint64_t bytes);

/* Writes "endpoint\n" to a temporary file beside path and renames it into place, so a reader
 * (a script waiting for the file) sees either no file or the whole line; the file is 0644.
 * Returns 0 or -1 with errno set. */
int cli_write_endpoint_file(const char *path, const char *endpoint);

#endif
