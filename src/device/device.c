/* The generic device: the backend registry, the life cycle every backend shares (new -> open ->
 * running -> stopped -> running ...), argument checks, the device id, and the one path every
 * frame takes from a backend to the user's sink.
 *
 * Sequence numbers are stamped here, in sk2_device_emit(), rather than in each backend: the
 * numbering rule (consecutive from 0 per stream) is then the same for the mock, replays and
 * cameras, and a backend cannot get it wrong. Numbering counts from open and carries on across
 * stop and start, like sk2_device_frames_produced(), so a receiver never sees a restarted
 * device as a jump back to 0. Timestamps stay with the backends, which alone know when a frame
 * was captured. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "device/device_impl.h"
#include "core/random.h"
#include "sk2/error.h"
#include "sk2_config.h"

/* The registry: one line per backend built into this library. Cameras after the mock, in the
 * order `sk2 serve` tries them. */
static const sk2_device_backend_t *const s_backends[] = {
    &sk2_device_backend_mock,
    &sk2_device_backend_replay,
#if SK2_HAVE_OPENNI2
    &sk2_device_backend_openni2,
#endif
#if SK2_HAVE_FREENECT
    &sk2_device_backend_freenect,
#endif
};

#define S_BACKEND_COUNT (sizeof s_backends / sizeof s_backends[0])

/* Bytes of randomness behind a generated id: 128 bits, like a uuid4. */
#define S_ID_RANDOM_BYTES 16

typedef enum {
    S_STATE_CLOSED,  /* created, not yet open: the id may still change */
    S_STATE_OPEN,    /* open and not producing (never started, or stopped) */
    S_STATE_RUNNING, /* producing: the sink may be running on the backend's thread */
} s_state_t;

struct sk2_device {
    const sk2_device_backend_t *backend; /* static vtable from the registry */
    void *impl;                          /* backend state, owned */
    s_state_t state;                     /* touched only by the thread calling the API */
    char id[SK2_DEVICE_ID_MAX + 1];      /* NUL-terminated */
    sk2_frame_sink_fn *sink;             /* set before start, stable until stop returns */
    void *sink_arg;                      /* passed to sink */
    /* Next sequence number per stream; written only by the thread emitting that stream. */
    uint64_t next_sequence[SK2_DEVICE_MAX_STREAMS];
    _Atomic uint64_t frames_produced; /* frames given to the sink since open; read anywhere */
    _Atomic bool is_wanted[SK2_DEVICE_MAX_STREAMS]; /* per stream index; set from any thread */
    _Atomic bool is_listened; /* some client subscribes to some stream (the pipeline says) */
    /* What a replacement needs to repeat (sk2_device_new_replacement), as set before open. */
    char uri[SK2_CAMERA_URI_MAX + 1];
    double fps;
    bool has_fps;
    uint32_t color_width, color_height;        /* 0 = the backend's default */
    uint32_t sizes[SK2_DEVICE_MAX_STREAMS][2]; /* set_stream_size's width, height; 0: default */
    sk2_device_lost_fn *lost_handler;          /* set while not running, read by backend threads */
    void *lost_arg;
    _Atomic bool is_lost; /* set once by sk2_device_report_lost() */
    /* Declared by backends without stream_count/stream_info/serial, during open. */
    sk2_stream_info_t streams[SK2_DEVICE_MAX_STREAMS];
    size_t stream_count;
    char serial[SK2_CAMERA_SERIAL_MAX + 1];
    bool has_extrinsics;         /* the backend gave its depth-to-colour calibration */
    sk2_extrinsics_t extrinsics; /* then: depth to colour */
    bool has_pose;               /* a pose was set (sk2_device_set_pose, a replay's recording) */
    sk2_pose_t pose;             /* then: depth to the rig's world */
};

size_t sk2_device_backend_count(void)
{
    return S_BACKEND_COUNT;
}

const char *sk2_device_backend_name(size_t index)
{
    return index < S_BACKEND_COUNT ? s_backends[index]->name : NULL;
}

bool sk2_device_backend_is_camera(size_t index)
{
    return index < S_BACKEND_COUNT && s_backends[index]->enumerate != NULL;
}

