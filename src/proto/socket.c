/* Process set-up of CZMQ and checked socket options (see socket.h). Kept out of core/, which
 * depends on nothing but libc and pthreads; proto/ is the lowest layer that talks to ZeroMQ. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log_internal.h"
#include "proto/socket.h"
#include "sk2/error.h"

static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void s_init(void)
{
    zsys_handler_set(NULL);
    zsys_init();
}

void sk2_socket_init(void)
{
    pthread_once(&s_once, s_init);
}

int sk2_socket_set_bytes(zsock_t *socket, int option, const void *value, size_t size)
{
    if (zmq_setsockopt(zsock_resolve(socket), option, value, size) != 0) {
        SK2_WARN("socket", "cannot set option %d: %s", option, zmq_strerror(zmq_errno()));
        return SK2_ESYS;
    }
    return 0;
}

int sk2_socket_set_int(zsock_t *socket, int option, int value)
{
    return sk2_socket_set_bytes(socket, option, &value, sizeof value);
}

int sk2_socket_set_maxmsgsize(zsock_t *socket, int64_t bytes)
{
    return sk2_socket_set_bytes(socket, ZMQ_MAXMSGSIZE, &bytes, sizeof bytes);
}

int sk2_socket_set_curve_server(zsock_t *socket, const sk2_curve_t *curve)
{
    if (!curve || !curve->is_on)
        return 0;
    if (sk2_socket_set_int(socket, ZMQ_CURVE_SERVER, 1) != 0 ||
        sk2_socket_set_bytes(socket, ZMQ_CURVE_SECRETKEY, curve->secret_key, 40) != 0 ||
        sk2_socket_set_bytes(socket, ZMQ_ZAP_DOMAIN, SK2_ZAP_DOMAIN, strlen(SK2_ZAP_DOMAIN)) != 0)
        return SK2_ESYS;
    return 0;
}

int sk2_socket_set_curve_client(zsock_t *socket, const sk2_curve_t *curve)
{
    if (!curve || !curve->is_on)
        return 0;
    if (sk2_socket_set_bytes(socket, ZMQ_CURVE_SERVERKEY, curve->server_key, 40) != 0 ||
        sk2_socket_set_bytes(socket, ZMQ_CURVE_PUBLICKEY, curve->public_key, 40) != 0 ||
        sk2_socket_set_bytes(socket, ZMQ_CURVE_SECRETKEY, curve->secret_key, 40) != 0)
        return SK2_ESYS;
    return 0;
}

/* ---- Counting a bound socket's connections ---------------------------------------------------
 */

/* Monitor events may wait unread: libzmq's I/O thread sends them with a blocking send, so the
 * pipe must not fill while the owner is busy for a moment (an encode of a large frame) during a
 * burst of connections. Each event is a few dozen bytes. */
#define S_PEERS_EVENTS_QUEUED 100000

struct sk2_peers {
    void *watched;    /* the libzmq socket watched */
    zsock_t *monitor; /* PAIR reading its monitor events */
    unsigned count;   /* accepted minus disconnected */
};

sk2_peers_t *sk2_peers_new(zsock_t *socket)
{
    sk2_peers_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    /* A fresh inproc name each time: libzmq releases a closed one asynchronously. */
    static _Atomic unsigned long long s_next;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://sk2-peers-%llu", s_next++);
    if (zmq_socket_monitor(zsock_resolve(socket), endpoint,
                           ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) == 0) {
        self->watched = zsock_resolve(socket);
        self->monitor = zsock_new(ZMQ_PAIR);
    }
    if (!self->monitor || sk2_socket_set_int(self->monitor, ZMQ_LINGER, 0) != 0 ||
        sk2_socket_set_int(self->monitor, ZMQ_RCVHWM, S_PEERS_EVENTS_QUEUED) != 0 ||
        zsock_connect(self->monitor, "%s", endpoint) != 0) {
        SK2_WARN("socket", "cannot count a socket's connections: %s", zmq_strerror(zmq_errno()));
        sk2_peers_destroy(&self);
    }
    return self;
}

/* The monitor stops before its reader goes: libzmq would otherwise block on a full pipe to a
 * reader that is gone. */
void sk2_peers_destroy(sk2_peers_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_peers_t *self = *self_p;
    if (self->watched)
        zmq_socket_monitor(self->watched, NULL, 0);
    zsock_destroy(&self->monitor);
    free(self);
    *self_p = NULL;
}

zsock_t *sk2_peers_socket(sk2_peers_t *self)
{
    return self ? self->monitor : NULL;
}

bool sk2_peers_read(sk2_peers_t *self)
{
    bool has_ended = false;
    while (self && (zsock_events(self->monitor) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->monitor);
        zframe_t *head = msg ? zmsg_first(msg) : NULL;
        if (!head || zframe_size(head) != 6) {
            zmsg_destroy(&msg);
            break;
        }
        uint16_t event;
        memcpy(&event, zframe_data(head), 2);
        zmsg_destroy(&msg);
        if (event == ZMQ_EVENT_ACCEPTED) {
            self->count++;
        } else if (event == ZMQ_EVENT_DISCONNECTED) {
            if (self->count > 0)
                self->count--;
            has_ended = true;
        }
    }
    return has_ended;
}

unsigned sk2_peers_count(const sk2_peers_t *self)
{
    return self ? self->count : 0;
}

size_t sk2_socket_recv_parts(void *socket, zmq_msg_t *parts, size_t keep)
{
    size_t count = 0;
    bool is_more = true;
    while (is_more) {
        zmq_msg_t scratch;
        zmq_msg_t *part = count < keep ? &parts[count] : &scratch;
        zmq_msg_init(part);
        if (zmq_msg_recv(part, socket, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(part);
            break; /* only the first can be missing: a message arrives whole */
        }
        is_more = zmq_msg_more(part);
        if (part == &scratch)
            zmq_msg_close(&scratch);
        count++;
    }
    return count;
}
