/* Codecs beyond depth12: raw, rvl, sk2d, jpeg and png, on awkward, hostile, hand-derived and
 * real frames, and the encoder options.
 *
 * Usage in short: pick a lossless codec for depth, size a buffer with its bound, encode,
 * decode into a frame of the same shape:
 *
 *     const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_SK2D);
 *     size_t cap = sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, 320, 288);
 *     sk2_codec_encode(codec, frame, buf, cap, &len);
 *     sk2_codec_decode(codec, buf, len, same_shape_frame);
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>
#include <zlib.h>

#include "sk2/sk2.h"
#include "testutil.h"

static const char *const s_lossless[] = {SK2_CODEC_RAW, SK2_CODEC_RVL, SK2_CODEC_SK2D,
                                         SK2_CODEC_PNG};
#define S_LOSSLESS_COUNT (sizeof s_lossless / sizeof s_lossless[0])

static const sk2_codec_t *s_codec(const char *name)
{
    const sk2_codec_t *codec = sk2_codec_find(name);
    assert_non_null(codec);
    return codec;
}

/* Encodes with a bound-sized buffer; the caller frees the result. */
static uint8_t *s_encode(const sk2_codec_t *codec, const sk2_frame_t *frame, size_t *len)
{
    size_t cap = sk2_codec_encode_bound(codec, sk2_frame_format(frame), sk2_frame_width(frame),
                                        sk2_frame_height(frame));
    assert_true(cap > 0);
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    *len = 0;
    assert_int_equal(sk2_codec_encode(codec, frame, buf, cap, len), 0);
    assert_true(*len > 0 && *len <= cap);
    return buf;
}

/* Decodes from a buffer of exactly `len` bytes, so that AddressSanitizer sees any overread. */
static int s_decode_exact(const sk2_codec_t *codec, const uint8_t *src, size_t len,
                          sk2_frame_t *frame)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, src, len);
    int rc = sk2_codec_decode(codec, copy, len, frame);
    free(copy);
    return rc;
}

/* Round trip through one codec, bit-exact; returns the encoded size. */
static size_t s_assert_round_trip(const sk2_codec_t *codec, const sk2_frame_t *frame)
{
    size_t len;
    uint8_t *buf = s_encode(codec, frame, &len);
    sk2_frame_t *back = sk2_frame_new(sk2_frame_kind(frame), sk2_frame_format(frame),
                                      sk2_frame_width(frame), sk2_frame_height(frame));
    assert_non_null(back);
    memset(sk2_frame_data(back), 0xa5, sk2_frame_size(back));
    int rc = s_decode_exact(codec, buf, len, back);
    if (rc != 0)
        fail_msg("%s: %ux%u decode failed: %s", sk2_codec_name(codec), sk2_frame_width(frame),
                 sk2_frame_height(frame), sk2_strerror(rc));
    if (memcmp(sk2_frame_cdata(frame), sk2_frame_cdata(back), sk2_frame_size(frame)) != 0)
        fail_msg("%s: %ux%u did not come back bit-exact", sk2_codec_name(codec),
                 sk2_frame_width(frame), sk2_frame_height(frame));
    sk2_frame_destroy(&back);
    free(buf);
    return len;
}

static void s_round_trip_all(const sk2_frame_t *frame)
{
    for (size_t i = 0; i < S_LOSSLESS_COUNT; i++)
        s_assert_round_trip(s_codec(s_lossless[i]), frame);
}

