/* `sk2 stream SERVER... --frameset`: one client per server, every device's chosen streams fed
 * to one matcher (include/sk2/frameset.h), and a report of the framesets: how many, the frames
 * of each device and stream that found no partner, and the spread of capture times within a
 * frameset in this host's clock (each server's times mapped with its clock estimate, or not with
 * --no-clock, for comparison).
 *
 * The clients are driven from one poll loop over all their descriptors, the way the client
 * library expects a foreign loop to (client.h): poll, then recv with timeout 0 on every client
 * until it has nothing more. The members are fixed once every server has answered and its
 * clock estimate has settled: devices that appear later are not added (the matcher's members
 * are fixed once frames flow). */
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "sk2/sk2.h"
#include "stream_frameset.h"

static const char *const s_verb = "stream";

#define FS_SERVERS_MAX 8      /* SERVER operands at most */
#define FS_FDS_MAX     256    /* descriptors polled at most */
#define FS_SPREADS_MAX 100000 /* spreads kept for the percentiles (the first ones) */
#define FS_DRAIN_MAX   256    /* events handled between looks at the clock */

typedef struct {
    const char *servers[FS_SERVERS_MAX];
    size_t server_count;
    sk2_stream_kind_t kinds[3];
    size_t kind_count;
    double tolerance_ms; /* 0: the matcher's default */
    double seconds;      /* measure this long after the members are fixed */
    long framesets;      /* stop after this many, 0: no limit */
    unsigned queue;      /* the matcher's queue per member, 0: its default */
    bool is_clock;       /* map capture times with the clock estimates */
    bool is_json;
    int timeout_ms;
} fs_options_t;

typedef struct {
    char endpoint[CLI_ENDPOINT_MAX];
    sk2_client_t *client;
    bool is_connected;
} fs_server_t;

enum {
    OPT_FRAMESET = 256,
    OPT_TOLERANCE,
    OPT_SECONDS,
    OPT_FRAMESETS,
    OPT_STREAM,
    OPT_QUEUE,
    OPT_NO_CLOCK,
    OPT_JSON,
    OPT_TIMEOUT,
};

static void s_print_usage(void)
{
    printf("usage: sk2 stream SERVER... --frameset [--stream KIND]... [--tolerance-ms MS]\n"
           "                  [--seconds S] [--framesets N] [--queue N] [--no-clock] [--json]\n"
           "                  [--timeout MS] [-v|-q]\n"
           "\n"
           "Receives the streams of every device of up to %d servers (HOST:PORT or\n"
           "tcp://HOST:PORT each) and matches them into framesets: one frame per device and\n"
           "stream whose capture times, in this host's clock, agree within a tolerance\n"
           "(docs/rigs.md, \"Matched framesets\").\n"
           "\n"
           "  --stream KIND      depth, ir or color, in the server's default codec; repeatable\n"
           "                     (default: depth). Each device's streams are members too\n"
           "  --tolerance-ms MS  the most a frameset's capture times may spread, 0.001..10000\n"
           "                     (default: half the frame period of the slowest stream)\n"
           "  --seconds S        measure S seconds (default 5)\n"
           "  --framesets N      stop after N framesets\n"
           "  --queue N          frames waiting for partners per stream, 1..%d (default %d);\n"
           "                     the oldest over it are counted unmatched\n"
           "  --no-clock         compare the servers' own capture times, without mapping them\n"
           "                     with each server's clock estimate (for comparison)\n"
           "  --json             the summary as one JSON object: framesets, unmatched frames per\n"
           "                     device and stream, spread_p50_ms, spread_p99_ms, spread_max_ms\n"
           "  --timeout MS       wait at most MS ms for each server (default %d)\n"
           "\n"
           "Exit status: 0 at least one frameset; 1 none; 2 usage; 3 a server unreachable or\n"
           "lost.\n",
           FS_SERVERS_MAX, SK2_MATCHER_QUEUE_MAX, SK2_MATCHER_QUEUE_DEFAULT,
           SK2_CLIENT_RESPONSE_TIMEOUT_MS);
}

