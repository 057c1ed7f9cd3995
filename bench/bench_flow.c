/* Client flow control, measured: how long a pause and a resume take to act, and what a queue
 * bound costs in memory while the client looks away. One process holds a server with one mock
 * camera and the clients, on tcp://127.0.0.1.
 *
 *   resume -> first frame   sk2_client_resume until the next FRAME event is handed out
 *   pause -> server idle    sk2_client_pause until the server's stats (asked by another client
 *                           every millisecond) show depth/rvl with no subscriber
 *   memory                  the process's resident set before and while a client with a queue
 *                           of N frames looks away for 2 s and then reads once
 *
 * Usage: bench_flow [FPS] [CYCLES]   (default 30 fps, 20 cycles; FPS 0: as fast as it can) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "sk2/sk2.h"

static int s_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, s_compare);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static sk2_event_t *s_wait(sk2_client_t *client, sk2_event_type_t type, int timeout_ms)
{
    int64_t deadline = sk2_clock_mono_us() + timeout_ms * 1000LL;
    while (sk2_clock_mono_us() < deadline) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 10) != 0)
            continue;
        if (sk2_event_type(event) == type)
            return event;
        sk2_event_destroy(&event);
    }
    return NULL;
}

static sk2_client_t *s_client(const char *endpoint)
{
    sk2_client_t *client = sk2_client_new();
    if (sk2_client_connect(client, endpoint) != 0) {
        fprintf(stderr, "bench_flow: cannot connect\n");
        exit(1);
    }
    sk2_event_t *event = s_wait(client, SK2_EVENT_DEVICE_ADDED, 30000);
    if (!event) {
        fprintf(stderr, "bench_flow: no device\n");
        exit(1);
    }
    sk2_event_destroy(&event);
    return client;
}

/* The subscribers of depth/rvl in the server's stats, -1 if unknown. */
static long s_subscribers(sk2_client_t *observer)
{
    if (sk2_client_request_stats(observer) != 0)
        return -1;
    sk2_event_t *event = s_wait(observer, SK2_EVENT_STATS, 10000);
    long count = -1;
    json_t *stats = event ? json_loads(sk2_event_json(event), 0, NULL) : NULL;
    json_t *streams =
        json_object_get(json_array_get(json_object_get(stats, "devices"), 0), "streams");
    size_t i, k;
    json_t *stream, *encoding;
    json_array_foreach(streams, i, stream)
    {
        json_array_foreach(json_object_get(stream, "encodings"), k, encoding)
        {
            if (strcmp(json_string_value(json_object_get(encoding, "codec")), "rvl") == 0)
                count = (long)json_integer_value(json_object_get(encoding, "subscribers"));
        }
    }
    json_decref(stats);
    sk2_event_destroy(&event);
    return count;
}

static long s_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

int main(int argc, char **argv)
{
    double fps = argc > 1 ? atof(argv[1]) : 30;
    int cycles = argc > 2 ? atoi(argv[2]) : 20;
    if (cycles < 1 || cycles > 1000)
        cycles = 20;
    sk2_server_t *server = sk2_server_new("bench flow");
    sk2_device_t *device = sk2_device_new("mock");
    if (!server || !device || sk2_server_bind(server, "127.0.0.1", 0) != 0 ||
        sk2_device_set_id(device, "cam") != 0 || sk2_device_set_fps(device, fps) != 0 ||
        sk2_server_add_device(server, &device) != 0) {
        fprintf(stderr, "bench_flow: cannot start the server\n");
        return 1;
    }
    const char *endpoint = sk2_server_endpoint(server);
    sk2_client_t *client = s_client(endpoint), *observer = s_client(endpoint);
    sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl");
    sk2_event_t *event = s_wait(client, SK2_EVENT_FRAME, 30000);
    size_t wire_bytes = event ? sk2_event_wire_bytes(event) : 0;
    sk2_event_destroy(&event);

    double *resume_ms = calloc((size_t)cycles, sizeof *resume_ms);
    double *pause_ms = calloc((size_t)cycles, sizeof *pause_ms);
    int done = 0;
    for (int i = 0; i < cycles; i++) {
        int64_t start = sk2_clock_mono_us();
        sk2_client_pause(client, NULL, 0);
        while (s_subscribers(observer) != 0 && sk2_clock_mono_us() - start < 10000000)
            usleep(1000);
        pause_ms[i] = (double)(sk2_clock_mono_us() - start) / 1000.0;
        start = sk2_clock_mono_us();
        sk2_client_resume(client, NULL, 0);
        event = s_wait(client, SK2_EVENT_FRAME, 10000);
        if (!event)
            break;
        resume_ms[i] = (double)(sk2_clock_mono_us() - start) / 1000.0;
        sk2_event_destroy(&event);
        done++;
    }
    printf("bench_flow: mock depth 512x424 in rvl (%zu bytes a frame), %s fps, %d cycles\n\n",
           wire_bytes, fps > 0 ? (argc > 1 ? argv[1] : "30") : "max", done);
    printf("| measure | median ms | max ms |\n| --- | --- | --- |\n");
    if (done > 0) {
        double pause_median = s_median(pause_ms, done), resume_median = s_median(resume_ms, done);
        printf("| pause -> server stops encoding | %.1f | %.1f |\n", pause_median,
               pause_ms[done - 1]);
        printf("| resume -> first frame handed out | %.1f | %.1f |\n", resume_median,
               resume_ms[done - 1]);
    }
    free(resume_ms);
    free(pause_ms);
    sk2_client_destroy(&client);

    printf("\n| queue N | frames dropped | frames queued after the first read | RSS before, "
           "KiB | RSS after, KiB | N x frame, KiB |\n| --- | --- | --- | --- | --- | --- |\n");
    static const unsigned sizes[] = {1, 8, 64};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        client = s_client(endpoint);
        sk2_client_set_queue_frames(client, sizes[s]);
        sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl");
        for (int i = 0; i < 10; i++) {
            event = s_wait(client, SK2_EVENT_FRAME, 10000);
            sk2_event_destroy(&event);
        }
        long before = s_rss_kb();
        sleep(2);
        sk2_client_recv(client, &event, 10000);
        sk2_event_destroy(&event);
        long after = s_rss_kb();
        printf("| %u | %llu | %llu | %ld | %ld | %zu |\n", sizes[s],
               (unsigned long long)sk2_client_frames_dropped(client),
               (unsigned long long)sk2_client_frames_queued(client), before, after,
               sizes[s] * wire_bytes / 1024);
        sk2_client_destroy(&client);
    }
    sk2_client_destroy(&observer);
    sk2_server_destroy(&server);
    return 0;
}
