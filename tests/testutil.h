/* Helpers shared by the test programs: data files and small image tools. */
#ifndef SK2_TESTUTIL_H
#define SK2_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

#include "sk2/sk2.h"

/* Reads a whole file; returns a malloc'd buffer (caller frees) and its size, or NULL. */
uint8_t *testutil_read_file(const char *path, size_t *size);

/* The path of a file under tests/data (static buffer, valid until the next call). */
const char *testutil_data_path(const char *name);

/* Fills a 16-bit frame with deterministic pseudo-random values in [0, max]. */
void testutil_fill_noise(sk2_frame_t *frame, uint32_t seed, uint16_t max);

/* Reads a 16-bit grayscale PNG into a new SK2_PIXEL_DEPTH_MM16 depth frame (caller destroys
 * it), pixels in host order, through sk2_frame_read_png. Returns 0, or -1 (and *frame NULL) if the
 * file cannot be read or is not a non-interlaced 16-bit grayscale PNG. */
int testutil_read_png16(const char *path, sk2_frame_t **frame);

/* A new depth frame (SK2_PIXEL_DEPTH_MM16) of this size; aborts the test program if it cannot be
 * made (the sizes tests ask for are valid). */
sk2_frame_t *testutil_depth_frame(uint32_t width, uint32_t height);

/* Sets every pixel of a 16-bit frame to value. */
void testutil_fill(sk2_frame_t *frame, uint16_t value);

/* Receives events until one of `type` arrives (for device_id's device, unless NULL) and
 * returns it (caller destroys), or NULL after timeout_ms or on a receive error. Other events
 * are counted into seen[their type] (if seen is not NULL), ERROR reasons printed, and dropped. */
sk2_event_t *testutil_wait_event(sk2_client_t *client, sk2_event_type_t type, const char *device_id,
                                 int timeout_ms, int *seen);

/* The registry index of the device backend called name, or SIZE_MAX if it is not built in. */
size_t testutil_backend_index(const char *name);

#endif
