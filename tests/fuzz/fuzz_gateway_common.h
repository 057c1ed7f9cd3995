/* What fuzz_http.c and fuzz_ws.c share: a real gateway (libwebsockets context, web.c's
 * callbacks, no threads, no servers) that takes the fuzzer's bytes as one connection, through
 * a loopback TCP connection adopted by its event loop, serviced here until it closes the
 * connection. So the whole path a peer's bytes take is fuzzed: libwebsockets' HTTP and WebSocket
 * parsers, web.c's routing, the token check and the subscribe messages.
 *
 * The first input byte picks the gateway: even, one without a token; odd, one that requires
 * S_FUZZ_TOKEN (the seeds carry it, so the fuzzer starts on both sides of the check).
 * FUZZ_DEBUG=1 in the environment prints what the gateway answers and libwebsockets' log. */
#ifndef SK2_FUZZ_GATEWAY_COMMON_H
#define SK2_FUZZ_GATEWAY_COMMON_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <libwebsockets.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
    if (getenv("FUZZ_DEBUG"))
        sk2_log_set_level(SK2_LOG_DEBUG);
    else
        sk2_log_set_handler(s_fuzz_quiet, NULL);
    for (int i = 0; i < 2; i++) {
        s_gateways[i] = sk2_gateway_new();
        if (!s_gateways[i] || (i == 1 && sk2_gateway_set_token(s_gateways[i], S_FUZZ_TOKEN)) ||
            sk2_gateway_bind(s_gateways[i], "127.0.0.1", 0) != 0)
            __builtin_trap();
    }
    if (getenv("FUZZ_DEBUG"))
        lws_set_log_level(LLL_ERR | LLL_WARN | LLL_NOTICE | LLL_INFO | LLL_DEBUG, NULL);
}

/* A connected pair of TCP sockets on loopback, both non-blocking: sv[0] the gateway's end,
 * sv[1] the peer's. TCP rather than a UNIX socket pair, because libwebsockets sets TCP options
 * on a connection that becomes a WebSocket and drops it when that fails. 0 or -1. */
static int s_fuzz_pair(int sv[2])
{
    static int listener = -1;
    static struct sockaddr_in address;
    if (listener < 0) {
        socklen_t len = sizeof address;
        memset(&address, 0, sizeof address);
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
            listen(listener, 16) != 0 ||
            getsockname(listener, (struct sockaddr *)&address, &len) != 0)
            __builtin_trap();
    }
    sv[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sv[1] < 0)
        return -1;
    if (connect(sv[1], (struct sockaddr *)&address, sizeof address) != 0 ||
        (sv[0] = accept(listener, NULL, NULL)) < 0) {
        close(sv[1]);
        return -1;
    }
    for (int i = 0; i < 2; i++)
        fcntl(sv[i], F_SETFL, fcntl(sv[i], F_GETFL) | O_NONBLOCK);
    return 0;
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
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (getenv("FUZZ_DEBUG"))
            fprintf(stderr, "got %zd: %.*s\n", n, (int)(n > 200 ? 200 : n), buf);
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
    if (s_fuzz_pair(sv) != 0)
        return;
    int buffer = 4 * S_FUZZ_MAX_BYTES;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buffer, sizeof buffer);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &buffer, sizeof buffer);
    /* Adopted as the listener adopts what it accepts (web.c: HTTP, with the fallback protocol
     * named, which is what gives the connection its per-connection data). */
    lws_sock_file_fd_type fd = {.sockfd = sv[0]};
    struct lws *wsi =
        lws_adopt_descriptor_vhost(lws_get_vhost_by_name(gw->lws, "sk2"),
                                   LWS_ADOPT_SOCKET | LWS_ADOPT_HTTP, fd, "sk2-fallback", NULL);
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
    /* A few turns with the connection open: an upgrade is answered on a later one. */
    for (int turn = 0; turn < 4; turn++) {
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
