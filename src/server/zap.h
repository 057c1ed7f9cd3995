/* The server's ZAP handler: decides which CURVE clients may connect. libzmq does the CURVE
 * handshake itself and, before accepting a client, asks the handler bound at
 * inproc://zeromq.zap.01 whether the client's (already proven) public key may in; this one
 * answers yes only for keys in the allow folder. Private to libsk2.
 *
 * Why not CZMQ's zauth actor: it aborts the process when a second one binds, ignores the ZAP
 * domain, and can name a refused key only through unthrottled verbose logging; the server
 * must log refused keys (rate-limited) so that an operator can let a client in. The
 * certificates are still CZMQ's: zcert files, in a zcertstore. */
#ifndef SK2_SERVER_ZAP_H
#define SK2_SERVER_ZAP_H

#include <czmq.h>

typedef struct sk2_zap sk2_zap_t;

/* Binds the ZAP endpoint of the process and loads the allow folder. The server's own public
 * key (own_key, Z85) is always allowed: whoever holds its secret key is the server already, and
 * so the server's own gateway (`sk2 serve --secure --http`) connects with the server's key
 * pair. Returns 0, SK2_ENOTFOUND (no such folder), SK2_EEXIST (another secure server in this
 * process owns the endpoint), SK2_ENOMEM. Called on the thread that then polls it (the server
 * actor). */
int sk2_zap_new(const char *allow_dir, const char *own_key, sk2_zap_t **zap_p);
void sk2_zap_destroy(sk2_zap_t **self_p);
/* The socket to poll; sk2_zap_answer() when it is readable. */
zsock_t *sk2_zap_socket(sk2_zap_t *self);
/* Answers every pending ZAP request. */
void sk2_zap_answer(sk2_zap_t *self);
/* Reads the allow folder again. On failure (folder gone) the keys already loaded stay.
 * Returns the number of keys now allowed, or SK2_ENOTFOUND. */
int sk2_zap_reload(sk2_zap_t *self);

#endif
