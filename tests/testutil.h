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

#endif
