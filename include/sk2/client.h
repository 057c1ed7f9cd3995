/* The client: talks to one server's control endpoint, follows its devices and receives their
 * decoded frames.
 *
 * No hidden threads: nothing happens unless the caller calls sk2_client_recv() or
 * sk2_client_dispatch(). Heartbeats, timeouts and decoding run inside those calls. To wait in
 * your own poll loop, poll the descriptors from sk2_client_fds() for reading with the timeout
 * from sk2_client_timeout_ms(), then call recv/dispatch with timeout 0 until it returns
 * SK2_ETIMEDOUT (the descriptors are edge-triggered, like ZMQ_FD). One thread at a time. */
#ifndef SK2_CLIENT_H
#define SK2_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "device.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_client sk2_client_t;
typedef struct sk2_event sk2_event_t;

typedef enum {
    SK2_EVENT_CONNECTED = 1,       /* the first valid `me` arrived: devices are known */
    SK2_EVENT_DISCONNECTED = 2,    /* server lost (error SK2_ETIMEDOUT: no reply in time) or
                                      disconnect() called (error 0) */
    SK2_EVENT_DEVICE_ADDED = 3,    /* a device id appeared in `me` */
    SK2_EVENT_DEVICE_REMOVED = 4,  /* a device id vanished from `me` */
    SK2_EVENT_PONG = 5,            /* the answer to sk2_client_ping() */
    SK2_EVENT_FRAME = 6,           /* a decoded frame of an enabled stream */
    SK2_EVENT_ERROR = 7,           /* the server answered with an error, or broke the protocol;
                                      from a browser: the mDNS daemon went away */
    SK2_EVENT_STATS = 8,           /* the answer to sk2_client_request_stats(): sk2_event_json */
    SK2_EVENT_SERVER_ADDED = 9,    /* browser: a server appeared on the network (browser.h) */
    SK2_EVENT_SERVER_REMOVED = 10, /* browser: a server left the network */
    SK2_EVENT_SERVER_UPDATED = 11, /* browser: what a server announces changed (endpoint, TXT) */
    SK2_EVENT_REPLAY = 12,         /* the answer to sk2_client_replay_control(): sk2_event_json,
                                      where the replay is (docs/protocol.md) */
    SK2_EVENT_RECONNECTING = 13,   /* with reconnection on: the server went silent (error and
                                      reason say how); the client keeps retrying */
    SK2_EVENT_RECONNECTED = 14,    /* the server answered again with a fresh `me`; streams are
                                      re-subscribed; sk2_event_outage_us says how long it took */
    SK2_EVENT_COMMAND_DONE = 15,   /* a command of sk2_client_command() ended: answered (error 0,
                                      or SK2_ESERVER when refused), or SK2_ETIMEDOUT (no answer
                                      within its ttl), or SK2_ELOST (the client disconnected) */
} sk2_event_type_t;

/* Defaults of the original streamkinect2 client. */
#define SK2_CLIENT_HEARTBEAT_MS        10000
#define SK2_CLIENT_RESPONSE_TIMEOUT_MS 5000

/* A new, unconnected client owned by the caller; NULL on out of memory. */
SK2_EXPORT sk2_client_t *sk2_client_new(void);

/* Closes all sockets and frees; sets *self_p to NULL. Safe on NULL. */
SK2_EXPORT void sk2_client_destroy(sk2_client_t **self_p);

/* Interval between `who` heartbeats (100 .. 3600000 ms). Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_client_set_heartbeat_ms(sk2_client_t *self, int interval_ms);
/* How long to wait for any reply before the server counts as lost (100 .. 600000 ms). */
SK2_EXPORT int sk2_client_set_response_timeout_ms(sk2_client_t *self, int timeout_ms);

