/* The Avahi backend: announces and browses _kinect2._tcp through avahi-daemon over D-Bus
 * (avahi-client), driven by the owner's poll loop through sk2_avahi_poll.
 *
 * Announcing registers one service in one entry group; the SRV target is left to the daemon,
 * which uses the machine's own host name and publishes its address records, so a browser
 * that builds tcp://<srv-host>:<port> (the original streamkinect2 does) reaches us. A name
 * already taken, locally (add_service fails at once) or on the network (the group reports a
 * collision while probing), is replaced by Avahi's alternative ("Kitchen #2") and registered
 * again. If the daemon goes away, the client is rebuilt in "wait for the daemon" mode and the
 * service is registered afresh when the daemon is back; if the first connection fails, the
 * handle is never made and the caller says why.
 *
 * Browsing keeps one resolver open per instance (interface, protocol, name) until the
 * instance goes, because an open resolver reports every later change of the service's data
 * (a new TXT with another device count, a new port), which a one-shot resolve would miss.
 *
 * Nothing here is freed from inside an Avahi callback that belongs to it: work that would
 * (rebuilding a lost client) is flagged and done after sk2_avahi_poll_dispatch returns. */
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avahi-client/client.h>
#include <avahi-client/lookup.h>
#include <avahi-client/publish.h>
#include <avahi-common/alternative.h>
#include <avahi-common/error.h>
#include <avahi-common/malloc.h>
#include <avahi-common/strlst.h>

#include "core/log_internal.h"
#include "discovery/avahi_poll.h"
#include "discovery/discovery.h"
#include "sk2/error.h"

/* Alternative names tried in a row before giving up (each costs one D-Bus round trip). */
#define S_MAX_RENAMES 100
/* Instances tracked at once by a browser; more are ignored (a hostile network cannot make us
 * open resolvers without bound). */
#define S_MAX_RESOLVERS 512

typedef struct s_resolver {
    AvahiServiceResolver *resolver; /* open until the instance goes */
    AvahiIfIndex interface;
    AvahiProtocol protocol;
    char *name;
    struct sk2_dnssd *owner;
    struct s_resolver *next;
} s_resolver_t;

struct sk2_dnssd {
    bool is_browser;        /* which of the two roles below */
    sk2_avahi_poll_t *poll; /* the descriptors and timers of client */
    AvahiClient *client;    /* the D-Bus connection to avahi-daemon */
    bool is_client_lost;    /* the daemon went away: rebuild client after dispatch */
    /* Announcing */
    sk2_dnssd_announce_fn *announce_fn;
    void *announce_arg;
    char *name;             /* the instance name registered or being registered */
    uint16_t port;          /* control port */
    AvahiIfIndex interface; /* AVAHI_IF_UNSPEC or one interface */
    AvahiStringList *txt;   /* TXT strings */
    AvahiEntryGroup *group; /* our one entry group, NULL until the daemon runs */
    /* Browsing */
    sk2_dnssd_browse_fn *browse_fn;
    void *browse_arg;
    AvahiServiceBrowser *browser; /* NULL until the daemon runs */
    s_resolver_t *resolvers;      /* one per instance seen */
    size_t resolver_count;
};

static void s_announce_report(sk2_dnssd_t *self, sk2_dnssd_announce_state_t state,
                              const char *reason)
{
    self->announce_fn(self->announce_arg, state, self->name, reason ? reason : "");
}

/* "avahi-daemon is not running (Daemon not running)" and the like: what a person can act on,
 * then Avahi's own words. */
static void s_explain(int error, char *why, size_t size)
{
    const char *what;
    switch (error) {
    case AVAHI_ERR_NO_DAEMON:
        what = "avahi-daemon is not running";
        break;
    case AVAHI_ERR_DBUS_ERROR:
        what = "cannot reach avahi-daemon over the D-Bus system bus";
        break;
    case AVAHI_ERR_DISCONNECTED:
        what = "avahi-daemon went away";
        break;
    case AVAHI_ERR_ACCESS_DENIED:
    case AVAHI_ERR_NOT_PERMITTED:
        what = "avahi-daemon refused us";
        break;
    default:
        what = "avahi-daemon failed";
        break;
    }
    snprintf(why, size, "%s (%s)", what, avahi_strerror(error));
}

