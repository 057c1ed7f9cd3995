/* The ZeroMQ plumbing that the server, the client and discovery share: the process-wide set-up
 * of CZMQ, and socket options whose failure is reported rather than asserted (CZMQ's
 * zsock_set_* return nothing and abort on an error). Private to libsk2. */
#ifndef SK2_PROTO_SOCKET_H
#define SK2_PROTO_SOCKET_H

#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

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

#endif
