/* Reading ROS 2 CDR messages (cdr_decode.h). A cursor walks the message: every primitive is
 * aligned to its size from after the encapsulation header and read in the message's byte
 * order; every string and sequence length is checked against the bytes left before it is
 * used, so a message can claim nothing it does not hold. */
#include "ros2/cdr_decode.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "sk2/error.h"

typedef struct {
    const uint8_t *base; /* just after the encapsulation header */
    size_t size;         /* bytes after it */
    size_t at;
    bool is_big;
    bool is_bad;
    const char *what; /* the first field that did not fit */
} s_cdr_t;

static int s_why(char *why, size_t why_size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int s_why(char *why, size_t why_size, int rc, const char *fmt, ...)
{
    if (why && why_size) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(why, why_size, fmt, args);
        va_end(args);
    }
    return rc;
}

static bool s_room(s_cdr_t *c, size_t align, size_t bytes, const char *what)
{
    if (c->is_bad)
        return false;
    size_t pad = (align - c->at % align) % align;
    if (c->size - c->at < pad || c->size - c->at - pad < bytes) {
        c->is_bad = true;
        c->what = what;
        return false;
    }
    c->at += pad;
    return true;
}

static uint64_t s_uint(s_cdr_t *c, size_t bytes, const char *what)
{
    if (!s_room(c, bytes, bytes, what))
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++) {
        size_t shift = c->is_big ? bytes - 1 - i : i;
        v |= (uint64_t)c->base[c->at + i] << (8 * shift);
    }
    c->at += bytes;
    return v;
}

