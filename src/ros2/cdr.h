/* ROS 2 messages in CDR: the bytes a ROS 2 node publishes for sensor_msgs images and camera
 * models, and the `ros2msg` schema texts that describe them (the MCAP ros2 profile and the
 * Foxglove WebSocket protocol both carry these). Pure C on buffers: no files, no sockets.
 *
 * The encoding is plain little-endian CDR (encapsulation 00 01 00 00): every primitive is
 * aligned to its own size counted from just after the 4-byte encapsulation header; strings
 * are a uint32 length that includes the terminating NUL, then the bytes and the NUL;
 * sequences are a uint32 count, then the elements; fixed arrays have no count. */
#ifndef SK2_ROS2_CDR_H
#define SK2_ROS2_CDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sk2/device.h"
#include "sk2/frame.h"

/* Longest frame_id and encoding/format string accepted, in bytes without the NUL. */
#define SK2_ROS2_MAX_NAME 255
/* Largest message body (image data) accepted: CDR counts are uint32. */
#define SK2_ROS2_MAX_DATA (UINT32_MAX - 4096u)

/* Room for any device id's name token (sk2_ros2_name_token): the id, a leading 'd', the NUL. */
#define SK2_ROS2_TOKEN_MAX (SK2_DEVICE_ID_MAX + 2)

/* A growing output buffer. Plain data: zero it (or sk2_cdr_reset) before the first use and
 * free with sk2_cdr_free. The serialisers replace its contents. */
typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
} sk2_cdr_t;

void sk2_cdr_reset(sk2_cdr_t *self);
void sk2_cdr_free(sk2_cdr_t *self);

/* std_msgs/Header: the stamp (µs since the epoch, from sk2's capture time; 0 .. year 2106)
 * and the frame id (1 .. SK2_ROS2_MAX_NAME bytes). */
typedef struct {
    int64_t stamp_us;
    const char *frame_id;
} sk2_ros2_header_t;

/* The messages this module knows. */
typedef enum {
    SK2_ROS2_IMAGE = 0,            /* sensor_msgs/msg/Image */
    SK2_ROS2_COMPRESSED_IMAGE = 1, /* sensor_msgs/msg/CompressedImage */
    SK2_ROS2_CAMERA_INFO = 2,      /* sensor_msgs/msg/CameraInfo */
    SK2_ROS2_POINT_CLOUD2 = 3,     /* sensor_msgs/msg/PointCloud2 */
    SK2_ROS2_TYPE_COUNT = 4
} sk2_ros2_type_t;

/* How sk2_ros2_compressed_depth_encode packs the depth values. */
typedef enum {
    SK2_ROS2_DEPTH_PNG = 0, /* "16UC1; compressedDepth png": a 16-bit grayscale PNG */
    SK2_ROS2_DEPTH_RVL = 1, /* "16UC1; compressedDepth rvl": Wilson's RVL */
    SK2_ROS2_DEPTH_CODEC_COUNT = 2
} sk2_ros2_depth_codec_t;

/* A device id as a ROS name token, the <token> of topics /sk2/<token>/... and of frame ids
 * <token>_<stream>_optical_frame: every character but ASCII letters and digits becomes '_', and
 * a 'd' goes in front of an id that starts with a digit, since ROS 2 refuses names that do.
 * Different ids can share a token ("cam-1" and "cam_1"). Writes at most size bytes with the NUL
 * (SK2_ROS2_TOKEN_MAX holds any device id's token), cutting a longer token; writes nothing when
 * size is 0, and an empty string for a NULL id. */
void sk2_ros2_name_token(const char *id, char *out, size_t size);

/* The type's full name ("sensor_msgs/msg/Image") and its ros2msg schema text: its own
 * definition, then each type it uses after a line of 80 '=' and "MSG: pkg/Type". Static;
 * NULL for an unknown type. */
const char *sk2_ros2_type_name(sk2_ros2_type_t type);
const char *sk2_ros2_schema(sk2_ros2_type_t type);

/* The ROS image encoding of an sk2 pixel format: "16UC1" (depth, millimetres), "mono16"
 * (IR), "rgb8", "bgra8"; NULL for an unknown format. */
const char *sk2_ros2_encoding(sk2_pixel_format_t format);

/* sensor_msgs/msg/Image from a frame's pixels (16-bit values written little-endian, so
 * is_bigendian is 0 on any host). Returns 0, SK2_EINVAL (bad header, unknown format),
 * SK2_ELIMIT (over SK2_ROS2_MAX_DATA), SK2_ENOMEM. */
int sk2_ros2_image_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header,
                          const sk2_frame_t *frame);

/* sensor_msgs/msg/CompressedImage with `format` ("jpeg", "png") and the bytes unchanged. Same
 * returns (SK2_EINVAL also for an empty or missing format or no data). */
int sk2_ros2_compressed_image_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header,
                                     const char *format, const uint8_t *data, size_t size);

/* sensor_msgs/msg/CameraInfo for a width x height stream: K and P from the pinhole model, R
 * the identity, distortion_model "plumb_bob" with D = k1, k2, p1, p2, k3 (zeros when the
 * model has none), no binning, an empty region of interest. Returns 0, SK2_EINVAL (bad
 * header, size 0, a non-finite or non-positive focal length), SK2_ENOMEM. */
int sk2_ros2_camera_info_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header, uint32_t width,
                                uint32_t height, const sk2_intrinsics_t *intrinsics);

/* sensor_msgs/msg/PointCloud2 of a depth frame (SK2_PIXEL_DEPTH_MM16): one point per pixel
 * with a reading, in raster order, as sk2_frame_to_points deprojects it (metres, the depth
 * camera's optical frame: x right, y down, z forward, lens distortion removed). Fields x, y, z
 * FLOAT32 at offsets 0, 4, 8 (point_step 12), little-endian (is_bigendian false) on any host;
 * height 1 and width the point count (an unorganised cloud), is_dense true since no point is
 * invalid. `depth_unit_m` is metres per depth value, within the limits of sk2/cloud.h; the
 * intrinsics need finite values and non-zero focal lengths. Sets *points (may be NULL) to the
 * point count, 0 on failure. Returns 0, SK2_EINVAL (bad header, NULL frame or intrinsics,
 * frame not depth, bad intrinsics or unit), SK2_ELIMIT (more than SK2_CLOUD_MAX_POINTS
 * points), SK2_ENOMEM. */
int sk2_ros2_pointcloud2_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header,
                                const sk2_frame_t *depth, const sk2_intrinsics_t *intrinsics,
                                double depth_unit_m, uint32_t *points);

/* sensor_msgs/msg/CompressedImage of a depth frame (SK2_PIXEL_DEPTH_MM16) as ROS's
 * compressed_depth_image_transport publishes a 16UC1 image, so that its subscriber (and
 * Foxglove) decode it: format "16UC1; compressedDepth png" or "... rvl"; data its 12-byte
 * ConfigHeader (int32 format 0 = INV_DEPTH, then float32 depthParam[2], which only 32FC1 uses:
 * written 0) followed by, for png, a 16-bit grayscale PNG of the values, or for rvl the width
 * and height as uint32 and the RVL stream (sk2's rvl codec: the same bytes as ROS's RvlCodec).
 * Every value is kept: unlike ROS's publisher, no depth_max cut. All numbers little-endian.
 * Returns 0, SK2_EINVAL (bad header, NULL frame, frame not depth, unknown codec), SK2_ELIMIT,
 * SK2_ENOMEM, or the codec's error. */
int sk2_ros2_compressed_depth_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header,
                                     const sk2_frame_t *depth, sk2_ros2_depth_codec_t codec);

#endif