static void test_registry_lists_every_codec_with_its_formats(void **state)
{
    (void)state;
    const char *names[] = {"depth12", "raw", "rvl", "sk2d", "jpeg", "png"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_ptr_equal(sk2_codec_at(i), s_codec(names[i]));
    for (size_t i = 0; i < S_LOSSLESS_COUNT; i++) {
        const sk2_codec_t *codec = s_codec(s_lossless[i]);
        assert_true(sk2_codec_is_lossless(codec));
        assert_false(sk2_codec_has_quality(codec));
        assert_true(sk2_codec_supports(codec, SK2_PIXEL_DEPTH_MM16));
        assert_true(sk2_codec_supports(codec, SK2_PIXEL_GRAY16));
        assert_true(strlen(sk2_codec_description(codec)) > 0);
    }
    assert_true(sk2_codec_supports(s_codec("raw"), SK2_PIXEL_RGB24));
    assert_true(sk2_codec_supports(s_codec("raw"), SK2_PIXEL_BGRA32));
    assert_false(sk2_codec_supports(s_codec("rvl"), SK2_PIXEL_RGB24));
    assert_false(sk2_codec_supports(s_codec("sk2d"), SK2_PIXEL_BGRA32));
    const sk2_codec_t *jpeg = s_codec("jpeg");
    assert_false(sk2_codec_is_lossless(jpeg));
    assert_true(sk2_codec_has_quality(jpeg));
    assert_true(sk2_codec_supports(jpeg, SK2_PIXEL_RGB24));
    assert_true(sk2_codec_supports(jpeg, SK2_PIXEL_BGRA32));
    assert_false(sk2_codec_supports(jpeg, SK2_PIXEL_DEPTH_MM16));
    assert_false(sk2_codec_supports(jpeg, SK2_PIXEL_GRAY16));
    assert_true(sk2_codec_supports(s_codec("png"), SK2_PIXEL_RGB24));
    assert_true(sk2_codec_supports(s_codec("png"), SK2_PIXEL_BGRA32));
    assert_false(sk2_codec_has_quality(NULL));
}

static void test_options_take_quality_0_to_100_only(void **state)
{
    (void)state;
    sk2_codec_options_t *options = sk2_codec_options_new();
    assert_non_null(options);
    assert_int_equal(sk2_codec_options_quality(options), 0);
    assert_int_equal(sk2_codec_options_set_quality(options, 75), 0);
    assert_int_equal(sk2_codec_options_quality(options), 75);
    assert_int_equal(sk2_codec_options_set_quality(options, 101), SK2_EINVAL);
    assert_int_equal(sk2_codec_options_set_quality(options, -1), SK2_EINVAL);
    assert_int_equal(sk2_codec_options_set_quality(NULL, 5), SK2_EINVAL);
    assert_int_equal(sk2_codec_options_quality(options), 75);
    sk2_codec_options_destroy(&options);
    assert_null(options);
    sk2_codec_options_destroy(&options);
    sk2_codec_options_destroy(NULL);
}

static void test_all_zero_frames_round_trip(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(512, 424);
    s_round_trip_all(frame);
    /* Nothing but holes: sk2d takes a few dozen bytes, rvl a word. */
    assert_true(s_assert_round_trip(s_codec("sk2d"), frame) < 64);
    assert_int_equal(s_assert_round_trip(s_codec("rvl"), frame), 4);
    sk2_frame_destroy(&frame);
}

static void test_all_0xffff_frames_round_trip(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(64, 48);
    testutil_fill(frame, 0xffff);
    s_round_trip_all(frame);
    sk2_frame_destroy(&frame);
}

static void test_noise_round_trips_and_stays_within_the_bound(void **state)
{
    (void)state;
    const uint16_t maxima[] = {0xffff, 0x0fff, 3, 1};
    for (size_t m = 0; m < sizeof maxima / sizeof maxima[0]; m++) {
        sk2_frame_t *frame = testutil_depth_frame(100, 37);
        testutil_fill_noise(frame, (uint32_t)m + 7, maxima[m]);
        s_round_trip_all(frame);
        sk2_frame_destroy(&frame);
    }
    /* 16-bit noise cannot shrink: sk2d falls back to storing it (12 bytes of header). */
    sk2_frame_t *frame = testutil_depth_frame(320, 288);
    testutil_fill_noise(frame, 99, 0xffff);
    assert_int_equal(s_assert_round_trip(s_codec("sk2d"), frame), 12 + 320 * 288 * 2);
    sk2_frame_destroy(&frame);
}

static void test_odd_and_tiny_shapes_round_trip(void **state)
{
    (void)state;
    /* Widths of every remainder modulo 16 and 4 (sk2d's vector passes and its four column
     * streams), heights odd and even (its two halves). */
    const uint32_t shapes[][2] = {{1, 1},  {3, 1},   {1, 3},   {511, 2}, {1, 500},  {500, 1},
                                  {3, 3},  {511, 7}, {17, 19}, {2, 1},   {7, 1000}, {6, 5},
                                  {14, 9}, {22, 4},  {9, 2},   {2, 7},   {30, 31},  {33, 6}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        sk2_frame_t *frame = testutil_depth_frame(shapes[i][0], shapes[i][1]);
        s_round_trip_all(frame);
        testutil_fill_noise(frame, (uint32_t)i + 1, 0xffff);
        s_round_trip_all(frame);
        /* Smooth with holes: the predictive paths rather than the stored one. */
        uint16_t *px = sk2_frame_data16(frame);
        for (uint32_t y = 0; y < shapes[i][1]; y++)
            for (uint32_t x = 0; x < shapes[i][0]; x++)
                px[(size_t)y * shapes[i][0] + x] =
                    (uint16_t)((x * 7 + y * 3) % 11 == 0 ? 0 : 1000 + x + 2 * y);
        s_round_trip_all(frame);
        sk2_frame_destroy(&frame);
    }
}

static void test_ir_frames_round_trip(void **state)
{
    (void)state;
    sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 64, 32);
    assert_non_null(ir);
    testutil_fill_noise(ir, 3, 0x03ff);
    s_round_trip_all(ir);
    sk2_frame_destroy(&ir);
}

/* Every real frame, every lossless codec; sk2d must beat rvl, which must beat raw. */
static void test_real_frames_round_trip(void **state)
{
    (void)state;
    for (int i = 0; i < 6; i++) {
        char name[64];
        snprintf(name, sizeof name, "depth/azure_kinect/frame_%03d.png", i);
        sk2_frame_t *frame = NULL;
        assert_int_equal(testutil_read_png16(testutil_data_path(name), &frame), 0);
        size_t raw = s_assert_round_trip(s_codec("raw"), frame);
        size_t rvl = s_assert_round_trip(s_codec("rvl"), frame);
        size_t sk2d = s_assert_round_trip(s_codec("sk2d"), frame);
        size_t png = s_assert_round_trip(s_codec("png"), frame);
        assert_int_equal(raw, 320 * 288 * 2);
        assert_true(rvl < raw * 2 / 5);
        assert_true(sk2d < rvl * 2 / 3);
        assert_true(png < raw / 2);
        sk2_frame_destroy(&frame);
    }
}

/* Pipelines and clients decode on many threads at once. Several threads decode the same sk2d
 * frame concurrently and each must get the original pixels back; under ThreadSanitizer
 * (`make tsan`) this also proves the decoder shares no state that one thread writes while
 * another reads (its tables were once rebuilt in place on every call). */
typedef struct {
    const uint8_t *bytes;   /* the encoded frame, shared read-only */
    size_t len;             /* its length in bytes */
    const sk2_frame_t *ref; /* the original pixels */
    int mismatches;         /* decodes that failed or differed, written by this thread only */
} s_decode_job_t;

static void *s_decode_many(void *arg)
{
    s_decode_job_t *job = arg;
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_SK2D);
    sk2_frame_t *back = testutil_depth_frame(sk2_frame_width(job->ref), sk2_frame_height(job->ref));
    if (!back) {
        job->mismatches = -1;
        return NULL;
    }
    for (int i = 0; i < 20; i++) {
        memset(sk2_frame_data16(back), 0, sk2_frame_size(back));
        if (sk2_codec_decode(codec, job->bytes, job->len, back) != 0 ||
            memcmp(sk2_frame_cdata(back), sk2_frame_cdata(job->ref), sk2_frame_size(back)) != 0)
            job->mismatches++;
    }
    sk2_frame_destroy(&back);
    return NULL;
}

