/* The "stamp" device: a benchmark-only backend that renders the mock scene and writes, into
 * the first pixels of each frame, when and in which order the frame was made. A client reads
 * them back after depth12 (which keeps the low 12 bits of every pixel) to measure end-to-end
 * latency and count the frames it missed. */
#ifndef SK2_BENCH_STAMP_DEVICE_H
#define SK2_BENCH_STAMP_DEVICE_H

#include <stdint.h>

#include "sk2/device.h"

/* A new, closed stamp device producing 512 x 424 depth frames at `fps` (0: as fast as
 * possible), owned by the caller; NULL on out of memory or a rate sk2 refuses. */
sk2_device_t *stamp_device_new(double fps);

/* Writes the stamp into the first STAMP_PIXELS pixels, 12 bits each: capture time in
 * microseconds since the epoch (low 48 bits), then the frame's sequence number (low 36). */
#define STAMP_PIXELS 7
void stamp_write(uint16_t *pixels, int64_t capture_time_us, uint64_t sequence);

/* Reads a stamp back from decoded pixels (only their low 12 bits count). *age_us receives
 * now_us - capture time, exact for any age below 2^48 us (8.9 years), and *sequence the low
 * 36 bits of the sequence number. */
void stamp_read(const uint16_t *pixels, int64_t now_us, int64_t *age_us, uint64_t *sequence);

#endif
