/* sk2._sk2.Client: an sk2 client that hands Python whole frame sets.
 *
 * The client runs inside the calls made on it (no thread of the binding's own), as the C
 * client does: wait_for_frames and _next_event call sk2_client_recv without the GIL, in slices
 * of SK2PY_SLICE_MS, and look at Python's signals between slices and whenever recv reports
 * EINTR, so Ctrl-C interrupts a wait and other Python threads run meanwhile.
 *
 * Frames are grouped into frame sets per device and capture time in C, without the GIL: a set
 * is complete when it holds every stream subscribed for its device (the server stamps the
 * depth, IR and colour frames of one capture with one capture time). Only complete sets reach
 * Python; with `latest` on, a wait also takes whatever else is already queued and returns the
 * newest complete set, so a slow consumer sees fresh frames rather than a growing backlog.
 * Other events (devices added and removed, the server lost and back) are queued, at most
 * S_EVENTS_MAX of them, for the events() generator. */
#include "sk2py.h"

#include <string.h>

#define S_PENDING_MAX 8   /* frame sets being assembled at once, over all devices */
#define S_DEVICES_MAX 256 /* devices followed (the server's own limit) */
#define S_EVENTS_MAX  256 /* events kept for events(); the oldest go first */
#define S_KINDS       3   /* depth, color, ir: sk2_stream_kind_t 1..3 */

typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1];
    unsigned wanted; /* bit k-1 for each stream kind k subscribed on this device */
} s_device_t;

typedef struct {
    bool is_used;
    char id[SK2_DEVICE_ID_MAX + 1];
    int64_t capture_time_us;
    unsigned mask; /* kinds present */
    sk2_frame_t *frames[S_KINDS];
    sk2py_frame_meta_t meta[S_KINDS];
} s_set_t;

typedef struct {
    PyObject_HEAD sk2_client_t *client;
    PyObject *endpoint;
    bool is_busy;   /* a call runs without the GIL: no other thread may use the client */
    bool is_latest; /* waits return the newest complete set */
    size_t want_count;
    sk2_stream_kind_t want_kind[S_KINDS];
    char want_codec[S_KINDS][32]; /* "" = sk2's default for the kind */
    s_device_t *devices;
    size_t device_count;
    s_set_t pending[S_PENDING_MAX];
    s_set_t ready; /* the newest complete set not yet handed out */
    sk2_event_t *events[S_EVENTS_MAX];
    size_t event_head, event_count;
    bool has_connected; /* CONNECTED arrived */
    bool is_lost;       /* DISCONNECTED arrived: the session is over */
    int lost_code;
    char lost_reason[256];
    int sub_code; /* the first subscription that failed, to report at the next call */
    char sub_what[160];
} s_client_t;

/* What one step of the loop produced. */
enum { S_NOTHING = 0, S_FRAMESET = 1, S_EVENT = 2, S_CONNECTED = 3 };

static void s_set_clear(s_set_t *set)
{
    for (int k = 0; k < S_KINDS; k++)
        sk2_frame_destroy(&set->frames[k]);
    set->is_used = false;
    set->mask = 0;
}

static s_device_t *s_device_find(s_client_t *self, const char *id)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (!strcmp(self->devices[i].id, id))
            return &self->devices[i];
    return NULL;
}

static bool s_codec_offered(const char *offered, const char *codec)
{
    size_t n = strlen(codec);
    for (const char *p = offered; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && !strncmp(p, codec, n))
            return true;
        p = comma ? comma + 1 : NULL;
    }
    return false;
}

/* Subscribes the wanted streams of one device (no GIL needed: C only). A device without one of
 * the streams simply does not get it; a version-1 server gets its depth endpoint enabled. */
