/* The announcer: an actor that keeps one server announced over DNS-SD for as long as it
 * lives, through whichever backend the registry offers. Private to libsk2; the server actor
 * owns one per announced server.
 *
 * Talking to the mDNS responder can block (it is IPC, and a daemon may be slow or gone), so it
 * happens on the announcer's own thread and never in the server's control loop. The owner
 * sends it the device count when that changes and reads its state changes when its actor is
 * readable; it never waits for an answer. */
#ifndef SK2_DISCOVERY_ANNOUNCER_H
#define SK2_DISCOVERY_ANNOUNCER_H

#include <stdint.h>

#include <czmq.h>

#include "sk2/server.h"

typedef struct sk2_announcer sk2_announcer_t;

/* Starts announcing server `name` (truncated to one DNS label if longer) with control port
 * `port` on one interface (0: all) and TXT devices=`devices` (and key=`public_key`, the
 * server's CURVE key, unless NULL). Returns the announcer, or NULL
 * on out of memory. A responder that cannot be reached shows as SK2_ANNOUNCE_FAILED (and one
 * warning in the log), never as NULL. */
sk2_announcer_t *sk2_announcer_new(const char *name, uint16_t port, unsigned interface_index,
                                   unsigned devices, const char *public_key);

/* Withdraws the service (goodbye), joins the actor, frees; sets *self_p to NULL. */
void sk2_announcer_destroy(sk2_announcer_t **self_p);

/* The actor, to poll for readability; then call sk2_announcer_read(). */
zactor_t *sk2_announcer_actor(sk2_announcer_t *self);

/* Takes one state change off the actor (call when it is readable; never blocks longer). */
void sk2_announcer_read(sk2_announcer_t *self);

/* Tells the actor how many devices to announce in TXT. Does not wait. */
void sk2_announcer_set_devices(sk2_announcer_t *self, unsigned devices);

/* The last state read, the name announced or being announced, and why it is not ACTIVE ("" if
 * there is nothing to say). Strings are borrowed until the next read. */
sk2_announce_state_t sk2_announcer_state(const sk2_announcer_t *self);
const char *sk2_announcer_name(const sk2_announcer_t *self);
const char *sk2_announcer_reason(const sk2_announcer_t *self);

#endif
