/* The mock device: the streamkinect2 MockKinect scene, pixel for pixel, so that everything
 * downstream (codecs, server, clients, Python interop) can be tested without a camera and can
 * check every frame it receives (sk2_mock_match).
 *
 * The scene is a wall behind a sphere that swings left and right with the sine of the wall
 * clock. Its two tables never change, so they are built once per process and shared read-only
 * by every mock device and by the verification helpers. Each running device has one capture
 * thread that renders a frame per period on absolute monotonic deadlines (device_thread.h), so
 * that stop can wake it at once. */
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log_internal.h"
#include "device/device_impl.h"
#include "device/device_thread.h"
#include "sk2/error.h"

#define S_W ((int)SK2_MOCK_WIDTH)
#define S_H ((int)SK2_MOCK_HEIGHT)

/* The original swings the sphere by at most 100 pixels each way. */
#define S_DX_MAX 100

#define S_DEFAULT_FPS 30.0
/* Interval between repeats of the out-of-memory warning. */
#define S_OOM_WARN_INTERVAL_US 5000000

/* Fault injection: the serials of the mock cameras "unplugged" now. Few and short-lived, so a
 * small table under a lock; the capture threads look at it once per frame. */
#define S_UNPLUGGED_MAX 64
static pthread_mutex_t s_unplugged_lock = PTHREAD_MUTEX_INITIALIZER;
static char s_unplugged[S_UNPLUGGED_MAX][32];

/* The scene, built once (pthread_once) and read-only afterwards. */
static pthread_once_t s_scene_once = PTHREAD_ONCE_INIT;
static uint16_t s_wall[SK2_MOCK_HEIGHT];                   /* mm, per row: it has no x term */
static uint16_t s_sphere[SK2_MOCK_HEIGHT][SK2_MOCK_WIDTH]; /* mm, centred, before the roll */

/* Stream indices of the mock device. */
enum { S_DEPTH = 0, S_IR = 1, S_COLOR = 2, S_STREAMS = 3 };

/* Sizes of the depth and IR streams (`resolution.depth`, `resolution.ir`): the native one and
 * its half and double, each pixel of which is exactly one pixel of the native scene (every
 * second one, or each twice), so that a receiver can still check every frame. */
static const struct {
    uint32_t width, height;
} s_sizes[] = {{SK2_MOCK_WIDTH / 2, SK2_MOCK_HEIGHT / 2},
               {SK2_MOCK_WIDTH, SK2_MOCK_HEIGHT},
               {SK2_MOCK_WIDTH * 2, SK2_MOCK_HEIGHT * 2}};
#define S_SIZES_TEXT       "256x212, 512x424, 1024x848"
#define S_COLOR_SIZES_TEXT "even sizes from 16x16 to 1920x1080"

#define S_COLOR_MAX_WIDTH  1920u
#define S_COLOR_MAX_HEIGHT 1080u
#define S_COLOR_MIN_SIZE   16u