/* ---- Announcing ---------------------------------------------------------------------------- */

static void s_register(sk2_dnssd_t *self, AvahiClient *client);

static void s_rename(sk2_dnssd_t *self)
{
    char *alternative = avahi_alternative_service_name(self->name);
    if (!alternative)
        return; /* out of memory: keep the old name, the retry will say so */
    char reason[2 * SK2_DNSSD_NAME_MAX + 64];
    snprintf(reason, sizeof reason, "the name \"%s\" is taken", self->name);
    avahi_free(self->name);
    self->name = alternative;
    s_announce_report(self, SK2_DNSSD_REGISTERING, reason);
}

static void s_on_group(AvahiEntryGroup *group, AvahiEntryGroupState state, void *arg)
{
    sk2_dnssd_t *self = arg;
    char why[256];
    switch (state) {
    case AVAHI_ENTRY_GROUP_ESTABLISHED:
        s_announce_report(self, SK2_DNSSD_ANNOUNCED, NULL);
        break;
    case AVAHI_ENTRY_GROUP_COLLISION:
        /* Someone else on the network answered our probe for this name. */
        s_rename(self);
        s_register(self, avahi_entry_group_get_client(group));
        break;
    case AVAHI_ENTRY_GROUP_FAILURE:
        s_explain(avahi_client_errno(avahi_entry_group_get_client(group)), why, sizeof why);
        s_announce_report(self, SK2_DNSSD_BROKEN, why);
        break;
    case AVAHI_ENTRY_GROUP_UNCOMMITED:
    case AVAHI_ENTRY_GROUP_REGISTERING:
        break;
    }
}

static void s_register(sk2_dnssd_t *self, AvahiClient *client)
{
    char why[256];
    if (!self->group)
        self->group = avahi_entry_group_new(client, s_on_group, self);
    else
        avahi_entry_group_reset(self->group);
    if (!self->group) {
        s_explain(avahi_client_errno(client), why, sizeof why);
        s_announce_report(self, SK2_DNSSD_BROKEN, why);
        return;
    }
    int rc = AVAHI_ERR_COLLISION;
    for (int tries = 0; rc == AVAHI_ERR_COLLISION && tries < S_MAX_RENAMES; tries++) {
        rc = avahi_entry_group_add_service_strlst(self->group, self->interface, AVAHI_PROTO_UNSPEC,
                                                  0, self->name, SK2_DNSSD_TYPE, NULL, NULL,
                                                  self->port, self->txt);
        if (rc == AVAHI_ERR_COLLISION)
            s_rename(self); /* taken by another program on this machine */
    }
    if (rc == 0)
        rc = avahi_entry_group_commit(self->group);
    if (rc != 0) {
        snprintf(why, sizeof why, "cannot register \"%s\": %s", self->name, avahi_strerror(rc));
        s_announce_report(self, SK2_DNSSD_BROKEN, why);
        return;
    }
    s_announce_report(self, SK2_DNSSD_REGISTERING, NULL);
}

/* ---- Browsing ------------------------------------------------------------------------------ */

static void s_found_base(sk2_dnssd_found_t *found, sk2_dnssd_change_t change, const char *name,
                         AvahiIfIndex interface, AvahiProtocol protocol)
{
    *found = (sk2_dnssd_found_t){
        .change = change,
        .name = name,
        .interface_index = interface >= 0 ? (unsigned)interface : 0,
        .is_ipv6 = protocol == AVAHI_PROTO_INET6,
        .host = "",
        .address = "",
        .reason = "",
    };
}

