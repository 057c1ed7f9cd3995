/* ROS 2 CDR serialisation (src/ros2/cdr.c) against byte vectors worked out by hand from the
 * CDR rules, and the MCAP writer's framing (src/ros2/mcap.c) and refusals. The reference
 * readers check whole exports in tests/mcap; these pin the bytes and the limits. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "ros2/cdr.h"
#include "ros2/mcap.h"
#include "sk2/cloud.h"
#include "sk2/codec.h"
#include "sk2/sk2.h"

/* CompressedImage, stamp 1.5 s, frame "f", format "jpeg", two bytes. Offsets count from after
 * the encapsulation: sec at 0, nanosec at 4, frame_id (length 2) at 8, 2 bytes of padding to
 * 16 for format's length, "jpeg\0" at 20..24, 3 bytes of padding to 28 for the data count. */
static void test_compressed_image_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x00, 0x01, 0x00, 0x00,                         /* CDR little-endian */
        0x01, 0x00, 0x00, 0x00, 0x00, 0x65, 0xcd, 0x1d, /* sec 1, nanosec 500000000 */
        0x02, 0x00, 0x00, 0x00, 'f',  0x00, 0x00, 0x00, /* "f", padding */
        0x05, 0x00, 0x00, 0x00, 'j',  'p',  'e',  'g',  0x00, 0x00, 0x00, 0x00, /* "jpeg" pad */
        0x02, 0x00, 0x00, 0x00, 0xaa, 0xbb};
    sk2_cdr_t cdr = {0};
    sk2_ros2_header_t header = {1500000, "f"};
    const uint8_t data[] = {0xaa, 0xbb};
    assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &header, "jpeg", data, 2), 0);
    assert_int_equal(cdr.size, sizeof want);
    assert_memory_equal(cdr.data, want, sizeof want);
    sk2_cdr_free(&cdr);
}

/* Image of a 2x1 depth frame (0x0102, 0xffff), stamp 0, frame "ab": "ab\0" ends at 15, height
 * at 16, width 20, "16UC1\0" 24..33, is_bigendian at 34, step at 36, count at 40, pixels at
 * 44 little-endian. */
static void test_image_bytes(void **state)
{
    (void)state;
    static const uint8_t want[] = {
        0x00, 0x01, 0x00, 0x00, 0,    0,    0,    0,    0,   0,
        0,    0,                                                   /* encapsulation, stamp 0 */
        0x03, 0x00, 0x00, 0x00, 'a',  'b',  0x00, 0x00,            /* "ab", padding */
        0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,            /* height 1, width 2 */
        0x06, 0x00, 0x00, 0x00, '1',  '6',  'U',  'C',  '1', 0x00, /* "16UC1" */
        0x00, 0x00,                                                /* is_bigendian 0, padding */
        0x04, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00,            /* step 4, 4 bytes */
        0x02, 0x01, 0xff, 0xff};
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 2, 1);
    assert_non_null(frame);
    sk2_frame_data16(frame)[0] = 0x0102;
    sk2_frame_data16(frame)[1] = 0xffff;
    sk2_cdr_t cdr = {0};
    sk2_ros2_header_t header = {0, "ab"};
    assert_int_equal(sk2_ros2_image_encode(&cdr, &header, frame), 0);
    assert_int_equal(cdr.size, sizeof want);
    assert_memory_equal(cdr.data, want, sizeof want);
    /* IR is mono16, the same layout. */
    sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 2, 1);
    assert_int_equal(sk2_ros2_image_encode(&cdr, &header, ir), 0);
    assert_memory_equal(cdr.data + 28, "\x07\x00\x00\x00mono16", 10);
    sk2_frame_destroy(&ir);
    sk2_frame_destroy(&frame);
    sk2_cdr_free(&cdr);
}

