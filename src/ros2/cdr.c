/* ROS 2 CDR serialisation of the image messages (cdr.h). The message field lists are the ROS 2
 * interface definitions (common_interfaces, builtin_interfaces); the bytes follow the plain
 * CDR rules those readers expect: alignment counted from after the encapsulation header. */
#include "ros2/cdr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/cloud.h"
#include "sk2/codec.h"
#include "sk2/error.h"

#define S_SEPARATOR                                                                                \
    "================================================================================\n"

#define S_TIME_DEF   "int32 sec\nuint32 nanosec\n"
#define S_HEADER_DEF "builtin_interfaces/Time stamp\nstring frame_id\n"
#define S_HEADER_DEPS                                                                              \
    S_SEPARATOR "MSG: std_msgs/Header\n" S_HEADER_DEF S_SEPARATOR                                  \
                "MSG: builtin_interfaces/Time\n" S_TIME_DEF

static const char *const s_names[SK2_ROS2_TYPE_COUNT] = {
    "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo",
    "sensor_msgs/msg/PointCloud2"};

static const char *const s_schemas[SK2_ROS2_TYPE_COUNT] = {
    "std_msgs/Header header\n"
    "uint32 height\n"
    "uint32 width\n"
    "string encoding\n"
    "uint8 is_bigendian\n"
    "uint32 step\n"
    "uint8[] data\n" S_HEADER_DEPS,
    "std_msgs/Header header\n"
    "string format\n"
    "uint8[] data\n" S_HEADER_DEPS,
    "std_msgs/Header header\n"
    "uint32 height\n"
    "uint32 width\n"
    "string distortion_model\n"
    "float64[] d\n"
    "float64[9] k\n"
    "float64[9] r\n"
    "float64[12] p\n"
    "uint32 binning_x\n"
    "uint32 binning_y\n"
    "sensor_msgs/RegionOfInterest roi\n" S_HEADER_DEPS S_SEPARATOR
    "MSG: sensor_msgs/RegionOfInterest\n"
    "uint32 x_offset\n"
    "uint32 y_offset\n"
    "uint32 height\n"
    "uint32 width\n"
    "bool do_rectify\n",
    /* PointField's datatype constants are part of its definition; readers take them as
     * constants, not as fields of the message. */
    "std_msgs/Header header\n"
    "uint32 height\n"
    "uint32 width\n"
    "sensor_msgs/PointField[] fields\n"
    "bool is_bigendian\n"
    "uint32 point_step\n"
    "uint32 row_step\n"
    "uint8[] data\n"
    "bool is_dense\n" S_HEADER_DEPS S_SEPARATOR "MSG: sensor_msgs/PointField\n"
    "uint8 INT8    = 1\n"
    "uint8 UINT8   = 2\n"
    "uint8 INT16   = 3\n"
    "uint8 UINT16  = 4\n"
    "uint8 INT32   = 5\n"
    "uint8 UINT32  = 6\n"
    "uint8 FLOAT32 = 7\n"
    "uint8 FLOAT64 = 8\n"
    "string name\n"
    "uint32 offset\n"
    "uint8 datatype\n"
    "uint32 count\n",
};

/* PointField.FLOAT32 */
#define S_FLOAT32 7u

const char *sk2_ros2_type_name(sk2_ros2_type_t type)
{
    return (unsigned)type < SK2_ROS2_TYPE_COUNT ? s_names[type] : NULL;
}

const char *sk2_ros2_schema(sk2_ros2_type_t type)
{
    return (unsigned)type < SK2_ROS2_TYPE_COUNT ? s_schemas[type] : NULL;
}

const char *sk2_ros2_encoding(sk2_pixel_format_t format)
{
    switch (format) {
    case SK2_PIXEL_DEPTH_MM16:
        return "16UC1";
    case SK2_PIXEL_GRAY16:
        return "mono16";
    case SK2_PIXEL_RGB24:
        return "rgb8";
    case SK2_PIXEL_BGRA32:
        return "bgra8";
    }
    return NULL;
}