typedef struct {
    sk2_device_t *owner;      /* the generic device, for sk2_device_emit */
    double fps;               /* frames per second; 0 = as fast as possible */
    bool is_aligned;          /* uri "align": capture on the wall clock's period boundaries */
    int64_t last_boundary_ns; /* aligned: the boundary of the last capture (capture thread) */
    uint32_t color_width;     /* colour stream size, pixels */
    uint32_t color_height;
    uint32_t width[2];  /* depth (S_DEPTH) and IR (S_IR) sizes: one of s_sizes; set only while */
    uint32_t height[2]; /* stopped, so the capture thread reads them unlocked */
    uint16_t *scene;    /* depth of the current instant, mm: capture thread only */
    char serial[32];    /* "mock-" + the start of the id, fixed at open */
    sk2_device_thread_t thread; /* paces capture; its start is the origin of timestamps */
    sk2_ratelimit_t oom_limit;  /* capture thread only */
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

static bool s_is_size(uint32_t width, uint32_t height)
{
    for (size_t i = 0; i < sizeof s_sizes / sizeof s_sizes[0]; i++)
        if (s_sizes[i].width == width && s_sizes[i].height == height)
            return true;
    return false;
}

/* True if `depth` (width x height, one of s_sizes) equals the scene at dx, sampled as the
 * device samples it, in the bits of `mask`. Stops at the first difference, which for a wrong
 * dx is almost always in the first row. */
static bool s_scene_equals(const uint16_t *depth, uint32_t width, uint32_t height, int dx,
                           uint16_t mask)
{
    int shift = s_shift_of(dx);
    for (uint32_t v = 0; v < height; v++) {
        const uint16_t *row = depth + (size_t)v * width;
        int y = (int)(v * SK2_MOCK_HEIGHT / height);
        for (uint32_t u = 0; u < width; u++) {
            int x = (int)(u * SK2_MOCK_WIDTH / width);
            uint16_t want = s_min16(s_wall[y], s_sphere[y][s_rolled_x(x, shift)]);
            if (((row[u] ^ want) & mask) != 0)
                return false;
        }
    }
    return true;
}

int sk2_mock_match(const uint16_t *depth, uint32_t width, uint32_t height, unsigned bits, int *dx)
{
    if (!depth || !dx || !s_is_size(width, height) || bits < 1 || bits > 16)
        return SK2_EINVAL;
    pthread_once(&s_scene_once, s_scene_build);
    uint16_t mask = (uint16_t)((1u << bits) - 1);
    /* With few bits several dx can match; the lowest wins, which keeps the answer stable. */
    for (int candidate = -S_DX_MAX; candidate <= S_DX_MAX; candidate++) {
        if (s_scene_equals(depth, width, height, candidate, mask)) {
            *dx = candidate;
            return 0;
        }
    }
    return SK2_ENOTFOUND;
}

int sk2_mock_set_unplugged(const char *serial, bool is_unplugged)
{
    if (!serial || serial[0] == '\0' || strlen(serial) >= sizeof s_unplugged[0])
        return SK2_EINVAL;
    int rc = 0;
    pthread_mutex_lock(&s_unplugged_lock);
    int found = -1, free_slot = -1;
    for (int i = 0; i < S_UNPLUGGED_MAX; i++) {
        if (strcmp(s_unplugged[i], serial) == 0)
            found = i;
        else if (s_unplugged[i][0] == '\0' && free_slot < 0)
            free_slot = i;
    }
    if (!is_unplugged && found >= 0)
        s_unplugged[found][0] = '\0';
    else if (is_unplugged && found < 0 && free_slot < 0)
        rc = SK2_ELIMIT;
    else if (is_unplugged && found < 0)
        strcpy(s_unplugged[free_slot], serial);
    pthread_mutex_unlock(&s_unplugged_lock);
    return rc;
}

static bool s_is_unplugged(const char *serial)
{
    bool is_unplugged = false;
    pthread_mutex_lock(&s_unplugged_lock);
    for (int i = 0; i < S_UNPLUGGED_MAX && !is_unplugged; i++)
        is_unplugged = strcmp(s_unplugged[i], serial) == 0;
    pthread_mutex_unlock(&s_unplugged_lock);
    return is_unplugged;
}

static sk2_frame_t *s_new_frame(s_mock_t *self, sk2_stream_kind_t kind, sk2_pixel_format_t format,
                                uint32_t width, uint32_t height)
{
    sk2_frame_t *frame = sk2_frame_new(kind, format, width, height);
    if (!frame) {
        uint64_t suppressed = 0;
        if (sk2_ratelimit_pass(&self->oom_limit, S_OOM_WARN_INTERVAL_US, &suppressed))
            SK2_WARN("mock", "out of memory for a frame, frame skipped (%" PRIu64 " more before)",
                     suppressed);
    }
    return frame;
}

static void s_emit(s_mock_t *self, size_t index, sk2_frame_t *frame, int64_t timestamp_us,
                   int64_t capture_time_us)
{
    sk2_frame_set_device_timestamp_us(frame, timestamp_us);
    sk2_frame_set_capture_time_us(frame, capture_time_us);
    sk2_device_emit(self->owner, index, &frame);
}

uint16_t sk2_mock_ir(uint16_t depth_mm)
{
    /* Active illumination falls off with the square of the distance. */
    if (depth_mm == 0)
        return 0;
    double value = 4.0e9 / ((double)depth_mm * depth_mm);
    return value > 65535.0 ? 65535 : (uint16_t)value;
}

/* The colour view of the scene: the cone in warm shades by distance, the wall as a grey
 * checkerboard, sampled from the depth scene at the colour camera's resolution. */
static void s_render_color(const s_mock_t *self, uint8_t *rgb)
{
    uint32_t width = self->color_width, height = self->color_height;
    for (uint32_t v = 0; v < height; v++) {
        uint32_t y = v * SK2_MOCK_HEIGHT / height;
        const uint16_t *row = &self->scene[y * SK2_MOCK_WIDTH];
        for (uint32_t u = 0; u < width; u++) {
            uint32_t x = u * SK2_MOCK_WIDTH / width;
            uint16_t d = row[x];
            uint8_t *px = &rgb[((size_t)v * width + u) * 3];
            if (d < 1000) {
                int shade = 255 - (d - 500) / 2;
                px[0] = (uint8_t)(shade < 60 ? 60 : shade);
                px[1] = (uint8_t)(px[0] / 3);
                px[2] = 40;
            } else {
                bool is_light = ((x >> 5) ^ (y >> 5)) & 1;
                px[0] = px[1] = px[2] = is_light ? 190 : 120;
            }
        }
    }
}

/* The scene at the size of a depth or IR stream: the native scene itself, or every second
 * pixel of it, or each of its pixels twice (as sk2_mock_match samples it). */
static void s_sample(const s_mock_t *self, size_t index, uint16_t *out, bool is_ir)
{
    uint32_t width = self->width[index], height = self->height[index];
    for (uint32_t v = 0; v < height; v++) {
        const uint16_t *row = &self->scene[(size_t)(v * SK2_MOCK_HEIGHT / height) * S_W];
        uint16_t *dst = out + (size_t)v * width;
        for (uint32_t u = 0; u < width; u++) {
            uint16_t d = row[u * SK2_MOCK_WIDTH / width];
            dst[u] = is_ir ? sk2_mock_ir(d) : d;
        }
    }
}

static void s_capture_one(s_mock_t *self, int64_t capture_time_us)
{
    /* The instant of capture: the same wall time picks the scene for every stream and travels
     * with the frames, so a receiver can recompute the scene from a frame alone. */
    int64_t now_ns = sk2_device_thread_now_ns();
    int64_t timestamp_us = (now_ns - sk2_device_thread_start_ns(&self->thread)) / 1000;
    sk2_mock_render(self->scene, sk2_mock_dx(capture_time_us));

    sk2_frame_t *frame;
    if (sk2_device_stream_wanted(self->owner, S_DEPTH) &&
        (frame = s_new_frame(self, SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, self->width[S_DEPTH],
                             self->height[S_DEPTH]))) {
        s_sample(self, S_DEPTH, sk2_frame_data16(frame), false);
        s_emit(self, S_DEPTH, frame, timestamp_us, capture_time_us);
    }
    if (sk2_device_stream_wanted(self->owner, S_IR) &&
        (frame = s_new_frame(self, SK2_STREAM_IR, SK2_PIXEL_GRAY16, self->width[S_IR],
                             self->height[S_IR]))) {
        s_sample(self, S_IR, sk2_frame_data16(frame), true);
        s_emit(self, S_IR, frame, timestamp_us, capture_time_us);
    }
    if (sk2_device_stream_wanted(self->owner, S_COLOR) &&
        (frame = s_new_frame(self, SK2_STREAM_COLOR, SK2_PIXEL_RGB24, self->color_width,
                             self->color_height))) {
        s_render_color(self, sk2_frame_data(frame));
        s_emit(self, S_COLOR, frame, timestamp_us, capture_time_us);
    }
}

/* One frame on the capture thread's grid (sk2_device_thread_start_paced), unless the camera was
 * pulled out. */
static bool s_tick(void *arg)
{
    s_mock_t *self = arg;
    if (s_is_unplugged(self->serial)) {
        /* Like a camera pulled out: no more frames, whatever the application wants. */
        sk2_device_report_lost(self->owner, "unplugged (mock fault injection)");
        return false;
    }
    s_capture_one(self, sk2_clock_wall_us());
    return true;
}

/* The boundary of the frame grid at `fps` nearest wall_ns (or the first after it, is_up): the
 * instants k / fps seconds after a multiple of 1000 s since 1970. Any rate given to a
 * thousandth of a frame per second has a whole number of frames in 1000 s, so rates that
 * divide one another (30 and 15) share boundaries, on every host whose clock agrees. Working
 * within one 1000 s era keeps the arithmetic well inside a double's exact range. */
static int64_t s_boundary_ns(int64_t wall_ns, double fps, bool is_up)
{
    const int64_t era_ns = 1000LL * 1000000000LL;
    int64_t base_ns = wall_ns / era_ns * era_ns;
    double period_ns = 1e12 / (double)llround(fps * 1000);
    double k = (double)(wall_ns - base_ns) / period_ns;
    k = is_up ? ceil(k) : round(k);
    return base_ns + llround(k * period_ns);
}

/* --mock-align (uri "align"): the thread runs unpaced and each tick waits for the next
 * boundary of the true wall clock, mapped to the monotonic clock afresh each time, so the grid
 * follows the wall clock however the two drift apart. The capture time is the boundary itself
 * (the scene is rendered for it): mocks of any server on this host, or on hosts whose clocks
 * agree, capture the same instants, whatever clock offset their servers report. */
static bool s_tick_aligned(void *arg)
{
    s_mock_t *self = arg;
    int64_t wall_ns = sk2_clock_wall_us() * 1000;
    int64_t mono_ns = sk2_device_thread_now_ns();
    int64_t boundary_ns = s_boundary_ns(wall_ns, self->fps, true);
    if (boundary_ns <= self->last_boundary_ns) /* woke a little early: that one is done */
        boundary_ns = s_boundary_ns(self->last_boundary_ns + 1, self->fps, true);
    if (!sk2_device_thread_wait_until(&self->thread, mono_ns + (boundary_ns - wall_ns)))
        return false;
    if (s_is_unplugged(self->serial)) {
        sk2_device_report_lost(self->owner, "unplugged (mock fault injection)");
        return false;
    }
    self->last_boundary_ns = boundary_ns;
    s_capture_one(self, boundary_ns / 1000);
    return true;
}

static int s_create(sk2_device_t *owner, void **impl_p)
{
    s_mock_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->owner = owner;
    self->fps = S_DEFAULT_FPS;
    self->color_width = S_COLOR_MAX_WIDTH;
    self->color_height = S_COLOR_MAX_HEIGHT;
    for (size_t i = 0; i < 2; i++) {
        self->width[i] = SK2_MOCK_WIDTH;
        self->height[i] = SK2_MOCK_HEIGHT;
    }
    if (sk2_device_thread_init(&self->thread) != 0) {
        free(self);
        return SK2_ENOMEM;
    }
    *impl_p = self;
    /* The colour view is drawn from the depth camera's own viewpoint (s_render_color), so the
     * two cameras share one frame: identity. (It stretches the scene to the colour size rather
     * than projecting it through the colour intrinsics, so registered mock frames line up only
     * roughly; tests/test_registration.c checks registration on an exact synthetic scene.) */
    sk2_extrinsics_t same_place;
    sk2_extrinsics_identity(&same_place);
    sk2_device_set_depth_to_color(owner, &same_place);
    return 0;
}

static void s_destroy(void *impl)
{
    s_mock_t *self = impl;
    free(self->scene);
    sk2_device_thread_fini(&self->thread);
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
    s_mock_t *self = impl;
    /* Build the shared tables now so that the first frame does not pay for them. */
    pthread_once(&s_scene_once, s_scene_build);
    char serial[sizeof self->serial];
    snprintf(serial, sizeof serial, "mock-%.12s", sk2_device_id(self->owner));
    if (s_is_unplugged(serial))
        return SK2_EDEVICE;
    self->scene = malloc((size_t)SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT * sizeof(uint16_t));
    if (!self->scene)
        return SK2_ENOMEM;
    memcpy(self->serial, serial, sizeof serial);
    sk2_device_set_serial(self->owner, self->serial);
    return 0;
}

static bool s_is_color_size(uint32_t width, uint32_t height)
{
    return width >= S_COLOR_MIN_SIZE && height >= S_COLOR_MIN_SIZE && width <= S_COLOR_MAX_WIDTH &&
           height <= S_COLOR_MAX_HEIGHT && width % 2 == 0 && height % 2 == 0;
}

static int s_set_color_size(void *impl, uint32_t width, uint32_t height)
{
    s_mock_t *self = impl;
    if (!s_is_color_size(width, height))
        return SK2_EINVAL;
    self->color_width = width;
    self->color_height = height;
    return 0;
}

static int s_check_stream_size(const void *impl, size_t index, uint32_t width, uint32_t height)
{
    (void)impl;
    if (index >= S_STREAMS)
        return SK2_EUNSUPPORTED;
    bool is_ok = index == S_COLOR ? s_is_color_size(width, height) : s_is_size(width, height);
    return is_ok ? 0 : SK2_EINVAL;
}

static int s_set_stream_size(void *impl, size_t index, uint32_t width, uint32_t height)
{
    s_mock_t *self = impl;
    int rc = s_check_stream_size(impl, index, width, height);
    if (rc != 0 || index == S_COLOR)
        return rc != 0 ? rc : s_set_color_size(impl, width, height);
    self->width[index] = width;
    self->height[index] = height;
    return 0;
}

static const char *s_stream_sizes(const void *impl, size_t index)
{
    (void)impl;
    return index == S_COLOR ? S_COLOR_SIZES_TEXT : S_SIZES_TEXT;
}

static int s_start(void *impl)
{
    s_mock_t *self = impl;
    /* Aligned capture needs a grid; as fast as possible has none, and runs unaligned. */
    if (self->is_aligned && self->fps > 0) {
        self->last_boundary_ns = 0;
        return sk2_device_thread_start_paced(&self->thread, 0, s_tick_aligned, self);
    }
    return sk2_device_thread_start_paced(&self->thread, self->fps, s_tick, self);
}

/* The mock has no cameras to choose from (any other uri: SK2_EUNSUPPORTED); its one uri,
 * "align", asks for capture on the wall clock's period boundaries (sk2 serve --mock-align). */
static int s_set_uri(void *impl, const char *uri)
{
    s_mock_t *self = impl;
    if (strcmp(uri, "align") != 0)
        return SK2_EUNSUPPORTED;
    self->is_aligned = true;
    return 0;
}

static void s_stop(void *impl)
{
    s_mock_t *self = impl;
    sk2_device_thread_stop(&self->thread);
}

static size_t s_stream_count(const void *impl)
{
    (void)impl;
    return S_STREAMS;
}

/* Typical factory calibration of a Kinect v2: the depth/IR camera's own, and the colour
 * camera's at 1920 x 1080 (scaled to the chosen colour size). */
static const sk2_intrinsics_t s_depth_intrinsics = {
    .fx = 365.456,
    .fy = 365.456,
    .cx = 254.878,
    .cy = 205.395,
    .k1 = 0.0905474,
    .k2 = -0.26819,
    .k3 = 0.0950862,
    .p1 = 0.0,
    .p2 = 0.0,
};
static const sk2_intrinsics_t s_color_intrinsics = {
    .fx = 1081.37,
    .fy = 1081.37,
    .cx = 959.5,
    .cy = 539.5,
};

static int s_stream_info(const void *impl, size_t index, sk2_stream_info_t *info)
{
    const s_mock_t *self = impl;
    if (index >= S_STREAMS)
        return SK2_ENOTFOUND;
    *info = (sk2_stream_info_t){
        .width = SK2_MOCK_WIDTH,
        .height = SK2_MOCK_HEIGHT,
        .fps = self->fps,
        .has_intrinsics = true,
        .intrinsics = s_depth_intrinsics,
    };
    if (index != S_COLOR) {
        /* The same camera seen at another size: focal lengths and the principal point scale
         * with it (pixel centres at +0.5); the distortion, in normalised coordinates, does
         * not. */
        double sx = self->width[index] / (double)SK2_MOCK_WIDTH;
        double sy = self->height[index] / (double)SK2_MOCK_HEIGHT;
        info->width = self->width[index];
        info->height = self->height[index];
        info->intrinsics.fx *= sx;
        info->intrinsics.cx = (s_depth_intrinsics.cx + 0.5) * sx - 0.5;
        info->intrinsics.fy *= sy;
        info->intrinsics.cy = (s_depth_intrinsics.cy + 0.5) * sy - 0.5;
    }
    if (index == S_DEPTH) {
        info->kind = SK2_STREAM_DEPTH;
        info->format = SK2_PIXEL_DEPTH_MM16;
        info->depth_unit_m = 0.001;
    } else if (index == S_IR) {
        info->kind = SK2_STREAM_IR;
        info->format = SK2_PIXEL_GRAY16;
    } else {
        double sx = self->color_width / (double)S_COLOR_MAX_WIDTH;
        double sy = self->color_height / (double)S_COLOR_MAX_HEIGHT;
        info->kind = SK2_STREAM_COLOR;
        info->format = SK2_PIXEL_RGB24;
        info->width = self->color_width;
        info->height = self->color_height;
        info->intrinsics = s_color_intrinsics;
        info->intrinsics.fx *= sx;
        info->intrinsics.cx = (s_color_intrinsics.cx + 0.5) * sx - 0.5;
        info->intrinsics.fy *= sy;
        info->intrinsics.cy = (s_color_intrinsics.cy + 0.5) * sy - 0.5;
    }
    return 0;
}

const sk2_device_backend_t sk2_device_backend_mock = {
    .name = "mock",
    .create = s_create,
    .destroy = s_destroy,
    .set_fps = s_set_fps,
    .set_uri = s_set_uri,
    .open = s_open,
    .start = s_start,
    .stop = s_stop,
    .stream_count = s_stream_count,
    .stream_info = s_stream_info,
    .set_color_size = s_set_color_size,
    .check_stream_size = s_check_stream_size,
    .set_stream_size = s_set_stream_size,
    .stream_sizes = s_stream_sizes,
};
