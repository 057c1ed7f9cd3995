/* Devices: the registry, the life cycle and its errors, ids, and the mock device's frames,
 * scene, pacing and shutdown. The sink runs on the device's thread, so everything it records
 * goes through a collector guarded by a mutex, and tests wait on its condition variable with a
 * timeout instead of sleeping. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "device/device_thread.h"
#include "sk2/sk2.h"
#include "testutil.h"

#define PIXELS (SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT)
/* Frames whose metadata a collector records, and whose pixels it may keep. */
#define MAX_RECORDED 4096
#define MAX_KEPT     32

/* What the sink saw, written on the device's thread and read on the test's. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed; /* on CLOCK_MONOTONIC; signalled for every frame */
    size_t keep_max;        /* frames whose pixels to keep, at most MAX_KEPT */
    int work_ms;            /* the sink's pretend work on every frame, ms */
    uint64_t stall_at;      /* index of one frame on which the sink stalls */
    int stall_ms;           /* how long that stall lasts, ms (0: none) */
    sk2_frame_t *kept[MAX_KEPT];
    size_t kept_count;
    uint64_t seen; /* frames the sink received */
    uint64_t sequence[MAX_RECORDED];
    int64_t device_timestamp_us[MAX_RECORDED];
    int64_t capture_time_us[MAX_RECORDED];
} collector_t;

static collector_t *s_collector_new(size_t keep_max)
{
    collector_t *c = calloc(1, sizeof *c);
    assert_non_null(c);
    assert_true(keep_max <= MAX_KEPT);
    c->keep_max = keep_max;
    c->stall_at = UINT64_MAX;
    pthread_condattr_t attr;
    assert_int_equal(pthread_condattr_init(&attr), 0);
    assert_int_equal(pthread_condattr_setclock(&attr, CLOCK_MONOTONIC), 0);
    assert_int_equal(pthread_cond_init(&c->changed, &attr), 0);
    pthread_condattr_destroy(&attr);
    assert_int_equal(pthread_mutex_init(&c->lock, NULL), 0);
    return c;
}

static void s_collector_destroy(collector_t **c_p)
{
    collector_t *c = *c_p;
    for (size_t i = 0; i < c->kept_count; i++)
        sk2_frame_destroy(&c->kept[i]);
    pthread_cond_destroy(&c->changed);
    pthread_mutex_destroy(&c->lock);
    free(c);
    *c_p = NULL;
}

/* Lets time pass for a rate measurement (never used to wait for an event). */
static void s_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void s_sink(void *arg, sk2_frame_t **frame_p)
{
    collector_t *c = arg;
    pthread_mutex_lock(&c->lock);
    /* A slow consumer, simulated; the lock keeps the settings and the index consistent. */
    int delay_ms = c->work_ms + (c->seen == c->stall_at ? c->stall_ms : 0);
    if (c->seen < MAX_RECORDED) {
        c->sequence[c->seen] = sk2_frame_sequence(*frame_p);
        c->device_timestamp_us[c->seen] = sk2_frame_device_timestamp_us(*frame_p);
        c->capture_time_us[c->seen] = sk2_frame_capture_time_us(*frame_p);
    }
    c->seen++;
    if (c->kept_count < c->keep_max) {
        c->kept[c->kept_count++] = *frame_p;
        *frame_p = NULL;
    }
    pthread_cond_broadcast(&c->changed);
    pthread_mutex_unlock(&c->lock);
    sk2_frame_destroy(frame_p);
    if (delay_ms > 0)
        s_sleep_ms(delay_ms);
}

static uint64_t s_seen(collector_t *c)
{
    pthread_mutex_lock(&c->lock);
    uint64_t seen = c->seen;
    pthread_mutex_unlock(&c->lock);
    return seen;
}

/* Waits until the sink has seen at least n frames; false on timeout. */
static bool s_wait_seen(collector_t *c, uint64_t n, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    while (c->seen < n && rc == 0)
        rc = pthread_cond_timedwait(&c->changed, &c->lock, &deadline);
    bool reached = c->seen >= n;
    pthread_mutex_unlock(&c->lock);
    return reached;
}

/* Mean interval between the first n recorded frames, ms. */
static double s_mean_interval_ms(const collector_t *c, uint64_t n)
{
    return (double)(c->device_timestamp_us[n - 1] - c->device_timestamp_us[0]) / (double)(n - 1) /
           1000.0;
}

static bool s_is_lower_hex(const char *s, size_t length)
{
    if (strlen(s) != length)
        return false;
    for (size_t i = 0; i < length; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* The first test doubles as the usage example: make, start, receive, stop, destroy. */
static void test_a_mock_device_delivers_frames_to_its_sink(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(1);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_non_null(dev);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, 1, 2000));
    assert_int_equal(sk2_device_stop(dev), 0);

    sk2_frame_t *f = c->kept[0];
    assert_int_equal(sk2_frame_kind(f), SK2_STREAM_DEPTH);
    assert_int_equal(sk2_frame_format(f), SK2_PIXEL_DEPTH_MM16);
    assert_int_equal(sk2_frame_width(f), SK2_MOCK_WIDTH);
    assert_int_equal(sk2_frame_height(f), SK2_MOCK_HEIGHT);
    assert_int_equal(sk2_device_frames_produced(dev), s_seen(c));
    sk2_device_destroy(&dev);
    assert_null(dev);
    s_collector_destroy(&c);
}

