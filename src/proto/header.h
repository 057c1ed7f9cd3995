/* The extended stream endpoint's wire format: topics that name a (stream, codec) pair, and the
 * fixed binary header in front of every frame's payload. Pure functions on buffers, so they can
 * be tested and fuzzed alone. Private to libsk2; docs/protocol.md describes the bytes. */
#ifndef SK2_PROTO_HEADER_H
#define SK2_PROTO_HEADER_H

#include <stddef.h>
#include <stdint.h>

#include "sk2/codec.h"
#include "sk2/device.h"
#include "sk2/frame.h"
#include "sk2/limits.h"

#define SK2_HEADER_SIZE    64                    /* bytes of a version-1 header */
#define SK2_HEADER_VERSION 1                     /* the version this library writes */
#define SK2_TOPIC_MAX      64                    /* longest topic, bytes */
#define SK2_PAYLOAD_MAX    SK2_LIMIT_PAYLOAD_MAX /* largest payload a header may announce */

typedef struct {
    sk2_stream_kind_t kind;      /* what the frame shows */
    sk2_pixel_format_t format;   /* pixel format after decoding */
    const sk2_codec_t *codec;    /* how the payload is encoded */
    uint32_t width;              /* pixels */
    uint32_t height;             /* pixels */
    uint32_t payload_size;       /* bytes of the payload frame */
    uint64_t sequence;           /* the device's frame counter for this stream */
    int64_t device_timestamp_us; /* device clock */
    int64_t capture_time_us;     /* wall clock at capture, microseconds since the epoch */
    int64_t send_time_us;        /* wall clock when the server sent it */
} sk2_header_t;

/* Writes the header's SK2_HEADER_SIZE bytes. Returns 0 or SK2_EINVAL (a codec without a wire
 * id, or an unknown kind or format). */
int sk2_header_write(const sk2_header_t *header, uint8_t out[SK2_HEADER_SIZE]);

/* The header of `frame` encoded with `codec` into payload_size bytes and sent at send_time_us
 * (wall clock): kind, format, size, sequence and times come from the frame. */
sk2_header_t sk2_header_of_frame(const sk2_frame_t *frame, const sk2_codec_t *codec,
                                 uint32_t payload_size, int64_t send_time_us);

/* Reads a header frame of `size` bytes. Returns 0, SK2_EPROTO (bad magic, version, size or a
 * field out of range) or SK2_EUNSUPPORTED (a codec this library does not have), with a
 * reason in why. */
int sk2_header_read(const uint8_t *in, size_t size, sk2_header_t *header, char *why,
                    size_t why_size);

/* Checks a header that sk2_header_read accepted against what its stream advertised
 * (`advertised`: the stream's record in `me` or in a recording; NULL when there is none) and
 * a frame budget (bytes of the decoded frame, include/sk2/limits.h), before anything is
 * allocated for the frame. Returns 0, SK2_EPROTO (kind, format or size differ from the
 * advertised stream), SK2_ECORRUPT (the payload is longer than its codec makes of such a
 * frame) or SK2_ELIMIT (the decoded frame would exceed the budget), with a reason in why. */
int sk2_header_check(const sk2_header_t *header, const sk2_stream_info_t *advertised,
                     size_t max_frame_bytes, char *why, size_t why_size);

/* Hops: each relay a frame passes through appends its wall-clock receive time to the header
 * (docs/protocol.md "Relays"). Bytes 56..57 (reserved in a server's header, so zero) count the
 * hops; their times follow the 64 fixed bytes, 8 bytes each, and the header size grows to match.
 * At most SK2_HEADER_HOPS_MAX are kept: a relay further down forwards the list unchanged. */
#define SK2_HEADER_HOPS_MAX 16

/* The hop count and up to `max` receive times (microseconds since 1970) of a header that
 * sk2_header_read accepted. A count the header's size cannot hold reads as no hops. */
size_t sk2_header_hops(const uint8_t *in, size_t size, int64_t *times_us, size_t max);

/* Writes into out (out_size bytes, at least size + 8) the header `in` with one more hop,
 * received at receive_time_us, after the ones it has (fields a later revision appends after
 * the hop list stay after it). Returns the new size, or 0 when the list is full, out is too
 * small or `in` is no header. Every other byte is kept as it was. */
size_t sk2_header_add_hop(const uint8_t *in, size_t size, int64_t receive_time_us, uint8_t *out,
                          size_t out_size);

/* The stable number a codec travels as (1..255), or 0 if it has none. */
uint8_t sk2_codec_wire_id(const sk2_codec_t *codec);
/* The codec with that wire number, or NULL. */
const sk2_codec_t *sk2_codec_from_wire_id(uint8_t id);

/* Formats the topic of a (stream, codec) pair, "depth/rvl/", into out. Returns its length, or
 * 0 if it does not fit or the kind is unknown. */
size_t sk2_topic_format(sk2_stream_kind_t kind, const sk2_codec_t *codec, char *out, size_t size);

/* Parses a topic (not NUL-terminated). Returns 0, SK2_EPROTO (not of the form kind/codec/) or
 * SK2_EUNSUPPORTED (an unknown kind or codec). */
int sk2_topic_parse(const uint8_t *topic, size_t size, sk2_stream_kind_t *kind,
                    const sk2_codec_t **codec);

/* The stream kind called `name` ("depth", "ir", "color"), or 0. */
sk2_stream_kind_t sk2_stream_kind_from_name(const char *name, size_t length);

#endif
