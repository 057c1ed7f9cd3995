/* Device pipelines. Three threads touch a pipeline and each owns its part: the device thread
 * owns the sending end of the frame queue; the pipeline actor owns the receiving end and both
 * publishing sockets; the server actor (or, while it starts or stops, the server's life-cycle
 * worker) owns the pipeline object. Counters are the only state shared between threads:
 * relaxed atomics, read for statistics and, on the device thread, to decide about a frame
 * (does anyone want its stream, how many of its stream are waiting).
 *
 * The queue is bounded per stream: up to queue_frames frames of each stream may wait, so the
 * depth, IR and colour frames of one capture, which arrive together, all fit, and a frame is
 * dropped only when its own stream's encoding has fallen behind. Frames of a stream nobody
 * subscribes to never enter the queue: they are counted as idle on the device thread.
 *
 * Both endpoints are XPUB sockets, so the actor learns every subscription. The version-1
 * `depth` endpoint carries depth12 and is encoded only while it has subscribers; the `streams`
 * endpoint carries one topic per (stream, codec) pair, and each pair is encoded once per frame,
 * for all its subscribers, only while it has at least one. Streams nobody wants are switched
 * off in the device, so the colour camera costs nothing until someone asks for it.
 *
 * One encoder thread per device keeps frames in order without a reorder buffer. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "core/log_internal.h"
#include "core/runtime.h"
#include "device/device_impl.h"
#include "proto/header.h"
#include "proto/pose.h"
#include "proto/socket.h"
#include "server/pipeline.h"
#include "sk2/codec.h"
#include "sk2/error.h"
#include "sk2/recording.h"

/* Messages a slow subscriber may have queued before libzmq drops its frames: a client that
 * stops reading costs a few frames of memory and only itself frames, never a growing queue. */
#define S_V1_HWM      8
#define S_STREAMS_HWM 4
#define S_KINDS       5  /* stream kinds are 1..4 */
#define S_MAX_CODECS  16 /* codecs the registry may hold */
#define S_MAX_STREAMS 8  /* streams a device may offer */
/* How often a pipeline whose subscribers wait for a place under the server's cap looks for a
 * free one (another device's pair may have given its place back). */
#define S_ADMIT_RETRY_MS 250

#define S_INC(field, n) atomic_fetch_add_explicit(&(field), (n), memory_order_relaxed)
#define S_LOAD(field)   atomic_load_explicit(&(field), memory_order_relaxed)

/* One (stream, codec) pair. */
typedef struct {
    _Atomic int64_t subscribers;     /* subscriptions now, an upper bound (see s_count) */
    _Atomic bool is_admitted;        /* holds a place under the server's cap (see s_admit) */
    _Atomic uint64_t refused;        /* subscriptions that found the cap full */
    _Atomic uint64_t encoded;        /* frames encoded */
    _Atomic uint64_t bytes_raw;      /* their pixel bytes */
    _Atomic uint64_t bytes_out;      /* encoded bytes sent */
    _Atomic uint64_t encode_time_us; /* time spent encoding */
} s_encoding_t;

typedef struct {
    _Atomic uint64_t produced; /* frames of this stream handed over by the device */
    _Atomic uint64_t dropped;  /* of which not processed (queue full, failure, shutdown) */
    _Atomic uint64_t idle;     /* processed while nobody wanted this stream */
    _Atomic int64_t waiting;   /* frames of this stream in the queue now */
    _Atomic uint64_t newest;   /* sequence number of the newest one plus one; 0: none yet */
} s_stream_t;

typedef struct {
    _Atomic uint64_t queued;    /* frames the queue accepted */
    _Atomic uint64_t received;  /* frames taken off the queue by the actor */
    _Atomic uint64_t encoded;   /* frames encoded for at least one subscriber */
    _Atomic uint64_t published; /* frames sent on at least one endpoint */
} s_totals_t;

struct sk2_pipeline {
    zactor_t *actor;            /* the encode/publish thread */
    sk2_device_t *device;       /* owned; started and stopped by the actor */
    zsock_t *v1;                /* `depth` XPUB (version 1): the actor's */
    zsock_t *streams;           /* `streams` XPUB: the actor's */
    sk2_peers_t *v1_peers;      /* connections to `v1` (read by the actor) */
    sk2_peers_t *streams_peers; /* connections to `streams` (read by the actor) */
    zsock_t *queue_in;          /* receiving end of the frame queue: the actor's */
    zsock_t *queue_out;         /* sending end: the device thread's while it runs */
    int start_rc;               /* result of starting the device, set before the actor signals */
    unsigned queue_frames;      /* frames of one stream that may wait for the encoder */
    _Atomic bool is_lost;       /* set on the device's thread when it reports the device lost */
    _Atomic bool is_stopping;   /* set by the actor once it reads the queue no more */
    _Atomic size_t max_frame_bytes;  /* the frame budget, set by the server actor */
    _Atomic int64_t clock_offset_us; /* added to the times in headers, set by the server actor */
    bool has_warned_limit;           /* the pipeline thread logged a frame over the budget */
    sk2_stream_cap_t *cap;           /* the server's cap on encodings, shared; may be NULL */
    /* Settings of keyed commands (src/server/command.c): the server actor stores what it
     * accepted here and asks the actor to apply it, so the server can answer `list` at once. */
    _Atomic bool is_held[S_KINDS]; /* stream switched off by a command, whatever subscribes */
    _Atomic bool is_paused;        /* device stopped by a command (`running` false) */
    _Atomic int quality;           /* JPEG quality the encoder uses, 1..100 */
    _Atomic double fps;            /* the rate the device was asked for; < 0: never set */
    /* Server-side recording (the `record` key): path and writer are the pipeline thread's. */
    char record_path[4096];           /* where it records, from the RECORD command */
    bool has_record_pose;             /* the pose to write into the recording, if any */
    sk2_pose_t record_pose;           /* (the one the server serves, sent with RECORD) */
    _Atomic bool is_recording;        /* asked to record (cleared if the writer fails) */
    sk2_recording_writer_t *recorder; /* the pipeline thread's, while recording */
    size_t recorder_device;           /* the device's index in the recording */
    char id[SK2_DEVICE_ID_MAX + 1];
    char depth_endpoint[128];     /* advertised address of `v1` */
    char streams_endpoint[128];   /* advertised address of `streams` */
    json_t *description;          /* the device record for `me`; immutable once built */
    sk2_codec_options_t *options; /* encoder options (JPEG quality); fixed */
    /* The device's streams as at open, or as the last `resolution` command left them, twice:
     * infos is the pipeline thread's (it rewrites them on SIZE), served the server actor's (for
     * `me` and commands; the pipeline thread sends the new ones back in its answer to SIZE).
     * Kinds and formats never change. */
    sk2_stream_info_t infos[S_MAX_STREAMS];
    sk2_stream_info_t served[S_MAX_STREAMS];
    uint32_t resize[3]; /* SIZE's stream index, width, height: set by the server actor */
    /* The codec `me` names as each stream's default (the `codec` key): the server actor's. */
    const sk2_codec_t *default_codec[S_KINDS];
    size_t stream_count;
    s_totals_t totals;
    s_stream_t per_kind[S_KINDS];
    s_encoding_t encodings[S_KINDS][S_MAX_CODECS];
};

/* ---- Helpers ------------------------------------------------------------------------------ */

static size_t s_codec_index(const sk2_codec_t *codec)
{
    for (size_t i = 0; i < sk2_codec_count() && i < S_MAX_CODECS; i++)
        if (sk2_codec_at(i) == codec)
            return i;
    return S_MAX_CODECS;
}

