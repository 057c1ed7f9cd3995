/* Matched framesets: the matcher of include/sk2/frameset.h. The rule is written out there; this
 * file keeps each member's frames in a small array in arrival order (the queues are short, so
 * removing from the front with memmove costs less than a ring's bookkeeping would save). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/client.h"
#include "sk2/error.h"
#include "sk2/frameset.h"

typedef struct {
    int64_t time_us;
    sk2_frame_t *frame; /* owned; may be NULL */
} s_entry_t;

typedef struct {
    const sk2_client_t *client;
    char device_id[SK2_DEVICE_ID_MAX + 1];
    sk2_stream_kind_t kind;
    double fps;         /* 0: unknown */
    s_entry_t *queue;   /* oldest first */
    size_t count;       /* queued now */
    uint64_t pushed;    /* frames pushed */
    uint64_t unmatched; /* frames counted unmatched */
} s_member_t;

struct sk2_matcher {
    s_member_t members[SK2_MATCHER_MEMBERS_MAX];
    size_t member_count;
    unsigned queue_frames;
    int64_t tolerance_us; /* 0: the default */
    bool is_mapping;
    bool has_pushed;
    uint64_t matched;
};

struct sk2_frameset {
    size_t size;
    int64_t spread_us;
    s_entry_t entries[]; /* one per member */
};

sk2_matcher_t *sk2_matcher_new(void)
{
    sk2_matcher_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->queue_frames = SK2_MATCHER_QUEUE_DEFAULT;
    self->is_mapping = true;
    return self;
}

/* Drops the first n frames of a member's queue, counting them unmatched. */
static void s_drop_front(s_member_t *member, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sk2_frame_destroy(&member->queue[i].frame);
    memmove(member->queue, member->queue + n, (member->count - n) * sizeof *member->queue);
    member->count -= n;
    member->unmatched += n;
}

void sk2_matcher_destroy(sk2_matcher_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_matcher_t *self = *self_p;
    for (size_t i = 0; i < self->member_count; i++) {
        s_drop_front(&self->members[i], self->members[i].count);
        free(self->members[i].queue);
    }
    free(self);
    *self_p = NULL;
}

int sk2_matcher_add(sk2_matcher_t *self, const sk2_client_t *client, const char *device_id,
                    sk2_stream_kind_t kind, double fps)
{
    if (!self || !device_id || !*device_id || strlen(device_id) > SK2_DEVICE_ID_MAX ||
        (kind != SK2_STREAM_DEPTH && kind != SK2_STREAM_IR && kind != SK2_STREAM_COLOR) ||
        !(fps >= 0 && fps <= 1000))
        return SK2_EINVAL;
    if (self->has_pushed)
        return SK2_ESTATE;
    for (size_t i = 0; i < self->member_count; i++) {
        const s_member_t *m = &self->members[i];
        if (m->client == client && m->kind == kind && strcmp(m->device_id, device_id) == 0)
            return SK2_EEXIST;
    }
    if (self->member_count == SK2_MATCHER_MEMBERS_MAX)
        return SK2_ELIMIT;
    s_entry_t *queue = calloc(SK2_MATCHER_QUEUE_MAX, sizeof *queue);
    if (!queue)
        return SK2_ENOMEM;
    sk2_stream_info_t info;
    if (fps == 0 && client && sk2_client_stream_info(client, device_id, kind, &info) == 0 &&
        info.fps > 0 && info.fps <= 1000)
        fps = info.fps;
    s_member_t *m = &self->members[self->member_count];
    memset(m, 0, sizeof *m);
    m->client = client;
    memcpy(m->device_id, device_id, strlen(device_id) + 1);
    m->kind = kind;
    m->fps = fps;
    m->queue = queue;
    return (int)self->member_count++;
}

size_t sk2_matcher_members(const sk2_matcher_t *self)
{
    return self ? self->member_count : 0;
}

const char *sk2_matcher_member_device(const sk2_matcher_t *self, size_t member)
{
    return self && member < self->member_count ? self->members[member].device_id : NULL;
}

sk2_stream_kind_t sk2_matcher_member_kind(const sk2_matcher_t *self, size_t member)
{
    return self && member < self->member_count ? self->members[member].kind : 0;
}

