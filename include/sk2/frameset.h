/* Matched framesets (docs/rigs.md, "Matched framesets"): one frame per member (a device's
 * stream, on one server or many) whose capture times, mapped to the client's clock, agree
 * within a tolerance.
 *
 * The matcher is a plain object, like the rest of the client: it starts no thread and reads no
 * socket. The application receives frames from its clients as it always does (sk2_client_recv or
 * a handler of sk2_client_dispatch, from one client or many) and hands each to the matcher
 * (sk2_matcher_push_event, or sk2_matcher_push with a time of its own), then takes whatever
 * framesets are complete (sk2_matcher_next). So it fits any of the client's loops, a poll loop
 * over several clients' descriptors included, and the application keeps every other event.
 *
 * Matching. Each member keeps a queue of frames in arrival order (each stream's frames arrive
 * in capture order). Whenever every member has a frame queued, the latest of the queues' oldest
 * frames is the anchor (frames more than the tolerance before it are counted unmatched: no
 * frameset to come can hold them); every other member contributes the queued frame nearest the
 * anchor in time, once it holds a frame at least as late as the anchor (a frame still to come could
 * be nearer otherwise). If those frames span no more than the tolerance, they are a frameset and
 * every frame queued before them is counted unmatched; if not, the anchor itself is counted
 * unmatched. So a member at half the others' rate pairs with its nearest partners and the
 * others' extra frames are counted unmatched, and a frame is never dropped without being
 * counted. A queue holds at most sk2_matcher_set_queue_frames frames: past that the oldest is
 * counted unmatched and dropped (the newest wins), which bounds memory when a member stops.
 *
 * Members are identified by the client they come from (any pointer that tells servers apart;
 * device ids of different servers may be alike), the device id and the stream kind: depth, IR
 * and colour of one device are three members and a capture of them comes as one frameset. One
 * thread at a time. */
#ifndef SK2_FRAMESET_H
#define SK2_FRAMESET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "client.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sk2_matcher sk2_matcher_t;
typedef struct sk2_frameset sk2_frameset_t;

#define SK2_MATCHER_MEMBERS_MAX      64       /* members of one matcher */
#define SK2_MATCHER_QUEUE_DEFAULT    8        /* frames queued per member by default */
#define SK2_MATCHER_QUEUE_MAX        1024     /* ... and at most */
#define SK2_MATCHER_TOLERANCE_MAX_US 10000000 /* the largest tolerance, 10 s */
/* The default tolerance when no member's rate is known (half a period at 60 fps). */
#define SK2_MATCHER_TOLERANCE_FALLBACK_US 8333

/* A new matcher with no members; NULL on out of memory. */
SK2_EXPORT sk2_matcher_t *sk2_matcher_new(void);
/* Frees the matcher and every frame it holds; sets *self_p to NULL. Safe on NULL. */
SK2_EXPORT void sk2_matcher_destroy(sk2_matcher_t **self_p);

/* Adds a member: the stream `kind` of device `device_id` of `client` (NULL when the caller
 * pushes frames itself). fps is its frame rate, for the default tolerance; 0 reads it from the
 * client's `me` (sk2_client_stream_info) when client is given, and a member whose rate stays
 * unknown does not count toward the default. Returns the member's index (>= 0), or SK2_EINVAL
 * (NULL or too long an id, a kind out of range, fps negative or over 1000), SK2_EEXIST (already
 * a member), SK2_ELIMIT (SK2_MATCHER_MEMBERS_MAX members), SK2_ENOMEM. Members are added before
 * the first frame is pushed: SK2_ESTATE afterwards. */
SK2_EXPORT int sk2_matcher_add(sk2_matcher_t *self, const sk2_client_t *client,
                               const char *device_id, sk2_stream_kind_t kind, double fps);
/* Members so far. */
SK2_EXPORT size_t sk2_matcher_members(const sk2_matcher_t *self);
/* A member's device id and kind; NULL / 0 past the end. */
SK2_EXPORT const char *sk2_matcher_member_device(const sk2_matcher_t *self, size_t member);
SK2_EXPORT sk2_stream_kind_t sk2_matcher_member_kind(const sk2_matcher_t *self, size_t member);

