/* One list of error codes for the whole library.
 *
 * Every function that can fail returns int: 0 on success or one of the negative SK2_E* codes
 * below. The numbers are part of the ABI and never change; new codes are only appended. */
#ifndef SK2_ERROR_H
#define SK2_ERROR_H

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* XX(name, number, message): the single source of truth for codes and their text. */
#define SK2_ERROR_MAP(XX)                                                                          \
    XX(EINVAL, -1, "invalid argument")                                                             \
    XX(ENOMEM, -2, "out of memory")                                                                \
    XX(EPROTO, -3, "protocol error")                                                               \
    XX(ELIMIT, -4, "input exceeds a limit")                                                        \
    XX(ETIMEDOUT, -5, "timed out")                                                                 \
    XX(ENOTFOUND, -6, "not found")                                                                 \
    XX(EBIND, -7, "cannot bind endpoint")                                                          \
    XX(ECONNECT, -8, "cannot connect to endpoint")                                                 \
    XX(ESTATE, -9, "operation not allowed in the current state")                                   \
    XX(ECORRUPT, -10, "corrupt or truncated data")                                                 \
    XX(EUNSUPPORTED, -11, "not supported")                                                         \
    XX(ENOSPC, -12, "output buffer too small")                                                     \
    XX(EDEVICE, -13, "device failure")                                                             \
    XX(EAGAIN, -14, "resource temporarily unavailable")                                            \
    XX(EINTR, -15, "interrupted")                                                                  \
    XX(ESYS, -16, "system call failed")                                                            \
    XX(ESERVER, -17, "server answered with an error")                                              \
    XX(EEXIST, -18, "already exists")                                                              \
    XX(ELOST, -19, "peer lost")                                                                    \
    XX(EAUTH, -20, "authentication failed (key refused, or not the server's key)")                 \
    XX(EKEYCHANGED, -21, "the server's key differs from the one pinned for its name")              \
    XX(EINSECURE, -22, "would be reachable from the network without a token")

typedef enum {
    SK2_OK = 0,
#define SK2_ERROR_ENUM(name, num, msg) SK2_##name = (num),
    SK2_ERROR_MAP(SK2_ERROR_ENUM)
#undef SK2_ERROR_ENUM
} sk2_error_t;

/* A static, human-readable message for an SK2_E* code (or "success" for 0, "unknown error"
 * for anything else). Never returns NULL. Any thread. */
SK2_EXPORT const char *sk2_strerror(int code);

/* The symbolic name of a code ("SK2_EPROTO"), or "SK2_UNKNOWN". Any thread. */
SK2_EXPORT const char *sk2_error_name(int code);

#ifdef __cplusplus
}
#endif
#endif
