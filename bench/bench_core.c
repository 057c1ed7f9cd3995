/* bench_core: how fast sk2's core parts are on this machine, printed as Markdown-friendly
 * tables (or JSON with --json). It measures and reports; it never passes or fails on a timing,
 * and exits non-zero only when a run could not be made.
 *
 * Three parts: the mock device alone; the depth12 codec alone, on one thread, on the mock
 * scene and on real Azure Kinect frames; and the whole path on loopback, from a server that
 * encodes and publishes a "stamp" device (stamp_device.c) to K clients that decode each frame
 * and read from its first pixels when it was captured.
 *
 * The server runs in a child process (server_child.c) so that wait4() tells what it cost
 * apart from the clients. The children are forked first thing in main, one per scenario,
 * while the process is single-threaded and has touched neither ZeroMQ nor sk2: libzmq and
 * CZMQ hold process-wide state (contexts, I/O threads) that fork must never copy, and a child
 * forked from a small process starts with a small RSS, so its ru_maxrss is the server's own. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_report.h"
#include "server_child.h"
#include "sk2/sk2.h"
#include "stamp_device.h"
#include "testutil.h"

#define S_DEFAULT_SECONDS 3.0
#define S_DEFAULT_REPS    21
#define S_QUICK_SECONDS   1.0
#define S_QUICK_REPS      5
#define S_REP_MIN_US      20000   /* a codec repetition loops until it has run this long */
#define S_READY_MS        10000   /* longest wait for every client's first frame */
#define S_RECV_TIMEOUT_MS 100     /* how often a client thread looks at the window */
#define S_MAX_CLIENTS     10      /* clients in the largest scenario */
#define S_DEPTH12_MASK    0x0FFFu /* the bits depth12 keeps */

static const bench_scenario_t s_scenarios[BENCH_SCENARIOS] = {
    {"30 fps, 1 client", 30, 1, {NULL, NULL}},
    {"30 fps, 10 clients", 30, S_MAX_CLIENTS, {NULL, NULL}},
    {"max, 1 client", 0, 1, {NULL, NULL}},
    {"max, 10 clients", 0, S_MAX_CLIENTS, {NULL, NULL}},
    {"30 fps, 1 client, sk2d", 30, 1, {"sk2d", "sk2d"}},
    {"30 fps, 10 clients, sk2d", 30, S_MAX_CLIENTS, {"sk2d", "sk2d"}},
    {"30 fps, 10 clients, sk2d + rvl", 30, S_MAX_CLIENTS, {"sk2d", "rvl"}},
};

/* ---- Mock device -------------------------------------------------------------------------- */

static void s_destroy_sink(void *arg, sk2_frame_t **frame_p)
{
    (void)arg;
    sk2_frame_destroy(frame_p);
}

/* Lets a measurement run for its length: what is measured, not a synchronisation. */
static void s_sleep_us(int64_t duration_us)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    int64_t ns = until.tv_nsec + duration_us % 1000000 * 1000;
    until.tv_sec += (time_t)(duration_us / 1000000 + ns / 1000000000);
    until.tv_nsec = (long)(ns % 1000000000);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
        ;
}

/* Frames per second of the mock backend at fps 0, per run. Returns 0 or an SK2_E* code. */
static int s_bench_mock(double runs[BENCH_MOCK_RUNS])
{
    sk2_device_t *device = sk2_device_new("mock");
    int rc = device ? sk2_device_set_fps(device, 0) : SK2_ENOMEM;
    for (int i = 0; rc == 0 && i < BENCH_MOCK_RUNS; i++) {
        rc = sk2_device_start(device, s_destroy_sink, NULL);
        if (rc != 0)
            break;
        uint64_t first = sk2_device_frames_produced(device);
        int64_t start_us = sk2_clock_mono_us();
        s_sleep_us(BENCH_MOCK_RUN_US);
        uint64_t last = sk2_device_frames_produced(device);
        int64_t end_us = sk2_clock_mono_us();
        sk2_device_stop(device);
        runs[i] = (double)(last - first) * 1e6 / (double)(end_us - start_us);
    }
    sk2_device_destroy(&device);
    return rc;
}

