/* The replay device: plays one device of a recording (or of a TUM RGB-D folder) through the
 * device interface, so a server serves it like a camera. Its streams, intrinsics, serial and id
 * are the recorded ones; only its backend name, "replay", tells it apart.
 *
 * Timing: frames are due on the recorded spacing of their capture times, divided by the rate
 * (0: no waiting), measured from start on the monotonic clock. Each frame leaves with a new
 * capture time (the wall clock when it is played, as a camera would stamp it), a device
 * timestamp that counts from the first start at the played spacing, and its recorded sequence
 * number; a loop adds the stream's span of sequence numbers, so numbers only ever grow and the
 * recorded gaps reappear where they were. Streams nobody wants are skipped without decoding.
 *
 * Control (sk2_device_replay_control) comes from other threads: it only sets atomics (pause,
 * a seek target) that the playing thread reads between frames and at least every S_SLICE_NS
 * while it waits, so that nothing here needs a lock. Holding (paused, waiting for a first
 * listener, ended) stops the replay's clock: it resumes at the recorded spacing from the frame
 * it held. A seek backwards counts as a new pass for numbering, like a loop, so sequence
 * numbers still only grow and still tell which recorded frame is which. */
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log_internal.h"
#include "device/device_impl.h"
#include "device/device_thread.h"
#include "sk2/error.h"
#include "sk2/limits.h"
#include "sk2/recording.h"

#define S_WARN_INTERVAL_US  5000000
#define S_DEFAULT_PERIOD_US 33333    /* loop pause after a recording of one instant */
#define S_SLICE_NS          50000000 /* longest wait before looking at control requests */
#define S_NO_SEEK           INT64_MIN

typedef struct {
    sk2_device_t *owner;
    char *path;             /* the recording, owned */
    size_t recorded_device; /* which of its devices */
    double rate;            /* 1 = recorded spacing, 0 = as fast as possible */
    bool is_looping;
    size_t max_frame_bytes;         /* the reader's frame budget; 0 = the library's default */
    sk2_recording_reader_t *reader; /* open from open(); the capture thread's while running */
    sk2_stream_info_t streams[SK2_DEVICE_MAX_STREAMS]; /* recorded streams that have frames */
    size_t stream_count;
    uint64_t first_sequence[SK2_DEVICE_MAX_STREAMS];
    uint64_t last_sequence[SK2_DEVICE_MAX_STREAMS];
    size_t *frames; /* this device's frame indexes in the reader, in file order */
    size_t frame_count;
    int64_t origin_us; /* capture time of its first frame */
    int64_t span_us;   /* recorded time one loop takes */
    /* Playing position, kept across stop and start: capture thread only while running. */
    size_t position;
    uint64_t loops;         /* passes for numbering: loops, and seeks backwards */
    int64_t last_offset_us; /* recorded-time offset of the last frame played */
    bool is_wait_listener;  /* hold the first frame until the device is listened to */
    bool has_clock;
    int64_t clock_origin_ns; /* monotonic time of recorded offset 0 at the first start */
    sk2_device_thread_t thread;
    _Atomic bool is_finished;
    /* Control and status, shared with any thread. */
    _Atomic bool is_paused;
    _Atomic bool is_waiting;
    _Atomic int64_t seek_us; /* recorded offset asked for, S_NO_SEEK for none */
    _Atomic uint64_t played;
    _Atomic uint64_t loop_count; /* wraps at the end (--loop) only */
    _Atomic size_t next_position;
    _Atomic int64_t next_offset_us; /* recorded offset of the next frame, within a pass */
    sk2_ratelimit_t warn_limit;
} s_replay_t;

static int s_stream_index(const s_replay_t *self, sk2_stream_kind_t kind)
{
    for (size_t i = 0; i < self->stream_count; i++)
        if (self->streams[i].kind == kind)
            return (int)i;
    return -1;
}

static void s_warn(s_replay_t *self, size_t index)
{
    uint64_t suppressed = 0;
    if (sk2_ratelimit_pass(&self->warn_limit, S_WARN_INTERVAL_US, &suppressed))
        SK2_WARN("replay", "%s: frame %zu skipped: %s (%llu more before)", self->path, index,
                 sk2_recording_reader_why(self->reader), (unsigned long long)suppressed);
}

