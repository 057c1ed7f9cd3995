/* Recordings: the file format's round trip, a cut at every byte, damaged CRCs and indexes,
 * another version, limits, a full disk, TUM folders both ways, and the replay device. Every
 * file is real, in a fresh temporary folder. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "record/format.h"
#include "sk2/sk2.h"
#include "testutil.h"

static char s_dir[256];

static const char *s_path(const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", s_dir, name);
    return path;
}

static sk2_stream_info_t s_depth_info(uint32_t w, uint32_t h)
{
    return (sk2_stream_info_t){.kind = SK2_STREAM_DEPTH,
                               .format = SK2_PIXEL_DEPTH_MM16,
                               .width = w,
                               .height = h,
                               .fps = 30,
                               .depth_unit_m = 0.001,
                               .has_intrinsics = true,
                               .intrinsics = {.fx = 5.5, .fy = 5.25, .cx = 3.5, .cy = 2.5}};
}

static sk2_frame_t *s_depth_frame(uint32_t w, uint32_t h, uint32_t seed, uint64_t seq,
                                  int64_t time_us)
{
    sk2_frame_t *f = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, w, h);
    testutil_fill_noise(f, seed, 8000);
    sk2_frame_set_sequence(f, seq);
    sk2_frame_set_capture_time_us(f, time_us);
    sk2_frame_set_device_timestamp_us(f, time_us - 1000000);
    return f;
}

static sk2_frame_t *s_color_frame(uint32_t w, uint32_t h, uint32_t seed, uint64_t seq,
                                  int64_t time_us)
{
    sk2_frame_t *f = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, w, h);
    uint8_t *px = sk2_frame_data(f);
    for (size_t i = 0; i < sk2_frame_size(f); i++)
        px[i] = (uint8_t)(i * 7 + seed * 13);
    sk2_frame_set_sequence(f, seq);
    sk2_frame_set_capture_time_us(f, time_us);
    return f;
}

/* A small recording: one device, `frames` depth frames of 8x6 (sequence 5, 6, 8, ...: a gap
 * after the second) 10 ms apart. */
static void s_write_small(const char *path, size_t frames)
{
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    assert_int_equal(sk2_recording_writer_open(w, path), 0);
    sk2_stream_info_t info = s_depth_info(8, 6);
    size_t index = 99;
    assert_int_equal(sk2_recording_writer_add_device(w, "dev-a", "SN1", "mock", &info, 1, &index),
                     0);
    assert_int_equal(index, 0);
    for (size_t i = 0; i < frames; i++) {
        uint64_t seq = 5 + i + (i >= 2);
        sk2_frame_t *f = s_depth_frame(8, 6, (uint32_t)i, seq, 1000000000 + (int64_t)i * 10000);
        assert_int_equal(sk2_recording_writer_add_frame(w, 0, f, sk2_codec_find("rvl")), 0);
        sk2_frame_destroy(&f);
    }
    assert_int_equal(sk2_recording_writer_frames(w), frames);
    assert_int_equal(sk2_recording_writer_close(w), 0);
    sk2_recording_writer_destroy(&w);
}

static void s_check_frame(sk2_recording_reader_t *r, size_t i)
{
    sk2_frame_t *got = NULL;
    assert_int_equal(sk2_recording_reader_read_frame(r, i, &got), 0);
    sk2_frame_t *want = s_depth_frame(8, 6, (uint32_t)i, 0, 0);
    assert_memory_equal(sk2_frame_cdata(got), sk2_frame_cdata(want), sk2_frame_size(want));
    assert_int_equal(sk2_frame_capture_time_us(got), 1000000000 + (int64_t)i * 10000);
    sk2_frame_destroy(&got);
    sk2_frame_destroy(&want);
}

static uint8_t *s_slurp(const char *path, size_t *size)
{
    uint8_t *data = testutil_read_file(path, size);
    assert_non_null(data);
    return data;
}

static void s_spit(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
}

static int s_open(const char *path, sk2_recording_reader_t **r)
{
    *r = sk2_recording_reader_new();
    return sk2_recording_reader_open(*r, path);
}

