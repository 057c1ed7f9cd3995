/* The browser: turns what the DNS-SD backend sees (instances per interface and IP version,
 * resolved or not) into what a user wants (servers by name, each with one endpoint), and
 * hands the changes out as events. Like the client, it starts no thread: the backend's
 * descriptors are polled inside sk2_browser_recv() and its callbacks run there.
 *
 * One server can show up several times: on each interface it is announced on, over IPv4 and
 * IPv6 transports. The browser keeps every instance and derives each server from the
 * resolved instances that share its name: ADDED when the first resolves, UPDATED when the
 * endpoint, host, port or TXT it would report changes, REMOVED when the last goes. The
 * endpoint prefers an IPv4 address, because an sk2 server bound to "*" listens on IPv4 only.
 * Every string here came from the network and is bounded by the backend (names: one label,
 * hosts: 255 bytes) and by txt.c (TXT). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/event.h"
#include "client/loop.h"
#include "core/log_internal.h"
#include "discovery/discovery.h"
#include "proto/curve.h"
#include "proto/socket.h"
#include "proto/txt.h"
#include "sk2/browser.h"
#include "sk2/error.h"
#include "sk2/frame.h"
#include "sk2/security.h"

/* Instances tracked at once (a server on a few interfaces, twice each). */
#define S_MAX_INSTANCES (4 * SK2_BROWSER_SERVERS_MAX)
/* Events handed to the handler in one dispatch before it returns. */
/* Endpoint text: "tcp://[" + address with scope + "]:65535". */
#define S_ENDPOINT_MAX 128

typedef struct {
    char *name;               /* instance name */
    unsigned interface_index; /* where it was seen */
    bool is_ipv6;             /* transport it was seen on */
    bool is_resolved;         /* host/port/address/txt are set */
    bool is_failed;           /* resolution failed */
    char *host;               /* SRV target */
    uint16_t port;            /* SRV port */
    char *address;            /* numeric */
    bool is_address_ipv6;     /* address is IPv6 */
    sk2_txt_t *txt;           /* TXT pairs */
} s_instance_t;

typedef struct {
    char *name;                    /* instance name shared by its instances */
    char endpoint[S_ENDPOINT_MAX]; /* as last reported */
    char *host;                    /* as last reported */
    uint16_t port;                 /* as last reported */
    sk2_txt_t *txt;                /* as last reported */
} s_server_t;

struct sk2_browser {
    const sk2_dnssd_backend_t *backend; /* NULL until started */
    sk2_dnssd_t *handle;                /* browsing, once started */
    char error[256];                    /* why browsing does not work, or "" */
    s_instance_t instances[S_MAX_INSTANCES];
    size_t instance_count;
    s_server_t servers[SK2_BROWSER_SERVERS_MAX]; /* reported servers, in order found */
    size_t server_count;
    bool is_all_for_now;             /* the backend said it told all it knows */
    sk2_event_queue_t queue;         /* events ready for the caller */
    sk2_browser_handler_fn *handler; /* for dispatch */
    void *handler_arg;
};

/* ---- Servers -------------------------------------------------------------------------------- */

static void s_instance_free(s_instance_t *instance)
{
    free(instance->name);
    free(instance->host);
    free(instance->address);
    sk2_txt_destroy(&instance->txt);
    memset(instance, 0, sizeof *instance);
}

static void s_server_free(s_server_t *server)
{
    free(server->name);
    free(server->host);
    sk2_txt_destroy(&server->txt);
    memset(server, 0, sizeof *server);
}

static s_server_t *s_find_server(sk2_browser_t *self, const char *name)
{
    for (size_t i = 0; i < self->server_count; i++)
        if (strcmp(self->servers[i].name, name) == 0)
            return &self->servers[i];
    return NULL;
}

static void s_format_endpoint(const s_instance_t *instance, char *out, size_t size)
{
    snprintf(out, size, instance->is_address_ipv6 ? "tcp://[%s]:%u" : "tcp://%s:%u",
             instance->address, (unsigned)instance->port);
}

