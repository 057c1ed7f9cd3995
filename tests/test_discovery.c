/* Discovery with real daemons: sk2 servers announced through avahi-daemon and found by sk2's
 * browser. Runs only inside tests/discovery/with-avahi-netns.sh (a private network namespace
 * with its own D-Bus and avahi-daemon on loopback), which ctest uses; run alone, it refuses.
 *
 * Every server gets a name unique to this process, and every test waits until the browser
 * has seen its servers go, so tests never see each other's announcements. Each wait is
 * bounded (S_WAIT_MS); mDNS probing takes about a second, goodbyes a second or so. */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "sk2/sk2.h"

/* Longest wait for any one thing to be seen on the network. */
#define S_WAIT_MS 15000

/* ---- helpers ---- */

static void s_unique(char *out, size_t size, const char *what)
{
    snprintf(out, size, "%s %ld", what, (long)getpid());
}

static sk2_server_t *s_announced_server(const char *name, int devices)
{
    sk2_server_t *server = sk2_server_new(name);
    assert_non_null(server);
    assert_int_equal(sk2_server_set_announce(server, true), 0);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    for (int i = 0; i < devices; i++) {
        sk2_device_t *device = sk2_device_new("mock");
        assert_non_null(device);
        assert_int_equal(sk2_device_set_fps(device, 5), 0);
        assert_int_equal(sk2_server_add_device(server, &device), 0);
    }
    return server;
}

static sk2_browser_t *s_browser(void)
{
    sk2_browser_t *browser = sk2_browser_new();
    assert_non_null(browser);
    int rc = sk2_browser_start(browser);
    if (rc != 0)
        fail_msg("browser cannot start: %s (%s)", sk2_strerror(rc), sk2_browser_error(browser));
    return browser;
}

/* The next event of `type` about the server called `name`, within S_WAIT_MS (others are
 * dropped). Fails the test if none comes. Caller destroys it. */
static sk2_event_t *s_wait_server(sk2_browser_t *browser, sk2_event_type_t type, const char *name)
{
    int64_t deadline = sk2_clock_mono_us() + S_WAIT_MS * 1000LL;
    while (sk2_clock_mono_us() < deadline) {
        sk2_event_t *event = NULL;
        int left_ms = (int)((deadline - sk2_clock_mono_us()) / 1000);
        int rc = sk2_browser_recv(browser, &event, left_ms > 0 ? left_ms : 0);
        if (rc == SK2_ETIMEDOUT)
            break;
        assert_int_equal(rc, 0);
        if (sk2_event_type(event) == type && strcmp(sk2_event_server_name(event), name) == 0)
            return event;
        sk2_event_destroy(&event);
    }
    fail_msg("no %s event for \"%s\" within %d ms", sk2_event_type_name(type), name, S_WAIT_MS);
    return NULL;
}

/* Waits until announcing is no longer pending (the actor reports asynchronously). */
static sk2_announce_state_t s_wait_announced(sk2_server_t *server)
{
    int64_t deadline = sk2_clock_mono_us() + S_WAIT_MS * 1000LL;
    sk2_announce_state_t state;
    while ((state = sk2_server_announce_state(server)) == SK2_ANNOUNCE_PENDING &&
           sk2_clock_mono_us() < deadline)
        poll(NULL, 0, 10);
    return state;
}

/* Destroys the server and checks that the browser sees it go. */
static void s_destroy_and_see_removed(sk2_browser_t *browser, sk2_server_t **server_p,
                                      const char *announced)
{
    sk2_server_destroy(server_p);
    sk2_event_t *removed = s_wait_server(browser, SK2_EVENT_SERVER_REMOVED, announced);
    sk2_event_destroy(&removed);
}

/* ---- tests ---- */

