/* The streams endpoint end to end: several clients ask for different codecs of one stream and
 * for other streams; each gets exactly what it asked for, with its metadata, and the server's
 * stats show that nothing unasked was encoded. Server and clients share one process and talk
 * over tcp://127.0.0.1. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

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
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    /* Subscriptions name devices, which the client knows once it has seen them added. */
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 5000, NULL);
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
    assert_true(latency >= 0 && latency < 2000000);
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
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_STATS, NULL, 5000, NULL);
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

static void test_each_client_gets_what_it_asked_for_and_nothing_else_is_encoded(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(60);
    sk2_client_t *clients[3] = {s_client(server), s_client(server), s_client(server)};
    assert_int_equal(sk2_client_subscribe(clients[0], "cam", SK2_STREAM_DEPTH, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(sk2_client_subscribe(clients[2], "cam", SK2_STREAM_COLOR, "jpeg"), 0);
    int frames[3] = {0, 0, 0};
    s_pump(clients, 3, frames, 15, 10000, s_check_frame, NULL);
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
    for (int tries = 0; tries < 100 && !off; tries++) {
        stats = s_stats(clients[2]);
        off = !json_is_true(json_object_get(s_stream(stats, "color"), "enabled"));
        json_decref(stats);
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
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 5000, NULL);
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

static void test_a_slow_client_sees_gaps_and_slows_nobody(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(100);
    sk2_client_t *slow = s_client(server);
    sk2_client_t *fast = s_client(server);
    assert_int_equal(sk2_client_subscribe(slow, "cam", SK2_STREAM_DEPTH, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(fast, "cam", SK2_STREAM_DEPTH, "raw"), 0);
    sk2_event_t *event = testutil_wait_event(slow, SK2_EVENT_FRAME, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    /* The slow client reads nothing for a second; the fast one keeps up. */
    int fast_frames = 0;
    sk2_client_t *only_fast[1] = {fast};
    int64_t start = sk2_clock_mono_us();
    s_pump(only_fast, 1, &fast_frames, 1000000, 1000, NULL, NULL);
    double fps = fast_frames / ((sk2_clock_mono_us() - start) / 1e6);
    assert_true(fps > 60); /* the device makes 100 a second */
    uint64_t gaps = 0;
    int64_t deadline = sk2_clock_mono_us() + 3000000;
    while (gaps == 0 && sk2_clock_mono_us() < deadline) {
        if (sk2_client_recv(slow, &event, 50) == 0) {
            if (sk2_event_type(event) == SK2_EVENT_FRAME)
                gaps += sk2_event_gap(event);
            sk2_event_destroy(&event);
        }
    }
    assert_true(gaps > 20); /* about 100 frames were missed while it slept */
    sk2_client_destroy(&slow);
    sk2_client_destroy(&fast);
    sk2_server_destroy(&server);
}

/* One try of the test below: serves a mock with depth, IR and colour at `fps`, subscribes to
 * all three and counts frames until each stream has n. Returns true if no stream missed a
 * frame, at the server (dropped) or on the way (gaps). */
static bool s_every_frame(double fps, int n)
{
    sk2_server_t *server = sk2_server_new("every frame");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_id(device, "cam"), 0);
    assert_int_equal(sk2_device_set_fps(device, fps), 0);
    assert_int_equal(sk2_device_set_color_size(device, 160, 120), 0);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    sk2_client_t *client = s_client(server);
    /* Raw, the cheapest codec, so that what is tested is the queue, not how fast this build
     * encodes (sanitizer builds are slow). */
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_IR, "raw"), 0);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_COLOR, "raw"), 0);

    int frames[5] = {0};    /* per stream kind */
    uint64_t gaps[5] = {0}; /* frames missed between two received */
    int64_t deadline = sk2_clock_mono_us() + 60000000;
    while ((frames[SK2_STREAM_DEPTH] < n || frames[SK2_STREAM_IR] < n ||
            frames[SK2_STREAM_COLOR] < n) &&
           sk2_clock_mono_us() < deadline) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 50) != 0)
            continue;
        if (sk2_event_type(event) == SK2_EVENT_FRAME) {
            sk2_stream_kind_t kind = sk2_frame_kind(sk2_event_frame(event));
            assert_true(kind >= 1 && kind <= 4);
            frames[kind]++;
            gaps[kind] += sk2_event_gap(event);
        }
        sk2_event_destroy(&event);
    }
    json_t *stats = s_stats(client);
    json_int_t dropped[3] = {
        json_integer_value(json_object_get(s_stream(stats, "depth"), "dropped")),
        json_integer_value(json_object_get(s_stream(stats, "ir"), "dropped")),
        json_integer_value(json_object_get(s_stream(stats, "color"), "dropped"))};
    json_decref(stats);
    print_message("frames depth %d ir %d color %d, gaps %llu %llu %llu, server dropped %lld %lld "
                  "%lld\n",
                  frames[SK2_STREAM_DEPTH], frames[SK2_STREAM_IR], frames[SK2_STREAM_COLOR],
                  (unsigned long long)gaps[SK2_STREAM_DEPTH],
                  (unsigned long long)gaps[SK2_STREAM_IR],
                  (unsigned long long)gaps[SK2_STREAM_COLOR], (long long)dropped[0],
                  (long long)dropped[1], (long long)dropped[2]);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
    assert_true(frames[SK2_STREAM_DEPTH] >= n && frames[SK2_STREAM_IR] >= n &&
                frames[SK2_STREAM_COLOR] >= n);
    return dropped[0] == 0 && dropped[1] == 0 && dropped[2] == 0 && gaps[SK2_STREAM_DEPTH] == 0 &&
           gaps[SK2_STREAM_IR] == 0 && gaps[SK2_STREAM_COLOR] == 0;
}