static void test_sk2d_decodes_on_several_threads_at_once(void **state)
{
    (void)state;
    sk2_frame_t *frame = NULL;
    assert_int_equal(
        testutil_read_png16(testutil_data_path("depth/azure_kinect/frame_000.png"), &frame), 0);
    size_t len;
    uint8_t *buf = s_encode(s_codec("sk2d"), frame, &len);
    enum { THREADS = 4 };
    pthread_t threads[THREADS];
    s_decode_job_t jobs[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i] = (s_decode_job_t){.bytes = buf, .len = len, .ref = frame};
        assert_int_equal(pthread_create(&threads[i], NULL, s_decode_many, &jobs[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(threads[i], NULL), 0);
        assert_int_equal(jobs[i].mismatches, 0);
    }
    free(buf);
    sk2_frame_destroy(&frame);
}

/* Wilson's RVL by hand. 4 x 1: 0 0 5 7 is 2 zeros, 2 non-zeros, the differences 5 (zigzag 10:
 * nibbles 0xa 0x1) and 2 (zigzag 4: 0x4). Nibbles 2 2 a 1 4 fill one word from the top,
 * 0x22a14000, stored little-endian. */
static const uint16_t s_rvl_pixels_a[4] = {0, 0, 5, 7};
static const uint8_t s_rvl_bytes_a[] = {0x00, 0x40, 0xa1, 0x22};
/* 5 x 2: 0 0 0 100 90 / 0 0 0 0 0 is 3 zeros, 2 non-zeros, 100 (zigzag 200: 8 9 3), -10
 * (zigzag 19: b 2), then 5 zeros and 0 non-zeros: nibbles 3 2 8 9 3 b 2 5 | 0. */
static const uint16_t s_rvl_pixels_b[10] = {0, 0, 0, 100, 90, 0, 0, 0, 0, 0};
static const uint8_t s_rvl_bytes_b[] = {0x25, 0x3b, 0x89, 0x32, 0x00, 0x00, 0x00, 0x00};

static void s_assert_golden(const char *codec_name, uint32_t width, uint32_t height,
                            const uint16_t *pixels, const uint8_t *bytes, size_t bytes_len)
{
    const sk2_codec_t *codec = s_codec(codec_name);
    sk2_frame_t *frame = testutil_depth_frame(width, height);
    memcpy(sk2_frame_data16(frame), pixels, sk2_frame_size(frame));
    size_t len;
    uint8_t *buf = s_encode(codec, frame, &len);
    assert_int_equal(len, bytes_len);
    assert_memory_equal(buf, bytes, bytes_len);
    sk2_frame_t *back = testutil_depth_frame(width, height);
    assert_int_equal(s_decode_exact(codec, bytes, bytes_len, back), 0);
    assert_memory_equal(sk2_frame_cdata(back), pixels, sk2_frame_size(frame));
    /* Every shorter prefix is refused. */
    for (size_t prefix = 0; prefix < bytes_len; prefix++)
        assert_int_equal(s_decode_exact(codec, bytes, prefix, back), SK2_ECORRUPT);
    free(buf);
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
}

static void test_rvl_encodes_the_hand_derived_bytes(void **state)
{
    (void)state;
    s_assert_golden("rvl", 4, 1, s_rvl_pixels_a, s_rvl_bytes_a, sizeof s_rvl_bytes_a);
    s_assert_golden("rvl", 5, 2, s_rvl_pixels_b, s_rvl_bytes_b, sizeof s_rvl_bytes_b);
}

static void test_rvl_refuses_bad_padding_and_trailing_words(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_codec("rvl");
    sk2_frame_t *frame = testutil_depth_frame(4, 1);
    uint8_t wire[8];
    memcpy(wire, s_rvl_bytes_a, 4);
    wire[0] = 0x01; /* a non-zero padding nibble */
    assert_int_equal(s_decode_exact(codec, wire, 4, frame), SK2_ECORRUPT);
    memcpy(wire, s_rvl_bytes_a, 4);
    memset(wire + 4, 0, 4); /* a word too many */
    assert_int_equal(s_decode_exact(codec, wire, 8, frame), SK2_ECORRUPT);
    assert_int_equal(s_decode_exact(codec, wire, 5, frame), SK2_ECORRUPT);
    /* A count longer than any count can be: ten continuation nibbles and more. */
    const uint8_t endless[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(s_decode_exact(codec, endless, sizeof endless, frame), SK2_ECORRUPT);
    sk2_frame_destroy(&frame);
}

static void test_rvl_bound_covers_the_worst_case(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_codec("rvl");
    /* Every pixel non-zero with a difference of +-65534: six nibbles each. */
    sk2_frame_t *frame = testutil_depth_frame(333, 5);
    uint16_t *px = sk2_frame_data16(frame);
    for (size_t i = 0; i < 333 * 5; i++)
        px[i] = i % 2 ? 0xffff : 1;
    size_t len = s_assert_round_trip(codec, frame);
    assert_true(len > 333 * 5 * 3 - 8);
    assert_true(len <= sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, 333, 5));
    /* Alternating holes and far values. */
    for (size_t i = 0; i < 333 * 5; i++)
        px[i] = i % 2 ? 0 : (i % 4 ? 0xffff : 1);
    s_assert_round_trip(codec, frame);
    sk2_frame_destroy(&frame);
}

/* sk2d by hand (docs/codecs.md): a 16 x 2 frame of 1000. Masks runs: 0 holes (token 0), then
 * 32 valid (31: token 17 and 3 raw bits 111), both tables 0-bit codes; run stream 0x07. Each
 * half is one row predicted from a row of zeros: the first pixel's residual 1000 (zigzag 2000:
 * token 29 and 9 raw bits 464) then fifteen 0s, all in context 0, whose code gives tokens 0
 * and 29 one bit each ('0' and '1'). A half's even columns: 1, 464 << 1, seven 0 bits: 17 bits,
 * 0x3a1 in 3 bytes; its odd columns: eight 0 bits, one byte. */
static const uint8_t s_sk2d_bytes[] = {
    0x02, 0x01, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, /* header */
    0x00, 0x00, 0x00, 0x11,                                                 /* run codes */
    0x1e, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* context 0 */
    0x00, 0x00, 0x00, 0x10,                                                 /* ... */
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,             /* contexts 1-5 */
    0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, /* lengths: runs, */
    0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,                         /* top, bottom */
    0x07,                                                                   /* runs */
    0xa1, 0x03, 0x00, 0x00,                                                 /* top half */
    0xa1, 0x03, 0x00, 0x00,                                                 /* bottom half */
};

static void test_sk2d_encodes_the_hand_derived_bytes(void **state)
{
    (void)state;
    uint16_t pixels[32];
    for (int i = 0; i < 32; i++)
        pixels[i] = 1000;
    s_assert_golden("sk2d", 16, 2, pixels, s_sk2d_bytes, sizeof s_sk2d_bytes);
    /* A 2 x 1 frame would grow: it is stored, header then little-endian pixels. */
    const uint16_t tiny[2] = {0x1234, 0};
    const uint8_t stored[] = {0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
                              0x01, 0x00, 0x00, 0x00, 0x34, 0x12, 0x00, 0x00};
    s_assert_golden("sk2d", 2, 1, tiny, stored, sizeof stored);
}

static void test_sk2d_refuses_other_shapes_versions_and_trailing_bytes(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_codec("sk2d");
    sk2_frame_t *other = testutil_depth_frame(32, 1);
    assert_int_equal(s_decode_exact(codec, s_sk2d_bytes, sizeof s_sk2d_bytes, other), SK2_ECORRUPT);
    sk2_frame_destroy(&other);
    sk2_frame_t *frame = testutil_depth_frame(16, 2);
    uint8_t wire[sizeof s_sk2d_bytes + 1];
    const size_t bytes_to_break[] = {0, 1, 2, 3, 4, 8};
    for (size_t i = 0; i < sizeof bytes_to_break / sizeof bytes_to_break[0]; i++) {
        memcpy(wire, s_sk2d_bytes, sizeof s_sk2d_bytes);
        wire[bytes_to_break[i]] ^= 0x40;
        assert_int_equal(s_decode_exact(codec, wire, sizeof s_sk2d_bytes, frame), SK2_ECORRUPT);
    }
    /* Version 1 (three streams) is not read any more. */
    memcpy(wire, s_sk2d_bytes, sizeof s_sk2d_bytes);
    wire[0] = 1;
    assert_int_equal(s_decode_exact(codec, wire, sizeof s_sk2d_bytes, frame), SK2_ECORRUPT);
    memcpy(wire, s_sk2d_bytes, sizeof s_sk2d_bytes);
    wire[sizeof s_sk2d_bytes] = 0;
    assert_int_equal(s_decode_exact(codec, wire, sizeof wire, frame), SK2_ECORRUPT);
    sk2_frame_destroy(&frame);
}

/* Truncations and flipped bytes of real encodings: an error or some image, never a crash
 * (AddressSanitizer watches), and every truncation an error. */
static void test_damaged_encodings_are_refused_or_harmless(void **state)
{
    (void)state;
    sk2_frame_t *frame = NULL;
    assert_int_equal(
        testutil_read_png16(testutil_data_path("depth/azure_kinect/frame_004.png"), &frame), 0);
    sk2_frame_t *back = testutil_depth_frame(320, 288);
    const char *names[] = {"raw", "rvl", "sk2d", "png"};
    for (size_t c = 0; c < 4; c++) {
        const sk2_codec_t *codec = s_codec(names[c]);
        size_t len;
        uint8_t *buf = s_encode(codec, frame, &len);
        for (size_t cut = 1; cut < 200 && cut <= len; cut += 7)
            assert_int_equal(s_decode_exact(codec, buf, len - cut, back), SK2_ECORRUPT);
        assert_int_equal(s_decode_exact(codec, buf, 0, back), SK2_ECORRUPT);
        uint32_t x = 12345;
        for (int round = 0; round < 300; round++) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            size_t at = x % len;
            buf[at] ^= (uint8_t)(1u << (x >> 29));
            int rc = s_decode_exact(codec, buf, len, back);
            assert_true(rc == 0 || rc == SK2_ECORRUPT);
            buf[at] ^= (uint8_t)(1u << (x >> 29));
        }
        assert_int_equal(s_decode_exact(codec, buf, len, back), 0);
        free(buf);
    }
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
}

