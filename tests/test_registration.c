/* Poses, extrinsics and registration (sk2/registration.h) against a synthetic scene whose truth
 * is known: a depth camera with a Kinect v2's distorting lens sees a wall 1.5 m away and a box
 * face 0.9 m away in front of part of it; a colour camera with its own distortion sits 52 mm
 * to the side, a little above and turned by a few degrees. The depth frame is written down from
 * the geometry, every point's place in the colour image is computed here in double precision,
 * and both registrations are checked pixel by pixel: depth within 1 mm of the truth, colour
 * from within half a pixel of where the point projects, the box hiding the wall behind it, and
 * every refusal. Also the strict pose parser, and poses and extrinsics kept by recordings,
 * served by replays and given by the mock. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sk2/sk2.h"

#define DW     512
#define DH     424
#define CW     1920
#define CH     1080
#define WALL   1500 /* mm */
#define BOX    900  /* mm */
#define BOX_U0 200  /* the box covers depth pixels BOX_U0 <= u < BOX_U1, BOX_V0 <= v < BOX_V1 */
#define BOX_U1 280
#define BOX_V0 150
#define BOX_V1 250

static const sk2_intrinsics_t s_depth_k = {.fx = 365.456,
                                           .fy = 365.456,
                                           .cx = 254.878,
                                           .cy = 205.395,
                                           .k1 = 0.0905474,
                                           .k2 = -0.26819,
                                           .k3 = 0.0950862};
static const sk2_intrinsics_t s_color_k = {
    .fx = 1081.37, .fy = 1081.37, .cx = 959.5, .cy = 539.5, .k1 = 0.02, .k2 = -0.01, .p1 = 0.001};

/* A rotation of 4 degrees about y, then 2 about x, and the colour camera 52 mm to the side. */
static sk2_extrinsics_t s_extrinsics(void)
{
    double a = 4.0 * M_PI / 180, b = 2.0 * M_PI / 180;
    double ry[9] = {cos(a), 0, sin(a), 0, 1, 0, -sin(a), 0, cos(a)};
    double rx[9] = {1, 0, 0, 0, cos(b), -sin(b), 0, sin(b), cos(b)};
    sk2_extrinsics_t e = {.translation = {-0.052, 0.004, 0.003}};
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 3; k++)
                e.rotation[3 * i + j] += rx[3 * i + k] * ry[3 * k + j];
    return e;
}

static bool s_in_box(int u, int v)
{
    return u >= BOX_U0 && u < BOX_U1 && v >= BOX_V0 && v < BOX_V1;
}

static sk2_frame_t *s_scene(void)
{
    sk2_frame_t *depth = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, DW, DH);
    assert_non_null(depth);
    uint16_t *px = sk2_frame_data16(depth);
    for (int v = 0; v < DH; v++)
        for (int u = 0; u < DW; u++)
            px[v * DW + u] = s_in_box(u, v) ? BOX : WALL;
    sk2_frame_set_sequence(depth, 77);
    return depth;
}

/* Where each depth pixel's point lands in the colour image, from the points
 * sk2_frame_to_points gives (tested against a real lens in test_cloud). */
typedef struct {
    double u, v, z_mm;
} s_truth_t;

static s_truth_t *s_truth(const sk2_frame_t *depth, const sk2_extrinsics_t *e)
{
    float *xyz = malloc(sizeof(float) * 3 * DW * DH);
    s_truth_t *truth = malloc(sizeof *truth * DW * DH);
    assert_non_null(xyz);
    assert_non_null(truth);
    assert_int_equal(sk2_frame_to_points(depth, &s_depth_k, 0.001, xyz, DW * DH), DW * DH);
    const sk2_intrinsics_t *k = &s_color_k;
    for (size_t i = 0; i < DW * DH; i++) {
        double p[3] = {xyz[3 * i], xyz[3 * i + 1], xyz[3 * i + 2]}, q[3];
        for (int r = 0; r < 3; r++)
            q[r] = e->rotation[3 * r] * p[0] + e->rotation[3 * r + 1] * p[1] +
                   e->rotation[3 * r + 2] * p[2] + e->translation[r];
        double x = q[0] / q[2], y = q[1] / q[2], r2 = x * x + y * y;
        double radial = 1 + r2 * (k->k1 + r2 * (k->k2 + r2 * k->k3));
        double xd = x * radial + 2 * k->p1 * x * y + k->p2 * (r2 + 2 * x * x);
        double yd = y * radial + k->p1 * (r2 + 2 * y * y) + 2 * k->p2 * x * y;
        truth[i] = (s_truth_t){k->fx * xd + k->cx, k->fy * yd + k->cy, q[2] * 1000};
    }
    free(xyz);
    return truth;
}

