/* Fuzzes the parser of a recording's device description (the JSON of a DEVC chunk, and the
 * "device" object of a TUM folder's sk2.json) on its own, with arbitrary text: fuzz_recording
 * reaches it only through a valid file header and chunk CRC, which random mutations rarely
 * keep. Whatever the parser accepts must stay within its limits and come back the same through
 * the writer's own serialisation, so that a recording copied by `sk2 record` of a replay says
 * what the original said. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record/reader_impl.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int s_same_stream(const sk2_stream_info_t *a, const sk2_stream_info_t *b)
{
    return a->kind == b->kind && a->format == b->format && a->width == b->width &&
           a->height == b->height && a->fps == b->fps && a->depth_unit_m == b->depth_unit_m &&
           a->has_intrinsics == b->has_intrinsics &&
           (!a->has_intrinsics ||
            memcmp(&a->intrinsics, &b->intrinsics, sizeof a->intrinsics) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SK2_REC_JSON_MAX)
        return 0; /* the reader refuses larger descriptions before parsing */
    sk2_rec_device_t device, again;
    char why[256];
    if (sk2_rec_device_parse(data, size, &device, why, sizeof why) != 0)
        return 0;
    if (device.stream_count < 1 || device.stream_count > SK2_REC_STREAMS_MAX ||
        strlen(device.id) == 0 || strlen(device.id) > SK2_DEVICE_ID_MAX ||
        strlen(device.serial) > SK2_DEVICE_ID_MAX || strlen(device.backend) >= 32)
        __builtin_trap(); /* a limit was not applied */
    if (sk2_rec_streams_check(device.streams, device.stream_count, why, sizeof why) != 0)
        __builtin_trap(); /* the writer would refuse what the reader accepted */
    json_t *json = sk2_rec_device_to_json(device.id, device.serial, device.backend, device.streams,
                                          device.stream_count);
    char *text = json ? json_dumps(json, JSON_COMPACT) : NULL;
    json_decref(json);
    if (!text)
        return 0; /* out of memory */
    if (sk2_rec_device_parse((const uint8_t *)text, strlen(text), &again, why, sizeof why) != 0 ||
        strcmp(device.id, again.id) != 0 || strcmp(device.serial, again.serial) != 0 ||
        strcmp(device.backend, again.backend) != 0 || device.stream_count != again.stream_count)
        __builtin_trap(); /* the writer's JSON does not read back */
    for (size_t i = 0; i < device.stream_count; i++)
        if (!s_same_stream(&device.streams[i], &again.streams[i]))
            __builtin_trap();
    free(text);
    return 0;
}