static double s_f64_at(const sk2_cdr_t *cdr, size_t offset)
{
    uint64_t bits = 0;
    for (int i = 7; i >= 0; i--)
        bits = bits << 8 | cdr->data[4 + offset + (size_t)i];
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static uint32_t s_u32_at(const sk2_cdr_t *cdr, size_t offset)
{
    const uint8_t *p = cdr->data + 4 + offset;
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* CameraInfo, frame "c": height at 16, width 20, "plumb_bob\0" 24..37, d's count at 40, then
 * padding to 48 where the float64s start (8-aligned), k at 88, r at 160, p at 232, binning at
 * 328 and 332, roi 336..352: 353 bytes after the encapsulation. */
static void test_camera_info_layout(void **state)
{
    (void)state;
    sk2_intrinsics_t in = {.fx = 365.5,
                           .fy = 366.25,
                           .cx = 254.875,
                           .cy = 205.5,
                           .k1 = 0.25,
                           .k2 = -0.5,
                           .k3 = 0.125,
                           .p1 = 1e-3,
                           .p2 = -2e-3};
    sk2_cdr_t cdr = {0};
    sk2_ros2_header_t header = {0, "c"};
    assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &header, 512, 424, &in), 0);
    assert_int_equal(cdr.size, 4 + 353);
    assert_int_equal(s_u32_at(&cdr, 16), 424);
    assert_int_equal(s_u32_at(&cdr, 20), 512);
    assert_int_equal(s_u32_at(&cdr, 24), 10);
    assert_memory_equal(cdr.data + 4 + 28, "plumb_bob", 10);
    assert_int_equal(s_u32_at(&cdr, 40), 5);
    assert_int_equal(s_u32_at(&cdr, 44), 0); /* padding to 8 */
    const double d[5] = {0.25, -0.5, 1e-3, -2e-3, 0.125};
    for (int i = 0; i < 5; i++)
        assert_true(s_f64_at(&cdr, 48 + 8 * (size_t)i) == d[i]);
    const double k[9] = {365.5, 0, 254.875, 0, 366.25, 205.5, 0, 0, 1};
    for (int i = 0; i < 9; i++)
        assert_true(s_f64_at(&cdr, 88 + 8 * (size_t)i) == k[i]);
    for (int i = 0; i < 9; i++)
        assert_true(s_f64_at(&cdr, 160 + 8 * (size_t)i) == (i % 4 == 0 ? 1.0 : 0.0));
    const double p[12] = {365.5, 0, 254.875, 0, 0, 366.25, 205.5, 0, 0, 0, 1, 0};
    for (int i = 0; i < 12; i++)
        assert_true(s_f64_at(&cdr, 232 + 8 * (size_t)i) == p[i]);
    /* A model without distortion gives zeros. */
    sk2_intrinsics_t plain = {.fx = 1, .fy = 1, .cx = 0.5, .cy = 0.5};
    assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &header, 1, 1, &plain), 0);
    for (int i = 0; i < 5; i++)
        assert_true(s_f64_at(&cdr, 48 + 8 * (size_t)i) == 0.0);
    sk2_cdr_free(&cdr);
}

static void test_schemas(void **state)
{
    (void)state;
    assert_string_equal(sk2_ros2_type_name(SK2_ROS2_IMAGE), "sensor_msgs/msg/Image");
    assert_string_equal(sk2_ros2_type_name(SK2_ROS2_CAMERA_INFO), "sensor_msgs/msg/CameraInfo");
    assert_null(sk2_ros2_type_name(SK2_ROS2_TYPE_COUNT));
    assert_null(sk2_ros2_schema((sk2_ros2_type_t)-1));
    const char *info = sk2_ros2_schema(SK2_ROS2_CAMERA_INFO);
    /* Each dependency once, after a separator line of 80 '='. */
    const char *sep =
        "\n================================================================================"
        "\nMSG: ";
    assert_non_null(strstr(info, "float64[9] k\n"));
    assert_non_null(strstr(info, "MSG: std_msgs/Header\n"));
    assert_non_null(strstr(info, "MSG: builtin_interfaces/Time\n"));
    assert_non_null(strstr(info, "MSG: sensor_msgs/RegionOfInterest\n"));
    int separators = 0;
    for (const char *p = info; (p = strstr(p, sep)); p++)
        separators++;
    assert_int_equal(separators, 3);
    assert_string_equal(sk2_ros2_type_name(SK2_ROS2_POINT_CLOUD2), "sensor_msgs/msg/PointCloud2");
    const char *cloud = sk2_ros2_schema(SK2_ROS2_POINT_CLOUD2);
    assert_true(strncmp(cloud, "std_msgs/Header header\nuint32 height\nuint32 width\n", 50) == 0);
    assert_non_null(strstr(cloud,
                           "\nsensor_msgs/PointField[] fields\nbool is_bigendian\n"
                           "uint32 point_step\nuint32 row_step\nuint8[] data\nbool is_dense\n"));
    assert_non_null(strstr(cloud, sep));
    assert_non_null(strstr(cloud, "MSG: sensor_msgs/PointField\n"));
    assert_non_null(strstr(cloud, "uint8 FLOAT32 = 7\nuint8 FLOAT64 = 8\nstring name\nuint32 "
                                  "offset\nuint8 datatype\nuint32 count\n"));
    assert_string_equal(sk2_ros2_encoding(SK2_PIXEL_DEPTH_MM16), "16UC1");
    assert_string_equal(sk2_ros2_encoding(SK2_PIXEL_GRAY16), "mono16");
    assert_null(sk2_ros2_encoding((sk2_pixel_format_t)99));
}

