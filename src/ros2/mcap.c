/* The MCAP writer (mcap.h). Records are assembled in memory (a message's record in its chunk,
 * a chunk's index beside it, the summary at close) and written with one sequential stream, so
 * the only state on disk is a valid prefix until close adds the summary and the footer. */
#include "ros2/mcap.h"

#include <errno.h>
#include <lz4frame.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "sk2/error.h"

enum {
    S_OP_HEADER = 0x01,
    S_OP_FOOTER = 0x02,
    S_OP_SCHEMA = 0x03,
    S_OP_CHANNEL = 0x04,
    S_OP_MESSAGE = 0x05,
    S_OP_CHUNK = 0x06,
    S_OP_MESSAGE_INDEX = 0x07,
    S_OP_CHUNK_INDEX = 0x08,
    S_OP_STATISTICS = 0x0b,
    S_OP_METADATA = 0x0c,
    S_OP_METADATA_INDEX = 0x0d,
    S_OP_SUMMARY_OFFSET = 0x0e,
    S_OP_DATA_END = 0x0f,
};

static const uint8_t s_magic[8] = {0x89, 'M', 'C', 'A', 'P', 0x30, '\r', '\n'};
#define S_ZSTD_LEVEL 3    /* zstd's default: most of its ratio at a fraction of the time */
#define S_MAX_STRING 4096 /* topics, names, encodings, metadata keys and values */
#define S_MAX_PAIRS  256  /* key/value pairs of one channel or metadata record */
#define S_MAX_SCHEMA (1u << 20)

/* A growing byte buffer; a failed allocation sticks and is reported once at the end. */
typedef struct {
    uint8_t *data;
    size_t size;
    size_t capacity;
    bool is_failed;
} s_buf_t;

typedef struct {
    uint16_t channel;
    uint64_t time_ns;
    uint64_t offset; /* of the message record in the chunk's uncompressed records */
} s_entry_t;

struct sk2_mcap_writer {
    FILE *file;
    bool is_failed;
    sk2_mcap_compression_t compression;
    uint64_t offset;   /* bytes written */
    uint32_t data_crc; /* of everything written before Data End */
    char why[256];

    s_buf_t schemas;  /* Schema records, repeated in the summary */
    s_buf_t channels; /* Channel records, likewise */
    uint16_t schema_count;
    uint16_t channel_count;
    uint64_t channel_messages[SK2_MCAP_MAX_CHANNELS];

    s_buf_t chunk; /* the open chunk's uncompressed records */
    s_entry_t *entries;
    size_t entry_count;
    uint64_t chunk_start_ns, chunk_end_ns;
    s_buf_t packed; /* the compressed records */
    s_buf_t scratch;

    s_buf_t chunk_indexes;    /* Chunk Index records for the summary */
    s_buf_t metadata_indexes; /* Metadata Index records */
    uint32_t chunk_count;
    uint32_t metadata_count;
    uint64_t message_count;
    uint64_t start_ns, end_ns;
};

/* ---- Buffers and the MCAP primitive types (little-endian) ---- */

static void s_put(s_buf_t *b, const void *data, size_t size)
{
    if (b->is_failed)
        return;
    if (b->size + size > b->capacity) {
        size_t capacity = b->capacity ? b->capacity : 1024;
        while (capacity < b->size + size)
            capacity *= 2;
        uint8_t *grown = realloc(b->data, capacity);
        if (!grown) {
            b->is_failed = true;
            return;
        }
        b->data = grown;
        b->capacity = capacity;
    }
    if (size && data) /* NULL data only makes room (for a compressor to write into) */
        memcpy(b->data + b->size, data, size);
    b->size += size;
}

static void s_le(uint8_t *at, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        at[i] = (uint8_t)(v >> (8 * i));
}

static void s_uint(s_buf_t *b, uint64_t v, int bytes)
{
    uint8_t tmp[8];
    s_le(tmp, v, bytes);
    s_put(b, tmp, (size_t)bytes);
}

