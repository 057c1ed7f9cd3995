/* Devices: anything that produces frames (the mock device, real cameras through OpenNI2 and
 * libfreenect when built with them) behind one interface, chosen by backend name.
 *
 * Life cycle: sk2_device_new(backend) -> setters -> sk2_device_open() -> sk2_device_start(sink)
 * -> frames arrive on the device's own thread -> sk2_device_stop() -> sk2_device_destroy().
 * Calls on one device come from one thread at a time; the sink runs on the device's thread. */
#ifndef SK2_DEVICE_H
#define SK2_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "frame.h"
#include "registration.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_device sk2_device_t;

/* Receives each frame. Runs on the device's capture thread. To keep the frame, take it (set
 * *frame_p to NULL); whatever is left in *frame_p is destroyed by the device when the sink
 * returns. It should only hand the frame on: a slow sink slows the device. Sequence numbers
 * count from open, consecutively per stream, and carry on across stop and start. */
typedef void(sk2_frame_sink_fn)(void *arg, sk2_frame_t **frame_p);

/* What one stream of a device delivers. Plain data. */
typedef struct {
    sk2_stream_kind_t kind;
    sk2_pixel_format_t format;
    uint32_t width;              /* pixels */
    uint32_t height;             /* pixels */
    double fps;                  /* nominal frames per second; 0 = as fast as possible */
    double depth_unit_m;         /* metres per depth value (0.001 for mm); 0 if not depth */
    bool has_intrinsics;         /* whether `intrinsics` is known */
    sk2_intrinsics_t intrinsics; /* the stream's camera model */
} sk2_stream_info_t;

/* Longest device id, in bytes, without the terminating NUL. */
#define SK2_DEVICE_ID_MAX 128

/* Names of the backends built into this library, numbered 0 .. count-1. */
SK2_EXPORT size_t sk2_device_backend_count(void);
SK2_EXPORT const char *sk2_device_backend_name(size_t index);

/* ---- Cameras ----------------------------------------------------------------------------
 * Camera backends (openni2, freenect: whichever were built) drive real hardware; the others
 * (mock) make their frames. A camera backend can list the cameras it sees now, and a device
 * can be told which one to open before open (sk2_device_set_uri). */

/* Longest camera uri, serial and name, in bytes, without the terminating NUL. */
#define SK2_CAMERA_URI_MAX    255
#define SK2_CAMERA_SERIAL_MAX 127
#define SK2_CAMERA_NAME_MAX   127

/* One camera a backend sees. Plain data; every field NUL-terminated. */
typedef struct {
    char uri[SK2_CAMERA_URI_MAX + 1];       /* what sk2_device_set_uri() takes to open it */
    char serial[SK2_CAMERA_SERIAL_MAX + 1]; /* its serial number, "" if unknown */
    char name[SK2_CAMERA_NAME_MAX + 1];     /* model or description, for people */
} sk2_camera_info_t;

/* Whether backend `index` drives cameras (false for mock and for an index past the end). */
SK2_EXPORT bool sk2_device_backend_is_camera(size_t index);

/* Lists the cameras backend `index` sees now: fills up to `capacity` entries of `cameras`
 * (NULL with 0 to count only) and returns how many it sees, which may exceed capacity; 0 for a
 * backend that is not a camera backend. May take a second or two: it asks the drivers.
 * Returns a count >= 0, SK2_ENOTFOUND (no backend `index`), SK2_EINVAL, SK2_EDEVICE (the
 * backend's library failed; the log says why). */
SK2_EXPORT int sk2_device_backend_enumerate(size_t index, sk2_camera_info_t *cameras,
                                            size_t capacity);

/* Which camera to open: a uri or serial number from sk2_device_backend_enumerate(), or
 * whatever else the backend documents (openni2: "Dummy", the path of a .oni recording). The
 * default, "", is the first camera found. Before open. 1..SK2_CAMERA_URI_MAX bytes of
 * printable text (spaces allowed). Returns 0, SK2_EINVAL, SK2_ESTATE (open),
 * SK2_EUNSUPPORTED (the backend has nothing to choose from). */
