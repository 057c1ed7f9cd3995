/* Frames: allocation limits, ownership and metadata. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk2/sk2.h"
#include "testutil.h"

static void test_new_frame_is_zeroed_with_its_geometry(void **state)
{
    (void)state;
    sk2_frame_t *f = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 512, 424);
    assert_non_null(f);
    assert_int_equal(sk2_frame_width(f), 512);
    assert_int_equal(sk2_frame_height(f), 424);
    assert_int_equal(sk2_frame_stride(f), 1024);
    assert_int_equal(sk2_frame_size(f), 512 * 424 * 2);
    assert_int_equal(sk2_frame_kind(f), SK2_STREAM_DEPTH);
    assert_int_equal(sk2_frame_format(f), SK2_PIXEL_DEPTH_MM16);
    assert_int_equal(sk2_frame_sequence(f), 0);
    const uint16_t *px = sk2_frame_cdata16(f);
    assert_non_null(px);
    for (size_t i = 0; i < 512 * 424; i++)
        assert_int_equal(px[i], 0);
    sk2_frame_destroy(&f);
    assert_null(f);
}

static void test_impossible_frames_are_refused(void **state)
{
    (void)state;
    assert_null(sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 0, 10));
    assert_null(sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 10, 0));
    assert_null(sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, SK2_FRAME_MAX_WIDTH + 1, 1));
    assert_null(sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 1, SK2_FRAME_MAX_HEIGHT + 1));
    assert_null(sk2_frame_new((sk2_stream_kind_t)99, SK2_PIXEL_DEPTH_MM16, 4, 4));
    assert_null(sk2_frame_new(SK2_STREAM_DEPTH, (sk2_pixel_format_t)99, 4, 4));
}

static void test_destroy_is_idempotent(void **state)
{
    (void)state;
    sk2_frame_t *f = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 3, 3);
    sk2_frame_destroy(&f);
    sk2_frame_destroy(&f);
    sk2_frame_destroy(NULL);
    assert_null(f);
}

static void test_dup_copies_pixels_and_metadata(void **state)
{
    (void)state;
    sk2_frame_t *f = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 7, 5);
    testutil_fill_noise(f, 42, 0xffff);
    sk2_frame_set_sequence(f, 99);
    sk2_frame_set_device_timestamp_us(f, 123456);
    sk2_frame_set_capture_time_us(f, 1700000000000000LL);
    sk2_frame_t *g = sk2_frame_dup(f);
    assert_non_null(g);
    assert_int_equal(sk2_frame_sequence(g), 99);
    assert_int_equal(sk2_frame_device_timestamp_us(g), 123456);
    assert_int_equal(sk2_frame_capture_time_us(g), 1700000000000000LL);
    assert_memory_equal(sk2_frame_cdata(f), sk2_frame_cdata(g), sk2_frame_size(f));
    assert_ptr_not_equal(sk2_frame_cdata(f), sk2_frame_cdata(g));
    sk2_frame_destroy(&f);
    sk2_frame_destroy(&g);
}

static void test_only_16_bit_formats_expose_16_bit_pixels(void **state)
{
    (void)state;
    sk2_frame_t *f = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 3, 2);
    assert_null(sk2_frame_data16(f));
    assert_int_equal(sk2_frame_stride(f), 9);
    sk2_frame_destroy(&f);
    assert_int_equal(sk2_pixel_format_bytes(SK2_PIXEL_BGRA32), 4);
    assert_string_equal(sk2_pixel_format_name(SK2_PIXEL_DEPTH_MM16), "depth_mm16");
    assert_string_equal(sk2_stream_kind_name(SK2_STREAM_IR), "ir");
    assert_string_equal(sk2_stream_kind_name((sk2_stream_kind_t)0), "unknown");
}

static void test_errors_have_stable_numbers_and_text(void **state)
{
    (void)state;
    assert_int_equal(SK2_EINVAL, -1);
    assert_int_equal(SK2_ELOST, -19);
    assert_string_equal(sk2_strerror(SK2_OK), "success");
    assert_string_equal(sk2_strerror(SK2_EPROTO), "protocol error");
    assert_string_equal(sk2_strerror(12345), "unknown error");
    assert_string_equal(sk2_error_name(SK2_ETIMEDOUT), "SK2_ETIMEDOUT");
}

static void test_clocks_move_forward(void **state)
{
    (void)state;
    int64_t a = sk2_clock_mono_us();
    int64_t b = sk2_clock_mono_us();
    assert_true(b >= a);
    assert_true(sk2_clock_wall_us() > 1600000000000000LL); /* after 2020 */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_frame_is_zeroed_with_its_geometry),
        cmocka_unit_test(test_impossible_frames_are_refused),
        cmocka_unit_test(test_destroy_is_idempotent),
        cmocka_unit_test(test_dup_copies_pixels_and_metadata),
        cmocka_unit_test(test_only_16_bit_formats_expose_16_bit_pixels),
        cmocka_unit_test(test_errors_have_stable_numbers_and_text),
        cmocka_unit_test(test_clocks_move_forward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
