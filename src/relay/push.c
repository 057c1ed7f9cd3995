/* The pushing side of a push link (docs/protocol.md "Push"): an actor thread that holds one
 * DEALER connected out to a relay's push ROUTER and stands, towards the local server, where
 * the relay's client and SUBs would stand if they could reach it.
 *
 * From the relay come requests (passed to the server's control endpoint over a DEALER of our
 * own, envelope and all, and the replies sent back) and subscriptions (applied to a SUB on the
 * server's device endpoint, opened on first use; the endpoints are learnt from the server's
 * `me` replies that pass through). Frames read from those SUBs go to the relay as they came.
 * So the server encodes for the relay exactly what the relay subscribes to, as for any
 * subscriber.
 *
 * The link is a HELLO every second answered by WELCOME. Three seconds without a word from the
 * relay count as a lost link: the SUBs close (their subscriptions belonged to the relay's old
 * facade), the DEALER closes, and a new one is made after a pause that starts at 100 ms and
 * doubles to 10 s while attempts keep failing. A WELCOME with a new session (the relay
 * restarted within those three seconds and the connection came back by itself) resets the
 * SUBs the same way. */
#include <stdlib.h>
#include <string.h>

#include <czmq.h>
#include <jansson.h>

#include "core/log_internal.h"
#include "core/runtime.h"
#include "proto/header.h"
#include "proto/me.h"
#include "proto/msg.h"
#include "proto/socket.h"
#include "relay/push.h"
#include "sk2/device.h"
#include "sk2/error.h"
#include "sk2/limits.h"
#include "sk2/relay.h"
#include "sk2/server.h"

#define S_BACKOFF_MIN_MS 100
#define S_BACKOFF_MAX_MS 10000
#define S_LINK_HWM       64
#define S_SUB_RCVHWM     8
#define S_DEVICES_MAX    SK2_ME_MAX_DEVICES
#define S_ENDPOINT_MAX   256

typedef struct {
    char id[SK2_DEVICE_ID_MAX + 1];
    char endpoint[2][S_ENDPOINT_MAX]; /* depth, streams on the server; "" when it has none */
    zsock_t *sub[2];                  /* opened at the relay's first subscription */
} s_device_t;

typedef struct {
    zsock_t *pipe;
    char *server;     /* the server's control endpoint */
    char *relay;      /* the relay's push endpoint */
    char *name;       /* what we say in HELLO */
    zsock_t *local;   /* DEALER to the server's control endpoint */
    zsock_t *link;    /* DEALER to the relay, NULL between attempts */
    bool is_linked;   /* WELCOME heard and nothing lost since */
    bool was_lost;    /* a link was lost or failed before */
    char session[24]; /* the relay's session in its last WELCOME */
    int64_t heard_us; /* last word from the relay (monotonic) */
    int64_t hello_us; /* next HELLO due */
    int64_t retry_us; /* next attempt, while link is NULL */
    int backoff_ms;   /* the pause after the next failure */
    s_device_t devices[S_DEVICES_MAX];
    size_t device_count;
    int item_of[2 + 1 + 2 * S_DEVICES_MAX];
    sk2_curve_t curve;       /* the link's keys, when secure */
    sk2_curve_t local_curve; /* the keys that reach a secure server (its own, normally) */
} s_actor_t;

static const char *const s_kinds[2] = {"depth", "streams"};

static bool s_is(zmq_msg_t *part, const char *word)
{
    size_t size = strlen(word);
    return zmq_msg_size(part) == size && memcmp(zmq_msg_data(part), word, size) == 0;
}

/* Sends [word][heads...][parts...] on the link without waiting; a full link drops it (the
 * relay's subscribers lose a frame, its client repeats a request). */
static void s_send(s_actor_t *self, const char *word, const char *const *heads, size_t head_count,
                   zmq_msg_t *parts, size_t count)
{
    if (!self->link)
        return;
    void *link = zsock_resolve(self->link);
    size_t rest = head_count + count;
    if (zmq_send(link, word, strlen(word), rest ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT) < 0)
        return;
    for (size_t i = 0; i < head_count; i++)
        zmq_send(link, heads[i], strlen(heads[i]),
                 --rest ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT);
    for (size_t i = 0; i < count; i++)
        zmq_msg_send(&parts[i], link, --rest ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT);
}

