/* File reading helpers (io.h). */
#include "io.h"

#include <errno.h>
#include <sys/types.h>
#include <unistd.h>

#include "sk2/error.h"

int sk2_pread_exact(int fd, void *buf, size_t size, uint64_t offset, uint64_t *end)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = pread(fd, (uint8_t *)buf + done, size - done, (off_t)(offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return SK2_ESYS;
        if (n == 0) {
            if (end)
                *end = offset + done;
            return SK2_ECORRUPT;
        }
        done += (size_t)n;
    }
    return 0;
}