/* A server event from the server's reported view, with every address of its instances. */
static sk2_event_t *s_server_event(sk2_browser_t *self, sk2_event_type_t type,
                                   const s_server_t *server)
{
    sk2_event_t *event = sk2_event_new(type, NULL, 0, NULL);
    if (!event)
        return NULL;
    event->server_name = strdup(server->name);
    event->endpoint = strdup(server->endpoint);
    event->host = strdup(server->host ? server->host : "");
    event->port = server->port;
    event->txt = sk2_txt_copy(server->txt);
    event->addresses = calloc(self->instance_count + 1, sizeof *event->addresses);
    if (!event->server_name || !event->endpoint || !event->host || !event->addresses ||
        (server->txt && !event->txt)) {
        sk2_event_destroy(&event);
        return NULL;
    }
    for (size_t i = 0; i < self->instance_count; i++) {
        const s_instance_t *instance = &self->instances[i];
        if (!instance->is_resolved || strcmp(instance->name, server->name) != 0)
            continue;
        bool is_known = false;
        for (size_t k = 0; k < event->address_count && !is_known; k++)
            is_known = strcmp(event->addresses[k], instance->address) == 0;
        if (!is_known && (event->addresses[event->address_count] = strdup(instance->address)))
            event->address_count++;
    }
    return event;
}

/* Derives the server called `name` from its instances again and reports any change. */
static void s_update_server(sk2_browser_t *self, const char *name)
{
    const s_instance_t *best = NULL;
    for (size_t i = 0; i < self->instance_count; i++) {
        const s_instance_t *instance = &self->instances[i];
        if (!instance->is_resolved || strcmp(instance->name, name) != 0)
            continue;
        if (!best || (best->is_address_ipv6 && !instance->is_address_ipv6))
            best = instance;
    }
    s_server_t *server = s_find_server(self, name);
    if (!best) {
        if (!server)
            return;
        sk2_event_queue_push(&self->queue, s_server_event(self, SK2_EVENT_SERVER_REMOVED, server));
        s_server_free(server);
        size_t index = (size_t)(server - self->servers);
        memmove(server, server + 1, (self->server_count - index - 1) * sizeof *server);
        self->server_count--;
        return;
    }
    char endpoint[S_ENDPOINT_MAX];
    s_format_endpoint(best, endpoint, sizeof endpoint);
    sk2_event_type_t type = SK2_EVENT_SERVER_UPDATED;
    if (!server) {
        if (self->server_count == SK2_BROWSER_SERVERS_MAX) {
            static sk2_ratelimit_t limit;
            if (sk2_ratelimit_pass(&limit, 10000000, NULL))
                SK2_WARN("discovery", "more than %d servers; ignoring \"%s\"",
                         SK2_BROWSER_SERVERS_MAX, name);
            return;
        }
        server = &self->servers[self->server_count];
        if (!(server->name = strdup(name)))
            return;
        self->server_count++;
        type = SK2_EVENT_SERVER_ADDED;
    } else if (strcmp(server->endpoint, endpoint) == 0 && server->port == best->port &&
               server->host && strcmp(server->host, best->host) == 0 &&
               sk2_txt_equal(server->txt, best->txt)) {
        return; /* nothing a user sees has changed */
    }
    snprintf(server->endpoint, sizeof server->endpoint, "%s", endpoint);
    free(server->host);
    server->host = strdup(best->host);
    server->port = best->port;
    sk2_txt_destroy(&server->txt);
    server->txt = sk2_txt_copy(best->txt);
    sk2_event_queue_push(&self->queue, s_server_event(self, type, server));
}

/* ---- What the backend tells us -------------------------------------------------------------- */

static s_instance_t *s_find_instance(sk2_browser_t *self, const sk2_dnssd_found_t *found)
{
    for (size_t i = 0; i < self->instance_count; i++) {
        s_instance_t *instance = &self->instances[i];
        if (instance->interface_index == found->interface_index &&
            instance->is_ipv6 == found->is_ipv6 && strcmp(instance->name, found->name) == 0)
            return instance;
    }
    return NULL;
}

static s_instance_t *s_add_instance(sk2_browser_t *self, const sk2_dnssd_found_t *found)
{
    if (self->instance_count == S_MAX_INSTANCES)
        return NULL;
    s_instance_t *instance = &self->instances[self->instance_count];
    *instance = (s_instance_t){.interface_index = found->interface_index,
                               .is_ipv6 = found->is_ipv6,
                               .name = strdup(found->name)};
    if (!instance->name)
        return NULL;
    self->instance_count++;
    return instance;
}

static void s_resolved(sk2_browser_t *self, s_instance_t *instance, const sk2_dnssd_found_t *found)
{
    sk2_txt_t *txt = sk2_txt_parse(found->txt, found->txt_sizes, found->txt_count);
    char *host = strdup(found->host);
    char *address = strdup(found->address);
    if (!txt || !host || !address) {
        sk2_txt_destroy(&txt);
        free(host);
        free(address);
        return;
    }
    free(instance->host);
    free(instance->address);
    sk2_txt_destroy(&instance->txt);
    instance->host = host;
    instance->address = address;
    instance->txt = txt;
    instance->port = found->port;
    instance->is_address_ipv6 = found->is_address_ipv6;
    instance->is_resolved = true;
    instance->is_failed = false;
}

