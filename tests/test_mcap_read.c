/* The MCAP reader (src/ros2/mcap_read.c), the CDR decoders (src/ros2/cdr_decode.c) and MCAP as a
 * recording format (src/record/mcap_source.c): files written by sk2's own writer read back bit
 * for bit, every refusal with its reason, and files cut short read up to their last whole
 * record. Files from other writers are tested in tests/mcap/test_mcap_import.py. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "record/reader_impl.h"
#include "ros2/cdr.h"
#include "ros2/cdr_decode.h"
#include "ros2/mcap.h"
#include "ros2/mcap_read.h"
#include "sk2/sk2.h"

#define W      64
#define H      48
#define FRAMES 6

static const sk2_intrinsics_t s_k = {.fx = 300.5,
                                     .fy = 301.25,
                                     .cx = 31.5,
                                     .cy = 23.75,
                                     .k1 = 0.1,
                                     .k2 = -0.2,
                                     .k3 = 0.05,
                                     .p1 = 0.001,
                                     .p2 = -0.002};

static uint16_t s_depth(int f, uint32_t x, uint32_t y)
{
    return (uint16_t)(500 + 997 * f + 13 * x + 101 * y);
}

typedef struct {
    uint8_t *data;
    size_t size;
    /* What was written, to compare with: each message's channel and bytes. */
    size_t count;
    uint16_t channels[64];
    uint8_t *messages[64];
    size_t sizes[64];
} s_file_t;

static void s_file_free(s_file_t *f)
{
    free(f->data);
    for (size_t i = 0; i < f->count; i++)
        free(f->messages[i]);
    memset(f, 0, sizeof *f);
}

static void s_add(sk2_mcap_writer_t *w, s_file_t *f, uint16_t ch, uint64_t t, const sk2_cdr_t *cdr)
{
    assert_int_equal(
        sk2_mcap_writer_add_message(w, ch, (uint32_t)f->count + 1, t, t, cdr->data, cdr->size), 0);
    f->channels[f->count] = ch;
    f->messages[f->count] = malloc(cdr->size);
    memcpy(f->messages[f->count], cdr->data, cdr->size);
    f->sizes[f->count++] = cdr->size;
}

/* Writes a file like `sk2 export --format mcap` (depth + its camera info + a JPEG colour stream
 * + a channel of another type) with `frames` frames of big depth images when is_big (so that
 * there are several chunks), and reads it into memory. */
