/* Codecs: the registry, and depth12 (the streamkinect2 v1 wire format) on awkward, hostile,
 * hand-derived and real frames.
 *
 * Usage in short: find a codec, size a buffer with its bound, encode, decode into a frame of
 * the same shape:
 *
 *     const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
 *     size_t cap = sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, 512, 424);
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
#include <math.h>

#include <cmocka.h>

#include "sk2/sk2.h"
#include "testutil.h"

/* 512 x 424 x 1.5: the size of depth12's planes for a Kinect v2 frame. */
#define S_KINECT_PLANE_BYTES 325632u

static const sk2_codec_t *s_depth12(void)
{
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
    assert_non_null(codec);
    return codec;
}

/* The mock device's scene at t = 0 (PROTOCOL.md, "The mock device"). */
static void s_fill_mock_scene(sk2_frame_t *frame)
{
    uint16_t *px = sk2_frame_data16(frame);
    uint32_t width = sk2_frame_width(frame);
    uint32_t height = sk2_frame_height(frame);
    for (uint32_t y = 0; y < height; y++) {
        for (uint32_t x = 0; x < width; x++) {
            double dx = (double)x - 256.0;
            double dy = (double)y - 212.0;
            uint16_t wall = (uint16_t)((y >> 1) + 1000);
            uint16_t sphere = (uint16_t)((uint16_t)sqrt(dx * dx + dy * dy) + 500);
            px[(size_t)y * width + x] = wall < sphere ? wall : sphere;
        }
    }
}

/* Encodes with a bound-sized buffer; the caller frees the result. */
static uint8_t *s_encode(const sk2_frame_t *frame, size_t *len)
{
    const sk2_codec_t *codec = s_depth12();
    size_t cap = sk2_codec_encode_bound(codec, sk2_frame_format(frame), sk2_frame_width(frame),
                                        sk2_frame_height(frame));
    assert_true(cap > 0);
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    *len = 0;
    assert_int_equal(sk2_codec_encode(codec, frame, buf, cap, len), 0);
    assert_true(*len > 4 && *len <= cap);
    return buf;
}

/* Decodes `len` bytes from a buffer of exactly that size, so that AddressSanitizer sees any
 * read past the end. */
static int s_decode_exact(const uint8_t *src, size_t len, sk2_frame_t *frame)
{
    uint8_t *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, src, len);
    int rc = sk2_codec_decode(s_depth12(), copy, len, frame);
    free(copy);
    return rc;
}

/* Encodes and decodes `frame` and checks that exactly the low 12 bits of every pixel came
 * back. Returns how many pixels had bits above them (and so changed). */
static size_t s_assert_round_trip(const sk2_frame_t *frame)
{
    size_t len;
    uint8_t *buf = s_encode(frame, &len);
    sk2_frame_t *back = sk2_frame_new(sk2_frame_kind(frame), sk2_frame_format(frame),
                                      sk2_frame_width(frame), sk2_frame_height(frame));
    assert_non_null(back);
    testutil_fill(back, 0xbeef); /* so that a pixel the decoder forgets cannot pass */
    assert_int_equal(s_decode_exact(buf, len, back), 0);

    const uint16_t *in = sk2_frame_cdata16(frame);
    const uint16_t *out = sk2_frame_cdata16(back);
    size_t count = (size_t)sk2_frame_width(frame) * sk2_frame_height(frame);
    size_t changed = 0;
    for (size_t i = 0; i < count; i++) {
        if (out[i] != (in[i] & 0x0fff))
            fail_msg("pixel %zu: %#x came back as %#x", i, in[i], out[i]);
        if (in[i] < 4096 && out[i] != in[i])
            fail_msg("pixel %zu: %#x below 4096 came back as %#x", i, in[i], out[i]);
        changed += in[i] >= 4096;
    }
    sk2_frame_destroy(&back);
    free(buf);
    return changed;
}

