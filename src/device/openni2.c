/* The OpenNI2 backend: every camera an OpenNI2 driver can open. Debian's libopenni2-0 brings
 * the PS1080 and PSLink drivers (Asus Xtion, PrimeSense Carmine, Orbbec cameras with
 * PS1080-compatible firmware), a player for .oni recordings (OniFile) and a test device
 * (DummyDevice, opened as "Dummy"); libfreenect2's OpenNI2 driver adds Kinect v2 and
 * libfreenect's adds Kinect v1.
 *
 * Streams: depth (in mm: DEPTH_1_MM as is, DEPTH_100_UM rounded to mm), colour (RGB888) and IR
 * (GRAY16, or GRAY8 widened), each in the driver's default mode if that format fits, else the
 * largest supported mode that does. Intrinsics come from the fields of view where the driver
 * reports them, as OpenNI2 itself models the camera: a pinhole at the image centre with
 * fx = width / (2 tan(hfov / 2)), fy = height / (2 tan(vfov / 2)), no distortion.
 *
 * One thread per device waits on the OpenNI2 streams that are on, copies each frame and hands
 * it to sk2_device_emit(). Loss is OpenNI2's deviceDisconnected event for our uri, an error
 * from the wait, or no frame for SK2_DEVICE_STALL_US while streams are on. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log_internal.h"
#include "device/device_impl.h"
#include "device/device_thread.h"
#include "device/oni.h"
#include "sk2/error.h"

#define S_STREAMS         3
#define S_WAIT_MS         100
#define S_IDLE_NS         20000000L
#define S_MAX_WIDTH       4096
#define S_MAX_HEIGHT      4096
#define S_BAD_FRAME_US    5000000
#define S_DRIVER_GRACE_NS 100000000L

typedef struct {
    sk2_stream_kind_t kind;
    OniSensorType sensor;
    OniStreamHandle stream; /* NULL if the device has no usable sensor of this kind */
    OniVideoMode mode;      /* what it delivers */
    bool is_on;             /* capture thread only */
} s_stream_t;

typedef struct {
    sk2_device_t *owner;
    char uri[SK2_CAMERA_URI_MAX + 1];       /* as asked for; "" = the first device */
    char open_uri[ONI_MAX_STR];             /* OpenNI2's uri of the device opened */
    char serial[SK2_CAMERA_SERIAL_MAX + 1]; /* "" if the driver reports none */
    bool was_started;                       /* streams ran since open */
    OniDeviceHandle device;
    OniCallbackHandle callbacks;
    s_stream_t streams[S_STREAMS];
    sk2_stream_info_t infos[S_STREAMS];
    size_t stream_count;       /* infos used; streams[] with a handle, in the same order */
    size_t info_of[S_STREAMS]; /* infos index of streams[i] */
    atomic_bool is_unplugged;  /* set by OpenNI2's disconnect callback */
    sk2_device_thread_t thread;
    sk2_ratelimit_t bad_frame_limit; /* capture thread */
} s_oni_t;

/* OpenNI2 is started once per process and never shut down: oniShutdown() unloads the drivers,
 * and some drivers' threads outlive their streams (DummyDevice's stop does not wait for its
 * thread), so unloading them can pull code from under a running thread. Starting once also
 * saves loading every driver again for each device and each listing. */
static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;
static int s_init_rc;

static void s_init_process(void)
{
    s_init_rc = 0;
    if (oniInitialize(ONI_API_VERSION) != ONI_STATUS_OK) {
        SK2_WARN("openni2", "OpenNI2 cannot start: %s", oniGetExtendedError());
        s_init_rc = SK2_EDEVICE;
    }
}

static int s_init(void)
{
    pthread_once(&s_init_once, s_init_process);
    return s_init_rc;
}

/* The device's serial number into buf ("" if the driver has none). */
static void s_read_serial(OniDeviceHandle device, char *buf, size_t size)
{
    char serial[ONI_MAX_STR] = "";
    int length = (int)sizeof serial;
    if (oniDeviceGetProperty(device, ONI_DEVICE_PROPERTY_SERIAL_NUMBER, serial, &length) !=
        ONI_STATUS_OK)
        serial[0] = '\0';
    serial[sizeof serial - 1] = '\0';
    snprintf(buf, size, "%s", serial);
}

