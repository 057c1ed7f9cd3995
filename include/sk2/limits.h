/* One table of the sizes sk2 accepts, agreed by every layer: the frame header parser, the
 * client's sockets, the server, the gateway, recordings and replay. docs/protocol.md
 * ("Limits") lists them for people.
 *
 * The one number a user sets is the frame budget: the most bytes one decoded frame may take
 * (width x height x bytes per pixel). Everything else follows from it: the largest encoded
 * payload a frame may have is what the worst codec makes of a frame of that size
 * (sk2_limit_payload_bytes), and the largest stream message a socket reads is that plus the
 * header and topic (sk2_limit_wire_bytes). A frame over the budget, or one that does not match
 * its stream's advertised size and format, is dropped before anything is allocated for it,
 * counted, and reported once in the log. */
#ifndef SK2_LIMITS_H
#define SK2_LIMITS_H

#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Widest and tallest frame, pixels (the same numbers as SK2_FRAME_MAX_WIDTH/HEIGHT). */
#define SK2_LIMIT_FRAME_WIDTH  SK2_FRAME_MAX_WIDTH
#define SK2_LIMIT_FRAME_HEIGHT SK2_FRAME_MAX_HEIGHT
/* The default frame budget, bytes of one decoded frame: 64 MiB holds a 4096 x 3072 BGRA
 * colour frame (48 MiB), the largest a supported camera makes. */
#define SK2_LIMIT_FRAME_BYTES (64u << 20)
/* The smallest and largest budget the setters take. */
#define SK2_LIMIT_FRAME_BYTES_MIN (4u << 10)
#define SK2_LIMIT_FRAME_BYTES_MAX (128u << 20)
/* The most payload any frame header may announce and a recording may hold
 * (SK2_RECORDING_MAX_PAYLOAD), whatever the budget. */
#define SK2_LIMIT_PAYLOAD_MAX (256u << 20)
/* Bytes a stream message may carry beyond its payload (topic and frame header), and the slack
 * that covers the fixed overheads of small compressed frames. */
#define SK2_LIMIT_WIRE_SLACK (64u << 10)
/* Largest JSON payload of a control message (who, me, stats...), bytes. */
#define SK2_LIMIT_CONTROL_BYTES (64u << 10)
/* Largest frame of a control message the server reads at all; above it libzmq drops the
 * connection. Up to it the sender gets an error that names the size: 2 MiB is far above any
 * real request (the payload limit is 64 KiB) and bounds what each message a peer may have
 * queued at the server can cost. */
#define SK2_LIMIT_CONTROL_WIRE (2u << 20)

/* Decoded bytes of a frame of this format and size, or 0 if a dimension is 0 or above the
 * limits, or the format is unknown. */
SK2_EXPORT size_t sk2_limit_frame_bytes(sk2_pixel_format_t format, uint32_t width, uint32_t height);

/* The most payload bytes a frame within a budget of frame_bytes may be encoded into: no codec's
 * bound is above twice the pixels' bytes (JPEG's 4:4:4 bound for RGB) plus a fixed overhead.
 * Each frame is also checked against its own codec's bound, which is tighter. Never above
 * SK2_LIMIT_PAYLOAD_MAX. */
SK2_EXPORT size_t sk2_limit_payload_bytes(size_t frame_bytes);

/* The largest stream message (topic + header + payload) for a budget: what a client's SUB
 * socket reads at most (ZMQ_MAXMSGSIZE) and what a server publishes at most. */
SK2_EXPORT size_t sk2_limit_wire_bytes(size_t frame_bytes);

#ifdef __cplusplus
}
#endif
#endif