static const sk2_stream_info_t *s_info(const sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    for (size_t i = 0; i < self->stream_count; i++)
        if (self->infos[i].kind == kind)
            return &self->infos[i];
    return NULL;
}

/* The same from the server actor's copy. */
static const sk2_stream_info_t *s_served(const sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    for (size_t i = 0; i < self->stream_count; i++)
        if (self->served[i].kind == kind)
            return &self->served[i];
    return NULL;
}

/* Codecs the `streams` endpoint offers for a pixel format: all that take it but depth12, which
 * belongs to the version-1 endpoint alone. */
static bool s_offered(const sk2_codec_t *codec, sk2_pixel_format_t format)
{
    return codec && sk2_codec_supports(codec, format) && sk2_codec_wire_id(codec) != 0 &&
           strcmp(sk2_codec_name(codec), SK2_CODEC_DEPTH12) != 0;
}

/* Whether this pair is encoded now: someone subscribes to it and it holds a place under the
 * server's cap (the version-1 depth12 pair always does). Any thread. */
static bool s_is_encoded(s_encoding_t *encoding)
{
    return S_LOAD(encoding->subscribers) > 0 &&
           atomic_load_explicit(&encoding->is_admitted, memory_order_relaxed);
}

/* ---- The device thread ---------------------------------------------------------------------- */

/* Whether this stream is encoded now, with any codec. Any thread. */
static bool s_is_wanted(sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    for (size_t c = 0; c < S_MAX_CODECS; c++)
        if (s_is_encoded(&self->encodings[kind % S_KINDS][c]))
            return true;
    return false;
}

/* Runs on the device's thread: hand the frame over or drop it, never wait. */
static void s_sink(void *arg, sk2_frame_t **frame_p)
{
    sk2_pipeline_t *self = arg;
    sk2_frame_t *frame = *frame_p;
    sk2_stream_kind_t kind = sk2_frame_kind(frame);
    s_stream_t *stream = &self->per_kind[kind % S_KINDS];
    S_INC(stream->produced, 1);
    atomic_store_explicit(&stream->newest, sk2_frame_sequence(frame) + 1, memory_order_relaxed);
    if (atomic_load(&self->is_stopping)) {
        S_INC(stream->dropped, 1); /* shutting down: nobody will read it */
        sk2_frame_destroy(frame_p);
        return;
    }
    if (!s_is_wanted(self, kind)) {
        S_INC(stream->idle, 1); /* nothing to encode: no need to queue it */
        sk2_frame_destroy(frame_p);
        return;
    }
    /* Only this thread adds to `waiting`, so it cannot rise past the bound between the check
     * and the increment. */
    if (S_LOAD(stream->waiting) < (int64_t)self->queue_frames) {
        S_INC(stream->waiting, 1);
        sk2_handoff_release(frame);
        if (zmq_send(zsock_resolve(self->queue_out), &frame, sizeof frame, ZMQ_DONTWAIT) ==
            (int)sizeof frame) {
            *frame_p = NULL; /* the queue owns it now */
            S_INC(self->totals.queued, 1);
            return;
        }
        S_INC(stream->waiting, -1);
    }
    S_INC(stream->dropped, 1);
    static _Thread_local sk2_ratelimit_t limit;
    uint64_t held = 0;
    if (sk2_ratelimit_pass(&limit, 5000000, &held))
        SK2_WARN("server",
                 "device %s: encoder behind, dropping %s frames (%llu more drops not logged)",
                 self->id, sk2_stream_kind_name(kind), (unsigned long long)held);
    sk2_frame_destroy(frame_p);
}

/* Runs on a device thread when the device is lost: the server actor polls for it. */
static void s_lost(void *arg, sk2_device_t *device, const char *reason)
{
    (void)device;
    (void)reason;
    sk2_pipeline_t *self = arg;
    atomic_store(&self->is_lost, true);
}

/* ---- Encoding and publishing ---------------------------------------------------------------- */

typedef struct {
    uint8_t *data; /* grows to the largest encoding so far */
    size_t size;
} s_scratch_t;

/* Encodes the frame with one codec into scratch; returns the length, 0 on failure. */
static size_t s_encode(sk2_pipeline_t *self, const sk2_frame_t *frame, const sk2_codec_t *codec,
                       s_encoding_t *counters, s_scratch_t *scratch)
{
    size_t bound = sk2_codec_encode_bound(codec, sk2_frame_format(frame), sk2_frame_width(frame),
                                          sk2_frame_height(frame));
    if (bound == 0)
        return 0;
    if (bound > scratch->size) {
        uint8_t *grown = realloc(scratch->data, bound);
        if (!grown) {
            SK2_ERROR("server", "device %s: out of memory for a %zu-byte frame", self->id, bound);
            return 0;
        }
        scratch->data = grown;
        scratch->size = bound;
    }
    size_t length = 0;
    int64_t start = sk2_clock_mono_us();
    int rc =
        sk2_codec_encode_opts(codec, frame, self->options, scratch->data, scratch->size, &length);
    if (rc != 0) {
        static _Thread_local sk2_ratelimit_t limit;
        if (sk2_ratelimit_pass(&limit, 5000000, NULL))
            SK2_WARN("server", "device %s: cannot encode %s frame with %s: %s", self->id,
                     sk2_stream_kind_name(sk2_frame_kind(frame)), sk2_codec_name(codec),
                     sk2_strerror(rc));
        return 0;
    }
    S_INC(counters->encode_time_us, (uint64_t)(sk2_clock_mono_us() - start));
    S_INC(counters->encoded, 1);
    S_INC(counters->bytes_raw, sk2_frame_size(frame));
    S_INC(counters->bytes_out, length);
    return length;
}

static void s_record_stop(sk2_pipeline_t *self);

/* Appends a published depth frame to the server-side recording; a failing writer (a full disk)
 * ends the recording, with a log line. */
static void s_record(sk2_pipeline_t *self, const uint8_t *header, const uint8_t *payload,
                     size_t length)
{
    int rc = sk2_recording_writer_add_encoded(self->recorder, self->recorder_device, header,
                                              SK2_HEADER_SIZE, payload, length);
    if (rc != 0) {
        SK2_ERROR("server", "device %s: recording to %s stopped: %s", self->id, self->record_path,
                  sk2_recording_writer_why(self->recorder));
        s_record_stop(self);
    }
}

static bool s_send_v1(sk2_pipeline_t *self, const sk2_frame_t *frame, s_scratch_t *scratch)
{
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
    size_t index = s_codec_index(codec);
    if (index == S_MAX_CODECS)
        return false;
    size_t length =
        s_encode(self, frame, codec, &self->encodings[SK2_STREAM_DEPTH][index], scratch);
    /* XPUB never blocks: a subscriber at its high-water mark just misses this frame. */
    return length > 0 &&
           zmq_send(zsock_resolve(self->v1), scratch->data, length, ZMQ_DONTWAIT) == (int)length;
}