static void test_round_trip_keeps_devices_frames_and_bytes(void **state)
{
    (void)state;
    const char *path = s_path("round.sk2r");
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    assert_int_equal(sk2_recording_writer_open(w, path), 0);
    sk2_stream_info_t a[2] = {
        s_depth_info(16, 12),
        {.kind = SK2_STREAM_COLOR, .format = SK2_PIXEL_RGB24, .width = 10, .height = 4, .fps = 15}};
    size_t da = 0, db = 0;
    assert_int_equal(sk2_recording_writer_add_device(w, "alpha", "S-1", "mock", a, 2, &da), 0);
    assert_int_equal(sk2_recording_writer_add_device(w, "beta", NULL, NULL, a, 1, &db), 0);
    assert_int_equal(db, 1);
    for (int i = 0; i < 6; i++) {
        sk2_frame_t *d = s_depth_frame(16, 12, (uint32_t)i, (uint64_t)i, 2000 + i * 100);
        sk2_frame_t *c = s_color_frame(10, 4, (uint32_t)i, (uint64_t)i, 2000 + i * 100);
        assert_int_equal(sk2_recording_writer_add_frame(w, da, d, sk2_codec_find("sk2d")), 0);
        assert_int_equal(sk2_recording_writer_add_frame(w, da, c, sk2_codec_find("raw")), 0);
        assert_int_equal(sk2_recording_writer_add_frame(w, db, d, sk2_codec_find("raw")), 0);
        sk2_frame_destroy(&d);
        sk2_frame_destroy(&c);
    }
    /* A colour frame for a device without colour is refused and changes nothing. */
    sk2_frame_t *c = s_color_frame(10, 4, 0, 0, 0);
    assert_int_equal(sk2_recording_writer_add_frame(w, db, c, sk2_codec_find("raw")), SK2_EINVAL);
    assert_int_equal(sk2_recording_writer_add_frame(w, 7, c, sk2_codec_find("raw")), SK2_EINVAL);
    sk2_frame_destroy(&c);
    assert_int_equal(sk2_recording_writer_close(w), 0);
    sk2_recording_writer_destroy(&w);

    sk2_recording_reader_t *r = NULL;
    assert_int_equal(s_open(path, &r), 0);
    assert_true(sk2_recording_reader_has_index(r));
    assert_string_equal(sk2_recording_reader_why(r), "");
    assert_int_equal(sk2_recording_reader_device_count(r), 2);
    assert_string_equal(sk2_recording_reader_device_id(r, 0), "alpha");
    assert_string_equal(sk2_recording_reader_device_serial(r, 0), "S-1");
    assert_string_equal(sk2_recording_reader_device_backend(r, 0), "mock");
    assert_string_equal(sk2_recording_reader_device_serial(r, 1), "");
    assert_int_equal(sk2_recording_reader_stream_count(r, 0), 2);
    sk2_stream_info_t info;
    assert_int_equal(sk2_recording_reader_stream_info(r, 0, 0, &info), 0);
    assert_true(info.has_intrinsics);
    assert_true(info.intrinsics.fx == 5.5 && info.intrinsics.cy == 2.5);
    assert_true(info.depth_unit_m == 0.001);
    assert_int_equal(sk2_recording_reader_frame_count(r), 18);
    for (size_t i = 0; i < 18; i++) {
        sk2_recording_frame_info_t fi;
        assert_int_equal(sk2_recording_reader_frame_info(r, i, &fi), 0);
        assert_int_equal(fi.sequence, i / 3);
        assert_int_equal(fi.capture_time_us, 2000 + (int64_t)(i / 3) * 100);
        sk2_frame_t *got = NULL;
        assert_int_equal(sk2_recording_reader_read_frame(r, i, &got), 0);
        sk2_frame_t *want = i % 3 == 1 ? s_color_frame(10, 4, (uint32_t)(i / 3), 0, 0)
                                       : s_depth_frame(16, 12, (uint32_t)(i / 3), 0, 0);
        assert_int_equal(sk2_frame_size(got), sk2_frame_size(want));
        assert_memory_equal(sk2_frame_cdata(got), sk2_frame_cdata(want), sk2_frame_size(want));
        sk2_frame_destroy(&got);
        sk2_frame_destroy(&want);
    }
    /* read_encoded gives back exactly what add_encoded stored. */
    const uint8_t *h = NULL, *p = NULL;
    size_t hs = 0, ps = 0;
    assert_int_equal(sk2_recording_reader_read_encoded(r, 1, &h, &hs, &p, &ps), 0);
    assert_int_equal(hs, 64);
    assert_int_equal(ps, 10 * 4 * 3);
    assert_int_equal(sk2_recording_reader_find_time(r, 2250), 9);
    assert_int_equal(sk2_recording_reader_find_time(r, 99999), 18);
    assert_int_equal(sk2_recording_reader_read_frame(r, 18, &c), SK2_ENOTFOUND);
    sk2_recording_reader_destroy(&r);
}

static void test_a_cut_at_every_byte_reads_up_to_the_last_whole_frame(void **state)
{
    (void)state;
    const char *full = s_path("cut-full.sk2r");
    s_write_small(full, 3);
    size_t size = 0;
    uint8_t *data = s_slurp(full, &size);
    /* Where each frame chunk ends, from walking the chunks: a cut at or after it keeps the
     * frame. */
    sk2_recording_reader_t *r = NULL;
    uint64_t ends[3] = {0};
    uint64_t offset = SK2_REC_FILE_HEADER_SIZE, first_frame = 0;
    size_t k = 0;
    while (offset + SK2_REC_CHUNK_HEADER <= size && k < 3) {
        uint64_t body = sk2_rec_get32(data + offset + 4);
        if (memcmp(data + offset, SK2_REC_FRAME, 4) == 0) {
            if (k == 0)
                first_frame = offset;
            ends[k++] = offset + SK2_REC_CHUNK_HEADER + body;
        }
        offset += SK2_REC_CHUNK_HEADER + body;
    }
    assert_int_equal(k, 3);
    const char *cut = s_path("cut.sk2r");
    for (size_t length = 0; length <= size; length++) {
        s_spit(cut, data, length);
        int rc = s_open(cut, &r);
        if (length < first_frame) {
            /* No device description yet: not a usable recording, and it says why. */
            assert_int_equal(rc, SK2_ECORRUPT);
            assert_true(strlen(sk2_recording_reader_why(r)) > 0);
        } else {
            assert_int_equal(rc, 0);
            size_t expect = (length >= ends[0]) + (length >= ends[1]) + (length >= ends[2]);
            assert_int_equal(sk2_recording_reader_frame_count(r), expect);
            assert_int_equal(sk2_recording_reader_has_index(r), length == size);
            for (size_t i = 0; i < expect; i++)
                s_check_frame(r, i);
        }
        sk2_recording_reader_destroy(&r);
    }
    free(data);
}

