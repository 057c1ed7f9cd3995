/* Per-stream measurement for `sk2 stream`: counters plus a ring of recent latencies, sorted only
 * when a percentile is asked for (once per status line), so counting a frame stays O(1). */
#include "meter.h"

#include <stdlib.h>
#include <string.h>

int meter_add(meter_t *self, size_t wire_bytes, size_t raw_bytes, uint64_t gap, int64_t latency_us)
{
    self->frames++;
    self->wire_bytes += wire_bytes;
    self->raw_bytes += raw_bytes;
    self->gaps += gap;
    if (latency_us < 0)
        return 0;
    if (!self->latency_us) {
        self->latency_us = malloc(METER_LATENCY_SAMPLES * sizeof *self->latency_us);
        if (!self->latency_us)
            return -1;
    }
    self->latency_us[self->latency_count % METER_LATENCY_SAMPLES] = latency_us;
    self->latency_count++;
    return 0;
}

static int s_compare(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

double meter_latency_ms(const meter_t *self, double p)
{
    size_t n =
        self->latency_count < METER_LATENCY_SAMPLES ? self->latency_count : METER_LATENCY_SAMPLES;
    if (n == 0 || !(p > 0 && p <= 100))
        return -1.0;
    int64_t *sorted = malloc(n * sizeof *sorted);
    if (!sorted)
        return -1.0;
    memcpy(sorted, self->latency_us, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, s_compare);
    /* Nearest rank: the smallest sample with at least p% of the samples at or below it. */
    size_t rank = (size_t)((p / 100.0) * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    double ms = (double)sorted[(rank > n ? n : rank) - 1] / 1000.0;
    free(sorted);
    return ms;
}

double meter_ratio(const meter_t *self)
{
    return self->wire_bytes > 0 ? (double)self->raw_bytes / (double)self->wire_bytes : 0.0;
}

void meter_mark(meter_t *self, uint64_t *frames, uint64_t *wire_bytes)
{
    *frames = self->frames - self->mark_frames;
    *wire_bytes = self->wire_bytes - self->mark_wire_bytes;
    self->mark_frames = self->frames;
    self->mark_wire_bytes = self->wire_bytes;
}

void meter_free(meter_t *self)
{
    free(self->latency_us);
    memset(self, 0, sizeof *self);
}
