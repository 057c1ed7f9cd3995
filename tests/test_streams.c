/* The streams endpoint end to end: several clients ask for different codecs of one stream and
 * for other streams; each gets exactly what it asked for, with its metadata, and the server's
 * stats show that nothing unasked was encoded. Server and clients share one process and talk
 * over tcp://127.0.0.1. Whether a whole capture gets through is tested with a camera of the
 * test's own that captures only when the test asks, so that test does not depend on the
 * machine's speed. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <zmq.h>

#include "device/device_impl.h"
#include "sk2/sk2.h"
#include "testutil.h"

static sk2_server_t *s_server(double fps)
{
    sk2_server_t *server = sk2_server_new("streams test");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_id(device, "cam"), 0);
    assert_int_equal(sk2_device_set_fps(device, fps), 0);
    assert_int_equal(sk2_device_set_color_size(device, 64, 48), 0);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    return server;
}

static sk2_client_t *s_client(sk2_server_t *server)
{
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 30000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    /* Subscriptions name devices, which the client knows once it has seen them added. */
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 30000, NULL);
    assert_non_null(event);
    assert_string_equal(sk2_event_device_id(event), "cam");
    sk2_event_destroy(&event);
    return client;
}

/* Runs every client's loop for up to timeout_ms, until each has n frames; checks each frame
 * with `check` and returns the frames counted per client. */
typedef void(s_check_fn)(sk2_event_t *event, void *arg);

static void s_pump(sk2_client_t **clients, size_t count, int *frames, int n, int timeout_ms,
                   s_check_fn *check, void *arg)
{
    int64_t deadline = sk2_clock_mono_us() + timeout_ms * 1000LL;
    bool done = false;
    while (!done && sk2_clock_mono_us() < deadline) {
        done = true;
        for (size_t i = 0; i < count; i++) {
            sk2_event_t *event = NULL;
            if (sk2_client_recv(clients[i], &event, 5) == 0) {
                if (sk2_event_type(event) == SK2_EVENT_FRAME) {
                    frames[i]++;
                    if (check)
                        check(event, arg);
                }
                sk2_event_destroy(&event);
            }
            done &= frames[i] >= n;
        }
    }
}

static void s_check_frame(sk2_event_t *event, void *arg)
{
    (void)arg;
    const sk2_frame_t *frame = sk2_event_frame(event);
    assert_string_equal(sk2_event_device_id(event), "cam");
    assert_true(sk2_frame_capture_time_us(frame) > 0);
    int64_t latency = sk2_event_latency_us(event);
    /* A wall-clock stamp from this machine: never negative, and not garbage (a minute is far
     * beyond any delay a busy machine adds). */
    assert_true(latency >= 0 && latency < 60000000);
    if (sk2_frame_kind(frame) == SK2_STREAM_DEPTH) {
        /* Lossless codecs: the full 16 bits of the scene at its capture time. */
        uint16_t *expect = malloc(512 * 424 * 2);
        sk2_mock_render(expect, sk2_mock_dx(sk2_frame_capture_time_us(frame)));
        assert_memory_equal(expect, sk2_frame_cdata16(frame), 512 * 424 * 2);
        free(expect);
    } else {
        assert_int_equal(sk2_frame_kind(frame), SK2_STREAM_COLOR);
        assert_string_equal(sk2_event_codec(event), "jpeg");
        assert_int_equal(sk2_frame_width(frame), 64);
        assert_int_equal(sk2_frame_height(frame), 48);
    }
}

static json_t *s_stats(sk2_client_t *client)
{
    assert_int_equal(sk2_client_request_stats(client), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_STATS, NULL, 30000, NULL);
    assert_non_null(event);
    json_error_t error;
    json_t *stats = json_loads(sk2_event_json(event), 0, &error);
    assert_non_null(stats);
    sk2_event_destroy(&event);
    return stats;
}

static json_t *s_stream(json_t *stats, const char *kind)
{
    json_t *streams =
        json_object_get(json_array_get(json_object_get(stats, "devices"), 0), "streams");
    size_t i;
    json_t *stream;
    json_array_foreach(streams, i, stream)
    {
        if (strcmp(json_string_value(json_object_get(stream, "kind")), kind) == 0)
            return stream;
    }
    fail_msg("no %s stream in stats", kind);
    return NULL;
}