/* ---- Codec -------------------------------------------------------------------------------- */

/* What one frame set needs for coding: the input, its encodings, frames to decode into. */
typedef struct {
    const sk2_codec_t *codec;
    sk2_frame_t **frames;               /* input, borrowed */
    size_t n;                           /* frames */
    uint8_t *wire[BENCH_MAX_FRAMES];    /* encoded bytes */
    size_t wire_len[BENCH_MAX_FRAMES];  /* bytes used */
    size_t wire_cap[BENCH_MAX_FRAMES];  /* bytes allocated */
    sk2_frame_t *out[BENCH_MAX_FRAMES]; /* decoded */
} s_codec_run_t;

/* Codes the whole set once. Returns 0 or the first error. */
static int s_code_all(s_codec_run_t *run, bool is_encode)
{
    for (size_t i = 0; i < run->n; i++) {
        int rc = is_encode
                     ? sk2_codec_encode(run->codec, run->frames[i], run->wire[i], run->wire_cap[i],
                                        &run->wire_len[i])
                     : sk2_codec_decode(run->codec, run->wire[i], run->wire_len[i], run->out[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* One repetition: codes the set in a loop for at least S_REP_MIN_US, so that the clock's
 * resolution does not matter. Stores MB/s of raw input; returns 0 or an SK2_E* code. */
static int s_time_rep(s_codec_run_t *run, bool is_encode, uint64_t raw_bytes, double *mb_s)
{
    uint64_t rounds = 0;
    int64_t start_us = sk2_clock_mono_us();
    int64_t elapsed_us = 0;
    do {
        int rc = s_code_all(run, is_encode);
        if (rc != 0)
            return rc;
        rounds++;
        elapsed_us = sk2_clock_mono_us() - start_us;
    } while (elapsed_us < S_REP_MIN_US);
    *mb_s = (double)(rounds * raw_bytes) / (double)elapsed_us; /* bytes per us = MB/s */
    return 0;
}

/* Encode and decode speed of depth12 on frames of one size. Checks first that every frame
 * comes back with its low 12 bits intact: a broken codec must not be timed. Returns 0 or an
 * SK2_E* code. */
static int s_bench_codec(sk2_frame_t **frames, size_t n, int reps, bench_codec_t *out)
{
    s_codec_run_t run = {.codec = sk2_codec_find(SK2_CODEC_DEPTH12), .frames = frames, .n = n};
    double *encode = calloc((size_t)reps, sizeof *encode);
    double *decode = calloc((size_t)reps, sizeof *decode);
    int rc = run.codec && encode && decode ? 0 : SK2_ENOMEM;
    uint64_t high = 0;
    out->frames = n;
    out->width = sk2_frame_width(frames[0]);
    out->height = sk2_frame_height(frames[0]);
    size_t pixels = (size_t)out->width * out->height;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        run.wire_cap[i] =
            sk2_codec_encode_bound(run.codec, SK2_PIXEL_DEPTH_MM16, out->width, out->height);
        run.wire[i] = malloc(run.wire_cap[i]);
        run.out[i] = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, out->width, out->height);
        if (!run.wire[i] || !run.out[i])
            rc = SK2_ENOMEM;
    }
    if (rc == 0)
        rc = s_code_all(&run, true);
    if (rc == 0)
        rc = s_code_all(&run, false);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const uint16_t *in = sk2_frame_cdata16(frames[i]);
        const uint16_t *back = sk2_frame_cdata16(run.out[i]);
        for (size_t p = 0; rc == 0 && p < pixels; p++) {
            if ((in[p] ^ back[p]) & S_DEPTH12_MASK)
                rc = SK2_ECORRUPT;
            high += in[p] > S_DEPTH12_MASK;
        }
        out->raw_bytes += sk2_frame_size(frames[i]);
        out->encoded_bytes += run.wire_len[i];
        out->ratio[i] = (double)sk2_frame_size(frames[i]) / (double)run.wire_len[i];
    }
    if (rc == 0)
        out->high_fraction = (double)high / (double)(pixels * n);
    for (int r = 0; rc == 0 && r < reps; r++) {
        rc = s_time_rep(&run, true, out->raw_bytes, &encode[r]);
        if (rc == 0)
            rc = s_time_rep(&run, false, out->raw_bytes, &decode[r]);
    }
    if (rc == 0) {
        out->encode_mb_s = report_median(encode, (size_t)reps);
        out->decode_mb_s = report_median(decode, (size_t)reps);
    }
    for (size_t i = 0; i < n; i++) {
        free(run.wire[i]);
        sk2_frame_destroy(&run.out[i]);
    }
    free(encode);
    free(decode);
    return rc;
}

static int s_is_png(const struct dirent *entry)
{
    size_t length = strlen(entry->d_name);
    return length > 4 && strcmp(entry->d_name + length - 4, ".png") == 0;
}

/* Reads the 16-bit PNGs of `dir`, sorted by name, into frames (all of one size) and their
 * names into out->labels. Returns how many, or -1 (nothing left allocated). */
static int s_load_frames(const char *dir, sk2_frame_t **frames, bench_codec_t *out)
{
    struct dirent **names = NULL;
    int found = scandir(dir, &names, s_is_png, alphasort);
    if (found < 0)
        return -1;
    int n = 0;
    bool is_ok = found > 0 && found <= BENCH_MAX_FRAMES;
    for (int i = 0; i < found; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (is_ok && testutil_read_png16(path, &frames[n]) == 0 &&
            sk2_frame_width(frames[n]) == sk2_frame_width(frames[0]) &&
            sk2_frame_height(frames[n]) == sk2_frame_height(frames[0])) {
            snprintf(out->labels[n], sizeof out->labels[n], "%.*s",
                     (int)strlen(names[i]->d_name) - 4, names[i]->d_name);
            n++;
        } else if (is_ok) {
            fprintf(stderr, "bench_core: %s: not a 16-bit grey PNG of the others' size\n", path);
            sk2_frame_destroy(&frames[n]);
            is_ok = false;
        }
        free(names[i]);
    }
    free(names);
    if (!is_ok) {
        for (int i = 0; i < n; i++)
            sk2_frame_destroy(&frames[i]);
        return -1;
    }
    return n;
}

/* ---- End to end: the clients -------------------------------------------------------------- */

/* What the parent and the client threads share: readiness and the measuring window. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC: a client got its first frame or failed */
    int ready;              /* clients that have received a frame */
    int failed;             /* clients that gave up */
    int64_t start_us;       /* monotonic start of the window; 0 until set */
    int64_t end_us;         /* monotonic end of the window */
    bool should_stop;       /* the run is abandoned */
} s_window_t;

