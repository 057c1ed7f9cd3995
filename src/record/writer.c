/* The recording writer: appends one chunk per device description and per frame, each written
 * whole with one writev, and an index and footer at close. Nothing is buffered in user space,
 * so whatever the writer has returned from is in the kernel: a killed process loses nothing it
 * was told was written. A power cut is another matter: only what fdatasync has flushed
 * (sk2_recording_writer_sync, which the caller runs periodically, and close) is sure to be on
 * the disk, and frames_synced counts exactly those. When a write fails (disk full, file size
 * limit), the file is cut back to the end of the last complete chunk, so that it ends cleanly,
 * and the writer refuses more.
 *
 * The frames' wire headers are checked with the protocol's own parser: a recording holds only
 * frames a client would have accepted. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "proto/header.h"
#include "record/reader_impl.h"
#include "sk2/error.h"

typedef struct {
    sk2_stream_kind_t kinds[SK2_REC_STREAMS_MAX];
    size_t count;
    uint64_t offset; /* of its DEVC chunk */
} s_device_t;

struct sk2_recording_writer {
    int fd;
    bool has_failed; /* a write failed: no more frames */
    uint64_t size;   /* bytes written: the end of the last complete chunk */
    s_device_t devices[SK2_RECORDING_MAX_DEVICES];
    size_t device_count;
    uint8_t *index; /* SK2_REC_INDEX_ENTRY bytes per frame, in file order */
    size_t frames;
    size_t frames_synced; /* frames appended before the last fdatasync that succeeded */
    size_t index_cap;     /* entries */
    uint8_t gaps[SK2_REC_GAPS_MAX * SK2_REC_GAP_ENTRY]; /* every gap, for the GAPS chunk */
    size_t gap_count;
    uint8_t *scratch; /* encode buffer of add_frame */
    size_t scratch_cap;
    char why[256];
};

static int s_fail(sk2_recording_writer_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(sk2_recording_writer_t *self, int rc, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(self->why, sizeof self->why, fmt, args);
    va_end(args);
    return rc;
}

sk2_recording_writer_t *sk2_recording_writer_new(void)
{
    sk2_recording_writer_t *self = calloc(1, sizeof *self);
    if (self)
        self->fd = -1;
    return self;
}

void sk2_recording_writer_destroy(sk2_recording_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_recording_writer_t *self = *self_p;
    if (self->fd >= 0)
        sk2_recording_writer_close(self);
    free(self->index);
    free(self->scratch);
    free(self);
    *self_p = NULL;
}

/* Writes every byte of the vectors at the end of the file. On failure cuts the file back to
 * the last complete chunk and returns SK2_ESYS with why. */
static int s_append(sk2_recording_writer_t *self, struct iovec *iov, int count)
{
    size_t total = 0;
    for (int i = 0; i < count; i++)
        total += iov[i].iov_len;
    size_t done = 0;
    int first = 0;
    while (done < total) {
        ssize_t n = writev(self->fd, iov + first, count - first);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int saved = n < 0 ? errno : ENOSPC;
            /* A partial chunk would be skipped by a reader anyway; cutting it keeps the file
             * clean for whoever appends or inspects it. Best effort: the disk may refuse. */
            if (ftruncate(self->fd, (off_t)self->size) == 0)
                lseek(self->fd, (off_t)self->size, SEEK_SET);
            self->has_failed = true;
            return s_fail(self, SK2_ESYS, "cannot write the recording after %zu frames: %s",
                          self->frames, strerror(saved));
        }
        done += (size_t)n;
        /* Step over the vectors written. */
        size_t left = (size_t)n;
        while (left > 0 && first < count) {
            if (left >= iov[first].iov_len) {
                left -= iov[first].iov_len;
                first++;
            } else {
                iov[first].iov_base = (uint8_t *)iov[first].iov_base + left;
                iov[first].iov_len -= left;
                left = 0;
            }
        }
    }
    self->size += total;
    return 0;
}