int sk2_matcher_set_tolerance_us(sk2_matcher_t *self, int64_t tolerance_us)
{
    if (!self || tolerance_us < 0 || tolerance_us > SK2_MATCHER_TOLERANCE_MAX_US)
        return SK2_EINVAL;
    self->tolerance_us = tolerance_us;
    return 0;
}

int64_t sk2_matcher_tolerance_us(const sk2_matcher_t *self)
{
    if (!self)
        return 0;
    if (self->tolerance_us > 0)
        return self->tolerance_us;
    /* Half the period of the slowest member: two frames of it a period apart can then never
     * both be within reach of one anchor. */
    double slowest = 0;
    for (size_t i = 0; i < self->member_count; i++)
        if (self->members[i].fps > 0 && (slowest == 0 || self->members[i].fps < slowest))
            slowest = self->members[i].fps;
    return slowest > 0 ? (int64_t)llround(0.5e6 / slowest) : SK2_MATCHER_TOLERANCE_FALLBACK_US;
}

int sk2_matcher_set_queue_frames(sk2_matcher_t *self, unsigned frames)
{
    if (!self || frames < 1 || frames > SK2_MATCHER_QUEUE_MAX)
        return SK2_EINVAL;
    self->queue_frames = frames;
    for (size_t i = 0; i < self->member_count; i++)
        if (self->members[i].count > frames)
            s_drop_front(&self->members[i], self->members[i].count - frames);
    return 0;
}

void sk2_matcher_set_clock_mapping(sk2_matcher_t *self, bool is_mapping)
{
    if (self)
        self->is_mapping = is_mapping;
}

int sk2_matcher_push(sk2_matcher_t *self, size_t member, int64_t time_us, sk2_frame_t *frame)
{
    if (!self || member >= self->member_count || time_us < 0)
        return SK2_EINVAL;
    s_member_t *m = &self->members[member];
    self->has_pushed = true;
    if (m->count == self->queue_frames)
        s_drop_front(m, 1); /* the newest wins */
    m->queue[m->count++] = (s_entry_t){.time_us = time_us, .frame = frame};
    m->pushed++;
    return 0;
}

int sk2_matcher_push_event(sk2_matcher_t *self, const sk2_client_t *client, sk2_event_t *event)
{
    if (!self || !event || sk2_event_type(event) != SK2_EVENT_FRAME)
        return SK2_EINVAL;
    const sk2_frame_t *frame = sk2_event_frame(event);
    const char *id = sk2_event_device_id(event);
    if (!frame || !id)
        return SK2_EINVAL;
    sk2_stream_kind_t kind = sk2_frame_kind(frame);
    for (size_t i = 0; i < self->member_count; i++) {
        const s_member_t *m = &self->members[i];
        if (m->client != client || m->kind != kind || strcmp(m->device_id, id) != 0)
            continue;
        int64_t time_us = sk2_frame_capture_time_us(frame);
        if (self->is_mapping && client)
            time_us = sk2_client_to_local_us(client, time_us);
        if (time_us < 0)
            return SK2_EINVAL;
        return sk2_matcher_push(self, i, time_us, sk2_event_take_frame(event));
    }
    return SK2_ENOTFOUND;
}

/* The index in a member's queue of the frame nearest `anchor_us` (the earlier of two equally
 * near), or -1 while none as late as the anchor is queued: a later frame could be nearer. */
static long s_nearest(const s_member_t *m, int64_t anchor_us)
{
    if (m->count == 0 || m->queue[m->count - 1].time_us < anchor_us)
        return -1;
    size_t best = 0;
    for (size_t i = 1; i < m->count; i++) {
        int64_t d = llabs(m->queue[i].time_us - anchor_us);
        if (d < llabs(m->queue[best].time_us - anchor_us))
            best = i;
    }
    return (long)best;
}

