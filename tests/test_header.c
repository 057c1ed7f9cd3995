/* Stream-endpoint wire format: topic names and the 64-byte frame header, including golden
 * bytes, so that the format documented in docs/protocol.md cannot drift. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proto/header.h"
#include "sk2/sk2.h"

static sk2_header_t s_example(void)
{
    return (sk2_header_t){
        .kind = SK2_STREAM_DEPTH,
        .format = SK2_PIXEL_DEPTH_MM16,
        .codec = sk2_codec_find(SK2_CODEC_DEPTH12),
        .width = 512,
        .height = 424,
        .payload_size = 0x01020304,
        .sequence = 0x1122334455667788ULL,
        .device_timestamp_us = 1000000,
        .capture_time_us = 1700000000000000LL,
        .send_time_us = -2,
    };
}

static void test_a_header_has_exactly_the_documented_bytes(void **state)
{
    (void)state;
    sk2_header_t header = s_example();
    uint8_t bytes[SK2_HEADER_SIZE];
    assert_int_equal(sk2_header_write(&header, bytes), 0);
    static const uint8_t golden[SK2_HEADER_SIZE] = {
        's',  'k',  '2',  'h',  0x01, 0x00, 0x40, 0x00, /* magic, version 1, size 64 */
        0x01, 0x01, 0x01, 0x00,                         /* depth, depth_mm16, depth12, flags */
        0x00, 0x02, 0x00, 0x00, 0xa8, 0x01, 0x00, 0x00, /* width 512, height 424 */
        0x04, 0x03, 0x02, 0x01,                         /* payload size */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* sequence */
        0x40, 0x42, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, /* device time: 1 s */
        0x00, 0x40, 0x1e, 0x18, 0x24, 0x0a, 0x06, 0x00, /* capture time */
        0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* send time -2 */
        0,    0,    0,    0,    0,    0,    0,    0,    /* reserved */
    };
    assert_memory_equal(bytes, golden, sizeof golden);
    sk2_header_t back;
    char why[128];
    assert_int_equal(sk2_header_read(golden, sizeof golden, &back, why, sizeof why), 0);
    assert_int_equal(back.kind, header.kind);
    assert_int_equal(back.format, header.format);
    assert_ptr_equal(back.codec, header.codec);
    assert_int_equal(back.width, 512);
    assert_int_equal(back.height, 424);
    assert_int_equal(back.payload_size, 0x01020304);
    assert_true(back.sequence == 0x1122334455667788ULL);
    assert_true(back.device_timestamp_us == 1000000);
    assert_true(back.capture_time_us == 1700000000000000LL);
    assert_true(back.send_time_us == -2);
}

static void test_bad_headers_are_refused_with_a_reason(void **state)
{
    (void)state;
    sk2_header_t header = s_example();
    uint8_t good[SK2_HEADER_SIZE + 8];
    assert_int_equal(sk2_header_write(&header, good), 0);
    sk2_header_t out;
    char why[128];
    struct {
        size_t offset;
        uint8_t value;
        int expect;
    } cases[] = {
        {0, 'S', SK2_EPROTO},      /* magic */
        {4, 2, SK2_EPROTO},        /* version */
        {6, 63, SK2_EPROTO},       /* size below 64 */
        {8, 0, SK2_EPROTO},        /* kind */
        {8, 9, SK2_EPROTO},        /* kind */
        {9, 0, SK2_EPROTO},        /* format */
        {10, 0, SK2_EUNSUPPORTED}, /* codec 0 */
        {10, 200, SK2_EUNSUPPORTED},
        {12, 0, SK2_EPROTO},    /* width 0 (low byte of 512 is 0, so set byte 13) */
        {15, 0x7f, SK2_EPROTO}, /* width huge */
        {19, 0x01, SK2_EPROTO}, /* height huge */
        {23, 0x40, SK2_EPROTO}, /* payload over the limit */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t bad[SK2_HEADER_SIZE];
        memcpy(bad, good, sizeof bad);
        bad[cases[i].offset] = cases[i].value;
        if (cases[i].offset == 12)
            bad[13] = 0;
        int rc = sk2_header_read(bad, sizeof bad, &out, why, sizeof why);
        if (rc != cases[i].expect)
            fail_msg("case %zu: got %d, want %d", i, rc, cases[i].expect);
        assert_true(strlen(why) > 0);
    }
    /* Truncated, and a size field that disagrees with the frame. */
    for (size_t n = 0; n < SK2_HEADER_SIZE; n++)
        assert_int_equal(sk2_header_read(good, n, &out, why, sizeof why), SK2_EPROTO);
    assert_int_equal(sk2_header_read(good, SK2_HEADER_SIZE + 8, &out, why, sizeof why), SK2_EPROTO);
    /* A longer header that says so is read (later revisions may append fields). */
    good[6] = SK2_HEADER_SIZE + 8;
    memset(good + SK2_HEADER_SIZE, 0xee, 8);
    assert_int_equal(sk2_header_read(good, SK2_HEADER_SIZE + 8, &out, why, sizeof why), 0);
    assert_int_equal(out.width, 512);
}