/* Appends one chunk whose body is the concatenation of `parts`. */
static int s_chunk(sk2_recording_writer_t *self, const char type[4], const struct iovec *parts,
                   int part_count)
{
    uint64_t body = 0;
    for (int i = 0; i < part_count; i++)
        body += parts[i].iov_len;
    if (body > UINT32_MAX)
        return s_fail(self, SK2_ELIMIT, "chunk of %llu bytes", (unsigned long long)body);
    uint8_t head[SK2_REC_CHUNK_HEADER];
    memcpy(head, type, 4);
    sk2_rec_put32(head + 4, (uint32_t)body);
    uint32_t crc = sk2_rec_crc(0, head, 8);
    for (int i = 0; i < part_count; i++)
        crc = sk2_rec_crc(crc, parts[i].iov_base, parts[i].iov_len);
    sk2_rec_put32(head + 8, crc);
    struct iovec iov[8];
    iov[0] = (struct iovec){.iov_base = head, .iov_len = sizeof head};
    for (int i = 0; i < part_count && i < 7; i++)
        iov[i + 1] = parts[i];
    return s_append(self, iov, part_count + 1);
}

int sk2_recording_writer_open(sk2_recording_writer_t *self, const char *path)
{
    if (!self || !path)
        return SK2_EINVAL;
    if (self->fd >= 0)
        return s_fail(self, SK2_ESTATE, "already open");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return s_fail(self, SK2_ESYS, "cannot create %s: %s", path, strerror(errno));
    self->fd = fd;
    self->size = 0;
    self->frames = 0;
    self->frames_synced = 0;
    self->device_count = 0;
    self->gap_count = 0;
    self->has_failed = false;
    self->why[0] = '\0';
    uint8_t header[SK2_REC_FILE_HEADER_SIZE] = {0};
    memcpy(header, SK2_REC_MAGIC, 8);
    sk2_rec_put16(header + 8, SK2_RECORDING_VERSION_MAJOR);
    sk2_rec_put16(header + 10, SK2_RECORDING_VERSION_MINOR);
    sk2_rec_put32(header + 12, SK2_REC_FILE_HEADER_SIZE);
    sk2_rec_put64(header + 16, (uint64_t)sk2_clock_wall_us());
    sk2_rec_put32(header + 28, sk2_rec_crc(0, header, 28));
    struct iovec iov = {.iov_base = header, .iov_len = sizeof header};
    int rc = s_append(self, &iov, 1);
    if (rc != 0) {
        close(self->fd);
        self->fd = -1;
    }
    return rc;
}

static int s_writable(sk2_recording_writer_t *self)
{
    if (self->fd < 0)
        return s_fail(self, SK2_ESTATE, "not open");
    if (self->has_failed)
        return s_fail(self, SK2_ESTATE, "an earlier write failed");
    return 0;
}

int sk2_recording_writer_add_device(sk2_recording_writer_t *self, const char *id,
                                    const char *serial, const char *backend,
                                    const sk2_stream_info_t *streams, size_t stream_count,
                                    size_t *device_index)
{
    return sk2_recording_writer_add_device_placed(self, id, serial, backend, streams, stream_count,
                                                  NULL, NULL, device_index);
}