/* Plays the frame at the current position, if its stream is wanted. */
static void s_play(s_replay_t *self, const sk2_recording_frame_info_t *info, size_t index,
                   int64_t offset_us)
{
    int stream = s_stream_index(self, info->kind);
    if (stream < 0 || !sk2_device_stream_wanted(self->owner, (size_t)stream))
        return;
    sk2_frame_t *frame = NULL;
    if (sk2_recording_reader_read_frame(self->reader, index, &frame) != 0) {
        s_warn(self, index);
        return;
    }
    uint64_t span = self->last_sequence[stream] - self->first_sequence[stream] + 1;
    sk2_frame_set_sequence(frame, info->sequence + self->loops * span);
    double rate = self->rate > 0 ? self->rate : 1.0;
    sk2_frame_set_device_timestamp_us(
        frame, self->rate > 0 ? (int64_t)((double)offset_us / rate)
                              : (sk2_device_thread_now_ns() - self->clock_origin_ns) / 1000);
    sk2_frame_set_capture_time_us(frame, sk2_clock_wall_us());
    sk2_device_emit_numbered(self->owner, (size_t)stream, &frame);
}

/* Recorded offset, within a pass, of the frame at position p of this device's frames. */
static int64_t s_offset_of(s_replay_t *self, size_t p)
{
    sk2_recording_frame_info_t info;
    if (p >= self->frame_count ||
        sk2_recording_reader_frame_info(self->reader, self->frames[p], &info) != 0)
        return self->span_us;
    return info.capture_time_us - self->origin_us;
}

static void s_publish_position(s_replay_t *self)
{
    bool is_end = atomic_load(&self->is_finished);
    atomic_store(&self->next_position, is_end ? self->frame_count : self->position);
    atomic_store(&self->next_offset_us, is_end ? self->span_us : s_offset_of(self, self->position));
}

/* Goes to the first frame at or after target_us (the last frame if none). A step backwards, or
 * out of the end, starts a new pass for numbering so that sequence numbers keep growing. A
 * linear walk: seeks are rare and one pass over the index is cheap next to decoding. */
static void s_apply_seek(s_replay_t *self, int64_t target_us)
{
    size_t p = 0;
    while (p + 1 < self->frame_count && s_offset_of(self, p) < target_us)
        p++;
    if (p < self->position || atomic_load(&self->is_finished))
        self->loops++;
    self->position = p;
    atomic_store(&self->is_finished, false);
    int64_t offset_us = s_offset_of(self, p) + (int64_t)self->loops * self->span_us;
    if (offset_us > self->last_offset_us)
        self->last_offset_us = offset_us;
    s_publish_position(self);
}

static void *s_play_thread(void *arg)
{
    s_replay_t *self = arg;
    /* Resume on the recorded spacing from wherever the last run stopped. */
    int64_t resume_offset_us = self->last_offset_us;
    int64_t resume_ns = sk2_device_thread_now_ns();
    if (!self->has_clock) {
        self->clock_origin_ns = resume_ns;
        self->has_clock = true;
    }
    bool was_holding = false;
    /* At rate 0 nothing waits between frames: the stop request is looked at here. */
    while (!sk2_device_thread_should_stop(&self->thread)) {
        int64_t seek_us = atomic_exchange(&self->seek_us, S_NO_SEEK);
        if (seek_us != S_NO_SEEK) {
            s_apply_seek(self, seek_us);
            was_holding = true; /* the clock starts again from the new frame */
        }
        bool is_waiting = self->is_wait_listener && atomic_load(&self->played) == 0 &&
                          !sk2_device_is_listened(self->owner);
        atomic_store(&self->is_waiting, is_waiting);
        int64_t now_ns = sk2_device_thread_now_ns();
        if (is_waiting || atomic_load(&self->is_paused) || atomic_load(&self->is_finished)) {
            /* Held: idle like a camera with nothing in view, looking at requests. */
            was_holding = true;
            if (!sk2_device_thread_wait_until(&self->thread, now_ns + S_SLICE_NS))
                break;
            continue;
        }
        if (was_holding) {
            resume_ns = now_ns;
            resume_offset_us = self->last_offset_us;
            was_holding = false;
        }
        size_t index = self->frames[self->position];
        sk2_recording_frame_info_t info;
        sk2_recording_reader_frame_info(self->reader, index, &info);
        int64_t offset_us =
            info.capture_time_us - self->origin_us + (int64_t)self->loops * self->span_us;
        if (offset_us < self->last_offset_us) /* out of order in the file: play at once */
            offset_us = self->last_offset_us;
        int64_t due_ns = self->rate > 0
                             ? resume_ns + (int64_t)((double)(offset_us - resume_offset_us) *
                                                     1000.0 / self->rate)
                             : 0;
        if (due_ns > now_ns) {
            /* Long gaps are waited in slices, and requests are looked at again before the
             * frame is played, so that a pause holds the frame it was asked at. */
            int64_t until_ns = due_ns - now_ns > S_SLICE_NS ? now_ns + S_SLICE_NS : due_ns;
            if (!sk2_device_thread_wait_until(&self->thread, until_ns))
                break;
            continue;
        }
        s_play(self, &info, index, offset_us);
        self->last_offset_us = offset_us;
        uint64_t played = atomic_fetch_add(&self->played, 1) + 1;
        if (++self->position == self->frame_count) {
            self->position = 0;
            if (self->is_looping) {
                self->loops++;
                atomic_fetch_add(&self->loop_count, 1);
            } else {
                atomic_store(&self->is_finished, true);
                SK2_INFO("replay", "%s: reached the end after %llu frames", self->path,
                         (unsigned long long)played);
            }
        }
        s_publish_position(self);
    }
    return NULL;
}

