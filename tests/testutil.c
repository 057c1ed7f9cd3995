/* Helpers shared by the test programs. */
#include <stdio.h>
#include <stdlib.h>

#include "testutil.h"

uint8_t *testutil_read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            buf = malloc((size_t)n + 1);
            if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else if (buf) {
                *size = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

const char *testutil_data_path(const char *name)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", SK2_TEST_DATA_DIR, name);
    return path;
}

void testutil_fill_noise(sk2_frame_t *frame, uint32_t seed, uint16_t max)
{
    uint16_t *px = sk2_frame_data16(frame);
    size_t n = (size_t)sk2_frame_width(frame) * sk2_frame_height(frame);
    uint32_t x = seed ? seed : 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; /* xorshift32: reproducible across platforms */
        x ^= x >> 17;
        x ^= x << 5;
        px[i] = (uint16_t)(x % ((uint32_t)max + 1));
    }
}

int testutil_read_png16(const char *path, sk2_frame_t **frame)
{
    /* The library's reader; only 16-bit grayscale is a depth frame here. */
    if (sk2_frame_read_png(path, SK2_PIXEL_DEPTH_MM16, frame, NULL, 0) != 0)
        return -1;
    if (sk2_frame_format(*frame) != SK2_PIXEL_DEPTH_MM16) {
        sk2_frame_destroy(frame);
        return -1;
    }
    return 0;
}