static void test_registry_finds_depth12_by_name(void **state)
{
    (void)state;
    const sk2_codec_t *codec = sk2_codec_find("depth12");
    assert_non_null(codec);
    assert_string_equal(sk2_codec_name(codec), SK2_CODEC_DEPTH12);
    assert_non_null(sk2_codec_description(codec));
    assert_true(strlen(sk2_codec_description(codec)) > 0);
    assert_false(sk2_codec_is_lossless(codec));
    assert_true(sk2_codec_supports(codec, SK2_PIXEL_DEPTH_MM16));
    assert_true(sk2_codec_supports(codec, SK2_PIXEL_GRAY16));
    assert_false(sk2_codec_supports(codec, SK2_PIXEL_RGB24));
    assert_false(sk2_codec_supports(codec, SK2_PIXEL_BGRA32));
    assert_false(sk2_codec_supports(codec, (sk2_pixel_format_t)0));
    assert_false(sk2_codec_supports(codec, (sk2_pixel_format_t)99));
    assert_false(sk2_codec_supports(codec, (sk2_pixel_format_t)-1));
}

static void test_registry_numbers_its_codecs_and_knows_their_names(void **state)
{
    (void)state;
    size_t count = sk2_codec_count();
    assert_true(count >= 1);
    assert_null(sk2_codec_at(count));
    assert_null(sk2_codec_at((size_t)-1));
    for (size_t i = 0; i < count; i++) {
        const sk2_codec_t *codec = sk2_codec_at(i);
        assert_non_null(codec);
        assert_ptr_equal(sk2_codec_find(sk2_codec_name(codec)), codec);
    }
}

static void test_registry_returns_null_for_unknown_names(void **state)
{
    (void)state;
    assert_null(sk2_codec_find("depth13"));
    assert_null(sk2_codec_find("DEPTH12"));
    assert_null(sk2_codec_find(""));
    assert_null(sk2_codec_find(NULL));
    assert_null(sk2_codec_name(NULL));
    assert_false(sk2_codec_is_lossless(NULL));
    assert_false(sk2_codec_supports(NULL, SK2_PIXEL_DEPTH_MM16));
    assert_int_equal(sk2_codec_encode_bound(NULL, SK2_PIXEL_DEPTH_MM16, 4, 4), 0);
}

static void test_null_arguments_are_invalid(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_depth12();
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    uint8_t buf[64];
    size_t len = 99;
    assert_int_equal(sk2_codec_encode(NULL, frame, buf, sizeof buf, &len), SK2_EINVAL);
    assert_int_equal(sk2_codec_encode(codec, NULL, buf, sizeof buf, &len), SK2_EINVAL);
    assert_int_equal(sk2_codec_encode(codec, frame, NULL, sizeof buf, &len), SK2_EINVAL);
    assert_int_equal(sk2_codec_encode(codec, frame, buf, sizeof buf, NULL), SK2_EINVAL);
    assert_int_equal(sk2_codec_decode(NULL, buf, sizeof buf, frame), SK2_EINVAL);
    assert_int_equal(sk2_codec_decode(codec, NULL, 5, frame), SK2_EINVAL);
    assert_int_equal(sk2_codec_decode(codec, buf, sizeof buf, NULL), SK2_EINVAL);
    sk2_frame_destroy(&frame);
}

static void test_all_zero_frame_round_trips(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(512, 424);
    assert_int_equal(s_assert_round_trip(frame), 0);
    sk2_frame_destroy(&frame);
}

static void test_all_0x0fff_frame_round_trips(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(64, 48);
    testutil_fill(frame, 0x0fff);
    assert_int_equal(s_assert_round_trip(frame), 0);
    sk2_frame_destroy(&frame);
}

static void test_all_0xffff_frame_comes_back_as_0x0fff(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(64, 48);
    testutil_fill(frame, 0xffff);
    assert_int_equal(s_assert_round_trip(frame), 64 * 48);
    sk2_frame_destroy(&frame);
}

static void test_values_from_4096_come_back_modulo_4096(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(100, 30);
    testutil_fill_noise(frame, 7, 0xffff);
    /* 16-bit noise: nearly every pixel has bits above the 12 kept, and they all go. */
    assert_true(s_assert_round_trip(frame) > 100 * 30 * 9 / 10);
    uint16_t *px = sk2_frame_data16(frame);
    px[0] = 4096;
    px[1] = 4097;
    px[2] = 4095;
    px[3] = 12345;
    size_t len;
    uint8_t *buf = s_encode(frame, &len);
    sk2_frame_t *back = testutil_depth_frame(100, 30);
    assert_int_equal(s_decode_exact(buf, len, back), 0);
    const uint16_t *out = sk2_frame_cdata16(back);
    assert_int_equal(out[0], 0);
    assert_int_equal(out[1], 1);
    assert_int_equal(out[2], 4095);
    assert_int_equal(out[3], 12345 % 4096);
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
    free(buf);
}

