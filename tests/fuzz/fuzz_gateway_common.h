/* What fuzz_http.c and fuzz_ws.c share: a real gateway (libwebsockets context, web.c's
 * callbacks, no threads, no servers) that takes the fuzzer's bytes as one connection, through
 * a socket pair adopted by its event loop, serviced here until it closes the connection. So
 * the whole path a peer's bytes take is fuzzed: libwebsockets' HTTP and WebSocket parsers,
 * web.c's routing, the token check and the subscribe messages.
 *
 * The first input byte picks the gateway: even, one without a token; odd, one that requires
 * S_FUZZ_TOKEN (the seeds carry it, so the fuzzer starts on both sides of the check). */
#ifndef SK2_FUZZ_GATEWAY_COMMON_H
#define SK2_FUZZ_GATEWAY_COMMON_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gateway/gateway_impl.h"
#include "sk2/gateway.h"
#include "sk2/log.h"

#define S_FUZZ_TOKEN     "fuzz-token-0123456789abcdef"
#define S_FUZZ_MAX_BYTES 65536 /* longer inputs are not more interesting, only slower */

static sk2_gateway_t *s_gateways[2];

static void s_fuzz_quiet(void *arg, sk2_log_level_t level, const char *component,
                         const char *message)
{
    (void)arg;
    (void)level;
    (void)component;
    (void)message;
}

static void s_fuzz_init(void)
{
    if (s_gateways[0])
        return;
    sk2_log_set_handler(s_fuzz_quiet, NULL);
    for (int i = 0; i < 2; i++) {
        s_gateways[i] = sk2_gateway_new();
        if (!s_gateways[i] || (i == 1 && sk2_gateway_set_token(s_gateways[i], S_FUZZ_TOKEN)) ||
            sk2_gateway_bind(s_gateways[i], "127.0.0.1", 0) != 0)
            __builtin_trap();
    }
}

/* Connections the gateway holds now. */
static unsigned s_fuzz_open(sk2_gateway_t *gw)
{
    sk2_gateway_stats_t stats;
    sk2_gateway_stats(gw, &stats);
    return stats.http_connections;
}

/* Reads and drops whatever the gateway wrote back. */
static void s_fuzz_drain(int fd)
{
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* Feeds prefix then data to a gateway as one connection and services it until the gateway has
 * no connection left (or a bounded number of turns). */
static void s_fuzz_feed(const uint8_t *data, size_t size, const char *prefix)
{
    if (size < 1 || size > S_FUZZ_MAX_BYTES)
        return;
    s_fuzz_init();
    sk2_gateway_t *gw = s_gateways[data[0] & 1];
    data++;
    size--;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return;
    int buffer = 4 * S_FUZZ_MAX_BYTES;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    struct lws *wsi = lws_adopt_socket_vhost(lws_get_vhost_by_name(gw->lws, "sk2"), sv[0]);
    if (!wsi) {
        close(sv[1]);
        return;
    }
    size_t prefix_len = prefix ? strlen(prefix) : 0;
    if (prefix_len && write(sv[1], prefix, prefix_len) != (ssize_t)prefix_len)
        __builtin_trap();
    size_t sent = 0;
    for (int turn = 0; turn < 64 && sent < size; turn++) {
        ssize_t n = write(sv[1], data + sent, size - sent);
        if (n > 0)
            sent += (size_t)n;
        lws_service(gw->lws, -1);
        s_fuzz_drain(sv[1]);
    }
    shutdown(sv[1], SHUT_WR);
    for (int turn = 0; turn < 64 && s_fuzz_open(gw) > 0; turn++) {
        lws_service(gw->lws, -1);
        s_fuzz_drain(sv[1]);
    }
    close(sv[1]);
    for (int turn = 0; turn < 64 && s_fuzz_open(gw) > 0; turn++)
        lws_service(gw->lws, -1);
}

#endif