static void test_topics_name_a_stream_and_a_codec(void **state)
{
    (void)state;
    const sk2_codec_t *depth12 = sk2_codec_find(SK2_CODEC_DEPTH12);
    char topic[SK2_TOPIC_MAX];
    size_t n = sk2_topic_format(SK2_STREAM_IR, depth12, topic, sizeof topic);
    assert_int_equal(n, strlen("ir/depth12/"));
    assert_memory_equal(topic, "ir/depth12/", n);
    char small[5];
    assert_int_equal(sk2_topic_format(SK2_STREAM_IR, depth12, small, sizeof small), 0);
    assert_int_equal(sk2_topic_format((sk2_stream_kind_t)0, depth12, small, sizeof small), 0);
    sk2_stream_kind_t kind;
    const sk2_codec_t *codec;
    assert_int_equal(sk2_topic_parse((const uint8_t *)topic, n, &kind, &codec), 0);
    assert_int_equal(kind, SK2_STREAM_IR);
    assert_ptr_equal(codec, depth12);
    static const char *const bad[] = {
        "",           "ir",           "ir/",          "ir//",        "/depth12/",
        "ir/depth12", "ir/depth12/x", "ir/depth12//", "ir/de/pth12/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (sk2_topic_parse((const uint8_t *)bad[i], strlen(bad[i]), &kind, &codec) != SK2_EPROTO)
            fail_msg("accepted topic '%s'", bad[i]);
    assert_int_equal(sk2_topic_parse((const uint8_t *)"sonar/depth12/", 14, &kind, &codec),
                     SK2_EUNSUPPORTED);
    assert_int_equal(sk2_topic_parse((const uint8_t *)"depth/h264/", 11, &kind, &codec),
                     SK2_EUNSUPPORTED);
    assert_int_equal(sk2_topic_parse((const uint8_t *)"depth/depth12\0/", 15, &kind, &codec),
                     SK2_EPROTO);
}

static void test_codec_wire_numbers_are_stable(void **state)
{
    (void)state;
    const sk2_codec_t *depth12 = sk2_codec_find(SK2_CODEC_DEPTH12);
    assert_int_equal(sk2_codec_wire_id(depth12), 1);
    assert_ptr_equal(sk2_codec_from_wire_id(1), depth12);
    assert_null(sk2_codec_from_wire_id(0));
    assert_null(sk2_codec_from_wire_id(250));
    assert_int_equal(sk2_codec_wire_id(NULL), 0);
    /* Every codec in the registry can travel. */
    for (size_t i = 0; i < sk2_codec_count(); i++)
        if (sk2_codec_wire_id(sk2_codec_at(i)) == 0)
            fail_msg("codec %s has no wire number", sk2_codec_name(sk2_codec_at(i)));
}

static void test_point_clouds_follow_the_pinhole_model(void **state)
{
    (void)state;
    sk2_frame_t *depth = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 4, 3);
    uint16_t *px = sk2_frame_data16(depth);
    px[1 * 4 + 2] = 2000; /* the principal point */
    px[0] = 1000;         /* the corner */
    sk2_intrinsics_t k = {.fx = 100, .fy = 200, .cx = 2, .cy = 1};
    float xyz[3 * 4];
    assert_int_equal(sk2_frame_to_points(depth, &k, 0.001, xyz, 4), 2);
    assert_true(xyz[0] == -0.02f && xyz[1] == -0.005f && xyz[2] == 1.0f);
    assert_true(xyz[3] == 0.0f && xyz[4] == 0.0f && xyz[5] == 2.0f);
    /* Capacity bounds the writes, not the count. */
    assert_int_equal(sk2_frame_to_points(depth, &k, 0.001, xyz, 1), 2);
    /* With distortion, re-distorting the result lands on the pixel again. */
    k.k1 = 0.09;
    k.k2 = -0.27;
    k.p1 = 0.001;
    assert_int_equal(sk2_frame_to_points(depth, &k, 0.001, xyz, 4), 2);
    double x = xyz[0] / xyz[2], y = xyz[1] / xyz[2], r2 = x * x + y * y;
    double radial = 1 + r2 * (k.k1 + r2 * k.k2);
    double u = (x * radial + 2 * k.p1 * x * y + k.p2 * (r2 + 2 * x * x)) * k.fx + k.cx;
    double v = (y * radial + k.p1 * (r2 + 2 * y * y) + 2 * k.p2 * x * y) * k.fy + k.cy;
    assert_true(u > -1e-4 && u < 1e-4 && v > -1e-4 && v < 1e-4);
    sk2_frame_t *color = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 2, 2);
    assert_int_equal(sk2_frame_to_points(color, &k, 0.001, xyz, 4), 0);
    sk2_frame_destroy(&color);
    sk2_frame_destroy(&depth);
}