static bool s_send_stream(sk2_pipeline_t *self, const sk2_frame_t *frame, const sk2_codec_t *codec,
                          s_encoding_t *counters, s_scratch_t *scratch)
{
    size_t length = s_encode(self, frame, codec, counters, scratch);
    if (length == 0)
        return false;
    char topic[SK2_TOPIC_MAX];
    size_t topic_length = sk2_topic_format(sk2_frame_kind(frame), codec, topic, sizeof topic);
    int64_t offset_us = S_LOAD(self->clock_offset_us);
    sk2_header_t header =
        sk2_header_of_frame(frame, codec, (uint32_t)length, sk2_clock_wall_us() + offset_us);
    header.capture_time_us += offset_us;
    uint8_t bytes[SK2_HEADER_SIZE];
    if (topic_length == 0 || sk2_header_write(&header, bytes) != 0)
        return false;
    if (self->recorder && sk2_frame_kind(frame) == SK2_STREAM_DEPTH &&
        streq(sk2_codec_name(codec), SK2_CODEC_RVL))
        s_record(self, bytes, scratch->data, length);
    void *socket = zsock_resolve(self->streams);
    /* Once the first part of a message is accepted, libzmq takes the rest. */
    if (zmq_send(socket, topic, topic_length, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return false;
    return zmq_send(socket, bytes, sizeof bytes, ZMQ_SNDMORE) >= 0 &&
           zmq_send(socket, scratch->data, length, 0) >= 0;
}

static void s_process(sk2_pipeline_t *self, const sk2_frame_t *frame, s_scratch_t *scratch)
{
    sk2_stream_kind_t kind = sk2_frame_kind(frame);
    s_stream_t *stream = &self->per_kind[kind % S_KINDS];
    /* A frame over the budget would be dropped by every client with the same limits: it is not
     * published at all, so none of them has to read it. */
    size_t max_frame_bytes = S_LOAD(self->max_frame_bytes);
    if (sk2_frame_size(frame) > max_frame_bytes) {
        S_INC(stream->dropped, 1);
        if (!self->has_warned_limit)
            SK2_WARN("server",
                     "device %s: %s frames of %ux%u (%zu bytes) are over the limit of "
                     "%zu bytes: dropped, not published",
                     self->id, sk2_stream_kind_name(kind), sk2_frame_width(frame),
                     sk2_frame_height(frame), sk2_frame_size(frame), max_frame_bytes);
        self->has_warned_limit = true;
        return;
    }
    bool wanted = false, sent = false;
    size_t depth12 = s_codec_index(sk2_codec_find(SK2_CODEC_DEPTH12));
    if (kind == SK2_STREAM_DEPTH && depth12 < S_MAX_CODECS &&
        s_is_encoded(&self->encodings[kind][depth12])) {
        wanted = true;
        sent |= s_send_v1(self, frame, scratch);
    }
    for (size_t i = 0; i < sk2_codec_count() && i < S_MAX_CODECS; i++) {
        s_encoding_t *encoding = &self->encodings[kind % S_KINDS][i];
        if (!s_is_encoded(encoding) || !s_offered(sk2_codec_at(i), sk2_frame_format(frame)))
            continue;
        wanted = true;
        sent |= s_send_stream(self, frame, sk2_codec_at(i), encoding, scratch);
    }
    if (!wanted)
        S_INC(stream->idle, 1);
    else if (!sent)
        S_INC(stream->dropped, 1); /* wanted, but every encoding failed */
    else {
        S_INC(self->totals.encoded, 1);
        S_INC(self->totals.published, 1);
    }
    SK2_TRACE("server", "device %s: %s frame %llu %s", self->id, sk2_stream_kind_name(kind),
              (unsigned long long)sk2_frame_sequence(frame),
              sent     ? "published"
              : wanted ? "failed"
                       : "not wanted");
}

/* ---- Subscriptions -------------------------------------------------------------------------- */

static void s_update_device(sk2_pipeline_t *self)
{
    /* Whether anyone listens at all, depth included: a replay waits for it. */
    bool is_listened = false;
    for (size_t k = 0; k < S_KINDS; k++)
        for (size_t c = 0; c < S_MAX_CODECS; c++)
            is_listened |= s_is_encoded(&self->encodings[k][c]);
    sk2_device_set_listened(self->device, is_listened);
    /* Depth stays on (it is what version-1 clients get) unless a command holds it; the rest
     * follows demand. */
    for (size_t i = 0; i < self->stream_count; i++) {
        sk2_stream_kind_t kind = self->infos[i].kind;
        if (atomic_load(&self->is_held[kind % S_KINDS])) {
            sk2_device_set_stream_enabled(self->device, kind, false);
            continue;
        }
        if (kind == SK2_STREAM_DEPTH) {
            sk2_device_set_stream_enabled(self->device, kind, true);
            continue;
        }
        bool wanted = false;
        for (size_t c = 0; c < S_MAX_CODECS; c++)
            wanted |= s_is_encoded(&self->encodings[kind % S_KINDS][c]);
        sk2_device_set_stream_enabled(self->device, kind, wanted);
    }
}

/* The XPUB sockets are ZMQ_XPUB_VERBOSE: libzmq passes up every subscribe, but an unsubscribe
 * only when the topic's last subscriber has gone (by unsubscribing or by disconnecting). So an
 * unsubscribe is authoritative: nobody wants the pair any more, whatever was counted before. A
 * peer can make that neither happen too early (libzmq ignores an unsubscribe from a peer that
 * did not subscribe, and one from a peer while others remain) nor too late (a peer that
 * subscribed twice, as a SUB socket does when asked twice, leaves with one unsubscribe, which
 * XPUB_VERBOSER passed on as if it were one of two, keeping the pair encoded for nobody). The
 * count between is an upper bound: departures other than the last are not reported, so
 * s_clamp keeps it at most the connections the socket has. */
static void s_count(s_encoding_t *encoding, bool is_subscribe)
{
    if (is_subscribe)
        S_INC(encoding->subscribers, 1);
    else
        atomic_store_explicit(&encoding->subscribers, 0, memory_order_relaxed);
}

/* After connections to a socket ended: no pair of it can have more subscribers than the socket
 * has connections. Never below one while the pair is subscribed: only libzmq's unsubscribe says
 * it is not (the monitor's events and the subscriptions travel apart, so the connection count
 * may lag for a moment). */
static void s_clamp(sk2_pipeline_t *self, bool is_v1, unsigned peers)
{
    size_t depth12 = s_codec_index(sk2_codec_find(SK2_CODEC_DEPTH12));
    for (size_t k = 0; k < S_KINDS; k++)
        for (size_t c = 0; c < S_MAX_CODECS; c++) {
            if ((k == SK2_STREAM_DEPTH && c == depth12) != is_v1)
                continue;
            s_encoding_t *encoding = &self->encodings[k][c];
            int64_t count = S_LOAD(encoding->subscribers);
            int64_t most = peers > 0 ? (int64_t)peers : 1;
            if (count > most)
                atomic_store_explicit(&encoding->subscribers, most, memory_order_relaxed);
        }
}

/* Takes a place under the server's cap for a pair of the `streams` endpoint, if it has none:
 * true if it holds one now. Only the pipeline actor admits and releases its pairs; the count of
 * places is shared with the other pipelines, hence the compare-and-swap. */
static bool s_admit(sk2_pipeline_t *self, s_encoding_t *encoding)
{
    if (atomic_load(&encoding->is_admitted))
        return true;
    if (self->cap) {
        unsigned max = atomic_load(&self->cap->max_streams);
        unsigned active = atomic_load(&self->cap->active);
        do {
            if (max > 0 && active >= max)
                return false;
        } while (!atomic_compare_exchange_weak(&self->cap->active, &active, active + 1));
    }
    atomic_store(&encoding->is_admitted, true);
    return true;
}

static void s_release(sk2_pipeline_t *self, s_encoding_t *encoding)
{
    if (!atomic_exchange(&encoding->is_admitted, false))
        return;
    if (self->cap)
        atomic_fetch_sub(&self->cap->active, 1);
}

/* Gives a place to pairs whose subscribers wait for one (in a fixed order: kind, then codec).
 * Returns whether some still wait. */
static bool s_admit_waiting(sk2_pipeline_t *self)
{
    bool is_waiting = false;
    for (size_t k = 0; k < S_KINDS; k++)
        for (size_t c = 0; c < S_MAX_CODECS; c++) {
            s_encoding_t *encoding = &self->encodings[k][c];
            if (S_LOAD(encoding->subscribers) > 0 && !atomic_load(&encoding->is_admitted) &&
                !s_admit(self, encoding))
                is_waiting = true;
        }
    return is_waiting;
}

static bool s_has_waiting(sk2_pipeline_t *self)
{
    for (size_t k = 0; k < S_KINDS; k++)
        for (size_t c = 0; c < S_MAX_CODECS; c++)
            if (S_LOAD(self->encodings[k][c].subscribers) > 0 &&
                !atomic_load(&self->encodings[k][c].is_admitted))
                return true;
    return false;
}

/* After a subscription to a `streams` pair: the first subscriber asks for a place, the last one
 * leaving gives it back (and another pipeline or pair may take it). */
static void s_settle(sk2_pipeline_t *self, sk2_stream_kind_t kind, const sk2_codec_t *codec,
                     bool is_subscribe)
{
    s_encoding_t *encoding = &self->encodings[kind][s_codec_index(codec)];
    if (S_LOAD(encoding->subscribers) == 0) {
        s_release(self, encoding);
        s_admit_waiting(self);
        return;
    }
    if (!is_subscribe || s_admit(self, encoding))
        return;
    S_INC(encoding->refused, 1);
    if (self->cap)
        S_INC(self->cap->refused, 1);
    static _Thread_local sk2_ratelimit_t limit;
    uint64_t held = 0;
    if (sk2_ratelimit_pass(&limit, 60000000, &held))
        SK2_WARN("server",
                 "device %s: %s/%s not encoded: the server encodes %u streams already, its cap "
                 "(--max-streams); the subscriber waits for one to end (%llu more refusals not "
                 "logged)",
                 self->id, sk2_stream_kind_name(kind), sk2_codec_name(codec),
                 atomic_load(&self->cap->max_streams), (unsigned long long)held);
}

/* Reads every pending subscription message from one XPUB socket. */
static void s_subscriptions(sk2_pipeline_t *self, zsock_t *socket)
{
    bool is_v1 = socket == self->v1;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (zmq_msg_recv(&msg, zsock_resolve(socket), ZMQ_DONTWAIT) >= 0) {
        const uint8_t *data = zmq_msg_data(&msg);
        size_t size = zmq_msg_size(&msg);
        if (size < 1 || data[0] > 1)
            continue; /* not a subscription message */
        bool is_subscribe = data[0] == 1;
        if (is_v1) {
            /* Version-1 clients subscribe to everything, the empty topic. Only it counts: a
             * peer that subscribed to some prefix of the payload and left must not make the
             * empty topic look deserted (an unsubscribe is authoritative, see s_count). */
            if (size != 1)
                continue;
            size_t index = s_codec_index(sk2_codec_find(SK2_CODEC_DEPTH12));
            if (index < S_MAX_CODECS)
                s_count(&self->encodings[SK2_STREAM_DEPTH][index], is_subscribe);
            continue;
        }
        sk2_stream_kind_t kind;
        const sk2_codec_t *codec;
        const sk2_stream_info_t *info = NULL;
        if (sk2_topic_parse(data + 1, size - 1, &kind, &codec) != 0 ||
            !(info = s_info(self, kind)) || !s_offered(codec, info->format)) {
            SK2_DEBUG("server", "device %s: ignoring subscription to '%.*s'", self->id,
                      (int)(size - 1 > 64 ? 64 : size - 1), (const char *)data + 1);
            continue;
        }
        s_count(&self->encodings[kind][s_codec_index(codec)], is_subscribe);
        s_settle(self, kind, codec, is_subscribe);
        SK2_DEBUG("server", "device %s: %s %s/%s", self->id,
                  is_subscribe ? "subscribe" : "unsubscribe", sk2_stream_kind_name(kind),
                  sk2_codec_name(codec));
    }
    zmq_msg_close(&msg);
    s_update_device(self);
}

/* Reads the connection events of both sockets; connections that ended lower the counts. */
static void s_connections(sk2_pipeline_t *self)
{
    /* Subscriptions first: an unsubscribe that says a topic is empty comes before a lower
     * bound is applied to what remains. */
    if (sk2_peers_read(self->v1_peers)) {
        s_subscriptions(self, self->v1);
        s_clamp(self, true, sk2_peers_count(self->v1_peers));
    }
    if (sk2_peers_read(self->streams_peers)) {
        s_subscriptions(self, self->streams);
        s_clamp(self, false, sk2_peers_count(self->streams_peers));
    }
}

/* ---- The actor --------------------------------------------------------------------------------
 */

/* Takes the next frame off the queue, or returns NULL. */
static sk2_frame_t *s_take(sk2_pipeline_t *self)
{
    sk2_frame_t *frame = NULL;
    if (zmq_recv(zsock_resolve(self->queue_in), &frame, sizeof frame, ZMQ_DONTWAIT) !=
        (int)sizeof frame)
        return NULL;
    sk2_handoff_acquire(frame);
    S_INC(self->totals.received, 1);
    S_INC(self->per_kind[sk2_frame_kind(frame) % S_KINDS].waiting, -1);
    return frame;
}

static void s_drain(sk2_pipeline_t *self)
{
    sk2_frame_t *frame = NULL;
    while ((frame = s_take(self)) != NULL) {
        S_INC(self->per_kind[sk2_frame_kind(frame) % S_KINDS].dropped, 1);
        sk2_frame_destroy(&frame);
    }
}

/* The recording counts as one subscriber of depth/rvl, under the server's cap like any. */
static void s_record_subscribe(sk2_pipeline_t *self, bool is_subscribe)
{
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_RVL);
    s_count(&self->encodings[SK2_STREAM_DEPTH][s_codec_index(codec)], is_subscribe);
    s_settle(self, SK2_STREAM_DEPTH, codec, is_subscribe);
    s_update_device(self);
}

static void s_record_stop(sk2_pipeline_t *self)
{
    atomic_store(&self->is_recording, false);
    if (!self->recorder)
        return;
    uint64_t frames = sk2_recording_writer_frames(self->recorder);
    if (sk2_recording_writer_close(self->recorder) != 0)
        SK2_WARN("server", "device %s: recording %s: %s", self->id, self->record_path,
                 sk2_recording_writer_why(self->recorder));
    sk2_recording_writer_destroy(&self->recorder);
    s_record_subscribe(self, false);
    SK2_INFO("server", "device %s: recorded %llu depth frames to %s", self->id,
             (unsigned long long)frames, self->record_path);
}

static void s_record_start(sk2_pipeline_t *self)
{
    const sk2_stream_info_t *depth = s_info(self, SK2_STREAM_DEPTH);
    sk2_recording_writer_t *recorder = sk2_recording_writer_new();
    int rc = depth && recorder ? sk2_recording_writer_open(recorder, self->record_path)
                               : SK2_EUNSUPPORTED;
    sk2_extrinsics_t extrinsics;
    bool has_extrinsics = sk2_device_depth_to_color(self->device, &extrinsics) == 0;
    if (rc == 0)
        rc = sk2_recording_writer_add_device_placed(
            recorder, self->id, sk2_device_serial(self->device), sk2_device_backend(self->device),
            depth, 1, self->has_record_pose ? &self->record_pose : NULL,
            has_extrinsics ? &extrinsics : NULL, &self->recorder_device);
    if (rc != 0) {
        SK2_ERROR("server", "device %s: cannot record to %s: %s", self->id, self->record_path,
                  recorder ? sk2_recording_writer_why(recorder) : sk2_strerror(rc));
        sk2_recording_writer_destroy(&recorder);
        atomic_store(&self->is_recording, false);
        return;
    }
    self->recorder = recorder;
    s_record_subscribe(self, true);
    SK2_INFO("server", "device %s: recording depth (rvl) to %s", self->id, self->record_path);
}

/* Applies a setting the server actor stored (sk2_pipeline_set_*): runs on the pipeline thread,
 * which owns the device while it runs. Stopping a device joins its capture thread, whose sink
 * never waits on this thread, so this cannot deadlock. */
static void s_apply(sk2_pipeline_t *self, const char *what, const char *arg, const char *extra)
{
    if (streq(what, "UPDATE")) {
        s_update_device(self);
    } else if (streq(what, "RECORD")) {
        if (self->recorder)
            s_record_stop(self);
        snprintf(self->record_path, sizeof self->record_path, "%s", arg ? arg : "");
        self->has_record_pose =
            extra && extra[0] &&
            sk2_pose_parse(extra, strlen(extra), &self->record_pose, NULL, 0) == 0;
        if (self->record_path[0]) {
            atomic_store(&self->is_recording, true);
            s_record_start(self);
        }
    } else if (streq(what, "QUALITY")) {
        int rc = sk2_codec_options_set_quality(self->options, atomic_load(&self->quality));
        if (rc != 0)
            SK2_WARN("server", "device %s: cannot set JPEG quality: %s", self->id,
                     sk2_strerror(rc));
    } else if (streq(what, "RUN") || streq(what, "FPS")) {
        bool is_wanted = !atomic_load(&self->is_paused);
        bool is_running = sk2_device_is_running(self->device);
        double fps = atomic_load(&self->fps);
        int rc = 0;
        if (streq(what, "FPS") && fps >= 0) {
            if (is_running)
                sk2_device_stop(self->device);
            is_running = false;
            rc = sk2_device_set_fps(self->device, fps);
        }
        if (is_running && !is_wanted)
            rc = sk2_device_stop(self->device);
        else if (!is_running && is_wanted && !sk2_device_is_lost(self->device))
            rc = sk2_device_start(self->device, s_sink, self);
        if (rc != 0)
            SK2_ERROR("server", "device %s: cannot apply %s: %s", self->id,
                      streq(what, "FPS") ? "the frame rate" : "start/stop", sk2_strerror(rc));
        else
            SK2_INFO("server", "device %s %s", self->id,
                     !is_wanted ? "stopped by a command" : "running");
    }
}

/* Gives a stream the size the server actor stored in resize[] (the `resolution` command),
 * which the device already said it can have: stops the device, sets the size, starts it again
 * if it ran, and reads every stream's record back (the device scales intrinsics). Frames of
 * the old size still queued are sent as they are: each frame carries its own size. Returns 0
 * or a negative SK2_E code; the server actor waits for it. */
static int s_resize(sk2_pipeline_t *self)
{
    bool was_running = sk2_device_is_running(self->device);
    if (was_running)
        sk2_device_stop(self->device);
    int rc =
        sk2_device_set_stream_size(self->device, self->resize[0], self->resize[1], self->resize[2]);
    for (size_t i = 0; i < self->stream_count; i++)
        sk2_device_stream_info(self->device, i, &self->infos[i]);
    int start_rc = was_running && !sk2_device_is_lost(self->device)
                       ? sk2_device_start(self->device, s_sink, self)
                       : 0;
    if (start_rc != 0)
        SK2_ERROR("server", "device %s: cannot start again after a size change: %s", self->id,
                  sk2_strerror(start_rc));
    else if (rc == 0)
        SK2_INFO("server", "device %s: %s stream now %ux%u", self->id,
                 sk2_stream_kind_name(self->infos[self->resize[0]].kind), self->resize[1],
                 self->resize[2]);
    return rc != 0 ? rc : start_rc;
}

static void s_actor(zsock_t *pipe, void *arg)
{
    sk2_pipeline_t *self = arg;
    sk2_runtime_block_signals();
    self->start_rc = sk2_device_start(self->device, s_sink, self);
    zsock_signal(pipe, 0);

    s_scratch_t scratch = {NULL, 0};
    zpoller_t *poller = self->start_rc == 0
                            ? zpoller_new(pipe, self->queue_in, self->v1, self->streams,
                                          sk2_peers_socket(self->v1_peers),
                                          sk2_peers_socket(self->streams_peers), NULL)
                            : zpoller_new(pipe, NULL);
    bool is_waiting = false; /* some pair waits for a place under the server's cap */
    while (poller) {
        zsock_t *which = zpoller_wait(poller, is_waiting ? S_ADMIT_RETRY_MS : -1);
        if (!which && zpoller_expired(poller)) {
            is_waiting = s_admit_waiting(self);
            s_update_device(self);
            continue;
        }
        if (which == self->queue_in) {
            sk2_frame_t *frame = s_take(self);
            if (frame) {
                s_process(self, frame, &scratch);
                sk2_frame_destroy(&frame);
            }
            /* While the encoder is behind, the queue is always ready and zpoller answers the
             * first ready socket in its list: take subscriptions after every frame, or a new
             * subscriber would never be counted (and its stream never encoded). */
            s_subscriptions(self, self->v1);
            s_subscriptions(self, self->streams);
            s_connections(self);
        } else if (which == self->v1 || which == self->streams) {
            s_subscriptions(self, which);
        } else if (which == sk2_peers_socket(self->v1_peers) ||
                   which == sk2_peers_socket(self->streams_peers)) {
            s_connections(self);
        } else if (which == pipe) {
            zmsg_t *msg = zmsg_recv(pipe);
            char *command = msg ? zmsg_popstr(msg) : NULL;
            char *argument = msg ? zmsg_popstr(msg) : NULL;
            char *extra = msg ? zmsg_popstr(msg) : NULL;
            bool stop = !command || streq(command, "$TERM");
            if (!stop && streq(command, "SIZE")) {
                int rc = s_resize(self);
                zsock_send(pipe, "ib", rc, self->infos, sizeof self->infos);
            } else if (!stop)
                s_apply(self, command, argument, extra);
            zstr_free(&command);
            zstr_free(&argument);
            zstr_free(&extra);
            zmsg_destroy(&msg);
            if (stop)
                break;
        } else {
            break; /* interrupted or terminated context */
        }
        is_waiting = s_has_waiting(self);
    }
    /* Stop the producer first so nothing enters the queue while it is drained; what it still
     * produces meanwhile is dropped as at shutdown, not as an encoder falling behind. */
    atomic_store(&self->is_stopping, true);
    if (sk2_device_is_running(self->device))
        sk2_device_stop(self->device);
    s_drain(self);
    s_record_stop(self);
    zpoller_destroy(&poller);
    free(scratch.data);
}

/* ---- Set-up -----------------------------------------------------------------------------------
 */

/* Binds an XPUB and starts counting its connections into *peers (before the bind, so that no
 * connection is missed). */
static zsock_t *s_bind_xpub(const sk2_address_t *address, int hwm, char *endpoint, size_t size,
                            sk2_peers_t **peers)
{
    zsock_t *xpub = zsock_new(ZMQ_XPUB);
    if (!xpub)
        return NULL;
    /* Subscriptions are short, so anything above 1 KiB is hostile; XPUB_VERBOSE passes every
     * subscribe and the unsubscribe of a topic's last subscriber (see s_count). */
    int port = -1;
    if (sk2_socket_set_curve_server(xpub, &address->curve) == 0 &&
        sk2_socket_set_int(xpub, ZMQ_SNDHWM, hwm) == 0 &&
        sk2_socket_set_int(xpub, ZMQ_LINGER, 0) == 0 &&
        sk2_socket_set_int(xpub, ZMQ_RCVHWM, 1000) == 0 &&
        sk2_socket_set_maxmsgsize(xpub, 1024) == 0 &&
        sk2_socket_set_int(xpub, ZMQ_XPUB_VERBOSE, 1) == 0 &&
        (!address->is_ipv6 || sk2_socket_set_int(xpub, ZMQ_IPV6, 1) == 0) &&
        (*peers = sk2_peers_new(xpub)) != NULL)
        port = sk2_address_bind_ephemeral(zsock_resolve(xpub), address->bind_host);
    if (port < 0 || sk2_address_endpoint(address->advertise_host, port, endpoint, size) != 0) {
        sk2_peers_destroy(peers);
        zsock_destroy(&xpub);
    }
    return xpub;
}

static int s_make_queue(sk2_pipeline_t *self, unsigned queue_frames)
{
    /* The bound is the per-stream `waiting` count, checked in s_sink. libzmq's own limit must
     * never be the one that bites: its writer learns of frames read only in batches, so a pipe
     * sized to the bound would refuse frames a reader has already taken (which dropped the
     * colour frame of almost every capture). Twice the most that can wait is ample. */
    self->queue_frames = queue_frames;
    self->queue_in = zsock_new(ZMQ_PAIR);
    self->queue_out = zsock_new(ZMQ_PAIR);
    if (!self->queue_in || !self->queue_out)
        return SK2_ENOMEM;
    if (sk2_socket_set_int(self->queue_in, ZMQ_RCVHWM, 1) != 0 ||
        sk2_socket_set_int(self->queue_out, ZMQ_SNDHWM, (int)(2 * queue_frames * S_KINDS)) != 0 ||
        sk2_socket_set_int(self->queue_out, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_int(self->queue_in, ZMQ_LINGER, 0) != 0)
        return SK2_ESYS;
    /* A fresh name each time: libzmq releases a closed socket's inproc name asynchronously, so a
     * name taken from an address that malloc reuses could still be in use. */
    static _Atomic uint64_t s_next_queue;
    uint64_t number = atomic_fetch_add(&s_next_queue, 1);
    if (zsock_bind(self->queue_in, "inproc://sk2-pipeline-%llu", (unsigned long long)number) != 0 ||
        zsock_connect(self->queue_out, "inproc://sk2-pipeline-%llu", (unsigned long long)number) !=
            0)
        return SK2_EBIND;
    return 0;
}

static json_t *s_intrinsics_json(const sk2_intrinsics_t *k)
{
    return json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "fx", k->fx, "fy", k->fy,
                     "cx", k->cx, "cy", k->cy, "k1", k->k1, "k2", k->k2, "k3", k->k3, "p1", k->p1,
                     "p2", k->p2);
}

/* The codec a stream has by default until a `codec` command names another: the one sk2
 * clients chose before servers named one (sk2d for depth and IR, jpeg for colour), else the
 * first the server offers. */
static const sk2_codec_t *s_first_default(const sk2_stream_info_t *info)
{
    const sk2_codec_t *codec =
        sk2_codec_find(info->kind == SK2_STREAM_COLOR ? SK2_CODEC_JPEG : SK2_CODEC_SK2D);
    if (codec && s_offered(codec, info->format))
        return codec;
    for (size_t c = 0; c < sk2_codec_count(); c++)
        if (s_offered(sk2_codec_at(c), info->format))
            return sk2_codec_at(c);
    return NULL;
}

/* The device record of `me`: version-1 fields first, then sk2's additions. */
static json_t *s_describe(sk2_pipeline_t *self)
{
    json_t *streams = json_array();
    for (size_t i = 0; i < self->stream_count; i++) {
        const sk2_stream_info_t *info = &self->served[i];
        json_t *codecs = json_array();
        for (size_t c = 0; c < sk2_codec_count(); c++)
            if (s_offered(sk2_codec_at(c), info->format))
                json_array_append_new(codecs, json_string(sk2_codec_name(sk2_codec_at(c))));
        json_t *stream =
            json_pack("{s:s, s:s, s:i, s:i, s:f, s:o}", "kind", sk2_stream_kind_name(info->kind),
                      "format", sk2_pixel_format_name(info->format), "width", info->width, "height",
                      info->height, "fps", info->fps, "codecs", codecs);
        if (self->default_codec[info->kind % S_KINDS])
            json_object_set_new(
                stream, "codec",
                json_string(sk2_codec_name(self->default_codec[info->kind % S_KINDS])));
        if (info->depth_unit_m > 0)
            json_object_set_new(stream, "depth_unit_m", json_real(info->depth_unit_m));
        if (info->has_intrinsics)
            json_object_set_new(stream, "intrinsics", s_intrinsics_json(&info->intrinsics));
        json_array_append_new(streams, stream);
    }
    json_t *record = json_pack("{s:s, s:{s:s, s:s}, s:s, s:s, s:o}", "id", self->id, "endpoints",
                               "depth", self->depth_endpoint, "streams", self->streams_endpoint,
                               "backend", sk2_device_backend(self->device), "serial",
                               sk2_device_serial(self->device), "streams", streams);
    /* sk2's additions for rigs: the depth-to-colour calibration where the backend has one, and
     * the device's own pose (a replay's); the server's commands may set another pose. */
    sk2_extrinsics_t extrinsics;
    sk2_pose_t pose;
    if (record && sk2_device_depth_to_color(self->device, &extrinsics) == 0)
        json_object_set_new(record, "depth_to_color",
                            sk2_rigid_to_json(extrinsics.rotation, extrinsics.translation));
    if (record && sk2_device_pose(self->device, &pose) == 0)
        json_object_set_new(record, "pose", sk2_rigid_to_json(pose.rotation, pose.translation));
    return record;
}

int sk2_pipeline_new(sk2_device_t **device_p, const sk2_address_t *address, unsigned queue_frames,
                     int jpeg_quality, sk2_stream_cap_t *cap, sk2_pipeline_t **pipeline_p)
{
    *pipeline_p = NULL;
    sk2_pipeline_t *self = calloc(1, sizeof *self);
    if (!self) {
        sk2_device_destroy(device_p);
        return SK2_ENOMEM;
    }
    self->device = *device_p;
    *device_p = NULL;
    snprintf(self->id, sizeof self->id, "%s", sk2_device_id(self->device));
    self->stream_count = sk2_device_stream_count(self->device);
    if (self->stream_count > S_MAX_STREAMS)
        self->stream_count = S_MAX_STREAMS;
    for (size_t i = 0; i < self->stream_count; i++)
        sk2_device_stream_info(self->device, i, &self->infos[i]);
    memcpy(self->served, self->infos, sizeof self->served);
    atomic_init(&self->is_lost, false);
    atomic_init(&self->max_frame_bytes, (size_t)SK2_LIMIT_FRAME_BYTES);
    atomic_init(&self->clock_offset_us, 0);
    atomic_init(&self->is_stopping, false);
    atomic_init(&self->is_paused, false);
    atomic_init(&self->is_recording, false);
    atomic_init(&self->quality, jpeg_quality);
    atomic_init(&self->fps, -1.0);
    for (size_t k = 0; k < S_KINDS; k++)
        atomic_init(&self->is_held[k], false);
    self->cap = cap;
    /* The version-1 depth endpoint is never capped (see sk2_stream_cap_t). */
    size_t depth12 = s_codec_index(sk2_codec_find(SK2_CODEC_DEPTH12));
    if (depth12 < S_MAX_CODECS)
        atomic_store(&self->encodings[SK2_STREAM_DEPTH][depth12].is_admitted, true);
    sk2_device_set_lost_handler(self->device, s_lost, self);

    self->options = sk2_codec_options_new();
    int rc =
        self->options ? sk2_codec_options_set_quality(self->options, jpeg_quality) : SK2_ENOMEM;
    if (rc != 0) {
        sk2_pipeline_destroy(&self, NULL);
        return rc;
    }
    rc = s_make_queue(self, queue_frames);
    if (rc == 0) {
        self->v1 = s_bind_xpub(address, S_V1_HWM, self->depth_endpoint, sizeof self->depth_endpoint,
                               &self->v1_peers);
        self->streams = s_bind_xpub(address, S_STREAMS_HWM, self->streams_endpoint,
                                    sizeof self->streams_endpoint, &self->streams_peers);
        if (!self->v1 || !self->streams) {
            SK2_ERROR("server", "device %s: cannot bind its endpoints on %s: %s", self->id,
                      address->bind_host, zmq_strerror(zmq_errno()));
            rc = SK2_EBIND;
        }
    }
    if (rc == 0) {
        for (size_t i = 0; i < self->stream_count; i++)
            self->default_codec[self->served[i].kind % S_KINDS] = s_first_default(&self->served[i]);
        self->description = s_describe(self);
        self->actor = zactor_new(s_actor, self);
        if (!self->actor || !self->description)
            rc = SK2_ENOMEM;
        else if (self->start_rc != 0) {
            SK2_ERROR("server", "device %s: cannot start: %s", self->id,
                      sk2_strerror(self->start_rc));
            rc = SK2_EDEVICE;
        }
    }
    if (rc != 0) {
        sk2_pipeline_destroy(&self, NULL);
        return rc;
    }
    *pipeline_p = self;
    return 0;
}

void sk2_pipeline_destroy(sk2_pipeline_t **pipeline_p, sk2_server_stats_t *final_stats)
{
    if (!pipeline_p || !*pipeline_p)
        return;
    sk2_pipeline_t *self = *pipeline_p;
    zactor_destroy(&self->actor); /* stops the device and joins the thread */
    /* Give back the places this device's pairs held under the server's cap. */
    size_t depth12 = s_codec_index(sk2_codec_find(SK2_CODEC_DEPTH12));
    for (size_t k = 0; k < S_KINDS; k++)
        for (size_t c = 0; c < S_MAX_CODECS; c++)
            if (!(k == SK2_STREAM_DEPTH && c == depth12))
                s_release(self, &self->encodings[k][c]);
    sk2_device_destroy(&self->device);
    zsock_destroy(&self->queue_out);
    zsock_destroy(&self->queue_in);
    /* Frames libzmq still held in the queue when it closed were never seen by the actor. */
    uint64_t lost = S_LOAD(self->totals.queued) - S_LOAD(self->totals.received);
    S_INC(self->per_kind[SK2_STREAM_DEPTH].dropped, lost);
    if (final_stats)
        sk2_pipeline_add_stats(self, final_stats);
    sk2_peers_destroy(&self->v1_peers);
    sk2_peers_destroy(&self->streams_peers);
    zsock_destroy(&self->v1);
    zsock_destroy(&self->streams);
    json_decref(self->description);
    sk2_codec_options_destroy(&self->options);
    free(self);
    *pipeline_p = NULL;
}

void sk2_pipeline_set_max_frame_bytes(sk2_pipeline_t *self, size_t max_frame_bytes)
{
    atomic_store_explicit(&self->max_frame_bytes, max_frame_bytes, memory_order_relaxed);
}

void sk2_pipeline_set_clock_offset_us(sk2_pipeline_t *self, int64_t offset_us)
{
    atomic_store_explicit(&self->clock_offset_us, offset_us, memory_order_relaxed);
}

bool sk2_pipeline_is_lost(const sk2_pipeline_t *self)
{
    return atomic_load(&self->is_lost);
}

sk2_device_t *sk2_pipeline_new_replacement(const sk2_pipeline_t *self)
{
    return sk2_device_new_replacement(self->device);
}

const char *sk2_pipeline_device_id(const sk2_pipeline_t *self)
{
    return self->id;
}

sk2_device_t *sk2_pipeline_device(const sk2_pipeline_t *self)
{
    return self->device;
}

const char *sk2_pipeline_depth_endpoint(const sk2_pipeline_t *self)
{
    return self->depth_endpoint;
}

json_t *sk2_pipeline_description(const sk2_pipeline_t *self)
{
    return self->description;
}

void sk2_pipeline_add_stats(const sk2_pipeline_t *self, sk2_server_stats_t *stats)
{
    sk2_pipeline_t *p = (sk2_pipeline_t *)self; /* the counters are atomics: reading is safe */
    for (size_t k = 0; k < S_KINDS; k++) {
        stats->frames_produced += S_LOAD(p->per_kind[k].produced);
        stats->frames_dropped += S_LOAD(p->per_kind[k].dropped);
        stats->frames_idle += S_LOAD(p->per_kind[k].idle);
        for (size_t c = 0; c < S_MAX_CODECS; c++) {
            stats->encodings += S_LOAD(p->encodings[k][c].encoded);
            stats->bytes_raw += S_LOAD(p->encodings[k][c].bytes_raw);
            stats->bytes_published += S_LOAD(p->encodings[k][c].bytes_out);
            stats->encode_time_us += S_LOAD(p->encodings[k][c].encode_time_us);
        }
    }
    stats->frames_encoded += S_LOAD(p->totals.encoded);
    stats->frames_published += S_LOAD(p->totals.published);
}

int sk2_pipeline_newest_sequence(const sk2_pipeline_t *self, sk2_stream_kind_t kind,
                                 uint64_t *sequence)
{
    sk2_pipeline_t *p = (sk2_pipeline_t *)self; /* an atomic: reading is safe */
    uint64_t newest = S_LOAD(p->per_kind[kind % S_KINDS].newest);
    if (newest == 0)
        return SK2_ENOTFOUND;
    *sequence = newest - 1;
    return 0;
}

json_t *sk2_pipeline_stats_json(const sk2_pipeline_t *self)
{
    sk2_pipeline_t *p = (sk2_pipeline_t *)self;
    json_t *streams = json_array();
    for (size_t i = 0; i < p->stream_count; i++) {
        sk2_stream_kind_t kind = p->infos[i].kind;
        const s_stream_t *stream = &p->per_kind[kind % S_KINDS];
        json_t *encodings = json_array();
        for (size_t c = 0; c < sk2_codec_count() && c < S_MAX_CODECS; c++) {
            s_encoding_t *e = &p->encodings[kind % S_KINDS][c];
            int64_t subscribers = S_LOAD(e->subscribers);
            uint64_t encoded = S_LOAD(e->encoded);
            uint64_t refused = S_LOAD(e->refused);
            if (subscribers == 0 && encoded == 0 && refused == 0)
                continue; /* never asked for */
            const char *name = sk2_codec_name(sk2_codec_at(c));
            /* "refused": subscribed to, but over the server's cap, so not encoded. */
            const char *state = subscribers == 0  ? "idle"
                                : s_is_encoded(e) ? "encoding"
                                                  : "refused";
            json_array_append_new(
                encodings,
                json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "codec", name,
                          "endpoint", strcmp(name, SK2_CODEC_DEPTH12) == 0 ? "depth" : "streams",
                          "state", state, "subscribers", (json_int_t)subscribers, "encoded",
                          (json_int_t)encoded, "refused", (json_int_t)refused, "bytes_raw",
                          (json_int_t)S_LOAD(e->bytes_raw), "bytes",
                          (json_int_t)S_LOAD(e->bytes_out), "encode_us",
                          (json_int_t)S_LOAD(e->encode_time_us)));
        }
        json_t *record = json_pack(
            "{s:s, s:b, s:I, s:I, s:I, s:o}", "kind", sk2_stream_kind_name(kind), "enabled",
            sk2_device_is_stream_enabled(p->device, kind), "produced",
            (json_int_t)S_LOAD(stream->produced), "dropped", (json_int_t)S_LOAD(stream->dropped),
            "idle", (json_int_t)S_LOAD(stream->idle), "encodings", encodings);
        /* The newest frame's sequence number, which the `flow` reply also carries: what a
         * client's frames are behind. */
        uint64_t newest = S_LOAD(stream->newest);
        if (record && newest > 0)
            json_object_set_new(
                record, "newest",
                json_integer((json_int_t)((newest - 1) & (((uint64_t)1 << 53) - 1))));
        json_array_append_new(streams, record);
    }
    return json_pack("{s:s, s:o}", "id", p->id, "streams", streams);
}