static int s_enumerate(sk2_camera_info_t *cameras, size_t capacity)
{
    int rc = s_init();
    if (rc != 0)
        return rc;
    OniDeviceInfo *list = NULL;
    int count = 0;
    if (oniGetDeviceList(&list, &count) != ONI_STATUS_OK) {
        SK2_WARN("openni2", "cannot list devices: %s", oniGetExtendedError());
        return SK2_EDEVICE;
    }
    for (int i = 0; i < count && (size_t)i < capacity; i++) {
        sk2_camera_info_t *camera = &cameras[i];
        memset(camera, 0, sizeof *camera);
        snprintf(camera->uri, sizeof camera->uri, "%.*s", (int)sizeof camera->uri - 1, list[i].uri);
        snprintf(camera->name, sizeof camera->name, "%.60s %.60s", list[i].vendor, list[i].name);
        /* The serial needs the device open: a camera another program holds keeps it. */
        OniDeviceHandle device = NULL;
        if (oniDeviceOpen(list[i].uri, &device) == ONI_STATUS_OK) {
            s_read_serial(device, camera->serial, sizeof camera->serial);
            oniDeviceClose(device);
        }
    }
    oniReleaseDeviceList(list);
    return count;
}

/* ---- Opening ------------------------------------------------------------------------------- */

static bool s_format_fits(sk2_stream_kind_t kind, OniPixelFormat format)
{
    switch (kind) {
    case SK2_STREAM_DEPTH:
        return format == ONI_PIXEL_FORMAT_DEPTH_1_MM || format == ONI_PIXEL_FORMAT_DEPTH_100_UM;
    case SK2_STREAM_COLOR:
        return format == ONI_PIXEL_FORMAT_RGB888;
    case SK2_STREAM_IR:
        return format == ONI_PIXEL_FORMAT_GRAY16 || format == ONI_PIXEL_FORMAT_GRAY8;
    default:
        return false;
    }
}

static bool s_mode_fits(sk2_stream_kind_t kind, const OniVideoMode *mode)
{
    return s_format_fits(kind, mode->pixelFormat) && mode->resolutionX > 0 &&
           mode->resolutionY > 0 && mode->resolutionX <= S_MAX_WIDTH &&
           mode->resolutionY <= S_MAX_HEIGHT;
}

/* Creates the stream of one sensor in a mode sk2 can carry; false if there is none. */
static bool s_open_stream(s_oni_t *self, s_stream_t *s)
{
    const OniSensorInfo *sensor = oniDeviceGetSensorInfo(self->device, s->sensor);
    if (!sensor || oniDeviceCreateStream(self->device, s->sensor, &s->stream) != ONI_STATUS_OK) {
        s->stream = NULL;
        return false;
    }
    int size = (int)sizeof s->mode;
    bool fits = oniStreamGetProperty(s->stream, ONI_STREAM_PROPERTY_VIDEO_MODE, &s->mode, &size) ==
                    ONI_STATUS_OK &&
                s_mode_fits(s->kind, &s->mode);
    for (int i = 0; !fits && i < sensor->numSupportedVideoModes; i++) {
        const OniVideoMode *mode = &sensor->pSupportedVideoModes[i];
        if (!s_mode_fits(s->kind, mode))
            continue;
        if (oniStreamSetProperty(s->stream, ONI_STREAM_PROPERTY_VIDEO_MODE, mode, sizeof *mode) ==
            ONI_STATUS_OK) {
            s->mode = *mode;
            fits = true;
        }
    }
    if (!fits) {
        SK2_INFO("openni2", "%s: no %s mode sk2 can carry", self->open_uri,
                 sk2_stream_kind_name(s->kind));
        oniStreamDestroy(s->stream);
        s->stream = NULL;
    }
    return fits;
}