typedef struct {
    pthread_t thread;
    s_window_t *window;   /* shared */
    const char *endpoint; /* the server's control endpoint */
    const char *codec;    /* depth codec on the streams endpoint, or NULL for version 1 */
    int64_t *latency_us;  /* one per frame received in the window */
    size_t count;         /* of latency_us */
    size_t capacity;      /* of latency_us */
    uint64_t first_seq;   /* stamp sequence of the first frame in the window */
    uint64_t last_seq;    /* and of the last */
    int error;            /* 0, or what made the thread give up */
    char reason[160];     /* the same for people */
} s_client_t;

static void s_window_note(s_window_t *window, bool is_ready)
{
    pthread_mutex_lock(&window->lock);
    if (is_ready)
        window->ready++;
    else
        window->failed++;
    pthread_cond_signal(&window->changed);
    pthread_mutex_unlock(&window->lock);
}

static int s_client_record(s_client_t *self, int64_t age_us, uint64_t sequence)
{
    if (self->count == self->capacity) {
        size_t capacity = self->capacity ? self->capacity * 2 : 1024;
        int64_t *grown = realloc(self->latency_us, capacity * sizeof *grown);
        if (!grown)
            return SK2_ENOMEM;
        self->latency_us = grown;
        self->capacity = capacity;
    }
    if (self->count == 0)
        self->first_seq = sequence;
    self->last_seq = sequence;
    self->latency_us[self->count++] = age_us;
    return 0;
}

