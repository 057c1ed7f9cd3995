/* Rigid transforms (poses, extrinsics) and registration of depth to colour.
 *
 * Registration is a forward splat, the way librealsense aligns depth to colour: every depth
 * pixel with a reading becomes a point, the point moves into the colour camera's frame and is
 * projected there. Going the other way (for each colour pixel, search the depth image) would
 * need the depth at that pixel, which is what is being computed. A depth pixel is a small square
 * on the scene, not a point: projecting only its centre into a colour image three times as fine
 * would leave two of every three colour pixels empty, so the square's four corners are
 * projected and every colour pixel whose centre lies within their bounding box takes the
 * point's depth.
 * Where squares of a near and a far surface land on the same colour pixel the nearest wins,
 * which is what the colour camera sees.
 *
 * The rays of the depth pixels' centres and corners depend only on the depth intrinsics, and
 * undoing the lens distortion is the costly step (iterations per pixel), so the registration
 * object computes them once. Per frame, a pixel costs five rigid moves and projections (its corners
 * and centre). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/lens.h"
#include "sk2/error.h"
#include "sk2/registration.h"

struct sk2_registration {
    sk2_intrinsics_t depth, color;
    uint32_t depth_width, depth_height;
    uint32_t color_width, color_height;
    double depth_unit_m;
    sk2_extrinsics_t extrinsics;
    float *centre_rays; /* per depth pixel: x/z, y/z of its centre, distortion removed */
    float *corner_rays; /* per corner of the (width+1) x (height+1) grid: x/z, y/z */
    uint16_t *zbuffer;  /* colour-sized scratch for (b) */
};

/* ---- Rigid transforms ------------------------------------------------------------------------ */

static void s_identity(double rotation[9], double translation[3])
{
    memset(rotation, 0, 9 * sizeof(double));
    rotation[0] = rotation[4] = rotation[8] = 1.0;
    translation[0] = translation[1] = translation[2] = 0.0;
}

void sk2_pose_identity(sk2_pose_t *pose)
{
    s_identity(pose->rotation, pose->translation);
}

void sk2_extrinsics_identity(sk2_extrinsics_t *extrinsics)
{
    s_identity(extrinsics->rotation, extrinsics->translation);
}

static int s_why(char *why, size_t why_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int s_why(char *why, size_t why_size, const char *format, ...)
{
    if (why && why_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(why, why_size, format, args);
        va_end(args);
    }
    return SK2_EINVAL;
}

static int s_check(const double r[9], const double t[3], double t_max, char *why, size_t why_size)
{
    for (int i = 0; i < 9; i++)
        if (!isfinite(r[i]))
            return s_why(why, why_size, "rotation[%d] is not a finite number", i);
    for (int i = 0; i < 3; i++)
        if (!isfinite(t[i]))
            return s_why(why, why_size, "translation[%d] is not a finite number", i);
    double worst = 0;
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++) {
            double dot =
                r[3 * a] * r[3 * b] + r[3 * a + 1] * r[3 * b + 1] + r[3 * a + 2] * r[3 * b + 2];
            double off = fabs(dot - (a == b ? 1.0 : 0.0));
            worst = off > worst ? off : worst;
        }
    if (worst > SK2_ROTATION_TOLERANCE)
        return s_why(why, why_size,
                     "the rotation is not orthonormal: R R^T is off the identity by %.3g "
                     "(tolerance %g)",
                     worst, SK2_ROTATION_TOLERANCE);
    double det = r[0] * (r[4] * r[8] - r[5] * r[7]) - r[1] * (r[3] * r[8] - r[5] * r[6]) +
                 r[2] * (r[3] * r[7] - r[4] * r[6]);
    if (fabs(det - 1.0) > SK2_ROTATION_TOLERANCE)
        return s_why(why, why_size,
                     "the rotation has determinant %.6g, not +1 (a reflection is no rotation)",
                     det);
    double length = sqrt(t[0] * t[0] + t[1] * t[1] + t[2] * t[2]);
    if (length > t_max)
        return s_why(why, why_size, "the translation is %.6g m long; at most %g m", length, t_max);
    return 0;
}

int sk2_pose_check(const sk2_pose_t *pose, char *why, size_t why_size)
{
    if (!pose)
        return s_why(why, why_size, "no pose");
    return s_check(pose->rotation, pose->translation, SK2_POSE_TRANSLATION_MAX_M, why, why_size);
}

