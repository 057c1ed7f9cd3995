/* The recording reader. Opening reads the footer, then the index it points to, then the device
 * chunks the index names; frames are read only when asked for, each checked against its CRC.
 * When the footer or index is missing or wrong (the writer was killed, the disk filled up, the
 * file was cut), the reader walks the chunks from the start instead and stops at the first one
 * that is incomplete or fails its CRC: everything before it is readable, and the rest is
 * counted as ignored bytes. Every size read from the file is checked against the file's size
 * and the format's limits before anything is allocated from it. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/io.h"
#include "proto/header.h"
#include "record/reader_impl.h"
#include "ros2/mcap_read.h"
#include "sk2/error.h"

int sk2_rec_fail(sk2_recording_reader_t *self, int rc, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(self->why, sizeof self->why, fmt, args);
    va_end(args);
    return rc;
}

sk2_recording_reader_t *sk2_recording_reader_new(void)
{
    sk2_recording_reader_t *self = calloc(1, sizeof *self);
    if (self) {
        self->fd = -1;
        self->max_frame_bytes = SK2_LIMIT_FRAME_BYTES;
    }
    return self;
}

int sk2_recording_reader_set_max_frame_bytes(sk2_recording_reader_t *self, size_t max_frame_bytes)
{
    if (!self || max_frame_bytes < SK2_LIMIT_FRAME_BYTES_MIN ||
        max_frame_bytes > SK2_LIMIT_FRAME_BYTES_MAX)
        return SK2_EINVAL;
    self->max_frame_bytes = max_frame_bytes;
    return 0;
}

static void s_close(sk2_recording_reader_t *self)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    sk2_mcap_reader_destroy(&self->mcap);
    self->is_mcap = false;
    for (size_t i = 0; i < self->entry_count; i++)
        free(self->entries[i].path);
    free(self->entries);
    self->entries = NULL;
    self->entry_count = self->entry_cap = 0;
    self->device_count = 0;
    free(self->gaps);
    self->gaps = NULL;
    self->gap_count = 0;
    self->is_open = false;
}

void sk2_recording_reader_destroy(sk2_recording_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_recording_reader_t *self = *self_p;
    s_close(self);
    free(self->buffer);
    free(self);
    *self_p = NULL;
}

int sk2_rec_entry_push(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry)
{
    if (self->entry_count >= SK2_RECORDING_MAX_FRAMES)
        return sk2_rec_fail(self, SK2_ELIMIT, "more than %u frames", SK2_RECORDING_MAX_FRAMES);
    if (self->entry_count == self->entry_cap) {
        size_t cap = self->entry_cap ? self->entry_cap * 2 : 256;
        sk2_rec_entry_t *entries = realloc(self->entries, cap * sizeof *entries);
        if (!entries)
            return sk2_rec_fail(self, SK2_ENOMEM, "out of memory for the index");
        self->entries = entries;
        self->entry_cap = cap;
    }
    self->entries[self->entry_count++] = *entry;
    return 0;
}

/* Reads exactly size bytes at offset. SK2_ECORRUPT if the file ends first. */
static int s_pread(sk2_recording_reader_t *self, void *buf, size_t size, uint64_t offset)
{
    uint64_t end = 0;
    int rc = sk2_pread_exact(self->fd, buf, size, offset, &end);
    if (rc == SK2_ESYS)
        return sk2_rec_fail(self, rc, "cannot read the recording: %s", strerror(errno));
    if (rc != 0)
        return sk2_rec_fail(self, rc, "the recording ends at byte %llu", (unsigned long long)end);
    return 0;
}

static int s_reserve(sk2_recording_reader_t *self, size_t size)
{
    if (size <= self->buffer_cap)
        return 0;
    uint8_t *buffer = realloc(self->buffer, size);
    if (!buffer)
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory for a chunk of %zu bytes", size);
    self->buffer = buffer;
    self->buffer_cap = size;
    return 0;
}

/* Reads the chunk at offset into self->buffer and checks it: complete within `end`, no larger
 * than the limit, CRC right. Sets the type and body size. */
