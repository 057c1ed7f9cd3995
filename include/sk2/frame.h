/* Frames: one image of one stream, with its metadata and its pixels.
 *
 * A frame has exactly one owner at a time. Functions that take `sk2_frame_t **` take ownership
 * and set the caller's pointer to NULL. Pixels are stored row-major with no padding
 * (stride = width * bytes per pixel), 16-bit values in host byte order. */
#ifndef SK2_FRAME_H
#define SK2_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* What a frame shows. Numbers are stable (they will travel in wire headers). */
typedef enum {
    SK2_STREAM_DEPTH = 1, /* distance along the optical axis */
    SK2_STREAM_COLOR = 2,
    SK2_STREAM_IR = 3,
    SK2_STREAM_BODY = 4,
} sk2_stream_kind_t;

/* How a pixel is stored. Numbers are stable. */
typedef enum {
    SK2_PIXEL_DEPTH_MM16 = 1, /* uint16, millimetres, 0 = no reading */
    SK2_PIXEL_GRAY16 = 2,     /* uint16 intensity (IR) */
    SK2_PIXEL_RGB24 = 3,      /* 8-bit R, G, B */
    SK2_PIXEL_BGRA32 = 4,     /* 8-bit B, G, R, A */
} sk2_pixel_format_t;

/* Limits on what a frame may be: anything larger is refused (SK2_ELIMIT / NULL). */
#define SK2_FRAME_MAX_WIDTH  16384u
#define SK2_FRAME_MAX_HEIGHT 16384u

typedef struct sk2_frame sk2_frame_t;

/* A new frame with zeroed pixels, sequence 0 and no timestamps. Returns NULL if a dimension is
 * 0 or above the limits, the kind or format is unknown, or memory runs out. Caller owns it. */
SK2_EXPORT sk2_frame_t *sk2_frame_new(sk2_stream_kind_t kind, sk2_pixel_format_t format,
                                      uint32_t width, uint32_t height);

/* Frees the frame and sets *self_p to NULL. Safe on NULL and on an already-NULL pointer. */
SK2_EXPORT void sk2_frame_destroy(sk2_frame_t **self_p);

/* A deep copy (pixels and metadata), owned by the caller; NULL on out of memory. */
SK2_EXPORT sk2_frame_t *sk2_frame_dup(const sk2_frame_t *self);

SK2_EXPORT sk2_stream_kind_t sk2_frame_kind(const sk2_frame_t *self);
SK2_EXPORT sk2_pixel_format_t sk2_frame_format(const sk2_frame_t *self);
SK2_EXPORT uint32_t sk2_frame_width(const sk2_frame_t *self);
SK2_EXPORT uint32_t sk2_frame_height(const sk2_frame_t *self);
/* Bytes per row (width * bytes per pixel). */
SK2_EXPORT size_t sk2_frame_stride(const sk2_frame_t *self);
/* Bytes of pixel data (stride * height). */
SK2_EXPORT size_t sk2_frame_size(const sk2_frame_t *self);

/* The pixel buffer, owned by the frame and valid until it is destroyed. */
SK2_EXPORT uint8_t *sk2_frame_data(sk2_frame_t *self);
SK2_EXPORT const uint8_t *sk2_frame_cdata(const sk2_frame_t *self);
/* The pixels as uint16 for 16-bit formats, NULL for other formats. */
SK2_EXPORT uint16_t *sk2_frame_data16(sk2_frame_t *self);
SK2_EXPORT const uint16_t *sk2_frame_cdata16(const sk2_frame_t *self);

/* Per-stream frame counter set by the producer; consecutive frames differ by one. */
SK2_EXPORT uint64_t sk2_frame_sequence(const sk2_frame_t *self);
SK2_EXPORT void sk2_frame_set_sequence(sk2_frame_t *self, uint64_t sequence);
/* The device's own clock for this frame, microseconds, arbitrary origin, monotonic. */
SK2_EXPORT int64_t sk2_frame_device_timestamp_us(const sk2_frame_t *self);
SK2_EXPORT void sk2_frame_set_device_timestamp_us(sk2_frame_t *self, int64_t timestamp_us);
/* When the frame was captured on the producing host: microseconds since the Unix epoch. */
SK2_EXPORT int64_t sk2_frame_capture_time_us(const sk2_frame_t *self);
SK2_EXPORT void sk2_frame_set_capture_time_us(sk2_frame_t *self, int64_t time_us);

/* A camera's pinhole model with Brown-Conrady distortion, in the stream's own pixels. A pixel
 * (u, v) seen at depth z lies at x = (u' - cx) z / fx, y = (v' - cy) z / fy, where (u', v')
 * is (u, v) with the distortion removed. */
typedef struct {
    double fx, fy;     /* focal lengths, pixels */
    double cx, cy;     /* principal point, pixels */
    double k1, k2, k3; /* radial distortion coefficients */
    double p1, p2;     /* tangential distortion coefficients */
} sk2_intrinsics_t;

/* Turns a depth frame into points: for every pixel with a reading, its position in metres in
 * the depth camera's frame (x right, y down, z forward), distortion removed. `depth_unit_m` is
 * metres per depth value (0.001 for millimetres). Writes up to `capacity` points as x, y, z
 * floats into xyz (3 * capacity floats) and returns how many pixels had a reading (which may
 * exceed capacity), or 0 if the frame is not 16-bit. Any thread. */
SK2_EXPORT size_t sk2_frame_to_points(const sk2_frame_t *depth, const sk2_intrinsics_t *intrinsics,
                                      double depth_unit_m, float *xyz, size_t capacity);

/* Bytes per pixel of a format, 0 for an unknown format. */
SK2_EXPORT size_t sk2_pixel_format_bytes(sk2_pixel_format_t format);
/* "depth_mm16", "gray16", "rgb24", "bgra32" or "unknown". */
SK2_EXPORT const char *sk2_pixel_format_name(sk2_pixel_format_t format);
/* "depth", "color", "ir", "body" or "unknown". */
SK2_EXPORT const char *sk2_stream_kind_name(sk2_stream_kind_t kind);

/* Wall-clock time, microseconds since the Unix epoch. Any thread. */
SK2_EXPORT int64_t sk2_clock_wall_us(void);
/* Monotonic time, microseconds, arbitrary origin; for intervals and timeouts. Any thread. */
SK2_EXPORT int64_t sk2_clock_mono_us(void);

#ifdef __cplusplus
}
#endif
#endif
