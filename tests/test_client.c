/* The client against a real sk2 server in the same process, over tcp://127.0.0.1. Also the
 * usage example for the client API: connect, follow devices, enable depth, read frames. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>

#include "sk2/sk2.h"
#include "testutil.h"

static sk2_server_t *s_server(int devices)
{
    sk2_server_t *server = sk2_server_new("client test");
    assert_non_null(server);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    for (int i = 0; i < devices; i++) {
        sk2_device_t *device = sk2_device_new("mock");
        assert_int_equal(sk2_server_add_device(server, &device), 0);
    }
    return server;
}

static sk2_client_t *s_connected(sk2_server_t *server)
{
    sk2_client_t *client = sk2_client_new();
    assert_non_null(client);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    return client;
}

static void test_bad_endpoints_and_settings_are_refused(void **state)
{
    (void)state;
    sk2_client_t *client = sk2_client_new();
    static const char *const bad[] = {
        "",      "tcp://",      "tcp://host", "host:0", "host:70000", "host:12x", "udp://host:5",
        ":5555", "tcp://a b:5", "ipc://",     NULL};
    for (size_t i = 0; bad[i]; i++)
        if (sk2_client_connect(client, bad[i]) != SK2_EINVAL)
            fail_msg("accepted endpoint \"%s\"", bad[i]);
    assert_int_equal(sk2_client_connect(client, NULL), SK2_EINVAL);
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 10), SK2_EINVAL);
    assert_int_equal(sk2_client_set_response_timeout_ms(client, 99), SK2_EINVAL);
    assert_int_equal(sk2_client_ping(client), SK2_ESTATE);
    assert_int_equal(sk2_client_enable_depth(client, "x"), SK2_ESTATE);
    assert_int_equal(sk2_client_disconnect(client), SK2_ESTATE);
    sk2_event_t *event = NULL;
    assert_int_equal(sk2_client_recv(client, &event, 0), SK2_ESTATE);
    assert_int_equal(sk2_client_timeout_ms(client), -1);
    sk2_client_destroy(&client);
    sk2_client_destroy(&client);
    assert_null(client);
}

static void test_connect_reports_the_server_and_each_device(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(2);
    sk2_client_t *client = sk2_client_new();
    /* "host:port" means tcp. */
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server) + 6), 0);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), SK2_ESTATE);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_string_equal(sk2_client_server_name(client), "client test");
    assert_int_equal(sk2_client_device_count(client), 2);
    for (int i = 0; i < 2; i++) {
        event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 1000, NULL);
        assert_non_null(event);
        assert_string_equal(sk2_event_device_id(event), sk2_client_device_id(client, (size_t)i));
        sk2_event_destroy(&event);
    }
    const char *depth =
        sk2_client_device_endpoint(client, sk2_client_device_id(client, 0), "depth");
    assert_non_null(depth);
    assert_int_equal(strncmp(depth, "tcp://127.0.0.1:", 16), 0);
    assert_null(sk2_client_device_endpoint(client, "nope", "depth"));
    assert_non_null(strstr(sk2_client_me_json(client), "\"version\":1"));
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_depth_frames_arrive_decoded_and_bit_exact(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    sk2_client_t *client = s_connected(server);
    const char *id = sk2_client_device_id(client, 0);
    assert_int_equal(sk2_client_enable_depth(client, "unknown"), SK2_ENOTFOUND);
    assert_int_equal(sk2_client_enable_depth(client, id), 0);
    assert_int_equal(sk2_client_enable_depth(client, id), 0); /* idempotent */
    for (uint64_t i = 0; i < 15; i++) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 5000, NULL);
        assert_non_null(event);
        const sk2_frame_t *frame = sk2_event_frame(event);
        assert_non_null(frame);
        assert_int_equal(sk2_frame_width(frame), 512);
        assert_int_equal(sk2_frame_height(frame), 424);
        assert_int_equal(sk2_frame_sequence(frame), i);
        assert_true(sk2_event_wire_bytes(event) > 4 &&
                    sk2_event_wire_bytes(event) < sk2_frame_size(frame));
        int dx = 1000;
        assert_int_equal(sk2_mock_match(sk2_frame_cdata16(frame), 512, 424, 16, &dx), 0);
        uint16_t *expect = malloc(512 * 424 * 2);
        sk2_mock_render(expect, dx);
        assert_memory_equal(expect, sk2_frame_cdata16(frame), 512 * 424 * 2);
        free(expect);
        sk2_frame_t *kept = sk2_event_take_frame(event);
        assert_null(sk2_event_frame(event));
        sk2_event_destroy(&event);
        sk2_frame_destroy(&kept);
    }
    /* Disabled: after the frames already in flight, nothing more. */
    assert_int_equal(sk2_client_disable_depth(client, id), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 400, NULL);
    sk2_event_destroy(&event);
    event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 400, NULL);
    assert_null(event);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_ping_gets_a_pong_with_its_round_trip(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(0);
    sk2_client_t *client = s_connected(server);
    assert_int_equal(sk2_client_ping(client), 0);
    assert_int_equal(sk2_client_ping(client), 0); /* pipelined */
    for (int i = 0; i < 2; i++) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_PONG, NULL, 5000, NULL);
        assert_non_null(event);
        assert_true(sk2_event_rtt_us(event) > 0 && sk2_event_rtt_us(event) < 5000000);
        sk2_event_destroy(&event);
    }
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_devices_added_and_removed_on_the_server_become_events(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 100), 0);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);

    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_id(device, "second"), 0);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 3000, NULL);
    assert_non_null(event);
    assert_string_equal(sk2_event_device_id(event), "second");
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_enable_depth(client, "second"), 0);
    event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 3000, NULL);
    assert_non_null(event);
    assert_string_equal(sk2_event_device_id(event), "second");
    sk2_event_destroy(&event);

    assert_int_equal(sk2_server_remove_device(server, "second"), 0);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_REMOVED, NULL, 3000, NULL);
    assert_non_null(event);
    assert_string_equal(sk2_event_device_id(event), "second");
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_device_count(client), 1);
    assert_int_equal(sk2_client_enable_depth(client, "second"), SK2_ENOTFOUND);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_a_dead_server_is_reported_lost_after_the_timeout(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 100), 0);
    assert_int_equal(sk2_client_set_response_timeout_ms(client, 500), 0);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_enable_depth(client, sk2_client_device_id(client, 0)), 0);
    sk2_server_destroy(&server); /* dies mid-stream */
    int64_t start = sk2_clock_mono_us();
    event = testutil_wait_event(client, SK2_EVENT_DISCONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    assert_int_equal(sk2_event_error(event), SK2_ETIMEDOUT);
    assert_non_null(strstr(sk2_event_reason(event), "no reply"));
    /* Not before the timeout; the upper bound leaves room for a loaded 2-core machine. */
    int64_t waited = sk2_clock_mono_us() - start;
    assert_true(waited >= 400000 && waited < 4000000);
    sk2_event_destroy(&event);
    assert_false(sk2_client_is_connected(client));
    assert_int_equal(sk2_client_device_count(client), 0);
    assert_int_equal(sk2_client_recv(client, &event, 0), SK2_ESTATE);
    sk2_client_destroy(&client);
}