/* The box face's outline in the colour image: where the centres of its corner pixels project,
 * in order around it. */
static void s_box_bounds(const s_truth_t *truth, double box[8])
{
    const int corners[4][2] = {
        {BOX_U0, BOX_V0}, {BOX_U1 - 1, BOX_V0}, {BOX_U1 - 1, BOX_V1 - 1}, {BOX_U0, BOX_V1 - 1}};
    for (int i = 0; i < 4; i++) {
        box[2 * i] = truth[corners[i][1] * DW + corners[i][0]].u;
        box[2 * i + 1] = truth[corners[i][1] * DW + corners[i][0]].v;
    }
}

/* Whether (u, v) lies inside the outline grown by margin pixels (shrunk if negative). The
 * outline runs clockwise on screen (v down), so inside is right of every edge. */
static bool s_inside(const double box[8], double u, double v, double margin)
{
    for (int i = 0; i < 4; i++) {
        double ax = box[2 * i], ay = box[2 * i + 1];
        double bx = box[2 * ((i + 1) % 4)], by = box[2 * ((i + 1) % 4) + 1];
        double ex = bx - ax, ey = by - ay, length = hypot(ex, ey);
        double side = (ex * (v - ay) - ey * (u - ax)) / length; /* > 0: inside */
        if (side < -margin)
            return false;
    }
    return true;
}

static sk2_registration_t *s_registration(const sk2_extrinsics_t *e)
{
    sk2_registration_t *reg = NULL;
    assert_int_equal(sk2_registration_new(&s_depth_k, DW, DH, 0.001, &s_color_k, CW, CH, e, &reg),
                     0);
    assert_non_null(reg);
    return reg;
}

static void test_depth_to_color_matches_the_geometry(void **state)
{
    (void)state;
    sk2_extrinsics_t e = s_extrinsics();
    sk2_frame_t *depth = s_scene();
    s_truth_t *truth = s_truth(depth, &e);
    double box[8];
    s_box_bounds(truth, box);
    sk2_registration_t *reg = s_registration(&e);
    sk2_frame_t *out = NULL;
    assert_int_equal(sk2_registration_depth_to_color(reg, depth, &out), 0);
    assert_int_equal(sk2_frame_width(out), CW);
    assert_int_equal(sk2_frame_height(out), CH);
    assert_int_equal(sk2_frame_format(out), SK2_PIXEL_DEPTH_MM16);
    assert_int_equal(sk2_frame_sequence(out), 77);
    const uint16_t *px = sk2_frame_cdata16(out);
    size_t checked = 0, hidden = 0;
    for (int v = 0; v < DH; v++)
        for (int u = 0; u < DW; u++) {
            const s_truth_t *t = &truth[v * DW + u];
            long x = lround(t->u), y = lround(t->v);
            if (x < 0 || y < 0 || x >= CW || y >= CH)
                continue;
            uint16_t got = px[y * CW + x];
            bool is_hidden = !s_in_box(u, v) && got < (WALL + BOX) / 2;
            if (is_hidden) {
                /* The wall may be hidden only where the box is in front of it. */
                assert_true(s_inside(box, t->u, t->v, 4.0));
                hidden++;
                continue;
            }
            /* Where the box clearly covers the wall's point, the wall cannot show. */
            if (!s_in_box(u, v) && s_inside(box, t->u, t->v, -2.0))
                fail_msg("wall pixel (%d, %d) at (%.2f, %.2f) shows %u mm behind the box", u, v,
                         t->u, t->v, got);
            if (fabs(got - t->z_mm) > 1.0)
                fail_msg("depth pixel (%d, %d): colour pixel (%ld, %ld) holds %u mm, truth %.3f", u,
                         v, x, y, got, t->z_mm);
            checked++;
        }
    assert_true(checked > DW * DH * 8 / 10);
    assert_true(hidden > 500); /* about 8 columns of 100 rows */
    /* No holes: the colour pixels well inside the depth camera's view all hold a depth (but
     * beside the box, where the colour camera sees wall the box hid from the depth camera: a
     * band about 25 pixels wide, the difference of the box's and the wall's parallax), and
     * every one that does is a point of the wall or of the box in the colour frame. */
    const s_truth_t *tl = &truth[40 * DW + 40], *br = &truth[(DH - 40) * DW + DW - 40];
    for (long y = lround(tl->v); y <= lround(br->v); y++)
        for (long x = lround(tl->u); x <= lround(br->u); x++)
            if (px[y * CW + x] == 0 && !s_inside(box, x, y, 30.0))
                fail_msg("colour pixel (%ld, %ld) left empty", x, y);
    size_t filled = 0;
    for (size_t i = 0; i < (size_t)CW * CH; i++) {
        if (!px[i])
            continue;
        filled++;
        /* The colour frame's z of the wall lies within the range the wall's points have. */
        assert_true((px[i] > 1300 && px[i] < 1700) || (px[i] > 800 && px[i] < 1000));
    }
    assert_true(filled > (size_t)CW * CH / 2);
    sk2_frame_destroy(&out);
    sk2_registration_destroy(&reg);
    sk2_registration_destroy(&reg); /* idempotent */
    free(truth);
    sk2_frame_destroy(&depth);
}

