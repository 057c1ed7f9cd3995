/* The relay against real sk2 servers and clients in one process, over tcp://127.0.0.1: frames
 * through two relays arrive bit-exact with their sequence numbers and two hop times, many
 * clients of a relay cost the server one subscriber, an unsubscribe at the edge stops the
 * server's encoder, and devices come and go downstream as they do upstream. Also the usage
 * example of the relay API: new, bind, connect (or add_upstream), destroy. */
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

#include "proto/header.h"
#include "sk2/sk2.h"
#include "testutil.h"

/* A server of one mock device (id `id`, colour 320x240 to keep the machine's load low). */
static void s_add_mock(sk2_server_t *server, const char *id, double fps)
{
    sk2_device_t *device = sk2_device_new("mock");
    assert_non_null(device);
    assert_int_equal(sk2_device_set_id(device, id), 0);
    assert_int_equal(sk2_device_set_fps(device, fps), 0);
    assert_int_equal(sk2_device_set_color_size(device, 320, 240), 0);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
}

static sk2_server_t *s_server(const char *id, double fps, uint16_t port)
{
    sk2_server_t *server = sk2_server_new("relay test");
    assert_non_null(server);
    assert_int_equal(sk2_server_set_announce(server, false), 0);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", port), 0);
    if (id)
        s_add_mock(server, id, fps);
    return server;
}

/* A relay of `upstream`, whose silence counts as loss after response_ms. */
static sk2_relay_t *s_relay(const char *upstream, int response_ms)
{
    sk2_relay_t *relay = sk2_relay_new("relay under test");
    assert_non_null(relay);
    assert_int_equal(sk2_relay_set_announce(relay, false), 0);
    assert_int_equal(sk2_relay_bind(relay, "127.0.0.1", 0), 0);
    assert_non_null(sk2_relay_endpoint(relay));
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_set_response_timeout_ms(client, response_ms), 0);
    assert_int_equal(sk2_client_connect(client, upstream), 0);
    assert_int_equal(sk2_relay_add_upstream(relay, &client), 0);
    assert_null(client);
    return relay;
}

/* A client of `endpoint` that keeps frames encoded, once it knows device `id`. */
static sk2_client_t *s_client(const char *endpoint, const char *id)
{
    sk2_client_t *client = sk2_client_new();
    assert_non_null(client);
    assert_int_equal(sk2_client_set_heartbeat_ms(client, 200), 0);
    assert_int_equal(sk2_client_set_decode(client, false), 0);
    assert_int_equal(sk2_client_connect(client, endpoint), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, id, 10000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    return client;
}

/* The server's `stats` reply, asked for by a client of its own. Caller decrefs. */
static json_t *s_stats(const char *endpoint)
{
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_connect(client, endpoint), 0);
    assert_int_equal(sk2_client_request_stats(client), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_STATS, NULL, 5000, NULL);
    assert_non_null(event);
    json_t *stats = json_loads(sk2_event_json(event), 0, NULL);
    assert_non_null(stats);
    sk2_event_destroy(&event);
    sk2_client_destroy(&client);
    return stats;
}

/* The stats entry of one (stream, codec) of the first device, or NULL if it never had a
 * subscriber. Borrowed from stats. */
static json_t *s_encoding(json_t *stats, const char *kind, const char *codec)
{
    json_t *streams =
        json_object_get(json_array_get(json_object_get(stats, "devices"), 0), "streams");
    size_t i, k;
    json_t *stream, *encoding;
    json_array_foreach(streams, i, stream)
    {
        if (strcmp(json_string_value(json_object_get(stream, "kind")), kind) != 0)
            continue;
        json_array_foreach(json_object_get(stream, "encodings"), k, encoding)
        {
            if (strcmp(json_string_value(json_object_get(encoding, "codec")), codec) == 0)
                return encoding;
        }
    }
    return NULL;
}

static json_int_t s_subscribers(const char *endpoint, const char *kind, const char *codec)
{
    json_t *stats = s_stats(endpoint);
    json_t *encoding = s_encoding(stats, kind, codec);
    json_int_t count = encoding ? json_integer_value(json_object_get(encoding, "subscribers")) : 0;
    json_decref(stats);
    return count;
}

