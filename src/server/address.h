/* Bind addresses: turning what the user typed into what ZeroMQ binds and what clients are
 * told, which must be a numeric address they can reach (never "*"). Private to libsk2. */
#ifndef SK2_SERVER_ADDRESS_H
#define SK2_SERVER_ADDRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <czmq.h>

#include "proto/curve.h"

typedef struct {
    char bind_host[64];      /* host part for zmq bind: "127.0.0.1", "*", "[::1]" */
    char advertise_host[64]; /* host part handed to clients: numeric, bracketed if IPv6 */
    bool is_ipv6;            /* the socket needs ZMQ_IPV6 */
    sk2_curve_t curve;       /* the server's keys when it is secure: every socket bound here
                                (control, depth, streams) becomes a CURVE server */
} sk2_address_t;

/* Resolves `address` (IPv4/IPv6 literal, "*", "0.0.0.0", "::" or a host name). For wildcards
 * the advertised host is the first non-loopback IPv4 address of an interface that is up, or
 * 127.0.0.1 when there is none. Returns 0, SK2_EINVAL or SK2_ENOTFOUND. */
int sk2_address_resolve(const char *address, sk2_address_t *out);

/* The index of the network interface that holds the bound address (if_nametoindex), or 0 for
 * a wildcard or an address no interface holds. */
unsigned sk2_address_interface(const sk2_address_t *address);

/* Binds a ZeroMQ socket (void *, as libzmq takes it) to a port the kernel picks on bind_host
 * and returns that port, or -1 (zmq_errno() says why). The kernel picks at random from its
 * ephemeral range, unlike CZMQ's "tcp://host:*", which scans upward from 49152 and so gives a
 * port just closed to the next bind: a client still reconnecting to a server that went away
 * (ZeroMQ retries on its own) would then subscribe to whatever was bound there next. */
int sk2_address_bind_ephemeral(void *socket, const char *bind_host);

/* Formats "tcp://host:port" into buf. Returns 0 or SK2_ELIMIT if it does not fit. */
int sk2_address_endpoint(const char *host, int port, char *buf, size_t size);

/* The front end's half of the BIND command that the server's and the relay's actors both
 * answer ("BIND", address, port -> the bound port or an error, and the advertised control
 * endpoint). On success stores the port in *port_out and the endpoint in endpoint (size
 * bytes). Returns 0, an SK2_E* code from the actor, or SK2_ESYS if the actor is gone. */
int sk2_address_bind_actor(zactor_t *actor, const char *address, uint16_t port, uint16_t *port_out,
                           char *endpoint, size_t size);

#endif