/* Reconnection (default: off, so that a caller written for DISCONNECTED still sees it).
 *
 * With it on, a lost server (no reply within the response timeout, counted from the heartbeat
 * that went unanswered) does not end the session: the client queues SK2_EVENT_RECONNECTING
 * (error SK2_ETIMEDOUT and a reason), closes its sockets and tries again, with a fresh control
 * socket and `who` per attempt, 100 ms after the loss and then at doubling intervals up to 5 s
 * (each shortened at random by up to a fifth, so that many clients of one server do not retry
 * in step). All of it runs inside recv/dispatch; sk2_client_timeout_ms() includes the next
 * attempt. When a `me` arrives, every device whose depth was enabled is enabled again, every
 * stream subscribed again, DEVICE_REMOVED / DEVICE_ADDED are queued for ids that vanished or
 * appeared, then SK2_EVENT_RECONNECTED with the outage's duration (sk2_event_outage_us). The
 * first frame of each stream afterwards carries the frames missed (sk2_event_gap) when the
 * server kept its sequence numbers, 0 when it restarted and began again. While reconnecting,
 * sk2_client_is_connected() stays true, requests other than refresh answer SK2_EAGAIN, and
 * subscribe/enable calls are remembered and applied on return. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_client_set_reconnect(sk2_client_t *self, bool is_reconnecting);
/* How long to keep retrying before giving up: then SK2_EVENT_DISCONNECTED with SK2_ETIMEDOUT
 * ends the session. 0 (default) retries forever; otherwise 100 .. 2^31-1 ms. Returns 0 or
 * SK2_EINVAL. */
SK2_EXPORT int sk2_client_set_give_up_after_ms(sk2_client_t *self, int64_t give_up_after_ms);
/* True between SK2_EVENT_RECONNECTING and SK2_EVENT_RECONNECTED (or giving up). */
SK2_EXPORT bool sk2_client_is_reconnecting(const sk2_client_t *self);

/* Finds the endpoint to try on each reconnection attempt: writes it (at most size bytes with
 * the NUL) into endpoint and returns 0, or returns a negative SK2_E* code to keep the last
 * endpoint. Called inside recv/dispatch, so it must not block for long. */
typedef int(sk2_client_resolve_fn)(void *arg, char *endpoint, size_t size);
/* Installs a resolver for reconnection attempts (NULL: always the endpoint connected to);
 * free_arg, if not NULL, is called on arg when it is replaced or the client destroyed. This is
 * how a client connected by a server's name (sk2_client_follow_name, browser.h) finds it again
 * on another port. */
SK2_EXPORT void sk2_client_set_resolver(sk2_client_t *self, sk2_client_resolve_fn *resolve,
                                        void *arg, void (*free_arg)(void *arg));

/* The frame budget: the most bytes one decoded frame may take (SK2_LIMIT_FRAME_BYTES_MIN ..
 * SK2_LIMIT_FRAME_BYTES_MAX, default SK2_LIMIT_FRAME_BYTES; include/sk2/limits.h). A frame
 * over it, or one whose size or format differs from what its stream advertised in `me` (or
 * whose payload is longer than its codec can make of such a frame), is dropped before
 * anything is allocated for it and counted (sk2_client_frames_rejected); the first of each
 * reason per device and stream is logged (a warning), the rest only counted. Stream sockets read
 * messages up to sk2_limit_wire_bytes(budget). Before connecting. Returns 0, SK2_EINVAL (out
 * of range) or SK2_ESTATE (connected). */
SK2_EXPORT int sk2_client_set_max_frame_bytes(sk2_client_t *self, size_t max_frame_bytes);
SK2_EXPORT size_t sk2_client_max_frame_bytes(const sk2_client_t *self);
/* Frames dropped so far because they broke the limits above. */
SK2_EXPORT uint64_t sk2_client_frames_rejected(const sk2_client_t *self);

/* Whether FRAME events of the streams endpoint carry a decoded frame (default: yes). A
 * recorder that keeps frames as they were sent turns decoding off: sk2_event_frame is then
 * NULL and sk2_event_encoded has the frame. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_client_set_decode(sk2_client_t *self, bool is_decoding);

/* Makes every socket of the client (control, depth, streams) a CURVE client: traffic is
 * encrypted, the server must prove it holds the secret key of server_key, and the server
 * checks our key against its allow folder. `keys` is our secret certificate (NAME.key_secret,
 * from sk2_security_keygen) or a folder holding exactly one; server_key is 40 characters of
 * Z85 or a certificate file, or NULL to give it later (sk2_client_set_server_key, or
 * sk2_client_connect_name, which pins the key a server announces: security.h). A refused key
 * or a wrong server key ends the connection with DISCONNECTED, error SK2_EAUTH and a reason
 * saying which (read from the control socket's handshake events in sk2_client_recv: no
 * thread). Before connecting. Returns 0, SK2_EINVAL (not a key; logged), SK2_ENOTFOUND,
 * SK2_EUNSUPPORTED (libzmq without CURVE) or SK2_ESTATE (connected). */
