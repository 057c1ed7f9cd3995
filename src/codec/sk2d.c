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
 * For speed the image is cut into a top and a bottom half, and each half's residuals into a
 * bit stream for its even and one for its odd columns, decoded in one loop so that the four
 * dependency chains overlap; holes are handled without branches, and the passes around the
 * bit streams are SSE2 (with portable fallbacks). An
 * image that would not shrink is stored as it is, so the output never exceeds the header plus
 * 2 bytes a pixel. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "codec/codec_impl.h"
#include "codec/scratch.h"
#include "codec/sk2d_huff.h"
#include "sk2/error.h"

#define S_VERSION      2
#define S_MODE_STORED  0
#define S_MODE_PREDICT 1
/* version, mode, 2 reserved bytes, width, height */
#define S_HEADER_BYTES 12u
/* The bit streams: the mask runs, then per half one for its even and one for its odd columns. */
#define S_STREAMS       5
#define S_LENGTHS_BYTES (4u * S_STREAMS)

/* Residual tables, chosen by the activity |b - c| + |d - b| of the row above; holes get a
 * context of their own, whose table is a 0-bit code for token 0, so that the decoder spends no
 * bits and no branch on them. */
#define S_CONTEXTS 6
#define S_HOLE     S_CONTEXTS
#define S_TABLES   (S_CONTEXTS + 1)

/* Tokens: values below 16 are their own token; above, the token says the position of the
 * highest set bit and the bit below it, and the bits under those follow raw. Residuals are
 * 16-bit (40 tokens), run lengths up to 2^28 (66 tokens). */
#define S_DIRECT          16u
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

/* Contexts of one row from the working row above it (prev, with prev[-1] and prev[width]
 * set): S_HOLE where valid[x] is 0, else how many of 2, 5, 12, 30, 80 the activity exceeds.
 * Each difference is clamped to 255 first, which changes no context (80 < 255) and keeps the
 * sums in 16 bits, so that the loop runs on 16-bit vector lanes. */
typedef uint16_t s_v16 __attribute__((vector_size(16)));
typedef uint8_t s_v8 __attribute__((vector_size(8)));
#define S_LANES 8

/* What the decoder keeps of a context: the offset of its decoding table. */
#define S_TABLE_BITS SK2D_HUFF_MAX_BITS
#define S_WORD(k)    ((uint16_t)((unsigned)(k) << S_TABLE_BITS))

/* Writes the contexts of one row to ctx (bytes) or, when ctx is NULL, to words (S_WORD). */
static void s_contexts(const uint16_t *prev, const uint16_t *valid, uint32_t width, uint8_t *ctx,
                       uint16_t *words)
{
    uint32_t x = 0;
#if defined(__SSE2__)
    /* SSE2 has saturating 16-bit arithmetic but no unsigned compare: |b - c| is the OR of the
     * two saturated differences, the sum saturates instead of clamping each term (the same
     * contexts: any term over 80 puts both sums over 80), and min(sum, 81) fits a signed byte,
     * so sixteen pixels are compared at once. */
    const __m128i none = _mm_setzero_si128(), cap = _mm_set1_epi16(81);
    for (; x + 16 <= width; x += 16) {
        __m128i act[2], hole[2];
        for (int i = 0; i < 2; i++) {
            const uint16_t *p = prev + x + 8 * i;
            __m128i b = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(p - 1));
            __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(p + 1));
            __m128i left = _mm_or_si128(_mm_subs_epu16(b, c), _mm_subs_epu16(c, b));
            __m128i right = _mm_or_si128(_mm_subs_epu16(d, b), _mm_subs_epu16(b, d));
            __m128i sum = _mm_adds_epu16(left, right);
            act[i] = _mm_sub_epi16(sum, _mm_subs_epu16(sum, cap));
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(valid + x + 8 * i));
            hole[i] = _mm_cmpeq_epi16(v, none);
        }
        __m128i a = _mm_packus_epi16(act[0], act[1]);
        __m128i k =
            _mm_add_epi8(_mm_cmpgt_epi8(a, _mm_set1_epi8(2)), _mm_cmpgt_epi8(a, _mm_set1_epi8(5)));
        k = _mm_add_epi8(k, _mm_cmpgt_epi8(a, _mm_set1_epi8(12)));
        k = _mm_add_epi8(k, _mm_cmpgt_epi8(a, _mm_set1_epi8(30)));
        k = _mm_add_epi8(k, _mm_cmpgt_epi8(a, _mm_set1_epi8(80)));
        k = _mm_sub_epi8(none, k);
        __m128i h = _mm_packs_epi16(hole[0], hole[1]);
        k = _mm_or_si128(_mm_andnot_si128(h, k), _mm_and_si128(h, _mm_set1_epi8(S_HOLE)));
        if (ctx) {
            _mm_storeu_si128((__m128i *)(void *)(ctx + x), k);
            continue;
        }
        __m128i w0 = _mm_slli_epi16(_mm_unpacklo_epi8(k, none), S_TABLE_BITS);
        __m128i w1 = _mm_slli_epi16(_mm_unpackhi_epi8(k, none), S_TABLE_BITS);
        _mm_storeu_si128((__m128i *)(void *)(words + x), w0);
        _mm_storeu_si128((__m128i *)(void *)(words + x + 8), w1);
    }