static int s_read_chunk(sk2_recording_reader_t *self, uint64_t offset, uint64_t end, char type[5],
                        size_t *body_size)
{
    uint8_t head[SK2_REC_CHUNK_HEADER];
    if (offset > end || end - offset < SK2_REC_CHUNK_HEADER)
        return sk2_rec_fail(self, SK2_ECORRUPT, "chunk header at byte %llu is cut off",
                            (unsigned long long)offset);
    int rc = s_pread(self, head, sizeof head, offset);
    if (rc != 0)
        return rc;
    uint64_t body = sk2_rec_get32(head + 4);
    memcpy(type, head, 4);
    type[4] = '\0';
    if (body > SK2_REC_BODY_MAX && memcmp(type, SK2_REC_INDEX, 4) != 0)
        return sk2_rec_fail(self, SK2_ECORRUPT, "chunk at byte %llu claims %llu bytes",
                            (unsigned long long)offset, (unsigned long long)body);
    if (end - offset - SK2_REC_CHUNK_HEADER < body)
        return sk2_rec_fail(
            self, SK2_ECORRUPT, "chunk at byte %llu is cut off (%llu of %llu bytes)",
            (unsigned long long)offset, (unsigned long long)(end - offset - SK2_REC_CHUNK_HEADER),
            (unsigned long long)body);
    rc = s_reserve(self, body + 1);
    if (rc == 0)
        rc = s_pread(self, self->buffer, body, offset + SK2_REC_CHUNK_HEADER);
    if (rc != 0)
        return rc;
    uint32_t crc = sk2_rec_crc(sk2_rec_crc(0, head, 8), self->buffer, body);
    if (crc != sk2_rec_get32(head + 8))
        return sk2_rec_fail(self, SK2_ECORRUPT, "%s chunk at byte %llu fails its CRC", type,
                            (unsigned long long)offset);
    *body_size = body;
    return 0;
}

static const sk2_stream_info_t *s_stream(const sk2_rec_device_t *device, sk2_stream_kind_t kind)
{
    for (size_t i = 0; i < device->stream_count; i++)
        if (device->streams[i].kind == kind)
            return &device->streams[i];
    return NULL;
}

/* Checks a FRAM body (in self->buffer) and describes it in *entry; sets where the wire header
 * and payload are. */
static int s_parse_frame(sk2_recording_reader_t *self, const uint8_t *body, size_t size,
                         uint64_t offset, sk2_rec_entry_t *entry, size_t *header_size)
{
    if (size < SK2_REC_PREFIX + SK2_HEADER_SIZE)
        return sk2_rec_fail(self, SK2_ECORRUPT, "frame chunk at byte %llu is too short",
                            (unsigned long long)offset);
    uint16_t device = sk2_rec_get16(body);
    size_t hsize = sk2_rec_get16(body + SK2_REC_PREFIX + 6);
    if (device >= self->device_count || hsize < SK2_HEADER_SIZE || hsize > SK2_REC_HEADER_MAX ||
        hsize > size - SK2_REC_PREFIX)
        return sk2_rec_fail(self, SK2_ECORRUPT,
                            "frame chunk at byte %llu names device %u or a header of %zu bytes",
                            (unsigned long long)offset, device, hsize);
    sk2_header_t h;
    char why[160];
    int rc = sk2_header_read(body + SK2_REC_PREFIX, hsize, &h, why, sizeof why);
    if (rc != 0)
        return sk2_rec_fail(self, rc == SK2_EUNSUPPORTED ? rc : SK2_ECORRUPT,
                            "frame at byte %llu: %s", (unsigned long long)offset, why);
    if (h.payload_size != size - SK2_REC_PREFIX - hsize ||
        !s_stream(&self->devices[device], h.kind))
        return sk2_rec_fail(self, SK2_ECORRUPT,
                            "frame at byte %llu: payload size or stream disagrees with its chunk",
                            (unsigned long long)offset);
    *entry = (sk2_rec_entry_t){
        .offset = offset,
        .sequence = h.sequence,
        .device_timestamp_us = h.device_timestamp_us,
        .capture_time_us = h.capture_time_us,
        .stored_bytes = h.payload_size,
        .width = h.width,
        .height = h.height,
        .device = device,
        .kind = (uint8_t)h.kind,
        .format = (uint8_t)h.format,
        .codec = sk2_codec_wire_id(h.codec),
        .stored = SK2_REC_STORED_WIRE,
    };
    *header_size = hsize;
    return 0;
}