static void test_cdr_refuses(void **state)
{
    (void)state;
    sk2_cdr_t cdr = {0};
    const uint8_t data[1] = {1};
    char long_id[SK2_ROS2_MAX_NAME + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    sk2_ros2_header_t ok = {0, "f"};
    sk2_ros2_header_t bad[] = {
        {0, NULL}, {0, ""}, {0, long_id}, {-1, "f"}, {((int64_t)INT32_MAX + 1) * 1000000, "f"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &bad[i], "jpeg", data, 1),
                         SK2_EINVAL);
    assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, NULL, "jpeg", data, 1), SK2_EINVAL);
    assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &ok, "", data, 1), SK2_EINVAL);
    assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &ok, NULL, data, 1), SK2_EINVAL);
    assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &ok, "jpeg", data, 0), SK2_EINVAL);
    assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &ok, "jpeg", NULL, 1), SK2_EINVAL);
    assert_int_equal(
        sk2_ros2_compressed_image_encode(&cdr, &ok, "jpeg", data, (size_t)SK2_ROS2_MAX_DATA + 1),
        SK2_ELIMIT);
    assert_int_equal(sk2_ros2_image_encode(&cdr, &ok, NULL), SK2_EINVAL);
    sk2_intrinsics_t in = {.fx = 1, .fy = 1};
    assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &ok, 0, 1, &in), SK2_EINVAL);
    assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &ok, 1, 1, NULL), SK2_EINVAL);
    in.fx = 0;
    assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &ok, 1, 1, &in), SK2_EINVAL);
    in.fx = NAN;
    assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &ok, 1, 1, &in), SK2_EINVAL);
    /* The last good stamp: 2038-01-19. */
    sk2_ros2_header_t last = {(int64_t)INT32_MAX * 1000000 + 999999, "f"};
    assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &last, "jpeg", data, 1), 0);
    sk2_cdr_free(&cdr);
}

/* A reader of CDR written from the rules, for the messages below: offsets count from after the
 * 4-byte encapsulation, each primitive aligned to its size, and padding must be zeros. */
typedef struct {
    const sk2_cdr_t *cdr;
    size_t at;
} s_cursor_t;

static void s_align_to(s_cursor_t *c, size_t to)
{
    while (c->at % to) {
        assert_true(4 + c->at < c->cdr->size);
        assert_int_equal(c->cdr->data[4 + c->at], 0);
        c->at++;
    }
}

static uint32_t s_get_u32(s_cursor_t *c)
{
    s_align_to(c, 4);
    assert_true(4 + c->at + 4 <= c->cdr->size);
    uint32_t v = s_u32_at(c->cdr, c->at);
    c->at += 4;
    return v;
}

static uint8_t s_get_u8(s_cursor_t *c)
{
    assert_true(4 + c->at < c->cdr->size);
    return c->cdr->data[4 + c->at++];
}

static const char *s_get_string(s_cursor_t *c)
{
    uint32_t n = s_get_u32(c);
    assert_true(n >= 1 && 4 + c->at + n <= c->cdr->size);
    const char *text = (const char *)c->cdr->data + 4 + c->at;
    assert_int_equal(text[n - 1], '\0');
    assert_int_equal(strlen(text), n - 1);
    c->at += n;
    return text;
}

static const uint8_t *s_get_bytes(s_cursor_t *c, uint32_t *n)
{
    *n = s_get_u32(c);
    assert_true(4 + c->at + *n <= c->cdr->size);
    const uint8_t *p = c->cdr->data + 4 + c->at;
    c->at += *n;
    return p;
}