static void s_subscribe_device(s_client_t *self, const char *id)
{
    s_device_t *dev = s_device_find(self, id);
    if (!dev) {
        if (self->device_count == S_DEVICES_MAX || strlen(id) > SK2_DEVICE_ID_MAX)
            return;
        dev = &self->devices[self->device_count++];
        snprintf(dev->id, sizeof dev->id, "%s", id);
        dev->wanted = 0;
    }
    for (size_t i = 0; i < self->want_count; i++) {
        sk2_stream_kind_t kind = self->want_kind[i];
        unsigned bit = 1u << (kind - 1);
        if (dev->wanted & bit)
            continue;
        const char *offered = sk2_client_stream_codecs(self->client, id, kind);
        const char *codec = self->want_codec[i];
        char first[32]; /* the first codec offered, when the default is not */
        int rc;
        if (!offered) {
            /* No streams endpoint for it: a version-1 server still has depth. */
            if (kind != SK2_STREAM_DEPTH ||
                sk2_client_stream_info(self->client, id, kind, &(sk2_stream_info_t){0}) == 0)
                continue;
            rc = sk2_client_enable_depth(self->client, id);
        } else {
            if (!*codec) {
                const char *preferred = kind == SK2_STREAM_COLOR ? "jpeg" : "sk2d";
                if (s_codec_offered(offered, preferred)) {
                    codec = preferred;
                } else {
                    size_t len = strcspn(offered, ",");
                    snprintf(first, sizeof first, "%.*s", (int)(len < 31 ? len : 31), offered);
                    codec = first;
                }
            }
            rc = sk2_client_subscribe(self->client, id, kind, codec);
        }
        if (rc == 0) {
            dev->wanted |= bit;
        } else if (self->sub_code == 0) {
            self->sub_code = rc;
            snprintf(self->sub_what, sizeof self->sub_what,
                     "subscribe %s:%s of %.40s (offered: %s)", sk2_stream_kind_name(kind),
                     *codec ? codec : "depth12", id, offered ? offered : "none");
        }
    }
}

static void s_forget_device(s_client_t *self, const char *id)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (!strcmp(self->devices[i].id, id)) {
            self->devices[i] = self->devices[--self->device_count];
            break;
        }
    for (int i = 0; i < S_PENDING_MAX; i++)
        if (self->pending[i].is_used && !strcmp(self->pending[i].id, id))
            s_set_clear(&self->pending[i]);
}

static void s_queue_event(s_client_t *self, sk2_event_t **event_p)
{
    if (self->event_count == S_EVENTS_MAX) {
        sk2_event_destroy(&self->events[self->event_head]);
        self->event_head = (self->event_head + 1) % S_EVENTS_MAX;
        self->event_count--;
    }
    self->events[(self->event_head + self->event_count++) % S_EVENTS_MAX] = *event_p;
    *event_p = NULL;
}

/* Files a frame into the set of its device and capture time; S_FRAMESET when that completes a
 * set (moved to self->ready, replacing an older one). */
static int s_file_frame(s_client_t *self, sk2_event_t *event)
{
    const char *id = sk2_event_device_id(event);
    sk2_frame_t *frame = sk2_event_take_frame(event);
    if (!frame || !id)
        return S_NOTHING;
    int k = (int)sk2_frame_kind(frame) - 1;
    if (k < 0 || k >= S_KINDS) {
        sk2_frame_destroy(&frame);
        return S_NOTHING;
    }
    int64_t t = sk2_frame_capture_time_us(frame);
    s_device_t *dev = s_device_find(self, id);
    unsigned wanted = dev && dev->wanted ? dev->wanted : 1u << k;
    s_set_t *set = NULL, *victim = NULL;
    for (int i = 0; i < S_PENDING_MAX && !set; i++) {
        s_set_t *s = &self->pending[i];
        if (s->is_used && s->capture_time_us == t && !strcmp(s->id, id))
            set = s;
        /* For a new set: a free slot, else the set with the oldest capture. */
        else if (!victim ||
                 (victim->is_used && (!s->is_used || s->capture_time_us < victim->capture_time_us)))
            victim = s;
    }
    if (!set) {
        set = victim;
        s_set_clear(set);
        set->is_used = true;
        snprintf(set->id, sizeof set->id, "%s", id);
        set->capture_time_us = t;
    }
    sk2_frame_destroy(&set->frames[k]);
    set->frames[k] = frame;
    set->mask |= 1u << k;
    sk2py_frame_meta_t *meta = &set->meta[k];
    meta->codec = sk2_event_codec(event);
    meta->latency_us = sk2_event_latency_us(event);
    meta->gap = sk2_event_gap(event);
    meta->has_info =
        sk2_client_stream_info(self->client, id, (sk2_stream_kind_t)(k + 1), &meta->info) == 0;
    if ((set->mask & wanted) != wanted)
        return S_NOTHING;
    /* Complete: it becomes the ready set, and older sets of its device will never be. */
    s_set_clear(&self->ready);
    self->ready = *set;
    memset(set->frames, 0, sizeof set->frames);
    set->is_used = false;
    set->mask = 0;
    for (int i = 0; i < S_PENDING_MAX; i++) {
        s_set_t *s = &self->pending[i];
        if (s->is_used && !strcmp(s->id, id) && s->capture_time_us < t)
            s_set_clear(s);
    }
    return S_FRAMESET;
}