static int s_create(sk2_device_t *owner, void **impl_p)
{
    s_replay_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->owner = owner;
    self->rate = 1.0;
    atomic_init(&self->is_finished, false);
    atomic_init(&self->is_paused, false);
    atomic_init(&self->is_waiting, false);
    atomic_init(&self->seek_us, S_NO_SEEK);
    atomic_init(&self->played, 0);
    atomic_init(&self->loop_count, 0);
    atomic_init(&self->next_position, 0);
    atomic_init(&self->next_offset_us, 0);
    if (sk2_device_thread_init(&self->thread) != 0) {
        free(self);
        return SK2_ENOMEM;
    }
    *impl_p = self;
    return 0;
}

static void s_destroy(void *impl)
{
    s_replay_t *self = impl;
    sk2_recording_reader_destroy(&self->reader);
    free(self->frames);
    free(self->path);
    sk2_device_thread_fini(&self->thread);
    free(self);
}

/* Gathers the device's frames and the streams that have any. */
static int s_collect(s_replay_t *self)
{
    size_t total = sk2_recording_reader_frame_count(self->reader);
    self->frames = malloc((total ? total : 1) * sizeof *self->frames);
    if (!self->frames)
        return SK2_ENOMEM;
    bool has_frames[SK2_DEVICE_MAX_STREAMS] = {false};
    size_t recorded = sk2_recording_reader_stream_count(self->reader, self->recorded_device);
    sk2_stream_info_t infos[SK2_DEVICE_MAX_STREAMS];
    for (size_t s = 0; s < recorded && s < SK2_DEVICE_MAX_STREAMS; s++)
        sk2_recording_reader_stream_info(self->reader, self->recorded_device, s, &infos[s]);
    int64_t last_us = 0, first_stream_last_us = 0;
    size_t first_stream_count = 0;
    sk2_stream_kind_t first_kind = 0;
    for (size_t i = 0; i < total; i++) {
        sk2_recording_frame_info_t info;
        if (sk2_recording_reader_frame_info(self->reader, i, &info) != 0 ||
            info.device != self->recorded_device)
            continue;
        size_t s = 0;
        while (s < recorded && infos[s].kind != info.kind)
            s++;
        if (s == recorded || s >= SK2_DEVICE_MAX_STREAMS)
            continue;
        if (self->frame_count == 0) {
            self->origin_us = info.capture_time_us;
            first_kind = info.kind;
        }
        if (!has_frames[s]) {
            has_frames[s] = true;
            self->first_sequence[s] = info.sequence;
        }
        if (info.sequence > self->last_sequence[s])
            self->last_sequence[s] = info.sequence;
        if (info.kind == first_kind) {
            first_stream_count++;
            first_stream_last_us = info.capture_time_us;
        }
        if (info.capture_time_us > last_us || self->frame_count == 0)
            last_us = info.capture_time_us;
        self->frames[self->frame_count++] = i;
    }
    if (self->frame_count == 0)
        return SK2_ENOTFOUND;
    /* Streams are renumbered to those with frames; sequences follow their stream. */
    uint64_t first[SK2_DEVICE_MAX_STREAMS], last[SK2_DEVICE_MAX_STREAMS];
    for (size_t s = 0; s < recorded && s < SK2_DEVICE_MAX_STREAMS; s++) {
        if (!has_frames[s])
            continue;
        first[self->stream_count] = self->first_sequence[s];
        last[self->stream_count] = self->last_sequence[s];
        self->streams[self->stream_count++] = infos[s];
    }
    memcpy(self->first_sequence, first, sizeof first);
    memcpy(self->last_sequence, last, sizeof last);
    int64_t period = first_stream_count > 1 ? (first_stream_last_us - self->origin_us) /
                                                  (int64_t)(first_stream_count - 1)
                                            : S_DEFAULT_PERIOD_US;
    self->span_us = (last_us > self->origin_us ? last_us - self->origin_us : 0) +
                    (period > 0 ? period : S_DEFAULT_PERIOD_US);
    return 0;
}

