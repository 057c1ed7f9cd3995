/* Recordings: frames as they travelled on the wire (header + encoded payload), with every
 * device's description, in sk2's own chunked file format (docs/recording.md), and replay
 * devices that serve a recording as if it were a camera.
 *
 * A writer appends chunks, each with its length and a CRC-32, and writes an index at close: a
 * process killed while recording, or a full disk, leaves a file that reads up to its last
 * complete frame (the reader rebuilds the index by scanning). A reader also opens a folder in
 * the TUM RGB-D layout (depth.txt, rgb.txt, 16-bit depth PNGs) and an MCAP file with ROS 2
 * images (ros2 bags, sk2's own MCAP export) as a recording.
 *
 * Writers and readers are plain objects on files: one thread at a time each, no ZeroMQ. */
#ifndef SK2_RECORDING_H
#define SK2_RECORDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "device.h"
#include "export.h"
#include "frame.h"
#include "limits.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The file format version this library writes; it reads every 1.x. */
#define SK2_RECORDING_VERSION_MAJOR 1
#define SK2_RECORDING_VERSION_MINOR 1

/* Limits, checked when writing and when reading. */
#define SK2_RECORDING_MAX_DEVICES 64                    /* devices in one recording */
#define SK2_RECORDING_MAX_FRAMES  (1u << 26)            /* frames in one recording */
#define SK2_RECORDING_MAX_PAYLOAD SK2_LIMIT_PAYLOAD_MAX /* bytes of one encoded frame */
#define SK2_RECORDING_MAX_GAPS    4096                  /* gaps marked in one recording */

typedef struct sk2_recording_writer sk2_recording_writer_t;
typedef struct sk2_recording_reader sk2_recording_reader_t;

/* What the reader knows of one stored frame without reading it. Plain data. */
typedef struct {
    size_t device;               /* index of its device in the recording */
    sk2_stream_kind_t kind;      /* what it shows */
    sk2_pixel_format_t format;   /* pixel format once decoded */
    const char *codec;           /* how it is stored: a codec name, or "png" in a TUM folder;
                                    static */
    uint32_t width;              /* pixels */
    uint32_t height;             /* pixels */
    uint64_t sequence;           /* the device's counter for this stream */
    int64_t device_timestamp_us; /* the device's clock, microseconds */
    int64_t capture_time_us;     /* wall clock at capture, microseconds since the epoch */
    size_t stored_bytes;         /* bytes of the stored payload */
} sk2_recording_frame_info_t;

/* ---- Writer ---- */

/* A new writer, not yet open; caller owns it. NULL when out of memory. */
SK2_EXPORT sk2_recording_writer_t *sk2_recording_writer_new(void);
/* Closes the file if open (as sk2_recording_writer_close), frees, sets *self_p to NULL. */
SK2_EXPORT void sk2_recording_writer_destroy(sk2_recording_writer_t **self_p);

/* Creates (or truncates) the file at path and writes the file header. Returns 0, SK2_ESTATE
 * (already open), SK2_ESYS (cannot create or write; see why). */
SK2_EXPORT int sk2_recording_writer_open(sk2_recording_writer_t *self, const char *path);

/* Describes a device whose frames follow: its id, serial ("" or NULL for none), backend name
 * and streams. Sets *device_index, the number to give sk2_recording_writer_add_encoded.
 * Returns 0, SK2_EINVAL (no id, no streams or more than 8, an unknown kind or format, a size of
 * 0), SK2_ELIMIT (SK2_RECORDING_MAX_DEVICES), SK2_ESTATE (not open or failed), SK2_ESYS. */
SK2_EXPORT int sk2_recording_writer_add_device(sk2_recording_writer_t *self, const char *id,
                                               const char *serial, const char *backend,
                                               const sk2_stream_info_t *streams,
                                               size_t stream_count, size_t *device_index);

/* add_device with where the device was: its pose in the rig's world and its depth-to-colour
 * extrinsics (sk2/registration.h), each NULL if unknown; both checked (SK2_EINVAL). */