bool stream_is_frameset(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (strcmp(argv[i], "--frameset") == 0)
            return true;
    }
    return false;
}

static int s_apply(void *options, int opt, const char *arg)
{
    fs_options_t *opts = options;
    long n;
    switch (opt) {
    case OPT_FRAMESET:
        break;
    case OPT_TOLERANCE:
        if (cli_parse_double(arg, 0.001, 10000, &opts->tolerance_ms) != 0)
            return cli_usage_error(s_verb, "--tolerance-ms must be a number 0.001..10000, not '%s'",
                                   arg);
        break;
    case OPT_SECONDS:
        return cli_apply_seconds(s_verb, arg, &opts->seconds);
    case OPT_FRAMESETS:
        return cli_apply_frames(s_verb, arg, &opts->framesets);
    case OPT_QUEUE:
        if (cli_parse_long(arg, 1, SK2_MATCHER_QUEUE_MAX, &n) != 0)
            return cli_usage_error(s_verb, "--queue must be 1..%d, not '%s'", SK2_MATCHER_QUEUE_MAX,
                                   arg);
        opts->queue = (unsigned)n;
        break;
    case OPT_STREAM: {
        static const sk2_stream_kind_t kinds[] = {SK2_STREAM_DEPTH, SK2_STREAM_IR,
                                                  SK2_STREAM_COLOR};
        sk2_stream_kind_t kind = 0;
        for (size_t i = 0; i < 3; i++)
            if (strcmp(arg, sk2_stream_kind_name(kinds[i])) == 0)
                kind = kinds[i];
        if (!kind)
            return cli_usage_error(
                s_verb, "--stream with --frameset: depth, ir or color (no codec), not '%s'", arg);
        for (size_t i = 0; i < opts->kind_count; i++)
            if (opts->kinds[i] == kind)
                return CLI_CONTINUE;
        opts->kinds[opts->kind_count++] = kind;
        break;
    }
    case OPT_NO_CLOCK:
        opts->is_clock = false;
        break;
    case OPT_JSON:
        opts->is_json = true;
        break;
    case OPT_TIMEOUT:
        return cli_apply_timeout(s_verb, arg, &opts->timeout_ms);
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, fs_options_t *opts)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"frameset", no_argument, NULL, OPT_FRAMESET},
        {"tolerance-ms", required_argument, NULL, OPT_TOLERANCE},
        {"seconds", required_argument, NULL, OPT_SECONDS},
        {"framesets", required_argument, NULL, OPT_FRAMESETS},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"queue", required_argument, NULL, OPT_QUEUE},
        {"no-clock", no_argument, NULL, OPT_NO_CLOCK},
        {"json", no_argument, NULL, OPT_JSON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        CLI_COMMON_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply};
    int rc = cli_parse_options(&parser, argc, argv, opts);
    if (rc != CLI_CONTINUE)
        return rc;
    for (int i = optind; i < argc; i++) {
        if (opts->server_count == FS_SERVERS_MAX)
            return cli_usage_error(s_verb, "--frameset takes at most %d servers", FS_SERVERS_MAX);
        opts->servers[opts->server_count++] = argv[i];
    }
    if (opts->server_count == 0)
        return cli_usage_error(s_verb, "--frameset needs at least one SERVER (HOST:PORT)");
    if (opts->kind_count == 0)
        opts->kinds[opts->kind_count++] = SK2_STREAM_DEPTH;
    return CLI_CONTINUE;
}

/* Receives what the clients have ready, one event per client in turn, so that a busy server
 * cannot hold back another's frames (their partners would age in the matcher's queues
 * meanwhile), and at most FS_DRAIN_MAX events, so that the time goal is checked; frames go to
 * the matcher (when there is one). Returns CLI_CONTINUE, or CLI_EXIT_LOST when a server went
 * away. */
