/* MCAP export: a recording as an MCAP file (the ROS 2 bag format Foxglove and rviz open), with
 * ROS 2 message types in CDR, so ROS tools read sk2's data without sk2 (docs/formats.md).
 *
 * Depth becomes sensor_msgs/msg/Image "16UC1" (the recorded values, lossless), IR "mono16",
 * colour stored as JPEG a sensor_msgs/msg/CompressedImage with the recorded JPEG bytes
 * unchanged (other colour "rgb8" Images), each with a sensor_msgs/msg/CameraInfo when the
 * stream has intrinsics; sk2's device descriptions become Metadata records and every message
 * keeps its frame's sequence number. */
#ifndef SK2_MCAP_H
#define SK2_MCAP_H

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

#ifdef __cplusplus
}
#endif
#endif
