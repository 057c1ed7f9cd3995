/* Fuzzes the pose parser (sk2_pose_parse) with arbitrary text, as a pose file, a `pose` command
 * or a state file meets it, and checks what sk2/registration.h promises of a pose it accepts:
 * it passes sk2_pose_check, and its JSON form reads back to the same numbers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sk2/error.h"
#include "sk2/registration.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sk2_pose_t pose, again;
    memset(&pose, 0x5a, sizeof pose);
    sk2_pose_t untouched = pose;
    char why[256];
    int rc = sk2_pose_parse((const char *)data, size, &pose, why, sizeof why);
    if (rc != 0) {
        if (memcmp(&pose, &untouched, sizeof pose) != 0 || (rc != SK2_EINVAL && rc != SK2_ELIMIT))
            __builtin_trap(); /* a refusal must leave the output alone */
        return 0;
    }
    if (size > SK2_POSE_TEXT_MAX || sk2_pose_check(&pose, NULL, 0) != 0)
        __builtin_trap();
    char *text = sk2_pose_to_json(&pose);
    if (!text)
        return 0;
    if (sk2_pose_parse(text, strlen(text), &again, why, sizeof why) != 0 ||
        memcmp(&again, &pose, sizeof pose) != 0)
        __builtin_trap(); /* the written form must read back exactly */
    free(text);
    return 0;
}