int sk2_device_backend_enumerate(size_t index, sk2_camera_info_t *cameras, size_t capacity)
{
    if (index >= S_BACKEND_COUNT)
        return SK2_ENOTFOUND;
    if (!cameras && capacity > 0)
        return SK2_EINVAL;
    if (!s_backends[index]->enumerate)
        return 0;
    return s_backends[index]->enumerate(cameras, capacity);
}

/* A fresh id as Python's uuid.uuid4().hex spells it: 32 lowercase hex digits, with the version
 * and variant bits set so that it is a valid random UUID too. */
static int s_generate_id(char id[SK2_DEVICE_ID_MAX + 1])
{
    static const char digits[] = "0123456789abcdef";
    uint8_t raw[S_ID_RANDOM_BYTES];
    int rc = sk2_random_bytes(raw, sizeof raw);
    if (rc != 0)
        return rc;
    raw[6] = (uint8_t)((raw[6] & 0x0f) | 0x40);
    raw[8] = (uint8_t)((raw[8] & 0x3f) | 0x80);
    for (size_t i = 0; i < sizeof raw; i++) {
        id[2 * i] = digits[raw[i] >> 4];
        id[2 * i + 1] = digits[raw[i] & 0x0f];
    }
    id[2 * sizeof raw] = '\0';
    return 0;
}

sk2_device_t *sk2_device_new(const char *backend)
{
    if (!backend)
        return NULL;
    for (size_t i = 0; i < S_BACKEND_COUNT; i++)
        if (strcmp(s_backends[i]->name, backend) == 0)
            return sk2_device_new_backend(s_backends[i]);
    return NULL;
}

sk2_device_t *sk2_device_new_backend(const sk2_device_backend_t *found)
{
    sk2_device_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->backend = found;
    self->state = S_STATE_CLOSED;
    atomic_init(&self->frames_produced, 0);
    atomic_init(&self->is_lost, false);
    for (size_t i = 0; i < SK2_DEVICE_MAX_STREAMS; i++)
        atomic_init(&self->is_wanted[i], false);
    atomic_init(&self->is_listened, false);
    if (s_generate_id(self->id) != 0) {
        /* Nothing else can report why a constructor returned NULL, so say it here. */
        SK2_ERROR("device", "no random source for a device id (getrandom and /dev/urandom)");
        free(self);
        return NULL;
    }
    if (found->create(self, &self->impl) != 0) {
        free(self);
        return NULL;
    }
    return self;
}

void sk2_device_destroy(sk2_device_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_device_t *self = *self_p;
    if (self->state == S_STATE_RUNNING)
        sk2_device_stop(self);
    self->backend->destroy(self->impl);
    free(self);
    *self_p = NULL;
}

int sk2_device_set_fps(sk2_device_t *self, double fps)
{
    if (isnan(fps) || fps < 0 || fps > 1000)
        return SK2_EINVAL;
    if (self->state == S_STATE_RUNNING)
        return SK2_ESTATE;
    if (!self->backend->set_fps)
        return SK2_EUNSUPPORTED;
    int rc = self->backend->set_fps(self->impl, fps);
    if (rc == 0) {
        self->fps = fps;
        self->has_fps = true;
    }
    return rc;
}

int sk2_device_set_uri(sk2_device_t *self, const char *uri)
{
    if (!self || !uri)
        return SK2_EINVAL;
    size_t length = 0;
    for (; uri[length] != '\0'; length++)
        if ((unsigned char)uri[length] < ' ' || (unsigned char)uri[length] > '~' ||
            length >= SK2_CAMERA_URI_MAX)
            return SK2_EINVAL;
    if (length == 0)
        return SK2_EINVAL;
    if (self->state != S_STATE_CLOSED)
        return SK2_ESTATE;
    if (!self->backend->set_uri)
        return SK2_EUNSUPPORTED;
    int rc = self->backend->set_uri(self->impl, uri);
    if (rc == 0)
        memcpy(self->uri, uri, length + 1);
    return rc;
}

const char *sk2_device_uri(const sk2_device_t *self)
{
    return self ? self->uri : "";
}

