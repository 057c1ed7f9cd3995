/* A backend's capture thread, the part every backend needs the same way. Private to libsk2
 * (and to the benchmark's own backend).
 *
 * Start runs the thread with every signal blocked: signals belong to the application (see
 * STYLE.md), which may wait for them in one thread of its choosing. Stop sets a flag, wakes the
 * thread and joins it, so when it returns the thread has ended and emits nothing more, which
 * is what sk2_device_backend_t.stop promises.
 *
 * A thread waits for absolute deadlines on the monotonic clock with a timed wait on a
 * condition variable rather than a sleep, so that stop needs no more than a wake-up however
 * long the wait. sk2_device_thread_start_paced() runs a function on the grid start + k *
 * period, so the rate does not drift with the time each call takes.
 *
 * Camera backends, which poll their driver instead, read the flag with
 * sk2_device_thread_should_stop() and tell loss by silence with the stall clock. */
#ifndef SK2_DEVICE_THREAD_H
#define SK2_DEVICE_THREAD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* How long a camera may send nothing while streams are on before it counts as lost. */
#define SK2_DEVICE_STALL_US 3000000

/* One call on the pacing grid; false ends the thread (it then waits for nothing). */
typedef bool(sk2_device_tick_fn)(void *arg);

/* Embedded in a backend's state; the fields are the helper's, read them through the calls. */
typedef struct {
    pthread_t thread;        /* while started */
    pthread_mutex_t lock;    /* pairs should_stop with wake */
    pthread_cond_t wake;     /* on CLOCK_MONOTONIC; signalled by stop */
    atomic_bool should_stop; /* set by stop under lock, read by the thread */
    int64_t start_ns;        /* monotonic time of the last start */
    int64_t last_frame_us;   /* stall clock (monotonic): the thread's only */
    int64_t period_ns;       /* paced threads: the grid's step, 0 = no waiting */
    sk2_device_tick_fn *tick;
    void *tick_arg;
} sk2_device_thread_t;

/* Prepares a stopped thread. Returns 0 or SK2_ENOMEM (nothing to undo then). */
int sk2_device_thread_init(sk2_device_thread_t *self);

/* Frees what init made. Never while started. */
void sk2_device_thread_fini(sk2_device_thread_t *self);

/* Notes the start time, restarts the stall clock and runs run(arg) on a new thread. Returns 0
 * or SK2_ESYS. */
int sk2_device_thread_start(sk2_device_thread_t *self, void *(*run)(void *), void *arg);

/* Like start, with a thread that calls tick(arg) at once and then on the grid start + k * 1/fps
 * (fps 0: again at once, as fast as it goes) until stop or until tick returns false. After a
 * hiccup at most one late call is made at once; if a whole period or more was lost, the grid
 * points already missed are skipped instead of calling in a burst to catch up. */
int sk2_device_thread_start_paced(sk2_device_thread_t *self, double fps, sk2_device_tick_fn *tick,
                                  void *arg);

/* The pacing rule, apart from any clock so that it can be tested on made-up times: the grid
 * point after `deadline_ns` for a call that ended at `now_ns`. Normally deadline + period (the
 * time a call takes does not push the grid); when a whole period or more was lost, the points
 * already missed are skipped, so at most one late call is made at once and never a burst. A
 * period of 0 (as fast as possible) returns now_ns. */
int64_t sk2_device_thread_next_deadline_ns(int64_t deadline_ns, int64_t period_ns, int64_t now_ns);

/* Asks the thread to stop and returns when it has ended. Only when started. */
void sk2_device_thread_stop(sk2_device_thread_t *self);

/* Whether stop was asked. Any thread. */
bool sk2_device_thread_should_stop(sk2_device_thread_t *self);

/* Waits until the monotonic clock reaches deadline_ns (sk2_device_thread_now_ns) or stop is
 * asked; false if the thread should stop. A deadline in the past returns at once. */
bool sk2_device_thread_wait_until(sk2_device_thread_t *self, int64_t deadline_ns);

/* The monotonic time of the last start, in ns. */
int64_t sk2_device_thread_start_ns(const sk2_device_thread_t *self);

/* The monotonic clock, in ns. */
int64_t sk2_device_thread_now_ns(void);

/* Restarts the stall clock: a frame came, or a stream was just turned on. Thread only. */
void sk2_device_thread_note_frame(sk2_device_thread_t *self);

/* The reason to report if nothing came for SK2_DEVICE_STALL_US since the stall clock was last
 * restarted, else NULL. Thread only; ask only while streams are on. */
const char *sk2_device_thread_stall(const sk2_device_thread_t *self);

#endif
