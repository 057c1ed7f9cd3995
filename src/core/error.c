/* Error codes: the text behind each SK2_E* code, generated from the one list in error.h. */
#include "sk2/error.h"

const char *sk2_strerror(int code)
{
    switch (code) {
    case SK2_OK:
        return "success";
#define SK2_ERROR_TEXT(name, num, msg)                                                             \
    case SK2_##name:                                                                               \
        return msg;
        SK2_ERROR_MAP(SK2_ERROR_TEXT)
#undef SK2_ERROR_TEXT
    default:
        return "unknown error";
    }
}

const char *sk2_error_name(int code)
{
    switch (code) {
    case SK2_OK:
        return "SK2_OK";
#define SK2_ERROR_NAME(name, num, msg)                                                             \
    case SK2_##name:                                                                               \
        return "SK2_" #name;
        SK2_ERROR_MAP(SK2_ERROR_NAME)
#undef SK2_ERROR_NAME
    default:
        return "SK2_UNKNOWN";
    }
}
