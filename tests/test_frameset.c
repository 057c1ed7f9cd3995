/* Matched framesets: the matcher on synthetic capture times whose truth is known (members in
 * step, jitter within and beyond the tolerance, a member at half the rate, one that stops and
 * the queue bound, frames carried through, bad arguments). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "sk2/sk2.h"

#define T0 1700000000000000LL /* µs since 1970: any time will do */

static sk2_matcher_t *s_matcher(size_t members, double fps)
{
    sk2_matcher_t *m = sk2_matcher_new();
    assert_non_null(m);
    static const char *const ids[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < members; i++)
        assert_int_equal(sk2_matcher_add(m, NULL, ids[i], SK2_STREAM_DEPTH, fps), (int)i);
    return m;
}

/* Takes every complete frameset; returns how many, adding their spreads to *spread_sum. */
static size_t s_drain(sk2_matcher_t *m, int64_t *spread_max)
{
    size_t n = 0;
    sk2_frameset_t *set;
    while (sk2_matcher_next(m, &set) == 0) {
        assert_int_equal(sk2_frameset_size(set), sk2_matcher_members(m));
        int64_t spread = sk2_frameset_spread_us(set);
        assert_true(spread >= 0 && spread <= sk2_matcher_tolerance_us(m));
        if (spread_max && spread > *spread_max)
            *spread_max = spread;
        sk2_frameset_destroy(&set);
        assert_null(set);
        n++;
    }
    return n;
}

static void test_in_step(void **state)
{
    (void)state;
    sk2_matcher_t *m = s_matcher(3, 30);
    assert_int_equal(sk2_matcher_tolerance_us(m), 16667);
    int64_t spread = 0;
    size_t sets = 0;
    /* Three members 30 fps apart by up to 2 ms, arriving in a shuffled order per capture. */
    for (int k = 0; k < 100; k++) {
        int64_t t = T0 + k * 33333LL;
        assert_int_equal(sk2_matcher_push(m, (size_t)(k % 3), t + 2000, NULL), 0);
        assert_int_equal(sk2_matcher_push(m, (size_t)((k + 1) % 3), t, NULL), 0);
        assert_int_equal(sk2_matcher_push(m, (size_t)((k + 2) % 3), t + 1000, NULL), 0);
        sets += s_drain(m, &spread);
    }
    /* The last capture waits for a frame of its members at least as late (one could be
     * nearer), so all but at most one are out. */
    assert_true(sets >= 99);
    assert_int_equal(sk2_matcher_matched(m), sets);
    assert_int_equal(spread, 2000);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sk2_matcher_unmatched(m, i), 0);
        assert_int_equal(sk2_matcher_pushed(m, i), 100);
    }
    sk2_matcher_destroy(&m);
    assert_null(m);
}

static void test_tolerance(void **state)
{
    (void)state;
    /* b lags a by 5 ms: matched with a tolerance of 6 ms, never with 4 ms, where each frame is
     * counted unmatched instead. */
    for (int pass = 0; pass < 2; pass++) {
        sk2_matcher_t *m = s_matcher(2, 30);
        assert_int_equal(sk2_matcher_set_tolerance_us(m, pass == 0 ? 6000 : 4000), 0);
        assert_int_equal(sk2_matcher_tolerance_us(m), pass == 0 ? 6000 : 4000);
        size_t sets = 0;
        for (int k = 0; k < 50; k++) {
            int64_t t = T0 + k * 33333LL;
            assert_int_equal(sk2_matcher_push(m, 0, t, NULL), 0);
            assert_int_equal(sk2_matcher_push(m, 1, t + 5000, NULL), 0);
            sets += s_drain(m, NULL);
        }
        if (pass == 0) {
            assert_true(sets >= 49);
            assert_int_equal(sk2_matcher_unmatched(m, 0) + sk2_matcher_unmatched(m, 1), 0);
        } else {
            assert_int_equal(sets, 0);
            assert_true(sk2_matcher_unmatched(m, 0) >= 49);
            assert_true(sk2_matcher_unmatched(m, 1) >= 48);
        }
        /* Nothing held beyond what is still undecided. */
        assert_true(sk2_matcher_queued(m) <= 4);
        sk2_matcher_destroy(&m);
    }
}

