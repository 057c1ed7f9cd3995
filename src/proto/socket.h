/* The ZeroMQ plumbing that the server, the client and discovery share: the process-wide set-up
 * of CZMQ, and socket options whose failure is reported rather than asserted (CZMQ's
 * zsock_set_* return nothing and abort on an error). Private to libsk2. */
#ifndef SK2_PROTO_SOCKET_H
#define SK2_PROTO_SOCKET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "proto/curve.h"

/* Called by every constructor that uses ZeroMQ; does its work once per process. Keeps CZMQ
 * from installing SIGINT/SIGTERM handlers: signals belong to the application. Any thread. */
void sk2_socket_init(void);

/* Sets an int option (ZMQ_LINGER, ZMQ_SNDHWM, ZMQ_IPV6, ...). Returns 0, or SK2_ESYS with a
 * warning naming the option if libzmq refuses it (a closed context, an option this libzmq
 * lacks). Called on the thread that owns the socket. */
int sk2_socket_set_int(zsock_t *socket, int option, int value);
/* Sets ZMQ_MAXMSGSIZE, the largest message libzmq reads off this socket, bytes. Same returns. */
int sk2_socket_set_maxmsgsize(zsock_t *socket, int64_t bytes);
/* Sets an option that takes bytes (ZMQ_SUBSCRIBE, ZMQ_UNSUBSCRIBE). Same returns. */
int sk2_socket_set_bytes(zsock_t *socket, int option, const void *value, size_t size);

/* The one place a socket becomes secure, called right after each socket is created (NULL or
 * a curve with is_on false: nothing changes, so version 1 works as before). A server socket
 * gets CURVE_SERVER, our secret key and the ZAP domain "sk2", so that every connection is
 * checked by the server's ZAP handler (src/server/zap.c); a client socket gets our key pair
 * and the server's public key. Return 0, or SK2_ESYS with a warning if libzmq refuses (no
 * CURVE in this libzmq). Called on the thread that owns the socket. */
int sk2_socket_set_curve_server(zsock_t *socket, const sk2_curve_t *curve);
int sk2_socket_set_curve_client(zsock_t *socket, const sk2_curve_t *curve);

/* The connections a bound socket has now, counted from libzmq's monitor events (accepted and
 * disconnected), which the socket's owner reads in its own poll loop: no thread. The pipeline
 * uses it to keep its subscriber counts honest (libzmq's XPUB tells it of the last subscriber
 * of a topic leaving, not of the others; see s_clamp in src/server/pipeline.c). Create it
 * before the socket binds, so no connection is missed, and destroy it before the socket. */
typedef struct sk2_peers sk2_peers_t;

/* NULL on failure (logged). */
sk2_peers_t *sk2_peers_new(zsock_t *socket);
void sk2_peers_destroy(sk2_peers_t **self_p);
/* The monitor socket to poll for ZMQ_POLLIN. */
zsock_t *sk2_peers_socket(sk2_peers_t *self);
/* Reads every pending event. Returns true if a connection ended among them. */
bool sk2_peers_read(sk2_peers_t *self);
/* Connections open now, as far as the events read so far say. */
unsigned sk2_peers_count(const sk2_peers_t *self);

/* Reads one whole message without waiting, keeping its first `keep` parts in parts (each to be
 * closed by the caller) and dropping the rest. Returns how many parts it had (0: none was
 * waiting), which may be more than `keep`. */
size_t sk2_socket_recv_parts(void *socket, zmq_msg_t *parts, size_t keep);

/* The ZAP domain of sk2's secure server sockets. */
#define SK2_ZAP_DOMAIN "sk2"

/* Objects handed from one thread to another as a pointer in a ZeroMQ message (a device to the
 * server actor, a frame to its pipeline). libzmq orders such a hand-over with atomics that
 * ThreadSanitizer cannot see, libzmq not being built with it, so in a TSan build the sender
 * calls sk2_handoff_release(object) before sending and the receiver sk2_handoff_acquire(object)
 * after receiving: what the sender wrote then happens before what the receiver reads. Other
 * builds compile both to nothing. */
#if defined(__SANITIZE_THREAD__)
#define SK2_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SK2_TSAN 1
#endif
#endif
#if defined(SK2_TSAN)
#include <sanitizer/tsan_interface.h>
static inline void sk2_handoff_release(void *object)
{
    __tsan_release(object);
}
static inline void sk2_handoff_acquire(void *object)
{
    __tsan_acquire(object);
}
#else
static inline void sk2_handoff_release(void *object)
{
    (void)object;
}
static inline void sk2_handoff_acquire(void *object)
{
    (void)object;
}
#endif

#endif