static float s_f32_le(const uint8_t *p)
{
    uint32_t bits =
        (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* Checks the encapsulation and the header; leaves the cursor after frame_id. */
static void s_check_header(s_cursor_t *c, const sk2_ros2_header_t *header)
{
    static const uint8_t encapsulation[4] = {0x00, 0x01, 0x00, 0x00};
    assert_true(c->cdr->size >= 4);
    assert_memory_equal(c->cdr->data, encapsulation, 4);
    c->at = 0;
    assert_int_equal(s_get_u32(c), (uint32_t)(header->stamp_us / 1000000));
    assert_int_equal(s_get_u32(c), (uint32_t)(header->stamp_us % 1000000) * 1000u);
    assert_string_equal(s_get_string(c), header->frame_id);
}

static void test_name_token(void **state)
{
    (void)state;
    char out[SK2_ROS2_TOKEN_MAX];
    sk2_ros2_name_token("cam-b", out, sizeof out);
    assert_string_equal(out, "cam_b");
    sk2_ros2_name_token("2x.y:Z9", out, sizeof out);
    assert_string_equal(out, "d2x_y_Z9");
    sk2_ros2_name_token("kinect_0", out, sizeof out);
    assert_string_equal(out, "kinect_0");
    sk2_ros2_name_token("\xc3\xa9t\xc3\xa9", out, sizeof out); /* "été": bytes, not letters */
    assert_string_equal(out, "__t__");
    sk2_ros2_name_token(NULL, out, sizeof out);
    assert_string_equal(out, "");
    /* The longest id, all digits, fits with its 'd'. */
    char id[SK2_DEVICE_ID_MAX + 1];
    memset(id, '7', SK2_DEVICE_ID_MAX);
    id[SK2_DEVICE_ID_MAX] = '\0';
    sk2_ros2_name_token(id, out, sizeof out);
    assert_int_equal(strlen(out), SK2_DEVICE_ID_MAX + 1);
    assert_int_equal(out[0], 'd');
    /* Small buffers cut the token and stay inside. */
    char small[4] = {'Z', 'Z', 'Z', 'Z'};
    sk2_ros2_name_token("2abc", small, 4);
    assert_string_equal(small, "d2a");
    sk2_ros2_name_token("2abc", small, 1);
    assert_int_equal(small[0], '\0');
    assert_int_equal(small[1], '2');
    small[0] = 'Z';
    sk2_ros2_name_token("abc", small, 0);
    assert_int_equal(small[0], 'Z');
}

/* A 4x3 depth frame with holes, the values in millimetres. */
static sk2_frame_t *s_depth_frame(void)
{
    static const uint16_t values[12] = {0, 1000, 1500, 0, 2000, 0, 750, 3000, 0, 0xffff, 1, 0};
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4, 3);
    assert_non_null(frame);
    memcpy(sk2_frame_data16(frame), values, sizeof values);
    return frame;
}

/* Reads a PointCloud2 and checks every field against what the test expects; returns the data. */
static const uint8_t *s_check_cloud(s_cursor_t *c, const sk2_ros2_header_t *header, uint32_t points)
{
    s_check_header(c, header);
    assert_int_equal(s_get_u32(c), 1);      /* height */
    assert_int_equal(s_get_u32(c), points); /* width */
    assert_int_equal(s_get_u32(c), 3);      /* fields */
    static const char *const names[3] = {"x", "y", "z"};
    for (uint32_t i = 0; i < 3; i++) {
        assert_string_equal(s_get_string(c), names[i]);
        assert_int_equal(s_get_u32(c), 4 * i); /* offset */
        assert_int_equal(s_get_u8(c), 7);      /* FLOAT32 */
        assert_int_equal(s_get_u32(c), 1);     /* count */
    }
    assert_int_equal(s_get_u8(c), 0);   /* is_bigendian */
    assert_int_equal(s_get_u32(c), 12); /* point_step */
    assert_int_equal(s_get_u32(c), 12 * points);
    uint32_t size;
    const uint8_t *data = s_get_bytes(c, &size);
    assert_int_equal(size, 12 * points);
    assert_int_equal(s_get_u8(c), 1); /* is_dense */
    assert_int_equal(4 + c->at, c->cdr->size);
    return data;
}

static void test_pointcloud2_layout(void **state)
{
    (void)state;
    sk2_frame_t *frame = s_depth_frame();
    const uint16_t *px = sk2_frame_cdata16(frame);
    uint32_t valid = 0;
    for (size_t i = 0; i < 12; i++)
        valid += px[i] != 0;
    sk2_intrinsics_t plain = {.fx = 2.0, .fy = 4.0, .cx = 1.5, .cy = 1.0};
    sk2_ros2_header_t header = {2500000, "cam_depth_optical_frame"};
    sk2_cdr_t cdr = {0};
    uint32_t points = 77;
    assert_int_equal(sk2_ros2_pointcloud2_encode(&cdr, &header, frame, &plain, 0.001, &points), 0);
    assert_int_equal(points, valid);
    s_cursor_t c = {&cdr, 0};
    const uint8_t *data = s_check_cloud(&c, &header, valid);
    /* Without distortion each point is the pinhole ray through its pixel, in raster order. */
    size_t n = 0;
    for (uint32_t v = 0; v < 3; v++)
        for (uint32_t u = 0; u < 4; u++) {
            uint16_t d = px[v * 4 + u];
            if (d == 0)
                continue;
            double z = d * 0.001;
            assert_float_equal(s_f32_le(data + 12 * n), (u - 1.5) / 2.0 * z, 1e-6);
            assert_float_equal(s_f32_le(data + 12 * n + 4), (v - 1.0) / 4.0 * z, 1e-6);
            assert_float_equal(s_f32_le(data + 12 * n + 8), z, 1e-6);
            n++;
        }
    assert_int_equal(n, valid);
    /* With distortion the points are sk2_frame_to_points', bit for bit. */
    sk2_intrinsics_t lens = {.fx = 2.0,
                             .fy = 4.0,
                             .cx = 1.5,
                             .cy = 1.0,
                             .k1 = 0.09,
                             .k2 = -0.27,
                             .k3 = 0.1,
                             .p1 = 1e-3,
                             .p2 = -2e-3};
    assert_int_equal(sk2_ros2_pointcloud2_encode(&cdr, &header, frame, &lens, 0.0005, &points), 0);
    data = s_check_cloud(&c, &header, valid);
    float xyz[36];
    assert_int_equal(sk2_frame_to_points(frame, &lens, 0.0005, xyz, 12), valid);
    for (size_t i = 0; i < 3 * valid; i++)
        assert_true(s_f32_le(data + 4 * i) == xyz[i]);
    /* A frame without any reading: an empty cloud. */
    memset(sk2_frame_data16(frame), 0, 24);
    assert_int_equal(sk2_ros2_pointcloud2_encode(&cdr, &header, frame, &plain, 0.001, NULL), 0);
    s_check_cloud(&c, &header, 0);
    sk2_frame_destroy(&frame);
    sk2_cdr_free(&cdr);
}

static void test_pointcloud2_refuses(void **state)
{
    (void)state;
    sk2_frame_t *frame = s_depth_frame();
    sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 4, 3);
    sk2_intrinsics_t ok = {.fx = 2.0, .fy = 4.0, .cx = 1.5, .cy = 1.0};
    sk2_ros2_header_t header = {0, "f"}, no_frame = {0, ""};
    sk2_cdr_t cdr = {0};
    uint32_t points = 77;
#define S_REFUSED(rc, ...)                                                                         \
    do {                                                                                           \
        points = 77;                                                                               \
        assert_int_equal(sk2_ros2_pointcloud2_encode(__VA_ARGS__, &points), rc);                   \
        assert_int_equal(points, 0);                                                               \
    } while (0)
    S_REFUSED(SK2_EINVAL, NULL, &header, frame, &ok, 0.001);
    S_REFUSED(SK2_EINVAL, &cdr, NULL, frame, &ok, 0.001);
    S_REFUSED(SK2_EINVAL, &cdr, &no_frame, frame, &ok, 0.001);
    S_REFUSED(SK2_EINVAL, &cdr, &header, NULL, &ok, 0.001);
    S_REFUSED(SK2_EINVAL, &cdr, &header, ir, &ok, 0.001);
    S_REFUSED(SK2_EINVAL, &cdr, &header, frame, NULL, 0.001);
    const double units[] = {0.0, -0.001, 1e-7, 1.5, NAN, INFINITY};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        S_REFUSED(SK2_EINVAL, &cdr, &header, frame, &ok, units[i]);
    sk2_intrinsics_t bad = ok;
    bad.fx = 0;
    S_REFUSED(SK2_EINVAL, &cdr, &header, frame, &bad, 0.001);
    bad = ok;
    bad.k1 = NAN;
    S_REFUSED(SK2_EINVAL, &cdr, &header, frame, &bad, 0.001);
    bad = ok;
    bad.cy = INFINITY;
    S_REFUSED(SK2_EINVAL, &cdr, &header, frame, &bad, 0.001);
    /* One point over the limit: 4096 x 2048 readings and one more row. */
    sk2_frame_t *big = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4096, 2049);
    assert_non_null(big);
    uint16_t *values = sk2_frame_data16(big);
    for (size_t i = 0; i < (size_t)4096 * 2049; i++)
        values[i] = 1000;
    S_REFUSED(SK2_ELIMIT, &cdr, &header, big, &ok, 0.001);
    /* With some holes it is within the limit again (the count is of readings, not pixels). */
    memset(values, 0, 4096 * 2);
    assert_int_equal(sk2_ros2_pointcloud2_encode(&cdr, &header, big, &ok, 0.001, &points), 0);
    assert_int_equal(points, SK2_CLOUD_MAX_POINTS);
    assert_int_equal(s_u32_at(&cdr, 20), SK2_CLOUD_MAX_POINTS); /* width, after "f" and height */