SK2_EXPORT int sk2_device_set_uri(sk2_device_t *self, const char *uri);
/* The uri set before open ("" if none). Valid while the device lives. */
SK2_EXPORT const char *sk2_device_uri(const sk2_device_t *self);

/* Told once when a running device is lost: unplugged, or no longer delivering frames. Runs on
 * a device thread; it should only note the fact. No frame follows until the device is
 * stopped; a lost device cannot be started again, so bring the camera back by opening a new
 * device of the same backend and serial (the server does this by itself, see server.h). */
typedef void(sk2_device_lost_fn)(void *arg, sk2_device_t *device, const char *reason);

/* Sets the function told of loss, or NULL for none. Not while running. Returns 0, SK2_EINVAL
 * or SK2_ESTATE. */
SK2_EXPORT int sk2_device_set_lost_handler(sk2_device_t *self, sk2_device_lost_fn *handler,
                                           void *arg);
/* Whether the device was lost since it was opened. Any thread. */
SK2_EXPORT bool sk2_device_is_lost(const sk2_device_t *self);

/* A new, closed device of the named backend ("mock"), owned by the caller; NULL if the backend
 * is unknown or memory runs out. Touches no hardware. */
SK2_EXPORT sk2_device_t *sk2_device_new(const char *backend);

/* Stops the device if it runs, closes and frees it; sets *self_p to NULL. Safe on NULL. */
SK2_EXPORT void sk2_device_destroy(sk2_device_t **self_p);

/* Frame rate to produce (> 0), or 0 for as fast as possible. Before start. Returns 0,
 * SK2_EINVAL (negative, NaN or above 1000), SK2_ESTATE (running), SK2_EUNSUPPORTED. */
SK2_EXPORT int sk2_device_set_fps(sk2_device_t *self, double fps);

/* Replaces the generated id (1..SK2_DEVICE_ID_MAX printable ASCII bytes, no spaces). Before
 * open. Returns 0, SK2_EINVAL or SK2_ESTATE. */
SK2_EXPORT int sk2_device_set_id(sk2_device_t *self, const char *id);

/* Opens the device (finds hardware, allocates buffers, fixes the id). Returns 0, SK2_ESTATE
 * (already open), SK2_EDEVICE, SK2_ENOMEM. */
SK2_EXPORT int sk2_device_open(sk2_device_t *self);

/* Starts producing: `sink` is called with each frame on the device's thread until stop.
 * Opens the device first if needed. Returns 0, SK2_ESTATE (running, or lost), SK2_EINVAL,
 * SK2_ESYS. */
SK2_EXPORT int sk2_device_start(sk2_device_t *self, sk2_frame_sink_fn *sink, void *sink_arg);

/* Stops producing; when it returns the sink is not running and will not be called again.
 * Returns 0 or SK2_ESTATE (not running). */
SK2_EXPORT int sk2_device_stop(sk2_device_t *self);

SK2_EXPORT bool sk2_device_is_open(const sk2_device_t *self);
SK2_EXPORT bool sk2_device_is_running(const sk2_device_t *self);

/* The opaque, unique id (32 hex digits, generated by sk2_device_new, unless set before open;
 * final once open). Valid while the device lives. */
SK2_EXPORT const char *sk2_device_id(const sk2_device_t *self);
/* The backend name, static. */
SK2_EXPORT const char *sk2_device_backend(const sk2_device_t *self);

/* How many streams the device offers, and what each is. stream_info returns 0 or
 * SK2_ENOTFOUND past the end. */
SK2_EXPORT size_t sk2_device_stream_count(const sk2_device_t *self);
SK2_EXPORT int sk2_device_stream_info(const sk2_device_t *self, size_t index,
                                      sk2_stream_info_t *info);

/* The device's serial number ("" if it has none); valid while the device lives. */
SK2_EXPORT const char *sk2_device_serial(const sk2_device_t *self);

/* Turns a stream on or off, also while running: a device spends nothing on streams nobody
 * wants. Open turns depth on; the others start off. Any thread. Returns 0, SK2_ENOTFOUND (the
 * device has no such stream). */
SK2_EXPORT int sk2_device_set_stream_enabled(sk2_device_t *self, sk2_stream_kind_t kind,
                                             bool is_enabled);