static void s_lost(sk2_browser_t *self, const char *reason)
{
    snprintf(self->error, sizeof self->error, "%s", reason);
    for (size_t i = 0; i < self->instance_count; i++)
        s_instance_free(&self->instances[i]);
    self->instance_count = 0;
    while (self->server_count > 0)
        s_update_server(self, self->servers[self->server_count - 1].name);
    self->is_all_for_now = false;
    sk2_event_queue_push(&self->queue, sk2_event_new(SK2_EVENT_ERROR, NULL, SK2_ECONNECT, reason));
}

static void s_on_found(void *arg, const sk2_dnssd_found_t *found)
{
    sk2_browser_t *self = arg;
    if (found->change == SK2_DNSSD_ALL_FOR_NOW) {
        self->is_all_for_now = true;
        self->error[0] = '\0';
        return;
    }
    if (found->change == SK2_DNSSD_LOST) {
        s_lost(self, found->reason);
        return;
    }
    s_instance_t *instance = s_find_instance(self, found);
    if (!instance && found->change != SK2_DNSSD_GONE)
        instance = s_add_instance(self, found);
    if (!instance)
        return;
    char name[SK2_DNSSD_NAME_MAX + 1];
    snprintf(name, sizeof name, "%s", instance->name);
    switch (found->change) {
    case SK2_DNSSD_NEW:
        break;
    case SK2_DNSSD_RESOLVED:
        s_resolved(self, instance, found);
        break;
    case SK2_DNSSD_UNRESOLVABLE:
        instance->is_failed = !instance->is_resolved;
        break;
    case SK2_DNSSD_GONE: {
        s_instance_free(instance);
        size_t index = (size_t)(instance - self->instances);
        memmove(instance, instance + 1, (self->instance_count - index - 1) * sizeof *instance);
        self->instance_count--;
        break;
    }
    default:
        break;
    }
    s_update_server(self, name);
}

/* ---- The loop ------------------------------------------------------------------------------- */

/* Polls the backend once for at most wait_ms and runs its callbacks; the backend's own timers
 * (resolver retries, the end of the first listing) shorten the wait. */
static int s_poll_once(void *owner, int wait_ms)
{
    sk2_browser_t *self = owner;
    zmq_pollitem_t items[SK2_DNSSD_POLL_MAX];
    size_t n = self->backend->poll_items(self->handle, items, SK2_DNSSD_POLL_MAX);
    int timer_ms = self->backend->timeout_ms(self->handle);
    if (timer_ms >= 0 && (wait_ms < 0 || timer_ms < wait_ms))
        wait_ms = timer_ms;
    if (zmq_poll(items, (int)n, wait_ms) < 0)
        return zmq_errno() == EINTR ? SK2_EINTR : SK2_ESYS;
    self->backend->dispatch(self->handle, items, n);
    return 0;
}

static bool s_is_active(void *owner)
{
    return ((sk2_browser_t *)owner)->handle != NULL;
}

static void s_deliver(void *owner, sk2_event_t *event)
{
    sk2_browser_t *self = owner;
    if (self->handler)
        self->handler(self->handler_arg, self, event);
}

static const sk2_loop_ops_t s_loop_ops = {
    .is_active = s_is_active,
    .run_timers = NULL,
    .poll = s_poll_once,
    .deliver = s_deliver,
};

int sk2_browser_recv(sk2_browser_t *self, sk2_event_t **event_p, int timeout_ms)
{
    if (!self || !event_p)
        return SK2_EINVAL;
    return sk2_loop_recv(&s_loop_ops, self, &self->queue, event_p, timeout_ms);
}

int sk2_browser_dispatch(sk2_browser_t *self, int timeout_ms)
{
    if (!self)
        return SK2_EINVAL;
    return sk2_loop_dispatch(&s_loop_ops, self, &self->queue, timeout_ms);
}

/* ---- Public calls --------------------------------------------------------------------------- */

sk2_browser_t *sk2_browser_new(void)
{
    sk2_socket_init();
    return calloc(1, sizeof(sk2_browser_t));
}

void sk2_browser_destroy(sk2_browser_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_browser_t *self = *self_p;
    if (self->handle)
        self->backend->destroy(&self->handle);
    for (size_t i = 0; i < self->instance_count; i++)
        s_instance_free(&self->instances[i]);
    for (size_t i = 0; i < self->server_count; i++)
        s_server_free(&self->servers[i]);
    sk2_event_queue_clear(&self->queue);
    free(self);
    *self_p = NULL;
}