/* The limits check: a header is compared with its stream's advertised record and the budget
 * before a client allocates anything from it. */
static void test_headers_are_checked_against_their_stream_and_the_budget(void **state)
{
    (void)state;
    const sk2_stream_info_t depth = {
        .kind = SK2_STREAM_DEPTH, .format = SK2_PIXEL_DEPTH_MM16, .width = 512, .height = 424};
    sk2_header_t h = {.kind = SK2_STREAM_DEPTH,
                      .format = SK2_PIXEL_DEPTH_MM16,
                      .codec = sk2_codec_find("rvl"),
                      .width = 512,
                      .height = 424,
                      .payload_size = 1000};
    char why[200];
    assert_int_equal(sk2_header_check(&h, &depth, SK2_LIMIT_FRAME_BYTES, why, sizeof why), 0);
    assert_int_equal(sk2_header_check(&h, NULL, SK2_LIMIT_FRAME_BYTES, why, sizeof why), 0);
    /* The bomb: 16384 x 16384 announced, 8 bytes sent. */
    sk2_header_t bomb = h;
    bomb.width = bomb.height = 16384;
    bomb.payload_size = 8;
    assert_int_equal(sk2_header_check(&bomb, &depth, SK2_LIMIT_FRAME_BYTES, why, sizeof why),
                     SK2_EPROTO);
    assert_non_null(strstr(why, "16384x16384"));
    /* Without a record, the budget alone stops it (512 MiB decoded). */
    assert_int_equal(sk2_header_check(&bomb, NULL, SK2_LIMIT_FRAME_BYTES, why, sizeof why),
                     SK2_ELIMIT);
    /* Within a smaller budget than the stream needs. */
    assert_int_equal(sk2_header_check(&h, &depth, 100000, why, sizeof why), SK2_ELIMIT);
    /* Another format than advertised. */
    sk2_header_t gray = h;
    gray.format = SK2_PIXEL_GRAY16;
    assert_int_equal(sk2_header_check(&gray, &depth, SK2_LIMIT_FRAME_BYTES, why, sizeof why),
                     SK2_EPROTO);
    /* A payload longer than any rvl frame of that size. */
    sk2_header_t long_payload = h;
    long_payload.payload_size = 12u << 20;
    assert_int_equal(
        sk2_header_check(&long_payload, &depth, SK2_LIMIT_FRAME_BYTES, why, sizeof why),
        SK2_ECORRUPT);
    long_payload.payload_size = (uint32_t)sk2_codec_encode_bound(h.codec, h.format, 512, 424);
    assert_int_equal(
        sk2_header_check(&long_payload, &depth, SK2_LIMIT_FRAME_BYTES, why, sizeof why), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_header_has_exactly_the_documented_bytes),
        cmocka_unit_test(test_bad_headers_are_refused_with_a_reason),
        cmocka_unit_test(test_topics_name_a_stream_and_a_codec),
        cmocka_unit_test(test_codec_wire_numbers_are_stable),
        cmocka_unit_test(test_point_clouds_follow_the_pinhole_model),
        cmocka_unit_test(test_headers_are_checked_against_their_stream_and_the_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
