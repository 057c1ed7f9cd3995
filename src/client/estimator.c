/* The clock estimator (estimator.h). Each exchange bounds the offset between the two clocks:
 * whatever the two legs of the round trip took, the true offset lies within half the round
 * trip of the NTP midpoint formula. Delays are what spoil an exchange, and they only ever add
 * to the round trip, so the sample with the smallest round trip is the best one: a min-RTT
 * filter over a window, as NTP's clock filter and PTP-less camera rigs use. Older samples
 * lose value as the clocks wander apart, so the choice weighs their age too. Drift comes from
 * a least-squares line through the window's good samples once they span long enough; it then
 * carries the chosen sample's offset to any moment, and the most its slope can be wrong by
 * (given each sample's bound) replaces the assumed wander in the error bound. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "client/estimator.h"
#include "sk2/error.h"

void sk2_estimator_reset(sk2_estimator_t *self)
{
    uint64_t rejected = self->rejected, steps = self->steps;
    memset(self, 0, sizeof *self);
    self->rejected = rejected;
    self->steps = steps;
}

static const sk2_clock_sample_t *s_sample(const sk2_estimator_t *self, size_t i)
{
    return &self->ring[(self->head + i) % SK2_ESTIMATOR_WINDOW];
}

/* Fits offset = a + b * local through the samples whose round trip is within twice the
 * window's smallest (plus 100 µs, the noise of a loopback scheduler): a late leg makes an
 * offset wrong by up to half its round trip, so the slow exchanges are left out. */
static void s_fit_drift(sk2_estimator_t *self)
{
    self->has_drift = false;
    self->drift_ppm = 0;
    self->drift_error_ppm = 0;
    if (self->count < 4)
        return;
    int64_t min_rtt = INT64_MAX;
    for (size_t i = 0; i < self->count; i++)
        if (s_sample(self, i)->rtt_us < min_rtt)
            min_rtt = s_sample(self, i)->rtt_us;
    int64_t limit = 2 * min_rtt + 100;
    /* Centred on the first good sample so that the sums stay well inside a double's precision
     * (µs since 1970 squared would not). */
    const sk2_clock_sample_t *origin = NULL;
    double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, first = 0, last = 0;
    for (size_t i = 0; i < self->count; i++) {
        const sk2_clock_sample_t *s = s_sample(self, i);
        if (s->rtt_us > limit)
            continue;
        if (!origin)
            origin = s;
        double x = (double)(s->local_us - origin->local_us);
        double y = (double)(s->offset_us - origin->offset_us);
        first = n == 0 ? x : first;
        last = x;
        n++;
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    if (n < 4 || last - first < SK2_ESTIMATOR_DRIFT_SPAN_US)
        return;
    double mx = sx / n, my = sy / n;
    double vxx = sxx - n * mx * mx, vxy = sxy - n * mx * my;
    if (vxx <= 0)
        return;
    double slope = vxy / vxx;
    /* How wrong the slope can be: each offset is off by at most half its round trip, and the
     * least-squares slope weighs offset i by (x_i - mean) / vxx, so the worst case adds those
     * halves with the weights' magnitudes. A strict bound while the drift is steady, unlike a
     * standard error, which a few unlucky samples make far too small. */
    double worst = 0;
    for (size_t i = 0; i < self->count; i++) {
        const sk2_clock_sample_t *s = s_sample(self, i);
        if (s->rtt_us > limit)
            continue;
        double x = (double)(s->local_us - origin->local_us);
        worst += fabs(x - mx) * (double)s->rtt_us / 2;
    }
    double ppm = slope * 1e6;
    if (fabs(ppm) > SK2_ESTIMATOR_DRIFT_MAX_PPM)
        return;
    self->has_drift = true;
    self->drift_ppm = ppm;
    self->drift_error_ppm = worst / vxx * 1e6;
}

/* The drift uncertainty that ages a sample's bound, ppm. */
static double s_wander_ppm(const sk2_estimator_t *self)
{
    if (!self->has_drift)
        return SK2_ESTIMATOR_WANDER_PPM;
    return self->drift_error_ppm > 1.0 ? self->drift_error_ppm : 1.0;
}

sk2_estimate_t sk2_estimator_at(const sk2_estimator_t *self, int64_t now_us)
{
    sk2_estimate_t estimate = {.is_valid = false};
    if (self->count == 0)
        return estimate;
    double wander = s_wander_ppm(self) * 1e-6;
    const sk2_clock_sample_t *best = NULL;
    double best_bound = INFINITY;
    for (size_t i = 0; i < self->count; i++) {
        const sk2_clock_sample_t *s = s_sample(self, i);
        double age = fabs((double)(now_us - s->local_us));
        double bound = (double)s->rtt_us / 2 + wander * age;
        if (bound <= best_bound) { /* the newer of equals */
            best = s;
            best_bound = bound;
        }
    }
    double drift = self->has_drift ? self->drift_ppm * 1e-6 : 0;
    estimate.is_valid = true;
    estimate.offset_us =
        best->offset_us + (int64_t)llround(drift * (double)(now_us - best->local_us));
    estimate.rtt_us = best->rtt_us;
    estimate.error_us = (int64_t)ceil(best_bound);
    estimate.has_drift = self->has_drift;
    estimate.drift_ppm = self->has_drift ? self->drift_ppm : 0;
    return estimate;
}

int sk2_estimator_add(sk2_estimator_t *self, int64_t t1_us, int64_t t2_us, int64_t t3_us,
                      int64_t t4_us)
{
    /* Times on the wire are bounded to 2^53 (proto/clock.h), so none of this overflows. */
    int64_t rtt = (t4_us - t1_us) - (t3_us - t2_us);
    if (t4_us < t1_us || t3_us < t2_us || rtt < 0) {
        self->rejected++;
        return SK2_EINVAL;
    }
    sk2_clock_sample_t sample = {
        .local_us = t1_us + (t4_us - t1_us) / 2,
        .offset_us = ((t2_us - t1_us) + (t3_us - t4_us)) / 2,
        .rtt_us = rtt,
    };
    /* Two true bounds always overlap; when these do not, a clock stepped between them. */
    sk2_estimate_t now = sk2_estimator_at(self, sample.local_us);
    if (now.is_valid && llabs(sample.offset_us - now.offset_us) >
                            sample.rtt_us / 2 + now.error_us + SK2_ESTIMATOR_STEP_MARGIN_US) {
        sk2_estimator_reset(self);
        self->steps++;
    }
    if (self->count == SK2_ESTIMATOR_WINDOW) {
        self->ring[self->head] = sample;
        self->head = (self->head + 1) % SK2_ESTIMATOR_WINDOW;
    } else {
        self->ring[(self->head + self->count++) % SK2_ESTIMATOR_WINDOW] = sample;
    }
    self->samples++;
    s_fit_drift(self);
    return 0;
}