/* Waits until the server counts `want` subscribers of a (stream, codec); returns the count. */
static json_int_t s_wait_subscribers(const char *endpoint, const char *kind, const char *codec,
                                     json_int_t want)
{
    json_int_t count = -1;
    for (int i = 0; i < 100 && count != want; i++) {
        count = s_subscribers(endpoint, kind, codec);
        if (count != want)
            zclock_sleep(100);
    }
    return count;
}

static void test_hops_are_appended_to_the_header_and_read_back(void **state)
{
    (void)state;
    sk2_frame_t *frame = testutil_depth_frame(4, 2);
    sk2_frame_set_sequence(frame, 77);
    sk2_header_t header = sk2_header_of_frame(frame, sk2_codec_find(SK2_CODEC_RVL), 10, 1234567);
    uint8_t bytes[SK2_HEADER_SIZE + 8 * (SK2_HEADER_HOPS_MAX + 1)];
    assert_int_equal(sk2_header_write(&header, bytes), 0);
    int64_t times[SK2_HEADER_HOPS_MAX + 1];
    assert_int_equal(sk2_header_hops(bytes, SK2_HEADER_SIZE, times, 4), 0);
    uint8_t grown[sizeof bytes];
    size_t size = SK2_HEADER_SIZE;
    for (int hop = 0; hop < SK2_HEADER_HOPS_MAX; hop++) {
        size_t next = sk2_header_add_hop(bytes, size, 1000 + hop, grown, sizeof grown);
        assert_int_equal(next, size + 8);
        memcpy(bytes, grown, next);
        size = next;
        /* Every reader still takes it, with the fields of the server unchanged. */
        sk2_header_t back;
        char why[128];
        assert_int_equal(sk2_header_read(bytes, size, &back, why, sizeof why), 0);
        assert_int_equal(back.sequence, 77);
        assert_int_equal(back.send_time_us, 1234567);
    }
    assert_int_equal(sk2_header_hops(bytes, size, times, SK2_HEADER_HOPS_MAX + 1),
                     SK2_HEADER_HOPS_MAX);
    for (int hop = 0; hop < SK2_HEADER_HOPS_MAX; hop++)
        assert_int_equal(times[hop], 1000 + hop);
    /* A full list stays as it is; a count the header cannot hold reads as none. */
    assert_int_equal(sk2_header_add_hop(bytes, size, 1, grown, sizeof grown), 0);
    bytes[56] = 3;
    assert_int_equal(sk2_header_hops(bytes, SK2_HEADER_SIZE + 16, times, 4), 0);
    assert_int_equal(sk2_header_add_hop(bytes, 10, 1, grown, sizeof grown), 0);
    sk2_frame_destroy(&frame);
}

