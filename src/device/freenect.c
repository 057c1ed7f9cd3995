/* The libfreenect backend: Kinect v1 (Xbox 360 and Kinect for Windows) through the OpenKinect
 * library, natively. Depth at 640 x 480 in millimetres, colour at 640 x 480 RGB and IR at
 * 640 x 488 (10 bits in 16); the camera sends colour or IR, never both, so colour wins while
 * someone wants it.
 *
 * Depth comes in millimetres from libfreenect itself (FREENECT_DEPTH_MM: the camera's own
 * calibration, in the depth camera's view, not registered to colour). Where the library has no
 * such mode (fakenect, the recording player Debian ships, offers raw 11-bit disparity only),
 * the backend converts the raw values with the usual approximation for Kinect v1,
 * mm = round(1000 * 0.1236 * tan(raw / 2842.5 + 1.1863)), keeping results in 1..10000 and
 * 0 (no reading) for everything else, raw 2047 included.
 *
 * Each device has its own libfreenect context and one thread that runs the library's event
 * loop; the frame callbacks run on it and hand copies to sk2_device_emit(). The library reports
 * an unplugged camera as an error from its event loop; a camera that sends nothing for
 * SK2_DEVICE_STALL_US while streams are on counts as lost too.
 *
 * Functions that fakenect lacks (device serials, calibration) are looked up at run time with
 * dlsym, so the same build runs against the real library and against fakenect. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <assert.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <libfreenect.h>

#include "core/log_internal.h"
#include "device/device_impl.h"
#include "device/device_thread.h"
#include "sk2/error.h"

#define S_DEPTH_MAX_MM  10000 /* FREENECT_DEPTH_MM_MAX_VALUE */
#define S_RAW_COUNT     2048  /* 11-bit disparity values */
#define S_EVENT_WAIT_US 100000
#define S_MAX_DEVICES   64 /* cameras one context lists, at most */

typedef int(s_list_fn)(freenect_context *, struct freenect_device_attributes **);
typedef void(s_free_list_fn)(struct freenect_device_attributes *);
typedef void(s_to_world_fn)(freenect_device *, int, int, int, double *, double *);

enum { S_NONE = -1 };

typedef struct {
    sk2_device_t *owner;
    char uri[SK2_CAMERA_URI_MAX + 1];
    char serial[SK2_CAMERA_SERIAL_MAX + 1];
    freenect_context *context; /* while open */
    freenect_device *device;   /* while open */
    freenect_frame_mode depth_mode, color_mode, ir_mode;
    bool is_depth_mm; /* depth_mode is FREENECT_DEPTH_MM, else 11-bit raw */
    bool has_color, has_ir;
    int index_of[5]; /* stream index per sk2_stream_kind_t, S_NONE if not offered */
    uint16_t raw_to_mm[S_RAW_COUNT];
    sk2_device_thread_t thread; /* runs the event loop; its start is the origin of timestamps */
    /* Capture thread only: */
    bool is_depth_on;
    int video_kind; /* SK2_STREAM_COLOR, SK2_STREAM_IR or S_NONE: what the camera sends now */
} s_freenect_t;

/* Looks up an optional function of libfreenect into *fn_p (a function pointer of fn_size
 * bytes); leaves NULL there if this build of the library lacks it. ISO C has no conversion
 * from dlsym's object pointer to a function pointer; POSIX guarantees they have the same
 * representation, so the bytes are copied. */
static void s_symbol(const char *name, void *fn_p, size_t fn_size)
{
    void *object = dlsym(RTLD_DEFAULT, name);
    assert(fn_size == sizeof object);
    memcpy(fn_p, &object, sizeof object);
}

/* A context that sees cameras only (no motor, no audio), logging errors only. */
static int s_context(freenect_context **context_p)
{
    *context_p = NULL;
    if (freenect_init(context_p, NULL) < 0 || !*context_p) {
        SK2_WARN("freenect", "libfreenect cannot start (USB unavailable?)");
        return SK2_EDEVICE;
    }
    freenect_set_log_level(*context_p, FREENECT_LOG_ERROR);
    freenect_select_subdevices(*context_p, FREENECT_DEVICE_CAMERA);
    return 0;
}

