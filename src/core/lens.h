/* The lens model of sk2_intrinsics_t (Brown-Conrady) in both directions, shared by the point
 * cloud and registration code. Private to libsk2. */
#ifndef SK2_CORE_LENS_H
#define SK2_CORE_LENS_H

#include "sk2/frame.h"

/* Removes the distortion from normalised image coordinates (x, y), in place. */
void sk2_lens_undistort(const sk2_intrinsics_t *k, double *x, double *y);

/* Applies the distortion to normalised image coordinates (x, y), in place. */
void sk2_lens_distort(const sk2_intrinsics_t *k, double *x, double *y);

#endif
