/* Reference-counted frames and byte buffers shared by the gateway's client and web threads.
 * The counts are atomic; everything else in a shot is written before it is published (under
 * the store's lock) or, for the lazy images, by the web thread alone. */
#include "gateway/shot.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

gw_blob_t *gw_blob_new(size_t cap)
{
    gw_blob_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (cap == 0)
        cap = 1;
    self->base = malloc(GW_BLOB_PRE + cap);
    if (!self->base) {
        free(self);
        return NULL;
    }
    self->data = self->base + GW_BLOB_PRE;
    self->cap = cap;
    atomic_init(&self->refs, 1);
    return self;
}

int gw_blob_reserve(gw_blob_t *self, size_t cap)
{
    if (cap <= self->cap)
        return 0;
    size_t grown = self->cap * 2 > cap ? self->cap * 2 : cap;
    uint8_t *base = realloc(self->base, GW_BLOB_PRE + grown);
    if (!base)
        return -1;
    self->base = base;
    self->data = base + GW_BLOB_PRE;
    self->cap = grown;
    return 0;
}

gw_blob_t *gw_blob_ref(gw_blob_t *self)
{
    if (self)
        atomic_fetch_add_explicit(&self->refs, 1, memory_order_relaxed);
    return self;
}

void gw_blob_unref(gw_blob_t **self_p)
{
    gw_blob_t *self = *self_p;
    *self_p = NULL;
    if (!self || atomic_fetch_sub_explicit(&self->refs, 1, memory_order_acq_rel) != 1)
        return;
    free(self->base);
    free(self);
}

gw_shot_t *gw_shot_new(sk2_frame_t **frame_p, const char *key)
{
    gw_shot_t *self = calloc(1, sizeof *self);
    if (!self) {
        sk2_frame_destroy(frame_p);
        return NULL;
    }
    self->frame = *frame_p;
    *frame_p = NULL;
    self->kind = sk2_frame_kind(self->frame);
    snprintf(self->key, sizeof self->key, "%s", key);
    self->latency_us = -1;
    self->codec = "";
    atomic_init(&self->refs, 1);
    return self;
}

gw_shot_t *gw_shot_ref(gw_shot_t *self)
{
    if (self)
        atomic_fetch_add_explicit(&self->refs, 1, memory_order_relaxed);
    return self;
}

void gw_shot_unref(gw_shot_t **self_p)
{
    gw_shot_t *self = *self_p;
    *self_p = NULL;
    if (!self || atomic_fetch_sub_explicit(&self->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (int i = 0; i < GW_IMAGE_COUNT; i++)
        gw_blob_unref(&self->images[i]);
    sk2_frame_destroy(&self->frame);
    free(self);
}
