/* bench_load: many subscribers on loopback to one `sk2 serve --mock 1` process.
 *
 * The server is the real command (a separate process, so that its CPU time and resident
 * memory can be read from /proc/PID/stat and /proc/PID/status alone). The subscribers are bare
 * ZeroMQ SUB sockets in this process, one thread, polled together: they count messages and
 * read each frame header's sequence number and capture time without decoding pixels, so the
 * figures are the server's delivery, not this process's decoding speed (200 clients decoding
 * 30 fps each would need far more cores than the server does). The control requests (`who`
 * for the endpoints, `stats` for the frames the server published) go through sk2's client.
 *
 * One run per transport: depth on the streams endpoint in sk2d and in rvl, and depth on the
 * version-1 endpoint (depth12, which carries no header, so no latency or sequence there).
 * Each run connects every subscriber, waits until each has a frame, then measures for
 * --seconds. Bounded: subscribers at most 1000, every wait has a deadline, the server is
 * stopped with SIGINT (then SIGKILL) at the end. Prints a Markdown table of medians. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "sk2/sk2.h"

#ifndef SK2_TOOL_PATH
#define SK2_TOOL_PATH "sk2"
#endif

enum { S_MAX_SUBS = 1000, S_MAX_SAMPLES = 4096 };

typedef struct {
    void *sock;        /* SUB */
    uint64_t count;    /* messages in the measuring window */
    uint64_t gaps;     /* frames missed (sequence jumps), streams endpoint only */
    uint64_t last_seq; /* last sequence number, 0 = none yet */
    bool has_frame;    /* received anything at all */
    int64_t first_us;  /* first and last receive time in the window, wall clock */
    int64_t last_us;
    int32_t *latencies_us; /* capture-to-receive, S_MAX_SAMPLES at most */
    size_t samples;
} s_sub_t;

typedef struct {
    const char *name;  /* row label */
    const char *codec; /* "sk2d", "rvl", or "depth12" for the version-1 endpoint */
} s_run_t;