/* ---- Settings of keyed commands ------------------------------------------------------------- */

/* Tells the pipeline thread to apply a stored setting; the pipe keeps them in order. */
static int s_poke(sk2_pipeline_t *self, const char *what)
{
    return self->actor && zstr_send(self->actor, what) == 0 ? 0 : SK2_ESYS;
}

int sk2_pipeline_set_stream_held(sk2_pipeline_t *self, sk2_stream_kind_t kind, bool is_held)
{
    if (!s_served(self, kind))
        return SK2_ENOTFOUND;
    atomic_store(&self->is_held[kind % S_KINDS], is_held);
    return s_poke(self, "UPDATE");
}

bool sk2_pipeline_is_stream_held(const sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    return atomic_load(&((sk2_pipeline_t *)self)->is_held[kind % S_KINDS]);
}

int sk2_pipeline_set_running(sk2_pipeline_t *self, bool is_running)
{
    atomic_store(&self->is_paused, !is_running);
    return s_poke(self, "RUN");
}

bool sk2_pipeline_is_running(const sk2_pipeline_t *self)
{
    return !atomic_load(&((sk2_pipeline_t *)self)->is_paused);
}

int sk2_pipeline_set_fps(sk2_pipeline_t *self, double fps)
{
    if (!sk2_device_can_set_fps(self->device))
        return SK2_EUNSUPPORTED;
    atomic_store(&self->fps, fps);
    /* `me` says the new rate: the description is the server actor's once the pipeline is
     * served, and only it reads the description. */
    json_t *streams = json_object_get(self->description, "streams");
    size_t i;
    json_t *stream;
    json_array_foreach(streams, i, stream)
    {
        json_object_set_new(stream, "fps", json_real(fps));
    }
    return s_poke(self, "FPS");
}

