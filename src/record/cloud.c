/* Point cloud files from depth frames. Both formats are a text header followed by the points,
 * and for a cloud of x, y, z alone (32-bit floats) their binary bodies are the same bytes: PLY
 * says binary_little_endian outright, and PCD's binary DATA is the writer's memory layout,
 * which every PCL reader takes as little-endian. Writing the bytes in that order whatever the
 * host keeps files from a big-endian machine readable everywhere.
 *
 * Coloured clouds differ: PLY adds three uchar properties (red, green, blue: 15 bytes a
 * point), PCD adds PCL's `rgb` field, one 4-byte float whose bits are the integer 0x00RRGGBB
 * (16 bytes a point), the layout of pcl::PointXYZRGB that PCL and open3d both read.
 *
 * ASCII writes each float with nine significant digits, the fewest that give back the same
 * float, so ASCII and binary files hold the same points. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/cloud.h"
#include "sk2/error.h"

/* Points converted and written at a time in binary files on a big-endian host. */
#define S_SWAP_POINTS 4096

static bool s_is_little_endian(void)
{
    const uint16_t probe = 1;
    uint8_t first;
    memcpy(&first, &probe, 1);
    return first == 1;
}

static bool s_is_usable(const sk2_intrinsics_t *k)
{
    const double values[] = {k->fx, k->fy, k->cx, k->cy, k->k1, k->k2, k->k3, k->p1, k->p2};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++)
        if (!isfinite(values[i]))
            return false;
    return k->fx != 0.0 && k->fy != 0.0;
}

static int s_write_header(FILE *out, sk2_cloud_format_t format, bool is_ascii, bool has_color,
                          size_t points)
{
    int n;
    if (format == SK2_CLOUD_PLY)
        n = fprintf(out,
                    "ply\n"
                    "format %s 1.0\n"
                    "comment written by sk2: depth camera frame, metres, x right y down z "
                    "forward\n"
                    "element vertex %zu\n"
                    "property float x\n"
                    "property float y\n"
                    "property float z\n"
                    "%s"
                    "end_header\n",
                    is_ascii ? "ascii" : "binary_little_endian", points,
                    has_color ? "property uchar red\nproperty uchar green\nproperty uchar blue\n"
                              : "");
    else
        n = fprintf(out,
                    "# .PCD v0.7 - Point Cloud Data file format (written by sk2: depth camera "
                    "frame, metres)\n"
                    "VERSION 0.7\n"
                    "FIELDS x y z%s\n"
                    "SIZE 4 4 4%s\n"
                    "TYPE F F F%s\n"
                    "COUNT 1 1 1%s\n"
                    "WIDTH %zu\n"
                    "HEIGHT 1\n"
                    "VIEWPOINT 0 0 0 1 0 0 0\n"
                    "POINTS %zu\n"
                    "DATA %s\n",
                    has_color ? " rgb" : "", has_color ? " 4" : "", has_color ? " F" : "",
                    has_color ? " 1" : "", points, points, is_ascii ? "ascii" : "binary");
    return n < 0 ? SK2_ESYS : 0;
}

static int s_write_ascii(FILE *out, const float *xyz, size_t points)
{
    for (size_t i = 0; i < points; i++)
        if (fprintf(out, "%.9g %.9g %.9g\n", (double)xyz[3 * i], (double)xyz[3 * i + 1],
                    (double)xyz[3 * i + 2]) < 0)
            return SK2_ESYS;
    return 0;
}

static int s_write_binary(FILE *out, const float *xyz, size_t points)
{
    if (s_is_little_endian())
        return fwrite(xyz, 12, points, out) == points ? 0 : SK2_ESYS;
    uint8_t bytes[S_SWAP_POINTS * 12];
    for (size_t done = 0; done < points;) {
        size_t batch = points - done < S_SWAP_POINTS ? points - done : S_SWAP_POINTS;
        for (size_t i = 0; i < 3 * batch; i++) {
            uint32_t bits;
            memcpy(&bits, &xyz[3 * done + i], 4);
            for (int b = 0; b < 4; b++)
                bytes[4 * i + b] = (uint8_t)(bits >> (8 * b));
        }
        if (fwrite(bytes, 12, batch, out) != batch)
            return SK2_ESYS;
        done += batch;
    }
    return 0;
}

