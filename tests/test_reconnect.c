/* The client's reconnection against real servers in the same process: one stopped, another
 * started on the same port with a different set of devices. Also the usage example for
 * sk2_client_set_reconnect: follow RECONNECTING / RECONNECTED and keep receiving. */
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

/* A server on 127.0.0.1:port (0: any) with mock devices of the given ids, at fps. */
static sk2_server_t *s_server_at(int port, const char *const *ids, size_t count, double fps)
{
    sk2_server_t *server = sk2_server_new("reconnect test");
    assert_non_null(server);
    assert_true(sk2_server_bind(server, "127.0.0.1", port) >= 0);
    for (size_t i = 0; i < count; i++) {
        sk2_device_t *device = sk2_device_new("mock");
        assert_int_equal(sk2_device_set_id(device, ids[i]), 0);
        assert_int_equal(sk2_device_set_fps(device, fps), 0);
        assert_int_equal(sk2_server_add_device(server, &device), 0);
    }
    return server;
}

static sk2_server_t *s_server(int port, const char *const *ids, size_t count)
{
    return s_server_at(port, ids, count, 30);
}

static int s_port(sk2_server_t *server)
{
    const char *colon = strrchr(sk2_server_endpoint(server), ':');
    assert_non_null(colon);
    return atoi(colon + 1);
}

/* A reconnecting client with quick timers, connected to server. */
static sk2_client_t *s_client(sk2_server_t *server)
{
    sk2_client_t *client = sk2_client_new();
    assert_non_null(client);
    assert_int_equal(sk2_client_set_reconnect(client, true), 0);
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 200), 0);
    assert_int_equal(sk2_client_set_response_timeout_ms(client, 1000), 0);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    return client;
}

static void test_settings_are_checked(void **state)
{
    (void)state;
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_reconnect(NULL, true), SK2_EINVAL);
    assert_int_equal(sk2_client_set_give_up_after_ms(client, -1), SK2_EINVAL);
    assert_int_equal(sk2_client_set_give_up_after_ms(client, 99), SK2_EINVAL);
    assert_int_equal(sk2_client_set_give_up_after_ms(client, (int64_t)INT32_MAX + 1), SK2_EINVAL);
    assert_int_equal(sk2_client_set_give_up_after_ms(client, 0), 0);
    assert_int_equal(sk2_client_set_give_up_after_ms(client, 100), 0);
    assert_false(sk2_client_is_reconnecting(client));
    assert_string_equal(sk2_event_type_name(SK2_EVENT_RECONNECTING), "reconnecting");
    assert_string_equal(sk2_event_type_name(SK2_EVENT_RECONNECTED), "reconnected");
    sk2_client_destroy(&client);
}

/* The server goes, another comes on the same port: the client says so, re-subscribes what it
 * had, reports the devices that vanished and appeared, and frames flow again although the new
 * server numbers its frames from the start. */
