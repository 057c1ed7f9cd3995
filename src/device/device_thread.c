/* A backend's capture thread: start with signals blocked, stop by flag and join, waits on
 * absolute monotonic deadlines, a pacing grid and a stall clock. See device_thread.h. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <time.h>

#include "device/device_thread.h"
#include "sk2/error.h"
#include "sk2/frame.h"

/* Longest period we pace to; keeps absurdly small rates from overflowing the arithmetic. */
#define S_PERIOD_MAX_NS (3600LL * 1000000000LL)

int64_t sk2_device_thread_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sk2_device_thread_init(sk2_device_thread_t *self)
{
    *self = (sk2_device_thread_t){0};
    atomic_init(&self->should_stop, false);
    if (pthread_mutex_init(&self->lock, NULL) != 0)
        return SK2_ENOMEM;
    pthread_condattr_t attr;
    bool ok = pthread_condattr_init(&attr) == 0;
    if (ok) {
        /* Deadlines are monotonic: a wall clock step must not stall or rush the capture. */
        ok = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&self->wake, &attr) == 0;
        pthread_condattr_destroy(&attr);
    }
    if (!ok) {
        pthread_mutex_destroy(&self->lock);
        return SK2_ENOMEM;
    }
    return 0;
}

void sk2_device_thread_fini(sk2_device_thread_t *self)
{
    pthread_cond_destroy(&self->wake);
    pthread_mutex_destroy(&self->lock);
}

int sk2_device_thread_start(sk2_device_thread_t *self, void *(*run)(void *), void *arg)
{
    atomic_store(&self->should_stop, false);
    self->start_ns = sk2_device_thread_now_ns();
    self->last_frame_us = self->start_ns / 1000;
    sigset_t all;
    sigset_t old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&self->thread, NULL, run, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return rc == 0 ? 0 : SK2_ESYS;
}

void sk2_device_thread_stop(sk2_device_thread_t *self)
{
    /* Set under the lock so that a thread between its check and its wait cannot miss it. */
    pthread_mutex_lock(&self->lock);
    atomic_store(&self->should_stop, true);
    pthread_cond_signal(&self->wake);
    pthread_mutex_unlock(&self->lock);
    pthread_join(self->thread, NULL);
}

bool sk2_device_thread_should_stop(sk2_device_thread_t *self)
{
    return atomic_load(&self->should_stop);
}

bool sk2_device_thread_wait_until(sk2_device_thread_t *self, int64_t deadline_ns)
{
    struct timespec deadline = {
        .tv_sec = (time_t)(deadline_ns / 1000000000),
        .tv_nsec = (long)(deadline_ns % 1000000000),
    };
    pthread_mutex_lock(&self->lock);
    while (!atomic_load(&self->should_stop) && sk2_device_thread_now_ns() < deadline_ns) {
        int rc = pthread_cond_timedwait(&self->wake, &self->lock, &deadline);
        /* Anything but a wake-up or a timeout means the wait cannot work: go on rather than
         * spin, and let the next deadline try again. */
        if (rc != 0 && rc != ETIMEDOUT)
            break;
    }
    bool should_run = !atomic_load(&self->should_stop);
    pthread_mutex_unlock(&self->lock);
    return should_run;
}

int64_t sk2_device_thread_start_ns(const sk2_device_thread_t *self)
{
    return self->start_ns;
}

void sk2_device_thread_note_frame(sk2_device_thread_t *self)
{
    self->last_frame_us = sk2_clock_mono_us();
}

const char *sk2_device_thread_stall(const sk2_device_thread_t *self)
{
    return sk2_clock_mono_us() - self->last_frame_us > SK2_DEVICE_STALL_US ? "no frames for 3 s"
                                                                           : NULL;
}

int64_t sk2_device_thread_next_deadline_ns(int64_t deadline_ns, int64_t period_ns, int64_t now_ns)
{
    if (period_ns <= 0)
        return now_ns;
    deadline_ns += period_ns;
    int64_t late_ns = now_ns - deadline_ns;
    if (late_ns >= period_ns)
        deadline_ns += late_ns / period_ns * period_ns;
    return deadline_ns;
}

static void *s_paced(void *arg)
{
    sk2_device_thread_t *self = arg;
    int64_t deadline_ns = self->start_ns;
    while (sk2_device_thread_wait_until(self, deadline_ns)) {
        if (!self->tick(self->tick_arg))
            break;
        deadline_ns = sk2_device_thread_next_deadline_ns(deadline_ns, self->period_ns,
                                                         sk2_device_thread_now_ns());
    }
    return NULL;
}

int sk2_device_thread_start_paced(sk2_device_thread_t *self, double fps, sk2_device_tick_fn *tick,
                                  void *arg)
{
    double period = fps > 0 ? 1e9 / fps : 0;
    self->period_ns = period > (double)S_PERIOD_MAX_NS ? S_PERIOD_MAX_NS : (int64_t)llround(period);
    self->tick = tick;
    self->tick_arg = arg;
    return sk2_device_thread_start(self, s_paced, self);
}
