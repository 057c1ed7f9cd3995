/* Export of a recording into a TUM RGB-D folder: one PNG per frame named after its capture
 * time, the lists that index them, and sk2.json for what the layout has no place for. Depth is
 * written at TUM's 5000 values per metre when the recorded unit is an exact multiple of it
 * (millimetres become x5, which every Kinect range fits); otherwise in the recorded unit, which
 * sk2.json then names. Either way nothing is lost: opening the folder again divides back. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "record/reader_impl.h"
#include "sk2/error.h"
#include "sk2/image.h"

#define S_TUM_UNIT_M (1.0 / 5000.0)
#define S_PNG_LEVEL  1 /* zlib level: fast; TUM readers do not care */

typedef struct {
    sk2_stream_kind_t kind;
    const char *folder;
    const char *list;
    const char *title;
    FILE *file;        /* the list, open once the first frame is written */
    int64_t last_time; /* capture time of the previous frame, for unique names */
    bool has_frames;
} s_list_t;

static int s_open_list(const char *dir, s_list_t *list, char *why, size_t why_size)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, list->folder);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return sk2_rec_why(why, why_size, SK2_ESYS, "cannot create %s: %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/%s", dir, list->list);
    list->file = fopen(path, "w");
    if (!list->file)
        return sk2_rec_why(why, why_size, SK2_ESYS, "cannot create %s: %s", path, strerror(errno));
    fprintf(list->file, "# %s\n# written by sk2\n# timestamp filename\n", list->title);
    return 0;
}

/* The factor from recorded depth values to PNG values, and the PNG's unit. */
static unsigned s_depth_factor(const sk2_stream_info_t *info, double *png_unit_m)
{
    double ratio = info->depth_unit_m / S_TUM_UNIT_M;
    if (info->depth_unit_m > 0 && ratio >= 1 && ratio <= 1000 &&
        fabs(ratio - round(ratio)) < 1e-6) {
        *png_unit_m = S_TUM_UNIT_M;
        return (unsigned)round(ratio);
    }
    *png_unit_m = info->depth_unit_m > 0 ? info->depth_unit_m : 0.001;
    return 1;
}

static int s_write_sidecar(sk2_recording_reader_t *reader, size_t device, const char *dir,
                           double png_unit_m, char *why, size_t why_size)
{
    const sk2_rec_device_t *d = &reader->devices[device];
    json_t *description =
        sk2_rec_device_to_json(d->id, d->serial, d->backend, d->streams, d->stream_count);
    if (description && sk2_rec_device_place(description, d->has_pose ? &d->pose : NULL,
                                            d->has_extrinsics ? &d->extrinsics : NULL) != 0)
        json_decref(description), description = NULL;
    json_t *root = description ? json_pack("{s:s, s:i, s:o, s:f}", "format", "sk2-tum", "version",
                                           1, "device", description, "depth_png_unit_m", png_unit_m)
                               : NULL;
    char path[4096];
    snprintf(path, sizeof path, "%s/sk2.json", dir);
    int rc = root && json_dump_file(root, path, JSON_INDENT(2)) == 0
                 ? 0
                 : sk2_rec_why(why, why_size, SK2_ESYS, "cannot write %s", path);
    json_decref(root);
    return rc;
}

int sk2_recording_export_tum(sk2_recording_reader_t *reader, size_t device, const char *dir,
                             char *why, size_t why_size)
{
    return sk2_recording_export_tum_with_progress(reader, device, dir, NULL, NULL, why, why_size);
}

