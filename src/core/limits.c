/* The limits table's arithmetic (include/sk2/limits.h). Every product is taken in 64 bits
 * after the dimensions are bounded, so nothing here can overflow. */
#include "sk2/limits.h"

size_t sk2_limit_frame_bytes(sk2_pixel_format_t format, uint32_t width, uint32_t height)
{
    size_t pixel = sk2_pixel_format_bytes(format);
    if (pixel == 0 || width == 0 || height == 0 || width > SK2_LIMIT_FRAME_WIDTH ||
        height > SK2_LIMIT_FRAME_HEIGHT)
        return 0;
    return (size_t)((uint64_t)width * height * pixel);
}

size_t sk2_limit_payload_bytes(size_t frame_bytes)
{
    if (frame_bytes > SK2_LIMIT_FRAME_BYTES_MAX)
        frame_bytes = SK2_LIMIT_FRAME_BYTES_MAX;
    size_t payload = 2 * frame_bytes + SK2_LIMIT_WIRE_SLACK;
    return payload < SK2_LIMIT_PAYLOAD_MAX ? payload : SK2_LIMIT_PAYLOAD_MAX;
}

size_t sk2_limit_wire_bytes(size_t frame_bytes)
{
    return sk2_limit_payload_bytes(frame_bytes) + SK2_LIMIT_WIRE_SLACK;
}