static void test_too_small_dst_is_enospc(void **state)
{
    (void)state;
    sk2_frame_t *frame = NULL;
    assert_int_equal(
        testutil_read_png16(testutil_data_path("depth/azure_kinect/frame_002.png"), &frame), 0);
    for (size_t c = 0; c < S_LOSSLESS_COUNT; c++) {
        const sk2_codec_t *codec = s_codec(s_lossless[c]);
        size_t exact;
        uint8_t *expected = s_encode(codec, frame, &exact);
        uint8_t *buf = malloc(exact);
        size_t len = 99;
        assert_int_equal(sk2_codec_encode(codec, frame, buf, exact - 1, &len), SK2_ENOSPC);
        assert_int_equal(len, 0);
        assert_int_equal(sk2_codec_encode(codec, frame, buf, exact, &len), 0);
        assert_int_equal(len, exact);
        assert_memory_equal(buf, expected, exact);
        free(buf);
        free(expected);
    }
    sk2_frame_destroy(&frame);
}

static void test_raw_carries_colour_and_checks_its_length(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_codec("raw");
    sk2_frame_t *rgb = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 7, 3);
    assert_non_null(rgb);
    for (size_t i = 0; i < sk2_frame_size(rgb); i++)
        sk2_frame_data(rgb)[i] = (uint8_t)(i * 37);
    assert_int_equal(s_assert_round_trip(codec, rgb), 7 * 3 * 3);
    uint8_t bytes[7 * 3 * 3 + 1] = {0};
    assert_int_equal(s_decode_exact(codec, bytes, sizeof bytes, rgb), SK2_ECORRUPT);
    sk2_frame_destroy(&rgb);
    /* 16-bit samples are little-endian on the wire. */
    sk2_frame_t *depth = testutil_depth_frame(1, 1);
    sk2_frame_data16(depth)[0] = 0x1234;
    size_t len;
    uint8_t *buf = s_encode(codec, depth, &len);
    assert_int_equal(buf[0], 0x34);
    assert_int_equal(buf[1], 0x12);
    free(buf);
    sk2_frame_destroy(&depth);
}