static void test_half_rate(void **state)
{
    (void)state;
    /* a and b at 30 fps, c at 15 fps on the even captures: c pairs with its own capture (not
     * the one 33 ms off, although within the 33 ms default tolerance), and the odd frames of a
     * and b are counted unmatched. */
    sk2_matcher_t *m = sk2_matcher_new();
    assert_non_null(m);
    assert_int_equal(sk2_matcher_add(m, NULL, "a", SK2_STREAM_DEPTH, 30), 0);
    assert_int_equal(sk2_matcher_add(m, NULL, "b", SK2_STREAM_DEPTH, 30), 1);
    assert_int_equal(sk2_matcher_add(m, NULL, "c", SK2_STREAM_DEPTH, 15), 2);
    assert_int_equal(sk2_matcher_tolerance_us(m), 33333);
    int64_t spread = 0;
    size_t sets = 0;
    for (int k = 0; k < 100; k++) {
        int64_t t = T0 + k * 33333LL;
        /* c, when it has a frame, sometimes arrives first, sometimes last. */
        if (k % 2 == 0 && k % 4 == 0)
            assert_int_equal(sk2_matcher_push(m, 2, t + 300, NULL), 0);
        assert_int_equal(sk2_matcher_push(m, 0, t, NULL), 0);
        assert_int_equal(sk2_matcher_push(m, 1, t + 100, NULL), 0);
        if (k % 2 == 0 && k % 4 != 0)
            assert_int_equal(sk2_matcher_push(m, 2, t + 300, NULL), 0);
        sets += s_drain(m, &spread);
    }
    assert_true(sets >= 49 && sets <= 50);
    assert_int_equal(spread, 300); /* never the neighbouring capture */
    assert_int_equal(sk2_matcher_unmatched(m, 2), 0);
    assert_true(sk2_matcher_unmatched(m, 0) >= 49 && sk2_matcher_unmatched(m, 0) <= 50);
    assert_true(sk2_matcher_unmatched(m, 1) >= 49 && sk2_matcher_unmatched(m, 1) <= 50);
    sk2_matcher_destroy(&m);
}

static void test_bound_and_stop(void **state)
{
    (void)state;
    /* b stops after 10 frames: a's queue stays within the bound, the newest win, and every
     * frame of a is matched, unmatched or still queued. */
    sk2_matcher_t *m = s_matcher(2, 30);
    assert_int_equal(sk2_matcher_set_queue_frames(m, 4), 0);
    size_t sets = 0;
    for (int k = 0; k < 60; k++) {
        int64_t t = T0 + k * 33333LL;
        sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4, 2);
        assert_non_null(frame);
        sk2_frame_set_sequence(frame, (uint64_t)k);
        assert_int_equal(sk2_matcher_push(m, 0, t, frame), 0);
        if (k < 10)
            assert_int_equal(sk2_matcher_push(m, 1, t, NULL), 0);
        sets += s_drain(m, NULL);
        assert_true(sk2_matcher_queued(m) <= 8);
    }
    assert_true(sets >= 9 && sets <= 10);
    assert_int_equal(sk2_matcher_matched(m) + sk2_matcher_unmatched(m, 0) + 4, 60);
    /* When b comes back, a's newest frames are there for it: the oldest were dropped. */
    int64_t t = T0 + 60 * 33333LL;
    assert_int_equal(sk2_matcher_push(m, 0, t, NULL), 0);
    assert_int_equal(sk2_matcher_push(m, 1, t, NULL), 0);
    sk2_frameset_t *set;
    assert_int_equal(sk2_matcher_next(m, &set), 0);
    assert_int_equal(sk2_frameset_time_us(set, 0), t);
    assert_int_equal(sk2_frameset_time_us(set, 1), t);
    assert_int_equal(sk2_frameset_time_us(set, 2), -1);
    assert_null(sk2_frameset_frame(set, 0)); /* pushed without one */
    sk2_frameset_destroy(&set);
    assert_int_equal(sk2_matcher_unmatched(m, 0), 60 - sets);
    /* Lowering the bound counts what is over it. */
    assert_int_equal(sk2_matcher_push(m, 0, t + 33333, NULL), 0);
    assert_int_equal(sk2_matcher_push(m, 0, t + 66666, NULL), 0);
    assert_int_equal(sk2_matcher_set_queue_frames(m, 1), 0);
    assert_int_equal(sk2_matcher_queued(m), 1);
    assert_int_equal(sk2_matcher_unmatched(m, 0), 61 - sets);
    sk2_matcher_destroy(&m); /* frees the frames still queued (ASan checks) */
}

