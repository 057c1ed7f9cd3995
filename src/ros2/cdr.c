/* ROS 2 CDR serialisation of the image messages (cdr.h). The message field lists are the ROS 2
 * interface definitions (common_interfaces, builtin_interfaces); the bytes follow the plain
 * CDR rules those readers expect: alignment counted from after the encapsulation header. */
#include "ros2/cdr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/error.h"

#define S_SEPARATOR                                                                                \
    "================================================================================\n"

#define S_TIME_DEF   "int32 sec\nuint32 nanosec\n"
#define S_HEADER_DEF "builtin_interfaces/Time stamp\nstring frame_id\n"
#define S_HEADER_DEPS                                                                              \
    S_SEPARATOR "MSG: std_msgs/Header\n" S_HEADER_DEF S_SEPARATOR                                  \
                "MSG: builtin_interfaces/Time\n" S_TIME_DEF

static const char *const s_names[SK2_ROS2_TYPE_COUNT] = {
    "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "sensor_msgs/msg/CameraInfo"};

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
};

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