#endif
    const s_v16 zero = {0}, one = zero + 1, clamp = zero + 255;
    for (; x + S_LANES <= width; x += S_LANES) {
        s_v16 b, c, d, v;
        memcpy(&b, prev + x, sizeof b);
        memcpy(&c, prev + x - 1, sizeof c);
        memcpy(&d, prev + x + 1, sizeof d);
        memcpy(&v, valid + x, sizeof v);
        s_v16 bc = (s_v16)(b > c), db = (s_v16)(d > b);
        s_v16 left = ((b - c) & bc) | ((c - b) & ~bc);
        s_v16 right = ((d - b) & db) | ((b - d) & ~db);
        left = (s_v16)((left & (s_v16)(left <= clamp)) | (clamp & (s_v16)(left > clamp)));
        right = (s_v16)((right & (s_v16)(right <= clamp)) | (clamp & (s_v16)(right > clamp)));
        s_v16 act = left + right;
        s_v16 k = (s_v16)((s_v16)(act > 2) & one) + (s_v16)((s_v16)(act > 5) & one) +
                  (s_v16)((s_v16)(act > 12) & one) + (s_v16)((s_v16)(act > 30) & one) +
                  (s_v16)((s_v16)(act > 80) & one);
        s_v16 hole = (s_v16)(v == zero);
        k = (k & ~hole) | ((zero + S_HOLE) & hole);
        if (ctx) {
            s_v8 narrow = __builtin_convertvector(k, s_v8);
            memcpy(ctx + x, &narrow, sizeof narrow);
        } else {
            s_v16 w = k << S_TABLE_BITS;
            memcpy(words + x, &w, sizeof w);
        }
    }
    for (; x < width; x++) {
        int left = abs((int)prev[x] - (int)(prev - 1)[x]);
        int right = abs((int)prev[x + 1] - (int)prev[x]);
        int act = (left < 255 ? left : 255) + (right < 255 ? right : 255);
        int k = (act > 2) + (act > 5) + (act > 12) + (act > 30) + (act > 80);
        k = valid[x] ? k : S_HOLE;
        if (ctx)
            ctx[x] = (uint8_t)k;
        else
            words[x] = S_WORD(k);
    }
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

/* What the first pass leaves for the second: one record per valid pixel, in stream order: bits
 * 0..5 the token, 6..8 the context, 16..31 the raw low bits. */
#define S_RECORD_EXTRA_SHIFT 16
#define S_RECORD_INDEX_MASK  0x1ffu

/* Token counts by record index (context << 6 | token), one copy for each of four neighbouring
 * pixels, so that a run of equal tokens does not wait on one counter's store and reload. */
#define S_COUNT_COPIES 4
typedef uint32_t counts_t[S_COUNT_COPIES][(unsigned)S_TABLES << 6];

/* One row's working pixels and records (token | context << 6 | raw bits << 16, one per pixel,
 * holes included) from the pixels, the working row above and the contexts. */
static void s_model_row(const uint16_t *px, const uint16_t *prev, const uint8_t *ctx,
                        uint32_t width, uint16_t *cur, uint32_t *rec)
{
    uint32_t x = 0;
#if defined(__SSE2__)
    /* With D(x) = W(x, y) - W(x, y-1), the prediction a + b - c is b + D(x-1), a hole
     * keeps D(x) = D(x-1) and a valid pixel sets D(x) = pixel - b: the working row is a
     * forward fill of the differences over the holes, three shifted steps for eight pixels,
     * and the residual is D(x) - D(x-1). D(-1) = 0, since W(-1, y) = W(-1, y-1) = b(0). */
    const __m128i none = _mm_setzero_si128(), fifteen = _mm_set1_epi16(15);
    __m128i carry = none;
    for (; x + 8 <= width; x += 8) {
        __m128i p = _mm_loadu_si128((const __m128i *)(const void *)(px + x));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(prev + x));
        __m128i valid = _mm_xor_si128(_mm_cmpeq_epi16(p, none), _mm_set1_epi16(-1));
        __m128i dv = _mm_sub_epi16(p, b);
        __m128i d = _mm_and_si128(dv, valid), m = valid;
        d = _mm_or_si128(d, _mm_andnot_si128(m, _mm_slli_si128(d, 2)));
        m = _mm_or_si128(m, _mm_slli_si128(m, 2));
        d = _mm_or_si128(d, _mm_andnot_si128(m, _mm_slli_si128(d, 4)));
        m = _mm_or_si128(m, _mm_slli_si128(m, 4));
        d = _mm_or_si128(d, _mm_andnot_si128(m, _mm_slli_si128(d, 8)));
        m = _mm_or_si128(m, _mm_slli_si128(m, 8));
        d = _mm_or_si128(d, _mm_andnot_si128(m, carry));
        __m128i before = _mm_or_si128(_mm_slli_si128(d, 2), _mm_srli_si128(carry, 14));
        _mm_storeu_si128((__m128i *)(void *)(cur + x), _mm_add_epi16(b, d));
        carry = _mm_shuffle_epi32(_mm_shufflehi_epi16(d, 0xff), 0xff);
        __m128i r = _mm_sub_epi16(dv, before);
        __m128i zz = _mm_xor_si128(_mm_slli_epi16(r, 1), _mm_srai_epi16(r, 15));
        /* Tokens from 16 on: the float of the value has the top bit's position in its
         * exponent and the bit below it first in its mantissa. */
        __m128i small = _mm_cmpeq_epi16(_mm_subs_epu16(zz, fifteen), none);
        __m128i lo = _mm_castps_si128(_mm_cvtepi32_ps(_mm_unpacklo_epi16(zz, none)));
        __m128i hi = _mm_castps_si128(_mm_cvtepi32_ps(_mm_unpackhi_epi16(zz, none)));
        __m128i big = _mm_sub_epi16(_mm_packs_epi32(_mm_srli_epi32(lo, 22), _mm_srli_epi32(hi, 22)),
                                    _mm_set1_epi16(246));
        __m128i token = _mm_or_si128(_mm_and_si128(small, zz), _mm_andnot_si128(small, big));
        /* The raw bits: those under the top two. */
        __m128i below = _mm_srli_epi16(zz, 2);
        below = _mm_or_si128(below, _mm_srli_epi16(below, 1));
        below = _mm_or_si128(below, _mm_srli_epi16(below, 2));
        below = _mm_or_si128(below, _mm_srli_epi16(below, 4));
        below = _mm_or_si128(below, _mm_srli_epi16(below, 8));
        __m128i extra = _mm_andnot_si128(small, _mm_and_si128(zz, below));
        __m128i k =
            _mm_unpacklo_epi8(_mm_loadl_epi64((const __m128i *)(const void *)(ctx + x)), none);
        __m128i index = _mm_or_si128(token, _mm_slli_epi16(k, 6));
        _mm_storeu_si128((__m128i *)(void *)(rec + x), _mm_unpacklo_epi16(index, extra));
        _mm_storeu_si128((__m128i *)(void *)(rec + x + 4), _mm_unpackhi_epi16(index, extra));
    }