#undef S_REFUSED
    sk2_frame_destroy(&big);
    sk2_frame_destroy(&ir);
    sk2_frame_destroy(&frame);
    sk2_cdr_free(&cdr);
}

/* Reads a compressedDepth CompressedImage up to its data, checking the format and the 12-byte
 * ConfigHeader (format INV_DEPTH = 0, depthParam {0, 0}); returns what follows it. */
static const uint8_t *s_check_compressed_depth(s_cursor_t *c, const sk2_ros2_header_t *header,
                                               const char *format, uint32_t *size)
{
    s_check_header(c, header);
    assert_string_equal(s_get_string(c), format);
    uint32_t n;
    const uint8_t *data = s_get_bytes(c, &n);
    assert_int_equal(4 + c->at, c->cdr->size);
    assert_true(n > 12);
    /* ROS stores the enum as a host int and the floats as host floats: little-endian. */
    assert_int_equal(data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24, 0);
    assert_true(s_f32_le(data + 4) == 0.0f && s_f32_le(data + 8) == 0.0f);
    *size = n - 12;
    return data + 12;
}

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void test_compressed_depth_png(void **state)
{
    (void)state;
    sk2_frame_t *frame = s_depth_frame();
    sk2_ros2_header_t header = {1, "d"};
    sk2_cdr_t cdr = {0};
    assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, &header, frame, SK2_ROS2_DEPTH_PNG), 0);
    s_cursor_t c = {&cdr, 0};
    uint32_t size;
    const uint8_t *png = s_check_compressed_depth(&c, &header, "16UC1; compressedDepth png", &size);
    /* A PNG whose first chunk says 4x3, 16-bit grayscale (colour type 0). */
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_true(size > 8 + 25);
    assert_memory_equal(png, signature, 8);
    assert_int_equal(s_be32(png + 8), 13);
    assert_memory_equal(png + 12, "IHDR", 4);
    assert_int_equal(s_be32(png + 16), 4);
    assert_int_equal(s_be32(png + 20), 3);
    assert_int_equal(png[24], 16);
    assert_int_equal(png[25], 0);
    assert_memory_equal(png + size - 8, "IEND", 4);
    /* It holds the values exactly. */
    sk2_frame_t *back = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4, 3);
    assert_int_equal(sk2_codec_decode(sk2_codec_find(SK2_CODEC_PNG), png, size, back), 0);
    assert_memory_equal(sk2_frame_cdata16(back), sk2_frame_cdata16(frame), 24);
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
    sk2_cdr_free(&cdr);
}

