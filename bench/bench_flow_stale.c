/* Client flow control, measured: how far behind live the first frame is that a client with a
 * queue bound gets after it was away (busy, not reading). One process holds a server with one
 * mock camera and the client, on tcp://127.0.0.1.
 *
 * A round: the client reads a few frames, sleeps AWAY seconds without reading, then takes one
 * frame. "Frames behind live" is that frame's age when handed out (the wall clock now minus its
 * capture time, both on this host) in frame intervals, rounded down: 0 is the newest frame the
 * camera has made. Printed: the median and the largest over the rounds, for queue bounds 1 and
 * 4 and absences of 0.5 s, 1.5 s and 5 s.
 *
 * Usage: bench_flow_stale [FPS] [ROUNDS]   (default 30 fps, 5 rounds) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "sk2/sk2.h"

static int s_compare(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *values, int count)
{
    qsort(values, (size_t)count, sizeof *values, s_compare);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

static sk2_event_t *s_wait(sk2_client_t *client, sk2_event_type_t type, int timeout_ms)
{
    int64_t deadline = sk2_clock_mono_us() + timeout_ms * 1000LL;
    while (sk2_clock_mono_us() < deadline) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 10) != 0)
            continue;
        if (sk2_event_type(event) == type)
            return event;
        sk2_event_destroy(&event);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    double fps = argc > 1 ? atof(argv[1]) : 30;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    if (fps <= 0 || fps > 1000)
        fps = 30;
    if (rounds < 1 || rounds > 100)
        rounds = 5;
    sk2_server_t *server = sk2_server_new("bench flow stale");
    sk2_device_t *device = sk2_device_new("mock");
    if (!server || !device || sk2_server_bind(server, "127.0.0.1", 0) != 0 ||
        sk2_device_set_id(device, "cam") != 0 || sk2_device_set_fps(device, fps) != 0 ||
        sk2_server_add_device(server, &device) != 0) {
        fprintf(stderr, "bench_flow_stale: cannot start the server\n");
        return 1;
    }
    static const unsigned bounds[] = {1, 4};
    static const double aways[] = {0.5, 1.5, 5};
    printf("bench_flow_stale: mock depth 512x424 in rvl, %.0f fps, %d rounds each\n\n", fps,
           rounds);
    printf("| queue N | away s | frames behind live, median | max | frames dropped, median |\n"
           "| --- | --- | --- | --- | --- |\n");
    for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
        for (size_t a = 0; a < sizeof aways / sizeof aways[0]; a++) {
            double behind[100], dropped[100], most = 0;
            int done = 0;
            for (int r = 0; r < rounds; r++) {
                sk2_client_t *client = sk2_client_new();
                sk2_event_t *event = NULL;
                if (!client || sk2_client_connect(client, sk2_server_endpoint(server)) != 0 ||
                    !(event = s_wait(client, SK2_EVENT_DEVICE_ADDED, 30000))) {
                    fprintf(stderr, "bench_flow_stale: no device\n");
                    return 1;
                }
                sk2_event_destroy(&event);
                sk2_client_set_queue_frames(client, bounds[b]);
                sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl");
                for (int i = 0; i < 10; i++) {
                    event = s_wait(client, SK2_EVENT_FRAME, 10000);
                    sk2_event_destroy(&event);
                }
                uint64_t dropped_before = sk2_client_frames_dropped(client);
                usleep((useconds_t)(aways[a] * 1e6));
                event = s_wait(client, SK2_EVENT_FRAME, 10000);
                if (event) {
                    int64_t age_us =
                        sk2_clock_wall_us() - sk2_frame_capture_time_us(sk2_event_frame(event));
                    behind[done] = (double)(int64_t)((double)age_us * fps / 1e6);
                    dropped[done] = (double)(sk2_client_frames_dropped(client) - dropped_before);
                    most = behind[done] > most ? behind[done] : most;
                    done++;
                }
                sk2_event_destroy(&event);
                sk2_client_destroy(&client);
            }
            if (done > 0)
                printf("| %u | %.1f | %.0f | %.0f | %.0f |\n", bounds[b], aways[a],
                       s_median(behind, done), most, s_median(dropped, done));
            fflush(stdout);
        }
    sk2_server_destroy(&server);
    return 0;
}
