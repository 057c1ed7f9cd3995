/* The libfreenect backend against fakenect, the recording player Debian ships in
 * libfreenect0.5 (/usr/lib/<arch>/fakenect/libfreenect.so.0.5, run in place of the real library
 * through LD_LIBRARY_PATH: tests/CMakeLists.txt sets it). The test writes a recording in
 * fakenect's dump format (FAKENECT_PATH: INDEX.txt naming d-<time>-<timestamp>.pgm depth and
 * r-<time>-<timestamp>.ppm colour files, each a one-line PNM header and the raw buffer) with
 * known pixels, and checks that the backend delivers exactly those: colour byte for byte,
 * depth as the documented conversion of the raw 11-bit values to mm (fakenect offers no mm
 * mode). At the end of the recording fakenect's event loop fails, which the backend reports
 * as a lost device, as it would an unplugged camera. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <math.h>
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
#include <libfreenect.h>

#include "sk2/sk2.h"
#include "testutil.h"

#define S_W      640
#define S_H      480
#define S_FRAMES 6

typedef struct {
    pthread_mutex_t lock;
    sk2_frame_t *depth[S_FRAMES];
    sk2_frame_t *color[S_FRAMES];
    int depth_count, color_count, other_count;
    atomic_int lost;
    char reason[128];
} s_got_t;

static char s_dir[64];

static uint16_t s_raw(int frame, size_t i)
{
    /* Every raw value 0..2047 appears, 2047 (no reading) included, differently per frame. */
    return (uint16_t)((i * 7 + (size_t)frame * 131) % 2048);
}

static uint8_t s_rgb(int frame, size_t i)
{
    return (uint8_t)((i * 13 + (size_t)frame * 29) % 251);
}

/* The conversion the backend documents, written out again here. */
static uint16_t s_expected_mm(uint16_t raw)
{
    if (raw >= 2047)
        return 0;
    double mm = 1000.0 * 0.1236 * tan(raw / 2842.5 + 1.1863);
    return mm >= 0.5 && mm <= 10000 ? (uint16_t)lround(mm) : 0;
}

static void s_write(const char *name, const char *header, const void *data, size_t size)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(header, 1, strlen(header), f), strlen(header));
    assert_int_equal(fwrite(data, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/sk2-fakenect-XXXXXX");
    if (!mkdtemp(s_dir))
        return -1;
    char index_path[128];
    snprintf(index_path, sizeof index_path, "%s/INDEX.txt", s_dir);
    FILE *index = fopen(index_path, "w");
    uint16_t *depth = malloc(S_W * S_H * 2);
    uint8_t *rgb = malloc(S_W * S_H * 3);
    for (int k = 0; k < S_FRAMES; k++) {
        for (size_t i = 0; i < S_W * S_H; i++)
            depth[i] = s_raw(k, i);
        for (size_t i = 0; i < S_W * S_H * 3; i++)
            rgb[i] = s_rgb(k, i);
        char name[64];
        snprintf(name, sizeof name, "d-%.6f-%u.pgm", 1000.0 + k / 30.0, 100u + (unsigned)k);
        s_write(name, "P5 640 480 65535\n", depth, S_W * S_H * 2);
        fprintf(index, "%s\n", name);
        snprintf(name, sizeof name, "r-%.6f-%u.ppm", 1000.005 + k / 30.0, 200u + (unsigned)k);
        s_write(name, "P6 640 480 255\n", rgb, S_W * S_H * 3);
        fprintf(index, "%s\n", name);
    }
    fclose(index);
    free(depth);
    free(rgb);
    return setenv("FAKENECT_PATH", s_dir, 1);
}

static int s_teardown(void **state)
{
    (void)state;
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", s_dir);
    return system(command) == 0 ? 0 : -1;
}

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
    } else {
        got->other_count++;
    }
    pthread_mutex_unlock(&got->lock);
}

static void s_lost(void *arg, sk2_device_t *device, const char *reason)
{
    (void)device;
    s_got_t *got = arg;
    snprintf(got->reason, sizeof got->reason, "%s", reason);
    atomic_store(&got->lost, 1);
}

static size_t s_backend(const char *name)
{
    size_t index = testutil_backend_index(name);
    if (index == SIZE_MAX)
        fail_msg("no backend %s", name);
    return index;
}

static void test_it_runs_against_fakenect(void **state)
{
    (void)state;
    Dl_info info;
    /* dladdr takes an object pointer; ISO C cannot convert a function pointer to one, so the
     * bytes are copied (POSIX gives both the same representation). */
    void *address;
    int (*init)(freenect_context **, freenect_usb_context *) = freenect_init;
    memcpy(&address, &init, sizeof address);
    assert_int_not_equal(dladdr(address, &info), 0);
    if (!strstr(info.dli_fname, "/fakenect/"))
        fail_msg("libfreenect is %s, not fakenect: run through ctest (LD_LIBRARY_PATH)",
                 info.dli_fname);
}

