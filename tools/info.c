/* `sk2 info`: asks a server to describe itself (`who`) and prints the answer, either as the
 * server's own `me` JSON or as a listing for people, with the client's estimate of the
 * server's clock (from the burst of clock exchanges that follows `me` on an sk2 server).
 * Everything printed from the server is stripped of control characters first, since it comes
 * from the network. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli.h"
#include "sk2/sk2.h"

static const char *const s_verb = "info";

typedef struct {
    cli_server_args_t server; /* SERVER, --timeout (wait for `me`), --browse-timeout */
    bool is_json;             /* print the `me` document as it came */
} info_options_t;

enum { OPT_JSON = 256 };

static void s_print_usage(void)
{
    printf("usage: sk2 info [SERVER] [--json] [--timeout MS] [--browse-timeout S]\n"
           "                [--keys DIR --server-key KEY] [-v|-q]\n"
           "\n"
           "Prints the name, endpoints and devices of a server.\n"
           "\n" CLI_TARGET_HELP
           "  --json          print the server's `me` document (JSON, one line), with a\n"
           "                  \"clock\" object added: this client's estimate of the\n"
           "                  server's clock (offset_ms = server clock - ours, rtt_ms,\n"
           "                  error_ms, drift_ppm, samples, synced), null if it has none\n"
           "  --timeout MS    wait at most MS milliseconds for the answer, %d..%d\n"
           "                  (default %d)\n"
           "\n"
           "Exit status: 0 success, 1 the server answered with an error or discovery is\n"
           "unavailable, 2 usage (or several servers and none named), 3 no answer within\n"
           "the timeout (or no server found).\n",
           CLI_TIMEOUT_MIN_MS, CLI_TIMEOUT_MAX_MS, SK2_CLIENT_RESPONSE_TIMEOUT_MS);
}

static int s_apply_option(void *options, int opt, const char *arg)
{
    info_options_t *opts = options;
    switch (opt) {
    case OPT_JSON:
        opts->is_json = true;
        break;
    default:
        return cli_apply_server_option(s_verb, &opts->server, opt, arg);
    }
    return CLI_CONTINUE;
}

static int s_parse(int argc, char **argv, info_options_t *opts)
{
    static const char optstring[] = ":hvq";
    static const struct option options[] = {
        {"json", no_argument, NULL, OPT_JSON},
        CLI_SERVER_LONG_OPTIONS,
    };
    const cli_parser_t parser = {s_verb, optstring, options, s_print_usage, s_apply_option};
    return cli_parse_server_verb(&parser, argc, argv, opts, &opts->server);
}

/* A rigid transform on two lines: the rotation's rows, then the translation. Values that
 * print as zero are zero (a quaternion leaves -1e-17 where the matrix has 0). */
static void s_print_rigid(const char *what, const double rotation[9], const double translation[3])
{
    double r[9], t[3];
    for (int i = 0; i < 9; i++)
        r[i] = fabs(rotation[i]) < 5e-7 ? 0.0 : rotation[i];
    for (int i = 0; i < 3; i++)
        t[i] = fabs(translation[i]) < 5e-5 ? 0.0 : translation[i];
    printf("      %-8s R [%.6f %.6f %.6f; %.6f %.6f %.6f; %.6f %.6f %.6f]\n", what, r[0], r[1],
           r[2], r[3], r[4], r[5], r[6], r[7], r[8]);
    printf("               t [%.4f %.4f %.4f] m\n", t[0], t[1], t[2]);
}

/* sk2's additions to a device record, when the server has them (a version-1 server has none):
 * serial, streams endpoint, and per stream its size, format, rate, codecs and intrinsics. */
