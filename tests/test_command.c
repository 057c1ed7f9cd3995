/* Keyed commands: the client's sk2_client_command and its COMMAND_DONE event against a real sk2
 * server in the same process, and the server's cache of ids seen through a raw DEALER that
 * sends one id twice. Also the usage example of the command API. */
#include <math.h>
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
    sk2_server_t *server = sk2_server_new("command test");
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

/* Sends one raw message (type byte and payload) on a DEALER and returns the answer's payload
 * text (caller frees), with its type byte in *type. */
static char *s_ask(zsock_t *dealer, uint8_t type_byte, const char *payload, uint8_t *type)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, "", 0);
    zmsg_addmem(msg, &type_byte, 1);
    zmsg_addstr(msg, payload);
    assert_int_equal(zmsg_send(&msg, dealer), 0);
    zsock_set_rcvtimeo(dealer, 5000);
    zmsg_t *reply = zmsg_recv(dealer);
    assert_non_null(reply);
    zframe_t *delimiter = zmsg_pop(reply);
    zframe_t *kind = zmsg_pop(reply);
    assert_non_null(kind);
    *type = zframe_data(kind)[0];
    char *text = zmsg_popstr(reply);
    zframe_destroy(&delimiter);
    zframe_destroy(&kind);
    zmsg_destroy(&reply);
    return text;
}

/* The number after "key": in a JSON text (the stats totals are flat numbers). */
static long long s_number(const char *json, const char *key)
{
    char needle[64];
    snprintf(needle, sizeof needle, "\"%s\":", key);
    const char *at = strstr(json, needle);
    assert_non_null(at);
    return strtoll(at + strlen(needle), NULL, 10);
}

static void test_arguments_are_checked_before_anything_is_sent(void **state)
{
    (void)state;
    sk2_client_t *client = sk2_client_new();
    char id[SK2_CLIENT_COMMAND_ID_MAX + 1];
    assert_int_equal(sk2_client_command(client, NULL, "label", "\"x\"", 0, id, sizeof id),
                     SK2_ESTATE);
    sk2_server_t *server = s_server(1);
    sk2_client_destroy(&client);
    client = s_connected(server);
    assert_int_equal(sk2_client_command(NULL, NULL, "label", "\"x\"", 0, NULL, 0), SK2_EINVAL);
    assert_int_equal(sk2_client_command(client, NULL, NULL, NULL, 0, NULL, 0), SK2_EINVAL);
    assert_int_equal(sk2_client_command(client, NULL, "", NULL, 0, NULL, 0), SK2_EINVAL);
    assert_int_equal(sk2_client_command(client, "", "label", NULL, 0, NULL, 0), SK2_EINVAL);
    assert_int_equal(sk2_client_command(client, NULL, "label", "{", 0, NULL, 0), SK2_EINVAL);
    assert_int_equal(sk2_client_command(client, NULL, "label", "[1]", 0, NULL, 0), SK2_EINVAL);
    assert_int_equal(sk2_client_command(client, NULL, "label", "\"x\"", 99, NULL, 0), SK2_EINVAL);
    assert_int_equal(sk2_client_command(client, NULL, "label", "\"x\"", 0, id, 8), SK2_EINVAL);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_a_command_ends_with_one_event_carrying_the_answer(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    sk2_client_t *client = s_connected(server);
    const char *device = sk2_client_device_id(client, 0);
    assert_non_null(device);
    char device_id[SK2_DEVICE_ID_MAX + 1];
    snprintf(device_id, sizeof device_id, "%s", device);

    /* A ping first: its PONG is queued before the command's event. */
    assert_int_equal(sk2_client_ping(client), 0);
    char id[SK2_CLIENT_COMMAND_ID_MAX + 1];
    assert_int_equal(
        sk2_client_command(client, device_id, "label", "\"porch\"", 2000, id, sizeof id), 0);
    char refused[SK2_CLIENT_COMMAND_ID_MAX + 1];
    assert_int_equal(
        sk2_client_command(client, device_id, "fps", "5000", 0, refused, sizeof refused), 0);
    assert_string_not_equal(id, refused);

    int seen[32] = {0};
    sk2_event_t *done = testutil_wait_event(client, SK2_EVENT_COMMAND_DONE, NULL, 5000, seen);
    assert_non_null(done);
    assert_int_equal(seen[SK2_EVENT_PONG], 1);
    assert_string_equal(sk2_event_type_name(SK2_EVENT_COMMAND_DONE), "command-done");
    assert_string_equal(sk2_event_command_id(done), id);
    assert_int_equal(sk2_event_error(done), 0);
    assert_string_equal(sk2_event_command_code(done), "");
    assert_int_equal(sk2_event_command_sends(done), 1);
    assert_true(sk2_event_command_rtt_us(done) > 0);
    assert_string_equal(sk2_event_device_id(done), device_id);
    assert_non_null(strstr(sk2_event_json(done), "\"value\":\"porch\""));
    sk2_event_destroy(&done);

    done = testutil_wait_event(client, SK2_EVENT_COMMAND_DONE, NULL, 5000, NULL);
    assert_non_null(done);
    assert_string_equal(sk2_event_command_id(done), refused);
    assert_int_equal(sk2_event_error(done), SK2_ESERVER);
    assert_string_equal(sk2_event_command_code(done), "bad-value");
    assert_non_null(strstr(sk2_event_reason(done), "0..1000"));
    sk2_event_destroy(&done);

    /* The label is in the next `me`. */
    assert_int_equal(sk2_client_refresh(client), 0);
    for (int i = 0; i < 50 && !sk2_client_device_label(client, device_id); i++) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 100) == 0)
            sk2_event_destroy(&event);
    }
    assert_non_null(sk2_client_device_label(client, device_id));
    assert_string_equal(sk2_client_device_label(client, device_id), "porch");
    assert_null(sk2_client_device_location(client, device_id));

    /* Nothing more follows: each command ended once. */
    int after[32] = {0};
    sk2_event_t *more = testutil_wait_event(client, SK2_EVENT_COMMAND_DONE, NULL, 600, after);
    assert_null(more);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* Sends one command and waits for its end; returns the event (caller destroys). */