static void test_backends_include_mock(void **state)
{
    (void)state;
    size_t count = sk2_device_backend_count();
    assert_true(count >= 1);
    bool has_mock = false;
    for (size_t i = 0; i < count; i++) {
        assert_non_null(sk2_device_backend_name(i));
        if (strcmp(sk2_device_backend_name(i), "mock") == 0)
            has_mock = true;
    }
    assert_true(has_mock);
    assert_null(sk2_device_backend_name(count));
}

static void test_unknown_backends_give_no_device(void **state)
{
    (void)state;
    assert_null(sk2_device_new("no-such-backend"));
    assert_null(sk2_device_new(""));
    assert_null(sk2_device_new("MOCK"));
    assert_null(sk2_device_new(NULL));
}

static void test_destroy_is_idempotent(void **state)
{
    (void)state;
    sk2_device_t *dev = sk2_device_new("mock");
    assert_non_null(dev);
    assert_string_equal(sk2_device_backend(dev), "mock");
    sk2_device_destroy(&dev);
    assert_null(dev);
    sk2_device_destroy(&dev);
    sk2_device_destroy(NULL);
}

static void test_device_walks_through_its_states(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(0);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_false(sk2_device_is_open(dev));
    assert_false(sk2_device_is_running(dev));
    assert_int_equal(sk2_device_open(dev), 0);
    assert_true(sk2_device_is_open(dev));
    assert_false(sk2_device_is_running(dev));
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(sk2_device_is_running(dev));
    assert_int_equal(sk2_device_stop(dev), 0);
    assert_true(sk2_device_is_open(dev));
    assert_false(sk2_device_is_running(dev));
    /* A stopped device starts again. */
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(sk2_device_is_running(dev));
    assert_int_equal(sk2_device_stop(dev), 0);
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

static void test_start_opens_a_closed_device(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(0);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(sk2_device_is_open(dev));
    assert_int_equal(sk2_device_open(dev), SK2_ESTATE);
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

static void test_calls_in_the_wrong_state_are_refused(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(0);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_stop(dev), SK2_ESTATE);
    assert_int_equal(sk2_device_open(dev), 0);
    assert_int_equal(sk2_device_open(dev), SK2_ESTATE);
    assert_int_equal(sk2_device_set_id(dev, "too-late"), SK2_ESTATE);
    assert_int_equal(sk2_device_stop(dev), SK2_ESTATE);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, c), SK2_ESTATE);
    assert_int_equal(sk2_device_set_fps(dev, 10), SK2_ESTATE);
    assert_int_equal(sk2_device_set_id(dev, "too-late"), SK2_ESTATE);
    assert_int_equal(sk2_device_stop(dev), 0);
    assert_int_equal(sk2_device_stop(dev), SK2_ESTATE);
    assert_int_equal(sk2_device_set_id(dev, "too-late"), SK2_ESTATE);
    /* The refused calls changed nothing. */
    assert_true(s_is_lower_hex(sk2_device_id(dev), 32));
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

static void test_start_needs_a_sink(void **state)
{
    (void)state;
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_start(dev, NULL, NULL), SK2_EINVAL);
    assert_false(sk2_device_is_running(dev));
    sk2_device_destroy(&dev);
}

static void test_invalid_frame_rates_are_refused(void **state)
{
    (void)state;
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, -1), SK2_EINVAL);
    assert_int_equal(sk2_device_set_fps(dev, -0.001), SK2_EINVAL);
    assert_int_equal(sk2_device_set_fps(dev, NAN), SK2_EINVAL);
    assert_int_equal(sk2_device_set_fps(dev, 1000.001), SK2_EINVAL);
    assert_int_equal(sk2_device_set_fps(dev, INFINITY), SK2_EINVAL);
    assert_int_equal(sk2_device_set_fps(dev, 0), 0);
    assert_int_equal(sk2_device_set_fps(dev, 1000), 0);
    assert_int_equal(sk2_device_set_fps(dev, 12.5), 0);
    sk2_stream_info_t info;
    assert_int_equal(sk2_device_stream_info(dev, 0, &info), 0);
    assert_true(info.fps == 12.5);
    sk2_device_destroy(&dev);
}

