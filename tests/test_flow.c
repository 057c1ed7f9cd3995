/* Client flow control: pausing and resuming a stream on the connection the client has, a queue
 * bound that keeps the newest frames, the `flow` messages that tell the server, and the server's
 * bounded table of client states. Server and clients share one process on tcp://127.0.0.1; the
 * table and the ring are also tested alone. Nothing here asserts on a rate or a duration: the
 * waits are deadlines, and the checks are on counts, states and sequence numbers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <czmq.h>
#include <jansson.h>

#include "client/ring.h"
#include "server/clients.h"
#include "sk2/sk2.h"
#include "testutil.h"

static sk2_server_t *s_server(double fps)
{
    sk2_server_t *server = sk2_server_new("flow test");
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_id(device, "cam"), 0);
    assert_int_equal(sk2_device_set_fps(device, fps), 0);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    return server;
}

static sk2_client_t *s_client(sk2_server_t *server)
{
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 200), 0);
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 30000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    return client;
}

static json_t *s_stats(sk2_client_t *client)
{
    assert_int_equal(sk2_client_request_stats(client), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_STATS, NULL, 30000, NULL);
    assert_non_null(event);
    json_t *stats = json_loads(sk2_event_json(event), 0, NULL);
    assert_non_null(stats);
    sk2_event_destroy(&event);
    return stats;
}

/* The stats of the depth stream's encoding in codec, or NULL. */
static json_t *s_encoding(json_t *stats, const char *codec)
{
    json_t *streams =
        json_object_get(json_array_get(json_object_get(stats, "devices"), 0), "streams");
    size_t i, k;
    json_t *stream, *encoding;
    json_array_foreach(streams, i, stream)
    {
        if (strcmp(json_string_value(json_object_get(stream, "kind")), "depth") != 0)
            continue;
        json_array_foreach(json_object_get(stream, "encodings"), k, encoding)
        {
            if (strcmp(json_string_value(json_object_get(encoding, "codec")), codec) == 0)
                return encoding;
        }
    }
    return NULL;
}

/* The record of client `id` in a clients section, or NULL. */
static json_t *s_listed(json_t *clients, const char *id)
{
    size_t i;
    json_t *record;
    json_array_foreach(json_object_get(clients, "list"), i, record)
    {
        if (strcmp(json_string_value(json_object_get(record, "client")), id) == 0)
            return record;
    }
    return NULL;
}

/* The record of client `id` in the stats' clients section, or NULL. */
static json_t *s_client_record(json_t *stats, const char *id)
{
    return s_listed(json_object_get(stats, "clients"), id);
}

/* Asks `observer` for stats until depth/rvl (and depth12, if anyone ever asked for it) is in
 * `state` and the clients section says `paused` clients are paused (30 s at most:
 * subscriptions travel on their own). */
static bool s_wait_server(sk2_client_t *observer, const char *state, json_int_t paused)
{
    int64_t deadline = sk2_clock_mono_us() + 30000000;
    for (;;) {
        json_t *stats = s_stats(observer);
        json_t *encoding = s_encoding(stats, "rvl"), *v1 = s_encoding(stats, "depth12");
        const char *now = encoding ? json_string_value(json_object_get(encoding, "state")) : "";
        const char *v1_now = v1 ? json_string_value(json_object_get(v1, "state")) : state;
        json_int_t count =
            json_integer_value(json_object_get(json_object_get(stats, "clients"), "paused"));
        bool ok = now && strcmp(now, state) == 0 && v1_now && strcmp(v1_now, state) == 0 &&
                  count == paused;
        json_decref(stats);
        if (ok)
            return true;
        if (sk2_clock_mono_us() > deadline)
            return false;
        usleep(20000);
    }
}

/* Receives for up to ms, counting FRAME events and every event type in seen. */
static int s_frames_for(sk2_client_t *client, int ms, int *seen)
{
    int frames = 0;
    int64_t deadline = sk2_clock_mono_us() + ms * 1000LL;
    while (sk2_clock_mono_us() < deadline) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 10) != 0)
            continue;
        seen[sk2_event_type(event)]++;
        frames += sk2_event_type(event) == SK2_EVENT_FRAME;
        sk2_event_destroy(&event);
    }
    return frames;
}

