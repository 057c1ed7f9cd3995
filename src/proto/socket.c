/* Process set-up of CZMQ and checked socket options (see socket.h). Kept out of core/, which
 * depends on nothing but libc and pthreads; proto/ is the lowest layer that talks to ZeroMQ. */
#include <pthread.h>
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
