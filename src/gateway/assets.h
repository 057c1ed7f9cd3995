/* The viewer's static files (web/), built into the library by CMake (cmake/embed_web.cmake
 * writes web_assets.c in the build tree). Private to libsk2. */
#ifndef SK2_GATEWAY_ASSETS_H
#define SK2_GATEWAY_ASSETS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    const char *path;          /* "/index.html" */
    const unsigned char *data; /* the file's bytes */
    size_t size;               /* bytes */
} gw_asset_t;

extern const gw_asset_t gw_assets[];
extern const size_t gw_asset_count;

#endif