/* Receives and handles one event; runs without the GIL. Returns S_* or a negative SK2_E*. */
static int s_step(s_client_t *self, int timeout_ms)
{
    sk2_event_t *event = NULL;
    int rc = sk2_client_recv(self->client, &event, timeout_ms);
    if (rc < 0)
        return rc;
    int result = S_EVENT;
    switch (sk2_event_type(event)) {
    case SK2_EVENT_FRAME:
        result = s_file_frame(self, event);
        sk2_event_destroy(&event);
        return result;
    case SK2_EVENT_CONNECTED:
        self->has_connected = true;
        for (size_t i = 0; i < sk2_client_device_count(self->client); i++)
            s_subscribe_device(self, sk2_client_device_id(self->client, i));
        break;
    case SK2_EVENT_DEVICE_ADDED:
        s_subscribe_device(self, sk2_event_device_id(event));
        break;
    case SK2_EVENT_DEVICE_REMOVED:
        s_forget_device(self, sk2_event_device_id(event));
        break;
    case SK2_EVENT_DISCONNECTED:
        self->is_lost = true;
        self->lost_code = sk2_event_error(event) ? sk2_event_error(event) : SK2_ELOST;
        snprintf(self->lost_reason, sizeof self->lost_reason, "%s", sk2_event_reason(event));
        break;
    case SK2_EVENT_PONG:
    case SK2_EVENT_STATS:
    case SK2_EVENT_REPLAY:
        sk2_event_destroy(&event); /* answers to requests this binding does not make */
        return S_NOTHING;
    default:
        break;
    }
    s_queue_event(self, &event);
    return result;
}

/* Runs the client without the GIL until `want` (S_FRAMESET or S_EVENT) is there, the session
 * ends, one slice passes or the deadline (monotonic µs, -1: none) comes. Returns 0 or a
 * negative SK2_E* from recv (ETIMEDOUT when the slice ended with nothing). */
static int s_run_slice(s_client_t *self, int want, int64_t deadline_us)
{
    int64_t now = sk2_clock_mono_us();
    int64_t end = now + SK2PY_SLICE_MS * 1000;
    if (deadline_us >= 0 && deadline_us < end)
        end = deadline_us;
    for (;;) {
        if (want == S_FRAMESET && self->ready.is_used)
            break;
        if (want == S_EVENT && self->event_count > 0)
            break;
        if (want == S_CONNECTED && self->has_connected)
            break;
        if (self->is_lost)
            return 0;
        int left_ms = (int)((end - sk2_clock_mono_us() + 999) / 1000);
        if (left_ms < 0)
            left_ms = 0;
        int rc = s_step(self, left_ms);
        if (rc == SK2_ETIMEDOUT)
            return rc;
        if (rc < 0)
            return rc;
    }
    if (want == S_FRAMESET && self->is_latest) {
        /* Take what is already queued, so the set handed out is the newest one there is. */
        for (int i = 0; i < 1024; i++) {
            int rc = s_step(self, 0);
            if (rc < 0)
                break;
        }
    }
    return 0;
}

static bool s_check_usable(s_client_t *self)
{
    if (self->is_busy) {
        PyErr_SetString(PyExc_RuntimeError,
                        "this sk2.Client is in use by another thread (one thread at a time)");
        return false;
    }
    if (!self->client) {
        sk2py_raise(SK2_ESTATE, "the client is closed");
        return false;
    }
    return true;
}

static bool s_parse_timeout(PyObject *obj, int64_t *deadline_us)
{
    if (obj == Py_None) {
        *deadline_us = -1;
        return true;
    }
    if (!PyLong_Check(obj) && !PyFloat_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "timeout_ms must be a number or None, not %s",
                     Py_TYPE(obj)->tp_name);
        return false;
    }
    double ms = PyFloat_AsDouble(obj);
    if (ms == -1.0 && PyErr_Occurred())
        return false;
    if (!(ms >= 0) || ms > 1e12) {
        PyErr_Format(PyExc_ValueError, "timeout_ms must be >= 0 (or None: forever), not %R", obj);
        return false;
    }
    *deadline_us = sk2_clock_mono_us() + (int64_t)(ms * 1000);
    return true;
}