static void s_write(sk2_mcap_compression_t compression, int frames, bool is_big, s_file_t *f)
{
    memset(f, 0, sizeof *f);
    char path[] = "/tmp/sk2-test-mcap-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sk2_mcap_writer_t *w = sk2_mcap_writer_new();
    assert_int_equal(sk2_mcap_writer_open(w, path, compression, "ros2", "test"), 0);
    uint16_t schemas[3], other_schema, depth, info, color, other;
    for (int t = 0; t < 3; t++)
        assert_int_equal(sk2_mcap_writer_add_schema(w, sk2_ros2_type_name((sk2_ros2_type_t)t),
                                                    "ros2msg", sk2_ros2_schema((sk2_ros2_type_t)t),
                                                    &schemas[t]),
                         0);
    assert_int_equal(sk2_mcap_writer_add_schema(w, "std_msgs/msg/String", "ros2msg",
                                                "string data\n", &other_schema),
                     0);
    const char *kv[] = {"sk2_device_id", "cam-1", "sk2_stream", "depth", "depth_unit_m", "0.0001"};
    assert_int_equal(sk2_mcap_writer_add_channel(w, schemas[SK2_ROS2_IMAGE],
                                                 "/sk2/cam_1/depth/image_raw", "cdr", kv, 3,
                                                 &depth),
                     0);
    assert_int_equal(sk2_mcap_writer_add_channel(w, schemas[SK2_ROS2_CAMERA_INFO],
                                                 "/sk2/cam_1/depth/camera_info", "cdr", kv, 2,
                                                 &info),
                     0);
    const char *ckv[] = {"sk2_device_id", "cam-1", "sk2_stream", "color"};
    assert_int_equal(sk2_mcap_writer_add_channel(w, schemas[SK2_ROS2_COMPRESSED_IMAGE],
                                                 "/sk2/cam_1/color/image_raw/compressed", "cdr",
                                                 ckv, 2, &color),
                     0);
    assert_int_equal(
        sk2_mcap_writer_add_channel(w, other_schema, "/chatter", "cdr", NULL, 0, &other), 0);
    const char *dev[] = {"index", "0", "id", "cam-1", "serial", "SN42", "backend", "mock"};
    assert_int_equal(sk2_mcap_writer_add_metadata(w, "sk2.device.0", dev, 4), 0);
    uint32_t width = is_big ? 640 : W, height = is_big ? 480 : H;
    sk2_cdr_t cdr = {0};
    sk2_frame_t *rgb = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, 32, 16);
    memset(sk2_frame_data(rgb), 0x80, sk2_frame_size(rgb));
    const sk2_codec_t *jpeg = sk2_codec_find(SK2_CODEC_JPEG);
    size_t bound = sk2_codec_encode_bound(jpeg, SK2_PIXEL_RGB24, 32, 16);
    uint8_t *jpg = malloc(bound);
    size_t jpg_size = 0;
    assert_int_equal(sk2_codec_encode(jpeg, rgb, jpg, bound, &jpg_size), 0);
    for (int i = 0; i < frames; i++) {
        sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, width, height);
        uint16_t *px = sk2_frame_data16(frame);
        for (uint32_t y = 0; y < height; y++)
            for (uint32_t x = 0; x < width; x++)
                px[y * width + x] = s_depth(i, x, y);
        int64_t us = 1700000000000000LL + i * 33333;
        sk2_ros2_header_t header = {us, "cam_1_depth_optical_frame"};
        uint64_t t = (uint64_t)us * 1000u;
        assert_int_equal(sk2_ros2_image_encode(&cdr, &header, frame), 0);
        s_add(w, f, depth, t, &cdr);
        assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &header, width, height, &s_k), 0);
        s_add(w, f, info, t, &cdr);
        header.frame_id = "cam_1_color_optical_frame";
        assert_int_equal(sk2_ros2_compressed_image_encode(&cdr, &header, "jpeg", jpg, jpg_size), 0);
        s_add(w, f, color, t + 1000, &cdr);
        sk2_cdr_t text = {0};
        static const uint8_t hello[] = {0, 1, 0, 0, 3, 0, 0, 0, 'h', 'i', 0};
        text.data = (uint8_t *)hello;
        text.size = sizeof hello;
        s_add(w, f, other, t + 2000, &text);
        sk2_frame_destroy(&frame);
    }
    assert_int_equal(sk2_mcap_writer_close(w), 0);
    sk2_mcap_writer_destroy(&w);
    sk2_cdr_free(&cdr);
    sk2_frame_destroy(&rgb);
    free(jpg);
    FILE *in = fopen(path, "rb");
    fseek(in, 0, SEEK_END);
    f->size = (size_t)ftell(in);
    rewind(in);
    f->data = malloc(f->size);
    assert_int_equal(fread(f->data, 1, f->size, in), f->size);
    fclose(in);
    unlink(path);
}

static int s_memfd(const uint8_t *data, size_t size)
{
    int fd = memfd_create("mcap", MFD_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, size), (ssize_t)size);
    return fd;
}

/* Opens `size` bytes of data as MCAP; the reader is left open for the caller (or NULL). */
static int s_open(const uint8_t *data, size_t size, sk2_mcap_reader_t **reader, char *why)
{
    sk2_mcap_reader_t *r = sk2_mcap_reader_new();
    int rc = sk2_mcap_reader_open_fd(r, s_memfd(data, size));
    if (why)
        snprintf(why, 512, "%s", sk2_mcap_reader_why(r));
    if (reader && rc == 0)
        *reader = r;
    else
        sk2_mcap_reader_destroy(&r);
    return rc;
}

/* The offset of the n-th top-level record with this opcode (walking from the magic). */
static size_t s_find(const s_file_t *f, uint8_t opcode, int n)
{
    size_t at = 8;
    while (at + 9 <= f->size) {
        uint64_t length = 0;
        for (int i = 0; i < 8; i++)
            length |= (uint64_t)f->data[at + 1 + i] << (8 * i);
        if (f->data[at] == opcode && n-- == 0)
            return at;
        at += 9 + length;
    }
    fail_msg("no record 0x%02x", opcode);
    return 0;
}