static void test_announced_server_is_found_with_its_endpoint(void **state)
{
    (void)state;
    char name[64];
    s_unique(name, sizeof name, "kitchen");
    sk2_browser_t *browser = s_browser();
    sk2_server_t *server = s_announced_server(name, 1);

    sk2_event_t *added = s_wait_server(browser, SK2_EVENT_SERVER_ADDED, name);
    assert_string_equal(sk2_event_endpoint(added), sk2_server_endpoint(server));
    assert_int_equal(sk2_event_port(added), sk2_server_port(server));
    /* The SRV target is the machine's own mDNS host name, which has address records. */
    char host[300];
    gethostname(host, sizeof host - 10);
    strcat(host, ".local");
    assert_string_equal(sk2_event_host(added), host);
    assert_true(sk2_event_address_count(added) >= 1);
    assert_string_equal(sk2_event_address(added, 0), "127.0.0.1");
    assert_null(sk2_event_address(added, sk2_event_address_count(added)));
    assert_string_equal(sk2_event_txt(added, "txtvers"), "1");
    assert_string_equal(sk2_event_txt(added, "protocol"), "1");
    assert_string_equal(sk2_event_txt(added, "sk2"), sk2_version());
    assert_null(sk2_event_txt(added, "no-such-key"));
    assert_string_equal(sk2_event_type_name(sk2_event_type(added)), "server-added");
    sk2_event_destroy(&added);

    assert_int_equal(s_wait_announced(server), SK2_ANNOUNCE_ACTIVE);
    assert_string_equal(sk2_server_announced_name(server), name);
    assert_string_equal(sk2_server_announce_reason(server), "");
    assert_int_equal(sk2_browser_server_count(browser), 1);
    assert_string_equal(sk2_browser_server_name(browser, 0), name);
    assert_string_equal(sk2_browser_server_endpoint(browser, 0), sk2_server_endpoint(server));
    assert_null(sk2_browser_server_name(browser, 1));

    s_destroy_and_see_removed(browser, &server, name);
    assert_int_equal(sk2_browser_server_count(browser), 0);
    sk2_browser_destroy(&browser);
    sk2_browser_destroy(&browser);
}

static void test_txt_follows_the_device_count(void **state)
{
    (void)state;
    char name[64];
    s_unique(name, sizeof name, "devices");
    sk2_browser_t *browser = s_browser();
    sk2_server_t *server = s_announced_server(name, 0);
    sk2_event_t *event = s_wait_server(browser, SK2_EVENT_SERVER_ADDED, name);
    assert_string_equal(sk2_event_txt(event, "devices"), "0");
    sk2_event_destroy(&event);

    sk2_device_t *device = sk2_device_new("mock");
    assert_int_equal(sk2_device_set_id(device, "txt-test-device"), 0);
    assert_int_equal(sk2_server_add_device(server, &device), 0);
    event = s_wait_server(browser, SK2_EVENT_SERVER_UPDATED, name);
    assert_string_equal(sk2_event_txt(event, "devices"), "1");
    assert_string_equal(sk2_event_endpoint(event), sk2_server_endpoint(server));
    sk2_event_destroy(&event);

    assert_int_equal(sk2_server_remove_device(server, "txt-test-device"), 0);
    event = s_wait_server(browser, SK2_EVENT_SERVER_UPDATED, name);
    assert_string_equal(sk2_event_txt(event, "devices"), "0");
    sk2_event_destroy(&event);

    s_destroy_and_see_removed(browser, &server, name);
    sk2_browser_destroy(&browser);
}

