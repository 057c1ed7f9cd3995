/* Control messages: the byte-level rules of PROTOCOL.md ("Control endpoint") in one place.
 * The server answers anything this parser refuses with an error message carrying the reason,
 * so reasons are written for the person at the other end. */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "proto/msg.h"
#include "sk2/error.h"

const char *sk2_msg_type_name(int type)
{
    switch (type) {
    case SK2_MSG_ERROR:
        return "error";
    case SK2_MSG_PING:
        return "ping";
    case SK2_MSG_PONG:
        return "pong";
    case SK2_MSG_WHO:
        return "who";
    case SK2_MSG_ME:
        return "me";
    case SK2_MSG_STATS:
        return "stats";
    case SK2_MSG_STATS_REPLY:
        return "stats-reply";
    case SK2_MSG_REPLAY:
        return "replay";
    case SK2_MSG_REPLAY_REPLY:
        return "replay-reply";
    case SK2_MSG_COMMAND:
        return "command";
    case SK2_MSG_COMMAND_REPLY:
        return "command-reply";
    case SK2_MSG_FLOW:
        return "flow";
    case SK2_MSG_FLOW_REPLY:
        return "flow-reply";
    case SK2_MSG_CLOCK:
        return "clock";
    case SK2_MSG_CLOCK_REPLY:
        return "clock-reply";
    }
    return "unknown";
}

static bool s_is_from_client(sk2_msg_type_t type)
{
    return type == SK2_MSG_PING || type == SK2_MSG_WHO || type == SK2_MSG_STATS ||
           type == SK2_MSG_REPLAY || type == SK2_MSG_COMMAND || type == SK2_MSG_FLOW ||
           type == SK2_MSG_CLOCK;
}

void sk2_msg_clear(sk2_msg_t *msg)
{
    if (msg && msg->payload) {
        json_decref(msg->payload);
        msg->payload = NULL;
    }
}

int sk2_msg_parse(size_t count, const uint8_t *const *frames, const size_t *sizes,
                  sk2_msg_origin_t origin, sk2_msg_t *msg, char *why, size_t why_size)
{
    msg->payload = NULL;
    if (count < 1 || count > 2) {
        snprintf(why, why_size, "a message has 1 or 2 frames, not %zu", count);
        return SK2_EPROTO;
    }
    if (sizes[0] != 1) {
        snprintf(why, why_size, "the first frame must be exactly 1 byte, not %zu", sizes[0]);
        return SK2_EPROTO;
    }
    int type = frames[0][0];
    if (type > SK2_MSG_TYPE_LAST) {
        snprintf(why, why_size, "unknown message type 0x%02x", (unsigned)type);
        return SK2_EPROTO;
    }
    bool from_client = origin == SK2_MSG_FROM_CLIENT;
    if (s_is_from_client((sk2_msg_type_t)type) != from_client) {
        snprintf(why, why_size, "a %s message may only be sent by a %s", sk2_msg_type_name(type),
                 from_client ? "server" : "client");
        return SK2_EPROTO;
    }
    msg->type = (sk2_msg_type_t)type;
    if (count == 1)
        return 0;
    if (sizes[1] > SK2_MSG_MAX_PAYLOAD) {
        snprintf(why, why_size, "payload of %zu bytes exceeds the limit of %d bytes", sizes[1],
                 SK2_MSG_MAX_PAYLOAD);
        return SK2_ELIMIT;
    }
    /* jansson checks UTF-8 itself and refuses NUL bytes inside the text. */
    json_error_t error;
    msg->payload = json_loadb((const char *)frames[1], sizes[1], JSON_DECODE_ANY, &error);
    if (!msg->payload) {
        snprintf(why, why_size, "payload is not valid UTF-8 JSON: %s (at byte %d)", error.text,
                 error.position);
        return SK2_EPROTO;
    }
    return 0;
}

static bool s_is_printable_ascii(const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (text[i] <= ' ' || text[i] > '~')
            return false;
    return true;
}

int sk2_msg_command_check(const json_t *payload, bool *id_ok, char *why, size_t why_size)
{
    *id_ok = false;
    const json_t *id = json_object_get(payload, "id");
    if (!json_is_object(payload) || !json_is_string(id) || json_string_length(id) == 0 ||
        json_string_length(id) > SK2_MSG_COMMAND_ID_MAX ||
        !s_is_printable_ascii(json_string_value(id), json_string_length(id))) {
        snprintf(why, why_size,
                 "a command is an object with an \"id\" of 1..%d printable ASCII characters",
                 SK2_MSG_COMMAND_ID_MAX);
        return SK2_EPROTO;
    }
    *id_ok = true;
    const json_t *key = json_object_get(payload, "key");
    const json_t *device = json_object_get(payload, "device");
    const json_t *ttl = json_object_get(payload, "ttl_ms");
    const json_t *value = json_object_get(payload, "value");
    if (!json_is_string(key) || json_string_length(key) == 0 ||
        json_string_length(key) > SK2_MSG_COMMAND_KEY_MAX) {
        snprintf(why, why_size, "a command needs a \"key\" of 1..%d characters",
                 SK2_MSG_COMMAND_KEY_MAX);
        return SK2_EPROTO;
    }
    if (device && !json_is_string(device)) {
        snprintf(why, why_size, "\"device\" must be a device id (a string)");
        return SK2_EPROTO;
    }
    if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
                json_integer_value(ttl) > 600000)) {
        snprintf(why, why_size, "\"ttl_ms\" must be an integer 1..600000");
        return SK2_EPROTO;
    }
    if (value && !(json_is_null(value) || json_is_boolean(value) || json_is_number(value) ||
                   json_is_string(value))) {
        snprintf(why, why_size, "\"value\" must be a boolean, a number or a string");
        return SK2_EPROTO;
    }
    if (json_is_string(value) && json_string_length(value) > SK2_MSG_COMMAND_VALUE_MAX) {
        snprintf(why, why_size, "a string value may have at most %d bytes",
                 SK2_MSG_COMMAND_VALUE_MAX);
        return SK2_EPROTO;
    }
    return 0;
}

json_t *sk2_msg_error_payload(const char *reason)
{
    /* The original server sends code 400 with every error; keep it for old clients that log
     * it, though the protocol only promises `reason`. json_string refuses invalid UTF-8, so a
     * reason that quotes peer bytes falls back to a generic text. */
    json_t *text = json_string(reason);
    if (!text)
        text = json_string("bad request");
    return json_pack("{s:i, s:o}", "code", 400, "reason", text);
}

int sk2_msg_send(void *socket, bool delimiter, sk2_msg_type_t type, const json_t *payload)
{
    char *text = NULL;
    if (payload) {
        text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!text)
            return SK2_ENOMEM;
    }
    uint8_t type_byte = (uint8_t)type;
    int more = text ? ZMQ_SNDMORE : 0;
    int rc = 0;
    if (delimiter && zmq_send(socket, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        rc = SK2_EAGAIN;
    /* After the first frame of a multipart message is accepted, the rest always is. */
    if (rc == 0 && zmq_send(socket, &type_byte, 1, more | (delimiter ? 0 : ZMQ_DONTWAIT)) < 0)
        rc = SK2_EAGAIN;
    if (rc == 0 && text && zmq_send(socket, text, strlen(text), 0) < 0)
        rc = SK2_EAGAIN;
    free(text);
    return rc;
}
