/* Fuzzes the control-message parser (and, for `me` replies, the `me` parser; for commands, their
 * field checks; for clock exchanges, their payloads) with arbitrary multipart messages. Layout of
 * an input: byte 0 picks the frame count (0..3) and the sender, byte 1 the size of the first frame
 * (0..3 bytes), the rest is split between the frames. */
#include <stddef.h>
#include <stdint.h>

#include "proto/clock.h"
#include "proto/me.h"
#include "proto/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t count = data[0] & 3;
    sk2_msg_origin_t origin = (data[0] & 4) ? SK2_MSG_FROM_SERVER : SK2_MSG_FROM_CLIENT;
    size_t first = data[1] & 3;
    data += 2;
    size -= 2;
    if (first > size)
        first = size;
    size_t rest = size - first;
    const uint8_t *frames[3] = {data, data + first, data + first + rest / 2};
    size_t sizes[3] = {first, count == 3 ? rest / 2 : rest, rest - rest / 2};
    sk2_msg_t msg;
    char why[256];
    if (sk2_msg_parse(count, frames, sizes, origin, &msg, why, sizeof why) == 0) {
        if (msg.type == SK2_MSG_ME && msg.payload) {
            sk2_me_t *me = NULL;
            if (sk2_me_parse(msg.payload, &me, why, sizeof why) == 0) {
                for (size_t i = 0; i < me->device_count; i++)
                    (void)sk2_me_endpoint(&me->devices[i], "depth");
                sk2_me_destroy(&me);
            }
        }
        if (msg.type == SK2_MSG_CLOCK) {
            int64_t t1_us;
            (void)sk2_clock_request_parse(msg.payload, &t1_us, why, sizeof why);
        }
        if (msg.type == SK2_MSG_CLOCK_REPLY) {
            sk2_clock_reply_t reply;
            (void)sk2_clock_reply_parse(msg.payload, &reply, why, sizeof why);
        }
        if (msg.type == SK2_MSG_COMMAND && msg.payload) {
            bool id_ok = false;
            (void)sk2_msg_command_check(msg.payload, &id_ok, why, sizeof why);
        }
        sk2_msg_clear(&msg);
    }
    return 0;
}