int sk2_device_set_lost_handler(sk2_device_t *self, sk2_device_lost_fn *handler, void *arg)
{
    if (!self)
        return SK2_EINVAL;
    if (self->state == S_STATE_RUNNING)
        return SK2_ESTATE;
    self->lost_handler = handler;
    self->lost_arg = arg;
    return 0;
}

bool sk2_device_is_lost(const sk2_device_t *self)
{
    return self && atomic_load(&self->is_lost);
}

void sk2_device_report_lost(sk2_device_t *self, const char *reason)
{
    if (atomic_exchange(&self->is_lost, true))
        return;
    SK2_WARN("device", "%s device %s lost: %s", self->backend->name, self->id,
             reason ? reason : "no reason given");
    if (self->lost_handler)
        self->lost_handler(self->lost_arg, self, reason ? reason : "");
}

sk2_device_t *sk2_device_new_replacement(const sk2_device_t *lost)
{
    sk2_device_t *self = sk2_device_new_backend(lost->backend);
    if (!self)
        return NULL;
    strcpy(self->id, lost->id);
    /* The serial finds the same camera wherever it is plugged back in; the uri may not. */
    const char *serial = sk2_device_serial(lost);
    const char *uri = serial[0] != '\0' && lost->backend->enumerate ? serial : lost->uri;
    if (uri[0] != '\0' && sk2_device_set_uri(self, uri) != 0 && uri != lost->uri &&
        lost->uri[0] != '\0')
        sk2_device_set_uri(self, lost->uri);
    if (lost->has_fps)
        sk2_device_set_fps(self, lost->fps);
    if (lost->color_width > 0)
        sk2_device_set_color_size(self, lost->color_width, lost->color_height);
    for (size_t i = 0; i < SK2_DEVICE_MAX_STREAMS; i++)
        if (lost->sizes[i][0] > 0)
            sk2_device_set_stream_size(self, i, lost->sizes[i][0], lost->sizes[i][1]);
    return self;
}

/* Ids travel in text protocols and on command lines, so they are kept to one printable word. */
static int s_id_is_valid(const char *id)
{
    size_t length = 0;
    for (; id[length] != '\0'; length++) {
        unsigned char c = (unsigned char)id[length];
        if (c <= ' ' || c > '~' || length >= SK2_DEVICE_ID_MAX)
            return 0;
    }
    return length > 0;
}

int sk2_device_set_id(sk2_device_t *self, const char *id)
{
    if (!id || !s_id_is_valid(id))
        return SK2_EINVAL;
    if (self->state != S_STATE_CLOSED)
        return SK2_ESTATE;
    strcpy(self->id, id);
    return 0;
}

int sk2_device_open(sk2_device_t *self)
{
    if (self->state != S_STATE_CLOSED)
        return SK2_ESTATE;
    int rc = self->backend->open(self->impl);
    if (rc != 0)
        return rc;
    /* The backends are part of this library: more streams than we number is our bug. */
    assert(sk2_device_stream_count(self) <= SK2_DEVICE_MAX_STREAMS);
    self->state = S_STATE_OPEN;
    /* Depth is what every client of the original protocol wants; the rest costs until asked. */
    sk2_device_set_stream_enabled(self, SK2_STREAM_DEPTH, true);
    return 0;
}

int sk2_device_start(sk2_device_t *self, sk2_frame_sink_fn *sink, void *sink_arg)
{
    if (self->state == S_STATE_RUNNING || atomic_load(&self->is_lost))
        return SK2_ESTATE;
    if (!sink)
        return SK2_EINVAL;
    if (self->state == S_STATE_CLOSED) {
        int rc = sk2_device_open(self);
        if (rc != 0)
            return rc;
    }
    /* Set before the backend's thread exists; thread creation orders these writes before its
     * first read. */
    self->sink = sink;
    self->sink_arg = sink_arg;
    int rc = self->backend->start(self->impl);
    if (rc != 0) {
        self->sink = NULL;
        self->sink_arg = NULL;
        return rc;
    }
    self->state = S_STATE_RUNNING;
    return 0;
}

