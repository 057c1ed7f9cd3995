/* Point cloud files from depth frames. Both formats are a text header followed by the points,
 * and for this cloud (x, y, z as 32-bit floats, no other property) their binary bodies are the
 * same bytes: PLY says binary_little_endian outright, and PCD's binary DATA is the writer's
 * memory layout, which every PCL reader takes as little-endian. Writing the bytes in that
 * order whatever the host keeps files from a big-endian machine readable everywhere.
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

static int s_write_header(FILE *out, sk2_cloud_format_t format, bool is_ascii, size_t points)
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
                    "end_header\n",
                    is_ascii ? "ascii" : "binary_little_endian", points);
    else
        n = fprintf(out,
                    "# .PCD v0.7 - Point Cloud Data file format (written by sk2: depth camera "
                    "frame, metres)\n"
                    "VERSION 0.7\n"
                    "FIELDS x y z\n"
                    "SIZE 4 4 4\n"
                    "TYPE F F F\n"
                    "COUNT 1 1 1\n"
                    "WIDTH %zu\n"
                    "HEIGHT 1\n"
                    "VIEWPOINT 0 0 0 1 0 0 0\n"
                    "POINTS %zu\n"
                    "DATA %s\n",
                    points, points, is_ascii ? "ascii" : "binary");
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

int sk2_cloud_write(FILE *out, const sk2_frame_t *depth, const sk2_intrinsics_t *intrinsics,
                    double depth_unit_m, sk2_cloud_format_t format, bool is_ascii, size_t *points)
{
    if (points)
        *points = 0;
    if (!out || !depth || !intrinsics || sk2_frame_format(depth) != SK2_PIXEL_DEPTH_MM16 ||
        !s_is_usable(intrinsics) || !(depth_unit_m >= SK2_CLOUD_DEPTH_UNIT_MIN_M) ||
        !(depth_unit_m <= SK2_CLOUD_DEPTH_UNIT_MAX_M) ||
        (format != SK2_CLOUD_PLY && format != SK2_CLOUD_PCD))
        return SK2_EINVAL;
    /* Counted first (no capacity: nothing is computed), so that memory follows the points. */
    size_t count = sk2_frame_to_points(depth, intrinsics, depth_unit_m, NULL, 0);
    if (count > SK2_CLOUD_MAX_POINTS)
        return SK2_ELIMIT;
    float *xyz = malloc(count ? 12 * count : 12);
    if (!xyz)
        return SK2_ENOMEM;
    sk2_frame_to_points(depth, intrinsics, depth_unit_m, xyz, count);
    int rc = s_write_header(out, format, is_ascii, count);
    if (rc == 0)
        rc = is_ascii ? s_write_ascii(out, xyz, count) : s_write_binary(out, xyz, count);
    if (rc == 0 && fflush(out) != 0)
        rc = SK2_ESYS;
    free(xyz);
    if (rc == 0 && points)
        *points = count;
    return rc;
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
