/* The server, seen from the wire: raw ZeroMQ peers (not the sk2 client) check what it
 * answers, what it publishes and that no misbehaving peer can stop it. Everything runs in
 * one process over tcp://127.0.0.1 with ports the OS picks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>

#include "sk2/sk2.h"

/* ---- helpers ---- */

static sk2_device_t *s_mock(double fps, const char *id)
{
    sk2_device_t *device = sk2_device_new("mock");
    assert_non_null(device);
    assert_int_equal(sk2_device_set_fps(device, fps), 0);
    if (id)
        assert_int_equal(sk2_device_set_id(device, id), 0);
    return device;
}

static sk2_server_t *s_server(int devices)
{
    sk2_server_t *server = sk2_server_new("test server");
    assert_non_null(server);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    for (int i = 0; i < devices; i++) {
        sk2_device_t *device = s_mock(30, NULL);
        assert_int_equal(sk2_server_add_device(server, &device), 0);
        assert_null(device);
    }
    return server;
}

/* A DEALER speaking to the REP: can send anything, never wedges. */
static zsock_t *s_peer(sk2_server_t *server)
{
    zsock_t *peer = zsock_new(ZMQ_DEALER);
    assert_non_null(peer);
    zsock_set_rcvtimeo(peer, 5000);
    zsock_set_linger(peer, 0);
    assert_int_equal(zsock_connect(peer, "%s", sk2_server_endpoint(server)), 0);
    return peer;
}

/* Sends frames (each a buffer+size) after an empty delimiter; returns the reply type and
 * payload (owned), failing the test if no reply comes within 5 s. */
static int s_ask(zsock_t *peer, size_t count, const void *const *data, const size_t *sizes,
                 json_t **payload)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, "", 0);
    for (size_t i = 0; i < count; i++)
        zmsg_addmem(msg, data[i], sizes[i]);
    assert_int_equal(zmsg_send(&msg, peer), 0);
    zmsg_t *reply = zmsg_recv(peer);
    assert_non_null(reply);
    zframe_t *delimiter = zmsg_pop(reply);
    assert_int_equal(zframe_size(delimiter), 0);
    zframe_destroy(&delimiter);
    assert_true(zmsg_size(reply) == 1 || zmsg_size(reply) == 2);
    zframe_t *type = zmsg_pop(reply);
    assert_int_equal(zframe_size(type), 1);
    int result = zframe_data(type)[0];
    zframe_destroy(&type);
    if (payload) {
        *payload = NULL;
        zframe_t *body = zmsg_pop(reply);
        if (body) {
            json_error_t error;
            *payload = json_loadb((const char *)zframe_data(body), zframe_size(body), 0, &error);
            assert_non_null(*payload);
        }
        zframe_destroy(&body);
    }
    zmsg_destroy(&reply);
    return result;
}

static int s_ask_type(zsock_t *peer, uint8_t type, json_t **payload)
{
    const void *data[] = {&type};
    size_t sizes[] = {1};
    return s_ask(peer, 1, data, sizes, payload);
}

static json_t *s_who(zsock_t *peer)
{
    json_t *me = NULL;
    assert_int_equal(s_ask_type(peer, 0x03, &me), 0x04);
    assert_non_null(me);
    return me;
}

/* ---- tests ---- */

static void test_new_refuses_bad_names_and_destroy_is_idempotent(void **state)
{
    (void)state;
    assert_null(sk2_server_new(""));
    assert_null(sk2_server_new("\xff\xfe"));
    char long_name[SK2_SERVER_NAME_MAX + 2];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_null(sk2_server_new(long_name));
    sk2_server_t *server = sk2_server_new(NULL);
    assert_non_null(server);
    assert_non_null(strstr(sk2_server_name(server), "sk2 on "));
    assert_null(sk2_server_endpoint(server));
    sk2_server_destroy(&server);
    sk2_server_destroy(&server);
    assert_null(server);
}

