/* The library's own logging calls. Private to libsk2. */
#ifndef SK2_LOG_INTERNAL_H
#define SK2_LOG_INTERNAL_H

#include <stdint.h>

#include "sk2/log.h"

/* Formats and hands a message to the handler if `level` is enabled. Any thread. */
void sk2_log(sk2_log_level_t level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A rate limit for one repeated message: at most one message per interval. Keep one per call
 * site (static), used from one thread. */
typedef struct {
    int64_t next_us;     /* monotonic time before which messages are suppressed */
    uint64_t suppressed; /* messages suppressed since the last one let through */
} sk2_ratelimit_t;

/* True if a message may go out now; then *suppressed (if not NULL) receives how many were
 * held back since the previous one. */
int sk2_ratelimit_pass(sk2_ratelimit_t *limit, int64_t interval_us, uint64_t *suppressed);

#define SK2_ERROR(component, ...) sk2_log(SK2_LOG_ERROR, component, __VA_ARGS__)
#define SK2_WARN(component, ...)  sk2_log(SK2_LOG_WARN, component, __VA_ARGS__)
#define SK2_INFO(component, ...)  sk2_log(SK2_LOG_INFO, component, __VA_ARGS__)
#define SK2_DEBUG(component, ...) sk2_log(SK2_LOG_DEBUG, component, __VA_ARGS__)
#define SK2_TRACE(component, ...)                                                                  \
    do {                                                                                           \
        if (sk2_log_level() >= SK2_LOG_TRACE)                                                      \
            sk2_log(SK2_LOG_TRACE, component, __VA_ARGS__);                                        \
    } while (0)

#endif
