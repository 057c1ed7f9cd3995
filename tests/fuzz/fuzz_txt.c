/* Fuzzes the TXT record reader with arbitrary rdata, the way a browser meets a hostile
 * announcement, and checks the promises txt.h makes about what it keeps. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "proto/txt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sk2_txt_t *txt = sk2_txt_parse_rdata(data, size);
    if (!txt)
        return 0;
    if (txt->count > SK2_TXT_MAX_ENTRIES)
        __builtin_trap();
    for (size_t i = 0; i < txt->count; i++) {
        size_t key = strlen(txt->keys[i]);
        if (key == 0 || key + strlen(txt->values[i]) > SK2_TXT_MAX_STRING ||
            strchr(txt->keys[i], '='))
            __builtin_trap(); /* a limit or a rule was not applied */
        for (size_t k = 0; k < i; k++)
            if (strcasecmp(txt->keys[k], txt->keys[i]) == 0)
                __builtin_trap(); /* keys must be unique */
        if (sk2_txt_get(txt, txt->keys[i]) != txt->values[i])
            __builtin_trap();
    }
    sk2_txt_t *copy = sk2_txt_copy(txt);
    if (copy && !sk2_txt_equal(copy, txt))
        __builtin_trap();
    sk2_txt_destroy(&copy);
    sk2_txt_destroy(&txt);
    return 0;
}