static void test_pause_stops_frames_and_resume_brings_them_back_on_the_same_connection(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(30);
    sk2_client_t *client = s_client(server);
    sk2_client_t *observer = s_client(server); /* asks for stats, receives nothing */
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    assert_int_equal(sk2_client_enable_depth(client, "cam"), 0); /* the version-1 endpoint */
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    int fds_before[8], fds_after[8];
    size_t fd_count = sk2_client_fds(client, fds_before, 8);
    assert_true(fd_count >= 2 && fd_count <= 8);

    assert_false(sk2_client_is_paused(client, "cam", SK2_STREAM_DEPTH));
    assert_int_equal(sk2_client_pause(client, "cam", 0), 0);
    assert_true(sk2_client_is_paused(client, "cam", SK2_STREAM_DEPTH));
    assert_int_equal(sk2_client_pause(client, "cam", 0), 0); /* twice is fine */
    int seen[32] = {0};
    /* From the call on, not one frame of the paused stream is handed out. */
    assert_int_equal(s_frames_for(client, 1000, seen), 0);
    /* The server stopped encoding for nobody, and shows the client paused. */
    assert_true(s_wait_server(observer, "idle", 1));
    json_t *stats = s_stats(observer);
    /* The version-1 endpoint's depth12 stopped too (its one subscription is "", undone). */
    assert_string_equal(json_string_value(json_object_get(s_encoding(stats, "depth12"), "state")),
                        "idle");
    json_t *record = s_client_record(stats, sk2_client_id(client));
    assert_non_null(record);
    assert_int_equal(json_integer_value(json_object_get(record, "paused")), 1);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(record, "paused_kinds"), 0)), "depth");
    assert_int_equal(json_integer_value(json_object_get(record, "streams")), 1);
    json_decref(stats);

    assert_int_equal(sk2_client_resume(client, "cam", SK2_STREAM_DEPTH), 0);
    assert_false(sk2_client_is_paused(client, "cam", SK2_STREAM_DEPTH));
    event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, seen);
    assert_non_null(event);
    assert_int_equal(sk2_event_gap(event), 0); /* skipped on purpose: not a loss */
    sk2_event_destroy(&event);
    assert_true(s_frames_for(client, 500, seen) > 0);
    assert_true(s_wait_server(observer, "encoding", 0));
    /* The same connection all along: no reconnection, the same sockets. */
    assert_int_equal(seen[SK2_EVENT_RECONNECTING], 0);
    assert_int_equal(seen[SK2_EVENT_DISCONNECTED], 0);
    assert_int_equal(seen[SK2_EVENT_ERROR], 0);
    assert_int_equal(sk2_client_fds(client, fds_after, 8), fd_count);
    assert_memory_equal(fds_before, fds_after, fd_count * sizeof(int));

    /* Pausing every device pauses devices in general, and bad arguments change nothing. */
    assert_int_equal(sk2_client_pause(client, NULL, 0), 0);
    assert_true(sk2_client_is_paused(client, NULL, SK2_STREAM_COLOR));
    assert_int_equal(s_frames_for(client, 300, seen), 0);
    assert_int_equal(sk2_client_resume(client, NULL, 0), 0);
    assert_int_equal(sk2_client_pause(client, "nope", 0), SK2_ENOTFOUND);
    assert_int_equal(sk2_client_pause(client, "cam", (sk2_stream_kind_t)9), SK2_EINVAL);
    assert_false(sk2_client_is_paused(client, "cam", SK2_STREAM_DEPTH));
    event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, seen);
    assert_non_null(event);
    sk2_event_destroy(&event);
    sk2_client_destroy(&observer);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static uint64_t s_json_u64(json_t *object, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(object, key));
}