int sk2_extrinsics_check(const sk2_extrinsics_t *extrinsics, char *why, size_t why_size)
{
    if (!extrinsics)
        return s_why(why, why_size, "no extrinsics");
    return s_check(extrinsics->rotation, extrinsics->translation, SK2_EXTRINSICS_TRANSLATION_MAX_M,
                   why, why_size);
}

void sk2_pose_apply(const sk2_pose_t *pose, float *xyz, size_t count)
{
    const double *r = pose->rotation, *t = pose->translation;
    for (size_t i = 0; i < count; i++) {
        double x = xyz[3 * i], y = xyz[3 * i + 1], z = xyz[3 * i + 2];
        xyz[3 * i] = (float)(r[0] * x + r[1] * y + r[2] * z + t[0]);
        xyz[3 * i + 1] = (float)(r[3] * x + r[4] * y + r[5] * z + t[1]);
        xyz[3 * i + 2] = (float)(r[6] * x + r[7] * y + r[8] * z + t[2]);
    }
}

/* ---- Registration ---------------------------------------------------------------------------- */

static bool s_is_usable(const sk2_intrinsics_t *k)
{
    const double values[] = {k->fx, k->fy, k->cx, k->cy, k->k1, k->k2, k->k3, k->p1, k->p2};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (!isfinite(values[i]))
            return false;
    return k->fx > 0 && k->fy > 0;
}

static void s_ray(const sk2_intrinsics_t *k, double u, double v, float *out)
{
    double x = (u - k->cx) / k->fx, y = (v - k->cy) / k->fy;
    sk2_lens_undistort(k, &x, &y);
    out[0] = (float)x;
    out[1] = (float)y;
}

int sk2_registration_new(const sk2_intrinsics_t *depth, uint32_t depth_width, uint32_t depth_height,
                         double depth_unit_m, const sk2_intrinsics_t *color, uint32_t color_width,
                         uint32_t color_height, const sk2_extrinsics_t *extrinsics,
                         sk2_registration_t **self_p)
{
    if (!self_p)
        return SK2_EINVAL;
    *self_p = NULL;
    if (!depth || !color || !extrinsics || !s_is_usable(depth) || !s_is_usable(color) ||
        depth_width == 0 || depth_height == 0 || color_width == 0 || color_height == 0 ||
        !(depth_unit_m >= 1e-6 && depth_unit_m <= 1.0) ||
        sk2_extrinsics_check(extrinsics, NULL, 0) != 0)
        return SK2_EINVAL;
    if ((uint64_t)depth_width * depth_height > SK2_REGISTRATION_MAX_PIXELS ||
        (uint64_t)color_width * color_height > SK2_REGISTRATION_MAX_PIXELS ||
        depth_width >= 65536 || depth_height >= 65536 || color_width >= 65536 ||
        color_height >= 65536)
        return SK2_ELIMIT;
    sk2_registration_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    *self = (sk2_registration_t){.depth = *depth,
                                 .color = *color,
                                 .depth_width = depth_width,
                                 .depth_height = depth_height,
                                 .color_width = color_width,
                                 .color_height = color_height,
                                 .depth_unit_m = depth_unit_m,
                                 .extrinsics = *extrinsics};
    size_t pixels = (size_t)depth_width * depth_height;
    size_t corners = (size_t)(depth_width + 1) * (depth_height + 1);
    self->centre_rays = malloc(pixels * 2 * sizeof(float));
    self->corner_rays = malloc(corners * 2 * sizeof(float));
    self->zbuffer = malloc((size_t)color_width * color_height * sizeof(uint16_t));
    if (!self->centre_rays || !self->corner_rays || !self->zbuffer) {
        sk2_registration_destroy(&self);
        return SK2_ENOMEM;
    }
    for (uint32_t v = 0; v < depth_height; v++)
        for (uint32_t u = 0; u < depth_width; u++)
            s_ray(depth, u, v, &self->centre_rays[2 * ((size_t)v * depth_width + u)]);
    for (uint32_t v = 0; v <= depth_height; v++)
        for (uint32_t u = 0; u <= depth_width; u++)
            s_ray(depth, u - 0.5, v - 0.5,
                  &self->corner_rays[2 * ((size_t)v * (depth_width + 1) + u)]);
    *self_p = self;
    return 0;
}