static void test_compressed_depth_rvl(void **state)
{
    (void)state;
    /* 0, 5, 0, 0 by the paper's rules: 1 zero, 1 non-zero, delta 5 zigzagged to 10 (nibbles
     * 0xA then 0x1: low 3 bits first, high bit for "more"), 2 zeros, 0 non-zeros. Nibbles
     * 1 1 A 1 2 0 from the top of one word, padded: 0x11A12000, written little-endian. */
    sk2_frame_t *tiny = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4, 1);
    assert_non_null(tiny);
    memset(sk2_frame_data16(tiny), 0, 8);
    sk2_frame_data16(tiny)[1] = 5;
    sk2_ros2_header_t header = {0, "d"};
    sk2_cdr_t cdr = {0};
    assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, &header, tiny, SK2_ROS2_DEPTH_RVL), 0);
    s_cursor_t c = {&cdr, 0};
    uint32_t size;
    const uint8_t *rvl = s_check_compressed_depth(&c, &header, "16UC1; compressedDepth rvl", &size);
    static const uint8_t want[12] = {4, 0, 0, 0, 1, 0, 0, 0, 0x00, 0x20, 0xa1, 0x11};
    assert_int_equal(size, sizeof want);
    assert_memory_equal(rvl, want, sizeof want);
    /* A larger frame: width and height, then a stream sk2's rvl decoder takes back exactly. */
    sk2_frame_t *frame = s_depth_frame();
    assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, &header, frame, SK2_ROS2_DEPTH_RVL), 0);
    rvl = s_check_compressed_depth(&c, &header, "16UC1; compressedDepth rvl", &size);
    assert_true(size > 8 && (size - 8) % 4 == 0);
    assert_int_equal(rvl[0] | rvl[1] << 8, 4);
    assert_int_equal(rvl[4] | rvl[5] << 8, 3);
    sk2_frame_t *back = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4, 3);
    assert_int_equal(sk2_codec_decode(sk2_codec_find(SK2_CODEC_RVL), rvl + 8, size - 8, back), 0);
    assert_memory_equal(sk2_frame_cdata16(back), sk2_frame_cdata16(frame), 24);
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
    sk2_frame_destroy(&tiny);
    sk2_cdr_free(&cdr);
}

