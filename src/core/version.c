/* The library version, fixed at configure time (see CMakeLists.txt). */
#include "sk2/sk2.h"
#include "sk2_config.h"

const char *sk2_version(void)
{
    return SK2_VERSION_STRING;
}
