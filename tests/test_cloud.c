/* Point cloud files (sk2_cloud_write): the exact header of each format, the points in the
 * body, ASCII and binary holding the same floats, the limits and every refused argument
 * leaving the stream untouched, write errors, and deprojection at the corners of a real lens.
 * The formats' own readers (open3d, PCL) judge the files in tests/cli/test_cloud_export_cli.py. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sk2/sk2.h"

/* A 4 x 3 depth frame with readings at three pixels, and a pinhole model without distortion
 * that makes their points easy to write down. */
static const sk2_intrinsics_t s_pinhole = {.fx = 100, .fy = 200, .cx = 2, .cy = 1};

static sk2_frame_t *s_small_frame(void)
{
    sk2_frame_t *depth = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4, 3);
    assert_non_null(depth);
    uint16_t *px = sk2_frame_data16(depth);
    memset(px, 0, 4 * 3 * 2);
    px[0] = 1000;         /* (0, 0): x = -0.02, y = -0.005, z = 1 */
    px[1 * 4 + 2] = 2000; /* the principal point: (0, 0, 2) */
    px[2 * 4 + 3] = 500;  /* (3, 2): x = 0.005, y = 0.0025, z = 0.5 */
    return depth;
}

static const float s_small_points[3][3] = {
    {-0.02f, -0.005f, 1.0f}, {0.0f, 0.0f, 2.0f}, {0.005f, 0.0025f, 0.5f}};

/* Writes the cloud into memory; returns sk2_cloud_write's code, the bytes in *text (caller
 * frees) and their count in *size. */
static int s_write(const sk2_frame_t *depth, const sk2_intrinsics_t *k, double unit_m,
                   sk2_cloud_format_t format, bool is_ascii, char **text, size_t *size,
                   size_t *points)
{
    FILE *out = open_memstream(text, size);
    assert_non_null(out);
    int rc = sk2_cloud_write(out, depth, k, unit_m, format, is_ascii, points);
    assert_int_equal(fclose(out), 0);
    return rc;
}

/* The bytes after the header's last line, and checks the header is exactly `header`. */
static const char *s_body(const char *text, size_t size, const char *header)
{
    size_t n = strlen(header);
    assert_true(size >= n);
    assert_memory_equal(text, header, n);
    return text + n;
}

static void s_assert_binary_points(const char *body, size_t body_size)
{
    assert_int_equal(body_size, sizeof s_small_points);
    /* The host is little-endian here (x86, ARM): the bytes are the floats themselves. */
    float got[3][3];
    memcpy(got, body, sizeof got);
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 3; c++)
            assert_true(got[i][c] == s_small_points[i][c]);
}

static void test_a_ply_file_is_its_header_then_the_points_in_raster_order(void **state)
{
    (void)state;
    sk2_frame_t *depth = s_small_frame();
    char *text = NULL;
    size_t size = 0, points = 99;
    assert_int_equal(s_write(depth, &s_pinhole, 0.001, SK2_CLOUD_PLY, false, &text, &size, &points),
                     0);
    assert_int_equal(points, 3);
    const char *body = s_body(text, size,
                              "ply\n"
                              "format binary_little_endian 1.0\n"
                              "comment written by sk2: depth camera frame, metres, x right y "
                              "down z forward\n"
                              "element vertex 3\n"
                              "property float x\n"
                              "property float y\n"
                              "property float z\n"
                              "end_header\n");
    s_assert_binary_points(body, size - (size_t)(body - text));
    free(text);
    sk2_frame_destroy(&depth);
}

static void test_a_pcd_file_names_every_field_of_its_header(void **state)
{
    (void)state;
    sk2_frame_t *depth = s_small_frame();
    char *text = NULL;
    size_t size = 0, points = 0;
    assert_int_equal(s_write(depth, &s_pinhole, 0.001, SK2_CLOUD_PCD, false, &text, &size, &points),
                     0);
    assert_int_equal(points, 3);
    const char *body = s_body(text, size,
                              "# .PCD v0.7 - Point Cloud Data file format (written by sk2: "
                              "depth camera frame, metres)\n"
                              "VERSION 0.7\n"
                              "FIELDS x y z\n"
                              "SIZE 4 4 4\n"
                              "TYPE F F F\n"
                              "COUNT 1 1 1\n"
                              "WIDTH 3\n"
                              "HEIGHT 1\n"
                              "VIEWPOINT 0 0 0 1 0 0 0\n"
                              "POINTS 3\n"
                              "DATA binary\n");
    s_assert_binary_points(body, size - (size_t)(body - text));
    free(text);
    sk2_frame_destroy(&depth);
}