/* Runs until `want` is there; 0, or -1 with an exception set (Timeout, Lost, a signal's). */
static int s_wait(s_client_t *self, int want, int64_t deadline_us, const char *what)
{
    bool has_run = false;
    for (;;) {
        if (self->sub_code) {
            int code = self->sub_code;
            self->sub_code = 0;
            sk2py_raise(code, self->sub_what);
            return -1;
        }
        if (want == S_FRAMESET && self->ready.is_used)
            return 0;
        if (want == S_EVENT && self->event_count > 0)
            return 0;
        if (want == S_CONNECTED && self->has_connected)
            return 0;
        if (self->is_lost && want == S_FRAMESET) {
            sk2py_raise_why(SK2_ELOST, what,
                            *self->lost_reason ? self->lost_reason : sk2_strerror(self->lost_code));
            return -1;
        }
        if (self->is_lost)
            return 1; /* no more events will come */
        /* At least one pass even with no time left: what is queued inside the client counts. */
        if (has_run && deadline_us >= 0 && sk2_clock_mono_us() >= deadline_us)
            return 1;
        has_run = true;
        int rc;
        self->is_busy = true;
        Py_BEGIN_ALLOW_THREADS rc = s_run_slice(self, want, deadline_us);
        Py_END_ALLOW_THREADS self->is_busy = false;
        if (PyErr_CheckSignals() < 0)
            return -1;
        if (rc < 0 && rc != SK2_ETIMEDOUT && rc != SK2_EINTR) {
            sk2py_raise(rc, what);
            return -1;
        }
    }
}

static PyObject *s_take_ready(s_client_t *self)
{
    s_set_t *set = &self->ready;
    PyObject *frames[S_KINDS] = {NULL, NULL, NULL};
    bool ok = true;
    for (int k = 0; k < S_KINDS; k++) {
        if (!set->frames[k])
            continue;
        frames[k] = sk2py_frame_new(&set->frames[k], set->id, &set->meta[k]);
        if (!frames[k])
            ok = false;
    }
    set->is_used = false;
    set->mask = 0;
    if (!ok) {
        for (int k = 0; k < S_KINDS; k++)
            Py_XDECREF(frames[k]);
        s_set_clear(set);
        return NULL;
    }
    return sk2py_frameset_new(set->id, frames[0], frames[1], frames[2]);
}

/* ---- Python methods ---- */

static PyObject *s_client_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    s_client_t *self = (s_client_t *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->devices = PyMem_Calloc(S_DEVICES_MAX, sizeof(s_device_t));
    if (!self->devices) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    return (PyObject *)self;
}

static void s_client_close_all(s_client_t *self)
{
    for (int i = 0; i < S_PENDING_MAX; i++)
        s_set_clear(&self->pending[i]);
    s_set_clear(&self->ready);
    while (self->event_count) {
        sk2_event_destroy(&self->events[self->event_head]);
        self->event_head = (self->event_head + 1) % S_EVENTS_MAX;
        self->event_count--;
    }
    sk2_client_destroy(&self->client);
}

static void s_client_dealloc(s_client_t *self)
{
    s_client_close_all(self);
    PyMem_Free(self->devices);
    Py_XDECREF(self->endpoint);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int s_parse_streams(s_client_t *self, PyObject *streams)
{
    if (PyUnicode_Check(streams)) {
        PyErr_SetString(PyExc_TypeError,
                        "streams is a list of names (['depth', 'color']), not one str");
        return -1;
    }
    PyObject *seq = PySequence_Fast(streams, "streams must be a list of stream names");
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int rc = -1;
    if (n < 1 || n > S_KINDS) {
        PyErr_Format(PyExc_ValueError, "streams must name 1 to 3 streams, not %zd", n);
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(item)) {
            PyErr_Format(PyExc_TypeError, "a stream is a str like 'depth' or 'color:raw', not %s",
                         Py_TYPE(item)->tp_name);
            goto out;
        }
        const char *s = PyUnicode_AsUTF8(item);
        if (!s)
            goto out;
        const char *colon = strchr(s, ':');
        PyObject *name = colon ? PyUnicode_FromStringAndSize(s, colon - s) : Py_NewRef(item);
        if (!name)
            goto out;
        sk2_stream_kind_t kind = sk2py_kind_parse(name);
        Py_DECREF(name);
        if (!kind)
            goto out;
        for (size_t j = 0; j < self->want_count; j++)
            if (self->want_kind[j] == kind) {
                PyErr_Format(PyExc_ValueError, "stream %s named twice", sk2_stream_kind_name(kind));
                goto out;
            }
        const char *codec = colon ? colon + 1 : "";
        if ((colon && !*codec) || strlen(codec) >= sizeof self->want_codec[0]) {
            PyErr_Format(PyExc_ValueError, "bad codec in stream %R", item);
            goto out;
        }
        self->want_kind[self->want_count] = kind;
        snprintf(self->want_codec[self->want_count], sizeof self->want_codec[0], "%s", codec);
        self->want_count++;
    }
    rc = 0;
out:
    Py_DECREF(seq);
    return rc;
}