/* A colour image whose every pixel says where it is. */
static sk2_frame_t *s_coordinate_image(sk2_pixel_format_t format)
{
    sk2_frame_t *color = sk2_frame_new(SK2_STREAM_COLOR, format, CW, CH);
    assert_non_null(color);
    uint8_t *px = sk2_frame_data(color);
    size_t bytes = format == SK2_PIXEL_RGB24 ? 3 : 4;
    for (int y = 0; y < CH; y++)
        for (int x = 0; x < CW; x++) {
            uint8_t *p = &px[((size_t)y * CW + x) * bytes];
            uint8_t r = (uint8_t)(x & 0xff), g = (uint8_t)(y & 0xff),
                    b = (uint8_t)((x >> 8) | ((y >> 8) << 4));
            if (bytes == 3) {
                p[0] = r;
                p[1] = g;
                p[2] = b;
            } else {
                p[0] = b;
                p[1] = g;
                p[2] = r;
                p[3] = 255;
            }
        }
    return color;
}

static void s_check_colored(sk2_pixel_format_t format)
{
    sk2_extrinsics_t e = s_extrinsics();
    sk2_frame_t *depth = s_scene();
    s_truth_t *truth = s_truth(depth, &e);
    uint16_t *dpx = sk2_frame_data16(depth);
    dpx[5 * DW + 300] = 0; /* a pixel without a reading gets no colour */
    double box[8];
    s_box_bounds(truth, box);
    sk2_frame_t *color = s_coordinate_image(format), *out = NULL;
    sk2_registration_t *reg = s_registration(&e);
    assert_int_equal(sk2_registration_color_to_depth(reg, depth, color, &out), 0);
    assert_int_equal(sk2_frame_format(out), SK2_PIXEL_BGRA32);
    assert_int_equal(sk2_frame_width(out), DW);
    assert_int_equal(sk2_frame_height(out), DH);
    const uint8_t *px = sk2_frame_cdata(out);
    size_t valid = 0, hidden = 0, outside = 0;
    for (int v = 0; v < DH; v++)
        for (int u = 0; u < DW; u++) {
            const uint8_t *p = &px[((size_t)v * DW + u) * 4];
            const s_truth_t *t = &truth[v * DW + u];
            bool is_outside = !(t->u > -0.5 && t->v > -0.5 && t->u < CW - 0.5 && t->v < CH - 0.5);
            if (dpx[v * DW + u] == 0 || is_outside) {
                assert_int_equal(p[3], 0);
                outside += is_outside;
                continue;
            }
            bool must_hide = !s_in_box(u, v) && s_inside(box, t->u, t->v, -2.0);
            bool may_hide = !s_in_box(u, v) && s_inside(box, t->u, t->v, 4.0);
            if (p[3] == 0) {
                if (!may_hide)
                    fail_msg("depth pixel (%d, %d) got no colour", u, v);
                hidden++;
                continue;
            }
            assert_int_equal(p[3], 255);
            assert_false(must_hide);
            int x = p[2] | ((p[0] & 0x0f) << 8), y = p[1] | ((p[0] >> 4) << 8);
            if (fabs(x - t->u) > 0.5 + 1e-3 || fabs(y - t->v) > 0.5 + 1e-3)
                fail_msg("depth pixel (%d, %d) took colour pixel (%d, %d); it projects to "
                         "(%.3f, %.3f)",
                         u, v, x, y, t->u, t->v);
            valid++;
        }
    assert_true(valid > DW * DH * 8 / 10);
    assert_true(hidden > 500); /* about 8 columns of 100 rows */
    assert_true(outside > 0);  /* the depth camera sees more than the colour camera at the edges */
    sk2_frame_destroy(&out);
    sk2_frame_destroy(&color);
    sk2_registration_destroy(&reg);
    free(truth);
    sk2_frame_destroy(&depth);
}

