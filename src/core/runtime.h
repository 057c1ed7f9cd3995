/* Process-wide set-up of the libraries sk2 runs on. Private to libsk2. */
#ifndef SK2_CORE_RUNTIME_H
#define SK2_CORE_RUNTIME_H

/* Called by every constructor that uses ZeroMQ; does its work once per process. Keeps CZMQ
 * from installing SIGINT/SIGTERM handlers: signals belong to the application. */
void sk2_runtime_init(void);

#endif