static int s_drain(fs_server_t *servers, size_t count, sk2_matcher_t *matcher)
{
    bool is_busy = true;
    for (int handled = 0; is_busy && handled < FS_DRAIN_MAX;) {
        is_busy = false;
        for (size_t i = 0; i < count; i++) {
            sk2_event_t *event = NULL;
            int rc = sk2_client_recv(servers[i].client, &event, 0);
            if (rc == SK2_ETIMEDOUT || rc == SK2_EINTR)
                continue;
            if (rc != 0)
                return CLI_EXIT_LOST;
            is_busy = true;
            handled++;
            switch (sk2_event_type(event)) {
            case SK2_EVENT_CONNECTED:
                servers[i].is_connected = true;
                break;
            case SK2_EVENT_DISCONNECTED:
                cli_report_lost(s_verb, servers[i].endpoint, event, 0);
                sk2_event_destroy(&event);
                return CLI_EXIT_LOST;
            case SK2_EVENT_FRAME:
                if (matcher)
                    sk2_matcher_push_event(matcher, servers[i].client, event);
                break;
            default:
                break;
            }
            sk2_event_destroy(&event);
        }
    }
    return CLI_CONTINUE;
}

/* Waits for any client's descriptors or timers, at most cap_ms. */
static void s_wait(fs_server_t *servers, size_t count, int cap_ms)
{
    struct pollfd pfds[FS_FDS_MAX];
    size_t n = 0;
    int timeout_ms = cap_ms;
    for (size_t i = 0; i < count; i++) {
        int fds[32];
        size_t k = sk2_client_fds(servers[i].client, fds, 32);
        for (size_t j = 0; j < k && j < 32 && n < FS_FDS_MAX; j++)
            pfds[n++] = (struct pollfd){.fd = fds[j], .events = POLLIN};
        int t = sk2_client_timeout_ms(servers[i].client);
        if (t >= 0 && t < timeout_ms)
            timeout_ms = t;
    }
    poll(pfds, n, timeout_ms);
}

static int s_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void s_print_ms(FILE *out, const char *key, const int64_t *spreads, size_t n, double q)
{
    fprintf(out, ", \"%s\": ", key);
    if (n == 0)
        fputs("null", out);
    else
        fprintf(out, "%.3f", (double)spreads[(size_t)(q * (double)(n - 1) + 0.5)] / 1e3);
}

static void s_report(const fs_options_t *opts, fs_server_t *servers, const sk2_matcher_t *m,
                     int64_t *spreads, size_t spread_count, double seconds)
{
    qsort(spreads, spread_count, sizeof *spreads, s_cmp);
    size_t members = sk2_matcher_members(m);
    if (opts->is_json) {
        printf("{\"framesets\": %" PRIu64 ", \"members\": %zu, \"tolerance_ms\": %.3f, "
               "\"clock_mapping\": %s, \"seconds\": %.3f",
               sk2_matcher_matched(m), members, (double)sk2_matcher_tolerance_us(m) / 1e3,
               opts->is_clock ? "true" : "false", seconds);
        s_print_ms(stdout, "spread_p50_ms", spreads, spread_count, 0.5);
        s_print_ms(stdout, "spread_p99_ms", spreads, spread_count, 0.99);
        s_print_ms(stdout, "spread_max_ms", spreads, spread_count, 1.0);
        fputs(", \"servers\": [", stdout);
        for (size_t i = 0; i < opts->server_count; i++) {
            sk2_clock_estimate_t clock;
            fputs(i ? ", {\"endpoint\": " : "{\"endpoint\": ", stdout);
            cli_json_string(stdout, servers[i].endpoint);
            if (sk2_client_clock(servers[i].client, &clock) == 0)
                printf(", \"clock_offset_ms\": %.3f, \"clock_error_ms\": %.3f}",
                       (double)clock.offset_us / 1e3, (double)clock.error_us / 1e3);
            else
                fputs(", \"clock_offset_ms\": null, \"clock_error_ms\": null}", stdout);
        }
        fputs("], \"unmatched\": [", stdout);
        for (size_t i = 0; i < members; i++) {
            fputs(i ? ", {\"device\": " : "{\"device\": ", stdout);
            cli_json_string(stdout, sk2_matcher_member_device(m, i));
            printf(", \"stream\": \"%s\", \"frames\": %" PRIu64 ", \"unmatched\": %" PRIu64 "}",
                   sk2_stream_kind_name(sk2_matcher_member_kind(m, i)), sk2_matcher_pushed(m, i),
                   sk2_matcher_unmatched(m, i));
        }
        fputs("]}\n", stdout);
        return;
    }
    printf("sk2 stream: %" PRIu64 " framesets of %zu streams in %.1f s, tolerance %.3f ms, %s\n",
           sk2_matcher_matched(m), members, seconds, (double)sk2_matcher_tolerance_us(m) / 1e3,
           opts->is_clock ? "times mapped to this host's clock" : "servers' own times");
    if (spread_count > 0)
        printf("sk2 stream: spread p50 %.3f ms, p99 %.3f ms, max %.3f ms\n",
               (double)spreads[spread_count / 2] / 1e3,
               (double)spreads[(size_t)(0.99 * (double)(spread_count - 1) + 0.5)] / 1e3,
               (double)spreads[spread_count - 1] / 1e3);
    for (size_t i = 0; i < members; i++) {
        char safe[SK2_DEVICE_ID_MAX * 4 + 1];
        printf("sk2 stream: %s %s: %" PRIu64 " frames, %" PRIu64 " unmatched\n",
               cli_safe(sk2_matcher_member_device(m, i), safe, sizeof safe),
               sk2_stream_kind_name(sk2_matcher_member_kind(m, i)), sk2_matcher_pushed(m, i),
               sk2_matcher_unmatched(m, i));
    }
}

