/* TUM RGB-D folders (the layout of the TUM benchmark and of many public RGB-D datasets):
 * depth.txt and rgb.txt list "timestamp path" per frame, depth images are 16-bit PNGs at 5000
 * values per metre, colour images are 8-bit PNGs (or JPEGs). A reader opens such a folder as a
 * recording of one device; the exporter writes one. sk2 adds ir.txt (IR images, 16-bit) and
 * sk2.json (the device's id, serial and streams, and the unit of the depth PNGs), which TUM
 * tools ignore and which make export followed by import give back the same pixels and times.
 *
 * Timestamps are read as decimal text straight into microseconds, never through a double, so
 * that the times written by the exporter ("%lld.%06lld") come back exactly. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include "proto/header.h"
#include "record/reader_impl.h"
#include "sk2/error.h"
#include "sk2/image.h"

#define S_TUM_UNIT_M     (1.0 / 5000.0) /* TUM depth PNGs: 5000 values per metre */
#define S_LIST_MAX_BYTES (64u << 20)    /* a depth.txt or rgb.txt */
#define S_LINE_MAX       4096
#define S_IMAGE_MAX      (64u << 20) /* bytes of one JPEG file */
#define S_SK2_JSON_MAX   (1u << 20)

/* The lists sk2 reads, and what each holds. */
static const struct {
    const char *list;
    const char *folder;
    sk2_stream_kind_t kind;
} s_lists[] = {
    {"depth.txt", "depth", SK2_STREAM_DEPTH},
    {"rgb.txt", "rgb", SK2_STREAM_COLOR},
    {"ir.txt", "ir", SK2_STREAM_IR},
};

#define S_LISTS (sizeof s_lists / sizeof s_lists[0])

/* Parses "seconds[.fraction]" (up to 6 fraction digits kept, more must be zeros... or are
 * truncated) into microseconds. Returns false for anything else. */
static bool s_parse_time(const char *text, size_t length, int64_t *time_us)
{
    int64_t seconds = 0, micros = 0;
    size_t i = 0;
    if (length == 0 || length > 32)
        return false;
    for (; i < length && text[i] >= '0' && text[i] <= '9'; i++) {
        seconds = seconds * 10 + (text[i] - '0');
        if (seconds > 100000000000LL) /* year 5138: a typo, not a time */
            return false;
    }
    if (i == 0)
        return false;
    if (i < length) {
        if (text[i++] != '.')
            return false;
        int digits = 0;
        for (; i < length && text[i] >= '0' && text[i] <= '9'; i++, digits++)
            if (digits < 6)
                micros = micros * 10 + (text[i] - '0');
        if (i != length)
            return false;
        for (; digits < 6; digits++)
            micros *= 10;
    }
    *time_us = seconds * 1000000 + micros;
    return true;
}

/* A relative path inside the folder: no leading '/', no ".." component, printable. */
static bool s_path_ok(const char *path)
{
    if (!*path || path[0] == '/')
        return false;
    for (const char *p = path; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return false;
    for (const char *p = path; p; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        if (strncmp(p, "..", 2) == 0 && (p[2] == '/' || p[2] == '\0'))
            return false;
    }
    return true;
}

static char *s_join(const char *dir, const char *name)
{
    size_t length = strlen(dir) + 1 + strlen(name) + 1;
    char *path = malloc(length);
    if (path)
        snprintf(path, length, "%s/%s", dir, name);
    return path;
}

/* Reads a whole small file; NULL (and errno) on failure or above max bytes. Every call that
 * touches the file is checked: a short read, a failed fstat or a failed close is an error, not a
 * shorter image. */
static uint8_t *s_slurp(const char *path, size_t max, size_t *size)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return NULL;
    uint8_t *data = NULL;
    int saved = 0;
    struct stat st;
    if (fstat(fileno(file), &st) != 0)
        saved = errno;
    else if (!S_ISREG(st.st_mode))
        saved = EISDIR;
    else if (st.st_size < 0 || (uint64_t)st.st_size > max)
        saved = EFBIG;
    else if (!(data = malloc((size_t)st.st_size + 1)))
        saved = ENOMEM;
    else if (fread(data, 1, (size_t)st.st_size, file) != (size_t)st.st_size)
        saved = ferror(file) ? EIO : ENODATA; /* an error, or the file shrank under us */
    if (fclose(file) != 0 && saved == 0)
        saved = errno;
    if (saved != 0) {
        free(data);
        errno = saved;
        return NULL;
    }
    data[st.st_size] = '\0';
    *size = (size_t)st.st_size;
    return data;
}

