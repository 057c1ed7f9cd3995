/* CURVE keys and handshake watching (see curve.h). Key pairs are made, saved and loaded by
 * CZMQ's zcert, so their files are what every CZMQ program reads; this file adds the checks a
 * command line needs (a folder with exactly one secret certificate, modes, refusing to
 * overwrite) and turns libzmq's monitor events into one clear sentence. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log_internal.h"
#include "proto/curve.h"
#include "proto/socket.h"
#include "sk2/error.h"
#include "sk2/security.h"

#define S_KEY_CHARS 40
/* zcert writes this for a certificate without a secret key. */
#define S_NO_SECRET     "0000000000000000000000000000000000000000"
#define S_SECRET_SUFFIX "_secret"

bool sk2_security_is_available(void)
{
    sk2_socket_init();
    return zsys_has_curve();
}

bool sk2_curve_key_is_valid(const char *text)
{
    if (!text || strlen(text) != S_KEY_CHARS)
        return false;
    uint8_t key[32];
    return zmq_z85_decode(key, text) != NULL;
}

/* The path of the one file in dir whose name ends in ".key_secret", into out. */
static int s_find_secret(const char *dir, char *out, size_t size)
{
    DIR *d = opendir(dir);
    if (!d)
        return SK2_ENOTFOUND;
    int found = 0;
    struct dirent *entry;
    const char *suffix = ".key" S_SECRET_SUFFIX;
    while ((entry = readdir(d)) != NULL) {
        size_t length = strlen(entry->d_name);
        if (length <= strlen(suffix) ||
            strcmp(entry->d_name + length - strlen(suffix), suffix) != 0)
            continue;
        if (++found == 1 && snprintf(out, size, "%s/%s", dir, entry->d_name) >= (int)size)
            found = -1000; /* too long: reported as not found below */
    }
    closedir(d);
    if (found > 1) {
        SK2_ERROR("security", "%s holds %d secret keys (*.key_secret); name the file to use", dir,
                  found);
        return SK2_EINVAL;
    }
    if (found != 1) {
        SK2_ERROR("security", "%s holds no secret key (*.key_secret); make one with sk2 keygen",
                  dir);
        return SK2_ENOTFOUND;
    }
    return 0;
}

/* Loads a zcert from a file given by its own name. zcert_load(NAME) reads NAME_secret when it
 * exists, else NAME, so a NAME.key_secret given directly is read as itself. */
static zcert_t *s_load_cert(const char *file, int *rc)
{
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        *rc = SK2_ENOTFOUND;
        return NULL;
    }
    zcert_t *cert = zcert_load(file);
    if (!cert || !sk2_curve_key_is_valid(zcert_public_txt(cert))) {
        zcert_destroy(&cert);
        *rc = SK2_EINVAL;
        return NULL;
    }
    *rc = 0;
    return cert;
}

int sk2_curve_load_pair(const char *path, sk2_curve_t *curve)
{
    if (!path || !curve)
        return SK2_EINVAL;
    if (!sk2_security_is_available())
        return SK2_EUNSUPPORTED;
    char file[4096];
    struct stat st;
    if (stat(path, &st) != 0) {
        SK2_ERROR("security", "no key pair at %s: %s", path, strerror(errno));
        return SK2_ENOTFOUND;
    }
    int rc = 0;
    if (S_ISDIR(st.st_mode))
        rc = s_find_secret(path, file, sizeof file);
    else
        snprintf(file, sizeof file, "%s", path);
    if (rc != 0)
        return rc;
    zcert_t *cert = s_load_cert(file, &rc);
    if (!cert) {
        SK2_ERROR("security", "%s is not a certificate made by sk2 keygen (zcert)", file);
        return rc;
    }
    const char *secret = zcert_secret_txt(cert);
    if (!sk2_curve_key_is_valid(secret) || strcmp(secret, S_NO_SECRET) == 0) {
        SK2_ERROR("security", "%s holds no secret key (give NAME.key_secret or its folder)", file);
        zcert_destroy(&cert);
        return SK2_EINVAL;
    }
    if (stat(file, &st) == 0 && (st.st_mode & 077))
        SK2_WARN("security", "%s can be read by other users (mode %03o); chmod 600 it", file,
                 (unsigned)(st.st_mode & 0777));
    memset(curve, 0, sizeof *curve);
    curve->is_on = true;
    snprintf(curve->public_key, sizeof curve->public_key, "%s", zcert_public_txt(cert));
    snprintf(curve->secret_key, sizeof curve->secret_key, "%s", secret);
    zcert_destroy(&cert);
    return 0;
}