/* Waits until every server has answered and, with the clock mapping, has a settled clock
 * estimate (one burst: a few milliseconds). Returns CLI_CONTINUE or an exit code. */
static int s_wait_ready(const fs_options_t *opts, fs_server_t *servers)
{
    int64_t deadline_us = sk2_clock_mono_us() + (int64_t)opts->timeout_ms * 1000;
    for (;;) {
        int rc = s_drain(servers, opts->server_count, NULL);
        if (rc != CLI_CONTINUE)
            return rc;
        bool is_ready = true;
        for (size_t i = 0; i < opts->server_count; i++) {
            sk2_clock_estimate_t clock;
            int clock_rc = sk2_client_clock(servers[i].client, &clock);
            is_ready &=
                servers[i].is_connected && (!opts->is_clock || clock_rc == SK2_EUNSUPPORTED ||
                                            (clock_rc == 0 && !clock.is_settling));
        }
        if (is_ready)
            return CLI_CONTINUE;
        if (cli_is_interrupted())
            return CLI_EXIT_INTERRUPTED;
        int64_t now_us = sk2_clock_mono_us();
        if (now_us >= deadline_us) {
            fprintf(stderr, "sk2 stream: not every server answered within %d ms\n",
                    opts->timeout_ms);
            return CLI_EXIT_LOST;
        }
        s_wait(servers, opts->server_count, cli_wait_ms(now_us, deadline_us, 100));
    }
}

/* Adds every device's chosen streams of every server to the matcher and subscribes to them.
 * Returns CLI_CONTINUE or an exit code. */
static int s_add_members(const fs_options_t *opts, fs_server_t *servers, sk2_matcher_t *m)
{
    for (size_t i = 0; i < opts->server_count; i++) {
        sk2_client_t *client = servers[i].client;
        for (size_t d = 0; d < sk2_client_device_count(client); d++) {
            const char *id = sk2_client_device_id(client, d);
            for (size_t k = 0; id && k < opts->kind_count; k++) {
                int rc = sk2_client_subscribe(client, id, opts->kinds[k], NULL);
                if (rc == 0)
                    rc = sk2_matcher_add(m, client, id, opts->kinds[k], 0);
                if (rc < 0) {
                    char safe[SK2_DEVICE_ID_MAX * 4 + 1];
                    fprintf(stderr, "sk2 stream: cannot match %s of device %s of %s: %s\n",
                            sk2_stream_kind_name(opts->kinds[k]), cli_safe(id, safe, sizeof safe),
                            servers[i].endpoint, sk2_strerror(rc));
                    return CLI_EXIT_FAILURE;
                }
            }
        }
    }
    if (sk2_matcher_members(m) == 0) {
        fprintf(stderr, "sk2 stream: the servers have no devices to match\n");
        return CLI_EXIT_FAILURE;
    }
    return CLI_CONTINUE;
}