static bool s_is_jpeg_name(const char *name)
{
    size_t n = strlen(name);
    return (n > 4 && strcasecmp(name + n - 4, ".jpg") == 0) ||
           (n > 5 && strcasecmp(name + n - 5, ".jpeg") == 0);
}

/* Reads one list into entries of `kind`. Missing list: 0 and nothing added. */
static int s_read_list(sk2_recording_reader_t *self, const char *dir, size_t which, size_t *added)
{
    *added = 0;
    char *path = s_join(dir, s_lists[which].list);
    if (!path)
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory");
    size_t size = 0;
    errno = 0;
    char *text = (char *)s_slurp(path, S_LIST_MAX_BYTES, &size);
    int saved = errno;
    free(path);
    if (!text)
        return saved == ENOENT ? 0
                               : sk2_rec_fail(self, SK2_ESYS, "cannot read %s: %s",
                                              s_lists[which].list, strerror(saved));
    int rc = 0;
    size_t line_number = 0;
    char *line = text;
    while (rc == 0 && line < text + size) {
        char *end = memchr(line, '\n', (size_t)(text + size - line));
        if (!end)
            end = text + size;
        *end = '\0';
        line_number++;
        size_t length = (size_t)(end - line);
        if (length > 0 && line[length - 1] == '\r')
            line[--length] = '\0';
        if (length > S_LINE_MAX || strlen(line) != length) {
            rc = sk2_rec_fail(self, SK2_ECORRUPT, "%s line %zu is too long or holds a NUL",
                              s_lists[which].list, line_number);
            break;
        }
        char *p = line + strspn(line, " \t");
        if (*p != '\0' && *p != '#') {
            size_t time_length = strcspn(p, " \t");
            char *name = p + time_length + strspn(p + time_length, " \t");
            size_t name_length = strcspn(name, " \t");
            name[name_length] = '\0';
            sk2_rec_entry_t entry = {
                .kind = (uint8_t)s_lists[which].kind,
                .stored = s_is_jpeg_name(name) ? SK2_REC_STORED_JPEG : SK2_REC_STORED_PNG,
            };
            if (!s_parse_time(p, time_length, &entry.capture_time_us) || !s_path_ok(name)) {
                rc = sk2_rec_fail(self, SK2_ECORRUPT,
                                  "%s line %zu is not \"timestamp relative/path\"",
                                  s_lists[which].list, line_number);
                break;
            }
            if (entry.stored == SK2_REC_STORED_JPEG && s_lists[which].kind != SK2_STREAM_COLOR) {
                rc = sk2_rec_fail(self, SK2_EUNSUPPORTED, "%s line %zu: JPEG depth or IR",
                                  s_lists[which].list, line_number);
                break;
            }
            entry.sequence = *added;
            entry.path = s_join(dir, name);
            if (!entry.path)
                rc = sk2_rec_fail(self, SK2_ENOMEM, "out of memory");
            else if ((rc = sk2_rec_entry_push(self, &entry)) != 0)
                free(entry.path);
            else
                (*added)++;
        }
        line = end + 1;
    }
    free(text);
    return rc;
}

/* Checks a PNG's declared size against the reader's frame budget before libpng decodes it: a
 * few hundred bytes of PNG can declare 16384 x 16384 pixels and inflate to a gigabyte, and a
 * folder from anywhere must not cost more memory than the budget a recording's frames get. Reads
 * only the signature and the IHDR chunk; a file too short or odd for that is left to libpng,
 * which says what is wrong with it. Returns 0 or SK2_ELIMIT (with why set). */