static json_t *s_encoding(json_t *stream, const char *codec)
{
    size_t i;
    json_t *encoding;
    json_array_foreach(json_object_get(stream, "encodings"), i, encoding)
    {
        if (strcmp(json_string_value(json_object_get(encoding, "codec")), codec) == 0)
            return encoding;
    }
    return NULL;
}

/* The subscribers of one (stream, codec) as the server's stats report them. */
static json_int_t s_subscribers(sk2_client_t *client, const char *kind, const char *codec)
{
    json_t *stats = s_stats(client);
    json_t *encoding = s_encoding(s_stream(stats, kind), codec);
    json_int_t count = encoding ? json_integer_value(json_object_get(encoding, "subscribers")) : 0;
    json_decref(stats);
    return count;
}

/* Waits until the stats show `want` subscribers of (kind, codec), 30 s at most (subscriptions
 * travel to the server asynchronously, and a busy machine may take its time); returns the last
 * count. */
static json_int_t s_wait_subscribers(sk2_client_t *client, const char *kind, const char *codec,
                                     json_int_t want)
{
    int64_t deadline = sk2_clock_mono_us() + 30000000;
    json_int_t count = s_subscribers(client, kind, codec);
    while (count != want && sk2_clock_mono_us() < deadline) {
        usleep(20000);
        count = s_subscribers(client, kind, codec);
    }
    return count;
}

static void test_each_client_gets_what_it_asked_for_and_nothing_else_is_encoded(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(60);
    sk2_client_t *clients[3] = {s_client(server), s_client(server), s_client(server)};
    assert_int_equal(sk2_client_subscribe(clients[0], "cam", SK2_STREAM_DEPTH, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(sk2_client_subscribe(clients[2], "cam", SK2_STREAM_COLOR, "jpeg"), 0);
    int frames[3] = {0, 0, 0};
    s_pump(clients, 3, frames, 15, 60000, s_check_frame, NULL);
    for (int i = 0; i < 3; i++)
        assert_true(frames[i] >= 15);

    json_t *stats = s_stats(clients[0]);
    json_t *depth = s_stream(stats, "depth");
    assert_int_equal(json_integer_value(json_object_get(s_encoding(depth, "raw"), "subscribers")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(s_encoding(depth, "rvl"), "subscribers")),
                     1);
    assert_true(json_integer_value(json_object_get(s_encoding(depth, "rvl"), "encoded")) >= 15);
    /* Nobody asked for these: never encoded, and IR never even produced. */
    assert_null(s_encoding(depth, "depth12"));
    assert_null(s_encoding(depth, "sk2d"));
    json_t *ir = s_stream(stats, "ir");
    assert_int_equal(json_array_size(json_object_get(ir, "encodings")), 0);
    assert_int_equal(json_integer_value(json_object_get(ir, "produced")), 0);
    assert_false(json_is_true(json_object_get(ir, "enabled")));
    json_t *color = s_stream(stats, "color");
    assert_true(json_is_true(json_object_get(color, "enabled")));
    assert_non_null(s_encoding(color, "jpeg"));
    assert_null(s_encoding(color, "raw"));
    json_decref(stats);

    /* The colour client leaves: the colour stream is switched off in the device. */
    assert_int_equal(sk2_client_unsubscribe(clients[2], "cam", SK2_STREAM_COLOR, "jpeg"), 0);
    assert_int_equal(sk2_client_unsubscribe(clients[2], "cam", SK2_STREAM_COLOR, "jpeg"),
                     SK2_ENOTFOUND);
    bool off = false;
    int64_t deadline = sk2_clock_mono_us() + 30000000; /* the unsubscription travels on its own */
    while (!off && sk2_clock_mono_us() < deadline) {
        stats = s_stats(clients[2]);
        off = !json_is_true(json_object_get(s_stream(stats, "color"), "enabled"));
        json_decref(stats);
        if (!off)
            usleep(20000);
    }
    assert_true(off);
    for (int i = 0; i < 3; i++)
        sk2_client_destroy(&clients[i]);
    sk2_server_destroy(&server);
}

static void test_subscriptions_are_checked_against_what_the_server_offers(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(30);
    sk2_client_t *client = s_client(server);
    assert_int_equal(sk2_client_subscribe(client, "nope", SK2_STREAM_DEPTH, "raw"), SK2_ENOTFOUND);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_BODY, "raw"), SK2_ENOTFOUND);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "depth12"),
                     SK2_EUNSUPPORTED);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "jpeg"),
                     SK2_EUNSUPPORTED);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "h264"),
                     SK2_EUNSUPPORTED);
    const char *codecs = sk2_client_stream_codecs(client, "cam", SK2_STREAM_DEPTH);
    assert_non_null(codecs);
    assert_non_null(strstr(codecs, "rvl"));
    assert_null(strstr(codecs, "depth12"));
    assert_string_equal(sk2_client_device_serial(client, "cam"), "mock-cam");

    sk2_stream_info_t info;
    assert_int_equal(sk2_client_stream_info(client, "cam", SK2_STREAM_BODY, &info), SK2_ENOTFOUND);
    assert_int_equal(sk2_client_stream_info(client, "cam", SK2_STREAM_COLOR, &info), 0);
    assert_int_equal(info.width, 64);
    assert_int_equal(info.format, SK2_PIXEL_RGB24);
    assert_int_equal(sk2_client_stream_info(client, "cam", SK2_STREAM_DEPTH, &info), 0);
    assert_int_equal(info.format, SK2_PIXEL_DEPTH_MM16);
    assert_true(info.depth_unit_m == 0.001);
    assert_true(info.has_intrinsics && info.intrinsics.fx > 300);

    /* A depth frame becomes a point cloud with those intrinsics. */
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 30000, NULL);
    assert_non_null(event);
    const sk2_frame_t *frame = sk2_event_frame(event);
    float *xyz = malloc(512 * 424 * 3 * sizeof(float));
    size_t points = sk2_frame_to_points(frame, &info.intrinsics, info.depth_unit_m, xyz, 512 * 424);
    assert_int_equal(points, 512 * 424); /* the mock scene has no holes */
    for (size_t i = 0; i < points; i++)
        assert_true(xyz[3 * i + 2] >= 0.5f && xyz[3 * i + 2] <= 1.3f);
    free(xyz);
    sk2_event_destroy(&event);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* A device as fast as it renders keeps the encoder busy all the time: a subscriber who comes
 * then must still be counted and get its stream (the pipeline once served only its frame queue
 * while that was ready, so a new subscription waited forever). */
