/* The contract between the generic device object (device.c) and its backends. Private to
 * libsk2.
 *
 * A backend is one self-contained .c file that defines one sk2_device_backend_t and adds one
 * line to the registry in device.c. The generic layer owns the life cycle: it checks states and
 * arguments before calling in, so a backend sees each call only when it makes sense (open once,
 * start only when open and stopped, stop only when started, set_fps only when not running and
 * with a valid rate). A backend owns its capture thread(s) and hands every frame to
 * sk2_device_emit(), which numbers, counts and delivers it. Backends never include ZeroMQ. */
#ifndef SK2_DEVICE_IMPL_H
#define SK2_DEVICE_IMPL_H

#include <stddef.h>

#include "sk2/device.h"

/* Most streams one device may offer (depth, color, IR, body and room to spare). */
#define SK2_DEVICE_MAX_STREAMS 8

typedef struct {
    /* Registry name, static ("mock"). */
    const char *name;
    /* Allocates the backend's state into *impl_p; touches no hardware. `owner` is the device
     * to pass to sk2_device_emit() and outlives the state. Returns 0 or SK2_ENOMEM. */
    int (*create)(sk2_device_t *owner, void **impl_p);
    /* Frees the state. Called once, never while started. */
    void (*destroy)(void *impl);
    /* Sets the rate (0 = as fast as possible, else 0 < fps <= 1000), never while started.
     * NULL if the backend's rate cannot be chosen (the device answers SK2_EUNSUPPORTED).
     * Returns 0 or SK2_EUNSUPPORTED for a rate the backend cannot do. */
    int (*set_fps)(void *impl, double fps);
    /* Finds the hardware or source and allocates what capture needs. Called once. Returns 0,
     * SK2_EDEVICE or SK2_ENOMEM. */
    int (*open)(void *impl);
    /* Starts capture: from now on frames go to sk2_device_emit() from the backend's thread(s)
     * until stop returns. Returns 0 or SK2_ESYS. */
    int (*start)(void *impl);
    /* Stops capture and returns only when no backend thread will emit again. Cannot fail. */
    void (*stop)(void *impl);
    /* Streams on offer, at most SK2_DEVICE_MAX_STREAMS; fixed once open. NULL for a backend
     * that declares its streams in open() with sk2_device_set_streams(). */
    size_t (*stream_count)(const void *impl);
    /* Fills *info for a stream index below stream_count(). Returns 0 or SK2_ENOTFOUND. NULL
     * exactly when stream_count is. */
    int (*stream_info)(const void *impl, size_t index, sk2_stream_info_t *info);
    /* The serial number, or NULL for none. Valid after open. NULL for a backend that declares
     * it in open() with sk2_device_set_serial() (or has none). */
    const char *(*serial)(const void *impl);
    /* Sets the colour stream's size before open; NULL if it cannot be chosen. Returns 0 or
     * SK2_EINVAL. */
    int (*set_color_size)(void *impl, uint32_t width, uint32_t height);
    /* Camera backends only (NULL otherwise): lists the cameras seen now into up to `capacity`
     * entries, returns how many are seen or SK2_EDEVICE. Needs no device. */
    int (*enumerate)(sk2_camera_info_t *cameras, size_t capacity);
    /* Chooses the camera before open (a checked, non-empty uri); NULL if there is no choice.
     * Returns 0 or SK2_EINVAL. */
    int (*set_uri)(void *impl, const char *uri);
    /* Whether stream `index` can take this size once open (the `resolution.KIND` command):
     * 0, SK2_EINVAL (a size it cannot have) or SK2_EUNSUPPORTED (its size is fixed). Reads
     * nothing that changes, so any thread may ask. NULL if no stream's size can change. */
    int (*check_stream_size)(const void *impl, size_t index, uint32_t width, uint32_t height);
    /* Gives stream `index` a size check_stream_size accepted, never while started; from the
     * next start its frames and stream_info have that size (and intrinsics to match). Returns
     * 0 or what check_stream_size would. NULL exactly when check_stream_size is. */
    int (*set_stream_size)(void *impl, size_t index, uint32_t width, uint32_t height);
    /* The sizes stream `index` can have, for people ("256x212, 512x424, 1024x848"); static.
     * NULL exactly when check_stream_size is. */
    const char *(*stream_sizes)(const void *impl, size_t index);
} sk2_device_backend_t;

/* For backends that learn their streams when they open (cameras, recordings): declares them,
 * from open() only; the device keeps a copy and answers sk2_device_stream_count/_info with it.
 * Returns 0 or SK2_ELIMIT (more than SK2_DEVICE_MAX_STREAMS). */
