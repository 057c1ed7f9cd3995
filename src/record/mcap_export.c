/* Export of a recording into MCAP with ROS 2 messages (include/sk2/mcap.h). Each recorded
 * stream becomes a channel of images and, when its intrinsics are known, a channel of
 * CameraInfo stamped like its frames, which is what ROS camera drivers publish and what
 * Foxglove's 3D panel needs to place an image. Frames go out in file order (arrival order),
 * with their capture times as log times. On request a depth frame goes out compressed instead
 * (compressedDepth png or rvl, re-encoded from the decoded frame whatever it was recorded in)
 * and also as a PointCloud2, stamped like the image. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record/format.h"
#include "ros2/cdr.h"
#include "ros2/mcap.h"
#include "sk2/cloud.h"
#include "sk2/error.h"
#include "sk2/mcap.h"
#include "sk2/sk2.h"

#define S_NAME_MAX (SK2_ROS2_TOKEN_MAX + 64)

/* One stream of one device: its channels (image, camera info) and what the names say. */
typedef struct {
    bool is_used;
    bool is_compressed; /* stored as JPEG: written as CompressedImage */
    bool is_packed;     /* depth as compressedDepth (png or rvl): a CompressedImage */
    bool has_info;
    bool has_cloud; /* depth also as PointCloud2 */
    sk2_ros2_depth_codec_t packing;
    uint16_t image_channel;
    uint16_t info_channel;
    uint16_t cloud_channel;
    sk2_stream_info_t info;
    char frame_id[S_NAME_MAX];
} s_stream_t;

typedef struct {
    s_stream_t streams[SK2_REC_STREAMS_MAX];
    bool has_jpeg_color; /* colour frames stored as JPEG: a CompressedImage channel */
} s_device_t;

static s_stream_t *s_stream_of(s_device_t *devices, const sk2_recording_frame_info_t *info)
{
    s_device_t *d = &devices[info->device];
    for (size_t s = 0; s < SK2_REC_STREAMS_MAX; s++)
        if (d->streams[s].is_used && d->streams[s].info.kind == info->kind)
            return &d->streams[s];
    return NULL;
}

/* Writes the Metadata records: the recording, then each exported device's description (its
 * streams as s_add_channels found them). */
static int s_add_metadata(sk2_mcap_writer_t *mcap, sk2_recording_reader_t *reader, size_t first,
                          size_t last, s_device_t *devices)
{
    char created[32], frames[32], version[16];
    unsigned major = 0, minor = 0;
    sk2_recording_reader_version(reader, &major, &minor);
    snprintf(created, sizeof created, "%lld", (long long)sk2_recording_reader_created_us(reader));
    snprintf(frames, sizeof frames, "%zu", sk2_recording_reader_frame_count(reader));
    snprintf(version, sizeof version, "%u.%u", major, minor);
    const char *recording[] = {"format",      sk2_recording_reader_format(reader),
                               "version",     version,
                               "created_us",  created,
                               "frames",      frames,
                               "written_by",  "sk2 export",
                               "sk2_library", sk2_version()};
    int rc = sk2_mcap_writer_add_metadata(mcap, "sk2.recording", recording, 6);
    for (size_t d = first; d <= last && rc == 0; d++) {
        char name[32], index[16], streams[128] = "", units[64] = "";
        snprintf(name, sizeof name, "sk2.device.%zu", d);
        snprintf(index, sizeof index, "%zu", d);
        for (size_t s = 0; s < SK2_REC_STREAMS_MAX; s++) {
            const s_stream_t *st = &devices[d].streams[s];
            if (!st->is_used)
                continue;
            size_t at = strlen(streams);
            snprintf(streams + at, sizeof streams - at, "%s%s %ux%u %s", at ? ", " : "",
                     sk2_stream_kind_name(st->info.kind), st->info.width, st->info.height,
                     sk2_pixel_format_name(st->info.format));
            if (st->info.kind == SK2_STREAM_DEPTH)
                snprintf(units, sizeof units, "%.9g", st->info.depth_unit_m);
        }
        const char *kv[] = {"index",        index,
                            "id",           sk2_recording_reader_device_id(reader, d),
                            "serial",       sk2_recording_reader_device_serial(reader, d),
                            "backend",      sk2_recording_reader_device_backend(reader, d),
                            "streams",      streams,
                            "depth_unit_m", units};
        rc = sk2_mcap_writer_add_metadata(mcap, name, kv, 6);
    }
    return rc;
}