static void test_color_to_depth_samples_where_points_project(void **state)
{
    (void)state;
    s_check_colored(SK2_PIXEL_RGB24);
    s_check_colored(SK2_PIXEL_BGRA32);
}

/* The identity with a colour camera equal to the depth camera gives the depth image back. */
static void test_identity_gives_the_depth_back(void **state)
{
    (void)state;
    sk2_extrinsics_t e;
    sk2_extrinsics_identity(&e);
    sk2_frame_t *depth = s_scene(), *out = NULL;
    sk2_registration_t *reg = NULL;
    assert_int_equal(sk2_registration_new(&s_depth_k, DW, DH, 0.001, &s_depth_k, DW, DH, &e, &reg),
                     0);
    assert_int_equal(sk2_registration_depth_to_color(reg, depth, &out), 0);
    assert_memory_equal(sk2_frame_cdata16(out), sk2_frame_cdata16(depth), DW * DH * 2);
    sk2_frame_destroy(&out);
    sk2_registration_destroy(&reg);
    sk2_frame_destroy(&depth);
}

static void test_registration_refuses_bad_arguments(void **state)
{
    (void)state;
    sk2_extrinsics_t e = s_extrinsics(), bad = e;
    sk2_registration_t *reg = (sk2_registration_t *)&e; /* must be reset to NULL */
    sk2_intrinsics_t zero = s_depth_k, nan_k = s_color_k;
    zero.fx = 0;
    nan_k.k1 = NAN;
    assert_int_equal(sk2_registration_new(NULL, DW, DH, 0.001, &s_color_k, CW, CH, &e, &reg),
                     SK2_EINVAL);
    assert_null(reg);
    assert_int_equal(sk2_registration_new(&zero, DW, DH, 0.001, &s_color_k, CW, CH, &e, &reg),
                     SK2_EINVAL);
    assert_int_equal(sk2_registration_new(&s_depth_k, DW, DH, 0.001, &nan_k, CW, CH, &e, &reg),
                     SK2_EINVAL);
    assert_int_equal(sk2_registration_new(&s_depth_k, 0, DH, 0.001, &s_color_k, CW, CH, &e, &reg),
                     SK2_EINVAL);
    assert_int_equal(sk2_registration_new(&s_depth_k, DW, DH, 0, &s_color_k, CW, CH, &e, &reg),
                     SK2_EINVAL);
    assert_int_equal(
        sk2_registration_new(&s_depth_k, DW, DH, 0.001, &s_color_k, 8192, 4096, &e, &reg),
        SK2_ELIMIT);
    bad.rotation[0] = 1.1; /* not orthonormal */
    assert_int_equal(
        sk2_registration_new(&s_depth_k, DW, DH, 0.001, &s_color_k, CW, CH, &bad, &reg),
        SK2_EINVAL);
    bad = e;
    bad.translation[2] = 1.5; /* two cameras of one device are not 1.5 m apart */
    assert_int_equal(
        sk2_registration_new(&s_depth_k, DW, DH, 0.001, &s_color_k, CW, CH, &bad, &reg),
        SK2_EINVAL);
    assert_null(reg);

    reg = s_registration(&e);
    sk2_frame_t *small = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, DW / 2, DH / 2);
    sk2_frame_t *gray = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, DW, DH);
    sk2_frame_t *depth = s_scene(), *color = s_coordinate_image(SK2_PIXEL_RGB24);
    sk2_frame_t *out = small;
    assert_int_equal(sk2_registration_depth_to_color(reg, small, &out), SK2_EINVAL);
    assert_null(out);
    assert_int_equal(sk2_registration_depth_to_color(reg, gray, &out), SK2_EINVAL);
    assert_int_equal(sk2_registration_depth_to_color(NULL, depth, &out), SK2_EINVAL);
    assert_int_equal(sk2_registration_depth_to_color(reg, depth, NULL), SK2_EINVAL);
    assert_int_equal(sk2_registration_color_to_depth(reg, depth, gray, &out), SK2_EINVAL);
    assert_int_equal(sk2_registration_color_to_depth(reg, depth, NULL, &out), SK2_EINVAL);
    assert_int_equal(sk2_registration_color_to_depth(reg, small, color, &out), SK2_EINVAL);
    assert_null(out);
    sk2_frame_destroy(&small);
    sk2_frame_destroy(&gray);
    sk2_frame_destroy(&depth);
    sk2_frame_destroy(&color);
    sk2_registration_destroy(&reg);
}