static void test_two_servers_with_one_name_get_distinct_names(void **state)
{
    (void)state;
    char name[64];
    s_unique(name, sizeof name, "twin");
    sk2_browser_t *browser = s_browser();
    sk2_server_t *first = s_announced_server(name, 0);
    assert_int_equal(s_wait_announced(first), SK2_ANNOUNCE_ACTIVE);
    sk2_server_t *second = s_announced_server(name, 0);
    assert_int_equal(s_wait_announced(second), SK2_ANNOUNCE_ACTIVE);

    char first_name[64], second_name[64];
    snprintf(first_name, sizeof first_name, "%s", sk2_server_announced_name(first));
    snprintf(second_name, sizeof second_name, "%s", sk2_server_announced_name(second));
    assert_string_equal(first_name, name);
    assert_string_not_equal(second_name, name);
    assert_memory_equal(second_name, name, strlen(name)); /* "NAME #2": the name, extended */
    /* The server keeps its own name in `me`; only the announcement differs. */
    assert_string_equal(sk2_server_name(second), name);

    sk2_event_t *a = s_wait_server(browser, SK2_EVENT_SERVER_ADDED, first_name);
    sk2_event_t *b = s_wait_server(browser, SK2_EVENT_SERVER_ADDED, second_name);
    assert_string_equal(sk2_event_endpoint(a), sk2_server_endpoint(first));
    assert_string_equal(sk2_event_endpoint(b), sk2_server_endpoint(second));
    sk2_event_destroy(&a);
    sk2_event_destroy(&b);

    s_destroy_and_see_removed(browser, &second, second_name);
    s_destroy_and_see_removed(browser, &first, first_name);
    sk2_browser_destroy(&browser);
}

typedef struct {
    int added;   /* SERVER_ADDED events for `name` */
    int removed; /* SERVER_REMOVED events for `name` */
    const char *name;
} s_seen_t;

static void s_on_event(void *arg, sk2_browser_t *browser, sk2_event_t *event)
{
    s_seen_t *seen = arg;
    assert_non_null(browser);
    const char *name = sk2_event_server_name(event);
    if (!name || strcmp(name, seen->name) != 0)
        return;
    if (sk2_event_type(event) == SK2_EVENT_SERVER_ADDED)
        seen->added++;
    if (sk2_event_type(event) == SK2_EVENT_SERVER_REMOVED)
        seen->removed++;
}

/* A foreign loop: poll(2) on the browser's descriptors and timeout, then dispatch(b, 0). */
static void s_foreign_loop_until(sk2_browser_t *browser, const int *counter)
{
    int64_t deadline = sk2_clock_mono_us() + S_WAIT_MS * 1000LL;
    while (*counter == 0 && sk2_clock_mono_us() < deadline) {
        int fds[8];
        struct pollfd polled[8];
        size_t n = sk2_browser_fds(browser, fds, 8);
        assert_true(n >= 1 && n <= 8);
        for (size_t i = 0; i < n; i++)
            polled[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
        int timeout_ms = sk2_browser_timeout_ms(browser);
        if (timeout_ms < 0 || timeout_ms > 500)
            timeout_ms = 500;
        assert_true(poll(polled, n, timeout_ms) >= 0);
        assert_true(sk2_browser_dispatch(browser, 0) >= 0);
    }
    assert_int_equal(*counter, 1);
}

static void test_events_reach_a_handler_through_fds_and_dispatch(void **state)
{
    (void)state;
    char name[64];
    s_unique(name, sizeof name, "foreign loop");
    s_seen_t seen = {.name = name};
    sk2_browser_t *browser = s_browser();
    sk2_browser_set_handler(browser, s_on_event, &seen);
    sk2_server_t *server = s_announced_server(name, 0);
    s_foreign_loop_until(browser, &seen.added);
    sk2_server_destroy(&server);
    s_foreign_loop_until(browser, &seen.removed);
    sk2_browser_destroy(&browser);
}

static void test_find_takes_a_name_or_the_only_server(void **state)
{
    (void)state;
    char name[64], other[64];
    s_unique(name, sizeof name, "findable");
    s_unique(other, sizeof other, "another");
    sk2_server_t *server = s_announced_server(name, 1);
    char endpoint[128];

    /* By name, ignoring case, from a fresh browser each time. */
    sk2_browser_t *browser = sk2_browser_new();
    for (char *p = name; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    assert_int_equal(sk2_browser_find(browser, name, S_WAIT_MS, endpoint, sizeof endpoint), 0);
    assert_string_equal(endpoint, sk2_server_endpoint(server));
    assert_int_equal(sk2_browser_find(browser, name, 0, endpoint, 4), SK2_ENOSPC);
    sk2_browser_destroy(&browser);

    /* The only server on the network. */
    browser = sk2_browser_new();
    assert_int_equal(sk2_browser_find(browser, NULL, S_WAIT_MS, endpoint, sizeof endpoint), 0);
    assert_string_equal(endpoint, sk2_server_endpoint(server));
    assert_true(sk2_browser_is_settled(browser));
    /* A name nobody has: not found, in the time given. */
    int64_t started = sk2_clock_mono_us();
    assert_int_equal(
        sk2_browser_find(browser, "nobody by this name", 300, endpoint, sizeof endpoint),
        SK2_ETIMEDOUT);
    assert_true(sk2_clock_mono_us() - started < 2000000);

    /* Two servers and no name: which one is not for the library to guess. */
    sk2_server_t *second = s_announced_server(other, 0);
    sk2_event_t *event = s_wait_server(browser, SK2_EVENT_SERVER_ADDED, other);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_browser_find(browser, NULL, S_WAIT_MS, endpoint, sizeof endpoint),
                     SK2_EEXIST);
    assert_int_equal(sk2_browser_server_count(browser), 2);
    s_destroy_and_see_removed(browser, &second, other);

    /* The client convenience connects and gets `me`. */
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_connect_name(client, name, S_WAIT_MS), 0);
    event = NULL;
    assert_int_equal(sk2_client_recv(client, &event, 5000), 0);
    assert_int_equal(sk2_event_type(event), SK2_EVENT_CONNECTED);
    sk2_event_destroy(&event);
    assert_int_equal(sk2_client_device_count(client), 1);
    sk2_client_destroy(&client);

    s_unique(name, sizeof name, "findable");
    s_destroy_and_see_removed(browser, &server, name);
    sk2_browser_destroy(&browser);
}

