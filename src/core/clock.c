/* Clocks: wall time for capture timestamps that travel between hosts, monotonic time for
 * everything that measures an interval on one host. */
#include <time.h>

#include "sk2/frame.h"

static int64_t s_read(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t sk2_clock_wall_us(void)
{
    return s_read(CLOCK_REALTIME);
}

int64_t sk2_clock_mono_us(void)
{
    return s_read(CLOCK_MONOTONIC);
}
