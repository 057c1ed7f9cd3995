/* Point cloud files: a depth frame as the points open3d, PCL, CloudCompare and MeshLab read, in
 * PLY (Stanford polygon format, vertices only) or PCD (PCL's own format), binary or ASCII.
 * Points are in metres in the depth camera's frame (x right, y down, z forward), deprojected
 * with the stream's intrinsics as sk2_frame_to_points does; pixels without a reading are left
 * out, so the cloud is unorganised (HEIGHT 1 in PCD). Points carry a colour when the caller
 * gives one per depth pixel: the BGRA image sk2_registration_color_to_depth makes from a colour
 * frame and the depth-to-colour extrinsics (registration.h). Without it, x, y, z only.
 *
 * Plain functions on a stdio stream: any thread, one stream per call. */
#ifndef SK2_CLOUD_H
#define SK2_CLOUD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "export.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The file formats. */
typedef enum {
    SK2_CLOUD_PLY = 0, /* PLY 1.0: binary_little_endian, or ascii */
    SK2_CLOUD_PCD = 1, /* PCD v0.7: DATA binary (little-endian floats), or ascii */
} sk2_cloud_format_t;

/* Metres per depth value accepted: from a micrometre to a metre. */
#define SK2_CLOUD_DEPTH_UNIT_MIN_M 1e-6
#define SK2_CLOUD_DEPTH_UNIT_MAX_M 1.0
/* Points in one cloud: a 4096 x 2048 frame with every pixel read. The points are held in memory
 * (12 bytes each) while the file is written. */
#define SK2_CLOUD_MAX_POINTS (1u << 23)

/* Writes the points of a depth frame (SK2_PIXEL_DEPTH_MM16) to out as one cloud file in `format`,
 * binary or (is_ascii) ASCII. `depth_unit_m` is metres per depth value (0.001 for millimetres)
 * within the limits above; the intrinsics need finite, non-zero focal lengths. Sets *points (may be
 * NULL) to the number of points written, which is the number of pixels with a reading. Returns 0,
 * SK2_EINVAL (NULL argument, frame not depth, bad intrinsics or unit, unknown format),
 * SK2_ELIMIT (more than SK2_CLOUD_MAX_POINTS points), SK2_ENOMEM, or SK2_ESYS (writing failed; out
 * may hold part of a file). */
SK2_EXPORT int sk2_cloud_write(FILE *out, const sk2_frame_t *depth,
                               const sk2_intrinsics_t *intrinsics, double depth_unit_m,
                               sk2_cloud_format_t format, bool is_ascii, size_t *points);

/* The same with colour: color_at_depth, if not NULL, is an SK2_PIXEL_BGRA32 frame of the depth
 * frame's size (what sk2_registration_color_to_depth returns) giving each depth pixel's colour.
 * Then PLY gets `property uchar red`, `green`, `blue` after x y z, and PCD PCL's `rgb` field
 * (FIELDS x y z rgb, SIZE 4, TYPE F: the float's bits are 0x00RRGGBB, as pcl::PointXYZRGB
 * holds it; ASCII writes that float's value, nine digits). The points are exactly those of
 * sk2_cloud_write, same count and order: a point whose pixel has alpha 0 (no colour seen: off
 * the colour image, hidden from the colour camera) is kept, black. With NULL it is
 * sk2_cloud_write. Returns as sk2_cloud_write, SK2_EINVAL also for a colour image of another
 * format or size. */
SK2_EXPORT int sk2_cloud_write_colored(FILE *out, const sk2_frame_t *depth,
                                       const sk2_intrinsics_t *intrinsics, double depth_unit_m,
                                       const sk2_frame_t *color_at_depth, sk2_cloud_format_t format,
                                       bool is_ascii, size_t *points);

/* The format named "ply" or "pcd". Returns 0 or SK2_EINVAL (also for NULL). */
SK2_EXPORT int sk2_cloud_format_parse(const char *name, sk2_cloud_format_t *format);

/* The file name extension of a format without the dot ("ply", "pcd"); NULL if unknown. */
SK2_EXPORT const char *sk2_cloud_format_extension(sk2_cloud_format_t format);

#ifdef __cplusplus
}
#endif
#endif