SK2_EXPORT int sk2_recording_writer_add_device_placed(sk2_recording_writer_t *self, const char *id,
                                                      const char *serial, const char *backend,
                                                      const sk2_stream_info_t *streams,
                                                      size_t stream_count, const sk2_pose_t *pose,
                                                      const sk2_extrinsics_t *depth_to_color,
                                                      size_t *device_index);

/* Appends one frame exactly as it came off the streams endpoint: the frame header
 * (docs/protocol.md) and the encoded payload, copied byte for byte. The header is checked:
 * its kind must be one of the device's streams and its payload size must be payload_size.
 * Returns 0, SK2_EINVAL (unknown device, bad header, mismatch), SK2_ELIMIT, SK2_ESTATE, or
 * SK2_ESYS when the write fails (disk full): the file is then cut back to the last complete
 * frame and the writer refuses further frames. */
SK2_EXPORT int sk2_recording_writer_add_encoded(sk2_recording_writer_t *self, size_t device_index,
                                                const uint8_t *header, size_t header_size,
                                                const uint8_t *payload, size_t payload_size);

/* Encodes a decoded frame with `codec` (default options) and appends it like add_encoded, with
 * the frame's sequence and timestamps. Same returns, plus the encoder's. */
SK2_EXPORT int sk2_recording_writer_add_frame(sk2_recording_writer_t *self, size_t device_index,
                                              const sk2_frame_t *frame, const sk2_codec_t *codec);
/* add_frame with encoder options (a JPEG quality); NULL options means the defaults. Same
 * returns. */
SK2_EXPORT int sk2_recording_writer_add_frame_opts(sk2_recording_writer_t *self,
                                                   size_t device_index, const sk2_frame_t *frame,
                                                   const sk2_codec_t *codec,
                                                   const sk2_codec_options_t *options);

/* Writes the index, flushes the file to disk and closes it. Returns 0, SK2_ESTATE (not open),
 * SK2_ESYS (the index could not be written: the frames are still readable by scanning). */
SK2_EXPORT int sk2_recording_writer_close(sk2_recording_writer_t *self);

/* Flushes every frame appended so far to the storage device (fdatasync), so that a power cut
 * or a crash of the machine keeps them; a killed process keeps them without this. Returns 0
 * (sk2_recording_writer_frames_synced then counts them all), SK2_ESTATE (not open), SK2_ESYS
 * (the device refused: see why; the frames stay in the file as far as the kernel has them).
 * Takes as long as the disk needs: call it periodically, not per frame. */
SK2_EXPORT int sk2_recording_writer_sync(sk2_recording_writer_t *self);

/* Frames appended, and bytes in the file so far. */
SK2_EXPORT uint64_t sk2_recording_writer_frames(const sk2_recording_writer_t *self);
SK2_EXPORT uint64_t sk2_recording_writer_bytes(const sk2_recording_writer_t *self);
/* Frames known to be on the storage device: those appended before the last successful
 * sk2_recording_writer_sync or close. */
SK2_EXPORT uint64_t sk2_recording_writer_frames_synced(const sk2_recording_writer_t *self);
/* Why the last call failed, in words ("" if it did not). Valid until the next call. */
SK2_EXPORT const char *sk2_recording_writer_why(const sk2_recording_writer_t *self);
/* Marks a gap: from start_us to end_us (wall clock, µs since 1970) nothing could be recorded
 * (the server was lost), just before the frames added after this call. Written at once, so it
 * survives a crash, and listed again at close for readers that use the index. At most
 * SK2_RECORDING_MAX_GAPS. Returns 0, SK2_EINVAL (end before start, a time <= 0), SK2_ELIMIT,
 * SK2_ESTATE (not open or failed), or a write error. Format 1.1; 1.0 readers skip it. */
SK2_EXPORT int sk2_recording_writer_add_gap(sk2_recording_writer_t *self, int64_t start_us,
                                            int64_t end_us);

/* ---- Reader ---- */

/* A new reader, not yet open; caller owns it. NULL when out of memory. */
SK2_EXPORT sk2_recording_reader_t *sk2_recording_reader_new(void);
SK2_EXPORT void sk2_recording_reader_destroy(sk2_recording_reader_t **self_p);