static void test_a_restarted_server_is_followed(void **state)
{
    (void)state;
    static const char *const before[] = {"cam-a", "cam-b"};
    static const char *const after[] = {"cam-b", "cam-c"};
    /* The first server counts fast and the second slowly, so that the frames after the return
     * carry smaller sequence numbers however long the reconnection takes on a busy machine. */
    sk2_server_t *server = s_server_at(0, before, 2, 200);
    int port = s_port(server);
    sk2_client_t *client = s_client(server);
    assert_int_equal(sk2_client_subscribe(client, "cam-b", SK2_STREAM_DEPTH, "sk2d"), 0);
    uint64_t sequence_before = 0;
    for (int i = 0; i < 10000 && sequence_before < 1000; i++) {
        sk2_event_t *frame = testutil_wait_event(client, SK2_EVENT_FRAME, "cam-b", 10000, NULL);
        assert_non_null(frame);
        sequence_before = sk2_frame_sequence(sk2_event_frame(frame));
        sk2_event_destroy(&frame);
    }
    assert_true(sequence_before >= 1000);
    sk2_event_t *event = NULL;

    sk2_server_destroy(&server);
    int seen[32] = {0};
    event = testutil_wait_event(client, SK2_EVENT_RECONNECTING, NULL, 5000, seen);
    assert_non_null(event);
    assert_true(sk2_event_error(event) != 0);
    assert_true(strlen(sk2_event_reason(event)) > 0);
    assert_true(sk2_event_lost_at_us(event) > 0);
    sk2_event_destroy(&event);
    assert_int_equal(seen[SK2_EVENT_DISCONNECTED], 0);
    assert_true(sk2_client_is_connected(client));
    assert_true(sk2_client_is_reconnecting(client));
    assert_int_equal(sk2_client_ping(client), SK2_EAGAIN);
    /* The retry timer is in the client's timeout: never more than the 5 s cap away. */
    int timeout_ms = sk2_client_timeout_ms(client);
    assert_true(timeout_ms >= 0 && timeout_ms <= 5000);

    /* Nothing but retries while the server is away. */
    event = testutil_wait_event(client, SK2_EVENT_DISCONNECTED, NULL, 1500, seen);
    assert_null(event);
    assert_int_equal(seen[SK2_EVENT_RECONNECTED], 0);

    server = s_server_at(port, after, 2, 5);
    event = testutil_wait_event(client, SK2_EVENT_RECONNECTED, NULL, 15000, seen);
    assert_non_null(event);
    assert_true(sk2_event_outage_us(event) >= 1000000);
    sk2_event_destroy(&event);
    assert_false(sk2_client_is_reconnecting(client));
    /* In either order: the new server's first `me` may be answered between the cameras being
     * added (the server binds, then adds them one by one), so that cam-a's removal comes first
     * and cam-c's addition a heartbeat later. A `me` answered before cam-b was added makes it
     * blink: removed, then added again; that is allowed, as a pair, and nothing else is. */
    int added_c = 0, removed_a = 0, others = 0, removed_b = 0, added_b = 0;
    for (int64_t deadline = sk2_clock_mono_us() + 10000000;
         (!added_c || !removed_a) && sk2_clock_mono_us() < deadline;) {
        event = NULL;
        int rc = sk2_client_recv(client, &event, 100);
        if (rc == SK2_ETIMEDOUT)
            continue;
        assert_int_equal(rc, 0);
        sk2_event_type_t type = sk2_event_type(event);
        const char *id = sk2_event_device_id(event);
        if (type == SK2_EVENT_DEVICE_ADDED && strcmp(id, "cam-c") == 0)
            added_c++;
        else if (type == SK2_EVENT_DEVICE_REMOVED && strcmp(id, "cam-a") == 0)
            removed_a++;
        else if (type == SK2_EVENT_DEVICE_REMOVED && strcmp(id, "cam-b") == 0)
            removed_b++;
        else if (type == SK2_EVENT_DEVICE_ADDED && strcmp(id, "cam-b") == 0)
            added_b++;
        else if (type == SK2_EVENT_DEVICE_ADDED || type == SK2_EVENT_DEVICE_REMOVED)
            others++;
        sk2_event_destroy(&event);
    }
    /* A blink of cam-b ends with its addition, a heartbeat after its removal. */
    for (int64_t deadline = sk2_clock_mono_us() + 10000000;
         removed_b > added_b && sk2_clock_mono_us() < deadline;) {
        event = NULL;
        if (sk2_client_recv(client, &event, 100) != 0)
            continue;
        if (sk2_event_type(event) == SK2_EVENT_DEVICE_ADDED &&
            strcmp(sk2_event_device_id(event), "cam-b") == 0)
            added_b++;
        else if (sk2_event_type(event) == SK2_EVENT_DEVICE_ADDED ||
                 sk2_event_type(event) == SK2_EVENT_DEVICE_REMOVED)
            others++;
        sk2_event_destroy(&event);
    }
    assert_true(removed_b <= 1 && added_b == removed_b);
    assert_int_equal(added_c, 1);
    assert_int_equal(removed_a, 1);
    assert_int_equal(others, 0);
    assert_int_equal(seen[SK2_EVENT_DEVICE_REMOVED], 0);

    /* A blink was a real removal: the server had no cam-b when it answered that `me`, and a
     * removed device takes its subscriptions with it (seen under AddressSanitizer, where the
     * server adds its devices slowly). So after a blink the test subscribes again itself. */
    if (removed_b)
        assert_int_equal(sk2_client_subscribe(client, "cam-b", SK2_STREAM_DEPTH, "sk2d"), 0);
    /* cam-b was subscribed again (without being asked, unless it blinked); the new server counts
     * from 0, and its frames are taken, not dropped as old ones. */
    event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam-b", 10000, NULL);
    assert_non_null(event);
    assert_true(sk2_frame_sequence(sk2_event_frame(event)) < sequence_before);
    assert_int_equal(sk2_event_gap(event), 0);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_ping(client), 0);
    event = testutil_wait_event(client, SK2_EVENT_PONG, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* --give-up-after in the library: DISCONNECTED with SK2_ETIMEDOUT, then the session is over. */
static void test_it_gives_up_when_told(void **state)
{
    (void)state;
    static const char *const ids[] = {"cam-a"};
    sk2_server_t *server = s_server(0, ids, 1);
    sk2_client_t *client = s_client(server);
    assert_int_equal(sk2_client_set_give_up_after_ms(client, 500), 0);
    sk2_server_destroy(&server);
    int seen[32] = {0};
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DISCONNECTED, NULL, 10000, seen);
    assert_non_null(event);
    assert_int_equal(sk2_event_error(event), SK2_ETIMEDOUT);
    sk2_event_destroy(&event);
    assert_int_equal(seen[SK2_EVENT_RECONNECTING], 1);
    assert_false(sk2_client_is_connected(client));
    assert_int_equal(sk2_client_recv(client, &event, 0), SK2_ESTATE);
    sk2_client_destroy(&client);
}

