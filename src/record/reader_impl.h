/* The reader's state, shared by the sk2 file reader (reader.c), the TUM folder reader (tum.c)
 * and the device descriptions (describe.c). Private to libsk2. */
#ifndef SK2_RECORD_READER_IMPL_H
#define SK2_RECORD_READER_IMPL_H

#include <jansson.h>
#include <stdbool.h>

#include "record/format.h"
#include "sk2/recording.h"

/* One recorded device. */
typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1];
    char serial[SK2_DEVICE_ID_MAX + 1];
    char backend[32];
    sk2_stream_info_t streams[SK2_REC_STREAMS_MAX];
    size_t stream_count;
    bool has_pose;               /* the description holds a pose */
    sk2_pose_t pose;             /* then: depth to the rig's world */
    bool has_extrinsics;         /* the description holds depth-to-colour extrinsics */
    sk2_extrinsics_t extrinsics; /* then: depth to colour */
} sk2_rec_device_t;

/* How a frame is stored. */
typedef enum {
    SK2_REC_STORED_WIRE = 0,        /* a FRAM chunk at `offset` */
    SK2_REC_STORED_PNG = 1,         /* a PNG file at `path` (TUM) */
    SK2_REC_STORED_JPEG = 2,        /* a JPEG file at `path` (TUM), decoded with the jpeg codec */
    SK2_REC_STORED_MCAP_IMAGE = 3,  /* MCAP: message number `offset`, a sensor_msgs Image */
    SK2_REC_STORED_MCAP_PACKED = 4, /* MCAP: message `offset`, a CompressedImage (`codec`) */
} sk2_rec_stored_t;

/* One frame of the index. */
typedef struct {
    uint64_t offset; /* SK2_REC_STORED_WIRE: file offset of the chunk */
    char *path;      /* PNG or JPEG: the image file, owned */
    uint64_t sequence;
    int64_t device_timestamp_us;
    int64_t capture_time_us;
    uint32_t stored_bytes;
    uint32_t width;
    uint32_t height;
    uint16_t device;
    uint8_t kind;
    uint8_t format;
    uint8_t codec; /* wire id of the codec (SK2_REC_STORED_WIRE) */
    uint8_t stored;
} sk2_rec_entry_t;

struct sk2_recording_reader {
    bool is_open;
    bool is_tum;
    bool is_mcap;
    struct sk2_mcap_reader *mcap; /* an MCAP file's reader (mcap_source.c), NULL otherwise */
    int fd;                       /* the recording file, -1 for none */
    unsigned major, minor;
    int64_t created_us;
    bool has_index;
    uint64_t file_size;
    uint64_t ignored_bytes;
    sk2_rec_device_t devices[SK2_RECORDING_MAX_DEVICES];
    size_t device_count;
    sk2_rec_entry_t *entries;
    size_t entry_count;
    size_t entry_cap;
    uint8_t *buffer; /* the last chunk read (read_encoded hands out pointers into it) */
    size_t buffer_cap;
    /* TUM: depth values in the PNGs are multiplied by this to give the recorded units (1 when
     * no conversion is needed). */
    unsigned tum_depth_divisor;
    size_t max_frame_bytes; /* the frame budget (sk2/limits.h) */
    uint8_t *gaps;          /* SK2_REC_GAP_ENTRY bytes per gap, as in the file */
    size_t gap_count;
    char why[512];
};

/* Appends an entry (copied; path ownership moves in). Returns 0, SK2_ENOMEM, SK2_ELIMIT. */
int sk2_rec_entry_push(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry);

/* Sets the reader's why text; returns rc. */
int sk2_rec_fail(sk2_recording_reader_t *self, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The device description of a DEVC chunk as a JSON object (caller decrefs), or NULL. */
json_t *sk2_rec_device_to_json(const char *id, const char *serial, const char *backend,
                               const sk2_stream_info_t *streams, size_t stream_count);
/* Adds "pose" and "depth_to_color" to a device description (each only if not NULL). Returns 0 or
 * SK2_ENOMEM. */
int sk2_rec_device_place(json_t *description, const sk2_pose_t *pose,
                         const sk2_extrinsics_t *depth_to_color);
/* Checks streams as add_device takes them. Returns 0 or SK2_EINVAL with why. */
int sk2_rec_streams_check(const sk2_stream_info_t *streams, size_t count, char *why,
                          size_t why_size);
/* Parses a device description (JSON text of `size` bytes, not NUL-terminated) with limits.
 * Returns 0 or SK2_ECORRUPT with why. */
int sk2_rec_device_parse(const uint8_t *text, size_t size, sk2_rec_device_t *device, char *why,
                         size_t why_size);
/* Reads intrinsics from a JSON object ({fx, fy, cx, cy, k1, k2, k3, p1, p2}); false if absent
 * or malformed. */
bool sk2_rec_intrinsics_parse(const json_t *object, sk2_intrinsics_t *k);
json_t *sk2_rec_intrinsics_to_json(const sk2_intrinsics_t *k);

/* Opens a TUM RGB-D folder into an empty reader (tum.c). Same returns as reader_open. */
int sk2_rec_tum_open(sk2_recording_reader_t *self, const char *dir);
/* Reads and decodes a TUM entry into a new frame. */
int sk2_rec_tum_read_frame(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry,
                           sk2_frame_t **frame_p);

/* Opens the MCAP file at self->fd (which it takes) into an empty reader (mcap_source.c). Same
 * returns as reader_open. */
int sk2_rec_mcap_open(sk2_recording_reader_t *self);
/* Reads and decodes an MCAP entry into a new frame. */
int sk2_rec_mcap_read_frame(sk2_recording_reader_t *self, const sk2_rec_entry_t *entry,
                            sk2_frame_t **frame_p);

/* Opens a recording from an open descriptor (the reader owns it from now on, also on error).
 * For tests and fuzzing, which feed memory files. Same returns as reader_open. */
int sk2_recording_reader_open_fd(sk2_recording_reader_t *self, int fd);

#endif