static void test_bind_hands_out_numeric_endpoints_with_os_ports(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("n");
    assert_int_equal(sk2_server_bind(server, "localhost", 0), 0);
    assert_true(sk2_server_port(server) > 0);
    char expect[64];
    snprintf(expect, sizeof expect, "tcp://127.0.0.1:%u", sk2_server_port(server));
    assert_string_equal(sk2_server_endpoint(server), expect);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), SK2_ESTATE);

    /* The port is taken now: a second server cannot have it. */
    sk2_server_t *other = sk2_server_new("o");
    assert_int_equal(sk2_server_bind(other, "127.0.0.1", sk2_server_port(server)), SK2_EBIND);
    assert_int_equal(sk2_server_bind(other, "no-such-host.invalid", 0), SK2_ENOTFOUND);
    assert_int_equal(sk2_server_bind(other, "", 0), SK2_EINVAL);
    sk2_server_destroy(&other);
    sk2_server_destroy(&server);

    server = sk2_server_new("wild");
    assert_int_equal(sk2_server_bind(server, "*", 0), 0);
    assert_null(strchr(sk2_server_endpoint(server), '*'));
    assert_null(strstr(sk2_server_endpoint(server), "0.0.0.0"));
    sk2_device_t *device = s_mock(30, NULL);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    zsock_t *peer = zsock_new(ZMQ_DEALER);
    zsock_set_rcvtimeo(peer, 5000);
    char local[64];
    snprintf(local, sizeof local, "tcp://127.0.0.1:%u", sk2_server_port(server));
    assert_int_equal(zsock_connect(peer, "%s", local), 0);
    json_t *me = s_who(peer);
    const char *depth = json_string_value(json_object_get(
        json_object_get(json_array_get(json_object_get(me, "devices"), 0), "endpoints"), "depth"));
    assert_non_null(depth);
    assert_null(strchr(depth, '*'));
    assert_null(strstr(depth, "0.0.0.0"));
    json_decref(me);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

/* A port just closed is not handed straight to the next server: a client still reconnecting
 * to the old one (ZeroMQ retries by itself) must not land on a stranger. The kernel picks at
 * random from thousands of ports, so three servers in a row all on their predecessor's port
 * would mean ports are scanned, not picked. */
static void test_a_port_just_closed_is_not_the_next_servers(void **state)
{
    (void)state;
    int reused = 0;
    uint16_t previous = 0;
    for (int i = 0; i < 4; i++) {
        sk2_server_t *server = sk2_server_new("port");
        assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
        uint16_t port = sk2_server_port(server);
        reused += i > 0 && port == previous;
        previous = port;
        sk2_server_destroy(&server);
    }
    assert_true(reused < 3);
}

static void test_devices_need_a_bound_server_and_unique_ids(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("ids");
    sk2_device_t *device = s_mock(30, "same");
    assert_int_equal(sk2_server_add_device(server, &device), SK2_ESTATE);
    assert_null(device); /* consumed even on error */
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    device = s_mock(30, "same");
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    device = s_mock(30, "same");
    assert_int_equal(sk2_server_add_device(server, &device), SK2_EEXIST);
    assert_null(device);
    assert_int_equal(sk2_server_device_count(server), 1);
    assert_int_equal(sk2_server_remove_device(server, "other"), SK2_ENOTFOUND);
    sk2_server_destroy(&server);
}

static void test_who_describes_the_server_as_protocol_version_1(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(2);
    zsock_t *peer = s_peer(server);
    json_t *me = s_who(peer);
    assert_true(json_is_integer(json_object_get(me, "version")));
    assert_int_equal(json_integer_value(json_object_get(me, "version")), 1);
    assert_string_equal(json_string_value(json_object_get(me, "name")), "test server");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(me, "endpoints"), "control")),
        sk2_server_endpoint(server));
    json_t *devices = json_object_get(me, "devices");
    assert_int_equal(json_array_size(devices), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *device = json_array_get(devices, i);
        assert_int_equal(strlen(json_string_value(json_object_get(device, "id"))), 32);
        const char *depth =
            json_string_value(json_object_get(json_object_get(device, "endpoints"), "depth"));
        assert_non_null(depth);
        assert_int_equal(strncmp(depth, "tcp://127.0.0.1:", 16), 0);
    }
    json_decref(me);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

