/* Where cameras are: a device's pose in a rig's world frame, the rigid transform from its depth
 * camera to its colour camera (extrinsics), and registration, which uses the latter to put
 * depth and colour on one pixel grid.
 *
 * Conventions. Every camera frame is the optical frame sk2_frame_to_points uses: x right, y
 * down, z forward, metres. A rigid transform maps a point p of its source frame to
 * q = R p + t in its target frame, with R a 3x3 rotation stored row-major (R[3 * row + col])
 * and t in metres:
 *   - sk2_pose_t: source = the device's depth optical frame, target = the rig's world frame;
 *   - sk2_extrinsics_t: source = the depth optical frame, target = the colour optical frame.
 * So t of a pose is where the depth camera sits in the world, and the columns of R are its
 * axes seen from the world.
 *
 * Plain data and plain functions: any thread; a registration object, like any other object,
 * is used by one thread at a time. */
#ifndef SK2_REGISTRATION_H
#define SK2_REGISTRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A device's place in the rig: q_world = rotation * p_depth + translation. */
typedef struct {
    double rotation[9];    /* row-major 3x3 rotation, unitless */
    double translation[3]; /* metres */
} sk2_pose_t;

/* Depth camera to colour camera of one device: q_color = rotation * p_depth + translation. */
typedef struct {
    double rotation[9];    /* row-major 3x3 rotation, unitless */
    double translation[3]; /* metres */
} sk2_extrinsics_t;

/* How far R R^T may stray from the identity (largest entry) and det R from 1 before a rotation
 * is refused: loose enough for matrices written with four decimals, tight enough that a
 * rotation never scales a rig by more than a hundredth of a percent. */
#define SK2_ROTATION_TOLERANCE 1e-4
/* Longest translation of a pose (a rig fits in a kilometre) and of extrinsics (two cameras of
 * one device sit within a metre of each other), metres. */
#define SK2_POSE_TRANSLATION_MAX_M       1000.0
#define SK2_EXTRINSICS_TRANSLATION_MAX_M 1.0
/* Longest pose text sk2_pose_parse reads, bytes. */
#define SK2_POSE_TEXT_MAX 4096

/* The identity: the depth camera's frame is the world's. */
SK2_EXPORT void sk2_pose_identity(sk2_pose_t *pose);
SK2_EXPORT void sk2_extrinsics_identity(sk2_extrinsics_t *extrinsics);

/* Checks a pose: every value finite, the rotation orthonormal with determinant +1 within
 * SK2_ROTATION_TOLERANCE, |translation| <= SK2_POSE_TRANSLATION_MAX_M. Returns 0 or
 * SK2_EINVAL and, if why is not NULL, a sentence saying what is wrong. */
SK2_EXPORT int sk2_pose_check(const sk2_pose_t *pose, char *why, size_t why_size);
/* The same for extrinsics, with SK2_EXTRINSICS_TRANSLATION_MAX_M. */
SK2_EXPORT int sk2_extrinsics_check(const sk2_extrinsics_t *extrinsics, char *why, size_t why_size);

/* Reads a pose from JSON text of at most SK2_POSE_TEXT_MAX bytes (not NUL-terminated is fine):
 * one object with exactly the members "rotation" (9 numbers, row-major, or 4 numbers: a unit
 * quaternion w, x, y, z, whose length may differ from 1 by SK2_ROTATION_TOLERANCE) and
 * "translation" (3 numbers, metres), then checked as sk2_pose_check does. Returns 0, SK2_EINVAL
 * (with why) or SK2_ELIMIT (too long); *pose is untouched unless 0 is returned. */
SK2_EXPORT int sk2_pose_parse(const char *text, size_t length, sk2_pose_t *pose, char *why,
                              size_t why_size);
/* The pose as that JSON text (rotation as 9 numbers), NUL-terminated, owned by the caller (free
 * it); NULL on out of memory. */