static void test_frames_carried(void **state)
{
    (void)state;
    /* Depth, IR and colour of one device are three members; the frames come out with their
     * set, in member order, and can be taken. */
    sk2_matcher_t *m = sk2_matcher_new();
    assert_non_null(m);
    static const sk2_stream_kind_t kinds[] = {SK2_STREAM_DEPTH, SK2_STREAM_IR, SK2_STREAM_COLOR};
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sk2_matcher_add(m, NULL, "cam", kinds[i], 30), (int)i);
    assert_int_equal(sk2_matcher_member_kind(m, 2), SK2_STREAM_COLOR);
    assert_string_equal(sk2_matcher_member_device(m, 1), "cam");
    assert_null(sk2_matcher_member_device(m, 3));
    for (int k = 0; k < 2; k++)
        for (size_t i = 0; i < 3; i++) {
            sk2_frame_t *frame = sk2_frame_new(kinds[i], SK2_PIXEL_DEPTH_MM16, 2, 2);
            assert_non_null(frame);
            sk2_frame_set_sequence(frame, (uint64_t)(10 * k + i));
            assert_int_equal(sk2_matcher_push(m, 2 - i, T0 + k * 33333LL, frame), 0);
        }
    sk2_frameset_t *set;
    assert_int_equal(sk2_matcher_next(m, &set), 0);
    assert_int_equal(sk2_frameset_spread_us(set), 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(sk2_frame_sequence(sk2_frameset_frame(set, i)), 2 - i);
    sk2_frame_t *taken = sk2_frameset_take_frame(set, 1);
    assert_non_null(taken);
    assert_null(sk2_frameset_frame(set, 1));
    assert_null(sk2_frameset_take_frame(set, 1));
    sk2_frame_destroy(&taken);
    sk2_frameset_destroy(&set);
    /* The second capture has no later frame behind it yet, but every member's oldest is the
     * anchor's own time: it is complete. */
    assert_int_equal(sk2_matcher_next(m, &set), 0);
    assert_int_equal(sk2_frame_sequence(sk2_frameset_frame(set, 0)), 12);
    sk2_frameset_destroy(&set);
    assert_int_equal(sk2_matcher_next(m, &set), SK2_EAGAIN);
    assert_null(set);
    sk2_matcher_destroy(&m);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    sk2_matcher_t *m = sk2_matcher_new();
    assert_non_null(m);
    sk2_frameset_t *set = NULL;
    assert_int_equal(sk2_matcher_next(m, &set), SK2_EINVAL); /* no members */
    char long_id[SK2_DEVICE_ID_MAX + 2];
    memset(long_id, 'x', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    assert_int_equal(sk2_matcher_add(NULL, NULL, "a", SK2_STREAM_DEPTH, 30), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, NULL, SK2_STREAM_DEPTH, 30), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, "", SK2_STREAM_DEPTH, 30), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, long_id, SK2_STREAM_DEPTH, 30), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, "a", 0, 30), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, "a", 99, 30), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, "a", SK2_STREAM_DEPTH, -1), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, "a", SK2_STREAM_DEPTH, NAN), SK2_EINVAL);
    assert_int_equal(sk2_matcher_add(m, NULL, "a", SK2_STREAM_DEPTH, 1001), SK2_EINVAL);
    assert_int_equal(sk2_matcher_members(m), 0);
    /* Unknown rates: the fallback tolerance. */
    assert_int_equal(sk2_matcher_add(m, NULL, "a", SK2_STREAM_DEPTH, 0), 0);
    assert_int_equal(sk2_matcher_tolerance_us(m), SK2_MATCHER_TOLERANCE_FALLBACK_US);
    assert_int_equal(sk2_matcher_add(m, NULL, "a", SK2_STREAM_DEPTH, 30), SK2_EEXIST);
    assert_int_equal(sk2_matcher_set_tolerance_us(m, -1), SK2_EINVAL);
    assert_int_equal(sk2_matcher_set_tolerance_us(m, SK2_MATCHER_TOLERANCE_MAX_US + 1), SK2_EINVAL);
    assert_int_equal(sk2_matcher_tolerance_us(m), SK2_MATCHER_TOLERANCE_FALLBACK_US);
    assert_int_equal(sk2_matcher_set_queue_frames(m, 0), SK2_EINVAL);
    assert_int_equal(sk2_matcher_set_queue_frames(m, SK2_MATCHER_QUEUE_MAX + 1), SK2_EINVAL);
    assert_int_equal(sk2_matcher_push(m, 1, T0, NULL), SK2_EINVAL);
    assert_int_equal(sk2_matcher_push(m, 0, -5, NULL), SK2_EINVAL);
    assert_int_equal(sk2_matcher_next(m, NULL), SK2_EINVAL);
    assert_int_equal(sk2_matcher_push_event(m, NULL, NULL), SK2_EINVAL);
    assert_int_equal(sk2_matcher_queued(m), 0);
    assert_int_equal(sk2_matcher_pushed(m, 0), 0);
    assert_int_equal(sk2_matcher_push(m, 0, T0, NULL), 0);
    /* Members are fixed once frames flow. */
    assert_int_equal(sk2_matcher_add(m, NULL, "b", SK2_STREAM_DEPTH, 30), SK2_ESTATE);
    {
        sk2_matcher_t *big = sk2_matcher_new();
        assert_non_null(big);
        char id[16];
        for (int j = 0; j < SK2_MATCHER_MEMBERS_MAX; j++) {
            snprintf(id, sizeof id, "d%d", j);
            assert_int_equal(sk2_matcher_add(big, NULL, id, SK2_STREAM_DEPTH, 30), j);
        }
        assert_int_equal(sk2_matcher_add(big, NULL, "one-more", SK2_STREAM_DEPTH, 30), SK2_ELIMIT);
        sk2_matcher_destroy(&big);
    }
    sk2_matcher_destroy(&m);
    sk2_matcher_destroy(&m); /* safe on NULL */
    sk2_matcher_destroy(NULL);
    sk2_frameset_destroy(NULL);
    assert_int_equal(sk2_frameset_size(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_in_step),        cmocka_unit_test(test_tolerance),
        cmocka_unit_test(test_half_rate),      cmocka_unit_test(test_bound_and_stop),
        cmocka_unit_test(test_frames_carried), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