void sk2_registration_destroy(sk2_registration_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_registration_t *self = *self_p;
    free(self->centre_rays);
    free(self->corner_rays);
    free(self->zbuffer);
    free(self);
    *self_p = NULL;
}

/* The point on ray (x, y) at depth z, in the colour frame; false if behind the colour camera. */
static inline bool s_to_color(const sk2_registration_t *self, const float *ray, double z,
                              double q[3])
{
    const double *r = self->extrinsics.rotation, *t = self->extrinsics.translation;
    double x = ray[0] * z, y = ray[1] * z;
    q[0] = r[0] * x + r[1] * y + r[2] * z + t[0];
    q[1] = r[3] * x + r[4] * y + r[5] * z + t[1];
    q[2] = r[6] * x + r[7] * y + r[8] * z + t[2];
    return q[2] > 0;
}

/* A colour-frame point's pixel position in the colour image. */
static inline void s_project(const sk2_registration_t *self, const double q[3], double *u,
                             double *v)
{
    const sk2_intrinsics_t *k = &self->color;
    double x = q[0] / q[2], y = q[1] / q[2];
    if (k->k1 != 0 || k->k2 != 0 || k->k3 != 0 || k->p1 != 0 || k->p2 != 0)
        sk2_lens_distort(k, &x, &y);
    *u = k->fx * x + k->cx;
    *v = k->fy * y + k->cy;
}

/* Colour pixel centres i with low <= i <= high, clipped to 0..size-1; the one nearest the
 * middle when the span is narrower than a pixel (depth finer than colour). False if none. */
static inline bool s_span(double low, double high, uint32_t size, long *first, long *last)
{
    if (!(low < (double)size + 0.5) || !(high > -0.5))
        return false;
    long lo = (long)ceil(low), hi = (long)floor(high);
    if (lo > hi)
        lo = hi = lround((low + high) / 2);
    if (lo < 0)
        lo = 0;
    if (hi > (long)size - 1)
        hi = (long)size - 1;
    *first = lo;
    *last = hi;
    return lo <= hi;
}

/* Fills zbuffer (colour size, 0 = empty) with the nearest depth, in depth units, per colour
 * pixel. A pixel's footprint is the bounding box of its four corners' projections: the
 * corners are shared with the neighbours, so the boxes of a surface overlap a little and never
 * leave a gap, which two opposite corners alone do once the cameras are rolled against each
 * other (a far surface then shows through a near one). */
static void s_splat(const sk2_registration_t *self, const uint16_t *px, uint16_t *zbuffer)
{
    uint32_t w = self->depth_width, h = self->depth_height;
    uint32_t cw = self->color_width, ch = self->color_height;
    memset(zbuffer, 0, (size_t)cw * ch * sizeof *zbuffer);
    for (uint32_t v = 0; v < h; v++) {
        for (uint32_t u = 0; u < w; u++) {
            uint16_t d = px[(size_t)v * w + u];
            if (d == 0)
                continue;
            double z = d * self->depth_unit_m;
            double umin = INFINITY, umax = -INFINITY, vmin = INFINITY, vmax = -INFINITY;
            bool is_behind = false;
            for (int c = 0; c < 4 && !is_behind; c++) {
                size_t corner = (size_t)(v + (c >> 1)) * (w + 1) + u + (c & 1);
                double q[3], uc, vc;
                is_behind = !s_to_color(self, &self->corner_rays[2 * corner], z, q);
                s_project(self, q, &uc, &vc);
                umin = uc < umin ? uc : umin;
                umax = uc > umax ? uc : umax;
                vmin = vc < vmin ? vc : vmin;
                vmax = vc > vmax ? vc : vmax;
            }
            long ua, ub, va, vb;
            if (is_behind || !s_span(umin, umax, cw, &ua, &ub) || !s_span(vmin, vmax, ch, &va, &vb))
                continue;
            /* The point's own depth in the colour frame, from its centre. */
            double q[3];
            s_to_color(self, &self->centre_rays[2 * ((size_t)v * w + u)], z, q);
            double value = q[2] / self->depth_unit_m + 0.5;
            if (!(value >= 1.0) || value >= 65536.0)
                continue;
            uint16_t zq = (uint16_t)value;
            for (long y = va; y <= vb; y++) {
                uint16_t *row = &zbuffer[(size_t)y * cw];
                for (long x = ua; x <= ub; x++)
                    if (row[x] == 0 || zq < row[x])
                        row[x] = zq;
            }
        }
    }
}