static void s_on_resolved(AvahiServiceResolver *resolver, AvahiIfIndex interface,
                          AvahiProtocol protocol, AvahiResolverEvent event, const char *name,
                          const char *type, const char *domain, const char *host,
                          const AvahiAddress *address, uint16_t port, AvahiStringList *txt,
                          AvahiLookupResultFlags flags, void *arg)
{
    s_resolver_t *entry = arg;
    sk2_dnssd_t *self = entry->owner;
    sk2_dnssd_found_t found;
    if (event != AVAHI_RESOLVER_FOUND || !host || !address) {
        SK2_DEBUG("discovery", "cannot resolve \"%s\": %s", entry->name,
                  avahi_strerror(avahi_client_errno(avahi_service_resolver_get_client(resolver))));
        s_found_base(&found, SK2_DNSSD_UNRESOLVABLE, entry->name, interface, protocol);
        self->browse_fn(self->browse_arg, &found);
        return;
    }
    char numeric[AVAHI_ADDRESS_STR_MAX + IF_NAMESIZE + 2];
    if (!avahi_address_snprint(numeric, AVAHI_ADDRESS_STR_MAX, address))
        return;
    /* A link-local IPv6 address is only reachable through the interface it was seen on. */
    char ifname[IF_NAMESIZE];
    if (address->proto == AVAHI_PROTO_INET6 && strncmp(numeric, "fe80:", 5) == 0 &&
        interface >= 0 && if_indextoname((unsigned)interface, ifname))
        snprintf(numeric + strlen(numeric), sizeof numeric - strlen(numeric), "%%%s", ifname);

    size_t count = (size_t)avahi_string_list_length(txt);
    const char **strings = calloc(count ? count : 1, sizeof *strings);
    size_t *sizes = calloc(count ? count : 1, sizeof *sizes);
    if (!strings || !sizes) {
        free(strings);
        free(sizes);
        return;
    }
    size_t n = 0;
    for (AvahiStringList *item = txt; item && n < count; item = avahi_string_list_get_next(item)) {
        strings[n] = (const char *)avahi_string_list_get_text(item);
        sizes[n++] = avahi_string_list_get_size(item);
    }
    s_found_base(&found, SK2_DNSSD_RESOLVED, name, interface, protocol);
    size_t host_len = strlen(host);
    char host_copy[SK2_DNSSD_HOST_MAX + 1];
    if (host_len > SK2_DNSSD_HOST_MAX)
        host_len = 0; /* too long to be a host name: report none */
    memcpy(host_copy, host, host_len);
    host_copy[host_len] = '\0';
    if (host_len > 0 && host_copy[host_len - 1] == '.')
        host_copy[host_len - 1] = '\0';
    found.host = host_copy;
    found.port = port;
    found.address = numeric;
    found.is_address_ipv6 = address->proto == AVAHI_PROTO_INET6;
    found.txt = strings;
    found.txt_sizes = sizes;
    found.txt_count = n;
    self->browse_fn(self->browse_arg, &found);
    free(strings);
    free(sizes);
}

static s_resolver_t **s_find_resolver(sk2_dnssd_t *self, AvahiIfIndex interface,
                                      AvahiProtocol protocol, const char *name)
{
    for (s_resolver_t **r = &self->resolvers; *r; r = &(*r)->next)
        if ((*r)->interface == interface && (*r)->protocol == protocol &&
            strcmp((*r)->name, name) == 0)
            return r;
    return NULL;
}

static void s_resolver_free(s_resolver_t *entry)
{
    if (entry->resolver)
        avahi_service_resolver_free(entry->resolver);
    free(entry->name);
    free(entry);
}

