/* The ZAP handler of secure servers (see zap.h). It answers requests in the server actor's own
 * poll loop: one lookup in a hash table per new connection, so it never delays a control
 * reply. The allowed keys change only when the folder is read (at start and on reload), so
 * that the set in force is the one the log reported. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log_internal.h"
#include "proto/socket.h"
#include "server/zap.h"
#include "sk2/error.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
/* Refused keys are logged at most this often (plus a count of those held back). */
#define S_REFUSAL_LOG_US 5000000

struct sk2_zap {
    zsock_t *handler;                /* REP bound to the ZAP endpoint */
    char *allow_dir;                 /* the folder of allowed public certificates */
    char own_key[SK2_KEY_TEXT_SIZE]; /* the server's own public key, always allowed */
    zcertstore_t *allowed;           /* their keys, in memory */
    size_t count;                    /* keys in `allowed` */
    sk2_ratelimit_t refusals;        /* for the refused-key warning */
    bool is_bound;                   /* the handler holds the ZAP endpoint */
};

/* A new store holding the public key of every certificate in dir (secret files skipped: a
 * server needs only the public halves). NULL if the folder cannot be read. */
static zcertstore_t *s_load(const char *dir, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return NULL;
    zcertstore_t *store = zcertstore_new(NULL);
    *count = 0;
    struct dirent *entry;
    while (store && (entry = readdir(d)) != NULL) {
        const char *name = entry->d_name;
        size_t length = strlen(name);
        if (name[0] == '.' || (length > 7 && strcmp(name + length - 7, "_secret") == 0))
            continue;
        char path[4096];
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path ||
            stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        zcert_t *cert = zcert_load(path);
        if (!cert || !sk2_curve_key_is_valid(zcert_public_txt(cert))) {
            SK2_WARN("server", "allow folder: %s is not a certificate, skipped", path);
            zcert_destroy(&cert);
            continue;
        }
        if (!zcertstore_lookup(store, zcert_public_txt(cert)))
            (*count)++;
        zcertstore_insert(store, &cert);
    }
    closedir(d);
    return store;
}

int sk2_zap_new(const char *allow_dir, const char *own_key, sk2_zap_t **zap_p)
{
    *zap_p = NULL;
    sk2_zap_t *self = calloc(1, sizeof *self);
    if (!self)
        return SK2_ENOMEM;
    self->allow_dir = strdup(allow_dir);
    snprintf(self->own_key, sizeof self->own_key, "%s", own_key ? own_key : "");
    self->allowed = self->allow_dir ? s_load(allow_dir, &self->count) : NULL;
    if (!self->allowed) {
        SK2_ERROR("server", "cannot read the allow folder %s", allow_dir);
        sk2_zap_destroy(&self);
        return SK2_ENOTFOUND;
    }
    self->handler = zsock_new(ZMQ_REP);
    if (!self->handler || sk2_socket_set_int(self->handler, ZMQ_LINGER, 0) != 0 ||
        zsock_bind(self->handler, S_ZAP_ENDPOINT) != 0) {
        SK2_ERROR("server", "cannot bind the ZAP handler (one secure server per process): %s",
                  zmq_strerror(zmq_errno()));
        sk2_zap_destroy(&self);
        return SK2_EEXIST;
    }
    self->is_bound = true;
    SK2_INFO("server", "%zu client key%s allowed (from %s)", self->count,
             self->count == 1 ? "" : "s", allow_dir);
    *zap_p = self;
    return 0;
}

void sk2_zap_destroy(sk2_zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_zap_t *self = *self_p;
    /* Unbinding first frees the endpoint at once; closing alone frees it later, on libzmq's
     * own time, and the next secure server of the process would find it taken. */
    if (self->handler && self->is_bound)
        zsock_unbind(self->handler, S_ZAP_ENDPOINT);
    zsock_destroy(&self->handler);
    zcertstore_destroy(&self->allowed);
    free(self->allow_dir);
    free(self);
    *self_p = NULL;
}

