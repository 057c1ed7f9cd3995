/* The recording file format's constants and byte helpers, shared by the writer, the reader
 * and the tests. Private to libsk2; docs/recording.md describes the bytes.
 *
 * A file is a 32-byte file header followed by chunks. Every chunk is a 12-byte chunk header
 * (type, body size, CRC-32 of the type, size and body) and its body. All integers are
 * little-endian. */
#ifndef SK2_RECORD_FORMAT_H
#define SK2_RECORD_FORMAT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sk2/recording.h"

#define SK2_REC_MAGIC            "SK2REC\r\n" /* 8 bytes; \r\n catches text-mode copies */
#define SK2_REC_FILE_HEADER_SIZE 32
#define SK2_REC_CHUNK_HEADER     12

/* Chunk types, four ASCII bytes each. */
#define SK2_REC_DEVICE "DEVC" /* u16 device index, u16 0, device description as JSON */
#define SK2_REC_FRAME  "FRAM" /* u16 device index, u16 0, wire header, payload */
#define SK2_REC_INDEX  "INDX" /* where every device and frame chunk is, written at close */
#define SK2_REC_FOOTER "FOOT" /* u64 index chunk offset, u64 frame count: the file's end */
#define SK2_REC_GAP    "GAP " /* one gap in the recording (1.1): SK2_REC_GAP_ENTRY bytes */
#define SK2_REC_GAPS                                                                               \
    "GAPS" /* every gap, written at close just before the index (1.1): u32                         \
            * count, u32 0, the entries; the index head's last u32 says how                        \
            * many bytes before the index it starts (0: no such chunk) */

#define SK2_REC_PREFIX      4     /* device index + reserved, before a frame's wire header */
#define SK2_REC_INDEX_HEAD  16    /* u32 devices, u32 frames, u32 entry size, u32 0 */
#define SK2_REC_INDEX_ENTRY 48    /* bytes per frame in the index */
#define SK2_REC_FOOTER_BODY 16    /* bytes of a footer's body */
#define SK2_REC_JSON_MAX    65536 /* bytes of a device description */
#define SK2_REC_HEADER_MAX  1024  /* bytes of a frame's wire header */
#define SK2_REC_STREAMS_MAX 8     /* streams per device */
#define SK2_REC_GAP_ENTRY   32    /* i64 start µs, i64 end µs, u64 frames before it, u64 0 */
#define SK2_REC_GAPS_MAX    4096  /* gaps in one recording */
/* Largest body a chunk may have: a frame with the largest header and payload. */
#define SK2_REC_BODY_MAX ((uint64_t)SK2_REC_PREFIX + SK2_REC_HEADER_MAX + SK2_RECORDING_MAX_PAYLOAD)
/* Smallest frame chunk: chunk header, prefix and a 64-byte wire header. Bounds the frame count
 * a file of a given size can claim. */
#define SK2_REC_FRAME_CHUNK_MIN (SK2_REC_CHUNK_HEADER + SK2_REC_PREFIX + 64)

static inline void sk2_rec_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static inline void sk2_rec_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void sk2_rec_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t sk2_rec_get16(const uint8_t *p)
{
    return (uint16_t)((unsigned)p[0] | (unsigned)p[1] << 8);
}

static inline uint32_t sk2_rec_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t sk2_rec_get64(const uint8_t *p)
{
    return (uint64_t)sk2_rec_get32(p) | (uint64_t)sk2_rec_get32(p + 4) << 32;
}

/* Writes a reason into why (why_size bytes) and returns rc: the exports' way of failing. */
static inline int sk2_rec_why(char *why, size_t why_size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static inline int sk2_rec_why(char *why, size_t why_size, int rc, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(why, why_size, fmt, args);
    va_end(args);
    return rc;
}

/* CRC-32 (zlib's polynomial) of a chunk: its type and size, then its body in pieces. */
uint32_t sk2_rec_crc(uint32_t crc, const uint8_t *data, size_t size);

#endif