int sk2_recording_writer_add_device_placed(sk2_recording_writer_t *self, const char *id,
                                           const char *serial, const char *backend,
                                           const sk2_stream_info_t *streams, size_t stream_count,
                                           const sk2_pose_t *pose,
                                           const sk2_extrinsics_t *depth_to_color,
                                           size_t *device_index)
{
    if (!self)
        return SK2_EINVAL;
    int rc = s_writable(self);
    if (rc != 0)
        return rc;
    if (!id || !*id || strlen(id) > SK2_DEVICE_ID_MAX ||
        (serial && strlen(serial) > SK2_DEVICE_ID_MAX) || (backend && strlen(backend) >= 32))
        return s_fail(self, SK2_EINVAL, "device id, serial or backend missing or too long");
    rc = sk2_rec_streams_check(streams, stream_count, self->why, sizeof self->why);
    if (rc != 0)
        return rc;
    if (self->device_count >= SK2_RECORDING_MAX_DEVICES)
        return s_fail(self, SK2_ELIMIT, "more than %d devices", SK2_RECORDING_MAX_DEVICES);
    char place_why[200];
    if (pose && sk2_pose_check(pose, place_why, sizeof place_why) != 0)
        return s_fail(self, SK2_EINVAL, "pose: %s", place_why);
    if (depth_to_color && sk2_extrinsics_check(depth_to_color, place_why, sizeof place_why) != 0)
        return s_fail(self, SK2_EINVAL, "depth_to_color: %s", place_why);
    json_t *json = sk2_rec_device_to_json(id, serial, backend, streams, stream_count);
    if (json && sk2_rec_device_place(json, pose, depth_to_color) != 0)
        json_decref(json), json = NULL;
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text)
        return s_fail(self, SK2_ENOMEM, "out of memory");
    size_t length = strlen(text);
    if (length > SK2_REC_JSON_MAX) {
        free(text);
        return s_fail(self, SK2_ELIMIT, "device description of %zu bytes", length);
    }
    uint8_t prefix[SK2_REC_PREFIX] = {0};
    sk2_rec_put16(prefix, (uint16_t)self->device_count);
    struct iovec parts[2] = {{.iov_base = prefix, .iov_len = sizeof prefix},
                             {.iov_base = text, .iov_len = length}};
    uint64_t offset = self->size;
    rc = s_chunk(self, SK2_REC_DEVICE, parts, 2);
    free(text);
    if (rc != 0)
        return rc;
    s_device_t *device = &self->devices[self->device_count];
    device->offset = offset;
    device->count = stream_count;
    for (size_t i = 0; i < stream_count; i++)
        device->kinds[i] = streams[i].kind;
    if (device_index)
        *device_index = self->device_count;
    self->device_count++;
    return 0;
}

int sk2_recording_writer_add_gap(sk2_recording_writer_t *self, int64_t start_us, int64_t end_us)
{
    if (!self)
        return SK2_EINVAL;
    int rc = s_writable(self);
    if (rc != 0)
        return rc;
    if (start_us <= 0 || end_us < start_us)
        return s_fail(self, SK2_EINVAL, "a gap from %lld to %lld us", (long long)start_us,
                      (long long)end_us);
    if (self->gap_count >= SK2_REC_GAPS_MAX)
        return s_fail(self, SK2_ELIMIT, "more than %d gaps", SK2_REC_GAPS_MAX);
    uint8_t *entry = self->gaps + self->gap_count * SK2_REC_GAP_ENTRY;
    memset(entry, 0, SK2_REC_GAP_ENTRY);
    sk2_rec_put64(entry, (uint64_t)start_us);
    sk2_rec_put64(entry + 8, (uint64_t)end_us);
    sk2_rec_put64(entry + 16, self->frames);
    struct iovec part = {.iov_base = entry, .iov_len = SK2_REC_GAP_ENTRY};
    rc = s_chunk(self, SK2_REC_GAP, &part, 1);
    if (rc == 0)
        self->gap_count++;
    return rc;
}

