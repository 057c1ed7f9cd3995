/* Cameras that go away and come back, through the mock device's fault injection
 * (sk2_mock_set_unplugged): the device reports the loss, the server turns it into a removal
 * that clients see in `me`, keeps serving, and adds the camera back under the same id once it
 * can be opened again. Also the checks on the camera parts of the device API. */
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

#include "sk2/sk2.h"
#include "testutil.h"

typedef struct {
    atomic_int lost;      /* times the lost handler ran */
    atomic_int frames;    /* frames the sink saw */
    char reason[128];     /* the reason given, written before `lost` is bumped */
    sk2_device_t *device; /* the device the handler was given */
} s_watch_t;

static void s_sink(void *arg, sk2_frame_t **frame_p)
{
    (void)frame_p;
    s_watch_t *watch = arg;
    atomic_fetch_add(&watch->frames, 1);
}

static void s_lost(void *arg, sk2_device_t *device, const char *reason)
{
    s_watch_t *watch = arg;
    snprintf(watch->reason, sizeof watch->reason, "%s", reason);
    watch->device = device;
    atomic_fetch_add(&watch->lost, 1);
}

/* Waits up to timeout_ms for *value to reach at least `want`. */
static bool s_wait_for(atomic_int *value, int want, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (atomic_load(value) >= want)
            return true;
        usleep(10000);
    }
    return atomic_load(value) >= want;
}

static void test_the_camera_api_refuses_bad_input(void **state)
{
    (void)state;
    assert_int_equal(sk2_device_backend_enumerate(sk2_device_backend_count(), NULL, 0),
                     SK2_ENOTFOUND);
    assert_int_equal(sk2_device_backend_enumerate(0, NULL, 3), SK2_EINVAL);
    assert_false(sk2_device_backend_is_camera(sk2_device_backend_count()));
    for (size_t i = 0; i < sk2_device_backend_count(); i++)
        if (strcmp(sk2_device_backend_name(i), "mock") == 0) {
            assert_false(sk2_device_backend_is_camera(i));
            assert_int_equal(sk2_device_backend_enumerate(i, NULL, 0), 0);
        }

    sk2_device_t *device = sk2_device_new("mock");
    assert_non_null(device);
    assert_string_equal(sk2_device_uri(device), "");
    assert_int_equal(sk2_device_set_uri(device, NULL), SK2_EINVAL);
    assert_int_equal(sk2_device_set_uri(device, ""), SK2_EINVAL);
    assert_int_equal(sk2_device_set_uri(device, "a\nb"), SK2_EINVAL);
    char too_long[SK2_CAMERA_URI_MAX + 2];
    memset(too_long, 'x', sizeof too_long - 1);
    too_long[sizeof too_long - 1] = '\0';
    assert_int_equal(sk2_device_set_uri(device, too_long), SK2_EINVAL);
    /* The mock has no cameras to choose from; "align" is its one uri (--mock-align). */
    assert_int_equal(sk2_device_set_uri(device, "anything"), SK2_EUNSUPPORTED);
    assert_string_equal(sk2_device_uri(device), "");
    assert_int_equal(sk2_device_set_uri(device, "align"), 0);
    assert_string_equal(sk2_device_uri(device), "align");
    assert_int_equal(sk2_device_set_lost_handler(NULL, NULL, NULL), SK2_EINVAL);
    assert_false(sk2_device_is_lost(device));
    assert_false(sk2_device_is_lost(NULL));
    sk2_device_destroy(&device);

    assert_int_equal(sk2_mock_set_unplugged(NULL, true), SK2_EINVAL);
    assert_int_equal(sk2_mock_set_unplugged("", true), SK2_EINVAL);
    char long_serial[64];
    memset(long_serial, 'm', sizeof long_serial - 1);
    long_serial[sizeof long_serial - 1] = '\0';
    assert_int_equal(sk2_mock_set_unplugged(long_serial, true), SK2_EINVAL);
    /* Plugging back a camera that was never unplugged changes nothing. */
    assert_int_equal(sk2_mock_set_unplugged("mock-nothing", false), 0);
}

static void test_an_unplugged_mock_is_lost_and_cannot_open_until_plugged_back(void **state)
{
    (void)state;
    s_watch_t watch = {0};
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(device, 100), 0);
    assert_int_equal(sk2_device_set_lost_handler(device, s_lost, &watch), 0);
    assert_int_equal(sk2_device_start(device, s_sink, &watch), 0);
    assert_int_equal(sk2_device_set_lost_handler(device, s_lost, &watch), SK2_ESTATE);
    assert_true(s_wait_for(&watch.frames, 3, 5000));
    char serial[64];
    snprintf(serial, sizeof serial, "%s", sk2_device_serial(device));
    char id[SK2_DEVICE_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", sk2_device_id(device));

    assert_int_equal(sk2_mock_set_unplugged(serial, true), 0);
    assert_int_equal(sk2_mock_set_unplugged(serial, true), 0); /* idempotent */
    assert_true(s_wait_for(&watch.lost, 1, 2000));
    assert_true(sk2_device_is_lost(device));
    assert_ptr_equal(watch.device, device);
    assert_non_null(strstr(watch.reason, "unplugged"));
    /* No frame after the loss. */
    int frames = atomic_load(&watch.frames);
    usleep(100000);
    assert_int_equal(atomic_load(&watch.frames), frames);
    assert_int_equal(atomic_load(&watch.lost), 1);
    assert_int_equal(sk2_device_stop(device), 0);
    assert_int_equal(sk2_device_start(device, s_sink, &watch), SK2_ESTATE);

    /* While unplugged, the same camera (same id, hence serial) does not open. */
    sk2_device_t *again = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_id(again, id), 0);
    assert_int_equal(sk2_device_open(again), SK2_EDEVICE);
    assert_false(sk2_device_is_open(again));
    /* Another mock camera is not affected. */
    sk2_device_t *other = sk2_device_new("mock");
    assert_int_equal(sk2_device_open(other), 0);
    sk2_device_destroy(&other);

    assert_int_equal(sk2_mock_set_unplugged(serial, false), 0);
    assert_int_equal(sk2_device_open(again), 0);
    assert_string_equal(sk2_device_serial(again), serial);
    s_watch_t watch2 = {0};
    assert_int_equal(sk2_device_start(again, s_sink, &watch2), 0);
    assert_true(s_wait_for(&watch2.frames, 3, 5000));
    sk2_device_destroy(&again);
    sk2_device_destroy(&device);
}