/* Binds to a port the kernel picks at random (libzmq's own "*"; CZMQ's scans upward from
 * 49152 and would hand out the port another test just closed). Returns the port or -1. */
static int s_bind_any(zsock_t *socket)
{
    if (zmq_bind(zsock_resolve(socket), "tcp://127.0.0.1:*") != 0)
        return -1;
    char *endpoint = zsock_last_endpoint(socket);
    const char *colon = endpoint ? strrchr(endpoint, ':') : NULL;
    int port = colon ? atoi(colon + 1) : -1;
    zstr_free(&endpoint);
    return port;
}

static void test_nothing_listening_means_lost_not_hung(void **state)
{
    (void)state;
    /* Find a free port by binding and closing. */
    zsock_t *probe = zsock_new(ZMQ_REP);
    int port = s_bind_any(probe);
    assert_true(port > 0);
    zsock_destroy(&probe);
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_response_timeout_ms(client, 300), 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    assert_int_equal(sk2_client_connect(client, endpoint), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DISCONNECTED, NULL, 3000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    sk2_client_destroy(&client);
}

/* A server that speaks a future protocol version: the client must not trust it. */
static void s_future_server(zsock_t *pipe, void *arg)
{
    zsock_t *rep = zsock_new(ZMQ_REP);
    int port = s_bind_any(rep);
    zsock_signal(pipe, 0);
    zsock_send(pipe, "i", port);
    zpoller_t *poller = zpoller_new(pipe, rep, NULL);
    while (zpoller_wait(poller, -1) == rep) {
        zmsg_t *request = zmsg_recv(rep);
        zmsg_destroy(&request);
        zmsg_t *reply = zmsg_new();
        zmsg_addmem(reply, "\x04", 1);
        zmsg_addstr(reply, "{\"version\":2,\"name\":\"future\",\"endpoints\":{},\"devices\":[]}");
        zmsg_send(&reply, rep);
    }
    zpoller_destroy(&poller);
    zsock_destroy(&rep);
}

static void test_a_me_of_another_version_is_a_protocol_error(void **state)
{
    (void)state;
    zactor_t *future = zactor_new(s_future_server, NULL);
    int port = 0;
    zsock_recv(future, "i", &port);
    sk2_client_t *client = sk2_client_new();
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    assert_int_equal(sk2_client_connect(client, endpoint), 0);
    int seen[8] = {0};
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_ERROR, NULL, 5000, seen);
    assert_non_null(event);
    assert_int_equal(sk2_event_error(event), SK2_EPROTO);
    assert_non_null(strstr(sk2_event_reason(event), "version"));
    sk2_event_destroy(&event);
    assert_int_equal(seen[SK2_EVENT_CONNECTED], 0);
    assert_null(sk2_client_server_name(client));
    sk2_client_destroy(&client);
    zactor_destroy(&future);
}

