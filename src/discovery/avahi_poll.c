/* An AvahiPoll driven by its owner's zmq_poll loop (see avahi_poll.h).
 *
 * Avahi may create, change and free watches and timeouts from inside their own callbacks, so
 * nothing is freed while callbacks run: a freed entry is only marked dead and skipped, and
 * the lists are swept once dispatch has finished. The items handed out last are remembered by
 * watch pointer, which therefore stays valid until the dispatch that consumes them.
 *
 * Avahi expresses timeouts as absolute gettimeofday() times (avahi_elapse_time), so they are
 * compared against the same clock here. */
#include <stdbool.h>
#include <stdlib.h>
#include <sys/time.h>

#include <avahi-common/timeval.h>

#include "discovery/avahi_poll.h"
#include "discovery/discovery.h"

struct AvahiWatch {
    sk2_avahi_poll_t *poll;
    int fd;                      /* descriptor to poll */
    AvahiWatchEvent events;      /* what Avahi wants to hear about */
    AvahiWatchEvent revents;     /* what happened, during its callback only */
    AvahiWatchCallback callback; /* Avahi's */
    void *userdata;              /* Avahi's */
    bool is_dead;                /* freed by Avahi, swept after dispatch */
    struct AvahiWatch *next;
};

struct AvahiTimeout {
    sk2_avahi_poll_t *poll;
    bool is_enabled;               /* `when` holds a wake-up time */
    struct timeval when;           /* absolute, gettimeofday() clock */
    AvahiTimeoutCallback callback; /* Avahi's */
    void *userdata;                /* Avahi's */
    bool is_dead;                  /* freed by Avahi, swept after dispatch */
    bool is_due;                   /* picked to fire in the dispatch under way */
    struct AvahiTimeout *next;
};

struct sk2_avahi_poll {
    AvahiPoll api;                          /* handed to Avahi; userdata points back here */
    AvahiWatch *watches;                    /* every watch, dead ones until swept */
    AvahiTimeout *timeouts;                 /* every timeout, dead ones until swept */
    AvahiWatch *polled[SK2_DNSSD_POLL_MAX]; /* the watch behind each item handed out last */
    size_t polled_count;                    /* entries in polled */
    bool has_dead;                          /* something waits to be swept */
};

/* ---- Watches -------------------------------------------------------------------------------- */

static AvahiWatch *s_watch_new(const AvahiPoll *api, int fd, AvahiWatchEvent events,
                               AvahiWatchCallback callback, void *userdata)
{
    sk2_avahi_poll_t *self = api->userdata;
    AvahiWatch *watch = calloc(1, sizeof *watch);
    if (!watch)
        return NULL;
    *watch = (AvahiWatch){.poll = self,
                          .fd = fd,
                          .events = events,
                          .callback = callback,
                          .userdata = userdata,
                          .next = self->watches};
    self->watches = watch;
    return watch;
}

static void s_watch_update(AvahiWatch *watch, AvahiWatchEvent events)
{
    watch->events = events;
}

static AvahiWatchEvent s_watch_get_events(AvahiWatch *watch)
{
    return watch->revents;
}

static void s_watch_free(AvahiWatch *watch)
{
    watch->is_dead = true;
    watch->poll->has_dead = true;
}

/* ---- Timeouts ------------------------------------------------------------------------------- */

static void s_timeout_set(AvahiTimeout *timeout, const struct timeval *when)
{
    timeout->is_enabled = when != NULL;
    if (when)
        timeout->when = *when;
}

static AvahiTimeout *s_timeout_new(const AvahiPoll *api, const struct timeval *when,
                                   AvahiTimeoutCallback callback, void *userdata)
{
    sk2_avahi_poll_t *self = api->userdata;
    AvahiTimeout *timeout = calloc(1, sizeof *timeout);
    if (!timeout)
        return NULL;
    *timeout = (AvahiTimeout){
        .poll = self, .callback = callback, .userdata = userdata, .next = self->timeouts};
    s_timeout_set(timeout, when);
    self->timeouts = timeout;
    return timeout;
}

static void s_timeout_update(AvahiTimeout *timeout, const struct timeval *when)
{
    s_timeout_set(timeout, when);
}

static void s_timeout_free(AvahiTimeout *timeout)
{
    timeout->is_dead = true;
    timeout->is_enabled = false;
    timeout->poll->has_dead = true;
}

/* ---- The poll ------------------------------------------------------------------------------- */

sk2_avahi_poll_t *sk2_avahi_poll_new(void)
{
    sk2_avahi_poll_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->api = (AvahiPoll){
        .userdata = self,
        .watch_new = s_watch_new,
        .watch_update = s_watch_update,
        .watch_get_events = s_watch_get_events,
        .watch_free = s_watch_free,
        .timeout_new = s_timeout_new,
        .timeout_update = s_timeout_update,
        .timeout_free = s_timeout_free,
    };
    return self;
}