static void s_instance_new(sk2_dnssd_t *self, AvahiClient *client, AvahiIfIndex interface,
                           AvahiProtocol protocol, const char *name)
{
    if (s_find_resolver(self, interface, protocol, name))
        return;
    if (self->resolver_count >= S_MAX_RESOLVERS || strlen(name) > SK2_DNSSD_NAME_MAX) {
        static sk2_ratelimit_t limit;
        if (sk2_ratelimit_pass(&limit, 10000000, NULL))
            SK2_WARN("discovery", "ignoring service \"%.63s\": %s", name,
                     self->resolver_count >= S_MAX_RESOLVERS ? "too many services"
                                                             : "name too long");
        return;
    }
    s_resolver_t *entry = calloc(1, sizeof *entry);
    if (!entry || !(entry->name = strdup(name))) {
        free(entry);
        return;
    }
    entry->interface = interface;
    entry->protocol = protocol;
    entry->owner = self;
    sk2_dnssd_found_t found;
    s_found_base(&found, SK2_DNSSD_NEW, name, interface, protocol);
    self->browse_fn(self->browse_arg, &found);
    /* Ask for the address family of the transport the service was seen on: the A record over
     * IPv4, AAAA over IPv6. */
    entry->resolver =
        avahi_service_resolver_new(client, interface, protocol, name, SK2_DNSSD_TYPE,
                                   SK2_DNSSD_DOMAIN, protocol, 0, s_on_resolved, entry);
    if (!entry->resolver) {
        s_found_base(&found, SK2_DNSSD_UNRESOLVABLE, name, interface, protocol);
        self->browse_fn(self->browse_arg, &found);
    }
    entry->next = self->resolvers;
    self->resolvers = entry;
    self->resolver_count++;
}

static void s_instance_gone(sk2_dnssd_t *self, AvahiIfIndex interface, AvahiProtocol protocol,
                            const char *name)
{
    s_resolver_t **link = s_find_resolver(self, interface, protocol, name);
    if (!link)
        return;
    s_resolver_t *entry = *link;
    *link = entry->next;
    self->resolver_count--;
    sk2_dnssd_found_t found;
    s_found_base(&found, SK2_DNSSD_GONE, entry->name, interface, protocol);
    self->browse_fn(self->browse_arg, &found);
    s_resolver_free(entry);
}

static void s_forget_instances(sk2_dnssd_t *self)
{
    while (self->resolvers) {
        s_resolver_t *entry = self->resolvers;
        self->resolvers = entry->next;
        s_resolver_free(entry);
    }
    self->resolver_count = 0;
}

static void s_browse_lost(sk2_dnssd_t *self, const char *reason)
{
    sk2_dnssd_found_t found;
    s_found_base(&found, SK2_DNSSD_LOST, "", AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC);
    found.reason = reason;
    self->browse_fn(self->browse_arg, &found);
}

static void s_on_browse(AvahiServiceBrowser *browser, AvahiIfIndex interface,
                        AvahiProtocol protocol, AvahiBrowserEvent event, const char *name,
                        const char *type, const char *domain, AvahiLookupResultFlags flags,
                        void *arg)
{
    sk2_dnssd_t *self = arg;
    AvahiClient *client = avahi_service_browser_get_client(browser);
    sk2_dnssd_found_t found;
    char why[256];
    switch (event) {
    case AVAHI_BROWSER_NEW:
        s_instance_new(self, client, interface, protocol, name);
        break;
    case AVAHI_BROWSER_REMOVE:
        s_instance_gone(self, interface, protocol, name);
        break;
    case AVAHI_BROWSER_ALL_FOR_NOW:
        s_found_base(&found, SK2_DNSSD_ALL_FOR_NOW, "", interface, protocol);
        self->browse_fn(self->browse_arg, &found);
        break;
    case AVAHI_BROWSER_FAILURE:
        s_explain(avahi_client_errno(client), why, sizeof why);
        s_browse_lost(self, why);
        break;
    case AVAHI_BROWSER_CACHE_EXHAUSTED:
        break;
    }
}

static void s_browse_start(sk2_dnssd_t *self, AvahiClient *client)
{
    if (self->browser)
        return;
    self->browser =
        avahi_service_browser_new(client, AVAHI_IF_UNSPEC, AVAHI_PROTO_UNSPEC, SK2_DNSSD_TYPE,
                                  SK2_DNSSD_DOMAIN, 0, s_on_browse, self);
    if (!self->browser) {
        char why[256];
        s_explain(avahi_client_errno(client), why, sizeof why);
        s_browse_lost(self, why);
    }
}