static double s_f64(s_cdr_t *c, const char *what)
{
    uint64_t bits = s_uint(c, 8, what);
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* A string: uint32 length with its NUL, the bytes, the NUL. Copied (truncation is an error). */
static void s_string(s_cdr_t *c, char *out, size_t out_size, const char *what)
{
    out[0] = '\0';
    uint64_t n = s_uint(c, 4, what);
    if (c->is_bad)
        return;
    if (n > c->size - c->at || n >= out_size + 1 || (n > 0 && c->base[c->at + n - 1] != '\0')) {
        c->is_bad = true;
        c->what = what;
        return;
    }
    if (n > 0) {
        memcpy(out, c->base + c->at, n - 1);
        out[n - 1] = '\0';
    }
    c->at += n;
}

/* A uint8[] sequence: its count and where its bytes are. */
static const uint8_t *s_bytes(s_cdr_t *c, size_t *size, const char *what)
{
    uint64_t n = s_uint(c, 4, what);
    if (c->is_bad || n > c->size - c->at) {
        c->is_bad = true;
        c->what = what;
        return NULL;
    }
    const uint8_t *p = c->base + c->at;
    c->at += n;
    *size = n;
    return p;
}

static int s_start(s_cdr_t *c, const uint8_t *msg, size_t size, char *why, size_t why_size)
{
    *c = (s_cdr_t){0};
    if (!msg || size < 4)
        return s_why(why, why_size, SK2_ECORRUPT, "a message of %zu bytes has no CDR header", size);
    if (msg[0] != 0 || msg[1] > 1)
        return s_why(why, why_size, SK2_EUNSUPPORTED,
                     "encapsulation %02x %02x is not plain CDR (00 00 or 00 01)", msg[0], msg[1]);
    c->base = msg + 4;
    c->size = size - 4;
    c->is_big = msg[1] == 0;
    return 0;
}

static void s_header(s_cdr_t *c, sk2_ros2_header_in_t *h)
{
    int32_t sec = (int32_t)(uint32_t)s_uint(c, 4, "header.stamp.sec");
    uint32_t nsec = (uint32_t)s_uint(c, 4, "header.stamp.nanosec");
    h->stamp_ns = (int64_t)sec * 1000000000 + nsec;
    s_string(c, h->frame_id, sizeof h->frame_id, "header.frame_id");
}

static int s_end(const s_cdr_t *c, const char *type, char *why, size_t why_size)
{
    if (c->is_bad)
        return s_why(why, why_size, SK2_ECORRUPT, "%s: %s runs past the message's %zu bytes", type,
                     c->what, c->size + 4);
    return 0;
}

int sk2_ros2_image_decode(const uint8_t *msg, size_t size, sk2_ros2_image_in_t *out, char *why,
                          size_t why_size)
{
    s_cdr_t c;
    int rc = s_start(&c, msg, size, why, why_size);
    if (rc != 0)
        return rc;
    *out = (sk2_ros2_image_in_t){0};
    s_header(&c, &out->header);
    out->height = (uint32_t)s_uint(&c, 4, "height");
    out->width = (uint32_t)s_uint(&c, 4, "width");
    s_string(&c, out->encoding, sizeof out->encoding, "encoding");
    out->is_bigendian = s_uint(&c, 1, "is_bigendian") != 0;
    out->step = (uint32_t)s_uint(&c, 4, "step");
    out->data = s_bytes(&c, &out->size, "data");
    return s_end(&c, "Image", why, why_size);
}

int sk2_ros2_compressed_image_decode(const uint8_t *msg, size_t size, sk2_ros2_compressed_in_t *out,
                                     char *why, size_t why_size)
{
    s_cdr_t c;
    int rc = s_start(&c, msg, size, why, why_size);
    if (rc != 0)
        return rc;
    *out = (sk2_ros2_compressed_in_t){0};
    s_header(&c, &out->header);
    s_string(&c, out->format, sizeof out->format, "format");
    out->data = s_bytes(&c, &out->size, "data");
    return s_end(&c, "CompressedImage", why, why_size);
}

int sk2_ros2_camera_info_decode(const uint8_t *msg, size_t size, sk2_ros2_camera_info_in_t *out,
                                char *why, size_t why_size)
{
    s_cdr_t c;
    int rc = s_start(&c, msg, size, why, why_size);
    if (rc != 0)
        return rc;
    *out = (sk2_ros2_camera_info_in_t){0};
    s_header(&c, &out->header);
    out->height = (uint32_t)s_uint(&c, 4, "height");
    out->width = (uint32_t)s_uint(&c, 4, "width");
    s_string(&c, out->distortion_model, sizeof out->distortion_model, "distortion_model");
    uint64_t n = s_uint(&c, 4, "d");
    /* Each coefficient takes 8 bytes: a count the rest of the message cannot hold is refused
     * before any is read. */
    if (!c.is_bad && n > (c.size - c.at) / 8) {
        c.is_bad = true;
        c.what = "d";
    }
    out->d_count = c.is_bad ? 0 : (size_t)n;
    for (size_t i = 0; i < out->d_count && !c.is_bad; i++) {
        double v = s_f64(&c, "d");
        if (i < SK2_ROS2_IN_MAX_D)
            out->d[i] = v;
    }
    for (int i = 0; i < 9; i++)
        out->k[i] = s_f64(&c, "k");
    for (int i = 0; i < 9; i++)
        out->r[i] = s_f64(&c, "r");
    for (int i = 0; i < 12; i++)
        out->p[i] = s_f64(&c, "p");
    s_uint(&c, 4, "binning_x");
    s_uint(&c, 4, "binning_y");
    for (int i = 0; i < 4; i++)
        s_uint(&c, 4, "roi");
    s_uint(&c, 1, "roi.do_rectify");
    return s_end(&c, "CameraInfo", why, why_size);
}

int sk2_ros2_image_format(const char *encoding, sk2_stream_kind_t kind, sk2_pixel_format_t *format)
{
    static const struct {
        const char *name;
        sk2_pixel_format_t depth, ir, color; /* 0: not in such a stream */
    } table[] = {
        {"16UC1", SK2_PIXEL_DEPTH_MM16, SK2_PIXEL_GRAY16, 0},
        {"32FC1", SK2_PIXEL_DEPTH_MM16, 0, 0},
        {"mono16", SK2_PIXEL_DEPTH_MM16, SK2_PIXEL_GRAY16, 0},
        {"mono8", 0, SK2_PIXEL_GRAY16, SK2_PIXEL_RGB24},
        {"rgb8", 0, 0, SK2_PIXEL_RGB24},
        {"bgr8", 0, 0, SK2_PIXEL_RGB24},
        {"rgba8", 0, 0, SK2_PIXEL_BGRA32},
        {"bgra8", 0, 0, SK2_PIXEL_BGRA32},
    };
    for (size_t i = 0; encoding && i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(encoding, table[i].name) != 0)
            continue;
        sk2_pixel_format_t f = kind == SK2_STREAM_DEPTH   ? table[i].depth
                               : kind == SK2_STREAM_IR    ? table[i].ir
                               : kind == SK2_STREAM_COLOR ? table[i].color
                                                          : 0;
        if (f == 0)
            return SK2_EUNSUPPORTED;
        *format = f;
        return 0;
    }
    return SK2_EUNSUPPORTED;
}