/* The index of the stream of a kind in infos (and in the device), or stream_count. */
static size_t s_index(const sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    size_t i = 0;
    while (i < self->stream_count && self->served[i].kind != kind)
        i++;
    return i;
}

int sk2_pipeline_check_size(const sk2_pipeline_t *self, sk2_stream_kind_t kind, uint32_t width,
                            uint32_t height)
{
    size_t index = s_index(self, kind);
    if (index == self->stream_count)
        return SK2_ENOTFOUND;
    return sk2_device_check_stream_size(self->device, index, width, height);
}

const char *sk2_pipeline_stream_sizes(const sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    size_t index = s_index(self, kind);
    return index == self->stream_count ? NULL : sk2_device_stream_sizes(self->device, index);
}

int sk2_pipeline_set_size(sk2_pipeline_t *self, sk2_stream_kind_t kind, uint32_t width,
                          uint32_t height)
{
    int rc = sk2_pipeline_check_size(self, kind, width, height);
    if (rc != 0)
        return rc;
    if (!self->actor)
        return SK2_ESYS;
    /* resize[] is read by the pipeline thread after the message (written before it is sent);
     * the new records come back in the answer. */
    self->resize[0] = (uint32_t)s_index(self, kind);
    self->resize[1] = width;
    self->resize[2] = height;
    if (zstr_send(self->actor, "SIZE") != 0)
        return SK2_ESYS;
    int answer = SK2_ESYS;
    byte *infos = NULL;
    size_t size = 0;
    if (zsock_recv(self->actor, "ib", &answer, &infos, &size) == 0 && infos &&
        size == sizeof self->served)
        memcpy(self->served, infos, sizeof self->served);
    else
        answer = SK2_ESYS;
    free(infos);
    rc = answer;
    json_t *description = s_describe(self);
    if (!description)
        return SK2_ENOMEM;
    /* A new record, not an edit: a `me` built before holds the old one. */
    json_decref(self->description);
    self->description = description;
    return rc;
}