static void test_bad_calls_are_refused(void **state)
{
    (void)state;
    assert_null(sk2_relay_new(""));
    sk2_relay_t *relay = sk2_relay_new(NULL);
    assert_non_null(relay);
    assert_null(sk2_relay_endpoint(relay));
    assert_int_equal(sk2_relay_add_upstream(relay, NULL), SK2_EINVAL);
    sk2_client_t *idle = sk2_client_new();
    assert_int_equal(sk2_relay_add_upstream(relay, &idle), SK2_EINVAL); /* not connected */
    assert_null(idle);
    assert_int_equal(sk2_relay_connect(relay, "not an endpoint"), SK2_EINVAL);
    assert_int_equal(sk2_relay_set_announce(relay, false), 0);
    assert_int_equal(sk2_relay_bind(relay, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_relay_bind(relay, "127.0.0.1", 0), SK2_ESTATE);
    assert_int_equal(sk2_relay_set_announce(relay, true), SK2_ESTATE);
    sk2_relay_destroy(&relay);
    sk2_relay_destroy(&relay);
    assert_null(relay);
}

#define S_KEPT 600

typedef struct {
    int kind;
    uint64_t sequence;
    uint8_t header[SK2_HEADER_SIZE];
    uint8_t *payload;
    size_t size;
} s_seen_t;

/* Reads FRAME events from a client for a while, keeping each frame's header and payload. */
static size_t s_collect(sk2_client_t *client, s_seen_t *seen, size_t count, size_t want_hops)
{
    int64_t deadline = sk2_clock_mono_us() + 4000000;
    while (count < S_KEPT && sk2_clock_mono_us() < deadline) {
        sk2_event_t *event = NULL;
        if (sk2_client_recv(client, &event, 50) != 0)
            continue;
        const uint8_t *header = NULL, *payload = NULL;
        size_t header_size = 0, payload_size = 0;
        if (sk2_event_type(event) == SK2_EVENT_FRAME &&
            sk2_event_encoded(event, &header, &header_size, &payload, &payload_size) == 0) {
            int64_t hops[4];
            assert_int_equal(sk2_event_hops(event, hops, 4), want_hops);
            assert_int_equal(header_size, SK2_HEADER_SIZE + 8 * want_hops);
            for (size_t i = 0; i < want_hops; i++)
                assert_true(hops[i] > 0);
            sk2_header_t h;
            char why[128];
            assert_int_equal(sk2_header_read(header, header_size, &h, why, sizeof why), 0);
            seen[count].kind = h.kind;
            seen[count].sequence = h.sequence;
            memcpy(seen[count].header, header, SK2_HEADER_SIZE);
            seen[count].payload = malloc(payload_size ? payload_size : 1);
            memcpy(seen[count].payload, payload, payload_size);
            seen[count].size = payload_size;
            count++;
        }
        sk2_event_destroy(&event);
    }
    return count;
}

static void test_frames_pass_two_relays_bit_exact(void **state)
{
    (void)state;
    sk2_server_t *server = s_server("bitexact", 30, 0);
    sk2_relay_t *first = s_relay(sk2_server_endpoint(server), 5000);
    sk2_relay_t *second = s_relay(sk2_relay_endpoint(first), 5000);
    sk2_client_t *direct = s_client(sk2_server_endpoint(server), "bitexact");
    sk2_client_t *relayed = s_client(sk2_relay_endpoint(second), "bitexact");
    static const struct {
        sk2_stream_kind_t kind;
        const char *codec;
    } wanted[] = {{SK2_STREAM_DEPTH, "rvl"}, {SK2_STREAM_IR, "sk2d"}, {SK2_STREAM_COLOR, "jpeg"}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sk2_client_subscribe(direct, "bitexact", wanted[i].kind, wanted[i].codec),
                         0);
        assert_int_equal(sk2_client_subscribe(relayed, "bitexact", wanted[i].kind, wanted[i].codec),
                         0);
    }
    s_seen_t *a = calloc(S_KEPT, sizeof *a), *b = calloc(S_KEPT, sizeof *b);
    /* Read both in turns, so that neither client's queue overflows while the other is read. */
    size_t na = 0, nb = 0;
    for (int round = 0; round < 3; round++) {
        na = s_collect(direct, a, na, 0);
        nb = s_collect(relayed, b, nb, 2);
    }
    size_t matched[5] = {0};
    for (size_t j = 0; j < nb; j++) {
        for (size_t i = 0; i < na; i++) {
            if (a[i].kind != b[j].kind || a[i].sequence != b[j].sequence)
                continue;
            /* The server's bytes exactly, but for the size and hop count the relays wrote. */
            assert_memory_equal(a[i].header, b[j].header, 6);
            assert_memory_equal(a[i].header + 8, b[j].header + 8, 48);
            assert_int_equal(b[j].header[56], 2);
            assert_int_equal(a[i].size, b[j].size);
            assert_memory_equal(a[i].payload, b[j].payload, a[i].size);
            matched[b[j].kind]++;
        }
    }
    printf("frames direct %zu, through two relays %zu; matched depth %zu ir %zu colour %zu\n", na,
           nb, matched[SK2_STREAM_DEPTH], matched[SK2_STREAM_IR], matched[SK2_STREAM_COLOR]);
    assert_true(matched[SK2_STREAM_DEPTH] >= 10);
    assert_true(matched[SK2_STREAM_IR] >= 10);
    assert_true(matched[SK2_STREAM_COLOR] >= 10);
    for (size_t i = 0; i < na; i++)
        free(a[i].payload);
    for (size_t i = 0; i < nb; i++)
        free(b[i].payload);
    free(a);
    free(b);
    sk2_relay_stats_t stats;
    assert_int_equal(sk2_relay_stats(second, &stats), 0);
    assert_int_equal(stats.devices, 1);
    assert_int_equal(stats.upstreams_live, 1);
    assert_true(stats.frames_forwarded >= nb);
    assert_int_equal(stats.frames_refused, 0);
    sk2_client_destroy(&direct);
    sk2_client_destroy(&relayed);
    sk2_relay_destroy(&second);
    sk2_relay_destroy(&first);
    sk2_server_destroy(&server);
}