#endif
    /* Modulo 2^16 throughout, as in the decoder: `a` is reduced only when stored. */
    uint32_t a = x ? cur[x - 1] : prev[0];
    for (; x < width; x++) {
        uint32_t pred = a + prev[x] - (prev - 1)[x];
        uint32_t value = px[x];
        uint16_t r = (uint16_t)(value - pred);
        uint32_t zigzag = (uint16_t)((uint32_t)r << 1 ^ (0u - (uint32_t)(r >> 15)));
        unsigned extra_bits;
        unsigned token = s_token(zigzag, &extra_bits);
        uint32_t extra = zigzag & ((1u << extra_bits) - 1);
        rec[x] = token | (uint32_t)ctx[x] << 6 | extra << S_RECORD_EXTRA_SHIFT;
        a = value ? value : pred;
        cur[x] = (uint16_t)a;
    }
}

/* Pass one over rows [y0, y1): builds each working row (a hole takes its prediction), the
 * contexts, and a record per valid pixel, those of even columns in records[0] and of odd ones
 * in records[1], whose numbers go to made[]; counts tokens, copy c for columns x % 4 = c.
 * `rows` has room for two working rows of width + 2, a row of contexts and a row of records. */
static void s_model_half(const uint16_t *in, uint32_t width, uint32_t y0, uint32_t y1,
                         uint16_t *rows, uint32_t *const records[2], counts_t counts,
                         size_t made[2])
{
    uint16_t *prev = rows + 1;
    uint16_t *cur = rows + width + 3;
    uint8_t *ctx = (uint8_t *)(rows + 2 * (size_t)width + 4);
    uint32_t *rec = (uint32_t *)(void *)(rows + ((3 * (size_t)width + 17) & ~(size_t)1));
    memset(rows, 0, sizeof(uint16_t) * (2 * (size_t)width + 4));
    uint32_t *even = records[0], *odd = records[1];
    size_t n_even = 0, n_odd = 0;
    for (uint32_t y = y0; y < y1; y++) {
        const uint16_t *px = in + (size_t)y * width;
        prev[-1] = prev[0];
        prev[width] = prev[width - 1];
        s_contexts(prev, px, width, ctx, NULL);
        s_model_row(px, prev, ctx, width, cur, rec);
        /* Holes cost no bits: their record is written and then overwritten, and counted in
         * the hole context, which no code is built for. */
        uint32_t x = 0;
        for (; x + S_COUNT_COPIES <= width; x += S_COUNT_COPIES) {
            for (int i = 0; i < S_COUNT_COPIES; i += 2) {
                uint32_t record = rec[x + i];
                even[n_even] = record;
                n_even += ctx[x + i] != S_HOLE;
                counts[i][record & S_RECORD_INDEX_MASK]++;
                record = rec[x + i + 1];
                odd[n_odd] = record;
                n_odd += ctx[x + i + 1] != S_HOLE;
                counts[i + 1][record & S_RECORD_INDEX_MASK]++;
            }
        }
        for (; x < width; x++) {
            uint32_t record = rec[x];
            bool is_valid = ctx[x] != S_HOLE;
            if (x % 2 == 0) {
                even[n_even] = record;
                n_even += is_valid;
            } else {
                odd[n_odd] = record;
                n_odd += is_valid;
            }
            counts[x % S_COUNT_COPIES][record & S_RECORD_INDEX_MASK]++;
        }
        uint16_t *t = prev;
        prev = cur;
        cur = t;
    }
    made[0] = n_even;
    made[1] = n_odd;
}

