/* The OpenNI2 backend through the drivers Debian ships in libopenni2-0:
 * - DummyDevice (uri "Dummy"): 320 x 240 depth and colour at 30 fps, each frame a small disc
 *   that moves one way per frame and bounces off the edges. The frame's device timestamp
 *   (frame number x 33 ms) fixes where the disc is, so every pixel can be predicted; the test
 *   re-draws each frame as the driver does and compares all of them.
 * - OniFile (a .oni path): the test records the Dummy device with OpenNI2's own recorder and
 *   opens the recording through sk2. */
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

#include "device/oni.h"
#include "sk2/sk2.h"
#include "testutil.h"

#define S_W      320
#define S_H      240
#define S_FRAMES 12
#define S_TICK   33000 /* the driver's timestamp step, microseconds */

typedef struct {
    pthread_mutex_t lock;
    sk2_frame_t *depth[S_FRAMES];
    sk2_frame_t *color[S_FRAMES];
    int depth_count, color_count, other_count;
} s_got_t;

static void s_sink(void *arg, sk2_frame_t **frame_p)
{
    s_got_t *got = arg;
    pthread_mutex_lock(&got->lock);
    sk2_stream_kind_t kind = sk2_frame_kind(*frame_p);
    if (kind == SK2_STREAM_DEPTH && got->depth_count < S_FRAMES) {
        got->depth[got->depth_count++] = *frame_p;
        *frame_p = NULL;
    } else if (kind == SK2_STREAM_COLOR && got->color_count < S_FRAMES) {
        got->color[got->color_count++] = *frame_p;
        *frame_p = NULL;
    } else if (kind != SK2_STREAM_DEPTH && kind != SK2_STREAM_COLOR) {
        got->other_count++;
    }
    pthread_mutex_unlock(&got->lock);
}

/* Where the driver's disc is in frame `frame_id` (1, 2, ...): it starts at `x, y`, moves by
 * `dx, dy` per frame and turns back within `margin` of an edge. */
static void s_centre(int frame_id, int x, int y, int dx, int dy, int *cx, int *cy)
{
    for (int f = 1; f < frame_id; f++) {
        x += dx;
        y += dy;
        if (x < abs(dx) || x > S_W - 1 - abs(dx))
            dx = -dx;
        if (y < abs(dy) || y > S_H - 1 - abs(dy))
            dy = -dy;
    }
    *cx = x;
    *cy = y;
}

static int s_max(int a, int b)
{
    return a > b ? a : b;
}

static int s_min(int a, int b)
{
    return a < b ? a : b;
}

/* The Dummy driver's depth frame `frame_id`, drawn again. */
static void s_dummy_depth(int frame_id, uint16_t *depth)
{
    int cx, cy;
    s_centre(frame_id, 0, 0, 1, 1, &cx, &cy);
    memset(depth, 0, S_W * S_H * sizeof *depth);
    for (int y = s_max(cy - 10, 0); y < s_min(cy + 10, S_H); y++)
        for (int x = s_max(cx - 10, 0); x < s_min(cx + 10, S_W); x++)
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < 70)
                depth[y * S_W + x] = (uint16_t)(1000 + (x - y) * 3);
    for (int x = 0; x < S_W; x++)
        depth[x] = 2000;
}

/* The Dummy driver's colour frame `frame_id`, drawn again. */
static void s_dummy_color(int frame_id, uint8_t *rgb)
{
    int cx, cy;
    s_centre(frame_id, 160, 120, -3, 1, &cx, &cy);
    memset(rgb, 0, S_W * S_H * 3);
    for (int y = s_max(cy - 10, 0); y < s_min(cy + 10, S_H); y++)
        for (int x = s_max(cx - 10, 0); x < s_min(cx + 10, S_W); x++)
            if ((x - cx) * (x - cx) + (y - cy) * (y - cy) < 70) {
                uint8_t *px = &rgb[(y * S_W + x) * 3];
                px[0] = (uint8_t)(int)(255 * (x / (double)S_W));
                px[1] = (uint8_t)(int)(255 * (y / (double)S_H));
                px[2] = (uint8_t)(int)(255 * ((S_W - x) / (double)S_W));
            }
    rgb[2] = 255;
}