static void s_print_streams(sk2_client_t *client, const char *device_id)
{
    static const sk2_stream_kind_t kinds[] = {SK2_STREAM_DEPTH, SK2_STREAM_IR, SK2_STREAM_COLOR};
    char safe[CLI_ENDPOINT_MAX];
    const char *serial = sk2_client_device_serial(client, device_id);
    const char *streams = sk2_client_device_endpoint(client, device_id, "streams");
    if (serial)
        printf("      serial   %s\n", cli_safe(serial, safe, sizeof safe));
    const char *label = sk2_client_device_label(client, device_id);
    const char *location = sk2_client_device_location(client, device_id);
    if (label)
        printf("      label    %s\n", cli_safe(label, safe, sizeof safe));
    if (location)
        printf("      location %s\n", cli_safe(location, safe, sizeof safe));
    sk2_pose_t pose;
    sk2_extrinsics_t extrinsics;
    if (sk2_client_device_pose(client, device_id, &pose) == 0)
        s_print_rigid("pose", pose.rotation, pose.translation);
    if (sk2_client_device_depth_to_color(client, device_id, &extrinsics) == 0)
        s_print_rigid("to color", extrinsics.rotation, extrinsics.translation);
    if (streams)
        printf("      streams  %s\n", cli_safe(streams, safe, sizeof safe));
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        sk2_stream_info_t info;
        if (sk2_client_stream_info(client, device_id, kinds[k], &info) != 0)
            continue;
        const char *codecs = sk2_client_stream_codecs(client, device_id, kinds[k]);
        printf("      %-6s %ux%u %s %.4g fps, codecs %s\n", sk2_stream_kind_name(kinds[k]),
               (unsigned)info.width, (unsigned)info.height, sk2_pixel_format_name(info.format),
               info.fps, codecs ? cli_safe(codecs, safe, sizeof safe) : "-");
        if (info.has_intrinsics)
            printf("             fx %.2f fy %.2f cx %.2f cy %.2f (pixels)\n", info.intrinsics.fx,
                   info.intrinsics.fy, info.intrinsics.cx, info.intrinsics.cy);
    }
}

static void s_print_listing(sk2_client_t *client, const char *endpoint)
{
    char name[SK2_SERVER_NAME_MAX * 4 + 1];
    char id[SK2_DEVICE_ID_MAX * 4 + 1];
    char depth[CLI_ENDPOINT_MAX];
    size_t count = sk2_client_device_count(client);

    printf("server    \"%s\"\n", cli_safe(sk2_client_server_name(client), name, sizeof name));
    printf("protocol  %d\n", SK2_PROTOCOL_VERSION);
    /* What the server advertises can differ from what we dialled (a name, another
     * interface); show both when they do. */
    const char *advertised = sk2_client_server_endpoint(client, "control");
    char shown[CLI_ENDPOINT_MAX];
    printf("control   %s\n", endpoint);
    if (sk2_client_server_key(client))
        printf("security  CURVE, server key %s\n", sk2_client_server_key(client));
    if (advertised && strcmp(advertised, endpoint) != 0)
        printf("          (advertised as %s)\n", cli_safe(advertised, shown, sizeof shown));
    printf("devices   %zu\n", count);
    for (size_t i = 0; i < count; i++) {
        const char *device_id = sk2_client_device_id(client, i);
        if (!device_id)
            continue;
        const char *endpoint_depth = sk2_client_device_endpoint(client, device_id, "depth");
        printf("  %s  depth %s\n", cli_safe(device_id, id, sizeof id),
               endpoint_depth ? cli_safe(endpoint_depth, depth, sizeof depth) : "-");
        s_print_streams(client, device_id);
    }
}

/* The estimate as `info --json` shows it, or null when there is none. */
static json_t *s_clock_json(const sk2_clock_estimate_t *clock)
{
    if (!clock->is_valid)
        return json_null();
    return json_pack("{s:f, s:f, s:f, s:o, s:I, s:o}", "offset_ms",
                     (double)clock->offset_us / 1000.0, "rtt_ms", (double)clock->rtt_us / 1000.0,
                     "error_ms", (double)clock->error_us / 1000.0, "drift_ppm",
                     clock->has_drift ? json_real(clock->drift_ppm) : json_null(), "samples",
                     (json_int_t)clock->samples, "synced",
                     clock->server_synced < 0 ? json_null() : json_boolean(clock->server_synced));
}