/* ---- The client ---------------------------------------------------------------------------- */

static void s_on_client(AvahiClient *client, AvahiClientState state, void *arg)
{
    sk2_dnssd_t *self = arg;
    char why[256];
    switch (state) {
    case AVAHI_CLIENT_S_RUNNING:
        /* Also after the daemon came back, or after a host name conflict was settled. */
        if (self->is_browser)
            s_browse_start(self, client);
        else
            s_register(self, client);
        break;
    case AVAHI_CLIENT_S_COLLISION:
    case AVAHI_CLIENT_S_REGISTERING:
        /* The daemon is (re)establishing the host name: our records wait for S_RUNNING. */
        if (!self->is_browser && self->group)
            avahi_entry_group_reset(self->group);
        break;
    case AVAHI_CLIENT_CONNECTING:
        if (!self->is_browser)
            s_announce_report(self, SK2_DNSSD_REGISTERING, "waiting for avahi-daemon");
        break;
    case AVAHI_CLIENT_FAILURE:
        s_explain(avahi_client_errno(client), why, sizeof why);
        if (!self->client)
            break; /* inside avahi_client_new: the caller reports its error */
        self->is_client_lost = true;
        if (self->is_browser) {
            s_browse_lost(self, why);
        } else {
            SK2_WARN("discovery", "%s; \"%s\" will be announced again when it is back", why,
                     self->name);
            s_announce_report(self, SK2_DNSSD_REGISTERING, why);
        }
        break;
    }
}

/* Connects to the daemon. `is_waiting`: a missing daemon is not an error, we wait for it. */
static int s_connect(sk2_dnssd_t *self, bool is_waiting, char *why, size_t why_size)
{
    int error = 0;
    self->client =
        avahi_client_new(sk2_avahi_poll_api(self->poll), is_waiting ? AVAHI_CLIENT_NO_FAIL : 0,
                         s_on_client, self, &error);
    if (self->client)
        return 0;
    s_explain(error, why, why_size);
    return error == AVAHI_ERR_NO_MEMORY ? SK2_ENOMEM : SK2_ECONNECT;
}

/* After the daemon went away: everything that belonged to the old connection is gone with it;
 * wait for a new daemon. */
static void s_reconnect(sk2_dnssd_t *self)
{
    self->is_client_lost = false;
    s_forget_instances(self);
    self->browser = NULL;
    self->group = NULL;
    avahi_client_free(self->client); /* frees its groups, browsers and resolvers */
    self->client = NULL;
    char why[256];
    if (s_connect(self, true, why, sizeof why) != 0) {
        /* Not even the D-Bus system bus is there: nothing left to wait on. */
        if (self->is_browser)
            s_browse_lost(self, why);
        else
            s_announce_report(self, SK2_DNSSD_BROKEN, why);
    }
}

static sk2_dnssd_t *s_new(bool is_browser)
{
    sk2_dnssd_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->is_browser = is_browser;
    self->poll = sk2_avahi_poll_new();
    if (!self->poll) {
        free(self);
        return NULL;
    }
    return self;
}

static void s_destroy(sk2_dnssd_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_dnssd_t *self = *self_p;
    s_forget_instances(self);
    /* Freeing the group withdraws the service: the daemon sends the goodbye packets. */
    if (self->client)
        avahi_client_free(self->client);
    sk2_avahi_poll_destroy(&self->poll);
    avahi_string_list_free(self->txt);
    avahi_free(self->name);
    free(self);
    *self_p = NULL;
}

static AvahiStringList *s_txt(const char *const *txt, size_t count)
{
    AvahiStringList *list = NULL;
    /* avahi_string_list_add prepends: add from the end to keep the order. */
    for (size_t i = count; i-- > 0;) {
        AvahiStringList *longer = avahi_string_list_add(list, txt[i]);
        if (!longer) {
            avahi_string_list_free(list);
            return NULL;
        }
        list = longer;
    }
    return list;
}