static void test_12_bit_noise_round_trips_bit_exact(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(512, 424);
    testutil_fill_noise(frame, 12345, 0x0fff);
    assert_int_equal(s_assert_round_trip(frame), 0);
    sk2_frame_destroy(&frame);

    sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 30, 7);
    assert_non_null(ir);
    testutil_fill_noise(ir, 99, 0x0fff);
    assert_int_equal(s_assert_round_trip(ir), 0);
    sk2_frame_destroy(&ir);
}

static void test_2x1_frame_round_trips(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(2, 1);
    uint16_t *px = sk2_frame_data16(frame);
    px[0] = 0x0abc;
    px[1] = 0x0123;
    assert_int_equal(s_assert_round_trip(frame), 0);
    sk2_frame_destroy(&frame);
}

static void test_mock_scene_round_trips_and_compresses(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(512, 424);
    s_fill_mock_scene(frame);
    assert_int_equal(s_assert_round_trip(frame), 0);
    size_t len;
    uint8_t *buf = s_encode(frame, &len);
    /* The header is the plane length, 325632 = 0x0004f800, little-endian. */
    const uint8_t header[4] = {0x00, 0xf8, 0x04, 0x00};
    assert_memory_equal(buf, header, 4);
    assert_true(len < S_KINECT_PLANE_BYTES / 2);
    free(buf);
    sk2_frame_destroy(&frame);
}

static void test_depth_and_gray_frames_encode_to_the_same_bytes(void **state)
{
    (void)state;
    sk2_frame_t *depth = testutil_depth_frame(40, 10);
    sk2_frame_t *gray = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 40, 10);
    assert_non_null(gray);
    testutil_fill_noise(depth, 5, 0x0fff);
    memcpy(sk2_frame_data(gray), sk2_frame_cdata(depth), sk2_frame_size(depth));
    size_t depth_len, gray_len;
    uint8_t *a = s_encode(depth, &depth_len);
    uint8_t *b = s_encode(gray, &gray_len);
    assert_int_equal(depth_len, gray_len);
    assert_memory_equal(a, b, depth_len);
    free(a);
    free(b);
    sk2_frame_destroy(&depth);
    sk2_frame_destroy(&gray);
}

static void test_odd_width_is_unsupported(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_depth12();
    sk2_frame_t *frame = testutil_depth_frame(3, 2);
    uint8_t buf[256];
    size_t len = 99;
    assert_int_equal(sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, 3, 2), 0);
    assert_int_equal(sk2_codec_encode(codec, frame, buf, sizeof buf, &len), SK2_EUNSUPPORTED);
    assert_int_equal(len, 0);
    memset(buf, 0, sizeof buf);
    assert_int_equal(sk2_codec_decode(codec, buf, sizeof buf, frame), SK2_EUNSUPPORTED);
    sk2_frame_destroy(&frame);
}

static void test_color_frames_are_unsupported(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_depth12();
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 4, 2);
    assert_non_null(frame);
    uint8_t buf[256] = {0};
    size_t len;
    assert_int_equal(sk2_codec_encode_bound(codec, SK2_PIXEL_RGB24, 4, 2), 0);
    assert_int_equal(sk2_codec_encode(codec, frame, buf, sizeof buf, &len), SK2_EUNSUPPORTED);
    assert_int_equal(sk2_codec_decode(codec, buf, sizeof buf, frame), SK2_EUNSUPPORTED);
    sk2_frame_destroy(&frame);
}

