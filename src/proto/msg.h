/* Control messages of the streamkinect2 protocol (version 1): one type byte, then optionally a
 * UTF-8 JSON payload. Parsing works on plain buffers so it can be tested and fuzzed alone;
 * sk2_msg_send is the one place that puts a message on a ZeroMQ socket. Private to libsk2. */
#ifndef SK2_PROTO_MSG_H
#define SK2_PROTO_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "sk2/limits.h"

/* Largest JSON payload accepted in a control message, bytes. A `me` for 256 devices is far
 * smaller; anything bigger is refused with an error rather than parsed. */
#define SK2_MSG_MAX_PAYLOAD SK2_LIMIT_CONTROL_BYTES
/* Largest message libzmq will even read off a control connection: above this the connection
 * is dropped by libzmq itself, below it the sender at least gets an error reply. */
#define SK2_MSG_MAX_WIRE SK2_LIMIT_CONTROL_WIRE

typedef enum {
    SK2_MSG_ERROR = 0x00,
    SK2_MSG_PING = 0x01,
    SK2_MSG_PONG = 0x02,
    SK2_MSG_WHO = 0x03,
    SK2_MSG_ME = 0x04,
    /* sk2's additions (a version-1 server answers them with an error): */
    SK2_MSG_STATS = 0x05,         /* client asks for counters */
    SK2_MSG_STATS_REPLY = 0x06,   /* server answers with them */
    SK2_MSG_REPLAY = 0x07,        /* client controls a replay device: {"device", "action", ...} */
    SK2_MSG_REPLAY_REPLY = 0x08,  /* server answers with where the replay is */
    SK2_MSG_COMMAND = 0x09,       /* client sets a key: {"id", "device", "key", "value", ...} */
    SK2_MSG_COMMAND_REPLY = 0x0a, /* server answers once per id: {"id", "ok", "value"|"error"} */
    SK2_MSG_FLOW = 0x0b,          /* client says what it paused, its queue bound and drops */
    SK2_MSG_FLOW_REPLY = 0x0c,    /* server acknowledges, with how long it remembers it */
    SK2_MSG_CLOCK = 0x0d,         /* client's send time: {"t1": µs}; sent only to servers whose
                                     `me` says "clock": 1 */
    SK2_MSG_CLOCK_REPLY = 0x0e,   /* {"t1", "t2", "t3", "synced", ...} in the server's clock */
} sk2_msg_type_t;

/* The highest type byte this build knows; anything above is an unknown type. */
#define SK2_MSG_TYPE_LAST SK2_MSG_CLOCK_REPLY

/* Limits on a command (docs/protocol.md, "The `command` request"): its id is printable ASCII,
 * its key a short name, a string value (label, location, recording name) bounded. */
#define SK2_MSG_COMMAND_ID_MAX    64
#define SK2_MSG_COMMAND_KEY_MAX   32
#define SK2_MSG_COMMAND_VALUE_MAX 256

/* Who sent the message being parsed: each type may travel only one way. */
typedef enum {
    SK2_MSG_FROM_CLIENT = 1,
    SK2_MSG_FROM_SERVER = 2,
} sk2_msg_origin_t;

typedef struct {
    sk2_msg_type_t type; /* the type byte */
    json_t *payload;     /* parsed payload, owned; NULL when the message had one frame */
} sk2_msg_t;

/* Parses a message of `count` frames. On success fills *msg (free with sk2_msg_clear) and
 * returns 0. Otherwise returns SK2_EPROTO or SK2_ELIMIT and writes a reason fit to send back
 * to the peer into why (always NUL-terminated). Never trusts sizes or bytes. */
int sk2_msg_parse(size_t count, const uint8_t *const *frames, const size_t *sizes,
                  sk2_msg_origin_t origin, sk2_msg_t *msg, char *why, size_t why_size);

/* Frees the payload; safe to call twice. */
void sk2_msg_clear(sk2_msg_t *msg);

/* The payload of an error reply: {"code": 400, "reason": reason}. Owned by the caller. */
json_t *sk2_msg_error_payload(const char *reason);

/* "error", "ping", "pong", "who", "me", "stats", "stats-reply", "replay", "replay-reply",
 * "command", "command-reply", "flow", "flow-reply", "clock", "clock-reply" or "unknown". */
const char *sk2_msg_type_name(int type);

/* Checks the fields every command must have: "id" (1..SK2_MSG_COMMAND_ID_MAX printable
 * ASCII bytes), "key" (1..SK2_MSG_COMMAND_KEY_MAX bytes), optional "device" (a string of at most
 * SK2_DEVICE_ID_MAX bytes, checked by the caller's look-up), optional "ttl_ms" (1..600000) and
 * optional "value" (null, a boolean, a number or a string of at most SK2_MSG_COMMAND_VALUE_MAX
 * bytes). Returns 0 or SK2_EPROTO with a reason in why. The id alone may be valid when the rest
 * is not: *id_ok says whether the id can be used to answer. */
int sk2_msg_command_check(const json_t *payload, bool *id_ok, char *why, size_t why_size);

/* Sends one control message on a ZeroMQ socket (a void * from libzmq). With `delimiter`, an
 * empty frame goes first (a DEALER talking to a REP). payload may be NULL. Returns 0,
 * SK2_EAGAIN (would block: not sent) or SK2_ENOMEM. */
int sk2_msg_send(void *socket, bool delimiter, sk2_msg_type_t type, const json_t *payload);

#endif