static sk2_event_t *s_command(sk2_client_t *client, const char *device_id, const char *key,
                              const char *value)
{
    char id[SK2_CLIENT_COMMAND_ID_MAX + 1];
    assert_int_equal(sk2_client_command(client, device_id, key, value, 2000, id, sizeof id), 0);
    sk2_event_t *done = testutil_wait_event(client, SK2_EVENT_COMMAND_DONE, NULL, 5000, NULL);
    assert_non_null(done);
    assert_string_equal(sk2_event_command_id(done), id);
    return done;
}

static void test_resolution_and_codec_reach_clients_through_me(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    sk2_client_t *client = s_connected(server);
    char device_id[SK2_DEVICE_ID_MAX + 1];
    snprintf(device_id, sizeof device_id, "%s", sk2_client_device_id(client, 0));
    assert_string_equal(sk2_client_stream_codec(client, device_id, SK2_STREAM_DEPTH), "sk2d");

    /* Impossible sizes and codecs are refused and change nothing. */
    static const char *const bad_sizes[] = {"\"0x0\"", "\"abc\"", "\"640x480\"", "512"};
    for (size_t i = 0; i < sizeof bad_sizes / sizeof bad_sizes[0]; i++) {
        sk2_event_t *done = s_command(client, device_id, "resolution.depth", bad_sizes[i]);
        assert_int_equal(sk2_event_error(done), SK2_ESERVER);
        assert_string_equal(sk2_event_command_code(done), "bad-value");
        sk2_event_destroy(&done);
    }
    sk2_event_t *done = s_command(client, device_id, "resolution.depth", "\"640x480\"");
    assert_non_null(strstr(sk2_event_reason(done), "256x212, 512x424, 1024x848"));
    sk2_event_destroy(&done);
    done = s_command(client, device_id, "codec.depth", "\"jpeg\"");
    assert_string_equal(sk2_event_command_code(done), "bad-value");
    sk2_event_destroy(&done);

    done = s_command(client, device_id, "resolution.depth", "\"256x212\"");
    assert_int_equal(sk2_event_error(done), 0);
    assert_non_null(strstr(sk2_event_json(done), "\"value\":\"256x212\""));
    sk2_event_destroy(&done);
    done = s_command(client, device_id, "codec.depth", "\"png\"");
    assert_int_equal(sk2_event_error(done), 0);
    sk2_event_destroy(&done);

    /* The next `me` has the new size, intrinsics scaled with it, and the default codec. */
    assert_int_equal(sk2_client_refresh(client), 0);
    sk2_stream_info_t info = {0};
    for (int i = 0; i < 50 && info.width != 256; i++) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 100) == 0)
            sk2_event_destroy(&event);
        assert_int_equal(sk2_client_stream_info(client, device_id, SK2_STREAM_DEPTH, &info), 0);
    }
    assert_int_equal(info.width, 256);
    assert_int_equal(info.height, 212);
    assert_true(info.has_intrinsics);
    assert_true(fabs(info.intrinsics.fx - 365.456 / 2) < 1e-3);
    assert_true(fabs(info.intrinsics.cx - ((254.878 + 0.5) / 2 - 0.5)) < 1e-3);
    assert_string_equal(sk2_client_stream_codec(client, device_id, SK2_STREAM_DEPTH), "png");
    assert_int_equal(sk2_client_stream_info(client, device_id, SK2_STREAM_IR, &info), 0);
    assert_int_equal(info.width, SK2_MOCK_WIDTH);

    /* A subscription without a codec gets the default; its frames are the scene at 256x212. */
    assert_int_equal(sk2_client_subscribe(client, device_id, SK2_STREAM_DEPTH, NULL), 0);
    sk2_event_t *frame_event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 10000, NULL);
    assert_non_null(frame_event);
    assert_string_equal(sk2_event_codec(frame_event), "png");
    const sk2_frame_t *frame = sk2_event_frame(frame_event);
    assert_int_equal(sk2_frame_width(frame), 256);
    assert_int_equal(sk2_frame_height(frame), 212);
    int dx = 0;
    assert_int_equal(sk2_mock_match(sk2_frame_cdata16(frame), 256, 212, 16, &dx), 0);
    sk2_event_destroy(&frame_event);
    assert_int_equal(sk2_client_unsubscribe(client, device_id, SK2_STREAM_DEPTH, NULL), 0);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_the_mock_scene_matches_at_its_sizes_only(void **state)
{
    (void)state;
    uint16_t *native = malloc((size_t)SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT * sizeof *native);
    uint16_t *half = malloc((size_t)256 * 212 * sizeof *half);
    assert_non_null(native);
    assert_non_null(half);
    sk2_mock_render(native, 37);
    for (uint32_t v = 0; v < 212; v++)
        for (uint32_t u = 0; u < 256; u++)
            half[v * 256 + u] = native[(size_t)v * 2 * SK2_MOCK_WIDTH + u * 2];
    int dx = 0;
    assert_int_equal(sk2_mock_match(native, SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT, 16, &dx), 0);
    assert_int_equal(dx, 37);
    dx = 0;
    assert_int_equal(sk2_mock_match(half, 256, 212, 16, &dx), 0);
    assert_int_equal(dx, 37);
    assert_int_equal(sk2_mock_match(half, 212, 256, 16, &dx), SK2_EINVAL);
    assert_int_equal(sk2_mock_match(half, 320, 240, 16, &dx), SK2_EINVAL);
    half[0] ^= 1;
    assert_int_equal(sk2_mock_match(half, 256, 212, 16, &dx), SK2_ENOTFOUND);
    free(native);
    free(half);
}