sk2_stream_kind_t sk2_ros2_image_kind(const char *encoding)
{
    if (!encoding)
        return 0;
    if (strcmp(encoding, "16UC1") == 0 || strcmp(encoding, "32FC1") == 0)
        return SK2_STREAM_DEPTH;
    if (strcmp(encoding, "mono16") == 0 || strcmp(encoding, "mono8") == 0)
        return SK2_STREAM_IR;
    if (strcmp(encoding, "rgb8") == 0 || strcmp(encoding, "bgr8") == 0 ||
        strcmp(encoding, "rgba8") == 0 || strcmp(encoding, "bgra8") == 0)
        return SK2_STREAM_COLOR;
    return 0;
}

static uint32_t s_load(const uint8_t *p, int bytes, bool is_big)
{
    uint32_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint32_t)p[i] << (8 * (is_big ? bytes - 1 - i : i));
    return v;
}

int sk2_ros2_image_to_frame(const sk2_ros2_image_in_t *image, sk2_stream_kind_t kind,
                            sk2_frame_t **frame_p, char *why, size_t why_size)
{
    *frame_p = NULL;
    sk2_pixel_format_t format;
    if (sk2_ros2_image_format(image->encoding, kind, &format) != 0)
        return s_why(why, why_size, SK2_EUNSUPPORTED, "image encoding '%s' in a %s stream",
                     image->encoding, sk2_stream_kind_name(kind));
    uint32_t w = image->width, h = image->height;
    if (w == 0 || h == 0 || w > SK2_ROS2_IN_MAX_SIDE || h > SK2_ROS2_IN_MAX_SIDE)
        return s_why(why, why_size, w && h ? SK2_ELIMIT : SK2_ECORRUPT,
                     "image of %ux%u (sides 1..%d)", w, h, SK2_ROS2_IN_MAX_SIDE);
    const char *e = image->encoding;
    int in_bytes = strcmp(e, "32FC1") == 0                               ? 4
                   : strcmp(e, "16UC1") == 0 || strcmp(e, "mono16") == 0 ? 2
                   : strcmp(e, "mono8") == 0                             ? 1
                   : strcmp(e, "rgba8") == 0 || strcmp(e, "bgra8") == 0  ? 4
                                                                         : 3;
    uint64_t row = (uint64_t)w * (uint64_t)in_bytes;
    if (image->step < row || (uint64_t)image->step * (h - 1) + row > image->size)
        return s_why(why, why_size, SK2_ECORRUPT,
                     "image of %ux%u %s: step %u and %zu bytes of data do not hold it", w, h, e,
                     image->step, image->size);
    sk2_frame_t *frame = sk2_frame_new(kind, format, w, h);
    if (!frame)
        return s_why(why, why_size, SK2_ENOMEM, "out of memory for a frame");
    uint8_t *out = sk2_frame_data(frame);
    size_t stride = sk2_frame_stride(frame);
    bool is_big = image->is_bigendian;
    for (uint32_t y = 0; y < h; y++) {
        const uint8_t *in = image->data + (size_t)y * image->step;
        uint8_t *o = out + (size_t)y * stride;
        uint16_t *o16 = (uint16_t *)(void *)o;
        if (in_bytes == 4 && e[0] == '3') {
            /* Metres as float: the nearest millimetre; no reading (NaN, inf, <= 0) and
             * anything past 65.535 m become 0, sk2's "no reading". */
            for (uint32_t x = 0; x < w; x++) {
                uint32_t bits = s_load(in + 4 * x, 4, is_big);
                float m;
                memcpy(&m, &bits, sizeof m);
                double mm = (double)m * 1000.0;
                o16[x] = isfinite(mm) && mm >= 0.5 && mm < SK2_ROS2_IN_DEPTH_MAX + 0.5
                             ? (uint16_t)lround(mm)
                             : 0;
            }
        } else if (in_bytes == 2) {
            for (uint32_t x = 0; x < w; x++)
                o16[x] = (uint16_t)s_load(in + 2 * x, 2, is_big);
        } else if (in_bytes == 1 && format == SK2_PIXEL_GRAY16) {
            for (uint32_t x = 0; x < w; x++)
                o16[x] = (uint16_t)(in[x] * 257u);
        } else if (in_bytes == 1) {
            for (uint32_t x = 0; x < w; x++)
                o[3 * x] = o[3 * x + 1] = o[3 * x + 2] = in[x];
        } else if (strcmp(e, "rgb8") == 0 || strcmp(e, "bgra8") == 0) {
            memcpy(o, in, row);
        } else if (strcmp(e, "bgr8") == 0) {
            for (uint32_t x = 0; x < w; x++) {
                o[3 * x] = in[3 * x + 2];
                o[3 * x + 1] = in[3 * x + 1];
                o[3 * x + 2] = in[3 * x];
            }
        } else { /* rgba8 into BGRA */
            for (uint32_t x = 0; x < w; x++) {
                o[4 * x] = in[4 * x + 2];
                o[4 * x + 1] = in[4 * x + 1];
                o[4 * x + 2] = in[4 * x];
                o[4 * x + 3] = in[4 * x + 3];
            }
        }
    }
    *frame_p = frame;
    return 0;
}

