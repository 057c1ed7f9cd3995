/* Process-wide set-up. CZMQ, on first use, would otherwise catch SIGINT and SIGTERM for the
 * whole process; a library has no business doing that, so sk2 switches it off before any
 * socket exists. */
#include <pthread.h>
#include <signal.h>

#include <czmq.h>

#include "core/runtime.h"

static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    zsys_handler_set(NULL);
    zsys_init();
}

void sk2_runtime_init(void)
{
    pthread_once(&s_once, s_init);
}

void sk2_runtime_block_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}