static int s_parse_device(sk2_recording_reader_t *self, const uint8_t *body, size_t size,
                          uint64_t offset, size_t expected)
{
    if (size < SK2_REC_PREFIX || size - SK2_REC_PREFIX > SK2_REC_JSON_MAX ||
        sk2_rec_get16(body) != expected || expected >= SK2_RECORDING_MAX_DEVICES)
        return sk2_rec_fail(self, SK2_ECORRUPT, "device chunk at byte %llu is not device %zu",
                            (unsigned long long)offset, expected);
    char why[256];
    if (sk2_rec_device_parse(body + SK2_REC_PREFIX, size - SK2_REC_PREFIX, &self->devices[expected],
                             why, sizeof why) != 0)
        return sk2_rec_fail(self, SK2_ECORRUPT, "device chunk at byte %llu: %s",
                            (unsigned long long)offset, why);
    return 0;
}

/* Takes count gap entries (SK2_REC_GAP_ENTRY bytes each) in file order, checking each. */
static int s_add_gaps(sk2_recording_reader_t *self, const uint8_t *entries, size_t count,
                      uint64_t offset)
{
    if (self->gap_count + count > SK2_REC_GAPS_MAX)
        return sk2_rec_fail(self, SK2_ECORRUPT, "more than %d gaps at byte %llu", SK2_REC_GAPS_MAX,
                            (unsigned long long)offset);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = entries + i * SK2_REC_GAP_ENTRY;
        int64_t start = (int64_t)sk2_rec_get64(e), end = (int64_t)sk2_rec_get64(e + 8);
        if (start <= 0 || end < start || sk2_rec_get64(e + 16) > SK2_RECORDING_MAX_FRAMES)
            return sk2_rec_fail(self, SK2_ECORRUPT, "gap at byte %llu is out of bounds",
                                (unsigned long long)offset);
    }
    uint8_t *gaps = realloc(self->gaps, (self->gap_count + count) * SK2_REC_GAP_ENTRY + 1);
    if (!gaps)
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory for the gaps");
    memcpy(gaps + self->gap_count * SK2_REC_GAP_ENTRY, entries, count * SK2_REC_GAP_ENTRY);
    self->gaps = gaps;
    self->gap_count += count;
    return 0;
}

/* Walks the chunks from the first; stops cleanly at the first damaged or incomplete one. */
static int s_scan(sk2_recording_reader_t *self)
{
    uint64_t offset = SK2_REC_FILE_HEADER_SIZE;
    while (offset < self->file_size) {
        char type[5];
        size_t size = 0;
        int rc = s_read_chunk(self, offset, self->file_size, type, &size);
        if (rc == SK2_ESYS || rc == SK2_ENOMEM)
            return rc;
        if (rc == 0 && memcmp(type, SK2_REC_DEVICE, 4) == 0)
            rc = s_parse_device(self, self->buffer, size, offset, self->device_count);
        if (rc == 0 && memcmp(type, SK2_REC_DEVICE, 4) == 0)
            self->device_count++;
        if (rc == 0 && memcmp(type, SK2_REC_FRAME, 4) == 0) {
            sk2_rec_entry_t entry;
            size_t header_size;
            rc = s_parse_frame(self, self->buffer, size, offset, &entry, &header_size);
            if (rc == 0)
                rc = sk2_rec_entry_push(self, &entry);
            if (rc == SK2_ENOMEM || rc == SK2_ELIMIT)
                return rc;
        }
        if (rc == 0 && memcmp(type, SK2_REC_GAP, 4) == 0) {
            rc = size == SK2_REC_GAP_ENTRY
                     ? s_add_gaps(self, self->buffer, 1, offset)
                     : sk2_rec_fail(self, SK2_ECORRUPT, "gap chunk at byte %llu of %zu bytes",
                                    (unsigned long long)offset, size);
            if (rc == SK2_ENOMEM)
                return rc;
        }
        if (rc != 0) {
            /* self->why says what stopped us; keep it as the note. */
            self->ignored_bytes = self->file_size - offset;
            char note[sizeof self->why];
            snprintf(note, sizeof note, "%.300s; read up to byte %llu, %llu bytes after it ignored",
                     self->why, (unsigned long long)offset,
                     (unsigned long long)self->ignored_bytes);
            memcpy(self->why, note, sizeof note);
            return 0;
        }
        /* Index, footer and chunk types of later minor versions: skipped. */
        offset += SK2_REC_CHUNK_HEADER + size;
    }
    return 0;
}

