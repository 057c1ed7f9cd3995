/* The gateway's token helpers (src/gateway/http_auth.c) and the settings built on them: what
 * a token may be, that comparison needs every byte and the exact length, where a token is found
 * in Authorization and Cookie headers, which addresses count as loopback, and that bind refuses
 * an open address without a token or --http-insecure. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/http_auth.h"
#include "sk2/error.h"
#include "sk2/sk2.h"

static void test_a_token_is_16_to_128_url_safe_characters(void **state)
{
    (void)state;
    assert_true(gw_token_is_valid("0123456789abcdef"));
    assert_true(gw_token_is_valid("A-Za-z0-9._~-ok-longer"));
    char longest[GW_TOKEN_MAX + 2];
    memset(longest, 'a', GW_TOKEN_MAX);
    longest[GW_TOKEN_MAX] = '\0';
    assert_true(gw_token_is_valid(longest));
    longest[GW_TOKEN_MAX] = 'a';
    longest[GW_TOKEN_MAX + 1] = '\0';
    assert_false(gw_token_is_valid(longest));
    assert_false(gw_token_is_valid("0123456789abcde")); /* 15 */
    assert_false(gw_token_is_valid("0123456789abcdef%20"));
    assert_false(gw_token_is_valid("0123456789 abcdef"));
    assert_false(gw_token_is_valid("0123456789abcdef;"));
    assert_false(gw_token_is_valid("0123456789abcdef\xc3\xa9"));
    assert_false(gw_token_is_valid(""));
    assert_false(gw_token_is_valid(NULL));
}

static void test_tokens_are_equal_only_byte_for_byte_at_the_same_length(void **state)
{
    (void)state;
    const char *token = "0123456789abcdef0123";
    assert_true(gw_token_equal(token, token, strlen(token)));
    assert_false(gw_token_equal(token, "0123456789abcdef012", 19));
    assert_false(gw_token_equal(token, "0123456789abcdef01234", 21));
    assert_false(gw_token_equal(token, "1123456789abcdef0123", 20));
    assert_false(gw_token_equal(token, "0123456789abcdef0124", 20));
    /* A repeated prefix must not pass for the whole. */
    assert_false(gw_token_equal("abababababababab", "ab", 2));
    assert_false(gw_token_equal(token, "", 0));
    /* Only len bytes are read: the same text longer than len does not match. */
    assert_false(gw_token_equal(token, "0123456789abcdef0123", 10));
}

static void test_generated_tokens_are_32_hex_digits_and_differ(void **state)
{
    (void)state;
    char a[64], b[64];
    assert_int_equal(gw_token_generate(a, sizeof a), 0);
    assert_int_equal(gw_token_generate(b, sizeof b), 0);
    assert_int_equal(strlen(a), 2 * GW_TOKEN_RANDOM_BYTES);
    assert_int_equal(strspn(a, "0123456789abcdef"), strlen(a));
    assert_true(gw_token_is_valid(a));
    assert_string_not_equal(a, b);
    char small[32];
    assert_int_equal(gw_token_generate(small, sizeof small), SK2_ENOSPC);
}