static void test_fakenect_is_listed_as_one_camera(void **state)
{
    (void)state;
    size_t backend = s_backend("freenect");
    assert_true(sk2_device_backend_is_camera(backend));
    sk2_camera_info_t cameras[4];
    assert_int_equal(sk2_device_backend_enumerate(backend, cameras, 4), 1);
    assert_string_equal(cameras[0].uri, "#0");
    assert_non_null(strstr(cameras[0].name, "Kinect v1"));
    /* Counting only. */
    assert_int_equal(sk2_device_backend_enumerate(backend, NULL, 0), 1);

    sk2_device_t *device = sk2_device_new("freenect");
    assert_int_equal(sk2_device_set_uri(device, "#7"), 0);
    assert_int_equal(sk2_device_open(device), SK2_EDEVICE);
    assert_false(sk2_device_is_open(device));
    sk2_device_destroy(&device);
}

static void test_the_recorded_pixels_come_back(void **state)
{
    (void)state;
    sk2_device_t *device = sk2_device_new("freenect");
    assert_non_null(device);
    assert_int_equal(sk2_device_set_fps(device, 30), SK2_EUNSUPPORTED);
    assert_int_equal(sk2_device_set_uri(device, "#0"), 0);
    assert_int_equal(sk2_device_open(device), 0);
    assert_string_equal(sk2_device_serial(device), ""); /* fakenect has no serials */
    /* fakenect plays depth and RGB only: no IR stream. */
    assert_int_equal(sk2_device_stream_count(device), 2);
    sk2_stream_info_t info;
    assert_int_equal(sk2_device_stream_info(device, 0, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_DEPTH);
    assert_int_equal(info.format, SK2_PIXEL_DEPTH_MM16);
    assert_int_equal(info.width, S_W);
    assert_int_equal(info.height, S_H);
    assert_true(info.depth_unit_m == 0.001);
    assert_int_equal(sk2_device_stream_info(device, 1, &info), 0);
    assert_int_equal(info.kind, SK2_STREAM_COLOR);
    assert_int_equal(info.format, SK2_PIXEL_RGB24);
    assert_int_equal(sk2_device_stream_info(device, 2, &info), SK2_ENOTFOUND);
    assert_int_equal(sk2_device_set_stream_enabled(device, SK2_STREAM_IR, true), SK2_ENOTFOUND);
    assert_int_equal(sk2_device_set_stream_enabled(device, SK2_STREAM_COLOR, true), 0);

    s_got_t got = {.lock = PTHREAD_MUTEX_INITIALIZER};
    assert_int_equal(sk2_device_set_lost_handler(device, s_lost, &got), 0);
    assert_int_equal(sk2_device_start(device, s_sink, &got), 0);
    for (int i = 0; i < 500 && !atomic_load(&got.lost); i++)
        usleep(10000);
    /* The recording ran out: to the backend, the camera is gone. */
    assert_true(atomic_load(&got.lost));
    assert_true(sk2_device_is_lost(device));
    assert_non_null(strstr(got.reason, "libfreenect"));
    assert_int_equal(sk2_device_stop(device), 0);

    assert_int_equal(got.depth_count, S_FRAMES);
    assert_int_equal(got.color_count, S_FRAMES);
    assert_int_equal(got.other_count, 0);
    uint16_t *want_depth = malloc(S_W * S_H * 2);
    uint8_t *want_rgb = malloc(S_W * S_H * 3);
    int readings = 0;
    for (int k = 0; k < S_FRAMES; k++) {
        for (size_t i = 0; i < S_W * S_H; i++) {
            want_depth[i] = s_expected_mm(s_raw(k, i));
            readings += want_depth[i] != 0;
        }
        for (size_t i = 0; i < S_W * S_H * 3; i++)
            want_rgb[i] = s_rgb(k, i);
        assert_int_equal(sk2_frame_sequence(got.depth[k]), k);
        assert_int_equal(sk2_frame_width(got.depth[k]), S_W);
        assert_memory_equal(sk2_frame_cdata16(got.depth[k]), want_depth, S_W * S_H * 2);
        assert_int_equal(sk2_frame_sequence(got.color[k]), k);
        assert_memory_equal(sk2_frame_cdata(got.color[k]), want_rgb, S_W * S_H * 3);
        sk2_frame_destroy(&got.depth[k]);
        sk2_frame_destroy(&got.color[k]);
    }
    /* Spot checks of the conversion itself: near, far, out of range, no reading. */
    assert_int_equal(s_expected_mm(0), 305);
    assert_true(s_expected_mm(1000) > 3000 && s_expected_mm(1000) < 7000);
    assert_int_equal(s_expected_mm(1100), 0);
    assert_int_equal(s_expected_mm(2047), 0);
    assert_true(readings > S_FRAMES * S_W * S_H / 3);
    free(want_depth);
    free(want_rgb);
    sk2_device_destroy(&device);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_it_runs_against_fakenect),
        cmocka_unit_test(test_fakenect_is_listed_as_one_camera),
        cmocka_unit_test(test_the_recorded_pixels_come_back),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