int sk2_browser_start(sk2_browser_t *self)
{
    if (!self)
        return SK2_EINVAL;
    if (self->handle)
        return SK2_ESTATE;
    const char *why = "";
    self->backend = sk2_dnssd_backend(&why);
    if (!self->backend) {
        snprintf(self->error, sizeof self->error, "%s", why);
        return SK2_EUNSUPPORTED;
    }
    int rc =
        self->backend->browse(s_on_found, self, &self->handle, self->error, sizeof self->error);
    if (rc == 0)
        self->error[0] = '\0';
    return rc;
}

const char *sk2_browser_error(const sk2_browser_t *self)
{
    return self ? self->error : "";
}

void sk2_browser_set_handler(sk2_browser_t *self, sk2_browser_handler_fn *handler, void *arg)
{
    self->handler = handler;
    self->handler_arg = arg;
}

size_t sk2_browser_fds(sk2_browser_t *self, int *fds, size_t max)
{
    if (!self || !self->handle)
        return 0;
    zmq_pollitem_t items[SK2_DNSSD_POLL_MAX];
    size_t n = self->backend->poll_items(self->handle, items, SK2_DNSSD_POLL_MAX);
    for (size_t i = 0; i < n && i < max; i++)
        fds[i] = items[i].fd;
    return n;
}

int sk2_browser_timeout_ms(const sk2_browser_t *self)
{
    if (!self)
        return -1;
    if (self->queue.head)
        return 0;
    return self->handle ? self->backend->timeout_ms(self->handle) : -1;
}

bool sk2_browser_is_settled(const sk2_browser_t *self)
{
    if (!self || !self->is_all_for_now)
        return false;
    for (size_t i = 0; i < self->instance_count; i++)
        if (!self->instances[i].is_resolved && !self->instances[i].is_failed)
            return false;
    return true;
}

size_t sk2_browser_server_count(const sk2_browser_t *self)
{
    return self ? self->server_count : 0;
}

const char *sk2_browser_server_name(const sk2_browser_t *self, size_t index)
{
    return self && index < self->server_count ? self->servers[index].name : NULL;
}

const char *sk2_browser_server_endpoint(const sk2_browser_t *self, size_t index)
{
    return self && index < self->server_count ? self->servers[index].endpoint : NULL;
}

const char *sk2_browser_server_key(const sk2_browser_t *self, size_t index)
{
    if (!self || index >= self->server_count)
        return NULL;
    const char *key = sk2_txt_get(self->servers[index].txt, SK2_TXT_KEY);
    return sk2_curve_key_is_valid(key) ? key : NULL;
}

/* The server `find` is after, if it is known: 0 and its index, SK2_EEXIST, or SK2_EAGAIN. */
static int s_lookup(const sk2_browser_t *self, const char *name, size_t *index)
{
    if (name) {
        for (size_t i = 0; i < self->server_count; i++) {
            if (strcasecmp(self->servers[i].name, name) == 0) {
                *index = i;
                return 0;
            }
        }
        return SK2_EAGAIN;
    }
    if (!sk2_browser_is_settled(self) || self->server_count == 0)
        return SK2_EAGAIN;
    *index = 0;
    return self->server_count == 1 ? 0 : SK2_EEXIST;
}

int sk2_browser_find(sk2_browser_t *self, const char *name, int timeout_ms, char *endpoint,
                     size_t size)
{
    if (!self || !endpoint || size == 0)
        return SK2_EINVAL;
    if (!self->handle) {
        int rc = sk2_browser_start(self);
        if (rc != 0)
            return rc;
    }
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : sk2_clock_mono_us() + timeout_ms * 1000LL;
    for (;;) {
        size_t index = 0;
        int rc = s_lookup(self, name, &index);
        if (rc == 0) {
            int n = snprintf(endpoint, size, "%s", self->servers[index].endpoint);
            return n < 0 || (size_t)n >= size ? SK2_ENOSPC : 0;
        }
        if (rc != SK2_EAGAIN)
            return rc;
        int64_t now = sk2_clock_mono_us();
        if (now >= deadline)
            return SK2_ETIMEDOUT;
        /* One round of the backend at a time: being settled is news without an event. */
        int64_t wait_us = deadline == INT64_MAX ? -1 : deadline - now;
        rc = s_poll_once(self, wait_us < 0 ? -1 : (int)((wait_us + 999) / 1000));
        sk2_event_t *event;
        while ((event = sk2_event_queue_pop(&self->queue))) {
            s_deliver(self, event);
            sk2_event_destroy(&event);
        }
        if (rc != 0)
            return rc;
    }
}