/* The first pixel from `i` on that is a hole (is_hole) or valid (!is_hole), or `count`. */
static size_t s_scan(const uint16_t *in, size_t i, size_t count, bool is_hole)
{
#if defined(__SSE2__)
    /* Sixteen pixels a step, one bit each. */
    const __m128i none = _mm_setzero_si128();
    unsigned flip = is_hole ? 0 : 0xffffu;
    for (; i + 16 <= count; i += 16) {
        __m128i lo =
            _mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(const void *)(in + i)), none);
        __m128i hi =
            _mm_cmpeq_epi16(_mm_loadu_si128((const __m128i *)(const void *)(in + i + 8)), none);
        unsigned found = ((unsigned)_mm_movemask_epi8(_mm_packs_epi16(lo, hi))) ^ flip;
        if (found)
            return i + (unsigned)__builtin_ctz(found);
    }
#endif
    while (i < count && (in[i] == 0) != is_hole)
        i++;
    return i;
}

/* Run lengths of the hole mask in raster order: a run of zeros (possibly empty) first, then
 * valid and zero runs alternately, each at least 1 long. Fills runs[] and returns how many. */
static size_t s_mask_runs(const uint16_t *in, size_t count, uint32_t *runs)
{
    size_t n = 0, i = 0;
    bool want_valid = false;
    while (i < count) {
        size_t start = i;
        /* A run of holes ends at the first valid pixel, a valid run at the first hole. */
        i = s_scan(in, i, count, want_valid);
        runs[n++] = (uint32_t)(i - start);
        want_valid = !want_valid;
    }
    return n;
}

static uint32_t s_run_value(size_t index, uint32_t length)
{
    return index == 0 ? length : length - 1;
}

/* The encoding of each record index: the bit-reversed code in bits 0..15, code plus raw bits
 * in 16..23, code bits in 24..31. Holes and unused tokens cost nothing. */
static void s_encode_table(const sk2d_huff_t *codes, uint32_t *encode)
{
    memset(encode, 0, sizeof(uint32_t) * ((unsigned)S_TABLES << 6));
    for (int k = 0; k < S_CONTEXTS; k++) {
        for (unsigned t = 0; t < S_RESIDUAL_TOKENS; t++) {
            unsigned extra_bits;
            s_token_base(t, &extra_bits);
            unsigned bits = codes[k].length[t];
            encode[(unsigned)k << 6 | t] =
                codes[k].code[t] | (bits + extra_bits) << 16 | bits << 24;
        }
    }
}

/* Bits the stream of a half's even (parity 0) or odd columns takes, from its counts (a
 * counts_t seen as one flat array, which converts to const without a cast). */
static uint64_t s_stream_bits(const uint32_t *counts, int parity, const uint32_t *encode)
{
    uint64_t bits = 0;
    for (int c = parity; c < S_COUNT_COPIES; c += 2)
        for (unsigned i = 0; i < ((unsigned)S_CONTEXTS << 6); i++)
            bits += (uint64_t)counts[(size_t)c * ((unsigned)S_TABLES << 6) + i] *
                    ((encode[i] >> 16) & 0xffu);
    return bits;
}

static inline void s_emit_record(uint32_t record, const uint32_t *encode, sk2d_writer_t *w)
{
    uint32_t e = encode[record & S_RECORD_INDEX_MASK];
    uint64_t value = (e & 0xffffu) | (uint64_t)(record >> S_RECORD_EXTRA_SHIFT) << (e >> 24);
    sk2d_put(w, value, (e >> 16) & 0xffu);
}