int sk2_device_stop(sk2_device_t *self)
{
    if (self->state != S_STATE_RUNNING)
        return SK2_ESTATE;
    self->backend->stop(self->impl);
    self->sink = NULL;
    self->sink_arg = NULL;
    self->state = S_STATE_OPEN;
    return 0;
}

bool sk2_device_is_open(const sk2_device_t *self)
{
    return self->state != S_STATE_CLOSED;
}

bool sk2_device_can_set_fps(const sk2_device_t *self)
{
    return self->backend->set_fps != NULL;
}

int sk2_device_check_stream_size(const sk2_device_t *self, size_t index, uint32_t width,
                                 uint32_t height)
{
    if (index >= SK2_DEVICE_MAX_STREAMS || index >= sk2_device_stream_count(self))
        return SK2_ENOTFOUND;
    if (!self->backend->check_stream_size)
        return SK2_EUNSUPPORTED;
    return self->backend->check_stream_size(self->impl, index, width, height);
}

int sk2_device_set_stream_size(sk2_device_t *self, size_t index, uint32_t width, uint32_t height)
{
    int rc = sk2_device_check_stream_size(self, index, width, height);
    if (rc != 0)
        return rc;
    if (self->state == S_STATE_RUNNING)
        return SK2_ESTATE;
    rc = self->backend->set_stream_size(self->impl, index, width, height);
    if (rc == 0) {
        self->sizes[index][0] = width;
        self->sizes[index][1] = height;
    }
    return rc;
}

const char *sk2_device_stream_sizes(const sk2_device_t *self, size_t index)
{
    return self->backend->stream_sizes ? self->backend->stream_sizes(self->impl, index) : NULL;
}

bool sk2_device_is_running(const sk2_device_t *self)
{
    return self->state == S_STATE_RUNNING;
}

const char *sk2_device_id(const sk2_device_t *self)
{
    return self->id;
}

const char *sk2_device_backend(const sk2_device_t *self)
{
    return self->backend->name;
}

size_t sk2_device_stream_count(const sk2_device_t *self)
{
    return self->backend->stream_count ? self->backend->stream_count(self->impl)
                                       : self->stream_count;
}

int sk2_device_stream_info(const sk2_device_t *self, size_t index, sk2_stream_info_t *info)
{
    if (!info)
        return SK2_EINVAL;
    if (index >= sk2_device_stream_count(self))
        return SK2_ENOTFOUND;
    if (self->backend->stream_info)
        return self->backend->stream_info(self->impl, index, info);
    *info = self->streams[index];
    return 0;
}

int sk2_device_set_streams(sk2_device_t *self, const sk2_stream_info_t *infos, size_t count)
{
    if (count > SK2_DEVICE_MAX_STREAMS)
        return SK2_ELIMIT;
    if (count > 0)
        memcpy(self->streams, infos, count * sizeof *infos);
    self->stream_count = count;
    return 0;
}

void sk2_device_set_depth_to_color(sk2_device_t *self, const sk2_extrinsics_t *extrinsics)
{
    char why[200];
    if (sk2_extrinsics_check(extrinsics, why, sizeof why) != 0) {
        SK2_WARN("device", "%s: depth-to-colour extrinsics ignored: %s", self->backend->name, why);
        return;
    }
    self->extrinsics = *extrinsics;
    self->has_extrinsics = true;
}

int sk2_device_depth_to_color(const sk2_device_t *self, sk2_extrinsics_t *extrinsics)
{
    if (!self || !extrinsics)
        return SK2_EINVAL;
    if (!self->has_extrinsics)
        return SK2_ENOTFOUND;
    *extrinsics = self->extrinsics;
    return 0;
}

int sk2_device_set_pose(sk2_device_t *self, const sk2_pose_t *pose)
{
    if (!self || (pose && sk2_pose_check(pose, NULL, 0) != 0))
        return SK2_EINVAL;
    if (self->state == S_STATE_RUNNING)
        return SK2_ESTATE;
    self->has_pose = pose != NULL;
    if (pose)
        self->pose = *pose;
    return 0;
}

int sk2_device_pose(const sk2_device_t *self, sk2_pose_t *pose)
{
    if (!self || !pose)
        return SK2_EINVAL;
    if (!self->has_pose)
        return SK2_ENOTFOUND;
    *pose = self->pose;
    return 0;
}