static size_t s_backend(const char *name)
{
    size_t index = testutil_backend_index(name);
    if (index == SIZE_MAX)
        fail_msg("no backend %s", name);
    return index;
}

static void test_the_backend_lists_what_openni2_sees(void **state)
{
    (void)state;
    size_t backend = s_backend("openni2");
    assert_true(sk2_device_backend_is_camera(backend));
    /* No camera is plugged in here, and the Dummy device is not listed (it exists only when
     * asked for by name): the list is empty, but asking works. */
    int count = sk2_device_backend_enumerate(backend, NULL, 0);
    assert_true(count >= 0);

    sk2_device_t *device = sk2_device_new("openni2");
    assert_int_equal(sk2_device_set_uri(device, "no-such-device"), 0);
    assert_int_equal(sk2_device_open(device), SK2_EDEVICE);
    assert_false(sk2_device_is_open(device));
    sk2_device_destroy(&device);
}

static void test_the_dummy_device_frames_come_back_pixel_for_pixel(void **state)
{
    (void)state;
    sk2_device_t *device = sk2_device_new("openni2");
    assert_non_null(device);
    assert_int_equal(sk2_device_set_uri(device, "Dummy"), 0);
    assert_int_equal(sk2_device_open(device), 0);
    assert_string_equal(sk2_device_uri(device), "Dummy");
    assert_int_equal(sk2_device_stream_count(device), 2); /* depth and colour, no IR */
    sk2_stream_info_t info;
    assert_int_equal(sk2_device_stream_info(device, 0, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_DEPTH);
    assert_int_equal(info.format, SK2_PIXEL_DEPTH_MM16);
    assert_int_equal(info.width, S_W);
    assert_int_equal(info.height, S_H);
    assert_true(info.fps == 30);
    assert_true(info.depth_unit_m == 0.001);
    assert_false(info.has_intrinsics); /* the Dummy driver reports no field of view */
    assert_int_equal(sk2_device_stream_info(device, 1, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_COLOR);
    assert_int_equal(info.format, SK2_PIXEL_RGB24);
    assert_int_equal(info.width, S_W);
    assert_int_equal(sk2_device_set_stream_enabled(device, SK2_STREAM_IR, true), SK2_ENOTFOUND);
    assert_int_equal(sk2_device_set_stream_enabled(device, SK2_STREAM_COLOR, true), 0);

    s_got_t got = {.lock = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(sk2_device_start(device, s_sink, &got), 0);
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&got.lock);
        bool done = got.depth_count == S_FRAMES && got.color_count == S_FRAMES;
        pthread_mutex_unlock(&got.lock);
        if (done)
            break;
        usleep(10000);
    }
    assert_int_equal(sk2_device_stop(device), 0);
    assert_false(sk2_device_is_lost(device));
    assert_int_equal(got.depth_count, S_FRAMES);
    assert_int_equal(got.color_count, S_FRAMES);
    assert_int_equal(got.other_count, 0);

    uint16_t *depth = malloc(S_W * S_H * 2);
    uint8_t *rgb = malloc(S_W * S_H * 3);
    int64_t last_depth_id = 0;
    for (int k = 0; k < S_FRAMES; k++) {
        int64_t ts = sk2_frame_device_timestamp_us(got.depth[k]);
        assert_int_equal(ts % S_TICK, 0);
        int64_t id = ts / S_TICK;
        assert_true(id > last_depth_id);
        last_depth_id = id;
        assert_int_equal(sk2_frame_sequence(got.depth[k]), k);
        s_dummy_depth((int)id, depth);
        assert_memory_equal(sk2_frame_cdata16(got.depth[k]), depth, S_W * S_H * 2);

        ts = sk2_frame_device_timestamp_us(got.color[k]);
        assert_int_equal(ts % S_TICK, 0);
        s_dummy_color((int)(ts / S_TICK), rgb);
        assert_memory_equal(sk2_frame_cdata(got.color[k]), rgb, S_W * S_H * 3);
        sk2_frame_destroy(&got.depth[k]);
        sk2_frame_destroy(&got.color[k]);
    }
    /* The disc moved: frames differ from one another. */
    s_dummy_depth(1, depth);
    uint16_t *other = malloc(S_W * S_H * 2);
    s_dummy_depth(30, other);
    assert_memory_not_equal(depth, other, S_W * S_H * 2);
    free(other);
    free(depth);
    free(rgb);
    sk2_device_destroy(&device);
}

/* Records `frames` depth frames of the Dummy device into `path` with OpenNI2's recorder. */
static void s_record_dummy(const char *path, int frames)
{
    assert_int_equal(oniInitialize(ONI_API_VERSION), ONI_STATUS_OK);
    OniDeviceHandle device = NULL;
    assert_int_equal(oniDeviceOpen("Dummy", &device), ONI_STATUS_OK);
    OniStreamHandle stream = NULL;
    assert_int_equal(oniDeviceCreateStream(device, ONI_SENSOR_DEPTH, &stream), ONI_STATUS_OK);
    OniRecorderHandle recorder = NULL;
    assert_int_equal(oniCreateRecorder(path, &recorder), ONI_STATUS_OK);
    assert_int_equal(oniRecorderAttachStream(recorder, stream, 0), ONI_STATUS_OK);
    assert_int_equal(oniStreamStart(stream), ONI_STATUS_OK);
    assert_int_equal(oniRecorderStart(recorder), ONI_STATUS_OK);
    for (int i = 0; i < frames; i++) {
        int ready = -1;
        assert_int_equal(oniWaitForAnyStream(&stream, 1, &ready, 2000), ONI_STATUS_OK);
        OniFrame *frame = NULL;
        assert_int_equal(oniStreamReadFrame(stream, &frame), ONI_STATUS_OK);
        oniFrameRelease(frame);
    }
    oniRecorderStop(recorder);
    assert_int_equal(oniRecorderDestroy(&recorder), ONI_STATUS_OK);
    oniStreamStop(stream);
    oniStreamDestroy(stream);
    oniDeviceClose(device);
    oniShutdown();
}

static void test_a_recording_opens_through_the_file_driver(void **state)
{
    (void)state;
    char dir[] = "/tmp/sk2-oni-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/dummy.oni", dir);
    s_record_dummy(path, 10);

    sk2_device_t *device = sk2_device_new("openni2");
    assert_int_equal(sk2_device_set_uri(device, path), 0);
    assert_int_equal(sk2_device_open(device), 0);
    /* The file holds the depth stream only, as recorded. */
    assert_int_equal(sk2_device_stream_count(device), 1);
    sk2_stream_info_t info;
    assert_int_equal(sk2_device_stream_info(device, 0, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_DEPTH);
    assert_int_equal(info.format, SK2_PIXEL_DEPTH_MM16);
    assert_int_equal(info.width, S_W);
    assert_int_equal(info.height, S_H);
    assert_true(info.fps == 30);
    sk2_device_destroy(&device);

    /* A file that is not a recording does not open. */
    char bogus[64];
    snprintf(bogus, sizeof bogus, "%s/bogus.oni", dir);
    FILE *f = fopen(bogus, "w");
    fputs("not a recording\n", f);
    fclose(f);
    device = sk2_device_new("openni2");
    assert_int_equal(sk2_device_set_uri(device, bogus), 0);
    assert_int_equal(sk2_device_open(device), SK2_EDEVICE);
    sk2_device_destroy(&device);
    unlink(bogus);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_backend_lists_what_openni2_sees),
        cmocka_unit_test(test_the_dummy_device_frames_come_back_pixel_for_pixel),
        cmocka_unit_test(test_a_recording_opens_through_the_file_driver),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