#define S_CLIENTS 50

static void test_fifty_clients_of_a_relay_are_one_subscriber_upstream(void **state)
{
    (void)state;
    sk2_server_t *server = s_server("fifty", 10, 0);
    sk2_relay_t *relay = s_relay(sk2_server_endpoint(server), 5000);
    sk2_client_t *clients[S_CLIENTS];
    for (int i = 0; i < S_CLIENTS; i++) {
        clients[i] = s_client(sk2_relay_endpoint(relay), "fifty");
        assert_int_equal(sk2_client_subscribe(clients[i], "fifty", SK2_STREAM_DEPTH, "rvl"), 0);
    }
    for (int i = 0; i < S_CLIENTS; i++) {
        sk2_event_t *event = testutil_wait_event(clients[i], SK2_EVENT_FRAME, NULL, 20000, NULL);
        assert_non_null(event);
        sk2_event_destroy(&event);
    }
    /* A second of frames for all of them, read or not (each subscriber's queue is bounded). */
    zclock_sleep(1000);
    json_t *stats = s_stats(sk2_server_endpoint(server));
    json_t *encoding = s_encoding(stats, "depth", "rvl");
    assert_non_null(encoding);
    assert_int_equal(json_integer_value(json_object_get(encoding, "subscribers")), 1);
    assert_string_equal(json_string_value(json_object_get(encoding, "state")), "encoding");
    /* One encoding per frame for everyone: never more encoded than produced. */
    json_t *totals = json_object_get(stats, "totals");
    json_int_t produced = json_integer_value(json_object_get(totals, "frames_produced"));
    json_int_t encoded = json_integer_value(json_object_get(encoding, "encoded"));
    printf("server: produced %lld, depth:rvl encoded %lld for %d clients of the relay\n",
           (long long)produced, (long long)encoded, S_CLIENTS);
    assert_true(encoded >= 5 && encoded <= produced);
    json_decref(stats);
    sk2_relay_stats_t relay_stats;
    assert_int_equal(sk2_relay_stats(relay, &relay_stats), 0);
    assert_int_equal(relay_stats.subscriptions, 1);
    for (int i = 0; i < S_CLIENTS; i++)
        sk2_client_destroy(&clients[i]);
    /* The last client gone, the relay unsubscribes upstream too. */
    assert_int_equal(s_wait_subscribers(sk2_server_endpoint(server), "depth", "rvl", 0), 0);
    sk2_relay_destroy(&relay);
    sk2_server_destroy(&server);
}

