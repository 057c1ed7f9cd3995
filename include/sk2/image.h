/* Image files for frames: PNG, as used by `sk2 encode`/`decode` and by TUM RGB-D folders. */
#ifndef SK2_IMAGE_H
#define SK2_IMAGE_H

#include <stddef.h>

#include "export.h"
#include "frame.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a PNG into a new frame (caller destroys it): 16-bit grayscale becomes `format16`
 * (SK2_PIXEL_DEPTH_MM16, kind depth, or SK2_PIXEL_GRAY16, kind IR), 8-bit RGB rgb24 and 8-bit
 * RGBA bgra32 (kind colour). Returns 0, SK2_ESYS (cannot open), SK2_ECORRUPT (not a PNG, or
 * damaged), SK2_EUNSUPPORTED (another kind of PNG, such as 8-bit grayscale), SK2_ELIMIT
 * (larger than a frame may be); *frame_p is NULL on error and why says what was wrong. Any
 * thread. */
SK2_EXPORT int sk2_frame_read_png(const char *path, sk2_pixel_format_t format16,
                                  sk2_frame_t **frame_p, char *why, size_t why_size);

/* Writes a frame as PNG: 16-bit formats as 16-bit grayscale, rgb24 as RGB, bgra32 as RGBA,
 * with zlib level `level` (0..9; 1 is fast, 6 libpng's default). Returns 0, SK2_EINVAL,
 * SK2_ESYS with why. Any thread. */
SK2_EXPORT int sk2_frame_write_png(const sk2_frame_t *frame, const char *path, int level, char *why,
                                   size_t why_size);

#ifdef __cplusplus
}
#endif
#endif