void sk2_device_set_serial(sk2_device_t *self, const char *serial)
{
    snprintf(self->serial, sizeof self->serial, "%s", serial ? serial : "");
}

uint64_t sk2_device_frames_produced(const sk2_device_t *self)
{
    /* Relaxed: the count orders nothing else, it is only a statistic. */
    return atomic_load_explicit(&self->frames_produced, memory_order_relaxed);
}

static void s_emit(sk2_device_t *self, size_t stream_index, sk2_frame_t **frame_p, bool is_numbered)
{
    assert(stream_index < SK2_DEVICE_MAX_STREAMS);
    assert(frame_p && *frame_p);
    sk2_frame_t *frame = *frame_p;
    *frame_p = NULL;
    uint64_t sequence = self->next_sequence[stream_index];
    if (is_numbered && sk2_frame_sequence(frame) > sequence)
        sequence = sk2_frame_sequence(frame);
    self->next_sequence[stream_index] = sequence + 1;
    sk2_frame_set_sequence(frame, sequence);
    atomic_fetch_add_explicit(&self->frames_produced, 1, memory_order_relaxed);
    self->sink(self->sink_arg, &frame);
    /* A sink that only looked at the frame leaves it to us; never leak it. */
    sk2_frame_destroy(&frame);
}

void sk2_device_emit(sk2_device_t *self, size_t stream_index, sk2_frame_t **frame_p)
{
    s_emit(self, stream_index, frame_p, false);
}

void sk2_device_emit_numbered(sk2_device_t *self, size_t stream_index, sk2_frame_t **frame_p)
{
    s_emit(self, stream_index, frame_p, true);
}

void *sk2_device_impl(sk2_device_t *self, const sk2_device_backend_t *backend)
{
    return self && self->backend == backend ? self->impl : NULL;
}

/* The index of the device's stream of this kind, or -1. */
static int s_stream_index(const sk2_device_t *self, sk2_stream_kind_t kind)
{
    size_t count = sk2_device_stream_count(self);
    for (size_t i = 0; i < count && i < SK2_DEVICE_MAX_STREAMS; i++) {
        sk2_stream_info_t info;
        if (sk2_device_stream_info(self, i, &info) == 0 && info.kind == kind)
            return (int)i;
    }
    return -1;
}

int sk2_device_set_stream_enabled(sk2_device_t *self, sk2_stream_kind_t kind, bool is_enabled)
{
    if (!self)
        return SK2_EINVAL;
    int index = s_stream_index(self, kind);
    if (index < 0)
        return SK2_ENOTFOUND;
    atomic_store(&self->is_wanted[index], is_enabled);
    return 0;
}

bool sk2_device_is_stream_enabled(const sk2_device_t *self, sk2_stream_kind_t kind)
{
    int index = self ? s_stream_index(self, kind) : -1;
    return index >= 0 && atomic_load(&self->is_wanted[index]);
}

bool sk2_device_is_listened(const sk2_device_t *self)
{
    return self && atomic_load(&self->is_listened);
}

void sk2_device_set_listened(sk2_device_t *self, bool is_listened)
{
    if (self)
        atomic_store(&self->is_listened, is_listened);
}

bool sk2_device_stream_wanted(const sk2_device_t *self, size_t stream_index)
{
    return stream_index < SK2_DEVICE_MAX_STREAMS && atomic_load(&self->is_wanted[stream_index]);
}

const char *sk2_device_serial(const sk2_device_t *self)
{
    if (!self)
        return "";
    const char *serial = self->backend->serial ? self->backend->serial(self->impl) : self->serial;
    return serial ? serial : "";
}

int sk2_device_set_color_size(sk2_device_t *self, uint32_t width, uint32_t height)
{
    if (!self)
        return SK2_EINVAL;
    if (self->state != S_STATE_CLOSED)
        return SK2_ESTATE;
    if (!self->backend->set_color_size)
        return SK2_EUNSUPPORTED;
    int rc = self->backend->set_color_size(self->impl, width, height);
    if (rc == 0) {
        self->color_width = width;
        self->color_height = height;
    }
    return rc;
}