/* Handles one event; returns 0, or the error that ends the thread with its reason set. */
static int s_client_event(s_client_t *self, sk2_client_t *client, sk2_event_t *event,
                          bool *has_frame, int64_t start_us, int64_t end_us)
{
    int rc = 0;
    switch (sk2_event_type(event)) {
    case SK2_EVENT_DEVICE_ADDED:
        rc = self->codec ? sk2_client_subscribe(client, sk2_event_device_id(event),
                                                SK2_STREAM_DEPTH, self->codec)
                         : sk2_client_enable_depth(client, sk2_event_device_id(event));
        if (rc != 0)
            snprintf(self->reason, sizeof self->reason, "receive depth: %s", sk2_strerror(rc));
        return rc;
    case SK2_EVENT_FRAME: {
        /* The client decoded the frame inside sk2_client_recv: the application has it now. */
        int64_t now_wall_us = sk2_clock_wall_us();
        int64_t now_us = sk2_clock_mono_us();
        int64_t age_us = 0;
        uint64_t sequence = 0;
        stamp_read(sk2_frame_cdata16(sk2_event_frame(event)), now_wall_us, &age_us, &sequence);
        if (!*has_frame) {
            *has_frame = true;
            s_window_note(self->window, true);
        }
        if (start_us > 0 && now_us >= start_us && now_us < end_us)
            rc = s_client_record(self, age_us, sequence);
        if (rc != 0)
            snprintf(self->reason, sizeof self->reason, "out of memory for samples");
        return rc;
    }
    case SK2_EVENT_DISCONNECTED:
    case SK2_EVENT_ERROR:
        snprintf(self->reason, sizeof self->reason, "%s: %s",
                 sk2_event_type_name(sk2_event_type(event)), sk2_event_reason(event));
        return sk2_event_error(event) ? sk2_event_error(event) : SK2_ELOST;
    default:
        return 0;
    }
}

/* One client on its own thread, as the API asks: connect, enable depth when the device shows
 * up, time every frame of the window. Bounded: it gives up if no frame comes within
 * S_READY_MS, and leaves when the window closes or the run is abandoned. */
static void *s_client_thread(void *arg)
{
    s_client_t *self = arg;
    s_window_t *window = self->window;
    sk2_client_t *client = sk2_client_new();
    int rc = client ? sk2_client_connect(client, self->endpoint) : SK2_ENOMEM;
    if (rc != 0)
        snprintf(self->reason, sizeof self->reason, "connect: %s", sk2_strerror(rc));
    bool has_frame = false;
    int64_t give_up_us = sk2_clock_mono_us() + S_READY_MS * 1000LL;
    while (rc == 0) {
        pthread_mutex_lock(&window->lock);
        int64_t start_us = window->start_us;
        int64_t end_us = window->end_us;
        bool should_stop = window->should_stop;
        pthread_mutex_unlock(&window->lock);
        int64_t now_us = sk2_clock_mono_us();
        if (should_stop || (start_us > 0 && now_us >= end_us))
            break;
        if (!has_frame && now_us > give_up_us) {
            rc = SK2_ETIMEDOUT;
            snprintf(self->reason, sizeof self->reason, "no frame within %d ms", S_READY_MS);
            break;
        }
        sk2_event_t *event = NULL;
        rc = sk2_client_recv(client, &event, S_RECV_TIMEOUT_MS);
        if (rc == SK2_ETIMEDOUT) {
            rc = 0;
            continue;
        }
        if (rc != 0) {
            snprintf(self->reason, sizeof self->reason, "recv: %s", sk2_strerror(rc));
            break;
        }
        rc = s_client_event(self, client, event, &has_frame, start_us, end_us);
        sk2_event_destroy(&event);
    }
    self->error = rc;
    if (rc != 0)
        s_window_note(window, false);
    sk2_client_destroy(&client);
    return NULL;
}