/* Opens an sk2 recording, a folder in the TUM RGB-D layout, or an MCAP file (by its magic; its
 * ROS 2 images become devices' frames, docs/formats.md). Reads the index, or rebuilds it
 * by scanning when the recording was not closed (then has_index is false and why says where
 * the readable part ends). Returns 0, SK2_ESTATE (already open), SK2_ENOTFOUND (no such file),
 * SK2_ESYS, SK2_ECORRUPT (not a recording, or damaged before its first frame),
 * SK2_EUNSUPPORTED (another major version), SK2_ELIMIT; why says what was wrong. */
SK2_EXPORT int sk2_recording_reader_open(sk2_recording_reader_t *self, const char *path);

/* Why the last call failed, or after a successful open a note on damage ("" if none). */
SK2_EXPORT const char *sk2_recording_reader_why(const sk2_recording_reader_t *self);
/* "sk2" for a recording file, "tum" for a TUM folder, "mcap" for an MCAP file of ROS 2 images
 * (docs/formats.md, "Reading MCAP"). */
SK2_EXPORT const char *sk2_recording_reader_format(const sk2_recording_reader_t *self);
/* The file's format version (0.0 for a TUM folder). */
SK2_EXPORT void sk2_recording_reader_version(const sk2_recording_reader_t *self, unsigned *major,
                                             unsigned *minor);
/* Whether the file had a valid index (it was closed properly). */
SK2_EXPORT bool sk2_recording_reader_has_index(const sk2_recording_reader_t *self);
/* Bytes at the end of the file past the last complete chunk (a cut-off frame), ignored. */
SK2_EXPORT uint64_t sk2_recording_reader_ignored_bytes(const sk2_recording_reader_t *self);
/* Wall-clock time the recording was started, microseconds since the epoch (0 if unknown). */
SK2_EXPORT int64_t sk2_recording_reader_created_us(const sk2_recording_reader_t *self);

/* The recorded devices: count, then id, serial ("" if none) and original backend for index
 * 0 .. count-1 (NULL past the end). Borrowed while the reader is open. */
SK2_EXPORT size_t sk2_recording_reader_device_count(const sk2_recording_reader_t *self);
SK2_EXPORT const char *sk2_recording_reader_device_id(const sk2_recording_reader_t *self,
                                                      size_t device);
SK2_EXPORT const char *sk2_recording_reader_device_serial(const sk2_recording_reader_t *self,
                                                          size_t device);
SK2_EXPORT const char *sk2_recording_reader_device_backend(const sk2_recording_reader_t *self,
                                                           size_t device);
/* A device's pose and depth-to-colour extrinsics as recorded. Return 0, or SK2_ENOTFOUND (no
 * such device, or the file holds none: files written before sk2 recorded them). */
SK2_EXPORT int sk2_recording_reader_device_pose(const sk2_recording_reader_t *self, size_t device,
                                                sk2_pose_t *pose);
SK2_EXPORT int sk2_recording_reader_device_depth_to_color(const sk2_recording_reader_t *self,
                                                          size_t device,
                                                          sk2_extrinsics_t *extrinsics);
/* A device's streams as recorded. stream_info returns 0 or SK2_ENOTFOUND. */
SK2_EXPORT size_t sk2_recording_reader_stream_count(const sk2_recording_reader_t *self,
                                                    size_t device);
SK2_EXPORT int sk2_recording_reader_stream_info(const sk2_recording_reader_t *self, size_t device,
                                                size_t index, sk2_stream_info_t *info);

/* Frames stored, in file order (the order they arrived). */
SK2_EXPORT size_t sk2_recording_reader_frame_count(const sk2_recording_reader_t *self);
/* The gaps marked in the recording (sk2_recording_writer_add_gap), in the order written; 0 for
 * a TUM folder or a 1.0 file. */
SK2_EXPORT size_t sk2_recording_reader_gap_count(const sk2_recording_reader_t *self);
/* Gap `index`: its start and end (wall clock, µs since 1970) and how many frames of the file
 * come before it. Any pointer may be NULL. Returns 0 or SK2_ENOTFOUND. */
SK2_EXPORT int sk2_recording_reader_gap(const sk2_recording_reader_t *self, size_t index,
                                        int64_t *start_us, int64_t *end_us,
                                        uint64_t *frames_before);
