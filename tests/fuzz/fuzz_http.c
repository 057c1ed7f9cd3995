/* Fuzzes the gateway's HTTP request handling with arbitrary bytes from one peer: request
 * line, headers, token (query, cookie, Authorization), paths and queries of the API, WebSocket
 * upgrade checks, and whatever libwebsockets makes of bytes that are not HTTP at all. See
 * fuzz_gateway_common.h. */
#include "fuzz_gateway_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_fuzz_feed(data, size, NULL);
    return 0;
}