static void test_a_recording_that_was_never_closed_is_read_by_scanning(void **state)
{
    (void)state;
    const char *path = s_path("open.sk2r");
    s_write_small(path, 3);
    sk2_recording_reader_t *r = NULL;
    /* Cut the index and footer off: what a killed recorder leaves. */
    size_t size = 0;
    uint8_t *data = s_slurp(path, &size);
    uint64_t footer_at = size - SK2_REC_CHUNK_HEADER - SK2_REC_FOOTER_BODY;
    uint64_t index_at = sk2_rec_get64(data + footer_at + SK2_REC_CHUNK_HEADER);
    s_spit(path, data, index_at);
    free(data);
    assert_int_equal(s_open(path, &r), 0);
    assert_false(sk2_recording_reader_has_index(r));
    assert_non_null(strstr(sk2_recording_reader_why(r), "rebuilt by scanning"));
    assert_int_equal(sk2_recording_reader_frame_count(r), 3);
    assert_int_equal(sk2_recording_reader_ignored_bytes(r), 0);
    for (size_t i = 0; i < 3; i++)
        s_check_frame(r, i);
    sk2_recording_reader_destroy(&r);
}

/* Gaps (format 1.1): found through the index at close, and by scanning a file cut before
 * its index; bad gaps are refused when writing. */
static void test_gaps_are_kept_through_the_index_and_a_scan(void **state)
{
    (void)state;
    const char *path = s_path("gaps.sk2r");
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    assert_int_equal(sk2_recording_writer_open(w, path), 0);
    sk2_stream_info_t info = s_depth_info(8, 6);
    assert_int_equal(sk2_recording_writer_add_device(w, "dev-a", "SN1", "mock", &info, 1, NULL), 0);
    assert_int_equal(sk2_recording_writer_add_gap(w, 0, 5), SK2_EINVAL);
    assert_int_equal(sk2_recording_writer_add_gap(w, 10, 5), SK2_EINVAL);
    for (size_t i = 0; i < 4; i++) {
        if (i == 2)
            assert_int_equal(sk2_recording_writer_add_gap(w, 1000000015000, 1000003000000), 0);
        sk2_frame_t *f = s_depth_frame(8, 6, (uint32_t)i, i, 1000000000 + (int64_t)i * 10000);
        assert_int_equal(sk2_recording_writer_add_frame(w, 0, f, sk2_codec_find("rvl")), 0);
        sk2_frame_destroy(&f);
    }
    assert_int_equal(sk2_recording_writer_add_gap(w, 1000003100000, 1000003200000), 0);
    assert_int_equal(sk2_recording_writer_close(w), 0);
    sk2_recording_writer_destroy(&w);

    for (int cut = 0; cut < 2; cut++) {
        if (cut) { /* drop GAPS, index and footer: only the GAP chunks are left */
            size_t size = 0;
            uint8_t *data = s_slurp(path, &size);
            uint64_t footer_at = size - SK2_REC_CHUNK_HEADER - SK2_REC_FOOTER_BODY;
            uint64_t index_at = sk2_rec_get64(data + footer_at + SK2_REC_CHUNK_HEADER);
            uint64_t back = sk2_rec_get32(data + index_at + SK2_REC_CHUNK_HEADER + 12);
            assert_true(back > 0);
            s_spit(path, data, index_at - back);
            free(data);
        }
        sk2_recording_reader_t *r = NULL;
        assert_int_equal(s_open(path, &r), 0);
        assert_int_equal(sk2_recording_reader_has_index(r), !cut);
        unsigned major = 0, minor = 0;
        sk2_recording_reader_version(r, &major, &minor);
        assert_int_equal(minor, 1);
        assert_int_equal(sk2_recording_reader_frame_count(r), 4);
        assert_int_equal(sk2_recording_reader_gap_count(r), 2);
        int64_t start = 0, end = 0;
        uint64_t before = 0;
        assert_int_equal(sk2_recording_reader_gap(r, 0, &start, &end, &before), 0);
        assert_int_equal(start, 1000000015000);
        assert_int_equal(end, 1000003000000);
        assert_int_equal(before, 2);
        assert_int_equal(sk2_recording_reader_gap(r, 1, NULL, NULL, &before), 0);
        assert_int_equal(before, 4);
        assert_int_equal(sk2_recording_reader_gap(r, 2, NULL, NULL, NULL), SK2_ENOTFOUND);
        sk2_recording_reader_destroy(&r);
    }
}