/* Two records take at most 2 x 24 bits, which fit behind the 7 a flush leaves. */
static void s_emit_records(const uint32_t *records, size_t count, const uint32_t *encode,
                           sk2d_writer_t *w)
{
    size_t i = 0;
    for (; i + 2 <= count; i += 2) {
        s_emit_record(records[i], encode, w);
        s_emit_record(records[i + 1], encode, w);
        sk2d_flush(w);
    }
    if (i < count) {
        s_emit_record(records[i], encode, w);
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

    /* Records, then run lengths (at most one more than pixels); working rows and contexts. */
    uint32_t *records = (uint32_t *)(void *)sk2_scratch(SK2_SCRATCH_SK2D_TOKENS,
                                                        sizeof(uint32_t) * (2 * count + 1));
    uint16_t *rows = (uint16_t *)(void *)sk2_scratch(SK2_SCRATCH_SK2D_ROWS,
                                                     sizeof(uint16_t) * (5 * (size_t)width + 24));
    if (!records || !rows)
        return SK2_ENOMEM;
    uint32_t *runs = records + count;

    static counts_t zero_counts;
    counts_t counts[2];
    memcpy(counts[0], zero_counts, sizeof zero_counts);
    memcpy(counts[1], zero_counts, sizeof zero_counts);
    /* Records of each residual stream, in regions as large as its pixels. */
    uint32_t even_columns = (width + 1) / 2, odd_columns = width / 2;
    uint32_t *streams[4];
    streams[0] = records;
    streams[1] = streams[0] + (size_t)top_rows * even_columns;
    streams[2] = streams[1] + (size_t)top_rows * odd_columns;
    streams[3] = streams[2] + (size_t)(height - top_rows) * even_columns;
    size_t made[4];
    s_model_half(in, width, 0, top_rows, rows, streams, counts[0], made);
    s_model_half(in, width, top_rows, height, rows, streams + 2, counts[1], made + 2);
    size_t run_count = s_mask_runs(in, count, runs);

    /* One set of codes for both halves. */
    sk2d_huff_t residual_codes[S_CONTEXTS], run_codes[2];
    size_t tables_bytes = 0;
    for (int k = 0; k < S_CONTEXTS; k++) {
        uint32_t freq[S_RESIDUAL_TOKENS];
        for (int t = 0; t < S_RESIDUAL_TOKENS; t++) {
            freq[t] = 0;
            for (int c = 0; c < S_COUNT_COPIES; c++)
                freq[t] += counts[0][c][(unsigned)k << 6 | t] + counts[1][c][(unsigned)k << 6 | t];
        }
        sk2d_huff_build(&residual_codes[k], freq, S_RESIDUAL_TOKENS);
        tables_bytes += sk2d_huff_size(&residual_codes[k]);
    }
    uint32_t run_freq[2][S_RUN_TOKENS] = {{0}};
    uint64_t run_bits = 0;
    for (size_t i = 0; i < run_count; i++) {
        unsigned extra_bits;
        run_freq[i % 2][s_token(s_run_value(i, runs[i]), &extra_bits)]++;
        run_bits += extra_bits;
    }
    for (int k = 0; k < 2; k++) {
        sk2d_huff_build(&run_codes[k], run_freq[k], S_RUN_TOKENS);
        for (int t = 0; t < S_RUN_TOKENS; t++)
            run_bits += (uint64_t)run_freq[k][t] * run_codes[k].length[t];
        tables_bytes += sk2d_huff_size(&run_codes[k]);
    }
    uint32_t encode[(unsigned)S_TABLES << 6];
    s_encode_table(residual_codes, encode);

    size_t stream_bytes[S_STREAMS] = {(size_t)((run_bits + 7) / 8)};
    size_t total = S_HEADER_BYTES + tables_bytes + S_LENGTHS_BYTES + stream_bytes[0];
    for (int i = 1; i < S_STREAMS; i++) {
        stream_bytes[i] =
            (size_t)((s_stream_bits(&counts[(i - 1) / 2][0][0], (i - 1) % 2, encode) + 7) / 8);
        total += stream_bytes[i];
    }
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
    for (int i = 0; i < S_STREAMS; i++)
        s_put_le32(p + 4 * i, (uint32_t)stream_bytes[i]);
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
    for (int i = 1; i < S_STREAMS; i++) {
        p += stream_bytes[i - 1];
        w.dst = p;
        s_emit_records(streams[i - 1], made[i - 1], encode, &w);
        s_finish(&w);
    }
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

/* What every decode shares and nothing changes after it is made: the payloads of the decoding
 * tables (for the run tables, code length in bits 0..3 and the token from bit 4; for the
 * residual tables, see s_residual_tables) and the residual loop this CPU runs best. Codecs are
 * called from any thread at once (every pipeline and client decodes), so it is built exactly
 * once, under pthread_once, and only read afterwards. */
typedef void (*s_residuals_fn)(stream_t *s, bool is_pair, uint16_t *row0, uint16_t *row1,
                               uint32_t width, const uint32_t *tables);
typedef struct {
    sk2d_huff_payload_t run_payload;
    sk2d_huff_payload_t residual_payload;
    s_residuals_fn residuals;
} s_decoder_t;

static s_decoder_t s_decoder_state;
static pthread_once_t s_decoder_once = PTHREAD_ONCE_INIT;
static s_residuals_fn s_pick_residuals(void);

static void s_decoder_init(void)
{
    s_decoder_t *d = &s_decoder_state;
    for (unsigned t = 0; t < S_RUN_TOKENS; t++)
        for (unsigned bits = 0; bits <= SK2D_HUFF_MAX_BITS; bits++)
            d->run_payload.entry[t][bits] = bits | t << 4;
    for (unsigned t = 0; t < S_RESIDUAL_TOKENS; t++) {
        unsigned extra_bits;
        uint32_t base = s_token_base(t, &extra_bits);
        for (unsigned bits = 0; bits <= SK2D_HUFF_MAX_BITS; bits++)
            d->residual_payload.entry[t][bits] = (bits + extra_bits) | bits << 8 | base << 16;
    }
    d->residuals = s_pick_residuals();
}

static const s_decoder_t *s_decoder(void)
{
    pthread_once(&s_decoder_once, s_decoder_init);
    return &s_decoder_state;
}

/* Fills `length` pixels with `value`. Runs are mostly short, where a call to memset costs more
 * than the stores: this writes four pixels at a time and may run up to three past the end of
 * the run (the next run overwrites them), but never past `end`. */
static inline void s_fill(uint16_t *dst, size_t length, uint16_t *end, uint64_t value)
{
    uint64_t four = value * 0x0001000100010001u;
    if ((size_t)(end - dst) >= length + 3) {
        for (size_t i = 0; i < length; i += 4)
            memcpy(dst + i, &four, 8);
        return;
    }
    for (size_t i = 0; i < length; i++)
        dst[i] = (uint16_t)value;
}

/* Fills pixels with 0 for holes and 0xffff for valid pixels from the run stream. `table` has
 * room for two decoding tables. */
static int s_decode_mask(stream_t *s, const sk2d_huff_t *codes, uint16_t *out, size_t count,
                         uint32_t *table)
{
    const s_decoder_t *d = s_decoder();
    for (int k = 0; k < 2; k++)
        sk2d_huff_table(&codes[k], &d->run_payload, table + ((size_t)k << SK2D_HUFF_MAX_BITS));
    size_t done = 0;
    for (size_t i = 0; done < count; i++) {
        sk2d_refill(&s->reader);
        if (s_stream_is_overrun(s))
            return SK2_ECORRUPT;
        uint32_t e = table[((size_t)(i % 2) << SK2D_HUFF_MAX_BITS) |
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
        s_fill(out + done, (size_t)length, out + count, i % 2 ? 0xffffu : 0);
        done += length;
    }
    return s_stream_is_exact(s) ? 0 : SK2_ECORRUPT;
}

/* Residual decoding tables, one of 2^S_TABLE_BITS entries for each context and holes: entry =
 * bits taken (code + raw, bits 0..5) | code bits << 8 | the token's base value << 16. The hole
 * table is all 0: no bits, residual 0. */
#define S_DECODE_ENTRIES ((unsigned)S_TABLES << S_TABLE_BITS)
static void s_residual_tables(const sk2d_huff_t *codes, uint32_t *tables)
{
    const s_decoder_t *d = s_decoder();
    for (int k = 0; k < S_CONTEXTS; k++)
        sk2d_huff_table(&codes[k], &d->residual_payload, tables + ((size_t)k << S_TABLE_BITS));
    memset(tables + ((unsigned)S_HOLE << S_TABLE_BITS), 0, sizeof(uint32_t) << S_TABLE_BITS);
}

/* The residual loop keeps its bit reader in locals: `count` is the reader's count modulo 64
 * (the loop subtracts whole table entries from it, whose bits from 8 on do not matter there),
 * which the refill and the shifts use modulo 64 anyway. */
#define S_REFILL(bits, src, count)                                                                 \
    do {                                                                                           \
        (bits) |= sk2d_load64(src) << ((count)&63);                                                \
        (src) += (~(count)&63) >> 3;                                                               \
        (count) |= 56;                                                                             \
    } while (0)

/* One token and its raw bits, in place of its context word: the table entry from the word and
 * the next bits, then the raw bits, those under the entry's bit count above its code bits
 * (LOW_BITS(x, e) keeps the (e & 63) low bits of x; e & 0xc0 is 0). */
#define S_DECODE_TOKEN(LOW_BITS, bits, count, slot)                                                \
    do {                                                                                           \
        uint32_t e_ = (tables + (slot))[(bits) & ((1u << S_TABLE_BITS) - 1)];                      \
        uint64_t raw_ = LOW_BITS(bits, e_);                                                        \
        (slot) = (uint16_t)((e_ >> 16) + (uint32_t)(raw_ >> ((e_ >> 8) & 63)));                    \
        (bits) >>= e_ & 63;                                                                        \
        (count) -= e_;                                                                             \
    } while (0)

/* Decodes one row's zigzagged residuals over its context words: s[0] and s[1] are the streams
 * of the even and odd columns of row0, s[2] and s[3] those of row1 when is_pair (else the
 * first half's last row is alone). The four streams are interleaved so that their dependency
 * chains overlap. A pixel takes at most 10 + 14 bits, so a refill serves two of a stream's. */
#define S_LOCAL_READER(i)                                                                          \
    uint64_t bits##i = s[i].reader.bits, count##i = s[i].reader.count;                             \
    const uint8_t *src##i = s[i].reader.src
#define S_STORE_READER(i)                                                                          \
    s[i].reader = (sk2d_reader_t)                                                                  \
    {                                                                                              \
        .src = src##i, .bits = bits##i, .count = (unsigned)(count##i & 63)                         \
    }
#define S_DEFINE_RESIDUALS(name, ATTRIBUTES, LOW_BITS)                                             \
    ATTRIBUTES static void name(stream_t *s, bool is_pair, uint16_t *row0, uint16_t *row1,         \
                                uint32_t width, const uint32_t *tables)                            \
    {                                                                                              \
        S_LOCAL_READER(0);                                                                         \
        S_LOCAL_READER(1);                                                                         \
        uint16_t *p = row0, *end = row0 + width;                                                   \
        if (is_pair) {                                                                             \
            S_LOCAL_READER(2);                                                                     \
            S_LOCAL_READER(3);                                                                     \
            ptrdiff_t other = row1 - row0;                                                         \
            for (; end - p >= 4; p += 4) {                                                         \
                S_REFILL(bits0, src0, count0);                                                     \
                S_REFILL(bits1, src1, count1);                                                     \
                S_REFILL(bits2, src2, count2);                                                     \
                S_REFILL(bits3, src3, count3);                                                     \
                S_DECODE_TOKEN(LOW_BITS, bits0, count0, p[0]);                                     \
                S_DECODE_TOKEN(LOW_BITS, bits1, count1, p[1]);                                     \
                S_DECODE_TOKEN(LOW_BITS, bits2, count2, p[other]);                                 \
                S_DECODE_TOKEN(LOW_BITS, bits3, count3, p[other + 1]);                             \
                S_DECODE_TOKEN(LOW_BITS, bits0, count0, p[2]);                                     \
                S_DECODE_TOKEN(LOW_BITS, bits1, count1, p[3]);                                     \
                S_DECODE_TOKEN(LOW_BITS, bits2, count2, p[other + 2]);                             \
                S_DECODE_TOKEN(LOW_BITS, bits3, count3, p[other + 3]);                             \
            }                                                                                      \
            for (; p < end; p += 2) {                                                              \
                S_REFILL(bits0, src0, count0);                                                     \
                S_REFILL(bits2, src2, count2);                                                     \
                S_DECODE_TOKEN(LOW_BITS, bits0, count0, p[0]);                                     \
                S_DECODE_TOKEN(LOW_BITS, bits2, count2, p[other]);                                 \
                if (end - p >= 2) {                                                                \
                    S_REFILL(bits1, src1, count1);                                                 \
                    S_REFILL(bits3, src3, count3);                                                 \
                    S_DECODE_TOKEN(LOW_BITS, bits1, count1, p[1]);                                 \
                    S_DECODE_TOKEN(LOW_BITS, bits3, count3, p[other + 1]);                         \
                }                                                                                  \
            }                                                                                      \
            S_STORE_READER(2);                                                                     \
            S_STORE_READER(3);                                                                     \
        } else {                                                                                   \
            for (; p < end; p += 2) {                                                              \
                S_REFILL(bits0, src0, count0);                                                     \
                S_DECODE_TOKEN(LOW_BITS, bits0, count0, p[0]);                                     \
                if (end - p >= 2) {                                                                \
                    S_REFILL(bits1, src1, count1);                                                 \
                    S_DECODE_TOKEN(LOW_BITS, bits1, count1, p[1]);                                 \
                }                                                                                  \
            }                                                                                      \
        }                                                                                          \
        S_STORE_READER(0);                                                                         \
        S_STORE_READER(1);                                                                         \
    }

#define S_LOW_BITS(x, e) ((x) & ((UINT64_C(1) << ((e)&63)) - 1))
S_DEFINE_RESIDUALS(s_residuals_plain, , S_LOW_BITS)

/* BMI2 keeps the low bits in one instruction (bzhi) and shifts by a register without tying up
 * CL (shrx), where plain x86-64 takes three: picked at run time on CPUs that have it. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__BMI2__)
#define S_HAVE_BMI2_CLONE 1
S_DEFINE_RESIDUALS(s_residuals_bmi2, __attribute__((target("bmi2"))), _bzhi_u64)
#endif

static s_residuals_fn s_pick_residuals(void)
{
#if defined(S_HAVE_BMI2_CLONE)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("bmi2"))
        return s_residuals_bmi2;
#endif
    return s_residuals_plain;
}

/* One half while its rows are decoded. */
typedef struct {
    uint16_t *prev; /* working row above, with a margin pixel each side */
    uint16_t *cur;  /* working row being decoded, likewise */
    uint16_t *ctx;  /* this row's context words (S_WORD), then its zigzagged residuals */
    uint16_t *out;  /* the frame's row: the mask on entry, pixels on exit */
} half_t;

static void s_row_contexts(half_t *h, uint32_t width)
{
    h->prev[-1] = h->prev[0];
    h->prev[width] = h->prev[width - 1];
    s_contexts(h->prev, h->out, width, NULL, h->ctx);
}

/* Rebuilds the row from its residuals: the gradient prediction from the working rows, the
 * residual added where the mask says valid, the prediction kept in the working row where it
 * says hole. Arithmetic is modulo 2^16, so the running value needs no reduction until it is
 * stored, and each pixel adds one term that does not depend on the pixel before: the chain
 * through `a` is one addition a pixel. */
static void s_reconstruct(half_t *h, uint32_t width)
{
    const uint16_t *prev = h->prev;
    uint16_t *cur = h->cur, *out = h->out;
    uint16_t *res = h->ctx;
    uint32_t x = 0;
#if defined(__SSE2__)
    /* Eight pixels at a time: the steps, their prefix sum in three shifted additions, plus
     * the last pixel of the eight before, broadcast. */
    __m128i carry = _mm_set1_epi16((short)prev[0]);
    const __m128i one = _mm_set1_epi16(1);
    for (; x + 8 <= width; x += 8) {
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(prev + x));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(prev + x - 1));
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(res + x));
        __m128i r = _mm_xor_si128(_mm_srli_epi16(v, 1),
                                  _mm_sub_epi16(_mm_setzero_si128(), _mm_and_si128(v, one)));
        __m128i sum = _mm_add_epi16(_mm_sub_epi16(b, c), r);
        sum = _mm_add_epi16(sum, _mm_slli_si128(sum, 2));
        sum = _mm_add_epi16(sum, _mm_slli_si128(sum, 4));
        sum = _mm_add_epi16(sum, _mm_slli_si128(sum, 8));
        sum = _mm_add_epi16(sum, carry);
        _mm_storeu_si128((__m128i *)(void *)(cur + x), sum);
        __m128i o = _mm_loadu_si128((const __m128i *)(const void *)(out + x));
        _mm_storeu_si128((__m128i *)(void *)(out + x), _mm_and_si128(o, sum));
        carry = _mm_shuffle_epi32(_mm_shufflehi_epi16(sum, 0xff), 0xff);
    }
    uint32_t tail = x;
#else
    uint32_t tail = 0;
#endif
    /* First what each pixel adds to its left neighbour, b - c + residual, eight at a time. A
     * hole's residual is 0 (its table decodes token 0 from no bits), so no mask is needed. */
    for (; x + S_LANES <= width; x += S_LANES) {
        s_v16 b, c, v;
        memcpy(&b, prev + x, sizeof b);
        memcpy(&c, prev + x - 1, sizeof c);
        memcpy(&v, res + x, sizeof v);
        s_v16 step = b - c + ((v >> 1) ^ ((s_v16){0} - (v & 1)));
        memcpy(res + x, &step, sizeof step);
    }
    for (; x < width; x++) {
        uint32_t v = res[x];
        res[x] = (uint16_t)(prev[x] - (prev - 1)[x] + ((v >> 1) ^ (0u - (v & 1u))));
    }
    /* Then the running sum, modulo 2^16. */
    uint32_t a = tail ? cur[tail - 1] : prev[0];
    for (x = tail; x < width; x++) {
        a += res[x];
        cur[x] = (uint16_t)a;
        out[x] &= (uint16_t)a;
    }
    uint16_t *t = h->prev;
    h->prev = h->cur;
    h->cur = t;
    h->out += width;
}