static void test_invalid_ids_are_refused(void **state)
{
    (void)state;
    sk2_device_t *dev = sk2_device_new("mock");
    char generated[SK2_DEVICE_ID_MAX + 1];
    strcpy(generated, sk2_device_id(dev));
    char longest[SK2_DEVICE_ID_MAX + 2];
    memset(longest, 'k', sizeof longest);
    longest[SK2_DEVICE_ID_MAX + 1] = '\0'; /* one byte too long */

    assert_int_equal(sk2_device_set_id(dev, NULL), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, ""), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, "kinect one"), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, " kinect"), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, "tab\there"), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, "new\nline"), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, "del\x7f"), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, "caf\xc3\xa9"), SK2_EINVAL);
    assert_int_equal(sk2_device_set_id(dev, longest), SK2_EINVAL);
    assert_string_equal(sk2_device_id(dev), generated);

    longest[SK2_DEVICE_ID_MAX] = '\0'; /* exactly the limit */
    assert_int_equal(sk2_device_set_id(dev, longest), 0);
    assert_string_equal(sk2_device_id(dev), longest);
    assert_int_equal(sk2_device_set_id(dev, "kinect-2/left~!"), 0);
    assert_string_equal(sk2_device_id(dev), "kinect-2/left~!");
    assert_int_equal(sk2_device_open(dev), 0);
    assert_string_equal(sk2_device_id(dev), "kinect-2/left~!");
    sk2_device_destroy(&dev);
}

static void test_default_ids_are_32_hex_digits_and_differ(void **state)
{
    (void)state;
    sk2_device_t *a = sk2_device_new("mock");
    sk2_device_t *b = sk2_device_new("mock");
    assert_true(s_is_lower_hex(sk2_device_id(a), 32));
    assert_true(s_is_lower_hex(sk2_device_id(b), 32));
    assert_string_not_equal(sk2_device_id(a), sk2_device_id(b));
    /* Like uuid4().hex: version 4, RFC 4122 variant. */
    assert_int_equal(sk2_device_id(a)[12], '4');
    assert_non_null(strchr("89ab", sk2_device_id(a)[16]));
    sk2_device_destroy(&a);
    sk2_device_destroy(&b);
}

static void test_stream_info_describes_depth_ir_and_colour(void **state)
{
    (void)state;
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_stream_count(dev), 3);
    sk2_stream_info_t info;
    memset(&info, 0xff, sizeof info);
    assert_int_equal(sk2_device_stream_info(dev, 0, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_DEPTH);
    assert_int_equal(info.format, SK2_PIXEL_DEPTH_MM16);
    assert_int_equal(info.width, 512);
    assert_int_equal(info.height, 424);
    assert_true(info.fps == 30.0);
    assert_true(info.depth_unit_m == 0.001);
    assert_true(info.has_intrinsics);
    assert_true(info.intrinsics.fx > 300 && info.intrinsics.fx < 400);
    assert_true(info.intrinsics.cx > 200 && info.intrinsics.cx < 300);
    assert_int_equal(sk2_device_stream_info(dev, 1, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_IR);
    assert_int_equal(info.format, SK2_PIXEL_GRAY16);
    assert_true(info.depth_unit_m == 0.0);
    assert_int_equal(sk2_device_stream_info(dev, 2, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_COLOR);
    assert_int_equal(info.format, SK2_PIXEL_RGB24);
    assert_int_equal(info.width, 1920);
    assert_int_equal(info.height, 1080);
    assert_true(info.intrinsics.cx > 959 && info.intrinsics.cx < 960);
    assert_int_equal(sk2_device_stream_info(dev, 3, &info), SK2_ENOTFOUND);
    assert_int_equal(sk2_device_stream_info(dev, 0, NULL), SK2_EINVAL);

    /* A smaller colour size scales the colour intrinsics with it. */
    assert_int_equal(sk2_device_set_color_size(dev, 0, 0), SK2_EINVAL);
    assert_int_equal(sk2_device_set_color_size(dev, 1921, 1080), SK2_EINVAL);
    assert_int_equal(sk2_device_set_color_size(dev, 961, 540), SK2_EINVAL);
    assert_int_equal(sk2_device_set_color_size(dev, 960, 540), 0);
    assert_int_equal(sk2_device_stream_info(dev, 2, &info), 0);
    assert_int_equal(info.width, 960);
    assert_true(info.intrinsics.fx > 540 && info.intrinsics.fx < 541);
    assert_true(info.intrinsics.cx > 479 && info.intrinsics.cx < 480);

    assert_int_equal(sk2_device_set_fps(dev, 0), 0);
    assert_string_equal(sk2_device_serial(dev), "");
    assert_int_equal(sk2_device_open(dev), 0);
    assert_int_equal(sk2_device_set_color_size(dev, 640, 480), SK2_ESTATE);
    assert_int_equal(sk2_device_stream_info(dev, 0, &info), 0);
    assert_true(info.fps == 0.0);
    /* The serial is stable and derived from the id. */
    assert_int_equal(strncmp(sk2_device_serial(dev), "mock-", 5), 0);
    assert_int_equal(strncmp(sk2_device_serial(dev) + 5, sk2_device_id(dev), 12), 0);
    sk2_device_destroy(&dev);
}

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    sk2_frame_t *last[5]; /* newest frame per stream kind, owned */
    uint64_t count[5];    /* frames per stream kind */
} s_by_kind_t;

static void s_kind_sink(void *arg, sk2_frame_t **frame_p)
{
    s_by_kind_t *k = arg;
    pthread_mutex_lock(&k->lock);
    sk2_stream_kind_t kind = sk2_frame_kind(*frame_p);
    k->count[kind]++;
    sk2_frame_destroy(&k->last[kind]);
    k->last[kind] = *frame_p;
    *frame_p = NULL;
    pthread_cond_broadcast(&k->changed);
    pthread_mutex_unlock(&k->lock);
}

static bool s_wait_kind(s_by_kind_t *k, sk2_stream_kind_t kind, uint64_t n)
{
    int64_t deadline = sk2_clock_mono_us() + 5000000;
    pthread_mutex_lock(&k->lock);
    while (k->count[kind] < n && sk2_clock_mono_us() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&k->changed, &k->lock, &ts);
    }
    bool reached = k->count[kind] >= n;
    pthread_mutex_unlock(&k->lock);
    return reached;
}