static void test_a_subscription_is_taken_while_the_encoder_is_busy(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(0);
    sk2_client_t *first = s_client(server);
    assert_int_equal(sk2_client_subscribe(first, "cam", SK2_STREAM_IR, "sk2d"), 0);
    sk2_event_t *event = testutil_wait_event(first, SK2_EVENT_FRAME, NULL, 30000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    sk2_client_t *second = s_client(server);
    assert_int_equal(sk2_client_subscribe(second, "cam", SK2_STREAM_DEPTH, "sk2d"), 0);
    event = testutil_wait_event(second, SK2_EVENT_FRAME, NULL, 30000, NULL);
    assert_non_null(event);
    assert_int_equal(sk2_frame_kind(sk2_event_frame(event)), SK2_STREAM_DEPTH);
    sk2_event_destroy(&event);
    sk2_client_destroy(&second);
    sk2_client_destroy(&first);
    sk2_server_destroy(&server);
}

static void test_a_slow_client_sees_gaps_and_slows_nobody(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(100);
    sk2_client_t *slow = s_client(server);
    sk2_client_t *fast = s_client(server);
    assert_int_equal(sk2_client_subscribe(slow, "cam", SK2_STREAM_DEPTH, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(fast, "cam", SK2_STREAM_DEPTH, "raw"), 0);
    sk2_event_t *event = testutil_wait_event(slow, SK2_EVENT_FRAME, NULL, 30000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    /* The slow client reads nothing while the fast one gets 200 frames: a server that waited
     * for the slow one would stall both. Counted, not timed: the deadline only bounds a hang. */
    int fast_frames = 0;
    sk2_client_t *only_fast[1] = {fast};
    s_pump(only_fast, 1, &fast_frames, 200, 60000, NULL, NULL);
    assert_true(fast_frames >= 200);
    /* The slow client's queues (4 messages at the server, the loopback socket's buffers, 4 in
     * its own socket) hold well under 200 raw depth frames: reading on, it must come to
     * the frames it missed (a loaded server may also drop a few for everyone on the way). */
    uint64_t gaps = 0;
    int64_t deadline = sk2_clock_mono_us() + 30000000;
    while (gaps <= 20 && sk2_clock_mono_us() < deadline) {
        if (sk2_client_recv(slow, &event, 50) == 0) {
            if (sk2_event_type(event) == SK2_EVENT_FRAME)
                gaps += sk2_event_gap(event);
            sk2_event_destroy(&event);
        }
    }
    assert_true(gaps > 20); /* most of those 200 */
    sk2_client_destroy(&slow);
    sk2_client_destroy(&fast);
    sk2_server_destroy(&server);
}

/* ---- A camera that captures when the test says so ------------------------------------------ */

/* Each capture is three frames emitted back to back from the device's thread, like a Kinect
 * delivering depth, IR and colour together. Nothing is paced by a clock: the test asks for a
 * capture and waits until the sink has taken all three, so what the server does with a whole
 * capture is tested, not how fast this machine is. A test backend through
 * sk2_device_new_backend, as in test_lifecycle.c. */
#define S_SHOT_COLOR_WIDTH  160
#define S_SHOT_COLOR_HEIGHT 120
#define S_SHOT_STREAMS      3
#define S_SHOT_TIMEOUT_S    30 /* per capture: many times what it needs on a busy machine */

typedef struct {
    sk2_device_t *owner;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t changed; /* asked, emitted or is_stopping moved */
    uint64_t asked;         /* captures asked for */
    uint64_t emitted;       /* captures whose three frames the sink has had */
    bool is_stopping;
} s_shot_t;

static const sk2_stream_info_t s_shot_infos[S_SHOT_STREAMS] = {
    {.kind = SK2_STREAM_DEPTH,
     .format = SK2_PIXEL_DEPTH_MM16,
     .width = 512,
     .height = 424,
     .fps = 30,
     .depth_unit_m = 0.001},
    {.kind = SK2_STREAM_IR, .format = SK2_PIXEL_GRAY16, .width = 512, .height = 424, .fps = 30},
    {.kind = SK2_STREAM_COLOR,
     .format = SK2_PIXEL_RGB24,
     .width = S_SHOT_COLOR_WIDTH,
     .height = S_SHOT_COLOR_HEIGHT,
     .fps = 30},
};

/* The value of byte `i` of capture `k`'s frame of stream `index`: every frame differs, so a
 * frame delivered twice or mixed up with another shows. */
static uint8_t s_shot_byte(uint64_t k, size_t index, size_t i)
{
    return (uint8_t)(k * 31 + index * 7 + i * 13 + (i >> 8));
}

/* Makes capture k and hands its three frames to the device one right after the other. They are
 * all made first, as a camera delivers a capture it already has: the sink then sees them within
 * microseconds, with nothing in between for the pipeline to catch up on. */
static void s_shot_emit(s_shot_t *self, uint64_t k)
{
    int64_t capture_time_us = sk2_clock_wall_us();
    sk2_frame_t *frames[S_SHOT_STREAMS];
    for (size_t index = 0; index < S_SHOT_STREAMS; index++) {
        const sk2_stream_info_t *info = &s_shot_infos[index];
        frames[index] = sk2_frame_new(info->kind, info->format, info->width, info->height);
        if (!frames[index])
            continue;
        uint8_t *data = sk2_frame_data(frames[index]);
        for (size_t i = 0; i < sk2_frame_size(frames[index]); i++)
            data[i] = s_shot_byte(k, index, i);
        sk2_frame_set_device_timestamp_us(frames[index], (int64_t)k * 33333);
        sk2_frame_set_capture_time_us(frames[index], capture_time_us);
    }
    /* Out of memory, a frame is left out and the test sees it missing: no cmocka assertion off
     * the test's own thread. */
    for (size_t index = 0; index < S_SHOT_STREAMS; index++)
        if (frames[index])
            sk2_device_emit(self->owner, index, &frames[index]);
}

static void *s_shot_run(void *arg)
{
    s_shot_t *self = arg;
    pthread_mutex_lock(&self->lock);
    while (!self->is_stopping) {
        if (self->emitted == self->asked) {
            pthread_cond_wait(&self->changed, &self->lock);
            continue;
        }
        uint64_t k = self->emitted;
        pthread_mutex_unlock(&self->lock);
        s_shot_emit(self, k);
        pthread_mutex_lock(&self->lock);
        self->emitted = k + 1;
        pthread_cond_broadcast(&self->changed);
    }
    pthread_mutex_unlock(&self->lock);
    return NULL;
}

static int s_shot_create(sk2_device_t *owner, void **impl_p)
{
    s_shot_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->owner = owner;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_mutex_init(&self->lock, NULL);
    pthread_cond_init(&self->changed, &attr);
    pthread_condattr_destroy(&attr);
    *impl_p = self;
    return 0;
}

static void s_shot_destroy(void *impl)
{
    s_shot_t *self = impl;
    pthread_cond_destroy(&self->changed);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

static int s_shot_open(void *impl)
{
    (void)impl;
    return 0;
}

static int s_shot_start(void *impl)
{
    s_shot_t *self = impl;
    self->is_stopping = false;
    return pthread_create(&self->thread, NULL, s_shot_run, self) == 0 ? 0 : SK2_ESYS;
}

static void s_shot_stop(void *impl)
{
    s_shot_t *self = impl;
    pthread_mutex_lock(&self->lock);
    self->is_stopping = true;
    pthread_cond_broadcast(&self->changed);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
}

static size_t s_shot_stream_count(const void *impl)
{
    (void)impl;
    return S_SHOT_STREAMS;
}

static int s_shot_stream_info(const void *impl, size_t index, sk2_stream_info_t *info)
{
    (void)impl;
    if (index >= S_SHOT_STREAMS)
        return SK2_ENOTFOUND;
    *info = s_shot_infos[index];
    return 0;
}

static const sk2_device_backend_t s_shot_backend = {
    .name = "shot",
    .create = s_shot_create,
    .destroy = s_shot_destroy,
    .open = s_shot_open,
    .start = s_shot_start,
    .stop = s_shot_stop,
    .stream_count = s_shot_stream_count,
    .stream_info = s_shot_stream_info,
};

/* Asks for the next capture and waits until the device's thread has handed all three
 * of its frames to the server's sink (and so the sink has queued or dropped each). False if
 * that took longer than the generous timeout. */
static bool s_shot_capture(s_shot_t *self)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += S_SHOT_TIMEOUT_S;
    pthread_mutex_lock(&self->lock);
    uint64_t want = ++self->asked;
    pthread_cond_broadcast(&self->changed);
    int rc = 0;
    while (self->emitted < want && rc == 0)
        rc = pthread_cond_timedwait(&self->changed, &self->lock, &deadline);
    bool is_done = self->emitted >= want;
    pthread_mutex_unlock(&self->lock);
    return is_done;
}

/* The stream index of the backend's stream of this kind. */
static size_t s_shot_index(sk2_stream_kind_t kind)
{
    for (size_t index = 0; index < S_SHOT_STREAMS; index++)
        if (s_shot_infos[index].kind == kind)
            return index;
    fail_msg("a %s frame the camera does not make", sk2_stream_kind_name(kind));
    return 0;
}

/* A whole capture fits the default queue: with depth, IR and colour subscribed, every stream
 * gets every frame. The three frames of a capture reach the sink back to back; the next
 * capture is asked for only when all three have arrived, so the server is never behind and a
 * correct queue never drops, however busy the machine. The old queue was the inproc pipe itself,
 * sized queue + 1 = 3, whose writer hears of frames read only two at a time (libzmq's low water
 * mark) and listens at most about once a millisecond: after an odd number of frames it believed
 * one still queued and had room for two, so a capture lost its colour frame unless the device
 * thread happened to stall mid-capture long enough to hear better. It lost 13 to 89 of 89
 * colour frames a run; this test stops at the first loss. */
static void test_every_subscribed_stream_gets_every_frame_of_a_capture(void **state)
{
    (void)state;
    enum { CAPTURES = 90 };
    sk2_server_t *server = sk2_server_new("every frame");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new_backend(&s_shot_backend);
    assert_non_null(device);
    assert_int_equal(sk2_device_set_id(device, "cam"), 0);
    assert_int_equal(sk2_device_open(device), 0);
    s_shot_t *camera = sk2_device_impl(device, &s_shot_backend); /* lives as long as the device */
    assert_non_null(camera);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    sk2_client_t *client = s_client(server);
    /* Raw, the cheapest codec, and the contents are checked byte for byte. */
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_IR, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_COLOR, "raw"), 0);
    /* Once the server counts a subscription it publishes every frame of that stream to it. */
    assert_int_equal(s_wait_subscribers(client, "depth", "raw", 1), 1);
    assert_int_equal(s_wait_subscribers(client, "ir", "raw", 1), 1);
    assert_int_equal(s_wait_subscribers(client, "color", "raw", 1), 1);

    int frames[S_SHOT_STREAMS] = {0};
    for (uint64_t k = 0; k < CAPTURES; k++) {
        assert_true(s_shot_capture(camera));
        /* The sink has queued or dropped each frame by now, so a drop already shows. */
        sk2_server_stats_t totals;
        assert_int_equal(sk2_server_stats(server, &totals), 0);
        if (totals.frames_dropped != 0)
            fail_msg("capture %llu: the server dropped %llu frames", (unsigned long long)k,
                     (unsigned long long)totals.frames_dropped);
        bool has[S_SHOT_STREAMS] = {false};
        int got = 0;
        int64_t deadline = sk2_clock_mono_us() + S_SHOT_TIMEOUT_S * 1000000LL;
        while (got < S_SHOT_STREAMS && sk2_clock_mono_us() < deadline) {
            sk2_event_t *event = NULL;
            if (sk2_client_recv(client, &event, 50) != 0)
                continue;
            if (sk2_event_type(event) == SK2_EVENT_FRAME) {
                const sk2_frame_t *frame = sk2_event_frame(event);
                size_t index = s_shot_index(sk2_frame_kind(frame));
                /* This capture's frame, once, with nothing missed since the last. */
                assert_false(has[index]);
                assert_int_equal(sk2_frame_sequence(frame), k);
                assert_int_equal(sk2_event_gap(event), 0);
                assert_int_equal(sk2_frame_width(frame), s_shot_infos[index].width);
                assert_int_equal(sk2_frame_height(frame), s_shot_infos[index].height);
                const uint8_t *data = sk2_frame_cdata(frame);
                for (size_t i = 0; i < sk2_frame_size(frame); i++)
                    if (data[i] != s_shot_byte(k, index, i))
                        fail_msg("capture %llu, %s: byte %zu differs", (unsigned long long)k,
                                 sk2_stream_kind_name(sk2_frame_kind(frame)), i);
                has[index] = true;
                got++;
                frames[index]++;
            }
            sk2_event_destroy(&event);
        }
        if (got < S_SHOT_STREAMS)
            fail_msg("capture %llu: only %d of its %d frames arrived (depth %d, ir %d, color %d)",
                     (unsigned long long)k, got, S_SHOT_STREAMS, has[0], has[1], has[2]);
    }
    for (size_t index = 0; index < S_SHOT_STREAMS; index++)
        assert_int_equal(frames[index], CAPTURES);
    /* The server agrees: every frame produced, none dropped, none idle. */
    json_t *stats = s_stats(client);
    static const char *const kinds[S_SHOT_STREAMS] = {"depth", "ir", "color"};
    for (size_t i = 0; i < S_SHOT_STREAMS; i++) {
        json_t *stream = s_stream(stats, kinds[i]);
        assert_int_equal(json_integer_value(json_object_get(stream, "produced")), CAPTURES);
        assert_int_equal(json_integer_value(json_object_get(stream, "dropped")), 0);
        assert_int_equal(json_integer_value(json_object_get(stream, "idle")), 0);
        assert_int_equal(json_integer_value(json_object_get(s_encoding(stream, "raw"), "encoded")),
                         CAPTURES);
    }
    json_decref(stats);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_stats_count_every_subscriber_of_a_topic(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(30);
    sk2_client_t *clients[2] = {s_client(server), s_client(server)};
    assert_int_equal(sk2_client_subscribe(clients[0], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(sk2_client_subscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    int frames[2] = {0, 0};
    s_pump(clients, 2, frames, 3, 60000, NULL, NULL);
    assert_true(frames[0] >= 3 && frames[1] >= 3);
    /* Both subscriptions have reached the server: both are counted. */
    assert_int_equal(s_wait_subscribers(clients[0], "depth", "rvl", 2), 2);

    /* One leaves: one is left, and frames still flow to it. */
    assert_int_equal(sk2_client_unsubscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(s_wait_subscribers(clients[0], "depth", "rvl", 1), 1);
    frames[0] = 0;
    s_pump(clients, 1, frames, 3, 60000, NULL, NULL);
    assert_true(frames[0] >= 3);

    /* It comes back, then goes away without unsubscribing (its connection closes). */
    assert_int_equal(sk2_client_subscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(s_wait_subscribers(clients[0], "depth", "rvl", 2), 2);
    sk2_client_destroy(&clients[1]);
    assert_int_equal(s_wait_subscribers(clients[0], "depth", "rvl", 1), 1);

    /* Version-1 clients on the `depth` endpoint are counted the same way. */
    sk2_client_t *v1[2] = {s_client(server), s_client(server)};
    assert_int_equal(sk2_client_enable_depth(v1[0], "cam"), 0);
    assert_int_equal(sk2_client_enable_depth(v1[1], "cam"), 0);
    frames[0] = frames[1] = 0;
    s_pump(v1, 2, frames, 3, 60000, NULL, NULL);
    assert_true(frames[0] >= 3 && frames[1] >= 3);
    assert_int_equal(s_wait_subscribers(clients[0], "depth", "depth12", 2), 2);
    sk2_client_destroy(&v1[1]);
    assert_int_equal(s_wait_subscribers(clients[0], "depth", "depth12", 1), 1);
    sk2_client_destroy(&v1[0]);
    sk2_client_destroy(&clients[0]);
    sk2_server_destroy(&server);
}

/* The endpoint `name` ("depth" or "streams") of the first device in the client's `me`. */
static void s_endpoint(sk2_client_t *client, const char *name, char *out, size_t size)
{
    json_error_t error;
    json_t *me = json_loads(sk2_client_me_json(client), 0, &error);
    assert_non_null(me);
    json_t *device = json_array_get(json_object_get(me, "devices"), 0);
    const char *endpoint =
        json_string_value(json_object_get(json_object_get(device, "endpoints"), name));
    assert_non_null(endpoint);
    snprintf(out, size, "%s", endpoint);
    json_decref(me);
}

/* A raw peer of an XPUB endpoint: sends subscription messages as it likes. */
static void *s_raw_peer(void *context, const char *endpoint)
{
    void *socket = zmq_socket(context, ZMQ_XSUB);
    int zero = 0;
    assert_int_equal(zmq_setsockopt(socket, ZMQ_LINGER, &zero, sizeof zero), 0);
    assert_int_equal(zmq_connect(socket, endpoint), 0);
    return socket;
}

static void s_raw_send(void *socket, bool is_subscribe, const char *topic)
{
    uint8_t message[64];
    size_t size = strlen(topic);
    message[0] = is_subscribe ? 1 : 0;
    memcpy(message + 1, topic, size);
    assert_int_equal(zmq_send(socket, message, size + 1, 0), (int)size + 1);
}

/* Waits until the pair's state in stats is `want` ("encoding", "refused"), 30 s at most. */
static bool s_wait_state(sk2_client_t *client, const char *kind, const char *codec,
                         const char *want)
{
    int64_t deadline = sk2_clock_mono_us() + 30000000;
    for (;;) {
        json_t *stats = s_stats(client);
        json_t *encoding = s_encoding(s_stream(stats, kind), codec);
        bool is_there =
            encoding && strcmp(json_string_value(json_object_get(encoding, "state")), want) == 0;
        json_decref(stats);
        if (is_there || sk2_clock_mono_us() >= deadline)
            return is_there;
        usleep(20000);
    }
}

/* Subscriber counting must hold against any peer: a topic subscribed twice by one connection
 * (a SUB socket asked twice does that) is free again when that connection goes, so it neither
 * stays encoded for nobody nor keeps a place under the stream cap; an unsubscribe from a peer
 * that never subscribed, or from one of several, stops nobody's frames. */
static void test_subscriber_counts_hold_against_any_peer(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(30);
    /* One place only: a pair left counted would keep every other pair waiting. */
    assert_int_equal(sk2_server_set_max_streams(server, 1), 0);
    sk2_client_t *client = s_client(server);
    char streams[128], depth[128];
    s_endpoint(client, "streams", streams, sizeof streams);
    s_endpoint(client, "depth", depth, sizeof depth);
    void *context = zmq_ctx_new();

    /* One connection subscribes twice, then vanishes without unsubscribing. */
    void *twice = s_raw_peer(context, streams);
    s_raw_send(twice, true, "depth/rvl/");
    s_raw_send(twice, true, "depth/rvl/");
    assert_true(s_wait_state(client, "depth", "rvl", "encoding"));
    zmq_close(twice);
    assert_int_equal(s_wait_subscribers(client, "depth", "rvl", 0), 0);
    json_t *stats = s_stats(client);
    assert_int_equal(json_integer_value(json_object_get(stats, "streams_encoding")), 0);
    json_decref(stats);

    /* Its place is free: another pair is encoded and delivered. */
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "sk2d"), 0);
    int frames[1] = {0};
    s_pump(&client, 1, frames, 3, 60000, NULL, NULL);
    assert_true(frames[0] >= 3);

    /* A stranger unsubscribes what it never subscribed to; another subscribes and leaves by
     * unsubscribing: the real subscriber keeps getting frames. */
    void *stranger = s_raw_peer(context, streams);
    s_raw_send(stranger, false, "depth/sk2d/");
    void *passer = s_raw_peer(context, streams);
    s_raw_send(passer, true, "depth/sk2d/");
    assert_int_equal(s_wait_subscribers(client, "depth", "sk2d", 2), 2);
    s_raw_send(passer, false, "depth/sk2d/");
    usleep(300000);
    frames[0] = 0;
    s_pump(&client, 1, frames, 5, 60000, NULL, NULL);
    assert_true(frames[0] >= 5);
    assert_true(s_wait_state(client, "depth", "sk2d", "encoding"));
    /* The count is at most the connections the endpoint has: the passer's departure shows once
     * it disconnects. */
    zmq_close(passer);
    zmq_close(stranger);
    assert_int_equal(s_wait_subscribers(client, "depth", "sk2d", 1), 1);

    /* Version 1: a peer that subscribes to a prefix of the payload and drops it does not stop
     * the depth12 frames of a version-1 client, which subscribes to everything. */
    sk2_client_t *v1 = s_client(server);
    assert_int_equal(sk2_client_enable_depth(v1, "cam"), 0);
    frames[0] = 0;
    s_pump(&v1, 1, frames, 3, 60000, NULL, NULL);
    assert_true(frames[0] >= 3);
    void *prefix = s_raw_peer(context, depth);
    s_raw_send(prefix, true, "x");
    s_raw_send(prefix, false, "x");
    usleep(300000);
    frames[0] = 0;
    s_pump(&v1, 1, frames, 5, 60000, NULL, NULL);
    assert_true(frames[0] >= 5);
    zmq_close(prefix);

    sk2_client_destroy(&v1);
    sk2_client_destroy(&client);
    zmq_ctx_term(context);
    sk2_server_destroy(&server);
}

/* "encoder behind" warnings about the device "idle", counted from the log (a server left
 * running by a failed test must not count). */
static atomic_int s_behind;

static void s_log(void *arg, sk2_log_level_t level, const char *component, const char *message)
{
    (void)arg;
    if (strstr(message, "device idle: encoder behind"))
        atomic_fetch_add(&s_behind, 1);
    if (level <= SK2_LOG_WARN)
        fprintf(stderr, "sk2 %s: %s: %s\n", sk2_log_level_name(level), component, message);
}

/* Depth, IR and colour all on and nobody subscribed: nothing is encoded, so nothing can be
 * behind, and nothing is dropped or said to be. */
static void test_no_encoder_is_behind_when_nothing_is_encoded(void **state)
{
    (void)state;
    atomic_store(&s_behind, 0);
    sk2_server_t *server = sk2_server_new("idle");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_id(device, "idle"), 0);
    assert_int_equal(sk2_device_set_fps(device, 30), 0);
    assert_int_equal(sk2_device_set_color_size(device, 160, 120), 0);
    assert_int_equal(sk2_device_open(device), 0);
    assert_int_equal(sk2_device_set_stream_enabled(device, SK2_STREAM_IR, true), 0);
    assert_int_equal(sk2_device_set_stream_enabled(device, SK2_STREAM_COLOR, true), 0);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    sk2_server_stats_t stats = {0};
    int64_t deadline = sk2_clock_mono_us() + 60000000;
    while (stats.frames_produced < 3 * 90 && sk2_clock_mono_us() < deadline) {
        usleep(20000);
        assert_int_equal(sk2_server_stats(server, &stats), 0);
    }
    assert_true(stats.frames_produced >= 3 * 90);
    assert_int_equal(stats.encodings, 0);
    assert_int_equal(stats.frames_dropped, 0);
    assert_int_equal(atomic_load(&s_behind), 0);
    sk2_server_destroy(&server);
    /* Nor at shutdown. */
    assert_int_equal(atomic_load(&s_behind), 0);
}

int main(void)
{
    sk2_log_set_handler(s_log, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_client_gets_what_it_asked_for_and_nothing_else_is_encoded),
        cmocka_unit_test(test_subscriptions_are_checked_against_what_the_server_offers),
        cmocka_unit_test(test_a_subscription_is_taken_while_the_encoder_is_busy),
        cmocka_unit_test(test_a_slow_client_sees_gaps_and_slows_nobody),
        cmocka_unit_test(test_every_subscribed_stream_gets_every_frame_of_a_capture),
        cmocka_unit_test(test_stats_count_every_subscriber_of_a_topic),
        cmocka_unit_test(test_subscriber_counts_hold_against_any_peer),
        cmocka_unit_test(test_no_encoder_is_behind_when_nothing_is_encoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
