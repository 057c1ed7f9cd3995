/* The announcer actor (see announcer.h). Its loop polls the command pipe and the backend's
 * descriptors together in one zmq_poll, so the responder's answers and the owner's commands
 * are handled on the one thread that owns the backend handle.
 *
 * Up the pipe go unsolicited "STATE <state> <name> <reason>" messages, one per change; the
 * front end keeps the last one. Logging happens here, once per change, so the server's log
 * shows the name actually announced and any rename with both names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log_internal.h"
#include "core/runtime.h"
#include "discovery/announcer.h"
#include "discovery/discovery.h"
#include "proto/txt.h"
#include "sk2/error.h"

struct sk2_announcer {
    zactor_t *actor;                   /* runs s_actor */
    sk2_announce_state_t state;        /* last state read */
    char name[SK2_DNSSD_NAME_MAX + 1]; /* name announced or being announced */
    char reason[256];                  /* why not ACTIVE, or "" */
};

typedef struct {
    char name[SK2_DNSSD_NAME_MAX + 1]; /* the server's name, cut to one label */
    uint16_t port;                     /* control port */
    unsigned interface_index;          /* 0: every interface */
    unsigned devices;                  /* devices served, for TXT */
    char key[41];                      /* the server's public key (Z85), "" if not secure */
} s_spec_t;

typedef struct {
    zsock_t *pipe;                              /* to the owner */
    s_spec_t spec;                              /* what we announce */
    const sk2_dnssd_backend_t *backend;         /* NULL: built without discovery */
    sk2_dnssd_t *handle;                        /* NULL unless announcing */
    sk2_dnssd_announce_state_t state;           /* last state the backend reported */
    char name[SK2_DNSSD_NAME_MAX + 1];          /* last name the backend reported */
    char logged_rename[SK2_DNSSD_NAME_MAX + 1]; /* the alternative name last logged */
} s_actor_t;

/* Copies at most max bytes of UTF-8 text, cutting before a partial character. */
static void s_fit_label(const char *name, char *out, size_t max)
{
    size_t length = strlen(name);
    if (length > max) {
        length = max;
        while (length > 0 && ((unsigned char)name[length] & 0xc0) == 0x80)
            length--;
    }
    memcpy(out, name, length);
    out[length] = '\0';
}

static void s_send_state(s_actor_t *self, sk2_announce_state_t state, const char *reason)
{
    char number[8];
    snprintf(number, sizeof number, "%d", (int)state);
    zstr_sendx(self->pipe, "STATE", number, self->name, reason ? reason : "", NULL);
}

static void s_on_state(void *arg, sk2_dnssd_announce_state_t state, const char *name,
                       const char *reason)
{
    s_actor_t *self = arg;
    bool is_renamed = strcmp(name, self->name) != 0;
    s_fit_label(name, self->name, SK2_DNSSD_NAME_MAX);
    self->state = state;
    switch (state) {
    case SK2_DNSSD_ANNOUNCED:
        if (strcmp(self->name, self->spec.name) != 0 &&
            strcmp(self->name, self->logged_rename) != 0) {
            SK2_WARN("discovery",
                     "the name \"%s\" is already taken on the network; announced "
                     "as \"%s\" instead",
                     self->spec.name, self->name);
            snprintf(self->logged_rename, sizeof self->logged_rename, "%s", self->name);
        } else {
            SK2_INFO("discovery", "announced \"%s\" (%s, port %u)", self->name, SK2_DNSSD_TYPE,
                     (unsigned)self->spec.port);
        }
        s_send_state(self, SK2_ANNOUNCE_ACTIVE, NULL);
        break;
    case SK2_DNSSD_REGISTERING:
        if (is_renamed)
            SK2_DEBUG("discovery", "%s; trying \"%s\"", reason, self->name);
        s_send_state(self, SK2_ANNOUNCE_PENDING, reason);
        break;
    case SK2_DNSSD_BROKEN:
        SK2_WARN("discovery", "cannot announce \"%s\": %s; serving without announcing", self->name,
                 reason);
        s_send_state(self, SK2_ANNOUNCE_FAILED, reason);
        break;
    }
}

static void s_start(s_actor_t *self)
{
    const char *why_unsupported = "";
    self->backend = sk2_dnssd_backend(&why_unsupported);
    snprintf(self->name, sizeof self->name, "%s", self->spec.name);
    if (!self->backend) {
        SK2_WARN("discovery", "cannot announce \"%s\": %s; serving without announcing", self->name,
                 why_unsupported);
        s_send_state(self, SK2_ANNOUNCE_FAILED, why_unsupported);
        return;
    }
    char buf[SK2_TXT_ANNOUNCED_MAX][64];
    const char *txt[SK2_TXT_ANNOUNCED_MAX];
    size_t count =
        sk2_txt_announced(self->spec.devices, self->spec.key[0] ? self->spec.key : NULL, buf, txt);
    sk2_dnssd_service_t service = {.name = self->spec.name,
                                   .port = self->spec.port,
                                   .interface_index = self->spec.interface_index,
                                   .txt = txt,
                                   .txt_count = count};
    char why[256] = "";
    int rc = self->backend->announce(&service, s_on_state, self, &self->handle, why, sizeof why);
    if (rc != 0) {
        SK2_WARN("discovery", "cannot announce \"%s\": %s; serving without announcing", self->name,
                 why);
        s_send_state(self, SK2_ANNOUNCE_FAILED, why);
    }
}