/* ASCII gives each float nine significant digits: read back, they are the same floats. */
static void test_ascii_files_hold_the_same_floats_as_binary_ones(void **state)
{
    (void)state;
    sk2_frame_t *depth = s_small_frame();
    const char *headers[] = {"end_header\n", "DATA ascii\n"};
    for (int f = 0; f < 2; f++) {
        char *text = NULL;
        size_t size = 0, points = 0;
        assert_int_equal(s_write(depth, &s_pinhole, 0.001, f ? SK2_CLOUD_PCD : SK2_CLOUD_PLY, true,
                                 &text, &size, &points),
                         0);
        assert_int_equal(points, 3);
        assert_non_null(strstr(text, f ? "DATA ascii\n" : "format ascii 1.0\n"));
        const char *body = strstr(text, headers[f]) + strlen(headers[f]);
        for (int i = 0; i < 3; i++) {
            float p[3];
            int used = 0;
            assert_int_equal(sscanf(body, "%f %f %f\n%n", &p[0], &p[1], &p[2], &used), 3);
            for (int c = 0; c < 3; c++)
                assert_true(p[c] == s_small_points[i][c]);
            body += used;
        }
        assert_int_equal(*body, '\0');
        free(text);
    }
    sk2_frame_destroy(&depth);
}

static void test_a_frame_without_readings_is_an_empty_cloud(void **state)
{
    (void)state;
    sk2_frame_t *depth = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 8, 8);
    memset(sk2_frame_data16(depth), 0, 8 * 8 * 2);
    char *text = NULL;
    size_t size = 0, points = 99;
    assert_int_equal(s_write(depth, &s_pinhole, 0.001, SK2_CLOUD_PCD, false, &text, &size, &points),
                     0);
    assert_int_equal(points, 0);
    assert_non_null(strstr(text, "\nWIDTH 0\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 0\n"));
    assert_true(size >= 11 && memcmp(text + size - 12, "DATA binary\n", 12) == 0);
    free(text);
    sk2_frame_destroy(&depth);
}

/* Refused arguments write nothing at all. */
static void test_bad_arguments_are_refused_and_nothing_is_written(void **state)
{
    (void)state;
    sk2_frame_t *depth = s_small_frame();
    sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 4, 3);
    sk2_frame_t *color = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 4, 3);
    sk2_intrinsics_t no_focal = s_pinhole, nan_centre = s_pinhole, inf_k1 = s_pinhole;
    no_focal.fy = 0;
    nan_centre.cx = NAN;
    inf_k1.k1 = INFINITY;
    const struct {
        const sk2_frame_t *frame;
        const sk2_intrinsics_t *k;
        double unit_m;
        int format;
    } cases[] = {
        {NULL, &s_pinhole, 0.001, SK2_CLOUD_PLY},
        {depth, NULL, 0.001, SK2_CLOUD_PLY},
        {ir, &s_pinhole, 0.001, SK2_CLOUD_PLY},
        {color, &s_pinhole, 0.001, SK2_CLOUD_PCD},
        {depth, &no_focal, 0.001, SK2_CLOUD_PLY},
        {depth, &nan_centre, 0.001, SK2_CLOUD_PCD},
        {depth, &inf_k1, 0.001, SK2_CLOUD_PLY},
        {depth, &s_pinhole, 0, SK2_CLOUD_PLY},
        {depth, &s_pinhole, -0.001, SK2_CLOUD_PCD},
        {depth, &s_pinhole, 1e-7, SK2_CLOUD_PLY},
        {depth, &s_pinhole, 1.5, SK2_CLOUD_PCD},
        {depth, &s_pinhole, NAN, SK2_CLOUD_PLY},
        {depth, &s_pinhole, 0.001, 2},
        {depth, &s_pinhole, 0.001, -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *text = NULL;
        size_t size = 99, points = 99;
        int rc = s_write(cases[i].frame, cases[i].k, cases[i].unit_m,
                         (sk2_cloud_format_t)cases[i].format, false, &text, &size, &points);
        if (rc != SK2_EINVAL || size != 0 || points != 0)
            fail_msg("case %zu: rc %d, %zu bytes, %zu points", i, rc, size, points);
        free(text);
    }
    assert_int_equal(sk2_cloud_write(NULL, depth, &s_pinhole, 0.001, SK2_CLOUD_PLY, false, NULL),
                     SK2_EINVAL);
    sk2_frame_destroy(&color);
    sk2_frame_destroy(&ir);
    sk2_frame_destroy(&depth);
}