int sk2_recording_export_tum_with_progress(sk2_recording_reader_t *reader, size_t device,
                                           const char *dir, sk2_recording_progress_fn progress,
                                           void *arg, char *why, size_t why_size)
{
    if (!reader || !dir || !reader->is_open || device >= reader->device_count)
        return sk2_rec_why(why, why_size, SK2_EINVAL, "no open recording or no such device");
    char path[4096];
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return sk2_rec_why(why, why_size, SK2_ESYS, "cannot create %s: %s", dir, strerror(errno));
    snprintf(path, sizeof path, "%s/depth.txt", dir);
    if (access(path, F_OK) == 0)
        return sk2_rec_why(why, why_size, SK2_EEXIST, "%s exists: export into an empty folder",
                           path);
    s_list_t lists[] = {
        {SK2_STREAM_DEPTH, "depth", "depth.txt", "depth maps", NULL, 0, false},
        {SK2_STREAM_COLOR, "rgb", "rgb.txt", "color images", NULL, 0, false},
        {SK2_STREAM_IR, "ir", "ir.txt", "infrared images (sk2)", NULL, 0, false},
    };
    const size_t list_count = sizeof lists / sizeof lists[0];
    double png_unit_m = S_TUM_UNIT_M;
    unsigned factor = 1;
    for (size_t s = 0; s < reader->devices[device].stream_count; s++)
        if (reader->devices[device].streams[s].kind == SK2_STREAM_DEPTH)
            factor = s_depth_factor(&reader->devices[device].streams[s], &png_unit_m);

    /* The frames to write, counted first so that progress can say "of how many". */
    size_t total = 0, done = 0;
    for (size_t i = 0; i < reader->entry_count; i++)
        for (size_t l = 0; l < list_count; l++)
            total +=
                reader->entries[i].device == device && reader->entries[i].kind == lists[l].kind;
    int rc = 0;
    sk2_frame_t *frame = NULL;
    for (size_t i = 0; i < reader->entry_count && rc == 0; i++) {
        const sk2_rec_entry_t *e = &reader->entries[i];
        s_list_t *list = NULL;
        for (size_t l = 0; l < list_count; l++)
            if (lists[l].kind == e->kind)
                list = &lists[l];
        if (e->device != device || !list)
            continue;
        if (e->capture_time_us < 0 || (list->has_frames && e->capture_time_us <= list->last_time)) {
            rc = sk2_rec_why(why, why_size, SK2_ECORRUPT,
                             "%s frames are not in strictly increasing capture time: TUM names "
                             "files after it",
                             list->folder);
            break;
        }
        if (!list->file && (rc = s_open_list(dir, list, why, why_size)) != 0)
            break;
        rc = sk2_recording_reader_read_frame(reader, i, &frame);
        if (rc != 0) {
            sk2_rec_why(why, why_size, rc, "%s", reader->why);
            break;
        }
        if (e->kind == SK2_STREAM_DEPTH && factor > 1) {
            uint16_t *px = sk2_frame_data16(frame);
            size_t n = (size_t)e->width * e->height;
            for (size_t p = 0; p < n && rc == 0; p++) {
                if (px[p] > 65535 / factor)
                    rc = sk2_rec_why(why, why_size, SK2_ELIMIT,
                                     "a depth of %u does not fit TUM's 16-bit 1/5000 m after x%u",
                                     px[p], factor);
                px[p] = (uint16_t)(px[p] * factor);
            }
        }
        char stamp[40], name[64];
        snprintf(stamp, sizeof stamp, "%lld.%06lld", (long long)(e->capture_time_us / 1000000),
                 (long long)(e->capture_time_us % 1000000));
        snprintf(name, sizeof name, "%s/%s.png", list->folder, stamp);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        char png_why[300];
        if (rc == 0 && sk2_frame_write_png(frame, path, S_PNG_LEVEL, png_why, sizeof png_why) != 0)
            rc = sk2_rec_why(why, why_size, SK2_ESYS, "%s: %s", path, png_why);
        sk2_frame_destroy(&frame);
        if (rc == 0 && fprintf(list->file, "%s %s\n", stamp, name) < 0)
            rc = sk2_rec_why(why, why_size, SK2_ESYS, "cannot write %s: %s", list->list,
                             strerror(errno));
        list->last_time = e->capture_time_us;
        list->has_frames = true;
        done++;
        if (rc == 0 && progress && !progress(arg, done, total))
            rc = sk2_rec_why(why, why_size, SK2_EINTR, "stopped after %zu of %zu frames", done,
                             total);
    }
    for (size_t l = 0; l < list_count; l++)
        if (lists[l].file && fclose(lists[l].file) != 0 && rc == 0)
            rc = sk2_rec_why(why, why_size, SK2_ESYS, "cannot write %s: %s", lists[l].list,
                             strerror(errno));
    if (rc == 0)
        rc = s_write_sidecar(reader, device, dir, png_unit_m, why, why_size);
    return rc;
}