/* Puts the low byte first whatever the host. */
static void s_put_le32(uint8_t *to, uint32_t bits)
{
    for (int b = 0; b < 4; b++)
        to[b] = (uint8_t)(bits >> (8 * b));
}

/* The colour of each point (0x00RRGGBB), in the order sk2_frame_to_points gives the points:
 * every depth pixel with a reading, row by row. A pixel whose alpha is 0 (the registration
 * found no colour for it) gets black, which is what the registration leaves there anyway. */
static void s_point_colors(const sk2_frame_t *depth, const sk2_frame_t *color, uint32_t *rgb)
{
    const uint16_t *px = sk2_frame_cdata16(depth);
    const uint8_t *bgra = sk2_frame_cdata(color);
    uint32_t width = sk2_frame_width(depth), height = sk2_frame_height(depth);
    size_t stride = sk2_frame_stride(color), count = 0;
    for (uint32_t v = 0; v < height; v++)
        for (uint32_t u = 0; u < width; u++) {
            if (px[(size_t)v * width + u] == 0)
                continue;
            const uint8_t *c = bgra + (size_t)v * stride + 4 * (size_t)u;
            rgb[count++] = c[3] == 0 ? 0 : (uint32_t)c[2] << 16 | (uint32_t)c[1] << 8 | c[0];
        }
}

/* ASCII rows with colour. PLY takes the three channels as integers. PCD's rgb is a float
 * field: its text is that float, the one whose bits are 0x00RRGGBB, with nine significant
 * digits (which give back its bits, small denormal floats included). That is what open3d and
 * PCL's tools (pcl_pcd2ply, pcl_convert_pcd_ascii_binary) read back into the same colour; the
 * integer 0x00RRGGBB written as text is not (both take it as a float value and lose red's top
 * bit), and a `TYPE U` field, which PCL writes itself, comes back from pcl_pcd2ply scrambled. */
static int s_write_ascii_color(FILE *out, const float *xyz, const uint32_t *rgb, size_t points,
                               sk2_cloud_format_t format)
{
    for (size_t i = 0; i < points; i++) {
        int n;
        if (format == SK2_CLOUD_PLY) {
            n = fprintf(out, "%.9g %.9g %.9g %u %u %u\n", (double)xyz[3 * i],
                        (double)xyz[3 * i + 1], (double)xyz[3 * i + 2], (unsigned)(rgb[i] >> 16),
                        (unsigned)(rgb[i] >> 8 & 0xff), (unsigned)(rgb[i] & 0xff));
        } else {
            float packed;
            memcpy(&packed, &rgb[i], 4);
            n = fprintf(out, "%.9g %.9g %.9g %.9g\n", (double)xyz[3 * i], (double)xyz[3 * i + 1],
                        (double)xyz[3 * i + 2], (double)packed);
        }
        if (n < 0)
            return SK2_ESYS;
    }
    return 0;
}

/* Binary records with colour, built S_SWAP_POINTS at a time in file byte order: PLY x y z as
 * little-endian floats then red, green, blue bytes (15 bytes); PCD x y z then rgb, the integer
 * 0x00RRGGBB stored little-endian in the float's 4 bytes (16 bytes). */
static int s_write_binary_color(FILE *out, const float *xyz, const uint32_t *rgb, size_t points,
                                sk2_cloud_format_t format)
{
    const size_t record = format == SK2_CLOUD_PLY ? 15 : 16;
    uint8_t bytes[S_SWAP_POINTS * 16];
    for (size_t done = 0; done < points;) {
        size_t batch = points - done < S_SWAP_POINTS ? points - done : S_SWAP_POINTS;
        for (size_t i = 0; i < batch; i++) {
            uint8_t *to = bytes + record * i;
            for (int axis = 0; axis < 3; axis++) {
                uint32_t bits;
                memcpy(&bits, &xyz[3 * (done + i) + (size_t)axis], 4);
                s_put_le32(to + 4 * axis, bits);
            }
            uint32_t c = rgb[done + i];
            if (format == SK2_CLOUD_PLY) {
                to[12] = (uint8_t)(c >> 16);
                to[13] = (uint8_t)(c >> 8);
                to[14] = (uint8_t)c;
            } else {
                s_put_le32(to + 12, c);
            }
        }
        if (fwrite(bytes, record, batch, out) != batch)
            return SK2_ESYS;
        done += batch;
    }
    return 0;
}