static void test_a_queue_of_n_hands_out_at_most_n_of_the_newest_frames(void **state)
{
    (void)state;
    enum { N = 3 };
    sk2_server_t *server = s_server(30);
    sk2_client_t *client = s_client(server);
    sk2_client_t *observer = s_client(server);
    assert_int_equal(sk2_client_set_queue_frames(client, SK2_CLIENT_QUEUE_FRAMES_MAX + 1),
                     SK2_EINVAL);
    assert_int_equal(sk2_client_set_queue_frames(client, N), 0);
    assert_int_equal(sk2_client_queue_frames(client), N);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    uint64_t last = 0;
    for (int i = 0; i < 5; i++) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, NULL);
        assert_non_null(event);
        assert_true(i == 0 || sk2_frame_sequence(sk2_event_frame(event)) > last);
        last = sk2_frame_sequence(sk2_event_frame(event));
        sk2_event_destroy(&event);
    }
    /* (A slow machine may already have dropped some: the client reads at its own pace.) */
    uint64_t dropped_before = sk2_client_frames_dropped(client);

    /* The client looks away while the server publishes at least 20 more frames of depth/rvl
     * for it (about a second at 30 fps; longer on a slow machine, whose encoder drops some),
     * then reads again. */
    json_t *stats = s_stats(observer);
    uint64_t encoded = s_json_u64(s_encoding(stats, "rvl"), "encoded"), now = encoded;
    json_decref(stats);
    int64_t away_until = sk2_clock_mono_us() + 60000000;
    while (now < encoded + 20 && sk2_clock_mono_us() < away_until) {
        usleep(200000);
        stats = s_stats(observer);
        now = s_json_u64(s_encoding(stats, "rvl"), "encoded");
        json_decref(stats);
    }
    assert_true(now >= encoded + 20);

    sk2_event_t *event = NULL;
    assert_int_equal(sk2_client_recv(client, &event, 30000), 0);
    assert_int_equal(sk2_event_type(event), SK2_EVENT_FRAME);
    /* The burst: this frame and what is queued behind it, at most N in all. */
    uint64_t burst = 1 + sk2_client_frames_queued(client);
    assert_true(burst <= N);
    uint64_t first = sk2_frame_sequence(sk2_event_frame(event));
    uint64_t dropped = sk2_client_frames_dropped(client);
    uint64_t dropped_now = dropped - dropped_before;
    assert_true(dropped_now > 0);
    /* Newest wins: every frame the queue dropped came before the first one it hands out, so
     * the jump in sequence numbers covers them all (and any the transport lost). */
    assert_true(first > last);
    assert_true(sk2_event_gap(event) >= dropped_now);
    assert_int_equal(first - last - 1, sk2_event_gap(event));
    sk2_event_destroy(&event);
    uint64_t newest = first;
    for (uint64_t i = 1; i < burst; i++) {
        assert_int_equal(sk2_client_recv(client, &event, 0), 0);
        assert_int_equal(sk2_event_type(event), SK2_EVENT_FRAME);
        uint64_t sequence = sk2_frame_sequence(sk2_event_frame(event));
        assert_true(sequence > newest);
        newest = sequence;
        sk2_event_destroy(&event);
    }
    /* And what comes after the burst is newer still. */
    event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, NULL);
    assert_non_null(event);
    assert_true(sk2_frame_sequence(sk2_event_frame(event)) > newest);
    sk2_event_destroy(&event);

    /* The server learns the drops with the next heartbeat's `flow`. */
    int64_t deadline = sk2_clock_mono_us() + 30000000;
    uint64_t told = 0;
    while (told < dropped && sk2_clock_mono_us() < deadline) {
        int seen[32] = {0};
        s_frames_for(client, 50, seen);
        stats = s_stats(observer);
        json_t *record = s_client_record(stats, sk2_client_id(client));
        told = record ? s_json_u64(record, "dropped") : 0;
        if (record)
            assert_int_equal(s_json_u64(record, "queue_frames"), N);
        assert_true(s_json_u64(json_object_get(stats, "clients"), "frames_dropped") >= told);
        json_decref(stats);
    }
    assert_true(told >= dropped);
    assert_true(told <= sk2_client_frames_dropped(client));
    sk2_client_destroy(&observer);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* The sequence number of the newest depth frame the server's camera made, from its stats. */
