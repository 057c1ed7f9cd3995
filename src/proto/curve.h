/* CURVE keys for sk2's sockets: loading a key pair saved by zcert (sk2 keygen), reading a
 * public key given as text or as a file, and watching a client socket's handshakes so that a
 * refused key is reported instead of retried in silence. The cryptography is libzmq's own
 * (CurveZMQ, via libsodium); this file only moves keys around. Private to libsk2. */
#ifndef SK2_PROTO_CURVE_H
#define SK2_PROTO_CURVE_H

#include <stdbool.h>
#include <stddef.h>

#include <czmq.h>

#include "sk2/client.h"
#include "sk2/security.h"

/* The keys one socket needs. Z85 text, 40 characters and a NUL; all empty when not secure. */
typedef struct {
    bool is_on;                         /* CURVE is used on this socket */
    char public_key[SK2_KEY_TEXT_SIZE]; /* our own public key */
    char secret_key[SK2_KEY_TEXT_SIZE]; /* our own secret key */
    char server_key[SK2_KEY_TEXT_SIZE]; /* a client's: the server's public key */
} sk2_curve_t;

/* The keys a client uses on every socket (all empty if it is not secure), for the relay, whose
 * SUB sockets stand in for the client's own on a secure upstream and so need the same keys.
 * Defined in src/client/client.c. */
void sk2_client_curve(const sk2_client_t *client, sk2_curve_t *out);

/* True if text is a well-formed Z85 CURVE key (40 characters that decode to 32 bytes). */
bool sk2_curve_key_is_valid(const char *text);

/* Loads our key pair from `path`: a secret certificate file written by zcert (NAME.key_secret)
 * or a folder holding exactly one. Fills public_key, secret_key and sets is_on. Returns 0,
 * SK2_ENOTFOUND (no such file, or no secret certificate in the folder), SK2_EINVAL (not a
 * certificate, no secret key in it, or several in the folder: the log says which), or
 * SK2_EUNSUPPORTED (libzmq built without CURVE). */
int sk2_curve_load_pair(const char *path, sk2_curve_t *curve);

/* Reads a public key given as 40 characters of Z85, or as a certificate file (NAME.key or
 * NAME.key_secret; its public key is taken), into out. Same returns as sk2_curve_load_pair. */
int sk2_curve_read_public(const char *key_or_file, char out[SK2_KEY_TEXT_SIZE]);

/* A watch on a client socket's connection events (a libzmq socket monitor, read in the
 * client's own poll loop: no thread). */
typedef struct sk2_curve_watch sk2_curve_watch_t;

/* Starts watching `socket` (before it connects) until its first handshake succeeds. NULL on
 * failure (logged). Destroy the watch before the socket. */
sk2_curve_watch_t *sk2_curve_watch_new(zsock_t *socket);
void sk2_curve_watch_destroy(sk2_curve_watch_t **self_p);
/* The monitor socket to poll for ZMQ_POLLIN. */
zsock_t *sk2_curve_watch_socket(sk2_curve_watch_t *self);
/* Reads every pending event. Returns 0, or SK2_EAUTH with a sentence in reason when a
 * handshake failed: the server refused our key, or closed the connection during the
 * handshake (our idea of its key is wrong, or it does not speak CURVE). */
int sk2_curve_watch_read(sk2_curve_watch_t *self, char *reason, size_t size);
/* True once a handshake has succeeded: the watch has stopped its monitor and may go. */
bool sk2_curve_watch_is_done(const sk2_curve_watch_t *self);

#endif
