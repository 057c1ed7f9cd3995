/* The mock device: the streamkinect2 MockKinect scene, pixel for pixel, so that everything
 * downstream (codecs, server, clients, Python interop) can be tested without a camera and can
 * check every frame it receives (sk2_mock_match).
 *
 * The scene is a wall behind a sphere that swings left and right with the sine of the wall
 * clock. Its two tables never change, so they are built once per process and shared read-only
 * by every mock device and by the verification helpers. Each running device has one capture
 * thread that renders a frame per period on absolute monotonic deadlines, and waits on a
 * condition variable rather than sleeping so that stop can wake it at once. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "core/log_internal.h"
#include "device/device_impl.h"
#include "sk2/error.h"

#define S_W ((int)SK2_MOCK_WIDTH)
#define S_H ((int)SK2_MOCK_HEIGHT)

/* The original swings the sphere by at most 100 pixels each way. */
#define S_DX_MAX 100

#define S_DEFAULT_FPS 30.0
/* Longest period we pace to; keeps absurdly small rates from overflowing the arithmetic. */
#define S_PERIOD_MAX_NS (3600LL * 1000000000LL)
/* Interval between repeats of the out-of-memory warning. */
#define S_OOM_WARN_INTERVAL_US 5000000

/* The scene, built once (pthread_once) and read-only afterwards. */
static pthread_once_t s_scene_once = PTHREAD_ONCE_INIT;
static uint16_t s_wall[SK2_MOCK_HEIGHT];                   /* mm, per row: it has no x term */
static uint16_t s_sphere[SK2_MOCK_HEIGHT][SK2_MOCK_WIDTH]; /* mm, centred, before the roll */

typedef struct {
    sk2_device_t *owner;       /* the generic device, for sk2_device_emit */
    double fps;                /* frames per second; 0 = as fast as possible */
    pthread_mutex_t lock;      /* guards should_stop */
    pthread_cond_t wake;       /* on CLOCK_MONOTONIC; signalled by stop */
    bool should_stop;          /* set by stop, read by the capture thread */
    pthread_t thread;          /* the capture thread while started */
    int64_t start_ns;          /* monotonic ns at start: origin of device timestamps */
    sk2_ratelimit_t oom_limit; /* capture thread only */
} s_mock_t;

static void s_scene_build(void)
{
    for (int y = 0; y < S_H; y++) {
        s_wall[y] = (uint16_t)((y >> 1) + 1000);
        for (int x = 0; x < S_W; x++) {
            int ex = x - S_W / 2;
            int ey = y - S_H / 2;
            /* numpy adds 500 in float64 and then truncates: do the same, not floor + 500. */
            s_sphere[y][x] = (uint16_t)(sqrt((double)(ex * ex + ey * ey)) + 500.0);
        }
    }
}

/* The source column of output column x when the sphere is rolled right by `shift` pixels
 * (numpy's np.roll(sphere, dx, axis=1)), with 0 <= shift < width. */
static inline int s_rolled_x(int x, int shift)
{
    return x >= shift ? x - shift : x - shift + S_W;
}

/* dx as a right shift in 0 .. width-1, for any int without overflow. */
static int s_shift_of(int dx)
{
    return ((dx % S_W) + S_W) % S_W;
}

static inline uint16_t s_min16(uint16_t a, uint16_t b)
{
    return a < b ? a : b;
}

int sk2_mock_dx(int64_t capture_time_us)
{
    double t = (double)capture_time_us / 1e6;
    /* The C cast truncates toward zero, as Python's int() does. */
    return (int)(sin(t) * 100.0);
}