/* Reads the footer and the index it names. Returns 0 when both are whole and consistent. */
static int s_read_index(sk2_recording_reader_t *self)
{
    uint64_t footer_size = SK2_REC_CHUNK_HEADER + SK2_REC_FOOTER_BODY;
    if (self->file_size < SK2_REC_FILE_HEADER_SIZE + footer_size)
        return sk2_rec_fail(self, SK2_ECORRUPT, "no footer");
    uint64_t footer_at = self->file_size - footer_size;
    char type[5];
    size_t size = 0;
    int rc = s_read_chunk(self, footer_at, self->file_size, type, &size);
    if (rc != 0 || memcmp(type, SK2_REC_FOOTER, 4) != 0 || size != SK2_REC_FOOTER_BODY)
        return sk2_rec_fail(self, SK2_ECORRUPT, "no footer (the recording was not closed)");
    uint64_t index_at = sk2_rec_get64(self->buffer);
    uint64_t frames = sk2_rec_get64(self->buffer + 8);
    if (index_at < SK2_REC_FILE_HEADER_SIZE || index_at >= footer_at ||
        frames > SK2_RECORDING_MAX_FRAMES)
        return sk2_rec_fail(self, SK2_ECORRUPT, "footer points outside the file");
    rc = s_read_chunk(self, index_at, footer_at, type, &size);
    if (rc != 0)
        return rc;
    if (memcmp(type, SK2_REC_INDEX, 4) != 0 || size < SK2_REC_INDEX_HEAD ||
        index_at + SK2_REC_CHUNK_HEADER + size != footer_at)
        return sk2_rec_fail(self, SK2_ECORRUPT, "footer does not point at the index");
    uint8_t *head = self->buffer;
    uint64_t devices = sk2_rec_get32(head), count = sk2_rec_get32(head + 4);
    uint64_t gaps_back = sk2_rec_get32(head + 12); /* 0 in 1.0 files: no GAPS chunk */
    if (devices > SK2_RECORDING_MAX_DEVICES || count != frames ||
        sk2_rec_get32(head + 8) != SK2_REC_INDEX_ENTRY ||
        size != SK2_REC_INDEX_HEAD + 8 * devices + SK2_REC_INDEX_ENTRY * count ||
        count > index_at / SK2_REC_FRAME_CHUNK_MIN)
        return sk2_rec_fail(self, SK2_ECORRUPT, "index sizes disagree");
    /* The buffer is reused for every chunk below: keep the index in a copy. */
    uint8_t *index = malloc(size);
    if (!index)
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory for the index");
    memcpy(index, self->buffer, size);
    for (size_t d = 0; d < devices && rc == 0; d++) {
        uint64_t at = sk2_rec_get64(index + SK2_REC_INDEX_HEAD + 8 * d);
        rc = s_read_chunk(self, at, index_at, type, &size);
        if (rc == 0 && memcmp(type, SK2_REC_DEVICE, 4) != 0)
            rc = sk2_rec_fail(self, SK2_ECORRUPT, "index names a device chunk that is not one");
        if (rc == 0)
            rc = s_parse_device(self, self->buffer, size, at, d);
        if (rc == 0)
            self->device_count++;
    }
    const uint8_t *entry = index + SK2_REC_INDEX_HEAD + 8 * devices;
    uint64_t previous = 0;
    for (uint64_t i = 0; i < count && rc == 0; i++, entry += SK2_REC_INDEX_ENTRY) {
        sk2_rec_entry_t e = {
            .offset = sk2_rec_get64(entry),
            .sequence = sk2_rec_get64(entry + 8),
            .capture_time_us = (int64_t)sk2_rec_get64(entry + 16),
            .device_timestamp_us = (int64_t)sk2_rec_get64(entry + 24),
            .stored_bytes = sk2_rec_get32(entry + 32),
            .width = sk2_rec_get16(entry + 36),
            .height = sk2_rec_get16(entry + 38),
            .device = sk2_rec_get16(entry + 40),
            .kind = entry[42],
            .format = entry[43],
            .codec = entry[44],
            .stored = SK2_REC_STORED_WIRE,
        };
        if (e.offset < SK2_REC_FILE_HEADER_SIZE || e.offset <= previous ||
            e.offset > index_at - SK2_REC_FRAME_CHUNK_MIN || e.device >= self->device_count ||
            !s_stream(&self->devices[e.device], (sk2_stream_kind_t)e.kind) ||
            sk2_pixel_format_bytes((sk2_pixel_format_t)e.format) == 0 || e.width == 0 ||
            e.height == 0 || e.width > SK2_FRAME_MAX_WIDTH || e.height > SK2_FRAME_MAX_HEIGHT ||
            e.stored_bytes > SK2_RECORDING_MAX_PAYLOAD) {
            rc = sk2_rec_fail(self, SK2_ECORRUPT, "index entry %llu is out of bounds",
                              (unsigned long long)i);
            break;
        }
        previous = e.offset;
        rc = sk2_rec_entry_push(self, &e);
    }
    free(index);
    if (rc == 0 && gaps_back > 0) {
        uint64_t at = index_at - gaps_back;
        if (gaps_back > index_at - SK2_REC_FILE_HEADER_SIZE)
            return sk2_rec_fail(self, SK2_ECORRUPT, "index points at gaps outside the file");
        rc = s_read_chunk(self, at, index_at, type, &size);
        if (rc != 0)
            return rc;
        uint64_t n = size >= 8 ? sk2_rec_get32(self->buffer) : 0;
        if (memcmp(type, SK2_REC_GAPS, 4) != 0 || size < 8 ||
            at + SK2_REC_CHUNK_HEADER + size != index_at || n > SK2_REC_GAPS_MAX ||
            size != 8 + n * SK2_REC_GAP_ENTRY)
            return sk2_rec_fail(self, SK2_ECORRUPT, "the gap list before the index is damaged");
        rc = s_add_gaps(self, self->buffer + 8, (size_t)n, at);
    }
    return rc;
}