static void s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_round_trip(void **state)
{
    (void)state;
    for (int c = SK2_MCAP_NONE; c <= SK2_MCAP_LZ4; c++) {
        s_file_t f;
        s_write((sk2_mcap_compression_t)c, FRAMES, false, &f);
        sk2_mcap_reader_t *r = NULL;
        char why[512];
        assert_int_equal(s_open(f.data, f.size, &r, why), 0);
        assert_string_equal(why, "");
        assert_true(sk2_mcap_reader_is_complete(r));
        assert_string_equal(sk2_mcap_reader_profile(r), "ros2");
        assert_int_equal(sk2_mcap_reader_schema_count(r), 4);
        assert_int_equal(sk2_mcap_reader_channel_count(r), 4);
        assert_string_equal(sk2_mcap_reader_channel_at(r, 0)->topic, "/sk2/cam_1/depth/image_raw");
        assert_string_equal(
            sk2_mcap_map_get(&sk2_mcap_reader_channel_at(r, 0)->metadata, "depth_unit_m"),
            "0.0001");
        assert_int_equal(sk2_mcap_reader_metadata_count(r), 1);
        assert_int_equal(sk2_mcap_reader_message_count(r), f.count);
        for (size_t i = 0; i < f.count; i++) {
            const sk2_mcap_message_t *m = sk2_mcap_reader_message_at(r, i);
            assert_int_equal(m->channel, f.channels[i]);
            assert_int_equal(m->sequence, i + 1);
            const uint8_t *data;
            size_t size;
            assert_int_equal(sk2_mcap_reader_read(r, i, &data, &size), 0);
            assert_int_equal(size, f.sizes[i]);
            assert_memory_equal(data, f.messages[i], size);
        }
        sk2_mcap_reader_destroy(&r);

        /* As a recording: one device from sk2's metadata, depth and colour streams. */
        sk2_recording_reader_t *rec = sk2_recording_reader_new();
        assert_int_equal(sk2_recording_reader_open_fd(rec, s_memfd(f.data, f.size)), 0);
        assert_string_equal(sk2_recording_reader_format(rec), "mcap");
        assert_int_equal(sk2_recording_reader_device_count(rec), 1);
        assert_string_equal(sk2_recording_reader_device_id(rec, 0), "cam-1");
        assert_string_equal(sk2_recording_reader_device_serial(rec, 0), "SN42");
        assert_string_equal(sk2_recording_reader_device_backend(rec, 0), "mock");
        assert_int_equal(sk2_recording_reader_stream_count(rec, 0), 2);
        sk2_stream_info_t info;
        assert_int_equal(sk2_recording_reader_stream_info(rec, 0, 0, &info), 0);
        assert_int_equal(info.kind, SK2_STREAM_DEPTH);
        assert_true(fabs(info.depth_unit_m - 0.0001) < 1e-12);
        assert_true(info.has_intrinsics);
        assert_true(info.intrinsics.fx == s_k.fx && info.intrinsics.cy == s_k.cy &&
                    info.intrinsics.k3 == s_k.k3 && info.intrinsics.p2 == s_k.p2);
        assert_non_null(strstr(sk2_recording_reader_why(rec), "/chatter"));
        assert_int_equal(sk2_recording_reader_frame_count(rec), 2 * FRAMES);
        int depth_seen = 0;
        for (size_t i = 0; i < 2 * FRAMES; i++) {
            sk2_recording_frame_info_t fi;
            assert_int_equal(sk2_recording_reader_frame_info(rec, i, &fi), 0);
            sk2_frame_t *frame = NULL;
            assert_int_equal(sk2_recording_reader_read_frame(rec, i, &frame), 0);
            if (fi.kind == SK2_STREAM_DEPTH) {
                int k = depth_seen++;
                assert_int_equal(fi.capture_time_us, 1700000000000000LL + k * 33333);
                const uint16_t *px = sk2_frame_cdata16(frame);
                for (uint32_t y = 0; y < H; y++)
                    for (uint32_t x = 0; x < W; x++)
                        assert_int_equal(px[y * W + x], s_depth(k, x, y));
            } else {
                assert_int_equal(fi.kind, SK2_STREAM_COLOR);
                assert_string_equal(fi.codec, "jpeg");
                assert_int_equal(sk2_frame_width(frame), 32);
                assert_int_equal(sk2_frame_cdata(frame)[0] / 8, 0x80 / 8);
            }
            sk2_frame_destroy(&frame);
        }
        assert_int_equal(depth_seen, FRAMES);
        sk2_recording_reader_destroy(&rec);
        s_file_free(&f);
    }
}