/* Adds the schemas, and a channel (or two) for every stream of the exported devices. */
static int s_add_channels(sk2_mcap_writer_t *mcap, sk2_recording_reader_t *reader, size_t first,
                          size_t last, s_device_t *devices, const sk2_mcap_options_t *options)
{
    uint16_t schemas[SK2_ROS2_TYPE_COUNT];
    int rc = 0;
    /* The point cloud schema only when there are clouds, so a plain export stays as it was. */
    int types = options->has_cloud ? SK2_ROS2_POINT_CLOUD2 : SK2_ROS2_CAMERA_INFO;
    for (int t = 0; t <= types && rc == 0; t++)
        rc = sk2_mcap_writer_add_schema(mcap, sk2_ros2_type_name((sk2_ros2_type_t)t), "ros2msg",
                                        sk2_ros2_schema((sk2_ros2_type_t)t), &schemas[t]);
    /* Whether colour is stored as JPEG shows in its frames, not its description. Only an sk2
     * file hands out its stored bytes (a TUM folder's images are decoded). */
    bool is_sk2 = strcmp(sk2_recording_reader_format(reader), "sk2") == 0;
    size_t frames = sk2_recording_reader_frame_count(reader);
    for (size_t i = 0; i < frames && is_sk2; i++) {
        sk2_recording_frame_info_t info;
        sk2_recording_reader_frame_info(reader, i, &info);
        if (info.kind == SK2_STREAM_COLOR && info.device >= first && info.device <= last &&
            strcmp(info.codec, SK2_CODEC_JPEG) == 0)
            devices[info.device].has_jpeg_color = true;
    }
    for (size_t d = first; d <= last && rc == 0; d++) {
        char token[SK2_ROS2_TOKEN_MAX];
        const char *id = sk2_recording_reader_device_id(reader, d);
        sk2_ros2_name_token(id, token, sizeof token);
        size_t count = sk2_recording_reader_stream_count(reader, d);
        for (size_t s = 0; s < count && s < SK2_REC_STREAMS_MAX && rc == 0; s++) {
            s_stream_t *st = &devices[d].streams[s];
            if (sk2_recording_reader_stream_info(reader, d, s, &st->info) != 0 ||
                st->info.kind == SK2_STREAM_BODY)
                continue;
            st->is_used = true;
            bool is_depth = st->info.kind == SK2_STREAM_DEPTH;
            st->is_compressed = devices[d].has_jpeg_color && st->info.kind == SK2_STREAM_COLOR;
            st->is_packed = is_depth && options->depth != SK2_MCAP_DEPTH_IMAGE;
            st->packing =
                options->depth == SK2_MCAP_DEPTH_RVL ? SK2_ROS2_DEPTH_RVL : SK2_ROS2_DEPTH_PNG;
            const char *kind = sk2_stream_kind_name(st->info.kind);
            snprintf(st->frame_id, sizeof st->frame_id, "%s_%s_optical_frame", token, kind);
            char topic[S_NAME_MAX + 64], unit[32];
            snprintf(topic, sizeof topic, "/sk2/%s/%s/image_raw%s", token, kind,
                     st->is_compressed ? "/compressed"
                     : st->is_packed   ? "/compressedDepth"
                                       : "");
            snprintf(unit, sizeof unit, "%.9g", st->info.depth_unit_m);
            const char *kv[] = {"sk2_device_id", id, "sk2_stream", kind, "depth_unit_m", unit};
            bool is_image = !st->is_compressed && !st->is_packed;
            rc = sk2_mcap_writer_add_channel(
                mcap, schemas[is_image ? SK2_ROS2_IMAGE : SK2_ROS2_COMPRESSED_IMAGE], topic, "cdr",
                kv, is_depth ? 3 : 2, &st->image_channel);
            st->has_cloud = is_depth && options->has_cloud;
            if (rc == 0 && st->has_cloud) {
                snprintf(topic, sizeof topic, "/sk2/%s/depth/points", token);
                rc = sk2_mcap_writer_add_channel(mcap, schemas[SK2_ROS2_POINT_CLOUD2], topic, "cdr",
                                                 kv, 3, &st->cloud_channel);
            }
            st->has_info = st->info.has_intrinsics;
            if (rc == 0 && st->has_info) {
                snprintf(topic, sizeof topic, "/sk2/%s/%s/camera_info", token, kind);
                rc = sk2_mcap_writer_add_channel(mcap, schemas[SK2_ROS2_CAMERA_INFO], topic, "cdr",
                                                 kv, 2, &st->info_channel);
            }
        }
    }
    return rc;
}

