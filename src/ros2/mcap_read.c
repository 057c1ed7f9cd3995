/* The MCAP reader (mcap_read.h). Opening walks the file record by record from the magic: each
 * record's 9-byte head (opcode, length) is checked against the bytes left in the file before
 * its body is read, and against the limits before anything is allocated from it. Records the
 * reader has no use for (indexes, attachments, statistics) are read in blocks only to keep the
 * Data End's CRC, never held whole. Chunks are decompressed once at open to find their messages
 * and check their CRC; reading a message later decompresses its chunk again (one is cached). */
#include "core/io.h"
#include "ros2/mcap_read.h"

#include <errno.h>
#include <fcntl.h>
#include <lz4frame.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
    S_OP_METADATA = 0x0c,
    S_OP_DATA_END = 0x0f,
};

enum { S_NONE = 0, S_ZSTD = 1, S_LZ4 = 2 };

#define S_HEAD       9  /* opcode and length */
#define S_MESSAGE    22 /* channel, sequence, log time, publish time */
#define S_SKIP_BLOCK ((size_t)1 << 20)
#define S_NO_CHUNK   UINT32_MAX

static const uint8_t s_magic[8] = {0x89, 'M', 'C', 'A', 'P', 0x30, '\r', '\n'};

/* A chunk: where its compressed records are and what they must give. */
typedef struct {
    uint64_t records_at; /* file offset of the compressed records */
    uint64_t packed_size;
    uint64_t raw_size;
    uint32_t crc;
    uint8_t compression;
} s_chunk_t;

struct sk2_mcap_reader {
    int fd;
    bool is_open;
    bool is_complete;
    uint64_t file_size;
    uint64_t ignored;
    char *profile;
    char why[512];

    sk2_mcap_schema_t schemas[SK2_MCAP_READ_MAX_SCHEMAS];
    size_t schema_count;
    sk2_mcap_channel_t channels[SK2_MCAP_READ_MAX_CHANNELS];
    size_t channel_count;
    sk2_mcap_metadata_t metadata[SK2_MCAP_READ_MAX_METADATA];
    size_t metadata_count;
    sk2_mcap_message_t *messages;
    size_t message_count, message_cap;
    s_chunk_t *chunks;
    size_t chunk_count, chunk_cap;

    uint8_t *record; /* the body of the record being read */
    size_t record_cap;
    uint8_t *packed; /* a chunk's compressed records (when not in record) */
    size_t packed_cap;
    uint8_t *raw; /* the decompressed records of chunk raw_chunk */
    size_t raw_cap;
    uint32_t raw_chunk;
    ZSTD_DCtx *zstd;
    LZ4F_dctx *lz4;
};

