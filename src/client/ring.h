/* A bounded ring of received stream messages, newest wins: the client's queue for one
 * subscription when the caller sets a queue bound (sk2_client_set_queue_frames). Messages stay
 * encoded here (a zmsg_t as it came off the SUB socket) and are decoded only when handed out,
 * so frames that are dropped cost no decoding. Each entry carries an arrival number so that
 * the rings of several subscriptions hand out in the order frames came. Private to libsk2. */
#ifndef SK2_CLIENT_RING_H
#define SK2_CLIENT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    void *msg;        /* the zmsg_t, owned */
    uint64_t arrival; /* the client's count of messages queued, when this one was */
} sk2_ring_entry_t;

/* Zero-initialised is an empty ring of capacity 0 (push then refuses). */
typedef struct {
    sk2_ring_entry_t *entries; /* capacity slots */
    size_t capacity;           /* most entries held */
    size_t head;               /* index of the oldest */
    size_t count;              /* entries held */
} sk2_ring_t;

/* Sets the capacity, keeping the newest entries that fit; *dropped (may be NULL) grows by the
 * entries destroyed. Capacity 0 frees everything. Returns 0 or SK2_ENOMEM (ring unchanged). */
int sk2_ring_resize(sk2_ring_t *ring, size_t capacity, uint64_t *dropped);

/* Appends a message (the ring owns it); a full ring destroys its oldest first and returns
 * true. A ring of capacity 0 destroys msg and returns true. */
bool sk2_ring_push(sk2_ring_t *ring, void *msg, uint64_t arrival);

/* Takes out the oldest message (the caller owns it), or NULL. */
void *sk2_ring_pop(sk2_ring_t *ring);

/* The arrival number of the oldest entry, UINT64_MAX when empty. */
uint64_t sk2_ring_oldest(const sk2_ring_t *ring);

/* Destroys every entry and frees the slots; the ring is then zero (capacity 0). */
void sk2_ring_clear(sk2_ring_t *ring);

#endif