int sk2_ros2_camera_info_intrinsics(const sk2_ros2_camera_info_in_t *info, sk2_intrinsics_t *k,
                                    bool *is_partial)
{
    const double *K = info->k;
    if (!isfinite(K[0]) || !isfinite(K[4]) || !(K[0] > 0) || !(K[4] > 0) || !isfinite(K[2]) ||
        !isfinite(K[5]))
        return SK2_EINVAL;
    *k = (sk2_intrinsics_t){.fx = K[0], .fy = K[4], .cx = K[2], .cy = K[5]};
    bool is_plumb = strcmp(info->distortion_model, "plumb_bob") == 0;
    bool is_rational = strcmp(info->distortion_model, "rational_polynomial") == 0;
    *is_partial = K[1] != 0; /* skew has no place in sk2's model */
    if (is_plumb || is_rational) {
        double d[5] = {0};
        for (size_t i = 0; i < 5 && i < info->d_count; i++)
            d[i] = isfinite(info->d[i]) ? info->d[i] : 0.0;
        k->k1 = d[0];
        k->k2 = d[1];
        k->p1 = d[2];
        k->p2 = d[3];
        k->k3 = d[4];
        for (size_t i = 5; i < info->d_count && i < SK2_ROS2_IN_MAX_D; i++)
            *is_partial = *is_partial || info->d[i] != 0;
        *is_partial = *is_partial || info->d_count > SK2_ROS2_IN_MAX_D;
    } else {
        for (size_t i = 0; i < info->d_count && i < SK2_ROS2_IN_MAX_D; i++)
            *is_partial = *is_partial || info->d[i] != 0;
    }
    return 0;
}