static void s_subs_close(s_actor_t *self)
{
    for (size_t i = 0; i < self->device_count; i++) {
        zsock_destroy(&self->devices[i].sub[0]);
        zsock_destroy(&self->devices[i].sub[1]);
    }
}

static void s_hello(s_actor_t *self)
{
    const char *heads[2] = {"1", self->name};
    s_send(self, SK2_PUSH_HELLO, heads, 2, NULL, 0);
    self->hello_us = sk2_clock_mono_us() + SK2_PUSH_HEARTBEAT_MS * 1000LL;
}

static void s_link_open(s_actor_t *self)
{
    self->link = zsock_new(ZMQ_DEALER);
    if (!self->link || sk2_socket_set_int(self->link, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_int(self->link, ZMQ_IMMEDIATE, 1) != 0 ||
        sk2_socket_set_int(self->link, ZMQ_SNDHWM, S_LINK_HWM) != 0 ||
        sk2_socket_set_int(self->link, ZMQ_RCVHWM, S_LINK_HWM) != 0 ||
        sk2_socket_set_int(self->link, ZMQ_RECONNECT_IVL, S_BACKOFF_MIN_MS) != 0 ||
        sk2_socket_set_int(self->link, ZMQ_RECONNECT_IVL_MAX, S_BACKOFF_MAX_MS) != 0 ||
        sk2_socket_set_maxmsgsize(self->link, SK2_MSG_MAX_WIRE + 4096) != 0 ||
        sk2_socket_set_curve_client(self->link, &self->curve) != 0 ||
        zsock_connect(self->link, "%s", self->relay) != 0) {
        SK2_WARN("push", "cannot connect to relay %s: %s", self->relay, zmq_strerror(zmq_errno()));
        zsock_destroy(&self->link);
    }
    self->heard_us = sk2_clock_mono_us();
    if (self->link)
        s_hello(self);
}

/* No word from the relay for too long (or no link could be made): close and try later. */
static void s_link_lost(s_actor_t *self)
{
    if (self->is_linked)
        SK2_WARN("push", "link to relay %s lost (no answer for %d ms); retrying in %d ms",
                 self->relay, SK2_PUSH_SILENCE_MS, self->backoff_ms);
    else
        SK2_WARN("push", "relay %s does not answer; retrying in %d ms", self->relay,
                 self->backoff_ms);
    self->is_linked = false;
    self->was_lost = true;
    s_subs_close(self);
    zsock_destroy(&self->link);
    self->retry_us = sk2_clock_mono_us() + self->backoff_ms * 1000LL;
    self->backoff_ms =
        self->backoff_ms * 2 > S_BACKOFF_MAX_MS ? S_BACKOFF_MAX_MS : self->backoff_ms * 2;
}

/* Learns device endpoints from a `me` reply of the server. */
static void s_learn(s_actor_t *self, zmq_msg_t *parts, size_t count)
{
    const uint8_t *data[3];
    size_t sizes[3];
    if (count > 3)
        return;
    for (size_t i = 0; i < count; i++) {
        data[i] = zmq_msg_data(&parts[i]);
        sizes[i] = zmq_msg_size(&parts[i]);
    }
    sk2_msg_t msg;
    char why[128];
    if (sk2_msg_parse(count, data, sizes, SK2_MSG_FROM_SERVER, &msg, why, sizeof why) != 0)
        return;
    json_t *devices = msg.type == SK2_MSG_ME ? json_object_get(msg.payload, "devices") : NULL;
    if (!json_is_array(devices)) {
        sk2_msg_clear(&msg);
        return;
    }
    bool seen[S_DEVICES_MAX] = {false};
    size_t i;
    json_t *record;
    json_array_foreach(devices, i, record)
    {
        const char *id = json_string_value(json_object_get(record, "id"));
        json_t *endpoints = json_object_get(record, "endpoints");
        if (!id || strlen(id) > SK2_DEVICE_ID_MAX)
            continue;
        size_t at = 0;
        while (at < self->device_count && strcmp(self->devices[at].id, id) != 0)
            at++;
        if (at == self->device_count) {
            if (at == S_DEVICES_MAX)
                continue;
            self->devices[at] = (s_device_t){0};
            snprintf(self->devices[at].id, sizeof self->devices[at].id, "%s", id);
            self->device_count++;
        }
        s_device_t *device = &self->devices[at];
        seen[at] = true;
        for (int kind = 0; kind < 2; kind++) {
            const char *endpoint = json_string_value(json_object_get(endpoints, s_kinds[kind]));
            if (!endpoint || strlen(endpoint) >= S_ENDPOINT_MAX)
                endpoint = "";
            if (strcmp(endpoint, device->endpoint[kind]) == 0)
                continue;
            /* The device moved: the SUB follows, keeping what it subscribes to. */
            if (device->sub[kind] && device->endpoint[kind][0])
                zsock_disconnect(device->sub[kind], "%s", device->endpoint[kind]);
            if (device->sub[kind] && *endpoint)
                zsock_connect(device->sub[kind], "%s", endpoint);
            snprintf(device->endpoint[kind], S_ENDPOINT_MAX, "%s", endpoint);
        }
    }
    for (size_t at = self->device_count; at-- > 0;)
        if (!seen[at]) {
            zsock_destroy(&self->devices[at].sub[0]);
            zsock_destroy(&self->devices[at].sub[1]);
            memmove(&self->devices[at], &self->devices[at + 1],
                    (self->device_count - at - 1) * sizeof self->devices[0]);
            self->device_count--;
        }
    sk2_msg_clear(&msg);
}

/* The relay's (un)subscription: [device id][kind][flag byte + topic]. */
static void s_subscribe(s_actor_t *self, zmq_msg_t *parts, size_t count)
{
    if (count != 3 || zmq_msg_size(&parts[0]) > SK2_DEVICE_ID_MAX)
        return;
    int kind = s_is(&parts[1], "depth") ? 0 : s_is(&parts[1], "streams") ? 1 : -1;
    const uint8_t *data = zmq_msg_data(&parts[2]);
    size_t size = zmq_msg_size(&parts[2]);
    if (kind < 0 || size < 1 || data[0] > 1 || size - 1 > SK2_TOPIC_MAX)
        return;
    s_device_t *device = NULL;
    for (size_t i = 0; i < self->device_count && !device; i++)
        if (strlen(self->devices[i].id) == zmq_msg_size(&parts[0]) &&
            memcmp(self->devices[i].id, zmq_msg_data(&parts[0]), zmq_msg_size(&parts[0])) == 0)
            device = &self->devices[i];
    if (!device || !device->endpoint[kind][0])
        return;
    if (!device->sub[kind]) {
        zsock_t *sub = zsock_new(ZMQ_SUB);
        if (!sub || sk2_socket_set_curve_client(sub, &self->local_curve) != 0 ||
            sk2_socket_set_int(sub, ZMQ_LINGER, 0) != 0 ||
            sk2_socket_set_int(sub, ZMQ_RCVHWM, S_SUB_RCVHWM) != 0 ||
            sk2_socket_set_maxmsgsize(sub, (int64_t)sk2_limit_wire_bytes(SK2_LIMIT_FRAME_BYTES)) !=
                0 ||
            zsock_connect(sub, "%s", device->endpoint[kind]) != 0) {
            SK2_WARN("push", "device %s: cannot connect to %s", device->id, device->endpoint[kind]);
            zsock_destroy(&sub);
            return;
        }
        device->sub[kind] = sub;
    }
    sk2_socket_set_bytes(device->sub[kind], data[0] ? ZMQ_SUBSCRIBE : ZMQ_UNSUBSCRIBE, data + 1,
                         size - 1);
    SK2_DEBUG("push", "device %s: relay %s %.*s", device->id,
              data[0] ? "subscribes to" : "unsubscribes from", (int)(size - 1),
              (const char *)data + 1);
}

static void s_from_relay(s_actor_t *self)
{
    for (int n = 0; n < 64 && self->link; n++) {
        zmq_msg_t parts[SK2_PUSH_MAX_PARTS];
        size_t total = sk2_socket_recv_parts(zsock_resolve(self->link), parts, SK2_PUSH_MAX_PARTS);
        if (total == 0)
            return;
        size_t kept = total < SK2_PUSH_MAX_PARTS ? total : SK2_PUSH_MAX_PARTS;
        self->heard_us = sk2_clock_mono_us();
        if (total > kept) {
            /* nothing well-formed has this many parts */
        } else if (s_is(&parts[0], SK2_PUSH_WELCOME) && total == 2 &&
                   zmq_msg_size(&parts[1]) < sizeof self->session) {
            char session[sizeof self->session];
            memcpy(session, zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]));
            session[zmq_msg_size(&parts[1])] = '\0';
            if (strcmp(session, self->session) != 0) {
                /* A new facade: it has subscribed to nothing of ours yet. The connection came
                 * back by itself, so this is the only sign of a relay that restarted. */
                if (self->is_linked)
                    SK2_WARN("push", "link to relay %s was lost and is back (a new session)",
                             self->relay);
                s_subs_close(self);
                snprintf(self->session, sizeof self->session, "%s", session);
            }
            /* The first link is news for the curious; one back after a loss is reported as
             * loudly as the loss was. */
            if (!self->is_linked && !self->was_lost)
                SK2_INFO("push", "pushing to relay %s as \"%s\"", self->relay, self->name);
            else if (!self->is_linked)
                SK2_WARN("push", "link to relay %s is back", self->relay);
            self->is_linked = true;
            self->backoff_ms = S_BACKOFF_MIN_MS;
        } else if (s_is(&parts[0], SK2_PUSH_REQ) && total >= 3) {
            void *local = zsock_resolve(self->local);
            for (size_t i = 1; i < total; i++)
                if (zmq_msg_send(&parts[i], local,
                                 i + 1 < total ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT) < 0)
                    break;
        } else if (s_is(&parts[0], SK2_PUSH_SUB)) {
            s_subscribe(self, &parts[1], total - 1);
        }
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* A reply of the server: back over the link. */
static void s_from_server(s_actor_t *self)
{
    for (int n = 0; n < 32; n++) {
        zmq_msg_t parts[SK2_PUSH_MAX_PARTS];
        size_t total = sk2_socket_recv_parts(zsock_resolve(self->local), parts, SK2_PUSH_MAX_PARTS);
        if (total == 0)
            return;
        size_t kept = total < SK2_PUSH_MAX_PARTS ? total : SK2_PUSH_MAX_PARTS;
        if (total == kept) {
            size_t delimiter = 0;
            for (size_t i = 0; i < kept && !delimiter; i++)
                if (zmq_msg_size(&parts[i]) == 0)
                    delimiter = i + 1;
            if (delimiter)
                s_learn(self, &parts[delimiter], kept - delimiter);
            s_send(self, SK2_PUSH_REP, NULL, 0, parts, kept);
        }
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* Frames from one SUB: over the link as [FRAME][id][kind][parts...]. */
static void s_frames(s_actor_t *self, size_t at, int kind)
{
    s_device_t *device = &self->devices[at];
    for (int n = 0; n < 64 && device->sub[kind]; n++) {
        zmq_msg_t parts[4];
        size_t total = sk2_socket_recv_parts(zsock_resolve(device->sub[kind]), parts, 4);
        if (total == 0)
            return;
        size_t kept = total < 4 ? total : 4;
        if (total <= 3 && self->is_linked) {
            const char *heads[2] = {device->id, s_kinds[kind]};
            s_send(self, SK2_PUSH_FRAME, heads, 2, parts, total);
        }
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}

static void s_actor(zsock_t *pipe, void *arg)
{
    s_actor_t *self = arg;
    self->pipe = pipe;
    self->backoff_ms = S_BACKOFF_MIN_MS;
    sk2_runtime_block_signals();
    self->local = zsock_new(ZMQ_DEALER);
    if (!self->local || sk2_socket_set_curve_client(self->local, &self->local_curve) != 0 ||
        sk2_socket_set_int(self->local, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_maxmsgsize(self->local, SK2_MSG_MAX_WIRE) != 0 ||
        zsock_connect(self->local, "%s", self->server) != 0) {
        zsock_destroy(&self->local);
        zsock_signal(pipe, 1);
        return;
    }
    zsock_signal(pipe, 0);
    SK2_INFO("push", "pushing %s to relay %s", self->server, self->relay);
    s_link_open(self);
    zmq_pollitem_t items[2 + 1 + 2 * S_DEVICES_MAX];
    bool is_running = true;
    while (is_running) {
        size_t n = 0;
        items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(pipe), .events = ZMQ_POLLIN};
        items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(self->local), .events = ZMQ_POLLIN};
        size_t link_at = SIZE_MAX;
        if (self->link) {
            link_at = n;
            items[n++] =
                (zmq_pollitem_t){.socket = zsock_resolve(self->link), .events = ZMQ_POLLIN};
        }
        size_t subs_at = n;
        for (size_t i = 0; i < self->device_count; i++)
            for (int kind = 0; kind < 2; kind++)
                if (self->devices[i].sub[kind]) {
                    self->item_of[n] = (int)i * 2 + kind;
                    items[n++] = (zmq_pollitem_t){
                        .socket = zsock_resolve(self->devices[i].sub[kind]), .events = ZMQ_POLLIN};
                }
        int64_t now_us = sk2_clock_mono_us();
        int64_t due_us = self->link ? self->hello_us : self->retry_us;
        if (self->link && self->heard_us + SK2_PUSH_SILENCE_MS * 1000LL < due_us)
            due_us = self->heard_us + SK2_PUSH_SILENCE_MS * 1000LL;
        long wait_ms = due_us <= now_us ? 0 : (long)((due_us - now_us + 999) / 1000);
        if (zmq_poll(items, (int)n, wait_ms) < 0 && zmq_errno() != EINTR)
            break;
        if (items[0].revents & ZMQ_POLLIN) {
            char *command = zstr_recv(pipe);
            if (!command || streq(command, "$TERM")) {
                is_running = false;
            } else if (streq(command, "LINKED")) {
                zsock_send(pipe, "i", self->is_linked ? 1 : 0);
            }
            zstr_free(&command);
            continue;
        }
        for (size_t i = subs_at; i < n; i++)
            if (items[i].revents & ZMQ_POLLIN)
                s_frames(self, (size_t)self->item_of[i] / 2, self->item_of[i] % 2);
        if (items[1].revents & ZMQ_POLLIN)
            s_from_server(self);
        if (link_at != SIZE_MAX && (items[link_at].revents & ZMQ_POLLIN))
            s_from_relay(self);
        now_us = sk2_clock_mono_us();
        if (self->link && now_us - self->heard_us > SK2_PUSH_SILENCE_MS * 1000LL)
            s_link_lost(self);
        else if (self->link && now_us >= self->hello_us)
            s_hello(self);
        else if (!self->link && now_us >= self->retry_us)
            s_link_open(self);
    }
    /* A goodbye lets the relay drop our devices now rather than after its silence timeout. */
    if (self->link && self->is_linked) {
        s_send(self, SK2_PUSH_BYE, NULL, 0, NULL, 0);
        zclock_sleep(50); /* the link has no linger; give the word a moment to leave */
    }
    s_subs_close(self);
    zsock_destroy(&self->link);
    zsock_destroy(&self->local);
}

/* ---- The front end ------------------------------------------------------------------------ */

struct sk2_push {
    zactor_t *actor;
    s_actor_t *state; /* owned by the actor until it ends, freed here after */
};

static char *s_tcp(const char *endpoint)
{
    if (!endpoint || !*endpoint || strlen(endpoint) >= S_ENDPOINT_MAX - 8 || strchr(endpoint, ' '))
        return NULL;
    if (strncmp(endpoint, "tcp://", 6) == 0)
        return strchr(endpoint + 6, ':') ? strdup(endpoint) : NULL;
    if (strstr(endpoint, "://") || !strchr(endpoint, ':'))
        return NULL;
    char *out = malloc(strlen(endpoint) + 7);
    if (out)
        sprintf(out, "tcp://%s", endpoint);
    return out;
}

static sk2_push_t *s_new(const char *server_endpoint, const char *relay_endpoint, const char *name,
                         const sk2_curve_t *curve, const sk2_curve_t *local_curve)
{
    if (!name || !*name || strlen(name) > SK2_SERVER_NAME_MAX)
        return NULL;
    json_t *check = json_string(name); /* NULL unless valid UTF-8 */
    json_decref(check);
    if (!check)
        return NULL;
    sk2_socket_init();
    sk2_push_t *self = calloc(1, sizeof *self);
    s_actor_t *state = calloc(1, sizeof *state);
    if (self && state) {
        state->server = s_tcp(server_endpoint);
        state->relay = s_tcp(relay_endpoint);
        state->name = strdup(name);
        if (curve)
            state->curve = *curve;
        if (local_curve)
            state->local_curve = *local_curve;
        if (state->server && state->relay && state->name) {
            self->state = state;
            self->actor = zactor_new(s_actor, state);
        }
    }
    if (!self || !self->actor) {
        if (state) {
            free(state->server);
            free(state->relay);
            free(state->name);
        }
        free(state);
        free(self);
        return NULL;
    }
    return self;
}

sk2_push_t *sk2_push_new(const char *server_endpoint, const char *relay_endpoint, const char *name)
{
    return s_new(server_endpoint, relay_endpoint, name, NULL, NULL);
}

/* Loads a key pair and the public key of the other end into *curve; logs and returns an error
 * naming `what` (the relay, the server) if either cannot be read. */
static int s_load(const char *keys, const char *their_key, const char *what, sk2_curve_t *curve)
{
    int rc = sk2_curve_load_pair(keys, curve);
    if (rc != 0)
        SK2_ERROR("push", "cannot read the key pair %s: %s", keys, sk2_strerror(rc));
    if (rc == 0 && (rc = sk2_curve_read_public(their_key, curve->server_key)) != 0)
        SK2_ERROR("push", "cannot read the %s's key %s: %s", what, their_key, sk2_strerror(rc));
    return rc;
}

sk2_push_t *sk2_push_new_secure(const char *server_endpoint, const char *relay_endpoint,
                                const char *name, const char *keys, const char *relay_key)
{
    if (!keys || !relay_key)
        return NULL;
    sk2_curve_t curve = {0};
    int rc = s_load(keys, relay_key, "relay", &curve);
    sk2_push_t *self = rc == 0 ? s_new(server_endpoint, relay_endpoint, name, &curve, NULL) : NULL;
    memset(&curve, 0, sizeof curve);
    return self;
}

sk2_push_t *sk2_push_new_secure_server(const char *server_endpoint, const char *relay_endpoint,
                                       const char *name, const char *keys, const char *relay_key,
                                       const char *server_keys, const char *server_key)
{
    if (!keys || !relay_key || !server_keys || !server_key)
        return NULL;
    sk2_curve_t curve = {0}, local = {0};
    int rc = s_load(keys, relay_key, "relay", &curve);
    if (rc == 0)
        rc = s_load(server_keys, server_key, "server", &local);
    sk2_push_t *self =
        rc == 0 ? s_new(server_endpoint, relay_endpoint, name, &curve, &local) : NULL;
    memset(&curve, 0, sizeof curve);
    memset(&local, 0, sizeof local);
    return self;
}

void sk2_push_destroy(sk2_push_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_push_t *self = *self_p;
    zactor_destroy(&self->actor);
    free(self->state->server);
    free(self->state->relay);
    free(self->state->name);
    memset(&self->state->curve, 0, sizeof self->state->curve);
    memset(&self->state->local_curve, 0, sizeof self->state->local_curve);
    free(self->state);
    free(self);
    *self_p = NULL;
}

bool sk2_push_is_linked(sk2_push_t *self)
{
    int linked = 0;
    if (!self || zstr_send(self->actor, "LINKED") != 0 ||
        zsock_recv(self->actor, "i", &linked) != 0)
        return false;
    return linked == 1;
}
