/* The life-cycle worker (see lifecycle.h). It owns the devices that are on their way in (being
 * opened and started), the pipelines on their way out (being stopped and joined) and the
 * closed replacements of lost devices; the server actor owns the table of pipelines being
 * served. A device or pipeline is owned by exactly one of them at a time and changes hands
 * only through the pipe.
 *
 * One worker per server, doing one thing at a time: a camera that takes seconds to open delays
 * the next add or removal, never a control reply. */
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "core/log_internal.h"
#include "core/runtime.h"
#include "server/address.h"
#include "server/lifecycle.h"
#include "server/pipeline.h"
#include "proto/socket.h"
#include "sk2/codec.h"
#include "sk2/error.h"
#include "sk2/server.h"

/* How often the worker looks at its lost devices, and how often it tries to open each. */
#define S_WATCH_MS      200
#define S_REPLUG_TRY_US 1000000

typedef struct {
    sk2_device_t *device; /* closed replacement of the lost device */
    int64_t next_try_us;  /* when to try opening it next */
} s_lost_t;

typedef struct {
    zsock_t *pipe;
    sk2_address_t address; /* from the last CONFIG */
    bool has_config;       /* a CONFIG has arrived (the server is bound) */
    unsigned queue_frames;
    int jpeg_quality;
    sk2_stream_cap_t *cap;              /* the server's, shared by every pipeline; may be NULL */
    s_lost_t lost[SK2_SERVER_LOST_MAX]; /* oldest loss first */
    size_t lost_count;
} s_worker_t;

static void s_forget(s_worker_t *self, size_t index)
{
    sk2_device_destroy(&self->lost[index].device);
    memmove(&self->lost[index], &self->lost[index + 1],
            (self->lost_count - index - 1) * sizeof self->lost[0]);
    self->lost_count--;
}

static ssize_t s_find_lost(const s_worker_t *self, const char *id)
{
    for (size_t i = 0; i < self->lost_count; i++)
        if (streq(sk2_device_id(self->lost[i].device), id))
            return (ssize_t)i;
    return -1;
}

static int s_serve(s_worker_t *self, sk2_device_t **device_p, sk2_pipeline_t **pipeline_p)
{
    *pipeline_p = NULL;
    if (!self->has_config) {
        sk2_device_destroy(device_p);
        return SK2_ESTATE;
    }
    return sk2_pipeline_new(device_p, &self->address, self->queue_frames, self->jpeg_quality,
                            self->cap, pipeline_p);
}

static void s_add(s_worker_t *self, sk2_device_t *device, int verdict)
{
    sk2_pipeline_t *pipeline = NULL;
    int rc = verdict;
    if (rc == 0 && device && s_find_lost(self, sk2_device_id(device)) >= 0)
        rc = SK2_EEXIST; /* the id of a lost device that may come back */
    if (rc == 0 && !device)
        rc = SK2_EINVAL;
    if (rc == 0 && !sk2_device_is_open(device)) {
        rc = sk2_device_open(device);
        if (rc != 0) {
            SK2_ERROR("server", "cannot open %s device: %s", sk2_device_backend(device),
                      sk2_strerror(rc));
            rc = SK2_EDEVICE;
        }
    }
    if (rc == 0)
        rc = s_serve(self, &device, &pipeline);
    sk2_device_destroy(&device); /* NULL already if the pipeline took it */
    if (pipeline)
        sk2_handoff_release(pipeline);
    zsock_send(self->pipe, "sip", "ADDED", rc, pipeline);
}

static void s_retire(s_worker_t *self, sk2_pipeline_t *pipeline, int tag, bool is_lost)
{
    sk2_server_stats_t stats = {0};
    if (!pipeline) {
        zsock_send(self->pipe, "sib", "RETIRED", tag, &stats, sizeof stats);
        return;
    }
    sk2_device_t *replacement = is_lost ? sk2_pipeline_new_replacement(pipeline) : NULL;
    char id[SK2_DEVICE_ID_MAX + 1];
    snprintf(id, sizeof id, "%s", sk2_pipeline_device_id(pipeline));
    sk2_pipeline_destroy(&pipeline, &stats);
    zsock_send(self->pipe, "sib", "RETIRED", tag, &stats, sizeof stats);
    if (!is_lost)
        return;
    if (!replacement) {
        SK2_ERROR("server", "device %s lost; out of memory to watch for its return", id);
        return;
    }
    if (self->lost_count == SK2_SERVER_LOST_MAX) {
        SK2_WARN("server",
                 "device %s, lost longest ago, is forgotten: no more than %d lost devices are "
                 "watched for their return",
                 sk2_device_id(self->lost[0].device), SK2_SERVER_LOST_MAX);
        s_forget(self, 0);
    }
    self->lost[self->lost_count].device = replacement;
    self->lost[self->lost_count++].next_try_us = sk2_clock_mono_us() + S_REPLUG_TRY_US;
}