bool sk2_ros2_is_compressed_depth(const char *format)
{
    return format && strstr(format, "compressedDepth") != NULL;
}

static uint32_t s_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int sk2_ros2_compressed_depth_parse(const sk2_ros2_compressed_in_t *in,
                                    sk2_ros2_compressed_depth_t *out, char *why, size_t why_size)
{
    const char *f = in->format;
    bool is_16 = strncmp(f, "16UC1; compressedDepth", 22) == 0;
    bool is_32 = strncmp(f, "32FC1; compressedDepth", 22) == 0;
    const char *rest = f + 22;
    bool is_rvl = strcmp(rest, " rvl") == 0;
    if ((!is_16 && !is_32) || (rest[0] && !is_rvl && strcmp(rest, " png") != 0))
        return s_why(why, why_size, SK2_EUNSUPPORTED,
                     "compressedDepth format '%.60s' (this reader takes 16UC1 or 32FC1 with png "
                     "or rvl)",
                     f);
    uint32_t a_bits = s_load(in->data + 4, 4, false), b_bits = s_load(in->data + 8, 4, false);
    if (is_rvl) {
        /* The 12-byte header, RVL's width and height, then at least one byte of stream. */
        if (in->size < 12 + 8 + 1)
            return s_why(why, why_size, SK2_ECORRUPT,
                         "compressedDepth data is not a header, a size and an RVL stream");
        *out = (sk2_ros2_compressed_depth_t){.is_float = is_32,
                                             .is_rvl = true,
                                             .packed = in->data + 20,
                                             .packed_size = in->size - 20,
                                             .width = s_load(in->data + 12, 4, false),
                                             .height = s_load(in->data + 16, 4, false)};
    } else {
        /* The 12-byte header, then the PNG signature and its IHDR chunk (length, type, width,
         * height, bit depth, colour type). */
        static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
        if (in->size < 12 + 8 + 8 + 13 || memcmp(in->data + 12, signature, 8) != 0 ||
            memcmp(in->data + 12 + 12, "IHDR", 4) != 0)
            return s_why(why, why_size, SK2_ECORRUPT,
                         "compressedDepth data is not a header and a PNG");
        const uint8_t *ihdr = in->data + 12 + 16;
        if (ihdr[8] != 16 || ihdr[9] != 0)
            return s_why(why, why_size, SK2_ECORRUPT,
                         "compressedDepth PNG of %u bits, colour type %u (want 16-bit grey)",
                         ihdr[8], ihdr[9]);
        *out = (sk2_ros2_compressed_depth_t){.is_float = is_32,
                                             .packed = in->data + 12,
                                             .packed_size = in->size - 12,
                                             .width = s_be32(ihdr),
                                             .height = s_be32(ihdr + 4)};
    }
    memcpy(&out->quant_a, &a_bits, sizeof a_bits);
    memcpy(&out->quant_b, &b_bits, sizeof b_bits);
    if (is_32 && (!isfinite(out->quant_a) || !isfinite(out->quant_b) || out->quant_a == 0))
        return s_why(why, why_size, SK2_ECORRUPT, "compressedDepth quantisation %g, %g",
                     (double)out->quant_a, (double)out->quant_b);
    return 0;
}

void sk2_ros2_compressed_depth_to_mm(sk2_frame_t *frame, float quant_a, float quant_b)
{
    uint16_t *px = sk2_frame_data16(frame);
    size_t n = sk2_frame_size(frame) / 2;
    for (size_t i = 0; i < n; i++) {
        if (px[i] == 0)
            continue;
        double mm = (double)quant_a / ((double)px[i] - (double)quant_b) * 1000.0;
        px[i] = isfinite(mm) && mm >= 0.5 && mm < SK2_ROS2_IN_DEPTH_MAX + 0.5 ? (uint16_t)lround(mm)
                                                                              : 0;
    }
}