/* Writes frame i's messages: the image, and the camera model stamped the same. */
static int s_add_frame(sk2_mcap_writer_t *mcap, sk2_recording_reader_t *reader, size_t i,
                       const sk2_recording_frame_info_t *info, s_stream_t *st, sk2_cdr_t *cdr,
                       char *why, size_t why_size)
{
    if (info->capture_time_us < 0)
        return sk2_rec_why(why, why_size, SK2_ECORRUPT, "frame %zu has a capture time before 1970",
                           i);
    sk2_ros2_header_t header = {info->capture_time_us, st->frame_id};
    sk2_frame_t *frame = NULL; /* decoded: every stream but JPEG colour */
    int rc;
    if (st->is_compressed && strcmp(info->codec, SK2_CODEC_JPEG) == 0) {
        const uint8_t *head, *payload;
        size_t head_size, payload_size;
        rc = sk2_recording_reader_read_encoded(reader, i, &head, &head_size, &payload,
                                               &payload_size);
        if (rc != 0)
            return sk2_rec_why(why, why_size, rc, "%s", sk2_recording_reader_why(reader));
        rc = sk2_ros2_compressed_image_encode(cdr, &header, "jpeg", payload, payload_size);
    } else if (st->is_compressed) {
        return sk2_rec_why(why, why_size, SK2_EUNSUPPORTED,
                           "frame %zu: colour stored as %s among JPEG frames; MCAP's compressed "
                           "topic takes one format",
                           i, info->codec);
    } else {
        rc = sk2_recording_reader_read_frame(reader, i, &frame);
        if (rc != 0)
            return sk2_rec_why(why, why_size, rc, "%s", sk2_recording_reader_why(reader));
        rc = st->is_packed ? sk2_ros2_compressed_depth_encode(cdr, &header, frame, st->packing)
                           : sk2_ros2_image_encode(cdr, &header, frame);
    }
    uint64_t time_ns = (uint64_t)info->capture_time_us * 1000u;
    if (rc == 0)
        rc = sk2_mcap_writer_add_message(mcap, st->image_channel, (uint32_t)info->sequence, time_ns,
                                         time_ns, cdr->data, cdr->size);
    if (rc == 0 && st->has_cloud) {
        rc = sk2_ros2_pointcloud2_encode(cdr, &header, frame, &st->info.intrinsics,
                                         st->info.depth_unit_m, NULL);
        if (rc == 0)
            rc = sk2_mcap_writer_add_message(mcap, st->cloud_channel, (uint32_t)info->sequence,
                                             time_ns, time_ns, cdr->data, cdr->size);
    }
    sk2_frame_destroy(&frame);
    if (rc == 0 && st->has_info) {
        rc = sk2_ros2_camera_info_encode(cdr, &header, info->width, info->height,
                                         &st->info.intrinsics);
        if (rc == 0)
            rc = sk2_mcap_writer_add_message(mcap, st->info_channel, (uint32_t)info->sequence,
                                             time_ns, time_ns, cdr->data, cdr->size);
    }
    if (rc != 0 && why[0] == '\0')
        sk2_rec_why(why, why_size, rc, "frame %zu: %s", i,
                    sk2_mcap_writer_why(mcap)[0] ? sk2_mcap_writer_why(mcap) : sk2_strerror(rc));
    return rc;
}

int sk2_mcap_depth_parse(const char *name, sk2_mcap_depth_t *depth)
{
    static const char *const names[] = {"image", "png", "rvl"};
    for (size_t i = 0; name && depth && i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) {
            *depth = (sk2_mcap_depth_t)i;
            return 0;
        }
    return SK2_EINVAL;
}

/* Whether every exported device's depth stream can give point clouds, before anything is
 * written: a cloud needs the camera model and the unit of the values. Returns 0 or says why. */
static int s_check_clouds(sk2_recording_reader_t *reader, size_t first, size_t last, char *why,
                          size_t why_size)
{
    size_t depths = 0;
    for (size_t d = first; d <= last; d++) {
        size_t count = sk2_recording_reader_stream_count(reader, d);
        for (size_t s = 0; s < count && s < SK2_REC_STREAMS_MAX; s++) {
            sk2_stream_info_t info;
            if (sk2_recording_reader_stream_info(reader, d, s, &info) != 0 ||
                info.kind != SK2_STREAM_DEPTH)
                continue;
            const char *id = sk2_recording_reader_device_id(reader, d);
            const sk2_intrinsics_t *k = &info.intrinsics;
            if (!info.has_intrinsics ||
                !isfinite(k->fx + k->fy + k->cx + k->cy + k->k1 + k->k2 + k->k3 + k->p1 + k->p2) ||
                k->fx == 0.0 || k->fy == 0.0)
                return sk2_rec_why(why, why_size, SK2_EINVAL,
                                   "device %s's depth stream has no camera intrinsics; point "
                                   "clouds need them",
                                   id);
            if (!(info.depth_unit_m >= SK2_CLOUD_DEPTH_UNIT_MIN_M) ||
                !(info.depth_unit_m <= SK2_CLOUD_DEPTH_UNIT_MAX_M))
                return sk2_rec_why(why, why_size, SK2_EINVAL,
                                   "device %s's depth unit (%g m) is not usable for point clouds",
                                   id, info.depth_unit_m);
            depths++;
        }
    }
    if (depths == 0)
        return sk2_rec_why(why, why_size, SK2_EINVAL,
                           "no depth stream to make point clouds of in the exported devices");
    return 0;
}