/* A smooth colour test card: JPEG keeps it within a few levels at quality 90. */
static void s_fill_card(sk2_frame_t *frame)
{
    uint8_t *p = sk2_frame_data(frame);
    size_t bpp = sk2_pixel_format_bytes(sk2_frame_format(frame));
    for (uint32_t y = 0; y < sk2_frame_height(frame); y++)
        for (uint32_t x = 0; x < sk2_frame_width(frame); x++, p += bpp) {
            p[0] = (uint8_t)(x * 2);
            p[1] = (uint8_t)(y * 3);
            p[2] = (uint8_t)(128 + (x + y) / 4);
            if (bpp == 4)
                p[3] = 0xff;
        }
}

static double s_mean_abs_error(const sk2_frame_t *a, const sk2_frame_t *b)
{
    double sum = 0;
    for (size_t i = 0; i < sk2_frame_size(a); i++)
        sum += abs((int)sk2_frame_cdata(a)[i] - (int)sk2_frame_cdata(b)[i]);
    return sum / (double)sk2_frame_size(a);
}

static void test_jpeg_codes_colour_with_a_quality(void **state)
{
    (void)state;
    const sk2_codec_t *jpeg = s_codec("jpeg");
    const sk2_pixel_format_t formats[] = {SK2_PIXEL_RGB24, SK2_PIXEL_BGRA32};
    for (size_t f = 0; f < 2; f++) {
        sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_COLOR, formats[f], 96, 64);
        sk2_frame_t *back = sk2_frame_new(SK2_STREAM_COLOR, formats[f], 96, 64);
        assert_non_null(frame);
        assert_non_null(back);
        s_fill_card(frame);
        size_t cap = sk2_codec_encode_bound(jpeg, formats[f], 96, 64);
        uint8_t *buf = malloc(cap);
        sk2_codec_options_t *options = sk2_codec_options_new();
        size_t sizes[2];
        const int qualities[2] = {20, 95};
        for (int q = 0; q < 2; q++) {
            assert_int_equal(sk2_codec_options_set_quality(options, qualities[q]), 0);
            assert_int_equal(sk2_codec_encode_opts(jpeg, frame, options, buf, cap, &sizes[q]), 0);
            assert_true(buf[0] == 0xff && buf[1] == 0xd8); /* SOI */
            assert_int_equal(s_decode_exact(jpeg, buf, sizes[q], back), 0);
            assert_true(s_mean_abs_error(frame, back) < (q ? 3.0 : 12.0));
        }
        assert_true(sizes[0] < sizes[1]);
        /* Truncated: refused rather than filled with grey. */
        assert_int_equal(s_decode_exact(jpeg, buf, sizes[1] / 2, back), SK2_ECORRUPT);
        assert_int_equal(s_decode_exact(jpeg, buf, 0, back), SK2_ECORRUPT);
        /* Another size of frame. */
        sk2_frame_t *other = sk2_frame_new(SK2_STREAM_COLOR, formats[f], 64, 96);
        assert_int_equal(s_decode_exact(jpeg, buf, sizes[1], other), SK2_ECORRUPT);
        sk2_frame_destroy(&other);
        sk2_codec_options_destroy(&options);
        free(buf);
        sk2_frame_destroy(&back);
        sk2_frame_destroy(&frame);
    }
    /* No depth through a lossy colour codec. */
    sk2_frame_t *depth = testutil_depth_frame(8, 8);
    uint8_t out[4096];
    size_t len;
    assert_int_equal(sk2_codec_encode(jpeg, depth, out, sizeof out, &len), SK2_EUNSUPPORTED);
    sk2_frame_destroy(&depth);
}

static void test_jpeg_refuses_garbage(void **state)
{
    (void)state;
    const sk2_codec_t *jpeg = s_codec("jpeg");
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 32, 32);
    sk2_frame_t *noise = testutil_depth_frame(64, 64);
    for (uint32_t seed = 1; seed <= 16; seed++) {
        testutil_fill_noise(noise, seed, 0xffff);
        uint8_t *bytes = sk2_frame_data(noise);
        bytes[0] = 0xff;
        bytes[1] = 0xd8;
        assert_int_equal(s_decode_exact(jpeg, bytes, (seed * 511) % 8192, frame), SK2_ECORRUPT);
    }
    sk2_frame_destroy(&noise);
    sk2_frame_destroy(&frame);
}

/* ---- png ---------------------------------------------------------------------------------- */

static const uint8_t s_png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static uint32_t s_get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void s_put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes a PNG chunk (length, type, data, CRC) at out; returns its size, 12 + len. */
static size_t s_png_chunk(uint8_t *out, const char *type, const uint8_t *data, uint32_t len)
{
    s_put_be32(out, len);
    memcpy(out + 4, type, 4);
    if (len)
        memcpy(out + 8, data, len);
    s_put_be32(out + 8 + len, (uint32_t)crc32(0, out + 4, 4 + len));
    return 12 + (size_t)len;
}

/* Sets a frame's bytes from a xorshift sequence: every byte value, no structure. */
static void s_fill_bytes(sk2_frame_t *frame, uint32_t seed)
{
    uint32_t x = seed;
    for (size_t i = 0; i < sk2_frame_size(frame); i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        sk2_frame_data(frame)[i] = (uint8_t)(x >> 7);
    }
}

/* A colour frame made of a real depth frame: its high byte, low byte and middle bits as red,
 * green and blue (alpha, for bgra32, from the coordinates), so that PNG's filters meet camera
 * noise, edges and holes, not a synthetic pattern. */
