/* File reading helpers shared by the readers of files (sk2 recordings, MCAP). Private to
 * libsk2. */
#ifndef SK2_CORE_IO_H
#define SK2_CORE_IO_H

#include <stddef.h>
#include <stdint.h>

/* Reads exactly size bytes of fd at offset, across short reads and signals. Returns 0,
 * SK2_ESYS (errno says why) or SK2_ECORRUPT (the file ends first; *end, if not NULL, is the
 * offset where it ended). */
int sk2_pread_exact(int fd, void *buf, size_t size, uint64_t offset, uint64_t *end);

#endif