int sk2_curve_read_public(const char *key_or_file, char out[SK2_KEY_TEXT_SIZE])
{
    if (!key_or_file || !out)
        return SK2_EINVAL;
    if (sk2_curve_key_is_valid(key_or_file)) {
        memcpy(out, key_or_file, SK2_KEY_TEXT_SIZE);
        return 0;
    }
    int rc = 0;
    zcert_t *cert = s_load_cert(key_or_file, &rc);
    if (!cert) {
        SK2_ERROR("security", "'%s' is neither a public key (40 characters of Z85) nor %s",
                  key_or_file,
                  rc == SK2_ENOTFOUND ? "an existing file" : "a certificate made by sk2 keygen");
        return rc;
    }
    snprintf(out, SK2_KEY_TEXT_SIZE, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

int sk2_security_read_public_key(const char *key_or_file, char *public_key)
{
    return sk2_curve_read_public(key_or_file, public_key);
}

static bool s_name_ok(const char *name)
{
    size_t length = strlen(name);
    if (length == 0 || length > 64 || name[0] == '.')
        return false;
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* mkdir -p, new folders mode 0700. */
static int s_make_dirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

int sk2_security_keygen(const char *dir, const char *name, bool is_overwriting, char *public_key)
{
    if (!dir || !*dir || !name || !s_name_ok(name) || !public_key)
        return SK2_EINVAL;
    if (!sk2_security_is_available())
        return SK2_EUNSUPPORTED;
    char file[4096], secret_file[4096 + 8];
    if (snprintf(file, sizeof file, "%s/%s.key", dir, name) >= (int)sizeof file)
        return SK2_EINVAL;
    snprintf(secret_file, sizeof secret_file, "%s" S_SECRET_SUFFIX, file);
    if (s_make_dirs(dir) != 0)
        return SK2_ESYS;
    struct stat st;
    if (!is_overwriting && (stat(file, &st) == 0 || stat(secret_file, &st) == 0))
        return SK2_EEXIST;
    zcert_t *cert = zcert_new();
    if (!cert)
        return SK2_ENOMEM;
    /* zcert writes with fopen(), so the process umask decides the mode: the secret file must
     * never exist, even for an instant, readable by others. An old file keeps its mode through
     * fopen("w"), hence the unlink first. */
    unlink(secret_file);
    mode_t old_mask = umask(077);
    int rc = zcert_save_secret(cert, secret_file);
    umask(old_mask);
    if (rc == 0)
        rc = zcert_save_public(cert, file);
    if (rc == 0 && (chmod(secret_file, 0600) != 0 || chmod(file, 0644) != 0))
        rc = -1;
    if (rc == 0)
        snprintf(public_key, SK2_KEY_TEXT_SIZE, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return rc == 0 ? 0 : SK2_ESYS;
}

/* ---- Watching a client's handshakes --------------------------------------------------------- */

/* Handshakes cut short by the server, in a row, before the client concludes that its idea of
 * the server's key is wrong. More than one, because a refusal (which says why) can look the
 * same: when the server closes the connection right after its ERROR command, the connection
 * may be reset before the client reads it. libzmq reconnects every 100 ms, so this takes
 * about half a second. */
#define S_CUT_HANDSHAKES 4

struct sk2_curve_watch {
    void *watched;       /* the libzmq socket watched, while its monitor runs */
    zsock_t *monitor;    /* PAIR reading the socket's monitor events */
    bool is_handshaking; /* connected, handshake not yet done */
    unsigned cut;        /* handshakes in a row the server closed without a word */
};

sk2_curve_watch_t *sk2_curve_watch_new(zsock_t *socket)
{
    sk2_curve_watch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    /* A fresh inproc name each time: libzmq releases a closed one asynchronously. */
    static _Atomic unsigned long long s_next;
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "inproc://sk2-curve-watch-%llu", s_next++);
    int events = ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                 ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                 ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
    if (zmq_socket_monitor(zsock_resolve(socket), endpoint, events) == 0) {
        self->watched = zsock_resolve(socket);
        self->monitor = zsock_new(ZMQ_PAIR);
    }
    if (!self->monitor || sk2_socket_set_int(self->monitor, ZMQ_LINGER, 0) != 0 ||
        zsock_connect(self->monitor, "%s", endpoint) != 0) {
        SK2_WARN("security", "cannot watch handshakes: %s", zmq_strerror(zmq_errno()));
        sk2_curve_watch_destroy(&self);
    }
    return self;
}

/* libzmq sends monitor events with a blocking send on its I/O thread: a monitor whose reader
 * is gone, or never reads, would stall every socket of the process. So the monitor stops
 * before its reader goes, and as soon as a handshake has succeeded (all it is there for). */
static void s_stop(sk2_curve_watch_t *self)
{
    if (self->watched)
        zmq_socket_monitor(self->watched, NULL, 0);
    self->watched = NULL;
}

void sk2_curve_watch_destroy(sk2_curve_watch_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    s_stop(*self_p);
    zsock_destroy(&(*self_p)->monitor);
    free(*self_p);
    *self_p = NULL;
}

bool sk2_curve_watch_is_done(const sk2_curve_watch_t *self)
{
    return self && !self->watched;
}

zsock_t *sk2_curve_watch_socket(sk2_curve_watch_t *self)
{
    return self ? self->monitor : NULL;
}

int sk2_curve_watch_read(sk2_curve_watch_t *self, char *reason, size_t size)
{
    int rc = 0;
    while (self && (zsock_events(self->monitor) & ZMQ_POLLIN)) {
        zmsg_t *msg = zmsg_recv(self->monitor);
        zframe_t *head = msg ? zmsg_first(msg) : NULL;
        if (!head || zframe_size(head) != 6) {
            zmsg_destroy(&msg);
            break;
        }
        uint16_t event;
        uint32_t value;
        memcpy(&event, zframe_data(head), 2);
        memcpy(&value, zframe_data(head) + 2, 4);
        zmsg_destroy(&msg);
        if (event == ZMQ_EVENT_CONNECTED) {
            self->is_handshaking = true;
        } else if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            self->is_handshaking = false;
            self->cut = 0;
            s_stop(self);
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            self->is_handshaking = false;
            snprintf(reason, size,
                     "the server refused this client's key (status %u): its public key is not in "
                     "the server's allow folder",
                     (unsigned)value);
            rc = SK2_EAUTH;
        } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
            /* libzmq does not retry a peer that broke the handshake's rules. */
            self->is_handshaking = false;
            if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
                snprintf(reason, size,
                         "the server is not secure: it does not speak CURVE (started without "
                         "--secure?)");
            else
                snprintf(reason, size, "the CURVE handshake failed (protocol error 0x%x)",
                         (unsigned)value);
            rc = SK2_EAUTH;
        } else if (event == ZMQ_EVENT_DISCONNECTED && self->is_handshaking) {
            /* A CURVE server that cannot open our HELLO (boxed for another key) closes the
             * connection without a word: the only sign the client gets, with perhaps a
             * HANDSHAKE_FAILED_NO_DETAIL (broken pipe) before. So does a plain server, which
             * expects no HELLO at all. */
            self->is_handshaking = false;
            if (++self->cut >= S_CUT_HANDSHAKES && rc == 0) {
                snprintf(reason, size,
                         "the server closed the connection during the CURVE handshake: it does "
                         "not hold the secret key of the server key given (--server-key), or it "
                         "is not a secure server");
                rc = SK2_EAUTH;
            }
        }
    }
    return rc;
}
