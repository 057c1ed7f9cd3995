/* Random bytes from the kernel (see random.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/random.h"
#include "sk2/error.h"

int sk2_random_bytes(void *buf, size_t size)
{
    uint8_t *bytes = buf;
    size_t got = 0;
    while (got < size) {
        ssize_t n = getrandom(bytes + got, size - got, 0);
        if (n > 0)
            got += (size_t)n;
        else if (n < 0 && errno != EINTR)
            break;
    }
    if (got == size)
        return 0;

    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return SK2_ESYS;
    got = 0;
    while (got < size) {
        ssize_t n = read(fd, bytes + got, size - got);
        if (n > 0)
            got += (size_t)n;
        else if (n == 0 || errno != EINTR)
            break;
    }
    close(fd);
    return got == size ? 0 : SK2_ESYS;
}