static int s_png_fits(sk2_recording_reader_t *self, const char *path)
{
    FILE *file = fopen(path, "rb");
    if (!file)
        return 0; /* libpng's open says why */
    uint8_t head[26];
    size_t got = fread(head, 1, sizeof head, file);
    fclose(file);
    static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (got != sizeof head || memcmp(head, signature, 8) != 0 || memcmp(head + 12, "IHDR", 4) != 0)
        return 0;
    uint32_t width =
        (uint32_t)head[16] << 24 | (uint32_t)head[17] << 16 | (uint32_t)head[18] << 8 | head[19];
    uint32_t height =
        (uint32_t)head[20] << 24 | (uint32_t)head[21] << 16 | (uint32_t)head[22] << 8 | head[23];
    uint8_t depth = head[24], type = head[25];
    /* The layouts sk2 reads (png.c); any other is refused by it before it allocates. */
    uint64_t bytes_per_pixel = depth == 16 && type == 0  ? 2
                               : depth == 8 && type == 2 ? 3
                               : depth == 8 && type == 6 ? 4
                                                         : 0;
    uint64_t bytes = (uint64_t)width * height * bytes_per_pixel;
    if (bytes > self->max_frame_bytes)
        return sk2_rec_fail(self, SK2_ELIMIT,
                            "%s: a %ux%u image is over the frame limit of %zu bytes", path, width,
                            height, self->max_frame_bytes);
    return 0;
}

/* Reads the first image of a stream to learn its size and format. */
static int s_probe(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry, uint32_t *width,
                   uint32_t *height, sk2_pixel_format_t *format)
{
    if (entry->stored == SK2_REC_STORED_JPEG) {
        size_t size = 0;
        uint8_t *data = s_slurp(entry->path, S_IMAGE_MAX, &size);
        if (!data)
            return sk2_rec_fail(self, SK2_ESYS, "cannot read %s: %s", entry->path, strerror(errno));
        tjhandle tj = tjInitDecompress();
        int w = 0, h = 0, sub = 0, space = 0;
        int ok =
            tj && tjDecompressHeader3(tj, data, (unsigned long)size, &w, &h, &sub, &space) == 0;
        if (tj)
            tjDestroy(tj);
        free(data);
        if (!ok || w < 1 || h < 1 || w > (int)SK2_FRAME_MAX_WIDTH || h > (int)SK2_FRAME_MAX_HEIGHT)
            return sk2_rec_fail(self, SK2_ECORRUPT, "%s is not a JPEG sk2 can read", entry->path);
        if ((uint64_t)w * (uint64_t)h * 3 > self->max_frame_bytes)
            return sk2_rec_fail(self, SK2_ELIMIT,
                                "%s: a %dx%d image is over the frame limit of %zu bytes",
                                entry->path, w, h, self->max_frame_bytes);
        *width = (uint32_t)w;
        *height = (uint32_t)h;
        *format = SK2_PIXEL_RGB24;
        return 0;
    }
    sk2_frame_t *frame = NULL;
    char why[300];
    sk2_pixel_format_t format16 =
        entry->kind == SK2_STREAM_IR ? SK2_PIXEL_GRAY16 : SK2_PIXEL_DEPTH_MM16;
    int rc = s_png_fits(self, entry->path);
    if (rc != 0)
        return rc;
    rc = sk2_frame_read_png(entry->path, format16, &frame, why, sizeof why);
    if (rc != 0)
        return sk2_rec_fail(self, rc, "%s: %s", entry->path, why);
    *width = sk2_frame_width(frame);
    *height = sk2_frame_height(frame);
    *format = sk2_frame_format(frame);
    sk2_frame_destroy(&frame);
    bool is_16 = sk2_pixel_format_bytes(*format) == 2;
    if (is_16 != (entry->kind != SK2_STREAM_COLOR))
        return sk2_rec_fail(self, SK2_EUNSUPPORTED, "%s: a %s image for a %s stream", entry->path,
                            sk2_pixel_format_name(*format),
                            sk2_stream_kind_name((sk2_stream_kind_t)entry->kind));
    return 0;
}

/* Reads sk2.json if there is one: the device and the unit of the depth PNGs. */
static int s_read_sidecar(sk2_recording_reader_t *self, const char *dir, bool *has_sidecar,
                          double *png_unit_m)
{
    *has_sidecar = false;
    char *path = s_join(dir, "sk2.json");
    if (!path)
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory");
    size_t size = 0;
    errno = 0;
    uint8_t *text = s_slurp(path, S_SK2_JSON_MAX, &size);
    int saved = errno;
    free(path);
    if (!text)
        return saved == ENOENT
                   ? 0
                   : sk2_rec_fail(self, SK2_ESYS, "cannot read sk2.json: %s", strerror(saved));
    json_error_t error;
    json_t *root = json_loadb((const char *)text, size, JSON_REJECT_DUPLICATES, &error);
    free(text);
    json_t *device = json_object_get(root, "device");
    json_t *unit = json_object_get(root, "depth_png_unit_m");
    char *device_text = json_is_object(device) ? json_dumps(device, JSON_COMPACT) : NULL;
    int rc = 0;
    char why[256] = "not a JSON object with device and depth_png_unit_m";
    if (!device_text || !json_is_number(unit) || !(json_number_value(unit) > 0) ||
        json_number_value(unit) > 1 ||
        sk2_rec_device_parse((const uint8_t *)device_text, strlen(device_text), &self->devices[0],
                             why, sizeof why) != 0)
        rc = sk2_rec_fail(self, SK2_ECORRUPT, "sk2.json: %s", why);
    else {
        *png_unit_m = json_number_value(unit);
        *has_sidecar = true;
    }
    free(device_text);
    json_decref(root);
    return rc;
}