void sk2_mock_render(uint16_t *dst, int dx)
{
    pthread_once(&s_scene_once, s_scene_build);
    int shift = s_shift_of(dx);
    for (int y = 0; y < S_H; y++) {
        const uint16_t *sphere = s_sphere[y];
        uint16_t wall = s_wall[y];
        uint16_t *out = dst + (size_t)y * S_W;
        /* Two runs per row instead of a modulo per pixel. */
        for (int x = 0; x < shift; x++)
            out[x] = s_min16(wall, sphere[x - shift + S_W]);
        for (int x = shift; x < S_W; x++)
            out[x] = s_min16(wall, sphere[x - shift]);
    }
}

/* True if `depth` equals the scene at dx in the bits of `mask`. Stops at the first difference,
 * which for a wrong dx is almost always in the first row. */
static bool s_scene_equals(const uint16_t *depth, int dx, uint16_t mask)
{
    int shift = s_shift_of(dx);
    for (int y = 0; y < S_H; y++) {
        const uint16_t *row = depth + (size_t)y * S_W;
        for (int x = 0; x < S_W; x++) {
            uint16_t want = s_min16(s_wall[y], s_sphere[y][s_rolled_x(x, shift)]);
            if (((row[x] ^ want) & mask) != 0)
                return false;
        }
    }
    return true;
}

int sk2_mock_match(const uint16_t *depth, uint32_t width, uint32_t height, unsigned bits, int *dx)
{
    if (!depth || !dx || width != SK2_MOCK_WIDTH || height != SK2_MOCK_HEIGHT || bits < 1 ||
        bits > 16)
        return SK2_EINVAL;
    pthread_once(&s_scene_once, s_scene_build);
    uint16_t mask = (uint16_t)((1u << bits) - 1);
    /* With few bits several dx can match; the lowest wins, which keeps the answer stable. */
    for (int candidate = -S_DX_MAX; candidate <= S_DX_MAX; candidate++) {
        if (s_scene_equals(depth, candidate, mask)) {
            *dx = candidate;
            return 0;
        }
    }
    return SK2_ENOTFOUND;
}

static int64_t s_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The pacing period for a rate, 0 for as fast as possible. */
static int64_t s_period_ns(double fps)
{
    if (fps <= 0)
        return 0;
    double period = 1e9 / fps;
    return period > (double)S_PERIOD_MAX_NS ? S_PERIOD_MAX_NS : (int64_t)llround(period);
}

/* Waits until the monotonic clock reaches deadline_ns or stop is asked. Returns false if the
 * thread should stop. A timed wait on the condition variable, not a sleep, so that stop needs
 * no more than a wake-up however long the period. */
static bool s_wait_until(s_mock_t *self, int64_t deadline_ns)
{
    struct timespec deadline = {
        .tv_sec = (time_t)(deadline_ns / 1000000000),
        .tv_nsec = (long)(deadline_ns % 1000000000),
    };
    pthread_mutex_lock(&self->lock);
    while (!self->should_stop && s_mono_ns() < deadline_ns) {
        int rc = pthread_cond_timedwait(&self->wake, &self->lock, &deadline);
        /* Anything but a wake-up or a timeout means the wait cannot work: go on rather than
         * spin, and let the next deadline try again. */
        if (rc != 0 && rc != ETIMEDOUT)
            break;
    }
    bool should_run = !self->should_stop;
    pthread_mutex_unlock(&self->lock);
    return should_run;
}

static void s_capture_one(s_mock_t *self)
{
    sk2_frame_t *frame =
        sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT);
    if (!frame) {
        uint64_t suppressed = 0;
        if (sk2_ratelimit_pass(&self->oom_limit, S_OOM_WARN_INTERVAL_US, &suppressed))
            SK2_WARN("mock", "out of memory for a frame, frame skipped (%" PRIu64 " more before)",
                     suppressed);
        return;
    }
    /* The instant of capture: the same wall time picks the scene and travels with the frame,
     * so a receiver can recompute the scene from the frame alone. */
    int64_t now_ns = s_mono_ns();
    int64_t capture_time_us = sk2_clock_wall_us();
    sk2_mock_render(sk2_frame_data16(frame), sk2_mock_dx(capture_time_us));
    sk2_frame_set_device_timestamp_us(frame, (now_ns - self->start_ns) / 1000);
    sk2_frame_set_capture_time_us(frame, capture_time_us);
    sk2_device_emit(self->owner, 0, &frame);
}