static int s_open_file(sk2_recording_reader_t *self)
{
    struct stat st;
    if (fstat(self->fd, &st) != 0)
        return sk2_rec_fail(self, SK2_ESYS, "cannot stat: %s", strerror(errno));
    if (!S_ISREG(st.st_mode))
        return sk2_rec_fail(self, SK2_ECORRUPT, "not a regular file");
    self->file_size = (uint64_t)st.st_size;
    uint8_t header[SK2_REC_FILE_HEADER_SIZE];
    if (self->file_size < sizeof header || s_pread(self, header, sizeof header, 0) != 0 ||
        memcmp(header, SK2_REC_MAGIC, 8) != 0)
        return sk2_rec_fail(self, SK2_ECORRUPT, "not an sk2 recording (no SK2REC header)");
    self->major = sk2_rec_get16(header + 8);
    self->minor = sk2_rec_get16(header + 10);
    if (sk2_rec_crc(0, header, 28) != sk2_rec_get32(header + 28))
        return sk2_rec_fail(self, SK2_ECORRUPT, "the recording's file header fails its CRC");
    if (self->major != SK2_RECORDING_VERSION_MAJOR)
        return sk2_rec_fail(self, SK2_EUNSUPPORTED,
                            "recording format version %u.%u; this library reads %d.x", self->major,
                            self->minor, SK2_RECORDING_VERSION_MAJOR);
    if (sk2_rec_get32(header + 12) != SK2_REC_FILE_HEADER_SIZE)
        return sk2_rec_fail(self, SK2_ECORRUPT, "file header of %u bytes",
                            sk2_rec_get32(header + 12));
    self->created_us = (int64_t)sk2_rec_get64(header + 16);

    int rc = s_read_index(self);
    if (rc == SK2_ENOMEM || rc == SK2_ESYS)
        return rc;
    self->has_index = rc == 0;
    if (rc != 0) {
        char note[sizeof self->why];
        snprintf(note, sizeof note, "%.300s", self->why);
        for (size_t i = 0; i < self->entry_count; i++)
            free(self->entries[i].path);
        self->entry_count = 0;
        self->gap_count = 0;
        self->device_count = 0;
        self->why[0] = '\0';
        rc = s_scan(self);
        if (rc != 0)
            return rc;
        char scan_note[sizeof self->why];
        snprintf(scan_note, sizeof scan_note, "%.300s", self->why);
        snprintf(self->why, sizeof self->why, "index missing (%.200s): rebuilt by scanning%s%.250s",
                 note, scan_note[0] ? "; " : "", scan_note);
    } else {
        self->why[0] = '\0';
    }
    if (self->device_count == 0) {
        /* The note so far must be copied out first: formatting self->why into itself overlaps
         * source and destination, which garbled the message. */
        char note[sizeof self->why];
        snprintf(note, sizeof note, "%s", self->why);
        return sk2_rec_fail(self, SK2_ECORRUPT, "the recording describes no device%s%.400s%s",
                            note[0] ? " (" : "", note, note[0] ? ")" : "");
    }
    return 0;
}