SK2_EXPORT char *sk2_pose_to_json(const sk2_pose_t *pose);

/* Maps count points (x, y, z floats, metres) in place through the rigid transform of a pose:
 * depth frame to world. */
SK2_EXPORT void sk2_pose_apply(const sk2_pose_t *pose, float *xyz, size_t count);

/* ---- Registration ------------------------------------------------------------------------
 * Depth and colour cameras of one device see the scene from two places. Registration turns
 * one into the other's pixel grid: (a) depth as the colour camera would see it, and (b) the
 * colour of each depth pixel. Both deproject each depth pixel (distortion removed, as
 * sk2_frame_to_points does), move the point into the colour frame with the extrinsics, and
 * project it with the colour camera's model (distortion applied). A registration object keeps
 * what does not change between frames (each depth pixel's ray, the colour z-buffer), so a
 * frame costs the arithmetic only. */

typedef struct sk2_registration sk2_registration_t;

/* Pixels of either camera at most: 4096 x 4096. */
#define SK2_REGISTRATION_MAX_PIXELS (4096u * 4096u)

/* A new registration for depth frames of depth_width x depth_height with `depth` intrinsics and
 * depth_unit_m metres per value, a colour camera of color_width x color_height with `color`
 * intrinsics, and the depth-to-colour extrinsics. Writes the object to *self_p (caller owns
 * it). Returns 0, SK2_EINVAL (NULL, zero size, focal lengths not finite and positive, principal
 * point or distortion not finite, depth unit outside 1e-6..1, extrinsics refused by
 * sk2_extrinsics_check), SK2_ELIMIT (a camera over SK2_REGISTRATION_MAX_PIXELS) or SK2_ENOMEM. */
SK2_EXPORT int sk2_registration_new(const sk2_intrinsics_t *depth, uint32_t depth_width,
                                    uint32_t depth_height, double depth_unit_m,
                                    const sk2_intrinsics_t *color, uint32_t color_width,
                                    uint32_t color_height, const sk2_extrinsics_t *extrinsics,
                                    sk2_registration_t **self_p);
/* Frees it and sets *self_p to NULL; safe on NULL. */
SK2_EXPORT void sk2_registration_destroy(sk2_registration_t **self_p);

/* (a) Depth at the colour camera: a new SK2_PIXEL_DEPTH_MM16 frame of the colour size (caller
 * owns it) holding, per colour pixel, the distance along the colour camera's z axis in the same
 * unit as the input, 0 where no depth point falls. Each depth pixel covers the colour pixels
 * its footprint (the square between its corners) projects onto, so an upsampled image has no
 * holes; where several points fall on one colour pixel the nearest wins (a z-buffer), so a
 * near object hides the background behind it. Sequence and times are copied from `depth`.
 * Returns 0, SK2_EINVAL (NULL, not a depth frame, or not the size given to _new), SK2_ENOMEM. */
SK2_EXPORT int sk2_registration_depth_to_color(sk2_registration_t *self, const sk2_frame_t *depth,
                                               sk2_frame_t **registered_p);

/* (b) Colour per depth pixel: a new SK2_PIXEL_BGRA32 frame of the depth size (caller owns it),
 * each pixel the colour (RGB24 or BGRA32 input) at the colour pixel nearest to where the depth
 * point projects, with alpha 255; alpha 0 and black where the pixel has no reading, its point
 * falls outside the colour image or behind the colour camera, or something nearer hides it
 * from the colour camera (its depth lies more than 1% plus one depth unit behind the z-buffer
 * of (a)). Times are copied from `depth`. Returns 0, SK2_EINVAL (NULL, wrong formats, or sizes
 * other than those given to _new), SK2_ENOMEM. */
SK2_EXPORT int sk2_registration_color_to_depth(sk2_registration_t *self, const sk2_frame_t *depth,
                                               const sk2_frame_t *color, sk2_frame_t **colored_p);

#ifdef __cplusplus
}
#endif
#endif