static void s_refused(const s_file_t *f, int want, const char *words)
{
    char why[512];
    int rc = s_open(f->data, f->size, NULL, why);
    if (rc != want || !strstr(why, words))
        fail_msg("got %d (%s), want %d with '%s'", rc, why, want, words);
}

static void test_refusals(void **state)
{
    (void)state;
    s_file_t f;
    s_write(SK2_MCAP_ZSTD, 2, false, &f);
    uint8_t *copy = malloc(f.size);
    memcpy(copy, f.data, f.size);
#define RESTORE() memcpy(f.data, copy, f.size)

    f.data[1] = 'X'; /* bad magic */
    s_refused(&f, SK2_ECORRUPT, "not an MCAP file");
    RESTORE();
    f.data[5] = '1';
    s_refused(&f, SK2_EUNSUPPORTED, "major version");
    RESTORE();

    /* A chunk: opcode, length, start, end, uncompressed size (at +25), CRC (+33), compression
     * (+37 length, +41 "zstd"), records size, records. */
    size_t chunk = s_find(&f, 0x06, 0);
    f.data[chunk + 33] ^= 1;
    s_refused(&f, SK2_ECORRUPT, "fails its CRC");
    RESTORE();
    memcpy(f.data + chunk + 41, "zstx", 4);
    s_refused(&f, SK2_EUNSUPPORTED, "compressed with 'zstx'");
    RESTORE();
    s_put64(f.data + chunk + 25, (uint64_t)1 << 40);
    s_refused(&f, SK2_ELIMIT, "over the limit");
    RESTORE();
    s_put64(f.data + chunk + 25, copy[chunk + 25] + ((uint64_t)copy[chunk + 26] << 8) - 7);
    s_refused(&f, SK2_ECORRUPT, "does not decompress");
    RESTORE();
    f.data[chunk + 9 + 41] ^= 0x40; /* inside the compressed records */
    {
        char why[512];
        assert_int_equal(s_open(f.data, f.size, NULL, why), SK2_ECORRUPT);
    }
    RESTORE();

    /* A schema whose name claims 2 GiB inside a record of a few hundred bytes. */
    size_t schema = s_find(&f, 0x03, 0);
    s_put64(f.data + schema + 11, 0x80000000u);
    s_refused(&f, SK2_ECORRUPT, "schema record");
    RESTORE();
    /* A message record (outside chunks here: none, so a Metadata map) too long. */
    size_t meta = s_find(&f, 0x0c, 0);
    f.data[meta + 9 + 4 + 12 + 3] = 0x7f; /* the map's byte length */
    s_refused(&f, SK2_ECORRUPT, "metadata record");
    RESTORE();

    /* The data section's CRC in Data End, and the summary's in the Footer. */
    size_t data_end = s_find(&f, 0x0f, 0);
    f.data[data_end + 9] ^= 1;
    s_refused(&f, SK2_ECORRUPT, "data section fails its CRC");
    RESTORE();
    f.data[f.size - 8 - 4] ^= 1;
    s_refused(&f, SK2_ECORRUPT, "summary fails its CRC");
    RESTORE();
    /* A Header that is not first. */
    f.data[8] = 0x0f;
    s_refused(&f, SK2_ECORRUPT, "not a Header");
    RESTORE();
    free(copy);
    s_file_free(&f);

    /* An uncompressed chunk whose inner record runs past its end: a truncated chunk. */
    s_write(SK2_MCAP_NONE, 2, false, &f);
    chunk = s_find(&f, 0x06, 0);
    size_t records = chunk + 9 + 8 + 8 + 8 + 4 + 4 + 0 + 8;
    assert_int_equal(f.data[records], 0x05);
    s_put64(f.data + records + 1, 1u << 20);
    uint64_t raw_size = 0;
    for (int i = 0; i < 8; i++)
        raw_size |= (uint64_t)f.data[chunk + 25 + i] << (8 * i);
    uint32_t crc = (uint32_t)crc32(0, f.data + records, (uInt)raw_size); /* CRC kept right */
    for (int i = 0; i < 4; i++)
        f.data[chunk + 33 + i] = (uint8_t)(crc >> (8 * i));
    s_refused(&f, SK2_ECORRUPT, "is truncated");
    s_file_free(&f);
}