/* Receives and matches until the time or frameset goal; the spreads go into spreads. */
static int s_measure(const fs_options_t *opts, fs_server_t *servers, sk2_matcher_t *m,
                     int64_t *spreads, size_t *spread_count)
{
    int64_t end_us = sk2_clock_mono_us() + (int64_t)(opts->seconds * 1e6);
    for (;;) {
        int rc = s_drain(servers, opts->server_count, m);
        if (rc != CLI_CONTINUE)
            return rc;
        sk2_frameset_t *set;
        while (sk2_matcher_next(m, &set) == 0) {
            if (*spread_count < FS_SPREADS_MAX)
                spreads[(*spread_count)++] = sk2_frameset_spread_us(set);
            sk2_frameset_destroy(&set);
        }
        if (opts->framesets > 0 && sk2_matcher_matched(m) >= (uint64_t)opts->framesets)
            return CLI_CONTINUE;
        if (cli_is_interrupted())
            return CLI_CONTINUE;
        int64_t now_us = sk2_clock_mono_us();
        if (now_us >= end_us)
            return CLI_CONTINUE;
        s_wait(servers, opts->server_count, cli_wait_ms(now_us, end_us, 100));
    }
}

int stream_frameset(int argc, char **argv)
{
    fs_options_t opts = {
        .is_clock = true, .seconds = 5.0, .timeout_ms = SK2_CLIENT_RESPONSE_TIMEOUT_MS};
    int rc = s_parse(argc, argv, &opts);
    if (rc != CLI_CONTINUE)
        return rc;
    fs_server_t servers[FS_SERVERS_MAX] = {0};
    sk2_matcher_t *matcher = sk2_matcher_new();
    int64_t *spreads = malloc(FS_SPREADS_MAX * sizeof *spreads);
    size_t spread_count = 0;
    if (!matcher || !spreads) {
        fprintf(stderr, "sk2 stream: out of memory\n");
        rc = CLI_EXIT_FAILURE;
        goto done;
    }
    for (size_t i = 0; i < opts.server_count; i++) {
        rc = cli_client_connect(s_verb, opts.servers[i], opts.timeout_ms, servers[i].endpoint,
                                &servers[i].client);
        if (rc != CLI_CONTINUE)
            goto done;
    }
    rc = s_wait_ready(&opts, servers);
    if (rc == CLI_CONTINUE)
        rc = s_add_members(&opts, servers, matcher);
    if (rc == CLI_CONTINUE && opts.queue > 0)
        sk2_matcher_set_queue_frames(matcher, opts.queue);
    if (rc == CLI_CONTINUE && opts.tolerance_ms > 0)
        sk2_matcher_set_tolerance_us(matcher, (int64_t)(opts.tolerance_ms * 1e3 + 0.5));
    sk2_matcher_set_clock_mapping(matcher, opts.is_clock);
    if (rc != CLI_CONTINUE)
        goto done;
    int64_t start_us = sk2_clock_mono_us();
    rc = s_measure(&opts, servers, matcher, spreads, &spread_count);
    if (rc != CLI_CONTINUE)
        goto done;
    s_report(&opts, servers, matcher, spreads, spread_count,
             (double)(sk2_clock_mono_us() - start_us) / 1e6);
    rc = sk2_matcher_matched(matcher) > 0 ? CLI_EXIT_OK : CLI_EXIT_FAILURE;
done:
    sk2_matcher_destroy(&matcher);
    for (size_t i = 0; i < opts.server_count; i++)
        sk2_client_destroy(&servers[i].client);
    free(spreads);
    return rc;
}
