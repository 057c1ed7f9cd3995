/* A secure relay (sk2_relay_set_security) in the same process as a plain server, over
 * tcp://127.0.0.1: an allowed client gets `me` and frames through it on both frame
 * endpoints; a client with an unknown key is refused, a plain client times out, and bare SUB
 * sockets on the relay's own device endpoints get nothing without an allowed key. Also the
 * settings' checks. (A secure server and a secure relay cannot share one process, libzmq
 * having one ZAP endpoint per context: tests/cli/test_relay_curve_cli.py runs the whole chain
 * secure, in separate processes.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <czmq.h>

#include "sk2/sk2.h"
#include "testutil.h"

/* Long enough for a busy machine to have delivered anything it was going to deliver. */
#define S_QUIET_MS 3000

typedef struct {
    char root[64];
    char relay_dir[128];
    char client_dir[128];
    char stranger_dir[128];
    char allow_dir[128];
    char relay_key[SK2_KEY_TEXT_SIZE];
    char client_key[SK2_KEY_TEXT_SIZE];
    char stranger_key[SK2_KEY_TEXT_SIZE];
} s_keys_t;

static int s_setup(void **state)
{
    s_keys_t *k = calloc(1, sizeof *k);
    snprintf(k->root, sizeof k->root, "/tmp/sk2-relay-curve-XXXXXX");
    if (!mkdtemp(k->root))
        return -1;
    snprintf(k->relay_dir, sizeof k->relay_dir, "%s/relay", k->root);
    snprintf(k->client_dir, sizeof k->client_dir, "%s/client", k->root);
    snprintf(k->stranger_dir, sizeof k->stranger_dir, "%s/stranger", k->root);
    snprintf(k->allow_dir, sizeof k->allow_dir, "%s/allow", k->root);
    if (sk2_security_keygen(k->relay_dir, "relay", false, k->relay_key) != 0 ||
        sk2_security_keygen(k->client_dir, "client", false, k->client_key) != 0 ||
        sk2_security_keygen(k->stranger_dir, "stranger", false, k->stranger_key) != 0 ||
        mkdir(k->allow_dir, 0700) != 0)
        return -1;
    char command[600];
    snprintf(command, sizeof command, "cp '%s/client.key' '%s/client.key'", k->client_dir,
             k->allow_dir);
    if (system(command) != 0)
        return -1;
    *state = k;
    return 0;
}

static int s_teardown(void **state)
{
    s_keys_t *k = *state;
    char command[256];
    snprintf(command, sizeof command, "rm -rf '%s'", k->root);
    int rc = system(command);
    free(k);
    return rc == 0 ? 0 : -1;
}

/* A client with the key pair in keys_dir (NULL: plain) that expects server_key. */
static sk2_client_t *s_client(const char *keys_dir, const char *server_key, int timeout_ms)
{
    sk2_client_t *client = sk2_client_new();
    assert_non_null(client);
    assert_int_equal(sk2_client_set_response_timeout_ms(client, timeout_ms), 0);
    if (keys_dir)
        assert_int_equal(sk2_client_set_security(client, keys_dir, server_key), 0);
    return client;
}

/* Receives for quiet_ms (or until DISCONNECTED, returned) and counts the events by type. */
static sk2_event_t *s_listen(sk2_client_t *client, int *seen, int quiet_ms)
{
    int64_t end = zclock_mono() + quiet_ms;
    while (zclock_mono() < end) {
        sk2_event_t *event = NULL;
        int rc = sk2_client_recv(client, &event, (int)(end - zclock_mono()));
        if (rc == SK2_ESTATE)
            break;
        if (rc != 0 || !event)
            continue;
        int type = sk2_event_type(event);
        seen[type]++;
        if (type == SK2_EVENT_DISCONNECTED)
            return event;
        sk2_event_destroy(&event);
    }
    return NULL;
}

/* A bare SUB (CURVE client with the pair in keys_dir, or plain if NULL) subscribed to
 * everything on endpoint: whether anything arrives within S_QUIET_MS. */
static bool s_raw_sub_receives(const char *endpoint, const char *keys_dir, const char *server_key)
{
    zsock_t *sub = zsock_new(ZMQ_SUB);
    assert_non_null(sub);
    if (keys_dir) {
        char file[300];
        snprintf(file, sizeof file, "%s/%s.key_secret", keys_dir, strrchr(keys_dir, '/') + 1);
        zcert_t *cert = zcert_load(file);
        assert_non_null(cert);
        zcert_apply(cert, sub);
        zsock_set_curve_serverkey(sub, server_key);
        zcert_destroy(&cert);
    }
    zsock_set_subscribe(sub, "");
    assert_int_equal(zsock_connect(sub, "%s", endpoint), 0);
    zpoller_t *poller = zpoller_new(sub, NULL);
    bool got = zpoller_wait(poller, S_QUIET_MS) == sub;
    zpoller_destroy(&poller);
    zsock_destroy(&sub);
    return got;
}