static void test_too_small_dst_is_enospc(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_depth12();
    sk2_frame_t *frame = testutil_depth_frame(64, 8);
    testutil_fill_noise(frame, 3, 0x0fff);
    size_t exact;
    uint8_t *expected = s_encode(frame, &exact);

    uint8_t *buf = malloc(exact);
    assert_non_null(buf);
    size_t len = 99;
    assert_int_equal(sk2_codec_encode(codec, frame, buf, exact - 1, &len), SK2_ENOSPC);
    assert_int_equal(len, 0);
    assert_int_equal(sk2_codec_encode(codec, frame, buf, 4, &len), SK2_ENOSPC);
    assert_int_equal(sk2_codec_encode(codec, frame, buf, 1, &len), SK2_ENOSPC);
    assert_int_equal(sk2_codec_encode(codec, frame, NULL, 0, &len), SK2_ENOSPC);
    /* Below the bound is fine when the encoding fits: exactly its size is enough. */
    assert_int_equal(sk2_codec_encode(codec, frame, buf, exact, &len), 0);
    assert_int_equal(len, exact);
    assert_memory_equal(buf, expected, exact);
    free(buf);
    free(expected);
    sk2_frame_destroy(&frame);
}

static void test_encode_bound_really_bounds(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_depth12();
    /* 4 + LZ4_COMPRESSBOUND(325632) = 4 + 325632 + 1276 (325632 / 255) + 16 */
    assert_int_equal(sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, 512, 424), 326928);
    assert_int_equal(sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, 0, 4), 0);
    assert_int_equal(sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, 4, 0), 0);
    assert_int_equal(
        sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, SK2_FRAME_MAX_WIDTH + 2, 1), 0);
    const uint32_t sizes[][2] = {{2, 1}, {4, 2}, {6, 4}, {32, 32}, {512, 424}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        sk2_frame_t *frame = testutil_depth_frame(sizes[i][0], sizes[i][1]);
        /* Both planes of 12-bit noise are random bytes: LZ4 can only expand them, so this is
         * close to the worst case the bound must cover. */
        testutil_fill_noise(frame, (uint32_t)i + 1, 0x0fff);
        size_t bound =
            sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, sizes[i][0], sizes[i][1]);
        size_t len;
        uint8_t *buf = s_encode(frame, &len);
        size_t plane_bytes = (size_t)sizes[i][0] * sizes[i][1] * 3 / 2;
        assert_true(len > 4 + plane_bytes);
        assert_true(len <= bound);
        free(buf);
        sk2_frame_destroy(&frame);
    }
}

/* A 4 x 2 frame whose planes can be worked out by hand. Pixel 0 has bits above 12, which the
 * high plane drops ((0xf123 >> 4) & 0xff = 0x12). */
static const uint16_t s_golden_pixels[8] = {
    0xf123, 0x0456, 0x0789, 0x0abc, /* row 0 */
    0x0def, 0x0000, 0x00ff, 0x0f0f, /* row 1 */
};

/* Planes: high = 12 45 78 ab de 00 0f f0 (one byte a pixel), low = 36 9c f0 ff (pairs
 * (3,6) (9,c) (f,0) (f,f), even pixel in the high nibble): 12 bytes. LZ4 cannot start a match
 * in a block this short (the last match must start 12 bytes before the end, and the last 5
 * bytes are literals), so the block is one literal run: token 0xc0 (12 literals, no match),
 * then the 12 bytes. Before it, 12 as a 4-byte little-endian length. */
static const uint8_t s_golden_bytes[] = {
    0x0c, 0x00, 0x00, 0x00,                                                 /* length */
    0xc0,                                                                   /* token */
    0x12, 0x45, 0x78, 0xab, 0xde, 0x00, 0x0f, 0xf0, 0x36, 0x9c, 0xf0, 0xff, /* literals */
};

static void test_encoding_of_a_4x2_frame_is_the_hand_derived_bytes(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    memcpy(sk2_frame_data16(frame), s_golden_pixels, sizeof s_golden_pixels);
    size_t len;
    uint8_t *buf = s_encode(frame, &len);
    assert_int_equal(len, sizeof s_golden_bytes);
    assert_memory_equal(buf, s_golden_bytes, sizeof s_golden_bytes);
    free(buf);
    sk2_frame_destroy(&frame);
}