static sk2_frame_t *s_real_colour_frame(sk2_pixel_format_t format, int index)
{
    char name[64];
    snprintf(name, sizeof name, "depth/azure_kinect/frame_%03d.png", index);
    sk2_frame_t *depth = NULL;
    assert_int_equal(testutil_read_png16(testutil_data_path(name), &depth), 0);
    uint32_t width = sk2_frame_width(depth), height = sk2_frame_height(depth);
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_COLOR, format, width, height);
    assert_non_null(frame);
    size_t bpp = sk2_pixel_format_bytes(format);
    const uint16_t *d = sk2_frame_data16(depth);
    uint8_t *p = sk2_frame_data(frame);
    for (uint32_t y = 0; y < height; y++)
        for (uint32_t x = 0; x < width; x++, d++, p += bpp) {
            p[0] = (uint8_t)(*d >> 8);
            p[1] = (uint8_t)*d;
            p[2] = (uint8_t)(*d >> 4);
            if (bpp == 4)
                p[3] = (uint8_t)(x ^ y);
        }
    sk2_frame_destroy(&depth);
    return frame;
}

/* The encoding is a plain PNG: signature, then IHDR with the frame's geometry, bit depth and
 * colour type, not interlaced. */
static void s_assert_png_header(const uint8_t *buf, size_t len, const sk2_frame_t *frame)
{
    assert_true(len > 33);
    assert_memory_equal(buf, s_png_signature, 8);
    assert_memory_equal(buf + 12, "IHDR", 4);
    assert_int_equal(s_get_be32(buf + 16), sk2_frame_width(frame));
    assert_int_equal(s_get_be32(buf + 20), sk2_frame_height(frame));
    sk2_pixel_format_t format = sk2_frame_format(frame);
    assert_int_equal(buf[24], sk2_pixel_format_bytes(format) == 2 ? 16 : 8);
    assert_int_equal(buf[25], format == SK2_PIXEL_RGB24    ? PNG_COLOR_TYPE_RGB
                              : format == SK2_PIXEL_BGRA32 ? PNG_COLOR_TYPE_RGB_ALPHA
                                                           : PNG_COLOR_TYPE_GRAY);
    assert_int_equal(buf[28], 0);
}

static void test_png_round_trips_colour_bit_exact(void **state)
{
    (void)state;
    const sk2_codec_t *png = s_codec("png");
    assert_true(sk2_codec_is_lossless(png));
    assert_false(sk2_codec_has_quality(png));
    const sk2_pixel_format_t formats[] = {SK2_PIXEL_RGB24, SK2_PIXEL_BGRA32};
    const uint32_t shapes[][2] = {{1, 1}, {3, 1}, {1, 3}, {2, 7}, {17, 19}, {511, 2}, {96, 64}};
    for (size_t f = 0; f < 2; f++) {
        for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
            sk2_frame_t *frame =
                sk2_frame_new(SK2_STREAM_COLOR, formats[f], shapes[i][0], shapes[i][1]);
            assert_non_null(frame);
            memset(sk2_frame_data(frame), 0, sk2_frame_size(frame));
            s_assert_round_trip(png, frame);
            memset(sk2_frame_data(frame), 0xff, sk2_frame_size(frame));
            s_assert_round_trip(png, frame);
            s_fill_card(frame);
            s_assert_round_trip(png, frame);
            /* Noise cannot shrink: the encoding must still fit the bound (s_encode checks). */
            s_fill_bytes(frame, (uint32_t)(i + 1));
            s_assert_round_trip(png, frame);
            sk2_frame_destroy(&frame);
        }
        for (int r = 0; r < 6; r++) {
            sk2_frame_t *frame = s_real_colour_frame(formats[f], r);
            size_t len;
            uint8_t *buf = s_encode(png, frame, &len);
            s_assert_png_header(buf, len, frame);
            assert_true(len < sk2_frame_size(frame) / 2);
            assert_int_equal(s_assert_round_trip(png, frame), len);
            /* One byte short of the encoding is too small; exactly its size is enough. */
            size_t out = 99;
            assert_int_equal(sk2_codec_encode(png, frame, buf, len - 1, &out), SK2_ENOSPC);
            assert_int_equal(out, 0);
            assert_int_equal(sk2_codec_encode(png, frame, buf, len, &out), 0);
            assert_int_equal(out, len);
            free(buf);
            sk2_frame_destroy(&frame);
        }
    }
}

/* Inflates and unfilters the one row of a one-row encoding whose IDAT follows IHDR: row_len
 * bytes of samples with `bpp` bytes per pixel. */
static void s_unfilter_row(const uint8_t *buf, size_t bpp, uint8_t *row, size_t row_len)
{
    assert_memory_equal(buf + 37, "IDAT", 4);
    uint8_t filtered[1 + 16];
    assert_true(row_len < sizeof filtered);
    uLongf inflated = (uLongf)(row_len + 1);
    assert_int_equal(uncompress(filtered, &inflated, buf + 41, s_get_be32(buf + 33)), Z_OK);
    assert_int_equal(inflated, row_len + 1);
    /* With no row above, Paeth and Sub both predict from the left neighbour only. */
    uint8_t filter = filtered[0];
    assert_true(filter == PNG_FILTER_VALUE_NONE || filter == PNG_FILTER_VALUE_SUB ||
                filter == PNG_FILTER_VALUE_PAETH);
    for (size_t i = 0; i < row_len; i++)
        row[i] = (uint8_t)(filtered[1 + i] +
                           (filter != PNG_FILTER_VALUE_NONE && i >= bpp ? row[i - bpp] : 0));
}

/* The samples are as PNG says, whatever the host: 16-bit ones big-endian, colour in R, G, B
 * (A) order. Checked on the inflated bytes, below libpng's decoder. */