static void test_ping_is_answered_with_an_empty_pong(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(0);
    zsock_t *peer = s_peer(server);
    json_t *payload = (json_t *)0x1;
    assert_int_equal(s_ask_type(peer, 0x01, &payload), 0x02);
    assert_null(payload);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

static void s_expect_error(zsock_t *peer, size_t count, const void *const *data,
                           const size_t *sizes, const char *reason_part)
{
    json_t *payload = NULL;
    assert_int_equal(s_ask(peer, count, data, sizes, &payload), 0x00);
    assert_non_null(payload);
    const char *reason = json_string_value(json_object_get(payload, "reason"));
    assert_non_null(reason);
    if (!strstr(reason, reason_part))
        fail_msg("reason \"%s\" does not mention \"%s\"", reason, reason_part);
    json_decref(payload);
}

static void test_every_malformed_request_gets_an_error_and_serving_goes_on(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    zsock_t *peer = s_peer(server);
    uint8_t who = 0x03, unknown = 0x7f, pong = 0x02, me = 0x04, error = 0x00;
    const char two[] = "\x03\x03";
    const char *bad_json = "{\"a\":";
    const char *bad_utf8 = "\"\xc3\x28\"";
    {
        const void *d[] = {&who, "{}", "{}"};
        size_t s[] = {1, 2, 2};
        s_expect_error(peer, 3, d, s, "1 or 2 frames");
    }
    {
        const void *d[] = {two};
        size_t s[] = {2};
        s_expect_error(peer, 1, d, s, "exactly 1 byte");
    }
    {
        const void *d[] = {&unknown};
        size_t s[] = {1};
        s_expect_error(peer, 1, d, s, "unknown message type");
    }
    {
        const void *d[] = {&who, bad_json};
        size_t s[] = {1, strlen(bad_json)};
        s_expect_error(peer, 2, d, s, "JSON");
    }
    {
        const void *d[] = {&who, bad_utf8};
        size_t s[] = {1, strlen(bad_utf8)};
        s_expect_error(peer, 2, d, s, "JSON");
    }
    const uint8_t *wrong_way[] = {&pong, &me, &error};
    for (size_t i = 0; i < 3; i++) {
        const void *d[] = {wrong_way[i]};
        size_t s[] = {1};
        s_expect_error(peer, 1, d, s, "only be sent by a server");
    }
    {
        size_t size = 3u << 19; /* 1.5 MiB of valid JSON: under the socket's limit of 2 MiB */
        char *big = malloc(size);
        memset(big, ' ', size);
        big[0] = '[';
        big[size - 1] = ']';
        const void *d[] = {&who, big};
        size_t s[] = {1, size};
        s_expect_error(peer, 2, d, s, "exceeds the limit");
        free(big);
    }
    json_t *me_payload = s_who(peer); /* still serving */
    assert_int_equal(json_array_size(json_object_get(me_payload, "devices")), 1);
    json_decref(me_payload);
    sk2_server_stats_t stats;
    assert_int_equal(sk2_server_stats(server, &stats), 0);
    assert_int_equal(stats.bad_requests, 9);
    assert_int_equal(stats.requests, 10);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

static void test_peers_that_vanish_mid_request_do_not_disturb_others(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    for (int i = 0; i < 20; i++) {
        zsock_t *rude = zsock_new(ZMQ_REQ);
        zsock_set_linger(rude, 0);
        zsock_connect(rude, "%s", sk2_server_endpoint(server));
        zstr_send(rude, "\x03");
        zsock_destroy(&rude); /* gone before the reply */
    }
    zsock_t *peer = s_peer(server);
    json_t *me = s_who(peer);
    assert_int_equal(json_array_size(json_object_get(me, "devices")), 1);
    json_decref(me);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

/* The version-1 REP socket kept every frame up to the empty delimiter as the reply's routing
 * stack, and ignored a message without one; the ROUTER that replaced it must do the same, byte
 * for byte, and count what it ignores. */
static void test_answers_keep_the_routing_stack_as_rep_did(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(0);
    zsock_t *peer = s_peer(server);
    /* No envelope a REP would answer: no delimiter, nothing after it, or too deep a stack. */
    assert_int_equal(zstr_send(peer, "\x01"), 0);
    assert_int_equal(zstr_send(peer, ""), 0);
    zmsg_t *deep = zmsg_new();
    for (int i = 0; i < 10; i++)
        zmsg_addstr(deep, "hop");
    zmsg_addmem(deep, "", 0);
    zmsg_addmem(deep, "\x01", 1);
    assert_int_equal(zmsg_send(&deep, peer), 0);
    /* Two routing frames, then the delimiter and a ping: the pong comes back under both. */
    zmsg_t *msg = zmsg_new();
    zmsg_addstr(msg, "first hop");
    zmsg_addmem(msg, "\x00\x01\x02", 3);
    zmsg_addmem(msg, "", 0);
    zmsg_addmem(msg, "\x01", 1);
    assert_int_equal(zmsg_send(&msg, peer), 0);
    zmsg_t *reply = zmsg_recv(peer); /* the first answer of all: the ignored ones got none */
    assert_non_null(reply);
    assert_int_equal(zmsg_size(reply), 4);
    zframe_t *f = zmsg_first(reply);
    assert_true(zframe_streq(f, "first hop"));
    f = zmsg_next(reply);
    assert_int_equal(zframe_size(f), 3);
    assert_memory_equal(zframe_data(f), "\x00\x01\x02", 3);
    assert_int_equal(zframe_size(zmsg_next(reply)), 0);
    f = zmsg_next(reply);
    assert_int_equal(zframe_size(f), 1);
    assert_int_equal(zframe_data(f)[0], 0x02);
    zmsg_destroy(&reply);
    sk2_server_stats_t stats;
    assert_int_equal(sk2_server_stats(server, &stats), 0);
    assert_int_equal(stats.control_ignored, 3);
    assert_int_equal(stats.requests, 1);
    assert_int_equal(stats.control_dropped, 0);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

static void test_max_streams_takes_0_to_its_maximum(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("cap");
    assert_int_equal(sk2_server_set_max_streams(NULL, 1), SK2_EINVAL);
    assert_int_equal(sk2_server_set_max_streams(server, SK2_SERVER_MAX_STREAMS_MAX + 1),
                     SK2_EINVAL);
    assert_int_equal(sk2_server_set_max_streams(server, 0), 0);
    assert_int_equal(sk2_server_set_max_streams(server, SK2_SERVER_MAX_STREAMS_MAX), 0);
    assert_int_equal(sk2_server_set_max_streams(server, 1), 0);
    sk2_server_destroy(&server);
}

static zsock_t *s_subscribe(const char *endpoint, int hwm)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    zsock_set_rcvhwm(sub, hwm);
    zsock_set_rcvtimeo(sub, 5000);
    zsock_set_subscribe(sub, "");
    assert_int_equal(zsock_connect(sub, "%s", endpoint), 0);
    return sub;
}

static const char *s_depth_endpoint(json_t *me, size_t index)
{
    json_t *device = json_array_get(json_object_get(me, "devices"), index);
    return json_string_value(json_object_get(json_object_get(device, "endpoints"), "depth"));
}

static void test_depth_endpoint_carries_the_mock_scene_in_depth12(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    zsock_t *peer = s_peer(server);
    json_t *me = s_who(peer);
    zsock_t *sub = s_subscribe(s_depth_endpoint(me, 0), 4);
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
    sk2_frame_t *frame =
        sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT);
    for (int i = 0; i < 10; i++) {
        zmsg_t *msg = zmsg_recv(sub);
        assert_non_null(msg);
        assert_int_equal(zmsg_size(msg), 1); /* one frame, no topic, no header */
        zframe_t *wire = zmsg_first(msg);
        assert_int_equal(sk2_codec_decode(codec, zframe_data(wire), zframe_size(wire), frame), 0);
        int dx = 1000;
        assert_int_equal(
            sk2_mock_match(sk2_frame_cdata16(frame), SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT, 16, &dx), 0);
        assert_true(dx >= -100 && dx <= 100);
        zmsg_destroy(&msg);
    }
    sk2_frame_destroy(&frame);
    zsock_destroy(&sub);
    json_decref(me);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

static void test_devices_come_and_go_while_serving(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    zsock_t *peer = s_peer(server);
    sk2_device_t *device = s_mock(30, "added-later");
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    json_t *me = s_who(peer);
    assert_int_equal(json_array_size(json_object_get(me, "devices")), 2);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(me, "devices"), 1), "id")),
        "added-later");
    json_decref(me);
    assert_int_equal(sk2_server_remove_device(server, "added-later"), 0);
    assert_int_equal(sk2_server_remove_device(server, "added-later"), SK2_ENOTFOUND);
    me = s_who(peer);
    assert_int_equal(json_array_size(json_object_get(me, "devices")), 1);
    json_decref(me);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

