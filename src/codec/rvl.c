/* rvl: Andrew D. Wilson's RVL ("Fast Lossless Depth Image Compression", ISS 2017), byte for
 * byte what the paper's CompressRVL writes, which is also the payload of ROS
 * compressed_depth_image_transport's "compressedDepth rvl" format (docs/codecs.md says what ROS
 * puts in front of it).
 *
 * The image is one run of pixels. It alternates a count of zeros (invalid depth) and a count of
 * non-zeros followed by each non-zero pixel's difference from the previous non-zero pixel,
 * zigzag-mapped. Every number is a variable-length code of 4-bit nibbles, low 3 bits first,
 * the high bit of a nibble saying that another follows. Nibbles fill 32-bit words from the
 * most significant end; the last word is padded with zero nibbles. The reference stores the
 * words as host ints; sk2 writes them little-endian, which is what the reference writes on
 * every machine ROS or a Kinect runs on, and reads them so on any host.
 *
 * No header: the decoder takes the pixel count from the frame it fills. It refuses any stream
 * that does not decode to exactly that many pixels with every word used and a zero padding,
 * so that each image has one encoding and trailing junk is noticed. */
#include "codec/codec_impl.h"
#include "sk2/error.h"

/* The most nibbles a count can take: counts are at most 2^28 pixels (16384^2), 29 bits. */
#define S_COUNT_NIBBLES 10
/* The most nibbles a pixel difference can take: zigzagged, |d| <= 65535 fits 17 bits. */
#define S_VALUE_NIBBLES 6

typedef struct {
    uint8_t *dst;  /* next word goes here */
    uint8_t *end;  /* end of the caller's buffer */
    uint32_t word; /* nibbles so far, the latest in the lowest 4 bits */
    int nibbles;   /* nibbles in word, 0 .. 7 */
    bool is_full;  /* a word did not fit */
} writer_t;

static void s_flush_word(writer_t *w, uint32_t word)
{
    if (w->end - w->dst < 4) {
        w->is_full = true;
        return;
    }
    sk2_codec_put_le32(w->dst, word);
    w->dst += 4;
}

/* The paper's EncodeVLE. */
static void s_put_vle(writer_t *w, uint32_t value)
{
    do {
        uint32_t nibble = value & 0x7u;
        value >>= 3;
        if (value)
            nibble |= 0x8u;
        w->word = w->word << 4 | nibble;
        if (++w->nibbles == 8) {
            s_flush_word(w, w->word);
            w->nibbles = 0;
            w->word = 0;
        }
    } while (value);
}

/* The worst case: every pixel a 6-nibble difference, plus the counts. A pair of counts costs
 * at most the 6 nibbles its first zero saves, except the first pair (no zero before it: 11
 * nibbles at most) and pairs with 2^15 or more non-zeros (5 more nibbles each, and there are at
 * most count / 2^15 of them). Words hold 8 nibbles. */
static size_t s_bound(const sk2_codec_shape_t *shape)
{
    size_t count = (size_t)shape->width * shape->height;
    size_t nibbles = 6 * count + 11 + 5 * (count >> 15);
    return (nibbles + 7) / 8 * 4;
}

static int s_encode(const sk2_codec_shape_t *shape, const sk2_codec_params_t *params,
                    const uint8_t *pixels, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    const uint16_t *in = (const uint16_t *)(const void *)pixels;
    const uint16_t *end = in + (size_t)shape->width * shape->height;
    writer_t w = {.dst = dst, .end = dst + dst_cap};
    uint16_t previous = 0;
    while (in != end && !w.is_full) {
        const uint16_t *run = in;
        while (in != end && *in == 0)
            in++;
        s_put_vle(&w, (uint32_t)(in - run));
        run = in;
        while (in != end && *in != 0)
            in++;
        s_put_vle(&w, (uint32_t)(in - run));
        for (; run != in; run++) {
            int32_t delta = (int32_t)*run - (int32_t)previous;
            s_put_vle(&w, (uint32_t)delta << 1 ^ (uint32_t)(delta >> 31));
            previous = *run;
        }
    }
    if (w.nibbles)
        s_flush_word(&w, w.word << 4 * (8 - w.nibbles));
    if (w.is_full)
        return SK2_ENOSPC;
    *dst_len = (size_t)(w.dst - dst);
    return 0;
}

typedef struct {
    const uint8_t *src; /* next word */
    const uint8_t *end;
    uint32_t word; /* unread nibbles, the next one in the top 4 bits */
    int nibbles;   /* unread nibbles in word */
} reader_t;

/* The paper's DecodeVLE, refusing codes longer than max_nibbles and input that runs out.
 * Returns 0 and the value, or SK2_ECORRUPT. */
static int s_get_vle(reader_t *r, int max_nibbles, uint32_t *value)
{
    uint32_t result = 0;
    for (int i = 0; i < max_nibbles; i++) {
        if (r->nibbles == 0) {
            if (r->end - r->src < 4)
                return SK2_ECORRUPT;
            r->word = sk2_codec_get_le32(r->src);
            r->src += 4;
            r->nibbles = 8;
        }
        uint32_t nibble = r->word >> 28;
        r->word <<= 4;
        r->nibbles--;
        result |= (nibble & 0x7u) << (3 * i);
        if (!(nibble & 0x8u)) {
            *value = result;
            return 0;
        }
    }
    return SK2_ECORRUPT;
}

static int s_decode(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                    uint8_t *pixels)
{
    if (src_len % 4 != 0)
        return SK2_ECORRUPT;
    uint16_t *out = (uint16_t *)(void *)pixels;
    size_t left = (size_t)shape->width * shape->height;
    reader_t r = {.src = src, .end = src + src_len};
    uint16_t previous = 0;
    /* As the reference: a pair of counts, the non-zeros' differences, until every pixel is
     * there (so a run of zeros at the end still has its count of 0 non-zeros after it). */
    while (left > 0) {
        uint32_t zeros, nonzeros;
        if (s_get_vle(&r, S_COUNT_NIBBLES, &zeros) != 0 || zeros > left)
            return SK2_ECORRUPT;
        for (uint32_t i = 0; i < zeros; i++)
            *out++ = 0;
        left -= zeros;
        if (s_get_vle(&r, S_COUNT_NIBBLES, &nonzeros) != 0 || nonzeros > left)
            return SK2_ECORRUPT;
        left -= nonzeros;
        for (uint32_t i = 0; i < nonzeros; i++) {
            uint32_t zigzag;
            if (s_get_vle(&r, S_VALUE_NIBBLES, &zigzag) != 0)
                return SK2_ECORRUPT;
            uint32_t delta = zigzag >> 1 ^ (0u - (zigzag & 1u));
            previous = (uint16_t)(previous + delta);
            *out++ = previous;
        }
    }
    /* Every word used, and what is left of the last one is padding. */
    if (r.src != r.end || r.word != 0)
        return SK2_ECORRUPT;
    return 0;
}

const struct sk2_codec sk2_codec_rvl = {
    .name = SK2_CODEC_RVL,
    .description = "Wilson's RVL (ISS 2017), byte-compatible with ROS compressedDepth rvl; "
                   "lossless, fast",
    .is_lossless = true,
    .formats = SK2_CODEC_FORMAT_BIT(SK2_PIXEL_DEPTH_MM16) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_GRAY16),
    .bound = s_bound,
    .encode = s_encode,
    .decode = s_decode,
};
