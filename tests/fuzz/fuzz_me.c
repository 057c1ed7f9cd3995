/* Fuzzes the `me` parser with arbitrary JSON text, the way a client meets a hostile server. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "proto/me.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t error;
    json_t *payload =
        json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
    if (!payload)
        return 0;
    sk2_me_t *me = NULL;
    char why[256];
    if (sk2_me_parse(payload, &me, why, sizeof why) == 0) {
        for (size_t i = 0; i < me->device_count; i++) {
            const char *depth = sk2_me_endpoint(&me->devices[i], "depth");
            if (depth && strlen(depth) > SK2_ME_MAX_STRING)
                __builtin_trap(); /* the limit was not applied */
            if (sk2_me_find(me, me->devices[i].id) != &me->devices[i])
                __builtin_trap(); /* ids must be unique */
        }
        sk2_me_destroy(&me);
    }
    json_decref(payload);
    return 0;
}