static void test_streams_are_produced_only_while_enabled(void **state)
{
    (void)state;
    s_by_kind_t k = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_color_size(dev, 64, 48), 0);
    assert_int_equal(sk2_device_set_fps(dev, 100), 0);
    assert_int_equal(sk2_device_set_stream_enabled(dev, SK2_STREAM_BODY, true), SK2_ENOTFOUND);
    assert_int_equal(sk2_device_open(dev), 0);
    assert_true(sk2_device_is_stream_enabled(dev, SK2_STREAM_DEPTH));
    assert_false(sk2_device_is_stream_enabled(dev, SK2_STREAM_IR));
    assert_false(sk2_device_is_stream_enabled(dev, SK2_STREAM_COLOR));
    assert_int_equal(sk2_device_start(dev, s_kind_sink, &k), 0);
    assert_true(s_wait_kind(&k, SK2_STREAM_DEPTH, 5));
    pthread_mutex_lock(&k.lock);
    assert_int_equal(k.count[SK2_STREAM_IR] + k.count[SK2_STREAM_COLOR], 0);
    pthread_mutex_unlock(&k.lock);

    /* Turned on while running: IR and colour follow the same instant's scene. */
    assert_int_equal(sk2_device_set_stream_enabled(dev, SK2_STREAM_IR, true), 0);
    assert_int_equal(sk2_device_set_stream_enabled(dev, SK2_STREAM_COLOR, true), 0);
    assert_true(s_wait_kind(&k, SK2_STREAM_IR, 3));
    assert_true(s_wait_kind(&k, SK2_STREAM_COLOR, 3));
    assert_int_equal(sk2_device_set_stream_enabled(dev, SK2_STREAM_DEPTH, false), 0);
    sk2_device_stop(dev);

    const sk2_frame_t *ir = k.last[SK2_STREAM_IR];
    assert_int_equal(sk2_frame_format(ir), SK2_PIXEL_GRAY16);
    uint16_t *scene = malloc(512 * 424 * 2);
    sk2_mock_render(scene, sk2_mock_dx(sk2_frame_capture_time_us(ir)));
    for (size_t i = 0; i < 512 * 424; i++)
        assert_int_equal(sk2_frame_cdata16(ir)[i], sk2_mock_ir(scene[i]));
    free(scene);
    const sk2_frame_t *color = k.last[SK2_STREAM_COLOR];
    assert_int_equal(sk2_frame_width(color), 64);
    assert_int_equal(sk2_frame_height(color), 48);
    assert_int_equal(sk2_frame_format(color), SK2_PIXEL_RGB24);
    /* Not blank: the cone and the wall differ. */
    const uint8_t *rgb = sk2_frame_cdata(color);
    bool varied = false;
    for (size_t i = 3; i < sk2_frame_size(color); i += 3)
        varied |= rgb[i] != rgb[0];
    assert_true(varied);
    /* IR falls off with distance. */
    assert_true(sk2_mock_ir(500) > sk2_mock_ir(1000));
    assert_int_equal(sk2_mock_ir(0), 0);
    assert_int_equal(sk2_mock_ir(100), 65535);
    /* Depth, turned off, stops. */
    uint64_t depth_before = k.count[SK2_STREAM_DEPTH];
    assert_int_equal(sk2_device_start(dev, s_kind_sink, &k), 0);
    assert_true(s_wait_kind(&k, SK2_STREAM_IR, k.count[SK2_STREAM_IR] + 3));
    sk2_device_stop(dev);
    assert_int_equal(k.count[SK2_STREAM_DEPTH], depth_before);
    sk2_device_destroy(&dev);
    for (size_t i = 0; i < 5; i++)
        sk2_frame_destroy(&k.last[i]);
}

