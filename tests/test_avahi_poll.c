/* The AvahiPoll that a zmq_poll loop drives: watches become poll items, timeouts become the
 * loop's timeout, and Avahi may change or free either from inside their callbacks. No daemon
 * needed: the poll is exercised directly through the AvahiPoll table, as Avahi uses it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <avahi-common/timeval.h>
#include <cmocka.h>

#include "discovery/avahi_poll.h"

typedef struct {
    const AvahiPoll *api;
    int calls;              /* callbacks run */
    AvahiWatchEvent events; /* what the last watch callback was given */
    AvahiWatchEvent got;    /* what watch_get_events said inside it */
    bool is_freeing;        /* free the watch/timeout from inside its callback */
    bool is_rearming;       /* re-arm the timeout for "now" from inside its callback */
} s_seen_t;

static void s_on_watch(AvahiWatch *watch, int fd, AvahiWatchEvent events, void *arg)
{
    s_seen_t *seen = arg;
    char byte;
    assert_int_equal(read(fd, &byte, 1), 1);
    seen->calls++;
    seen->events = events;
    seen->got = seen->api->watch_get_events(watch);
    if (seen->is_freeing)
        seen->api->watch_free(watch);
}

static void s_on_timeout(AvahiTimeout *timeout, void *arg)
{
    s_seen_t *seen = arg;
    seen->calls++;
    if (seen->is_rearming) {
        struct timeval now;
        gettimeofday(&now, NULL);
        seen->api->timeout_update(timeout, &now);
    }
    if (seen->is_freeing)
        seen->api->timeout_free(timeout);
}

static void test_a_readable_watch_runs_its_callback(void **state)
{
    (void)state;
    sk2_avahi_poll_t *poll = sk2_avahi_poll_new();
    const AvahiPoll *api = sk2_avahi_poll_api(poll);
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    s_seen_t seen = {.api = api};
    AvahiWatch *watch = api->watch_new(api, pipefd[0], AVAHI_WATCH_IN, s_on_watch, &seen);
    zmq_pollitem_t items[8];
    assert_int_equal(sk2_avahi_poll_items(poll, items, 8), 1);
    assert_null(items[0].socket);
    assert_int_equal(items[0].fd, pipefd[0]);
    assert_int_equal(items[0].events, ZMQ_POLLIN);
    assert_int_equal(sk2_avahi_poll_timeout_ms(poll), -1);

    assert_int_equal(zmq_poll(items, 1, 0), 0); /* nothing yet */
    sk2_avahi_poll_dispatch(poll, items, 1);
    assert_int_equal(seen.calls, 0);

    /* A dispatch consumes the items it was given: ask again each time round. */
    assert_int_equal(write(pipefd[1], "x", 1), 1);
    assert_int_equal(sk2_avahi_poll_items(poll, items, 8), 1);
    assert_int_equal(zmq_poll(items, 1, 1000), 1);
    sk2_avahi_poll_dispatch(poll, items, 1);
    assert_int_equal(seen.calls, 1);
    assert_int_equal(seen.events, AVAHI_WATCH_IN);
    assert_int_equal(seen.got, AVAHI_WATCH_IN);
    assert_int_equal(api->watch_get_events(watch), 0); /* only during the callback */

    api->watch_update(watch, 0); /* Avahi no longer wants to hear: nothing to poll */
    assert_int_equal(sk2_avahi_poll_items(poll, items, 8), 0);
    api->watch_update(watch, AVAHI_WATCH_IN);

    seen.is_freeing = true; /* freed inside its own callback, then swept */
    assert_int_equal(write(pipefd[1], "y", 1), 1);
    assert_int_equal(sk2_avahi_poll_items(poll, items, 8), 1);
    assert_int_equal(zmq_poll(items, 1, 1000), 1);
    sk2_avahi_poll_dispatch(poll, items, 1);
    assert_int_equal(seen.calls, 2);
    assert_int_equal(sk2_avahi_poll_items(poll, items, 8), 0);

    sk2_avahi_poll_destroy(&poll);
    sk2_avahi_poll_destroy(&poll);
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_timeouts_fire_once_when_due(void **state)
{
    (void)state;
    sk2_avahi_poll_t *poll = sk2_avahi_poll_new();
    const AvahiPoll *api = sk2_avahi_poll_api(poll);
    s_seen_t later = {.api = api}, now_seen = {.api = api};
    struct timeval when;
    avahi_elapse_time(&when, 60000, 0);
    AvahiTimeout *in_a_minute = api->timeout_new(api, &when, s_on_timeout, &later);
    int ms = sk2_avahi_poll_timeout_ms(poll);
    assert_true(ms > 59000 && ms <= 60000);

    avahi_elapse_time(&when, 0, 0);
    api->timeout_new(api, &when, s_on_timeout, &now_seen);
    assert_int_equal(sk2_avahi_poll_timeout_ms(poll), 0);
    sk2_avahi_poll_dispatch(poll, NULL, 0);
    assert_int_equal(now_seen.calls, 1);
    assert_int_equal(later.calls, 0);
    /* Fired timeouts are disabled until Avahi re-arms them. */
    assert_true(sk2_avahi_poll_timeout_ms(poll) > 59000);
    sk2_avahi_poll_dispatch(poll, NULL, 0);
    assert_int_equal(now_seen.calls, 1);

    /* Disabled with NULL; then re-armed for now, by itself, every time: once per dispatch. */
    api->timeout_update(in_a_minute, NULL);
    assert_int_equal(sk2_avahi_poll_timeout_ms(poll), -1);
    later.is_rearming = true;
    api->timeout_update(in_a_minute, &when);
    sk2_avahi_poll_dispatch(poll, NULL, 0);
    assert_int_equal(later.calls, 1);
    sk2_avahi_poll_dispatch(poll, NULL, 0);
    assert_int_equal(later.calls, 2);

    later.is_freeing = true; /* freed from inside its callback */
    sk2_avahi_poll_dispatch(poll, NULL, 0);
    assert_int_equal(later.calls, 3);
    sk2_avahi_poll_dispatch(poll, NULL, 0);
    assert_int_equal(later.calls, 3);
    assert_int_equal(sk2_avahi_poll_timeout_ms(poll), -1);
    sk2_avahi_poll_destroy(&poll);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_readable_watch_runs_its_callback),
        cmocka_unit_test(test_timeouts_fire_once_when_due),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
