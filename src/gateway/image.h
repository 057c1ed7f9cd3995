/* Images for the gateway: the depth colour map, IR grey levels, downscaling, and PNG and JPEG
 * encoding into blobs. Pure functions on buffers, any thread. Private to libsk2. */
#ifndef SK2_GATEWAY_IMAGE_H
#define SK2_GATEWAY_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "gateway/shot.h"

/* The smallest and largest non-zero values of n pixels (both 0 when none is non-zero). */
void gw_image_range(const uint16_t *pixels, size_t n, uint16_t *min, uint16_t *max);

/* Depth in mm to RGB: near (min_mm) red through yellow, green and cyan to far (max_mm) blue;
 * no reading (0) black. The page (web/app.js) uses the same stops. */
void gw_image_colormap(const uint16_t *depth, size_t n, uint16_t min_mm, uint16_t max_mm,
                       uint8_t *rgb);

/* IR intensity to grey RGB: the square root of value / max, so that the dim far wall and the
 * bright near objects both show. */
void gw_image_ir(const uint16_t *ir, size_t n, uint16_t max, uint8_t *rgb);

/* Shrinks an RGB image by a whole factor (box filter) so that it is at most max_width wide.
 * Returns a malloc'd image and its size, or NULL on out of memory. factor 1 copies. */
uint8_t *gw_image_shrink(const uint8_t *rgb, uint32_t width, uint32_t height, uint32_t max_width,
                         uint32_t *out_width, uint32_t *out_height);

/* PNG of width x height pixels: 16-bit grey (channels 1, host-order uint16) or 8-bit RGB
 * (channels 3). zlib level 1: these are made per request, speed matters more than size.
 * Appends to *blob (made if NULL). Returns 0, -1 on failure. */
int gw_image_png(const void *pixels, uint32_t width, uint32_t height, int channels,
                 gw_blob_t **blob);

/* Baseline JPEG (4:2:0) of an RGB image at quality 1..100, appended to *blob (made if NULL).
 * Returns 0 or -1. */
int gw_image_jpeg(const uint8_t *rgb, uint32_t width, uint32_t height, int quality,
                  gw_blob_t **blob);

#endif