/* A whole capture (depth, IR and colour arrive together) fits the default queue: on a machine
 * with time to spare, every subscribed stream gets every frame. Counts, not rates: the deadline
 * is many times what the frames take. A machine busy elsewhere can starve the encoder for a
 * moment and cost a frame of every stream, so up to three tries are allowed; the old queue
 * lost the colour frame of nearly every capture, in every try. */
static void test_every_subscribed_stream_gets_every_frame_of_a_capture(void **state)
{
    (void)state;
    bool is_complete = false;
    for (int tries = 0; tries < 3 && !is_complete; tries++)
        is_complete = s_every_frame(10, 90);
    assert_true(is_complete);
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

/* Waits (bounded) until the stats show `want` subscribers of depth/rvl; returns the last count. */
static json_int_t s_wait_subscribers(sk2_client_t *client, json_int_t want)
{
    json_int_t count = -1;
    for (int tries = 0; tries < 100 && count != want; tries++) {
        count = s_subscribers(client, "depth", "rvl");
        if (count != want)
            usleep(20000);
    }
    return count;
}

static void test_stats_count_every_subscriber_of_a_topic(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(30);
    sk2_client_t *clients[2] = {s_client(server), s_client(server)};
    assert_int_equal(sk2_client_subscribe(clients[0], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(sk2_client_subscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    int frames[2] = {0, 0};
    s_pump(clients, 2, frames, 3, 10000, NULL, NULL);
    assert_true(frames[0] >= 3 && frames[1] >= 3);
    /* Both subscriptions have reached the server: both are counted. */
    assert_int_equal(s_wait_subscribers(clients[0], 2), 2);

    /* One leaves: one is left, and frames still flow to it. */
    assert_int_equal(sk2_client_unsubscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(s_wait_subscribers(clients[0], 1), 1);
    frames[0] = 0;
    s_pump(clients, 1, frames, 3, 10000, NULL, NULL);
    assert_true(frames[0] >= 3);

    /* It comes back, then goes away without unsubscribing (its connection closes). */
    assert_int_equal(sk2_client_subscribe(clients[1], "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(s_wait_subscribers(clients[0], 2), 2);
    sk2_client_destroy(&clients[1]);
    assert_int_equal(s_wait_subscribers(clients[0], 1), 1);

    /* Version-1 clients on the `depth` endpoint are counted the same way. */
    sk2_client_t *v1[2] = {s_client(server), s_client(server)};
    assert_int_equal(sk2_client_enable_depth(v1[0], "cam"), 0);
    assert_int_equal(sk2_client_enable_depth(v1[1], "cam"), 0);
    frames[0] = frames[1] = 0;
    s_pump(v1, 2, frames, 3, 10000, NULL, NULL);
    assert_true(frames[0] >= 3 && frames[1] >= 3);
    json_int_t count = -1;
    for (int tries = 0; tries < 100 && count != 2; tries++)
        count = s_subscribers(clients[0], "depth", "depth12");
    assert_int_equal(count, 2);
    sk2_client_destroy(&v1[1]);
    for (int tries = 0; tries < 100 && count != 1; tries++) {
        usleep(20000);
        count = s_subscribers(clients[0], "depth", "depth12");
    }
    assert_int_equal(count, 1);
    sk2_client_destroy(&v1[0]);
    sk2_client_destroy(&clients[0]);
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
        cmocka_unit_test(test_a_slow_client_sees_gaps_and_slows_nobody),
        cmocka_unit_test(test_every_subscribed_stream_gets_every_frame_of_a_capture),
        cmocka_unit_test(test_stats_count_every_subscriber_of_a_topic),
        cmocka_unit_test(test_no_encoder_is_behind_when_nothing_is_encoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
