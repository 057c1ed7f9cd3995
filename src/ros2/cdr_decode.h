/* Reading ROS 2 messages in CDR: sensor_msgs Image, CompressedImage and CameraInfo as any ROS
 * 2 node (or `ros2 bag record`) writes them, and turning them into sk2 frames and intrinsics.
 * Pure C on buffers; every count and length is checked against the bytes left before use.
 *
 * Both plain CDR byte orders are read (encapsulation 00 01 little-endian, 00 00 big-endian);
 * the XCDR2 and parameter-list encapsulations are refused. Alignment counts from just after
 * the 4-byte encapsulation header, as the writers in cdr.h do. */
#ifndef SK2_ROS2_CDR_DECODE_H
#define SK2_ROS2_CDR_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk2/device.h"
#include "sk2/frame.h"

#define SK2_ROS2_IN_MAX_NAME  255 /* frame_id, encoding, format, distortion model (bytes) */
#define SK2_ROS2_IN_MAX_D     16  /* distortion coefficients kept */
#define SK2_ROS2_IN_MAX_SIDE  16384
#define SK2_ROS2_IN_DEPTH_MAX 65535 /* millimetres: a 32FC1 depth beyond this becomes 0 */

/* std_msgs/Header as read. */
typedef struct {
    int64_t stamp_ns; /* sec * 1e9 + nanosec (sec is int32 in ROS 2) */
    char frame_id[SK2_ROS2_IN_MAX_NAME + 1];
} sk2_ros2_header_in_t;

/* sensor_msgs/msg/Image; data points into the message. */
typedef struct {
    sk2_ros2_header_in_t header;
    uint32_t height, width, step;
    char encoding[SK2_ROS2_IN_MAX_NAME + 1];
    bool is_bigendian;
    const uint8_t *data;
    size_t size;
} sk2_ros2_image_in_t;

/* sensor_msgs/msg/CompressedImage; data points into the message. */
typedef struct {
    sk2_ros2_header_in_t header;
    char format[SK2_ROS2_IN_MAX_NAME + 1];
    const uint8_t *data;
    size_t size;
} sk2_ros2_compressed_in_t;

/* sensor_msgs/msg/CameraInfo (binning and region of interest are read past, not kept). */
typedef struct {
    sk2_ros2_header_in_t header;
    uint32_t height, width;
    char distortion_model[SK2_ROS2_IN_MAX_NAME + 1];
    double d[SK2_ROS2_IN_MAX_D];
    size_t d_count; /* as in the message; only the first SK2_ROS2_IN_MAX_D are in d */
    double k[9], r[9], p[12];
} sk2_ros2_camera_info_in_t;

/* Each parses a whole message; 0 or SK2_ECORRUPT (why says what is wrong), SK2_EUNSUPPORTED
 * (another encapsulation). */
int sk2_ros2_image_decode(const uint8_t *msg, size_t size, sk2_ros2_image_in_t *out, char *why,
                          size_t why_size);
int sk2_ros2_compressed_image_decode(const uint8_t *msg, size_t size, sk2_ros2_compressed_in_t *out,
                                     char *why, size_t why_size);
int sk2_ros2_camera_info_decode(const uint8_t *msg, size_t size, sk2_ros2_camera_info_in_t *out,
                                char *why, size_t why_size);

/* A CompressedImage of compressed_depth_image_transport (topic .../compressedDepth): format
 * "16UC1; compressedDepth[ png|rvl]" (the values are the depth) or "32FC1; compressedDepth[
 * png|rvl]" (inverse depth, quantised: metres = quant_a / (value - quant_b), 0 = no reading).
 * data is a 12-byte header (int32 format, float quant_a, float quant_b, little-endian), then a
 * 16-bit grey PNG, or the width and height (uint32 little-endian each) and an RVL stream. */
typedef struct {
    bool is_float;
    bool is_rvl; /* packed is RVL (sk2's "rvl" codec reads it), not a PNG */
    float quant_a, quant_b;
    const uint8_t *packed; /* points into the message */
    size_t packed_size;
    uint32_t width, height; /* from the PNG's header, or RVL's */
} sk2_ros2_compressed_depth_t;

/* Whether a CompressedImage's format names compressedDepth. */
bool sk2_ros2_is_compressed_depth(const char *format);
/* Splits a compressedDepth image. Returns 0, SK2_EUNSUPPORTED (another format, e.g. rvl),
 * SK2_ECORRUPT (short, not a 16-bit grey PNG, bad quantisation). */
int sk2_ros2_compressed_depth_parse(const sk2_ros2_compressed_in_t *in,
                                    sk2_ros2_compressed_depth_t *out, char *why, size_t why_size);
/* Turns the decoded PNG values of the 32FC1 variant (a DEPTH_MM16 frame) into millimetres in
 * place: the nearest millimetre, 0 for no reading or beyond SK2_ROS2_IN_DEPTH_MAX. */
void sk2_ros2_compressed_depth_to_mm(sk2_frame_t *frame, float quant_a, float quant_b);

/* The sk2 pixel format an Image encoding becomes in a stream of `kind`: 16UC1 and 32FC1
 * (metres, converted to millimetres) are depth; mono16 and mono8 (scaled by 257) IR or depth;
 * rgb8, bgr8 colour (RGB24); rgba8, bgra8 colour (BGRA32); mono8 in a colour stream grey RGB24.
 * Returns 0 or SK2_EUNSUPPORTED. */
int sk2_ros2_image_format(const char *encoding, sk2_stream_kind_t kind, sk2_pixel_format_t *format);

/* The stream kind an encoding suggests when the topic does not say: depth for 16UC1/32FC1, IR
 * for mono16/mono8, colour for the others; 0 when unknown. */
sk2_stream_kind_t sk2_ros2_image_kind(const char *encoding);

/* A new frame of `kind` from an Image (its pixels converted as sk2_ros2_image_format says,
 * is_bigendian honoured, rows taken at `step`). *frame_p is NULL on error. Returns 0,
 * SK2_ECORRUPT (the data is shorter than height x step, step shorter than a row),
 * SK2_EUNSUPPORTED (encoding), SK2_ELIMIT (a side over SK2_ROS2_IN_MAX_SIDE), SK2_ENOMEM. */
int sk2_ros2_image_to_frame(const sk2_ros2_image_in_t *image, sk2_stream_kind_t kind,
                            sk2_frame_t **frame_p, char *why, size_t why_size);

/* sk2 intrinsics from a CameraInfo: fx, fy, cx, cy from K; for "plumb_bob" and
 * "rational_polynomial" k1, k2, p1, p2, k3 from D[0..4] (rational_polynomial's k4..k6 have no
 * place in sk2's model and are dropped; *is_partial says so). Any other model keeps only K
 * (also *is_partial). Returns 0 or SK2_EINVAL (K with a non-finite or non-positive focal
 * length: no camera model). */
int sk2_ros2_camera_info_intrinsics(const sk2_ros2_camera_info_in_t *info, sk2_intrinsics_t *k,
                                    bool *is_partial);

#endif
