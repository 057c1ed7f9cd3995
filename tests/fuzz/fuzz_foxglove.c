/* Fuzzes the gateway's Foxglove WebSocket side (foxglove.c): after a valid handshake on / with
 * the subprotocol foxglove.websocket.v1 (and the token), the input is what a Foxglove client
 * sends as frames: subscribe and unsubscribe messages, malformed JSON, binary messages,
 * fragments, oversized messages. See fuzz_gateway_common.h. */
#include "fuzz_gateway_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char handshake[] = "GET /?token=" S_FUZZ_TOKEN " HTTP/1.1\r\n"
                                    "Host: 127.0.0.1\r\n"
                                    "Upgrade: websocket\r\n"
                                    "Connection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    "Sec-WebSocket-Version: 13\r\n"
                                    "Sec-WebSocket-Protocol: foxglove.websocket.v1\r\n\r\n";
    s_fuzz_feed(data, size, handshake);
    return 0;
}