static uint64_t s_newest(sk2_client_t *observer)
{
    json_t *stats = s_stats(observer);
    json_t *streams =
        json_object_get(json_array_get(json_object_get(stats, "devices"), 0), "streams");
    uint64_t newest = 0;
    size_t i;
    json_t *stream;
    json_array_foreach(streams, i, stream)
    {
        if (strcmp(json_string_value(json_object_get(stream, "kind")), "depth") == 0)
            newest = s_json_u64(stream, "newest");
    }
    json_decref(stats);
    return newest;
}

/* Waits (asking observer) until the camera made `more` frames after `from`; returns the newest. */
static uint64_t s_wait_newest(sk2_client_t *observer, uint64_t from, uint64_t more)
{
    int64_t deadline = sk2_clock_mono_us() + 60000000;
    uint64_t newest = s_newest(observer);
    while (newest < from + more && sk2_clock_mono_us() < deadline) {
        usleep(50000);
        newest = s_newest(observer);
    }
    assert_true(newest >= from + more);
    return newest;
}

/* Reads 5 frames and returns the last one's sequence number. */
static uint64_t s_read_five(sk2_client_t *client)
{
    uint64_t last = 0;
    for (int i = 0; i < 5; i++) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, NULL);
        assert_non_null(event);
        last = sk2_frame_sequence(sk2_event_frame(event));
        sk2_event_destroy(&event);
    }
    return last;
}

/* Frames that waited in libzmq's and the kernel's buffers while a client with a queue bound
 * did not read are older than any the ring keeps: the client asks the server where the stream
 * is and drops them. The first frame it hands out is at most N behind the newest the camera
 * had made before the client read again (docs/topologies.md: "Client flow control"). Before,
 * it was the first of those that had waited, tens of frames behind. */
static void test_a_client_back_from_an_absence_gets_frames_at_most_its_bound_behind(void **state)
{
    (void)state;
    enum { N = 2 };
    sk2_server_t *server = s_server(60);
    sk2_client_t *client = s_client(server);
    sk2_client_t *observer = s_client(server);
    assert_int_equal(sk2_client_set_queue_frames(client, N), 0);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    uint64_t last = s_read_five(client);
    uint64_t dropped_before = sk2_client_frames_dropped(client);

    /* Away while the camera makes 60 frames; then the newest there is, before reading. */
    uint64_t newest = s_wait_newest(observer, s_newest(observer), 60);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, NULL);
    assert_non_null(event);
    uint64_t first = sk2_frame_sequence(sk2_event_frame(event));
    assert_true(first > last);
    assert_true(first + N >= newest);
    /* What it skipped shows as the gap, and the stale frames it read count as dropped. */
    assert_int_equal(sk2_event_gap(event), first - last - 1);
    assert_true(sk2_client_frames_dropped(client) > dropped_before);
    sk2_event_destroy(&event);
    /* And the frames after it follow in order. */
    event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, NULL);
    assert_non_null(event);
    assert_true(sk2_frame_sequence(sk2_event_frame(event)) > first);
    sk2_event_destroy(&event);
    sk2_client_destroy(&observer);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* A client that stopped reading and then paused still has frames of before the pause below its
 * ring; after the resume, they are stale: the first frame handed out is at most N behind the
 * newest the camera had made before the resume. */