SK2_EXPORT int sk2_client_set_security(sk2_client_t *self, const char *keys,
                                       const char *server_key);
/* Sets (or replaces) the server's public key of a secure client. Before connecting. Returns
 * 0, SK2_EINVAL, SK2_ENOTFOUND or SK2_ESTATE (not secure, or connected). */
SK2_EXPORT int sk2_client_set_server_key(sk2_client_t *self, const char *server_key);
/* Whether sk2_client_set_security() was called. */
SK2_EXPORT bool sk2_client_is_secure(const sk2_client_t *self);
/* The server key a secure client uses (Z85), or NULL. Valid until the next set call. */
SK2_EXPORT const char *sk2_client_server_key(const sk2_client_t *self);

/* Connects to a control endpoint ("tcp://host:port", or "host:port") and sends `who`.
 * Returns 0, SK2_EINVAL (malformed endpoint), SK2_ECONNECT, SK2_ESTATE (already connected).
 * Success means the request is under way; SK2_EVENT_CONNECTED follows when `me` arrives. */
SK2_EXPORT int sk2_client_connect(sk2_client_t *self, const char *endpoint);

/* Closes the connection and every stream; queues SK2_EVENT_DISCONNECTED. Returns 0 or
 * SK2_ESTATE (not connected). */
SK2_EXPORT int sk2_client_disconnect(sk2_client_t *self);

SK2_EXPORT bool sk2_client_is_connected(const sk2_client_t *self);

/* Sends a ping (any time after connect, also before CONNECTED); SK2_EVENT_PONG with the round
 * trip follows. Returns 0, SK2_ESTATE (not connected) or SK2_EAGAIN (16 requests pending). */
SK2_EXPORT int sk2_client_ping(sk2_client_t *self);

/* Sends `who` now (besides the heartbeat), to see device changes sooner. 0 or SK2_ESTATE. */
SK2_EXPORT int sk2_client_refresh(sk2_client_t *self);

/* Starts/stops receiving a device's depth frames (decoded) from its version-1 endpoint, at the
 * depth size the server's `me` advertises (or, from a server that does not say, the camera
 * size the frames declare). Returns 0, SK2_ENOTFOUND (unknown device or no depth endpoint),
 * SK2_ELIMIT (the advertised depth frames are over the frame budget), SK2_ECONNECT,
 * SK2_ESTATE (not connected). Enabling twice or
 * disabling a disabled stream is not an error. */
SK2_EXPORT int sk2_client_enable_depth(sk2_client_t *self, const char *device_id);
SK2_EXPORT int sk2_client_disable_depth(sk2_client_t *self, const char *device_id);

/* Subscribes to one stream of a device ("depth", "ir", "color") encoded with one of the codecs
 * the server offers for it (sk2_client_stream_codecs), or with codec NULL in the stream's
 * default codec as `me` names it now (sk2_client_stream_codec; sk2d, or jpeg for colour, from
 * a server that names none; unsubscribe with NULL resolves it the same way). Frames arrive as FRAME
 * events with their metadata (sequence, timestamps, latency, gaps). Subscribing twice is not an
 * error. Returns 0, SK2_ENOTFOUND (unknown device or stream, or a version-1 server without a
 * streams endpoint), SK2_EUNSUPPORTED (codec not offered for that stream), SK2_ELIMIT (16
 * subscriptions per device, or the stream's advertised frames are over the frame budget),
 * SK2_ECONNECT, SK2_ESTATE (not connected). */
SK2_EXPORT int sk2_client_subscribe(sk2_client_t *self, const char *device_id,
                                    sk2_stream_kind_t kind, const char *codec);
/* Undoes sk2_client_subscribe. Returns 0, SK2_ENOTFOUND (not subscribed), SK2_ESTATE. */
SK2_EXPORT int sk2_client_unsubscribe(sk2_client_t *self, const char *device_id,
                                      sk2_stream_kind_t kind, const char *codec);

