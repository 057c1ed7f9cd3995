/* Poses and extrinsics as JSON. The parser is strict: an object with exactly `rotation` and
 * `translation`, numbers only, a quaternion of unit length within the rotation tolerance, and
 * the same checks as sk2_pose_check, so that a file or command with a typo is refused whole
 * rather than taken half. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/pose.h"
#include "sk2/error.h"

json_t *sk2_rigid_to_json(const double rotation[9], const double translation[3])
{
    json_t *r = json_array(), *t = json_array();
    for (int i = 0; r && i < 9; i++)
        json_array_append_new(r, json_real(rotation[i]));
    for (int i = 0; t && i < 3; i++)
        json_array_append_new(t, json_real(translation[i]));
    if (!r || !t) {
        json_decref(r);
        json_decref(t);
        return NULL;
    }
    return json_pack("{s:o, s:o}", "rotation", r, "translation", t);
}

/* Copies a JSON array of numbers of one of the lengths allowed; false otherwise. */
static bool s_numbers(const json_t *array, double *out, size_t *count)
{
    if (!json_is_array(array) || json_array_size(array) > 9)
        return false;
    *count = json_array_size(array);
    for (size_t i = 0; i < *count; i++) {
        const json_t *value = json_array_get(array, i);
        if (!json_is_number(value) || !isfinite(json_number_value(value)))
            return false;
        out[i] = json_number_value(value);
    }
    return true;
}

static void s_quaternion_to_matrix(const double q[4], double r[9])
{
    double w = q[0], x = q[1], y = q[2], z = q[3];
    r[0] = 1 - 2 * (y * y + z * z);
    r[1] = 2 * (x * y - w * z);
    r[2] = 2 * (x * z + w * y);
    r[3] = 2 * (x * y + w * z);
    r[4] = 1 - 2 * (x * x + z * z);
    r[5] = 2 * (y * z - w * x);
    r[6] = 2 * (x * z - w * y);
    r[7] = 2 * (y * z + w * x);
    r[8] = 1 - 2 * (x * x + y * y);
}

int sk2_rigid_from_json(const json_t *object, double translation_max_m, double rotation[9],
                        double translation[3], char *why, size_t why_size)
{
    if (!json_is_object(object) || json_object_size(object) != 2 ||
        !json_object_get(object, "rotation") || !json_object_get(object, "translation")) {
        snprintf(why, why_size,
                 "a pose is an object with exactly \"rotation\" (9 numbers or a quaternion "
                 "w, x, y, z) and \"translation\" (3 numbers, metres)");
        return SK2_EINVAL;
    }
    double r[9], t[9], q[9];
    size_t count = 0, t_count = 0;
    if (!s_numbers(json_object_get(object, "rotation"), q, &count) || (count != 9 && count != 4)) {
        snprintf(why, why_size,
                 "\"rotation\" must be 9 finite numbers (row-major) or 4 (a quaternion w, x, y, "
                 "z)");
        return SK2_EINVAL;
    }
    if (!s_numbers(json_object_get(object, "translation"), t, &t_count) || t_count != 3) {
        snprintf(why, why_size, "\"translation\" must be 3 finite numbers, metres");
        return SK2_EINVAL;
    }
    if (count == 4) {
        double length = sqrt(q[0] * q[0] + q[1] * q[1] + q[2] * q[2] + q[3] * q[3]);
        if (fabs(length - 1.0) > SK2_ROTATION_TOLERANCE) {
            snprintf(why, why_size, "the quaternion's length is %.6g, not 1 (tolerance %g)", length,
                     SK2_ROTATION_TOLERANCE);
            return SK2_EINVAL;
        }
        for (int i = 0; i < 4; i++)
            q[i] /= length;
        s_quaternion_to_matrix(q, r);
    } else {
        memcpy(r, q, sizeof r);
    }
    sk2_pose_t check;
    memcpy(check.rotation, r, sizeof r);
    memcpy(check.translation, t, 3 * sizeof(double));
    char reason[200] = "";
    int rc = sk2_pose_check(&check, reason, sizeof reason);
    if (rc == 0) {
        double length = sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
        if (length > translation_max_m) {
            snprintf(reason, sizeof reason, "the translation is %.6g m long; at most %g m", length,
                     translation_max_m);
            rc = SK2_EINVAL;
        }
    }
    if (rc != 0) {
        snprintf(why, why_size, "%s", reason);
        return rc;
    }
    memcpy(rotation, r, sizeof r);
    memcpy(translation, t, 3 * sizeof(double));
    return 0;
}

int sk2_pose_parse(const char *text, size_t length, sk2_pose_t *pose, char *why, size_t why_size)
{
    char ignored[8];
    if (!why || why_size == 0) {
        why = ignored;
        why_size = sizeof ignored;
    }
    if (!text || !pose) {
        snprintf(why, why_size, "no pose text");
        return SK2_EINVAL;
    }
    if (length > SK2_POSE_TEXT_MAX) {
        snprintf(why, why_size, "a pose is at most %d bytes of JSON, not %zu", SK2_POSE_TEXT_MAX,
                 length);
        return SK2_ELIMIT;
    }
    json_error_t error;
    json_t *root = json_loadb(text, length, JSON_REJECT_DUPLICATES, &error);
    if (!root) {
        snprintf(why, why_size, "not JSON: %s (line %d)", error.text, error.line);
        return SK2_EINVAL;
    }
    int rc = sk2_rigid_from_json(root, SK2_POSE_TRANSLATION_MAX_M, pose->rotation,
                                 pose->translation, why, why_size);
    json_decref(root);
    return rc;
}

char *sk2_pose_to_json(const sk2_pose_t *pose)
{
    if (!pose)
        return NULL;
    json_t *object = sk2_rigid_to_json(pose->rotation, pose->translation);
    char *text = object ? json_dumps(object, JSON_COMPACT | JSON_REAL_PRECISION(17)) : NULL;
    json_decref(object);
    return text;
}