static void test_frames_arrive_in_sequence_with_ordered_times(void **state)
{
    (void)state;
    enum { N = 50 };
    collector_t *c = s_collector_new(0);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 0), 0);
    int64_t before_us = sk2_clock_wall_us();
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, N, 5000));
    assert_int_equal(sk2_device_stop(dev), 0);
    int64_t after_us = sk2_clock_wall_us();

    uint64_t seen = s_seen(c);
    assert_int_equal(sk2_device_frames_produced(dev), seen);
    for (size_t i = 0; i < N; i++) {
        assert_int_equal(c->sequence[i], i);
        assert_true(c->device_timestamp_us[i] >= 0);
        assert_in_range(c->capture_time_us[i], before_us, after_us);
        if (i > 0) {
            assert_true(c->device_timestamp_us[i] >= c->device_timestamp_us[i - 1]);
            assert_true(c->capture_time_us[i] >= c->capture_time_us[i - 1]);
        }
    }
    /* Once stop returned, the sink is never called again. */
    s_sleep_ms(50);
    assert_int_equal(s_seen(c), seen);
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

static void test_sequence_numbers_carry_on_after_a_restart(void **state)
{
    (void)state;
    collector_t *first = s_collector_new(0);
    collector_t *second = s_collector_new(0);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 0), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, first), 0);
    assert_true(s_wait_seen(first, 5, 5000));
    assert_int_equal(sk2_device_stop(dev), 0);
    uint64_t produced = sk2_device_frames_produced(dev);
    assert_int_equal(produced, s_seen(first));

    assert_int_equal(sk2_device_start(dev, s_sink, second), 0);
    assert_true(s_wait_seen(second, 2, 5000));
    assert_int_equal(sk2_device_stop(dev), 0);
    assert_int_equal(second->sequence[0], produced);
    assert_int_equal(second->sequence[1], produced + 1);
    /* The first sink is not called once its run stopped. */
    assert_int_equal(s_seen(first), produced);
    sk2_device_destroy(&dev);
    s_collector_destroy(&first);
    s_collector_destroy(&second);
}

static void test_every_frame_is_the_mock_scene_at_its_capture_time(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(MAX_KEPT);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 100), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, MAX_KEPT, 5000));
    assert_int_equal(sk2_device_stop(dev), 0);

    uint16_t *expected = malloc(PIXELS * sizeof *expected);
    assert_non_null(expected);
    for (size_t i = 0; i < MAX_KEPT; i++) {
        sk2_frame_t *f = c->kept[i];
        int dx = sk2_mock_dx(sk2_frame_capture_time_us(f));
        assert_in_range(dx + 100, 0, 200);
        sk2_mock_render(expected, dx);
        assert_int_equal(sk2_frame_size(f), PIXELS * sizeof *expected);
        assert_memory_equal(sk2_frame_cdata16(f), expected, PIXELS * sizeof *expected);
        int found = 999;
        assert_int_equal(sk2_mock_match(sk2_frame_cdata16(f), 512, 424, 16, &found), 0);
        assert_int_equal(found, dx);
    }
    free(expected);
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

/* Values worked out by hand from the streamkinect2 formulas:
 *   wall(x, y) = (y >> 1) + 1000, always >= 1000,
 *   sphere(x, y) = (uint16)(sqrt((x - 256)^2 + (y - 212)^2) + 500), at most 832,
 * so in this scene the sphere is always in front; the frame is the sphere rolled right by dx. */
static void test_the_scene_matches_hand_computed_pixels(void **state)
{
    (void)state;
    uint16_t *px = malloc(PIXELS * sizeof *px);
    assert_non_null(px);
#define AT(x, y) px[(size_t)(y)*SK2_MOCK_WIDTH + (x)]

    sk2_mock_render(px, 0);
    assert_int_equal(AT(256, 212), 500); /* centre: sphere 500 before wall 1106 */
    assert_int_equal(AT(259, 216), 505); /* a 3-4-5 triangle: sqrt is exact */
    assert_int_equal(AT(0, 0), 832);     /* sqrt(256^2 + 212^2) = sqrt(110480) = 332.39 */
    assert_int_equal(AT(511, 423), 830); /* sqrt(255^2 + 211^2) = sqrt(109546) = 330.98 */
    assert_int_equal(AT(511, 0), 831);   /* sqrt(255^2 + 212^2) = sqrt(110569) = 332.52 */
    assert_int_equal(AT(0, 212), 756);   /* 256 left of centre */

    sk2_mock_render(px, 100); /* sphere centre moves right to x = 356 */
    assert_int_equal(AT(356, 212), 500);
    assert_int_equal(AT(256, 212), 600);
    assert_int_equal(AT(0, 212), 656); /* wraps: source column 412, 156 from centre */

    sk2_mock_render(px, -100); /* centre at x = 156 */
    assert_int_equal(AT(156, 212), 500);
    assert_int_equal(AT(10, 212), 646);  /* source column 110, 146 from centre */
    assert_int_equal(AT(500, 212), 668); /* wraps: source column 88, 168 from centre */

    /* A roll by a whole width is no roll. */
    uint16_t *same = malloc(PIXELS * sizeof *same);
    assert_non_null(same);
    sk2_mock_render(px, 7);
    sk2_mock_render(same, 7 + 512);
    assert_memory_equal(px, same, PIXELS * sizeof *px);
    sk2_mock_render(same, 7 - 512);
    assert_memory_equal(px, same, PIXELS * sizeof *px);
#undef AT
    free(same);
    free(px);
}