static int s_announce(const sk2_dnssd_service_t *service, sk2_dnssd_announce_fn *fn, void *arg,
                      sk2_dnssd_t **self_p, char *why, size_t why_size)
{
    *self_p = NULL;
    if (!service->name || !*service->name || strlen(service->name) > SK2_DNSSD_NAME_MAX) {
        snprintf(why, why_size, "the name must be 1..%d bytes", SK2_DNSSD_NAME_MAX);
        return SK2_EINVAL;
    }
    sk2_dnssd_t *self = s_new(false);
    if (!self) {
        snprintf(why, why_size, "out of memory");
        return SK2_ENOMEM;
    }
    self->announce_fn = fn;
    self->announce_arg = arg;
    self->name = avahi_strdup(service->name);
    self->port = service->port;
    self->interface =
        service->interface_index ? (AvahiIfIndex)service->interface_index : AVAHI_IF_UNSPEC;
    self->txt = s_txt(service->txt, service->txt_count);
    if (!self->name || (service->txt_count && !self->txt)) {
        s_destroy(&self);
        snprintf(why, why_size, "out of memory");
        return SK2_ENOMEM;
    }
    /* The client callback registers the service as soon as the daemon is running, which is
     * often already inside avahi_client_new. */
    int rc = s_connect(self, false, why, why_size);
    if (rc != 0) {
        s_destroy(&self);
        return rc;
    }
    *self_p = self;
    return 0;
}

static int s_set_txt(sk2_dnssd_t *self, const char *const *txt, size_t count)
{
    AvahiStringList *list = s_txt(txt, count);
    if (count && !list)
        return SK2_ENOMEM;
    avahi_string_list_free(self->txt);
    self->txt = list;
    /* Only a committed group can take the new TXT; otherwise the next register uses it. */
    if (self->group && !avahi_entry_group_is_empty(self->group)) {
        int rc = avahi_entry_group_update_service_txt_strlst(self->group, self->interface,
                                                             AVAHI_PROTO_UNSPEC, 0, self->name,
                                                             SK2_DNSSD_TYPE, NULL, self->txt);
        if (rc != 0)
            SK2_DEBUG("discovery", "cannot update the TXT of \"%s\": %s", self->name,
                      avahi_strerror(rc));
    }
    return 0;
}

static int s_browse(sk2_dnssd_browse_fn *fn, void *arg, sk2_dnssd_t **self_p, char *why,
                    size_t why_size)
{
    *self_p = NULL;
    sk2_dnssd_t *self = s_new(true);
    if (!self) {
        snprintf(why, why_size, "out of memory");
        return SK2_ENOMEM;
    }
    self->browse_fn = fn;
    self->browse_arg = arg;
    int rc = s_connect(self, false, why, why_size);
    if (rc != 0) {
        s_destroy(&self);
        return rc;
    }
    *self_p = self;
    return 0;
}

static size_t s_poll_items(sk2_dnssd_t *self, zmq_pollitem_t *items, size_t max)
{
    return sk2_avahi_poll_items(self->poll, items, max);
}

static int s_timeout_ms(sk2_dnssd_t *self)
{
    return self->is_client_lost ? 0 : sk2_avahi_poll_timeout_ms(self->poll);
}

static void s_dispatch(sk2_dnssd_t *self, const zmq_pollitem_t *items, size_t count)
{
    sk2_avahi_poll_dispatch(self->poll, items, count);
    if (self->is_client_lost)
        s_reconnect(self);
}

const sk2_dnssd_backend_t sk2_dnssd_backend_avahi = {
    .name = "avahi",
    .announce = s_announce,
    .set_txt = s_set_txt,
    .browse = s_browse,
    .poll_items = s_poll_items,
    .timeout_ms = s_timeout_ms,
    .dispatch = s_dispatch,
    .destroy = s_destroy,
};