static void test_png_stores_samples_as_png_says(void **state)
{
    (void)state;
    sk2_frame_t *depth = testutil_depth_frame(2, 1);
    sk2_frame_data16(depth)[0] = 0x1234;
    sk2_frame_data16(depth)[1] = 0xfffe;
    size_t len;
    uint8_t *buf = s_encode(s_codec("png"), depth, &len);
    s_assert_png_header(buf, len, depth);
    uint8_t row[4];
    s_unfilter_row(buf, 2, row, sizeof row);
    const uint8_t big_endian[4] = {0x12, 0x34, 0xff, 0xfe};
    assert_memory_equal(row, big_endian, 4);
    free(buf);
    sk2_frame_destroy(&depth);
    sk2_frame_t *bgra = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_BGRA32, 2, 1);
    const uint8_t pixels[8] = {0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}; /* B G R A */
    memcpy(sk2_frame_data(bgra), pixels, 8);
    buf = s_encode(s_codec("png"), bgra, &len);
    s_assert_png_header(buf, len, bgra);
    uint8_t rgba[8];
    s_unfilter_row(buf, 4, rgba, sizeof rgba);
    const uint8_t expected[8] = {0x33, 0x22, 0x11, 0x44, 0x77, 0x66, 0x55, 0x88};
    assert_memory_equal(rgba, expected, 8);
    free(buf);
    sk2_frame_destroy(&bgra);
}

/* PNG files written by another encoder (the test frames') decode as they are. */
static void test_png_decodes_files_other_encoders_wrote(void **state)
{
    (void)state;
    for (int i = 0; i < 6; i++) {
        char name[64];
        snprintf(name, sizeof name, "depth/azure_kinect/frame_%03d.png", i);
        sk2_frame_t *expected = NULL;
        assert_int_equal(testutil_read_png16(testutil_data_path(name), &expected), 0);
        size_t size;
        uint8_t *file = testutil_read_file(testutil_data_path(name), &size);
        assert_non_null(file);
        sk2_frame_t *depth = testutil_depth_frame(320, 288);
        sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 320, 288);
        assert_int_equal(s_decode_exact(s_codec("png"), file, size, depth), 0);
        assert_int_equal(s_decode_exact(s_codec("png"), file, size, ir), 0);
        assert_memory_equal(sk2_frame_cdata(depth), sk2_frame_cdata(expected),
                            sk2_frame_size(expected));
        assert_memory_equal(sk2_frame_cdata(ir), sk2_frame_cdata(expected),
                            sk2_frame_size(expected));
        sk2_frame_destroy(&ir);
        sk2_frame_destroy(&depth);
        sk2_frame_destroy(&expected);
        free(file);
    }
}

/* An interlaced (Adam7) PNG, written here with libpng's own writer, decodes to its pixels. */
static void test_png_decodes_interlaced_images(void **state)
{
    (void)state;
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 33, 17);
    assert_non_null(frame);
    s_fill_bytes(frame, 5);
    char *bytes = NULL;
    size_t size = 0;
    FILE *memory = open_memstream(&bytes, &size);
    assert_non_null(memory);
    png_structp writer = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(writer);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(writer)))
        fail_msg("libpng could not write the interlaced image");
    png_init_io(writer, memory);
    png_set_IHDR(writer, info, 33, 17, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_ADAM7,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(writer, info);
    int passes = png_set_interlace_handling(writer);
    for (int pass = 0; pass < passes; pass++)
        for (uint32_t y = 0; y < 17; y++)
            png_write_row(writer, sk2_frame_cdata(frame) + (size_t)y * 33 * 3);
    png_write_end(writer, NULL);
    png_destroy_write_struct(&writer, &info);
    assert_int_equal(fclose(memory), 0);
    assert_int_equal((uint8_t)bytes[28], PNG_INTERLACE_ADAM7);
    sk2_frame_t *back = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 33, 17);
    assert_int_equal(s_decode_exact(s_codec("png"), (const uint8_t *)bytes, size, back), 0);
    assert_memory_equal(sk2_frame_cdata(back), sk2_frame_cdata(frame), sk2_frame_size(frame));
    free(bytes);
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
}

/* The frame a decoder fills says what the image must be: another geometry, bit depth or
 * colour type is corrupt, never converted. */
static void test_png_refuses_images_that_are_not_the_frame(void **state)
{
    (void)state;
    const sk2_codec_t *png = s_codec("png");
    sk2_frame_t *rgb = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 96, 64);
    s_fill_card(rgb);
    size_t len;
    uint8_t *buf = s_encode(png, rgb, &len);
    const struct {
        sk2_stream_kind_t kind;
        sk2_pixel_format_t format;
        uint32_t width, height;
    } others[] = {
        {SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 95, 64},
        {SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 97, 64},
        {SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 96, 63},
        {SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 64, 96},
        {SK2_STREAM_COLOR, SK2_PIXEL_BGRA32, 96, 64},
        {SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 96, 64},
        {SK2_STREAM_IR, SK2_PIXEL_GRAY16, 96, 64},
        {SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 144, 64},
    };
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        sk2_frame_t *other =
            sk2_frame_new(others[i].kind, others[i].format, others[i].width, others[i].height);
        assert_non_null(other);
        assert_int_equal(s_decode_exact(png, buf, len, other), SK2_ECORRUPT);
        sk2_frame_destroy(&other);
    }
    free(buf);
    /* Depth into colour of the same geometry. */
    sk2_frame_t *depth = testutil_depth_frame(96, 64);
    testutil_fill_noise(depth, 8, 0x0fff);
    buf = s_encode(png, depth, &len);
    assert_int_equal(s_decode_exact(png, buf, len, rgb), SK2_ECORRUPT);
    free(buf);
    sk2_frame_destroy(&depth);
    sk2_frame_destroy(&rgb);
}

/* A copy of buf with `chunk` put in at byte `at`; the caller frees it. */
static uint8_t *s_insert(const uint8_t *buf, size_t len, size_t at, const uint8_t *chunk,
                         size_t chunk_len)
{
    uint8_t *out = malloc(len + chunk_len);
    assert_non_null(out);
    memcpy(out, buf, at);
    memcpy(out + at, chunk, chunk_len);
    memcpy(out + at + chunk_len, buf + at, len - at);
    return out;
}

