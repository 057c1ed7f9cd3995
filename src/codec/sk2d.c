/* sk2d: sk2's own lossless codec for 16-bit depth and IR. The format is specified in
 * docs/codecs.md ("sk2d"); this is the reference implementation.
 *
 * Depth cameras mark pixels without a reading with 0, and those holes are what general image
 * codecs stumble on: every edge of a hole is a jump of metres. sk2d codes the hole mask apart,
 * as alternating run lengths, and predicts every valid pixel from a working image in which
 * holes are filled with their own prediction, so that a predictor never sees a 0. The
 * predictor is the plain gradient a + b - c (left + above - above-left), which on real
 * time-of-flight frames beats MED and the averages; its residual, zigzagged, is coded as a
 * token (a Huffman code from one of six tables picked by the activity of the row above) plus
 * raw low bits, as in Deflate's lengths. Codes are built per frame and sent in front.
 *
 * For speed the image is cut into a top and a bottom half with a bit stream each, decoded in
 * one loop so that the two dependency chains overlap; holes are handled without branches. An
 * image that would not shrink is stored as it is, so the output never exceeds the header plus
 * 2 bytes a pixel. */
#include <stdlib.h>
#include <string.h>

#include "codec/codec_impl.h"
#include "codec/scratch.h"
#include "codec/sk2d_huff.h"
#include "sk2/error.h"

#define S_VERSION      1
#define S_MODE_STORED  0
#define S_MODE_PREDICT 1
/* version, mode, 2 reserved bytes, width, height */
#define S_HEADER_BYTES 12u
/* The lengths of the three bit streams, after the code descriptions. */
#define S_LENGTHS_BYTES 12u

/* Residual tables, chosen by the activity |b - c| + |d - b| of the row above. */
#define S_CONTEXTS 6
static const uint32_t s_context_limits[S_CONTEXTS - 1] = {2, 5, 12, 30, 80};

/* Tokens: values below 16 are their own token; above, the token says the position of the
 * highest set bit and the bit below it, and the bits under those follow raw. Residuals are
 * 16-bit (40 tokens), run lengths up to 2^28 (66 tokens). */
#define S_DIRECT         16u
#define S_RESIDUAL_TOKENS 40
#define S_RUN_TOKENS      66

static inline unsigned s_token(uint32_t value, unsigned *extra_bits)
{
    if (value < S_DIRECT) {
        *extra_bits = 0;
        return value;
    }
    unsigned top = 31u - (unsigned)__builtin_clz(value);
    *extra_bits = top - 1;
    return S_DIRECT + 2 * (top - 4) + ((value >> (top - 1)) & 1u);
}

static inline uint32_t s_token_base(unsigned token, unsigned *extra_bits)
{
    if (token < S_DIRECT) {
        *extra_bits = 0;
        return token;
    }
    unsigned top = 4 + (token - S_DIRECT) / 2;
    *extra_bits = top - 1;
    return 1u << top | ((token - S_DIRECT) & 1u) << (top - 1);
}

static inline unsigned s_context(uint32_t b, uint32_t c, uint32_t d)
{
    uint32_t activity = (uint32_t)abs((int)b - (int)c) + (uint32_t)abs((int)d - (int)b);
    unsigned context = 0;
    for (int i = 0; i < S_CONTEXTS - 1; i++)
        context += activity > s_context_limits[i];
    return context;
}