static void s_describe(s_oni_t *self, size_t index)
{
    s_stream_t *s = &self->streams[index];
    sk2_stream_info_t *info = &self->infos[self->stream_count];
    *info = (sk2_stream_info_t){
        .kind = s->kind,
        .format = s->kind == SK2_STREAM_DEPTH   ? SK2_PIXEL_DEPTH_MM16
                  : s->kind == SK2_STREAM_COLOR ? SK2_PIXEL_RGB24
                                                : SK2_PIXEL_GRAY16,
        .width = (uint32_t)s->mode.resolutionX,
        .height = (uint32_t)s->mode.resolutionY,
        .fps = s->mode.fps,
        .depth_unit_m = s->kind == SK2_STREAM_DEPTH ? 0.001 : 0,
    };
    float hfov = 0, vfov = 0;
    int size = (int)sizeof hfov;
    bool has_h = oniStreamGetProperty(s->stream, ONI_STREAM_PROPERTY_HORIZONTAL_FOV, &hfov,
                                      &size) == ONI_STATUS_OK;
    size = (int)sizeof vfov;
    bool has_v = oniStreamGetProperty(s->stream, ONI_STREAM_PROPERTY_VERTICAL_FOV, &vfov, &size) ==
                 ONI_STATUS_OK;
    if (has_h && has_v && hfov > 0.01f && hfov < 3.1f && vfov > 0.01f && vfov < 3.1f) {
        info->has_intrinsics = true;
        info->intrinsics = (sk2_intrinsics_t){
            .fx = info->width / (2.0 * tan(hfov / 2.0)),
            .fy = info->height / (2.0 * tan(vfov / 2.0)),
            .cx = info->width / 2.0,
            .cy = info->height / 2.0,
        };
    }
    self->info_of[index] = self->stream_count++;
}

static void ONI_CALLBACK_TYPE s_on_disconnect(const OniDeviceInfo *info, void *cookie)
{
    s_oni_t *self = cookie;
    if (info && strncmp(info->uri, self->open_uri, sizeof self->open_uri) == 0)
        atomic_store(&self->is_unplugged, true);
}

/* Opens the device the uri names: directly, or else the listed device with that serial. */
static int s_open_device(s_oni_t *self)
{
    OniDeviceInfo *list = NULL;
    int count = 0;
    if (oniGetDeviceList(&list, &count) != ONI_STATUS_OK)
        count = 0;
    int rc = SK2_EDEVICE;
    if (self->uri[0] == '\0') {
        if (count > 0 && oniDeviceOpen(list[0].uri, &self->device) == ONI_STATUS_OK)
            rc = 0;
    } else if (oniDeviceOpen(self->uri, &self->device) == ONI_STATUS_OK) {
        rc = 0;
    } else {
        for (int i = 0; i < count && rc != 0; i++) {
            OniDeviceHandle device = NULL;
            char serial[SK2_CAMERA_SERIAL_MAX + 1];
            if (oniDeviceOpen(list[i].uri, &device) != ONI_STATUS_OK)
                continue;
            s_read_serial(device, serial, sizeof serial);
            if (strcmp(serial, self->uri) == 0) {
                self->device = device;
                rc = 0;
            } else {
                oniDeviceClose(device);
            }
        }
    }
    if (list)
        oniReleaseDeviceList(list);
    return rc;
}

static void s_close(s_oni_t *self)
{
    /* A driver whose stop returns before its thread ends (DummyDevice) still touches the
     * stream for up to a frame: give it that long before the stream goes. */
    if (self->was_started)
        nanosleep(&(struct timespec){.tv_nsec = S_DRIVER_GRACE_NS}, NULL);
    self->was_started = false;
    for (size_t i = 0; i < S_STREAMS; i++)
        if (self->streams[i].stream) {
            oniStreamDestroy(self->streams[i].stream);
            self->streams[i].stream = NULL;
        }
    if (self->callbacks)
        oniUnregisterDeviceCallbacks(self->callbacks);
    self->callbacks = NULL;
    if (self->device)
        oniDeviceClose(self->device);
    self->device = NULL;
    self->stream_count = 0;
}