static void test_dx_follows_the_sine_of_the_capture_time_truncated(void **state)
{
    (void)state;
    assert_int_equal(sk2_mock_dx(0), 0);
    assert_int_equal(sk2_mock_dx(1000000), 84);   /* 100 sin(1) = 84.15 */
    assert_int_equal(sk2_mock_dx(-1000000), -84); /* toward zero, not down to -85 */
    assert_int_equal(sk2_mock_dx(4000000), -75);  /* 100 sin(4) = -75.68 */
    assert_int_equal(sk2_mock_dx(1570796), 99);   /* 100 sin(1.570796) = 99.999999999995 */
    assert_int_equal(sk2_mock_dx(500000), 47);    /* 100 sin(0.5) = 47.94 */
    /* 100 sin(1700000000.123456) = 98.68 (Python: int(math.sin(1700000000.123456) * 100)). */
    assert_int_equal(sk2_mock_dx(1700000000123456LL), 98);
}

static void test_match_finds_the_dx_of_rendered_scenes(void **state)
{
    (void)state;
    static const int dxs[] = {-100, -99, -37, -1, 0, 1, 55, 99, 100};
    uint16_t *px = malloc(PIXELS * sizeof *px);
    assert_non_null(px);
    for (size_t i = 0; i < sizeof dxs / sizeof dxs[0]; i++) {
        sk2_mock_render(px, dxs[i]);
        int found = 999;
        assert_int_equal(sk2_mock_match(px, 512, 424, 16, &found), 0);
        assert_int_equal(found, dxs[i]);
        found = 999;
        assert_int_equal(sk2_mock_match(px, 512, 424, 12, &found), 0);
        assert_int_equal(found, dxs[i]);
    }
    free(px);
}

static void test_match_fails_on_a_modified_frame(void **state)
{
    (void)state;
    uint16_t *px = malloc(PIXELS * sizeof *px);
    assert_non_null(px);
    sk2_mock_render(px, 42);
    px[PIXELS - 1] ^= 1; /* one bit in the very last pixel */
    int found = 999;
    assert_int_equal(sk2_mock_match(px, 512, 424, 16, &found), SK2_ENOTFOUND);
    assert_int_equal(found, 999);

    /* A dx outside the swing of the original is not a mock scene either. */
    sk2_mock_render(px, 101);
    assert_int_equal(sk2_mock_match(px, 512, 424, 16, &found), SK2_ENOTFOUND);
    free(px);
}

static void test_match_compares_only_the_low_bits(void **state)
{
    (void)state;
    uint16_t *px = malloc(PIXELS * sizeof *px);
    assert_non_null(px);
    sk2_mock_render(px, -64);
    for (size_t i = 0; i < PIXELS; i++)
        px[i] |= 0xf000; /* junk above a 12-bit depth */
    int found = 999;
    assert_int_equal(sk2_mock_match(px, 512, 424, 12, &found), 0);
    assert_int_equal(found, -64);
    assert_int_equal(sk2_mock_match(px, 512, 424, 16, &found), SK2_ENOTFOUND);
    free(px);
}

static void test_match_refuses_wrong_sizes_and_bit_counts(void **state)
{
    (void)state;
    uint16_t *px = malloc(PIXELS * sizeof *px);
    assert_non_null(px);
    sk2_mock_render(px, 0);
    int found = 999;
    assert_int_equal(sk2_mock_match(px, 511, 424, 16, &found), SK2_EINVAL);
    assert_int_equal(sk2_mock_match(px, 512, 423, 16, &found), SK2_EINVAL);
    assert_int_equal(sk2_mock_match(px, 424, 512, 16, &found), SK2_EINVAL);
    assert_int_equal(sk2_mock_match(px, 512, 424, 0, &found), SK2_EINVAL);
    assert_int_equal(sk2_mock_match(px, 512, 424, 17, &found), SK2_EINVAL);
    assert_int_equal(found, 999);
    assert_int_equal(sk2_mock_match(px, 512, 424, 1, &found), 0);
    assert_int_equal(sk2_mock_match(px, 512, 424, 16, &found), 0);
    assert_int_equal(found, 0);
    free(px);
}

/* The pacing rule on made-up times, so that it is checked exactly and not at the mercy of a
 * busy test machine: a call that takes 8 ms of a 20 ms period does not push the grid, a late
 * call is followed by the next grid point, and a stall of several periods skips the missed
 * points instead of calling in a burst. */
