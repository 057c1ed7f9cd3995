/* The gateway's access token: checking, comparing and making one, and finding it in the
 * Authorization and Cookie headers. Pure string work (see http_auth.h); web.c decides when a
 * request needs it. */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "gateway/http_auth.h"
#include "core/random.h"
#include "sk2/error.h"

static bool s_is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '~' || c == '-';
}

bool gw_token_is_valid(const char *text)
{
    if (!text)
        return false;
    size_t len = strnlen(text, GW_TOKEN_MAX + 1);
    if (len < GW_TOKEN_MIN || len > GW_TOKEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!s_is_token_char(text[i]))
            return false;
    return true;
}

bool gw_token_equal(const char *expected, const char *given, size_t len)
{
    size_t expected_len = strlen(expected);
    /* Every byte of the expected token is compared with something, whatever the length given,
     * and differences are only OR-ed together: no early exit, no branch on a byte. */
    unsigned diff = (unsigned)(expected_len != len);
    for (size_t i = 0; i < expected_len; i++) {
        unsigned char g = len > 0 ? (unsigned char)given[i % len] : 0;
        diff |= (unsigned)((unsigned char)expected[i] ^ g);
    }
    return diff == 0;
}

int gw_token_generate(char *out, size_t size)
{
    if (!out || size < 2 * GW_TOKEN_RANDOM_BYTES + 1)
        return SK2_ENOSPC;
    unsigned char random[GW_TOKEN_RANDOM_BYTES];
    int rc = sk2_random_bytes(random, sizeof random);
    if (rc != 0)
        return rc;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof random; i++) {
        out[2 * i] = hex[random[i] >> 4];
        out[2 * i + 1] = hex[random[i] & 15];
    }
    out[2 * sizeof random] = '\0';
    memset(random, 0, sizeof random);
    return 0;
}

bool gw_http_bearer(const char *value, const char **token, size_t *len)
{
    if (!value)
        return false;
    while (*value == ' ' || *value == '\t')
        value++;
    if (strncasecmp(value, "bearer", 6) != 0 || (value[6] != ' ' && value[6] != '\t'))
        return false;
    value += 6;
    while (*value == ' ' || *value == '\t')
        value++;
    size_t n = 0;
    while (value[n] && value[n] != ' ' && value[n] != '\t')
        n++;
    /* Nothing may follow the credentials but blanks. */
    for (size_t i = n; value[i]; i++)
        if (value[i] != ' ' && value[i] != '\t')
            return false;
    if (n == 0)
        return false;
    *token = value;
    *len = n;
    return true;
}

bool gw_http_cookie(const char *header, const char *name, const char **value, size_t *len)
{
    if (!header || !name)
        return false;
    size_t name_len = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *pair = p;
        while (*p && *p != ';')
            p++;
        size_t pair_len = (size_t)(p - pair);
        if (pair_len > name_len && memcmp(pair, name, name_len) == 0 && pair[name_len] == '=') {
            const char *v = pair + name_len + 1;
            size_t n = pair_len - name_len - 1;
            while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                n--;
            /* RFC 6265 lets a value come in double quotes. */
            if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
                v++;
                n -= 2;
            }
            *value = v;
            *len = n;
            return true;
        }
    }
    return false;
}

bool gw_address_is_loopback(const char *address)
{
    if (!address)
        return false;
    char text[64];
    size_t len = strnlen(address, sizeof text);
    if (len == 0 || len >= sizeof text)
        return false;
    memcpy(text, address, len + 1);
    if (text[0] == '[') {
        if (len < 3 || text[len - 1] != ']')
            return false;
        memmove(text, text + 1, len - 2);
        text[len - 2] = '\0';
    }
    struct in_addr v4;
    if (inet_pton(AF_INET, text, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    struct in6_addr v6;
    if (inet_pton(AF_INET6, text, &v6) != 1)
        return false;
    if (IN6_IS_ADDR_LOOPBACK(&v6))
        return true;
    return IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127;
}
