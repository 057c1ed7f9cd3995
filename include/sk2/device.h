/* Devices: anything that produces frames (the mock device now; recordings and real cameras
 * later) behind one interface, chosen by backend name.
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
    uint32_t width;  /* pixels */
    uint32_t height; /* pixels */
    double fps;      /* nominal frames per second; 0 = as fast as possible */
} sk2_stream_info_t;

/* Longest device id, in bytes, without the terminating NUL. */
#define SK2_DEVICE_ID_MAX 128

/* Names of the backends built into this library, numbered 0 .. count-1. */
SK2_EXPORT size_t sk2_device_backend_count(void);
SK2_EXPORT const char *sk2_device_backend_name(size_t index);

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
 * Opens the device first if needed. Returns 0, SK2_ESTATE (running), SK2_EINVAL, SK2_ESYS. */
SK2_EXPORT int sk2_device_start(sk2_device_t *self, sk2_frame_sink_fn *sink, void *sink_arg);

/* Stops producing; when it returns the sink is not running and will not be called again.
 * Returns 0 or SK2_ESTATE (not running). */
SK2_EXPORT int sk2_device_stop(sk2_device_t *self);

SK2_EXPORT bool sk2_device_is_open(const sk2_device_t *self);
SK2_EXPORT bool sk2_device_is_running(const sk2_device_t *self);

/* The opaque, unique id (a 32-digit hex string unless set); valid while the device lives. */
SK2_EXPORT const char *sk2_device_id(const sk2_device_t *self);
/* The backend name, static. */
SK2_EXPORT const char *sk2_device_backend(const sk2_device_t *self);

/* How many streams the device offers, and what each is. stream_info returns 0 or
 * SK2_ENOTFOUND past the end. */
SK2_EXPORT size_t sk2_device_stream_count(const sk2_device_t *self);
SK2_EXPORT int sk2_device_stream_info(const sk2_device_t *self, size_t index,
                                      sk2_stream_info_t *info);

/* Frames produced since open (given to the sink). Any thread. */
SK2_EXPORT uint64_t sk2_device_frames_produced(const sk2_device_t *self);

/* ---- The mock device's scene, for verification -------------------------------------------
 * The mock device renders exactly the streamkinect2 mock scene: 512 x 424 depth in mm,
 * min(wall, sphere rolled right by dx), with dx = (int)(100 * sin(t)) and t the capture time
 * in seconds since the Unix epoch. */
#define SK2_MOCK_WIDTH  512u
#define SK2_MOCK_HEIGHT 424u

/* dx for a capture time (microseconds since the epoch), in -100 .. 100. */
SK2_EXPORT int sk2_mock_dx(int64_t capture_time_us);

/* Renders the scene for one dx into dst (SK2_MOCK_WIDTH * SK2_MOCK_HEIGHT values). */
SK2_EXPORT void sk2_mock_render(uint16_t *dst, int dx);

/* Finds the dx whose scene equals `depth` (width x height values) exactly, comparing only the
 * low `bits` bits of each pixel (12 for frames that went through depth12, 16 otherwise).
 * Returns 0 and sets *dx, or SK2_ENOTFOUND if no dx matches, SK2_EINVAL for a wrong size. */
SK2_EXPORT int sk2_mock_match(const uint16_t *depth, uint32_t width, uint32_t height, unsigned bits,
                              int *dx);

#ifdef __cplusplus
}
#endif
#endif
