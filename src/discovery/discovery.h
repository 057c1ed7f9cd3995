/* The contract between sk2's discovery (the announcer actor, the public browser) and the
 * platform's DNS-SD service. Private to libsk2.
 *
 * A backend is one folder-level file (avahi.c today; a dns_sd.h backend for Bonjour would be
 * another) that fills one sk2_dnssd_backend_t, plus one line in registry.c. It talks to the
 * platform's mDNS responder and nothing else: it never starts a thread. Its handles are
 * driven by their owner's poll loop: poll_items() lists the descriptors to wait on (as
 * zmq_pollitem_t with socket NULL, so they go straight into zmq_poll next to ZeroMQ
 * sockets), timeout_ms() says how long the loop may sleep, and dispatch() runs whatever is
 * ready. Every callback below runs inside dispatch() (or inside the call that created the
 * handle), on the owner's thread. */
#ifndef SK2_DISCOVERY_H
#define SK2_DISCOVERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <zmq.h>

/* The DNS-SD service type of the streamkinect2 protocol, and the only domain it uses. */
#define SK2_DNSSD_TYPE   "_kinect2._tcp"
#define SK2_DNSSD_DOMAIN "local"

/* An instance name is one DNS label: at most 63 bytes of UTF-8. */
#define SK2_DNSSD_NAME_MAX 63
/* Longest host name (SRV target) accepted from the network, in bytes. */
#define SK2_DNSSD_HOST_MAX 255
/* Most descriptors one handle asks to poll (Avahi uses one D-Bus socket). */
#define SK2_DNSSD_POLL_MAX 8

typedef struct sk2_dnssd sk2_dnssd_t;

/* ---- Announcing ---- */

typedef enum {
    SK2_DNSSD_REGISTERING, /* talking to the responder, probing the name, or waiting for a
                              responder that went away to come back */
    SK2_DNSSD_ANNOUNCED,   /* the service is on the network under `name` */
    SK2_DNSSD_BROKEN,      /* cannot announce at all (reason says why); nothing will retry */
} sk2_dnssd_announce_state_t;

/* What to announce. Strings are copied by announce(). */
typedef struct {
    const char *name;         /* instance name wanted: 1..SK2_DNSSD_NAME_MAX bytes of UTF-8 */
    uint16_t port;            /* the control port */
    unsigned interface_index; /* announce only on this interface (if_nametoindex), 0: all */
    const char *const *txt;   /* TXT strings, "key=value" */
    size_t txt_count;         /* entries in txt */
} sk2_dnssd_service_t;

/* Told every time the announcement changes state or name. `name` is the instance name now
 * registered or being registered (after a conflict, the alternative one); `reason` is text for
 * people ("" when there is nothing to say). Both valid during the call only. */
typedef void(sk2_dnssd_announce_fn)(void *arg, sk2_dnssd_announce_state_t state, const char *name,
                                    const char *reason);

/* ---- Browsing ---- */

typedef enum {
    SK2_DNSSD_NEW,          /* an instance appeared on one interface/protocol; resolving it */
    SK2_DNSSD_RESOLVED,     /* an instance's SRV, TXT and address are known (again, if they
                               changed) */
    SK2_DNSSD_UNRESOLVABLE, /* its resolution failed (it stays listed but unusable) */
    SK2_DNSSD_GONE,         /* it left (goodbye or expiry) on that interface/protocol */
    SK2_DNSSD_ALL_FOR_NOW,  /* the responder has told all it knows; more may come later */
    SK2_DNSSD_LOST,         /* the responder went away: every instance is gone (reason says
                               why); the backend reconnects and starts over by itself */
} sk2_dnssd_change_t;

/* One instance as seen by the browser. Only `change`, and for instance changes `name`,
 * `interface_index` and `is_ipv6`, are always set; the rest for RESOLVED. Strings come from
 * the network: the backend checks their lengths, nothing else. */
typedef struct {
    sk2_dnssd_change_t change;
    const char *name;         /* instance name (not escaped) */
    unsigned interface_index; /* where it was seen */
    bool is_ipv6;             /* the mDNS transport it was seen on */
    const char *host;         /* SRV target, without the final dot: "kitchen.local" */
    uint16_t port;            /* SRV port */
    const char *address;      /* numeric address of host ("10.0.0.7", "fe80::1") */
    bool is_address_ipv6;     /* address is IPv6 */
    const char *const *txt;   /* TXT strings as they came (not NUL-safe: see txt_sizes) */
    const size_t *txt_sizes;  /* their lengths in bytes */
    size_t txt_count;         /* entries in txt */
    const char *reason;       /* LOST: why */
} sk2_dnssd_found_t;

typedef void(sk2_dnssd_browse_fn)(void *arg, const sk2_dnssd_found_t *found);

/* ---- The backend ---- */

typedef struct {
    /* Registry name, static ("avahi"). */
    const char *name;
    /* Starts announcing `service`; *self_p receives the handle. Touching the responder may
     * block for as long as it takes to answer (local IPC). On failure writes a reason for
     * people into why and returns SK2_ECONNECT (no responder), SK2_EINVAL or SK2_ENOMEM. */
    int (*announce)(const sk2_dnssd_service_t *service, sk2_dnssd_announce_fn *fn, void *arg,
                    sk2_dnssd_t **self_p, char *why, size_t why_size);
    /* Replaces the TXT strings of what is announced. Returns 0 or SK2_ENOMEM. */
    int (*set_txt)(sk2_dnssd_t *self, const char *const *txt, size_t txt_count);
    /* Starts browsing SK2_DNSSD_TYPE in SK2_DNSSD_DOMAIN; same errors as announce. */
    int (*browse)(sk2_dnssd_browse_fn *fn, void *arg, sk2_dnssd_t **self_p, char *why,
                  size_t why_size);
    /* Writes up to max poll items (fd set, socket NULL) into items; returns how many. */
    size_t (*poll_items)(sk2_dnssd_t *self, zmq_pollitem_t *items, size_t max);
    /* Milliseconds until dispatch() has timed work, 0 if now, -1 if none. */
    int (*timeout_ms)(sk2_dnssd_t *self);
    /* Runs callbacks for the items just polled (as returned by poll_items, revents set by
     * zmq_poll) and for timers that are due. */
    void (*dispatch)(sk2_dnssd_t *self, const zmq_pollitem_t *items, size_t count);
    /* Withdraws anything announced (the responder sends the goodbye), stops browsing, frees,
     * sets *self_p to NULL. Safe on NULL. */
    void (*destroy)(sk2_dnssd_t **self_p);
} sk2_dnssd_backend_t;

/* The backend built into this library, or NULL when it was built without discovery; then
 * `why` (if not NULL) receives a static explanation. */
const sk2_dnssd_backend_t *sk2_dnssd_backend(const char **why);

#endif
