/* The server: answers the streamkinect2 control endpoint and publishes each device's frames.
 *
 * sk2_server_t is a thin front end over an actor thread that owns the control socket; each
 * device gets its own pipeline thread that encodes and publishes its frames. All calls on one
 * server must come from one thread (the one that created it). */
#ifndef SK2_SERVER_H
#define SK2_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device.h"
#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_server sk2_server_t;

/* Counters, summed over all devices the server has served since it was created. A frame is
 * encoded only while someone subscribes to it, so once a device is removed:
 * frames_produced = frames_encoded + frames_idle + frames_dropped. */
typedef struct {
    uint32_t devices;          /* devices served now */
    uint64_t frames_produced;  /* frames the devices handed to the server */
    uint64_t frames_encoded;   /* frames encoded for at least one subscriber */
    uint64_t frames_published; /* frames sent on at least one endpoint */
    uint64_t frames_idle;      /* frames nobody subscribed to, so never encoded */
    uint64_t frames_dropped;   /* frames dropped: encoder behind, encode failure, over the
                                  frame budget, or queued at shutdown */
    uint64_t encodings;        /* encode operations: a frame may be encoded by several codecs */
    uint64_t bytes_raw;        /* pixel bytes of the encodings */
    uint64_t bytes_published;  /* encoded bytes sent */
    uint64_t encode_time_us;   /* time spent encoding, microseconds */
    uint64_t requests;         /* control requests answered */
    uint64_t bad_requests;     /* of which were answered with an error */
    uint64_t control_dropped;  /* answers dropped because their client had gone or did not read
                                  them (its queue of 64 answers was full) */
    uint64_t control_ignored;  /* control messages without a request envelope (no empty
                                  delimiter frame, nothing after it, over 8 routing frames):
                                  not answered, as a version-1 REP socket would not */
    uint64_t streams_refused;  /* stream subscriptions not encoded: the cap was reached
                                  (sk2_server_set_max_streams) */
} sk2_server_stats_t;

/* Where announcing the server over DNS-SD (mDNS, `_kinect2._tcp`) stands. */
typedef enum {
    SK2_ANNOUNCE_OFF = 0,     /* not asked for, or not bound yet */
    SK2_ANNOUNCE_PENDING = 1, /* registering (probing the name), or waiting for the mDNS
                                 daemon to come back after it went away */
    SK2_ANNOUNCE_ACTIVE = 2,  /* on the network under sk2_server_announced_name() */
    SK2_ANNOUNCE_FAILED = 3,  /* cannot announce (no avahi-daemon, built without discovery);
                                 the server serves all the same */
} sk2_announce_state_t;

/* Longest server name in bytes. */
#define SK2_SERVER_NAME_MAX 255

/* A new, unbound server called `name` (NULL: "sk2 on <host name>"). Returns NULL if the name is
 * empty, too long or not UTF-8, or on out of memory. Starts the actor thread. */
SK2_EXPORT sk2_server_t *sk2_server_new(const char *name);

/* Stops every device, closes every socket, joins every thread, frees; sets *self_p to NULL. */
SK2_EXPORT void sk2_server_destroy(sk2_server_t **self_p);

/* How many frames of each stream may wait for a device's encoder before new ones of that
 * stream are dropped (1..64, default 2): the depth, IR and colour frames of one capture arrive
 * together, and each stream has room of its own. Frames of streams nobody subscribes to never
 * wait. For devices added from now on. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_server_set_queue_frames(sk2_server_t *self, unsigned frames);

/* How many (stream, codec) pairs the `streams` endpoints of all the server's devices encode at
 * once, default SK2_SERVER_MAX_STREAMS_DEFAULT, 0 = no cap, at most SK2_SERVER_MAX_STREAMS_MAX.
 * A pair takes a place when its first subscriber comes and gives it back when its last one
 * goes; a subscription to a pair that finds every place taken is not encoded (no frames for
 * it), counted in streams_refused, logged, and marked "refused" in the `stats` reply, until a
 * place frees. The version-1 `depth` endpoint is never capped. A lower cap does not stop pairs
 * already encoded. Any time. Returns 0 or SK2_EINVAL. */
#define SK2_SERVER_MAX_STREAMS_DEFAULT 8
#define SK2_SERVER_MAX_STREAMS_MAX     4096
SK2_EXPORT int sk2_server_set_max_streams(sk2_server_t *self, unsigned max_streams);