static void test_a_damaged_crc_is_reported_and_the_rest_stays_readable(void **state)
{
    (void)state;
    const char *path = s_path("crc.sk2r");
    s_write_small(path, 3);
    sk2_recording_reader_t *r = NULL;
    assert_int_equal(s_open(path, &r), 0);
    sk2_recording_frame_info_t fi;
    assert_int_equal(sk2_recording_reader_frame_info(r, 1, &fi), 0);
    sk2_recording_reader_destroy(&r);
    size_t size = 0;
    uint8_t *data = s_slurp(path, &size);
    /* The last byte of frame 1's chunk: find it by its payload size from the index. */
    uint64_t footer_at = size - SK2_REC_CHUNK_HEADER - SK2_REC_FOOTER_BODY;
    uint64_t index_at = sk2_rec_get64(data + footer_at + SK2_REC_CHUNK_HEADER);
    const uint8_t *entry =
        data + index_at + SK2_REC_CHUNK_HEADER + SK2_REC_INDEX_HEAD + 8 + SK2_REC_INDEX_ENTRY;
    uint64_t frame1 = sk2_rec_get64(entry);
    data[frame1 + SK2_REC_CHUNK_HEADER + SK2_REC_PREFIX + 64 + fi.stored_bytes - 1] ^= 0x40;
    s_spit(path, data, size);
    assert_int_equal(s_open(path, &r), 0);
    assert_true(sk2_recording_reader_has_index(r));
    s_check_frame(r, 0);
    sk2_frame_t *f = NULL;
    assert_int_equal(sk2_recording_reader_read_frame(r, 1, &f), SK2_ECORRUPT);
    assert_null(f);
    assert_non_null(strstr(sk2_recording_reader_why(r), "CRC"));
    s_check_frame(r, 2);
    sk2_recording_reader_destroy(&r);

    /* Without the index, the scan stops at the damaged frame: the one before is kept. */
    s_spit(path, data, index_at);
    assert_int_equal(s_open(path, &r), 0);
    assert_int_equal(sk2_recording_reader_frame_count(r), 1);
    assert_true(sk2_recording_reader_ignored_bytes(r) > 0);
    assert_non_null(strstr(sk2_recording_reader_why(r), "CRC"));
    sk2_recording_reader_destroy(&r);

    /* A damaged index is not trusted: the frames are found by scanning. */
    data[frame1 + SK2_REC_CHUNK_HEADER + SK2_REC_PREFIX + 64 + fi.stored_bytes - 1] ^= 0x40;
    data[index_at + SK2_REC_CHUNK_HEADER + 20] ^= 0x01;
    s_spit(path, data, size);
    assert_int_equal(s_open(path, &r), 0);
    assert_false(sk2_recording_reader_has_index(r));
    assert_int_equal(sk2_recording_reader_frame_count(r), 3);
    sk2_recording_reader_destroy(&r);
    free(data);
}

static void test_other_versions_and_other_files_are_refused_clearly(void **state)
{
    (void)state;
    const char *path = s_path("version.sk2r");
    s_write_small(path, 1);
    size_t size = 0;
    uint8_t *data = s_slurp(path, &size);
    sk2_rec_put16(data + 8, 2);
    sk2_rec_put16(data + 10, 0); /* the writer's own minor version is 1 */
    sk2_rec_put32(data + 28, sk2_rec_crc(0, data, 28));
    s_spit(path, data, size);
    sk2_recording_reader_t *r = NULL;
    assert_int_equal(s_open(path, &r), SK2_EUNSUPPORTED);
    assert_non_null(strstr(sk2_recording_reader_why(r), "version 2.0"));
    assert_int_equal(sk2_recording_reader_frame_count(r), 0);
    sk2_recording_reader_destroy(&r);
    /* A later minor version is read. */
    sk2_rec_put16(data + 8, 1);
    sk2_rec_put16(data + 10, 7);
    sk2_rec_put32(data + 28, sk2_rec_crc(0, data, 28));
    s_spit(path, data, size);
    assert_int_equal(s_open(path, &r), 0);
    unsigned major = 0, minor = 0;
    sk2_recording_reader_version(r, &major, &minor);
    assert_int_equal(major * 100 + minor, 107);
    sk2_recording_reader_destroy(&r);
    /* A damaged file header. */
    data[16] ^= 1;
    s_spit(path, data, size);
    assert_int_equal(s_open(path, &r), SK2_ECORRUPT);
    sk2_recording_reader_destroy(&r);
    free(data);
    s_spit(path, (const uint8_t *)"hello, world\n", 13);
    assert_int_equal(s_open(path, &r), SK2_ECORRUPT);
    assert_non_null(strstr(sk2_recording_reader_why(r), "not an sk2 recording"));
    sk2_recording_reader_destroy(&r);
    assert_int_equal(s_open(s_path("missing.sk2r"), &r), SK2_ENOTFOUND);
    sk2_recording_reader_destroy(&r);
}

static void test_limits_are_checked_when_writing(void **state)
{
    (void)state;
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    sk2_stream_info_t info = s_depth_info(8, 6);
    assert_int_equal(sk2_recording_writer_add_device(w, "x", "", "", &info, 1, NULL), SK2_ESTATE);
    assert_int_equal(sk2_recording_writer_open(w, s_path("limits.sk2r")), 0);
    sk2_stream_info_t many[9];
    for (int i = 0; i < 9; i++)
        many[i] = info;
    assert_int_equal(sk2_recording_writer_add_device(w, "x", "", "", many, 9, NULL), SK2_EINVAL);
    assert_int_equal(sk2_recording_writer_add_device(w, "x", "", "", many, 2, NULL), SK2_EINVAL);
    sk2_stream_info_t bad = info;
    bad.width = 0;
    assert_int_equal(sk2_recording_writer_add_device(w, "x", "", "", &bad, 1, NULL), SK2_EINVAL);
    assert_int_equal(sk2_recording_writer_add_device(w, "", "", "", &info, 1, NULL), SK2_EINVAL);
    for (int i = 0; i < SK2_RECORDING_MAX_DEVICES; i++)
        assert_int_equal(sk2_recording_writer_add_device(w, "x", "", "", &info, 1, NULL), 0);
    assert_int_equal(sk2_recording_writer_add_device(w, "x", "", "", &info, 1, NULL), SK2_ELIMIT);
    uint8_t header[64] = {'n', 'o', 'p', 'e'};
    assert_int_equal(sk2_recording_writer_add_encoded(w, 0, header, 64, header, 0), SK2_EINVAL);
    assert_true(strlen(sk2_recording_writer_why(w)) > 0);
    assert_int_equal(sk2_recording_writer_frames(w), 0);
    assert_int_equal(sk2_recording_writer_close(w), 0);
    assert_int_equal(sk2_recording_writer_close(w), SK2_ESTATE);
    sk2_recording_writer_destroy(&w);
    sk2_recording_writer_destroy(&w);
    sk2_recording_reader_t *r = NULL;
    assert_int_equal(s_open(s_path("limits.sk2r"), &r), 0);
    assert_int_equal(sk2_recording_reader_device_count(r), SK2_RECORDING_MAX_DEVICES);
    sk2_recording_reader_destroy(&r);
}