/* Lists up to `capacity` serials; returns how many cameras the library sees. Without
 * freenect_list_device_attributes (fakenect) the serials are left empty. */
static int s_list(freenect_context *context, char serials[][SK2_CAMERA_SERIAL_MAX + 1],
                  size_t capacity)
{
    s_list_fn *list;
    s_free_list_fn *free_list;
    s_symbol("freenect_list_device_attributes", &list, sizeof list);
    s_symbol("freenect_free_device_attributes", &free_list, sizeof free_list);
    if (!list || !free_list) {
        int count = freenect_num_devices(context);
        for (size_t i = 0; i < capacity && (int)i < count; i++)
            serials[i][0] = '\0';
        return count < 0 ? 0 : count;
    }
    struct freenect_device_attributes *head = NULL;
    int count = list(context, &head);
    int i = 0;
    for (struct freenect_device_attributes *a = head; a; a = a->next, i++)
        if ((size_t)i < capacity)
            snprintf(serials[i], SK2_CAMERA_SERIAL_MAX + 1, "%s",
                     a->camera_serial ? a->camera_serial : "");
    free_list(head);
    return count < 0 ? 0 : i;
}

static int s_enumerate(sk2_camera_info_t *cameras, size_t capacity)
{
    freenect_context *context = NULL;
    int rc = s_context(&context);
    if (rc != 0)
        return rc;
    char serials[S_MAX_DEVICES][SK2_CAMERA_SERIAL_MAX + 1];
    int count = s_list(context, serials, S_MAX_DEVICES);
    for (int i = 0; i < count && (size_t)i < capacity && i < S_MAX_DEVICES; i++) {
        sk2_camera_info_t *camera = &cameras[i];
        memset(camera, 0, sizeof *camera);
        snprintf(camera->serial, sizeof camera->serial, "%.*s", SK2_CAMERA_SERIAL_MAX, serials[i]);
        if (serials[i][0] != '\0')
            snprintf(camera->uri, sizeof camera->uri, "%.*s", SK2_CAMERA_SERIAL_MAX, serials[i]);
        else
            snprintf(camera->uri, sizeof camera->uri, "#%d", i);
        snprintf(camera->name, sizeof camera->name, "Kinect v1 (libfreenect #%d)", i);
    }
    freenect_shutdown(context);
    return count;
}

/* ---- Frames ------------------------------------------------------------------------------ */

static void s_emit(s_freenect_t *self, sk2_stream_kind_t kind, sk2_frame_t *frame)
{
    sk2_device_thread_note_frame(&self->thread);
    int64_t now = sk2_clock_mono_us();
    sk2_frame_set_device_timestamp_us(frame,
                                      now - sk2_device_thread_start_ns(&self->thread) / 1000);
    sk2_frame_set_capture_time_us(frame, sk2_clock_wall_us());
    sk2_device_emit(self->owner, (size_t)self->index_of[kind], &frame);
}

static void s_on_depth(freenect_device *device, void *data, uint32_t timestamp)
{
    (void)timestamp;
    s_freenect_t *self = freenect_get_user(device);
    uint32_t width = (uint32_t)self->depth_mode.width, height = (uint32_t)self->depth_mode.height;
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, height);
    if (!frame)
        return;
    /* The library's buffer need not be 2-byte aligned (fakenect's is not): copy, then map. */
    uint16_t *out = sk2_frame_data16(frame);
    size_t pixels = (size_t)width * height;
    memcpy(out, data, pixels * sizeof *out);
    if (!self->is_depth_mm) {
        for (size_t i = 0; i < pixels; i++)
            out[i] = out[i] < S_RAW_COUNT ? self->raw_to_mm[out[i]] : 0;
    }
    s_emit(self, SK2_STREAM_DEPTH, frame);
}