/* Describes a device's stream as the server's `me` does (size, format, fps, depth units,
 * intrinsics). Returns 0 or SK2_ENOTFOUND (unknown device or stream, or a version-1 server). */
SK2_EXPORT int sk2_client_stream_info(const sk2_client_t *self, const char *device_id,
                                      sk2_stream_kind_t kind, sk2_stream_info_t *info);
/* The codecs the server offers for a device's stream, as a comma-separated list ("raw,rvl"),
 * or NULL. Borrowed until the next recv/dispatch. */
SK2_EXPORT const char *sk2_client_stream_codecs(sk2_client_t *self, const char *device_id,
                                                sk2_stream_kind_t kind);
/* The codec the server names as the default of a device's stream (its `codec.KIND` key, the
 * codec a subscription with codec NULL gets), or NULL from a server that names none. Borrowed
 * until the next recv/dispatch. */
SK2_EXPORT const char *sk2_client_stream_codec(const sk2_client_t *self, const char *device_id,
                                               sk2_stream_kind_t kind);
/* A device's serial number from `me`, or NULL. */
SK2_EXPORT const char *sk2_client_device_serial(const sk2_client_t *self, const char *device_id);
/* A device's label and location from `me` (set with the keyed commands `label` and
 * `location`), or NULL when none is set. Borrowed until the next recv/dispatch. */
SK2_EXPORT const char *sk2_client_device_label(const sk2_client_t *self, const char *device_id);
SK2_EXPORT const char *sk2_client_device_location(const sk2_client_t *self, const char *device_id);
/* A device's pose in the rig's world frame and its depth-to-colour extrinsics
 * (sk2/registration.h), from `me` (sk2 servers only; set with the keyed command `pose` or
 * `sk2 serve --pose`, and given by backends that know their calibration). Return 0,
 * SK2_ENOTFOUND (unknown device, or none given), SK2_EPROTO (the server sent one that fails
 * the checks), SK2_EINVAL. */
SK2_EXPORT int sk2_client_device_pose(const sk2_client_t *self, const char *device_id,
                                      sk2_pose_t *pose);
SK2_EXPORT int sk2_client_device_depth_to_color(const sk2_client_t *self, const char *device_id,
                                                sk2_extrinsics_t *extrinsics);
/* A device's backend from `me` ("mock", "replay", ...), or NULL. */
SK2_EXPORT const char *sk2_client_device_backend(const sk2_client_t *self, const char *device_id);

/* Asks the server for its counters; SK2_EVENT_STATS follows with the reply as JSON text (a
 * version-1 server answers with an error instead). Returns 0, SK2_ESTATE, SK2_EAGAIN. */
SK2_EXPORT int sk2_client_request_stats(sk2_client_t *self);

/* Controls a replay device of the server (sk2 serve --replay): action is "pause", "resume",
 * "seek" (to position_s seconds into the recording) or "status"; device_id NULL means the
 * server's only replay. SK2_EVENT_REPLAY follows with where the replay is as JSON text
 * ({"device", "state": "waiting"|"playing"|"paused"|"ended", "listened", "position",
 * "duration", "frame", "frames", "played", "loops"}), or SK2_EVENT_ERROR with the server's reason
 * (no such device, not a replay; a version-1 server knows no such request). Returns 0, SK2_EINVAL
 * (unknown action, a negative or NaN position, an id too long), SK2_ESTATE, SK2_EAGAIN, SK2_ENOMEM.
 */
SK2_EXPORT int sk2_client_replay_control(sk2_client_t *self, const char *device_id,
                                         const char *action, double position_s);

/* ---- Keyed commands (docs/protocol.md, "The `command` request") ----
 *
 * A command sets one key of one device on the server (running, stream.depth, stream.ir,
 * stream.color, fps, jpeg_quality, label, location; "list" asks for every key with its type and
 * value). It is sent at once, without waiting, under a new id, and sent again under the same id
 * every SK2_CLIENT_COMMAND_RETRY_MS while no answer has come, at most
 * SK2_CLIENT_COMMAND_MAX_SENDS times and never after its ttl; the server applies an id once and
 * answers every copy alike, so a command lost on the way there or back is applied exactly once.
 * All of it runs inside recv/dispatch (no thread). Exactly one SK2_EVENT_COMMAND_DONE follows
 * per command, after the events queued before it: sk2_event_command_id says which,
 * sk2_event_json is the server's answer ({"id", "ok", "device", "key", "value"} or {"id",
 * "ok": false, "code", "error"}), sk2_event_command_code the code of a refusal and
 * sk2_event_reason its text. */