static int s_decode_stored(const sk2_codec_shape_t *shape, const uint8_t *src, size_t src_len,
                           uint16_t *out)
{
    size_t count = s_pixels(shape);
    if (src_len != S_HEADER_BYTES + 2 * count)
        return SK2_ECORRUPT;
    const uint8_t *p = src + S_HEADER_BYTES;
    for (size_t i = 0; i < count; i++)
        out[i] = (uint16_t)(p[2 * i] | (unsigned)p[2 * i + 1] << 8);
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
    size_t bytes[S_STREAMS];
    for (int i = 0; i < S_STREAMS; i++)
        bytes[i] = s_get_le32(p + 4 * i);
    p += S_LENGTHS_BYTES;
    size_t left = (size_t)(end - p);
    for (int i = 0; i < S_STREAMS; i++) {
        if (bytes[i] > left || (i == S_STREAMS - 1 && bytes[i] != left))
            return SK2_ECORRUPT;
        left -= bytes[i];
    }

    /* Each stream gets zero padding behind it for the reader to run into: 8 bytes for a
     * refill, plus what one row can take (24 bits a pixel at most) before the overrun check
     * at the end of the row. */
    size_t pad = 3 * (size_t)width + 16;
    /* The residual tables; the two run tables, used first, share their room (2 x 1024). */
    size_t table_bytes = sizeof(uint32_t) * ((size_t)S_DECODE_ENTRIES + 7);
    size_t row_bytes = sizeof(uint16_t) * ((size_t)width + 16);
    uint8_t *copy = sk2_scratch(SK2_SCRATCH_SK2D_STREAM, src_len + S_STREAMS * pad);
    uint8_t *work = sk2_scratch(SK2_SCRATCH_SK2D_ROWS, table_bytes + 6 * row_bytes);
    if (!copy || !work)
        return SK2_ENOMEM;
    uint32_t *tables = (uint32_t *)(void *)work;
    stream_t streams[S_STREAMS];
    uint8_t *c = copy;
    for (int i = 0; i < S_STREAMS; i++) {
        memcpy(c, p, bytes[i]);
        memset(c + bytes[i], 0, pad);
        streams[i] = (stream_t){.start = c, .bytes = bytes[i], .reader = {.src = c}};
        p += bytes[i];
        c += bytes[i] + pad;
    }

    int rc = s_decode_mask(&streams[0], run_codes, out, count, tables);
    if (rc != 0)
        return rc;

    s_residual_tables(residual_codes, tables);
    s_residuals_fn residuals = s_decoder()->residuals;

    /* Per half: two working rows and one of contexts, then residuals, each row_bytes long. */
    uint8_t *rows = work + table_bytes;
    memset(rows, 0, 6 * row_bytes);
    uint32_t top_rows = (height + 1) / 2, bottom_rows = height / 2;
    half_t halves[2];
    for (int i = 0; i < 2; i++) {
        uint8_t *base = rows + 3 * row_bytes * (size_t)i;
        halves[i] = (half_t){
            .prev = (uint16_t *)(void *)base + 1,
            .cur = (uint16_t *)(void *)(base + row_bytes) + 1,
            .ctx = (uint16_t *)(void *)(base + 2 * row_bytes),
            .out = out + (size_t)(i ? top_rows : 0) * width,
        };
    }
    for (uint32_t y = 0; y < top_rows; y++) {
        half_t *h0 = &halves[0], *h1 = &halves[1];
        s_row_contexts(h0, width);
        if (y < bottom_rows) {
            s_row_contexts(h1, width);
            residuals(streams + 1, true, h0->ctx, h1->ctx, width, tables);
            s_reconstruct(h0, width);
            s_reconstruct(h1, width);
        } else {
            residuals(streams + 1, false, h0->ctx, NULL, width, tables);
            s_reconstruct(h0, width);
        }
        for (int i = 1; i < S_STREAMS; i++)
            if (s_stream_is_overrun(&streams[i]))
                return SK2_ECORRUPT;
    }
    for (int i = 1; i < S_STREAMS; i++)
        if (!s_stream_is_exact(&streams[i]))
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
