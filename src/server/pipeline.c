/* Device pipelines. Three threads touch a pipeline and each owns its part: the device thread
 * owns the sending end of the frame queue, the pipeline actor owns the receiving end and the
 * PUB socket, and the server actor owns the pipeline object. The counters are the only state
 * shared between threads; they are relaxed atomic counters, read only for statistics.
 *
 * One encoder per device keeps frames in order without a reorder buffer; depth12 encodes a
 * 512x424 frame in well under a millisecond, so one thread keeps up with any Kinect. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "core/log_internal.h"
#include "core/runtime.h"
#include "server/pipeline.h"
#include "sk2/codec.h"
#include "sk2/error.h"

/* Frames a slow subscriber may have queued on the PUB socket before libzmq drops its frames:
 * a client that stops reading costs a few frames of memory, never a growing queue. */
#define SK2_PUB_HWM 8

typedef struct {
    _Atomic uint64_t produced;        /* frames handed over by the device */
    _Atomic uint64_t dropped;         /* frames not published: queue full, encode failed, or
                                         still queued when the pipeline stopped */
    _Atomic uint64_t queued;          /* frames the queue accepted */
    _Atomic uint64_t received;        /* frames taken off the queue by the actor */
    _Atomic uint64_t encoded;         /* frames encoded */
    _Atomic uint64_t published;       /* frames sent on the PUB socket */
    _Atomic uint64_t bytes_raw;       /* pixel bytes of encoded frames */
    _Atomic uint64_t bytes_published; /* encoded bytes sent */
    _Atomic uint64_t encode_time_us;  /* microseconds spent encoding */
} s_counters_t;

struct sk2_pipeline {
    zactor_t *actor;      /* the encode/publish thread */
    sk2_device_t *device; /* owned; started and stopped by the actor */
    zsock_t *pub;         /* `depth` PUB socket: the actor's */
    zsock_t *queue_in;    /* receiving end of the frame queue: the actor's */
    zsock_t *queue_out;   /* sending end: the device thread's while it runs */
    int start_rc;         /* result of starting the device, set before the actor signals */
    char id[SK2_DEVICE_ID_MAX + 1];
    char depth_endpoint[128]; /* advertised address of `pub` */
    s_counters_t counters;
};

#define S_INC(field, n) atomic_fetch_add_explicit(&self->counters.field, (n), memory_order_relaxed)

/* Runs on the device's thread: hand the frame over or drop it, never wait. */
static void s_sink(void *arg, sk2_frame_t **frame_p)
{
    sk2_pipeline_t *self = arg;
    sk2_frame_t *frame = *frame_p;
    S_INC(produced, 1);
    if (zmq_send(zsock_resolve(self->queue_out), &frame, sizeof frame, ZMQ_DONTWAIT) ==
        (int)sizeof frame) {
        *frame_p = NULL; /* the queue owns it now */
        S_INC(queued, 1);
        return;
    }
    S_INC(dropped, 1);
    static _Thread_local sk2_ratelimit_t limit;
    uint64_t held = 0;
    if (sk2_ratelimit_pass(&limit, 5000000, &held))
        SK2_WARN("server", "device %s: encoder behind, dropping frames (%llu more not logged)",
                 self->id, (unsigned long long)held);
    sk2_frame_destroy(frame_p);
}

static void s_publish(sk2_pipeline_t *self, const sk2_frame_t *frame, uint8_t **scratch,
                      size_t *scratch_size)
{
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
    /* Only depth goes to the version-1 `depth` endpoint; other streams come with the
     * extended stream endpoint. */
    if (sk2_frame_kind(frame) != SK2_STREAM_DEPTH || !codec) {
        S_INC(dropped, 1);
        return;
    }
    size_t bound = sk2_codec_encode_bound(codec, sk2_frame_format(frame), sk2_frame_width(frame),
                                          sk2_frame_height(frame));
    if (bound > *scratch_size) {
        uint8_t *grown = realloc(*scratch, bound);
        if (!grown) {
            S_INC(dropped, 1);
            SK2_ERROR("server", "device %s: out of memory for a %zu-byte frame", self->id, bound);
            return;
        }
        *scratch = grown;
        *scratch_size = bound;
    }
    size_t length = 0;
    int64_t start = sk2_clock_mono_us();
    int rc = sk2_codec_encode(codec, frame, *scratch, *scratch_size, &length);
    if (rc != 0) {
        S_INC(dropped, 1);
        static _Thread_local sk2_ratelimit_t limit;
        if (sk2_ratelimit_pass(&limit, 5000000, NULL))
            SK2_WARN("server", "device %s: cannot encode frame: %s", self->id, sk2_strerror(rc));
        return;
    }
    S_INC(encode_time_us, (uint64_t)(sk2_clock_mono_us() - start));
    S_INC(encoded, 1);
    S_INC(bytes_raw, sk2_frame_size(frame));
    /* PUB never blocks: a subscriber at its high-water mark just misses this frame. */
    if (zmq_send(zsock_resolve(self->pub), *scratch, length, ZMQ_DONTWAIT) == (int)length) {
        S_INC(published, 1);
        S_INC(bytes_published, length);
    }
    SK2_TRACE("server", "device %s: frame %llu published, %zu bytes", self->id,
              (unsigned long long)sk2_frame_sequence(frame), length);
}

