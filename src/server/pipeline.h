/* A device pipeline: capture -> bounded queue -> encode -> publish, for one device.
 *
 * The device's capture thread hands each frame someone subscribes to to the pipeline's queue
 * (an inproc socket, bounded per stream) and never waits: when its stream's share of the queue
 * is full the frame is dropped and counted. The pipeline's own actor thread encodes frames in
 * order, with each codec someone has subscribed to, and publishes them on the device's `depth`
 * (version 1) and `streams` endpoints. Private to libsk2. */
#ifndef SK2_SERVER_PIPELINE_H
#define SK2_SERVER_PIPELINE_H

#include <stdatomic.h>
#include <stdint.h>

#include <jansson.h>

#include "server/address.h"
#include "sk2/device.h"
#include "sk2/server.h"

typedef struct sk2_pipeline sk2_pipeline_t;

/* The server's cap on encodings (stream, codec pairs) that the `streams` endpoints of all its
 * devices encode at once, shared by its pipelines: atomics, any thread. A pair takes a place
 * when its first subscriber comes and gives it back when its last one goes; a pair that finds
 * no place is not encoded (its subscriptions are counted as refused) until one frees. The
 * version-1 `depth` endpoint takes no place: version-1 clients could not be told why. */
typedef struct {
    _Atomic unsigned max_streams; /* 0: no cap */
    _Atomic unsigned active;      /* places taken now */
    _Atomic uint64_t refused;     /* subscriptions refused since the server started */
} sk2_stream_cap_t;

/* Binds a PUB socket for the device on the address (OS-chosen port), starts the pipeline
 * thread and then the device. Its encodings share `cap` (may be NULL: no cap), which must
 * outlive the pipeline. Takes ownership of *device_p (NULL afterwards, even on error);
 * the device must be open. Returns 0, SK2_EBIND, SK2_EDEVICE or SK2_ENOMEM. Starting a camera
 * can take long: the server calls this from its life-cycle worker, never its control actor. */
int sk2_pipeline_new(sk2_device_t **device_p, const sk2_address_t *address, unsigned queue_frames,
                     int jpeg_quality, sk2_stream_cap_t *cap, sk2_pipeline_t **pipeline_p);

/* The frame budget (sk2/limits.h): a frame of the device larger than this is not encoded or
 * published but counted as dropped, and logged once. Any thread. */
void sk2_pipeline_set_max_frame_bytes(sk2_pipeline_t *self, size_t max_frame_bytes);

/* Added to the capture and send times of every frame header published from now on, µs: the
 * server's reported clock (sk2_server_set_clock_offset_ms). Any thread. */
void sk2_pipeline_set_clock_offset_us(sk2_pipeline_t *self, int64_t offset_us);

/* Stops the device, drains the queue, closes the sockets and joins the thread (the life-cycle
 * worker's job, like sk2_pipeline_new); then, if
 * final_stats is not NULL, adds the pipeline's final counters to it (every frame produced is
 * by then either published or dropped). */
void sk2_pipeline_destroy(sk2_pipeline_t **pipeline_p, sk2_server_stats_t *final_stats);

/* Whether the device reported itself lost (unplugged); the server then removes the pipeline
 * and tries a replacement now and then. Any thread. */
bool sk2_pipeline_is_lost(const sk2_pipeline_t *self);

/* A new, closed device to bring this pipeline's lost device back (same backend, id, serial,
 * rate); NULL if out of memory. */
sk2_device_t *sk2_pipeline_new_replacement(const sk2_pipeline_t *self);

/* The device id and the advertised `depth` endpoint; valid while the pipeline lives. */
const char *sk2_pipeline_device_id(const sk2_pipeline_t *self);
/* The device the pipeline owns, borrowed: for calls the device makes safe from any thread
 * (sk2_device_replay_control). */
sk2_device_t *sk2_pipeline_device(const sk2_pipeline_t *self);
const char *sk2_pipeline_depth_endpoint(const sk2_pipeline_t *self);

/* Adds this pipeline's counters to *stats (all fields but devices/requests). Any thread. */
void sk2_pipeline_add_stats(const sk2_pipeline_t *self, sk2_server_stats_t *stats);

/* The device's record for `me` (borrowed, immutable while the pipeline lives). */
json_t *sk2_pipeline_description(const sk2_pipeline_t *self);

/* Settings that keyed commands change (src/server/command.c), called by the server actor. Each
 * setter stores the setting (so the getters answer at once) and asks the pipeline thread to
 * apply it, in order; what cannot be applied there is logged. */
