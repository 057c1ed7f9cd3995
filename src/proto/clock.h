/* The clock exchange (docs/protocol.md, "The `clock` request"): the payloads of messages 0x0d
 * and 0x0e, built and checked on plain JSON so that they can be tested and fuzzed alone. Four
 * times make one exchange, all µs since 1970: t1 the client's send time, t2 and t3 the
 * server's receive and send times (in the clock the server reports, which --clock-offset-ms
 * shifts), t4 the client's receive time, which never travels. Private to libsk2. */
#ifndef SK2_PROTO_CLOCK_H
#define SK2_PROTO_CLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* The bound of every time on the wire, µs: 2^53, the largest integer a JSON reader that keeps
 * numbers as doubles holds exactly (year 2255); a negative time is refused too. */
#define SK2_CLOCK_TIME_MAX (INT64_C(1) << 53)
/* The bound of maxerror_us and esterror_us: the kernel caps its own at 16 s. */
#define SK2_CLOCK_ERROR_MAX INT64_C(100000000)

/* How the server's clock is kept, as the kernel says (adjtimex): synced is whether a time
 * daemon (chrony, ntpd, ptp4l with phc2sys) disciplines it; the errors are the kernel's
 * maximum and estimated error, µs, or -1 when unknown. */
typedef struct {
    bool is_known;       /* false: the server did not say */
    bool is_synced;      /* disciplined: STA_UNSYNC clear and the state not TIME_ERROR */
    int64_t maxerror_us; /* the kernel's maximum error, -1 unknown */
    int64_t esterror_us; /* the kernel's estimated error, -1 unknown */
} sk2_clock_discipline_t;

typedef struct {
    int64_t t1_us;                     /* the client's send time, echoed */
    int64_t t2_us;                     /* the server's receive time */
    int64_t t3_us;                     /* the server's send time */
    sk2_clock_discipline_t discipline; /* the server's clock */
} sk2_clock_reply_t;

/* {"t1": t1_us}; NULL when out of memory or t1_us out of bounds. Owned by the caller. */
json_t *sk2_clock_request_payload(int64_t t1_us);

/* Checks a request payload: an object with an integer "t1" in 0..SK2_CLOCK_TIME_MAX (other
 * fields ignored). Returns 0 and *t1_us, or SK2_EPROTO with a reason in why. */
int sk2_clock_request_parse(const json_t *payload, int64_t *t1_us, char *why, size_t why_size);

/* The reply payload: t1, t2, t3 and, when discipline->is_known, "synced", "maxerror_us" and
 * "esterror_us". NULL when out of memory or a time is out of bounds. Owned by the caller. */
json_t *sk2_clock_reply_payload(const sk2_clock_reply_t *reply);

/* Checks a reply payload: integer t1, t2, t3 in 0..SK2_CLOCK_TIME_MAX with t2 <= t3, and, if
 * present, a boolean "synced" and errors in -1..SK2_CLOCK_ERROR_MAX (anything else there makes
 * the discipline unknown, not the reply invalid). Returns 0 or SK2_EPROTO with a reason. */
int sk2_clock_reply_parse(const json_t *payload, sk2_clock_reply_t *reply, char *why,
                          size_t why_size);

/* What the kernel says of this host's clock (ntp_adjtime with no modes: a read, which needs no
 * privilege). A host without it reports is_known false. */
void sk2_clock_discipline_read(sk2_clock_discipline_t *discipline);

#endif