int sk2_matcher_next(sk2_matcher_t *self, sk2_frameset_t **out)
{
    if (!self || !out || self->member_count == 0)
        return SK2_EINVAL;
    *out = NULL;
    int64_t tolerance_us = sk2_matcher_tolerance_us(self);
    long chosen[SK2_MATCHER_MEMBERS_MAX];
    for (;;) {
        size_t anchor = 0;
        for (size_t i = 0; i < self->member_count; i++) {
            if (self->members[i].count == 0)
                return SK2_EAGAIN;
            if (self->members[i].queue[0].time_us > self->members[anchor].queue[0].time_us)
                anchor = i;
        }
        int64_t anchor_us = self->members[anchor].queue[0].time_us;
        /* Oldest frames only move later, so every frameset to come holds a frame at least as
         * late as the anchor: a frame more than the tolerance before it has no future. */
        bool is_emptied = false;
        for (size_t i = 0; i < self->member_count; i++) {
            s_member_t *m = &self->members[i];
            size_t dead = 0;
            while (dead < m->count && m->queue[dead].time_us < anchor_us - tolerance_us)
                dead++;
            s_drop_front(m, dead);
            is_emptied |= m->count == 0;
        }
        if (is_emptied)
            return SK2_EAGAIN;
        int64_t lo = anchor_us, hi = anchor_us;
        for (size_t i = 0; i < self->member_count; i++) {
            chosen[i] = i == anchor ? 0 : s_nearest(&self->members[i], anchor_us);
            if (chosen[i] < 0)
                return SK2_EAGAIN;
            int64_t t = self->members[i].queue[chosen[i]].time_us;
            lo = t < lo ? t : lo;
            hi = t > hi ? t : hi;
        }
        if (hi - lo > tolerance_us) {
            /* No partners near enough for the anchor: it stays alone. */
            s_drop_front(&self->members[anchor], 1);
            continue;
        }
        sk2_frameset_t *set = malloc(sizeof *set + self->member_count * sizeof(s_entry_t));
        if (!set)
            return SK2_ENOMEM;
        set->size = self->member_count;
        set->spread_us = hi - lo;
        for (size_t i = 0; i < self->member_count; i++) {
            s_member_t *m = &self->members[i];
            set->entries[i] = m->queue[chosen[i]];
            m->queue[chosen[i]].frame = NULL;
            /* Frames before the chosen one were passed over: unmatched. Then the chosen one
             * leaves the queue without being counted. */
            s_drop_front(m, (size_t)chosen[i]);
            memmove(m->queue, m->queue + 1, (m->count - 1) * sizeof *m->queue);
            m->count--;
        }
        self->matched++;
        *out = set;
        return 0;
    }
}

uint64_t sk2_matcher_matched(const sk2_matcher_t *self)
{
    return self ? self->matched : 0;
}

uint64_t sk2_matcher_unmatched(const sk2_matcher_t *self, size_t member)
{
    return self && member < self->member_count ? self->members[member].unmatched : 0;
}

uint64_t sk2_matcher_pushed(const sk2_matcher_t *self, size_t member)
{
    return self && member < self->member_count ? self->members[member].pushed : 0;
}

size_t sk2_matcher_queued(const sk2_matcher_t *self)
{
    size_t n = 0;
    for (size_t i = 0; self && i < self->member_count; i++)
        n += self->members[i].count;
    return n;
}

void sk2_frameset_destroy(sk2_frameset_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    for (size_t i = 0; i < (*self_p)->size; i++)
        sk2_frame_destroy(&(*self_p)->entries[i].frame);
    free(*self_p);
    *self_p = NULL;
}

size_t sk2_frameset_size(const sk2_frameset_t *self)
{
    return self ? self->size : 0;
}

int64_t sk2_frameset_time_us(const sk2_frameset_t *self, size_t i)
{
    return self && i < self->size ? self->entries[i].time_us : -1;
}

const sk2_frame_t *sk2_frameset_frame(const sk2_frameset_t *self, size_t i)
{
    return self && i < self->size ? self->entries[i].frame : NULL;
}

sk2_frame_t *sk2_frameset_take_frame(sk2_frameset_t *self, size_t i)
{
    if (!self || i >= self->size)
        return NULL;
    sk2_frame_t *frame = self->entries[i].frame;
    self->entries[i].frame = NULL;
    return frame;
}

int64_t sk2_frameset_spread_us(const sk2_frameset_t *self)
{
    return self ? self->spread_us : -1;
}
