/* Per-thread scratch buffers for codecs (see scratch.h for why they exist).
 *
 * The slots hang on one pthread key rather than _Thread_local pointers so that they are freed
 * when their thread exits; the destructor only calls free(), which stays valid even if libsk2
 * is unloaded first. Sizes come from the caller's frame, never from bytes being decoded,
 * which codecs check before asking for memory. */
#include <pthread.h>
#include <stdlib.h>

#include "codec/scratch.h"

typedef struct {
    size_t capacity[SK2_SCRATCH_SLOTS]; /* bytes in bytes[slot] */
    uint8_t *bytes[SK2_SCRATCH_SLOTS];
} slots_t;

static pthread_key_t s_key;
static pthread_once_t s_once = PTHREAD_ONCE_INIT;
static int s_key_rc = -1;

static void s_slots_free(void *arg)
{
    slots_t *slots = arg;
    for (int i = 0; i < SK2_SCRATCH_SLOTS; i++)
        free(slots->bytes[i]);
    free(slots);
}

static void s_key_create(void)
{
    s_key_rc = pthread_key_create(&s_key, s_slots_free);
}

uint8_t *sk2_scratch(sk2_scratch_slot_t slot, size_t size)
{
    if (pthread_once(&s_once, s_key_create) != 0 || s_key_rc != 0)
        return NULL;
    slots_t *slots = pthread_getspecific(s_key);
    if (!slots) {
        slots = calloc(1, sizeof *slots);
        if (!slots)
            return NULL;
        if (pthread_setspecific(s_key, slots) != 0) {
            free(slots);
            return NULL;
        }
    }
    if (slots->bytes[slot] && slots->capacity[slot] >= size)
        return slots->bytes[slot];
    /* malloc's alignment suits every pixel and table type the codecs use. */
    uint8_t *bigger = malloc(size ? size : 1);
    if (!bigger)
        return NULL;
    free(slots->bytes[slot]);
    slots->bytes[slot] = bigger;
    slots->capacity[slot] = size;
    return bigger;
}