static int s_client_init(s_client_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {
        "endpoint", "streams",         "timeout_ms",   "reconnect",           "give_up_after_ms",
        "latest",   "max_frame_bytes", "heartbeat_ms", "response_timeout_ms", NULL};
    PyObject *endpoint, *streams = NULL, *timeout = NULL;
    int reconnect = 1, latest = 1;
    long long give_up_ms = 0;
    Py_ssize_t max_frame_bytes = 0;
    int heartbeat_ms = 0, response_timeout_ms = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "U|O$OpLpnii:Client", keywords, &endpoint,
                                     &streams, &timeout, &reconnect, &give_up_ms, &latest,
                                     &max_frame_bytes, &heartbeat_ms, &response_timeout_ms))
        return -1;
    if (self->client || self->endpoint) {
        PyErr_SetString(PyExc_RuntimeError, "sk2.Client.__init__ called twice");
        return -1;
    }
    if (streams && streams != Py_None) {
        if (s_parse_streams(self, streams) < 0)
            return -1;
    } else {
        self->want_count = 1;
        self->want_kind[0] = SK2_STREAM_DEPTH;
    }
    int64_t deadline_us;
    PyObject *default_timeout = timeout ? NULL : PyLong_FromLong(5000);
    bool ok = s_parse_timeout(timeout ? timeout : default_timeout, &deadline_us);
    Py_XDECREF(default_timeout);
    if (!ok)
        return -1;
    if (max_frame_bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "max_frame_bytes must not be negative");
        return -1;
    }
    self->is_latest = latest;
    self->endpoint = Py_NewRef(endpoint);
    const char *text = PyUnicode_AsUTF8(endpoint);
    if (!text)
        return -1;
    self->client = sk2_client_new();
    if (!self->client) {
        PyErr_NoMemory();
        return -1;
    }
    int rc = sk2_client_set_reconnect(self->client, reconnect);
    if (rc == 0 && give_up_ms)
        rc = sk2_client_set_give_up_after_ms(self->client, give_up_ms);
    const char *what = "give_up_after_ms (0, or 100 .. 2^31-1)";
    if (rc == 0 && max_frame_bytes) {
        rc = sk2_client_set_max_frame_bytes(self->client, (size_t)max_frame_bytes);
        what = "max_frame_bytes (out of the frame budget's range)";
    }
    if (rc == 0 && heartbeat_ms) {
        rc = sk2_client_set_heartbeat_ms(self->client, heartbeat_ms);
        what = "heartbeat_ms (100 .. 3600000)";
    }
    if (rc == 0 && response_timeout_ms) {
        rc = sk2_client_set_response_timeout_ms(self->client, response_timeout_ms);
        what = "response_timeout_ms (100 .. 600000)";
    }
    if (rc != 0) {
        sk2_client_destroy(&self->client);
        PyErr_Format(PyExc_ValueError, "Client: bad %s", what);
        return -1;
    }
    rc = sk2_client_connect(self->client, text);
    if (rc != 0) {
        sk2_client_destroy(&self->client);
        sk2py_raise_why(rc, "connect", text);
        return -1;
    }
    /* Wait for the server's `me`: the devices (and so the subscriptions) come with it. */
    int w = s_wait(self, S_CONNECTED, deadline_us, "connect");
    if (w < 0)
        goto fail;
    if (!self->has_connected) {
        if (self->is_lost)
            sk2py_raise_why(self->lost_code, "connect", self->lost_reason);
        else
            sk2py_raise_why(SK2_ETIMEDOUT, "connect: no answer", text);
        goto fail;
    }
    if (self->sub_code) {
        sk2py_raise(self->sub_code, self->sub_what);
        goto fail;
    }
    return 0;