static void test_a_repeated_id_is_answered_alike_and_applied_once(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(1);
    zsock_t *dealer = zsock_new_dealer(sk2_server_endpoint(server));
    assert_non_null(dealer);
    uint8_t type = 0;
    const char *command =
        "{\"id\":\"t-1\",\"key\":\"location\",\"value\":\"hall\",\"ttl_ms\":60000}";
    char *first = s_ask(dealer, 0x09, command, &type);
    assert_int_equal(type, 0x0a);
    assert_non_null(strstr(first, "\"ok\":true"));
    /* The same id with another value: the stored answer, nothing applied. */
    const char *again =
        "{\"id\":\"t-1\",\"key\":\"location\",\"value\":\"attic\",\"ttl_ms\":60000}";
    char *second = s_ask(dealer, 0x09, again, &type);
    assert_int_equal(type, 0x0a);
    assert_string_equal(first, second);
    char *stats = s_ask(dealer, 0x05, "{}", &type);
    assert_int_equal(type, 0x06);
    assert_int_equal(s_number(stats, "commands"), 2);
    assert_int_equal(s_number(stats, "commands_applied"), 1);
    assert_int_equal(s_number(stats, "commands_repeated"), 1);
    char *me = s_ask(dealer, 0x03, "{}", &type);
    assert_non_null(strstr(me, "\"location\":\"hall\""));
    assert_null(strstr(me, "attic"));
    assert_non_null(strstr(me, "\"commands\":1"));
    /* Without a usable id there is nothing to answer by: an error message. */
    char *no_id = s_ask(dealer, 0x09, "{\"key\":\"label\"}", &type);
    assert_int_equal(type, 0x00);
    assert_non_null(strstr(no_id, "printable ASCII"));
    free(first);
    free(second);
    free(stats);
    free(me);
    free(no_id);
    zsock_destroy(&dealer);
    sk2_server_destroy(&server);
}

