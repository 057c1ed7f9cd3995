/* `sk2 replay`: controls a replay that `sk2 serve --replay` plays: pause, resume, seek to a
 * time of the recording, or only ask where it is. One request on the control endpoint (the
 * `replay` message, docs/protocol.md) and its answer, printed in words or as JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "replay";

typedef struct {
    const char *endpoint_arg; /* NULL: the only server on the network */
    const char *device_id;    /* NULL: the server's only replay */
    const char *action;
    double position_s;
    bool is_json;
    int timeout_ms;
    int browse_ms;
} replay_options_t;

enum { OPT_DEVICE = 256, OPT_JSON, OPT_TIMEOUT, OPT_BROWSE_TIMEOUT };

static void s_print_usage(void)
{
    printf("usage: sk2 replay [SERVER] [--device ID] pause|resume|seek SECONDS|status\n"
           "                  [--json] [--timeout MS] [--browse-timeout S]\n"
           "                  [--keys DIR --server-key KEY] [-v|-q]\n"
           "\n"
           "Controls the replay a server plays (sk2 serve --replay) and says where it is:\n"
           "  pause          hold the current frame\n"
           "  resume         go on at the recorded spacing\n"
           "  seek SECONDS   go to that time of the recording (from its first frame)\n"
           "  status         only say where it is: waiting (for a first listener), playing,\n"
           "                 paused or ended, position, frames played, loops\n"
           "\n" CLI_TARGET_HELP "  --device ID    which replay (default: the server's only one)\n"
           "  --json         print the server's answer as JSON\n"
           "  --timeout MS   wait at most MS ms for the answer (default %d)\n"
           "\n"
           "Exit status: 0 done, 1 refused (no replay, no such device), 2 usage, 3 no answer.\n",
           SK2_CLIENT_RESPONSE_TIMEOUT_MS);
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    replay_options_t *opts = options;
    switch (opt) {
    case OPT_DEVICE:
        return cli_apply_device(s_verb, arg, &opts->device_id);
    case OPT_JSON:
        opts->is_json = true;
        break;
    case OPT_TIMEOUT:
        return cli_apply_timeout(s_verb, arg, &opts->timeout_ms);
    case OPT_BROWSE_TIMEOUT:
        return cli_parse_browse_timeout(s_verb, arg, &opts->browse_ms);
    default:
        return cli_apply_security(s_verb, opt, arg);
    }
    return CLI_CONTINUE;
}