/* What frame `index` is, from the index alone. Returns 0 or SK2_ENOTFOUND. */
SK2_EXPORT int sk2_recording_reader_frame_info(const sk2_recording_reader_t *self, size_t index,
                                               sk2_recording_frame_info_t *info);
/* The first frame, in file order, captured at or after time_us (binary search over the index;
 * frames arrive in capture order); frame_count if none. */
SK2_EXPORT size_t sk2_recording_reader_find_time(const sk2_recording_reader_t *self,
                                                 int64_t time_us);

/* The frame budget (include/sk2/limits.h): SK2_LIMIT_FRAME_BYTES_MIN..SK2_LIMIT_FRAME_BYTES_MAX,
 * default SK2_LIMIT_FRAME_BYTES. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_recording_reader_set_max_frame_bytes(sk2_recording_reader_t *self,
                                                        size_t max_frame_bytes);
/* Checks frame `index` against its stream's description in the recording (kind, format, width,
 * height; a payload no longer than its codec makes of such a frame) and the frame budget,
 * without reading or allocating anything. A file with valid checksums may still hold such a
 * frame. read_encoded and read_frame check this first. Returns 0, SK2_ENOTFOUND, SK2_ECORRUPT
 * (not as described) or SK2_ELIMIT (over the budget), with the reason in why. */
SK2_EXPORT int sk2_recording_reader_check_frame(sk2_recording_reader_t *self, size_t index);

/* Reads frame `index` as stored: the wire header and the encoded payload, borrowed until the
 * next read or close. Returns 0, SK2_ENOTFOUND, SK2_ECORRUPT (CRC or header wrong), SK2_ESYS,
 * SK2_EUNSUPPORTED (a TUM folder stores images, not wire frames). */
SK2_EXPORT int sk2_recording_reader_read_encoded(sk2_recording_reader_t *self, size_t index,
                                                 const uint8_t **header, size_t *header_size,
                                                 const uint8_t **payload, size_t *payload_size);

/* Reads and decodes frame `index` into a new frame (caller owns it) with its sequence and
 * timestamps. Returns 0 or the errors of read_encoded and sk2_codec_decode. */
SK2_EXPORT int sk2_recording_reader_read_frame(sk2_recording_reader_t *self, size_t index,
                                               sk2_frame_t **frame_p);

/* ---- TUM RGB-D export ---- */

/* Writes the readable frames of an open reader into dir (created if missing) in the TUM RGB-D
 * layout: depth/<t>.png (16-bit, TUM's 5000 per metre when the depth unit allows it exactly,
 * else the recorded units) with depth.txt, rgb/<t>.png with rgb.txt, ir/<t>.png with ir.txt,
 * and sk2.json with what TUM has no place for (ids, serial, intrinsics, units), so that
 * opening the folder again gives back the same pixels and times. Only device `device`'s
 * frames are written. Returns 0, SK2_ESYS (cannot write; why), SK2_EEXIST (dir holds a
 * depth.txt already), or a read error. */
SK2_EXPORT int sk2_recording_export_tum(sk2_recording_reader_t *reader, size_t device,
                                        const char *dir, char *why, size_t why_size);

/* Called by an export after each frame written: done of total frames. Return true to go on,
 * false to stop there. */
typedef bool (*sk2_recording_progress_fn)(void *arg, size_t done, size_t total);

/* sk2_recording_export_tum, calling progress (if not NULL) after every frame. Also returns
 * SK2_EINTR when progress asked to stop: dir then holds part of the export, which the caller
 * removes (the CLI exports into a temporary folder and renames it on success). */
SK2_EXPORT int sk2_recording_export_tum_with_progress(sk2_recording_reader_t *reader, size_t device,
                                                      const char *dir,
                                                      sk2_recording_progress_fn progress, void *arg,
                                                      char *why, size_t why_size);

/* ---- Replay devices ----
 * sk2_device_new("replay") makes a device that plays one device of a recording (or TUM
 * folder): its streams, intrinsics, serial and, from open, its id are the recorded ones, and
 * its backend is "replay". Frames keep their recorded sequence numbers (counting on across
 * loops) and get new capture times; the device clock runs from start at the recorded spacing
 * divided by the rate. Set the source before open. */