static void test_bearer_credentials_are_found_in_authorization(void **state)
{
    (void)state;
    const char *token = NULL;
    size_t len = 0;
    assert_true(gw_http_bearer("Bearer abc", &token, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(token, "abc", 3);
    assert_true(gw_http_bearer("bearer   xyz  ", &token, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(token, "xyz", 3);
    assert_false(gw_http_bearer("Basic abc", &token, &len));
    assert_false(gw_http_bearer("Bearerabc", &token, &len));
    assert_false(gw_http_bearer("Bearer ", &token, &len));
    assert_false(gw_http_bearer("Bearer a b", &token, &len));
    assert_false(gw_http_bearer("", &token, &len));
    assert_false(gw_http_bearer(NULL, &token, &len));
}

static void test_a_cookie_is_found_by_its_exact_name(void **state)
{
    (void)state;
    const char *value = NULL;
    size_t len = 0;
    assert_true(gw_http_cookie("a=1; sk2_token_80=tok; b=2", "sk2_token_80", &value, &len));
    assert_int_equal(len, 3);
    assert_memory_equal(value, "tok", 3);
    assert_true(gw_http_cookie("sk2_token_80=\"quoted\"", "sk2_token_80", &value, &len));
    assert_int_equal(len, 6);
    assert_memory_equal(value, "quoted", 6);
    assert_false(gw_http_cookie("sk2_token_8080=tok", "sk2_token_80", &value, &len));
    assert_false(gw_http_cookie("xsk2_token_80=tok", "sk2_token_80", &value, &len));
    assert_false(gw_http_cookie("sk2_token_80", "sk2_token_80", &value, &len));
    assert_true(gw_http_cookie("sk2_token_80=", "sk2_token_80", &value, &len) && len == 0);
    assert_false(gw_http_cookie("", "sk2_token_80", &value, &len));
    assert_false(gw_http_cookie(NULL, "sk2_token_80", &value, &len));
}

static void test_only_loopback_literals_count_as_loopback(void **state)
{
    (void)state;
    assert_true(gw_address_is_loopback("127.0.0.1"));
    assert_true(gw_address_is_loopback("127.1.2.3"));
    assert_true(gw_address_is_loopback("::1"));
    assert_true(gw_address_is_loopback("[::1]"));
    assert_true(gw_address_is_loopback("::ffff:127.0.0.1"));
    assert_false(gw_address_is_loopback("0.0.0.0"));
    assert_false(gw_address_is_loopback("::"));
    assert_false(gw_address_is_loopback("192.168.1.2"));
    assert_false(gw_address_is_loopback("128.0.0.1"));
    assert_false(gw_address_is_loopback("localhost"));
    assert_false(gw_address_is_loopback("lo"));
    assert_false(gw_address_is_loopback("eth0"));
    assert_false(gw_address_is_loopback("127.0.0.1 "));
    assert_false(gw_address_is_loopback(""));
    assert_false(gw_address_is_loopback(NULL));
}

static void test_bind_off_loopback_needs_a_token_or_insecure(void **state)
{
    (void)state;
    sk2_gateway_t *gateway = sk2_gateway_new();
    assert_non_null(gateway);
    assert_int_equal(sk2_gateway_bind(gateway, "0.0.0.0", 0), SK2_EINSECURE);
    assert_null(sk2_gateway_url(gateway));
    assert_int_equal(sk2_gateway_bind(gateway, "::", 0), SK2_EINSECURE);
    assert_int_equal(sk2_gateway_set_token(gateway, "short"), SK2_EINVAL);
    assert_null(sk2_gateway_token(gateway));
    assert_int_equal(sk2_gateway_generate_token(gateway), 0);
    assert_int_equal(strlen(sk2_gateway_token(gateway)), 32);
    assert_int_equal(sk2_gateway_set_token(gateway, NULL), 0);
    assert_null(sk2_gateway_token(gateway));
    assert_int_equal(sk2_gateway_set_max_connections(gateway, 15), SK2_EINVAL);
    assert_int_equal(sk2_gateway_set_max_connections(gateway, 4097), SK2_EINVAL);
    assert_int_equal(sk2_gateway_set_max_connections(gateway, 16), 0);
    assert_int_equal(sk2_gateway_set_insecure(gateway, true), 0);
    /* Bound to loopback here all the same: the test never opens a port to the network; what is
     * checked is that the insecure setting is what lets an open address through. */
    assert_int_equal(sk2_gateway_bind(gateway, "127.0.0.1", 0), 0);
    assert_int_equal(sk2_gateway_set_token(gateway, "0123456789abcdef"), SK2_ESTATE);
    assert_int_equal(sk2_gateway_set_insecure(gateway, false), SK2_ESTATE);
    assert_int_equal(sk2_gateway_set_max_connections(gateway, 64), SK2_ESTATE);
    sk2_gateway_destroy(&gateway);
    assert_int_equal(SK2_EINSECURE, -22);
    assert_string_equal(sk2_error_name(SK2_EINSECURE), "SK2_EINSECURE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_token_is_16_to_128_url_safe_characters),
        cmocka_unit_test(test_tokens_are_equal_only_byte_for_byte_at_the_same_length),
        cmocka_unit_test(test_generated_tokens_are_32_hex_digits_and_differ),
        cmocka_unit_test(test_bearer_credentials_are_found_in_authorization),
        cmocka_unit_test(test_a_cookie_is_found_by_its_exact_name),
        cmocka_unit_test(test_only_loopback_literals_count_as_loopback),
        cmocka_unit_test(test_bind_off_loopback_needs_a_token_or_insecure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