/* Operands: [SERVER] ACTION [SECONDS]. An action name first means no SERVER. */
static int s_parse(int argc, char **argv, replay_options_t *opts)
{
    static const struct option options[] = {
        {"device", required_argument, NULL, OPT_DEVICE},
        {"json", no_argument, NULL, OPT_JSON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"browse-timeout", required_argument, NULL, OPT_BROWSE_TIMEOUT},
        CLI_SECURITY_LONG_OPTIONS,
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, ":hvq", options, s_print_usage, s_apply_option};
    int rc = cli_parse_options(&parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    char **operands = argv + optind;
    int count = argc - optind;
    sk2_replay_action_t action;
    if (count > 0 && sk2_replay_action_parse(operands[0], &action) != 0) {
        opts->endpoint_arg = operands[0];
        operands++;
        count--;
    }
    if (count < 1 || sk2_replay_action_parse(operands[0], &action) != 0)
        return cli_usage_error(s_verb, "expected pause, resume, seek SECONDS or status");
    opts->action = operands[0];
    int wanted = action == SK2_REPLAY_SEEK ? 2 : 1;
    if (count < wanted)
        return cli_usage_error(s_verb, "seek needs SECONDS");
    if (count > wanted)
        return cli_usage_error(s_verb, "unexpected argument '%s'", operands[wanted]);
    if (action == SK2_REPLAY_SEEK && cli_parse_double(operands[1], 0, 1e9, &opts->position_s) != 0)
        return cli_usage_error(s_verb, "seek takes 0 or more seconds, not '%s'", operands[1]);
    return CLI_CONTINUE;
}

/* The text of one top-level field of the answer ("" if absent): the tools see the library's
 * JSON as text, and the answer is flat (numbers and short strings), so a scan suffices for a
 * line in words; --json gives the answer itself. */
static const char *s_field(const char *json, const char *key, char *out, size_t size)
{
    char needle[32];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    const char *at = json ? strstr(json, needle) : NULL;
    out[0] = '\0';
    if (!at)
        return out;
    at += strlen(needle);
    at += *at == '"';
    size_t length = strcspn(at, "\",}");
    snprintf(out, size, "%.*s", (int)(length < size ? length : size - 1), at);
    return out;
}

static void s_print_answer(const char *json)
{
    char id[SK2_DEVICE_ID_MAX + 1], state[16], position[32], duration[32], frame[24], frames[24],
        played[24], loops[24], safe[4 * SK2_DEVICE_ID_MAX + 1];
    printf("replay %s: %s at %.3f of %.3f s (frame %s of %s), %s played, %s loops\n",
           cli_safe(s_field(json, "device", id, sizeof id), safe, sizeof safe),
           s_field(json, "state", state, sizeof state),
           strtod(s_field(json, "position", position, sizeof position), NULL),
           strtod(s_field(json, "duration", duration, sizeof duration), NULL),
           s_field(json, "frame", frame, sizeof frame),
           s_field(json, "frames", frames, sizeof frames),
           s_field(json, "played", played, sizeof played),
           s_field(json, "loops", loops, sizeof loops));
}

/* Sends the request once connected and waits for its answer; returns the exit code. */
static int s_run(sk2_client_t *client, const char *endpoint, const replay_options_t *opts)
{
    bool is_sent = false;
    const int64_t deadline_us = sk2_clock_mono_us() + (int64_t)opts->timeout_ms * 1000;
    for (;;) {
        if (cli_is_interrupted()) {
            fprintf(stderr, "sk2 replay: interrupted before an answer came\n");
            return CLI_EXIT_FAILURE;
        }
        if (!is_sent) {
            int rc =
                sk2_client_replay_control(client, opts->device_id, opts->action, opts->position_s);
            if (rc != 0 && rc != SK2_ESTATE) {
                fprintf(stderr, "sk2 replay: %s\n", sk2_strerror(rc));
                return CLI_EXIT_FAILURE;
            }
            is_sent = rc == 0;
        }
        int64_t now_us = sk2_clock_mono_us();
        if (now_us >= deadline_us)
            return cli_report_lost(s_verb, endpoint, NULL, opts->timeout_ms);
        sk2_event_t *event = NULL;
        int rc = sk2_client_recv(client, &event, cli_wait_ms(now_us, deadline_us, 250));
        if (rc == SK2_ETIMEDOUT || rc == SK2_EINTR)
            continue;
        if (rc != 0)
            return cli_report_lost(s_verb, endpoint, NULL, opts->timeout_ms);
        char reason[256];
        int exit_code = CLI_CONTINUE;
        switch (sk2_event_type(event)) {
        case SK2_EVENT_REPLAY:
            if (opts->is_json)
                printf("%s\n", sk2_event_json(event));
            else if (!cli_is_quiet())
                s_print_answer(sk2_event_json(event));
            exit_code = CLI_EXIT_OK;
            break;
        case SK2_EVENT_ERROR:
            fprintf(stderr, "sk2 replay: %s\n", cli_event_reason(event, reason, sizeof reason));
            exit_code = CLI_EXIT_FAILURE;
            break;
        case SK2_EVENT_DISCONNECTED:
            exit_code = cli_report_lost(s_verb, endpoint, event, opts->timeout_ms);
            break;
        default:
            break;
        }
        sk2_event_destroy(&event);
        if (exit_code != CLI_CONTINUE)
            return exit_code;
    }
}

int cli_replay(int argc, char **argv)
{
    replay_options_t opts = {.timeout_ms = SK2_CLIENT_RESPONSE_TIMEOUT_MS,
                             .browse_ms = CLI_BROWSE_DEFAULT_MS};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    char endpoint[CLI_ENDPOINT_MAX];
    sk2_client_t *client = NULL;
    rc = cli_client_open(s_verb, opts.endpoint_arg, opts.timeout_ms, opts.browse_ms, endpoint,
                         &client);
    if (rc != CLI_CONTINUE)
        return rc;
    rc = s_run(client, endpoint, &opts);
    sk2_client_destroy(&client);
    return rc;
}