int sk2_device_set_streams(sk2_device_t *self, const sk2_stream_info_t *infos, size_t count);
/* For backends that know the depth-to-colour extrinsics (checked; refused ones are ignored
 * with a warning, since a backend's calibration is input too), from create or open. */
void sk2_device_set_depth_to_color(sk2_device_t *self, const sk2_extrinsics_t *extrinsics);
/* Likewise the serial number (copied, truncated to SK2_CAMERA_SERIAL_MAX). */
void sk2_device_set_serial(sk2_device_t *self, const char *serial);

/* Hands a captured frame of stream `stream_index` to the device, which takes ownership of
 * *frame_p (and sets it to NULL), stamps its sequence number (consecutive from 0 per stream
 * since open), counts it and calls the user's sink. The backend sets the frame's timestamps.
 * Called only between a successful start and the return of stop, and for each stream from one
 * thread at a time. */
void sk2_device_emit(sk2_device_t *self, size_t stream_index, sk2_frame_t **frame_p);

/* Like sk2_device_emit, but keeps the frame's own sequence number when it is above the last
 * one emitted on that stream (else numbers on from there): for sources that carry their own
 * numbering, such as replays, whose gaps a receiver should see as they were. */
void sk2_device_emit_numbered(sk2_device_t *self, size_t stream_index, sk2_frame_t **frame_p);

/* The backend state of a device if it belongs to `backend`, else NULL: for a backend's own
 * public setters (sk2_device_set_replay_source). */
void *sk2_device_impl(sk2_device_t *self, const sk2_device_backend_t *backend);

/* Whether any client listens to any of the device's streams now: the server's pipeline sets it
 * from the subscriptions its sockets see (sk2_device_set_listened). Any thread. A replay holds
 * its first frame until then, rather than playing to nobody. */
bool sk2_device_is_listened(const sk2_device_t *self);
void sk2_device_set_listened(sk2_device_t *self, bool is_listened);

/* Whether anyone wants stream `stream_index` now (sk2_device_set_stream_enabled). Backends
 * skip the work for streams nobody wants. Any thread. */
bool sk2_device_stream_wanted(const sk2_device_t *self, size_t stream_index);

/* Tells the device it is lost (unplugged, or no longer delivering frames), with a short reason
 * for the log. The first call counts; it calls the user's sk2_device_lost_fn. A backend calls
 * it from one of its threads while started and emits nothing afterwards. */
void sk2_device_report_lost(sk2_device_t *self, const char *reason);

/* Whether the backend lets the rate be chosen (sk2_device_set_fps does not answer
 * SK2_EUNSUPPORTED for every rate). Any thread. */
bool sk2_device_can_set_fps(const sk2_device_t *self);
/* The size of a device's stream `index` (its index in sk2_device_stream_info), for the
 * `resolution.KIND` command. check says whether the size could be set (any thread, any
 * state): 0, SK2_ENOTFOUND (no such stream),
 * SK2_EUNSUPPORTED (the backend cannot change it) or SK2_EINVAL (not a size it has). set sets
 * it while the device is not running (else SK2_ESTATE), with the same answers; the device
 * remembers it for sk2_device_new_replacement. sizes describes the sizes the stream can have
 * (static text), or NULL when only its current size is possible. */
int sk2_device_check_stream_size(const sk2_device_t *self, size_t index, uint32_t width,
                                 uint32_t height);
int sk2_device_set_stream_size(sk2_device_t *self, size_t index, uint32_t width, uint32_t height);
const char *sk2_device_stream_sizes(const sk2_device_t *self, size_t index);

/* A new, closed device to bring a lost one back: same backend and id, its serial number as
 * the uri (its uri if it has no serial), same rate, colour size and stream sizes. NULL if out of
 * memory. */
sk2_device_t *sk2_device_new_replacement(const sk2_device_t *lost);

/* A new device of a backend that need not be in the registry (benchmarks and tests define
 * their own). Same contract as sk2_device_new(). */
sk2_device_t *sk2_device_new_backend(const sk2_device_backend_t *backend);

extern const sk2_device_backend_t sk2_device_backend_mock;
extern const sk2_device_backend_t sk2_device_backend_replay;
extern const sk2_device_backend_t sk2_device_backend_openni2;  /* when SK2_HAVE_OPENNI2 */
extern const sk2_device_backend_t sk2_device_backend_freenect; /* when SK2_HAVE_FREENECT */

#endif