static void s_print_clock(const sk2_clock_estimate_t *clock)
{
    if (!clock->is_supported) {
        printf("clock     not estimated (the server answers no clock exchanges)\n");
        return;
    }
    if (!clock->is_valid) {
        printf("clock     no estimate yet\n");
        return;
    }
    char drift[32] = "not yet measured";
    if (clock->has_drift)
        snprintf(drift, sizeof drift, "%+.2f ppm", clock->drift_ppm);
    printf("clock     offset %+.3f ms +- %.3f ms (server - here), rtt %.3f ms, drift %s, "
           "%" PRIu64 " samples, server clock %s\n",
           (double)clock->offset_us / 1000.0, (double)clock->error_us / 1000.0,
           (double)clock->rtt_us / 1000.0, drift, clock->samples,
           clock->server_synced < 0 ? "discipline unknown"
           : clock->server_synced   ? "synchronised (adjtimex)"
                                    : "not synchronised (adjtimex)");
}

static void s_print(sk2_client_t *client, const char *endpoint, bool is_json)
{
    sk2_clock_estimate_t clock;
    (void)sk2_client_clock(client, &clock);
    if (is_json) {
        const char *me = sk2_client_me_json(client);
        json_t *document = me ? json_loads(me, 0, NULL) : NULL;
        if (json_is_object(document) &&
            json_object_set_new(document, "clock", s_clock_json(&clock)) == 0) {
            char *text = json_dumps(document, JSON_COMPACT);
            printf("%s\n", text ? text : "null");
            free(text);
        } else {
            printf("%s\n", me ? me : "null");
        }
        json_decref(document);
    } else {
        s_print_listing(client, endpoint);
        s_print_clock(&clock);
    }
}

/* Whether the estimate is as good as the first burst makes it: the burst is over, or none
 * will come (a server that answers no clock exchanges). */
static bool s_clock_settled(sk2_client_t *client)
{
    sk2_clock_estimate_t clock;
    int rc = sk2_client_clock(client, &clock);
    return rc == SK2_EUNSUPPORTED || (rc == 0 && !clock.is_settling);
}

/* Waits until the first `me` arrives and the first burst of clock exchanges is over (or the
 * timeout runs out after `me`: printed with what the estimate has then), then prints; returns
 * the exit code. */
static int s_run(sk2_client_t *client, const char *endpoint, const info_options_t *opts)
{
    const int64_t deadline_us = sk2_clock_mono_us() + (int64_t)opts->server.timeout_ms * 1000;
    char reason[256];
    bool has_me = false;
    for (;;) {
        if (has_me && (s_clock_settled(client) || sk2_clock_mono_us() >= deadline_us)) {
            s_print(client, endpoint, opts->is_json);
            return CLI_EXIT_OK;
        }
        if (cli_is_interrupted()) {
            fprintf(stderr, "sk2 info: interrupted before an answer came\n");
            return CLI_EXIT_FAILURE;
        }
        int64_t now_us = sk2_clock_mono_us();
        if (now_us >= deadline_us)
            return cli_report_lost(s_verb, endpoint, NULL, opts->server.timeout_ms);
        sk2_event_t *event = NULL;
        int rc = sk2_client_recv(client, &event, cli_wait_ms(now_us, deadline_us, 250));
        if (rc == SK2_ETIMEDOUT || rc == SK2_EINTR)
            continue;
        if (rc == SK2_ESTATE)
            return cli_report_lost(s_verb, endpoint, NULL, opts->server.timeout_ms);
        if (rc != 0) {
            fprintf(stderr, "sk2 info: %s\n", sk2_strerror(rc));
            return CLI_EXIT_FAILURE;
        }
        switch (sk2_event_type(event)) {
        case SK2_EVENT_CONNECTED:
            has_me = true;
            rc = CLI_CONTINUE;
            break;
        case SK2_EVENT_DISCONNECTED:
            rc = cli_report_lost(s_verb, endpoint, event, opts->server.timeout_ms);
            break;
        case SK2_EVENT_ERROR:
            fprintf(stderr, "sk2 info: %s answered with an error: %s\n", endpoint,
                    cli_event_reason(event, reason, sizeof reason));
            rc = CLI_EXIT_FAILURE;
            break;
        default:
            rc = CLI_CONTINUE;
            break;
        }
        sk2_event_destroy(&event);
        if (rc != CLI_CONTINUE)
            return rc;
    }
}

int cli_info(int argc, char **argv)
{
    info_options_t opts = {.server = CLI_SERVER_ARGS_DEFAULT};
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