static void test_an_unsubscribe_at_the_edge_stops_the_server_encoding(void **state)
{
    (void)state;
    sk2_server_t *server = s_server("edge", 30, 0);
    const char *endpoint = sk2_server_endpoint(server);
    sk2_relay_t *first = s_relay(endpoint, 5000);
    sk2_relay_t *second = s_relay(sk2_relay_endpoint(first), 5000);
    sk2_client_t *client = s_client(sk2_relay_endpoint(second), "edge");
    assert_int_equal(sk2_client_subscribe(client, "edge", SK2_STREAM_IR, "rvl"), 0);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 10000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(s_subscribers(endpoint, "ir", "rvl"), 1);
    /* Nothing else was asked for, so nothing else is encoded. */
    json_t *stats = s_stats(endpoint);
    assert_null(s_encoding(stats, "depth", "rvl"));
    assert_null(s_encoding(stats, "color", "jpeg"));
    json_decref(stats);

    assert_int_equal(sk2_client_unsubscribe(client, "edge", SK2_STREAM_IR, "rvl"), 0);
    assert_int_equal(s_wait_subscribers(endpoint, "ir", "rvl", 0), 0);
    stats = s_stats(endpoint);
    json_t *encoding = s_encoding(stats, "ir", "rvl");
    assert_string_equal(json_string_value(json_object_get(encoding, "state")), "idle");
    json_int_t encoded = json_integer_value(json_object_get(encoding, "encoded"));
    json_decref(stats);
    zclock_sleep(500);
    stats = s_stats(endpoint);
    assert_int_equal(json_integer_value(json_object_get(s_encoding(stats, "ir", "rvl"), "encoded")),
                     encoded);
    json_decref(stats);

    /* A client that just goes away unsubscribes the same way. */
    assert_int_equal(sk2_client_subscribe(client, "edge", SK2_STREAM_DEPTH, "png"), 0);
    event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 10000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(s_subscribers(endpoint, "depth", "png"), 1);
    sk2_client_destroy(&client);
    assert_int_equal(s_wait_subscribers(endpoint, "depth", "png", 0), 0);
    sk2_relay_destroy(&second);
    sk2_relay_destroy(&first);
    sk2_server_destroy(&server);
}

static void test_devices_come_and_go_downstream_as_upstream(void **state)
{
    (void)state;
    sk2_server_t *server = s_server("one", 30, 0);
    uint16_t port = sk2_server_port(server);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "%s", sk2_server_endpoint(server));
    sk2_relay_t *relay = s_relay(endpoint, 500);
    sk2_client_t *client = s_client(sk2_relay_endpoint(relay), "one");

    s_add_mock(server, "two", 30);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, "two", 10000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_server_remove_device(server, "two"), 0);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_REMOVED, "two", 10000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);

    /* The server goes: its device leaves the relay's `me`, which still answers. */
    sk2_server_destroy(&server);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_REMOVED, "one", 10000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_device_count(client), 0);
    sk2_relay_stats_t stats;
    assert_int_equal(sk2_relay_stats(relay, &stats), 0);
    assert_int_equal(stats.upstreams_live, 0);

    /* It comes back on the same port: so does its device, and frames flow again. */
    server = s_server("one", 30, port);
    event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, "one", 15000, NULL);
    assert_non_null(event);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_subscribe(client, "one", SK2_STREAM_DEPTH, "sk2d"), 0);
    event = testutil_wait_event(client, SK2_EVENT_FRAME, "one", 10000, NULL);
    assert_non_null(event);
    assert_int_equal(sk2_event_hops(event, NULL, 0), 1);
    sk2_event_destroy(&event);
    sk2_client_destroy(&client);
    sk2_relay_destroy(&relay);
    sk2_server_destroy(&server);
}

/* The newest sequence number of device 0's stream `kind` in a `stats` reply: a server's record
 * of its stream, or a relay's of what it forwarded; 0 if there is none. */
static uint64_t s_newest_in(const char *endpoint, bool is_relay)
{
    json_t *stats = s_stats(endpoint);
    json_t *devices = is_relay ? json_object_get(json_object_get(stats, "relay"), "devices")
                               : json_object_get(stats, "devices");
    json_t *streams = json_object_get(json_array_get(devices, 0), "streams");
    uint64_t newest = 0;
    size_t i;
    json_t *stream;
    json_array_foreach(streams, i, stream)
    {
        if (strcmp(json_string_value(json_object_get(stream, "kind")), "depth") == 0)
            newest = (uint64_t)json_integer_value(json_object_get(stream, "newest"));
    }
    json_decref(stats);
    return newest;
}

/* The record of client `id` in the clients section of `stats` at endpoint, with the count of
 * paused clients in *paused. Caller decrefs the stats in *stats_p. */
static json_t *s_client_record(const char *endpoint, const char *id, json_int_t *paused,
                               json_t **stats_p)
{
    json_t *stats = s_stats(endpoint);
    json_t *clients = json_object_get(stats, "clients");
    *paused = json_integer_value(json_object_get(clients, "paused"));
    *stats_p = stats;
    size_t i;
    json_t *record;
    json_array_foreach(json_object_get(clients, "list"), i, record)
    {
        const char *client = json_string_value(json_object_get(record, "client"));
        if (client && strcmp(client, id) == 0)
            return record;
    }
    return NULL;
}

