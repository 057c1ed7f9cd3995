/* A meter measures one received stream for the command line: frames, wire and decoded bytes,
 * sequence gaps, and latency percentiles over the most recent frames. Interval figures (fps,
 * MB/s) come from the difference between two snapshots. */
#ifndef SK2_TOOLS_METER_H
#define SK2_TOOLS_METER_H

#include <stddef.h>
#include <stdint.h>

/* Latency samples kept per stream; percentiles describe the most recent ones. */
#define METER_LATENCY_SAMPLES 8192

typedef struct {
    uint64_t frames;          /* frames received */
    uint64_t wire_bytes;      /* encoded bytes received */
    uint64_t raw_bytes;       /* decoded pixel bytes */
    uint64_t gaps;            /* frames missed, from jumps in sequence numbers */
    int64_t *latency_us;      /* ring of the last METER_LATENCY_SAMPLES latencies, or NULL */
    size_t latency_count;     /* samples written in all (the ring holds the last ones) */
    uint64_t mark_frames;     /* frames at the last mark */
    uint64_t mark_wire_bytes; /* wire bytes at the last mark */
} meter_t;

/* Counts one frame. latency_us < 0 means unknown and is not sampled. Returns 0, or -1 when the
 * latency ring cannot be allocated (the frame is still counted). */
int meter_add(meter_t *self, size_t wire_bytes, size_t raw_bytes, uint64_t gap, int64_t latency_us);

/* Latency percentile (0 < p <= 100) over the kept samples, in milliseconds; -1 if none. */
double meter_latency_ms(const meter_t *self, double p);

/* Wire/decoded ratio so far, 0 before any frame. */
double meter_ratio(const meter_t *self);

/* Frames and wire bytes since the last mark; sets a new mark. */
void meter_mark(meter_t *self, uint64_t *frames, uint64_t *wire_bytes);

void meter_free(meter_t *self);

#endif