/* A file cut anywhere reads up to its last whole record: never more messages than a longer
 * cut, all of them bit-exact, and a note. */
static void test_truncated(void **state)
{
    (void)state;
    s_file_t f;
    s_write(SK2_MCAP_LZ4, 12, true, &f); /* 12 depth frames of 600 kB: 2 chunks */
    sk2_mcap_reader_t *r = NULL;
    assert_int_equal(s_open(f.data, f.size, &r, NULL), 0);
    assert_true(sk2_mcap_reader_is_complete(r));
    sk2_mcap_reader_destroy(&r);
    size_t second = s_find(&f, 0x06, 1);
    size_t in_first = 0;
    /* Cut inside the second chunk: the first chunk's messages, and the note. */
    char why[512];
    assert_int_equal(s_open(f.data, second + 100, &r, why), 0);
    assert_false(sk2_mcap_reader_is_complete(r));
    assert_non_null(strstr(why, "cut off"));
    in_first = sk2_mcap_reader_message_count(r);
    assert_true(in_first > 0 && in_first < f.count);
    assert_int_equal(sk2_mcap_reader_ignored_bytes(r), 100);
    for (size_t i = 0; i < in_first; i++) {
        const uint8_t *data;
        size_t size;
        assert_int_equal(sk2_mcap_reader_read(r, i, &data, &size), 0);
        assert_memory_equal(data, f.messages[i], size);
    }
    sk2_mcap_reader_destroy(&r);
    /* Cut at record boundaries and in between: the count never shrinks as the cut grows. */
    size_t last = 0;
    for (size_t cut = 17; cut < f.size; cut += f.size / 97) {
        int rc = s_open(f.data, cut, &r, why);
        assert_int_equal(rc, 0);
        size_t n = sk2_mcap_reader_message_count(r);
        assert_true(n >= last);
        last = n;
        sk2_mcap_reader_destroy(&r);
    }
    /* Through the recording reader, cut in the second chunk: the first chunk's frames. */
    sk2_recording_reader_t *rec = sk2_recording_reader_new();
    assert_int_equal(sk2_recording_reader_open_fd(rec, s_memfd(f.data, second + 100)), 0);
    assert_false(sk2_recording_reader_has_index(rec));
    assert_int_equal(sk2_recording_reader_ignored_bytes(rec), 100);
    assert_true(sk2_recording_reader_frame_count(rec) > 0);
    sk2_recording_reader_destroy(&rec);
    /* Shorter than a magic and a record head: not MCAP. */
    assert_int_equal(s_open(f.data, 12, NULL, why), SK2_ECORRUPT);
    s_file_free(&f);
}

