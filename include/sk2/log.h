/* Logging. The library never writes to stdout: it hands messages to one process-wide handler.
 * The default handler writes warnings and errors to stderr. Each message starts with the
 * component that produced it ("server", "client", "mock", ...). */
#ifndef SK2_LOG_H
#define SK2_LOG_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SK2_LOG_ERROR = 0,
    SK2_LOG_WARN = 1,
    SK2_LOG_INFO = 2,
    SK2_LOG_DEBUG = 3,
    SK2_LOG_TRACE = 4, /* per-frame detail */
} sk2_log_level_t;

/* A log handler. Called from whichever library thread logs, possibly concurrently; it must be
 * thread-safe. `component` and `message` are valid only during the call. */
typedef void(sk2_log_fn)(void *arg, sk2_log_level_t level, const char *component,
                         const char *message);

/* Replaces the handler (NULL restores the default stderr handler). Call it before starting
 * servers or clients: it is not synchronised with logging threads. */
SK2_EXPORT void sk2_log_set_handler(sk2_log_fn *handler, void *arg);

/* Messages above `level` are discarded before formatting. Any thread. */
SK2_EXPORT void sk2_log_set_level(sk2_log_level_t level);

/* The current level. Any thread. */
SK2_EXPORT sk2_log_level_t sk2_log_level(void);

/* "error", "warn", "info", "debug", "trace". */
SK2_EXPORT const char *sk2_log_level_name(sk2_log_level_t level);

#ifdef __cplusplus
}
#endif
#endif