#define SK2_CLIENT_COMMAND_TTL_MS    5000 /* default time-to-live */
#define SK2_CLIENT_COMMAND_RETRY_MS  200  /* interval between sends of one command */
#define SK2_CLIENT_COMMAND_MAX_SENDS 25   /* sends of one command at most */
#define SK2_CLIENT_COMMAND_MAX       64   /* commands awaiting an answer at once */
#define SK2_CLIENT_COMMAND_ID_MAX    64   /* longest id, bytes without the NUL */

/* Sends a command: device_id NULL for the server's only device (or for "list": every device),
 * key as above, value_json the value as JSON text ("true", "15", "\"hall\""; a string value
 * such as "on" or "15" is also understood by the server) or NULL, ttl_ms 100..600000 (0: the
 * default). Writes the command's id into id (id_size >= SK2_CLIENT_COMMAND_ID_MAX + 1) if id is
 * not NULL. Returns 0, SK2_EINVAL (bad argument, value not one JSON scalar), SK2_ESTATE (not
 * connected, or no `me` yet), SK2_EUNSUPPORTED (the server does not take commands: version 1),
 * SK2_ELIMIT (SK2_CLIENT_COMMAND_MAX awaiting), SK2_ENOMEM. While reconnecting the command
 * waits and is sent when the server is back, if its ttl allows. */
SK2_EXPORT int sk2_client_command(sk2_client_t *self, const char *device_id, const char *key,
                                  const char *value_json, int ttl_ms, char *id, size_t id_size);

/* Waits up to timeout_ms (0: do not wait, -1: forever) for the next event and hands it to the
 * caller in *event_p (caller owns it). Returns 0, SK2_ETIMEDOUT (nothing happened),
 * SK2_EINTR (a signal arrived), SK2_ESTATE (not connected and nothing queued). */
SK2_EXPORT int sk2_client_recv(sk2_client_t *self, sk2_event_t **event_p, int timeout_ms);

/* Receives the handler's events: called from inside sk2_client_dispatch() only. The event is
 * borrowed for the call (take its frame with sk2_event_take_frame to keep it). */
typedef void(sk2_client_handler_fn)(void *arg, sk2_client_t *client, sk2_event_t *event);

SK2_EXPORT void sk2_client_set_handler(sk2_client_t *self, sk2_client_handler_fn *handler,
                                       void *arg);

/* Like recv, but runs the handler for every event that is ready, waiting up to timeout_ms for
 * the first; at most 256 in one call, so that a flood of frames cannot keep it from returning
 * (the rest stay queued for the next call). Returns the number of events handled (>= 0), or
 * SK2_EINTR / SK2_ESTATE. */
SK2_EXPORT int sk2_client_dispatch(sk2_client_t *self, int timeout_ms);

/* Writes up to `max` descriptors to poll for reading into fds; returns how many there are
 * (which may exceed max). They change when streams are enabled, when the `me` changes and at
 * each reconnection attempt: ask again after every dispatch. */
SK2_EXPORT size_t sk2_client_fds(sk2_client_t *self, int *fds, size_t max);
/* Milliseconds until the client has timer work (heartbeat, timeout), -1 if none. */
SK2_EXPORT int sk2_client_timeout_ms(const sk2_client_t *self);

/* What the last valid `me` said. Strings are borrowed until the next recv/dispatch. */
SK2_EXPORT const char *sk2_client_server_name(const sk2_client_t *self);
SK2_EXPORT const char *sk2_client_me_json(const sk2_client_t *self);
/* One of the server's own endpoints by name ("control"), as it advertises it, or NULL. */
SK2_EXPORT const char *sk2_client_server_endpoint(const sk2_client_t *self, const char *name);
SK2_EXPORT size_t sk2_client_device_count(const sk2_client_t *self);
/* The id of device `index` (0 .. count-1), or NULL past the end. */
SK2_EXPORT const char *sk2_client_device_id(const sk2_client_t *self, size_t index);
/* A device's endpoint by name ("depth"), or NULL. */
SK2_EXPORT const char *sk2_client_device_endpoint(const sk2_client_t *self, const char *device_id,
                                                  const char *name);

