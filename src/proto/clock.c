/* The clock exchange's payloads (clock.h). The times are plain JSON integers: µs since 1970
 * fit in 53 bits until the year 2255, so any JSON reader keeps them exact. The kernel's view
 * of the clock's discipline is read here too, since it goes into the reply and nowhere else:
 * ntp_adjtime with no modes set only reads, so it works unprivileged and costs one system
 * call, where asking chronyc or a PTP daemon would mean spawning a process per reply. */
#include <stdio.h>
#include <sys/timex.h>

#include "proto/clock.h"
#include "sk2/error.h"

static bool s_time_ok(int64_t us)
{
    return us >= 0 && us <= SK2_CLOCK_TIME_MAX;
}

static int s_time(const json_t *payload, const char *name, int64_t *out, char *why, size_t why_size)
{
    const json_t *value = json_object_get(payload, name);
    if (!json_is_integer(value) || !s_time_ok(json_integer_value(value))) {
        snprintf(why, why_size, "clock: \"%s\" must be an integer from 0 to 2^53 (µs since 1970)",
                 name);
        return SK2_EPROTO;
    }
    *out = json_integer_value(value);
    return 0;
}

json_t *sk2_clock_request_payload(int64_t t1_us)
{
    return s_time_ok(t1_us) ? json_pack("{s:I}", "t1", (json_int_t)t1_us) : NULL;
}

int sk2_clock_request_parse(const json_t *payload, int64_t *t1_us, char *why, size_t why_size)
{
    if (!json_is_object(payload)) {
        snprintf(why, why_size, "clock: the payload must be an object with \"t1\"");
        return SK2_EPROTO;
    }
    return s_time(payload, "t1", t1_us, why, why_size);
}

json_t *sk2_clock_reply_payload(const sk2_clock_reply_t *reply)
{
    if (!s_time_ok(reply->t1_us) || !s_time_ok(reply->t2_us) || !s_time_ok(reply->t3_us))
        return NULL;
    json_t *payload = json_pack("{s:I, s:I, s:I}", "t1", (json_int_t)reply->t1_us, "t2",
                                (json_int_t)reply->t2_us, "t3", (json_int_t)reply->t3_us);
    const sk2_clock_discipline_t *d = &reply->discipline;
    if (payload && d->is_known &&
        (json_object_set_new(payload, "synced", json_boolean(d->is_synced)) != 0 ||
         json_object_set_new(payload, "maxerror_us", json_integer(d->maxerror_us)) != 0 ||
         json_object_set_new(payload, "esterror_us", json_integer(d->esterror_us)) != 0)) {
        json_decref(payload);
        payload = NULL;
    }
    return payload;
}

static bool s_error_ok(const json_t *value)
{
    return json_is_integer(value) && json_integer_value(value) >= -1 &&
           json_integer_value(value) <= SK2_CLOCK_ERROR_MAX;
}

int sk2_clock_reply_parse(const json_t *payload, sk2_clock_reply_t *reply, char *why,
                          size_t why_size)
{
    *reply = (sk2_clock_reply_t){.discipline = {.maxerror_us = -1, .esterror_us = -1}};
    if (!json_is_object(payload)) {
        snprintf(why, why_size, "clock reply: the payload must be an object");
        return SK2_EPROTO;
    }
    int rc = s_time(payload, "t1", &reply->t1_us, why, why_size);
    if (rc == 0)
        rc = s_time(payload, "t2", &reply->t2_us, why, why_size);
    if (rc == 0)
        rc = s_time(payload, "t3", &reply->t3_us, why, why_size);
    if (rc == 0 && reply->t3_us < reply->t2_us) {
        snprintf(why, why_size, "clock reply: \"t3\" (sent) is before \"t2\" (received)");
        rc = SK2_EPROTO;
    }
    if (rc != 0)
        return rc;
    const json_t *synced = json_object_get(payload, "synced");
    const json_t *maxerror = json_object_get(payload, "maxerror_us");
    const json_t *esterror = json_object_get(payload, "esterror_us");
    if (json_is_boolean(synced) && s_error_ok(maxerror) && s_error_ok(esterror))
        reply->discipline = (sk2_clock_discipline_t){
            .is_known = true,
            .is_synced = json_is_true(synced),
            .maxerror_us = json_integer_value(maxerror),
            .esterror_us = json_integer_value(esterror),
        };
    return 0;
}

void sk2_clock_discipline_read(sk2_clock_discipline_t *discipline)
{
    struct timex tx = {.modes = 0};
    int state = ntp_adjtime(&tx);
    if (state < 0) {
        *discipline = (sk2_clock_discipline_t){.maxerror_us = -1, .esterror_us = -1};
        return;
    }
    /* maxerror and esterror are in µs; the kernel caps maxerror at 16 s (NTP_PHASE_LIMIT). */
    int64_t maxerror = tx.maxerror < 0 || tx.maxerror > SK2_CLOCK_ERROR_MAX ? -1 : tx.maxerror;
    int64_t esterror = tx.esterror < 0 || tx.esterror > SK2_CLOCK_ERROR_MAX ? -1 : tx.esterror;
    *discipline = (sk2_clock_discipline_t){
        .is_known = true,
        .is_synced = !(tx.status & STA_UNSYNC) && state != TIME_ERROR,
        .maxerror_us = maxerror,
        .esterror_us = esterror,
    };
}