static void test_pose_check_says_what_is_wrong(void **state)
{
    (void)state;
    sk2_pose_t pose;
    char why[256];
    sk2_pose_identity(&pose);
    assert_int_equal(sk2_pose_check(&pose, why, sizeof why), 0);
    pose.rotation[8] = -1; /* a mirror */
    assert_int_equal(sk2_pose_check(&pose, why, sizeof why), SK2_EINVAL);
    assert_non_null(strstr(why, "determinant"));
    sk2_pose_identity(&pose);
    pose.rotation[1] = 0.1;
    assert_int_equal(sk2_pose_check(&pose, why, sizeof why), SK2_EINVAL);
    assert_non_null(strstr(why, "orthonormal"));
    sk2_pose_identity(&pose);
    pose.translation[1] = NAN;
    assert_int_equal(sk2_pose_check(&pose, why, sizeof why), SK2_EINVAL);
    assert_non_null(strstr(why, "translation[1]"));
    sk2_pose_identity(&pose);
    pose.translation[0] = 1001;
    assert_int_equal(sk2_pose_check(&pose, NULL, 0), SK2_EINVAL);
    pose.translation[0] = 999;
    assert_int_equal(sk2_pose_check(&pose, NULL, 0), 0);
    sk2_extrinsics_t e = s_extrinsics();
    assert_int_equal(sk2_extrinsics_check(&e, why, sizeof why), 0);
    e.translation[0] = 2;
    assert_int_equal(sk2_extrinsics_check(&e, why, sizeof why), SK2_EINVAL);
}