int sk2_recording_writer_add_encoded(sk2_recording_writer_t *self, size_t device_index,
                                     const uint8_t *header, size_t header_size,
                                     const uint8_t *payload, size_t payload_size)
{
    if (!self)
        return SK2_EINVAL;
    int rc = s_writable(self);
    if (rc != 0)
        return rc;
    if (device_index >= self->device_count)
        return s_fail(self, SK2_EINVAL, "no device %zu", device_index);
    if (!header || header_size > SK2_REC_HEADER_MAX || (!payload && payload_size > 0))
        return s_fail(self, SK2_EINVAL, "frame header missing or over %d bytes",
                      SK2_REC_HEADER_MAX);
    sk2_header_t h;
    char why[160];
    if (sk2_header_read(header, header_size, &h, why, sizeof why) != 0)
        return s_fail(self, SK2_EINVAL, "%s", why);
    if (h.payload_size != payload_size)
        return s_fail(self, SK2_EINVAL, "header announces %u payload bytes, not %zu",
                      h.payload_size, payload_size);
    const s_device_t *device = &self->devices[device_index];
    bool has_kind = false;
    for (size_t i = 0; i < device->count; i++)
        has_kind |= device->kinds[i] == h.kind;
    if (!has_kind)
        return s_fail(self, SK2_EINVAL, "device %zu has no %s stream", device_index,
                      sk2_stream_kind_name(h.kind));
    if (self->frames >= SK2_RECORDING_MAX_FRAMES)
        return s_fail(self, SK2_ELIMIT, "more than %u frames", SK2_RECORDING_MAX_FRAMES);
    if (self->frames == self->index_cap) {
        size_t cap = self->index_cap ? self->index_cap * 2 : 1024;
        uint8_t *index = realloc(self->index, cap * SK2_REC_INDEX_ENTRY);
        if (!index)
            return s_fail(self, SK2_ENOMEM, "out of memory for the index");
        self->index = index;
        self->index_cap = cap;
    }
    uint8_t prefix[SK2_REC_PREFIX] = {0};
    sk2_rec_put16(prefix, (uint16_t)device_index);
    struct iovec parts[3] = {{.iov_base = prefix, .iov_len = sizeof prefix},
                             {.iov_base = (void *)header, .iov_len = header_size},
                             {.iov_base = (void *)payload, .iov_len = payload_size}};
    uint64_t offset = self->size;
    rc = s_chunk(self, SK2_REC_FRAME, parts, 3);
    if (rc != 0)
        return rc;
    uint8_t *entry = self->index + self->frames * SK2_REC_INDEX_ENTRY;
    memset(entry, 0, SK2_REC_INDEX_ENTRY);
    sk2_rec_put64(entry, offset);
    sk2_rec_put64(entry + 8, h.sequence);
    sk2_rec_put64(entry + 16, (uint64_t)h.capture_time_us);
    sk2_rec_put64(entry + 24, (uint64_t)h.device_timestamp_us);
    sk2_rec_put32(entry + 32, h.payload_size);
    sk2_rec_put16(entry + 36, (uint16_t)h.width);
    sk2_rec_put16(entry + 38, (uint16_t)h.height);
    sk2_rec_put16(entry + 40, (uint16_t)device_index);
    entry[42] = (uint8_t)h.kind;
    entry[43] = (uint8_t)h.format;
    entry[44] = sk2_codec_wire_id(h.codec);
    self->frames++;
    return 0;
}

int sk2_recording_writer_add_frame(sk2_recording_writer_t *self, size_t device_index,
                                   const sk2_frame_t *frame, const sk2_codec_t *codec)
{
    return sk2_recording_writer_add_frame_opts(self, device_index, frame, codec, NULL);
}

int sk2_recording_writer_add_frame_opts(sk2_recording_writer_t *self, size_t device_index,
                                        const sk2_frame_t *frame, const sk2_codec_t *codec,
                                        const sk2_codec_options_t *options)
{
    if (!self || !frame || !codec)
        return SK2_EINVAL;
    size_t bound = sk2_codec_encode_bound(codec, sk2_frame_format(frame), sk2_frame_width(frame),
                                          sk2_frame_height(frame));
    if (bound == 0 || sk2_codec_wire_id(codec) == 0)
        return s_fail(self, SK2_EUNSUPPORTED, "codec %s cannot store a %s frame",
                      sk2_codec_name(codec), sk2_pixel_format_name(sk2_frame_format(frame)));
    if (bound > self->scratch_cap) {
        uint8_t *scratch = realloc(self->scratch, bound);
        if (!scratch)
            return s_fail(self, SK2_ENOMEM, "out of memory");
        self->scratch = scratch;
        self->scratch_cap = bound;
    }
    size_t length = 0;
    int rc =
        sk2_codec_encode_opts(codec, frame, options, self->scratch, self->scratch_cap, &length);
    if (rc != 0)
        return s_fail(self, rc, "cannot encode with %s: %s", sk2_codec_name(codec),
                      sk2_strerror(rc));
    if (length > SK2_RECORDING_MAX_PAYLOAD)
        return s_fail(self, SK2_ELIMIT, "encoded frame of %zu bytes", length);
    /* Never sent: the send time is the capture time. */
    sk2_header_t header =
        sk2_header_of_frame(frame, codec, (uint32_t)length, sk2_frame_capture_time_us(frame));
    uint8_t bytes[SK2_HEADER_SIZE];
    if (sk2_header_write(&header, bytes) != 0)
        return s_fail(self, SK2_EINVAL, "frame cannot be described by a wire header");
    return sk2_recording_writer_add_encoded(self, device_index, bytes, sizeof bytes, self->scratch,
                                            length);
}