/* The folder where the keyed command `record` may create recordings (docs/protocol.md, "The
 * `command` request"): clients name only a file in it, never a path, and never an existing
 * file. NULL (default): `record` is refused. The folder must exist. Returns 0, SK2_EINVAL,
 * SK2_ENOTFOUND (not a folder), SK2_ENOMEM. */
SK2_EXPORT int sk2_server_set_record_dir(sk2_server_t *self, const char *dir);

/* A file where the labels, locations and poses clients set with keyed commands persist across
 * restarts (sk2 serve --state): read now, as the metadata of the device ids it names, and
 * rewritten atomically (a temporary file renamed over it) after every change. A missing file is
 * an empty state. Returns 0, SK2_EINVAL, SK2_ECORRUPT (not a state file; the log says why and
 * nothing changed), SK2_ENOMEM. */
SK2_EXPORT int sk2_server_set_state_file(sk2_server_t *self, const char *path);

/* Sets the pose the server serves for one of its devices (as the keyed command `pose` does),
 * or clears it with NULL; saved to the state file if there is one. Returns 0, SK2_EINVAL (pose
 * refused by sk2_pose_check), SK2_ENOTFOUND (no such device served), SK2_ELIMIT, SK2_ESYS
 * (the state file could not be written; nothing changed). */
SK2_EXPORT int sk2_server_set_device_pose(sk2_server_t *self, const char *device_id,
                                          const sk2_pose_t *pose);

/* JPEG quality (1..100, default SK2_CODEC_DEFAULT_QUALITY) of the colour frames the devices
 * added from now on publish in "jpeg". Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_server_set_jpeg_quality(sk2_server_t *self, int quality);

/* The frame budget (include/sk2/limits.h): a device frame that would take more bytes is neither
 * encoded nor published, but counted as dropped and logged once per device. `me` advertises it
 * as max_frame_bytes. SK2_LIMIT_FRAME_BYTES_MIN..SK2_LIMIT_FRAME_BYTES_MAX (default
 * SK2_LIMIT_FRAME_BYTES). Any time. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_server_set_max_frame_bytes(sk2_server_t *self, size_t max_frame_bytes);

/* Shifts every time the server reports by offset_ms (a test and demo option: `sk2 serve
 * --clock-offset-ms`): capture and send times in frame headers, and the times of its clock
 * replies, so that its clock appears to read offset_ms ahead of the host's (behind when
 * negative) to every client. Within +-SK2_SERVER_CLOCK_OFFSET_MAX_MS. Any time; frames
 * already on their way keep theirs. Returns 0 or SK2_EINVAL. */
#define SK2_SERVER_CLOCK_OFFSET_MAX_MS 86400000 /* one day */
SK2_EXPORT int sk2_server_set_clock_offset_ms(sk2_server_t *self, int64_t offset_ms);

/* Whether to announce the server on the local network once bound (default false, so that
 * programs and tests touch mDNS only when they ask). The announcement is a `_kinect2._tcp`
 * service named after the server (a name taken on the network is replaced by "NAME #2",
 * logged), on the control port, with TXT txtvers=1, protocol=1, sk2=<version>,
 * devices=<count>, on the interface of the bound address (every interface for "*"). It is
 * withdrawn on destroy. Before bind; returns 0, SK2_EINVAL or SK2_ESTATE (already bound). */
SK2_EXPORT int sk2_server_set_announce(sk2_server_t *self, bool is_announced);

/* Makes every socket of the server (control, version-1 depth, streams) a CURVE server: all
 * traffic is encrypted, and only clients whose public key is in allow_dir may connect (checked
 * by the server's ZAP handler; a refused key is logged, at most once per 5 s). `keys` is the
 * server's secret certificate (NAME.key_secret, made by sk2_security_keygen) or a folder
 * holding exactly one. allow_dir holds the clients' public certificates (NAME.key); it is read
 * now and again on sk2_server_reload_allow(). The server's own public key is always allowed
 * (whoever has its secret key is the server), so a gateway or tool beside it may use its pair. One
 * secure server per process (they would share libzmq's one ZAP endpoint). Before bind. Returns 0,
 * SK2_EINVAL (not a key pair; logged), SK2_ENOTFOUND (no such file or folder), SK2_EUNSUPPORTED
 * (libzmq without CURVE), SK2_EEXIST (another secure server in this process), SK2_ESTATE (bound, or
 * already secure). */