/* A reconnecting client destroyed just as its server goes: the control socket reports the
 * disconnection from libzmq's I/O thread with a blocking send to the client's monitor. Were
 * the monitor's reader gone before the monitor stopped, that send would wait for ever and
 * every socket of the process would stall (a relay stopped answering that way when a pushed
 * server vanished). Many rounds with varied timing, then a new client must still connect. */
static void test_closing_while_the_server_goes_stalls_nothing(void **state)
{
    (void)state;
    static const char *const ids[] = {"cam-a"};
    for (int round = 0; round < 40; round++) {
        sk2_server_t *server = s_server(0, ids, 1);
        sk2_client_t *client = s_client(server);
        sk2_server_destroy(&server);
        zclock_sleep(round % 8);
        sk2_client_destroy(&client);
    }
    sk2_server_t *server = s_server(0, ids, 1);
    sk2_client_t *client = s_client(server); /* waits at most 5 s for CONNECTED */
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* Without sk2_client_set_reconnect a lost server still ends the session, as before. */
static void test_reconnection_is_off_by_default(void **state)
{
    (void)state;
    static const char *const ids[] = {"cam-a"};
    sk2_server_t *server = s_server(0, ids, 1);
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 200), 0);
    assert_int_equal(sk2_client_set_response_timeout_ms(client, 500), 0);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    sk2_server_destroy(&server);
    int seen[32] = {0};
    event = testutil_wait_event(client, SK2_EVENT_DISCONNECTED, NULL, 10000, seen);
    assert_non_null(event);
    assert_int_equal(sk2_event_error(event), SK2_ETIMEDOUT);
    sk2_event_destroy(&event);
    assert_int_equal(seen[SK2_EVENT_RECONNECTING], 0);
    sk2_client_destroy(&client);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_settings_are_checked),
        cmocka_unit_test(test_a_restarted_server_is_followed),
        cmocka_unit_test(test_it_gives_up_when_told),
        cmocka_unit_test(test_reconnection_is_off_by_default),
        cmocka_unit_test(test_closing_while_the_server_goes_stalls_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
