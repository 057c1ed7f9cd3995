/* Point cloud export figures: time per frame and file size of sk2_cloud_write for PLY and PCD,
 * binary and ASCII, on the mock scene's 512x424 depth frames with the mock's (Kinect v2-like)
 * intrinsics, each written to a real file as `sk2 export --format ply|pcd` does. The first row
 * is the deprojection alone (sk2_frame_to_points into memory), which every format pays.
 * A second set of rows punches out a third of the pixels (no reading), as real frames have.
 * Times are CPU milliseconds per frame (user + system), not wall time.
 *
 * Usage: bench_cloud_export [--frames N] [--runs R] [--dir DIR]   (prints a Markdown table) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sk2/sk2.h"

#define S_WIDTH  512
#define S_HEIGHT 424

/* CPU time (user and system) of this process: on a machine shared with other work, wall time
 * would measure the others too. Writing files shows up as system time. */
static double s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
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

/* The mock scene at `count` instants; with is_holey, every third pixel has no reading. */
static sk2_frame_t **s_frames(size_t count, bool is_holey)
{
    sk2_frame_t **frames = calloc(count, sizeof *frames);
    for (size_t i = 0; i < count; i++) {
        frames[i] = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, S_WIDTH, S_HEIGHT);
        uint16_t *px = sk2_frame_data16(frames[i]);
        sk2_mock_render(px, (int)(i % 201) - 100);
        for (size_t p = 0; is_holey && p < S_WIDTH * S_HEIGHT; p += 3)
            px[p] = 0;
    }
    return frames;
}

typedef struct {
    double ms_per_frame; /* median over runs of a run's mean */
    double bytes;        /* of one file, mean */
    size_t points;       /* of the last frame */
} s_result_t;

/* kind -1: deprojection only; else format, with is_ascii. */
static s_result_t s_run(sk2_frame_t **frames, size_t count, int runs, const sk2_stream_info_t *info,
                        int kind, bool is_ascii, const char *dir)
{
    s_result_t result = {0};
    double *per_run = calloc((size_t)runs, sizeof *per_run);
    float *xyz = malloc(sizeof(float) * 3 * S_WIDTH * S_HEIGHT);
    char path[4096 + 64]; /* dir (at most 4095) and a file name */
    for (int r = 0; r < runs; r++) {
        double bytes = 0, start = s_now_ms();
        for (size_t i = 0; i < count; i++) {
            if (kind < 0) {
                result.points = sk2_frame_to_points(frames[i], &info->intrinsics,
                                                    info->depth_unit_m, xyz, S_WIDTH * S_HEIGHT);
                continue;
            }
            snprintf(path, sizeof path, "%s/%zu.%s", dir, i,
                     sk2_cloud_format_extension((sk2_cloud_format_t)kind));
            FILE *f = fopen(path, "wb");
            int rc = f ? sk2_cloud_write(f, frames[i], &info->intrinsics, info->depth_unit_m,
                                         (sk2_cloud_format_t)kind, is_ascii, &result.points)
                       : SK2_ESYS;
            if (!f || fclose(f) != 0 || rc != 0) {
                fprintf(stderr, "bench_cloud_export: cannot write %s: %s\n", path,
                        sk2_strerror(rc));
                exit(1);
            }
            struct stat st;
            if (stat(path, &st) == 0)
                bytes += (double)st.st_size;
            unlink(path);
        }
        per_run[r] = (s_now_ms() - start) / (double)count;
        result.bytes = bytes / (double)count;
    }
    result.ms_per_frame = s_median(per_run, runs);
    free(xyz);
    free(per_run);
    return result;
}

int main(int argc, char **argv)
{
    size_t count = 20;
    int runs = 5;
    const char *dir = "/tmp";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--frames") == 0)
            count = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
    }
    if (count < 1 || runs < 1) {
        fprintf(stderr, "usage: bench_cloud_export [--frames N] [--runs R] [--dir DIR]\n");
        return 2;
    }
    char scratch[4000];
    snprintf(scratch, sizeof scratch, "%s/sk2-bench-cloud-XXXXXX", dir);
    if (!mkdtemp(scratch)) {
        perror("bench_cloud_export: mkdtemp");
        return 1;
    }
    sk2_device_t *mock = sk2_device_new("mock");
    sk2_stream_info_t info;
    if (!mock || sk2_device_open(mock) != 0 || sk2_device_stream_info(mock, 0, &info) != 0 ||
        info.kind != SK2_STREAM_DEPTH) {
        fprintf(stderr, "bench_cloud_export: no mock depth stream\n");
        return 1;
    }
    printf("Point cloud export, %dx%d mock depth frames, %zu frames x %d runs (median of run "
           "means), files in %s\n\n",
           S_WIDTH, S_HEIGHT, count, runs, dir);
    printf("| frame | output | points | CPU ms/frame | bytes/file | bytes/point |\n");
    printf("| --- | --- | ---: | ---: | ---: | ---: |\n");
    static const struct {
        const char *name;
        int kind;
        bool is_ascii;
    } outputs[] = {
        {"deprojection only", -1, false},     {"PLY binary", SK2_CLOUD_PLY, false},
        {"PCD binary", SK2_CLOUD_PCD, false}, {"PLY ascii", SK2_CLOUD_PLY, true},
        {"PCD ascii", SK2_CLOUD_PCD, true},
    };
    for (int holey = 0; holey < 2; holey++) {
        sk2_frame_t **frames = s_frames(count, holey);
        for (size_t o = 0; o < sizeof outputs / sizeof outputs[0]; o++) {
            s_result_t r =
                s_run(frames, count, runs, &info, outputs[o].kind, outputs[o].is_ascii, scratch);
            if (outputs[o].kind < 0)
                printf("| %s | %s | %zu | %.2f | - | - |\n", holey ? "1/3 holes" : "full",
                       outputs[o].name, r.points, r.ms_per_frame);
            else
                printf("| %s | %s | %zu | %.2f | %.0f | %.1f |\n", holey ? "1/3 holes" : "full",
                       outputs[o].name, r.points, r.ms_per_frame, r.bytes,
                       r.points ? r.bytes / (double)r.points : 0.0);
        }
        for (size_t i = 0; i < count; i++)
            sk2_frame_destroy(&frames[i]);
        free(frames);
    }
    sk2_device_destroy(&mock);
    rmdir(scratch);
    return 0;
}