/* Sets the tolerance: the most a frameset's capture times may spread, 1 ..
 * SK2_MATCHER_TOLERANCE_MAX_US; 0 goes back to the default, half the frame period of the
 * slowest member whose rate is known. Returns 0 or SK2_EINVAL. */
SK2_EXPORT int sk2_matcher_set_tolerance_us(sk2_matcher_t *self, int64_t tolerance_us);
/* The tolerance in force. */
SK2_EXPORT int64_t sk2_matcher_tolerance_us(const sk2_matcher_t *self);
/* Frames queued per member at most, 1 .. SK2_MATCHER_QUEUE_MAX (default
 * SK2_MATCHER_QUEUE_DEFAULT); lowering it counts the oldest frames over it unmatched. Returns 0
 * or SK2_EINVAL. */
SK2_EXPORT int sk2_matcher_set_queue_frames(sk2_matcher_t *self, unsigned frames);
/* Whether sk2_matcher_push_event maps capture times to the client's clock with each server's
 * estimate (sk2_client_to_local_us; default true). Off, the servers' own times are compared:
 * for comparison, or for servers whose clocks are known to agree. */
SK2_EXPORT void sk2_matcher_set_clock_mapping(sk2_matcher_t *self, bool is_mapping);

/* Hands the matcher one frame of a member, captured at time_us (the client's clock); the
 * matcher owns the frame from then on (frame may be NULL: times alone are matched). Returns 0,
 * SK2_EINVAL (member out of range, time_us negative; the frame is then still the caller's) or
 * SK2_ENOMEM (likewise). */
SK2_EXPORT int sk2_matcher_push(sk2_matcher_t *self, size_t member, int64_t time_us,
                                sk2_frame_t *frame);
/* Hands the matcher the frame of a FRAME event of `client`: finds the member by client, the
 * event's device and the frame's kind, maps its capture time with the client's clock estimate
 * (unless mapping is off) and takes the frame out of the event. Returns 0, SK2_ENOTFOUND (not
 * a member: the event keeps its frame), SK2_EINVAL (not a FRAME event with a frame), SK2_ENOMEM.
 */
SK2_EXPORT int sk2_matcher_push_event(sk2_matcher_t *self, const sk2_client_t *client,
                                      sk2_event_t *event);
/* Takes the next complete frameset, oldest first, into *out (the caller owns it). Returns 0,
 * SK2_EAGAIN (none complete yet) or SK2_EINVAL. Call it until SK2_EAGAIN after each push. */
SK2_EXPORT int sk2_matcher_next(sk2_matcher_t *self, sk2_frameset_t **out);

/* Framesets handed out so far. */
SK2_EXPORT uint64_t sk2_matcher_matched(const sk2_matcher_t *self);
/* Frames of a member counted unmatched so far (no partner within the tolerance, passed over for
 * a nearer one, or over the queue bound); 0 past the end. */
SK2_EXPORT uint64_t sk2_matcher_unmatched(const sk2_matcher_t *self, size_t member);
/* Frames of a member pushed so far. */
SK2_EXPORT uint64_t sk2_matcher_pushed(const sk2_matcher_t *self, size_t member);
/* Frames held now, all members together. */
SK2_EXPORT size_t sk2_matcher_queued(const sk2_matcher_t *self);

/* ---- A frameset: one frame per member, in member order ---- */
SK2_EXPORT void sk2_frameset_destroy(sk2_frameset_t **self_p);
/* Its frames: as many as the matcher has members. */
SK2_EXPORT size_t sk2_frameset_size(const sk2_frameset_t *self);
/* The capture time of frame i in the client's clock (as pushed), µs; -1 past the end. */
SK2_EXPORT int64_t sk2_frameset_time_us(const sk2_frameset_t *self, size_t i);
/* Frame i (borrowed), or NULL (past the end, pushed without one, or taken). */
SK2_EXPORT const sk2_frame_t *sk2_frameset_frame(const sk2_frameset_t *self, size_t i);
/* Takes frame i out; the caller owns it. NULL as above. */
SK2_EXPORT sk2_frame_t *sk2_frameset_take_frame(sk2_frameset_t *self, size_t i);
/* The latest capture time minus the earliest, µs (never above the matcher's tolerance). */
SK2_EXPORT int64_t sk2_frameset_spread_us(const sk2_frameset_t *self);

#ifdef __cplusplus
}
#endif
#endif