static int s_open(void *impl)
{
    s_oni_t *self = impl;
    int rc = s_init();
    if (rc != 0)
        return rc;
    if (s_open_device(self) != 0) {
        SK2_DEBUG("openni2", "no device \"%s\": %s", self->uri, oniGetExtendedError());
        s_close(self);
        return SK2_EDEVICE;
    }
    OniDeviceInfo info;
    if (oniDeviceGetInfo(self->device, &info) == ONI_STATUS_OK)
        snprintf(self->open_uri, sizeof self->open_uri, "%s", info.uri);
    else
        snprintf(self->open_uri, sizeof self->open_uri, "%s", self->uri);
    s_read_serial(self->device, self->serial, sizeof self->serial);
    static const sk2_stream_kind_t kinds[S_STREAMS] = {SK2_STREAM_DEPTH, SK2_STREAM_COLOR,
                                                       SK2_STREAM_IR};
    static const OniSensorType sensors[S_STREAMS] = {ONI_SENSOR_DEPTH, ONI_SENSOR_COLOR,
                                                     ONI_SENSOR_IR};
    for (size_t i = 0; i < S_STREAMS; i++) {
        self->streams[i] = (s_stream_t){.kind = kinds[i], .sensor = sensors[i]};
        if (s_open_stream(self, &self->streams[i]))
            s_describe(self, i);
    }
    if (self->stream_count == 0) {
        SK2_ERROR("openni2", "%s: no stream sk2 can carry", self->open_uri);
        s_close(self);
        return SK2_EDEVICE;
    }
    OniDeviceCallbacks callbacks = {.deviceDisconnected = s_on_disconnect};
    atomic_store(&self->is_unplugged, false);
    if (oniRegisterDeviceCallbacks(&callbacks, self, &self->callbacks) != ONI_STATUS_OK)
        self->callbacks = NULL; /* the stall watch still notices a camera gone */
    sk2_device_set_streams(self->owner, self->infos, self->stream_count);
    sk2_device_set_serial(self->owner, self->serial);
    SK2_INFO("openni2", "%s open (%s %s), %zu streams", self->open_uri, info.vendor, info.name,
             self->stream_count);
    return 0;
}

/* ---- Capture ----------------------------------------------------------------------------- */

/* Copies an OpenNI2 frame into a new sk2 frame of the stream's kind; NULL if it does not fit. */
static sk2_frame_t *s_convert(const s_stream_t *s, const sk2_stream_info_t *info,
                              const OniFrame *in)
{
    if ((uint32_t)in->width != info->width || (uint32_t)in->height != info->height ||
        !s_format_fits(s->kind, in->videoMode.pixelFormat))
        return NULL;
    size_t in_bpp = (size_t)oniFormatBytesPerPixel(in->videoMode.pixelFormat);
    size_t row = in_bpp * info->width;
    if (in_bpp == 0 || in->stride < 0 || (size_t)in->stride < row ||
        (size_t)in->dataSize < (size_t)in->stride * (info->height - 1) + row)
        return NULL;
    sk2_frame_t *frame = sk2_frame_new(info->kind, info->format, info->width, info->height);
    if (!frame)
        return NULL;
    const uint8_t *src = in->data;
    uint8_t *dst = sk2_frame_data(frame);
    size_t out_stride = sk2_frame_stride(frame);
    for (uint32_t y = 0; y < info->height; y++) {
        const uint8_t *from = src + (size_t)y * (size_t)in->stride;
        uint8_t *to = dst + (size_t)y * out_stride;
        if (in->videoMode.pixelFormat == ONI_PIXEL_FORMAT_DEPTH_100_UM) {
            const uint16_t *a = (const uint16_t *)from;
            uint16_t *b = (uint16_t *)to;
            for (uint32_t x = 0; x < info->width; x++)
                b[x] = (uint16_t)((a[x] + 5u) / 10u);
        } else if (in->videoMode.pixelFormat == ONI_PIXEL_FORMAT_GRAY8) {
            uint16_t *b = (uint16_t *)to;
            for (uint32_t x = 0; x < info->width; x++)
                b[x] = from[x];
        } else {
            memcpy(to, from, row);
        }
    }
    return frame;
}

static bool s_wanted(const s_oni_t *self, size_t i)
{
    return self->streams[i].stream && sk2_device_stream_wanted(self->owner, self->info_of[i]);
}

