/* The C side of bench/python_overhead.py: the plainest loop a C program receives frames with
 * (recv, take the frame, read its pixels' address, destroy), each frame timed in the calling
 * thread's CPU time, so that the Python binding's cost per frame can be read off beside it.
 * Blocking in poll costs no CPU time, so waiting for the next frame is not counted; libzmq's
 * I/O thread is not counted either (it does the same work for both).
 *
 * usage: bench_client_loop ENDPOINT KIND:CODEC FRAMES
 * Prints one line per frame: "frame <thread CPU µs>", then "process <µs>": the process's CPU
 * time (every thread) from the first frame to the last, per frame; exit 1 on any error. */
#include <sk2/sk2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double s_cpu_us(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s ENDPOINT KIND:CODEC FRAMES\n", argv[0]);
        return 2;
    }
    char kind_name[16];
    const char *colon = strchr(argv[2], ':');
    if (!colon || colon - argv[2] >= (int)sizeof kind_name) {
        fprintf(stderr, "stream must be KIND:CODEC\n");
        return 2;
    }
    snprintf(kind_name, sizeof kind_name, "%.*s", (int)(colon - argv[2]), argv[2]);
    sk2_stream_kind_t kind = !strcmp(kind_name, "color") ? SK2_STREAM_COLOR
                             : !strcmp(kind_name, "ir")  ? SK2_STREAM_IR
                                                         : SK2_STREAM_DEPTH;
    long frames = atol(argv[3]);
    if (frames <= 0) {
        fprintf(stderr, "FRAMES must be positive\n");
        return 2;
    }
    sk2_client_t *client = sk2_client_new();
    if (!client || sk2_client_connect(client, argv[1]) != 0) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
        return 1;
    }
    long got = 0;
    double process_start = 0;
    uintptr_t checksum = 0;
    int rc = 0;
    while (got < frames) {
        sk2_event_t *event = NULL;
        double start = s_cpu_us(CLOCK_THREAD_CPUTIME_ID);
        rc = sk2_client_recv(client, &event, 10000);
        if (rc != 0) {
            fprintf(stderr, "recv: %s\n", sk2_strerror(rc));
            break;
        }
        sk2_event_type_t type = sk2_event_type(event);
        if (type == SK2_EVENT_DEVICE_ADDED &&
            sk2_client_subscribe(client, sk2_event_device_id(event), kind, colon + 1) != 0) {
            fprintf(stderr, "cannot subscribe %s\n", argv[2]);
            rc = 1;
        }
        if (type == SK2_EVENT_FRAME) {
            sk2_frame_t *frame = sk2_event_take_frame(event);
            checksum += (uintptr_t)sk2_frame_data(frame) + sk2_frame_width(frame);
            sk2_frame_destroy(&frame);
            sk2_event_destroy(&event);
            printf("frame %.2f\n", s_cpu_us(CLOCK_THREAD_CPUTIME_ID) - start);
            if (++got == 1)
                process_start = s_cpu_us(CLOCK_PROCESS_CPUTIME_ID);
            continue;
        }
        sk2_event_destroy(&event);
        if (rc != 0)
            break;
    }
    if (got > 1)
        printf("process %.2f\n",
               (s_cpu_us(CLOCK_PROCESS_CPUTIME_ID) - process_start) / (double)(got - 1));
    sk2_client_destroy(&client);
    return rc != 0 || checksum == 0 ? 1 : 0;
}
