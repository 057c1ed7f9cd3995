/* PNG files for the codec verbs (encode, decode): 16-bit grayscale for depth and IR, 8-bit
 * RGB and RGBA for colour. libpng is linked into the tool only, never into libsk2. */
#ifndef SK2_TOOL_PNGIO_H
#define SK2_TOOL_PNGIO_H

#include <stddef.h>

#include "sk2/sk2.h"

/* Reads a PNG into a new frame (caller destroys it): 16-bit grayscale becomes `format16`
 * (SK2_PIXEL_DEPTH_MM16 or SK2_PIXEL_GRAY16), 8-bit RGB rgb24, 8-bit RGBA bgra32. Returns 0,
 * or -1 with *frame NULL and the reason in why (missing file, not a PNG, another kind of
 * PNG such as 8-bit grayscale). */
int pngio_read(const char *path, sk2_pixel_format_t format16, sk2_frame_t **frame, char *why,
               size_t why_size);

/* Writes a frame as PNG: 16-bit formats as 16-bit grayscale, rgb24 as RGB, bgra32 as RGBA.
 * Returns 0, or -1 with the reason in why. */
int pngio_write(const char *path, const sk2_frame_t *frame, char *why, size_t why_size);

#endif
