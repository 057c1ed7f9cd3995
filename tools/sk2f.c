/* SK2F one-frame files: "SK2F", version, pixel format, codec name, width, height, payload
 * length (little-endian), payload. Parsing treats the bytes as hostile: every length is
 * checked against what is there, and nothing may follow the payload. */
#include "sk2f.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_put_le32(uint8_t *dst, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get_le32(const uint8_t *src)
{
    return (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
           (uint32_t)src[3] << 24;
}

int sk2f_write(const char *path, const sk2f_t *file, char *why, size_t why_size)
{
    size_t name_len = strlen(file->codec);
    if (name_len == 0 || name_len > SK2F_NAME_MAX || file->payload_len > UINT32_MAX) {
        snprintf(why, why_size, "cannot describe this frame in an SK2F file");
        return -1;
    }
    uint8_t header[SK2F_HEADER_FIXED + SK2F_NAME_MAX];
    memcpy(header, "SK2F", 4);
    header[4] = SK2F_VERSION;
    header[5] = (uint8_t)file->format;
    header[6] = (uint8_t)name_len;
    memcpy(header + 7, file->codec, name_len);
    s_put_le32(header + 7 + name_len, file->width);
    s_put_le32(header + 11 + name_len, file->height);
    s_put_le32(header + 15 + name_len, (uint32_t)file->payload_len);
    FILE *out = fopen(path, "wb");
    if (!out) {
        snprintf(why, why_size, "cannot create: %s", strerror(errno));
        return -1;
    }
    int ok = fwrite(header, 1, SK2F_HEADER_FIXED + name_len, out) == SK2F_HEADER_FIXED + name_len &&
             fwrite(file->payload, 1, file->payload_len, out) == file->payload_len;
    if (fclose(out) != 0 || !ok) {
        snprintf(why, why_size, "cannot write: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int sk2f_parse(const uint8_t *bytes, size_t size, sk2f_t *file, char *why, size_t why_size)
{
    if (size < 4 || memcmp(bytes, "SK2F", 4) != 0) {
        snprintf(why, why_size, "not an SK2F file (no 'SK2F' magic)");
        return -1;
    }
    if (size < 7) {
        snprintf(why, why_size, "truncated SK2F header");
        return -1;
    }
    if (bytes[4] != SK2F_VERSION) {
        snprintf(why, why_size, "SK2F version %u, this sk2 reads version %d", bytes[4],
                 SK2F_VERSION);
        return -1;
    }
    size_t name_len = bytes[6];
    if (name_len == 0 || name_len > SK2F_NAME_MAX) {
        snprintf(why, why_size, "bad codec name length %zu", name_len);
        return -1;
    }
    if (size < SK2F_HEADER_FIXED + name_len) {
        snprintf(why, why_size, "truncated SK2F header");
        return -1;
    }
    for (size_t i = 0; i < name_len; i++) {
        if (!isalnum(bytes[7 + i]) && bytes[7 + i] != '-' && bytes[7 + i] != '_') {
            snprintf(why, why_size, "bad codec name");
            return -1;
        }
    }
    memcpy(file->codec, bytes + 7, name_len);
    file->codec[name_len] = '\0';
    file->format = (sk2_pixel_format_t)bytes[5];
    file->width = s_get_le32(bytes + 7 + name_len);
    file->height = s_get_le32(bytes + 11 + name_len);
    file->payload_len = s_get_le32(bytes + 15 + name_len);
    file->payload = bytes + SK2F_HEADER_FIXED + name_len;
    size_t left = size - SK2F_HEADER_FIXED - name_len;
    if (file->payload_len != left) {
        snprintf(why, why_size, "%s: header says %zu payload bytes, file has %zu",
                 file->payload_len > left ? "truncated" : "trailing bytes", file->payload_len,
                 left);
        return -1;
    }
    return 0;
}

uint8_t *sk2f_slurp(const char *path, size_t max_size, size_t *size, char *why, size_t why_size)
{
    FILE *in = fopen(path, "rb");
    if (!in) {
        snprintf(why, why_size, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 65536, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + len, 1, cap - len, in);
        len += n;
        if (len < cap)
            break;
        if (cap >= max_size) {
            free(buf);
            buf = NULL;
            snprintf(why, why_size, "larger than %zu bytes", max_size);
            fclose(in);
            return NULL;
        }
        uint8_t *bigger = realloc(buf, cap * 2);
        if (!bigger)
            free(buf);
        buf = bigger;
        cap *= 2;
    }
    int failed = !buf || ferror(in);
    fclose(in);
    if (failed) {
        free(buf);
        snprintf(why, why_size, "cannot read");
        return NULL;
    }
    *size = len;
    return buf;
}
