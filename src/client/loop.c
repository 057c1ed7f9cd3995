/* The receive loop of the client and the browser (see loop.h). Both are state machines run by
 * their caller's thread: nothing here starts a thread or keeps state between calls. */
#include <limits.h>

#include "client/loop.h"
#include "sk2/frame.h"
#include "sk2/error.h"

int sk2_loop_recv(const sk2_loop_ops_t *ops, void *owner, sk2_event_queue_t *queue,
                  sk2_event_t **event_p, int timeout_ms)
{
    *event_p = NULL;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : sk2_clock_mono_us() + timeout_ms * 1000LL;
    for (;;) {
        if (queue->head) {
            *event_p = sk2_event_queue_pop(queue);
            return 0;
        }
        if (!ops->is_active(owner))
            return SK2_ESTATE;
        int64_t until = INT64_MAX;
        if (ops->run_timers) {
            until = ops->run_timers(owner);
            /* A timer may have queued an event (a lost server) or ended the session. */
            if (queue->head || !ops->is_active(owner))
                continue;
        }
        if (deadline < until)
            until = deadline;
        int wait_ms = -1;
        if (until != INT64_MAX) {
            int64_t now = sk2_clock_mono_us();
            int64_t wait_us = until > now ? until - now : 0;
            int64_t ms = (wait_us + 999) / 1000;
            wait_ms = ms > INT_MAX ? INT_MAX : (int)ms;
        }
        int rc = ops->poll(owner, wait_ms);
        if (rc != 0)
            return rc;
        if (!queue->head && sk2_clock_mono_us() >= deadline)
            return SK2_ETIMEDOUT;
    }
}

int sk2_loop_dispatch(const sk2_loop_ops_t *ops, void *owner, sk2_event_queue_t *queue,
                      int timeout_ms)
{
    int handled = 0;
    sk2_event_t *event = NULL;
    int rc = sk2_loop_recv(ops, owner, queue, &event, timeout_ms);
    while (rc == 0) {
        ops->deliver(owner, event);
        sk2_event_destroy(&event);
        if (++handled == SK2_LOOP_MAX_EVENTS_PER_DISPATCH)
            break;
        rc = sk2_loop_recv(ops, owner, queue, &event, 0);
    }
    if (handled > 0 || rc == SK2_ETIMEDOUT)
        return handled;
    return rc;
}
