/* `sk2 ctl`: sets one key of one device of a server (a keyed command, docs/protocol.md, "The
 * `command` request"), shows one key's value, or lists every key of every device with its
 * type and value. The library sends the command again until an answer comes or its ttl runs
 * out, and the server applies it once however many copies arrive; this verb waits for the one
 * COMMAND_DONE event and says what happened, with an exit status per kind of refusal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "ctl";

/* Exit statuses beyond cli.h's, one per kind of refusal, so that scripts can tell them apart. */
#define CTL_EXIT_NO_DEVICE 4 /* no such device (or several, and none named) */
#define CTL_EXIT_NO_KEY    5 /* no such key (or the device has no such stream) */
#define CTL_EXIT_BAD_VALUE 6 /* the value does not fit the key, or the key cannot be set */

typedef struct {
    cli_server_args_t server; /* SERVER, --timeout (how long to wait for the connection) */
    const char *device_id;    /* DEVICE, NULL with --list alone or "-": the only device */
    const char *key;          /* KEY, NULL with --list */
    const char *value;        /* VALUE, NULL: show the key's value */
    bool is_list;             /* --list */
    bool is_json;             /* --json: print the server's answer */
    int ttl_ms;               /* --ttl */
} ctl_options_t;

enum { OPT_LIST = 256, OPT_JSON, OPT_TTL };