int sk2_recording_export_mcap(sk2_recording_reader_t *reader, size_t device, const char *path,
                              const char *compression, sk2_recording_progress_fn progress,
                              void *arg, char *why, size_t why_size)
{
    if (!compression) {
        if (why && why_size > 0)
            sk2_rec_why(why, why_size, SK2_EINVAL, "unknown compression '(null)'");
        return SK2_EINVAL;
    }
    const sk2_mcap_options_t options = {.compression = compression};
    return sk2_recording_export_mcap_with(reader, device, path, &options, progress, arg, why,
                                          why_size);
}

int sk2_recording_export_mcap_with(sk2_recording_reader_t *reader, size_t device, const char *path,
                                   const sk2_mcap_options_t *with,
                                   sk2_recording_progress_fn progress, void *arg, char *why,
                                   size_t why_size)
{
    sk2_mcap_compression_t packing;
    size_t devices_count = reader ? sk2_recording_reader_device_count(reader) : 0;
    if (!why || why_size == 0)
        return SK2_EINVAL;
    why[0] = '\0';
    const sk2_mcap_options_t options = with ? *with : (sk2_mcap_options_t){0};
    const char *compression = options.compression ? options.compression : "zstd";
    if (!reader || !path || devices_count == 0 ||
        (device != SK2_MCAP_ALL_DEVICES && device >= devices_count))
        return sk2_rec_why(why, why_size, SK2_EINVAL, "no open recording or no such device");
    if (sk2_mcap_compression_parse(compression, &packing) != 0)
        return sk2_rec_why(why, why_size, SK2_EINVAL, "unknown compression '%s'", compression);
    if ((unsigned)options.depth > SK2_MCAP_DEPTH_RVL)
        return sk2_rec_why(why, why_size, SK2_EINVAL, "unknown depth mode %d", (int)options.depth);
    size_t first = device == SK2_MCAP_ALL_DEVICES ? 0 : device;
    size_t last = device == SK2_MCAP_ALL_DEVICES ? devices_count - 1 : device;
    int checked = options.has_cloud ? s_check_clouds(reader, first, last, why, why_size) : 0;
    if (checked != 0)
        return checked;
    s_device_t *devices = calloc(devices_count, sizeof *devices);
    sk2_mcap_writer_t *mcap = sk2_mcap_writer_new();
    sk2_cdr_t cdr = {0};
    int rc = SK2_ENOMEM;
    if (!devices || !mcap) {
        sk2_rec_why(why, why_size, rc, "out of memory");
        goto out;
    }
    char library[64];
    snprintf(library, sizeof library, "sk2 %s", sk2_version());
    if ((rc = sk2_mcap_writer_open(mcap, path, packing, "ros2", library)) != 0 ||
        (rc = s_add_channels(mcap, reader, first, last, devices, &options)) != 0 ||
        (rc = s_add_metadata(mcap, reader, first, last, devices)) != 0) {
        sk2_rec_why(why, why_size, rc, "%s", sk2_mcap_writer_why(mcap));
        goto out;
    }
    size_t frames = sk2_recording_reader_frame_count(reader), total = 0, done = 0;
    sk2_recording_frame_info_t info;
    for (size_t i = 0; i < frames; i++)
        if (sk2_recording_reader_frame_info(reader, i, &info) == 0 && info.device >= first &&
            info.device <= last && s_stream_of(devices, &info))
            total++;
    for (size_t i = 0; i < frames && rc == 0; i++) {
        sk2_recording_reader_frame_info(reader, i, &info);
        s_stream_t *st =
            info.device >= first && info.device <= last ? s_stream_of(devices, &info) : NULL;
        if (!st)
            continue;
        rc = s_add_frame(mcap, reader, i, &info, st, &cdr, why, why_size);
        done++;
        if (rc == 0 && progress && !progress(arg, done, total))
            rc = sk2_rec_why(why, why_size, SK2_EINTR, "stopped after %zu of %zu frames", done,
                             total);
    }
    if (rc == 0 && (rc = sk2_mcap_writer_close(mcap)) != 0)
        sk2_rec_why(why, why_size, rc, "%s", sk2_mcap_writer_why(mcap));
out:
    sk2_cdr_free(&cdr);
    sk2_mcap_writer_destroy(&mcap);
    free(devices);
    return rc;
}