static void s_on_video(freenect_device *device, void *data, uint32_t timestamp)
{
    (void)timestamp;
    s_freenect_t *self = freenect_get_user(device);
    if (self->video_kind == SK2_STREAM_COLOR) {
        sk2_frame_t *frame =
            sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, (uint32_t)self->color_mode.width,
                          (uint32_t)self->color_mode.height);
        if (!frame)
            return;
        memcpy(sk2_frame_data(frame), data, sk2_frame_size(frame));
        s_emit(self, SK2_STREAM_COLOR, frame);
    } else if (self->video_kind == SK2_STREAM_IR) {
        sk2_frame_t *frame =
            sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, (uint32_t)self->ir_mode.width,
                          (uint32_t)self->ir_mode.height);
        if (!frame)
            return;
        memcpy(sk2_frame_data(frame), data, sk2_frame_size(frame));
        s_emit(self, SK2_STREAM_IR, frame);
    }
}

/* ---- The capture thread ------------------------------------------------------------------ */

static bool s_wanted(const s_freenect_t *self, sk2_stream_kind_t kind)
{
    return self->index_of[kind] != S_NONE &&
           sk2_device_stream_wanted(self->owner, (size_t)self->index_of[kind]);
}

/* Starts and stops the camera's streams to match what is wanted. Returns false on failure. */
static bool s_follow_wanted(s_freenect_t *self)
{
    bool want_depth = s_wanted(self, SK2_STREAM_DEPTH);
    if (want_depth != self->is_depth_on) {
        int rc =
            want_depth ? freenect_start_depth(self->device) : freenect_stop_depth(self->device);
        if (rc < 0)
            return false;
        self->is_depth_on = want_depth;
        sk2_device_thread_note_frame(&self->thread);
    }
    int video = s_wanted(self, SK2_STREAM_COLOR) ? SK2_STREAM_COLOR
                : s_wanted(self, SK2_STREAM_IR)  ? SK2_STREAM_IR
                                                 : S_NONE;
    if (video != self->video_kind) {
        if (self->video_kind != S_NONE)
            freenect_stop_video(self->device);
        self->video_kind = S_NONE;
        if (video != S_NONE) {
            freenect_frame_mode mode = video == SK2_STREAM_COLOR ? self->color_mode : self->ir_mode;
            if (freenect_set_video_mode(self->device, mode) < 0 ||
                freenect_start_video(self->device) < 0)
                return false;
            self->video_kind = video;
            sk2_device_thread_note_frame(&self->thread);
        }
    }
    return true;
}

static void *s_capture(void *arg)
{
    s_freenect_t *self = arg;
    const char *lost = NULL;
    while (!sk2_device_thread_should_stop(&self->thread)) {
        if (!s_follow_wanted(self)) {
            lost = "the camera refused to start a stream";
            break;
        }
        struct timeval wait = {.tv_sec = 0, .tv_usec = S_EVENT_WAIT_US};
        if (freenect_process_events_timeout(self->context, &wait) < 0) {
            lost = "libfreenect lost the camera (unplugged, or the recording ended)";
            break;
        }
        bool is_streaming = self->is_depth_on || self->video_kind != S_NONE;
        if (is_streaming && (lost = sk2_device_thread_stall(&self->thread)))
            break;
    }
    if (lost)
        sk2_device_report_lost(self->owner, lost);
    if (self->is_depth_on)
        freenect_stop_depth(self->device);
    if (self->video_kind != S_NONE)
        freenect_stop_video(self->device);
    self->is_depth_on = false;
    self->video_kind = S_NONE;
    return NULL;
}

/* ---- The backend ------------------------------------------------------------------------- */