static void test_hand_derived_bytes_decode_to_the_4x2_frame(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    assert_int_equal(s_decode_exact(s_golden_bytes, sizeof s_golden_bytes, frame), 0);
    const uint16_t *px = sk2_frame_cdata16(frame);
    for (size_t i = 0; i < 8; i++)
        assert_int_equal(px[i], s_golden_pixels[i] & 0x0fff);
    sk2_frame_destroy(&frame);
}

static void test_hand_built_block_with_a_match_decodes(void **state)
{
    (void)state;
    /* A 4 x 4 frame of 0x0ab5: planes are 16 x 0xab then 8 x 0x55 (24 bytes). Built by hand,
     * not by LZ4's compressor, so it checks the decoder against the block format itself:
     * token 0x1b (1 literal, match length 4 + 11), literal 0xab, offset 1 (little-endian),
     * which repeats 0xab 15 times; then token 0x80 and the last 8 literals. */
    const uint8_t wire[] = {
        0x18, 0x00, 0x00, 0x00,                         /* length 24 */
        0x1b, 0xab, 0x01, 0x00,                         /* 1 literal, then 15 from offset 1 */
        0x80, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, /* 8 literals ... */
        0x55,                                           /* ... to the end of the block */
    };
    sk2_frame_t *frame = testutil_depth_frame(4, 4);
    assert_int_equal(s_decode_exact(wire, sizeof wire, frame), 0);
    const uint16_t *px = sk2_frame_cdata16(frame);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(px[i], 0x0ab5);
    sk2_frame_destroy(&frame);
}

static void test_every_truncation_is_corrupt(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(6, 4);
    testutil_fill_noise(frame, 11, 0x0fff);
    size_t len;
    uint8_t *buf = s_encode(frame, &len);
    sk2_frame_t *back = testutil_depth_frame(6, 4);
    for (size_t prefix = 0; prefix < len; prefix++)
        if (s_decode_exact(buf, prefix, back) != SK2_ECORRUPT)
            fail_msg("a %zu-byte prefix of %zu was not refused", prefix, len);
    assert_int_equal(s_decode_exact(buf, len, back), 0);
    free(buf);

    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);

    /* The same with a compressible frame, whose block holds matches to cut through. */
    frame = testutil_depth_frame(64, 16);
    back = testutil_depth_frame(64, 16);
    s_fill_mock_scene(frame);
    buf = s_encode(frame, &len);
    assert_true(len < 4 + 64 * 16 * 3 / 2);
    for (size_t prefix = 0; prefix < len; prefix++)
        if (s_decode_exact(buf, prefix, back) != SK2_ECORRUPT)
            fail_msg("a %zu-byte prefix of %zu was not refused", prefix, len);
    assert_int_equal(s_decode_exact(buf, len, back), 0);
    free(buf);
    sk2_frame_destroy(&back);
    sk2_frame_destroy(&frame);
}

static void test_zero_length_input_is_corrupt(void **state)
{
    (void)state;
    const sk2_codec_t *codec = s_depth12();
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    uint8_t byte = 0;
    assert_int_equal(sk2_codec_decode(codec, NULL, 0, frame), SK2_ECORRUPT);
    assert_int_equal(sk2_codec_decode(codec, &byte, 0, frame), SK2_ECORRUPT);
    sk2_frame_destroy(&frame);
}

static void test_wrong_declared_size_is_corrupt(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    uint8_t wire[sizeof s_golden_bytes];
    const uint32_t lies[] = {0, 11, 13, 24, 0x0100000c, 0xffffffff};
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        memcpy(wire, s_golden_bytes, sizeof wire);
        wire[0] = (uint8_t)lies[i];
        wire[1] = (uint8_t)(lies[i] >> 8);
        wire[2] = (uint8_t)(lies[i] >> 16);
        wire[3] = (uint8_t)(lies[i] >> 24);
        assert_int_equal(s_decode_exact(wire, sizeof wire, frame), SK2_ECORRUPT);
    }
    sk2_frame_destroy(&frame);
}

static void test_trailing_bytes_are_corrupt(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    uint8_t wire[sizeof s_golden_bytes + 1];
    memcpy(wire, s_golden_bytes, sizeof s_golden_bytes);
    wire[sizeof s_golden_bytes] = 0x00;
    assert_int_equal(s_decode_exact(wire, sizeof wire, frame), SK2_ECORRUPT);
    sk2_frame_destroy(&frame);
}