static void test_after_a_resume_no_frame_of_before_the_pause_is_handed_out(void **state)
{
    (void)state;
    enum { N = 2 };
    sk2_server_t *server = s_server(60);
    sk2_client_t *client = s_client(server);
    sk2_client_t *observer = s_client(server);
    assert_int_equal(sk2_client_set_queue_frames(client, N), 0);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    uint64_t last = s_read_five(client);

    /* Not reading while 40 frames are made fills the buffers below the ring; then a pause,
     * which the server sees (nobody wants depth/rvl any more). */
    (void)s_wait_newest(observer, s_newest(observer), 40);
    assert_int_equal(sk2_client_pause(client, NULL, 0), 0);
    assert_true(s_wait_server(observer, "idle", 1));
    uint64_t newest = s_newest(observer);
    assert_true(newest >= last + 40);
    assert_int_equal(sk2_client_resume(client, NULL, 0), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 30000, NULL);
    assert_non_null(event);
    uint64_t first = sk2_frame_sequence(sk2_event_frame(event));
    assert_true(first + N >= newest);
    assert_int_equal(sk2_event_gap(event), 0); /* skipped on purpose */
    sk2_event_destroy(&event);
    sk2_client_destroy(&observer);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

/* Sends one control message on a raw DEALER and returns the reply's type byte, with the
 * reason of an error reply in why. */
static int s_raw(zsock_t *dealer, uint8_t type, const char *payload, char *why, size_t size)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, "", 0);
    zmsg_addmem(msg, &type, 1);
    if (payload)
        zmsg_addstr(msg, payload);
    assert_int_equal(zmsg_send(&msg, dealer), 0);
    zmsg_t *reply = zmsg_recv(dealer);
    assert_non_null(reply);
    zframe_t *delimiter = zmsg_pop(reply);
    zframe_destroy(&delimiter);
    zframe_t *head = zmsg_pop(reply);
    int got = zframe_data(head)[0];
    zframe_destroy(&head);
    char *text = zmsg_popstr(reply);
    json_t *body = text ? json_loads(text, 0, NULL) : NULL;
    json_t *reason = json_object_get(body, "reason");
    snprintf(why, size, "%s", json_is_string(reason) ? json_string_value(reason) : "");
    json_decref(body);
    free(text);
    zmsg_destroy(&reply);
    return got;
}