/* Waits for a depth frame of the mock scene on `id` and checks it pixel for pixel. */
static void s_expect_mock_frame(sk2_client_t *client, const char *id)
{
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, id, 5000, NULL);
    assert_non_null(event);
    const sk2_frame_t *frame = sk2_event_frame(event);
    assert_non_null(frame);
    int dx = 1000;
    assert_int_equal(sk2_mock_match(sk2_frame_cdata16(frame), sk2_frame_width(frame),
                                    sk2_frame_height(frame), 16, &dx),
                     0);
    sk2_event_destroy(&event);
}

static void test_the_server_removes_a_lost_camera_and_adds_it_back_with_its_id(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("hotplug test");
    assert_non_null(server);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(device, 30), 0);
    assert_int_equal(sk2_device_open(device), 0);
    char id[SK2_DEVICE_ID_MAX + 1], serial[64];
    snprintf(id, sizeof id, "%s", sk2_device_id(device));
    snprintf(serial, sizeof serial, "%s", sk2_device_serial(device));
    /* A second camera that stays plugged in: its frames must flow throughout. */
    sk2_device_t *steady = sk2_device_new("mock");
    assert_int_equal(sk2_device_open(steady), 0);
    char steady_id[SK2_DEVICE_ID_MAX + 1];
    snprintf(steady_id, sizeof steady_id, "%s", sk2_device_id(steady));
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    assert_int_equal(sk2_server_add_device(server, &steady), 0);

    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 100), 0);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, id, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_enable_depth(client, id), 0);
    s_expect_mock_frame(client, id);

    for (int round = 0; round < 2; round++) {
        assert_int_equal(sk2_mock_set_unplugged(serial, true), 0);
        event = testutil_wait_event(client, SK2_EVENT_DEVICE_REMOVED, id, 5000, NULL);
        assert_non_null(event);
        sk2_event_destroy(&event);
        assert_int_equal(sk2_server_device_count(server), 1);
        assert_non_null(sk2_client_device_endpoint(client, steady_id, "depth"));
        assert_null(sk2_client_device_endpoint(client, id, "depth"));
        /* Still unplugged a while later: still gone, and the server answers. */
        usleep(1500000);
        assert_int_equal(sk2_server_device_count(server), 1);
        assert_int_equal(sk2_client_ping(client), 0);
        event = testutil_wait_event(client, SK2_EVENT_PONG, NULL, 5000, NULL);
        assert_non_null(event);
        sk2_event_destroy(&event);

        assert_int_equal(sk2_mock_set_unplugged(serial, false), 0);
        event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, id, 5000, NULL);
        assert_non_null(event);
        sk2_event_destroy(&event);
        assert_int_equal(sk2_server_device_count(server), 2);
        assert_int_equal(sk2_client_enable_depth(client, id), 0);
        s_expect_mock_frame(client, id);
    }
    sk2_server_stats_t stats;
    assert_int_equal(sk2_server_stats(server, &stats), 0);
    assert_int_equal(stats.devices, 2);

    /* Removing a camera while it is away gives up on it: it does not come back. */
    assert_int_equal(sk2_mock_set_unplugged(serial, true), 0);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_REMOVED, id, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_server_remove_device(server, id), 0);
    assert_int_equal(sk2_server_remove_device(server, id), SK2_ENOTFOUND);
    assert_int_equal(sk2_mock_set_unplugged(serial, false), 0);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, id, 2500, NULL);
    assert_null(event);
    assert_int_equal(sk2_server_device_count(server), 1);

    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_a_server_shuts_down_cleanly_with_a_camera_still_away(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("hotplug shutdown");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_open(device), 0);
    char serial[64];
    snprintf(serial, sizeof serial, "%s", sk2_device_serial(device));
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    assert_int_equal(sk2_mock_set_unplugged(serial, true), 0);
    for (int i = 0; i < 100 && sk2_server_device_count(server) > 0; i++)
        usleep(20000);
    assert_int_equal(sk2_server_device_count(server), 0);
    sk2_server_destroy(&server);
    assert_null(server);
    assert_int_equal(sk2_mock_set_unplugged(serial, false), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_camera_api_refuses_bad_input),
        cmocka_unit_test(test_an_unplugged_mock_is_lost_and_cannot_open_until_plugged_back),
        cmocka_unit_test(test_the_server_removes_a_lost_camera_and_adds_it_back_with_its_id),
        cmocka_unit_test(test_a_server_shuts_down_cleanly_with_a_camera_still_away),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