static void test_garbage_is_corrupt(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(512, 424);
    sk2_frame_t *noise = testutil_depth_frame(256, 64);
    for (uint32_t seed = 1; seed <= 32; seed++) {
        /* 256 x 64 x 2 bytes of noise, used as bytes, a few lengths of it. */
        testutil_fill_noise(noise, seed, 0xffff);
        uint8_t *bytes = sk2_frame_data(noise);
        size_t len = (seed * 977) % sk2_frame_size(noise);
        assert_int_equal(s_decode_exact(bytes, len, frame), SK2_ECORRUPT);
        /* Again with the right length in front, so that LZ4 itself must refuse the block. */
        bytes[0] = 0x00;
        bytes[1] = 0xf8;
        bytes[2] = 0x04;
        bytes[3] = 0x00;
        assert_int_equal(s_decode_exact(bytes, len < 4 ? 4 : len, frame), SK2_ECORRUPT);
    }
    sk2_frame_destroy(&noise);
    sk2_frame_destroy(&frame);
}

static void test_decoding_into_a_frame_of_another_size_is_corrupt(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    memcpy(sk2_frame_data16(frame), s_golden_pixels, sizeof s_golden_pixels);
    size_t len;
    uint8_t *buf = s_encode(frame, &len);
    const uint32_t others[][2] = {{6, 2}, {2, 2}, {4, 4}, {512, 424}, {2, 1}};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        sk2_frame_t *other = testutil_depth_frame(others[i][0], others[i][1]);
        assert_int_equal(s_decode_exact(buf, len, other), SK2_ECORRUPT);
        sk2_frame_destroy(&other);
    }
    /* The format carries a length, not a geometry: the same pixel count in another shape
     * (2 x 4) cannot be told apart and decodes. Callers know the shape from elsewhere. */
    sk2_frame_t *transposed = testutil_depth_frame(2, 4);
    assert_int_equal(s_decode_exact(buf, len, transposed), 0);
    sk2_frame_destroy(&transposed);
    free(buf);
    sk2_frame_destroy(&frame);
}

/* What an independent PNG decoder (not libpng) found in the real frames: the sum of all
 * pixels, and the pixel at (160, 144). They pin testutil_read_png16's byte order. */
static const struct {
    const char *name;
    uint64_t sum;
    uint16_t centre;
} s_real_frames[] = {
    {"depth/azure_kinect/frame_000.png", 173684864, 4196},
    {"depth/azure_kinect/frame_001.png", 173244164, 4193},
    {"depth/azure_kinect/frame_002.png", 189675851, 3044},
    {"depth/azure_kinect/frame_003.png", 189350344, 3043},
    {"depth/azure_kinect/frame_004.png", 129303374, 1287},
    {"depth/azure_kinect/frame_005.png", 129517226, 1287},
};

static void test_real_frames_round_trip_in_their_low_12_bits(void **state)
{
    (void)state;
    size_t changed_total = 0;
    for (size_t i = 0; i < sizeof s_real_frames / sizeof s_real_frames[0]; i++) {
        sk2_frame_t *frame = NULL;
        assert_int_equal(testutil_read_png16(testutil_data_path(s_real_frames[i].name), &frame), 0);
        assert_int_equal(sk2_frame_width(frame), 320);
        assert_int_equal(sk2_frame_height(frame), 288);
        const uint16_t *px = sk2_frame_cdata16(frame);
        uint64_t sum = 0;
        for (size_t p = 0; p < 320 * 288; p++)
            sum += px[p];
        assert_int_equal(sum, s_real_frames[i].sum);
        assert_int_equal(px[144 * 320 + 160], s_real_frames[i].centre);
        changed_total += s_assert_round_trip(frame);
        sk2_frame_destroy(&frame);
    }
    /* Real scenes reach past 4095 mm, so the lossy path above was exercised. */
    assert_true(changed_total > 0);
}

