/* Process-wide rules for the threads libsk2 starts: they take no signals, which belong to the
 * application. Plain pthreads; the ZeroMQ side of process set-up is in proto/socket.c. */
#include <pthread.h>
#include <signal.h>

#include "core/runtime.h"

void sk2_runtime_block_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}