/* One point more than the limit is refused before anything is allocated or written. */
static void test_a_cloud_over_the_point_limit_is_refused(void **state)
{
    (void)state;
    uint32_t width = 4096, height = SK2_CLOUD_MAX_POINTS / 4096 + 1;
    sk2_frame_t *depth = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, height);
    assert_non_null(depth);
    uint16_t *px = sk2_frame_data16(depth);
    memset(px, 0, (size_t)width * height * 2);
    for (size_t i = 0; i <= SK2_CLOUD_MAX_POINTS; i++)
        px[i] = 1000;
    char *text = NULL;
    size_t size = 99, points = 99;
    assert_int_equal(s_write(depth, &s_pinhole, 0.001, SK2_CLOUD_PLY, false, &text, &size, &points),
                     SK2_ELIMIT);
    assert_int_equal(size, 0);
    free(text);
    /* At the limit exactly, it is written. */
    px[SK2_CLOUD_MAX_POINTS] = 0;
    assert_int_equal(s_write(depth, &s_pinhole, 0.001, SK2_CLOUD_PLY, false, &text, &size, &points),
                     0);
    assert_int_equal(points, SK2_CLOUD_MAX_POINTS);
    free(text);
    sk2_frame_destroy(&depth);
}

static void test_write_errors_are_reported(void **state)
{
    (void)state;
    sk2_frame_t *depth = s_small_frame();
    /* A stream open for reading takes no writes; /dev/full takes them until the flush. */
    FILE *read_only = fopen("/dev/null", "r");
    assert_non_null(read_only);
    assert_int_equal(
        sk2_cloud_write(read_only, depth, &s_pinhole, 0.001, SK2_CLOUD_PLY, false, NULL), SK2_ESYS);
    fclose(read_only);
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        size_t points = 99;
        assert_int_equal(
            sk2_cloud_write(full, depth, &s_pinhole, 0.001, SK2_CLOUD_PCD, true, &points),
            SK2_ESYS);
        assert_int_equal(points, 0);
        fclose(full);
    }
    sk2_frame_destroy(&depth);
}

static void test_formats_are_named_ply_and_pcd(void **state)
{
    (void)state;
    sk2_cloud_format_t format = SK2_CLOUD_PCD;
    assert_int_equal(sk2_cloud_format_parse("ply", &format), 0);
    assert_int_equal(format, SK2_CLOUD_PLY);
    assert_int_equal(sk2_cloud_format_parse("pcd", &format), 0);
    assert_int_equal(format, SK2_CLOUD_PCD);
    assert_int_equal(sk2_cloud_format_parse("PLY", &format), SK2_EINVAL);
    assert_int_equal(sk2_cloud_format_parse("pcd ", &format), SK2_EINVAL);
    assert_int_equal(sk2_cloud_format_parse(NULL, &format), SK2_EINVAL);
    assert_int_equal(sk2_cloud_format_parse("ply", NULL), SK2_EINVAL);
    assert_string_equal(sk2_cloud_format_extension(SK2_CLOUD_PLY), "ply");
    assert_string_equal(sk2_cloud_format_extension(SK2_CLOUD_PCD), "pcd");
    assert_null(sk2_cloud_format_extension((sk2_cloud_format_t)7));
}

