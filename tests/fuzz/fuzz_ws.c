/* Fuzzes the gateway's WebSocket side: after a valid handshake on /ws (with the token, which
 * the tokenless gateway ignores), the input is what the peer sends as frames: masking,
 * lengths, fragments, control frames, and the subscribe messages web.c parses. See
 * fuzz_gateway_common.h. */
#include "fuzz_gateway_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char handshake[] = "GET /ws?token=" S_FUZZ_TOKEN " HTTP/1.1\r\n"
                                    "Host: 127.0.0.1\r\n"
                                    "Upgrade: websocket\r\n"
                                    "Connection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    "Sec-WebSocket-Version: 13\r\n"
                                    "Sec-WebSocket-Protocol: sk2-view\r\n\r\n";
    s_fuzz_feed(data, size, handshake);
    return 0;
}