static void s_u8(s_buf_t *b, uint8_t v)
{
    s_uint(b, v, 1);
}
static void s_u16(s_buf_t *b, uint16_t v)
{
    s_uint(b, v, 2);
}
static void s_u32(s_buf_t *b, uint32_t v)
{
    s_uint(b, v, 4);
}
static void s_u64(s_buf_t *b, uint64_t v)
{
    s_uint(b, v, 8);
}

static void s_string(s_buf_t *b, const char *text)
{
    size_t length = strlen(text);
    s_u32(b, (uint32_t)length);
    s_put(b, text, length);
}

/* Starts a record: its opcode and a length that s_end fills in. Returns where it starts. */
static size_t s_begin(s_buf_t *b, uint8_t opcode)
{
    size_t start = b->size;
    s_u8(b, opcode);
    s_u64(b, 0);
    return start;
}

static void s_end(s_buf_t *b, size_t start)
{
    if (!b->is_failed)
        s_le(b->data + start + 1, b->size - start - 9, 8);
}

/* A Map<string, string>: its byte length, then key and value strings. */
static void s_map(s_buf_t *b, const char *const *kv, size_t pairs)
{
    size_t length = 0;
    for (size_t i = 0; i < 2 * pairs; i++)
        length += 4 + strlen(kv[i]);
    s_u32(b, (uint32_t)length);
    for (size_t i = 0; i < 2 * pairs; i++)
        s_string(b, kv[i]);
}

static void s_buf_free(s_buf_t *b)
{
    free(b->data);
    *b = (s_buf_t){0};
}

/* ---- The writer ---- */