/* ---- Flow control ----
 *
 * Pausing a stream unsubscribes it on the socket that stays connected: the server stops
 * sending it (and stops encoding it when no other client wants it), the connection, the
 * subscription list and the device's state stay, and resuming subscribes again, with no
 * reconnection and no DISCONNECTED/RECONNECTING. A queue bound makes the client keep at most N
 * frames per subscription that it has read but not yet handed out, dropping the oldest (the
 * newest wins): each recv/dispatch first reads everything its stream sockets hold into those
 * queues, then hands out the oldest frame kept. When it finds more than one frame waiting on a
 * socket (the caller fell behind), it reads on while more keep coming from the transport,
 * waiting 5 ms at a time and 50 ms at most, even with timeout 0. Frames still inside libzmq and
 * the kernel after that pass through the queue like any other. A client that uses either tells an
 * sk2 server in a `flow` message (on each change and with every heartbeat), which the server shows
 * in its stats; a server without flow control is left alone (docs/protocol.md). */

/* Most frames a queue bound may allow per subscription. */
#define SK2_CLIENT_QUEUE_FRAMES_MAX 1024

/* Pauses a device's stream (kind 0: all its streams; the version-1 depth endpoint counts as
 * depth). device_id NULL pauses every device, and devices that appear later start paused.
 * Frames of a paused stream already queued are dropped: after the call none is handed out.
 * Pausing twice is not an error. Returns 0, SK2_EINVAL (kind out of range), SK2_ENOTFOUND
 * (unknown device) or SK2_ESTATE (a device named while not connected). */
SK2_EXPORT int sk2_client_pause(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind);
/* Undoes sk2_client_pause for the same device (NULL: every device) and kind (0: all). The first
 * frame after a resume carries gap 0: frames skipped while paused were skipped on purpose. */
SK2_EXPORT int sk2_client_resume(sk2_client_t *self, const char *device_id, sk2_stream_kind_t kind);
/* Whether that device's stream (kind 0: every stream; device_id NULL: the default for all
 * devices) is paused. */
SK2_EXPORT bool sk2_client_is_paused(const sk2_client_t *self, const char *device_id,
                                     sk2_stream_kind_t kind);
/* Sets the queue bound: at most `frames` (1 .. SK2_CLIENT_QUEUE_FRAMES_MAX) frames read and
 * not yet handed out per subscription of the streams endpoint, oldest dropped first; 0 (the
 * default) keeps no queue of its own (libzmq's, which keeps the oldest). Any time; lowering it
 * drops the oldest frames over the new bound, 0 hands out everything queued. Memory: frames x
 * an encoded frame per subscription. A caller back from not reading for a while gets frames at
 * most `frames` behind the newest the server had made: the client asks the server where its
 * streams are and drops, as stale, what waited in libzmq's and the kernel's buffers (streams
 * sockets opened after the call also keep no more than `frames` in libzmq, up to 4). Returns
 * 0, SK2_EINVAL or SK2_ENOMEM. */
SK2_EXPORT int sk2_client_set_queue_frames(sk2_client_t *self, unsigned frames);
SK2_EXPORT unsigned sk2_client_queue_frames(const sk2_client_t *self);
/* Frames the queue bound dropped so far (never decoded), all streams together, with the stale
 * ones dropped after an absence or a resume. */
SK2_EXPORT uint64_t sk2_client_frames_dropped(const sk2_client_t *self);
/* Frames queued now (read, not yet handed out). */
SK2_EXPORT uint64_t sk2_client_frames_queued(const sk2_client_t *self);
/* The random id (32 hexadecimal digits) this client gives in `flow`, as the server's stats
 * show it. Borrowed while the client lives. */
SK2_EXPORT const char *sk2_client_id(const sk2_client_t *self);