int sk2_recording_reader_open_fd(sk2_recording_reader_t *self, int fd)
{
    if (self->is_open) {
        close(fd);
        return sk2_rec_fail(self, SK2_ESTATE, "already open");
    }
    self->fd = fd;
    self->why[0] = '\0';
    self->has_index = false;
    self->ignored_bytes = 0;
    self->is_tum = false;
    /* An MCAP file (by its magic) is read by the MCAP format; anything else as an sk2 file. */
    uint8_t magic[5];
    bool is_mcap = pread(fd, magic, sizeof magic, 0) == (ssize_t)sizeof magic &&
                   memcmp(magic, "\x89MCAP", 5) == 0;
    int rc = is_mcap ? sk2_rec_mcap_open(self) : s_open_file(self);
    if (rc != 0) {
        char why[sizeof self->why];
        memcpy(why, self->why, sizeof why);
        s_close(self);
        memcpy(self->why, why, sizeof why);
        return rc;
    }
    self->is_mcap = is_mcap;
    self->is_open = true;
    return 0;
}

int sk2_recording_reader_open(sk2_recording_reader_t *self, const char *path)
{
    if (!self || !path)
        return SK2_EINVAL;
    if (self->is_open)
        return sk2_rec_fail(self, SK2_ESTATE, "already open");
    struct stat st;
    if (stat(path, &st) != 0)
        return sk2_rec_fail(self, errno == ENOENT ? SK2_ENOTFOUND : SK2_ESYS, "%s: %s", path,
                            strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        self->why[0] = '\0';
        int rc = sk2_rec_tum_open(self, path);
        if (rc != 0) {
            char why[sizeof self->why];
            memcpy(why, self->why, sizeof why);
            s_close(self);
            memcpy(self->why, why, sizeof why);
            return rc;
        }
        self->is_tum = true;
        self->is_open = true;
        return 0;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sk2_rec_fail(self, SK2_ESYS, "cannot open %s: %s", path, strerror(errno));
    return sk2_recording_reader_open_fd(self, fd);
}

const char *sk2_recording_reader_why(const sk2_recording_reader_t *self)
{
    return self ? self->why : "";
}

const char *sk2_recording_reader_format(const sk2_recording_reader_t *self)
{
    return self && self->is_tum ? "tum" : self && self->is_mcap ? "mcap" : "sk2";
}

void sk2_recording_reader_version(const sk2_recording_reader_t *self, unsigned *major,
                                  unsigned *minor)
{
    if (major)
        *major = self ? self->major : 0;
    if (minor)
        *minor = self ? self->minor : 0;
}

size_t sk2_recording_reader_gap_count(const sk2_recording_reader_t *self)
{
    return self ? self->gap_count : 0;
}

int sk2_recording_reader_gap(const sk2_recording_reader_t *self, size_t index, int64_t *start_us,
                             int64_t *end_us, uint64_t *frames_before)
{
    if (!self || index >= self->gap_count)
        return SK2_ENOTFOUND;
    const uint8_t *e = self->gaps + index * SK2_REC_GAP_ENTRY;
    if (start_us)
        *start_us = (int64_t)sk2_rec_get64(e);
    if (end_us)
        *end_us = (int64_t)sk2_rec_get64(e + 8);
    if (frames_before)
        *frames_before = sk2_rec_get64(e + 16);
    return 0;
}

bool sk2_recording_reader_has_index(const sk2_recording_reader_t *self)
{
    return self && self->has_index;
}

uint64_t sk2_recording_reader_ignored_bytes(const sk2_recording_reader_t *self)
{
    return self ? self->ignored_bytes : 0;
}

int64_t sk2_recording_reader_created_us(const sk2_recording_reader_t *self)
{
    return self ? self->created_us : 0;
}

size_t sk2_recording_reader_device_count(const sk2_recording_reader_t *self)
{
    return self && self->is_open ? self->device_count : 0;
}

static const sk2_rec_device_t *s_device(const sk2_recording_reader_t *self, size_t device)
{
    return self && self->is_open && device < self->device_count ? &self->devices[device] : NULL;
}

const char *sk2_recording_reader_device_id(const sk2_recording_reader_t *self, size_t device)
{
    const sk2_rec_device_t *d = s_device(self, device);
    return d ? d->id : NULL;
}

const char *sk2_recording_reader_device_serial(const sk2_recording_reader_t *self, size_t device)
{
    const sk2_rec_device_t *d = s_device(self, device);
    return d ? d->serial : NULL;
}

const char *sk2_recording_reader_device_backend(const sk2_recording_reader_t *self, size_t device)
{
    const sk2_rec_device_t *d = s_device(self, device);
    return d ? d->backend : NULL;
}

int sk2_recording_reader_device_pose(const sk2_recording_reader_t *self, size_t device,
                                     sk2_pose_t *pose)
{
    const sk2_rec_device_t *d = s_device(self, device);
    if (!d || !d->has_pose || !pose)
        return pose ? SK2_ENOTFOUND : SK2_EINVAL;
    *pose = d->pose;
    return 0;
}

int sk2_recording_reader_device_depth_to_color(const sk2_recording_reader_t *self, size_t device,
                                               sk2_extrinsics_t *extrinsics)
{
    const sk2_rec_device_t *d = s_device(self, device);
    if (!d || !d->has_extrinsics || !extrinsics)
        return extrinsics ? SK2_ENOTFOUND : SK2_EINVAL;
    *extrinsics = d->extrinsics;
    return 0;
}

size_t sk2_recording_reader_stream_count(const sk2_recording_reader_t *self, size_t device)
{
    const sk2_rec_device_t *d = s_device(self, device);
    return d ? d->stream_count : 0;
}

int sk2_recording_reader_stream_info(const sk2_recording_reader_t *self, size_t device,
                                     size_t index, sk2_stream_info_t *info)
{
    const sk2_rec_device_t *d = s_device(self, device);
    if (!d || index >= d->stream_count || !info)
        return SK2_ENOTFOUND;
    *info = d->streams[index];
    return 0;
}

size_t sk2_recording_reader_frame_count(const sk2_recording_reader_t *self)
{
    return self && self->is_open ? self->entry_count : 0;
}

int sk2_recording_reader_frame_info(const sk2_recording_reader_t *self, size_t index,
                                    sk2_recording_frame_info_t *info)
{
    if (!self || !self->is_open || index >= self->entry_count || !info)
        return SK2_ENOTFOUND;
    const sk2_rec_entry_t *e = &self->entries[index];
    const sk2_codec_t *codec = sk2_codec_from_wire_id(e->codec);
    *info = (sk2_recording_frame_info_t){
        .device = e->device,
        .kind = (sk2_stream_kind_t)e->kind,
        .format = (sk2_pixel_format_t)e->format,
        .codec = e->stored == SK2_REC_STORED_PNG    ? "png"
                 : e->stored == SK2_REC_STORED_JPEG ? "jpeg"
                 : codec                            ? sk2_codec_name(codec)
                                                    : "unknown",
        .width = e->width,
        .height = e->height,
        .sequence = e->sequence,
        .device_timestamp_us = e->device_timestamp_us,
        .capture_time_us = e->capture_time_us,
        .stored_bytes = e->stored_bytes,
    };
    return 0;
}

size_t sk2_recording_reader_find_time(const sk2_recording_reader_t *self, int64_t time_us)
{
    if (!self || !self->is_open)
        return 0;
    size_t low = 0, high = self->entry_count;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        if (self->entries[mid].capture_time_us < time_us)
            low = mid + 1;
        else
            high = mid;
    }
    return low;
}