static void s_sweep(sk2_avahi_poll_t *self, bool everything)
{
    for (AvahiWatch **w = &self->watches; *w;) {
        AvahiWatch *watch = *w;
        if (everything || watch->is_dead) {
            *w = watch->next;
            free(watch);
        } else {
            w = &watch->next;
        }
    }
    for (AvahiTimeout **t = &self->timeouts; *t;) {
        AvahiTimeout *timeout = *t;
        if (everything || timeout->is_dead) {
            *t = timeout->next;
            free(timeout);
        } else {
            t = &timeout->next;
        }
    }
    self->polled_count = 0;
    self->has_dead = false;
}

void sk2_avahi_poll_destroy(sk2_avahi_poll_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_sweep(*self_p, true);
    free(*self_p);
    *self_p = NULL;
}

const AvahiPoll *sk2_avahi_poll_api(sk2_avahi_poll_t *self)
{
    return &self->api;
}

size_t sk2_avahi_poll_items(sk2_avahi_poll_t *self, zmq_pollitem_t *items, size_t max)
{
    size_t n = 0;
    if (max > SK2_DNSSD_POLL_MAX)
        max = SK2_DNSSD_POLL_MAX;
    for (AvahiWatch *watch = self->watches; watch && n < max; watch = watch->next) {
        if (watch->is_dead || !(watch->events & (AVAHI_WATCH_IN | AVAHI_WATCH_OUT)))
            continue;
        short events = (short)(((watch->events & AVAHI_WATCH_IN) ? ZMQ_POLLIN : 0) |
                               ((watch->events & AVAHI_WATCH_OUT) ? ZMQ_POLLOUT : 0));
        items[n] = (zmq_pollitem_t){.socket = NULL, .fd = watch->fd, .events = events};
        self->polled[n++] = watch;
    }
    self->polled_count = n;
    return n;
}

int sk2_avahi_poll_timeout_ms(const sk2_avahi_poll_t *self)
{
    struct timeval now;
    gettimeofday(&now, NULL);
    int64_t best_us = -1;
    for (const AvahiTimeout *t = self->timeouts; t; t = t->next) {
        if (!t->is_enabled)
            continue;
        int64_t due_us = (int64_t)avahi_timeval_diff(&t->when, &now);
        if (due_us < 0)
            due_us = 0;
        if (best_us < 0 || due_us < best_us)
            best_us = due_us;
    }
    if (best_us < 0)
        return -1;
    int64_t ms = (best_us + 999) / 1000;
    return ms > 24 * 3600 * 1000 ? 24 * 3600 * 1000 : (int)ms;
}

void sk2_avahi_poll_dispatch(sk2_avahi_poll_t *self, const zmq_pollitem_t *items, size_t count)
{
    if (count > self->polled_count)
        count = self->polled_count;
    for (size_t i = 0; i < count; i++) {
        AvahiWatch *watch = self->polled[i];
        if (watch->is_dead || !items[i].revents)
            continue;
        /* zmq_poll folds POLLERR and POLLHUP of a plain descriptor into ZMQ_POLLERR. */
        int revents = ((items[i].revents & ZMQ_POLLIN) ? AVAHI_WATCH_IN : 0) |
                      ((items[i].revents & ZMQ_POLLOUT) ? AVAHI_WATCH_OUT : 0) |
                      ((items[i].revents & ZMQ_POLLERR) ? AVAHI_WATCH_ERR | AVAHI_WATCH_HUP : 0);
        watch->revents = (AvahiWatchEvent)revents;
        watch->callback(watch, watch->fd, watch->revents, watch->userdata);
        watch->revents = 0;
    }
    /* Timeouts due now, each once: they are picked before any fires, so one that a callback
     * re-arms for "now" waits for the next dispatch and a busy timer cannot pin this call. */
    struct timeval now;
    gettimeofday(&now, NULL);
    for (AvahiTimeout *t = self->timeouts; t; t = t->next)
        t->is_due = t->is_enabled && avahi_timeval_compare(&t->when, &now) <= 0;
    for (AvahiTimeout *t = self->timeouts; t; t = t->next) {
        if (!t->is_due || t->is_dead || !t->is_enabled || avahi_timeval_compare(&t->when, &now) > 0)
            continue;
        t->is_due = false;
        t->is_enabled = false; /* a timeout fires once; Avahi re-arms it with update */
        t->callback(t, t->userdata);
    }
    self->polled_count = 0;
    if (self->has_dead)
        s_sweep(self, false);
}
