/* Random bytes from the kernel, for ids and secrets (device ids, the gateway's token). Private
 * to libsk2. */
#ifndef SK2_CORE_RANDOM_H
#define SK2_CORE_RANDOM_H

#include <stddef.h>

/* Fills buf with size random bytes: getrandom(2) first, /dev/urandom for kernels or sandboxes
 * without it. Returns 0 or SK2_ESYS (no random source). */
int sk2_random_bytes(void *buf, size_t size);

#endif