/* Tries to open the lost devices whose turn it is; one that opens (the camera is back) is
 * started and handed to the server actor. */
static void s_watch(s_worker_t *self)
{
    int64_t now = sk2_clock_mono_us();
    for (size_t i = 0; i < self->lost_count;) {
        if (now < self->lost[i].next_try_us || sk2_device_open(self->lost[i].device) != 0) {
            if (now >= self->lost[i].next_try_us)
                self->lost[i].next_try_us = now + S_REPLUG_TRY_US;
            i++;
            continue;
        }
        sk2_device_t *device = self->lost[i].device;
        self->lost[i].device = NULL;
        s_forget(self, i);
        char id[SK2_DEVICE_ID_MAX + 1];
        snprintf(id, sizeof id, "%s", sk2_device_id(device));
        sk2_pipeline_t *pipeline = NULL;
        int rc = s_serve(self, &device, &pipeline);
        if (rc == 0) {
            sk2_handoff_release(pipeline);
            zsock_send(self->pipe, "sp", "BACK", pipeline);
        } else {
            SK2_ERROR("server", "device %s is back but cannot be served: %s", id, sk2_strerror(rc));
        }
    }
}

/* Handles one request; returns false on $TERM. */
static bool s_request(s_worker_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr(msg);
    bool keep_going = true;
    if (!command || streq(command, "$TERM")) {
        keep_going = false;
    } else if (streq(command, "CONFIG")) {
        zframe_t *address = zmsg_pop(msg);
        char *queue = zmsg_popstr(msg);
        char *quality = zmsg_popstr(msg);
        if (address && zframe_size(address) == sizeof self->address && queue && quality) {
            memcpy(&self->address, zframe_data(address), sizeof self->address);
            self->queue_frames = (unsigned)atoi(queue);
            self->jpeg_quality = atoi(quality);
            self->has_config = true;
        }
        zframe_destroy(&address);
        zstr_free(&queue);
        zstr_free(&quality);
    } else if (streq(command, "ADD")) {
        void *device = NULL;
        int verdict = SK2_EINVAL;
        zframe_t *frame = zmsg_pop(msg);
        char *text = zmsg_popstr(msg);
        if (frame && zframe_size(frame) == sizeof device && text) {
            memcpy(&device, zframe_data(frame), sizeof device);
            if (device)
                sk2_handoff_acquire(device);
            verdict = atoi(text);
        }
        zframe_destroy(&frame);
        zstr_free(&text);
        s_add(self, device, verdict);
    } else if (streq(command, "RETIRE")) {
        void *pipeline = NULL;
        zframe_t *frame = zmsg_pop(msg);
        char *tag = zmsg_popstr(msg);
        char *is_lost = zmsg_popstr(msg);
        if (frame && zframe_size(frame) == sizeof pipeline)
            memcpy(&pipeline, zframe_data(frame), sizeof pipeline);
        if (pipeline)
            sk2_handoff_acquire(pipeline);
        s_retire(self, pipeline, tag ? atoi(tag) : 0, is_lost && streq(is_lost, "1"));
        zframe_destroy(&frame);
        zstr_free(&tag);
        zstr_free(&is_lost);
    } else if (streq(command, "FORGET")) {
        char *id = zmsg_popstr(msg);
        ssize_t index = id ? s_find_lost(self, id) : -1;
        if (index >= 0) {
            s_forget(self, (size_t)index);
            SK2_INFO("server", "lost device %s removed", id);
        }
        zsock_send(self->pipe, "si", "FORGOT", index >= 0 ? 0 : SK2_ENOTFOUND);
        zstr_free(&id);
    } else if (streq(command, "STOP")) {
        while (self->lost_count > 0)
            s_forget(self, self->lost_count - 1);
        zsock_send(self->pipe, "s", "STOPPED");
    } else {
        SK2_ERROR("server", "internal: unknown life-cycle request %s", command);
    }
    zstr_free(&command);
    zmsg_destroy(&msg);
    return keep_going;
}

void sk2_lifecycle_actor(zsock_t *pipe, void *arg)
{
    s_worker_t self = {
        .pipe = pipe, .cap = arg, .jpeg_quality = SK2_CODEC_DEFAULT_QUALITY, .queue_frames = 2};
    sk2_runtime_block_signals();
    zpoller_t *poller = zpoller_new(pipe, NULL);
    zsock_signal(pipe, 0);
    while (poller) {
        zsock_t *which = zpoller_wait(poller, self.lost_count > 0 ? S_WATCH_MS : -1);
        if (which == pipe) {
            if (!s_request(&self))
                break;
        } else if (zpoller_terminated(poller)) {
            break;
        }
        s_watch(&self);
    }
    while (self.lost_count > 0)
        s_forget(&self, self.lost_count - 1);
    zpoller_destroy(&poller);
}