static void s_set_devices(s_actor_t *self, unsigned devices)
{
    self->spec.devices = devices;
    if (!self->handle)
        return;
    char buf[SK2_TXT_ANNOUNCED_MAX][64];
    const char *txt[SK2_TXT_ANNOUNCED_MAX];
    size_t count = sk2_txt_announced(devices, self->spec.key[0] ? self->spec.key : NULL, buf, txt);
    if (self->backend->set_txt(self->handle, txt, count) != 0)
        SK2_WARN("discovery", "cannot update the device count of \"%s\"", self->name);
}

/* Handles one command; returns false on $TERM. */
static bool s_command(s_actor_t *self)
{
    zmsg_t *msg = zmsg_recv(self->pipe);
    if (!msg)
        return false;
    char *command = zmsg_popstr(msg);
    bool keep_going = command && strcmp(command, "$TERM") != 0;
    if (keep_going && strcmp(command, "DEVICES") == 0) {
        char *devices = zmsg_popstr(msg);
        if (devices)
            s_set_devices(self, (unsigned)strtoul(devices, NULL, 10));
        zstr_free(&devices);
    }
    zstr_free(&command);
    zmsg_destroy(&msg);
    return keep_going;
}

static void s_actor(zsock_t *pipe, void *arg)
{
    s_actor_t self = {.pipe = pipe, .spec = *(s_spec_t *)arg};
    free(arg);
    sk2_runtime_block_signals();
    /* Signal first: the owner must not wait on the responder, which can be slow. */
    zsock_signal(pipe, 0);
    s_start(&self);
    zmq_pollitem_t items[1 + SK2_DNSSD_POLL_MAX];
    for (;;) {
        items[0] = (zmq_pollitem_t){.socket = zsock_resolve(pipe), .events = ZMQ_POLLIN};
        size_t n = 0;
        int wait_ms = -1;
        if (self.handle) {
            n = self.backend->poll_items(self.handle, items + 1, SK2_DNSSD_POLL_MAX);
            wait_ms = self.backend->timeout_ms(self.handle);
        }
        if (zmq_poll(items, (int)(1 + n), wait_ms) < 0) {
            if (zmq_errno() == EINTR)
                continue;
            break; /* the context is being terminated */
        }
        if ((items[0].revents & ZMQ_POLLIN) && !s_command(&self))
            break;
        if (self.handle)
            self.backend->dispatch(self.handle, items + 1, n);
    }
    if (self.handle) {
        self.backend->destroy(&self.handle);
        SK2_INFO("discovery", "withdrew \"%s\"", self.name);
    }
}

sk2_announcer_t *sk2_announcer_new(const char *name, uint16_t port, unsigned interface_index,
                                   unsigned devices, const char *public_key)
{
    sk2_announcer_t *self = calloc(1, sizeof *self);
    s_spec_t *spec = calloc(1, sizeof *spec);
    if (!self || !spec) {
        free(self);
        free(spec);
        return NULL;
    }
    s_fit_label(name, spec->name, SK2_DNSSD_NAME_MAX);
    if (strcmp(spec->name, name) != 0)
        SK2_INFO("discovery", "the name \"%s\" is longer than one DNS label; announcing \"%s\"",
                 name, spec->name);
    spec->port = port;
    spec->interface_index = interface_index;
    spec->devices = devices;
    snprintf(spec->key, sizeof spec->key, "%s", public_key ? public_key : "");
    self->state = SK2_ANNOUNCE_PENDING;
    snprintf(self->name, sizeof self->name, "%s", spec->name);
    self->actor = zactor_new(s_actor, spec); /* the actor frees spec */
    if (!self->actor) {
        free(spec);
        free(self);
        return NULL;
    }
    return self;
}

void sk2_announcer_destroy(sk2_announcer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zactor_destroy(&(*self_p)->actor);
    free(*self_p);
    *self_p = NULL;
}

zactor_t *sk2_announcer_actor(sk2_announcer_t *self)
{
    return self->actor;
}

void sk2_announcer_read(sk2_announcer_t *self)
{
    char *command = NULL, *state = NULL, *name = NULL, *reason = NULL;
    if (zstr_recvx(self->actor, &command, &state, &name, &reason, NULL) >= 4 &&
        strcmp(command, "STATE") == 0) {
        self->state = (sk2_announce_state_t)atoi(state);
        snprintf(self->name, sizeof self->name, "%s", name);
        snprintf(self->reason, sizeof self->reason, "%s", reason);
    }
    zstr_free(&command);
    zstr_free(&state);
    zstr_free(&name);
    zstr_free(&reason);
}

void sk2_announcer_set_devices(sk2_announcer_t *self, unsigned devices)
{
    char text[16];
    snprintf(text, sizeof text, "%u", devices);
    zstr_sendx(self->actor, "DEVICES", text, NULL);
}

sk2_announce_state_t sk2_announcer_state(const sk2_announcer_t *self)
{
    return self->state;
}

const char *sk2_announcer_name(const sk2_announcer_t *self)
{
    return self->name;
}

const char *sk2_announcer_reason(const sk2_announcer_t *self)
{
    return self->reason;
}