int sk2_recording_reader_check_frame(sk2_recording_reader_t *self, size_t index)
{
    if (!self || !self->is_open || index >= self->entry_count)
        return SK2_ENOTFOUND;
    const sk2_rec_entry_t *e = &self->entries[index];
    const sk2_stream_info_t *stream = s_stream(&self->devices[e->device], e->kind);
    char why[256];
    if (e->stored != SK2_REC_STORED_WIRE) {
        /* A TUM image or an MCAP message: its size was read at open; only the budget applies. */
        size_t bytes = sk2_limit_frame_bytes((sk2_pixel_format_t)e->format, e->width, e->height);
        if (bytes == 0 || bytes > self->max_frame_bytes)
            return sk2_rec_fail(self, SK2_ELIMIT,
                                "frame %zu of %ux%u is over the limit of %zu bytes", index,
                                e->width, e->height, self->max_frame_bytes);
        return 0;
    }
    sk2_header_t h = {.kind = (sk2_stream_kind_t)e->kind,
                      .format = (sk2_pixel_format_t)e->format,
                      .codec = sk2_codec_from_wire_id(e->codec),
                      .width = e->width,
                      .height = e->height,
                      .payload_size = e->stored_bytes};
    if (!h.codec)
        return sk2_rec_fail(self, SK2_EUNSUPPORTED, "frame %zu uses codec number %u", index,
                            e->codec);
    int rc = sk2_header_check(&h, stream, self->max_frame_bytes, why, sizeof why);
    if (rc != 0)
        return sk2_rec_fail(self, rc == SK2_ELIMIT ? rc : SK2_ECORRUPT, "frame %zu: %s", index,
                            why);
    return 0;
}