/* The decoders: what the encoders wrote comes back; every cut of a message is refused. */
static void test_cdr_decode(void **state)
{
    (void)state;
    sk2_frame_t *frame = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 5, 3);
    for (size_t i = 0; i < 15; i++)
        sk2_frame_data16(frame)[i] = (uint16_t)(i * 4001);
    sk2_cdr_t cdr = {0};
    sk2_ros2_header_t header = {1234567890123456LL, "optical"};
    assert_int_equal(sk2_ros2_image_encode(&cdr, &header, frame), 0);
    sk2_ros2_image_in_t image;
    char why[256];
    assert_int_equal(sk2_ros2_image_decode(cdr.data, cdr.size, &image, why, sizeof why), 0);
    assert_int_equal(image.header.stamp_ns, 1234567890123456000LL);
    assert_string_equal(image.header.frame_id, "optical");
    assert_string_equal(image.encoding, "16UC1");
    sk2_frame_t *back = NULL;
    assert_int_equal(sk2_ros2_image_to_frame(&image, SK2_STREAM_DEPTH, &back, why, sizeof why), 0);
    assert_memory_equal(sk2_frame_cdata(back), sk2_frame_cdata(frame), 30);
    sk2_frame_destroy(&back);
    for (size_t cut = 0; cut < cdr.size; cut++)
        assert_int_not_equal(sk2_ros2_image_decode(cdr.data, cut, &image, why, sizeof why), 0);

    /* Big-endian pixels, 32FC1 metres (rounded, NaN and far to 0), bgr8 and rgba8 swaps. */
    uint8_t be[4] = {0x12, 0x34, 0xab, 0xcd};
    image = (sk2_ros2_image_in_t){
        .height = 1, .width = 2, .step = 4, .is_bigendian = true, .data = be, .size = 4};
    strcpy(image.encoding, "mono16");
    assert_int_equal(sk2_ros2_image_to_frame(&image, SK2_STREAM_IR, &back, why, sizeof why), 0);
    assert_int_equal(sk2_frame_format(back), SK2_PIXEL_GRAY16);
    assert_int_equal(sk2_frame_cdata16(back)[0], 0x1234);
    assert_int_equal(sk2_frame_cdata16(back)[1], 0xabcd);
    sk2_frame_destroy(&back);
    float metres[5] = {1.2344f, 0.0005f, NAN, 70.0f, -1.0f};
    image = (sk2_ros2_image_in_t){
        .height = 1, .width = 5, .step = 20, .data = (uint8_t *)metres, .size = 20};
    strcpy(image.encoding, "32FC1");
    assert_int_equal(sk2_ros2_image_to_frame(&image, SK2_STREAM_DEPTH, &back, why, sizeof why), 0);
    const uint16_t want[5] = {1234, 1, 0, 0, 0};
    assert_memory_equal(sk2_frame_cdata16(back), want, sizeof want);
    sk2_frame_destroy(&back);
    uint8_t bgr[6] = {1, 2, 3, 4, 5, 6};
    image = (sk2_ros2_image_in_t){.height = 1, .width = 2, .step = 6, .data = bgr, .size = 6};
    strcpy(image.encoding, "bgr8");
    assert_int_equal(sk2_ros2_image_to_frame(&image, SK2_STREAM_COLOR, &back, why, sizeof why), 0);
    const uint8_t rgb[6] = {3, 2, 1, 6, 5, 4};
    assert_memory_equal(sk2_frame_cdata(back), rgb, 6);
    sk2_frame_destroy(&back);
    /* A step that does not hold a row, data shorter than the rows, an unknown encoding. */
    image.step = 5;
    assert_int_equal(sk2_ros2_image_to_frame(&image, SK2_STREAM_COLOR, &back, why, sizeof why),
                     SK2_ECORRUPT);
    image.step = 6;
    image.height = 2;
    assert_int_equal(sk2_ros2_image_to_frame(&image, SK2_STREAM_COLOR, &back, why, sizeof why),
                     SK2_ECORRUPT);
    strcpy(image.encoding, "yuv422");
    assert_int_equal(sk2_ros2_image_to_frame(&image, SK2_STREAM_COLOR, &back, why, sizeof why),
                     SK2_EUNSUPPORTED);
    assert_null(back);

    /* CameraInfo: K and D back to sk2's model. */
    assert_int_equal(sk2_ros2_camera_info_encode(&cdr, &header, 640, 480, &s_k), 0);
    sk2_ros2_camera_info_in_t ci;
    assert_int_equal(sk2_ros2_camera_info_decode(cdr.data, cdr.size, &ci, why, sizeof why), 0);
    sk2_intrinsics_t k;
    bool is_partial = true;
    assert_int_equal(sk2_ros2_camera_info_intrinsics(&ci, &k, &is_partial), 0);
    assert_false(is_partial);
    assert_memory_equal(&k, &s_k, sizeof k);
    for (size_t cut = 0; cut < cdr.size; cut++)
        assert_int_not_equal(sk2_ros2_camera_info_decode(cdr.data, cut, &ci, why, sizeof why), 0);
    /* A D count the message cannot hold is refused before it is read. */
    size_t d_at = 4 + 8 + 4 + 8 + 4 + 4 + 4 + 10; /* after "plumb_bob\0" */
    d_at = (d_at + 3) & ~(size_t)3;
    assert_int_equal(cdr.data[d_at], 5);
    cdr.data[d_at + 3] = 0x40;
    assert_int_equal(sk2_ros2_camera_info_decode(cdr.data, cdr.size, &ci, why, sizeof why),
                     SK2_ECORRUPT);
    /* Another encapsulation. */
    cdr.data[1] = 0x07;
    assert_int_equal(sk2_ros2_camera_info_decode(cdr.data, cdr.size, &ci, why, sizeof why),
                     SK2_EUNSUPPORTED);
    sk2_cdr_free(&cdr);
    sk2_frame_destroy(&frame);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_cdr_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