static void test_relay_security_settings_are_checked(void **state)
{
    s_keys_t *k = *state;
    sk2_relay_t *relay = sk2_relay_new("settings");
    assert_non_null(relay);
    assert_int_equal(sk2_relay_set_security(relay, NULL, k->allow_dir), SK2_EINVAL);
    /* The allow folder holds only public keys: it is no key pair. */
    assert_int_equal(sk2_relay_set_security(relay, k->allow_dir, k->allow_dir), SK2_ENOTFOUND);
    assert_int_equal(sk2_relay_set_security(relay, k->relay_dir, "/nonexistent/allow"),
                     SK2_ENOTFOUND);
    assert_null(sk2_relay_public_key(relay));
    assert_int_equal(sk2_relay_set_security(relay, k->relay_dir, k->allow_dir), 0);
    assert_string_equal(sk2_relay_public_key(relay), k->relay_key);
    assert_int_equal(sk2_relay_set_security(relay, k->relay_dir, k->allow_dir), SK2_ESTATE);
    /* One ZAP handler per process: a second secure relay (or server) is refused. */
    sk2_relay_t *second = sk2_relay_new("second");
    assert_int_equal(sk2_relay_set_security(second, k->relay_dir, k->allow_dir), SK2_EEXIST);
    sk2_relay_destroy(&second);
    assert_int_equal(sk2_relay_bind(relay, "127.0.0.1", 0), 0);
    /* A secure relay's push port takes the relay's keys: others are refused. */
    assert_int_equal(sk2_relay_accept_push(relay, "127.0.0.1", 1, k->relay_dir, k->allow_dir),
                     SK2_ESTATE);
    sk2_relay_destroy(&relay);

    relay = sk2_relay_new("bound first");
    assert_int_equal(sk2_relay_set_announce(relay, false), 0);
    assert_int_equal(sk2_relay_bind(relay, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_relay_set_security(relay, k->relay_dir, k->allow_dir), SK2_ESTATE);
    sk2_relay_destroy(&relay);
}

static void test_secure_relay_serves_allowed_keys_only(void **state)
{
    s_keys_t *k = *state;
    sk2_server_t *server = sk2_server_new("plain upstream");
    assert_non_null(server);
    assert_int_equal(sk2_server_set_announce(server, false), 0);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    sk2_relay_t *relay = sk2_relay_new("secure relay");
    assert_int_equal(sk2_relay_set_announce(relay, false), 0);
    assert_int_equal(sk2_relay_set_security(relay, k->relay_dir, k->allow_dir), 0);
    assert_int_equal(sk2_relay_bind(relay, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_relay_connect(relay, sk2_server_endpoint(server)), 0);

    /* The allowed key: me, and frames on both endpoints. */
    sk2_client_t *client = s_client(k->client_dir, k->relay_key, 10000);
    assert_int_equal(sk2_client_connect(client, sk2_relay_endpoint(relay)), 0);
    const char *id = NULL;
    int64_t end = zclock_mono() + 20000;
    while (!id && zclock_mono() < end) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 1000, NULL);
        sk2_event_destroy(&event);
        id = sk2_client_device_id(client, 0);
    }
    assert_non_null(id);
    char depth[128], streams[128];
    snprintf(depth, sizeof depth, "%s", sk2_client_device_endpoint(client, id, "depth"));
    snprintf(streams, sizeof streams, "%s", sk2_client_device_endpoint(client, id, "streams"));
    assert_int_equal(sk2_client_enable_depth(client, id), 0);
    assert_int_equal(sk2_client_subscribe(client, id, SK2_STREAM_DEPTH, "rvl"), 0);
    int v1 = 0, encoded = 0;
    end = zclock_mono() + 20000;
    while ((v1 < 3 || encoded < 3) && zclock_mono() < end) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_FRAME, NULL, 1000, NULL);
        if (!event)
            continue;
        if (sk2_event_encoded(event, NULL, NULL, NULL, NULL) == 0)
            encoded++;
        else
            v1++;
        sk2_event_destroy(&event);
    }
    assert_true(v1 >= 3);
    assert_true(encoded >= 3);
    sk2_client_destroy(&client);

    /* An unknown key: refused, told so, nothing received. */
    client = s_client(k->stranger_dir, k->relay_key, 60000);
    assert_int_equal(sk2_client_connect(client, sk2_relay_endpoint(relay)), 0);
    int seen[32] = {0};
    sk2_event_t *event = s_listen(client, seen, 20000);
    assert_non_null(event);
    assert_int_equal(sk2_event_error(event), SK2_EAUTH);
    sk2_event_destroy(&event);
    assert_int_equal(seen[SK2_EVENT_CONNECTED], 0);
    assert_int_equal(seen[SK2_EVENT_FRAME], 0);
    sk2_client_destroy(&client);

    /* No key: silence. */
    client = s_client(NULL, NULL, 2000);
    assert_int_equal(sk2_client_connect(client, sk2_relay_endpoint(relay)), 0);
    memset(seen, 0, sizeof seen);
    event = s_listen(client, seen, S_QUIET_MS + 2000);
    assert_non_null(event);
    assert_int_equal(sk2_event_error(event), SK2_ETIMEDOUT);
    sk2_event_destroy(&event);
    assert_int_equal(seen[SK2_EVENT_CONNECTED], 0);
    assert_int_equal(seen[SK2_EVENT_FRAME], 0);
    sk2_client_destroy(&client);

    /* The relay's own device endpoints are CURVE too: a bare socket that knows where they are
     * gets nothing without an allowed key, and frames with one. */
    assert_false(s_raw_sub_receives(depth, NULL, NULL));
    assert_false(s_raw_sub_receives(streams, NULL, NULL));
    assert_false(s_raw_sub_receives(depth, k->stranger_dir, k->relay_key));
    assert_true(s_raw_sub_receives(depth, k->client_dir, k->relay_key));

    sk2_relay_destroy(&relay);
    sk2_server_destroy(&server);
}