fail:
    s_client_close_all(self);
    return -1;
}

PyDoc_STRVAR(s_wait_doc,
             "wait_for_frames(timeout_ms=1000) -> FrameSet\n\n"
             "Waits for a complete frame set (every subscribed stream of one device, one\n"
             "capture) and returns it; with latest=True (the default) the newest one queued.\n"
             "timeout_ms=None waits forever. Raises sk2.Timeout when none comes in time,\n"
             "sk2.Lost when the server is gone for good. Other threads run meanwhile, and\n"
             "Ctrl-C interrupts it (KeyboardInterrupt).");

static PyObject *s_client_wait_for_frames(s_client_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"timeout_ms", NULL};
    PyObject *timeout = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|O:wait_for_frames", keywords, &timeout))
        return NULL;
    if (!s_check_usable(self))
        return NULL;
    int64_t deadline_us;
    if (timeout) {
        if (!s_parse_timeout(timeout, &deadline_us))
            return NULL;
    } else {
        deadline_us = sk2_clock_mono_us() + 1000 * 1000;
    }
    int w = s_wait(self, S_FRAMESET, deadline_us, "wait_for_frames");
    if (w < 0)
        return NULL;
    if (w == 1 || !self->ready.is_used)
        return sk2py_raise(SK2_ETIMEDOUT, "wait_for_frames: no complete frame set in time");
    return s_take_ready(self);
}

static PyObject *s_client_poll_for_frames(s_client_t *self, PyObject *unused)
{
    if (!s_check_usable(self))
        return NULL;
    int w = s_wait(self, S_FRAMESET, sk2_clock_mono_us(), "poll_for_frames");
    if (w < 0)
        return NULL;
    if (!self->ready.is_used)
        Py_RETURN_NONE;
    return s_take_ready(self);
}

static PyStructSequence_Field s_event_fields[] = {
    {"type", "'connected', 'disconnected', 'device-added', 'device-removed', 'error',\n"
             "'reconnecting', 'reconnected'"},
    {"device_id", "the device of device-added and device-removed, else None"},
    {"error", "the SK2_E* name of disconnected, reconnecting and error events, else None"},
    {"reason", "the reason in words ('' when none)"},
    {"outage_us", "for reconnected: how long the server was lost, microseconds"},
    {NULL, NULL},
};
static PyStructSequence_Desc s_event_desc = {
    "sk2.Event", "Something that happened to a client's connection or devices.", s_event_fields, 5};
static PyTypeObject *s_event_type;

static PyObject *s_event_object(const sk2_event_t *event)
{
    PyObject *t = PyStructSequence_New(s_event_type);
    if (!t)
        return NULL;
    const char *id = sk2_event_device_id(event);
    int error = sk2_event_error(event);
    PyObject *items[5] = {
        PyUnicode_FromString(sk2_event_type_name(sk2_event_type(event))),
        id ? PyUnicode_FromString(id) : Py_NewRef(Py_None),
        error ? PyUnicode_FromString(sk2_error_name(error)) : Py_NewRef(Py_None),
        PyUnicode_DecodeUTF8(sk2_event_reason(event), strlen(sk2_event_reason(event)), "replace"),
        PyLong_FromLongLong(sk2_event_outage_us(event)),
    };
    bool ok = true;
    for (int i = 0; i < 5; i++) {
        if (!items[i])
            ok = false;
        PyStructSequence_SET_ITEM(t, i, items[i] ? items[i] : Py_NewRef(Py_None));
    }
    if (!ok)
        Py_CLEAR(t);
    return t;
}

static PyObject *s_client_next_event(s_client_t *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"timeout_ms", NULL};
    PyObject *timeout = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:_next_event", keywords, &timeout))
        return NULL;
    if (!s_check_usable(self))
        return NULL;
    int64_t deadline_us;
    if (!s_parse_timeout(timeout, &deadline_us))
        return NULL;
    int w = s_wait(self, S_EVENT, deadline_us, "events");
    if (w < 0)
        return NULL;
    if (self->event_count == 0)
        Py_RETURN_NONE;
    sk2_event_t *event = self->events[self->event_head];
    self->events[self->event_head] = NULL;
    self->event_head = (self->event_head + 1) % S_EVENTS_MAX;
    self->event_count--;
    PyObject *result = s_event_object(event);
    sk2_event_destroy(&event);
    return result;
}