/* The window opens S_WARMUP_US after every client has its first frame, so that all measure
 * the same interval; or the run is abandoned. Returns true if it opened. */
static bool s_window_open(s_window_t *window, int clients, double seconds)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += S_READY_MS / 1000;
    pthread_mutex_lock(&window->lock);
    while (window->ready + window->failed < clients &&
           pthread_cond_timedwait(&window->changed, &window->lock, &deadline) == 0)
        ;
    bool is_open = window->ready == clients && window->failed == 0;
    if (is_open) {
        window->start_us = sk2_clock_mono_us() + BENCH_WARMUP_US;
        window->end_us = window->start_us + (int64_t)(seconds * 1e6);
    } else {
        window->should_stop = true;
    }
    pthread_mutex_unlock(&window->lock);
    return is_open;
}

static int s_compare_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a;
    int64_t y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Nearest-rank percentile p (0 < p <= 1) of n > 0 sorted values, in milliseconds. */
static double s_percentile_ms(const int64_t *sorted, size_t n, double p)
{
    size_t rank = (size_t)(p * (double)n + 0.999999);
    return (double)sorted[rank > 0 ? rank - 1 : 0] / 1000;
}

/* Folds the clients' samples into the scenario's figures. Returns 0 or -1 (message in err). */
static int s_summarise(s_client_t *clients, int n, double seconds, bench_e2e_t *out, char *err,
                       size_t err_size)
{
    size_t total = 0;
    uint64_t expected = 0;
    double fps[S_MAX_CLIENTS];
    for (int i = 0; i < n; i++) {
        total += clients[i].count;
        if (clients[i].count > 0)
            expected += clients[i].last_seq - clients[i].first_seq + 1;
        fps[i] = (double)clients[i].count / seconds;
    }
    int64_t *all = total ? malloc(total * sizeof *all) : NULL;
    if (!all) {
        snprintf(err, err_size, total ? "out of memory" : "no frame arrived in the window");
        return -1;
    }
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(all + at, clients[i].latency_us, clients[i].count * sizeof *all);
        at += clients[i].count;
    }
    qsort(all, total, sizeof *all, s_compare_i64);
    out->samples = total;
    out->p50_ms = s_percentile_ms(all, total, 0.50);
    out->p99_ms = s_percentile_ms(all, total, 0.99);
    out->max_ms = (double)all[total - 1] / 1000;
    out->fps_per_client = report_median(fps, (size_t)n);
    out->missed = (double)(expected - total) / (double)expected;
    free(all);
    return 0;
}

/* Runs the scenario's client threads against `endpoint`. Returns 0, or -1 (message in err). */
static int s_run_clients(const bench_options_t *options, const bench_scenario_t *scenario,
                         const char *endpoint, bench_e2e_t *out, char *err, size_t err_size)
{
    s_window_t window = {.ready = 0};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&window.changed, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&window.lock, NULL);

    s_client_t clients[S_MAX_CLIENTS];
    memset(clients, 0, sizeof clients);
    int started = 0;
    for (; started < scenario->clients; started++) {
        clients[started].window = &window;
        clients[started].endpoint = endpoint;
        clients[started].codec = scenario->codecs[started % 2];
        if (pthread_create(&clients[started].thread, NULL, s_client_thread, &clients[started]))
            break;
    }
    bool is_open = false;
    if (started == scenario->clients) {
        is_open = s_window_open(&window, started, options->seconds);
    } else {
        pthread_mutex_lock(&window.lock);
        window.should_stop = true;
        pthread_mutex_unlock(&window.lock);
    }
    for (int i = 0; i < started; i++)
        pthread_join(clients[i].thread, NULL);

    int rc = 0;
    if (started < scenario->clients) {
        snprintf(err, err_size, "cannot start client thread %d", started);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < started; i++) {
        if (clients[i].error != 0) {
            snprintf(err, err_size, "client %d: %s", i, clients[i].reason);
            rc = -1;
        }
    }
    if (rc == 0 && !is_open) {
        snprintf(err, err_size, "not every client received a frame within %d ms", S_READY_MS);
        rc = -1;
    }
    if (rc == 0)
        rc = s_summarise(clients, started, options->seconds, out, err, err_size);
    for (int i = 0; i < started; i++)
        free(clients[i].latency_us);
    pthread_cond_destroy(&window.changed);
    pthread_mutex_destroy(&window.lock);
    return rc;
}