static void test_malformed_flow_messages_get_a_clear_error_and_change_nothing(void **state)
{
    (void)state;
    sk2_server_t *server = s_server(5);
    zsock_t *dealer = zsock_new(ZMQ_DEALER);
    zsock_set_rcvtimeo(dealer, 30000);
    assert_int_equal(zsock_connect(dealer, "%s", sk2_server_endpoint(server)), 0);
    char why[256];
    const char *good = "{\"client\":\"tester\",\"paused\":[{\"device\":\"cam\",\"kind\":\"ir\"}],"
                       "\"queue_frames\":4,\"dropped\":7,\"streams\":2}";
    assert_int_equal(s_raw(dealer, 0x0b, good, why, sizeof why), 0x0c);
    static const struct {
        const char *payload;
        const char *reason;
    } bad[] = {
        {NULL, "flow takes an object"},
        {"[]", "flow takes an object"},
        {"{\"paused\":[],\"queue_frames\":1,\"dropped\":0}", "\"client\""},
        {"{\"client\":\"has space\",\"paused\":[],\"queue_frames\":1,\"dropped\":0}", "\"client\""},
        {"{\"client\":\"tester\",\"paused\":[],\"queue_frames\":-1,\"dropped\":0}",
         "\"queue_frames\""},
        {"{\"client\":\"tester\",\"paused\":[],\"queue_frames\":99999,\"dropped\":0}",
         "\"queue_frames\""},
        {"{\"client\":\"tester\",\"paused\":[],\"queue_frames\":1,\"dropped\":1.5}", "\"dropped\""},
        {"{\"client\":\"tester\",\"paused\":{},\"queue_frames\":1,\"dropped\":0}", "\"paused\""},
        {"{\"client\":\"tester\",\"paused\":[{\"device\":\"cam\",\"kind\":\"sound\"}],"
         "\"queue_frames\":1,\"dropped\":0}",
         "paused stream 0"},
        {"{\"client\":\"tester\",\"paused\":[],\"queue_frames\":1,\"dropped\":0,"
         "\"heartbeat_ms\":5}",
         "\"heartbeat_ms\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(s_raw(dealer, 0x0b, bad[i].payload, why, sizeof why), 0x00);
        if (!strstr(why, bad[i].reason))
            fail_msg("case %zu: reason '%s' does not name %s", i, why, bad[i].reason);
    }
    /* 65 paused streams: over the list's bound. */
    char *many = malloc(8192);
    strcpy(many, "{\"client\":\"tester\",\"queue_frames\":1,\"dropped\":0,\"paused\":[");
    for (int i = 0; i < 65; i++)
        strcat(many, i ? ",{\"device\":\"cam\",\"kind\":\"ir\"}"
                       : "{\"device\":\"cam\",\"kind\":\"ir\"}");
    strcat(many, "]}");
    assert_int_equal(s_raw(dealer, 0x0b, many, why, sizeof why), 0x00);
    assert_non_null(strstr(why, "at most 64"));
    free(many);
    /* A server never sends flow-reply to a client that asks with one. */
    assert_int_equal(s_raw(dealer, 0x0c, "{}", why, sizeof why), 0x00);
    assert_non_null(strstr(why, "may only be sent by a server"));

    /* The good state stands, untouched by the refused ones. */
    assert_int_equal(s_raw(dealer, 0x05, NULL, why, sizeof why), 0x06);
    sk2_client_t *observer = s_client(server);
    json_t *stats = s_stats(observer);
    json_t *clients = json_object_get(stats, "clients");
    assert_int_equal(s_json_u64(clients, "count"), 1);
    assert_int_equal(s_json_u64(clients, "paused"), 1);
    json_t *record = s_client_record(stats, "tester");
    assert_non_null(record);
    assert_int_equal(s_json_u64(record, "queue_frames"), 4);
    assert_int_equal(s_json_u64(record, "dropped"), 7);
    assert_int_equal(s_json_u64(record, "streams"), 2);
    assert_int_equal(s_json_u64(record, "updates"), 1);
    assert_true(s_json_u64(json_object_get(stats, "totals"), "bad_requests") >= 12);
    json_decref(stats);
    sk2_client_destroy(&observer);
    zsock_destroy(&dealer);
    sk2_server_destroy(&server);
}

/* Answers what a client sent to a version-1 server stand-in: `me` to `who`, an unknown-type
 * error to anything else (as the original server does). Counts the `flow` messages. */
static void s_answer_v1(zsock_t *router, const char *me, int *flows)
{
    while (zsock_events(router) & ZMQ_POLLIN) {
        zmsg_t *msg = zmsg_recv(router);
        zframe_t *id = zmsg_pop(msg), *delimiter = zmsg_pop(msg), *type = zmsg_pop(msg);
        zmsg_t *reply = zmsg_new();
        zmsg_append(reply, &id);
        zmsg_append(reply, &delimiter);
        uint8_t byte = zframe_data(type)[0];
        *flows += byte == 0x0b;
        if (byte == 0x03) {
            zmsg_addmem(reply, "\x04", 1);
            zmsg_addstr(reply, me);
        } else {
            zmsg_addmem(reply, "\x00", 1);
            zmsg_addstrf(reply, "{\"code\": 400, \"reason\": \"unknown message type 0x%02x\"}",
                         byte);
        }
        zframe_destroy(&type);
        zmsg_destroy(&msg);
        zmsg_send(&reply, router);
    }
}

static void test_a_server_without_flow_control_is_told_once_and_the_client_carries_on(void **state)
{
    (void)state;
    zsock_t *router = zsock_new(ZMQ_ROUTER);
    int port = zsock_bind(router, "tcp://127.0.0.1:*");
    assert_true(port > 0);
    char endpoint[64], me[512];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    snprintf(me, sizeof me,
             "{\"version\": 1, \"name\": \"v1\", \"endpoints\": {\"control\": \"%s\"}, "
             "\"devices\": [{\"id\": \"old\", \"endpoints\": {\"depth\": "
             "\"tcp://127.0.0.1:1\"}}]}",
             endpoint);
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 100), 0);
    assert_int_equal(sk2_client_connect(client, endpoint), 0);
    int flows = 0, seen[32] = {0};
    int64_t deadline = sk2_clock_mono_us() + 30000000;
    while (seen[SK2_EVENT_DEVICE_ADDED] == 0 && sk2_clock_mono_us() < deadline) {
        s_answer_v1(router, me, &flows);
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 10) == 0)
            seen[sk2_event_type(event)]++;
        sk2_event_destroy(&event);
    }
    assert_int_equal(seen[SK2_EVENT_DEVICE_ADDED], 1);
    assert_int_equal(sk2_client_enable_depth(client, "old"), 0);
    assert_int_equal(sk2_client_pause(client, "old", SK2_STREAM_DEPTH), 0);
    /* A second of heartbeats (some ten `who`): the refused flow is not sent again, and the
     * refusal is no error event. */
    deadline = sk2_clock_mono_us() + 1000000;
    while (sk2_clock_mono_us() < deadline) {
        s_answer_v1(router, me, &flows);
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 10) == 0)
            seen[sk2_event_type(event)]++;
        sk2_event_destroy(&event);
    }
    assert_int_equal(flows, 1);
    assert_int_equal(seen[SK2_EVENT_ERROR], 0);
    assert_true(sk2_client_is_connected(client));
    assert_true(sk2_client_is_paused(client, "old", SK2_STREAM_DEPTH));
    sk2_client_destroy(&client);
    zsock_destroy(&router);
}

