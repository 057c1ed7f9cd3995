/* Bind addresses. The original server put "<hostname>.local" into every endpoint, which only
 * resolves where mDNS host names do; sk2 hands out numeric addresses so any client can
 * connect, and resolves host names once, at bind time. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <zmq.h>

#include "server/address.h"
#include "sk2/error.h"

static int s_first_ipv4(char *buf, size_t size)
{
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return SK2_ENOTFOUND;
    int rc = SK2_ENOTFOUND;
    for (struct ifaddrs *it = list; it && rc != 0; it = it->ifa_next) {
        if (!it->ifa_addr || it->ifa_addr->sa_family != AF_INET)
            continue;
        if (!(it->ifa_flags & IFF_UP) || (it->ifa_flags & IFF_LOOPBACK))
            continue;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)it->ifa_addr;
        if (inet_ntop(AF_INET, &sin->sin_addr, buf, (socklen_t)size))
            rc = 0;
    }
    freeifaddrs(list);
    return rc;
}

static int s_set(char *dst, size_t size, bool bracket, const char *host)
{
    int n = snprintf(dst, size, bracket ? "[%s]" : "%s", host);
    return n < 0 || (size_t)n >= size ? SK2_ELIMIT : 0;
}

int sk2_address_resolve(const char *address, sk2_address_t *out)
{
    memset(out, 0, sizeof *out);
    if (!address || !*address || strlen(address) > 253)
        return SK2_EINVAL;

    if (strcmp(address, "*") == 0 || strcmp(address, "0.0.0.0") == 0) {
        strcpy(out->bind_host, "*");
        if (s_first_ipv4(out->advertise_host, sizeof out->advertise_host) != 0)
            strcpy(out->advertise_host, "127.0.0.1");
        return 0;
    }
    if (strcmp(address, "::") == 0) {
        /* Dual-stack wildcard; advertise IPv4, which every client can use. */
        strcpy(out->bind_host, "[::]");
        out->is_ipv6 = true;
        if (s_first_ipv4(out->advertise_host, sizeof out->advertise_host) != 0)
            strcpy(out->advertise_host, "127.0.0.1");
        return 0;
    }

    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *found = NULL;
    char numeric[INET6_ADDRSTRLEN] = "";
    int family = 0;
    /* A literal first, without AI_ADDRCONFIG: on a machine whose only interface is loopback
     * (a container, a test's network namespace) that flag makes even "127.0.0.1" fail. */
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(address, NULL, &hints, &found) == 0)
        goto resolved;
    /* Prefer IPv4: it works with every ZeroMQ peer without ZMQ_IPV6. */
    hints.ai_flags = AI_ADDRCONFIG;
    hints.ai_family = AF_INET;
    if (getaddrinfo(address, NULL, &hints, &found) != 0) {
        hints.ai_family = AF_INET6;
        hints.ai_flags = 0;
        if (getaddrinfo(address, NULL, &hints, &found) != 0)
            return SK2_ENOTFOUND;
    }
resolved:
    family = found->ai_family;
    const void *raw =
        family == AF_INET
            ? (const void *)&((struct sockaddr_in *)(void *)found->ai_addr)->sin_addr
            : (const void *)&((struct sockaddr_in6 *)(void *)found->ai_addr)->sin6_addr;
    const char *ok = inet_ntop(family, raw, numeric, sizeof numeric);
    freeaddrinfo(found);
    if (!ok)
        return SK2_ENOTFOUND;
    out->is_ipv6 = family == AF_INET6;
    if (s_set(out->bind_host, sizeof out->bind_host, out->is_ipv6, numeric) ||
        s_set(out->advertise_host, sizeof out->advertise_host, out->is_ipv6, numeric))
        return SK2_EINVAL;
    return 0;
}

unsigned sk2_address_interface(const sk2_address_t *address)
{
    char host[sizeof address->bind_host];
    snprintf(host, sizeof host, "%s", address->bind_host);
    size_t length = strlen(host);
    char *numeric = host;
    if (length >= 2 && host[0] == '[' && host[length - 1] == ']') {
        host[length - 1] = '\0';
        numeric++;
    }
    unsigned char wanted[sizeof(struct in6_addr)];
    int family = inet_pton(AF_INET, numeric, wanted) == 1    ? AF_INET
                 : inet_pton(AF_INET6, numeric, wanted) == 1 ? AF_INET6
                                                             : 0;
    static const unsigned char any[sizeof(struct in6_addr)] = {0};
    if (!family || memcmp(wanted, any, family == AF_INET ? 4 : 16) == 0)
        return 0;
    struct ifaddrs *list = NULL;
    if (getifaddrs(&list) != 0)
        return 0;
    unsigned index = 0;
    for (struct ifaddrs *it = list; it && !index; it = it->ifa_next) {
        if (!it->ifa_addr || it->ifa_addr->sa_family != family)
            continue;
        const void *raw =
            family == AF_INET
                ? (const void *)&((const struct sockaddr_in *)(const void *)it->ifa_addr)->sin_addr
                : (const void *)&((const struct sockaddr_in6 *)(const void *)it->ifa_addr)
                      ->sin6_addr;
        if (memcmp(raw, wanted, family == AF_INET ? 4 : 16) == 0)
            index = if_nametoindex(it->ifa_name);
    }
    freeifaddrs(list);
    return index;
}

int sk2_address_endpoint(const char *host, int port, char *buf, size_t size)
{
    int n = snprintf(buf, size, "tcp://%s:%d", host, port);
    return n < 0 || (size_t)n >= size ? SK2_ELIMIT : 0;
}

int sk2_address_bind_ephemeral(void *socket, const char *bind_host)
{
    char endpoint[128];
    if (snprintf(endpoint, sizeof endpoint, "tcp://%s:*", bind_host) >= (int)sizeof endpoint)
        return -1;
    /* libzmq's own wildcard binds port 0, leaving the choice to the kernel. */
    if (zmq_bind(socket, endpoint) != 0)
        return -1;
    char last[256];
    size_t size = sizeof last;
    if (zmq_getsockopt(socket, ZMQ_LAST_ENDPOINT, last, &size) != 0)
        return -1;
    const char *colon = strrchr(last, ':');
    long port = colon ? strtol(colon + 1, NULL, 10) : 0;
    return port > 0 && port <= 65535 ? (int)port : -1;
}

int sk2_address_bind_actor(zactor_t *actor, const char *address, uint16_t port, uint16_t *port_out,
                           char *endpoint, size_t size)
{
    char port_text[8];
    snprintf(port_text, sizeof port_text, "%u", (unsigned)port);
    int rc = SK2_EINVAL;
    char *bound = NULL;
    if (zstr_sendx(actor, "BIND", address, port_text, NULL) != 0 ||
        zsock_recv(actor, "is", &rc, &bound) != 0)
        return SK2_ESYS;
    if (rc > 0) {
        *port_out = (uint16_t)rc;
        snprintf(endpoint, size, "%s", bound ? bound : "");
        rc = 0;
    }
    zstr_free(&bound);
    return rc;
}
