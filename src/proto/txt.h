/* DNS-SD TXT records (RFC 6763, section 6): sk2's own keys, and a parser with limits for what
 * comes from the network. Pure C on buffers, in proto/ because the announcement is part of the
 * protocol that both sides speak (the announcer writes it, the browser and its events read it);
 * private to libsk2. */
#ifndef SK2_PROTO_TXT_H
#define SK2_PROTO_TXT_H

#include <stddef.h>
#include <stdint.h>

/* Most key/value pairs kept from one record; the rest are ignored. */
#define SK2_TXT_MAX_ENTRIES 32
/* One TXT string is at most 255 bytes on the wire (one length byte). */
#define SK2_TXT_MAX_STRING 255
/* Largest TXT rdata accepted, in bytes (an mDNS packet is at most 9000). */
#define SK2_TXT_MAX_RDATA 9000

/* The keys sk2 announces. Version-1 browsers ignore TXT altogether. */
#define SK2_TXT_TXTVERS  "txtvers"  /* version of this set of keys: "1" */
#define SK2_TXT_PROTOCOL "protocol" /* streamkinect2 protocol of the control endpoint: "1" */
#define SK2_TXT_SK2      "sk2"      /* libsk2 version of the server: "0.1.0" */
#define SK2_TXT_DEVICES  "devices"  /* devices served now: "2" */
#define SK2_TXT_KEY      "key"      /* a secure server's CURVE public key, Z85 (40 characters) */
/* Most strings sk2 announces. */
#define SK2_TXT_ANNOUNCED_MAX 5

/* Parsed pairs. Keys are printable ASCII without '=' and unique ignoring case (the first
 * wins, as RFC 6763 says); values are NUL-terminated text without NULs inside. */
typedef struct {
    size_t count;                      /* pairs in use */
    char *keys[SK2_TXT_MAX_ENTRIES];   /* owned */
    char *values[SK2_TXT_MAX_ENTRIES]; /* owned; "" for a key given without '=' */
} sk2_txt_t;

/* Parses TXT strings (each `sizes[i]` bytes, not NUL-terminated). Strings that break the
 * rules (empty, key empty or not printable ASCII, value holding a NUL, longer than
 * SK2_TXT_MAX_STRING) are skipped, never fatal. Returns a new record (caller destroys) or
 * NULL on out of memory. */
sk2_txt_t *sk2_txt_parse(const char *const *strings, const size_t *sizes, size_t count);

/* Parses TXT rdata as it is on the wire: length-prefixed strings. Returns NULL on out of
 * memory or if the rdata is malformed (a length running past the end, over the limit). */
sk2_txt_t *sk2_txt_parse_rdata(const uint8_t *rdata, size_t size);

/* A deep copy, or NULL (also for NULL). */
sk2_txt_t *sk2_txt_copy(const sk2_txt_t *self);

/* The value of `key` (ASCII case ignored), or NULL if absent. Borrowed from self. */
const char *sk2_txt_get(const sk2_txt_t *self, const char *key);

/* True if both hold the same pairs in the same order (two NULLs are equal). */
int sk2_txt_equal(const sk2_txt_t *a, const sk2_txt_t *b);

void sk2_txt_destroy(sk2_txt_t **self_p);

/* Writes the strings sk2 announces into buf (one "key=value" per entry in strings[]), with
 * key=KEY when public_key (Z85) is not NULL; returns how many (at most SK2_TXT_ANNOUNCED_MAX). */
size_t sk2_txt_announced(unsigned devices, const char *public_key,
                         char buf[SK2_TXT_ANNOUNCED_MAX][64],
                         const char *strings[SK2_TXT_ANNOUNCED_MAX]);

#endif