/* One scenario: starts its child's server, runs the clients, stops the child and reads what
 * it cost. Returns 0, or -1 with a message in err; the child is gone either way. */
static int s_run_scenario(const bench_options_t *options, const bench_scenario_t *scenario,
                          server_child_t *child, bench_e2e_t *out, char *err, size_t err_size)
{
    /* The child's own bound: the window, the clients' ready wait, and slack to stop. */
    int lifetime_ms = (int)(BENCH_WARMUP_US / 1000 + options->seconds * 1000) + 3 * S_READY_MS;
    char endpoint[256];
    int64_t started_us = sk2_clock_mono_us();
    if (server_child_start(child, scenario->fps, lifetime_ms, endpoint, sizeof endpoint, err,
                           err_size) != 0)
        return -1;
    int rc = s_run_clients(options, scenario, endpoint, out, err, err_size);
    struct rusage usage = {.ru_maxrss = 0};
    int finished = server_child_finish(child, &out->stats, &usage);
    double wall_us = (double)(sk2_clock_mono_us() - started_us);
    if (rc == 0 && finished != 0) {
        snprintf(err, err_size, "server child did not report and exit within %d ms; killed",
                 SERVER_CHILD_TIMEOUT_MS);
        rc = -1;
    }
    if (rc != 0)
        return rc;
    double cpu_us = (double)usage.ru_utime.tv_sec * 1e6 + (double)usage.ru_utime.tv_usec +
                    (double)usage.ru_stime.tv_sec * 1e6 + (double)usage.ru_stime.tv_usec;
    uint64_t produced = out->stats.frames_produced;
    out->cpu_us_per_frame = produced ? cpu_us / (double)produced : 0;
    uint64_t encoded = out->stats.frames_encoded;
    out->cpu_us_per_encoded = encoded ? cpu_us / (double)encoded : 0;
    out->cpu_percent = 100 * cpu_us / wall_us;
    out->rss_mb = (double)usage.ru_maxrss * 1024 / 1e6; /* Linux counts it in KiB */
    return 0;
}

/* ---- Main --------------------------------------------------------------------------------- */

static void s_usage(FILE *out)
{
    fprintf(out,
            "usage: bench_core [--seconds S] [--reps N] [--quick] [--json] [--data DIR]\n"
            "  --seconds S  measuring window of each end-to-end scenario, 0.1..3600 (default %g)\n"
            "  --reps N     codec repetitions, median reported, 1..10001 (default %d)\n"
            "  --quick      short smoke run: %g s scenarios, %d reps\n"
            "  --json       JSON on stdout instead of tables\n"
            "  --data DIR   16-bit depth PNGs of one size (default %s)\n",
            S_DEFAULT_SECONDS, S_DEFAULT_REPS, S_QUICK_SECONDS, S_QUICK_REPS, SK2_BENCH_DATA_DIR);
}

/* Returns 0, 1 (--help) or -1 (bad usage). --seconds and --reps win over --quick. */
static int s_parse(int argc, char **argv, bench_options_t *options)
{
    double seconds = 0;
    long reps = 0;
    *options = (bench_options_t){.data_dir = SK2_BENCH_DATA_DIR};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (strcmp(arg, "--json") == 0) {
            options->is_json = true;
        } else if (strcmp(arg, "--quick") == 0) {
            options->is_quick = true;
        } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            return 1;
        } else if (strcmp(arg, "--seconds") == 0 && value) {
            seconds = strtod(value, &end);
            if (end == value || *end != '\0' || !(seconds >= 0.1 && seconds <= 3600))
                return -1;
            i++;
        } else if (strcmp(arg, "--reps") == 0 && value) {
            reps = strtol(value, &end, 10);
            if (end == value || *end != '\0' || reps < 1 || reps > 10001)
                return -1;
            i++;
        } else if (strcmp(arg, "--data") == 0 && value) {
            options->data_dir = value;
            i++;
        } else {
            return -1;
        }
    }
    options->seconds = seconds > 0         ? seconds
                       : options->is_quick ? S_QUICK_SECONDS
                                           : S_DEFAULT_SECONDS;
    options->reps = reps > 0 ? (int)reps : options->is_quick ? S_QUICK_REPS : S_DEFAULT_REPS;
    return 0;
}