static void test_png_refuses_damaged_and_altered_streams(void **state)
{
    (void)state;
    const sk2_codec_t *png = s_codec("png");
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 24, 8);
    sk2_frame_t *back = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 24, 8);
    s_fill_card(frame);
    size_t len;
    uint8_t *buf = s_encode(png, frame, &len);
    /* Every truncation, and every byte with a bit flipped: the signature, the chunks' CRCs
     * and the IEND at the end leave no damage unseen. */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(s_decode_exact(png, buf, cut, back), SK2_ECORRUPT);
    for (size_t at = 0; at < len; at++)
        for (int bit = 0; bit < 8; bit += 5) {
            buf[at] ^= (uint8_t)(1u << bit);
            if (s_decode_exact(png, buf, len, back) != SK2_ECORRUPT)
                fail_msg("byte %zu with bit %d flipped was accepted", at, bit);
            buf[at] ^= (uint8_t)(1u << bit);
        }
    assert_int_equal(s_decode_exact(png, buf, len, back), 0);
    /* Anything after IEND. */
    uint8_t *longer = malloc(len + 12);
    memcpy(longer, buf, len);
    longer[len] = 0;
    assert_int_equal(s_decode_exact(png, longer, len + 1, back), SK2_ECORRUPT);
    memcpy(longer + len, buf + len - 12, 12);
    assert_int_equal(s_decode_exact(png, longer, len + 12, back), SK2_ECORRUPT);
    free(longer);
    /* IHDR changed, with a CRC that matches: wider (beyond the limits set from the frame),
     * narrower, taller, 16-bit, RGBA, grayscale, palette. */
    const struct {
        size_t at;
        uint8_t value;
    } patches[] = {{19, 25}, {19, 23}, {23, 9}, {24, 16}, {25, 6}, {25, 0}, {25, 3}};
    for (size_t i = 0; i < sizeof patches / sizeof patches[0]; i++) {
        uint8_t *altered = malloc(len);
        memcpy(altered, buf, len);
        altered[patches[i].at] = patches[i].value;
        s_put_be32(altered + 29, (uint32_t)crc32(0, altered + 12, 17));
        if (s_decode_exact(png, altered, len, back) != SK2_ECORRUPT)
            fail_msg("IHDR byte %zu set to %u was accepted", patches[i].at, patches[i].value);
        free(altered);
    }
    /* An unknown ancillary chunk after IHDR is skipped; one with a bad CRC, one larger than
     * the decoder's chunk limit, or an unknown critical chunk is refused. */
    enum { S_BIG = 70000 };
    uint8_t *data = calloc(1, S_BIG);
    uint8_t *chunk = malloc(12 + S_BIG);
    size_t chunk_len = s_png_chunk(chunk, "skTs", data, 100);
    uint8_t *altered = s_insert(buf, len, 33, chunk, chunk_len);
    memset(sk2_frame_data(back), 0, sk2_frame_size(back));
    assert_int_equal(s_decode_exact(png, altered, len + chunk_len, back), 0);
    assert_memory_equal(sk2_frame_cdata(back), sk2_frame_cdata(frame), sk2_frame_size(frame));
    altered[33 + chunk_len - 1] ^= 1;
    assert_int_equal(s_decode_exact(png, altered, len + chunk_len, back), SK2_ECORRUPT);
    free(altered);
    chunk_len = s_png_chunk(chunk, "SKTS", data, 100);
    altered = s_insert(buf, len, 33, chunk, chunk_len);
    assert_int_equal(s_decode_exact(png, altered, len + chunk_len, back), SK2_ECORRUPT);
    free(altered);
    chunk_len = s_png_chunk(chunk, "skTs", data, S_BIG);
    altered = s_insert(buf, len, 33, chunk, chunk_len);
    assert_int_equal(s_decode_exact(png, altered, len + chunk_len, back), SK2_ECORRUPT);
    free(altered);
    free(chunk);
    free(data);
    /* Not a PNG at all. */
    assert_int_equal(s_decode_exact(png, buf, 0, back), SK2_ECORRUPT);
    assert_int_equal(s_decode_exact(png, s_png_signature, 8, back), SK2_ECORRUPT);
    uint8_t jpeg[4096];
    size_t jpeg_len;
    assert_int_equal(sk2_codec_encode(s_codec("jpeg"), frame, jpeg, sizeof jpeg, &jpeg_len), 0);
    assert_int_equal(s_decode_exact(png, jpeg, jpeg_len, back), SK2_ECORRUPT);
    free(buf);
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_lists_every_codec_with_its_formats),
        cmocka_unit_test(test_options_take_quality_0_to_100_only),
        cmocka_unit_test(test_all_zero_frames_round_trip),
        cmocka_unit_test(test_all_0xffff_frames_round_trip),
        cmocka_unit_test(test_noise_round_trips_and_stays_within_the_bound),
        cmocka_unit_test(test_odd_and_tiny_shapes_round_trip),
        cmocka_unit_test(test_ir_frames_round_trip),
        cmocka_unit_test(test_real_frames_round_trip),
        cmocka_unit_test(test_sk2d_decodes_on_several_threads_at_once),
        cmocka_unit_test(test_rvl_encodes_the_hand_derived_bytes),
        cmocka_unit_test(test_rvl_refuses_bad_padding_and_trailing_words),
        cmocka_unit_test(test_rvl_bound_covers_the_worst_case),
        cmocka_unit_test(test_sk2d_encodes_the_hand_derived_bytes),
        cmocka_unit_test(test_sk2d_refuses_other_shapes_versions_and_trailing_bytes),
        cmocka_unit_test(test_damaged_encodings_are_refused_or_harmless),
        cmocka_unit_test(test_too_small_dst_is_enospc),
        cmocka_unit_test(test_raw_carries_colour_and_checks_its_length),
        cmocka_unit_test(test_jpeg_codes_colour_with_a_quality),
        cmocka_unit_test(test_jpeg_refuses_garbage),
        cmocka_unit_test(test_png_round_trips_colour_bit_exact),
        cmocka_unit_test(test_png_stores_samples_as_png_says),
        cmocka_unit_test(test_png_decodes_files_other_encoders_wrote),
        cmocka_unit_test(test_png_decodes_interlaced_images),
        cmocka_unit_test(test_png_refuses_images_that_are_not_the_frame),
        cmocka_unit_test(test_png_refuses_damaged_and_altered_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
