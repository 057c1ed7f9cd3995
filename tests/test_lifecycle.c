/* The server's control actor never waits on a device: a camera that takes seconds to open, on
 * add or when it comes back after a hot-plug, does not hold up anybody's `ping`, and the list
 * of lost devices the server watches is bounded. The slow camera is the mock behind an open
 * that waits for the test's word (a backend of the test's own, through
 * sk2_device_new_backend). Every check is on the order of events, never on a duration: each
 * pong must arrive while the slow open is still in progress. */
#include <pthread.h>
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

#include "device/device_impl.h"
#include "sk2/sk2.h"
#include "testutil.h"

/* ---- A slow camera ----------------------------------------------------------------------- */

static sk2_device_backend_t s_slow_backend;
static atomic_bool s_is_slow;      /* opens wait for s_release while set */
static atomic_bool s_release;      /* lets a waiting open go on */
static atomic_int s_opens_entered; /* opens begun */
static atomic_bool s_in_open;      /* an open is waiting now */

static int s_slow_open(void *impl)
{
    atomic_fetch_add(&s_opens_entered, 1);
    if (atomic_load(&s_is_slow)) {
        atomic_store(&s_in_open, true);
        /* Bounded, so that a server that does wait on opens fails the test, not hangs it. */
        for (int i = 0; i < 1500 && !atomic_load(&s_release); i++)
            usleep(10000);
        atomic_store(&s_in_open, false);
    }
    return sk2_device_backend_mock.open(impl);
}

static void s_slow_reset(bool is_slow)
{
    atomic_store(&s_is_slow, is_slow);
    atomic_store(&s_release, false);
    atomic_store(&s_opens_entered, 0);
    atomic_store(&s_in_open, false);
}

static sk2_device_t *s_slow_device(double fps)
{
    s_slow_backend = sk2_device_backend_mock;
    s_slow_backend.name = "slow-mock";
    s_slow_backend.open = s_slow_open;
    sk2_device_t *device = sk2_device_new_backend(&s_slow_backend);
    assert_non_null(device);
    assert_int_equal(sk2_device_set_fps(device, fps), 0);
    return device;
}

static bool s_wait_atomic(atomic_int *value, int want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms && atomic_load(value) < want; waited += 10)
        usleep(10000);
    return atomic_load(value) >= want;
}

/* ---- The log, for the lost-device warnings ------------------------------------------------ */

static atomic_int s_forgotten;    /* "is forgotten" warnings */
static char s_forgotten_msg[256]; /* the first of them */

static void s_log(void *arg, sk2_log_level_t level, const char *component, const char *message)
{
    (void)arg;
    if (level == SK2_LOG_WARN && strstr(message, "is forgotten")) {
        if (atomic_fetch_add(&s_forgotten, 1) == 0)
            snprintf(s_forgotten_msg, sizeof s_forgotten_msg, "%s", message);
    }
    if (level <= SK2_LOG_WARN)
        fprintf(stderr, "sk2 %s: %s: %s\n", sk2_log_level_name(level), component, message);
}

/* ---- Helpers -------------------------------------------------------------------------------- */

static sk2_client_t *s_connect(sk2_server_t *server)
{
    sk2_client_t *client = sk2_client_new();
    assert_non_null(client);
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 100), 0); /* sees devices come and go */
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    return client;
}

/* Pings and waits for the pong (5 s at most); true if it came. */
static bool s_pong(sk2_client_t *client)
{
    if (sk2_client_ping(client) != 0)
        return false;
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_PONG, NULL, 5000, NULL);
    bool ok = event != NULL;
    sk2_event_destroy(&event);
    return ok;
}

typedef struct {
    sk2_server_t *server;
    sk2_device_t *device;
    int rc;
    atomic_bool is_done;
} s_adder_t;

static void *s_add_thread(void *arg)
{
    s_adder_t *adder = arg;
    adder->rc = sk2_server_add_device(adder->server, &adder->device);
    atomic_store(&adder->is_done, true);
    return NULL;
}

/* ---- Tests ---------------------------------------------------------------------------------- */