/* The codec part: the mock scene and the real frames of --data. Returns 0 or -1 (err). */
static int s_codec_part(const bench_options_t *options, bench_report_t *report, char *err,
                        size_t err_size)
{
    sk2_frame_t *real[BENCH_MAX_FRAMES] = {NULL};
    sk2_frame_t *scene =
        sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT);
    int count = s_load_frames(options->data_dir, real, &report->codec[1]);
    int rc = 0;
    if (count <= 0 || !scene) {
        snprintf(err, err_size, "no 16-bit depth PNGs of one size in %s", options->data_dir);
        rc = -1;
    }
    if (rc == 0) {
        sk2_mock_render(sk2_frame_data16(scene), 37);
        snprintf(report->codec[0].name, sizeof report->codec[0].name, "mock scene, dx 37");
        snprintf(report->codec[0].labels[0], sizeof report->codec[0].labels[0], "mock");
        snprintf(report->codec[1].name, sizeof report->codec[1].name, "Azure Kinect, %d PNGs",
                 count);
        if (s_bench_codec(&scene, 1, options->reps, &report->codec[0]) != 0 ||
            s_bench_codec(real, (size_t)count, options->reps, &report->codec[1]) != 0) {
            snprintf(err, err_size, "depth12 failed a call or a 12-bit round trip");
            rc = -1;
        }
    }
    sk2_frame_destroy(&scene);
    for (int i = 0; i < BENCH_MAX_FRAMES; i++)
        sk2_frame_destroy(&real[i]);
    return rc;
}

int main(int argc, char **argv)
{
    bench_options_t options;
    int parsed = s_parse(argc, argv, &options);
    if (parsed != 0) {
        s_usage(parsed > 0 ? stdout : stderr);
        return parsed > 0 ? 0 : 2;
    }
    /* A child that died must not kill us through a write to its pipe. */
    signal(SIGPIPE, SIG_IGN);

    /* First, before any sk2 or ZeroMQ state exists (see the top of the file). An idle child
     * waits at most for every earlier part of the run plus a generous margin. */
    server_child_t children[BENCH_SCENARIOS];
    int go_timeout_ms = (int)(BENCH_SCENARIOS * (options.seconds + 60) * 1000) + 600000;
    int rc = server_child_spawn(children, BENCH_SCENARIOS, go_timeout_ms);
    char err[256] = "";
    if (rc != 0)
        snprintf(err, sizeof err, "cannot fork the server children: %s", strerror(errno));

    bench_report_t report = {
        .options = &options, .argc = argc, .argv = argv, .scenarios = s_scenarios};
    if (rc == 0) {
        report_progress(&options, "mock device");
        rc = s_bench_mock(report.mock_fps);
        if (rc != 0)
            snprintf(err, sizeof err, "mock device: %s", sk2_strerror(rc));
    }
    if (rc == 0) {
        report_progress(&options, "codec depth12");
        rc = s_codec_part(&options, &report, err, sizeof err);
    }
    for (int i = 0; rc == 0 && i < BENCH_SCENARIOS; i++) {
        report_progress(&options, s_scenarios[i].name);
        rc = s_run_scenario(&options, &s_scenarios[i], &children[i], &report.e2e[i], err,
                            sizeof err);
    }
    /* Children whose scenario never came see their pipe close and exit at once. */
    for (int i = 0; i < BENCH_SCENARIOS; i++)
        server_child_finish(&children[i], NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "bench_core: %s\n", err);
        return 1;
    }
    return report_print(&report) == 0 ? 0 : 1;
}
