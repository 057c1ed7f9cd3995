/* The client's bounded frame ring (ring.h). Dropping the oldest rather than refusing the newest
 * is the point: ZeroMQ's own queues keep the oldest messages and refuse new ones at their
 * high-water mark, which is right for a pipeline but wrong for a viewer or a controller that
 * wants what the camera sees now. */
#include <stdlib.h>

#include <czmq.h>

#include "client/ring.h"
#include "sk2/error.h"

static void s_destroy(void *msg)
{
    zmsg_t *owned = msg;
    zmsg_destroy(&owned);
}

void *sk2_ring_pop(sk2_ring_t *ring)
{
    if (ring->count == 0)
        return NULL;
    void *msg = ring->entries[ring->head].msg;
    ring->entries[ring->head].msg = NULL;
    ring->head = (ring->head + 1) % ring->capacity;
    ring->count--;
    return msg;
}

uint64_t sk2_ring_oldest(const sk2_ring_t *ring)
{
    return ring->count ? ring->entries[ring->head].arrival : UINT64_MAX;
}

bool sk2_ring_push(sk2_ring_t *ring, void *msg, uint64_t arrival)
{
    if (ring->capacity == 0) {
        s_destroy(msg);
        return true;
    }
    bool is_dropping = ring->count == ring->capacity;
    if (is_dropping)
        s_destroy(sk2_ring_pop(ring));
    ring->entries[(ring->head + ring->count++) % ring->capacity] =
        (sk2_ring_entry_t){.msg = msg, .arrival = arrival};
    return is_dropping;
}

int sk2_ring_resize(sk2_ring_t *ring, size_t capacity, uint64_t *dropped)
{
    if (capacity == ring->capacity)
        return 0;
    sk2_ring_entry_t *entries = NULL;
    if (capacity > 0 && !(entries = calloc(capacity, sizeof *entries)))
        return SK2_ENOMEM;
    while (ring->count > capacity) {
        s_destroy(sk2_ring_pop(ring));
        if (dropped)
            (*dropped)++;
    }
    size_t count = 0;
    while (ring->count > 0) {
        uint64_t arrival = ring->entries[ring->head].arrival;
        entries[count++] = (sk2_ring_entry_t){.msg = sk2_ring_pop(ring), .arrival = arrival};
    }
    free(ring->entries);
    *ring = (sk2_ring_t){.entries = entries, .capacity = capacity, .head = 0, .count = count};
    return 0;
}

void sk2_ring_clear(sk2_ring_t *ring)
{
    while (ring->count > 0)
        s_destroy(sk2_ring_pop(ring));
    free(ring->entries);
    *ring = (sk2_ring_t){0};
}