static void s_print_usage(void)
{
    printf("usage: sk2 ctl SERVER DEVICE KEY [VALUE] [--ttl MS] [--json] [--timeout MS]\n"
           "       sk2 ctl SERVER --list [DEVICE] [--json]\n"
           "                  [--keys DIR --server-key KEY] [-v|-q]\n"
           "\n"
           "Sets KEY of device DEVICE on the server to VALUE, or shows its value without VALUE;\n"
           "--list shows every key of every device (or of DEVICE): type, value, settable.\n"
           "DEVICE is an id as `sk2 info` shows it, or - for the server's only device.\n"
           "The command is sent again every %d ms until its answer comes (at most %d times,\n"
           "within its ttl) and the server applies it once, however many copies arrive.\n"
           "\n"
           "keys: running (true/false), stream.depth, stream.ir, stream.color (true/false),\n"
           "      fps (0..1000, mock devices), jpeg_quality (1..100), label (text, 64 bytes),\n"
           "      location (text, 128 bytes), resolution.KIND (WxH, mock devices),\n"
           "      codec.KIND (the stream's default codec); KIND is depth, ir or color.\n"
           "\n" CLI_TARGET_HELP
           "  --list              list the keys of every device (or of DEVICE)\n"
           "  --ttl MS            give up on an answer after MS ms, 100..600000 (default %d)\n"
           "  --json              print the server's answer as JSON\n"
           "  --timeout MS        wait at most MS ms for the connection (default %d)\n"
           "\n"
           "Exit status: 0 applied (or shown), 1 refused for another reason, 2 usage,\n"
           "3 no answer (server unreachable, or the ttl ran out), 4 unknown device,\n"
           "5 unknown key, 6 bad value (or a key that cannot be set).\n",
           SK2_CLIENT_COMMAND_RETRY_MS, SK2_CLIENT_COMMAND_MAX_SENDS, SK2_CLIENT_COMMAND_TTL_MS,
           SK2_CLIENT_RESPONSE_TIMEOUT_MS);
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    ctl_options_t *opts = options;
    long ttl = 0;
    switch (opt) {
    case OPT_LIST:
        opts->is_list = true;
        break;
    case OPT_JSON:
        opts->is_json = true;
        break;
    case OPT_TTL:
        if (cli_parse_long(arg, 100, 600000, &ttl) != 0)
            return cli_usage_error(s_verb, "--ttl must be 100..600000 ms, not '%s'", arg);
        opts->ttl_ms = (int)ttl;
        break;
    default:
        return cli_apply_server_option(s_verb, &opts->server, opt, arg);
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, ctl_options_t *opts)
{
    static const struct option options[] = {
        {"list", no_argument, NULL, OPT_LIST},
        {"json", no_argument, NULL, OPT_JSON},
        {"ttl", required_argument, NULL, OPT_TTL},
        CLI_SERVER_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, ":hvq", options, s_print_usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    char **operands = argv + optind;
    int count = argc - optind;
    if (count < 1)
        return cli_usage_error(s_verb, "missing SERVER");
    opts->server.target = operands[0];
    if (opts->is_list) {
        if (count > 2)
            return cli_usage_error(s_verb, "--list takes at most a DEVICE, not '%s'", operands[2]);
        opts->device_id = count == 2 ? operands[1] : NULL;
    } else {
        if (count < 3)
            return cli_usage_error(s_verb, "expected SERVER DEVICE KEY [VALUE], or --list");
        if (count > 4)
            return cli_usage_error(s_verb, "unexpected argument '%s'", operands[4]);
        opts->device_id = operands[1];
        opts->key = operands[2];
        opts->value = count == 4 ? operands[3] : NULL;
    }
    if (opts->device_id && strcmp(opts->device_id, "-") == 0)
        opts->device_id = NULL;
    const char *ignored = NULL;
    if (opts->device_id && cli_apply_device(s_verb, opts->device_id, &ignored) != CLI_CONTINUE)
        return CLI_EXIT_USAGE;
    if (opts->key && (strlen(opts->key) == 0 || strlen(opts->key) > 32))
        return cli_usage_error(s_verb, "KEY must be 1..32 characters");
    if (opts->value && strlen(opts->value) > 256)
        return cli_usage_error(s_verb, "VALUE may have at most 256 bytes");
    return CLI_CONTINUE;
}

/* A JSON value on one line, for people (strings without quotes). */
static void s_print_value(FILE *out, const json_t *value)
{
    if (json_is_string(value)) {
        char safe[1100];
        fputs(cli_safe(json_string_value(value), safe, sizeof safe), out);
        return;
    }
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    fputs(text ? text : "?", out);
    free(text);
}

/* Prints the keys of each device of a `list` answer; with `only`, that key's value alone. */
static int s_print_list(const json_t *reply, const char *only)
{
    const json_t *devices = json_object_get(json_object_get(reply, "value"), "devices");
    size_t d;
    const json_t *device;
    json_array_foreach(devices, d, device)
    {
        const char *id = json_string_value(json_object_get(device, "id"));
        if (!only)
            printf("device %s\n", id ? id : "?");
        size_t k;
        const json_t *key;
        json_array_foreach(json_object_get(device, "keys"), k, key)
        {
            const char *name = json_string_value(json_object_get(key, "key"));
            if (!name || (only && strcmp(name, only) != 0))
                continue;
            if (only) {
                s_print_value(stdout, json_object_get(key, "value"));
                printf("\n");
                return CLI_EXIT_OK;
            }
            printf("  %-13s %-8s %-9s ", name,
                   json_string_value(json_object_get(key, "type"))
                       ? json_string_value(json_object_get(key, "type"))
                       : "?",
                   json_is_true(json_object_get(key, "settable")) ? "settable" : "read-only");
            s_print_value(stdout, json_object_get(key, "value"));
            printf("\n");
        }
    }
    if (only) {
        fprintf(stderr, "sk2 ctl: the device has no key \"%s\"\n", only);
        return CTL_EXIT_NO_KEY;
    }
    return CLI_EXIT_OK;
}

/* The exit status of a refusal, from the server's code. */
static int s_refusal_exit(const char *code)
{
    if (strcmp(code, "unknown-device") == 0)
        return CTL_EXIT_NO_DEVICE;
    if (strcmp(code, "unknown-key") == 0)
        return CTL_EXIT_NO_KEY;
    if (strcmp(code, "bad-value") == 0 || strcmp(code, "read-only") == 0 ||
        strcmp(code, "unsupported") == 0)
        return CTL_EXIT_BAD_VALUE;
    return CLI_EXIT_FAILURE;
}

/* The end of the command: prints its outcome and returns the exit status. */
static int s_done(const ctl_options_t *opts, const sk2_event_t *event)
{
    int error = sk2_event_error(event);
    if (error == SK2_ETIMEDOUT || error == SK2_ELOST) {
        fprintf(stderr, "sk2 ctl: %s\n", sk2_event_reason(event));
        return CLI_EXIT_LOST;
    }
    const char *text = sk2_event_json(event);
    if (opts->is_json && text)
        printf("%s\n", text);
    if (error != 0) {
        char safe[1100];
        fprintf(stderr, "sk2 ctl: refused (%s): %s\n", sk2_event_command_code(event),
                cli_safe(sk2_event_reason(event), safe, sizeof safe));
        return s_refusal_exit(sk2_event_command_code(event));
    }
    if (opts->is_json)
        return CLI_EXIT_OK;
    json_error_t parse_error;
    json_t *reply = text ? json_loads(text, 0, &parse_error) : NULL;
    int rc = CLI_EXIT_OK;
    if (!reply) {
        fprintf(stderr, "sk2 ctl: the answer is not JSON\n");
        rc = CLI_EXIT_FAILURE;
    } else if (opts->is_list || !opts->value) {
        rc = s_print_list(reply, opts->is_list ? NULL : opts->key);
    } else if (!cli_is_quiet()) {
        printf("device %s: %s = ", json_string_value(json_object_get(reply, "device")), opts->key);
        s_print_value(stdout, json_object_get(reply, "value"));
        printf(" (applied after %u send%s, %.2f ms)\n", sk2_event_command_sends(event),
               sk2_event_command_sends(event) == 1 ? "" : "s",
               (double)sk2_event_command_rtt_us(event) / 1e3);
    }
    json_decref(reply);
    return rc;
}

/* Sends the command once connected; returns SK2_ESTATE while not yet, else 0 or an exit code. */
static int s_send(sk2_client_t *client, const ctl_options_t *opts)
{
    /* The value travels as a JSON string; the server reads numbers and booleans out of it for
     * keys of those types, so `sk2 ctl S D label 15` sets the label "15". */
    char *value = NULL;
    if (opts->value) {
        json_t *string = json_string(opts->value);
        value = string ? json_dumps(string, JSON_ENCODE_ANY) : NULL;
        json_decref(string);
        if (!value) {
            fprintf(stderr, "sk2 ctl: VALUE must be UTF-8 text\n");
            return CLI_EXIT_USAGE;
        }
    }
    bool is_get = !opts->is_list && !opts->value;
    int rc =
        sk2_client_command(client, opts->device_id, opts->is_list || is_get ? "list" : opts->key,
                           value, opts->ttl_ms, NULL, 0);
    free(value);
    if (rc == 0 || rc == SK2_ESTATE)
        return rc;
    if (rc == SK2_EUNSUPPORTED)
        fprintf(stderr, "sk2 ctl: the server takes no commands (a version-1 server?)\n");
    else
        fprintf(stderr, "sk2 ctl: cannot send the command: %s\n", sk2_strerror(rc));
    return CLI_EXIT_FAILURE;
}

static int s_run(sk2_client_t *client, const char *endpoint, const ctl_options_t *opts)
{
    bool is_sent = false;
    /* Until the command is sent, the connection's timeout; then the command's own ttl decides
     * (its COMMAND_DONE comes by then), with a second to spare. */
    int64_t deadline_us = sk2_clock_mono_us() + (int64_t)opts->server.timeout_ms * 1000;
    for (;;) {
        if (cli_is_interrupted()) {
            fprintf(stderr, "sk2 ctl: interrupted before an answer came\n");
            return CLI_EXIT_FAILURE;
        }
        if (!is_sent) {
            int rc = s_send(client, opts);
            if (rc != 0 && rc != SK2_ESTATE)
                return rc;
            is_sent = rc == 0;
            if (is_sent)
                deadline_us =
                    sk2_clock_mono_us() +
                    (int64_t)(opts->ttl_ms ? opts->ttl_ms : SK2_CLIENT_COMMAND_TTL_MS) * 1000 +
                    1000000;
        }
        int64_t now_us = sk2_clock_mono_us();
        if (now_us >= deadline_us)
            return cli_report_lost(s_verb, endpoint, NULL, opts->server.timeout_ms);
        sk2_event_t *event = NULL;
        int rc = sk2_client_recv(client, &event, cli_wait_ms(now_us, deadline_us, 250));
        if (rc == SK2_ETIMEDOUT || rc == SK2_EINTR)
            continue;
        if (rc != 0)
            return cli_report_lost(s_verb, endpoint, NULL, opts->server.timeout_ms);
        char reason[256];
        int exit_code = CLI_CONTINUE;
        switch (sk2_event_type(event)) {
        case SK2_EVENT_COMMAND_DONE:
            exit_code = s_done(opts, event);
            break;
        case SK2_EVENT_ERROR:
            fprintf(stderr, "sk2 ctl: %s\n", cli_event_reason(event, reason, sizeof reason));
            exit_code = CLI_EXIT_FAILURE;
            break;
        case SK2_EVENT_DISCONNECTED:
            exit_code = cli_report_lost(s_verb, endpoint, event, opts->server.timeout_ms);
            break;
        default:
            break;
        }
        sk2_event_destroy(&event);
        if (exit_code != CLI_CONTINUE)
            return exit_code;
    }
}

int cli_ctl(int argc, char **argv)
{
    ctl_options_t opts = {.server = CLI_SERVER_ARGS_DEFAULT};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    char endpoint[CLI_ENDPOINT_MAX];
    sk2_client_t *client = NULL;
    rc = cli_client_open(s_verb, opts.server.target, opts.server.timeout_ms, opts.server.browse_ms,
                         endpoint, &client);
    if (rc != CLI_CONTINUE)
        return rc;
    rc = s_run(client, endpoint, &opts);
    sk2_client_destroy(&client);
    return rc;
}
