/* Recording figures: how fast the writer appends frames (MB/s and CPU per frame, what
 * `sk2 record` adds on top of receiving), how fast a closed recording opens and reads, and how
 * many frames per second a replay device delivers as fast as possible (reading, CRC, decoding).
 * Frames are the mock scene (depth and IR, 512x424) encoded as a server sends them.
 *
 * Usage: bench_recording [--frames N] [--runs R] [--dir DIR]   (prints a Markdown table) */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "sk2/sk2.h"

typedef struct {
    double mb_per_s, cpu_us_per_frame, frames_per_s;
} s_result_t;

static double s_cpu_us(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec * 1e6 + (double)usage.ru_utime.tv_usec +
           (double)usage.ru_stime.tv_sec * 1e6 + (double)usage.ru_stime.tv_usec;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Pre-encoded frames: the mock scene at `count` different instants, depth then IR. */
typedef struct {
    uint8_t header[64];
    uint8_t *payload;
    size_t size;
} s_wire_t;

static s_wire_t *s_prepare(const char *codec_name, size_t count, const char *path)
{
    /* Encode through a writer into a scratch recording, then take the bytes back out. */
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    sk2_device_t *mock = sk2_device_new("mock");
    sk2_device_open(mock);
    sk2_stream_info_t infos[2];
    sk2_device_stream_info(mock, 0, &infos[0]);
    sk2_device_stream_info(mock, 1, &infos[1]);
    if (sk2_recording_writer_open(w, path) != 0 ||
        sk2_recording_writer_add_device(w, sk2_device_id(mock), sk2_device_serial(mock), "mock",
                                        infos, 2, NULL) != 0) {
        fprintf(stderr, "bench_recording: %s\n", sk2_recording_writer_why(w));
        exit(1);
    }
    const sk2_codec_t *codec = sk2_codec_find(codec_name);
    for (size_t i = 0; i < count; i++) {
        sk2_frame_t *d = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, 512, 424);
        sk2_frame_t *ir = sk2_frame_new(SK2_STREAM_IR, SK2_PIXEL_GRAY16, 512, 424);
        int dx = (int)(i % 201) - 100;
        sk2_mock_render(sk2_frame_data16(d), dx);
        for (size_t p = 0; p < 512 * 424; p++)
            sk2_frame_data16(ir)[p] = sk2_mock_ir(sk2_frame_cdata16(d)[p]);
        int64_t t = 1700000000000000LL + (int64_t)i * 33333;
        sk2_frame_set_sequence(d, i);
        sk2_frame_set_sequence(ir, i);
        sk2_frame_set_capture_time_us(d, t);
        sk2_frame_set_capture_time_us(ir, t);
        sk2_recording_writer_add_frame(w, 0, d, codec);
        sk2_recording_writer_add_frame(w, 0, ir, codec);
        sk2_frame_destroy(&d);
        sk2_frame_destroy(&ir);
    }
    sk2_recording_writer_close(w);
    sk2_recording_writer_destroy(&w);
    sk2_device_destroy(&mock);
    sk2_recording_reader_t *r = sk2_recording_reader_new();
    sk2_recording_reader_open(r, path);
    s_wire_t *wire = calloc(2 * count, sizeof *wire);
    for (size_t i = 0; i < 2 * count; i++) {
        const uint8_t *h, *p;
        size_t hs, ps;
        sk2_recording_reader_read_encoded(r, i, &h, &hs, &p, &ps);
        memcpy(wire[i].header, h, 64);
        wire[i].payload = malloc(ps);
        memcpy(wire[i].payload, p, ps);
        wire[i].size = ps;
    }
    sk2_recording_reader_destroy(&r);
    return wire;
}

