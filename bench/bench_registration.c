/* Registration cost per frame (sk2/registration.h): a 512x424 depth frame of the mock scene
 * with a Kinect v2's depth intrinsics (lens distortion included) registered to a 1920x1080
 * colour camera with a Kinect v2's colour intrinsics, 52 mm to the side and turned by a few
 * degrees, both ways: (a) depth at the colour camera (a 1920x1080 depth image) and (b) colour
 * per depth pixel (a 512x424 BGRA image, (a)'s z-buffer included). The registration object is
 * made once, as a client that registers every frame of a stream does; its set-up (each depth
 * pixel's ray, distortion removed) is timed apart. Times are CPU milliseconds per frame.
 *
 * Usage: bench_registration [--frames N] [--runs R]   (prints a Markdown table) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sk2/sk2.h"

#define S_DW 512
#define S_DH 424
#define S_CW 1920
#define S_CH 1080

/* CPU time of this process: on a shared machine wall time would measure the others too. */
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

static const sk2_intrinsics_t s_depth = {.fx = 365.456,
                                         .fy = 365.456,
                                         .cx = 254.878,
                                         .cy = 205.395,
                                         .k1 = 0.0905474,
                                         .k2 = -0.26819,
                                         .k3 = 0.0950862};
static const sk2_intrinsics_t s_color = {.fx = 1081.37, .fy = 1081.37, .cx = 959.5, .cy = 539.5};

int main(int argc, char **argv)
{
    int count = 20, runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--frames") == 0)
            count = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--runs") == 0)
            runs = atoi(argv[i + 1]);
    }
    if (count < 1 || runs < 1) {
        fprintf(stderr, "usage: bench_registration [--frames N] [--runs R]\n");
        return 2;
    }
    double a = 3.0 * M_PI / 180;
    sk2_extrinsics_t e = {.rotation = {cos(a), 0, sin(a), 0, 1, 0, -sin(a), 0, cos(a)},
                          .translation = {-0.052, 0.0, 0.0}};
    sk2_frame_t **depth = calloc((size_t)count, sizeof *depth);
    for (int i = 0; i < count; i++) {
        depth[i] = sk2_frame_new(SK2_STREAM_DEPTH, SK2_PIXEL_DEPTH_MM16, S_DW, S_DH);
        sk2_mock_render(sk2_frame_data16(depth[i]), i % 201 - 100);
    }
    sk2_frame_t *color = sk2_frame_new(SK2_STREAM_COLOR, SK2_PIXEL_RGB24, S_CW, S_CH);
    memset(sk2_frame_data(color), 128, (size_t)S_CW * S_CH * 3);

    double *setup = calloc((size_t)runs, sizeof *setup);
    double *per_run[2] = {calloc((size_t)runs, sizeof(double)),
                          calloc((size_t)runs, sizeof(double))};
    sk2_registration_t *reg = NULL;
    for (int r = 0; r < runs; r++) {
        sk2_registration_destroy(&reg);
        double start = s_now_ms();
        if (sk2_registration_new(&s_depth, S_DW, S_DH, 0.001, &s_color, S_CW, S_CH, &e, &reg) !=
            0) {
            fprintf(stderr, "bench_registration: cannot make the registration\n");
            return 1;
        }
        setup[r] = s_now_ms() - start;
    }
    size_t filled = 0, colored = 0;
    for (int r = 0; r < runs; r++) {
        for (int way = 0; way < 2; way++) {
            double start = s_now_ms();
            for (int i = 0; i < count; i++) {
                sk2_frame_t *out = NULL;
                int rc = way == 0 ? sk2_registration_depth_to_color(reg, depth[i], &out)
                                  : sk2_registration_color_to_depth(reg, depth[i], color, &out);
                if (rc != 0) {
                    fprintf(stderr, "bench_registration: %s\n", sk2_strerror(rc));
                    return 1;
                }
                if (i == count - 1 && way == 0) {
                    filled = 0;
                    for (size_t p = 0; p < (size_t)S_CW * S_CH; p++)
                        filled += sk2_frame_cdata16(out)[p] != 0;
                } else if (i == count - 1) {
                    colored = 0;
                    for (size_t p = 0; p < (size_t)S_DW * S_DH; p++)
                        colored += sk2_frame_cdata(out)[4 * p + 3] != 0;
                }
                sk2_frame_destroy(&out);
            }
            per_run[way][r] = (s_now_ms() - start) / count;
        }
    }
    printf("Registration, %dx%d depth (Kinect v2 lens) to %dx%d colour, %d frames x %d runs "
           "(median of run means), CPU time\n\n",
           S_DW, S_DH, S_CW, S_CH, count, runs);
    printf("| step | output | pixels with a value | CPU ms |\n");
    printf("| --- | --- | ---: | ---: |\n");
    printf("| set-up (once per stream: rays of every depth pixel) | - | - | %.2f |\n",
           s_median(setup, runs));
    printf("| (a) depth to colour, per frame | %dx%d depth | %zu | %.2f |\n", S_CW, S_CH, filled,
           s_median(per_run[0], runs));
    printf("| (b) colour per depth pixel, per frame | %dx%d BGRA | %zu | %.2f |\n", S_DW, S_DH,
           colored, s_median(per_run[1], runs));
    sk2_registration_destroy(&reg);
    for (int i = 0; i < count; i++)
        sk2_frame_destroy(&depth[i]);
    sk2_frame_destroy(&color);
    free(depth);
    free(setup);
    free(per_run[0]);
    free(per_run[1]);
    return 0;
}