static void s_copy_times(sk2_frame_t *out, const sk2_frame_t *from)
{
    sk2_frame_set_sequence(out, sk2_frame_sequence(from));
    sk2_frame_set_device_timestamp_us(out, sk2_frame_device_timestamp_us(from));
    sk2_frame_set_capture_time_us(out, sk2_frame_capture_time_us(from));
}

static bool s_is_depth_input(const sk2_registration_t *self, const sk2_frame_t *depth)
{
    return depth && sk2_frame_format(depth) == SK2_PIXEL_DEPTH_MM16 &&
           sk2_frame_width(depth) == self->depth_width &&
           sk2_frame_height(depth) == self->depth_height;
}

int sk2_registration_depth_to_color(sk2_registration_t *self, const sk2_frame_t *depth,
                                    sk2_frame_t **registered_p)
{
    if (!registered_p)
        return SK2_EINVAL;
    *registered_p = NULL;
    if (!self || !s_is_depth_input(self, depth))
        return SK2_EINVAL;
    sk2_frame_t *out = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, self->color_width,
                                     self->color_height);
    if (!out)
        return SK2_ENOMEM;
    s_splat(self, sk2_frame_cdata16(depth), sk2_frame_data16(out));
    s_copy_times(out, depth);
    *registered_p = out;
    return 0;
}

int sk2_registration_color_to_depth(sk2_registration_t *self, const sk2_frame_t *depth,
                                    const sk2_frame_t *color, sk2_frame_t **colored_p)
{
    if (!colored_p)
        return SK2_EINVAL;
    *colored_p = NULL;
    if (!self || !s_is_depth_input(self, depth) || !color ||
        sk2_frame_width(color) != self->color_width ||
        sk2_frame_height(color) != self->color_height ||
        (sk2_frame_format(color) != SK2_PIXEL_RGB24 && sk2_frame_format(color) != SK2_PIXEL_BGRA32))
        return SK2_EINVAL;
    sk2_frame_t *out =
        sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_BGRA32, self->depth_width, self->depth_height);
    if (!out)
        return SK2_ENOMEM;
    const uint16_t *px = sk2_frame_cdata16(depth);
    s_splat(self, px, self->zbuffer);
    bool is_rgb = sk2_frame_format(color) == SK2_PIXEL_RGB24;
    size_t bytes = is_rgb ? 3 : 4;
    const uint8_t *rgb = sk2_frame_cdata(color);
    uint8_t *dst = sk2_frame_data(out); /* zeroed: black, alpha 0 */
    uint32_t w = self->depth_width, cw = self->color_width, ch = self->color_height;
    for (uint32_t v = 0; v < self->depth_height; v++) {
        for (uint32_t u = 0; u < w; u++) {
            size_t i = (size_t)v * w + u;
            if (px[i] == 0)
                continue;
            double q[3], uc, vc;
            if (!s_to_color(self, &self->centre_rays[2 * i], px[i] * self->depth_unit_m, q))
                continue;
            s_project(self, q, &uc, &vc);
            long x = lround(uc), y = lround(vc);
            if (!(uc > -0.5) || !(vc > -0.5) || x < 0 || y < 0 || x >= (long)cw || y >= (long)ch)
                continue;
            double zq = q[2] / self->depth_unit_m;
            uint16_t nearest = self->zbuffer[(size_t)y * cw + x];
            if (nearest != 0 && zq > nearest + nearest / 100.0 + 1.0)
                continue; /* hidden from the colour camera by something nearer */
            const uint8_t *c = &rgb[((size_t)y * cw + x) * bytes];
            uint8_t *o = &dst[i * 4];
            o[0] = is_rgb ? c[2] : c[0];
            o[1] = c[1];
            o[2] = is_rgb ? c[0] : c[2];
            o[3] = 255;
        }
    }
    s_copy_times(out, depth);
    *colored_p = out;
    return 0;
}