static int s_fail(sk2_mcap_reader_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail(sk2_mcap_reader_t *self, int rc, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(self->why, sizeof self->why, fmt, args);
    va_end(args);
    return rc;
}

static uint16_t s_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t s_get64(const uint8_t *p)
{
    return (uint64_t)s_get32(p) | (uint64_t)s_get32(p + 4) << 32;
}

static int s_grow(sk2_mcap_reader_t *self, uint8_t **buffer, size_t *cap, size_t size)
{
    if (size <= *cap)
        return 0;
    uint8_t *grown = realloc(*buffer, size);
    if (!grown)
        return s_fail(self, SK2_ENOMEM, "out of memory for %zu bytes", size);
    *buffer = grown;
    *cap = size;
    return 0;
}

static int s_pread(sk2_mcap_reader_t *self, void *buf, size_t size, uint64_t offset)
{
    uint64_t end = 0;
    int rc = sk2_pread_exact(self->fd, buf, size, offset, &end);
    if (rc == SK2_ESYS)
        return s_fail(self, rc, "cannot read: %s", strerror(errno));
    if (rc != 0)
        return s_fail(self, rc, "the file ends at byte %llu (it shrank?)", (unsigned long long)end);
    return 0;
}

/* ---- Fields of a record body, each checked against what is left of it ---- */

typedef struct {
    const uint8_t *p;
    size_t left;
    bool is_bad;
} s_cursor_t;

static uint64_t s_take(s_cursor_t *c, int bytes)
{
    if (c->is_bad || c->left < (size_t)bytes) {
        c->is_bad = true;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)c->p[i] << (8 * i);
    c->p += bytes;
    c->left -= (size_t)bytes;
    return v;
}

/* A uint32-prefixed string (or byte array up to max), copied with a NUL. */
static char *s_take_string(s_cursor_t *c, size_t max, size_t *length)
{
    uint64_t n = s_take(c, 4);
    if (c->is_bad || n > c->left || n > max) {
        c->is_bad = true;
        return NULL;
    }
    char *s = malloc(n + 1);
    if (!s) {
        c->is_bad = true;
        return NULL;
    }
    memcpy(s, c->p, n);
    s[n] = '\0';
    c->p += n;
    c->left -= n;
    if (length)
        *length = n;
    return s;
}

static void s_map_free(sk2_mcap_map_t *map)
{
    for (size_t i = 0; i < 2 * map->pairs; i++)
        free(map->kv[i]);
    free(map->kv);
    *map = (sk2_mcap_map_t){0};
}

static bool s_take_map(s_cursor_t *c, sk2_mcap_map_t *map)
{
    *map = (sk2_mcap_map_t){0};
    uint64_t bytes = s_take(c, 4);
    if (c->is_bad || bytes > c->left)
        return c->is_bad = true, false;
    s_cursor_t inner = {c->p, (size_t)bytes, false};
    c->p += bytes;
    c->left -= bytes;
    while (inner.left > 0 && !inner.is_bad) {
        if (map->pairs == SK2_MCAP_READ_MAX_PAIRS)
            return s_map_free(map), c->is_bad = true, false;
        char **kv = realloc(map->kv, (2 * map->pairs + 2) * sizeof *kv);
        if (!kv)
            return s_map_free(map), c->is_bad = true, false;
        map->kv = kv;
        kv[2 * map->pairs] = s_take_string(&inner, SK2_MCAP_READ_MAX_STRING, NULL);
        kv[2 * map->pairs + 1] =
            inner.is_bad ? NULL : s_take_string(&inner, SK2_MCAP_READ_MAX_STRING, NULL);
        map->pairs++;
    }
    if (inner.is_bad)
        return s_map_free(map), c->is_bad = true, false;
    return true;
}

const char *sk2_mcap_map_get(const sk2_mcap_map_t *map, const char *key)
{
    for (size_t i = 0; map && key && i < map->pairs; i++)
        if (map->kv[2 * i] && strcmp(map->kv[2 * i], key) == 0)
            return map->kv[2 * i + 1];
    return NULL;
}

/* ---- Records ---- */

static int s_schema(sk2_mcap_reader_t *self, const uint8_t *body, size_t size, uint64_t at)
{
    s_cursor_t c = {body, size, false};
    sk2_mcap_schema_t s = {.id = (uint16_t)s_take(&c, 2)};
    s.name = s_take_string(&c, SK2_MCAP_READ_MAX_STRING, NULL);
    s.encoding = c.is_bad ? NULL : s_take_string(&c, SK2_MCAP_READ_MAX_STRING, NULL);
    s.data = c.is_bad ? NULL : (uint8_t *)s_take_string(&c, SK2_MCAP_READ_MAX_SCHEMA, &s.data_size);
    int rc = 0;
    if (c.is_bad || s.id == 0)
        rc = s_fail(self, SK2_ECORRUPT, "schema record at byte %llu is malformed or too long",
                    (unsigned long long)at);
    const sk2_mcap_schema_t *old = rc == 0 ? sk2_mcap_reader_schema(self, s.id) : NULL;
    if (old && (strcmp(old->name, s.name) != 0 || old->data_size != s.data_size ||
                memcmp(old->data, s.data, s.data_size) != 0))
        rc = s_fail(self, SK2_ECORRUPT, "schema %u at byte %llu differs from its first record",
                    s.id, (unsigned long long)at);
    if (rc == 0 && !old && self->schema_count == SK2_MCAP_READ_MAX_SCHEMAS)
        rc = s_fail(self, SK2_ELIMIT, "more than %d schemas", SK2_MCAP_READ_MAX_SCHEMAS);
    if (rc == 0 && !old) {
        self->schemas[self->schema_count++] = s;
        return 0;
    }
    free(s.name);
    free(s.encoding);
    free(s.data);
    return rc;
}

static int s_channel(sk2_mcap_reader_t *self, const uint8_t *body, size_t size, uint64_t at)
{
    s_cursor_t c = {body, size, false};
    sk2_mcap_channel_t ch = {.id = (uint16_t)s_take(&c, 2), .schema_id = (uint16_t)s_take(&c, 2)};
    ch.topic = s_take_string(&c, SK2_MCAP_READ_MAX_STRING, NULL);
    ch.message_encoding = c.is_bad ? NULL : s_take_string(&c, SK2_MCAP_READ_MAX_STRING, NULL);
    if (!c.is_bad)
        s_take_map(&c, &ch.metadata);
    int rc = 0;
    if (c.is_bad)
        rc = s_fail(self, SK2_ECORRUPT, "channel record at byte %llu is malformed or too long",
                    (unsigned long long)at);
    else if (ch.schema_id != 0 && !sk2_mcap_reader_schema(self, ch.schema_id))
        rc = s_fail(self, SK2_ECORRUPT,
                    "channel %u at byte %llu names schema %u, not defined before", ch.id,
                    (unsigned long long)at, ch.schema_id);
    const sk2_mcap_channel_t *old = rc == 0 ? sk2_mcap_reader_channel(self, ch.id) : NULL;
    if (old && (strcmp(old->topic, ch.topic) != 0 || old->schema_id != ch.schema_id))
        rc = s_fail(self, SK2_ECORRUPT, "channel %u at byte %llu differs from its first record",
                    ch.id, (unsigned long long)at);
    if (rc == 0 && !old && self->channel_count == SK2_MCAP_READ_MAX_CHANNELS)
        rc = s_fail(self, SK2_ELIMIT, "more than %d channels", SK2_MCAP_READ_MAX_CHANNELS);
    if (rc == 0 && !old) {
        self->channels[self->channel_count++] = ch;
        return 0;
    }
    free(ch.topic);
    free(ch.message_encoding);
    s_map_free(&ch.metadata);
    return rc;
}

static int s_metadata(sk2_mcap_reader_t *self, const uint8_t *body, size_t size, uint64_t at)
{
    s_cursor_t c = {body, size, false};
    sk2_mcap_metadata_t m = {.name = s_take_string(&c, SK2_MCAP_READ_MAX_STRING, NULL)};
    if (!c.is_bad)
        s_take_map(&c, &m.map);
    if (c.is_bad) {
        free(m.name);
        return s_fail(self, SK2_ECORRUPT, "metadata record at byte %llu is malformed or too long",
                      (unsigned long long)at);
    }
    if (self->metadata_count == SK2_MCAP_READ_MAX_METADATA) {
        /* Kept for sk2's own device descriptions; more than that is only ignored. */
        free(m.name);
        s_map_free(&m.map);
        return 0;
    }
    self->metadata[self->metadata_count++] = m;
    return 0;
}

/* A Message record's body at `offset` (in chunk `chunk`'s records or in the file). */
static int s_message(sk2_mcap_reader_t *self, const uint8_t *body, size_t size, uint32_t chunk,
                     uint64_t offset, uint64_t at)
{
    if (size < S_MESSAGE)
        return s_fail(self, SK2_ECORRUPT, "message record at byte %llu is too short",
                      (unsigned long long)at);
    if (size - S_MESSAGE > SK2_MCAP_READ_MAX_MESSAGE)
        return s_fail(self, SK2_ELIMIT, "message at byte %llu has %zu bytes, over the limit of %zu",
                      (unsigned long long)at, size - S_MESSAGE, SK2_MCAP_READ_MAX_MESSAGE);
    uint16_t channel = s_get16(body);
    if (!sk2_mcap_reader_channel(self, channel))
        return s_fail(self, SK2_ECORRUPT,
                      "message at byte %llu is on channel %u, not defined before",
                      (unsigned long long)at, channel);
    if (self->message_count == SK2_MCAP_READ_MAX_MESSAGES)
        return s_fail(self, SK2_ELIMIT, "more than %zu messages", SK2_MCAP_READ_MAX_MESSAGES);
    if (self->message_count == self->message_cap) {
        size_t cap = self->message_cap ? 2 * self->message_cap : 1024;
        sk2_mcap_message_t *grown = realloc(self->messages, cap * sizeof *grown);
        if (!grown)
            return s_fail(self, SK2_ENOMEM, "out of memory for the message list");
        self->messages = grown;
        self->message_cap = cap;
    }
    self->messages[self->message_count++] = (sk2_mcap_message_t){
        .channel = channel,
        .sequence = s_get32(body + 2),
        .log_time_ns = s_get64(body + 6),
        .publish_time_ns = s_get64(body + 14),
        .offset = offset + S_MESSAGE,
        .chunk = chunk,
        .size = (uint32_t)(size - S_MESSAGE),
    };
    return 0;
}

/* Decompresses chunk index into self->raw and checks its CRC. `packed` holds its compressed
 * records. */
static int s_unpack(sk2_mcap_reader_t *self, uint32_t index, const uint8_t *packed, uint64_t at)
{
    const s_chunk_t *chunk = &self->chunks[index];
    self->raw_chunk = S_NO_CHUNK;
    int rc = s_grow(self, &self->raw, &self->raw_cap, chunk->raw_size + 1);
    if (rc != 0)
        return rc;
    size_t n = 0;
    if (chunk->compression == S_NONE) {
        if (chunk->packed_size != chunk->raw_size)
            return s_fail(self, SK2_ECORRUPT,
                          "uncompressed chunk at byte %llu holds %llu bytes, says %llu",
                          (unsigned long long)at, (unsigned long long)chunk->packed_size,
                          (unsigned long long)chunk->raw_size);
        memcpy(self->raw, packed, chunk->raw_size);
        n = chunk->raw_size;
    } else if (chunk->compression == S_ZSTD) {
        if (!self->zstd && !(self->zstd = ZSTD_createDCtx()))
            return s_fail(self, SK2_ENOMEM, "out of memory for zstd");
        n = ZSTD_decompressDCtx(self->zstd, self->raw, chunk->raw_size, packed, chunk->packed_size);
        if (ZSTD_isError(n))
            return s_fail(self, SK2_ECORRUPT, "zstd chunk at byte %llu does not decompress: %s",
                          (unsigned long long)at, ZSTD_getErrorName(n));
    } else {
        if (!self->lz4 && LZ4F_isError(LZ4F_createDecompressionContext(&self->lz4, LZ4F_VERSION)))
            return s_fail(self, SK2_ENOMEM, "out of memory for lz4");
        LZ4F_resetDecompressionContext(self->lz4);
        size_t in_done = 0, hint = 1;
        while (in_done < chunk->packed_size && n < chunk->raw_size && hint != 0) {
            size_t out = chunk->raw_size - n, in = chunk->packed_size - in_done;
            hint = LZ4F_decompress(self->lz4, self->raw + n, &out, packed + in_done, &in, NULL);
            if (LZ4F_isError(hint))
                return s_fail(self, SK2_ECORRUPT, "lz4 chunk at byte %llu does not decompress: %s",
                              (unsigned long long)at, LZ4F_getErrorName(hint));
            n += out;
            in_done += in;
            if (in == 0 && out == 0)
                break;
        }
        if (hint != 0 || in_done != chunk->packed_size)
            return s_fail(self, SK2_ECORRUPT,
                          "lz4 chunk at byte %llu is cut off or holds more than it says",
                          (unsigned long long)at);
    }
    if (n != chunk->raw_size)
        return s_fail(self, SK2_ECORRUPT, "chunk at byte %llu decompresses to %zu bytes, not %llu",
                      (unsigned long long)at, n, (unsigned long long)chunk->raw_size);
    if (chunk->crc != 0 && (uint32_t)crc32(0, self->raw, (uInt)n) != chunk->crc)
        return s_fail(self, SK2_ECORRUPT, "chunk at byte %llu fails its CRC",
                      (unsigned long long)at);
    self->raw_chunk = index;
    return 0;
}

/* A Chunk record: its fixed fields, then its compressed records, decompressed and walked. */
static int s_chunk(sk2_mcap_reader_t *self, const uint8_t *body, size_t size, uint64_t at)
{
    s_cursor_t c = {body, size, false};
    s_take(&c, 8); /* message start time */
    s_take(&c, 8); /* message end time */
    uint64_t raw_size = s_take(&c, 8);
    uint32_t crc = (uint32_t)s_take(&c, 4);
    char *compression = s_take_string(&c, 64, NULL);
    uint64_t packed_size = s_take(&c, 8);
    if (c.is_bad || packed_size != c.left) {
        free(compression);
        return s_fail(self, SK2_ECORRUPT, "chunk at byte %llu: its sizes disagree",
                      (unsigned long long)at);
    }
    int method = strcmp(compression, "") == 0       ? S_NONE
                 : strcmp(compression, "zstd") == 0 ? S_ZSTD
                 : strcmp(compression, "lz4") == 0  ? S_LZ4
                                                    : -1;
    if (method < 0) {
        int rc = s_fail(self, SK2_EUNSUPPORTED,
                        "chunk at byte %llu is compressed with '%.64s'; this reader knows zstd, "
                        "lz4 and none",
                        (unsigned long long)at, compression);
        free(compression);
        return rc;
    }
    free(compression);
    if (packed_size > SK2_MCAP_READ_MAX_CHUNK || raw_size > SK2_MCAP_READ_MAX_CHUNK_RAW)
        return s_fail(self, SK2_ELIMIT,
                      "chunk at byte %llu has %llu bytes (%llu decompressed), over the limit of "
                      "%llu",
                      (unsigned long long)at, (unsigned long long)packed_size,
                      (unsigned long long)raw_size, (unsigned long long)SK2_MCAP_READ_MAX_CHUNK);
    if (self->chunk_count == UINT32_MAX - 1)
        return s_fail(self, SK2_ELIMIT, "too many chunks");
    if (self->chunk_count == self->chunk_cap) {
        size_t cap = self->chunk_cap ? 2 * self->chunk_cap : 64;
        s_chunk_t *grown = realloc(self->chunks, cap * sizeof *grown);
        if (!grown)
            return s_fail(self, SK2_ENOMEM, "out of memory for the chunk list");
        self->chunks = grown;
        self->chunk_cap = cap;
    }
    uint32_t index = (uint32_t)self->chunk_count;
    self->chunks[index] = (s_chunk_t){
        .records_at = at + S_HEAD + (uint64_t)(c.p - body),
        .packed_size = packed_size,
        .raw_size = raw_size,
        .crc = crc,
        .compression = (uint8_t)method,
    };
    self->chunk_count++;
    int rc = s_unpack(self, index, c.p, at);
    if (rc != 0)
        return rc;
    /* The records inside: Schemas, Channels and Messages; anything else is skipped. */
    uint64_t offset = 0;
    while (offset < raw_size && rc == 0) {
        if (raw_size - offset < S_HEAD)
            return s_fail(self, SK2_ECORRUPT, "chunk at byte %llu ends inside a record head",
                          (unsigned long long)at);
        const uint8_t *r = self->raw + offset;
        uint64_t length = s_get64(r + 1);
        if (length > raw_size - offset - S_HEAD)
            return s_fail(self, SK2_ECORRUPT,
                          "chunk at byte %llu is truncated: a record of %llu bytes at %llu runs "
                          "past its end",
                          (unsigned long long)at, (unsigned long long)length,
                          (unsigned long long)offset);
        if (r[0] == S_OP_SCHEMA)
            rc = s_schema(self, r + S_HEAD, length, at);
        else if (r[0] == S_OP_CHANNEL)
            rc = s_channel(self, r + S_HEAD, length, at);
        else if (r[0] == S_OP_MESSAGE)
            rc = s_message(self, r + S_HEAD, length, index, offset + S_HEAD, at);
        offset += S_HEAD + length;
    }
    return rc;
}

/* Reads a record's body whole into self->record (bounded by max) and adds it to crc. */
static int s_read_body(sk2_mcap_reader_t *self, uint64_t body_at, uint64_t length, uint64_t max,
                       uint8_t opcode, uint32_t *crc)
{
    if (length > max)
        return s_fail(self, SK2_ELIMIT,
                      "record 0x%02x at byte %llu claims %llu bytes, over the limit of %llu",
                      opcode, (unsigned long long)(body_at - S_HEAD), (unsigned long long)length,
                      (unsigned long long)max);
    int rc = s_grow(self, &self->record, &self->record_cap, (size_t)length + 1);
    if (rc == 0)
        rc = s_pread(self, self->record, (size_t)length, body_at);
    if (rc == 0)
        *crc = (uint32_t)crc32(*crc, self->record, (uInt)length);
    return rc;
}

/* Reads a record only for the CRC, in blocks. */
static int s_skip(sk2_mcap_reader_t *self, uint64_t body_at, uint64_t length, uint32_t *crc)
{
    int rc = s_grow(self, &self->record, &self->record_cap, S_SKIP_BLOCK);
    for (uint64_t done = 0; done < length && rc == 0;) {
        size_t n = length - done < S_SKIP_BLOCK ? (size_t)(length - done) : S_SKIP_BLOCK;
        rc = s_pread(self, self->record, n, body_at + done);
        if (rc == 0)
            *crc = (uint32_t)crc32(*crc, self->record, (uInt)n);
        done += n;
    }
    return rc;
}

static int s_walk(sk2_mcap_reader_t *self)
{
    uint8_t magic[8];
    if (self->file_size < sizeof magic + S_HEAD || s_pread(self, magic, 8, 0) != 0 ||
        memcmp(magic, s_magic, 5) != 0)
        return s_fail(self, SK2_ECORRUPT, "not an MCAP file (no MCAP magic)");
    if (memcmp(magic, s_magic, 8) != 0)
        return s_fail(self, SK2_EUNSUPPORTED, "MCAP major version '%c'; this reader knows '0'",
                      magic[5]);
    uint32_t data_crc = (uint32_t)crc32(0, magic, 8), summary_crc = 0;
    bool is_summary = false;
    uint64_t offset = 8;
    for (bool is_first = true;; is_first = false) {
        uint64_t left = self->file_size - offset;
        if (left < S_HEAD) {
            self->ignored = left;
            return s_fail(self, 0, "the file stops after byte %llu without a Footer%s",
                          (unsigned long long)offset, left ? " (a record head is cut off)" : "");
        }
        uint8_t head[S_HEAD];
        int rc = s_pread(self, head, S_HEAD, offset);
        if (rc != 0)
            return rc;
        uint8_t opcode = head[0];
        uint64_t length = s_get64(head + 1);
        if (is_first && opcode != S_OP_HEADER)
            return s_fail(self, SK2_ECORRUPT, "the first record is 0x%02x, not a Header", opcode);
        if (length > left - S_HEAD) {
            self->ignored = left;
            return s_fail(self, 0,
                          "the file is cut off: record 0x%02x at byte %llu claims %llu bytes, "
                          "%llu are there; read up to it",
                          opcode, (unsigned long long)offset, (unsigned long long)length,
                          (unsigned long long)(left - S_HEAD));
        }
        uint32_t *crc = is_summary ? &summary_crc : &data_crc;
        uint32_t before = *crc;
        *crc = (uint32_t)crc32(*crc, head, S_HEAD);
        uint64_t body_at = offset + S_HEAD;
        if (opcode == S_OP_FOOTER) {
            if (length != 20 || (rc = s_read_body(self, body_at, 20, 20, opcode, crc)) != 0)
                return rc ? rc
                          : s_fail(self, SK2_ECORRUPT, "footer of %llu bytes",
                                   (unsigned long long)length);
            uint64_t summary_start = s_get64(self->record);
            uint32_t want = s_get32(self->record + 16);
            uint32_t got =
                (uint32_t)crc32(crc32(is_summary ? before : 0, head, S_HEAD), self->record, 16);
            if (is_summary && want != 0 && summary_start != 0 && got != want)
                return s_fail(self, SK2_ECORRUPT, "the summary fails its CRC (footer at byte %llu)",
                              (unsigned long long)offset);
            uint8_t end[8];
            if (self->file_size - body_at - 20 < 8 || s_pread(self, end, 8, body_at + 20) != 0 ||
                memcmp(end, s_magic, 8) != 0) {
                self->ignored = self->file_size - body_at - 20;
                return s_fail(self, 0, "no closing magic after the Footer");
            }
            self->is_complete = true;
            return 0;
        }
        if (is_summary) {
            rc = s_skip(self, body_at, length, crc);
        } else if (opcode == S_OP_HEADER) {
            rc = s_read_body(self, body_at, length, 2 * SK2_MCAP_READ_MAX_STRING + 8, opcode, crc);
            if (rc == 0 && !is_first)
                rc = s_fail(self, SK2_ECORRUPT, "a second Header at byte %llu",
                            (unsigned long long)offset);
            s_cursor_t c = {self->record, (size_t)length, false};
            if (rc == 0 && !(self->profile = s_take_string(&c, SK2_MCAP_READ_MAX_STRING, NULL)))
                rc = s_fail(self, SK2_ECORRUPT, "the Header is malformed");
        } else if (opcode == S_OP_SCHEMA || opcode == S_OP_CHANNEL || opcode == S_OP_METADATA ||
                   opcode == S_OP_MESSAGE || opcode == S_OP_CHUNK) {
            uint64_t max = opcode == S_OP_CHUNK     ? SK2_MCAP_READ_MAX_CHUNK + 4096
                           : opcode == S_OP_MESSAGE ? SK2_MCAP_READ_MAX_MESSAGE + S_MESSAGE
                                                    : SK2_MCAP_READ_MAX_SCHEMA + 65536;
            rc = s_read_body(self, body_at, length, max, opcode, crc);
            if (rc == 0 && opcode == S_OP_SCHEMA)
                rc = s_schema(self, self->record, (size_t)length, offset);
            else if (rc == 0 && opcode == S_OP_CHANNEL)
                rc = s_channel(self, self->record, (size_t)length, offset);
            else if (rc == 0 && opcode == S_OP_METADATA)
                rc = s_metadata(self, self->record, (size_t)length, offset);
            else if (rc == 0 && opcode == S_OP_MESSAGE)
                rc = s_message(self, self->record, (size_t)length, S_NO_CHUNK, body_at, offset);
            else if (rc == 0)
                rc = s_chunk(self, self->record, (size_t)length, offset);
        } else if (opcode == S_OP_DATA_END) {
            uint32_t data_end_crc = *crc; /* the CRC covers everything before this record */
            rc = s_read_body(self, body_at, length, 4096, opcode, crc);
            uint32_t want = rc == 0 && length >= 4 ? s_get32(self->record) : 0;
            if (rc == 0 && want != 0 && want != before)
                rc = s_fail(self, SK2_ECORRUPT,
                            "the data section fails its CRC (Data End at byte %llu)",
                            (unsigned long long)offset);
            (void)data_end_crc;
            is_summary = true;
        } else {
            rc = s_skip(self, body_at, length, crc); /* indexes, attachments, statistics, ... */
        }
        if (rc != 0)
            return rc;
        offset = body_at + length;
    }
}

/* ---- The object ---- */

sk2_mcap_reader_t *sk2_mcap_reader_new(void)
{
    sk2_mcap_reader_t *self = calloc(1, sizeof *self);
    if (self) {
        self->fd = -1;
        self->raw_chunk = S_NO_CHUNK;
    }
    return self;
}

static void s_close(sk2_mcap_reader_t *self)
{
    if (self->fd >= 0)
        close(self->fd);
    self->fd = -1;
    for (size_t i = 0; i < self->schema_count; i++) {
        free(self->schemas[i].name);
        free(self->schemas[i].encoding);
        free(self->schemas[i].data);
    }
    for (size_t i = 0; i < self->channel_count; i++) {
        free(self->channels[i].topic);
        free(self->channels[i].message_encoding);
        s_map_free(&self->channels[i].metadata);
    }
    for (size_t i = 0; i < self->metadata_count; i++) {
        free(self->metadata[i].name);
        s_map_free(&self->metadata[i].map);
    }
    self->schema_count = self->channel_count = self->metadata_count = 0;
    free(self->messages);
    free(self->chunks);
    self->messages = NULL;
    self->chunks = NULL;
    self->message_count = self->message_cap = self->chunk_count = self->chunk_cap = 0;
    free(self->profile);
    self->profile = NULL;
    self->raw_chunk = S_NO_CHUNK;
    self->is_open = self->is_complete = false;
    self->ignored = 0;
}

void sk2_mcap_reader_destroy(sk2_mcap_reader_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_mcap_reader_t *self = *self_p;
    s_close(self);
    free(self->record);
    free(self->packed);
    free(self->raw);
    ZSTD_freeDCtx(self->zstd);
    if (self->lz4)
        LZ4F_freeDecompressionContext(self->lz4);
    free(self);
    *self_p = NULL;
}

int sk2_mcap_reader_open_fd(sk2_mcap_reader_t *self, int fd)
{
    if (!self) {
        close(fd);
        return SK2_EINVAL;
    }
    if (self->is_open) {
        close(fd);
        return s_fail(self, SK2_ESTATE, "open already");
    }
    self->fd = fd;
    self->why[0] = '\0';
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = s_fail(self, SK2_ESYS, "cannot stat: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = s_fail(self, SK2_ECORRUPT, "not a regular file");
    if (rc == 0) {
        self->file_size = (uint64_t)st.st_size;
        rc = s_walk(self);
    }
    if (rc != 0) {
        char why[sizeof self->why];
        memcpy(why, self->why, sizeof why);
        s_close(self);
        memcpy(self->why, why, sizeof why);
        return rc;
    }
    if (!self->profile && !(self->profile = strdup(""))) {
        s_close(self);
        return s_fail(self, SK2_ENOMEM, "out of memory");
    }
    self->is_open = true;
    return 0;
}

int sk2_mcap_reader_open(sk2_mcap_reader_t *self, const char *path)
{
    if (!self || !path)
        return SK2_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return s_fail(self, errno == ENOENT ? SK2_ENOTFOUND : SK2_ESYS, "cannot open %s: %s", path,
                      strerror(errno));
    return sk2_mcap_reader_open_fd(self, fd);
}

const char *sk2_mcap_reader_why(const sk2_mcap_reader_t *self)
{
    return self ? self->why : "";
}

const char *sk2_mcap_reader_profile(const sk2_mcap_reader_t *self)
{
    return self && self->profile ? self->profile : "";
}

bool sk2_mcap_reader_is_complete(const sk2_mcap_reader_t *self)
{
    return self && self->is_complete;
}

uint64_t sk2_mcap_reader_ignored_bytes(const sk2_mcap_reader_t *self)
{
    return self ? self->ignored : 0;
}

size_t sk2_mcap_reader_schema_count(const sk2_mcap_reader_t *self)
{
    return self ? self->schema_count : 0;
}

const sk2_mcap_schema_t *sk2_mcap_reader_schema_at(const sk2_mcap_reader_t *self, size_t index)
{
    return self && index < self->schema_count ? &self->schemas[index] : NULL;
}

const sk2_mcap_schema_t *sk2_mcap_reader_schema(const sk2_mcap_reader_t *self, uint16_t id)
{
    for (size_t i = 0; self && i < self->schema_count; i++)
        if (self->schemas[i].id == id)
            return &self->schemas[i];
    return NULL;
}

size_t sk2_mcap_reader_channel_count(const sk2_mcap_reader_t *self)
{
    return self ? self->channel_count : 0;
}

const sk2_mcap_channel_t *sk2_mcap_reader_channel_at(const sk2_mcap_reader_t *self, size_t index)
{
    return self && index < self->channel_count ? &self->channels[index] : NULL;
}

const sk2_mcap_channel_t *sk2_mcap_reader_channel(const sk2_mcap_reader_t *self, uint16_t id)
{
    /* Channels come in id order from most writers: try the obvious place first. */
    if (self && id < self->channel_count && self->channels[id].id == id)
        return &self->channels[id];
    for (size_t i = 0; self && i < self->channel_count; i++)
        if (self->channels[i].id == id)
            return &self->channels[i];
    return NULL;
}

size_t sk2_mcap_reader_metadata_count(const sk2_mcap_reader_t *self)
{
    return self ? self->metadata_count : 0;
}

const sk2_mcap_metadata_t *sk2_mcap_reader_metadata_at(const sk2_mcap_reader_t *self, size_t index)
{
    return self && index < self->metadata_count ? &self->metadata[index] : NULL;
}

size_t sk2_mcap_reader_message_count(const sk2_mcap_reader_t *self)
{
    return self ? self->message_count : 0;
}

const sk2_mcap_message_t *sk2_mcap_reader_message_at(const sk2_mcap_reader_t *self, size_t index)
{
    return self && index < self->message_count ? &self->messages[index] : NULL;
}

int sk2_mcap_reader_read(sk2_mcap_reader_t *self, size_t index, const uint8_t **data, size_t *size)
{
    if (!self || !self->is_open || index >= self->message_count || !data || !size)
        return SK2_ENOTFOUND;
    const sk2_mcap_message_t *m = &self->messages[index];
    int rc = 0;
    if (m->chunk == S_NO_CHUNK) {
        rc = s_grow(self, &self->record, &self->record_cap, (size_t)m->size + 1);
        if (rc == 0)
            rc = s_pread(self, self->record, m->size, m->offset);
        *data = self->record;
    } else {
        if (m->chunk != self->raw_chunk) {
            const s_chunk_t *chunk = &self->chunks[m->chunk];
            rc = s_grow(self, &self->packed, &self->packed_cap, (size_t)chunk->packed_size + 1);
            if (rc == 0)
                rc = s_pread(self, self->packed, (size_t)chunk->packed_size, chunk->records_at);
            if (rc == 0)
                rc = s_unpack(self, m->chunk, self->packed, chunk->records_at);
        }
        *data = self->raw + m->offset;
    }
    if (rc != 0)
        return rc == SK2_ENOMEM || rc == SK2_ESYS ? rc : SK2_ECORRUPT;
    *size = m->size;
    return 0;
}