/* A secure server announces its key; a secure client that finds it by name without a server
 * key pins that key on first use, and refuses a server of the same name with another key. */
static void test_a_secure_server_key_is_pinned_on_first_use_and_a_changed_one_refused(void **state)
{
    (void)state;
    char root[] = "/tmp/sk2-tofu-XXXXXX";
    assert_non_null(mkdtemp(root));
    char dirs[4][64], keys[4][SK2_KEY_TEXT_SIZE], config[64], file[96], command[400];
    const char *names[4] = {"server", "impostor", "client", "allow"};
    for (int i = 0; i < 4; i++) {
        snprintf(dirs[i], sizeof dirs[i], "%s/%s", root, names[i]);
        if (i < 3)
            assert_int_equal(sk2_security_keygen(dirs[i], names[i], false, keys[i]), 0);
    }
    snprintf(command, sizeof command, "mkdir %s && cp %s/client.key %s/", dirs[3], dirs[2],
             dirs[3]);
    assert_int_equal(system(command), 0);
    snprintf(config, sizeof config, "%s/config", root);
    snprintf(file, sizeof file, "%s/sk2/known_servers", config);
    setenv("XDG_CONFIG_HOME", config, 1);

    char name[64];
    s_unique(name, sizeof name, "secure rig");
    sk2_browser_t *browser = s_browser();
    for (int round = 0; round < 2; round++) {
        sk2_server_t *server = sk2_server_new(name);
        assert_int_equal(sk2_server_set_security(server, dirs[round], dirs[3]), 0);
        assert_int_equal(sk2_server_set_announce(server, true), 0);
        assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
        sk2_event_t *event = s_wait_server(browser, SK2_EVENT_SERVER_ADDED, name);
        assert_string_equal(sk2_event_txt(event, "key"), keys[round]);
        sk2_event_destroy(&event);

        sk2_client_t *client = sk2_client_new();
        assert_int_equal(sk2_client_set_security(client, dirs[2], NULL), 0);
        int rc = sk2_client_connect_name(client, name, S_WAIT_MS);
        if (round == 0) {
            /* First use: pinned, and connected with it. */
            assert_int_equal(rc, 0);
            assert_string_equal(sk2_client_server_key(client), keys[0]);
            event = NULL;
            assert_int_equal(sk2_client_recv(client, &event, 10000), 0);
            assert_int_equal(sk2_event_type(event), SK2_EVENT_CONNECTED);
            sk2_event_destroy(&event);
            FILE *f = fopen(file, "r");
            assert_non_null(f);
            char line[512] = "", expected[512];
            assert_non_null(fgets(line, sizeof line, f));
            fclose(f);
            snprintf(expected, sizeof expected, "%s %s\n", keys[0], name);
            assert_string_equal(line, expected);
        } else {
            /* Same name, another key: refused, not connected, the file unchanged. */
            assert_int_equal(rc, SK2_EKEYCHANGED);
            assert_false(sk2_client_is_connected(client));
            /* An explicit server key wins over the pinned one. */
            sk2_client_destroy(&client);
            client = sk2_client_new();
            assert_int_equal(sk2_client_set_security(client, dirs[2], keys[1]), 0);
            assert_int_equal(sk2_client_connect_name(client, name, S_WAIT_MS), 0);
            event = NULL;
            assert_int_equal(sk2_client_recv(client, &event, 10000), 0);
            assert_int_equal(sk2_event_type(event), SK2_EVENT_CONNECTED);
            sk2_event_destroy(&event);
        }
        sk2_client_destroy(&client);
        s_destroy_and_see_removed(browser, &server, name);
    }
    sk2_browser_destroy(&browser);
    unsetenv("XDG_CONFIG_HOME");
    snprintf(command, sizeof command, "rm -rf %s", root);
    assert_int_equal(system(command), 0);
}

