/* Process-wide set-up of the libraries sk2 runs on. Private to libsk2. */
#ifndef SK2_CORE_RUNTIME_H
#define SK2_CORE_RUNTIME_H

/* Called by every constructor that uses ZeroMQ; does its work once per process. Keeps CZMQ
 * from installing SIGINT/SIGTERM handlers: signals belong to the application. */
void sk2_runtime_init(void);

/* Blocks every signal in the calling library thread, so that signals reach the application's
 * threads (and interrupt its waits) rather than a worker it does not know about. */
void sk2_runtime_block_signals(void);

#endif
