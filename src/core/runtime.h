/* Process-wide rules for library threads. Private to libsk2. */
#ifndef SK2_CORE_RUNTIME_H
#define SK2_CORE_RUNTIME_H

/* Blocks every signal in the calling library thread, so that signals reach the application's
 * threads (and interrupt its waits) rather than a worker it does not know about. */
void sk2_runtime_block_signals(void);

#endif