static void test_missing_png_is_an_error(void **state)
{
    (void)state;
    /* Any non-NULL value, to see the reader clear it. */
    sk2_frame_t *frame = (sk2_frame_t *)&frame;
    assert_int_equal(testutil_read_png16(testutil_data_path("no/such.png"), &frame), -1);
    assert_null(frame);
    /* A file that is not a PNG at all makes libpng longjmp out. */
    assert_int_equal(
        testutil_read_png16(testutil_data_path("depth/azure_kinect/LICENSE.Zdepth-BSD-3-Clause"),
                            &frame),
        -1);
    assert_null(frame);
}

/* One thread's share of test_threads_code_at_once: its own frame size, many round trips. */
static void *s_thread_round_trips(void *arg)
{
    uint32_t width = (uint32_t)(uintptr_t)arg;
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, 48);
    sk2_frame_t *back = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, 48);
    const sk2_codec_t *codec = sk2_codec_find(SK2_CODEC_DEPTH12);
    size_t cap = sk2_codec_encode_bound(codec, SK2_PIXEL_DEPTH_MM16, width, 48);
    uint8_t *buf = malloc(cap);
    uintptr_t failures = !frame || !back || !buf;
    for (uint32_t round = 0; round < 50 && !failures; round++) {
        testutil_fill_noise(frame, width * 1000 + round + 1, 0x0fff);
        size_t len;
        if (sk2_codec_encode(codec, frame, buf, cap, &len) != 0 ||
            sk2_codec_decode(codec, buf, len, back) != 0 ||
            memcmp(sk2_frame_cdata(frame), sk2_frame_cdata(back), sk2_frame_size(frame)) != 0)
            failures++;
    }
    free(buf);
    sk2_frame_destroy(&frame);
    sk2_frame_destroy(&back);
    return (void *)failures;
}

static void test_threads_code_at_once_without_interference(void **state)
{
    (void)state;
    /* Each thread has its own scratch buffer; different sizes make a shared one show. */
    pthread_t threads[4];
    for (uintptr_t i = 0; i < 4; i++)
        assert_int_equal(
            pthread_create(&threads[i], NULL, s_thread_round_trips, (void *)(64 + 62 * i)), 0);
    for (size_t i = 0; i < 4; i++) {
        void *failures;
        assert_int_equal(pthread_join(threads[i], &failures), 0);
        assert_null(failures);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry_finds_depth12_by_name),
        cmocka_unit_test(test_registry_numbers_its_codecs_and_knows_their_names),
        cmocka_unit_test(test_registry_returns_null_for_unknown_names),
        cmocka_unit_test(test_null_arguments_are_invalid),
        cmocka_unit_test(test_all_zero_frame_round_trips),
        cmocka_unit_test(test_all_0x0fff_frame_round_trips),
        cmocka_unit_test(test_all_0xffff_frame_comes_back_as_0x0fff),
        cmocka_unit_test(test_values_from_4096_come_back_modulo_4096),
        cmocka_unit_test(test_12_bit_noise_round_trips_bit_exact),
        cmocka_unit_test(test_2x1_frame_round_trips),
        cmocka_unit_test(test_mock_scene_round_trips_and_compresses),
        cmocka_unit_test(test_depth_and_gray_frames_encode_to_the_same_bytes),
        cmocka_unit_test(test_odd_width_is_unsupported),
        cmocka_unit_test(test_color_frames_are_unsupported),
        cmocka_unit_test(test_too_small_dst_is_enospc),
        cmocka_unit_test(test_encode_bound_really_bounds),
        cmocka_unit_test(test_encoding_of_a_4x2_frame_is_the_hand_derived_bytes),
        cmocka_unit_test(test_hand_derived_bytes_decode_to_the_4x2_frame),
        cmocka_unit_test(test_hand_built_block_with_a_match_decodes),
        cmocka_unit_test(test_every_truncation_is_corrupt),
        cmocka_unit_test(test_zero_length_input_is_corrupt),
        cmocka_unit_test(test_wrong_declared_size_is_corrupt),
        cmocka_unit_test(test_trailing_bytes_are_corrupt),
        cmocka_unit_test(test_garbage_is_corrupt),
        cmocka_unit_test(test_decoding_into_a_frame_of_another_size_is_corrupt),
        cmocka_unit_test(test_real_frames_round_trip_in_their_low_12_bits),
        cmocka_unit_test(test_missing_png_is_an_error),
        cmocka_unit_test(test_threads_code_at_once_without_interference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
