/* The one-frame file that `sk2 encode` writes and `sk2 decode` reads (docs/codecs.md, "SK2F
 * files"): a small self-describing header in front of one codec's payload. */
#ifndef SK2_TOOL_SK2F_H
#define SK2_TOOL_SK2F_H

#include <stddef.h>
#include <stdint.h>

#include "sk2/sk2.h"

#define SK2F_VERSION      1
#define SK2F_NAME_MAX     32 /* bytes of codec name */
#define SK2F_HEADER_FIXED 19 /* header bytes besides the name */

typedef struct {
    char codec[SK2F_NAME_MAX + 1]; /* NUL-terminated codec name */
    sk2_pixel_format_t format;
    uint32_t width, height; /* pixels */
    const uint8_t *payload; /* points into the parsed buffer */
    size_t payload_len;     /* bytes */
} sk2f_t;

/* Writes header and payload to path. Returns 0 or -1 with the reason in why. */
int sk2f_write(const char *path, const sk2f_t *file, char *why, size_t why_size);

/* Parses a whole file's bytes. Returns 0 with *file pointing into bytes, or -1 with the
 * reason in why (wrong magic, unknown version, truncated, trailing bytes, bad name). */
int sk2f_parse(const uint8_t *bytes, size_t size, sk2f_t *file, char *why, size_t why_size);

/* Reads a whole file (caller frees). NULL with the reason in why. Files above max_size are
 * refused. */
uint8_t *sk2f_slurp(const char *path, size_t max_size, size_t *size, char *why, size_t why_size);

#endif
