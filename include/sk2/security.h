/* CURVE security: key pairs, and the file of server keys a client has pinned.
 *
 * sk2 encrypts and authenticates its sockets with libzmq's CURVE mechanism (CurveZMQ, on
 * libsodium) and keeps keys in CZMQ's zcert format; nothing here does cryptography of its
 * own. A server is made secure with sk2_server_set_security() (server.h), a client with
 * sk2_client_set_security() (client.h). See docs/security.md. */
#ifndef SK2_SECURITY_H
#define SK2_SECURITY_H

#include <stdbool.h>
#include <stddef.h>

#include "export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes of a key as text: 40 characters of Z85 and a NUL. */
#define SK2_KEY_TEXT_SIZE 41

/* True if the libzmq in use can do CURVE (built with libsodium). Any thread. */
SK2_EXPORT bool sk2_security_is_available(void);

/* Makes a new CURVE key pair with CZMQ's zcert and saves it in `dir` (created, mode 0700, if
 * missing, with its parents) as NAME.key (the public certificate, mode 0644) and NAME.key_secret
 * (both keys, mode 0600). NAME is 1..64 characters of [A-Za-z0-9._-] not starting with '.'. Refuses
 * to replace either file unless is_overwriting. Writes the public key (Z85) to public_key
 * (SK2_KEY_TEXT_SIZE bytes). Returns 0, SK2_EINVAL (bad name), SK2_EEXIST (a file is there),
 * SK2_EUNSUPPORTED (no CURVE), SK2_ESYS (cannot create or write; errno says why). */
SK2_EXPORT int sk2_security_keygen(const char *dir, const char *name, bool is_overwriting,
                                   char *public_key);

/* Reads a public key given as 40 characters of Z85 or as a certificate file (NAME.key, or
 * NAME.key_secret whose public half is taken) into public_key (SK2_KEY_TEXT_SIZE bytes).
 * Returns 0, SK2_ENOTFOUND (no such file) or SK2_EINVAL (neither a key nor a certificate). */
SK2_EXPORT int sk2_security_read_public_key(const char *key_or_file, char *public_key);

/* ---- Keys pinned on first use (like ssh's known_hosts) ----
 *
 * The file (default: $XDG_CONFIG_HOME/sk2/known_servers, or ~/.config/sk2/known_servers) has
 * one line per server: the public key (40 characters of Z85), one space, and the server's name
 * as announced, to the end of the line. Lines starting with '#' and blank lines are ignored.
 * The file is rewritten whole through a temporary file and rename(), so a reader never sees
 * half of it. */

/* The default path into out; returns 0, SK2_ENOTFOUND (neither XDG_CONFIG_HOME nor HOME is
 * set) or SK2_ELIMIT (does not fit). */
SK2_EXPORT int sk2_known_servers_path(char *out, size_t size);

/* Checks the key a server called `name` announces against the file at path (NULL: the
 * default). A name not in the file is added with this key (pinned on first use). Returns 0
 * (known with this key, or just pinned: *is_new_p says which if not NULL), SK2_EKEYCHANGED
 * (the file pins another key for this name; *line_p, if not NULL, receives its line number so
 * that the user can be told which line to delete), SK2_EINVAL (bad key or name), SK2_ECORRUPT
 * (a line of the file is malformed: its number in *line_p), SK2_ELIMIT (file over 1 MiB),
 * SK2_ESYS (cannot read or write the file). */
SK2_EXPORT int sk2_known_servers_check(const char *path, const char *name, const char *key,
                                       bool *is_new_p, unsigned *line_p);

#ifdef __cplusplus
}
#endif
#endif
