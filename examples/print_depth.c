/* Prints the centre depth of the first 10 frames of every device on a server.
 * Build: cc print_depth.c $(pkg-config --cflags --libs sk2)   Run: ./print_depth tcp://HOST:PORT */
#include <stdio.h>

#include <sk2/sk2.h>

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s ENDPOINT\n", argv[0]);
        return 2;
    }
    sk2_client_t *client = sk2_client_new();
    if (!client || sk2_client_connect(client, argv[1]) != 0)
        return 1;
    int frames = 0;
    while (frames < 10) {
        sk2_event_t *event = NULL;
        int rc = sk2_client_recv(client, &event, 1000); /* all work happens in here */
        if (rc == SK2_ETIMEDOUT)
            continue;
        if (rc != 0)
            break; /* SK2_ESTATE: the server was lost and nothing is left to read */
        switch (sk2_event_type(event)) {
        case SK2_EVENT_DEVICE_ADDED:
            sk2_client_enable_depth(client, sk2_event_device_id(event));
            break;
        case SK2_EVENT_FRAME: {
            const sk2_frame_t *frame = sk2_event_frame(event);
            uint32_t w = sk2_frame_width(frame), h = sk2_frame_height(frame);
            printf("%s #%llu: %u mm at the centre\n", sk2_event_device_id(event),
                   (unsigned long long)sk2_frame_sequence(frame),
                   sk2_frame_cdata16(frame)[(h / 2) * w + w / 2]);
            frames++;
            break;
        }
        case SK2_EVENT_DISCONNECTED:
            fprintf(stderr, "lost: %s\n", sk2_event_reason(event));
            break;
        default:
            break;
        }
        sk2_event_destroy(&event);
    }
    sk2_client_destroy(&client);
    return frames == 10 ? 0 : 1;
}