static void test_pings_are_answered_while_a_camera_takes_its_time_to_open(void **state)
{
    (void)state;
    s_slow_reset(true);
    sk2_server_t *server = sk2_server_new("slow open");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_client_t *client = s_connect(server);

    /* The application adds the slow camera from its own thread (the only one calling the
     * server); meanwhile a client pings. */
    s_adder_t adder = {.server = server, .device = s_slow_device(30)};
    assert_int_equal(sk2_device_set_id(adder.device, "slow"), 0);
    atomic_init(&adder.is_done, false);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_add_thread, &adder), 0);
    assert_true(s_wait_atomic(&s_opens_entered, 1, 5000));
    for (int i = 0; i < 3; i++) {
        assert_true(s_pong(client));
        /* The pong came while the open, and so the add, was still going on. */
        assert_true(atomic_load(&s_in_open));
        assert_false(atomic_load(&adder.is_done));
    }
    atomic_store(&s_release, true);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(adder.rc, 0);
    assert_null(adder.device);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, "slow", 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_server_device_count(server), 1);

    /* A second add of the same id is refused without opening anything. */
    sk2_device_t *again = s_slow_device(30);
    assert_int_equal(sk2_device_set_id(again, "slow"), 0);
    int opens = atomic_load(&s_opens_entered);
    assert_int_equal(sk2_server_add_device(server, &again), SK2_EEXIST);
    assert_null(again);
    assert_int_equal(atomic_load(&s_opens_entered), opens);
    assert_int_equal(sk2_server_remove_device(server, "slow"), 0);
    assert_int_equal(sk2_server_device_count(server), 0);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_pings_are_answered_while_a_lost_camera_is_tried_again(void **state)
{
    (void)state;
    s_slow_reset(false);
    sk2_server_t *server = sk2_server_new("slow replug");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = s_slow_device(30);
    assert_int_equal(sk2_device_open(device), 0);
    char id[SK2_DEVICE_ID_MAX + 1], serial[64];
    snprintf(id, sizeof id, "%s", sk2_device_id(device));
    snprintf(serial, sizeof serial, "%s", sk2_device_serial(device));
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    sk2_client_t *client = s_connect(server);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, id, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);

    /* Unplugged: the server removes it and, a second later, tries to open it again; that
     * open is slow. */
    s_slow_reset(true);
    assert_int_equal(sk2_mock_set_unplugged(serial, true), 0);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_REMOVED, id, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_true(s_wait_atomic(&s_opens_entered, 1, 5000));
    for (int i = 0; i < 3; i++) {
        assert_true(s_pong(client));
        assert_true(atomic_load(&s_in_open));
    }
    /* Plugged back, the waiting open goes on and succeeds: the camera is back. */
    assert_int_equal(sk2_mock_set_unplugged(serial, false), 0);
    atomic_store(&s_release, true);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, id, 10000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_server_device_count(server), 1);
    s_slow_reset(false);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_the_server_watches_a_bounded_number_of_lost_devices(void **state)
{
    (void)state;
    enum { COUNT = SK2_SERVER_LOST_MAX + 1 };
    atomic_store(&s_forgotten, 0);
    sk2_server_t *server = sk2_server_new("many lost");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    char ids[COUNT][SK2_DEVICE_ID_MAX + 1], serials[COUNT][64];
    /* One camera after another is added and unplugged, so only one is served at a time. */
    for (int i = 0; i < COUNT; i++) {
        sk2_device_t *device = sk2_device_new("mock");
        assert_int_equal(sk2_device_set_fps(device, 100), 0);
        assert_int_equal(sk2_device_open(device), 0);
        snprintf(ids[i], sizeof ids[i], "%s", sk2_device_id(device));
        snprintf(serials[i], sizeof serials[i], "%s", sk2_device_serial(device));
        assert_int_equal(sk2_server_add_device(server, &device), 0);
        assert_int_equal(sk2_mock_set_unplugged(serials[i], true), 0);
        for (int tries = 0; tries < 500 && sk2_server_device_count(server) > 0; tries++)
            usleep(10000);
        assert_int_equal(sk2_server_device_count(server), 0);
        /* Only the one lost too many makes room by forgetting the oldest. */
        assert_int_equal(atomic_load(&s_forgotten), i < SK2_SERVER_LOST_MAX ? 0 : 1);
    }
    assert_non_null(strstr(s_forgotten_msg, ids[0]));
    /* The first one lost is no longer awaited; every other one is (removing gives it up). */
    assert_int_equal(sk2_server_remove_device(server, ids[0]), SK2_ENOTFOUND);
    for (int i = 1; i < COUNT; i++)
        assert_int_equal(sk2_server_remove_device(server, ids[i]), 0);
    for (int i = 0; i < COUNT; i++)
        assert_int_equal(sk2_mock_set_unplugged(serials[i], false), 0);
    assert_int_equal(sk2_server_device_count(server), 0);
    sk2_server_destroy(&server);
}

int main(void)
{
    sk2_log_set_handler(s_log, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pings_are_answered_while_a_camera_takes_its_time_to_open),
        cmocka_unit_test(test_pings_are_answered_while_a_lost_camera_is_tried_again),
        cmocka_unit_test(test_the_server_watches_a_bounded_number_of_lost_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