static void test_compressed_depth_refuses(void **state)
{
    (void)state;
    sk2_frame_t *frame = s_depth_frame();
    sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 4, 3);
    sk2_frame_t *rgb = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 4, 3);
    sk2_ros2_header_t header = {0, "d"}, bad = {-5, "d"};
    sk2_cdr_t cdr = {0};
    for (int codec = 0; codec < SK2_ROS2_DEPTH_CODEC_COUNT; codec++) {
        sk2_ros2_depth_codec_t k = (sk2_ros2_depth_codec_t)codec;
        assert_int_equal(sk2_ros2_compressed_depth_encode(NULL, &header, frame, k), SK2_EINVAL);
        assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, NULL, frame, k), SK2_EINVAL);
        assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, &bad, frame, k), SK2_EINVAL);
        assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, &header, NULL, k), SK2_EINVAL);
        assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, &header, ir, k), SK2_EINVAL);
        assert_int_equal(sk2_ros2_compressed_depth_encode(&cdr, &header, rgb, k), SK2_EINVAL);
    }
    assert_int_equal(
        sk2_ros2_compressed_depth_encode(&cdr, &header, frame, (sk2_ros2_depth_codec_t)2),
        SK2_EINVAL);
    assert_int_equal(
        sk2_ros2_compressed_depth_encode(&cdr, &header, frame, (sk2_ros2_depth_codec_t)-1),
        SK2_EINVAL);
    sk2_frame_destroy(&rgb);
    sk2_frame_destroy(&ir);
    sk2_frame_destroy(&frame);
    sk2_cdr_free(&cdr);
}

static uint8_t *s_slurp(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(*size);
    assert_int_equal(fread(data, 1, *size, f), *size);
    fclose(f);
    return data;
}