static int s_create(sk2_device_t *owner, void **impl_p)
{
    s_freenect_t *self = calloc(1, sizeof *self);
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

static void s_close(s_freenect_t *self)
{
    if (self->device)
        freenect_close_device(self->device);
    if (self->context)
        freenect_shutdown(self->context);
    self->device = NULL;
    self->context = NULL;
}

static void s_destroy(void *impl)
{
    s_freenect_t *self = impl;
    s_close(self);
    sk2_device_thread_fini(&self->thread);
    free(self);
}

static int s_set_uri(void *impl, const char *uri)
{
    s_freenect_t *self = impl;
    snprintf(self->uri, sizeof self->uri, "%s", uri);
    return 0;
}

/* Finds the modes: depth in mm if the library has it, else raw; RGB and IR if offered. The
 * mode lists are walked rather than asked for by format, because fakenect aborts on a format
 * it does not know. */
static void s_find_modes(s_freenect_t *self)
{
    bool has_depth = false;
    int count = freenect_get_depth_mode_count();
    for (int i = 0; i < count; i++) {
        freenect_frame_mode mode = freenect_get_depth_mode(i);
        if (!mode.is_valid || mode.resolution != FREENECT_RESOLUTION_MEDIUM)
            continue;
        if (mode.depth_format == FREENECT_DEPTH_MM) {
            self->depth_mode = mode;
            self->is_depth_mm = true;
            has_depth = true;
        } else if (mode.depth_format == FREENECT_DEPTH_11BIT && !self->is_depth_mm) {
            self->depth_mode = mode;
            has_depth = true;
        }
    }
    if (!has_depth) /* every libfreenect has it; keep the arithmetic below defined anyway */
        self->depth_mode = (freenect_frame_mode){.width = 640, .height = 480};
    count = freenect_get_video_mode_count();
    for (int i = 0; i < count; i++) {
        freenect_frame_mode mode = freenect_get_video_mode(i);
        if (!mode.is_valid || mode.resolution != FREENECT_RESOLUTION_MEDIUM)
            continue;
        if (mode.video_format == FREENECT_VIDEO_RGB) {
            self->color_mode = mode;
            self->has_color = true;
        } else if (mode.video_format == FREENECT_VIDEO_IR_10BIT) {
            self->ir_mode = mode;
            self->has_ir = true;
        }
    }
    for (int raw = 0; raw < S_RAW_COUNT; raw++) {
        double mm = 1000.0 * 0.1236 * tan(raw / 2842.5 + 1.1863);
        self->raw_to_mm[raw] =
            raw < S_RAW_COUNT - 1 && mm >= 0.5 && mm <= S_DEPTH_MAX_MM ? (uint16_t)lround(mm) : 0;
    }
}

/* Declares the streams (and serial) the open camera offers to the device. */
static void s_describe(s_freenect_t *self)
{
    sk2_stream_info_t infos[3];
    size_t count = 0;
    for (size_t k = 0; k < 5; k++)
        self->index_of[k] = S_NONE;
    sk2_stream_info_t *info = &infos[count];
    *info = (sk2_stream_info_t){.kind = SK2_STREAM_DEPTH,
                                .format = SK2_PIXEL_DEPTH_MM16,
                                .width = (uint32_t)self->depth_mode.width,
                                .height = (uint32_t)self->depth_mode.height,
                                .fps = 30,
                                .depth_unit_m = 0.001};
    /* The library's calibration, where it has one (not fakenect): a pinhole at the image
     * centre whose focal length camera_to_world gives for a pixel one column off centre. */
    s_to_world_fn *to_world;
    s_symbol("freenect_camera_to_world", &to_world, sizeof to_world);
    if (to_world && self->is_depth_mm) {
        double wx = 0, wy = 0;
        int cx = self->depth_mode.width / 2, cy = self->depth_mode.height / 2;
        to_world(self->device, cx + 1, cy, 1000, &wx, &wy);
        if (wx > 0 && isfinite(wx)) {
            info->has_intrinsics = true;
            info->intrinsics =
                (sk2_intrinsics_t){.fx = 1000.0 / wx, .fy = 1000.0 / wx, .cx = cx, .cy = cy};
        }
    }
    self->index_of[SK2_STREAM_DEPTH] = (int)count++;
    if (self->has_color) {
        infos[count] = (sk2_stream_info_t){.kind = SK2_STREAM_COLOR,
                                           .format = SK2_PIXEL_RGB24,
                                           .width = (uint32_t)self->color_mode.width,
                                           .height = (uint32_t)self->color_mode.height,
                                           .fps = self->color_mode.framerate};
        self->index_of[SK2_STREAM_COLOR] = (int)count++;
    }
    if (self->has_ir) {
        infos[count] = (sk2_stream_info_t){.kind = SK2_STREAM_IR,
                                           .format = SK2_PIXEL_GRAY16,
                                           .width = (uint32_t)self->ir_mode.width,
                                           .height = (uint32_t)self->ir_mode.height,
                                           .fps = self->ir_mode.framerate};
        self->index_of[SK2_STREAM_IR] = (int)count++;
    }
    sk2_device_set_streams(self->owner, infos, count);
    sk2_device_set_serial(self->owner, self->serial);
}

/* Parses "#N" (the Nth camera libfreenect lists); returns N, 0 for "", or -1. */
static int s_index_of_uri(const char *uri)
{
    if (uri[0] == '\0')
        return 0;
    if (uri[0] != '#')
        return -1;
    char *end = NULL;
    long index = strtol(uri + 1, &end, 10);
    return end != uri + 1 && *end == '\0' && index >= 0 && index < S_MAX_DEVICES ? (int)index : -1;
}

static int s_open(void *impl)
{
    s_freenect_t *self = impl;
    int rc = s_context(&self->context);
    if (rc != 0)
        return rc;
    char serials[S_MAX_DEVICES][SK2_CAMERA_SERIAL_MAX + 1];
    int count = s_list(self->context, serials, S_MAX_DEVICES);
    int index = s_index_of_uri(self->uri);
    if (index >= 0) {
        if (index >= count || freenect_open_device(self->context, &self->device, index) < 0)
            self->device = NULL;
        else
            snprintf(self->serial, sizeof self->serial, "%s", serials[index]);
    } else if (freenect_open_device_by_camera_serial(self->context, &self->device, self->uri) < 0) {
        self->device = NULL;
    } else {
        snprintf(self->serial, sizeof self->serial, "%.*s", SK2_CAMERA_SERIAL_MAX, self->uri);
    }
    if (!self->device) {
        SK2_DEBUG("freenect", "no Kinect v1 at \"%s\" (%d seen)", self->uri, count);
        s_close(self);
        return SK2_EDEVICE;
    }
    freenect_set_user(self->device, self);
    s_find_modes(self);
    if (freenect_set_depth_mode(self->device, self->depth_mode) < 0) {
        SK2_ERROR("freenect", "the camera refuses its depth mode");
        s_close(self);
        return SK2_EDEVICE;
    }
    freenect_set_depth_callback(self->device, s_on_depth);
    freenect_set_video_callback(self->device, s_on_video);
    s_describe(self);
    SK2_INFO("freenect", "Kinect v1 %s open, depth %s",
             self->serial[0] ? self->serial : "(no serial)",
             self->is_depth_mm ? "in mm from libfreenect" : "converted from raw disparity");
    return 0;
}

static int s_start(void *impl)
{
    s_freenect_t *self = impl;
    self->is_depth_on = false;
    self->video_kind = S_NONE;
    return sk2_device_thread_start(&self->thread, s_capture, self);
}

static void s_stop(void *impl)
{
    s_freenect_t *self = impl;
    sk2_device_thread_stop(&self->thread);
}

const sk2_device_backend_t sk2_device_backend_freenect = {
    .name = "freenect",
    .create = s_create,
    .destroy = s_destroy,
    .open = s_open,
    .start = s_start,
    .stop = s_stop,
    .enumerate = s_enumerate,
    .set_uri = s_set_uri,
};
