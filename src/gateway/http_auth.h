/* The gateway's access token and the bits of HTTP that carry it: pure functions on strings,
 * with no libwebsockets and no sockets, so that web.c, the tests and the fuzz targets all call
 * the same code. Private to libsk2.
 *
 * A token is 16..128 characters from the URL-safe set [A-Za-z0-9._~-]: it travels in a query
 * string (?token=...), an Authorization header (Bearer) and a cookie without any escaping. */
#ifndef SK2_GATEWAY_HTTP_AUTH_H
#define SK2_GATEWAY_HTTP_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#define GW_TOKEN_MIN 16
#define GW_TOKEN_MAX 128
/* Bytes of randomness in a generated token (128 bits), written as 2 hex digits each. */
#define GW_TOKEN_RANDOM_BYTES 16

/* Whether text (NUL-terminated) is a usable token: length and characters as above. */
bool gw_token_is_valid(const char *text);

/* Whether the len bytes at given equal the token expected, in a time that depends only on
 * expected's length (so that a peer cannot find the token a byte at a time by timing). Any
 * thread. */
bool gw_token_equal(const char *expected, const char *given, size_t len);

/* Writes a new random token (2 * GW_TOKEN_RANDOM_BYTES hex digits and a NUL) into out, size
 * bytes. Reads the kernel's random source (getrandom, or /dev/urandom). Returns 0, SK2_ENOSPC,
 * SK2_ESYS. */
int gw_token_generate(char *out, size_t size);

/* The credentials of an Authorization header value: "Bearer TOKEN" (scheme in any case, one or
 * more spaces). Sets *token and *len to the part after the scheme and returns true, or false
 * for anything else. */
bool gw_http_bearer(const char *value, const char **token, size_t *len);

/* The value of cookie `name` in a Cookie header value ("a=1; b=2"). Sets *value and *len and
 * returns true for the first cookie of that exact name, false if there is none. */
bool gw_http_cookie(const char *header, const char *name, const char **value, size_t *len);

/* Whether address (as given to sk2_gateway_bind) reaches only this machine: an IPv4 literal in
 * 127.0.0.0/8, or the IPv6 literal ::1 or ::ffff:127.x.y.z (also in brackets). Anything else,
 * interface and host names included ("lo", "localhost"), is taken as reachable from the
 * network: the check must never be fooled into leaving a gateway open. */
bool gw_address_is_loopback(const char *address);

#endif
