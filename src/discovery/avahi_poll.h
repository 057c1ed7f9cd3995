/* An AvahiPoll whose watches and timeouts are driven from outside: the owner asks which
 * descriptors to poll and how long it may sleep, polls them with zmq_poll next to its own
 * sockets, and hands the results back. Private to the Avahi backend.
 *
 * Avahi's own loops (simple-watch, thread-watch) either own the poll call or start a thread;
 * this one does neither, so the browser runs inside the caller's recv/dispatch and the
 * announcer inside its actor's loop. One thread at a time. */
#ifndef SK2_DISCOVERY_AVAHI_POLL_H
#define SK2_DISCOVERY_AVAHI_POLL_H

#include <stddef.h>

#include <avahi-common/watch.h>
#include <zmq.h>

typedef struct sk2_avahi_poll sk2_avahi_poll_t;

/* A new, empty poll owned by the caller; NULL on out of memory. */
sk2_avahi_poll_t *sk2_avahi_poll_new(void);

/* Frees the poll and any watches and timeouts still on it (free what uses it first: an
 * AvahiClient frees its own watches). Sets *self_p to NULL; safe on NULL. */
void sk2_avahi_poll_destroy(sk2_avahi_poll_t **self_p);

/* The AvahiPoll to hand to avahi_client_new(); valid until destroy. */
const AvahiPoll *sk2_avahi_poll_api(sk2_avahi_poll_t *self);

/* Writes up to max items (fd and events set, socket NULL) for the watches that want events;
 * returns how many. The poll remembers which watch each item belongs to until the next
 * call. */
size_t sk2_avahi_poll_items(sk2_avahi_poll_t *self, zmq_pollitem_t *items, size_t max);

/* Milliseconds until the earliest enabled timeout (rounded up), 0 if one is due, -1 if none. */
int sk2_avahi_poll_timeout_ms(const sk2_avahi_poll_t *self);

/* Runs the watch callbacks for the items of the last sk2_avahi_poll_items() call that have
 * revents (count must not exceed what it returned), then every timeout that is due. Watches
 * and timeouts freed by callbacks are released at the end, and the items are used up: call
 * sk2_avahi_poll_items() again before the next poll. */
void sk2_avahi_poll_dispatch(sk2_avahi_poll_t *self, const zmq_pollitem_t *items, size_t count);

#endif