int sk2_pipeline_set_codec(sk2_pipeline_t *self, sk2_stream_kind_t kind, const char *name)
{
    const sk2_stream_info_t *info = s_served(self, kind);
    if (!info)
        return SK2_ENOTFOUND;
    const sk2_codec_t *codec = name ? sk2_codec_find(name) : NULL;
    if (!codec || !s_offered(codec, info->format))
        return SK2_EUNSUPPORTED;
    json_t *copy = json_deep_copy(self->description);
    if (!copy)
        return SK2_ENOMEM;
    self->default_codec[kind % S_KINDS] = codec;
    size_t i;
    json_t *stream;
    json_array_foreach(json_object_get(copy, "streams"), i, stream)
    {
        if (streq(json_string_value(json_object_get(stream, "kind")), sk2_stream_kind_name(kind)))
            json_object_set_new(stream, "codec", json_string(sk2_codec_name(codec)));
    }
    json_decref(self->description);
    self->description = copy;
    return 0;
}

const char *sk2_pipeline_codec(const sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    const sk2_codec_t *codec = s_served(self, kind) ? self->default_codec[kind % S_KINDS] : NULL;
    return codec ? sk2_codec_name(codec) : NULL;
}

double sk2_pipeline_fps(const sk2_pipeline_t *self)
{
    const sk2_stream_info_t *info = self->stream_count > 0 ? &self->served[0] : NULL;
    double fps = atomic_load(&((sk2_pipeline_t *)self)->fps);
    return fps >= 0 ? fps : info ? info->fps : 0;
}