static s_result_t s_write(const s_wire_t *wire, size_t frames, const char *path)
{
    sk2_recording_writer_t *w = sk2_recording_writer_new();
    sk2_stream_info_t infos[2] = {
        {.kind = SK2_STREAM_DEPTH, .format = SK2_PIXEL_DEPTH_MM16, .width = 512, .height = 424},
        {.kind = SK2_STREAM_IR, .format = SK2_PIXEL_GRAY16, .width = 512, .height = 424}};
    double cpu = s_cpu_us();
    int64_t start = sk2_clock_mono_us();
    sk2_recording_writer_open(w, path);
    sk2_recording_writer_add_device(w, "bench", "", "mock", infos, 2, NULL);
    for (size_t i = 0; i < frames; i++)
        sk2_recording_writer_add_encoded(w, 0, wire[i].header, 64, wire[i].payload, wire[i].size);
    sk2_recording_writer_close(w); /* includes the fsync: the data is on disk */
    double seconds = (double)(sk2_clock_mono_us() - start) / 1e6;
    double cpu_us = s_cpu_us() - cpu;
    s_result_t result = {(double)sk2_recording_writer_bytes(w) / 1e6 / seconds,
                         cpu_us / (double)frames, (double)frames / seconds};
    sk2_recording_writer_destroy(&w);
    return result;
}

typedef struct {
    _Atomic uint64_t frames;
} s_counter_t;

static void s_count(void *arg, sk2_frame_t **frame_p)
{
    s_counter_t *c = arg;
    atomic_fetch_add(&c->frames, 1);
    (void)frame_p; /* left to the device, which destroys it */
}

static s_result_t s_replay(const char *path, size_t frames)
{
    sk2_device_t *d = sk2_device_new("replay");
    sk2_device_set_replay_source(d, path, 0);
    sk2_device_set_replay_rate(d, 0);
    sk2_device_open(d);
    sk2_device_set_stream_enabled(d, SK2_STREAM_IR, true);
    s_counter_t counter = {0};
    double cpu = s_cpu_us();
    int64_t start = sk2_clock_mono_us();
    sk2_device_start(d, s_count, &counter);
    while (!sk2_device_replay_is_finished(d))
        usleep(1000);
    double seconds = (double)(sk2_clock_mono_us() - start) / 1e6;
    sk2_device_stop(d);
    double cpu_us = s_cpu_us() - cpu;
    s_result_t result = {0, cpu_us / (double)frames,
                         (double)atomic_load(&counter.frames) / seconds};
    sk2_device_destroy(&d);
    return result;
}

int main(int argc, char **argv)
{
    size_t frames = 300;
    int runs = 5;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--frames") == 0)
            frames = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
    }
    if (frames < 2 || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: bench_recording [--frames N] [--runs R] [--dir DIR]\n");
        return 2;
    }
    sk2_log_set_level(SK2_LOG_ERROR);
    char path[512], source[512];
    snprintf(path, sizeof path, "%s/bench-recording-%d.sk2r", dir, (int)getpid());
    snprintf(source, sizeof source, "%s/bench-recording-src-%d.sk2r", dir, (int)getpid());
    printf("%zu frames (depth + IR, mock scene 512x424, alternating), median of %d runs, "
           "files in %s, MB = 10^6 bytes\n\n",
           2 * frames, runs, dir);
    printf("| codec | MB/frame | write MB/s | write CPU us/frame | write frames/s | replay "
           "fps (as fast as possible) | replay CPU us/frame |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
    const char *codecs[] = {"sk2d", "rvl", "raw"};
    for (size_t c = 0; c < 3; c++) {
        s_wire_t *wire = s_prepare(codecs[c], frames, source);
        double bytes = 0;
        for (size_t i = 0; i < 2 * frames; i++)
            bytes += (double)wire[i].size;
        double mbs[99], cpus[99], fps[99], rfps[99], rcpu[99];
        for (int run = 0; run < runs; run++) {
            s_result_t w = s_write(wire, 2 * frames, path);
            s_result_t r = s_replay(path, 2 * frames);
            mbs[run] = w.mb_per_s;
            cpus[run] = w.cpu_us_per_frame;
            fps[run] = w.frames_per_s;
            rfps[run] = r.frames_per_s;
            rcpu[run] = r.cpu_us_per_frame;
        }
        printf("| %s | %.3f | %.0f | %.1f | %.0f | %.0f | %.0f |\n", codecs[c],
               bytes / 1e6 / (double)(2 * frames), s_median(mbs, runs), s_median(cpus, runs),
               s_median(fps, runs), s_median(rfps, runs), s_median(rcpu, runs));
        for (size_t i = 0; i < 2 * frames; i++)
            free(wire[i].payload);
        free(wire);
    }
    unlink(path);
    unlink(source);
    return 0;
}