static void test_a_subscriber_that_stops_reading_does_not_stall_the_others(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("slow");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = s_mock(100, NULL);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    zsock_t *peer = s_peer(server);
    json_t *me = s_who(peer);
    zsock_t *stalled = s_subscribe(s_depth_endpoint(me, 0), 1); /* never read */
    zsock_t *reader = s_subscribe(s_depth_endpoint(me, 0), 4);
    /* The stalled peer's queue fills after one frame; if it held the publisher back, the
     * reader would get no more than its own few queued frames. It gets 60 (a count within a
     * generous deadline: the machine may be busy). */
    zsock_set_rcvtimeo(reader, 30000);
    for (int got = 0; got < 60; got++) {
        zmsg_t *msg = zmsg_recv(reader);
        assert_non_null(msg);
        zmsg_destroy(&msg);
    }
    json_decref(me);
    zsock_destroy(&reader);
    zsock_destroy(&stalled);
    zsock_destroy(&peer);
    sk2_server_destroy(&server);
}

static void test_counters_account_for_every_frame(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("count");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_server_set_queue_frames(server, 0), SK2_EINVAL);
    assert_int_equal(sk2_server_set_queue_frames(server, 65), SK2_EINVAL);
    assert_int_equal(sk2_server_set_queue_frames(server, 1), 0);
    sk2_device_t *device = s_mock(200, "fast");
    assert_int_equal(sk2_server_add_device(server, &device), 0);

    /* Nobody subscribed: frames are produced but never encoded. */
    sk2_server_stats_t stats = {0};
    int64_t start = sk2_clock_mono_us();
    while (stats.frames_idle < 20 && sk2_clock_mono_us() - start < 10000000)
        assert_int_equal(sk2_server_stats(server, &stats), 0);
    assert_true(stats.frames_idle >= 20);
    assert_int_equal(stats.frames_encoded, 0);
    assert_int_equal(stats.encodings, 0);

    zsock_t *peer = s_peer(server);
    json_t *me = s_who(peer);
    zsock_t *sub = s_subscribe(s_depth_endpoint(me, 0), 4);
    start = sk2_clock_mono_us();
    while (stats.frames_published < 50 && sk2_clock_mono_us() - start < 10000000) {
        assert_int_equal(sk2_server_stats(server, &stats), 0);
        zmsg_t *msg = zmsg_recv(sub);
        zmsg_destroy(&msg);
    }
    assert_true(stats.frames_published >= 50);
    zsock_destroy(&sub);
    json_decref(me);
    zsock_destroy(&peer);
    assert_int_equal(sk2_server_remove_device(server, "fast"), 0);
    assert_int_equal(sk2_server_stats(server, &stats), 0);
    assert_int_equal(stats.devices, 0);
    /* Once a device is gone, every frame it produced was encoded, idle or dropped. */
    assert_int_equal(stats.frames_produced,
                     stats.frames_encoded + stats.frames_idle + stats.frames_dropped);
    assert_int_equal(stats.frames_encoded, stats.frames_published);
    assert_int_equal(stats.encodings, stats.frames_encoded); /* depth12 only */
    assert_true(stats.bytes_published > 0 && stats.bytes_published < stats.bytes_raw);
    sk2_server_destroy(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_refuses_bad_names_and_destroy_is_idempotent),
        cmocka_unit_test(test_bind_hands_out_numeric_endpoints_with_os_ports),
        cmocka_unit_test(test_a_port_just_closed_is_not_the_next_servers),
        cmocka_unit_test(test_devices_need_a_bound_server_and_unique_ids),
        cmocka_unit_test(test_who_describes_the_server_as_protocol_version_1),
        cmocka_unit_test(test_ping_is_answered_with_an_empty_pong),
        cmocka_unit_test(test_every_malformed_request_gets_an_error_and_serving_goes_on),
        cmocka_unit_test(test_peers_that_vanish_mid_request_do_not_disturb_others),
        cmocka_unit_test(test_answers_keep_the_routing_stack_as_rep_did),
        cmocka_unit_test(test_max_streams_takes_0_to_its_maximum),
        cmocka_unit_test(test_depth_endpoint_carries_the_mock_scene_in_depth12),
        cmocka_unit_test(test_devices_come_and_go_while_serving),
        cmocka_unit_test(test_a_subscriber_that_stops_reading_does_not_stall_the_others),
        cmocka_unit_test(test_counters_account_for_every_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
