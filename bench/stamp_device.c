/* The "stamp" backend: the mock scene with a time and sequence stamp in its first pixels, so
 * that a client can tell how old each frame is when it comes out of sk2_client_recv and how
 * many it never saw. Defined here rather than in the library because only the benchmark needs
 * it; sk2_device_new_backend() gives it the same generic device (numbering, sink, states) as
 * the built-in backends.
 *
 * Pacing is the mock's, from the same helper (src/device/device_thread.h): one capture thread,
 * frames due on a fixed grid of absolute monotonic deadlines, a timed wait on a condition
 * variable so that stop wakes it at once. The capture
 * time is read from CLOCK_REALTIME because the client compares it with its own wall clock;
 * on one host both read the same clock, so the difference is the latency. */
#include <stdbool.h>
#include <stdlib.h>

#include "device/device_impl.h"
#include "device/device_thread.h"
#include "sk2/error.h"
#include "stamp_device.h"

#define S_BITS      12
#define S_MASK      ((1u << S_BITS) - 1)
#define S_TIME_PX   4 /* 48 bits of time */
#define S_TIME_MASK ((INT64_C(1) << (S_BITS * S_TIME_PX)) - 1)

typedef struct {
    sk2_device_t *owner;        /* the generic device, for sk2_device_emit */
    double fps;                 /* frames per second; 0 = as fast as possible */
    sk2_device_thread_t thread; /* paces capture; its start is the origin of timestamps */
    uint64_t sequence;          /* next frame's number from open; capture thread only */
} s_stamp_t;

void stamp_write(uint16_t *pixels, int64_t capture_time_us, uint64_t sequence)
{
    uint64_t time = (uint64_t)capture_time_us;
    for (int i = 0; i < S_TIME_PX; i++)
        pixels[i] = (uint16_t)((time >> (S_BITS * i)) & S_MASK);
    for (int i = 0; i < STAMP_PIXELS - S_TIME_PX; i++)
        pixels[S_TIME_PX + i] = (uint16_t)((sequence >> (S_BITS * i)) & S_MASK);
}

void stamp_read(const uint16_t *pixels, int64_t now_us, int64_t *age_us, uint64_t *sequence)
{
    uint64_t time = 0;
    for (int i = 0; i < S_TIME_PX; i++)
        time |= (uint64_t)(pixels[i] & S_MASK) << (S_BITS * i);
    /* Only the low 48 bits of the capture time travel; the age modulo 2^48 is still exact. */
    *age_us = (int64_t)(((uint64_t)now_us - time) & (uint64_t)S_TIME_MASK);
    uint64_t number = 0;
    for (int i = 0; i < STAMP_PIXELS - S_TIME_PX; i++)
        number |= (uint64_t)(pixels[S_TIME_PX + i] & S_MASK) << (S_BITS * i);
    *sequence = number;
}

static void s_capture_one(s_stamp_t *self)
{
    sk2_frame_t *frame =
        sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT);
    if (!frame)
        return; /* out of memory: the frame is simply not made, as in the mock */
    int64_t now_ns = sk2_device_thread_now_ns();
    int64_t capture_time_us = sk2_clock_wall_us();
    uint16_t *pixels = sk2_frame_data16(frame);
    sk2_mock_render(pixels, sk2_mock_dx(capture_time_us));
    stamp_write(pixels, capture_time_us, self->sequence++);
    sk2_frame_set_device_timestamp_us(frame,
                                      (now_ns - sk2_device_thread_start_ns(&self->thread)) / 1000);
    sk2_frame_set_capture_time_us(frame, capture_time_us);
    sk2_device_emit(self->owner, 0, &frame);
}

static bool s_tick(void *arg)
{
    s_capture_one(arg);
    return true;
}

static int s_create(sk2_device_t *owner, void **impl_p)
{
    s_stamp_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->owner = owner;
    if (sk2_device_thread_init(&self->thread) != 0) {
        free(self);
        return SK2_ENOMEM;
    }
    *impl_p = self;
    return 0;
}

static void s_destroy(void *impl)
{
    s_stamp_t *self = impl;
    sk2_device_thread_fini(&self->thread);
    free(self);
}

static int s_set_fps(void *impl, double fps)
{
    s_stamp_t *self = impl;
    self->fps = fps;
    return 0;
}

static int s_open(void *impl)
{
    (void)impl;
    return 0;
}

static int s_start(void *impl)
{
    s_stamp_t *self = impl;
    return sk2_device_thread_start_paced(&self->thread, self->fps, s_tick, self);
}

static void s_stop(void *impl)
{
    s_stamp_t *self = impl;
    sk2_device_thread_stop(&self->thread);
}

static size_t s_stream_count(const void *impl)
{
    (void)impl;
    return 1;
}

static int s_stream_info(const void *impl, size_t index, sk2_stream_info_t *info)
{
    const s_stamp_t *self = impl;
    if (index != 0)
        return SK2_ENOTFOUND;
    *info = (sk2_stream_info_t){.kind = SK2_STREAM_DEPTH,
                                .format = SK2_PIXEL_DEPTH_MM16,
                                .width = SK2_MOCK_WIDTH,
                                .height = SK2_MOCK_HEIGHT,
                                .fps = self->fps};
    return 0;
}

static const sk2_device_backend_t s_backend = {
    .name = "stamp",
    .create = s_create,
    .destroy = s_destroy,
    .set_fps = s_set_fps,
    .open = s_open,
    .start = s_start,
    .stop = s_stop,
    .stream_count = s_stream_count,
    .stream_info = s_stream_info,
};

sk2_device_t *stamp_device_new(double fps)
{
    sk2_device_t *device = sk2_device_new_backend(&s_backend);
    if (device && sk2_device_set_fps(device, fps) != 0)
        sk2_device_destroy(&device);
    return device;
}