/* The corners of a Kinect v2's depth lens (the mock's model) are where inverting the
 * distortion converges slowest: five fixed steps left them 0.07 pixels off. Each corner's point,
 * projected through the lens again, must land on its pixel. */
static void test_points_at_the_corners_of_a_real_lens_project_back_onto_their_pixels(void **state)
{
    (void)state;
    const sk2_intrinsics_t k = {.fx = 365.456,
                                .fy = 365.456,
                                .cx = 254.878,
                                .cy = 205.395,
                                .k1 = 0.0905474,
                                .k2 = -0.26819,
                                .k3 = 0.0950862};
    sk2_frame_t *depth = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 512, 424);
    uint16_t *px = sk2_frame_data16(depth);
    memset(px, 0, 512 * 424 * 2);
    const uint32_t corners[4][2] = {{0, 0}, {511, 0}, {0, 423}, {511, 423}};
    for (int i = 0; i < 4; i++)
        px[corners[i][1] * 512 + corners[i][0]] = 1000;
    float xyz[4 * 3];
    assert_int_equal(sk2_frame_to_points(depth, &k, 0.001, xyz, 4), 4);
    for (int i = 0; i < 4; i++) {
        double x = xyz[3 * i] / xyz[3 * i + 2], y = xyz[3 * i + 1] / xyz[3 * i + 2];
        double r2 = x * x + y * y, radial = 1 + r2 * (k.k1 + r2 * (k.k2 + r2 * k.k3));
        double u = x * radial * k.fx + k.cx, v = y * radial * k.fy + k.cy;
        if (fabs(u - corners[i][0]) > 0.01 || fabs(v - corners[i][1]) > 0.01)
            fail_msg("corner (%u, %u) projects back to (%.4f, %.4f)", corners[i][0], corners[i][1],
                     u, v);
    }
    sk2_frame_destroy(&depth);
}

/* Coloured clouds (sk2_cloud_write_colored): a BGRA image of the depth size gives each point
 * its colour; a pixel with alpha 0 keeps its point, black; the points are those of the
 * uncoloured cloud. PLY: 15 bytes a point, x y z then red, green, blue. PCD: 16, x y z then
 * the rgb float whose little-endian bytes are B, G, R, 0. ASCII PCD writes that float. */
static sk2_frame_t *s_small_colors(void)
{
    sk2_frame_t *color = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_BGRA32, 4, 3);
    assert_non_null(color);
    uint8_t *px = sk2_frame_data(color);
    memset(px, 0, 4 * 3 * 4);
    const uint8_t first[4] = {0x30, 0x20, 0xf0, 255}; /* B G R A: red 0xf0, green 0x20 */
    const uint8_t hidden[4] = {9, 9, 9, 0};           /* alpha 0: no colour seen */
    const uint8_t last[4] = {0x03, 0x02, 0x01, 255};
    memcpy(&px[0], first, 4);
    memcpy(&px[(1 * 4 + 2) * 4], hidden, 4);
    memcpy(&px[(2 * 4 + 3) * 4], last, 4);
    return color;
}

static int s_write_colored(const sk2_frame_t *depth, const sk2_frame_t *color,
                           sk2_cloud_format_t format, bool is_ascii, char **text, size_t *size,
                           size_t *points)
{
    FILE *out = open_memstream(text, size);
    assert_non_null(out);
    int rc =
        sk2_cloud_write_colored(out, depth, &s_pinhole, 0.001, color, format, is_ascii, points);
    assert_int_equal(fclose(out), 0);
    return rc;
}