static json_t *s_flow(const char *id, size_t paused, json_int_t dropped, int heartbeat_ms)
{
    json_t *list = json_array();
    for (size_t i = 0; i < paused; i++)
        json_array_append_new(list, json_pack("{s:s, s:s}", "device", "cam", "kind", "depth"));
    return json_pack("{s:s, s:o, s:i, s:I, s:i}", "client", id, "paused", list, "queue_frames", 2,
                     "dropped", dropped, "heartbeat_ms", heartbeat_ms);
}

static void test_the_table_of_client_states_is_bounded_and_forgets_silent_clients(void **state)
{
    (void)state;
    sk2_clients_t *table = sk2_clients_new();
    char why[256], id[32];
    json_t *reply = NULL;
    int64_t now = 1000000;
    for (int i = 0; i < SK2_CLIENTS_MAX + 44; i++) {
        snprintf(id, sizeof id, "client-%d", i);
        json_t *flow = s_flow(id, i % 2, i, 10000);
        assert_int_equal(sk2_clients_update(table, flow, now + i, &reply, why, sizeof why), 0);
        json_decref(flow);
        assert_true(s_json_u64(reply, "clients") <= SK2_CLIENTS_MAX);
        json_decref(reply);
    }
    assert_int_equal(sk2_clients_count(table), SK2_CLIENTS_MAX);
    json_t *stats = sk2_clients_json(table, now + 1000);
    assert_int_equal(s_json_u64(stats, "count"), SK2_CLIENTS_MAX);
    assert_int_equal(s_json_u64(stats, "evicted"), 44);
    /* Half of them are paused (odd numbers): those are listed first, up to the list's bound. */
    assert_int_equal(s_json_u64(stats, "paused"), SK2_CLIENTS_MAX / 2);
    assert_int_equal(json_array_size(json_object_get(stats, "list")), SK2_CLIENTS_LISTED);
    assert_int_equal(s_json_u64(stats, "listed"), SK2_CLIENTS_LISTED);
    size_t i;
    json_t *record;
    json_array_foreach(json_object_get(stats, "list"), i, record)
    {
        assert_true(s_json_u64(record, "paused") == 1);
    }
    /* The ones heard from longest ago made room: client-0 .. client-43 are gone. */
    assert_null(s_listed(stats, "client-43"));
    assert_non_null(s_listed(stats, "client-45"));
    json_decref(stats);
    /* A malformed update changes nothing, not even for a known client. */
    json_t *bad = json_pack("{s:s, s:[], s:i, s:i}", "client", "client-45", "paused",
                            "queue_frames", 5000, "dropped", 0);
    assert_int_equal(sk2_clients_update(table, bad, now + 2000, &reply, why, sizeof why),
                     SK2_EPROTO);
    assert_null(reply);
    json_decref(bad);
    stats = sk2_clients_json(table, now + 2000);
    assert_int_equal(s_json_u64(stats, "count"), SK2_CLIENTS_MAX);
    assert_int_equal(s_json_u64(s_listed(stats, "client-45"), "queue_frames"), 2);
    json_decref(stats);
    /* Silence: three heartbeats and a second later, every client is forgotten but one that
     * spoke again meanwhile. */
    json_t *flow = s_flow("client-100", 0, 0, 10000);
    assert_int_equal(sk2_clients_update(table, flow, now + 20000000, &reply, why, sizeof why), 0);
    json_decref(reply);
    json_decref(flow);
    stats = sk2_clients_json(table, now + 31000000 + 1000);
    assert_int_equal(s_json_u64(stats, "count"), 1);
    assert_int_equal(s_json_u64(stats, "expired"), SK2_CLIENTS_MAX - 1);
    assert_non_null(s_listed(stats, "client-100"));
    json_decref(stats);
    sk2_clients_destroy(&table);
    sk2_clients_destroy(&table);
}