/* Which file (or TUM folder) and which recorded device (0 .. count-1) to play. Returns 0,
 * SK2_EINVAL (not a replay device, empty path), SK2_ESTATE (already open). Open answers
 * SK2_EDEVICE if the file cannot be read (the log says why). */
SK2_EXPORT int sk2_device_set_replay_source(sk2_device_t *device, const char *path,
                                            size_t recorded_device);
/* Playing speed: 1 = the recorded spacing (default), 2 = twice as fast, 0 = as fast as
 * possible. Returns 0, SK2_EINVAL (not a replay device; negative, NaN or above 1000),
 * SK2_ESTATE (running). */
SK2_EXPORT int sk2_device_set_replay_rate(sk2_device_t *device, double rate);
/* Whether to start again after the last frame (default: stop producing). Before start. */
/* The frame budget of the replay's reader (sk2_recording_reader_set_max_frame_bytes): frames
 * over it, or unlike their stream's description, are skipped with a warning. Before open.
 * Returns 0, SK2_EINVAL or SK2_ESTATE. */
SK2_EXPORT int sk2_device_set_replay_max_frame_bytes(sk2_device_t *device, size_t max_frame_bytes);
SK2_EXPORT int sk2_device_set_replay_loop(sk2_device_t *device, bool is_looping);
/* Whether a replay has played its last frame and does not loop. */
SK2_EXPORT bool sk2_device_replay_is_finished(const sk2_device_t *device);
/* Whether the replay holds at its first frame until someone listens (a server saw a first
 * subscription to any of its streams) rather than playing to nobody. Default false; `sk2 serve
 * --replay` sets it unless --no-wait. Before start. Returns 0, SK2_EINVAL, SK2_ESTATE. */
SK2_EXPORT int sk2_device_set_replay_wait(sk2_device_t *device, bool is_waiting);

/* What sk2_device_replay_control does. */
typedef enum {
    SK2_REPLAY_STATUS = 0, /* nothing: only report */
    SK2_REPLAY_PAUSE = 1,  /* hold the current frame; the clock stops */
    SK2_REPLAY_RESUME = 2, /* go on from where it was held, at the recorded spacing */
    SK2_REPLAY_SEEK = 3,   /* go to the first frame at or after position_s of the recording
                              (the last frame if none), also after the end; paused stays
                              paused */
} sk2_replay_action_t;

/* Where a replay is. Plain data. */
typedef struct {
    bool is_waiting;   /* holding the first frame until someone listens */
    bool is_listened;  /* some client subscribes to one of its streams now */
    bool is_paused;    /* held by SK2_REPLAY_PAUSE */
    bool is_ended;     /* played the last frame (not looping) */
    uint64_t played;   /* frames played since open (seeks and loops included) */
    uint64_t loops;    /* times it started again after the end (--loop) */
    size_t position;   /* the next frame to play, 0 .. frames-1 */
    size_t frames;     /* frames of the recorded device */
    double position_s; /* recorded time of the next frame, from the first, seconds */
    double duration_s; /* recorded time one pass takes, seconds */
} sk2_replay_status_t;

/* Controls a running (or open) replay from any thread and reports where it is in *status (may
 * be NULL). The playing thread takes a request within some 50 ms; *status is the state when
 * asked (a pause shows at once, a seek in a later status). Returns 0, SK2_EINVAL (NULL device,
 * unknown action, a position that is negative or NaN), SK2_EUNSUPPORTED (not a replay device),
 * SK2_ESTATE (not open). */
SK2_EXPORT int sk2_device_replay_control(sk2_device_t *device, sk2_replay_action_t action,
                                         double position_s, sk2_replay_status_t *status);
/* "pause", "resume", "seek", "status" for an action and back; NULL / -1 (SK2_EINVAL) else. */
SK2_EXPORT const char *sk2_replay_action_name(sk2_replay_action_t action);
SK2_EXPORT int sk2_replay_action_parse(const char *name, sk2_replay_action_t *action);

#ifdef __cplusplus
}
#endif
#endif