static void test_the_pacing_grid_does_not_drift_or_burst(void **state)
{
    (void)state;
    const int64_t period = 20000000; /* 50 fps */
    int64_t deadline = 1000000000;
    for (int i = 0; i < 100; i++) { /* every call ends 8 ms after its deadline */
        int64_t next = sk2_device_thread_next_deadline_ns(deadline, period, deadline + 8000000);
        assert_true(next == deadline + period);
        deadline = next;
    }
    assert_true(deadline == 1000000000 + 100 * period);
    /* A call that ends 15 ms late: the next point is still on the grid, 5 ms away. */
    assert_true(sk2_device_thread_next_deadline_ns(deadline, period, deadline + 15000000) ==
                deadline + period);
    /* A call that ends one period late: the point then due is taken at once (the one late
     * call), not skipped. */
    assert_true(sk2_device_thread_next_deadline_ns(deadline, period, deadline + period) ==
                deadline + period);
    /* A 110 ms stall: of the five points passed (20..100 ms) only the last is kept, called at
     * once; the call after it goes back on the grid at 120 ms, not back to back. */
    int64_t late = sk2_device_thread_next_deadline_ns(deadline, period, deadline + 110000000);
    assert_true(late == deadline + 5 * period);
    assert_true(sk2_device_thread_next_deadline_ns(late, period, deadline + 111000000) ==
                deadline + 6 * period);
    /* As fast as possible: no waiting. */
    assert_true(sk2_device_thread_next_deadline_ns(deadline, 0, deadline + 123) == deadline + 123);
}

/* On a real thread: frames never come before their grid point, however busy the machine (a
 * busy machine only makes them later), and they keep coming. The mock stamps each frame with
 * its time since start, and frame k is due at k * 20 ms at the earliest. Counts with a
 * generous deadline. */
static void test_fps_paces_the_frames(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(0);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 50), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, 26, 30000));
    assert_int_equal(sk2_device_stop(dev), 0);
    print_message("fps 50: mean interval %.3f ms\n", s_mean_interval_ms(c, 26));
    for (size_t i = 0; i < 26; i++) {
        assert_true(c->device_timestamp_us[i] >= (int64_t)i * 20000);
        if (i > 0)
            assert_true(c->sequence[i] == c->sequence[i - 1] + 1);
    }
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

/* The mock stamps each frame with its time since start, which the grid puts at or after
 * k * period: a slow sink (8 ms of a 20 ms period) never makes a frame early. That the grid
 * does not drift is proven exactly by the test on made-up times above. */
static void test_a_slow_sink_keeps_frames_on_the_grid(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(0);
    c->work_ms = 8;
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 50), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, 26, 30000));
    assert_int_equal(sk2_device_stop(dev), 0);
    for (size_t i = 0; i < 26; i++)
        assert_true(c->device_timestamp_us[i] >= (int64_t)i * 20000);
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

/* After a 110 ms stall in the sink the device does not send the five missed frames back to
 * back: at most one late frame follows at once (room is left for two hiccups of a busy
 * machine; catching up would give five). The rule itself is checked exactly on made-up times
 * above. */
static void test_after_a_stall_frames_skip_ahead_instead_of_bursting(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(0);
    c->stall_at = 3;
    c->stall_ms = 110;
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 50), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, 15, 30000));
    assert_int_equal(sk2_device_stop(dev), 0);
    /* Catching up would give five intervals of about 0; skipping gives at most one. */
    int back_to_back = 0;
    for (size_t i = 1; i < 15; i++)
        if (c->device_timestamp_us[i] - c->device_timestamp_us[i - 1] < 1000)
            back_to_back++;
    assert_in_range(back_to_back, 0, 3);
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

/* Unpaced, a device makes frames as fast as it renders them: side by side with one paced at
 * 2 fps, it makes 60 frames while the paced one makes only a few. A comparison in one run, not
 * a rate: a busy machine slows rendering, and the paced device would need 30 s for 60. */
static void test_fps_zero_runs_as_fast_as_possible(void **state)
{
    (void)state;
    collector_t *fast = s_collector_new(0);
    collector_t *paced = s_collector_new(0);
    sk2_device_t *a = sk2_device_new("mock");
    sk2_device_t *b = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(a, 0), 0);
    assert_int_equal(sk2_device_set_fps(b, 2), 0);
    assert_int_equal(sk2_device_start(b, s_sink, paced), 0);
    assert_int_equal(sk2_device_start(a, s_sink, fast), 0);
    assert_true(s_wait_seen(fast, 60, 120000));
    uint64_t paced_seen = s_seen(paced);
    assert_int_equal(sk2_device_stop(a), 0);
    assert_int_equal(sk2_device_stop(b), 0);
    print_message("fps 0: 60 frames while the 2 fps device made %llu\n",
                  (unsigned long long)paced_seen);
    assert_true(paced_seen < 30);
    sk2_device_destroy(&a);
    sk2_device_destroy(&b);
    s_collector_destroy(&fast);
    s_collector_destroy(&paced);
}