static void test_a_full_disk_leaves_every_frame_written_before_it(void **state)
{
    (void)state;
    const char *path = s_path("full.sk2r");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The file size limit stands in for a full disk: writes fail with EFBIG. */
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit limit = {.rlim_cur = 3000, .rlim_max = 3000};
        setrlimit(RLIMIT_FSIZE, &limit);
        sk2_recording_writer_t *w = sk2_recording_writer_new();
        sk2_stream_info_t info = s_depth_info(8, 6);
        uint64_t written = 0;
        int rc = sk2_recording_writer_open(w, path);
        if (rc == 0)
            rc = sk2_recording_writer_add_device(w, "dev", "", "", &info, 1, NULL);
        for (int i = 0; rc == 0 && i < 1000; i++) {
            sk2_frame_t *f = s_depth_frame(8, 6, (uint32_t)i, (uint64_t)i, i);
            rc = sk2_recording_writer_add_frame(w, 0, f, sk2_codec_find("raw"));
            sk2_frame_destroy(&f);
            if (rc == 0)
                written++;
        }
        int after = sk2_recording_writer_add_frame(w, 0, NULL, NULL);
        (void)after;
        int code = rc == SK2_ESYS ? 0 : 1;
        if (write(fds[1], &written, sizeof written) != sizeof written)
            code = 1;
        sk2_recording_writer_destroy(&w);
        _exit(code);
    }
    close(fds[1]);
    uint64_t written = 0;
    assert_int_equal(read(fds[0], &written, sizeof written), sizeof written);
    close(fds[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_true(written > 5);
    sk2_recording_reader_t *r = NULL;
    assert_int_equal(s_open(path, &r), 0);
    assert_int_equal(sk2_recording_reader_frame_count(r), written);
    assert_int_equal(sk2_recording_reader_ignored_bytes(r), 0); /* cut back cleanly */
    for (size_t i = 0; i < written; i++) {
        sk2_frame_t *got = NULL;
        assert_int_equal(sk2_recording_reader_read_frame(r, i, &got), 0);
        sk2_frame_destroy(&got);
    }
    sk2_recording_reader_destroy(&r);
}

/* frames_synced counts only frames a flush (sync or close) covered: what sk2 record calls
 * acknowledged. A writer that is not open cannot flush. */
static void test_sync_counts_the_frames_it_flushed(void **state)
{
    (void)state;
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    assert_int_equal(sk2_recording_writer_sync(w), SK2_ESTATE);
    assert_int_equal(sk2_recording_writer_open(w, s_path("synced.sk2r")), 0);
    sk2_stream_info_t info = s_depth_info(8, 6);
    assert_int_equal(sk2_recording_writer_add_device(w, "dev", "", "", &info, 1, NULL), 0);
    for (int i = 0; i < 5; i++) {
        if (i == 3)
            assert_int_equal(sk2_recording_writer_sync(w), 0);
        sk2_frame_t *f = s_depth_frame(8, 6, (uint32_t)i, (uint64_t)i, i);
        assert_int_equal(sk2_recording_writer_add_frame(w, 0, f, sk2_codec_find("raw")), 0);
        sk2_frame_destroy(&f);
    }
    assert_int_equal(sk2_recording_writer_frames(w), 5);
    assert_int_equal(sk2_recording_writer_frames_synced(w), 3);
    assert_int_equal(sk2_recording_writer_close(w), 0);
    assert_int_equal(sk2_recording_writer_frames_synced(w), 5);
    assert_int_equal(sk2_recording_writer_sync(w), SK2_ESTATE);
    sk2_recording_writer_destroy(&w);
    assert_int_equal(sk2_recording_writer_frames_synced(NULL), 0);
}

/* A TUM folder whose depth PNG declares 16384 x 16384 pixels in a few dozen bytes (a PNG bomb
 * cut short): refused against the frame budget from its header, before libpng allocates half a
 * gigabyte for it. */
static void test_a_tum_png_over_the_frame_budget_is_refused_before_decoding(void **state)
{
    (void)state;
    const char *dir = s_path("bomb-tum");
    assert_int_equal(mkdir(dir, 0755), 0);
    char list[4200], image[4200];
    snprintf(list, sizeof list, "%s/depth.txt", dir);
    snprintf(image, sizeof image, "%s/d.png", dir);
    s_spit(list, (const uint8_t *)"1.0 d.png\n", 10);
    uint8_t png[33] = {0x89, 'P', 'N', 'G',  '\r', '\n', 0x1a, '\n', 0, 0,  0, 13, 'I', 'H', 'D',
                       'R',  0,   0,   0x40, 0,    0,    0,    0x40, 0, 16, 0, 0,  0,   0};
    uint32_t crc = (uint32_t)crc32(0, png + 12, 17);
    png[29] = (uint8_t)(crc >> 24);
    png[30] = (uint8_t)(crc >> 16);
    png[31] = (uint8_t)(crc >> 8);
    png[32] = (uint8_t)crc;
    s_spit(image, png, sizeof png);
    sk2_recording_reader_t *r = NULL;
    assert_int_equal(s_open(dir, &r), SK2_ELIMIT);
    assert_non_null(
        strstr(sk2_recording_reader_why(r), "16384x16384 image is over the frame limit"));
    sk2_recording_reader_destroy(&r);
}

static void test_tum_export_and_import_give_back_pixels_and_times(void **state)
{
    (void)state;
    const char *path = s_path("tum.sk2r");
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    assert_int_equal(sk2_recording_writer_open(w, path), 0);
    sk2_stream_info_t infos[2] = {
        s_depth_info(16, 12),
        {.kind = SK2_STREAM_COLOR, .format = SK2_PIXEL_RGB24, .width = 10, .height = 4, .fps = 30}};
    assert_int_equal(sk2_recording_writer_add_device(w, "tumdev", "SN9", "mock", infos, 2, NULL),
                     0);
    for (int i = 0; i < 4; i++) {
        sk2_frame_t *d =
            s_depth_frame(16, 12, (uint32_t)i, (uint64_t)i, 1311868164363181 + i * 33333);
        sk2_frame_t *c =
            s_color_frame(10, 4, (uint32_t)i, (uint64_t)i, 1311868164373000 + i * 33333);
        assert_int_equal(sk2_recording_writer_add_frame(w, 0, d, sk2_codec_find("sk2d")), 0);
        assert_int_equal(sk2_recording_writer_add_frame(w, 0, c, sk2_codec_find("raw")), 0);
        sk2_frame_destroy(&d);
        sk2_frame_destroy(&c);
    }
    assert_int_equal(sk2_recording_writer_close(w), 0);
    sk2_recording_writer_destroy(&w);

    sk2_recording_reader_t *r = NULL;
    assert_int_equal(s_open(path, &r), 0);
    char why[512] = "";
    const char *dir = s_path("tum");
    char tum[512];
    snprintf(tum, sizeof tum, "%s", dir);
    assert_int_equal(sk2_recording_export_tum(r, 0, tum, why, sizeof why), 0);
    /* A second export into the same folder would mix two recordings. */
    assert_int_equal(sk2_recording_export_tum(r, 0, tum, why, sizeof why), SK2_EEXIST);
    /* TUM's own scale in the PNG: millimetres x 5. */
    char png[600];
    snprintf(png, sizeof png, "%s/depth/1311868164.363181.png", tum);
    sk2_frame_t *raw = NULL;
    assert_int_equal(sk2_frame_read_png(png, SK2_PIXEL_DEPTH_MM16, &raw, why, sizeof why), 0);
    sk2_frame_t *want = s_depth_frame(16, 12, 0, 0, 0);
    assert_int_equal(sk2_frame_cdata16(raw)[3], 5 * sk2_frame_cdata16(want)[3]);
    sk2_frame_destroy(&raw);
    sk2_frame_destroy(&want);

    sk2_recording_reader_t *t = NULL;
    assert_int_equal(s_open(tum, &t), 0);
    assert_string_equal(sk2_recording_reader_format(t), "tum");
    assert_string_equal(sk2_recording_reader_device_id(t, 0), "tumdev");
    assert_string_equal(sk2_recording_reader_device_serial(t, 0), "SN9");
    assert_int_equal(sk2_recording_reader_frame_count(t), 8);
    sk2_stream_info_t info;
    assert_int_equal(sk2_recording_reader_stream_info(t, 0, 0, &info), 0);
    assert_true(info.depth_unit_m == 0.001 && info.has_intrinsics && info.intrinsics.fx == 5.5);
    for (size_t i = 0; i < 8; i++) {
        sk2_recording_frame_info_t a, b;
        assert_int_equal(sk2_recording_reader_frame_info(r, i, &a), 0);
        /* The folder lists frames by time: find the same one there. */
        size_t j = sk2_recording_reader_find_time(t, a.capture_time_us);
        assert_int_equal(sk2_recording_reader_frame_info(t, j, &b), 0);
        assert_int_equal(a.kind, b.kind);
        assert_int_equal(a.capture_time_us, b.capture_time_us);
        sk2_frame_t *fa = NULL, *fb = NULL;
        assert_int_equal(sk2_recording_reader_read_frame(r, i, &fa), 0);
        assert_int_equal(sk2_recording_reader_read_frame(t, j, &fb), 0);
        assert_int_equal(sk2_frame_size(fa), sk2_frame_size(fb));
        assert_memory_equal(sk2_frame_cdata(fa), sk2_frame_cdata(fb), sk2_frame_size(fa));
        sk2_frame_destroy(&fa);
        sk2_frame_destroy(&fb);
    }
    sk2_recording_reader_destroy(&t);
    sk2_recording_reader_destroy(&r);

    /* A public dataset has no sk2.json: the PNG values are kept, at 1/5000 m. */
    char side[600];
    snprintf(side, sizeof side, "%s/sk2.json", tum);
    assert_int_equal(unlink(side), 0);
    assert_int_equal(s_open(tum, &t), 0);
    assert_int_equal(sk2_recording_reader_stream_info(t, 0, 0, &info), 0);
    assert_true(info.depth_unit_m == 0.0002 && !info.has_intrinsics);
    assert_true(info.fps > 29.9 && info.fps < 30.1); /* from the timestamps */
    sk2_frame_t *f = NULL;
    assert_int_equal(sk2_recording_reader_read_frame(t, 0, &f), 0);
    want = s_depth_frame(16, 12, 0, 0, 0);
    assert_int_equal(sk2_frame_cdata16(f)[3], 5 * sk2_frame_cdata16(want)[3]);
    sk2_frame_destroy(&f);
    sk2_frame_destroy(&want);
    sk2_recording_reader_destroy(&t);

    /* A list line that escapes the folder is refused. */
    char list[600];
    snprintf(list, sizeof list, "%s/rgb.txt", tum);
    FILE *file = fopen(list, "w");
    fprintf(file, "# x\n1.5 ../../etc/passwd\n");
    fclose(file);
    assert_int_equal(s_open(tum, &t), SK2_ECORRUPT);
    assert_non_null(strstr(sk2_recording_reader_why(t), "rgb.txt line 2"));
    sk2_recording_reader_destroy(&t);
}

/* ---- Replay device ---- */

typedef struct {
    sk2_frame_t *frames[32];
    size_t count;
} s_sink_t;

static void s_collect(void *arg, sk2_frame_t **frame_p)
{
    s_sink_t *sink = arg;
    if (sink->count < 32) {
        sink->frames[sink->count++] = *frame_p;
        *frame_p = NULL;
    }
}

static void s_replay(const char *path, bool is_looping, s_sink_t *sink, size_t want)
{
    sk2_device_t *d = sk2_device_new("replay");
    assert_non_null(d);
    assert_int_equal(sk2_device_set_fps(d, 30), SK2_EUNSUPPORTED);
    assert_int_equal(sk2_device_set_replay_rate(d, -1), SK2_EINVAL);
    assert_int_equal(sk2_device_set_replay_source(d, path, 0), 0);
    assert_int_equal(sk2_device_set_replay_rate(d, 0), 0);
    assert_int_equal(sk2_device_set_replay_loop(d, is_looping), 0);
    assert_int_equal(sk2_device_open(d), 0);
    assert_int_equal(sk2_device_set_replay_source(d, path, 0), SK2_ESTATE);
    assert_string_equal(sk2_device_id(d), "dev-a");
    assert_string_equal(sk2_device_backend(d), "replay");
    assert_string_equal(sk2_device_serial(d), "SN1");
    sk2_stream_info_t info;
    assert_int_equal(sk2_device_stream_info(d, 0, &info), 0);
    assert_true(info.has_intrinsics && info.intrinsics.fx == 5.5);
    assert_int_equal(sk2_device_start(d, s_collect, sink), 0);
    for (int i = 0; i < 2000 && sk2_device_frames_produced(d) < want; i++)
        usleep(1000);
    if (!is_looping) {
        for (int i = 0; i < 2000 && !sk2_device_replay_is_finished(d); i++)
            usleep(1000);
        assert_true(sk2_device_replay_is_finished(d));
    }
    sk2_device_destroy(&d);
}

static void test_replay_plays_recorded_frames_sequences_and_intrinsics(void **state)
{
    (void)state;
    const char *path = s_path("replay.sk2r");
    s_write_small(path, 3);
    s_sink_t sink = {0};
    s_replay(path, false, &sink, 3);
    assert_int_equal(sink.count, 3);
    const uint64_t seqs[] = {5, 6, 8};
    for (size_t i = 0; i < 3; i++) {
        sk2_frame_t *want = s_depth_frame(8, 6, (uint32_t)i, 0, 0);
        assert_int_equal(sk2_frame_sequence(sink.frames[i]), seqs[i]);
        assert_memory_equal(sk2_frame_cdata(sink.frames[i]), sk2_frame_cdata(want),
                            sk2_frame_size(want));
        /* A new capture time, now-ish, not the recorded 1970 one. */
        assert_true(sk2_frame_capture_time_us(sink.frames[i]) > 1600000000000000LL);
        sk2_frame_destroy(&want);
        sk2_frame_destroy(&sink.frames[i]);
    }

    /* Looping numbers on by the recorded span (5..8 is 4), so the gap recurs in place. */
    s_sink_t loop = {0};
    s_replay(path, true, &loop, 7);
    assert_true(loop.count >= 7);
    const uint64_t looped[] = {5, 6, 8, 9, 10, 12, 13};
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(sk2_frame_sequence(loop.frames[i]), looped[i]);
    for (size_t i = 0; i < loop.count; i++)
        sk2_frame_destroy(&loop.frames[i]);

    sk2_device_t *d = sk2_device_new("replay");
    assert_int_equal(sk2_device_open(d), SK2_EDEVICE); /* no source */
    sk2_device_destroy(&d);
    d = sk2_device_new("replay");
    assert_int_equal(sk2_device_set_replay_source(d, s_path("nothing.sk2r"), 0), 0);
    assert_int_equal(sk2_device_open(d), SK2_EDEVICE);
    sk2_device_destroy(&d);
    d = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_replay_source(d, path, 0), SK2_EINVAL);
    sk2_device_destroy(&d);
}