void sk2_ros2_name_token(const char *id, char *out, size_t size)
{
    if (!out || size == 0)
        return;
    size_t n = 0;
    if (!id)
        id = "";
    if (id[0] >= '0' && id[0] <= '9' && n + 1 < size)
        out[n++] = 'd';
    for (const char *p = id; *p && n + 1 < size; p++) {
        char c = *p;
        bool is_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        out[n++] = is_ok ? c : '_';
    }
    out[n] = '\0';
}

static bool s_is_little_endian(void)
{
    const uint16_t probe = 1;
    uint8_t first;
    memcpy(&first, &probe, 1);
    return first == 1;
}

void sk2_cdr_reset(sk2_cdr_t *self)
{
    self->size = 0;
}

void sk2_cdr_free(sk2_cdr_t *self)
{
    free(self->data);
    *self = (sk2_cdr_t){0};
}

/* Makes room for `more` bytes; the whole message is sized before any byte is written, so the
 * writers below cannot run out. */
static int s_reserve(sk2_cdr_t *self, size_t total)
{
    if (total <= self->capacity)
        return 0;
    size_t capacity = self->capacity ? self->capacity : 4096;
    while (capacity < total)
        capacity *= 2;
    uint8_t *data = realloc(self->data, capacity);
    if (!data)
        return SK2_ENOMEM;
    self->data = data;
    self->capacity = capacity;
    return 0;
}

/* Offsets count from after the 4-byte encapsulation header, as CDR readers do. */
static void s_align(sk2_cdr_t *self, size_t to)
{
    while ((self->size - 4) % to)
        self->data[self->size++] = 0;
}

static void s_u8(sk2_cdr_t *self, uint8_t v)
{
    self->data[self->size++] = v;
}

static void s_u32(sk2_cdr_t *self, uint32_t v)
{
    s_align(self, 4);
    for (int i = 0; i < 4; i++)
        self->data[self->size++] = (uint8_t)(v >> (8 * i));
}

static void s_f64(sk2_cdr_t *self, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    s_align(self, 8);
    for (int i = 0; i < 8; i++)
        self->data[self->size++] = (uint8_t)(bits >> (8 * i));
}

/* Writes v at an offset already written (a count known only after the bytes it counts). */
static void s_u32_at(sk2_cdr_t *self, size_t at, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        self->data[at + (size_t)i] = (uint8_t)(v >> (8 * i));
}

static void s_bytes(sk2_cdr_t *self, const uint8_t *data, size_t size)
{
    s_u32(self, (uint32_t)size);
    if (size)
        memcpy(self->data + self->size, data, size);
    self->size += size;
}

static void s_string(sk2_cdr_t *self, const char *text)
{
    size_t length = strlen(text);
    s_u32(self, (uint32_t)(length + 1));
    memcpy(self->data + self->size, text, length + 1);
    self->size += length + 1;
}

static bool s_name_ok(const char *name)
{
    return name && name[0] && strlen(name) <= SK2_ROS2_MAX_NAME;
}

/* Checks the header, sizes the buffer for it plus `body` bytes (padding and counts included
 * in a generous 64-byte margin) and writes the encapsulation and the header. */
static int s_begin(sk2_cdr_t *out, const sk2_ros2_header_t *header, size_t body)
{
    /* builtin_interfaces/Time holds seconds as int32; times before 1970 have no meaning for a
     * capture time, so both ends are refused rather than wrapped. */
    if (!out || !header || !s_name_ok(header->frame_id) || header->stamp_us < 0 ||
        header->stamp_us / 1000000 > INT32_MAX)
        return SK2_EINVAL;
    if (body > SK2_ROS2_MAX_DATA)
        return SK2_ELIMIT;
    int rc = s_reserve(out, 4 + 8 + 4 + strlen(header->frame_id) + 1 + body + 64);
    if (rc != 0)
        return rc;
    out->size = 0;
    static const uint8_t encapsulation[4] = {0x00, 0x01, 0x00, 0x00}; /* CDR, little-endian */
    memcpy(out->data, encapsulation, 4);
    out->size = 4;
    s_u32(out, (uint32_t)(header->stamp_us / 1000000));
    s_u32(out, (uint32_t)(header->stamp_us % 1000000) * 1000u);
    s_string(out, header->frame_id);
    return 0;
}

