/* Push links (docs/protocol.md "Push"): the wire words both ends use, and the relay's side,
 * the acceptor, which the relay's actor drives.
 *
 * A pushing server keeps one DEALER connected out to the relay's push ROUTER. For each pusher
 * the acceptor stands up a facade on loopback: a control ROUTER and, per device, an XPUB for
 * each of its endpoints. The relay then follows the facade as it follows any upstream (an sk2
 * client on the control ROUTER, SUBs on the XPUBs), and the acceptor carries what passes
 * through the facade over the link: requests and subscriptions out to the pusher, replies and
 * frames back. So a pushed server is relayed by exactly the code that relays a reachable one. */
#ifndef SK2_RELAY_PUSH_H
#define SK2_RELAY_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>
#include <jansson.h>

#include "proto/curve.h"

/* Words that open every message on a push link. */
#define SK2_PUSH_HELLO   "HELLO"   /* pusher: [version "1"][name]; also its heartbeat */
#define SK2_PUSH_WELCOME "WELCOME" /* relay: [session]; the answer to each HELLO */
#define SK2_PUSH_REQ     "REQ"     /* relay: [envelope...][empty][request...] */
#define SK2_PUSH_REP     "REP"     /* pusher: [envelope...][empty][reply...] */
#define SK2_PUSH_SUB     "SUB"     /* relay: [device id][depth|streams][flag byte + topic] */
#define SK2_PUSH_FRAME   "FRAME"   /* pusher: [device id][depth|streams][message parts...] */
#define SK2_PUSH_BYE     "BYE"     /* pusher: leaving, drop me now */

/* A pusher sends HELLO this often; a side that hears nothing from the other for
 * SK2_PUSH_SILENCE_MS counts the link as lost. */
#define SK2_PUSH_HEARTBEAT_MS 1000
#define SK2_PUSH_SILENCE_MS   3000
/* Most pushers one relay accepts (each is an upstream) and parts kept of one link message. */
#define SK2_PUSH_MAX       32
#define SK2_PUSH_MAX_PARTS 16

typedef struct sk2_accept sk2_accept_t;

/* Called when a pusher's facade is up (is_up, with the facade's control endpoint to follow)
 * and when the pusher is gone (its key is not used again until another HELLO). */
typedef void(sk2_accept_fn)(void *arg, int key, bool is_up, const char *name,
                            const char *control_endpoint);

/* Binds the push ROUTER on tcp://bind_host:port; with `curve` (is_on) as a CURVE server whose
 * connections the process's ZAP handler checks (the relay's: it owns the handler, which must be
 * bound before this is called, since a CURVE socket without one lets every key in). Returns 0
 * and the acceptor in *self_p, or SK2_EBIND or SK2_ENOMEM; logged. */
int sk2_accept_new(const char *bind_host, int port, const sk2_curve_t *curve, sk2_accept_fn *fn,
                   void *arg, sk2_accept_t **self_p);
void sk2_accept_destroy(sk2_accept_t **self_p);

/* Writes up to max poll items (sockets to read) into items. Returns how many. */
size_t sk2_accept_items(sk2_accept_t *self, zmq_pollitem_t *items, size_t max);
/* Handles the revents of the items the last sk2_accept_items wrote, and timers. */
void sk2_accept_handle(sk2_accept_t *self, const zmq_pollitem_t *items, size_t count);
/* When the acceptor next has timer work (monotonic microseconds). */
int64_t sk2_accept_due_us(const sk2_accept_t *self);
/* An array of {"name", "state": "live"|"lost", "sessions", "frames", "seconds"} objects. */
json_t *sk2_accept_stats(const sk2_accept_t *self, size_t *live);

#endif
