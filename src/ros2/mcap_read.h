/* An MCAP reader: the data section read front to back (magic, Header, Schemas, Channels,
 * Messages alone or in Chunks compressed with zstd, lz4 or not at all, Metadata), every
 * length checked against the file and the limits below before anything is allocated from it,
 * and every CRC the file gives checked (chunks, Data End, the summary's in the Footer).
 *
 * The summary section is not needed: a file cut short (a recorder killed, a disk full) reads
 * up to its last whole record, and a note says where the rest starts. Anything damaged before
 * that point (a bad CRC, a length past a limit, a chunk whose records do not fill it, an
 * unknown compression) refuses the whole file with a reason.
 *
 * Messages are listed in file order with where their bytes are; reading one decompresses its
 * chunk (the last chunk is kept, so reading in file order decompresses each chunk once).
 *
 * One thread at a time; plain file I/O, no ZeroMQ. */
#ifndef SK2_ROS2_MCAP_READ_H
#define SK2_ROS2_MCAP_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Limits of the reader. */
#define SK2_MCAP_READ_MAX_SCHEMAS   256                   /* schemas in one file */
#define SK2_MCAP_READ_MAX_CHANNELS  1024                  /* channels in one file */
#define SK2_MCAP_READ_MAX_METADATA  256                   /* Metadata records kept */
#define SK2_MCAP_READ_MAX_PAIRS     256                   /* key/value pairs of one map */
#define SK2_MCAP_READ_MAX_STRING    4096                  /* a topic, name, key or value */
#define SK2_MCAP_READ_MAX_SCHEMA    ((size_t)1 << 20)     /* bytes of a schema's text */
#define SK2_MCAP_READ_MAX_CHUNK     ((uint64_t)256 << 20) /* a chunk's compressed records */
#define SK2_MCAP_READ_MAX_CHUNK_RAW ((uint64_t)256 << 20) /* a chunk's records decompressed */
#define SK2_MCAP_READ_MAX_MESSAGE   ((size_t)128 << 20)   /* bytes of one message's data */
#define SK2_MCAP_READ_MAX_MESSAGES  ((size_t)1 << 22)     /* messages in one file */

typedef struct sk2_mcap_reader sk2_mcap_reader_t;

/* A key/value map as the file has it: keys at even, values at odd places. */
typedef struct {
    char **kv;
    size_t pairs;
} sk2_mcap_map_t;

typedef struct {
    uint16_t id;
    char *name;     /* "sensor_msgs/msg/Image" */
    char *encoding; /* "ros2msg", ... */
    uint8_t *data;  /* the schema's text (NUL added), data_size bytes without it */
    size_t data_size;
} sk2_mcap_schema_t;

typedef struct {
    uint16_t id;
    uint16_t schema_id; /* 0: none */
    char *topic;
    char *message_encoding; /* "cdr", ... */
    sk2_mcap_map_t metadata;
} sk2_mcap_channel_t;

typedef struct {
    char *name;
    sk2_mcap_map_t map;
} sk2_mcap_metadata_t;

/* One message of the index: where its bytes are. */
typedef struct {
    uint64_t log_time_ns;
    uint64_t publish_time_ns;
    uint64_t offset; /* in its chunk's decompressed records, or in the file */
    uint32_t chunk;  /* index of its chunk, UINT32_MAX for a message outside chunks */
    uint32_t size;   /* bytes of data */
    uint32_t sequence;
    uint16_t channel; /* channel id */
} sk2_mcap_message_t;

/* A new reader, not open; caller owns it. NULL when out of memory. */
sk2_mcap_reader_t *sk2_mcap_reader_new(void);
void sk2_mcap_reader_destroy(sk2_mcap_reader_t **self_p);

/* Reads the file open at fd (the reader owns fd from now on, also on error). Returns 0 (why
 * then says "" or where a cut-off file stops), SK2_ESTATE (open already), SK2_ECORRUPT (not
 * MCAP, damaged), SK2_ELIMIT (a length or count over the limits), SK2_EUNSUPPORTED (an
 * unknown compression, another major version of the format), SK2_ESYS, SK2_ENOMEM. */
int sk2_mcap_reader_open_fd(sk2_mcap_reader_t *self, int fd);
/* The same for a path; SK2_ENOTFOUND when there is no such file. */
int sk2_mcap_reader_open(sk2_mcap_reader_t *self, const char *path);

/* Why the last call failed, or after a successful open a note on a cut-off file. */
const char *sk2_mcap_reader_why(const sk2_mcap_reader_t *self);
/* The Header's profile ("ros2", "" if none). */
const char *sk2_mcap_reader_profile(const sk2_mcap_reader_t *self);
/* Whether the file was complete (Footer and closing magic read). */
bool sk2_mcap_reader_is_complete(const sk2_mcap_reader_t *self);
/* Bytes after the last whole record of a cut-off file (0 for a complete one). */
uint64_t sk2_mcap_reader_ignored_bytes(const sk2_mcap_reader_t *self);

size_t sk2_mcap_reader_schema_count(const sk2_mcap_reader_t *self);
const sk2_mcap_schema_t *sk2_mcap_reader_schema_at(const sk2_mcap_reader_t *self, size_t index);
/* The schema of that id, NULL if none. */
const sk2_mcap_schema_t *sk2_mcap_reader_schema(const sk2_mcap_reader_t *self, uint16_t id);
size_t sk2_mcap_reader_channel_count(const sk2_mcap_reader_t *self);
const sk2_mcap_channel_t *sk2_mcap_reader_channel_at(const sk2_mcap_reader_t *self, size_t index);
const sk2_mcap_channel_t *sk2_mcap_reader_channel(const sk2_mcap_reader_t *self, uint16_t id);
size_t sk2_mcap_reader_metadata_count(const sk2_mcap_reader_t *self);
const sk2_mcap_metadata_t *sk2_mcap_reader_metadata_at(const sk2_mcap_reader_t *self, size_t index);
/* The value of key in map, NULL if absent. */
const char *sk2_mcap_map_get(const sk2_mcap_map_t *map, const char *key);

/* Messages in file order (for chunks: their order inside each chunk, chunks in file order). */
size_t sk2_mcap_reader_message_count(const sk2_mcap_reader_t *self);
const sk2_mcap_message_t *sk2_mcap_reader_message_at(const sk2_mcap_reader_t *self, size_t index);
/* The data of message index; *data stays valid until the next read or close. Returns 0,
 * SK2_ENOTFOUND, SK2_ECORRUPT (its chunk changed since open), SK2_ESYS, SK2_ENOMEM. */
int sk2_mcap_reader_read(sk2_mcap_reader_t *self, size_t index, const uint8_t **data, size_t *size);

#endif