static PyObject *s_client_close(s_client_t *self, PyObject *unused)
{
    if (self->is_busy) {
        PyErr_SetString(PyExc_RuntimeError, "cannot close an sk2.Client another thread uses");
        return NULL;
    }
    s_client_close_all(self);
    Py_RETURN_NONE;
}

static PyStructSequence_Field s_device_fields[] = {
    {"id", "the device's id"},
    {"serial", "its serial number, or None"},
    {"backend", "where its frames come from ('mock', 'openni2', 'replay', ...), or None"},
    {"streams", "dict of stream kind -> sk2.StreamInfo"},
    {NULL, NULL},
};
static PyStructSequence_Desc s_device_desc = {"sk2.Device", "A device a server offers.",
                                              s_device_fields, 4};
static PyTypeObject *s_device_type;

static PyObject *s_device_object(const char *id, const char *serial, const char *backend,
                                 PyObject *streams)
{
    PyObject *t = PyStructSequence_New(s_device_type);
    if (!t) {
        Py_DECREF(streams);
        return NULL;
    }
    PyObject *items[4] = {
        PyUnicode_FromString(id),
        serial ? PyUnicode_FromString(serial) : Py_NewRef(Py_None),
        backend ? PyUnicode_FromString(backend) : Py_NewRef(Py_None),
        streams,
    };
    bool ok = true;
    for (int i = 0; i < 4; i++) {
        if (!items[i])
            ok = false;
        PyStructSequence_SET_ITEM(t, i, items[i] ? items[i] : Py_NewRef(Py_None));
    }
    if (!ok)
        Py_CLEAR(t);
    return t;
}

static PyObject *s_client_get_devices(s_client_t *self, void *closure)
{
    if (!s_check_usable(self))
        return NULL;
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && i < sk2_client_device_count(self->client); i++) {
        const char *id = sk2_client_device_id(self->client, i);
        PyObject *streams = PyDict_New();
        for (int k = 1; streams && k <= S_KINDS; k++) {
            sk2_stream_info_t info;
            if (sk2_client_stream_info(self->client, id, (sk2_stream_kind_t)k, &info) != 0)
                continue;
            PyObject *s = sk2py_stream_info(
                &info, sk2_client_stream_codecs(self->client, id, (sk2_stream_kind_t)k));
            if (!s || PyDict_SetItemString(streams, sk2_stream_kind_name(k), s) < 0)
                Py_CLEAR(streams);
            Py_XDECREF(s);
        }
        PyObject *dev = streams
                            ? s_device_object(id, sk2_client_device_serial(self->client, id),
                                              sk2_client_device_backend(self->client, id), streams)
                            : NULL;
        if (!dev || PyList_Append(list, dev) < 0)
            Py_CLEAR(list);
        Py_XDECREF(dev);
    }
    return list;
}

static PyObject *s_client_get_server_name(s_client_t *self, void *closure)
{
    if (!s_check_usable(self))
        return NULL;
    const char *name = sk2_client_server_name(self->client);
    if (!name)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(name, strlen(name), "replace");
}

static PyObject *s_client_get_endpoint(s_client_t *self, void *closure)
{
    return Py_NewRef(self->endpoint ? self->endpoint : Py_None);
}

static PyObject *s_client_get_closed(s_client_t *self, void *closure)
{
    return PyBool_FromLong(self->client == NULL);
}

static PyObject *s_client_get_rejected(s_client_t *self, void *closure)
{
    if (!s_check_usable(self))
        return NULL;
    return PyLong_FromUnsignedLongLong(sk2_client_frames_rejected(self->client));
}

static PyObject *s_client_get_reconnecting(s_client_t *self, void *closure)
{
    if (!s_check_usable(self))
        return NULL;
    return PyBool_FromLong(sk2_client_is_reconnecting(self->client));
}

