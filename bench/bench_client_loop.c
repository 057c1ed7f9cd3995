/* The C side of bench/python_overhead.py: the plainest loop a C program receives frames with
 * (recv, take the frame, read its pixels' address, destroy), timed in process CPU time per
 * batch of frames, so that the Python binding's cost per frame can be read off beside it.
 *
 * usage: bench_client_loop ENDPOINT KIND:CODEC FRAMES BATCH
 * Prints one line per batch: "batch <frames> <cpu µs per frame>"; exit 1 on any error. The
 * frame count includes the first frame, which only starts the clock. */
#include <sk2/sk2.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double s_cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s ENDPOINT KIND:CODEC FRAMES BATCH\n", argv[0]);
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
    long frames = atol(argv[3]), batch = atol(argv[4]);
    if (frames <= 0 || batch <= 0) {
        fprintf(stderr, "FRAMES and BATCH must be positive\n");
        return 2;
    }
    sk2_client_t *client = sk2_client_new();
    if (!client || sk2_client_connect(client, argv[1]) != 0) {
        fprintf(stderr, "cannot connect to %s\n", argv[1]);
        return 1;
    }
    long got = 0, in_batch = 0;
    uintptr_t checksum = 0;
    double start = 0;
    int rc = 0;
    while (got < frames) {
        sk2_event_t *event = NULL;
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
            /* Batches run from one frame handed over to the one `batch` frames later, so they
             * count receiving, decoding and handing over each of their frames exactly once. */
            if (++got == 1) {
                start = s_cpu_us();
            } else if (++in_batch == batch) {
                double now = s_cpu_us();
                printf("batch %ld %.2f\n", in_batch, (now - start) / (double)in_batch);
                fflush(stdout);
                start = now;
                in_batch = 0;
            }
        }
        sk2_event_destroy(&event);
        if (rc != 0)
            break;
    }
    sk2_client_destroy(&client);
    return rc != 0 || checksum == 0 ? 1 : 0;
}