/* Trust on first use: the key a server announces, checked against the one pinned for its
 * name, becomes the client's server key. */
static int s_pin(sk2_client_t *client, const char *name, const char *key)
{
    if (!key) {
        SK2_ERROR("discovery", "\"%s\" announces no key: it is not a secure server", name);
        return SK2_EAUTH;
    }
    char path[4096] = "";
    sk2_known_servers_path(path, sizeof path);
    bool is_new = false;
    unsigned line = 0;
    int rc = sk2_known_servers_check(NULL, name, key, &is_new, &line);
    if (rc == SK2_EKEYCHANGED)
        SK2_ERROR("discovery",
                  "\"%s\" announces key %s, not the one pinned in %s line %u: someone may be "
                  "impersonating it; if its key changed on purpose, delete that line",
                  name, key, path, line);
    else if (rc != 0)
        SK2_ERROR("discovery", "cannot check %s (line %u): %s", path, line, sk2_strerror(rc));
    else if (is_new)
        SK2_INFO("discovery", "pinned the key of \"%s\" in %s", name, path);
    return rc == 0 ? sk2_client_set_server_key(client, key) : rc;
}

/* How long one reconnection attempt of a client that follows a name may wait for the browser
 * to resolve it: long enough for the daemon's answers to a server that reappeared, short enough
 * not to stall the client's caller. */
#define S_FOLLOW_WAIT_MS 250

/* What a client that follows a name keeps: a running browser and the name (NULL: the only
 * server). */
typedef struct {
    sk2_browser_t *browser;
    char *name;
} s_follow_t;

static void s_follow_free(void *arg)
{
    s_follow_t *follow = arg;
    sk2_browser_destroy(&follow->browser);
    free(follow->name);
    free(follow);
}

/* The client's resolver: first takes in what the daemon said since the last attempt (the
 * server gone, the same name back on another port), then looks the name up. */
static int s_follow_resolve(void *arg, char *endpoint, size_t size)
{
    s_follow_t *follow = arg;
    /* Started at the first attempt, not at connect: a short-lived client (sk2 ping, a stream of
     * five frames) then never opens a browser it would tear down mid-resolution, which left
     * avahi-daemon answering with servers long gone (tests/discovery/run_interop.py). */
    if (!follow->browser) {
        follow->browser = sk2_browser_new();
        if (!follow->browser)
            return SK2_ENOMEM;
        int rc = sk2_browser_start(follow->browser);
        if (rc != 0) {
            sk2_browser_destroy(&follow->browser);
            return rc;
        }
    }
    int rc = sk2_browser_dispatch(follow->browser, 0);
    if (rc < 0 && rc != SK2_EINTR)
        return rc;
    return sk2_browser_find(follow->browser, follow->name, S_FOLLOW_WAIT_MS, endpoint, size);
}

int sk2_client_follow_name(sk2_client_t *client, const char *name)
{
    if (!client || (name && (!*name || strlen(name) > SK2_BROWSER_NAME_MAX)))
        return SK2_EINVAL;
    s_follow_t *follow = calloc(1, sizeof *follow);
    if (!follow)
        return SK2_ENOMEM;
    follow->name = name ? strdup(name) : NULL;
    if (name && !follow->name) {
        s_follow_free(follow);
        return SK2_ENOMEM;
    }
    sk2_client_set_resolver(client, s_follow_resolve, follow, s_follow_free);
    return 0;
}

int sk2_client_connect_name(sk2_client_t *client, const char *name, int timeout_ms)
{
    if (!client)
        return SK2_EINVAL;
    sk2_browser_t *browser = sk2_browser_new();
    if (!browser)
        return SK2_ENOMEM;
    char endpoint[S_ENDPOINT_MAX];
    int rc = sk2_browser_find(browser, name, timeout_ms, endpoint, sizeof endpoint);
    size_t index = 0;
    if (rc == 0 && sk2_client_is_secure(client) && !sk2_client_server_key(client) &&
        s_lookup(browser, name, &index) == 0)
        rc = s_pin(client, browser->servers[index].name, sk2_browser_server_key(browser, index));
    sk2_browser_destroy(&browser);
    if (rc != 0)
        return rc;
    rc = sk2_client_connect(client, endpoint);
    /* Only a reconnecting client uses it; without it the client retries the old endpoint. */
    if (rc == 0 && sk2_client_follow_name(client, name) != 0)
        SK2_DEBUG("browser", "cannot follow the name of %s for reconnection", endpoint);
    return rc;
}
