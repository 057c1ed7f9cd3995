/* The discovery registry: which DNS-SD backend this build talks to. The only place where the
 * build configuration decides anything about discovery; everything else asks here. */
#include <stddef.h>

#include "discovery/discovery.h"
#include "sk2_config.h"

#if SK2_HAVE_AVAHI
extern const sk2_dnssd_backend_t sk2_dnssd_backend_avahi;
#endif

const sk2_dnssd_backend_t *sk2_dnssd_backend(const char **why)
{
#if SK2_HAVE_AVAHI
    (void)why;
    return &sk2_dnssd_backend_avahi;
#else
    if (why)
        *why = "this libsk2 was built without discovery (CMake SK2_DISCOVERY=OFF, or "
               "avahi-client was not found)";
    return NULL;
#endif
}