zsock_t *sk2_zap_socket(sk2_zap_t *self)
{
    return self ? self->handler : NULL;
}

int sk2_zap_reload(sk2_zap_t *self)
{
    size_t count = 0;
    zcertstore_t *store = s_load(self->allow_dir, &count);
    if (!store) {
        SK2_ERROR("server", "cannot read the allow folder %s; the %zu keys loaded before stay",
                  self->allow_dir, self->count);
        return SK2_ENOTFOUND;
    }
    zcertstore_destroy(&self->allowed);
    self->allowed = store;
    self->count = count;
    SK2_INFO("server", "allow folder %s reloaded: %zu client key%s allowed", self->allow_dir, count,
             count == 1 ? "" : "s");
    return (int)count;
}

/* The reply frames of ZAP 1.0 (RFC 27): version, request id, status, text, user id, metadata. */
static void s_reply(sk2_zap_t *self, zframe_t *request_id, const char *status, const char *text,
                    const char *user_id)
{
    zmsg_t *reply = zmsg_new();
    zmsg_addstr(reply, "1.0");
    zmsg_append(reply, &request_id);
    zmsg_addstr(reply, status);
    zmsg_addstr(reply, text);
    zmsg_addstr(reply, user_id);
    zmsg_addmem(reply, "", 0);
    zmsg_send(&reply, self->handler);
}

static void s_answer_one(sk2_zap_t *self, zmsg_t *request)
{
    /* version, request id, domain, address, identity, mechanism, credentials... */
    zframe_t *version = zmsg_pop(request);
    zframe_t *request_id = zmsg_pop(request);
    char *domain = zmsg_popstr(request);
    char *address = zmsg_popstr(request);
    zframe_t *identity = zmsg_pop(request);
    char *mechanism = zmsg_popstr(request);
    zframe_t *key = zmsg_pop(request);
    char text[SK2_KEY_TEXT_SIZE] = "";
    if (!version || !zframe_streq(version, "1.0") || !request_id) {
        /* Only libzmq writes here; anything else is a bug to see, not to answer. */
        SK2_ERROR("server", "internal: malformed ZAP request");
        zframe_destroy(&request_id);
        request_id = zframe_new("", 0);
        s_reply(self, request_id, "500", "malformed ZAP request", "");
    } else if (!domain || strcmp(domain, SK2_ZAP_DOMAIN) != 0 || !mechanism ||
               strcmp(mechanism, "CURVE") != 0 || !key || zframe_size(key) != 32) {
        s_reply(self, request_id, "400", "only CURVE clients with a known key", "");
    } else {
        zmq_z85_encode(text, zframe_data(key), 32);
        if (zcertstore_lookup(self->allowed, text) ||
            (self->own_key[0] && strcmp(text, self->own_key) == 0)) {
            s_reply(self, request_id, "200", "OK", text);
        } else {
            uint64_t held_back = 0;
            if (!sk2_ratelimit_pass(&self->refusals, S_REFUSAL_LOG_US, &held_back))
                ;
            else if (held_back)
                SK2_WARN("server",
                         "refused client key %s from %s: not in the allow folder %s (and %llu "
                         "more refusals since the last one logged)",
                         text, address ? address : "?", self->allow_dir,
                         (unsigned long long)held_back);
            else
                SK2_WARN("server", "refused client key %s from %s: not in the allow folder %s",
                         text, address ? address : "?", self->allow_dir);
            s_reply(self, request_id, "400", "key not allowed", "");
        }
    }
    zframe_destroy(&version);
    zframe_destroy(&identity);
    zframe_destroy(&key);
    zstr_free(&domain);
    zstr_free(&address);
    zstr_free(&mechanism);
}

void sk2_zap_answer(sk2_zap_t *self)
{
    while (self && (zsock_events(self->handler) & ZMQ_POLLIN)) {
        zmsg_t *request = zmsg_recv(self->handler);
        if (!request)
            break;
        s_answer_one(self, request);
        zmsg_destroy(&request);
    }
}
