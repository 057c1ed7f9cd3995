/* MCAP export: a recording as an MCAP file (the ROS 2 bag format Foxglove and rviz open), with
 * ROS 2 message types in CDR, so ROS tools read sk2's data without sk2 (docs/formats.md).
 *
 * Depth becomes sensor_msgs/msg/Image "16UC1" (the recorded values, lossless), IR "mono16",
 * colour stored as JPEG a sensor_msgs/msg/CompressedImage with the recorded JPEG bytes
 * unchanged (other colour "rgb8" Images), each with a sensor_msgs/msg/CameraInfo when the
 * stream has intrinsics; sk2's device descriptions become Metadata records and every message
 * keeps its frame's sequence number. On request (sk2_mcap_options_t) depth goes out compressed
 * as ROS's compressedDepth transport sends it, and each depth frame also as a point cloud. */
#ifndef SK2_MCAP_H
#define SK2_MCAP_H

#include <stdbool.h>
#include <stddef.h>

#include "export.h"
#include "recording.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Every device of the recording, for sk2_recording_export_mcap's `device`. */
#define SK2_MCAP_ALL_DEVICES ((size_t)-1)

/* Writes the readable frames of an open reader (device `device`, or SK2_MCAP_ALL_DEVICES) into
 * a new MCAP file at path, chunks compressed with `compression`: "zstd", "lz4" or "none".
 * Topics are /sk2/<device id>/<depth|color|ir>/image_raw (colour: .../image_raw/compressed)
 * and .../camera_info, message log and publish times the capture times. Calls progress (if
 * not NULL) after every frame. Returns 0, SK2_EINVAL (no open reader, no such device, unknown
 * compression), SK2_ESYS (cannot write; why), SK2_EINTR (progress said stop: path holds part
 * of a file, which the caller removes), or a read error. */
SK2_EXPORT int sk2_recording_export_mcap(sk2_recording_reader_t *reader, size_t device,
                                         const char *path, const char *compression,
                                         sk2_recording_progress_fn progress, void *arg, char *why,
                                         size_t why_size);

/* How depth frames go out. */
typedef enum {
    SK2_MCAP_DEPTH_IMAGE = 0, /* sensor_msgs/msg/Image "16UC1" at .../depth/image_raw */
    SK2_MCAP_DEPTH_PNG = 1,   /* CompressedImage "16UC1; compressedDepth png" at
                                 .../depth/image_raw/compressedDepth */
    SK2_MCAP_DEPTH_RVL = 2,   /* the same with "16UC1; compressedDepth rvl" */
} sk2_mcap_depth_t;

/* What sk2_recording_export_mcap_with writes beyond the defaults. Zero it, then set fields:
 * a zeroed struct is the plain export (zstd chunks, depth as Image, no clouds). */
typedef struct {
    const char *compression; /* "zstd", "lz4" or "none"; NULL: "zstd" */
    sk2_mcap_depth_t depth;  /* how depth frames go out */
    bool has_cloud; /* also /sk2/<device>/depth/points, a sensor_msgs/msg/PointCloud2 of each
                       depth frame (needs the depth stream's intrinsics and unit) */
} sk2_mcap_options_t;

/* The depth mode named "image", "png" or "rvl". Returns 0 or SK2_EINVAL (also for NULL). */
SK2_EXPORT int sk2_mcap_depth_parse(const char *name, sk2_mcap_depth_t *depth);

/* sk2_recording_export_mcap with options (NULL: the defaults). The point clouds are those of
 * sk2_cloud_write (sk2/cloud.h): metres in the depth camera's optical frame, one point per
 * pixel with a reading. Returns as sk2_recording_export_mcap, and SK2_EINVAL (nothing written)
 * for an unknown depth mode, or with has_cloud when an exported device's depth stream has no
 * intrinsics or no usable depth unit, or no exported device has a depth stream. */
SK2_EXPORT int sk2_recording_export_mcap_with(sk2_recording_reader_t *reader, size_t device,
                                              const char *path, const sk2_mcap_options_t *options,
                                              sk2_recording_progress_fn progress, void *arg,
                                              char *why, size_t why_size);

#ifdef __cplusplus
}
#endif
#endif