static void s_read_one(s_oni_t *self, size_t i)
{
    s_stream_t *s = &self->streams[i];
    OniFrame *in = NULL;
    if (oniStreamReadFrame(s->stream, &in) != ONI_STATUS_OK || !in)
        return;
    const sk2_stream_info_t *info = &self->infos[self->info_of[i]];
    sk2_frame_t *frame = s_convert(s, info, in);
    int64_t device_us = (int64_t)in->timestamp;
    oniFrameRelease(in);
    sk2_device_thread_note_frame(&self->thread);
    if (!frame) {
        uint64_t held = 0;
        if (sk2_ratelimit_pass(&self->bad_frame_limit, S_BAD_FRAME_US, &held))
            SK2_WARN("openni2", "%s: %s frame not as announced, dropped (%llu more)",
                     self->open_uri, sk2_stream_kind_name(s->kind), (unsigned long long)held);
        return;
    }
    sk2_frame_set_device_timestamp_us(frame, device_us);
    sk2_frame_set_capture_time_us(frame, sk2_clock_wall_us());
    sk2_device_emit(self->owner, self->info_of[i], &frame);
}

static void *s_capture(void *arg)
{
    s_oni_t *self = arg;
    const char *lost = NULL;
    while (!sk2_device_thread_should_stop(&self->thread) && !lost) {
        OniStreamHandle on[S_STREAMS];
        size_t which[S_STREAMS];
        int count = 0;
        for (size_t i = 0; i < S_STREAMS; i++) {
            s_stream_t *s = &self->streams[i];
            bool want = s_wanted(self, i);
            if (want && !s->is_on) {
                if (oniStreamStart(s->stream) != ONI_STATUS_OK) {
                    lost = "the device refused to start a stream";
                    break;
                }
                s->is_on = true;
                sk2_device_thread_note_frame(&self->thread);
            } else if (!want && s->is_on) {
                oniStreamStop(s->stream);
                s->is_on = false;
            }
            if (s->is_on) {
                on[count] = s->stream;
                which[count++] = i;
            }
        }
        if (atomic_load(&self->is_unplugged))
            lost = "unplugged (OpenNI2 reports it disconnected)";
        if (lost)
            break;
        if (count == 0) {
            sk2_device_thread_wait_until(&self->thread, sk2_device_thread_now_ns() + S_IDLE_NS);
            continue;
        }
        int ready = -1;
        OniStatus status = oniWaitForAnyStream(on, count, &ready, S_WAIT_MS);
        if (status == ONI_STATUS_OK && ready >= 0 && ready < count)
            s_read_one(self, which[ready]);
        else if (status != ONI_STATUS_TIME_OUT)
            lost = "OpenNI2 stopped delivering frames";
        if (!lost)
            lost = sk2_device_thread_stall(&self->thread);
    }
    if (lost)
        sk2_device_report_lost(self->owner, lost);
    for (size_t i = 0; i < S_STREAMS; i++)
        if (self->streams[i].is_on) {
            oniStreamStop(self->streams[i].stream);
            self->streams[i].is_on = false;
        }
    return NULL;
}

/* ---- The backend ------------------------------------------------------------------------- */

static int s_create(sk2_device_t *owner, void **impl_p)
{
    s_oni_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->owner = owner;
    atomic_init(&self->is_unplugged, false);
    if (sk2_device_thread_init(&self->thread) != 0) {
        free(self);
        return SK2_ENOMEM;
    }
    *impl_p = self;
    return 0;
}

static void s_destroy(void *impl)
{
    s_oni_t *self = impl;
    s_close(self);
    sk2_device_thread_fini(&self->thread);
    free(self);
}

static int s_set_uri(void *impl, const char *uri)
{
    s_oni_t *self = impl;
    snprintf(self->uri, sizeof self->uri, "%s", uri);
    return 0;
}

static int s_start(void *impl)
{
    s_oni_t *self = impl;
    self->was_started = true;
    return sk2_device_thread_start(&self->thread, s_capture, self);
}

static void s_stop(void *impl)
{
    s_oni_t *self = impl;
    sk2_device_thread_stop(&self->thread);
}

const sk2_device_backend_t sk2_device_backend_openni2 = {
    .name = "openni2",
    .create = s_create,
    .destroy = s_destroy,
    .open = s_open,
    .start = s_start,
    .stop = s_stop,
    .enumerate = s_enumerate,
    .set_uri = s_set_uri,
};
