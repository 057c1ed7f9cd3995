/* TXT records: what sk2 puts in its own, and a careful reading of anyone else's. Everything
 * here comes from the network, so each string is checked against RFC 6763's rules and our
 * limits, and a bad one is dropped rather than trusted or fatal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/txt.h"
#include "sk2/sk2.h"

void sk2_txt_destroy(sk2_txt_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    sk2_txt_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++) {
        free(self->keys[i]);
        free(self->values[i]);
    }
    free(self);
    *self_p = NULL;
}

const char *sk2_txt_get(const sk2_txt_t *self, const char *key)
{
    if (!self || !key)
        return NULL;
    for (size_t i = 0; i < self->count; i++)
        if (strcasecmp(self->keys[i], key) == 0)
            return self->values[i];
    return NULL;
}

static char *s_dup(const char *data, size_t size)
{
    char *copy = malloc(size + 1);
    if (copy) {
        memcpy(copy, data, size);
        copy[size] = '\0';
    }
    return copy;
}

/* Adds one "key=value" string if it is well-formed; returns -1 only on out of memory. */
static int s_add(sk2_txt_t *self, const char *string, size_t size)
{
    if (size == 0 || size > SK2_TXT_MAX_STRING || self->count == SK2_TXT_MAX_ENTRIES)
        return 0;
    const char *equals = memchr(string, '=', size);
    size_t key_size = equals ? (size_t)(equals - string) : size;
    if (key_size == 0)
        return 0;
    for (size_t i = 0; i < key_size; i++)
        if ((unsigned char)string[i] < 0x20 || (unsigned char)string[i] > 0x7e)
            return 0;
    const char *value = equals ? equals + 1 : string + size;
    size_t value_size = (size_t)(string + size - value);
    if (memchr(value, '\0', value_size))
        return 0;
    char *key = s_dup(string, key_size);
    if (!key)
        return -1;
    if (sk2_txt_get(self, key)) {
        free(key); /* only the first occurrence of a key counts */
        return 0;
    }
    char *copy = s_dup(value, value_size);
    if (!copy) {
        free(key);
        return -1;
    }
    self->keys[self->count] = key;
    self->values[self->count++] = copy;
    return 0;
}

sk2_txt_t *sk2_txt_parse(const char *const *strings, const size_t *sizes, size_t count)
{
    sk2_txt_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    for (size_t i = 0; i < count; i++) {
        if (s_add(self, strings[i], sizes[i]) != 0) {
            sk2_txt_destroy(&self);
            break;
        }
    }
    return self;
}

sk2_txt_t *sk2_txt_parse_rdata(const uint8_t *rdata, size_t size)
{
    if (size > SK2_TXT_MAX_RDATA || (size > 0 && !rdata))
        return NULL;
    sk2_txt_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    size_t at = 0;
    while (at < size) {
        size_t length = rdata[at++];
        if (length > size - at || s_add(self, (const char *)rdata + at, length) != 0) {
            sk2_txt_destroy(&self);
            return NULL;
        }
        at += length;
    }
    return self;
}

sk2_txt_t *sk2_txt_copy(const sk2_txt_t *self)
{
    if (!self)
        return NULL;
    sk2_txt_t *copy = calloc(1, sizeof *copy);
    if (!copy)
        return NULL;
    for (size_t i = 0; i < self->count; i++) {
        copy->keys[i] = strdup(self->keys[i]);
        copy->values[i] = strdup(self->values[i]);
        copy->count = i + 1;
        if (!copy->keys[i] || !copy->values[i]) {
            sk2_txt_destroy(&copy);
            return NULL;
        }
    }
    return copy;
}

int sk2_txt_equal(const sk2_txt_t *a, const sk2_txt_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->count != b->count)
        return 0;
    for (size_t i = 0; i < a->count; i++)
        if (strcmp(a->keys[i], b->keys[i]) != 0 || strcmp(a->values[i], b->values[i]) != 0)
            return 0;
    return 1;
}

size_t sk2_txt_announced(unsigned devices, const char *public_key,
                         char buf[SK2_TXT_ANNOUNCED_MAX][64],
                         const char *strings[SK2_TXT_ANNOUNCED_MAX])
{
    snprintf(buf[0], 64, "%s=1", SK2_TXT_TXTVERS);
    snprintf(buf[1], 64, "%s=%d", SK2_TXT_PROTOCOL, SK2_PROTOCOL_VERSION);
    snprintf(buf[2], 64, "%s=%s", SK2_TXT_SK2, sk2_version());
    snprintf(buf[3], 64, "%s=%u", SK2_TXT_DEVICES, devices);
    size_t count = 4;
    if (public_key)
        snprintf(buf[count++], 64, "%s=%.40s", SK2_TXT_KEY, public_key);
    for (size_t i = 0; i < count; i++)
        strings[i] = buf[i];
    return count;
}