static int s_open(void *impl)
{
    s_replay_t *self = impl;
    if (!self->path) {
        SK2_ERROR("replay", "no recording to play: sk2_device_set_replay_source first");
        return SK2_EDEVICE;
    }
    self->reader = sk2_recording_reader_new();
    if (!self->reader)
        return SK2_ENOMEM;
    if (self->max_frame_bytes)
        sk2_recording_reader_set_max_frame_bytes(self->reader, self->max_frame_bytes);
    int rc = sk2_recording_reader_open(self->reader, self->path);
    if (rc != 0) {
        SK2_ERROR("replay", "cannot play %s: %s", self->path,
                  sk2_recording_reader_why(self->reader));
        return rc == SK2_ENOMEM ? rc : SK2_EDEVICE;
    }
    if (self->recorded_device >= sk2_recording_reader_device_count(self->reader)) {
        SK2_ERROR("replay", "%s has %zu device(s), no device %zu", self->path,
                  sk2_recording_reader_device_count(self->reader), self->recorded_device);
        return SK2_EDEVICE;
    }
    rc = s_collect(self);
    if (rc != 0) {
        if (rc == SK2_ENOTFOUND)
            SK2_ERROR("replay", "%s holds no frames of device %zu", self->path,
                      self->recorded_device);
        return rc == SK2_ENOMEM ? rc : SK2_EDEVICE;
    }
    const char *id = sk2_recording_reader_device_id(self->reader, self->recorded_device);
    if (sk2_device_set_id(self->owner, id) != 0)
        SK2_WARN("replay", "recorded id '%.64s' is not a valid device id; a new one is used", id);
    sk2_device_set_serial(self->owner,
                          sk2_recording_reader_device_serial(self->reader, self->recorded_device));
    /* Where the recorded device was, if the file says: served as this device's own. */
    sk2_pose_t pose;
    sk2_extrinsics_t extrinsics;
    if (sk2_recording_reader_device_pose(self->reader, self->recorded_device, &pose) == 0)
        (void)sk2_device_set_pose(self->owner, &pose);
    if (sk2_recording_reader_device_depth_to_color(self->reader, self->recorded_device,
                                                   &extrinsics) == 0)
        sk2_device_set_depth_to_color(self->owner, &extrinsics);
    return 0;
}

static int s_start(void *impl)
{
    s_replay_t *self = impl;
    return sk2_device_thread_start(&self->thread, s_play_thread, self);
}

static void s_stop(void *impl)
{
    s_replay_t *self = impl;
    sk2_device_thread_stop(&self->thread);
}

/* The streams as recorded, answered here rather than declared at open because their rate
 * follows sk2_device_set_replay_rate(), which may change after open. */
static size_t s_stream_count(const void *impl)
{
    const s_replay_t *self = impl;
    return self->stream_count;
}

static int s_stream_info(const void *impl, size_t index, sk2_stream_info_t *info)
{
    const s_replay_t *self = impl;
    if (index >= self->stream_count)
        return SK2_ENOTFOUND;
    *info = self->streams[index];
    info->fps = self->rate > 0 ? info->fps * self->rate : 0;
    return 0;
}

const sk2_device_backend_t sk2_device_backend_replay = {
    .name = "replay",
    .create = s_create,
    .destroy = s_destroy,
    .set_fps = NULL,
    .open = s_open,
    .start = s_start,
    .stop = s_stop,
    .stream_count = s_stream_count,
    .stream_info = s_stream_info,
    .set_color_size = NULL,
};

/* ---- Public setters ---- */

int sk2_device_set_replay_source(sk2_device_t *device, const char *path, size_t recorded_device)
{
    s_replay_t *self = sk2_device_impl(device, &sk2_device_backend_replay);
    if (!self || !path || !*path || recorded_device >= SK2_RECORDING_MAX_DEVICES)
        return SK2_EINVAL;
    if (sk2_device_is_open(device))
        return SK2_ESTATE;
    char *copy = strdup(path);
    if (!copy)
        return SK2_ENOMEM;
    free(self->path);
    self->path = copy;
    self->recorded_device = recorded_device;
    return 0;
}

