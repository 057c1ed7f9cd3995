/* The clock estimator: what the client knows of one server's clock from the four times of each
 * clock exchange (proto/clock.h). Pure arithmetic on a window of samples, so it can be tested
 * on synthetic exchanges; the client feeds it and asks it, on the caller's thread. */
#ifndef SK2_CLIENT_ESTIMATOR_H
#define SK2_CLIENT_ESTIMATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SK2_ESTIMATOR_WINDOW 32 /* samples kept: at one per 2 s, about a minute */
/* How fast a clock whose drift is not yet measured is assumed to wander from ours, ppm: the
 * tolerance PC crystals are sold with. It ages the error bound of older samples. */
#define SK2_ESTIMATOR_WANDER_PPM 50.0
/* Drift is fitted once the samples span this long (µs): over shorter spans the round trips'
 * noise outweighs what a few ppm add up to. */
#define SK2_ESTIMATOR_DRIFT_SPAN_US 20000000
/* Drift above this many ppm is taken for a fit gone wrong (a clock stepped inside the window)
 * and not used. */
#define SK2_ESTIMATOR_DRIFT_MAX_PPM 1000.0
/* A sample whose offset interval lies this far (µs) outside the estimate's says one of the two
 * clocks stepped (or the server is another instance): the window starts again from it. */
#define SK2_ESTIMATOR_STEP_MARGIN_US 1000

typedef struct {
    int64_t local_us;  /* the exchange's midpoint in our clock, (t1 + t4) / 2 */
    int64_t offset_us; /* server clock - our clock, ((t2 - t1) + (t3 - t4)) / 2 */
    int64_t rtt_us;    /* the time on the wire, (t4 - t1) - (t3 - t2) */
} sk2_clock_sample_t;

typedef struct {
    sk2_clock_sample_t ring[SK2_ESTIMATOR_WINDOW]; /* the newest samples */
    size_t head;                                   /* index of the oldest */
    size_t count;                                  /* samples in the ring */
    uint64_t samples;                              /* accepted since the last reset */
    uint64_t rejected;                             /* impossible exchanges refused */
    uint64_t steps;                                /* restarts after a step */
    bool has_drift;                                /* drift_ppm is fitted */
    double drift_ppm;                              /* d(offset)/d(our time), ppm */
    double drift_error_ppm;                        /* the most drift_ppm can be off by, ppm */
} sk2_estimator_t;

/* What the estimator says at one moment of our clock. */
typedef struct {
    bool is_valid;     /* at least one sample */
    int64_t offset_us; /* server clock - our clock at that moment */
    int64_t rtt_us;    /* round trip of the sample the offset rests on */
    int64_t error_us;  /* bound on |offset_us - truth|: rtt_us / 2 plus wander since */
    bool has_drift;    /* drift_ppm fitted (else 0) */
    double drift_ppm;  /* how much faster the server's clock runs, ppm */
} sk2_estimate_t;

/* Forgets every sample (a new server, or a reconnection). */
void sk2_estimator_reset(sk2_estimator_t *self);

/* Adds one exchange (times in µs: t1, t4 ours, t2, t3 the server's). Returns 0, or SK2_EINVAL
 * for an impossible one (t4 before t1, t3 before t2, a negative round trip), which is counted
 * and changes nothing else. A sample that contradicts the estimate beyond both their bounds
 * (a clock stepped) restarts the window from it. */
int sk2_estimator_add(sk2_estimator_t *self, int64_t t1_us, int64_t t2_us, int64_t t3_us,
                      int64_t t4_us);

/* The estimate at now_us (our clock): of the samples in the window, the one with the smallest
 * error bound at now_us (half its round trip, plus its age times the drift's uncertainty, or
 * SK2_ESTIMATOR_WANDER_PPM before drift is known), carried to now_us with the fitted drift. */
sk2_estimate_t sk2_estimator_at(const sk2_estimator_t *self, int64_t now_us);

#endif