static int s_by_time(const void *a, const void *b)
{
    const sk2_rec_entry_t *x = a, *y = b;
    if (x->capture_time_us != y->capture_time_us)
        return x->capture_time_us < y->capture_time_us ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->sequence < y->sequence ? -1 : x->sequence > y->sequence;
}

/* Nominal rate of a stream from its first and last times. */
static double s_estimate_fps(const sk2_recording_reader_t *self, sk2_stream_kind_t kind)
{
    int64_t first = 0, last = 0;
    size_t count = 0;
    for (size_t i = 0; i < self->entry_count; i++) {
        if (self->entries[i].kind != kind)
            continue;
        if (count++ == 0)
            first = self->entries[i].capture_time_us;
        last = self->entries[i].capture_time_us;
    }
    if (count < 2 || last <= first)
        return 0;
    double fps = (double)(count - 1) * 1e6 / (double)(last - first);
    return fps > 1000 ? 1000 : round(fps * 1000) / 1000;
}

int sk2_rec_tum_open(sk2_recording_reader_t *self, const char *dir)
{
    bool has_sidecar = false;
    double png_unit_m = S_TUM_UNIT_M;
    int rc = s_read_sidecar(self, dir, &has_sidecar, &png_unit_m);
    if (rc != 0)
        return rc;
    size_t counts[S_LISTS] = {0};
    for (size_t i = 0; i < S_LISTS && rc == 0; i++)
        rc = s_read_list(self, dir, i, &counts[i]);
    if (rc != 0)
        return rc;
    if (self->entry_count == 0)
        return sk2_rec_fail(self, SK2_ECORRUPT,
                            "%s is neither an sk2 recording nor a TUM RGB-D folder (no frames in "
                            "depth.txt or rgb.txt)",
                            dir);
    sk2_rec_device_t *device = &self->devices[0];
    if (!has_sidecar) {
        memset(device, 0, sizeof *device);
        snprintf(device->backend, sizeof device->backend, "tum");
    }
    self->tum_depth_divisor = 1;
    size_t start = 0;
    for (size_t i = 0; i < S_LISTS; start += counts[i], i++) {
        if (counts[i] == 0)
            continue;
        uint32_t width = 0, height = 0;
        sk2_pixel_format_t format = SK2_PIXEL_DEPTH_MM16;
        rc = s_probe(self, &self->entries[start], &width, &height, &format);
        if (rc != 0)
            return rc;
        for (size_t j = start; j < start + counts[i]; j++) {
            self->entries[j].width = width;
            self->entries[j].height = height;
            self->entries[j].format = (uint8_t)format;
        }
        sk2_stream_info_t *info = NULL;
        for (size_t s = 0; s < device->stream_count; s++)
            if (device->streams[s].kind == s_lists[i].kind)
                info = &device->streams[s];
        if (!info && has_sidecar)
            return sk2_rec_fail(self, SK2_ECORRUPT, "sk2.json has no %s stream for %s",
                                sk2_stream_kind_name(s_lists[i].kind), s_lists[i].list);
        if (!info) {
            info = &device->streams[device->stream_count++];
            *info = (sk2_stream_info_t){.kind = s_lists[i].kind};
        }
        if (has_sidecar && (info->width != width || info->height != height))
            return sk2_rec_fail(self, SK2_ECORRUPT, "sk2.json says %ux%u for %s, images are %ux%u",
                                info->width, info->height, s_lists[i].list, width, height);
        info->width = width;
        info->height = height;
        info->format = format;
        if (s_lists[i].kind == SK2_STREAM_DEPTH) {
            /* Back to the recorded unit when it divides the PNG's exactly (mm = 5 x 1/5000 m);
             * otherwise the PNG's own unit, which loses nothing. */
            double ratio = info->depth_unit_m / png_unit_m;
            if (has_sidecar && ratio >= 1 && ratio <= 1000 && fabs(ratio - round(ratio)) < 1e-6)
                self->tum_depth_divisor = (unsigned)round(ratio);
            else
                info->depth_unit_m = png_unit_m;
        }
    }
    if (!has_sidecar) {
        /* A public dataset: name the device after the folder, as a valid id. */
        const char *base = strrchr(dir, '/');
        base = base && base[1] ? base + 1 : dir;
        snprintf(device->id, sizeof device->id, "tum-");
        size_t n = 4;
        for (const char *p = base; *p && n < 64; p++)
            device->id[n++] = (*p > ' ' && *p <= '~') ? *p : '_';
        device->id[n] = '\0';
    }
    for (size_t s = 0; s < device->stream_count; s++)
        if (!has_sidecar)
            device->streams[s].fps = s_estimate_fps(self, device->streams[s].kind);
    self->device_count = 1;
    qsort(self->entries, self->entry_count, sizeof *self->entries, s_by_time);
    int64_t origin = self->entries[0].capture_time_us;
    for (size_t i = 0; i < self->entry_count; i++)
        self->entries[i].device_timestamp_us = self->entries[i].capture_time_us - origin;
    return 0;
}