int sk2_device_set_replay_rate(sk2_device_t *device, double rate)
{
    s_replay_t *self = sk2_device_impl(device, &sk2_device_backend_replay);
    if (!self || isnan(rate) || rate < 0 || rate > 1000)
        return SK2_EINVAL;
    if (sk2_device_is_running(device))
        return SK2_ESTATE;
    self->rate = rate;
    return 0;
}

int sk2_device_set_replay_max_frame_bytes(sk2_device_t *device, size_t max_frame_bytes)
{
    s_replay_t *self = sk2_device_impl(device, &sk2_device_backend_replay);
    if (!self || max_frame_bytes < SK2_LIMIT_FRAME_BYTES_MIN ||
        max_frame_bytes > SK2_LIMIT_FRAME_BYTES_MAX)
        return SK2_EINVAL;
    if (self->reader)
        return SK2_ESTATE;
    self->max_frame_bytes = max_frame_bytes;
    return 0;
}

int sk2_device_set_replay_loop(sk2_device_t *device, bool is_looping)
{
    s_replay_t *self = sk2_device_impl(device, &sk2_device_backend_replay);
    if (!self)
        return SK2_EINVAL;
    if (sk2_device_is_running(device))
        return SK2_ESTATE;
    self->is_looping = is_looping;
    return 0;
}

bool sk2_device_replay_is_finished(const sk2_device_t *device)
{
    s_replay_t *self = sk2_device_impl((sk2_device_t *)device, &sk2_device_backend_replay);
    return self && atomic_load(&self->is_finished);
}

int sk2_device_set_replay_wait(sk2_device_t *device, bool is_waiting)
{
    s_replay_t *self = sk2_device_impl(device, &sk2_device_backend_replay);
    if (!self)
        return SK2_EINVAL;
    if (sk2_device_is_running(device))
        return SK2_ESTATE;
    self->is_wait_listener = is_waiting;
    /* Reported as waiting from the start, before the thread first looks. */
    atomic_store(&self->is_waiting, is_waiting && atomic_load(&self->played) == 0);
    return 0;
}

int sk2_device_replay_control(sk2_device_t *device, sk2_replay_action_t action, double position_s,
                              sk2_replay_status_t *status)
{
    if (!device)
        return SK2_EINVAL;
    s_replay_t *self = sk2_device_impl(device, &sk2_device_backend_replay);
    if (!self)
        return SK2_EUNSUPPORTED;
    if (!sk2_device_is_open(device) || self->frame_count == 0)
        return SK2_ESTATE;
    switch (action) {
    case SK2_REPLAY_STATUS:
        break;
    case SK2_REPLAY_PAUSE:
    case SK2_REPLAY_RESUME:
        atomic_store(&self->is_paused, action == SK2_REPLAY_PAUSE);
        break;
    case SK2_REPLAY_SEEK:
        /* Up to about 31 years: far past any recording, and safe to turn into microseconds. */
        if (isnan(position_s) || position_s < 0 || position_s > 1e9)
            return SK2_EINVAL;
        atomic_store(&self->seek_us, (int64_t)(position_s * 1e6));
        break;
    default:
        return SK2_EINVAL;
    }
    if (status) {
        *status = (sk2_replay_status_t){
            .is_waiting = atomic_load(&self->is_waiting),
            .is_listened = sk2_device_is_listened(device),
            .is_paused = atomic_load(&self->is_paused),
            .is_ended = atomic_load(&self->is_finished),
            .played = atomic_load(&self->played),
            .loops = atomic_load(&self->loop_count),
            .position = atomic_load(&self->next_position),
            .frames = self->frame_count,
            .position_s = (double)atomic_load(&self->next_offset_us) / 1e6,
            .duration_s = (double)self->span_us / 1e6,
        };
    }
    return 0;
}

static const char *const s_action_names[] = {"status", "pause", "resume", "seek"};

const char *sk2_replay_action_name(sk2_replay_action_t action)
{
    return (unsigned)action < sizeof s_action_names / sizeof s_action_names[0]
               ? s_action_names[action]
               : NULL;
}

int sk2_replay_action_parse(const char *name, sk2_replay_action_t *action)
{
    for (size_t i = 0; name && i < sizeof s_action_names / sizeof s_action_names[0]; i++)
        if (strcmp(name, s_action_names[i]) == 0) {
            *action = (sk2_replay_action_t)i;
            return 0;
        }
    return SK2_EINVAL;
}