static void test_pose_parse_is_strict(void **state)
{
    (void)state;
    sk2_pose_t pose, untouched;
    char why[256];
    const char *matrix = "{\"rotation\": [0, -1, 0, 1, 0, 0, 0, 0, 1], "
                         "\"translation\": [1.5, -0.25, 2]}";
    assert_int_equal(sk2_pose_parse(matrix, strlen(matrix), &pose, why, sizeof why), 0);
    assert_true(pose.rotation[1] == -1 && pose.rotation[3] == 1 && pose.rotation[8] == 1);
    assert_true(pose.translation[0] == 1.5 && pose.translation[1] == -0.25);
    /* The same rotation (90 degrees about z) as a quaternion w, x, y, z. */
    const char *quaternion = "{\"translation\": [0, 0, 0], \"rotation\": [0.70710678, 0, 0, "
                             "0.70710678]}";
    sk2_pose_t q;
    assert_int_equal(sk2_pose_parse(quaternion, strlen(quaternion), &q, why, sizeof why), 0);
    for (int i = 0; i < 9; i++)
        assert_true(fabs(q.rotation[i] - pose.rotation[i]) < 1e-7);
    /* Round trip. */
    char *text = sk2_pose_to_json(&pose);
    assert_non_null(text);
    sk2_pose_t back;
    assert_int_equal(sk2_pose_parse(text, strlen(text), &back, why, sizeof why), 0);
    assert_memory_equal(&back, &pose, sizeof pose);
    free(text);

    static const char *const bad[] = {
        "",
        "[]",
        "{\"rotation\": [1, 0, 0, 0, 1, 0, 0, 0, 1]}",
        "{\"rotation\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"translation\": [0, 0, 0], \"x\": 1}",
        "{\"rotation\": [1, 0, 0, 0, 1, 0, 0, 0], \"translation\": [0, 0, 0]}",
        "{\"rotation\": [1, 0, 0, 0, 1, 0, 0, 0, \"1\"], \"translation\": [0, 0, 0]}",
        "{\"rotation\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"translation\": [0, 0]}",
        "{\"rotation\": [1, 0, 0, 0, 1, 0, 0, 0, 1], \"translation\": [0, 0, 1e4]}",
        "{\"rotation\": [2, 0, 0, 0, 1, 0, 0, 0, 1], \"translation\": [0, 0, 0]}",
        "{\"rotation\": [0.9, 0, 0, 0], \"translation\": [0, 0, 0]}",
        "{\"rotation\": [1, 0, 0, 0], \"translation\": [0, 0, 0], \"rotation\": [1, 0, 0, 0]}",
        "{\"rotation\": [1, 0, 0, 0], \"translation\": [0, 0, 0]} trailing",
    };
    memset(&untouched, 0x5a, sizeof untouched);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sk2_pose_t p = untouched;
        why[0] = '\0';
        assert_int_equal(sk2_pose_parse(bad[i], strlen(bad[i]), &p, why, sizeof why), SK2_EINVAL);
        assert_true(why[0] != '\0');
        assert_memory_equal(&p, &untouched, sizeof p);
    }
    char *long_text = malloc(SK2_POSE_TEXT_MAX + 2);
    assert_non_null(long_text);
    memset(long_text, ' ', SK2_POSE_TEXT_MAX + 1);
    long_text[SK2_POSE_TEXT_MAX + 1] = '\0';
    assert_int_equal(sk2_pose_parse(long_text, SK2_POSE_TEXT_MAX + 1, &pose, why, sizeof why),
                     SK2_ELIMIT);
    free(long_text);
}

static void test_pose_apply_moves_points_into_the_world(void **state)
{
    (void)state;
    sk2_pose_t pose = {.rotation = {0, -1, 0, 1, 0, 0, 0, 0, 1}, .translation = {1, 2, 3}};
    float xyz[6] = {1, 0, 0, 0, 0, 2};
    sk2_pose_apply(&pose, xyz, 2);
    const float want[6] = {1, 3, 3, 1, 2, 5};
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(xyz[i] - want[i]) < 1e-6f);
}

/* Recordings keep where a device was: the writer checks pose and extrinsics, the reader gives
 * them back, and a device written without them has neither. */