static PyGetSetDef s_client_getset[] = {
    {"devices", (getter)s_client_get_devices, NULL,
     "list of sk2.Device (id, serial, backend, streams) as the server's last `me` says", NULL},
    {"server_name", (getter)s_client_get_server_name, NULL, "the server's name", NULL},
    {"endpoint", (getter)s_client_get_endpoint, NULL, "the endpoint connected to", NULL},
    {"closed", (getter)s_client_get_closed, NULL, "whether close() was called", NULL},
    {"frames_rejected", (getter)s_client_get_rejected, NULL,
     "frames dropped for breaking the frame budget or their stream's description", NULL},
    {"is_reconnecting", (getter)s_client_get_reconnecting, NULL,
     "True while the server is lost and being retried", NULL},
    {NULL},
};

/* {"rotation": (9 floats), "translation": (3 floats)}, or None for rc SK2_ENOTFOUND. */
static PyObject *s_rigid(int rc, const double rotation[9], const double translation[3],
                         const char *what)
{
    if (rc == SK2_ENOTFOUND)
        Py_RETURN_NONE;
    if (rc != 0)
        return sk2py_raise(rc, what);
    return Py_BuildValue("{s:(ddddddddd), s:(ddd)}", "rotation", rotation[0], rotation[1],
                         rotation[2], rotation[3], rotation[4], rotation[5], rotation[6],
                         rotation[7], rotation[8], "translation", translation[0], translation[1],
                         translation[2]);
}

static PyObject *s_client_device_pose(s_client_t *self, PyObject *args)
{
    const char *device_id;
    if (!PyArg_ParseTuple(args, "s:device_pose", &device_id) || !s_check_usable(self))
        return NULL;
    sk2_pose_t pose;
    int rc = sk2_client_device_pose(self->client, device_id, &pose);
    return s_rigid(rc, pose.rotation, pose.translation, "device_pose");
}

static PyObject *s_client_device_depth_to_color(s_client_t *self, PyObject *args)
{
    const char *device_id;
    if (!PyArg_ParseTuple(args, "s:device_depth_to_color", &device_id) || !s_check_usable(self))
        return NULL;
    sk2_extrinsics_t extrinsics;
    int rc = sk2_client_device_depth_to_color(self->client, device_id, &extrinsics);
    return s_rigid(rc, extrinsics.rotation, extrinsics.translation, "device_depth_to_color");
}

static PyMethodDef s_client_methods[] = {
    {"device_pose", (PyCFunction)s_client_device_pose, METH_VARARGS,
     "device_pose(device_id) -> dict or None\n\nThe device's pose in the rig's world as the "
     "server gives it\n({\"rotation\": 9 floats row-major, \"translation\": 3 floats in "
     "metres}), None when unset."},
    {"device_depth_to_color", (PyCFunction)s_client_device_depth_to_color, METH_VARARGS,
     "device_depth_to_color(device_id) -> dict or None\n\nThe device's depth-to-colour "
     "extrinsics (as device_pose), None when the\nserver gives none."},
    {"wait_for_frames", (PyCFunction)(void (*)(void))s_client_wait_for_frames,
     METH_VARARGS | METH_KEYWORDS, s_wait_doc},
    {"poll_for_frames", (PyCFunction)s_client_poll_for_frames, METH_NOARGS,
     "poll_for_frames() -> FrameSet or None\n\nA complete frame set if one is there, without "
     "waiting."},
    {"_next_event", (PyCFunction)(void (*)(void))s_client_next_event, METH_VARARGS | METH_KEYWORDS,
     "_next_event(timeout_ms) -> Event or None"},
    {"close", (PyCFunction)s_client_close, METH_NOARGS,
     "close()\n\nDisconnects and frees everything; frames already handed out stay valid."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject s_client_type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "sk2._sk2.Client",
    .tp_basicsize = sizeof(s_client_t),
    .tp_dealloc = (destructor)s_client_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "The C core of sk2.Client.",
    .tp_methods = s_client_methods,
    .tp_getset = s_client_getset,
    .tp_init = (initproc)s_client_init,
    .tp_new = s_client_new,
};

int sk2py_client_init(PyObject *module)
{
    s_event_type = PyStructSequence_NewType(&s_event_desc);
    s_device_type = PyStructSequence_NewType(&s_device_desc);
    if (!s_event_type || !s_device_type || PyType_Ready(&s_client_type) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Event", (PyObject *)s_event_type) < 0 ||
        PyModule_AddObjectRef(module, "Device", (PyObject *)s_device_type) < 0 ||
        PyModule_AddObjectRef(module, "Client", (PyObject *)&s_client_type) < 0)
        return -1;
    return 0;
}