static void s_drain(sk2_pipeline_t *self)
{
    sk2_frame_t *frame = NULL;
    while (zmq_recv(zsock_resolve(self->queue_in), &frame, sizeof frame, ZMQ_DONTWAIT) ==
           (int)sizeof frame) {
        S_INC(received, 1);
        S_INC(dropped, 1);
        sk2_frame_destroy(&frame);
    }
}

static void s_actor(zsock_t *pipe, void *arg)
{
    sk2_pipeline_t *self = arg;
    sk2_runtime_block_signals();
    self->start_rc = sk2_device_start(self->device, s_sink, self);
    zsock_signal(pipe, 0);

    uint8_t *scratch = NULL;
    size_t scratch_size = 0;
    zpoller_t *poller = zpoller_new(pipe, self->start_rc == 0 ? self->queue_in : NULL, NULL);
    while (poller) {
        zsock_t *which = zpoller_wait(poller, -1);
        if (which == self->queue_in) {
            sk2_frame_t *frame = NULL;
            if (zmq_recv(zsock_resolve(self->queue_in), &frame, sizeof frame, ZMQ_DONTWAIT) ==
                (int)sizeof frame) {
                S_INC(received, 1);
                s_publish(self, frame, &scratch, &scratch_size);
                sk2_frame_destroy(&frame);
            }
            continue;
        }
        if (which != pipe)
            break; /* interrupted or terminated context */
        char *command = zstr_recv(pipe);
        bool stop = !command || streq(command, "$TERM");
        zstr_free(&command);
        if (stop)
            break;
    }
    /* Stop the producer first so nothing enters the queue while it is drained. */
    if (sk2_device_is_running(self->device))
        sk2_device_stop(self->device);
    s_drain(self);
    zpoller_destroy(&poller);
    free(scratch);
}

static zsock_t *s_bind_pub(const sk2_address_t *address, char *endpoint, size_t size)
{
    zsock_t *pub = zsock_new(ZMQ_PUB);
    if (!pub)
        return NULL;
    zsock_set_sndhwm(pub, SK2_PUB_HWM);
    zsock_set_linger(pub, 0);
    if (address->is_ipv6)
        zsock_set_ipv6(pub, 1);
    int port = zsock_bind(pub, "tcp://%s:*", address->bind_host);
    if (port < 0 || sk2_address_endpoint(address->advertise_host, port, endpoint, size) != 0)
        zsock_destroy(&pub);
    return pub;
}

static int s_make_queue(sk2_pipeline_t *self, unsigned queue_frames)
{
    /* For inproc, libzmq sizes the pipe from the sender's SNDHWM plus the receiver's RCVHWM,
     * so the queue holds queue_frames + 1 frames at most, plus the one being encoded. */
    self->queue_in = zsock_new(ZMQ_PAIR);
    self->queue_out = zsock_new(ZMQ_PAIR);
    if (!self->queue_in || !self->queue_out)
        return SK2_ENOMEM;
    zsock_set_rcvhwm(self->queue_in, 1);
    zsock_set_sndhwm(self->queue_out, (int)queue_frames);
    zsock_set_linger(self->queue_out, 0);
    zsock_set_linger(self->queue_in, 0);
    if (zsock_bind(self->queue_in, "inproc://sk2-pipeline-%p", (void *)self) != 0 ||
        zsock_connect(self->queue_out, "inproc://sk2-pipeline-%p", (void *)self) != 0)
        return SK2_EBIND;
    return 0;
}

int sk2_pipeline_new(sk2_device_t **device_p, const sk2_address_t *address, unsigned queue_frames,
                     sk2_pipeline_t **pipeline_p)
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

    int rc = s_make_queue(self, queue_frames);
    if (rc == 0) {
        self->pub = s_bind_pub(address, self->depth_endpoint, sizeof self->depth_endpoint);
        if (!self->pub) {
            SK2_ERROR("server", "device %s: cannot bind a depth endpoint on %s: %s", self->id,
                      address->bind_host, zmq_strerror(zmq_errno()));
            rc = SK2_EBIND;
        }
    }
    if (rc == 0) {
        self->actor = zactor_new(s_actor, self);
        if (!self->actor)
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
    sk2_device_destroy(&self->device);
    zsock_destroy(&self->queue_out);
    zsock_destroy(&self->queue_in);
    /* Frames libzmq still held in the queue when it closed were never seen by the actor. */
    uint64_t lost = atomic_load(&self->counters.queued) - atomic_load(&self->counters.received);
    S_INC(dropped, lost);
    if (final_stats)
        sk2_pipeline_add_stats(self, final_stats);
    zsock_destroy(&self->pub);
    free(self);
    *pipeline_p = NULL;
}

const char *sk2_pipeline_device_id(const sk2_pipeline_t *self)
{
    return self->id;
}

const char *sk2_pipeline_depth_endpoint(const sk2_pipeline_t *self)
{
    return self->depth_endpoint;
}

#define S_LOAD(field) atomic_load_explicit(&self->counters.field, memory_order_relaxed)

void sk2_pipeline_add_stats(const sk2_pipeline_t *self, sk2_server_stats_t *stats)
{
    stats->frames_produced += S_LOAD(produced);
    stats->frames_dropped += S_LOAD(dropped);
    stats->frames_encoded += S_LOAD(encoded);
    stats->frames_published += S_LOAD(published);
    stats->bytes_raw += S_LOAD(bytes_raw);
    stats->bytes_published += S_LOAD(bytes_published);
    stats->encode_time_us += S_LOAD(encode_time_us);
}