/* The capture thread. Frames are due on a fixed grid start + k * period, so the rate does not
 * drift with the time each frame takes. After a hiccup at most one late frame goes out at once;
 * if a whole period or more was lost, the grid points already missed are skipped instead of
 * sending a burst to catch up. */
static void *s_capture_thread(void *arg)
{
    s_mock_t *self = arg;
    int64_t period_ns = s_period_ns(self->fps);
    int64_t deadline_ns = self->start_ns;
    while (s_wait_until(self, deadline_ns)) {
        s_capture_one(self);
        if (period_ns == 0)
            continue;
        deadline_ns += period_ns;
        int64_t late_ns = s_mono_ns() - deadline_ns;
        if (late_ns >= period_ns)
            deadline_ns += late_ns / period_ns * period_ns;
    }
    return NULL;
}

static int s_create(sk2_device_t *owner, void **impl_p)
{
    s_mock_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->owner = owner;
    self->fps = S_DEFAULT_FPS;

    pthread_condattr_t attr;
    bool has_lock = false;
    bool has_attr = false;
    int rc = SK2_ENOMEM;
    if (pthread_mutex_init(&self->lock, NULL) != 0)
        goto out;
    has_lock = true;
    if (pthread_condattr_init(&attr) != 0)
        goto out;
    has_attr = true;
    /* Deadlines are monotonic: a wall clock step must not stall or rush the capture. */
    if (pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&self->wake, &attr) != 0)
        goto out;
    rc = 0;
out:
    if (has_attr)
        pthread_condattr_destroy(&attr);
    if (rc != 0) {
        if (has_lock)
            pthread_mutex_destroy(&self->lock);
        free(self);
        return rc;
    }
    *impl_p = self;
    return 0;
}

static void s_destroy(void *impl)
{
    s_mock_t *self = impl;
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
    free(self);
}

static int s_set_fps(void *impl, double fps)
{
    s_mock_t *self = impl;
    self->fps = fps;
    return 0;
}

static int s_open(void *impl)
{
    (void)impl;
    /* Build the shared tables now so that the first frame does not pay for them. */
    pthread_once(&s_scene_once, s_scene_build);
    return 0;
}

static int s_start(void *impl)
{
    s_mock_t *self = impl;
    self->should_stop = false;
    self->start_ns = s_mono_ns();

    /* The capture thread blocks all signals: they belong to the application (see STYLE.md),
     * which may wait for them in one thread of its choosing. */
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&self->thread, NULL, s_capture_thread, self);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : SK2_ESYS;
}

static void s_stop(void *impl)
{
    s_mock_t *self = impl;
    pthread_mutex_lock(&self->lock);
    self->should_stop = true;
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
}

static size_t s_stream_count(const void *impl)
{
    (void)impl;
    return 1;
}

static int s_stream_info(const void *impl, size_t index, sk2_stream_info_t *info)
{
    const s_mock_t *self = impl;
    if (index != 0)
        return SK2_ENOTFOUND;
    info->kind = SK2_STREAM_DEPTH;
    info->format = SK2_PIXEL_DEPTH_MM16;
    info->width = SK2_MOCK_WIDTH;
    info->height = SK2_MOCK_HEIGHT;
    info->fps = self->fps;
    return 0;
}

const sk2_device_backend_t sk2_device_backend_mock = {
    .name = "mock",
    .create = s_create,
    .destroy = s_destroy,
    .set_fps = s_set_fps,
    .open = s_open,
    .start = s_start,
    .stop = s_stop,
    .stream_count = s_stream_count,
    .stream_info = s_stream_info,
};
