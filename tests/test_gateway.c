/* The gateway's front end: its settings take only what they say and only before start, and a
 * bound, started gateway reports its URL and stops cleanly. What it serves is tested over HTTP
 * and in a browser (tests/web). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sk2/error.h"
#include "sk2/sk2.h"

static void test_max_age_takes_0_or_100_to_3600000_ms(void **state)
{
    (void)state;
    sk2_gateway_t *gateway = sk2_gateway_new();
    assert_non_null(gateway);
    assert_int_equal(sk2_gateway_set_max_age_ms(gateway, 0), 0); /* from the stream's rate */
    assert_int_equal(sk2_gateway_set_max_age_ms(gateway, 100), 0);
    assert_int_equal(sk2_gateway_set_max_age_ms(gateway, 3600000), 0);
    assert_int_equal(sk2_gateway_set_max_age_ms(gateway, 99), SK2_EINVAL);
    assert_int_equal(sk2_gateway_set_max_age_ms(gateway, 3600001), SK2_EINVAL);
    assert_int_equal(sk2_gateway_set_max_age_ms(gateway, -1), SK2_EINVAL);
    assert_int_equal(sk2_gateway_set_max_age_ms(NULL, 1000), SK2_EINVAL);
    sk2_gateway_destroy(&gateway);
    assert_null(gateway);
    sk2_gateway_destroy(&gateway);
}

static void test_settings_are_refused_once_started(void **state)
{
    (void)state;
    sk2_gateway_t *gateway = sk2_gateway_new();
    assert_non_null(gateway);
    assert_null(sk2_gateway_url(gateway));
    assert_int_equal(sk2_gateway_bind(gateway, "127.0.0.1", 0), 0);
    assert_true(sk2_gateway_port(gateway) > 0);
    assert_non_null(strstr(sk2_gateway_url(gateway), "http://127.0.0.1:"));
    assert_int_equal(sk2_gateway_start(gateway), 0);
    assert_int_equal(sk2_gateway_set_max_age_ms(gateway, 1000), SK2_ESTATE);
    assert_int_equal(sk2_gateway_set_refresh_ms(gateway, 1000), SK2_ESTATE);
    assert_int_equal(sk2_gateway_add_server(gateway, "127.0.0.1:1"), SK2_ESTATE);
    sk2_gateway_stats_t stats;
    assert_int_equal(sk2_gateway_stats(gateway, &stats), 0);
    assert_int_equal(stats.websockets, 0);
    sk2_gateway_destroy(&gateway);
    assert_null(gateway);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_age_takes_0_or_100_to_3600000_ms),
        cmocka_unit_test(test_settings_are_refused_once_started),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
