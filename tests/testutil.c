/* Helpers shared by the test programs. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

sk2_frame_t *testutil_depth_frame(uint32_t width, uint32_t height)
{
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, height);
    if (!frame) {
        fprintf(stderr, "testutil: cannot make a %ux%u depth frame\n", width, height);
        abort();
    }
    return frame;
}

void testutil_fill(sk2_frame_t *frame, uint16_t value)
{
    uint16_t *px = sk2_frame_data16(frame);
    size_t count = (size_t)sk2_frame_width(frame) * sk2_frame_height(frame);
    for (size_t i = 0; i < count; i++)
        px[i] = value;
}

sk2_event_t *testutil_wait_event(sk2_client_t *client, sk2_event_type_t type, const char *device_id,
                                 int timeout_ms, int *seen)
{
    int64_t deadline = sk2_clock_mono_us() + timeout_ms * 1000LL;
    while (sk2_clock_mono_us() < deadline) {
        sk2_event_t *event = NULL;
        int rc = sk2_client_recv(client, &event, 50);
        if (rc == SK2_ETIMEDOUT)
            continue;
        if (rc != 0)
            return NULL;
        const char *id = sk2_event_device_id(event);
        if (sk2_event_type(event) == type && (!device_id || (id && strcmp(id, device_id) == 0)))
            return event;
        if (sk2_event_type(event) == SK2_EVENT_ERROR)
            fprintf(stderr, "testutil: event error: %s\n", sk2_event_reason(event));
        if (seen)
            seen[sk2_event_type(event)]++;
        sk2_event_destroy(&event);
    }
    return NULL;
}

size_t testutil_backend_index(const char *name)
{
    for (size_t i = 0; i < sk2_device_backend_count(); i++)
        if (strcmp(sk2_device_backend_name(i), name) == 0)
            return i;
    return SIZE_MAX;
}