static uint64_t s_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* A small file: magic at both ends, the footer's offsets and CRC, the Data End's CRC. */
static void test_mcap_framing(void **state)
{
    (void)state;
    char path[] = "/tmp/sk2-test-mcap-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    for (int c = SK2_MCAP_NONE; c <= SK2_MCAP_LZ4; c++) {
        sk2_mcap_writer_t *w = sk2_mcap_writer_new();
        uint16_t schema = 0, channel = 9;
        assert_int_equal(sk2_mcap_writer_add_schema(w, "a/msg/B", "ros2msg", "int32 x\n", &schema),
                         SK2_ESTATE);
        assert_int_equal(sk2_mcap_writer_open(w, path, (sk2_mcap_compression_t)c, "ros2", "t"), 0);
        assert_int_equal(sk2_mcap_writer_open(w, path, (sk2_mcap_compression_t)c, "ros2", "t"),
                         SK2_ESTATE);
        assert_int_equal(sk2_mcap_writer_add_schema(w, "a/msg/B", "ros2msg", "int32 x\n", &schema),
                         0);
        assert_int_equal(schema, 1);
        assert_int_equal(sk2_mcap_writer_add_channel(w, 2, "/t", "cdr", NULL, 0, &channel),
                         SK2_EINVAL);
        assert_int_equal(sk2_mcap_writer_add_channel(w, schema, "", "cdr", NULL, 0, &channel),
                         SK2_EINVAL);
        const char *kv[] = {"k", "v"};
        assert_int_equal(sk2_mcap_writer_add_channel(w, schema, "/t", "cdr", kv, 1, &channel), 0);
        assert_int_equal(channel, 0);
        const uint8_t msg[8] = {0, 1, 0, 0, 42, 0, 0, 0};
        assert_int_equal(sk2_mcap_writer_add_message(w, 1, 0, 5, 5, msg, 8), SK2_EINVAL);
        for (uint32_t i = 0; i < 3; i++)
            assert_int_equal(sk2_mcap_writer_add_message(w, channel, i, 10 + i, 10 + i, msg, 8), 0);
        assert_int_equal(sk2_mcap_writer_add_metadata(w, "m", kv, 1), 0);
        assert_int_equal(sk2_mcap_writer_close(w), 0);
        assert_int_equal(sk2_mcap_writer_messages(w), 3);
        assert_int_equal(sk2_mcap_writer_chunks(w), 1);
        assert_int_equal(sk2_mcap_writer_add_message(w, channel, 0, 5, 5, msg, 8), SK2_ESTATE);
        size_t size;
        uint8_t *data = s_slurp(path, &size);
        assert_int_equal(size, sk2_mcap_writer_bytes(w));
        static const uint8_t magic[8] = {0x89, 'M', 'C', 'A', 'P', '0', '\r', '\n'};
        assert_memory_equal(data, magic, 8);
        assert_memory_equal(data + size - 8, magic, 8);
        const uint8_t *footer = data + size - 8 - 29;
        assert_int_equal(footer[0], 0x02);
        assert_int_equal(s_le64(footer + 1), 20);
        uint64_t summary_start = s_le64(footer + 9);
        uint64_t offsets_start = s_le64(footer + 17);
        assert_true(summary_start < offsets_start && offsets_start < size);
        uint32_t crc =
            (uint32_t)crc32(0, data + summary_start, (uInt)(footer + 25 - (data + summary_start)));
        assert_int_equal(crc, (uint32_t)s_le64(footer + 25) & 0xffffffffu);
        /* Data End: the 13 bytes before the summary, with the CRC of all before it. */
        const uint8_t *end = data + summary_start - 13;
        assert_int_equal(end[0], 0x0f);
        crc = (uint32_t)crc32(0, data, (uInt)(summary_start - 13));
        assert_int_equal(crc, (uint32_t)(s_le64(end + 9) & 0xffffffffu));
        free(data);
        sk2_mcap_writer_destroy(&w);
        sk2_mcap_writer_destroy(&w);
    }
    unlink(path);
}

static void test_mcap_refuses(void **state)
{
    (void)state;
    sk2_mcap_compression_t c = SK2_MCAP_NONE;
    assert_int_equal(sk2_mcap_compression_parse("zstd", &c), 0);
    assert_int_equal(c, SK2_MCAP_ZSTD);
    assert_int_equal(sk2_mcap_compression_parse("gzip", &c), SK2_EINVAL);
    assert_int_equal(sk2_mcap_compression_parse(NULL, &c), SK2_EINVAL);
    sk2_mcap_writer_t *w = sk2_mcap_writer_new();
    assert_int_equal(sk2_mcap_writer_open(w, "/nonexistent/dir/x.mcap", SK2_MCAP_NONE, "", ""),
                     SK2_ESYS);
    assert_non_null(strstr(sk2_mcap_writer_why(w), "/nonexistent/dir/x.mcap"));
    assert_int_equal(sk2_mcap_writer_open(w, "/tmp/x.mcap", (sk2_mcap_compression_t)7, "", ""),
                     SK2_EINVAL);
    assert_int_equal(sk2_mcap_writer_close(w), SK2_ESTATE);
    sk2_mcap_writer_destroy(&w);
    assert_null(w);
    sk2_mcap_writer_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compressed_image_bytes),
        cmocka_unit_test(test_image_bytes),
        cmocka_unit_test(test_camera_info_layout),
        cmocka_unit_test(test_schemas),
        cmocka_unit_test(test_cdr_refuses),
        cmocka_unit_test(test_name_token),
        cmocka_unit_test(test_pointcloud2_layout),
        cmocka_unit_test(test_pointcloud2_refuses),
        cmocka_unit_test(test_compressed_depth_png),
        cmocka_unit_test(test_compressed_depth_rvl),
        cmocka_unit_test(test_compressed_depth_refuses),
        cmocka_unit_test(test_mcap_framing),
        cmocka_unit_test(test_mcap_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
