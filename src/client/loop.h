/* The receive loop that sk2_client_recv/dispatch and sk2_browser_recv/dispatch share: hand out
 * a queued event, else run the owner's timers, then wait for input until the caller's timeout
 * or the next timer, whichever is first. The owner supplies what differs (its queue, its
 * timers, what it polls and how input becomes events) as callbacks. Private to libsk2. */
#ifndef SK2_CLIENT_LOOP_H
#define SK2_CLIENT_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "client/event.h"

/* Events one dispatch call hands out at most, so that a flood of frames cannot keep it from
 * returning to its caller. */
#define SK2_LOOP_MAX_EVENTS_PER_DISPATCH 256

typedef struct {
    /* Whether there is anything to wait for; once false, recv answers SK2_ESTATE as soon as
     * the queue is empty. */
    bool (*is_active)(void *owner);
    /* Runs the timers that are due (they may queue events or make the owner inactive) and
     * returns the monotonic time of the next one, microseconds, or INT64_MAX for none. NULL
     * when the owner has no timers of its own. */
    int64_t (*run_timers)(void *owner);
    /* Waits at most wait_ms (-1: no limit) for input and turns what arrived into events.
     * Returns 0, SK2_EINTR (a signal) or SK2_ESYS. */
    int (*poll)(void *owner, int wait_ms);
    /* Hands one event to the owner's handler during dispatch; the loop destroys it after. */
    void (*deliver)(void *owner, sk2_event_t *event);
} sk2_loop_ops_t;

/* One event into *event_p (the caller owns it) within timeout_ms (-1: no limit, 0: only what
 * is ready). Returns 0, SK2_ETIMEDOUT, SK2_ESTATE when inactive with nothing queued, or the
 * poll's error. Called on the owner's thread. */
int sk2_loop_recv(const sk2_loop_ops_t *ops, void *owner, sk2_event_queue_t *queue,
                  sk2_event_t **event_p, int timeout_ms);

/* Waits up to timeout_ms for an event, then delivers it and every other event ready without
 * waiting, at most SK2_LOOP_MAX_EVENTS_PER_DISPATCH in all. Returns how many (0 after a
 * timeout), or a negative SK2_E* code if it failed before delivering any. */
int sk2_loop_dispatch(const sk2_loop_ops_t *ops, void *owner, sk2_event_queue_t *queue,
                      int timeout_ms);

#endif