typedef struct {
    int counts[8];
} s_tally_t;

static void s_tally(void *arg, sk2_client_t *client, sk2_event_t *event)
{
    s_tally_t *tally = arg;
    tally->counts[sk2_event_type(event)]++;
    if (sk2_event_type(event) == SK2_EVENT_DEVICE_ADDED)
        assert_int_equal(sk2_client_enable_depth(client, sk2_event_device_id(event)), 0);
}

static void test_callbacks_run_in_dispatch_driven_by_the_callers_poll(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(2);
    sk2_client_t *client = sk2_client_new();
    s_tally_t tally = {{0}};
    sk2_client_set_handler(client, s_tally, &tally);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    int64_t deadline = sk2_clock_mono_us() + 10000000;
    while (tally.counts[SK2_EVENT_FRAME] < 20 && sk2_clock_mono_us() < deadline) {
        /* The caller's own loop: poll(2) on the client's descriptors and timer. */
        int fds[8];
        size_t n = sk2_client_fds(client, fds, 8);
        assert_true(n >= 1 && n <= 8);
        struct pollfd items[8];
        for (size_t i = 0; i < n; i++)
            items[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        int wait = sk2_client_timeout_ms(client);
        poll(items, n, wait < 0 || wait > 100 ? 100 : wait);
        assert_true(sk2_client_dispatch(client, 0) >= 0);
    }
    assert_int_equal(tally.counts[SK2_EVENT_CONNECTED], 1);
    assert_int_equal(tally.counts[SK2_EVENT_DEVICE_ADDED], 2);
    assert_true(tally.counts[SK2_EVENT_FRAME] >= 20);
    assert_int_equal(sk2_client_fds(client, NULL, 0), 3); /* control + two streams */
    /* A call hands out at most 256 events, and a client slower than the stream (a TSan build)
     * may have more queued: stop the streams, then hand out what is left. Fewer than 256
     * means the queue is empty, and it stays so: events are only made inside recv and
     * dispatch. */
    for (size_t i = 0; i < sk2_client_device_count(client); i++)
        assert_int_equal(sk2_client_disable_depth(client, sk2_client_device_id(client, i)), 0);
    int64_t drained_by = sk2_clock_mono_us() + 60000000;
    while (sk2_client_dispatch(client, 0) == 256 && sk2_clock_mono_us() < drained_by)
        ;
    assert_int_equal(sk2_client_disconnect(client), 0);
    assert_int_equal(sk2_client_dispatch(client, 0), 1);
    assert_int_equal(tally.counts[SK2_EVENT_DISCONNECTED], 1);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* A TUM folder of `count` depth frames of width x height in dir: pixel (x, y) of frame i is
 * 500 + x + 2y + i (in TUM's units of 1/5000 m, which replay keeps; below 4096, so depth12
 * carries it exactly). */
static void s_tum_folder(const char *dir, uint32_t width, uint32_t height, int count)
{
    char path[512];
    snprintf(path, sizeof path, "%s/depth", dir);
    assert_int_equal(zsys_dir_create("%s", path), 0);
    snprintf(path, sizeof path, "%s/depth.txt", dir);
    FILE *list = fopen(path, "w");
    assert_non_null(list);
    for (int i = 0; i < count; i++) {
        sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, height);
        assert_non_null(frame);
        uint16_t *px = sk2_frame_data16(frame);
        for (uint32_t y = 0; y < height; y++)
            for (uint32_t x = 0; x < width; x++)
                px[y * width + x] = (uint16_t)(500 + x + 2 * y + (uint32_t)i);
        char why[128];
        snprintf(path, sizeof path, "%s/depth/%d.png", dir, i);
        assert_int_equal(sk2_frame_write_png(frame, path, 1, why, sizeof why), 0);
        fprintf(list, "%d.%06d depth/%d.png\n", 1000 + i, 0, i);
        sk2_frame_destroy(&frame);
    }
    fclose(list);
}

/* The version-1 endpoint has no header: frames must come out at the size the server's `me`
 * gives the depth stream, not at Kinect v2's 512x424 (an OpenNI2 or libfreenect camera, or a
 * replayed TUM folder, is 640x480 or smaller). */
static void test_v1_depth_of_any_size_decodes_at_the_advertised_size(void **state)
{
    (void)state;
    static const uint32_t sizes[][2] = {{640, 480}, {320, 288}};
    for (size_t k = 0; k < 2; k++) {
        uint32_t width = sizes[k][0], height = sizes[k][1];
        char dir[] = "/tmp/sk2-v1-size-XXXXXX";
        assert_non_null(mkdtemp(dir));
        s_tum_folder(dir, width, height, 3);
        sk2_server_t *server = sk2_server_new("v1 size test");
        assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
        sk2_device_t *device = sk2_device_new("replay");
        assert_int_equal(sk2_device_set_replay_source(device, dir, 0), 0);
        assert_int_equal(sk2_device_set_replay_loop(device, true), 0);
        assert_int_equal(sk2_server_add_device(server, &device), 0);
        sk2_client_t *client = s_connected(server);
        const char *id = sk2_client_device_id(client, 0);
        assert_int_equal(sk2_client_enable_depth(client, id), 0);
        for (int n = 0; n < 4; n++) {
            sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 5000, NULL);
            assert_non_null(event);
            const sk2_frame_t *frame = sk2_event_frame(event);
            assert_int_equal(sk2_frame_width(frame), width);
            assert_int_equal(sk2_frame_height(frame), height);
            const uint16_t *px = sk2_frame_cdata16(frame);
            /* Which of the 3 frames this is shows in the corner; the rest must follow. */
            uint32_t i = px[0] - 500u;
            assert_true(i < 3);
            for (uint32_t y = 0; y < height; y += 7)
                for (uint32_t x = 0; x < width; x += 5)
                    assert_int_equal(px[y * width + x], 500 + x + 2 * y + i);
            assert_int_equal(px[width * height - 1], 500 + (width - 1) + 2 * (height - 1) + i);
            sk2_event_destroy(&event);
        }
        assert_int_equal(sk2_client_frames_rejected(client), 0);
        sk2_client_destroy(&client);
        sk2_server_destroy(&server);
        char cmd[600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        assert_int_equal(system(cmd), 0);
    }
}

/* A budget below the advertised depth frames is refused when the stream is asked for, and
 * the setters check their range. */
static void test_the_frame_budget_is_settable_and_enforced(void **state)
{
    (void)state;
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_max_frame_bytes(client), SK2_LIMIT_FRAME_BYTES);
    assert_int_equal(sk2_client_set_max_frame_bytes(client, SK2_LIMIT_FRAME_BYTES_MIN - 1),
                     SK2_EINVAL);
    assert_int_equal(sk2_client_set_max_frame_bytes(client, SK2_LIMIT_FRAME_BYTES_MAX + 1),
                     SK2_EINVAL);
    assert_int_equal(sk2_client_set_max_frame_bytes(client, 100000), 0);
    sk2_server_t *server = s_server(1);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    assert_int_equal(sk2_client_set_max_frame_bytes(client, 200000), SK2_ESTATE);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    const char *id = sk2_client_device_id(client, 0);
    /* 512 x 424 x 2 bytes = 434176, over 100000. */
    assert_int_equal(sk2_client_enable_depth(client, id), SK2_ELIMIT);
    assert_int_equal(sk2_client_subscribe(client, id, SK2_STREAM_DEPTH, "rvl"), SK2_ELIMIT);
    assert_true(sk2_limit_wire_bytes(SK2_LIMIT_FRAME_BYTES) > SK2_LIMIT_FRAME_BYTES);
    assert_true(sk2_limit_payload_bytes(SK2_LIMIT_FRAME_BYTES_MAX) <= SK2_LIMIT_PAYLOAD_MAX);
    /* Every codec's bound for a frame within a budget fits the payload limit of that budget. */
    for (size_t c = 0; c < sk2_codec_count(); c++)
        for (int f = SK2_PIXEL_DEPTH_MM16; f <= SK2_PIXEL_BGRA32; f++) {
            size_t bytes = sk2_limit_frame_bytes((sk2_pixel_format_t)f, 1920, 1080);
            size_t bound =
                sk2_codec_encode_bound(sk2_codec_at(c), (sk2_pixel_format_t)f, 1920, 1080);
            assert_true(bound <= sk2_limit_payload_bytes(bytes));
        }
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* A server with a budget below its device's frames publishes none of them: they are counted
 * as dropped, and `me` says the budget. */
static void test_a_server_does_not_publish_frames_over_its_budget(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    assert_int_equal(sk2_server_set_max_frame_bytes(server, SK2_LIMIT_FRAME_BYTES_MIN - 1),
                     SK2_EINVAL);
    assert_int_equal(sk2_server_set_max_frame_bytes(server, 100000), 0);
    sk2_client_t *client = s_connected(server);
    assert_non_null(strstr(sk2_client_me_json(client), "\"max_frame_bytes\":100000"));
    assert_int_equal(sk2_client_enable_depth(client, sk2_client_device_id(client, 0)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 1000, NULL);
    assert_null(event);
    sk2_server_stats_t stats;
    assert_int_equal(sk2_server_stats(server, &stats), 0);
    assert_true(stats.frames_dropped > 0);
    assert_int_equal(stats.frames_published, 0);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_endpoints_and_settings_are_refused),
        cmocka_unit_test(test_connect_reports_the_server_and_each_device),
        cmocka_unit_test(test_depth_frames_arrive_decoded_and_bit_exact),
        cmocka_unit_test(test_ping_gets_a_pong_with_its_round_trip),
        cmocka_unit_test(test_devices_added_and_removed_on_the_server_become_events),
        cmocka_unit_test(test_a_dead_server_is_reported_lost_after_the_timeout),
        cmocka_unit_test(test_nothing_listening_means_lost_not_hung),
        cmocka_unit_test(test_a_me_of_another_version_is_a_protocol_error),
        cmocka_unit_test(test_callbacks_run_in_dispatch_driven_by_the_callers_poll),
        cmocka_unit_test(test_v1_depth_of_any_size_decodes_at_the_advertised_size),
        cmocka_unit_test(test_the_frame_budget_is_settable_and_enforced),
        cmocka_unit_test(test_a_server_does_not_publish_frames_over_its_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
