/* Device descriptions in recordings: the JSON a DEVC chunk holds, written from what a device
 * (or a server's `me`) says and parsed back with a limit on every field, because a recording
 * is a file from anywhere. The same names as the `me` record (docs/protocol.md), so the two
 * read alike. Also the chunk CRC, which is zlib's CRC-32. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "proto/pose.h"
#include "record/reader_impl.h"
#include "sk2/error.h"

uint32_t sk2_rec_crc(uint32_t crc, const uint8_t *data, size_t size)
{
    /* zlib takes sizes as uInt: feed large bodies in pieces. */
    while (size > 0) {
        uInt piece = size > (1u << 30) ? (1u << 30) : (uInt)size;
        crc = (uint32_t)crc32(crc, data, piece);
        data += piece;
        size -= piece;
    }
    return crc;
}

json_t *sk2_rec_intrinsics_to_json(const sk2_intrinsics_t *k)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "fx", k->fx, "fy", k->fy,
                     "cx", k->cx, "cy", k->cy, "k1", k->k1, "k2", k->k2, "k3", k->k3, "p1", k->p1,
                     "p2", k->p2);
}

bool sk2_rec_intrinsics_parse(const json_t *object, sk2_intrinsics_t *k)
{
    static const char *const names[] = {"fx", "fy", "cx", "cy", "k1", "k2", "k3", "p1", "p2"};
    double *fields[] = {&k->fx, &k->fy, &k->cx, &k->cy, &k->k1, &k->k2, &k->k3, &k->p1, &k->p2};
    if (!json_is_object(object))
        return false;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        json_t *value = json_object_get(object, names[i]);
        if (!json_is_number(value) || !isfinite(json_number_value(value)))
            return false;
        *fields[i] = json_number_value(value);
    }
    return true;
}

int sk2_rec_streams_check(const sk2_stream_info_t *streams, size_t count, char *why,
                          size_t why_size)
{
    if (!streams || count == 0 || count > SK2_REC_STREAMS_MAX) {
        snprintf(why, why_size, "a device needs 1..%d streams, not %zu", SK2_REC_STREAMS_MAX,
                 count);
        return SK2_EINVAL;
    }
    for (size_t i = 0; i < count; i++) {
        const sk2_stream_info_t *s = &streams[i];
        if (s->kind < SK2_STREAM_DEPTH || s->kind > SK2_STREAM_BODY ||
            sk2_pixel_format_bytes(s->format) == 0 || s->width == 0 || s->height == 0 ||
            s->width > SK2_FRAME_MAX_WIDTH || s->height > SK2_FRAME_MAX_HEIGHT ||
            !isfinite(s->fps) || s->fps < 0 || !isfinite(s->depth_unit_m) || s->depth_unit_m < 0) {
            snprintf(why, why_size, "stream %zu is not a valid stream description", i);
            return SK2_EINVAL;
        }
        for (size_t j = 0; j < i; j++)
            if (streams[j].kind == s->kind) {
                snprintf(why, why_size, "two %s streams", sk2_stream_kind_name(s->kind));
                return SK2_EINVAL;
            }
    }
    return 0;
}

json_t *sk2_rec_device_to_json(const char *id, const char *serial, const char *backend,
                               const sk2_stream_info_t *streams, size_t stream_count)
{
    json_t *list = json_array();
    for (size_t i = 0; list && i < stream_count; i++) {
        const sk2_stream_info_t *info = &streams[i];
        json_t *stream =
            json_pack("{s:s, s:s, s:i, s:i, s:f}", "kind", sk2_stream_kind_name(info->kind),
                      "format", sk2_pixel_format_name(info->format), "width", info->width, "height",
                      info->height, "fps", info->fps);
        if (stream && info->depth_unit_m > 0)
            json_object_set_new(stream, "depth_unit_m", json_real(info->depth_unit_m));
        if (stream && info->has_intrinsics)
            json_object_set_new(stream, "intrinsics",
                                sk2_rec_intrinsics_to_json(&info->intrinsics));
        if (!stream || json_array_append_new(list, stream) != 0) {
            json_decref(list);
            return NULL;
        }
    }
    return list ? json_pack("{s:s, s:s, s:s, s:o}", "id", id, "serial", serial ? serial : "",
                            "backend", backend ? backend : "", "streams", list)
                : NULL;
}

int sk2_rec_device_place(json_t *description, const sk2_pose_t *pose,
                         const sk2_extrinsics_t *depth_to_color)
{
    if (pose && json_object_set_new(description, "pose",
                                    sk2_rigid_to_json(pose->rotation, pose->translation)) != 0)
        return SK2_ENOMEM;
    if (depth_to_color && json_object_set_new(description, "depth_to_color",
                                              sk2_rigid_to_json(depth_to_color->rotation,
                                                                depth_to_color->translation)) != 0)
        return SK2_ENOMEM;
    return 0;
}

/* Copies a JSON string member of 0..size-1 bytes without control characters into out. */
static bool s_copy_string(const json_t *object, const char *name, char *out, size_t size,
                          bool may_be_empty)
{
    json_t *value = json_object_get(object, name);
    if (!json_is_string(value))
        return false;
    const char *text = json_string_value(value);
    size_t length = json_string_length(value);
    if (length >= size || (!may_be_empty && length == 0) || strlen(text) != length)
        return false;
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return false;
    memcpy(out, text, length + 1);
    return true;
}

