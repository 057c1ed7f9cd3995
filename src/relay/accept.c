/* The relay's side of push links (src/relay/push.h): a ROUTER that pushers connect out to, and
 * for each pusher a facade on loopback that the relay follows as an ordinary upstream.
 *
 * Pushers are told apart by the routing id the ROUTER gives each connection. A pusher is known
 * from its first HELLO until it says BYE, is silent for SK2_PUSH_SILENCE_MS, or a new
 * connection says HELLO under the same name (the same host back after a restart); then its
 * facade goes and the relay drops its devices. Its entry stays, marked lost, for the stats. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "core/log_internal.h"
#include "core/random.h"
#include "proto/header.h"
#include "proto/me.h"
#include "proto/msg.h"
#include "proto/socket.h"
#include "relay/push.h"
#include "server/address.h"
#include "sk2/device.h"
#include "sk2/error.h"
#include "sk2/limits.h"
#include "sk2/server.h"

#define S_ROUTING_MAX 255
/* Devices of all facades together, as a relay serves at most this many. */
#define S_DEVICES_MAX SK2_ME_MAX_DEVICES
#define S_FACADE_HWM  8

typedef struct {
    int pusher;                     /* index of its pusher */
    char id[SK2_DEVICE_ID_MAX + 1]; /* the device id */
    zsock_t *xpub[2];               /* depth, streams: what the relay's SUBs connect to */
    char endpoint[2][64];           /* their loopback endpoints */
} s_facade_device_t;

typedef struct {
    bool is_used;               /* the slot holds a pusher, live or lost */
    bool is_live;               /* its link is up and its facade stands */
    uint8_t rid[S_ROUTING_MAX]; /* routing id of its connection */
    size_t rid_size;
    char name[SK2_SERVER_NAME_MAX + 1];
    uint64_t session; /* sent in WELCOME; new for each registration */
    zsock_t *control; /* facade control ROUTER */
    char control_endpoint[64];
    int64_t heard_us;      /* last message from it (monotonic) */
    int64_t since_wall_us; /* when it last changed state (wall clock) */
    char why[64];          /* why it was lost last, "" before */
    uint64_t sessions, frames;
} s_pusher_t;

struct sk2_accept {
    zsock_t *router;
    sk2_accept_fn *fn;
    void *arg;
    s_pusher_t pushers[SK2_PUSH_MAX];
    s_facade_device_t *devices[S_DEVICES_MAX];
    size_t device_count;
    /* What the last sk2_accept_items wrote, item by item: -1 the router, -2-k pusher k's
     * control, d >= 0 device d's xpub (kind in the low bit). */
    int item_of[2 + SK2_PUSH_MAX + 2 * S_DEVICES_MAX];
};

static const char *const s_kinds[2] = {"depth", "streams"};

/* ---- Facades ------------------------------------------------------------------------------ */

static zsock_t *s_loopback(int type, char *endpoint, size_t size)
{
    zsock_t *sock = zsock_new(type);
    if (!sock)
        return NULL;
    int port = -1;
    if (sk2_socket_set_int(sock, ZMQ_LINGER, 0) == 0 &&
        sk2_socket_set_int(sock, ZMQ_SNDHWM, S_FACADE_HWM) == 0)
        port = sk2_address_bind_ephemeral(zsock_resolve(sock), "127.0.0.1");
    if (port < 0 || sk2_address_endpoint("127.0.0.1", port, endpoint, size) != 0)
        zsock_destroy(&sock);
    return sock;
}

static void s_device_drop(sk2_accept_t *self, size_t at)
{
    s_facade_device_t *device = self->devices[at];
    zsock_destroy(&device->xpub[0]);
    zsock_destroy(&device->xpub[1]);
    free(device);
    memmove(&self->devices[at], &self->devices[at + 1],
            (self->device_count - at - 1) * sizeof self->devices[0]);
    self->device_count--;
}