/* Receives frames until `quiet_ms` pass without one (or a REPLAY answer, if asked for, has come
 * and then quiet_ms passed); returns how many came and the last sequence in *last. */
static int s_drain(sk2_client_t *client, int quiet_ms, uint64_t *last)
{
    int count = 0;
    sk2_event_t *event;
    while ((event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, quiet_ms, NULL))) {
        *last = sk2_frame_sequence(sk2_event_frame(event));
        count++;
        sk2_event_destroy(&event);
    }
    return count;
}

/* Sends a replay request and returns the answer's JSON (caller frees). */
static char *s_replay_request(sk2_client_t *client, const char *action, double position_s)
{
    assert_int_equal(sk2_client_replay_control(client, NULL, action, position_s), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_REPLAY, NULL, 5000, NULL);
    assert_non_null(event);
    char *json = strdup(sk2_event_json(event));
    sk2_event_destroy(&event);
    return json;
}

static void test_replay_waits_for_a_listener_and_pauses_resumes_and_seeks(void **state)
{
    (void)state;
    /* 40 frames 10 ms apart, sequences 5, 6, 8, 9 .. 44, played ten times slower. */
    const char *path = s_path("control.sk2r");
    s_write_small(path, 40);
    sk2_device_t *d = sk2_device_new("replay");
    assert_non_null(d);
    assert_int_equal(sk2_device_replay_control(d, SK2_REPLAY_STATUS, 0, NULL), SK2_ESTATE);
    assert_int_equal(sk2_device_set_replay_source(d, path, 0), 0);
    assert_int_equal(sk2_device_set_replay_rate(d, 0.1), 0);
    assert_int_equal(sk2_device_set_replay_wait(d, true), 0);
    assert_int_equal(sk2_device_open(d), 0);
    sk2_device_t *replay = d; /* borrowed once the server owns it */
    sk2_server_t *server = sk2_server_new("replay test");
    assert_non_null(server);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_server_add_device(server, &d), 0);
    /* Longer than the whole recording would take if it played to nobody. */
    usleep(600000);
    sk2_replay_status_t status;
    assert_int_equal(sk2_device_replay_control(replay, SK2_REPLAY_STATUS, 0, &status), 0);
    assert_true(status.is_waiting);
    assert_int_equal(status.played, 0);
    assert_int_equal(status.frames, 40);
    assert_int_equal(sk2_device_replay_control(replay, SK2_REPLAY_SEEK, -1, NULL), SK2_EINVAL);
    assert_int_equal(sk2_device_replay_control(replay, (sk2_replay_action_t)9, 0, NULL),
                     SK2_EINVAL);

    sk2_client_t *client = sk2_client_new();
    assert_non_null(client);
    assert_int_equal(sk2_client_replay_control(client, NULL, "rewind", 0), SK2_EINVAL);
    assert_int_equal(sk2_client_replay_control(client, NULL, "seek", -2), SK2_EINVAL);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_CONNECTED, NULL, 5000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    char *json = s_replay_request(client, "status", 0);
    assert_non_null(strstr(json, "\"state\":\"waiting\""));
    free(json);
    assert_int_equal(sk2_client_subscribe(client, "dev-a", SK2_STREAM_DEPTH, "raw"), 0);
    /* The first frame a late listener gets is the recording's first. */
    event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 5000, NULL);
    assert_non_null(event);
    assert_int_equal(sk2_frame_sequence(sk2_event_frame(event)), 5);
    sk2_event_destroy(&event);

    /* Paused: at most a frame already on its way, then nothing. */
    json = s_replay_request(client, "pause", 0);
    assert_non_null(strstr(json, "\"state\":\"paused\""));
    free(json);
    uint64_t last = 5;
    s_drain(client, 300, &last);
    assert_int_equal(s_drain(client, 500, &last), 0);
    assert_true(last < 44);

    /* Seek back to 0.1 s (frame 10, sequence 16) and resume: that frame comes next, numbered
     * on as a new pass (16 + 40), so that numbers only grow. */
    json = s_replay_request(client, "seek", 0.1);
    free(json);
    for (int i = 0; i < 100; i++) {
        assert_int_equal(sk2_device_replay_control(replay, SK2_REPLAY_STATUS, 0, &status), 0);
        if (status.position == 10)
            break;
        usleep(10000);
    }
    assert_int_equal(status.position, 10);
    assert_true(status.is_paused);
    json = s_replay_request(client, "resume", 0);
    assert_non_null(strstr(json, "\"state\":\"playing\""));
    free(json);
    event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 5000, NULL);
    assert_non_null(event);
    uint64_t next = sk2_frame_sequence(sk2_event_frame(event));
    sk2_event_destroy(&event);
    assert_true(next == 16 || next == 56);
    assert_true(next > last);

    /* A device that is not a replay says so. */
    sk2_device_t *mock = sk2_device_new("mock");
    assert_int_equal(sk2_device_replay_control(mock, SK2_REPLAY_PAUSE, 0, NULL), SK2_EUNSUPPORTED);
    sk2_device_destroy(&mock);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static int s_setup(void **state)
{
    (void)state;
    snprintf(s_dir, sizeof s_dir, "/tmp/sk2-test-recording-XXXXXX");
    return mkdtemp(s_dir) ? 0 : -1;
}