int sk2_recording_writer_close(sk2_recording_writer_t *self)
{
    if (!self)
        return SK2_EINVAL;
    if (self->fd < 0)
        return s_fail(self, SK2_ESTATE, "not open");
    int rc = 0;
    uint64_t gaps_offset = self->size;
    if (!self->has_failed && self->gap_count > 0) {
        /* Readers that open the file through its index find the gaps here, by the distance the
         * index head gives; readers that scan see the GAP chunks written as they came. */
        uint8_t head[8] = {0};
        sk2_rec_put32(head, (uint32_t)self->gap_count);
        struct iovec parts[2] = {
            {.iov_base = head, .iov_len = sizeof head},
            {.iov_base = self->gaps, .iov_len = self->gap_count * SK2_REC_GAP_ENTRY}};
        rc = s_chunk(self, SK2_REC_GAPS, parts, 2);
    }
    if (rc == 0 && !self->has_failed) {
        uint8_t head[SK2_REC_INDEX_HEAD] = {0};
        sk2_rec_put32(head, (uint32_t)self->device_count);
        sk2_rec_put32(head + 4, (uint32_t)self->frames);
        sk2_rec_put32(head + 8, SK2_REC_INDEX_ENTRY);
        if (self->gap_count > 0)
            sk2_rec_put32(head + 12, (uint32_t)(self->size - gaps_offset));
        uint8_t offsets[SK2_RECORDING_MAX_DEVICES * 8];
        for (size_t i = 0; i < self->device_count; i++)
            sk2_rec_put64(offsets + 8 * i, self->devices[i].offset);
        struct iovec parts[3] = {
            {.iov_base = head, .iov_len = sizeof head},
            {.iov_base = offsets, .iov_len = 8 * self->device_count},
            {.iov_base = self->index, .iov_len = self->frames * SK2_REC_INDEX_ENTRY}};
        uint64_t index_offset = self->size;
        rc = s_chunk(self, SK2_REC_INDEX, parts, 3);
        if (rc == 0) {
            uint8_t footer[SK2_REC_FOOTER_BODY];
            sk2_rec_put64(footer, index_offset);
            sk2_rec_put64(footer + 8, self->frames);
            struct iovec part = {.iov_base = footer, .iov_len = sizeof footer};
            rc = s_chunk(self, SK2_REC_FOOTER, &part, 1);
        }
    }
    if (fsync(self->fd) != 0 && errno != EINVAL) {
        if (rc == 0)
            rc = s_fail(self, SK2_ESYS, "cannot flush the recording: %s", strerror(errno));
    } else {
        /* Also after a failed write: the frames before it were cut back to, not lost. */
        self->frames_synced = self->frames;
    }
    if (close(self->fd) != 0 && rc == 0)
        rc = s_fail(self, SK2_ESYS, "cannot close the recording: %s", strerror(errno));
    self->fd = -1;
    return rc;
}

int sk2_recording_writer_sync(sk2_recording_writer_t *self)
{
    if (!self)
        return SK2_EINVAL;
    if (self->fd < 0)
        return s_fail(self, SK2_ESTATE, "not open");
    size_t frames = self->frames;
    /* EINVAL: a file that cannot be synced (a pipe, some special file systems) has no better
     * place to be; its frames count as far as they can go. */
    if (fdatasync(self->fd) != 0 && errno != EINVAL)
        return s_fail(self, SK2_ESYS, "cannot flush the recording after %zu frames: %s", frames,
                      strerror(errno));
    self->frames_synced = frames;
    return 0;
}

uint64_t sk2_recording_writer_frames_synced(const sk2_recording_writer_t *self)
{
    return self ? self->frames_synced : 0;
}

uint64_t sk2_recording_writer_frames(const sk2_recording_writer_t *self)
{
    return self ? self->frames : 0;
}

uint64_t sk2_recording_writer_bytes(const sk2_recording_writer_t *self)
{
    return self ? self->size : 0;
}

const char *sk2_recording_writer_why(const sk2_recording_writer_t *self)
{
    return self ? self->why : "";
}