int sk2_ros2_image_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header, const sk2_frame_t *frame)
{
    const char *encoding = frame ? sk2_ros2_encoding(sk2_frame_format(frame)) : NULL;
    if (!encoding)
        return SK2_EINVAL;
    size_t size = sk2_frame_size(frame);
    int rc = s_begin(out, header, 32 + strlen(encoding) + size);
    if (rc != 0)
        return rc;
    s_u32(out, sk2_frame_height(frame));
    s_u32(out, sk2_frame_width(frame));
    s_string(out, encoding);
    s_u8(out, 0); /* is_bigendian: written little-endian below whatever the host */
    s_u32(out, (uint32_t)sk2_frame_stride(frame));
    s_u32(out, (uint32_t)size);
    const uint8_t *pixels = sk2_frame_cdata(frame);
    if (sk2_pixel_format_bytes(sk2_frame_format(frame)) == 2) {
        const uint16_t *values = sk2_frame_cdata16(frame);
        for (size_t i = 0; i < size / 2; i++) {
            out->data[out->size++] = (uint8_t)values[i];
            out->data[out->size++] = (uint8_t)(values[i] >> 8);
        }
    } else {
        memcpy(out->data + out->size, pixels, size);
        out->size += size;
    }
    return 0;
}

int sk2_ros2_compressed_image_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header,
                                     const char *format, const uint8_t *data, size_t size)
{
    if (!s_name_ok(format) || !data || size == 0)
        return SK2_EINVAL;
    int rc = s_begin(out, header, 16 + strlen(format) + size);
    if (rc != 0)
        return rc;
    s_string(out, format);
    s_bytes(out, data, size);
    return 0;
}

int sk2_ros2_camera_info_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header, uint32_t width,
                                uint32_t height, const sk2_intrinsics_t *in)
{
    if (!in || width == 0 || height == 0 || !isfinite(in->fx) || !isfinite(in->fy) ||
        !(in->fx > 0) || !(in->fy > 0) || !isfinite(in->cx) || !isfinite(in->cy))
        return SK2_EINVAL;
    int rc = s_begin(out, header, 512);
    if (rc != 0)
        return rc;
    s_u32(out, height);
    s_u32(out, width);
    s_string(out, "plumb_bob");
    /* plumb_bob's order is k1, k2, t1 (p1), t2 (p2), k3, as OpenCV's. */
    const double d[5] = {in->k1, in->k2, in->p1, in->p2, in->k3};
    s_u32(out, 5);
    for (int i = 0; i < 5; i++)
        s_f64(out, isfinite(d[i]) ? d[i] : 0.0);
    const double k[9] = {in->fx, 0, in->cx, 0, in->fy, in->cy, 0, 0, 1};
    for (int i = 0; i < 9; i++)
        s_f64(out, k[i]);
    for (int i = 0; i < 9; i++)
        s_f64(out, i % 4 == 0 ? 1.0 : 0.0);
    const double p[12] = {in->fx, 0, in->cx, 0, 0, in->fy, in->cy, 0, 0, 0, 1, 0};
    for (int i = 0; i < 12; i++)
        s_f64(out, p[i]);
    s_u32(out, 0); /* binning_x */
    s_u32(out, 0); /* binning_y */
    for (int i = 0; i < 4; i++)
        s_u32(out, 0); /* roi: x_offset, y_offset, height, width */
    s_u8(out, 0);      /* roi.do_rectify */
    return 0;
}

/* The intrinsics sk2_frame_to_points can use: the same test as the cloud files'. */
static bool s_intrinsics_ok(const sk2_intrinsics_t *k)
{
    const double values[] = {k->fx, k->fy, k->cx, k->cy, k->k1, k->k2, k->k3, k->p1, k->p2};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (!isfinite(values[i]))
            return false;
    return k->fx != 0.0 && k->fy != 0.0;
}

