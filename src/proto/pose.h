/* Rigid transforms (sk2_pose_t, sk2_extrinsics_t) as JSON: {"rotation": [9 numbers, row-major]
 * or [w, x, y, z], "translation": [x, y, z]}, the form of pose files, the `pose` command, `me`,
 * the server's state file and recordings. Private to libsk2. */
#ifndef SK2_PROTO_POSE_H
#define SK2_PROTO_POSE_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "sk2/registration.h"

/* A new JSON object for a rotation and translation (rotation as 9 numbers); NULL on out of
 * memory. */
json_t *sk2_rigid_to_json(const double rotation[9], const double translation[3]);

/* Reads a rotation and translation from a JSON object of exactly those two members and checks
 * them, translation at most translation_max_m long. Returns 0 or SK2_EINVAL with why; the
 * outputs are untouched unless 0. */
int sk2_rigid_from_json(const json_t *object, double translation_max_m, double rotation[9],
                        double translation[3], char *why, size_t why_size);

#endif
