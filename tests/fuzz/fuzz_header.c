/* Fuzzes the stream-endpoint topic and header parsers and the limits check. The first byte
 * splits the input into a topic and a header; a header that parses must write back to the same
 * bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/header.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = data[0] % 80;
    data++;
    size--;
    if (split > size)
        split = size;
    sk2_stream_kind_t kind;
    const sk2_codec_t *codec;
    (void)sk2_topic_parse(data, split, &kind, &codec);
    sk2_header_t header;
    char why[128];
    if (sk2_header_read(data + split, size - split, &header, why, sizeof why) == 0 &&
        size - split == SK2_HEADER_SIZE) {
        /* Byte 11 holds flags, none defined yet: a reader ignores them (so later writers can
         * set some) and the writer writes 0, so they are left out of the comparison. */
        uint8_t again[SK2_HEADER_SIZE], read[SK2_HEADER_SIZE];
        memcpy(read, data + split, SK2_HEADER_SIZE);
        read[11] = 0;
        if (sk2_header_write(&header, again) != 0 || memcmp(again, read, 56) != 0)
            abort(); /* read and write disagree */
    }
    /* A header that passes the limits check against a 512x424 depth stream is one a client may
     * allocate for: exactly that size, within the budget. */
    const sk2_stream_info_t depth = {
        .kind = SK2_STREAM_DEPTH, .format = SK2_PIXEL_DEPTH_MM16, .width = 512, .height = 424};
    if (sk2_header_read(data + split, size - split, &header, why, sizeof why) == 0 &&
        sk2_header_check(&header, &depth, SK2_LIMIT_FRAME_BYTES, why, sizeof why) == 0 &&
        (header.width != 512 || header.height != 424 ||
         header.payload_size > sk2_limit_payload_bytes(512 * 424 * 2)))
        abort();
    /* Hops (what relays append): the count read never exceeds the limit, and a header that
     * takes one more hop reads back with it, the rest of the header unchanged. */
    int64_t times[SK2_HEADER_HOPS_MAX];
    size_t hops = sk2_header_hops(data + split, size - split, times, SK2_HEADER_HOPS_MAX);
    if (hops > SK2_HEADER_HOPS_MAX)
        abort();
    uint8_t grown[1024 + 8];
    size_t grown_size = sk2_header_add_hop(data + split, size - split, 42, grown, sizeof grown);
    if (grown_size > 0) {
        int64_t after[SK2_HEADER_HOPS_MAX];
        if (grown_size != size - split + 8 ||
            sk2_header_hops(grown, grown_size, after, SK2_HEADER_HOPS_MAX) != hops + 1 ||
            after[hops] != 42 || memcmp(grown + 8, data + split + 8, 48) != 0)
            abort();
    }
    return 0;
}