static void test_colored_clouds_carry_each_pixels_colour_and_keep_every_point(void **state)
{
    (void)state;
    sk2_frame_t *depth = s_small_frame(), *color = s_small_colors();
    char *text = NULL;
    size_t size = 0, points = 0;
    assert_int_equal(s_write_colored(depth, color, SK2_CLOUD_PLY, false, &text, &size, &points), 0);
    assert_int_equal(points, 3);
    const char *body = strstr(text, "end_header\n");
    assert_non_null(body);
    assert_non_null(strstr(text, "property float z\nproperty uchar red\nproperty uchar green\n"
                                 "property uchar blue\nend_header\n"));
    body += strlen("end_header\n");
    assert_int_equal(size - (size_t)(body - text), 3 * 15);
    const uint8_t ply_colors[3][3] = {{0xf0, 0x20, 0x30}, {0, 0, 0}, {0x01, 0x02, 0x03}};
    for (int i = 0; i < 3; i++) {
        float xyz[3];
        memcpy(xyz, body + 15 * i, 12);
        for (int a = 0; a < 3; a++)
            assert_true(fabsf(xyz[a] - s_small_points[i][a]) < 1e-7f);
        assert_memory_equal(body + 15 * i + 12, ply_colors[i], 3);
    }
    free(text);

    text = NULL;
    assert_int_equal(s_write_colored(depth, color, SK2_CLOUD_PCD, false, &text, &size, &points), 0);
    assert_non_null(strstr(text, "FIELDS x y z rgb\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"));
    body = strstr(text, "DATA binary\n") + strlen("DATA binary\n");
    assert_int_equal(size - (size_t)(body - text), 3 * 16);
    const uint8_t pcd_colors[3][4] = {{0x30, 0x20, 0xf0, 0}, {0, 0, 0, 0}, {0x03, 0x02, 0x01, 0}};
    for (int i = 0; i < 3; i++)
        assert_memory_equal(body + 16 * i + 12, pcd_colors[i], 4);
    free(text);

    /* ASCII PCD: the float of those bits, which reads back to them. */
    text = NULL;
    assert_int_equal(s_write_colored(depth, color, SK2_CLOUD_PCD, true, &text, &size, &points), 0);
    body = strstr(text, "DATA ascii\n") + strlen("DATA ascii\n");
    float x, y, z, rgb;
    assert_int_equal(sscanf(body, "%g %g %g %g", &x, &y, &z, &rgb), 4);
    uint32_t bits;
    memcpy(&bits, &rgb, 4);
    assert_int_equal(bits, 0xf02030u);
    free(text);
    text = NULL;
    assert_int_equal(s_write_colored(depth, color, SK2_CLOUD_PLY, true, &text, &size, &points), 0);
    assert_non_null(strstr(text, "end_header\n-0.0199999996 -0.00499999989 1 240 32 48\n"));
    free(text);
    sk2_frame_destroy(&color);
    sk2_frame_destroy(&depth);
}

static void test_a_colour_image_of_another_size_or_format_is_refused(void **state)
{
    (void)state;
    sk2_frame_t *depth = s_small_frame();
    sk2_frame_t *wrong_size = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_BGRA32, 4, 4);
    sk2_frame_t *wrong_format = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 4, 3);
    sk2_frame_t *bad[] = {wrong_size, wrong_format};
    for (size_t i = 0; i < 2; i++) {
        char *text = NULL;
        size_t size = 0, points = 7;
        assert_int_equal(
            s_write_colored(depth, bad[i], SK2_CLOUD_PLY, false, &text, &size, &points),
            SK2_EINVAL);
        assert_int_equal(size, 0);
        assert_int_equal(points, 0);
        free(text);
    }
    sk2_frame_destroy(&wrong_size);
    sk2_frame_destroy(&wrong_format);
    sk2_frame_destroy(&depth);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_ply_file_is_its_header_then_the_points_in_raster_order),
        cmocka_unit_test(test_a_pcd_file_names_every_field_of_its_header),
        cmocka_unit_test(test_ascii_files_hold_the_same_floats_as_binary_ones),
        cmocka_unit_test(test_a_frame_without_readings_is_an_empty_cloud),
        cmocka_unit_test(test_bad_arguments_are_refused_and_nothing_is_written),
        cmocka_unit_test(test_a_cloud_over_the_point_limit_is_refused),
        cmocka_unit_test(test_write_errors_are_reported),
        cmocka_unit_test(test_formats_are_named_ply_and_pcd),
        cmocka_unit_test(test_points_at_the_corners_of_a_real_lens_project_back_onto_their_pixels),
        cmocka_unit_test(test_colored_clouds_carry_each_pixels_colour_and_keep_every_point),
        cmocka_unit_test(test_a_colour_image_of_another_size_or_format_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