static int s_read_jpeg(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry,
                       sk2_frame_t *frame)
{
    size_t size = 0;
    uint8_t *data = s_slurp(entry->path, S_IMAGE_MAX, &size);
    if (!data)
        return sk2_rec_fail(self, SK2_ESYS, "cannot read %s: %s", entry->path, strerror(errno));
    int rc = sk2_codec_decode(sk2_codec_find(SK2_CODEC_JPEG), data, size, frame);
    free(data);
    return rc != 0 ? sk2_rec_fail(self, rc, "%s does not decode: %s", entry->path, sk2_strerror(rc))
                   : 0;
}

int sk2_rec_tum_read_frame(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry,
                           sk2_frame_t **frame_p)
{
    sk2_frame_t *frame = NULL;
    int rc = 0;
    if (entry->stored == SK2_REC_STORED_JPEG) {
        frame = sk2_frame_new(SK2_STREAM_COLOR, (sk2_pixel_format_t)entry->format, entry->width,
                              entry->height);
        if (!frame)
            return sk2_rec_fail(self, SK2_ENOMEM, "out of memory for a frame");
        rc = s_read_jpeg(self, entry, frame);
    } else {
        char why[300];
        sk2_pixel_format_t format16 =
            entry->kind == SK2_STREAM_IR ? SK2_PIXEL_GRAY16 : SK2_PIXEL_DEPTH_MM16;
        rc = s_png_fits(self, entry->path);
        if (rc != 0)
            return rc;
        rc = sk2_frame_read_png(entry->path, format16, &frame, why, sizeof why);
        if (rc != 0)
            return sk2_rec_fail(self, rc, "%s: %s", entry->path, why);
        if (sk2_frame_width(frame) != entry->width || sk2_frame_height(frame) != entry->height ||
            sk2_frame_format(frame) != entry->format)
            rc = sk2_rec_fail(self, SK2_ECORRUPT, "%s is not %ux%u %s like the stream's first",
                              entry->path, entry->width, entry->height,
                              sk2_pixel_format_name((sk2_pixel_format_t)entry->format));
        unsigned k = self->tum_depth_divisor;
        if (rc == 0 && entry->kind == SK2_STREAM_DEPTH && k > 1) {
            uint16_t *px = sk2_frame_data16(frame);
            size_t n = (size_t)entry->width * entry->height;
            for (size_t i = 0; i < n && rc == 0; i++) {
                if (px[i] % k != 0)
                    rc = sk2_rec_fail(self, SK2_ECORRUPT,
                                      "%s: depth %u is not a multiple of %u as sk2.json says",
                                      entry->path, px[i], k);
                px[i] = (uint16_t)(px[i] / k);
            }
        }
    }
    if (rc != 0) {
        sk2_frame_destroy(&frame);
        return rc;
    }
    sk2_frame_set_sequence(frame, entry->sequence);
    sk2_frame_set_device_timestamp_us(frame, entry->device_timestamp_us);
    sk2_frame_set_capture_time_us(frame, entry->capture_time_us);
    *frame_p = frame;
    return 0;
}