int sk2_ros2_pointcloud2_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header,
                                const sk2_frame_t *depth, const sk2_intrinsics_t *intrinsics,
                                double depth_unit_m, uint32_t *points)
{
    if (points)
        *points = 0;
    if (!depth || sk2_frame_format(depth) != SK2_PIXEL_DEPTH_MM16 || !intrinsics ||
        !s_intrinsics_ok(intrinsics) || !(depth_unit_m >= SK2_CLOUD_DEPTH_UNIT_MIN_M) ||
        !(depth_unit_m <= SK2_CLOUD_DEPTH_UNIT_MAX_M))
        return SK2_EINVAL;
    /* Counted first (no capacity: nothing is deprojected), so the message is sized once. */
    size_t count = sk2_frame_to_points(depth, intrinsics, depth_unit_m, NULL, 0);
    if (count > SK2_CLOUD_MAX_POINTS)
        return SK2_ELIMIT;
    static const char *const names[3] = {"x", "y", "z"};
    /* Fields: three of at most 4 + 2 + 2 + 4 + 1 + 3 + 4 bytes; the rest under 32. */
    int rc = s_begin(out, header, 3 * 20 + 32 + 12 * count);
    if (rc != 0)
        return rc;
    s_u32(out, 1);               /* height */
    s_u32(out, (uint32_t)count); /* width */
    s_u32(out, 3);
    for (uint32_t i = 0; i < 3; i++) {
        s_string(out, names[i]);
        s_u32(out, 4 * i); /* offset */
        s_u8(out, S_FLOAT32);
        s_u32(out, 1); /* count */
    }
    s_u8(out, 0); /* is_bigendian: the floats are written little-endian below */
    s_u32(out, 12);
    s_u32(out, (uint32_t)(12 * count));
    s_u32(out, (uint32_t)(12 * count));
    /* The data starts 4-aligned from a malloc'd block, so the floats go straight in. */
    float *xyz = (float *)(void *)(out->data + out->size);
    sk2_frame_to_points(depth, intrinsics, depth_unit_m, xyz, count);
    if (!s_is_little_endian()) {
        uint8_t *bytes = out->data + out->size;
        for (size_t i = 0; i < 3 * count; i++) {
            uint32_t bits;
            memcpy(&bits, bytes + 4 * i, 4);
            for (int b = 0; b < 4; b++)
                bytes[4 * i + (size_t)b] = (uint8_t)(bits >> (8 * b));
        }
    }
    out->size += 12 * count;
    s_u8(out, 1); /* is_dense: pixels without a reading are left out, not written as NaN */
    if (points)
        *points = (uint32_t)count;
    return 0;
}

int sk2_ros2_compressed_depth_encode(sk2_cdr_t *out, const sk2_ros2_header_t *header,
                                     const sk2_frame_t *depth, sk2_ros2_depth_codec_t codec)
{
    if (!depth || sk2_frame_format(depth) != SK2_PIXEL_DEPTH_MM16 ||
        (unsigned)codec >= SK2_ROS2_DEPTH_CODEC_COUNT)
        return SK2_EINVAL;
    bool is_rvl = codec == SK2_ROS2_DEPTH_RVL;
    const char *format = is_rvl ? "16UC1; compressedDepth rvl" : "16UC1; compressedDepth png";
    const sk2_codec_t *packer = sk2_codec_find(is_rvl ? SK2_CODEC_RVL : SK2_CODEC_PNG);
    uint32_t width = sk2_frame_width(depth), height = sk2_frame_height(depth);
    size_t bound = packer ? sk2_codec_encode_bound(packer, SK2_PIXEL_DEPTH_MM16, width, height) : 0;
    if (bound == 0)
        return SK2_EUNSUPPORTED;
    /* ConfigHeader (12 bytes), RVL's width and height (8), then the codec's bytes. */
    size_t head = is_rvl ? 20 : 12;
    int rc = s_begin(out, header, 16 + strlen(format) + head + bound);
    if (rc != 0)
        return rc;
    s_string(out, format);
    s_u32(out, 0); /* the data's count, known after encoding */
    size_t count_at = out->size - 4, data_at = out->size;
    /* ConfigHeader: format INV_DEPTH (0) and depthParam {0, 0}. ROS leaves depthParam unset for
     * 16-bit images and its subscriber ignores it there; zeros keep the bytes reproducible. */
    memset(out->data + out->size, 0, 12);
    out->size += 12;
    if (is_rvl) {
        s_u32(out, width);
        s_u32(out, height);
    }
    size_t packed = 0;
    rc = sk2_codec_encode(packer, depth, out->data + out->size, bound, &packed);
    if (rc != 0) {
        out->size = 0;
        return rc;
    }
    out->size += packed;
    s_u32_at(out, count_at, (uint32_t)(out->size - data_at));
    return 0;
}