/* ---- One clock (docs/rigs.md, "One clock") ----
 *
 * The client estimates every server's clock against its own wall clock (CLOCK_REALTIME), NTP
 * style: a burst of clock exchanges right after `me` arrives (SK2_CLIENT_CLOCK_BURST, going on
 * up to SK2_CLIENT_CLOCK_BURST_MAX while the error bound is above SK2_CLIENT_CLOCK_GOOD_US),
 * then one every
 * SK2_CLIENT_CLOCK_PERIOD_MS (or with every heartbeat when those are more frequent), all sent
 * from the timers of recv/dispatch (no thread). Only a server whose `me` says "clock": 1 is
 * asked: a version-1 server, an older sk2 or a relay gets no clock message and the estimate
 * stays invalid. The estimate starts again after a reconnection, and when a sample shows that
 * one of the clocks stepped. Offsets are server clock minus client clock: a server whose clock
 * reads 250 ms ahead of ours has offset +250000 µs. */

#define SK2_CLIENT_CLOCK_BURST     8    /* exchanges in a row when a server is met... */
#define SK2_CLIENT_CLOCK_BURST_MAX 32   /* ...or up to this many while the bound exceeds: */
#define SK2_CLIENT_CLOCK_GOOD_US   250  /* the bound (µs) that ends a burst early */
#define SK2_CLIENT_CLOCK_PERIOD_MS 2000 /* then one exchange this often */

typedef struct {
    bool is_supported;          /* the server answers clock exchanges ("clock": 1 in `me`) */
    bool is_valid;              /* at least one exchange answered: the numbers below hold */
    int64_t offset_us;          /* server clock - client clock, now, µs */
    int64_t rtt_us;             /* round trip of the exchange the offset rests on, µs */
    int64_t error_us;           /* bound on |offset_us - truth|, µs: rtt_us / 2 + wander since */
    bool has_drift;             /* drift_ppm is measured (the samples span 20 s or more) */
    double drift_ppm;           /* how much faster the server's clock runs, ppm; 0 unmeasured */
    uint64_t samples;           /* exchanges answered since the estimate (re)started */
    int server_synced;          /* the server's kernel: 1 a time daemon disciplines its clock,
                                   0 not (STA_UNSYNC), -1 unknown */
    int64_t server_maxerror_us; /* the server kernel's maximum error, µs; -1 unknown */
    int64_t server_esterror_us; /* the server kernel's estimated error, µs; -1 unknown */
    bool is_settling;           /* the first burst of exchanges is still under way */
} sk2_clock_estimate_t;

/* Fills *out with the current estimate for the server (zeroed, with the server fields -1, when
 * there is none). Returns 0 when out->is_valid, SK2_EAGAIN while the server answers clock
 * exchanges but none has come back yet, SK2_EUNSUPPORTED when it does not (or before `me`),
 * SK2_EINVAL on NULL arguments. The caller's thread. */
SK2_EXPORT int sk2_client_clock(const sk2_client_t *self, sk2_clock_estimate_t *out);
/* Maps a time of the server's clock (µs since 1970, e.g. sk2_frame_capture_time_us of a
 * received frame) to the client's clock, with the drift if measured. Without a valid estimate
 * it returns server_us unchanged. */
SK2_EXPORT int64_t sk2_client_to_local_us(const sk2_client_t *self, int64_t server_us);
/* The inverse: a time of the client's clock in the server's. */
SK2_EXPORT int64_t sk2_client_to_server_us(const sk2_client_t *self, int64_t local_us);

/* ---- Events ---- */
SK2_EXPORT void sk2_event_destroy(sk2_event_t **self_p);
SK2_EXPORT sk2_event_type_t sk2_event_type(const sk2_event_t *self);
/* "connected", "disconnected", "device-added", ..., "server-added", "server-removed",
 * "server-updated", "replay", "reconnecting", "reconnected", "command-done" */