static zmsg_t *s_numbered(int n)
{
    zmsg_t *msg = zmsg_new();
    zmsg_addmem(msg, &n, sizeof n);
    return msg;
}

static int s_number(zmsg_t *msg)
{
    int n;
    memcpy(&n, zframe_data(zmsg_first(msg)), sizeof n);
    zmsg_destroy(&msg);
    return n;
}

static void test_the_ring_keeps_the_newest_and_drops_the_oldest(void **state)
{
    (void)state;
    sk2_ring_t ring = {0};
    assert_true(sk2_ring_push(&ring, s_numbered(0), 0)); /* capacity 0 keeps nothing */
    uint64_t dropped = 0;
    assert_int_equal(sk2_ring_resize(&ring, 3, &dropped), 0);
    for (int i = 0; i < 10; i++)
        assert_int_equal(sk2_ring_push(&ring, s_numbered(i), (uint64_t)i), i >= 3);
    assert_int_equal(ring.count, 3);
    assert_int_equal(sk2_ring_oldest(&ring), 7);
    assert_int_equal(sk2_ring_resize(&ring, 2, &dropped), 0); /* 7 goes */
    assert_int_equal(dropped, 1);
    assert_int_equal(s_number(sk2_ring_pop(&ring)), 8);
    assert_int_equal(sk2_ring_resize(&ring, 5, &dropped), 0);
    assert_true(!sk2_ring_push(&ring, s_numbered(10), 10));
    assert_int_equal(s_number(sk2_ring_pop(&ring)), 9);
    assert_int_equal(s_number(sk2_ring_pop(&ring)), 10);
    assert_null(sk2_ring_pop(&ring));
    assert_int_equal(sk2_ring_oldest(&ring), UINT64_MAX);
    sk2_ring_push(&ring, s_numbered(11), 11);
    sk2_ring_clear(&ring);
    assert_int_equal(ring.capacity, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_ring_keeps_the_newest_and_drops_the_oldest),
        cmocka_unit_test(test_the_table_of_client_states_is_bounded_and_forgets_silent_clients),
        cmocka_unit_test(test_malformed_flow_messages_get_a_clear_error_and_change_nothing),
        cmocka_unit_test(test_a_server_without_flow_control_is_told_once_and_the_client_carries_on),
        cmocka_unit_test(
            test_pause_stops_frames_and_resume_brings_them_back_on_the_same_connection),
        cmocka_unit_test(test_a_queue_of_n_hands_out_at_most_n_of_the_newest_frames),
        cmocka_unit_test(test_a_client_back_from_an_absence_gets_frames_at_most_its_bound_behind),
        cmocka_unit_test(test_after_a_resume_no_frame_of_before_the_pause_is_handed_out),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