int sk2_cloud_write_colored(FILE *out, const sk2_frame_t *depth, const sk2_intrinsics_t *intrinsics,
                            double depth_unit_m, const sk2_frame_t *color_at_depth,
                            sk2_cloud_format_t format, bool is_ascii, size_t *points)
{
    if (points)
        *points = 0;
    if (!out || !depth || !intrinsics || sk2_frame_format(depth) != SK2_PIXEL_DEPTH_MM16 ||
        !s_is_usable(intrinsics) || !(depth_unit_m >= SK2_CLOUD_DEPTH_UNIT_MIN_M) ||
        !(depth_unit_m <= SK2_CLOUD_DEPTH_UNIT_MAX_M) ||
        (format != SK2_CLOUD_PLY && format != SK2_CLOUD_PCD))
        return SK2_EINVAL;
    if (color_at_depth && (sk2_frame_format(color_at_depth) != SK2_PIXEL_BGRA32 ||
                           sk2_frame_width(color_at_depth) != sk2_frame_width(depth) ||
                           sk2_frame_height(color_at_depth) != sk2_frame_height(depth)))
        return SK2_EINVAL;
    /* Counted first (no capacity: nothing is computed), so that memory follows the points. */
    size_t count = sk2_frame_to_points(depth, intrinsics, depth_unit_m, NULL, 0);
    if (count > SK2_CLOUD_MAX_POINTS)
        return SK2_ELIMIT;
    float *xyz = malloc(count ? 12 * count : 12);
    uint32_t *rgb = color_at_depth ? malloc(count ? 4 * count : 4) : NULL;
    if (!xyz || (color_at_depth && !rgb)) {
        free(xyz);
        free(rgb);
        return SK2_ENOMEM;
    }
    sk2_frame_to_points(depth, intrinsics, depth_unit_m, xyz, count);
    if (rgb)
        s_point_colors(depth, color_at_depth, rgb);
    int rc = s_write_header(out, format, is_ascii, rgb != NULL, count);
    if (rc == 0 && rgb)
        rc = is_ascii ? s_write_ascii_color(out, xyz, rgb, count, format)
                      : s_write_binary_color(out, xyz, rgb, count, format);
    else if (rc == 0)
        rc = is_ascii ? s_write_ascii(out, xyz, count) : s_write_binary(out, xyz, count);
    if (rc == 0 && fflush(out) != 0)
        rc = SK2_ESYS;
    free(xyz);
    free(rgb);
    if (rc == 0 && points)
        *points = count;
    return rc;
}

int sk2_cloud_write(FILE *out, const sk2_frame_t *depth, const sk2_intrinsics_t *intrinsics,
                    double depth_unit_m, sk2_cloud_format_t format, bool is_ascii, size_t *points)
{
    return sk2_cloud_write_colored(out, depth, intrinsics, depth_unit_m, NULL, format, is_ascii,
                                   points);
}

int sk2_cloud_format_parse(const char *name, sk2_cloud_format_t *format)
{
    if (!name || !format)
        return SK2_EINVAL;
    if (strcmp(name, "ply") == 0)
        *format = SK2_CLOUD_PLY;
    else if (strcmp(name, "pcd") == 0)
        *format = SK2_CLOUD_PCD;
    else
        return SK2_EINVAL;
    return 0;
}

const char *sk2_cloud_format_extension(sk2_cloud_format_t format)
{
    return format == SK2_CLOUD_PLY ? "ply" : format == SK2_CLOUD_PCD ? "pcd" : NULL;
}