SK2_EXPORT const char *sk2_event_type_name(sk2_event_type_t type);
/* The device of DEVICE_ADDED, DEVICE_REMOVED and FRAME events, else NULL. Borrowed. */
SK2_EXPORT const char *sk2_event_device_id(const sk2_event_t *self);
/* The decoded frame of a FRAME event (borrowed), or NULL. */
SK2_EXPORT const sk2_frame_t *sk2_event_frame(const sk2_event_t *self);
/* Takes the frame out of a FRAME event; the caller owns it. NULL if none (or taken). */
SK2_EXPORT sk2_frame_t *sk2_event_take_frame(sk2_event_t *self);
/* The codec a FRAME arrived in ("depth12" on the version-1 endpoint). Static. */
SK2_EXPORT const char *sk2_event_codec(const sk2_event_t *self);
/* For a FRAME from the streams endpoint: wall-clock time from capture to decoded, in
 * microseconds, with the capture time mapped to the client's clock when the server's clock is
 * estimated (sk2_client_clock; otherwise meaningful only when both hosts' clocks agree); -1
 * when unknown (version 1). The frame itself keeps the capture time in the server's clock. */
SK2_EXPORT int64_t sk2_event_latency_us(const sk2_event_t *self);
/* For a FRAME: how many frames of this stream and codec were missed just before it (a jump in
 * sequence numbers; 0 on the version-1 endpoint, which carries none). */
SK2_EXPORT uint64_t sk2_event_gap(const sk2_event_t *self);
/* For a STATS event: the server's counters as JSON text; for REPLAY where the replay is; for
 * COMMAND_DONE the server's answer (NULL after a timeout). Borrowed, else NULL. */
SK2_EXPORT const char *sk2_event_json(const sk2_event_t *self);
/* For a FRAME from the streams endpoint: the frame exactly as it arrived, its frame header
 * (docs/protocol.md, checked) and its encoded payload, borrowed while the event lives. Any of
 * the pointers may be NULL. Returns 0, or SK2_ENOTFOUND for other events and for version-1
 * depth frames, which arrive without a header. */
SK2_EXPORT int sk2_event_encoded(const sk2_event_t *self, const uint8_t **header,
                                 size_t *header_size, const uint8_t **payload,
                                 size_t *payload_size);
/* For a FRAME from the streams endpoint that came through relays (sk2_relay, `sk2 relay`): how
 * many relays it passed (0 straight from a server, and on the version-1 endpoint), and each
 * one's wall-clock receive time, microseconds since 1970, nearest the server first; up to
 * `max` of them are written into times_us (which may be NULL when max is 0). */
SK2_EXPORT size_t sk2_event_hops(const sk2_event_t *self, int64_t *times_us, size_t max);
/* Encoded size on the wire of a FRAME event, in bytes. */
SK2_EXPORT size_t sk2_event_wire_bytes(const sk2_event_t *self);
/* For RECONNECTED: how long the server was lost, from the loss being noticed to the fresh `me`,
 * microseconds; 0 for other events. */
SK2_EXPORT int64_t sk2_event_outage_us(const sk2_event_t *self);
/* For RECONNECTING and RECONNECTED: the wall-clock time the loss was noticed, microseconds
 * since 1970 (as frame capture times); 0 for other events. */
SK2_EXPORT int64_t sk2_event_lost_at_us(const sk2_event_t *self);
/* For COMMAND_DONE: the command's id (as sk2_client_command wrote it), else NULL. Borrowed. */
SK2_EXPORT const char *sk2_event_command_id(const sk2_event_t *self);
/* For COMMAND_DONE refused by the server: its code ("unknown-device", "unknown-key",
 * "bad-value", "read-only", "unsupported", "malformed", "failed"); "" otherwise. Borrowed. */
SK2_EXPORT const char *sk2_event_command_code(const sk2_event_t *self);
/* For COMMAND_DONE: from sending first to the answer, microseconds (0 without an answer), and
 * how many times the command was sent. */
SK2_EXPORT int64_t sk2_event_command_rtt_us(const sk2_event_t *self);
SK2_EXPORT unsigned sk2_event_command_sends(const sk2_event_t *self);

/* Round trip of a PONG, microseconds. */
SK2_EXPORT int64_t sk2_event_rtt_us(const sk2_event_t *self);
/* For DISCONNECTED, RECONNECTING and ERROR: the SK2_E* cause (0 after a plain disconnect) and a
 * reason (never NULL; "" when there is none). */
SK2_EXPORT int sk2_event_error(const sk2_event_t *self);
SK2_EXPORT const char *sk2_event_reason(const sk2_event_t *self);

#ifdef __cplusplus
}
#endif
#endif