static int s_fail(sk2_mcap_writer_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(sk2_mcap_writer_t *self, int rc, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(self->why, sizeof self->why, fmt, args);
    va_end(args);
    return rc;
}

/* Writes to the file, counting the offset and the data section's CRC. A failed write marks
 * the writer failed: the file is then only a prefix. */
static int s_write(sk2_mcap_writer_t *self, const void *data, size_t size, bool is_data)
{
    if (size && fwrite(data, 1, size, self->file) != size) {
        self->is_failed = true;
        return s_fail(self, SK2_ESYS, "cannot write: %s", strerror(errno));
    }
    if (is_data)
        self->data_crc = (uint32_t)crc32(self->data_crc, data, (uInt)size);
    self->offset += size;
    return 0;
}

static int s_write_buf(sk2_mcap_writer_t *self, s_buf_t *b)
{
    if (b->is_failed) {
        /* The summary's copy of this record may be cut short too: the file cannot be
         * finished correctly any more. */
        b->is_failed = false;
        b->size = 0;
        self->is_failed = true;
        return s_fail(self, SK2_ENOMEM, "out of memory");
    }
    int rc = s_write(self, b->data, b->size, true);
    b->size = 0;
    return rc;
}

static bool s_string_ok(const char *s, bool may_be_empty)
{
    return s && (may_be_empty || s[0]) && strlen(s) <= S_MAX_STRING;
}

static bool s_pairs_ok(const char *const *kv, size_t pairs)
{
    if (pairs > S_MAX_PAIRS || (pairs && !kv))
        return false;
    for (size_t i = 0; i < 2 * pairs; i++)
        if (!s_string_ok(kv[i], i % 2 == 1))
            return false;
    return true;
}

static int s_usable(sk2_mcap_writer_t *self)
{
    if (!self->file)
        return s_fail(self, SK2_ESTATE, "not open");
    if (self->is_failed)
        return s_fail(self, SK2_ESTATE, "an earlier write failed");
    self->why[0] = '\0';
    return 0;
}

const char *sk2_mcap_compression_name(sk2_mcap_compression_t compression)
{
    switch (compression) {
    case SK2_MCAP_NONE:
        return "none";
    case SK2_MCAP_ZSTD:
        return "zstd";
    case SK2_MCAP_LZ4:
        return "lz4";
    }
    return NULL;
}

int sk2_mcap_compression_parse(const char *name, sk2_mcap_compression_t *compression)
{
    for (int c = SK2_MCAP_NONE; c <= SK2_MCAP_LZ4; c++)
        if (name && strcmp(name, sk2_mcap_compression_name((sk2_mcap_compression_t)c)) == 0) {
            *compression = (sk2_mcap_compression_t)c;
            return 0;
        }
    return SK2_EINVAL;
}

sk2_mcap_writer_t *sk2_mcap_writer_new(void)
{
    return calloc(1, sizeof(sk2_mcap_writer_t));
}

void sk2_mcap_writer_destroy(sk2_mcap_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_mcap_writer_t *self = *self_p;
    if (self->file)
        fclose(self->file);
    s_buf_t *bufs[] = {&self->schemas, &self->channels,      &self->chunk,           &self->packed,
                       &self->scratch, &self->chunk_indexes, &self->metadata_indexes};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        s_buf_free(bufs[i]);
    free(self->entries);
    free(self);
    *self_p = NULL;
}

int sk2_mcap_writer_open(sk2_mcap_writer_t *self, const char *path,
                         sk2_mcap_compression_t compression, const char *profile,
                         const char *library)
{
    if (!self || !path || !sk2_mcap_compression_name(compression) || !s_string_ok(profile, true) ||
        !s_string_ok(library, true))
        return self ? s_fail(self, SK2_EINVAL, "invalid argument") : SK2_EINVAL;
    if (self->file)
        return s_fail(self, SK2_ESTATE, "open already");
    self->entries =
        self->entries ? self->entries : malloc(SK2_MCAP_MAX_CHUNK_MESSAGES * sizeof(s_entry_t));
    if (!self->entries)
        return s_fail(self, SK2_ENOMEM, "out of memory");
    self->file = fopen(path, "wb");
    if (!self->file)
        return s_fail(self, SK2_ESYS, "cannot create %s: %s", path, strerror(errno));
    self->compression = compression;
    s_buf_t *b = &self->scratch;
    s_put(b, s_magic, sizeof s_magic);
    size_t at = s_begin(b, S_OP_HEADER);
    s_string(b, profile);
    s_string(b, library);
    s_end(b, at);
    return s_write_buf(self, b);
}

int sk2_mcap_writer_add_schema(sk2_mcap_writer_t *self, const char *name, const char *encoding,
                               const char *data, uint16_t *id)
{
    int rc = self ? s_usable(self) : SK2_EINVAL;
    if (rc != 0)
        return rc;
    if (!s_string_ok(name, false) || !s_string_ok(encoding, true) || !data || !id ||
        strlen(data) > S_MAX_SCHEMA)
        return s_fail(self, SK2_EINVAL, "invalid schema");
    if (self->schema_count >= SK2_MCAP_MAX_SCHEMAS)
        return s_fail(self, SK2_ELIMIT, "more than %d schemas", SK2_MCAP_MAX_SCHEMAS);
    s_buf_t *b = &self->scratch;
    size_t at = s_begin(b, S_OP_SCHEMA);
    s_u16(b, (uint16_t)(self->schema_count + 1)); /* 0 means "no schema" */
    s_string(b, name);
    s_string(b, encoding);
    s_string(b, data); /* uint32-prefixed bytes: the same layout as a string */
    s_end(b, at);
    s_put(&self->schemas, b->data, b->size);
    if ((rc = s_write_buf(self, b)) != 0)
        return rc;
    *id = ++self->schema_count;
    return 0;
}

int sk2_mcap_writer_add_channel(sk2_mcap_writer_t *self, uint16_t schema_id, const char *topic,
                                const char *message_encoding, const char *const *kv, size_t pairs,
                                uint16_t *id)
{
    int rc = self ? s_usable(self) : SK2_EINVAL;
    if (rc != 0)
        return rc;
    if (schema_id > self->schema_count || !s_string_ok(topic, false) ||
        !s_string_ok(message_encoding, false) || !s_pairs_ok(kv, pairs) || !id)
        return s_fail(self, SK2_EINVAL, "invalid channel");
    if (self->channel_count >= SK2_MCAP_MAX_CHANNELS)
        return s_fail(self, SK2_ELIMIT, "more than %d channels", SK2_MCAP_MAX_CHANNELS);
    s_buf_t *b = &self->scratch;
    size_t at = s_begin(b, S_OP_CHANNEL);
    s_u16(b, self->channel_count);
    s_u16(b, schema_id);
    s_string(b, topic);
    s_string(b, message_encoding);
    s_map(b, kv, pairs);
    s_end(b, at);
    s_put(&self->channels, b->data, b->size);
    if ((rc = s_write_buf(self, b)) != 0)
        return rc;
    *id = self->channel_count++;
    return 0;
}

static int s_compress(sk2_mcap_writer_t *self, const uint8_t **out, size_t *out_size)
{
    s_buf_t *src = &self->chunk, *dst = &self->packed;
    if (self->compression == SK2_MCAP_NONE) {
        *out = src->data;
        *out_size = src->size;
        return 0;
    }
    size_t bound = self->compression == SK2_MCAP_ZSTD ? ZSTD_compressBound(src->size)
                                                      : LZ4F_compressFrameBound(src->size, NULL);
    dst->size = 0;
    s_put(dst, NULL, bound);
    if (dst->is_failed) {
        dst->is_failed = false;
        dst->size = 0;
        return s_fail(self, SK2_ENOMEM, "out of memory");
    }
    size_t n;
    if (self->compression == SK2_MCAP_ZSTD) {
        n = ZSTD_compress(dst->data, bound, src->data, src->size, S_ZSTD_LEVEL);
        if (ZSTD_isError(n))
            return s_fail(self, SK2_ENOMEM, "zstd: %s", ZSTD_getErrorName(n));
    } else {
        n = LZ4F_compressFrame(dst->data, bound, src->data, src->size, NULL);
        if (LZ4F_isError(n))
            return s_fail(self, SK2_ENOMEM, "lz4: %s", LZ4F_getErrorName(n));
    }
    *out = dst->data;
    *out_size = n;
    return 0;
}

/* Writes the open chunk (if it holds anything), its Message Index records, and keeps its Chunk
 * Index for the summary. */
static int s_flush_chunk(sk2_mcap_writer_t *self)
{
    if (self->entry_count == 0)
        return 0;
    if (self->chunk.is_failed)
        return s_fail(self, SK2_ENOMEM, "out of memory");
    const uint8_t *records = NULL;
    size_t records_size = 0;
    int rc = s_compress(self, &records, &records_size);
    if (rc != 0)
        return rc;
    const char *compression =
        self->compression == SK2_MCAP_NONE ? "" : sk2_mcap_compression_name(self->compression);
    uint64_t chunk_start = self->offset;
    s_buf_t *b = &self->scratch;
    b->size = 0;
    s_u8(b, S_OP_CHUNK);
    s_u64(b, 8 + 8 + 8 + 4 + 4 + strlen(compression) + 8 + records_size);
    s_u64(b, self->chunk_start_ns);
    s_u64(b, self->chunk_end_ns);
    s_u64(b, self->chunk.size);
    s_u32(b, (uint32_t)crc32(0, self->chunk.data, (uInt)self->chunk.size));
    s_string(b, compression);
    s_u64(b, records_size);
    if ((rc = s_write_buf(self, b)) != 0 || (rc = s_write(self, records, records_size, true)) != 0)
        return rc;
    uint64_t chunk_length = self->offset - chunk_start;

    /* One Message Index per channel present, in channel order; their offsets go into the
     * Chunk Index's map. */
    uint64_t index_start = self->offset;
    s_buf_t map = {0};
    for (uint16_t ch = 0; ch < self->channel_count; ch++) {
        size_t n = 0;
        for (size_t i = 0; i < self->entry_count; i++)
            n += self->entries[i].channel == ch;
        if (n == 0)
            continue;
        s_u16(&map, ch);
        s_u64(&map, self->offset);
        size_t at = s_begin(b, S_OP_MESSAGE_INDEX);
        s_u16(b, ch);
        s_u32(b, (uint32_t)(16 * n));
        for (size_t i = 0; i < self->entry_count; i++)
            if (self->entries[i].channel == ch) {
                s_u64(b, self->entries[i].time_ns);
                s_u64(b, self->entries[i].offset);
            }
        s_end(b, at);
        if ((rc = s_write_buf(self, b)) != 0) {
            s_buf_free(&map);
            return rc;
        }
    }
    s_buf_t *ci = &self->chunk_indexes;
    size_t at = s_begin(ci, S_OP_CHUNK_INDEX);
    s_u64(ci, self->chunk_start_ns);
    s_u64(ci, self->chunk_end_ns);
    s_u64(ci, chunk_start);
    s_u64(ci, chunk_length);
    s_u32(ci, (uint32_t)map.size);
    s_put(ci, map.data, map.size);
    s_u64(ci, self->offset - index_start);
    s_string(ci, compression);
    s_u64(ci, records_size);
    s_u64(ci, self->chunk.size);
    s_end(ci, at);
    bool is_failed = map.is_failed || ci->is_failed;
    s_buf_free(&map);
    if (is_failed)
        return s_fail(self, SK2_ENOMEM, "out of memory");
    self->chunk_count++;
    self->chunk.size = 0;
    self->entry_count = 0;
    return 0;
}

int sk2_mcap_writer_add_message(sk2_mcap_writer_t *self, uint16_t channel_id, uint32_t sequence,
                                uint64_t log_time_ns, uint64_t publish_time_ns, const uint8_t *data,
                                size_t size)
{
    int rc = self ? s_usable(self) : SK2_EINVAL;
    if (rc != 0)
        return rc;
    if (channel_id >= self->channel_count || (!data && size))
        return s_fail(self, SK2_EINVAL, "invalid message (channel %u)", channel_id);
    if (size > SK2_MCAP_MAX_MESSAGE)
        return s_fail(self, SK2_ELIMIT, "message of %zu bytes", size);
    if (self->entry_count == SK2_MCAP_MAX_CHUNK_MESSAGES && (rc = s_flush_chunk(self)) != 0)
        return rc;
    s_buf_t *b = &self->chunk;
    size_t at = s_begin(b, S_OP_MESSAGE);
    s_u16(b, channel_id);
    s_u32(b, sequence);
    s_u64(b, log_time_ns);
    s_u64(b, publish_time_ns);
    s_put(b, data, size);
    s_end(b, at);
    if (b->is_failed) {
        b->is_failed = false;
        b->size = at;
        return s_fail(self, SK2_ENOMEM, "out of memory");
    }
    if (self->entry_count == 0 || log_time_ns < self->chunk_start_ns)
        self->chunk_start_ns = log_time_ns;
    if (self->entry_count == 0 || log_time_ns > self->chunk_end_ns)
        self->chunk_end_ns = log_time_ns;
    if (self->message_count == 0 || log_time_ns < self->start_ns)
        self->start_ns = log_time_ns;
    if (self->message_count == 0 || log_time_ns > self->end_ns)
        self->end_ns = log_time_ns;
    self->entries[self->entry_count++] = (s_entry_t){channel_id, log_time_ns, at};
    self->channel_messages[channel_id]++;
    self->message_count++;
    if (b->size >= SK2_MCAP_CHUNK_BYTES)
        return s_flush_chunk(self);
    return 0;
}

int sk2_mcap_writer_add_metadata(sk2_mcap_writer_t *self, const char *name, const char *const *kv,
                                 size_t pairs)
{
    int rc = self ? s_usable(self) : SK2_EINVAL;
    if (rc != 0)
        return rc;
    if (!s_string_ok(name, false) || !s_pairs_ok(kv, pairs))
        return s_fail(self, SK2_EINVAL, "invalid metadata");
    s_buf_t *b = &self->scratch;
    size_t at = s_begin(b, S_OP_METADATA);
    s_string(b, name);
    s_map(b, kv, pairs);
    s_end(b, at);
    uint64_t offset = self->offset, length = b->size;
    if ((rc = s_write_buf(self, b)) != 0)
        return rc;
    s_buf_t *mi = &self->metadata_indexes;
    at = s_begin(mi, S_OP_METADATA_INDEX);
    s_u64(mi, offset);
    s_u64(mi, length);
    s_string(mi, name);
    s_end(mi, at);
    self->metadata_count++;
    return 0;
}

/* Appends a group of summary records to the summary and its Summary Offset to offsets. */
static void s_group(s_buf_t *summary, s_buf_t *offsets, uint64_t summary_start, uint8_t opcode,
                    const s_buf_t *group)
{
    if (group->size == 0)
        return;
    size_t at = s_begin(offsets, S_OP_SUMMARY_OFFSET);
    s_u8(offsets, opcode);
    s_u64(offsets, summary_start + summary->size);
    s_u64(offsets, group->size);
    s_end(offsets, at);
    s_put(summary, group->data, group->size);
}

int sk2_mcap_writer_close(sk2_mcap_writer_t *self)
{
    int rc = self ? s_usable(self) : SK2_EINVAL;
    if (rc != 0)
        return rc;
    if ((rc = s_flush_chunk(self)) != 0)
        goto out;
    s_buf_t *b = &self->scratch;
    b->size = 0;
    s_u8(b, S_OP_DATA_END);
    s_u64(b, 4);
    s_u32(b, self->data_crc);
    if ((rc = s_write_buf(self, b)) != 0)
        goto out;

    s_buf_t stats = {0};
    size_t at = s_begin(&stats, S_OP_STATISTICS);
    s_u64(&stats, self->message_count);
    s_u16(&stats, self->schema_count);
    s_u32(&stats, self->channel_count);
    s_u32(&stats, 0); /* attachments */
    s_u32(&stats, self->metadata_count);
    s_u32(&stats, self->chunk_count);
    s_u64(&stats, self->start_ns);
    s_u64(&stats, self->end_ns);
    s_u32(&stats, (uint32_t)(10 * self->channel_count));
    for (uint16_t ch = 0; ch < self->channel_count; ch++) {
        s_u16(&stats, ch);
        s_u64(&stats, self->channel_messages[ch]);
    }
    s_end(&stats, at);

    uint64_t summary_start = self->offset;
    s_buf_t summary = {0}, offsets = {0};
    s_group(&summary, &offsets, summary_start, S_OP_SCHEMA, &self->schemas);
    s_group(&summary, &offsets, summary_start, S_OP_CHANNEL, &self->channels);
    s_group(&summary, &offsets, summary_start, S_OP_STATISTICS, &stats);
    s_group(&summary, &offsets, summary_start, S_OP_METADATA_INDEX, &self->metadata_indexes);
    s_group(&summary, &offsets, summary_start, S_OP_CHUNK_INDEX, &self->chunk_indexes);
    uint64_t offsets_start = summary_start + summary.size;
    s_put(&summary, offsets.data, offsets.size);
    /* The footer's CRC covers the summary, the summary offsets and the footer up to the CRC. */
    s_u8(&summary, S_OP_FOOTER);
    s_u64(&summary, 8 + 8 + 4);
    s_u64(&summary, summary_start);
    s_u64(&summary, offsets_start);
    if (!summary.is_failed)
        s_u32(&summary, (uint32_t)crc32(0, summary.data, (uInt)summary.size));
    s_put(&summary, s_magic, sizeof s_magic);
    bool is_failed = summary.is_failed || offsets.is_failed || stats.is_failed ||
                     self->schemas.is_failed || self->channels.is_failed ||
                     self->chunk_indexes.is_failed || self->metadata_indexes.is_failed;
    if (is_failed)
        rc = s_fail(self, SK2_ENOMEM, "out of memory");
    else
        rc = s_write(self, summary.data, summary.size, false);
    s_buf_free(&summary);
    s_buf_free(&offsets);
    s_buf_free(&stats);
    if (rc == 0 && (fflush(self->file) != 0 || fsync(fileno(self->file)) != 0))
        rc = s_fail(self, SK2_ESYS, "cannot write: %s", strerror(errno));
out:
    if (fclose(self->file) != 0 && rc == 0)
        rc = s_fail(self, SK2_ESYS, "cannot write: %s", strerror(errno));
    self->file = NULL;
    self->is_failed = rc != 0;
    return rc;
}

uint64_t sk2_mcap_writer_bytes(const sk2_mcap_writer_t *self)
{
    return self->offset;
}

uint64_t sk2_mcap_writer_messages(const sk2_mcap_writer_t *self)
{
    return self->message_count;
}

uint32_t sk2_mcap_writer_chunks(const sk2_mcap_writer_t *self)
{
    return self->chunk_count;
}

const char *sk2_mcap_writer_why(const sk2_mcap_writer_t *self)
{
    return self->why;
}