/* Stop cuts the wait for the next frame short instead of sitting it out: at 0.1 fps the next
 * frame is 10 s away, and stop returns long before that (the bound is generous for a busy
 * machine; sitting the wait out would take 10 s). */
static void test_stop_is_prompt_even_at_a_slow_rate(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(0);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 0.1), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, 1, 30000));
    int64_t before_us = sk2_clock_mono_us();
    assert_int_equal(sk2_device_stop(dev), 0);
    int64_t took_us = sk2_clock_mono_us() - before_us;
    print_message("stop at fps 0.1 took %lld us\n", (long long)took_us);
    assert_true(took_us < 5000000);
    /* The first frame comes at once, the second only 10 s later. */
    assert_int_equal(s_seen(c), 1);
    sk2_device_destroy(&dev);
    s_collector_destroy(&c);
}

static void test_destroying_a_running_device_stops_it_cleanly(void **state)
{
    (void)state;
    collector_t *c = s_collector_new(2);
    sk2_device_t *dev = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(dev, 0), 0);
    assert_int_equal(sk2_device_start(dev, s_sink, c), 0);
    assert_true(s_wait_seen(c, 3, 5000));
    sk2_device_destroy(&dev);
    assert_null(dev);
    uint64_t seen = s_seen(c);
    s_sleep_ms(50);
    assert_int_equal(s_seen(c), seen);
    s_collector_destroy(&c);
}

static void test_two_devices_run_side_by_side(void **state)
{
    (void)state;
    collector_t *ca = s_collector_new(0);
    collector_t *cb = s_collector_new(0);
    sk2_device_t *a = sk2_device_new("mock");
    sk2_device_t *b = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_fps(a, 0), 0);
    assert_int_equal(sk2_device_set_fps(b, 200), 0);
    assert_int_equal(sk2_device_start(a, s_sink, ca), 0);
    assert_int_equal(sk2_device_start(b, s_sink, cb), 0);
    assert_true(s_wait_seen(ca, 10, 5000));
    assert_true(s_wait_seen(cb, 10, 5000));
    sk2_device_destroy(&a);
    sk2_device_destroy(&b);
    /* Each device numbers its own frames. */
    for (size_t i = 0; i < 10; i++) {
        assert_int_equal(ca->sequence[i], i);
        assert_int_equal(cb->sequence[i], i);
    }
    s_collector_destroy(&ca);
    s_collector_destroy(&cb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_mock_device_delivers_frames_to_its_sink),
        cmocka_unit_test(test_backends_include_mock),
        cmocka_unit_test(test_unknown_backends_give_no_device),
        cmocka_unit_test(test_destroy_is_idempotent),
        cmocka_unit_test(test_device_walks_through_its_states),
        cmocka_unit_test(test_start_opens_a_closed_device),
        cmocka_unit_test(test_calls_in_the_wrong_state_are_refused),
        cmocka_unit_test(test_start_needs_a_sink),
        cmocka_unit_test(test_invalid_frame_rates_are_refused),
        cmocka_unit_test(test_invalid_ids_are_refused),
        cmocka_unit_test(test_default_ids_are_32_hex_digits_and_differ),
        cmocka_unit_test(test_stream_info_describes_depth_ir_and_colour),
        cmocka_unit_test(test_streams_are_produced_only_while_enabled),
        cmocka_unit_test(test_frames_arrive_in_sequence_with_ordered_times),
        cmocka_unit_test(test_sequence_numbers_carry_on_after_a_restart),
        cmocka_unit_test(test_every_frame_is_the_mock_scene_at_its_capture_time),
        cmocka_unit_test(test_the_scene_matches_hand_computed_pixels),
        cmocka_unit_test(test_dx_follows_the_sine_of_the_capture_time_truncated),
        cmocka_unit_test(test_match_finds_the_dx_of_rendered_scenes),
        cmocka_unit_test(test_match_fails_on_a_modified_frame),
        cmocka_unit_test(test_match_compares_only_the_low_bits),
        cmocka_unit_test(test_match_refuses_wrong_sizes_and_bit_counts),
        cmocka_unit_test(test_the_pacing_grid_does_not_drift_or_burst),
        cmocka_unit_test(test_fps_paces_the_frames),
        cmocka_unit_test(test_a_slow_sink_keeps_frames_on_the_grid),
        cmocka_unit_test(test_after_a_stall_frames_skip_ahead_instead_of_bursting),
        cmocka_unit_test(test_fps_zero_runs_as_fast_as_possible),
        cmocka_unit_test(test_stop_is_prompt_even_at_a_slow_rate),
        cmocka_unit_test(test_destroying_a_running_device_stops_it_cleanly),
        cmocka_unit_test(test_two_devices_run_side_by_side),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