static sk2_pixel_format_t s_format_from_name(const char *name)
{
    for (int f = SK2_PIXEL_DEPTH_MM16; f <= SK2_PIXEL_BGRA32; f++)
        if (strcmp(sk2_pixel_format_name((sk2_pixel_format_t)f), name) == 0)
            return (sk2_pixel_format_t)f;
    return (sk2_pixel_format_t)0;
}

static bool s_parse_stream(const json_t *object, sk2_stream_info_t *info)
{
    char kind[16], format[16];
    json_t *width = json_object_get(object, "width"), *height = json_object_get(object, "height");
    json_t *fps = json_object_get(object, "fps"), *unit = json_object_get(object, "depth_unit_m");
    if (!json_is_object(object) || !s_copy_string(object, "kind", kind, sizeof kind, false) ||
        !s_copy_string(object, "format", format, sizeof format, false) || !json_is_integer(width) ||
        !json_is_integer(height) || !json_is_number(fps) || (unit && !json_is_number(unit)))
        return false;
    memset(info, 0, sizeof *info);
    for (int k = SK2_STREAM_DEPTH; k <= SK2_STREAM_BODY; k++)
        if (strcmp(sk2_stream_kind_name((sk2_stream_kind_t)k), kind) == 0)
            info->kind = (sk2_stream_kind_t)k;
    info->format = s_format_from_name(format);
    json_int_t w = json_integer_value(width), h = json_integer_value(height);
    if (!info->kind || !info->format || w < 1 || h < 1 || w > SK2_FRAME_MAX_WIDTH ||
        h > SK2_FRAME_MAX_HEIGHT)
        return false;
    info->width = (uint32_t)w;
    info->height = (uint32_t)h;
    info->fps = json_number_value(fps);
    info->depth_unit_m = unit ? json_number_value(unit) : 0.0;
    if (!isfinite(info->fps) || info->fps < 0 || info->fps > 1000 ||
        !isfinite(info->depth_unit_m) || info->depth_unit_m < 0 || info->depth_unit_m > 1)
        return false;
    json_t *intrinsics = json_object_get(object, "intrinsics");
    if (intrinsics) {
        if (!sk2_rec_intrinsics_parse(intrinsics, &info->intrinsics))
            return false;
        info->has_intrinsics = true;
    }
    return true;
}

int sk2_rec_device_parse(const uint8_t *text, size_t size, sk2_rec_device_t *device, char *why,
                         size_t why_size)
{
    json_error_t error;
    /* JSON_DISABLE_EOF_CHECK off: the whole body must be one value. */
    json_t *root = json_loadb((const char *)text, size, JSON_REJECT_DUPLICATES, &error);
    int rc = SK2_ECORRUPT;
    if (!root) {
        snprintf(why, why_size, "device description is not JSON: %s", error.text);
        return rc;
    }
    memset(device, 0, sizeof *device);
    json_t *streams = json_object_get(root, "streams");
    if (!json_is_object(root) || !s_copy_string(root, "id", device->id, sizeof device->id, false) ||
        !s_copy_string(root, "serial", device->serial, sizeof device->serial, true) ||
        !s_copy_string(root, "backend", device->backend, sizeof device->backend, true) ||
        !json_is_array(streams) || json_array_size(streams) < 1 ||
        json_array_size(streams) > SK2_REC_STREAMS_MAX) {
        snprintf(why, why_size, "device description lacks id, serial, backend or 1..%d streams",
                 SK2_REC_STREAMS_MAX);
        goto out;
    }
    device->stream_count = json_array_size(streams);
    for (size_t i = 0; i < device->stream_count; i++)
        if (!s_parse_stream(json_array_get(streams, i), &device->streams[i])) {
            snprintf(why, why_size, "device %s: stream %zu is malformed", device->id, i);
            goto out;
        }
    /* Where the device was (optional: older files and TUM folders have neither). */
    char place_why[200];
    json_t *pose = json_object_get(root, "pose"),
           *extrinsics = json_object_get(root, "depth_to_color");
    if (pose && sk2_rigid_from_json(pose, SK2_POSE_TRANSLATION_MAX_M, device->pose.rotation,
                                    device->pose.translation, place_why, sizeof place_why) != 0) {
        snprintf(why, why_size, "device %s: pose: %s", device->id, place_why);
        goto out;
    }
    device->has_pose = pose != NULL;
    if (extrinsics && sk2_rigid_from_json(
                          extrinsics, SK2_EXTRINSICS_TRANSLATION_MAX_M, device->extrinsics.rotation,
                          device->extrinsics.translation, place_why, sizeof place_why) != 0) {
        snprintf(why, why_size, "device %s: depth_to_color: %s", device->id, place_why);
        goto out;
    }
    device->has_extrinsics = extrinsics != NULL;
    char check_why[128];
    if (sk2_rec_streams_check(device->streams, device->stream_count, check_why, sizeof check_why) !=
        0) {
        snprintf(why, why_size, "device %s: %s", device->id, check_why);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}
