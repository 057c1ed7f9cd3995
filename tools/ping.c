/* `sk2 ping`: checks that a server's control endpoint answers, and how fast. Sends one ping at
 * a time and waits for its pong; every wait is bounded by --timeout, so the command ends even
 * when nothing listens at the endpoint (exit 3). */
#include <stdio.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "ping";

/* s_wait_pong's answers besides exit codes. */
#define PING_PONG        (-10)
#define PING_INTERRUPTED (-11)

typedef struct {
    cli_server_args_t server; /* SERVER, --timeout (wait for each pong), --browse-timeout */
    long count;               /* pings to send */
} ping_options_t;

typedef struct {
    sk2_client_t *client;
    char endpoint[CLI_ENDPOINT_MAX]; /* normalised */
    bool is_ping_pending;            /* the ping waits for the connection */
} ping_t;

enum { OPT_COUNT = 'c' };

static void s_print_usage(void)
{
    printf("usage: sk2 ping [SERVER] [--count N] [--timeout MS] [--browse-timeout S]\n"
           "                [--keys DIR --server-key KEY] [-v|-q]\n"
           "\n"
           "Checks that a server answers pings, and prints the round trip.\n"
           "\n" CLI_TARGET_HELP
           "  -c, --count N       pings to send, one after the other (default 1)\n"
           "      --timeout MS    wait at most MS milliseconds for each answer, %d..%d\n"
           "                      (default %d)\n"
           "\n"
           "Exit status: 0 every ping was answered, 1 error answer, Ctrl-C or discovery\n"
           "unavailable, 2 usage (or several servers and none named), 3 no answer within the\n"
           "timeout (or no server found).\n",
           CLI_TIMEOUT_MIN_MS, CLI_TIMEOUT_MAX_MS, SK2_CLIENT_RESPONSE_TIMEOUT_MS);
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    ping_options_t *opts = options;
    switch (opt) {
    case OPT_COUNT:
        if (cli_parse_long(arg, 1, 1000000, &opts->count) != 0)
            return cli_usage_error(s_verb, "--count must be 1..1000000, not '%s'", arg);
        break;
    default:
        return cli_apply_server_option(s_verb, &opts->server, opt, arg);
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, ping_options_t *opts)
{
    static const char optstring[] = ":hvqc:";
    static const struct option options[] = {
        {"count", required_argument, NULL, OPT_COUNT},
        CLI_SERVER_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    return cli_parse_server_verb(&parser, argc, argv, opts, &opts->server);
}

/* Sends a ping, or remembers to once connected if the client is not ready for one yet. */
static int s_send_ping(ping_t *self)
{
    int rc = sk2_client_ping(self->client);
    self->is_ping_pending = rc == SK2_ESTATE;
    if (rc != 0 && rc != SK2_ESTATE) {
        fprintf(stderr, "sk2 ping: cannot ping %s: %s\n", self->endpoint, sk2_strerror(rc));
        return CLI_EXIT_FAILURE;
    }
    return CLI_CONTINUE;
}

/* Handles one event while waiting for a pong: PING_PONG, CLI_CONTINUE or an exit code. */
static int s_on_event(ping_t *self, const sk2_event_t *event, int timeout_ms, int64_t *rtt_us)
{
    char reason[256];
    switch (sk2_event_type(event)) {
    case SK2_EVENT_PONG:
        *rtt_us = sk2_event_rtt_us(event);
        return PING_PONG;
    case SK2_EVENT_CONNECTED:
        return self->is_ping_pending ? s_send_ping(self) : CLI_CONTINUE;
    case SK2_EVENT_DISCONNECTED:
        return cli_report_lost(s_verb, self->endpoint, event, timeout_ms);
    case SK2_EVENT_ERROR:
        /* A version-1 server always answers ping with pong: an error means it is unwell. */
        fprintf(stderr, "sk2 ping: %s answered with an error: %s\n", self->endpoint,
                cli_event_reason(event, reason, sizeof reason));
        return CLI_EXIT_FAILURE;
    default:
        return CLI_CONTINUE; /* device lists do not concern a ping */
    }
}

/* Waits up to timeout_ms for the pong of the ping just sent. */
static int s_wait_pong(ping_t *self, int timeout_ms, int64_t *rtt_us)
{
    const int64_t deadline_us = sk2_clock_mono_us() + (int64_t)timeout_ms * 1000;
    for (;;) {
        if (cli_is_interrupted())
            return PING_INTERRUPTED;
        int64_t now_us = sk2_clock_mono_us();
        if (now_us >= deadline_us)
            return cli_report_lost(s_verb, self->endpoint, NULL, timeout_ms);
        /* Slices of 250 ms: a signal that lands on a library thread still stops us soon. */
        sk2_event_t *event = NULL;
        int rc = sk2_client_recv(self->client, &event, cli_wait_ms(now_us, deadline_us, 250));
        if (rc == SK2_ETIMEDOUT || rc == SK2_EINTR)
            continue;
        if (rc == SK2_ESTATE)
            return cli_report_lost(s_verb, self->endpoint, NULL, timeout_ms);
        if (rc != 0) {
            fprintf(stderr, "sk2 ping: %s\n", sk2_strerror(rc));
            return CLI_EXIT_FAILURE;
        }
        rc = s_on_event(self, event, timeout_ms, rtt_us);
        sk2_event_destroy(&event);
        if (rc != CLI_CONTINUE)
            return rc;
    }
}

static void s_print_summary(long sent, long answered, int64_t min_us, int64_t max_us,
                            int64_t sum_us)
{
    printf("pings: %ld sent, %ld answered", sent, answered);
    if (answered > 0)
        printf(", time min/avg/max = %.2f/%.2f/%.2f ms", (double)min_us / 1e3,
               (double)sum_us / 1e3 / (double)answered, (double)max_us / 1e3);
    printf("\n");
}

/* Pings opts->count times; returns the exit code. */
static int s_run(ping_t *self, const ping_options_t *opts)
{
    long sent = 0, answered = 0;
    int64_t min_us = INT64_MAX, max_us = 0, sum_us = 0;
    int rc = CLI_CONTINUE;
    for (long i = 0; i < opts->count && rc == CLI_CONTINUE; i++) {
        int64_t rtt_us = 0;
        rc = s_send_ping(self);
        if (rc != CLI_CONTINUE)
            break;
        sent++;
        rc = s_wait_pong(self, opts->server.timeout_ms, &rtt_us);
        if (rc != PING_PONG)
            break;
        printf("pong from %s: time=%.2f ms\n", self->endpoint, (double)rtt_us / 1e3);
        answered++;
        sum_us += rtt_us;
        min_us = rtt_us < min_us ? rtt_us : min_us;
        max_us = rtt_us > max_us ? rtt_us : max_us;
        rc = CLI_CONTINUE;
    }
    if (opts->count > 1)
        s_print_summary(sent, answered, min_us, max_us, sum_us);
    if (rc == PING_INTERRUPTED && answered == 0)
        fprintf(stderr, "sk2 ping: interrupted before an answer came\n");
    if (rc == PING_INTERRUPTED)
        return answered > 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
    return rc == CLI_CONTINUE ? CLI_EXIT_OK : rc;
}

int cli_ping(int argc, char **argv)
{
    ping_options_t opts = {.server = CLI_SERVER_ARGS_DEFAULT, .count = 1};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    ping_t self = {0};
    rc = cli_client_open(s_verb, opts.server.target, opts.server.timeout_ms, opts.server.browse_ms,
                         self.endpoint, &self.client);
    if (rc != CLI_CONTINUE)
        return rc;
    rc = s_run(&self, &opts);
    sk2_client_destroy(&self.client);
    return rc;
}