SK2_EXPORT int sk2_server_set_security(sk2_server_t *self, const char *keys, const char *allow_dir);
/* Reads the allow folder again (for SIGHUP): clients connecting from now on are checked
 * against it; connected clients stay. Returns the number of keys allowed, SK2_ENOTFOUND (the
 * folder cannot be read: the old keys stay, logged) or SK2_ESTATE (not secure). */
SK2_EXPORT int sk2_server_reload_allow(sk2_server_t *self);
/* The server's public key (Z85, 40 characters) if secure, else NULL. Valid until destroy. */
SK2_EXPORT const char *sk2_server_public_key(const sk2_server_t *self);

/* Binds the control endpoint to tcp://address:port. `address` is an IPv4 or IPv6 literal, "*"
 * (every interface) or a host name (resolved once); port 0 lets the OS choose. Device
 * endpoints are later bound on the same address with OS-chosen ports. Returns 0, SK2_EINVAL,
 * SK2_ENOTFOUND (name does not resolve), SK2_EBIND, SK2_ESTATE (already bound). */
SK2_EXPORT int sk2_server_bind(sk2_server_t *self, const char *address, uint16_t port);

/* The control endpoint as handed to clients ("tcp://127.0.0.1:5555"): always a numeric
 * address a client can connect to, never "*". NULL before bind. Valid until destroy. */
SK2_EXPORT const char *sk2_server_endpoint(const sk2_server_t *self);
/* The bound control port, 0 before bind. */
SK2_EXPORT uint16_t sk2_server_port(const sk2_server_t *self);
SK2_EXPORT const char *sk2_server_name(const sk2_server_t *self);

/* Where announcing stands (SK2_ANNOUNCE_OFF if not asked for). Any failure has already been
 * logged once as a warning ("discovery: cannot announce ..."). */
SK2_EXPORT sk2_announce_state_t sk2_server_announce_state(sk2_server_t *self);
/* The name announced on the network (it differs from the server's name after a conflict, or
 * when that name is longer than one DNS label, 63 bytes), or NULL unless ACTIVE. Borrowed
 * until the next sk2_server_announce* call on this server, or destroy. */
SK2_EXPORT const char *sk2_server_announced_name(sk2_server_t *self);
/* Why announcing is PENDING or FAILED ("avahi-daemon is not running (...)"), "" otherwise.
 * Borrowed like sk2_server_announced_name(). */
SK2_EXPORT const char *sk2_server_announce_reason(sk2_server_t *self);

/* Adds a device and starts streaming it; takes ownership of *device_p (NULL afterwards, even
 * on error). Opens the device if needed. Returns once the device is served or refused (a slow
 * camera makes this call slow, not the server's answers to clients); clients see it in the
 * next `me`. Returns 0, SK2_ESTATE (not bound), SK2_EEXIST (id already served, or lost and
 * awaited), SK2_ELIMIT (256 devices already), SK2_EBIND, SK2_EDEVICE. */
SK2_EXPORT int sk2_server_add_device(sk2_server_t *self, sk2_device_t **device_p);

/* A device that reports itself lost (sk2_device_lost_fn: a camera unplugged) is removed by the
 * server itself, so clients see it vanish from `me`; the server then tries once a second to
 * open a new device of the same backend and serial number, and when that works (the camera is
 * back) adds it under the same id, so clients see it return. The server never stops because a
 * device went away. It watches for at most SK2_SERVER_LOST_MAX lost devices at once: when one
 * more is lost, the one lost longest ago is forgotten (logged as a warning) and does not come
 * back by itself. Opening, starting, stopping and closing devices, lost ones included, happen
 * on a worker thread of the server, so control requests (`ping`, `who`) are answered while a
 * camera takes its time. */
#define SK2_SERVER_LOST_MAX 32

/* Stops and removes the device with this id, also one lost and waiting to come back; returns
 * once it is stopped and closed. Returns 0 or SK2_ENOTFOUND. */
SK2_EXPORT int sk2_server_remove_device(sk2_server_t *self, const char *device_id);

/* Number of devices served now. */
SK2_EXPORT size_t sk2_server_device_count(sk2_server_t *self);

/* Fills *stats with the current counters. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_server_stats(sk2_server_t *self, sk2_server_stats_t *stats);

#ifdef __cplusplus
}
#endif
#endif
