/* An MCAP writer (the container of ROS 2 bags and Foxglove): magic, a Header, Schema and
 * Channel records, Messages grouped into Chunks (zstd, lz4 or uncompressed) each followed by
 * its Message Index records, Metadata, and at close a summary section (Schemas, Channels,
 * Statistics, Metadata and Chunk Indexes, Summary Offsets) and a Footer, with the CRC-32s the
 * specification defines. The file is written front to back with no seeks, so it can go to a
 * pipe or grow while recording.
 *
 * One thread at a time; plain file I/O, no ZeroMQ. */
#ifndef SK2_ROS2_MCAP_H
#define SK2_ROS2_MCAP_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    SK2_MCAP_NONE = 0,
    SK2_MCAP_ZSTD = 1,
    SK2_MCAP_LZ4 = 2, /* the LZ4 frame format, as MCAP's "lz4" means */
} sk2_mcap_compression_t;

/* Limits: schemas and channels in one file, messages in one chunk, bytes of one message. */
#define SK2_MCAP_MAX_SCHEMAS        64
#define SK2_MCAP_MAX_CHANNELS       1024
#define SK2_MCAP_MAX_CHUNK_MESSAGES 65536
#define SK2_MCAP_MAX_MESSAGE        ((size_t)1 << 30)
/* A chunk is closed once its uncompressed records reach this many bytes. */
#define SK2_MCAP_CHUNK_BYTES ((size_t)4 << 20)

typedef struct sk2_mcap_writer sk2_mcap_writer_t;

/* "none", "zstd", "lz4" and back; NULL / SK2_EINVAL for anything else. */
const char *sk2_mcap_compression_name(sk2_mcap_compression_t compression);
int sk2_mcap_compression_parse(const char *name, sk2_mcap_compression_t *compression);

/* A new writer, not open; caller owns it. NULL when out of memory. */
sk2_mcap_writer_t *sk2_mcap_writer_new(void);
/* Frees (without finishing the file: an unclosed file has no summary), sets *self_p to NULL. */
void sk2_mcap_writer_destroy(sk2_mcap_writer_t **self_p);

/* Creates (or truncates) path and writes the magic and the Header (profile, library). Returns
 * 0, SK2_EINVAL (unknown compression, NULL), SK2_ESTATE (open already), SK2_ESYS. */
int sk2_mcap_writer_open(sk2_mcap_writer_t *self, const char *path,
                         sk2_mcap_compression_t compression, const char *profile,
                         const char *library);

/* Adds a schema (name, encoding such as "ros2msg", its text) and sets *id (1..). Returns 0,
 * SK2_EINVAL, SK2_ELIMIT, SK2_ESTATE, SK2_ESYS, SK2_ENOMEM. */
int sk2_mcap_writer_add_schema(sk2_mcap_writer_t *self, const char *name, const char *encoding,
                               const char *data, uint16_t *id);
/* Adds a channel on `topic` with messages of schema_id in message_encoding ("cdr"), with
 * `pairs` key/value metadata strings (keys at even, values at odd places of kv; may be NULL
 * when pairs is 0), and sets *id. Same returns. */
int sk2_mcap_writer_add_channel(sk2_mcap_writer_t *self, uint16_t schema_id, const char *topic,
                                const char *message_encoding, const char *const *kv, size_t pairs,
                                uint16_t *id);
/* Appends a message of a channel; times in nanoseconds since the epoch. Returns 0, SK2_EINVAL
 * (unknown channel), SK2_ELIMIT (over SK2_MCAP_MAX_MESSAGE), SK2_ESTATE, SK2_ESYS, SK2_ENOMEM. */
int sk2_mcap_writer_add_message(sk2_mcap_writer_t *self, uint16_t channel_id, uint32_t sequence,
                                uint64_t log_time_ns, uint64_t publish_time_ns, const uint8_t *data,
                                size_t size);
/* Writes a Metadata record `name` with key/value pairs as add_channel's. Same returns. */
int sk2_mcap_writer_add_metadata(sk2_mcap_writer_t *self, const char *name, const char *const *kv,
                                 size_t pairs);
/* Writes the last chunk, Data End, the summary, the Footer and the closing magic, and closes.
 * Returns 0, SK2_ESTATE (not open or failed before), SK2_ESYS. */
int sk2_mcap_writer_close(sk2_mcap_writer_t *self);

/* Bytes written so far, messages and chunks, and why the last call failed ("" if it did
 * not). */
uint64_t sk2_mcap_writer_bytes(const sk2_mcap_writer_t *self);
uint64_t sk2_mcap_writer_messages(const sk2_mcap_writer_t *self);
uint32_t sk2_mcap_writer_chunks(const sk2_mcap_writer_t *self);
const char *sk2_mcap_writer_why(const sk2_mcap_writer_t *self);

#endif