static int s_teardown(void **state)
{
    (void)state;
    char command[300];
    snprintf(command, sizeof command, "rm -rf '%s'", s_dir);
    return system(command) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_keeps_devices_frames_and_bytes),
        cmocka_unit_test(test_a_cut_at_every_byte_reads_up_to_the_last_whole_frame),
        cmocka_unit_test(test_a_recording_that_was_never_closed_is_read_by_scanning),
        cmocka_unit_test(test_gaps_are_kept_through_the_index_and_a_scan),
        cmocka_unit_test(test_a_damaged_crc_is_reported_and_the_rest_stays_readable),
        cmocka_unit_test(test_other_versions_and_other_files_are_refused_clearly),
        cmocka_unit_test(test_limits_are_checked_when_writing),
        cmocka_unit_test(test_a_full_disk_leaves_every_frame_written_before_it),
        cmocka_unit_test(test_sync_counts_the_frames_it_flushed),
        cmocka_unit_test(test_a_tum_png_over_the_frame_budget_is_refused_before_decoding),
        cmocka_unit_test(test_tum_export_and_import_give_back_pixels_and_times),
        cmocka_unit_test(test_replay_plays_recorded_frames_sequences_and_intrinsics),
        cmocka_unit_test(test_replay_waits_for_a_listener_and_pauses_resumes_and_seeks),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
