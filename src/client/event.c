/* Client events: small owned records, one per thing that happened. */
#include <stdlib.h>
#include <string.h>

#include <czmq.h>

#include "client/event.h"
#include "proto/header.h"
#include "sk2/browser.h"
#include "sk2/error.h"

sk2_event_t *sk2_event_new(sk2_event_type_t type, const char *device_id, int error,
                           const char *reason)
{
    sk2_event_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->type = type;
    self->error = error;
    self->latency_us = -1;
    if ((device_id && !(self->device_id = strdup(device_id))) ||
        (reason && !(self->reason = strdup(reason))))
        sk2_event_destroy(&self);
    return self;
}

void sk2_event_destroy(sk2_event_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_event_t *self = *self_p;
    sk2_frame_destroy(&self->frame);
    zmsg_t *msg = self->wire_msg;
    zmsg_destroy(&msg);
    free(self->device_id);
    free(self->reason);
    free(self->json);
    free(self->command_id);
    free(self->command_code);
    free(self->server_name);
    free(self->endpoint);
    free(self->host);
    for (size_t i = 0; i < self->address_count; i++)
        free(self->addresses[i]);
    free(self->addresses);
    sk2_txt_destroy(&self->txt);
    free(self);
    *self_p = NULL;
}

sk2_event_type_t sk2_event_type(const sk2_event_t *self)
{
    return self->type;
}

const char *sk2_event_type_name(sk2_event_type_t type)
{
    switch (type) {
    case SK2_EVENT_CONNECTED:
        return "connected";
    case SK2_EVENT_DISCONNECTED:
        return "disconnected";
    case SK2_EVENT_DEVICE_ADDED:
        return "device-added";
    case SK2_EVENT_DEVICE_REMOVED:
        return "device-removed";
    case SK2_EVENT_PONG:
        return "pong";
    case SK2_EVENT_FRAME:
        return "frame";
    case SK2_EVENT_ERROR:
        return "error";
    case SK2_EVENT_STATS:
        return "stats";
    case SK2_EVENT_SERVER_ADDED:
        return "server-added";
    case SK2_EVENT_SERVER_REMOVED:
        return "server-removed";
    case SK2_EVENT_SERVER_UPDATED:
        return "server-updated";
    case SK2_EVENT_REPLAY:
        return "replay";
    case SK2_EVENT_RECONNECTING:
        return "reconnecting";
    case SK2_EVENT_RECONNECTED:
        return "reconnected";
    case SK2_EVENT_COMMAND_DONE:
        return "command-done";
    }
    return "unknown";
}

const char *sk2_event_device_id(const sk2_event_t *self)
{
    return self->device_id;
}

const sk2_frame_t *sk2_event_frame(const sk2_event_t *self)
{
    return self->frame;
}

sk2_frame_t *sk2_event_take_frame(sk2_event_t *self)
{
    sk2_frame_t *frame = self->frame;
    self->frame = NULL;
    return frame;
}

int sk2_event_encoded(const sk2_event_t *self, const uint8_t **header, size_t *header_size,
                      const uint8_t **payload, size_t *payload_size)
{
    if (!self || !self->wire_msg)
        return SK2_ENOTFOUND;
    if (header)
        *header = self->wire_header;
    if (header_size)
        *header_size = self->wire_header_size;
    if (payload)
        *payload = self->wire_payload;
    if (payload_size)
        *payload_size = self->wire_bytes;
    return 0;
}

size_t sk2_event_hops(const sk2_event_t *self, int64_t *times_us, size_t max)
{
    if (!self || !self->wire_msg || !self->wire_header)
        return 0;
    return sk2_header_hops(self->wire_header, self->wire_header_size, times_us, max);
}

size_t sk2_event_wire_bytes(const sk2_event_t *self)
{
    return self->wire_bytes;
}

int64_t sk2_event_rtt_us(const sk2_event_t *self)
{
    return self->rtt_us;
}

int sk2_event_error(const sk2_event_t *self)
{
    return self->error;
}

const char *sk2_event_reason(const sk2_event_t *self)
{
    return self->reason ? self->reason : "";
}

const char *sk2_event_server_name(const sk2_event_t *self)
{
    return self ? self->server_name : NULL;
}

const char *sk2_event_endpoint(const sk2_event_t *self)
{
    return self ? self->endpoint : NULL;
}

const char *sk2_event_host(const sk2_event_t *self)
{
    return self ? self->host : NULL;
}

uint16_t sk2_event_port(const sk2_event_t *self)
{
    return self ? self->port : 0;
}

size_t sk2_event_address_count(const sk2_event_t *self)
{
    return self ? self->address_count : 0;
}

const char *sk2_event_address(const sk2_event_t *self, size_t index)
{
    return self && index < self->address_count ? self->addresses[index] : NULL;
}

const char *sk2_event_txt(const sk2_event_t *self, const char *key)
{
    return self ? sk2_txt_get(self->txt, key) : NULL;
}

const char *sk2_event_codec(const sk2_event_t *self)
{
    return self->codec;
}

int64_t sk2_event_latency_us(const sk2_event_t *self)
{
    return self->latency_us;
}

uint64_t sk2_event_gap(const sk2_event_t *self)
{
    return self->gap;
}

const char *sk2_event_json(const sk2_event_t *self)
{
    return self->json;
}

void sk2_event_queue_push(sk2_event_queue_t *queue, sk2_event_t *event)
{
    if (!event)
        return;
    if (queue->tail)
        queue->tail->next = event;
    else
        queue->head = event;
    queue->tail = event;
}

sk2_event_t *sk2_event_queue_pop(sk2_event_queue_t *queue)
{
    sk2_event_t *event = queue->head;
    if (event) {
        queue->head = event->next;
        if (!queue->head)
            queue->tail = NULL;
        event->next = NULL;
    }
    return event;
}

void sk2_event_queue_clear(sk2_event_queue_t *queue)
{
    sk2_event_t *event;
    while ((event = sk2_event_queue_pop(queue)))
        sk2_event_destroy(&event);
}

int64_t sk2_event_outage_us(const sk2_event_t *self)
{
    return self && self->type == SK2_EVENT_RECONNECTED ? self->outage_us : 0;
}

int64_t sk2_event_lost_at_us(const sk2_event_t *self)
{
    return self && (self->type == SK2_EVENT_RECONNECTING || self->type == SK2_EVENT_RECONNECTED)
               ? self->lost_at_us
               : 0;
}

const char *sk2_event_command_id(const sk2_event_t *self)
{
    return self && self->type == SK2_EVENT_COMMAND_DONE ? self->command_id : NULL;
}

const char *sk2_event_command_code(const sk2_event_t *self)
{
    return self && self->command_code ? self->command_code : "";
}

int64_t sk2_event_command_rtt_us(const sk2_event_t *self)
{
    return self && self->type == SK2_EVENT_COMMAND_DONE ? self->rtt_us : 0;
}

unsigned sk2_event_command_sends(const sk2_event_t *self)
{
    return self && self->type == SK2_EVENT_COMMAND_DONE ? self->command_sends : 0;
}