static void test_recordings_keep_pose_and_extrinsics(void **state)
{
    (void)state;
    char path[] = "/tmp/sk2-test-registration-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sk2_stream_info_t depth = {.kind = SK2_STREAM_DEPTH,
                               .format = SK2_PIXEL_DEPTH_MM16,
                               .width = DW,
                               .height = DH,
                               .fps = 30,
                               .depth_unit_m = 0.001,
                               .has_intrinsics = true,
                               .intrinsics = s_depth_k};
    sk2_pose_t pose = {.rotation = {0, -1, 0, 1, 0, 0, 0, 0, 1}, .translation = {1, 2, 3}};
    sk2_pose_t mirror = pose;
    mirror.rotation[8] = -1;
    sk2_extrinsics_t e = s_extrinsics();
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    assert_int_equal(sk2_recording_writer_open(w, path), 0);
    size_t index = 9;
    assert_int_equal(sk2_recording_writer_add_device_placed(w, "a", "", "mock", &depth, 1, &mirror,
                                                            NULL, &index),
                     SK2_EINVAL);
    assert_int_equal(index, 9);
    assert_int_equal(
        sk2_recording_writer_add_device_placed(w, "a", "", "mock", &depth, 1, &pose, &e, &index),
        0);
    assert_int_equal(index, 0);
    assert_int_equal(sk2_recording_writer_add_device(w, "b", "", "mock", &depth, 1, &index), 0);
    sk2_frame_t *frame = s_scene();
    for (size_t d = 0; d < 2; d++)
        assert_int_equal(sk2_recording_writer_add_frame(w, d, frame, sk2_codec_find(SK2_CODEC_RVL)),
                         0);
    sk2_frame_destroy(&frame);
    assert_int_equal(sk2_recording_writer_close(w), 0);
    sk2_recording_writer_destroy(&w);

    sk2_recording_reader_t *r = sk2_recording_reader_new();
    assert_int_equal(sk2_recording_reader_open(r, path), 0);
    assert_int_equal(sk2_recording_reader_device_count(r), 2);
    sk2_pose_t got_pose;
    sk2_extrinsics_t got_e;
    assert_int_equal(sk2_recording_reader_device_pose(r, 0, &got_pose), 0);
    assert_int_equal(sk2_recording_reader_device_depth_to_color(r, 0, &got_e), 0);
    assert_memory_equal(&got_pose, &pose, sizeof pose);
    for (int i = 0; i < 9; i++)
        assert_true(fabs(got_e.rotation[i] - e.rotation[i]) < 1e-12);
    for (int i = 0; i < 3; i++)
        assert_true(fabs(got_e.translation[i] - e.translation[i]) < 1e-12);
    assert_int_equal(sk2_recording_reader_device_pose(r, 1, &got_pose), SK2_ENOTFOUND);
    assert_int_equal(sk2_recording_reader_device_depth_to_color(r, 1, &got_e), SK2_ENOTFOUND);
    assert_int_equal(sk2_recording_reader_device_pose(r, 2, &got_pose), SK2_ENOTFOUND);
    sk2_recording_reader_destroy(&r);

    /* A replay device serves them as its own. */
    sk2_device_t *replay = sk2_device_new("replay");
    assert_non_null(replay);
    assert_int_equal(sk2_device_set_replay_source(replay, path, 0), 0);
    assert_int_equal(sk2_device_open(replay), 0);
    assert_int_equal(sk2_device_pose(replay, &got_pose), 0);
    assert_memory_equal(&got_pose, &pose, sizeof pose);
    assert_int_equal(sk2_device_depth_to_color(replay, &got_e), 0);
    sk2_device_destroy(&replay);
    unlink(path);

    /* A mock says its colour camera shares the depth camera's place. */
    sk2_device_t *mock = sk2_device_new("mock");
    sk2_extrinsics_t identity;
    sk2_extrinsics_identity(&identity);
    assert_int_equal(sk2_device_open(mock), 0);
    assert_int_equal(sk2_device_depth_to_color(mock, &got_e), 0);
    assert_memory_equal(&got_e, &identity, sizeof identity);
    assert_int_equal(sk2_device_pose(mock, &got_pose), SK2_ENOTFOUND);
    assert_int_equal(sk2_device_set_pose(mock, &mirror), SK2_EINVAL);
    assert_int_equal(sk2_device_set_pose(mock, &pose), 0);
    assert_int_equal(sk2_device_pose(mock, &got_pose), 0);
    assert_int_equal(sk2_device_set_pose(mock, NULL), 0);
    assert_int_equal(sk2_device_pose(mock, &got_pose), SK2_ENOTFOUND);
    sk2_device_destroy(&mock);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_depth_to_color_matches_the_geometry),
        cmocka_unit_test(test_color_to_depth_samples_where_points_project),
        cmocka_unit_test(test_identity_gives_the_depth_back),
        cmocka_unit_test(test_registration_refuses_bad_arguments),
        cmocka_unit_test(test_pose_check_says_what_is_wrong),
        cmocka_unit_test(test_pose_parse_is_strict),
        cmocka_unit_test(test_pose_apply_moves_points_into_the_world),
        cmocka_unit_test(test_recordings_keep_pose_and_extrinsics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