/* The library's other shape: a plain relay whose push port alone is CURVE (keys given to
 * sk2_relay_accept_push), with a handler the relay owns for it. An allowed pusher's device
 * reaches the relay, and a plain client of the relay sees it. */
static void test_plain_relay_with_a_secure_push_port(void **state)
{
    s_keys_t *k = *state;
    sk2_server_t *server = sk2_server_new("pushed");
    assert_int_equal(sk2_server_set_announce(server, false), 0);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    sk2_relay_t *relay = sk2_relay_new("push relay");
    assert_int_equal(sk2_relay_set_announce(relay, false), 0);
    assert_int_equal(sk2_relay_bind(relay, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_relay_accept_push(relay, "127.0.0.1", 1, k->relay_dir, NULL), SK2_EINVAL);
    /* A free port: the kernel picks one for a socket bound and closed at once. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t size = sizeof addr;
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &size), 0);
    int port = ntohs(addr.sin_port);
    close(fd);
    assert_true(port > 0);
    assert_int_equal(
        sk2_relay_accept_push(relay, "127.0.0.1", (uint16_t)port, k->relay_dir, k->allow_dir), 0);
    assert_null(sk2_relay_public_key(relay)); /* the relay itself stays plain */
    char relay_at[64], key_file[300];
    snprintf(relay_at, sizeof relay_at, "127.0.0.1:%d", port);
    snprintf(key_file, sizeof key_file, "%s/relay.key", k->relay_dir);
    /* The client's key pair is the allowed one; the stranger's is not. */
    sk2_push_t *stranger = sk2_push_new_secure(sk2_server_endpoint(server), relay_at, "stranger",
                                               k->stranger_dir, key_file);
    assert_non_null(stranger);
    sk2_push_t *push = sk2_push_new_secure(sk2_server_endpoint(server), relay_at, "allowed",
                                           k->client_dir, key_file);
    assert_non_null(push);
    sk2_client_t *client = s_client(NULL, NULL, 10000);
    assert_int_equal(sk2_client_connect(client, sk2_relay_endpoint(relay)), 0);
    int64_t end = zclock_mono() + 30000;
    while (!sk2_client_device_id(client, 0) && zclock_mono() < end) {
        sk2_event_t *event = testutil_wait_event(client, SK2_EVENT_DEVICE_ADDED, NULL, 1000, NULL);
        sk2_event_destroy(&event);
    }
    assert_non_null(sk2_client_device_id(client, 0));
    assert_true(sk2_push_is_linked(push));
    assert_false(sk2_push_is_linked(stranger));
    sk2_relay_stats_t stats;
    assert_int_equal(sk2_relay_stats(relay, &stats), 0);
    assert_int_equal(stats.pushers_live, 1);
    sk2_client_destroy(&client);
    sk2_push_destroy(&push);
    sk2_push_destroy(&stranger);
    sk2_relay_destroy(&relay);
    sk2_server_destroy(&server);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_relay_security_settings_are_checked),
        cmocka_unit_test(test_secure_relay_serves_allowed_keys_only),
        cmocka_unit_test(test_plain_relay_with_a_secure_push_port),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