static int64_t s_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double s_mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int s_cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *values, size_t n)
{
    if (n == 0)
        return 0;
    qsort(values, n, sizeof *values, s_cmp_double);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

/* utime + stime of a process in seconds, or -1. */
static double s_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long utime = 0, stime = 0;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

static long s_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* Starts `sk2 serve --mock 1 --fps FPS` with an endpoint file; returns its pid or -1. */
static pid_t s_start_server(const char *sk2, int fps, const char *endpoint_file)
{
    char fps_text[16];
    snprintf(fps_text, sizeof fps_text, "%d", fps);
    pid_t pid = fork();
    if (pid == 0) {
        /* Its start-up lines and summary would break the table. */
        if (!freopen("/dev/null", "w", stdout) || !freopen("/dev/null", "w", stderr))
            _exit(127);
        execl(sk2, sk2, "serve", "--mock", "1", "--fps", fps_text, "--bind", "127.0.0.1",
              "--no-status", "--no-announce", "-q", "--endpoint-file", endpoint_file, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void s_stop_server(pid_t pid)
{
    kill(pid, SIGINT);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, NULL, WNOHANG) == pid)
            return;
        usleep(50000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

/* Waits up to timeout_ms for an event of `type` on the control client. */
static sk2_event_t *s_wait(sk2_client_t *client, sk2_event_type_t type, int timeout_ms)
{
    double deadline = s_mono_s() + timeout_ms / 1000.0;
    while (s_mono_s() < deadline) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 100) == 0) {
            if (sk2_event_type(event) == type)
                return event;
            sk2_event_destroy(&event);
        }
    }
    return NULL;
}

/* Frames the server has encoded (= published) in `codec` for the first device's depth. */
static long long s_encoded(sk2_client_t *client, const char *codec)
{
    if (sk2_client_request_stats(client) != 0)
        return -1;
    sk2_event_t *event = s_wait(client, SK2_EVENT_STATS, 10000);
    if (!event)
        return -1;
    long long encoded = 0;
    json_t *root = json_loads(sk2_event_json(event), 0, NULL);
    json_t *streams =
        json_object_get(json_array_get(json_object_get(root, "devices"), 0), "streams");
    size_t i, j;
    json_t *stream, *enc;
    json_array_foreach(streams, i, stream)
    {
        const char *kind = json_string_value(json_object_get(stream, "kind"));
        if (!kind || strcmp(kind, "depth") != 0)
            continue;
        json_array_foreach(json_object_get(stream, "encodings"), j, enc)
        {
            const char *name = json_string_value(json_object_get(enc, "codec"));
            if (name && strcmp(name, codec) == 0)
                encoded = json_integer_value(json_object_get(enc, "encoded"));
        }
    }
    json_decref(root);
    sk2_event_destroy(&event);
    return encoded;
}

/* Reads every message waiting on one subscriber; is_counting false only marks has_frame. */
static void s_drain(s_sub_t *sub, bool is_v1, bool is_counting)
{
    zmq_msg_t part;
    zmq_msg_init(&part);
    for (;;) {
        uint8_t header[64] = {0};
        size_t parts = 0;
        bool has_header = false;
        int more = 1;
        while (more) {
            if (zmq_msg_recv(&part, sub->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&part);
                return;
            }
            if (parts == 1 && zmq_msg_size(&part) >= 64) {
                memcpy(header, zmq_msg_data(&part), 64);
                has_header = true;
            }
            parts++;
            more = zmq_msg_more(&part);
        }
        int64_t now = s_wall_us();
        sub->has_frame = true;
        if (!is_counting)
            continue;
        sub->count++;
        if (!sub->first_us)
            sub->first_us = now;
        sub->last_us = now;
        if (!is_v1 && has_header) {
            uint64_t seq;
            int64_t capture_us;
            memcpy(&seq, header + 24, 8);
            memcpy(&capture_us, header + 40, 8);
            if (sub->last_seq && seq > sub->last_seq + 1)
                sub->gaps += seq - sub->last_seq - 1;
            sub->last_seq = seq;
            if (sub->samples < S_MAX_SAMPLES)
                sub->latencies_us[sub->samples++] = (int32_t)(now - capture_us);
        }
    }
}

static void s_pump(s_sub_t *subs, zmq_pollitem_t *items, int n, bool is_v1, bool is_counting,
                   int timeout_ms)
{
    if (zmq_poll(items, n, timeout_ms) <= 0)
        return;
    for (int i = 0; i < n; i++)
        if (items[i].revents & ZMQ_POLLIN)
            s_drain(&subs[i], is_v1, is_counting);
}

static void s_usage(void)
{
    fprintf(stderr, "usage: bench_load [--clients N] [--seconds S] [--fps F] [--sk2 PATH]\n"
                    "                  [--only sk2d|rvl|depth12]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int clients = 200, fps = 30;
    double seconds = 20;
    const char *sk2 = SK2_TOOL_PATH, *only = NULL;
    for (int i = 1; i < argc; i += 2) {
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        if (!value)
            s_usage();
        if (strcmp(argv[i], "--clients") == 0)
            clients = atoi(value);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(value);
        else if (strcmp(argv[i], "--fps") == 0)
            fps = atoi(value);
        else if (strcmp(argv[i], "--sk2") == 0)
            sk2 = value;
        else if (strcmp(argv[i], "--only") == 0)
            only = value;
        else
            s_usage();
    }
    if (clients < 1 || clients > S_MAX_SUBS || seconds < 1 || seconds > 600 || fps < 1 ||
        fps > 1000)
        s_usage();

    const s_run_t runs[] = {
        {"streams depth/sk2d", "sk2d"},
        {"streams depth/rvl", "rvl"},
        {"v1 depth (depth12)", "depth12"},
    };
    char cpu_model[128] = "unknown";
    FILE *cpuinfo = fopen("/proc/cpuinfo", "r");
    if (cpuinfo) {
        char line[256];
        while (fgets(line, sizeof line, cpuinfo))
            if (sscanf(line, "model name : %127[^\n]", cpu_model) == 1)
                break;
        fclose(cpuinfo);
    }
    printf("# bench_load: %d subscribers, one mock device at %d fps, %.0f s per run\n\n", clients,
           fps, seconds);
    printf("Command: `");
    for (int i = 0; i < argc; i++)
        printf("%s%s", i ? " " : "", argv[i]);
    printf("`; %s, %ld cores; server: `%s serve --mock 1 --fps %d` (separate process)\n\n",
           cpu_model, sysconf(_SC_NPROCESSORS_ONLN), sk2, fps);
    printf("| run | subscribers | published fps | delivered fps p50 (min) | delivered / published "
           "p50 (min) | latency p50 / p99 ms | gaps | server CPU %% | server RSS MB (idle -> "
           "loaded) | subscribers' CPU %% |\n");
    printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    fflush(stdout);

    /* Two I/O threads: one would have to copy every subscriber's bytes alone. */
    void *ctx = zmq_ctx_new();
    zmq_ctx_set(ctx, ZMQ_MAX_SOCKETS, S_MAX_SUBS + 64);
    zmq_ctx_set(ctx, ZMQ_IO_THREADS, 2);
    s_sub_t *subs = calloc((size_t)clients, sizeof *subs);
    zmq_pollitem_t *items = calloc((size_t)clients, sizeof *items);
    int32_t *all_lat = malloc(sizeof(int32_t) * S_MAX_SAMPLES * (size_t)clients);
    double *per_sub = malloc(sizeof(double) * (size_t)clients);
    double *shares = malloc(sizeof(double) * (size_t)clients);
    if (!ctx || !subs || !items || !all_lat || !per_sub || !shares)
        return 1;
    for (int i = 0; i < clients; i++)
        subs[i].latencies_us = malloc(sizeof(int32_t) * S_MAX_SAMPLES);
    int status = 0;

    for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
        const s_run_t *run = &runs[r];
        if (only && strcmp(only, run->codec) != 0)
            continue;
        bool is_v1 = strcmp(run->codec, "depth12") == 0;
        char endpoint_file[64];
        snprintf(endpoint_file, sizeof endpoint_file, "/tmp/bench_load-%d-%zu", (int)getpid(), r);
        pid_t server = s_start_server(sk2, fps, endpoint_file);
        char endpoint[256] = "";
        for (int i = 0; i < 200 && !endpoint[0]; i++) {
            usleep(50000);
            FILE *f = fopen(endpoint_file, "r");
            if (f) {
                if (!fgets(endpoint, sizeof endpoint, f))
                    endpoint[0] = '\0';
                endpoint[strcspn(endpoint, "\r\n")] = '\0';
                fclose(f);
            }
        }
        sk2_client_t *control = sk2_client_new();
        sk2_event_t *event = NULL;
        if (!endpoint[0] || sk2_client_connect(control, endpoint) != 0 ||
            !(event = s_wait(control, SK2_EVENT_DEVICE_ADDED, 10000))) {
            fprintf(stderr, "bench_load: server %s did not come up\n", sk2);
            sk2_client_destroy(&control);
            s_stop_server(server);
            status = 1;
            break;
        }
        char id[SK2_DEVICE_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", sk2_event_device_id(event));
        sk2_event_destroy(&event);
        const char *sub_ep = sk2_client_device_endpoint(control, id, is_v1 ? "depth" : "streams");
        char topic[32];
        snprintf(topic, sizeof topic, "%s", is_v1 ? "" : "depth/");
        if (!is_v1)
            snprintf(topic, sizeof topic, "depth/%s/", run->codec);
        long rss_idle = s_rss_kb(server);

        for (int i = 0; i < clients; i++) {
            s_sub_t *sub = &subs[i];
            int32_t *lat = sub->latencies_us;
            memset(sub, 0, sizeof *sub);
            sub->latencies_us = lat;
            sub->sock = zmq_socket(ctx, ZMQ_SUB);
            int zero = 0;
            zmq_setsockopt(sub->sock, ZMQ_LINGER, &zero, sizeof zero);
            zmq_setsockopt(sub->sock, ZMQ_SUBSCRIBE, topic, strlen(topic));
            zmq_connect(sub->sock, sub_ep);
            items[i] = (zmq_pollitem_t){.socket = sub->sock, .events = ZMQ_POLLIN};
        }
        /* Warm-up: every subscriber has a frame (at most 20 s), then one more second. */
        double deadline = s_mono_s() + 20;
        int ready = 0;
        while (s_mono_s() < deadline && ready < clients) {
            s_pump(subs, items, clients, is_v1, false, 100);
            ready = 0;
            for (int i = 0; i < clients; i++)
                ready += subs[i].has_frame;
        }
        double warm_end = s_mono_s() + 1;
        while (s_mono_s() < warm_end)
            s_pump(subs, items, clients, is_v1, false, 50);

        long long published0 = s_encoded(control, run->codec);
        double cpu0 = s_cpu_s(server), self0 = s_cpu_s(getpid()), t0 = s_mono_s();
        while (s_mono_s() - t0 < seconds)
            s_pump(subs, items, clients, is_v1, true, 50);
        double cpu1 = s_cpu_s(server), self1 = s_cpu_s(getpid()), t1 = s_mono_s();
        long long published = s_encoded(control, run->codec) - published0;
        long rss_loaded = s_rss_kb(server);

        size_t lat_n = 0;
        uint64_t gaps = 0;
        for (int i = 0; i < clients; i++) {
            s_sub_t *sub = &subs[i];
            double span = (double)(sub->last_us - sub->first_us) / 1e6;
            per_sub[i] = sub->count > 1 && span > 0 ? (double)(sub->count - 1) / span : 0;
            shares[i] = published > 0 ? (double)sub->count / (double)published : 0;
            memcpy(all_lat + lat_n, sub->latencies_us, sub->samples * sizeof(int32_t));
            lat_n += sub->samples;
            gaps += sub->gaps;
            zmq_close(sub->sock);
        }
        double min_fps = per_sub[0], min_share = shares[0];
        for (int i = 1; i < clients; i++) {
            min_fps = per_sub[i] < min_fps ? per_sub[i] : min_fps;
            min_share = shares[i] < min_share ? shares[i] : min_share;
        }
        double fps_p50 = s_median(per_sub, (size_t)clients);
        double share_p50 = s_median(shares, (size_t)clients);
        char latency[64] = "n/a (no header)", gap_text[32] = "n/a";
        if (lat_n) {
            qsort(all_lat, lat_n, sizeof *all_lat, s_cmp_i32);
            snprintf(latency, sizeof latency, "%.2f / %.2f", all_lat[lat_n / 2] / 1000.0,
                     all_lat[(size_t)((double)(lat_n - 1) * 0.99)] / 1000.0);
        }
        if (!is_v1)
            snprintf(gap_text, sizeof gap_text, "%" PRIu64, gaps);
        printf("| %s | %d (%d got frames) | %.1f | %.1f (%.1f) | %.1f%% (%.1f%%) | %s | %s | "
               "%.0f | %.1f -> %.1f | %.0f |\n",
               run->name, clients, ready, (double)published / (t1 - t0), fps_p50, min_fps,
               100 * share_p50, 100 * min_share, latency, gap_text, 100 * (cpu1 - cpu0) / (t1 - t0),
               rss_idle / 1024.0, rss_loaded / 1024.0, 100 * (self1 - self0) / (t1 - t0));
        fflush(stdout);
        sk2_client_destroy(&control);
        s_stop_server(server);
        unlink(endpoint_file);
    }
    printf("\nDelivered fps: per subscriber, (messages - 1) / (last - first receive) in the "
           "window; delivered / published: its messages over the frames the server encoded in "
           "that codec during the window (`stats`); latency: receive wall clock minus the "
           "header's capture time, over every frame of every subscriber (up to %d each); server "
           "CPU: utime + stime of the `sk2 serve` process over the window (100%% = one core); "
           "subscribers' CPU: the same for this process, which receives for all of them.\n",
           S_MAX_SAMPLES);
    for (int i = 0; i < clients; i++)
        free(subs[i].latencies_us);
    free(subs);
    free(items);
    free(all_lat);
    free(per_sub);
    free(shares);
    zmq_ctx_term(ctx);
    return status;
}
