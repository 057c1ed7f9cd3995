/* TXT records: sk2's own keys, and what the reader keeps of a stranger's (RFC 6763 rules,
 * limits, first key wins). Pure C, no network. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/txt.h"
#include "sk2/sk2.h"

static void test_announced_keys_say_version_protocol_and_devices(void **state)
{
    (void)state;
    char buf[SK2_TXT_ANNOUNCED_MAX][64];
    const char *strings[SK2_TXT_ANNOUNCED_MAX];
    assert_int_equal(sk2_txt_announced(3, NULL, buf, strings), 4);
    assert_string_equal(strings[0], "txtvers=1");
    assert_string_equal(strings[1], "protocol=1");
    assert_memory_equal(strings[2], "sk2=", 4);
    assert_string_equal(strings[2] + 4, sk2_version());
    assert_string_equal(strings[3], "devices=3");
}

static void test_a_secure_server_announces_its_key_and_a_browser_reads_it_back(void **state)
{
    (void)state;
    static const char key[] = "rq:rM>}U?@Lns47E1%kR.o@n%Fcmm=L/@{H8]yf7";
    char buf[SK2_TXT_ANNOUNCED_MAX][64];
    const char *strings[SK2_TXT_ANNOUNCED_MAX];
    size_t count = sk2_txt_announced(2, key, buf, strings);
    assert_int_equal(count, 5);
    assert_string_equal(strings[4], "key=rq:rM>}U?@Lns47E1%kR.o@n%Fcmm=L/@{H8]yf7");
    /* Through the wire format and the parser a browser uses. */
    uint8_t rdata[512];
    size_t size = 0;
    for (size_t i = 0; i < count; i++) {
        size_t length = strlen(strings[i]);
        rdata[size++] = (uint8_t)length;
        memcpy(rdata + size, strings[i], length);
        size += length;
    }
    sk2_txt_t *txt = sk2_txt_parse_rdata(rdata, size);
    assert_non_null(txt);
    assert_string_equal(sk2_txt_get(txt, "key"), key);
    assert_string_equal(sk2_txt_get(txt, "devices"), "2");
    sk2_txt_destroy(&txt);
}

static void test_rdata_is_read_by_the_rules(void **state)
{
    (void)state;
    static const uint8_t rdata[] = "\x09txtvers=1"
                                   "\x04"
                                   "flag"
                                   "\x08=nokey!!"
                                   "\x09"
                                   "DEVICES=3"
                                   "\x09"
                                   "devices=4"
                                   "\x06"
                                   "bin=\x00x"
                                   "\x05"
                                   "k=v=w"
                                   "\x00";
    sk2_txt_t *txt = sk2_txt_parse_rdata(rdata, sizeof rdata - 1);
    assert_non_null(txt);
    assert_string_equal(sk2_txt_get(txt, "txtvers"), "1");
    assert_string_equal(sk2_txt_get(txt, "flag"), "");     /* a key without a value */
    assert_string_equal(sk2_txt_get(txt, "devices"), "3"); /* the first one wins, any case */
    assert_null(sk2_txt_get(txt, "bin"));                  /* a NUL cannot be a C string */
    assert_string_equal(sk2_txt_get(txt, "k"), "v=w");
    assert_null(sk2_txt_get(txt, ""));
    assert_int_equal(txt->count, 4);
    sk2_txt_t *copy = sk2_txt_copy(txt);
    assert_true(sk2_txt_equal(copy, txt));
    sk2_txt_destroy(&copy);
    sk2_txt_destroy(&txt);
    sk2_txt_destroy(&txt);
    assert_true(sk2_txt_equal(NULL, NULL));
}

static void test_malformed_rdata_is_refused(void **state)
{
    (void)state;
    static const uint8_t overrun[] = {5, 'a', '=', 'b'};
    assert_null(sk2_txt_parse_rdata(overrun, sizeof overrun));
    static uint8_t huge[SK2_TXT_MAX_RDATA + 1];
    assert_null(sk2_txt_parse_rdata(huge, sizeof huge));
    sk2_txt_t *empty = sk2_txt_parse_rdata(NULL, 0);
    assert_non_null(empty);
    assert_int_equal(empty->count, 0);
    sk2_txt_destroy(&empty);
}

static void test_no_more_than_the_entry_limit_is_kept(void **state)
{
    (void)state;
    char keys[SK2_TXT_MAX_ENTRIES + 8][16];
    const char *strings[SK2_TXT_MAX_ENTRIES + 8];
    size_t sizes[SK2_TXT_MAX_ENTRIES + 8];
    for (size_t i = 0; i < SK2_TXT_MAX_ENTRIES + 8; i++) {
        snprintf(keys[i], sizeof keys[i], "k%zu=%zu", i, i);
        strings[i] = keys[i];
        sizes[i] = strlen(keys[i]);
    }
    sk2_txt_t *txt = sk2_txt_parse(strings, sizes, SK2_TXT_MAX_ENTRIES + 8);
    assert_int_equal(txt->count, SK2_TXT_MAX_ENTRIES);
    assert_null(sk2_txt_get(txt, "k40"));
    sk2_txt_destroy(&txt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_announced_keys_say_version_protocol_and_devices),
        cmocka_unit_test(test_a_secure_server_announces_its_key_and_a_browser_reads_it_back),
        cmocka_unit_test(test_rdata_is_read_by_the_rules),
        cmocka_unit_test(test_malformed_rdata_is_refused),
        cmocka_unit_test(test_no_more_than_the_entry_limit_is_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