static void test_a_long_name_is_announced_cut_to_one_label(void **state)
{
    (void)state;
    /* 70 bytes, with a two-byte character straddling byte 63: the cut must not split it. */
    char name[128];
    snprintf(name, sizeof name, "%ld %s", (long)getpid(),
             "long name long name long name long name long name long \xc3\xa9tagere x");
    size_t cut = 63;
    while (((unsigned char)name[cut] & 0xc0) == 0x80)
        cut--;
    char expected[64];
    memcpy(expected, name, cut);
    expected[cut] = '\0';
    sk2_browser_t *browser = s_browser();
    sk2_server_t *server = s_announced_server(name, 0);
    sk2_event_t *added = s_wait_server(browser, SK2_EVENT_SERVER_ADDED, expected);
    sk2_event_destroy(&added);
    assert_int_equal(s_wait_announced(server), SK2_ANNOUNCE_ACTIVE);
    assert_string_equal(sk2_server_announced_name(server), expected);
    s_destroy_and_see_removed(browser, &server, expected);
    sk2_browser_destroy(&browser);
}

static void test_announcing_is_off_unless_asked_and_only_before_bind(void **state)
{
    (void)state;
    sk2_server_t *server = sk2_server_new("quiet");
    assert_int_equal(sk2_server_announce_state(server), SK2_ANNOUNCE_OFF);
    assert_int_equal(sk2_server_bind(server, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_server_announce_state(server), SK2_ANNOUNCE_OFF);
    assert_null(sk2_server_announced_name(server));
    assert_int_equal(sk2_server_set_announce(server, true), SK2_ESTATE);
    assert_int_equal(sk2_server_set_announce(NULL, true), SK2_EINVAL);
    sk2_server_destroy(&server);
}

static void test_without_a_daemon_the_server_serves_and_says_why(void **state)
{
    (void)state;
    sk2_server_t *server = s_announced_server("no daemon", 1);
    assert_int_equal(s_wait_announced(server), SK2_ANNOUNCE_FAILED);
    assert_null(sk2_server_announced_name(server));
    assert_non_null(strstr(sk2_server_announce_reason(server), "avahi-daemon"));
    /* It still serves. */
    sk2_client_t *client = sk2_client_new();
    assert_int_equal(sk2_client_connect(client, sk2_server_endpoint(server)), 0);
    sk2_event_t *event = NULL;
    assert_int_equal(sk2_client_recv(client, &event, 5000), 0);
    assert_int_equal(sk2_event_type(event), SK2_EVENT_CONNECTED);
    sk2_event_destroy(&event);
    sk2_client_destroy(&client);
    sk2_server_destroy(&server);
}

static void test_without_a_daemon_the_browser_says_why(void **state)
{
    (void)state;
    sk2_browser_t *browser = sk2_browser_new();
    assert_string_equal(sk2_browser_error(browser), "");
    assert_int_equal(sk2_browser_start(browser), SK2_ECONNECT);
    assert_non_null(strstr(sk2_browser_error(browser), "avahi-daemon"));
    sk2_event_t *none = NULL;
    assert_int_equal(sk2_browser_recv(browser, &none, 0), SK2_ESTATE);
    assert_int_equal(sk2_browser_dispatch(browser, 0), SK2_ESTATE);
    assert_int_equal(sk2_browser_fds(browser, NULL, 0), 0);
    assert_int_equal(sk2_browser_timeout_ms(browser), -1);
    assert_false(sk2_browser_is_settled(browser));
    char endpoint[64];
    assert_int_equal(sk2_browser_find(browser, NULL, 100, endpoint, sizeof endpoint), SK2_ECONNECT);
    sk2_browser_destroy(&browser);
    sk2_client_t *named = sk2_client_new();
    assert_int_equal(sk2_client_connect_name(named, "anything", 100), SK2_ECONNECT);
    assert_false(sk2_client_is_connected(named));
    sk2_client_destroy(&named);
}

/* Usage: test_discovery            (inside with-avahi-netns.sh: real daemons)
 *        test_discovery --no-daemon (DBUS_SYSTEM_BUS_ADDRESS must point nowhere)
 * Two runs, because libdbus reads the bus address once per process. */
int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--no-daemon") == 0) {
        const char *bus = getenv("DBUS_SYSTEM_BUS_ADDRESS");
        if (!bus || !strstr(bus, "/nonexistent/")) {
            fprintf(stderr,
                    "--no-daemon needs DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/...\n");
            return 2;
        }
        const struct CMUnitTest no_daemon[] = {
            cmocka_unit_test(test_without_a_daemon_the_server_serves_and_says_why),
            cmocka_unit_test(test_without_a_daemon_the_browser_says_why),
            cmocka_unit_test(test_announcing_is_off_unless_asked_and_only_before_bind),
        };
        return cmocka_run_group_tests(no_daemon, NULL, NULL);
    }
    /* Outside the namespace script this would talk to the machine's own avahi-daemon, if any,
     * and announce test servers to the network: refuse instead. */
    if (!getenv("SK2_NETNS_INSIDE")) {
        fprintf(stderr, "test_discovery runs only inside tests/discovery/with-avahi-netns.sh\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announced_server_is_found_with_its_endpoint),
        cmocka_unit_test(test_txt_follows_the_device_count),
        cmocka_unit_test(test_two_servers_with_one_name_get_distinct_names),
        cmocka_unit_test(test_events_reach_a_handler_through_fds_and_dispatch),
        cmocka_unit_test(test_find_takes_a_name_or_the_only_server),
        cmocka_unit_test(test_a_long_name_is_announced_cut_to_one_label),
        cmocka_unit_test(test_a_secure_server_key_is_pinned_on_first_use_and_a_changed_one_refused),
        cmocka_unit_test(test_announcing_is_off_unless_asked_and_only_before_bind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
