/* Logging: one process-wide handler and level. The level is read on every call from many
 * threads, so it is atomic; the handler is set once at start-up (see log.h). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>

#include "log_internal.h"
#include "sk2/frame.h"

static void s_default_handler(void *arg, sk2_log_level_t level, const char *component,
                              const char *message);

static _Atomic int s_level = SK2_LOG_WARN;
static sk2_log_fn *s_handler = s_default_handler;
static void *s_handler_arg = NULL;

static void s_default_handler(void *arg, sk2_log_level_t level, const char *component,
                              const char *message)
{
    (void)arg;
    /* One fprintf per message: stdio locks the stream, so lines from threads do not mix. */
    fprintf(stderr, "sk2 %s: %s: %s\n", sk2_log_level_name(level), component, message);
}

void sk2_log_set_handler(sk2_log_fn *handler, void *arg)
{
    s_handler = handler ? handler : s_default_handler;
    s_handler_arg = handler ? arg : NULL;
}

void sk2_log_set_level(sk2_log_level_t level)
{
    if (level < SK2_LOG_ERROR)
        level = SK2_LOG_ERROR;
    if (level > SK2_LOG_TRACE)
        level = SK2_LOG_TRACE;
    atomic_store(&s_level, (int)level);
}

sk2_log_level_t sk2_log_level(void)
{
    return (sk2_log_level_t)atomic_load(&s_level);
}

const char *sk2_log_level_name(sk2_log_level_t level)
{
    static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
    if ((int)level < 0 || (int)level > SK2_LOG_TRACE)
        return "unknown";
    return names[level];
}

void sk2_log(sk2_log_level_t level, const char *component, const char *fmt, ...)
{
    if ((int)level > atomic_load(&s_level))
        return;
    char message[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    s_handler(s_handler_arg, level, component, message);
}

int sk2_ratelimit_pass(sk2_ratelimit_t *limit, int64_t interval_us, uint64_t *suppressed)
{
    int64_t now = sk2_clock_mono_us();
    if (now < limit->next_us) {
        limit->suppressed++;
        return 0;
    }
    if (suppressed)
        *suppressed = limit->suppressed;
    limit->suppressed = 0;
    limit->next_us = now + interval_us;
    return 1;
}