/* Whether a stream is on. Any thread. */
SK2_EXPORT bool sk2_device_is_stream_enabled(const sk2_device_t *self, sk2_stream_kind_t kind);

/* The colour stream's size, before open (the mock: 16x16 .. 1920x1080, even sizes; default
 * 1920x1080 like Kinect v2). Returns 0, SK2_EINVAL, SK2_ESTATE, SK2_EUNSUPPORTED. */
SK2_EXPORT int sk2_device_set_color_size(sk2_device_t *self, uint32_t width, uint32_t height);

/* The rigid transform from the depth camera to the colour camera (sk2/registration.h), where
 * the backend knows it: the mock's (identity: its colour view is drawn from the depth camera's
 * own viewpoint) and a replay's (what the recording holds). libfreenect and OpenNI2 give none
 * (docs/rigs.md says why). After open. Returns 0 or SK2_ENOTFOUND (unknown, or no colour). */
SK2_EXPORT int sk2_device_depth_to_color(const sk2_device_t *self, sk2_extrinsics_t *extrinsics);

/* The device's pose in a rig's world frame (sk2/registration.h). Unset by default (a replay
 * starts with the pose its recording holds); a server's `pose` command and `--pose` set the
 * pose it serves, not this one. set checks the pose (sk2_pose_check) or clears it (NULL), not
 * while running. pose returns 0, or SK2_ENOTFOUND when unset. set returns 0, SK2_EINVAL or
 * SK2_ESTATE. */
SK2_EXPORT int sk2_device_set_pose(sk2_device_t *self, const sk2_pose_t *pose);
SK2_EXPORT int sk2_device_pose(const sk2_device_t *self, sk2_pose_t *pose);

/* Frames produced since open (given to the sink). Any thread. */
SK2_EXPORT uint64_t sk2_device_frames_produced(const sk2_device_t *self);

/* ---- The mock device's scene, for verification -------------------------------------------
 * The mock device renders exactly the streamkinect2 mock scene: 512 x 424 depth in mm,
 * min(wall, sphere rolled right by dx), with dx = (int)(100 * sin(t)) and t the capture time
 * in seconds since the Unix epoch. Its IR stream (512 x 424, gray16) is
 * sk2_mock_ir(depth) of the same instant's scene; its colour stream (RGB24) shows the scene
 * from the same viewpoint. Its intrinsics are typical of a Kinect v2. */
#define SK2_MOCK_WIDTH  512u
#define SK2_MOCK_HEIGHT 424u

/* dx for a capture time (microseconds since the epoch), in -100 .. 100. */
SK2_EXPORT int sk2_mock_dx(int64_t capture_time_us);

/* Renders the scene for one dx into dst (SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT values). */
SK2_EXPORT void sk2_mock_render(uint16_t *dst, int dx);

/* Finds the dx whose scene equals `depth` (width x height values) exactly, comparing only the
 * low `bits` bits of each pixel (12 for frames that went through depth12, 16 otherwise). The
 * size is the native 512x424 or one the mock's depth can be set to (the keyed command
 * `resolution.depth`): 256x212 (every second pixel of the scene) or 1024x848 (each pixel
 * twice). Returns 0 and sets *dx, or SK2_ENOTFOUND if no dx matches, SK2_EINVAL for another
 * size. */
SK2_EXPORT int sk2_mock_match(const uint16_t *depth, uint32_t width, uint32_t height, unsigned bits,
                              int *dx);

/* The mock IR value of a pixel at this depth: bright when near, like an active IR camera. */
SK2_EXPORT uint16_t sk2_mock_ir(uint16_t depth_mm);

/* Fault injection, for tests and demonstrations: "unplugs" (true) or "plugs back" (false) the
 * mock camera with this serial number (sk2_device_serial(), "mock-" and the start of its id).
 * A running mock device with that serial is lost at its next frame (sk2_device_lost_fn says
 * "unplugged"); opening one fails with SK2_EDEVICE until it is plugged back. Any thread.
 * Returns 0, SK2_EINVAL (NULL or ""), SK2_ELIMIT (too many unplugged at once: 64). */
SK2_EXPORT int sk2_mock_set_unplugged(const char *serial, bool is_unplugged);

#ifdef __cplusplus
}
#endif
#endif