int sk2_recording_reader_read_encoded(sk2_recording_reader_t *self, size_t index,
                                      const uint8_t **header, size_t *header_size,
                                      const uint8_t **payload, size_t *payload_size)
{
    int rc = sk2_recording_reader_check_frame(self, index);
    if (rc != 0)
        return rc;
    const sk2_rec_entry_t *e = &self->entries[index];
    if (e->stored != SK2_REC_STORED_WIRE)
        return sk2_rec_fail(self, SK2_EUNSUPPORTED,
                            self->is_mcap
                                ? "an MCAP file holds ROS messages, not frames as sent on the wire"
                                : "a TUM folder holds images, not frames as sent on the wire");
    char type[5];
    size_t size = 0;
    rc = s_read_chunk(self, e->offset, self->file_size, type, &size);
    if (rc != 0)
        return rc;
    if (memcmp(type, SK2_REC_FRAME, 4) != 0)
        return sk2_rec_fail(self, SK2_ECORRUPT, "index points at a %s chunk, not a frame", type);
    sk2_rec_entry_t found;
    size_t hsize = 0;
    rc = s_parse_frame(self, self->buffer, size, e->offset, &found, &hsize);
    if (rc != 0)
        return rc;
    if (found.device != e->device || found.kind != e->kind || found.sequence != e->sequence ||
        found.width != e->width || found.height != e->height || found.codec != e->codec ||
        found.stored_bytes != e->stored_bytes)
        return sk2_rec_fail(self, SK2_ECORRUPT, "frame at byte %llu disagrees with the index",
                            (unsigned long long)e->offset);
    if (header)
        *header = self->buffer + SK2_REC_PREFIX;
    if (header_size)
        *header_size = hsize;
    if (payload)
        *payload = self->buffer + SK2_REC_PREFIX + hsize;
    if (payload_size)
        *payload_size = found.stored_bytes;
    return 0;
}

int sk2_recording_reader_read_frame(sk2_recording_reader_t *self, size_t index,
                                    sk2_frame_t **frame_p)
{
    if (!frame_p)
        return SK2_EINVAL;
    *frame_p = NULL;
    if (!self || !self->is_open || index >= self->entry_count)
        return SK2_ENOTFOUND;
    const sk2_rec_entry_t *e = &self->entries[index];
    int rc = sk2_recording_reader_check_frame(self, index);
    if (rc != 0)
        return rc;
    if (e->stored == SK2_REC_STORED_MCAP_IMAGE || e->stored == SK2_REC_STORED_MCAP_PACKED)
        return sk2_rec_mcap_read_frame(self, e, frame_p);
    if (e->stored != SK2_REC_STORED_WIRE)
        return sk2_rec_tum_read_frame(self, e, frame_p);
    const uint8_t *payload = NULL;
    size_t payload_size = 0;
    rc = sk2_recording_reader_read_encoded(self, index, NULL, NULL, &payload, &payload_size);
    if (rc != 0)
        return rc;
    const sk2_codec_t *codec = sk2_codec_from_wire_id(e->codec);
    if (!codec)
        return sk2_rec_fail(self, SK2_EUNSUPPORTED, "frame %zu uses codec number %u", index,
                            e->codec);
    sk2_frame_t *frame = sk2_frame_new((sk2_stream_kind_t)e->kind, (sk2_pixel_format_t)e->format,
                                       e->width, e->height);
    if (!frame)
        return sk2_rec_fail(self, SK2_ENOMEM, "out of memory for a frame");
    rc = sk2_codec_decode(codec, payload, payload_size, frame);
    if (rc != 0) {
        sk2_frame_destroy(&frame);
        return sk2_rec_fail(self, rc, "frame %zu does not decode with %s: %s", index,
                            sk2_codec_name(codec), sk2_strerror(rc));
    }
    sk2_frame_set_sequence(frame, e->sequence);
    sk2_frame_set_device_timestamp_us(frame, e->device_timestamp_us);
    sk2_frame_set_capture_time_us(frame, e->capture_time_us);
    *frame_p = frame;
    return 0;
}
