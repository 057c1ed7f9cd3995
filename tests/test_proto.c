/* Control messages and `me` payloads: every rule of PROTOCOL.md's control endpoint, and every
 * way a peer can get them wrong. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/me.h"
#include "proto/msg.h"
#include "sk2/sk2.h"

static int s_parse(const char *type, size_t type_len, const char *payload, size_t payload_len,
                   size_t count, sk2_msg_origin_t origin, sk2_msg_t *msg, char *why)
{
    const uint8_t *frames[3] = {(const uint8_t *)type, (const uint8_t *)payload,
                                (const uint8_t *)payload};
    size_t sizes[3] = {type_len, payload_len, payload_len};
    return sk2_msg_parse(count, frames, sizes, origin, msg, why, 256);
}

static void test_requests_from_clients_parse(void **state)
{
    (void)state;
    sk2_msg_t msg;
    char why[256];
    assert_int_equal(s_parse("\x01", 1, NULL, 0, 1, SK2_MSG_FROM_CLIENT, &msg, why), 0);
    assert_int_equal(msg.type, SK2_MSG_PING);
    assert_null(msg.payload);
    assert_int_equal(s_parse("\x03", 1, "{}", 2, 2, SK2_MSG_FROM_CLIENT, &msg, why), 0);
    assert_int_equal(msg.type, SK2_MSG_WHO);
    assert_true(json_is_object(msg.payload));
    sk2_msg_clear(&msg);
    sk2_msg_clear(&msg);
    assert_null(msg.payload);
}

static void test_malformed_messages_are_refused_with_a_reason(void **state)
{
    (void)state;
    sk2_msg_t msg;
    char why[256];
    assert_int_equal(s_parse("\x01", 1, "{}", 2, 3, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_non_null(strstr(why, "1 or 2 frames"));
    assert_int_equal(s_parse("\x01", 1, NULL, 0, 0, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_int_equal(s_parse("\x01\x01", 2, NULL, 0, 1, SK2_MSG_FROM_CLIENT, &msg, why),
                     SK2_EPROTO);
    assert_non_null(strstr(why, "exactly 1 byte"));
    assert_int_equal(s_parse("", 0, NULL, 0, 1, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_int_equal(s_parse("\x7f", 1, NULL, 0, 1, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_non_null(strstr(why, "0x7f"));
    assert_int_equal(s_parse("\x03", 1, "{nope", 5, 2, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_non_null(strstr(why, "JSON"));
    assert_int_equal(s_parse("\x03", 1, "\"\xff\xfe\"", 4, 2, SK2_MSG_FROM_CLIENT, &msg, why),
                     SK2_EPROTO);
    assert_int_equal(s_parse("\x03", 1, "\"a\0b\"", 5, 2, SK2_MSG_FROM_CLIENT, &msg, why),
                     SK2_EPROTO);
    assert_null(msg.payload);
}

static void test_each_type_travels_only_one_way(void **state)
{
    (void)state;
    sk2_msg_t msg;
    char why[256];
    const char *server_types[] = {"\x00", "\x02", "\x04"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(s_parse(server_types[i], 1, NULL, 0, 1, SK2_MSG_FROM_CLIENT, &msg, why),
                         SK2_EPROTO);
        assert_non_null(strstr(why, "only be sent by a server"));
        assert_int_equal(s_parse(server_types[i], 1, NULL, 0, 1, SK2_MSG_FROM_SERVER, &msg, why),
                         0);
    }
    assert_int_equal(s_parse("\x01", 1, NULL, 0, 1, SK2_MSG_FROM_SERVER, &msg, why), SK2_EPROTO);
    assert_int_equal(s_parse("\x03", 1, NULL, 0, 1, SK2_MSG_FROM_SERVER, &msg, why), SK2_EPROTO);
    /* sk2's replay control: the request from clients, the reply from servers. */
    const char *replay = "{\"action\":\"pause\"}";
    assert_int_equal(s_parse("\x07", 1, replay, strlen(replay), 2, SK2_MSG_FROM_CLIENT, &msg, why),
                     0);
    assert_int_equal(msg.type, SK2_MSG_REPLAY);
    assert_true(json_is_object(msg.payload));
    sk2_msg_clear(&msg);
    assert_int_equal(s_parse("\x07", 1, NULL, 0, 1, SK2_MSG_FROM_SERVER, &msg, why), SK2_EPROTO);
    assert_int_equal(s_parse("\x08", 1, "{}", 2, 2, SK2_MSG_FROM_SERVER, &msg, why), 0);
    assert_int_equal(msg.type, SK2_MSG_REPLAY_REPLY);
    sk2_msg_clear(&msg);
    assert_int_equal(s_parse("\x08", 1, NULL, 0, 1, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_int_equal(s_parse("\xf0", 1, NULL, 0, 1, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_non_null(strstr(why, "unknown message type"));
    assert_string_equal(sk2_msg_type_name(SK2_MSG_REPLAY), "replay");
    assert_string_equal(sk2_msg_type_name(SK2_MSG_REPLAY_REPLY), "replay-reply");
    /* Keyed commands: the request from clients only, the reply from servers only. */
    const char *command = "{\"id\":\"a1\",\"key\":\"label\",\"value\":\"x\"}";
    assert_int_equal(
        s_parse("\x09", 1, command, strlen(command), 2, SK2_MSG_FROM_CLIENT, &msg, why), 0);
    assert_int_equal(msg.type, SK2_MSG_COMMAND);
    bool id_ok = false;
    assert_int_equal(sk2_msg_command_check(msg.payload, &id_ok, why, sizeof why), 0);
    assert_true(id_ok);
    sk2_msg_clear(&msg);
    assert_int_equal(s_parse("\x09", 1, "{}", 2, 2, SK2_MSG_FROM_SERVER, &msg, why), SK2_EPROTO);
    assert_non_null(strstr(why, "only be sent by a client"));
    assert_int_equal(s_parse("\x0a", 1, "{}", 2, 2, SK2_MSG_FROM_SERVER, &msg, why), 0);
    assert_int_equal(msg.type, SK2_MSG_COMMAND_REPLY);
    sk2_msg_clear(&msg);
    assert_int_equal(s_parse("\x0a", 1, "{}", 2, 2, SK2_MSG_FROM_CLIENT, &msg, why), SK2_EPROTO);
    assert_string_equal(sk2_msg_type_name(SK2_MSG_COMMAND), "command");
    assert_string_equal(sk2_msg_type_name(SK2_MSG_COMMAND_REPLY), "command-reply");
}

static void s_expect_command(const char *text, int expected, bool id_ok_expected,
                             const char *reason)
{
    json_error_t error;
    json_t *payload = json_loads(text, 0, &error);
    assert_non_null(payload);
    char why[256] = "";
    bool id_ok = !id_ok_expected;
    assert_int_equal(sk2_msg_command_check(payload, &id_ok, why, sizeof why), expected);
    assert_int_equal(id_ok, id_ok_expected);
    if (reason)
        assert_non_null(strstr(why, reason));
    json_decref(payload);
}

static void test_commands_are_checked_with_limits(void **state)
{
    (void)state;
    s_expect_command("{\"id\":\"x\",\"key\":\"fps\",\"value\":15,\"ttl_ms\":2000,"
                     "\"device\":\"d\"}",
                     0, true, NULL);
    s_expect_command("[]", SK2_EPROTO, false, "\"id\"");
    s_expect_command("{\"key\":\"fps\"}", SK2_EPROTO, false, "\"id\"");
    s_expect_command("{\"id\":\"has space\",\"key\":\"fps\"}", SK2_EPROTO, false, "\"id\"");
    s_expect_command(
        "{\"id\":\"01234567890123456789012345678901234567890123456789012345678901234\","
        "\"key\":\"fps\"}",
        SK2_EPROTO, false, "\"id\"");
    s_expect_command("{\"id\":\"x\"}", SK2_EPROTO, true, "\"key\"");
    s_expect_command("{\"id\":\"x\",\"key\":\"fps\",\"device\":3}", SK2_EPROTO, true, "\"device\"");
    s_expect_command("{\"id\":\"x\",\"key\":\"fps\",\"ttl_ms\":0}", SK2_EPROTO, true, "ttl_ms");
    s_expect_command("{\"id\":\"x\",\"key\":\"fps\",\"value\":[1]}", SK2_EPROTO, true, "\"value\"");
    char big[400];
    snprintf(big, sizeof big, "{\"id\":\"x\",\"key\":\"label\",\"value\":\"%0300d\"}", 0);
    s_expect_command(big, SK2_EPROTO, true, "at most");
}

static void test_payloads_over_the_limit_are_refused_unparsed(void **state)
{
    (void)state;
    size_t size = 4u << 20;
    char *big = malloc(size);
    assert_non_null(big);
    memset(big, ' ', size);
    big[0] = '[';
    big[size - 1] = ']';
    sk2_msg_t msg;
    char why[256];
    assert_int_equal(s_parse("\x03", 1, big, size, 2, SK2_MSG_FROM_CLIENT, &msg, why), SK2_ELIMIT);
    assert_non_null(strstr(why, "limit"));
    /* Exactly at the limit is still parsed. */
    memset(big, ' ', SK2_MSG_MAX_PAYLOAD);
    big[0] = '[';
    big[SK2_MSG_MAX_PAYLOAD - 1] = ']';
    assert_int_equal(
        s_parse("\x03", 1, big, SK2_MSG_MAX_PAYLOAD, 2, SK2_MSG_FROM_CLIENT, &msg, why), 0);
    sk2_msg_clear(&msg);
    free(big);
}

static void test_error_payload_matches_the_original(void **state)
{
    (void)state;
    json_t *payload = sk2_msg_error_payload("bad thing");
    char *text = json_dumps(payload, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(text, "{\"code\":400,\"reason\":\"bad thing\"}");
    free(text);
    json_decref(payload);
    payload = sk2_msg_error_payload("\xff not utf-8");
    assert_string_equal(json_string_value(json_object_get(payload, "reason")), "bad request");
    json_decref(payload);
}

static int s_me(const char *text, sk2_me_t **me, char *why)
{
    json_error_t error;
    json_t *payload = json_loads(text, JSON_ALLOW_NUL | JSON_DECODE_ANY, &error);
    assert_non_null(payload);
    int rc = sk2_me_parse(payload, me, why, 256);
    json_decref(payload);
    return rc;
}

static void test_a_valid_me_is_indexed(void **state)
{
    (void)state;
    sk2_me_t *me = NULL;
    char why[256];
    assert_int_equal(s_me("{\"version\":1,\"name\":\"Bob's Kinect\",\"endpoints\":{\"control\":"
                          "\"tcp://10.0.0.1:1234\",\"future\":\"tcp://x:1\"},\"devices\":[{\"id\":"
                          "\"abc\",\"endpoints\":{\"depth\":\"tcp://10.0.0.1:1236\"}},{\"id\":"
                          "\"def\",\"endpoints\":{}}],\"extra\":true}",
                          &me, why),
                     0);
    assert_string_equal(me->name, "Bob's Kinect");
    assert_string_equal(me->control, "tcp://10.0.0.1:1234");
    assert_int_equal(me->device_count, 2);
    const sk2_me_device_t *abc = sk2_me_find(me, "abc");
    assert_non_null(abc);
    assert_string_equal(sk2_me_endpoint(abc, "depth"), "tcp://10.0.0.1:1236");
    assert_null(sk2_me_endpoint(sk2_me_find(me, "def"), "depth"));
    assert_null(sk2_me_find(me, "zzz"));
    sk2_me_destroy(&me);
    sk2_me_destroy(&me);
    assert_null(me);
}

static void test_bad_me_payloads_are_protocol_errors(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "[]",
        "{\"name\":\"a\",\"endpoints\":{},\"devices\":[]}",
        "{\"version\":2,\"name\":\"a\",\"endpoints\":{},\"devices\":[]}",
        "{\"version\":\"1\",\"name\":\"a\",\"endpoints\":{},\"devices\":[]}",
        "{\"version\":1,\"endpoints\":{},\"devices\":[]}",
        "{\"version\":1,\"name\":5,\"endpoints\":{},\"devices\":[]}",
        "{\"version\":1,\"name\":\"a\",\"endpoints\":[],\"devices\":[]}",
        "{\"version\":1,\"name\":\"a\",\"endpoints\":{\"control\":7},\"devices\":[]}",
        "{\"version\":1,\"name\":\"a\",\"endpoints\":{},\"devices\":{}}",
        "{\"version\":1,\"name\":\"a\",\"endpoints\":{},\"devices\":[5]}",
        "{\"version\":1,\"name\":\"a\",\"endpoints\":{},\"devices\":[{\"endpoints\":{}}]}",
        "{\"version\":1,\"name\":\"a\",\"endpoints\":{},\"devices\":[{\"id\":\"x\"}]}",
        ("{\"version\":1,\"name\":\"a\",\"endpoints\":{},\"devices\":[{\"id\":\"x\",\"endpoints\":"
         "{}},{\"id\":\"x\",\"endpoints\":{}}]}"),
        "{\"version\":1,\"name\":\"\",\"endpoints\":{},\"devices\":[]}",
        "{\"version\":1,\"name\":\"a\\u0000b\",\"endpoints\":{},\"devices\":[]}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sk2_me_t *me = (sk2_me_t *)0x1;
        char why[256] = "";
        int rc = s_me(bad[i], &me, why);
        if (rc == 0)
            fail_msg("accepted bad me #%zu: %s", i, bad[i]);
        assert_null(me);
        assert_true(strlen(why) > 0);
    }
}

static void test_me_limits_bound_devices_and_strings(void **state)
{
    (void)state;
    json_t *devices = json_array();
    for (int i = 0; i <= SK2_ME_MAX_DEVICES; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%d", i);
        json_array_append_new(devices, json_pack("{s:s, s:{}}", "id", id, "endpoints"));
    }
    json_t *payload = json_pack("{s:i, s:s, s:{}, s:o}", "version", 1, "name", "n", "endpoints",
                                "devices", devices);
    sk2_me_t *me = NULL;
    char why[256];
    assert_int_equal(sk2_me_parse(payload, &me, why, sizeof why), SK2_ELIMIT);
    json_array_remove(devices, 0);
    assert_int_equal(sk2_me_parse(payload, &me, why, sizeof why), 0);
    assert_int_equal(me->device_count, SK2_ME_MAX_DEVICES);
    sk2_me_destroy(&me);
    char *long_name = malloc(SK2_ME_MAX_STRING + 2);
    memset(long_name, 'n', SK2_ME_MAX_STRING + 1);
    long_name[SK2_ME_MAX_STRING + 1] = '\0';
    json_object_set_new(payload, "name", json_string(long_name));
    assert_int_equal(sk2_me_parse(payload, &me, why, sizeof why), SK2_ELIMIT);
    free(long_name);
    json_decref(payload);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_from_clients_parse),
        cmocka_unit_test(test_malformed_messages_are_refused_with_a_reason),
        cmocka_unit_test(test_each_type_travels_only_one_way),
        cmocka_unit_test(test_payloads_over_the_limit_are_refused_unparsed),
        cmocka_unit_test(test_commands_are_checked_with_limits),
        cmocka_unit_test(test_error_payload_matches_the_original),
        cmocka_unit_test(test_a_valid_me_is_indexed),
        cmocka_unit_test(test_bad_me_payloads_are_protocol_errors),
        cmocka_unit_test(test_me_limits_bound_devices_and_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