/* Switches a stream off whatever subscribes (true), or gives it back to demand (false).
 * Returns 0, SK2_ENOTFOUND (no such stream), SK2_ESYS. */
int sk2_pipeline_set_stream_held(sk2_pipeline_t *self, sk2_stream_kind_t kind, bool is_held);
bool sk2_pipeline_is_stream_held(const sk2_pipeline_t *self, sk2_stream_kind_t kind);
bool sk2_pipeline_has_stream(const sk2_pipeline_t *self, sk2_stream_kind_t kind);
/* A stream's size (the `resolution.KIND` key). check answers at once whether the device can
 * give the stream that size: 0, SK2_ENOTFOUND (no such stream), SK2_EUNSUPPORTED (its size is
 * fixed), SK2_EINVAL (not one of its sizes). set does the same, then has the pipeline thread
 * stop the device, set the size and start it again, and waits for that (only backends that
 * can change sizes, the mock, get that far); `me`'s record then has the new size and
 * intrinsics. Returns 0, those codes, or what starting the device again returned. sizes
 * describes the sizes the stream can have, or NULL when it has only its current one. */
int sk2_pipeline_check_size(const sk2_pipeline_t *self, sk2_stream_kind_t kind, uint32_t width,
                            uint32_t height);
int sk2_pipeline_set_size(sk2_pipeline_t *self, sk2_stream_kind_t kind, uint32_t width,
                          uint32_t height);
const char *sk2_pipeline_stream_sizes(const sk2_pipeline_t *self, sk2_stream_kind_t kind);
/* The codec `me` names as a stream's default (its "codec"): what clients that do not choose
 * one subscribe with. Returns 0, SK2_ENOTFOUND (no such stream), SK2_EUNSUPPORTED (a codec the
 * server does not offer for the stream), SK2_ENOMEM. The getter answers NULL for no stream. */
int sk2_pipeline_set_codec(sk2_pipeline_t *self, sk2_stream_kind_t kind, const char *name);
const char *sk2_pipeline_codec(const sk2_pipeline_t *self, sk2_stream_kind_t kind);
/* The stream's record as `me` gives it now (the server actor's copy), or NULL. */
const sk2_stream_info_t *sk2_pipeline_stream_info(const sk2_pipeline_t *self,
                                                  sk2_stream_kind_t kind);
/* Stops (false) or starts again (true) the device. Returns 0 or SK2_ESYS. */
int sk2_pipeline_set_running(sk2_pipeline_t *self, bool is_running);
bool sk2_pipeline_is_running(const sk2_pipeline_t *self);
/* Sets the device's rate (0..1000; the device stops and starts again) and says it in the
 * description. Returns 0, SK2_EUNSUPPORTED (the backend's rate is its own), SK2_ESYS. */
int sk2_pipeline_set_fps(sk2_pipeline_t *self, double fps);
double sk2_pipeline_fps(const sk2_pipeline_t *self);
/* Sets the JPEG quality of the device's colour encodings (1..100). Returns 0 or SK2_ESYS. */
int sk2_pipeline_set_quality(sk2_pipeline_t *self, int quality);
int sk2_pipeline_quality(const sk2_pipeline_t *self);

/* Starts recording the device's depth stream (rvl, as published, with its headers) into a new
 * recording file at path (the caller checked it), or stops with NULL. The recording counts as
 * one subscriber of depth/rvl. A writer that fails (cannot create, disk full) ends the
 * recording with a log line; sk2_pipeline_is_recording then answers false. The file records
 * the device's pose (NULL: none) and its depth-to-colour extrinsics. Returns 0,
 * SK2_EUNSUPPORTED (no depth stream), SK2_ELIMIT, SK2_ESYS. */
int sk2_pipeline_set_recording(sk2_pipeline_t *self, const char *path, const sk2_pose_t *pose);
bool sk2_pipeline_is_recording(const sk2_pipeline_t *self);

/* Per-stream and per-codec counters for the `stats` reply; a new reference. Any thread. */
json_t *sk2_pipeline_stats_json(const sk2_pipeline_t *self);

/* The sequence number of the newest frame of a stream the device handed over (encoded or not),
 * into *sequence; SK2_ENOTFOUND before the first. Any thread. */
int sk2_pipeline_newest_sequence(const sk2_pipeline_t *self, sk2_stream_kind_t kind,
                                 uint64_t *sequence);

#endif