static void s_put_le32(uint8_t *dst, uint32_t value)
{
    for (int i = 0; i < 4; i++)
        dst[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t s_get_le32(const uint8_t *src)
{
    return (uint32_t)src[0] | (uint32_t)src[1] << 8 | (uint32_t)src[2] << 16 |
           (uint32_t)src[3] << 24;
}

static size_t s_pixels(const sk2_codec_shape_t *shape)
{
    return (size_t)shape->width * shape->height;
}

static size_t s_bound(const sk2_codec_shape_t *shape)
{
    return S_HEADER_BYTES + 2 * s_pixels(shape);
}

static void s_write_header(const sk2_codec_shape_t *shape, int mode, uint8_t *dst)
{
    dst[0] = S_VERSION;
    dst[1] = (uint8_t)mode;
    dst[2] = dst[3] = 0;
    s_put_le32(dst + 4, shape->width);
    s_put_le32(dst + 8, shape->height);
}

/* ---- Encoder ---- */

/* What the first pass leaves for the second: one record per valid pixel, in stream order:
 * bits 0..5 the token, 6..8 the context, 16..31 the raw low bits. */
#define S_RECORD_EXTRA_SHIFT 16

typedef struct {
    uint32_t residuals[2][S_CONTEXTS][S_RESIDUAL_TOKENS]; /* per half */
    uint32_t runs[2][S_RUN_TOKENS];                       /* zero runs, valid runs */
} histograms_t;

/* Pass one over rows [y0, y1): predicts every pixel from the working rows, appends a record
 * for each valid one and counts tokens. Returns the number of records. */
static size_t s_model_half(const uint16_t *in, uint32_t width, uint32_t y0, uint32_t y1,
                           uint16_t *rows, uint32_t *records, uint32_t (*hist)[S_RESIDUAL_TOKENS])
{
    /* Two working rows with one pixel of margin each side: prev[-1], prev[width]. */
    uint16_t *prev = rows + 1;
    uint16_t *cur = rows + width + 3;
    memset(rows, 0, sizeof(uint16_t) * (2 * (size_t)width + 4));
    size_t count = 0;
    for (uint32_t y = y0; y < y1; y++) {
        const uint16_t *px = in + (size_t)y * width;
        prev[-1] = prev[0];
        prev[width] = prev[width - 1];
        uint32_t a = prev[0], c = prev[0];
        for (uint32_t x = 0; x < width; x++) {
            uint32_t b = prev[x], d = prev[x + 1];
            uint32_t pred = (a + b - c) & 0xffffu;
            unsigned context = s_context(b, c, d);
            uint32_t value = px[x];
            uint32_t valid = value != 0;
            uint16_t r = (uint16_t)(value - pred);
            uint32_t zigzag = (uint16_t)((uint32_t)r << 1 ^ (uint32_t)(-(int32_t)(r >> 15)));
            unsigned extra_bits;
            unsigned token = s_token(zigzag, &extra_bits);
            uint32_t extra = zigzag & ((1u << extra_bits) - 1);
            records[count] = token | context << 6 | extra << S_RECORD_EXTRA_SHIFT;
            count += valid;
            hist[context][token] += valid;
            a = valid ? value : pred;
            cur[x] = (uint16_t)a;
            c = b;
        }
        uint16_t *t = prev;
        prev = cur;
        cur = t;
    }
    return count;
}

/* Run lengths of the hole mask in raster order: a run of zeros (possibly empty) first, then
 * valid and zero runs alternately, each at least 1 long, coded as length - 1. Calls `emit`
 * style work through a callback-free loop: fills runs[] and returns how many. */
static size_t s_mask_runs(const uint16_t *in, size_t count, uint32_t *runs)
{
    size_t n = 0, i = 0;
    bool want_valid = false;
    while (i < count) {
        size_t start = i;
        if (want_valid)
            while (i < count && in[i] != 0)
                i++;
        else
            while (i < count && in[i] == 0)
                i++;
        runs[n++] = (uint32_t)(i - start);
        want_valid = !want_valid;
    }
    return n;
}

static uint32_t s_run_value(size_t index, uint32_t length)
{
    return index == 0 ? length : length - 1;
}

/* Bits of each (context, token) code plus its raw bits, for sizing. */
static uint64_t s_stream_bits(const uint32_t (*hist)[S_RESIDUAL_TOKENS], const sk2d_huff_t *codes)
{
    uint64_t bits = 0;
    for (int k = 0; k < S_CONTEXTS; k++) {
        for (unsigned t = 0; t < S_RESIDUAL_TOKENS; t++) {
            unsigned extra_bits;
            s_token_base(t, &extra_bits);
            bits += (uint64_t)hist[k][t] * (codes[k].length[t] + extra_bits);
        }
    }
    return bits;
}

static void s_emit_records(const uint32_t *records, size_t count, const uint32_t *encode,
                           sk2d_writer_t *w)
{
    size_t i = 0;
    for (; i + 2 <= count; i += 2) {
        for (int j = 0; j < 2; j++) {
            uint32_t rec = records[i + j];
            uint32_t e = encode[rec & 0x1ffu];
            unsigned code_bits = e >> 24;
            uint64_t value = (e & 0xffffu) | (uint64_t)(rec >> S_RECORD_EXTRA_SHIFT) << code_bits;
            sk2d_put(w, value, (e >> 16) & 0xffu);
        }
        sk2d_flush(w);
    }
    for (; i < count; i++) {
        uint32_t rec = records[i];
        uint32_t e = encode[rec & 0x1ffu];
        unsigned code_bits = e >> 24;
        uint64_t value = (e & 0xffffu) | (uint64_t)(rec >> S_RECORD_EXTRA_SHIFT) << code_bits;
        sk2d_put(w, value, (e >> 16) & 0xffu);
        sk2d_flush(w);
    }
}

static uint8_t *s_finish(sk2d_writer_t *w)
{
    sk2d_flush(w);
    if (w->used) {
        /* the partial byte was stored by the flush; keep it */
        w->dst += 1;
    }
    w->bits = 0;
    w->used = 0;
    return w->dst;
}

static int s_encode_stored(const sk2_codec_shape_t *shape, const uint16_t *in, uint8_t *dst,
                           size_t dst_cap, size_t *dst_len)
{
    size_t count = s_pixels(shape);
    if (dst_cap < S_HEADER_BYTES + 2 * count)
        return SK2_ENOSPC;
    s_write_header(shape, S_MODE_STORED, dst);
    uint8_t *p = dst + S_HEADER_BYTES;
    for (size_t i = 0; i < count; i++) {
        p[2 * i] = (uint8_t)in[i];
        p[2 * i + 1] = (uint8_t)(in[i] >> 8);
    }
    *dst_len = S_HEADER_BYTES + 2 * count;
    return 0;
}

static int s_encode(const sk2_codec_shape_t *shape, const sk2_codec_params_t *params,
                    const uint8_t *pixels, uint8_t *dst, size_t dst_cap, size_t *dst_len)
{
    const uint16_t *in = (const uint16_t *)(const void *)pixels;
    uint32_t width = shape->width, height = shape->height;
    size_t count = s_pixels(shape);
    uint32_t top_rows = (height + 1) / 2;

    uint32_t *records = (uint32_t *)(void *)sk2_scratch(SK2_SCRATCH_SK2D_TOKENS,
                                                        sizeof(uint32_t) * (count + 1));
    uint16_t *rows = (uint16_t *)(void *)sk2_scratch(
        SK2_SCRATCH_SK2D_ROWS, sizeof(uint16_t) * (2 * (size_t)width + 4) + sizeof(uint32_t) * (count + 2));
    if (!records || !rows)
        return SK2_ENOMEM;
    uint32_t *runs = (uint32_t *)(void *)(rows + 2 * (size_t)width + 4);

    histograms_t hist;
    memset(&hist, 0, sizeof hist);
    size_t top_count = s_model_half(in, width, 0, top_rows, rows, records, hist.residuals[0]);
    size_t bottom_count = s_model_half(in, width, top_rows, height, rows, records + top_count,
                                       hist.residuals[1]);
    size_t run_count = s_mask_runs(in, count, runs);

    /* Codes from both halves' counts together. */
    sk2d_huff_t residual_codes[S_CONTEXTS], run_codes[2];
    size_t tables_bytes = 0;
    for (int k = 0; k < S_CONTEXTS; k++) {
        uint32_t freq[S_RESIDUAL_TOKENS];
        for (int t = 0; t < S_RESIDUAL_TOKENS; t++)
            freq[t] = hist.residuals[0][k][t] + hist.residuals[1][k][t];
        sk2d_huff_build(&residual_codes[k], freq, S_RESIDUAL_TOKENS);
    }
    uint64_t run_bits = 0;
    for (size_t i = 0; i < run_count; i++) {
        unsigned extra_bits;
        hist.runs[i % 2][s_token(s_run_value(i, runs[i]), &extra_bits)]++;
        run_bits += extra_bits;
    }
    for (int k = 0; k < 2; k++) {
        sk2d_huff_build(&run_codes[k], hist.runs[k], S_RUN_TOKENS);
        for (int t = 0; t < S_RUN_TOKENS; t++)
            run_bits += (uint64_t)hist.runs[k][t] * run_codes[k].length[t];
        tables_bytes += sk2d_huff_size(&run_codes[k]);
    }
    for (int k = 0; k < S_CONTEXTS; k++)
        tables_bytes += sk2d_huff_size(&residual_codes[k]);

    uint64_t top_bits = s_stream_bits(hist.residuals[0], residual_codes);
    uint64_t bottom_bits = s_stream_bits(hist.residuals[1], residual_codes);
    size_t run_bytes = (size_t)((run_bits + 7) / 8);
    size_t top_bytes = (size_t)((top_bits + 7) / 8);
    size_t bottom_bytes = (size_t)((bottom_bits + 7) / 8);
    size_t total = S_HEADER_BYTES + tables_bytes + S_LENGTHS_BYTES + run_bytes + top_bytes +
                   bottom_bytes;
    if (total >= S_HEADER_BYTES + 2 * count)
        return s_encode_stored(shape, in, dst, dst_cap, dst_len);
    if (dst_cap < total)
        return SK2_ENOSPC;

    /* The bit writer stores 8 bytes at a time: write in place when dst has that much slack,
     * else in scratch and copy. */
    uint8_t *out = dst;
    if (dst_cap < total + 8) {
        out = sk2_scratch(SK2_SCRATCH_SK2D_STREAM, total + 8);
        if (!out)
            return SK2_ENOMEM;
    }
    s_write_header(shape, S_MODE_PREDICT, out);
    uint8_t *p = out + S_HEADER_BYTES;
    for (int k = 0; k < 2; k++)
        p = sk2d_huff_write(&run_codes[k], p);
    for (int k = 0; k < S_CONTEXTS; k++)
        p = sk2d_huff_write(&residual_codes[k], p);
    s_put_le32(p, (uint32_t)run_bytes);
    s_put_le32(p + 4, (uint32_t)top_bytes);
    s_put_le32(p + 8, (uint32_t)bottom_bytes);
    p += S_LENGTHS_BYTES;

    sk2d_writer_t w = {.dst = p};
    for (size_t i = 0; i < run_count; i++) {
        unsigned extra_bits;
        uint32_t value = s_run_value(i, runs[i]);
        unsigned token = s_token(value, &extra_bits);
        const sk2d_huff_t *code = &run_codes[i % 2];
        sk2d_put(&w, code->code[token], code->length[token]);
        sk2d_put(&w, value & ((1u << extra_bits) - 1), extra_bits);
        sk2d_flush(&w);
    }
    s_finish(&w);

    uint32_t encode[S_CONTEXTS << 6];
    for (int k = 0; k < S_CONTEXTS; k++) {
        for (unsigned t = 0; t < 64; t++) {
            unsigned extra_bits = 0;
            unsigned bits = 0, code = 0;
            if (t < S_RESIDUAL_TOKENS) {
                s_token_base(t, &extra_bits);
                bits = residual_codes[k].length[t];
                code = residual_codes[k].code[t];
            }
            encode[k << 6 | t] = code | (bits + extra_bits) << 16 | bits << 24;
        }
    }
    w.dst = p + run_bytes;
    s_emit_records(records, top_count, encode, &w);
    s_finish(&w);
    w.dst = p + run_bytes + top_bytes;
    s_emit_records(records + top_count, bottom_count, encode, &w);
    s_finish(&w);
    if (out != dst)
        memcpy(dst, out, total);
    *dst_len = total;
    return 0;
}

/* ---- Decoder ---- */

/* A bit stream copied with zero padding behind it, so that the reader may run ahead. */
typedef struct {
    sk2d_reader_t reader;
    const uint8_t *start;
    size_t bytes; /* length of the real stream */
} stream_t;

static bool s_stream_is_exact(const stream_t *s)
{
    size_t position = sk2d_bit_position(&s->reader, s->start);
    return (position + 7) / 8 == s->bytes;
}

static bool s_stream_is_overrun(const stream_t *s)
{
    return sk2d_bit_position(&s->reader, s->start) > 8 * s->bytes;
}

/* Fills pixels with 0 for holes and 0xffff for valid pixels from the run stream. */
static int s_decode_mask(stream_t *s, const sk2d_huff_t *codes, uint16_t *out, size_t count,
                         uint32_t *tables)
{
    uint32_t payload[S_RUN_TOKENS];
    for (unsigned t = 0; t < S_RUN_TOKENS; t++)
        payload[t] = t << 4;
    for (int k = 0; k < 2; k++)
        sk2d_huff_table(&codes[k], payload, tables + ((size_t)k << SK2D_HUFF_MAX_BITS));
    size_t done = 0;
    for (size_t i = 0; done < count; i++) {
        sk2d_refill(&s->reader);
        if (s_stream_is_overrun(s))
            return SK2_ECORRUPT;
        uint32_t e = tables[((size_t)(i % 2) << SK2D_HUFF_MAX_BITS) |
                            (s->reader.bits & ((1u << SK2D_HUFF_MAX_BITS) - 1))];
        unsigned code_bits = e & 15u, extra_bits;
        uint32_t base = s_token_base(e >> 4, &extra_bits);
        s->reader.bits >>= code_bits;
        uint32_t value = base + (uint32_t)(s->reader.bits & ((1u << extra_bits) - 1));
        s->reader.bits >>= extra_bits;
        s->reader.count -= code_bits + extra_bits;
        uint64_t length = i == 0 ? value : (uint64_t)value + 1;
        if (length > count - done)
            return SK2_ECORRUPT;
        if (i % 2 == 0)
            memset(out + done, 0, sizeof(uint16_t) * length);
        else
            memset(out + done, 0xff, sizeof(uint16_t) * length);
        done += length;
    }
    return s_stream_is_exact(s) ? 0 : SK2_ECORRUPT;
}

/* One half's state while its rows are decoded. */
typedef struct {
    sk2d_reader_t reader;
    uint16_t *prev; /* working row above, with a margin pixel each side */
    uint16_t *cur;  /* working row being decoded */
    uint16_t *out;  /* the frame's row: the mask on entry, pixels on exit */
} half_t;

static inline void s_row_begin(half_t *h, uint32_t width)
{
    h->prev[-1] = h->prev[0];
    h->prev[width] = h->prev[width - 1];
}

static inline void s_row_end(half_t *h, uint32_t width)
{
    uint16_t *t = h->prev;
    h->prev = h->cur;
    h->cur = t;
    h->out += width;
}

/* Decodes pixel x of a half: a and c are the working values left and above-left. */
#define S_DECODE_PIXEL(h, x, a, c)                                                                 \
    do {                                                                                           \
        uint32_t b_ = (h).prev[(x)], d_ = (h).prev[(x) + 1];                                       \
        uint32_t e_ = tables[s_context(b_, (c), d_) << SK2D_HUFF_MAX_BITS |                        \
                             ((uint32_t)(h).reader.bits & ((1u << SK2D_HUFF_MAX_BITS) - 1))];       \
        unsigned cl_ = e_ & 15u, nx_ = (e_ >> 4) & 15u;                                            \
        uint32_t v_ = (e_ >> 16) + ((uint32_t)((h).reader.bits >> cl_) & ((1u << nx_) - 1));       \
        uint32_t valid_ = (uint32_t)0 - ((h).out[(x)] != 0);                                       \
        unsigned used_ = (cl_ + nx_) & valid_;                                                     \
        (h).reader.bits >>= used_;                                                                 \
        (h).reader.count -= used_;                                                                 \
        uint32_t pred_ = (a) + b_ - (c);                                                           \
        uint32_t val_ = (pred_ + ((v_ >> 1) ^ ((uint32_t)0 - (v_ & 1u)))) & 0xffffu;               \
        uint32_t work_ = (val_ & valid_) | (pred_ & 0xffffu & ~valid_);                            \
        (h).cur[(x)] = (uint16_t)work_;                                                            \
        (h).out[(x)] = (uint16_t)(val_ & valid_);                                                  \
        (a) = work_;                                                                               \
        (c) = b_;                                                                                  \
    } while (0)

/* Decodes one row of each of two halves, interleaved. */
static void s_decode_row_pair(half_t *h0, half_t *h1, uint32_t width, const uint32_t *tables)
{
    half_t s0 = *h0, s1 = *h1;
    s_row_begin(&s0, width);
    s_row_begin(&s1, width);
    uint32_t a0 = s0.prev[0], c0 = s0.prev[0];
    uint32_t a1 = s1.prev[0], c1 = s1.prev[0];
    uint32_t x = 0;
    for (; x + 2 <= width; x += 2) {
        sk2d_refill(&s0.reader);
        sk2d_refill(&s1.reader);
        S_DECODE_PIXEL(s0, x, a0, c0);
        S_DECODE_PIXEL(s1, x, a1, c1);
        S_DECODE_PIXEL(s0, x + 1, a0, c0);
        S_DECODE_PIXEL(s1, x + 1, a1, c1);
    }
    if (x < width) {
        sk2d_refill(&s0.reader);
        sk2d_refill(&s1.reader);
        S_DECODE_PIXEL(s0, x, a0, c0);
        S_DECODE_PIXEL(s1, x, a1, c1);
    }
    s_row_end(&s0, width);
    s_row_end(&s1, width);
    *h0 = s0;
    *h1 = s1;
}

static void s_decode_row(half_t *h0, uint32_t width, const uint32_t *tables)
{
    half_t s0 = *h0;
    s_row_begin(&s0, width);
    uint32_t a0 = s0.prev[0], c0 = s0.prev[0];
    for (uint32_t x = 0; x < width; x++) {
        sk2d_refill(&s0.reader);
        S_DECODE_PIXEL(s0, x, a0, c0);
    }
    s_row_end(&s0, width);
    *h0 = s0;
}

static int s_decode_stored(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                           uint16_t *out)
{
    size_t count = s_pixels(shape);
    if (src_len != S_HEADER_BYTES + 2 * count)
        return SK2_ECORRUPT;
    const uint8_t *p = src + S_HEADER_BYTES;
    for (size_t i = 0; i < count; i++)
        out[i] = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
    return 0;
}

static int s_decode(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                    uint8_t *pixels)
{
    uint16_t *out = (uint16_t *)(void *)pixels;
    uint32_t width = shape->width, height = shape->height;
    size_t count = s_pixels(shape);
    if (src_len < S_HEADER_BYTES || src[0] != S_VERSION || src[2] != 0 || src[3] != 0 ||
        s_get_le32(src + 4) != width || s_get_le32(src + 8) != height)
        return SK2_ECORRUPT;
    if (src[1] == S_MODE_STORED)
        return s_decode_stored(shape, src, src_len, out);
    if (src[1] != S_MODE_PREDICT)
        return SK2_ECORRUPT;

    const uint8_t *p = src + S_HEADER_BYTES;
    const uint8_t *end = src + src_len;
    sk2d_huff_t run_codes[2], residual_codes[S_CONTEXTS];
    for (int k = 0; k < 2; k++)
        if (sk2d_huff_read(&run_codes[k], S_RUN_TOKENS, &p, end) != 0)
            return SK2_ECORRUPT;
    for (int k = 0; k < S_CONTEXTS; k++)
        if (sk2d_huff_read(&residual_codes[k], S_RESIDUAL_TOKENS, &p, end) != 0)
            return SK2_ECORRUPT;
    if ((size_t)(end - p) < S_LENGTHS_BYTES)
        return SK2_ECORRUPT;
    size_t bytes[3] = {s_get_le32(p), s_get_le32(p + 4), s_get_le32(p + 8)};
    p += S_LENGTHS_BYTES;
    size_t left = (size_t)(end - p);
    if (bytes[0] > left || bytes[1] > left - bytes[0] || bytes[2] != left - bytes[0] - bytes[1])
        return SK2_ECORRUPT;

    /* Each stream gets zero padding behind it for the reader to run into: 8 bytes for a
     * refill, plus what one row can take (25 bits a pixel at most) before the overrun check
     * at the end of the row. */
    size_t pad = 4 * (size_t)width + 16;
    size_t table_bytes = sizeof(uint32_t) * ((size_t)S_CONTEXTS << SK2D_HUFF_MAX_BITS);
    size_t rows_bytes = sizeof(uint16_t) * (4 * (size_t)width + 8);
    uint8_t *copy = sk2_scratch(SK2_SCRATCH_SK2D_STREAM, src_len + 3 * pad);
    uint8_t *work = sk2_scratch(SK2_SCRATCH_SK2D_ROWS, table_bytes + rows_bytes);
    if (!copy || !work)
        return SK2_ENOMEM;
    uint32_t *tables = (uint32_t *)(void *)work;
    uint16_t *rows = (uint16_t *)(void *)(work + table_bytes);
    stream_t streams[3];
    uint8_t *c = copy;
    for (int i = 0; i < 3; i++) {
        memcpy(c, p, bytes[i]);
        memset(c + bytes[i], 0, pad);
        streams[i] = (stream_t){.start = c, .bytes = bytes[i], .reader = {.src = c}};
        p += bytes[i];
        c += bytes[i] + pad;
    }

    int rc = s_decode_mask(&streams[0], run_codes, out, count, tables);
    if (rc != 0)
        return rc;

    uint32_t payload[S_RESIDUAL_TOKENS];
    for (unsigned t = 0; t < S_RESIDUAL_TOKENS; t++) {
        unsigned extra_bits;
        uint32_t base = s_token_base(t, &extra_bits);
        payload[t] = extra_bits << 4 | base << 16;
    }
    for (int k = 0; k < S_CONTEXTS; k++)
        sk2d_huff_table(&residual_codes[k], payload, tables + ((size_t)k << SK2D_HUFF_MAX_BITS));

    uint32_t top_rows = (height + 1) / 2, bottom_rows = height / 2;
    memset(rows, 0, rows_bytes);
    half_t halves[2] = {
        {.reader = streams[1].reader, .prev = rows + 1, .cur = rows + width + 3, .out = out},
        {.reader = streams[2].reader,
         .prev = rows + 2 * (size_t)width + 5,
         .cur = rows + 3 * (size_t)width + 7,
         .out = out + (size_t)top_rows * width},
    };
    for (uint32_t y = 0; y < top_rows; y++) {
        if (y < bottom_rows)
            s_decode_row_pair(&halves[0], &halves[1], width, tables);
        else
            s_decode_row(&halves[0], width, tables);
        streams[1].reader = halves[0].reader;
        streams[2].reader = halves[1].reader;
        if (s_stream_is_overrun(&streams[1]) || s_stream_is_overrun(&streams[2]))
            return SK2_ECORRUPT;
    }
    if (!s_stream_is_exact(&streams[1]) || !s_stream_is_exact(&streams[2]))
        return SK2_ECORRUPT;
    return 0;
}

const struct sk2_codec sk2_codec_sk2d = {
    .name = SK2_CODEC_SK2D,
    .description = "sk2's lossless depth codec: hole mask + gradient prediction + Huffman",
    .is_lossless = true,
    .formats = SK2_CODEC_FORMAT_BIT(SK2_PIXEL_DEPTH_MM16) | SK2_CODEC_FORMAT_BIT(SK2_PIXEL_GRAY16),
    .bound = s_bound,
    .encode = s_encode,
    .decode = s_decode,
};