static ssize_t s_device_find(const sk2_accept_t *self, int pusher, const char *id)
{
    for (size_t i = 0; i < self->device_count; i++)
        if (self->devices[i]->pusher == pusher && strcmp(self->devices[i]->id, id) == 0)
            return (ssize_t)i;
    return -1;
}

/* Takes pusher k's facade down and tells the relay. */
static void s_lose(sk2_accept_t *self, int k, const char *why)
{
    s_pusher_t *pusher = &self->pushers[k];
    if (!pusher->is_live)
        return;
    SK2_WARN("relay", "pusher \"%s\" lost: %s; its devices leave the relay", pusher->name, why);
    pusher->is_live = false;
    pusher->since_wall_us = sk2_clock_wall_us();
    snprintf(pusher->why, sizeof pusher->why, "%s", why);
    for (size_t i = self->device_count; i-- > 0;)
        if (self->devices[i]->pusher == k)
            s_device_drop(self, i);
    zsock_destroy(&pusher->control);
    self->fn(self->arg, k, false, pusher->name, NULL);
}

static int s_find_rid(const sk2_accept_t *self, zmq_msg_t *rid)
{
    for (int k = 0; k < SK2_PUSH_MAX; k++) {
        const s_pusher_t *pusher = &self->pushers[k];
        if (pusher->is_live && pusher->rid_size == zmq_msg_size(rid) &&
            memcmp(pusher->rid, zmq_msg_data(rid), pusher->rid_size) == 0)
            return k;
    }
    return -1;
}

/* A HELLO from a connection we do not know: a new pusher, or one back. */
static int s_register(sk2_accept_t *self, zmq_msg_t *rid, const char *name)
{
    int slot = -1;
    for (int k = 0; k < SK2_PUSH_MAX; k++)
        if (self->pushers[k].is_used && strcmp(self->pushers[k].name, name) == 0) {
            s_lose(self, k, "it connected again");
            slot = k;
        }
    for (int k = 0; k < SK2_PUSH_MAX && slot < 0; k++)
        if (!self->pushers[k].is_used)
            slot = k;
    /* All slots used: reuse the one lost longest ago. */
    for (int k = 0; k < SK2_PUSH_MAX && slot < 0; k++)
        if (!self->pushers[k].is_live)
            slot = k;
    if (slot < 0) {
        static sk2_ratelimit_t limit;
        if (sk2_ratelimit_pass(&limit, 60000000, NULL))
            SK2_WARN("relay", "pusher \"%s\" refused: %d pushers already", name, SK2_PUSH_MAX);
        return -1;
    }
    s_pusher_t *pusher = &self->pushers[slot];
    uint64_t sessions = strcmp(pusher->name, name) == 0 ? pusher->sessions : 0;
    uint64_t frames = strcmp(pusher->name, name) == 0 ? pusher->frames : 0;
    *pusher = (s_pusher_t){.is_used = true, .sessions = sessions + 1, .frames = frames};
    snprintf(pusher->name, sizeof pusher->name, "%s", name);
    pusher->rid_size = zmq_msg_size(rid);
    memcpy(pusher->rid, zmq_msg_data(rid), pusher->rid_size);
    if (sk2_random_bytes(&pusher->session, sizeof pusher->session) != 0)
        pusher->session = (uint64_t)sk2_clock_mono_us();
    pusher->control =
        s_loopback(ZMQ_ROUTER, pusher->control_endpoint, sizeof pusher->control_endpoint);
    if (!pusher->control || sk2_socket_set_maxmsgsize(pusher->control, SK2_MSG_MAX_WIRE) != 0) {
        SK2_WARN("relay", "pusher \"%s\": cannot open its facade", name);
        zsock_destroy(&pusher->control);
        pusher->is_used = false;
        return -1;
    }
    pusher->is_live = true;
    pusher->heard_us = sk2_clock_mono_us();
    pusher->since_wall_us = sk2_clock_wall_us();
    if (pusher->sessions == 1)
        SK2_INFO("relay", "pusher \"%s\" connected", name);
    else
        SK2_WARN("relay", "pusher \"%s\" is back (link %llu)", name,
                 (unsigned long long)pusher->sessions);
    self->fn(self->arg, slot, true, name, pusher->control_endpoint);
    return slot;
}