static void test_a_command_nobody_answers_times_out_after_its_ttl(void **state)
{
    (void)state;
    /* A server that answers `who` (saying it takes commands) and nothing else. */
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    assert_non_null(router);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_connect(client, endpoint), 0);
    zsock_set_rcvtimeo(router, 5000);
    zmsg_t *who = zmsg_recv(router);
    assert_non_null(who);
    zframe_t *peer = zmsg_pop(who);
    zmsg_destroy(&who);
    zmsg_t *me = zmsg_new();
    zmsg_append(me, &peer);
    zmsg_addmem(me, "", 0);
    zmsg_addmem(me, "\x04", 1);
    zmsg_addstr(me,
                "{\"version\":1,\"name\":\"mute\",\"endpoints\":{},\"devices\":[],\"commands\":1}");
    assert_int_equal(zmsg_send(&me, router), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);

    char id[SK2_CLIENT_COMMAND_ID_MAX + 1];
    int64_t start_us = sk2_clock_mono_us();
    assert_int_equal(sk2_client_command(client, NULL, "label", "\"x\"", 700, id, sizeof id), 0);
    event = testutil_wait_event(client, SK2_EVENT_COMMAND_DONE, NULL, 5000, NULL);
    int64_t took_us = sk2_clock_mono_us() - start_us;
    assert_non_null(event);
    assert_string_equal(sk2_event_command_id(event), id);
    assert_int_equal(sk2_event_error(event), SK2_ETIMEDOUT);
    assert_non_null(strstr(sk2_event_reason(event), "within its ttl"));
    assert_null(sk2_event_json(event));
    /* Sent at once and every 200 ms until the ttl: 4 times in 700 ms. */
    assert_true(sk2_event_command_sends(event) >= 2);
    assert_true(sk2_event_command_sends(event) <= 5);
    assert_true(took_us >= 700000);
    sk2_event_destroy(&event);
    /* The copies reached the server: count them. */
    int copies = 0;
    zsock_set_rcvtimeo(router, 200);
    for (zmsg_t *msg; (msg = zmsg_recv(router)) != NULL; zmsg_destroy(&msg)) {
        /* peer id, delimiter, type byte, payload */
        zmsg_first(msg);
        zmsg_next(msg);
        zframe_t *type = zmsg_next(msg);
        copies += type && zframe_size(type) == 1 && zframe_data(type)[0] == 0x09;
    }
    assert_true(copies >= 2);
    sk2_client_destroy(&client);
    zsock_destroy(&router);
}

static void test_a_server_without_commands_is_not_sent_any(void **state)
{
    (void)state;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_connect(client, endpoint), 0);
    zsock_set_rcvtimeo(router, 5000);
    zmsg_t *who = zmsg_recv(router);
    assert_non_null(who);
    zframe_t *peer = zmsg_pop(who);
    zmsg_destroy(&who);
    zmsg_t *me = zmsg_new();
    zmsg_append(me, &peer);
    zmsg_addmem(me, "", 0);
    zmsg_addmem(me, "\x04", 1);
    zmsg_addstr(me, "{\"version\":1,\"name\":\"old\",\"endpoints\":{},\"devices\":[]}");
    assert_int_equal(zmsg_send(&me, router), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_command(client, NULL, "label", "\"x\"", 0, NULL, 0),
                     SK2_EUNSUPPORTED);
    sk2_client_destroy(&client);
    zsock_destroy(&router);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_arguments_are_checked_before_anything_is_sent),
        cmocka_unit_test(test_a_command_ends_with_one_event_carrying_the_answer),
        cmocka_unit_test(test_a_repeated_id_is_answered_alike_and_applied_once),
        cmocka_unit_test(test_a_command_nobody_answers_times_out_after_its_ttl),
        cmocka_unit_test(test_a_server_without_commands_is_not_sent_any),
        cmocka_unit_test(test_resolution_and_codec_reach_clients_through_me),
        cmocka_unit_test(test_the_mock_scene_matches_at_its_sizes_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