/* A relay is a flow peer like a server: it answers a client's `flow` with where each stream
 * is (the newest sequence number it forwarded), so that a client with a queue bound of N that
 * was away gets, behind a relay too, a first frame at most N behind the newest the camera made
 * (docs/topologies.md "Client flow control"); and it keeps the client's state, so that its
 * stats show the pause and the bound. Before, the relay refused `flow`: the first frame was one
 * of the tens that had waited in the buffers, and its stats had no clients. */
static void
test_a_client_of_a_relay_back_from_an_absence_gets_frames_at_most_its_bound_behind(void **state)
{
    (void)state;
    enum { N = 2 };
    sk2_server_t *server = s_server("cam", 60, 0);
    sk2_relay_t *relay = s_relay(sk2_server_endpoint(server), 5000);
    sk2_client_t *client = s_client(sk2_relay_endpoint(relay), "cam");
    assert_int_equal(sk2_client_set_decode(client, true), 0); /* frames carry their sequence */
    assert_int_equal(sk2_client_set_queue_frames(client, N), 0);
    assert_int_equal(sk2_client_subscribe(client, "cam", SK2_STREAM_DEPTH, "rvl"), 0);
    uint64_t last = 0;
    for (int i = 0; i < 5; i++) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 10000, NULL);
        assert_non_null(event);
        last = sk2_frame_sequence(sk2_event_frame(event));
        sk2_event_destroy(&event);
    }

    /* Away while the camera makes 60 frames; then the newest there is, before reading. */
    uint64_t from = s_newest_in(sk2_server_endpoint(server), false), newest = from;
    int64_t deadline = sk2_clock_mono_us() + 60000000;
    while (newest < from + 60 && sk2_clock_mono_us() < deadline) {
        usleep(50000);
        newest = s_newest_in(sk2_server_endpoint(server), false);
    }
    assert_true(newest >= from + 60);
    sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, "cam", 10000, NULL);
    assert_non_null(event);
    uint64_t first = sk2_frame_sequence(sk2_event_frame(event));
    printf("through a relay: last read %llu, newest made %llu, first after the absence %llu\n",
           (unsigned long long)last, (unsigned long long)newest, (unsigned long long)first);
    assert_true(first > last);
    assert_true(first + N >= newest);
    sk2_event_destroy(&event);
    /* The relay forwarded at least that far, and says so in its stats. */
    assert_true(s_newest_in(sk2_relay_endpoint(relay), true) >= first);

    /* A pause shows in the relay's stats, with the client's queue bound. */
    assert_int_equal(sk2_client_pause(client, "cam", SK2_STREAM_DEPTH), 0);
    json_int_t paused = 0;
    json_t *stats = NULL, *record = NULL;
    deadline = sk2_clock_mono_us() + 30000000;
    for (;;) {
        record = s_client_record(sk2_relay_endpoint(relay), sk2_client_id(client), &paused, &stats);
        if ((paused == 1 && record) || sk2_clock_mono_us() >= deadline)
            break;
        json_decref(stats);
        usleep(50000);
    }
    assert_int_equal(paused, 1);
    assert_non_null(record);
    assert_int_equal(json_integer_value(json_object_get(record, "paused")), 1);
    assert_int_equal(json_integer_value(json_object_get(record, "queue_frames")), N);
    json_decref(stats);
    sk2_client_destroy(&client);
    sk2_relay_destroy(&relay);
    sk2_server_destroy(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hops_are_appended_to_the_header_and_read_back),
        cmocka_unit_test(test_bad_calls_are_refused),
        cmocka_unit_test(test_frames_pass_two_relays_bit_exact),
        cmocka_unit_test(test_fifty_clients_of_a_relay_are_one_subscriber_upstream),
        cmocka_unit_test(test_an_unsubscribe_at_the_edge_stops_the_server_encoding),
        cmocka_unit_test(test_devices_come_and_go_downstream_as_upstream),
        cmocka_unit_test(
            test_a_client_of_a_relay_back_from_an_absence_gets_frames_at_most_its_bound_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