/* ---- Link messages ------------------------------------------------------------------------ */

/* Sends [pusher's routing id][word][parts...] without waiting; a full link drops it. */
static void s_send(sk2_accept_t *self, int k, const char *word, zmq_msg_t *parts, size_t count)
{
    s_pusher_t *pusher = &self->pushers[k];
    void *router = zsock_resolve(self->router);
    if (zmq_send(router, pusher->rid, pusher->rid_size, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    /* Once the routing id is queued the rest of the message goes with it. */
    zmq_send(router, word, strlen(word), count ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT);
    for (size_t i = 0; i < count; i++)
        zmq_msg_send(&parts[i], router, i + 1 < count ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT);
}

/* Rewrites a `me` from the pusher's server to name the facade's endpoints, opening and closing
 * facade devices to match. Returns the payload to send instead, or NULL to pass it unchanged. */
static json_t *s_facade_me(sk2_accept_t *self, int k, const zmq_msg_t *parts, size_t count)
{
    const uint8_t *data[3];
    size_t sizes[3];
    for (size_t i = 0; i < count && i < 3; i++) {
        data[i] = zmq_msg_data((zmq_msg_t *)&parts[i]);
        sizes[i] = zmq_msg_size((zmq_msg_t *)&parts[i]);
    }
    sk2_msg_t msg;
    char why[128];
    if (count > 3 ||
        sk2_msg_parse(count, data, sizes, SK2_MSG_FROM_SERVER, &msg, why, sizeof why) != 0)
        return NULL;
    if (msg.type != SK2_MSG_ME || !msg.payload) {
        sk2_msg_clear(&msg);
        return NULL;
    }
    json_t *me = json_incref(msg.payload);
    sk2_msg_clear(&msg);
    json_t *devices = json_object_get(me, "devices");
    bool seen[S_DEVICES_MAX] = {false};
    size_t i;
    json_t *record;
    json_array_foreach(devices, i, record)
    {
        const char *id = json_string_value(json_object_get(record, "id"));
        json_t *endpoints = json_object_get(record, "endpoints");
        if (!id || strlen(id) > SK2_DEVICE_ID_MAX || !json_is_object(endpoints))
            continue;
        ssize_t at = s_device_find(self, k, id);
        if (at < 0 && self->device_count < S_DEVICES_MAX) {
            s_facade_device_t *device = calloc(1, sizeof *device);
            if (device) {
                device->pusher = k;
                snprintf(device->id, sizeof device->id, "%s", id);
                at = (ssize_t)self->device_count;
                self->devices[self->device_count++] = device;
            }
        }
        if (at < 0)
            continue;
        s_facade_device_t *device = self->devices[at];
        seen[at] = true;
        for (int kind = 0; kind < 2; kind++) {
            if (!json_object_get(endpoints, s_kinds[kind]))
                continue;
            if (!device->xpub[kind])
                device->xpub[kind] =
                    s_loopback(ZMQ_XPUB, device->endpoint[kind], sizeof device->endpoint[kind]);
            if (device->xpub[kind])
                json_object_set_new(endpoints, s_kinds[kind], json_string(device->endpoint[kind]));
            else
                json_object_del(endpoints, s_kinds[kind]);
        }
    }
    for (size_t at = self->device_count; at-- > 0;)
        if (self->devices[at]->pusher == k && !seen[at])
            s_device_drop(self, at);
    json_t *ours = json_object_get(me, "endpoints");
    if (json_is_object(ours))
        json_object_set_new(ours, "control", json_string(self->pushers[k].control_endpoint));
    return me;
}

/* A reply from the pusher's server: to the facade control, with the envelope it carries. */
static void s_reply(sk2_accept_t *self, int k, zmq_msg_t *parts, size_t count)
{
    size_t delimiter = 0;
    for (size_t i = 1; i < count && !delimiter; i++)
        if (zmq_msg_size(&parts[i]) == 0)
            delimiter = i;
    if (!delimiter || delimiter + 1 >= count)
        return;
    void *control = zsock_resolve(self->pushers[k].control);
    json_t *me = s_facade_me(self, k, &parts[delimiter + 1], count - delimiter - 1);
    size_t last = me ? delimiter : count - 1;
    for (size_t i = 0; i <= last; i++)
        if (zmq_msg_send(&parts[i], control,
                         i < last || me ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT) < 0)
            break;
    if (me)
        sk2_msg_send(control, false, SK2_MSG_ME, me);
    json_decref(me);
}

/* A frame from the pusher: onto the facade device's XPUB, as it came. */
static void s_frame(sk2_accept_t *self, int k, zmq_msg_t *parts, size_t count)
{
    if (count < 3 || count > 5)
        return;
    char id[SK2_DEVICE_ID_MAX + 1];
    size_t size = zmq_msg_size(&parts[0]);
    if (size > SK2_DEVICE_ID_MAX)
        return;
    memcpy(id, zmq_msg_data(&parts[0]), size);
    id[size] = '\0';
    int kind = zmq_msg_size(&parts[1]) == 5 && memcmp(zmq_msg_data(&parts[1]), "depth", 5) == 0 ? 0
               : zmq_msg_size(&parts[1]) == 7 && memcmp(zmq_msg_data(&parts[1]), "streams", 7) == 0
                   ? 1
                   : -1;
    ssize_t at = kind < 0 ? -1 : s_device_find(self, k, id);
    if (at < 0 || !self->devices[at]->xpub[kind])
        return;
    void *xpub = zsock_resolve(self->devices[at]->xpub[kind]);
    for (size_t i = 2; i < count; i++)
        if (zmq_msg_send(&parts[i], xpub,
                         i + 1 < count ? ZMQ_SNDMORE | ZMQ_DONTWAIT : ZMQ_DONTWAIT) < 0)
            break;
    self->pushers[k].frames++;
}

static bool s_is(const zmq_msg_t *part, const char *word)
{
    size_t size = strlen(word);
    return zmq_msg_size((zmq_msg_t *)part) == size &&
           memcmp(zmq_msg_data((zmq_msg_t *)part), word, size) == 0;
}

static void s_link(sk2_accept_t *self)
{
    for (int n = 0; n < 256; n++) {
        zmq_msg_t parts[SK2_PUSH_MAX_PARTS];
        size_t total =
            sk2_socket_recv_parts(zsock_resolve(self->router), parts, SK2_PUSH_MAX_PARTS);
        if (total == 0)
            return;
        size_t kept = total < SK2_PUSH_MAX_PARTS ? total : SK2_PUSH_MAX_PARTS;
        int k = total >= 2 ? s_find_rid(self, &parts[0]) : -1;
        if (k >= 0)
            self->pushers[k].heard_us = sk2_clock_mono_us();
        if (total < 2 || total > kept) {
            /* nothing well-formed has this many parts */
        } else if (s_is(&parts[1], SK2_PUSH_HELLO) && total == 4 && s_is(&parts[2], "1") &&
                   zmq_msg_size(&parts[3]) >= 1 && zmq_msg_size(&parts[3]) <= SK2_SERVER_NAME_MAX) {
            if (k < 0) {
                char name[SK2_SERVER_NAME_MAX + 1];
                memcpy(name, zmq_msg_data(&parts[3]), zmq_msg_size(&parts[3]));
                name[zmq_msg_size(&parts[3])] = '\0';
                json_t *check = json_string(name); /* NULL unless valid UTF-8 */
                if (check)
                    k = s_register(self, &parts[0], name);
                json_decref(check);
            }
            if (k >= 0) {
                char session[24];
                snprintf(session, sizeof session, "%llu",
                         (unsigned long long)self->pushers[k].session);
                zmq_msg_t word;
                zmq_msg_init_size(&word, strlen(session));
                memcpy(zmq_msg_data(&word), session, strlen(session));
                s_send(self, k, SK2_PUSH_WELCOME, &word, 1);
                zmq_msg_close(&word);
            }
        } else if (k >= 0 && s_is(&parts[1], SK2_PUSH_REP)) {
            s_reply(self, k, &parts[2], total - 2);
        } else if (k >= 0 && s_is(&parts[1], SK2_PUSH_FRAME)) {
            s_frame(self, k, &parts[2], total - 2);
        } else if (k >= 0 && s_is(&parts[1], SK2_PUSH_BYE)) {
            s_lose(self, k, "it said goodbye");
        }
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* A request on pusher k's facade control: over the link, envelope and all. */
static void s_request(sk2_accept_t *self, int k)
{
    for (int n = 0; n < 32; n++) {
        zmq_msg_t parts[SK2_PUSH_MAX_PARTS];
        size_t total = sk2_socket_recv_parts(zsock_resolve(self->pushers[k].control), parts,
                                             SK2_PUSH_MAX_PARTS);
        if (total == 0)
            return;
        size_t kept = total < SK2_PUSH_MAX_PARTS ? total : SK2_PUSH_MAX_PARTS;
        if (total == kept)
            s_send(self, k, SK2_PUSH_REQ, parts, kept);
        for (size_t i = 0; i < kept; i++)
            zmq_msg_close(&parts[i]);
    }
}

/* A (un)subscription on a facade device's XPUB: over the link to the pusher. */
static void s_subscription(sk2_accept_t *self, size_t at, int kind)
{
    s_facade_device_t *device = self->devices[at];
    for (int n = 0; n < 64; n++) {
        zmq_msg_t parts[3];
        size_t total = sk2_socket_recv_parts(zsock_resolve(device->xpub[kind]), &parts[2], 1);
        if (total == 0)
            return;
        if (total == 1 && zmq_msg_size(&parts[2]) >= 1 &&
            zmq_msg_size(&parts[2]) <= 1 + SK2_TOPIC_MAX) {
            zmq_msg_init_size(&parts[0], strlen(device->id));
            memcpy(zmq_msg_data(&parts[0]), device->id, strlen(device->id));
            zmq_msg_init_size(&parts[1], strlen(s_kinds[kind]));
            memcpy(zmq_msg_data(&parts[1]), s_kinds[kind], strlen(s_kinds[kind]));
            s_send(self, device->pusher, SK2_PUSH_SUB, parts, 3);
            zmq_msg_close(&parts[0]);
            zmq_msg_close(&parts[1]);
        }
        zmq_msg_close(&parts[2]);
    }
}

/* ---- Interface ---------------------------------------------------------------------------- */

int sk2_accept_new(const char *bind_host, int port, const sk2_curve_t *curve, sk2_accept_fn *fn,
                   void *arg, sk2_accept_t **self_p)
{
    *self_p = NULL;
    sk2_accept_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->fn = fn;
    self->arg = arg;
    bool is_secure = curve && curve->is_on;
    self->router = zsock_new(ZMQ_ROUTER);
    bool is_ipv6 = strchr(bind_host, ':') != NULL;
    if (!self->router || sk2_socket_set_int(self->router, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_int(self->router, ZMQ_SNDHWM, 64) != 0 ||
        sk2_socket_set_int(self->router, ZMQ_RCVHWM, 64) != 0 ||
        sk2_socket_set_maxmsgsize(self->router,
                                  (int64_t)sk2_limit_wire_bytes(SK2_LIMIT_FRAME_BYTES)) != 0 ||
        (is_ipv6 && sk2_socket_set_int(self->router, ZMQ_IPV6, 1) != 0) ||
        (is_secure && sk2_socket_set_curve_server(self->router, curve) != 0) ||
        zsock_bind(self->router, is_ipv6 ? "tcp://[%s]:%d" : "tcp://%s:%d", bind_host, port) < 0) {
        SK2_ERROR("relay", "cannot accept pushes on %s:%d: %s", bind_host, port,
                  zmq_strerror(zmq_errno()));
        zsock_destroy(&self->router);
        free(self);
        return SK2_EBIND;
    }
    SK2_INFO("relay", "accepting pushes on tcp://%s:%d%s", bind_host, port,
             is_secure ? " (CURVE: allowed keys only)" : "");
    *self_p = self;
    return 0;
}

void sk2_accept_destroy(sk2_accept_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_accept_t *self = *self_p;
    while (self->device_count > 0)
        s_device_drop(self, self->device_count - 1);
    for (int k = 0; k < SK2_PUSH_MAX; k++)
        zsock_destroy(&self->pushers[k].control);
    zsock_destroy(&self->router);
    free(self);
    *self_p = NULL;
}

size_t sk2_accept_items(sk2_accept_t *self, zmq_pollitem_t *items, size_t max)
{
    size_t n = 0;
    if (n < max) {
        self->item_of[n] = -1;
        items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(self->router), .events = ZMQ_POLLIN};
    }
    for (int k = 0; k < SK2_PUSH_MAX && n < max; k++)
        if (self->pushers[k].is_live) {
            self->item_of[n] = -2 - k;
            items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(self->pushers[k].control),
                                          .events = ZMQ_POLLIN};
        }
    for (size_t i = 0; i < self->device_count; i++)
        for (int kind = 0; kind < 2 && n < max; kind++)
            if (self->devices[i]->xpub[kind]) {
                self->item_of[n] = (int)(i * 2) + kind;
                items[n++] = (zmq_pollitem_t){.socket = zsock_resolve(self->devices[i]->xpub[kind]),
                                              .events = ZMQ_POLLIN};
            }
    return n;
}

void sk2_accept_handle(sk2_accept_t *self, const zmq_pollitem_t *items, size_t count)
{
    /* Facade sockets first: the link may drop devices and pushers the items name. */
    for (size_t i = 0; i < count; i++) {
        if (!(items[i].revents & ZMQ_POLLIN) || self->item_of[i] == -1)
            continue;
        if (self->item_of[i] <= -2)
            s_request(self, -2 - self->item_of[i]);
        else
            s_subscription(self, (size_t)self->item_of[i] / 2, self->item_of[i] % 2);
    }
    if (count > 0 && (items[0].revents & ZMQ_POLLIN))
        s_link(self);
    int64_t now_us = sk2_clock_mono_us();
    for (int k = 0; k < SK2_PUSH_MAX; k++)
        if (self->pushers[k].is_live &&
            now_us - self->pushers[k].heard_us > SK2_PUSH_SILENCE_MS * 1000LL)
            s_lose(self, k, "silent for too long");
}

int64_t sk2_accept_due_us(const sk2_accept_t *self)
{
    int64_t due_us = INT64_MAX;
    for (int k = 0; k < SK2_PUSH_MAX; k++)
        if (self->pushers[k].is_live) {
            int64_t at = self->pushers[k].heard_us + SK2_PUSH_SILENCE_MS * 1000LL + 1000;
            if (at < due_us)
                due_us = at;
        }
    return due_us;
}

json_t *sk2_accept_stats(const sk2_accept_t *self, size_t *live)
{
    json_t *list = json_array();
    *live = 0;
    int64_t now_us = sk2_clock_wall_us();
    for (int k = 0; k < SK2_PUSH_MAX; k++) {
        const s_pusher_t *pusher = &self->pushers[k];
        if (!pusher->is_used)
            continue;
        *live += pusher->is_live;
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:I, s:f, s:s}", "name", pusher->name, "state",
                            pusher->is_live ? "live" : "lost", "sessions",
                            (json_int_t)pusher->sessions, "frames", (json_int_t)pusher->frames,
                            "seconds", (double)(now_us - pusher->since_wall_us) / 1e6,
                            "lost_because", pusher->is_live ? "" : pusher->why));
    }
    return list;
}