int sk2_pipeline_set_quality(sk2_pipeline_t *self, int quality)
{
    atomic_store(&self->quality, quality);
    return s_poke(self, "QUALITY");
}

int sk2_pipeline_quality(const sk2_pipeline_t *self)
{
    return atomic_load(&((sk2_pipeline_t *)self)->quality);
}

bool sk2_pipeline_has_stream(const sk2_pipeline_t *self, sk2_stream_kind_t kind)
{
    return s_served(self, kind) != NULL;
}

const sk2_stream_info_t *sk2_pipeline_stream_info(const sk2_pipeline_t *self,
                                                  sk2_stream_kind_t kind)
{
    return s_served(self, kind);
}

int sk2_pipeline_set_recording(sk2_pipeline_t *self, const char *path, const sk2_pose_t *pose)
{
    if (path && (!path[0] || strlen(path) >= sizeof self->record_path))
        return SK2_ELIMIT;
    if (!s_served(self, SK2_STREAM_DEPTH))
        return SK2_EUNSUPPORTED;
    /* Stored at once for `list`; the pipeline thread clears it again if the writer fails. */
    atomic_store(&self->is_recording, path != NULL);
    /* The pose travels as text with the command, so the pipeline thread owns its copy. */
    char *pose_text = pose ? sk2_pose_to_json(pose) : NULL;
    int rc = self->actor && zstr_sendx(self->actor, "RECORD", path ? path : "",
                                       pose_text ? pose_text : "", NULL) == 0
                 ? 0
                 : SK2_ESYS;
    free(pose_text);
    return rc;
}

bool sk2_pipeline_is_recording(const sk2_pipeline_t *self)
{
    return atomic_load(&((sk2_pipeline_t *)self)->is_recording);
}
