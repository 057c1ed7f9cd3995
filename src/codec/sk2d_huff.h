/* Canonical Huffman codes and little-endian bit I/O for sk2d (docs/codecs.md, "sk2d").
 *
 * Codes are length-limited to SK2D_HUFF_MAX_BITS so that one table lookup decodes a symbol,
 * and always complete (their Kraft sum is exactly 1), so that every table entry means
 * something and a decoder needs no check per symbol. A code may also have a single symbol of
 * length 0, which costs no bits at all (a flat image). Bits are written least significant
 * first into little-endian 64-bit words, with codes bit-reversed as in Deflate, so that both
 * sides shift right. Private to libsk2. */
#ifndef SK2_CODEC_SK2D_HUFF_H
#define SK2_CODEC_SK2D_HUFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The longest code: a decoding table has 2^SK2D_HUFF_MAX_BITS entries. */
#define SK2D_HUFF_MAX_BITS 10
/* The largest alphabet: run lengths up to 2^28 take 66 symbols (sk2d.c). */
#define SK2D_HUFF_MAX_SYMBOLS 66

typedef struct {
    int symbols;                           /* alphabet size, 1 .. SK2D_HUFF_MAX_SYMBOLS */
    uint8_t length[SK2D_HUFF_MAX_SYMBOLS]; /* bits of each symbol's code, 0 = unused */
    uint16_t code[SK2D_HUFF_MAX_SYMBOLS];  /* the code, bit-reversed, to be sent LSB first */
    int single;                            /* the only symbol of a 0-bit code, or -1 */
} sk2d_huff_t;

/* Builds the code for `symbols` frequencies (any sum that fits 32 bits). A code with one used
 * symbol, or none, becomes a 0-bit code. */
void sk2d_huff_build(sk2d_huff_t *self, const uint32_t *freq, int symbols);

/* Bytes sk2d_huff_write takes for this code. */
size_t sk2d_huff_size(const sk2d_huff_t *self);
/* Writes the code's description (see docs/codecs.md) to dst, which has sk2d_huff_size bytes;
 * returns the byte after it. */
uint8_t *sk2d_huff_write(const sk2d_huff_t *self, uint8_t *dst);
/* Reads a description of a code over `symbols` symbols from *src (advanced past it, never
 * beyond end). Returns 0, or SK2_ECORRUPT if it runs out, names a symbol outside the
 * alphabet, has a code longer than SK2D_HUFF_MAX_BITS or is not complete. */
int sk2d_huff_read(sk2d_huff_t *self, int symbols, const uint8_t **src, const uint8_t *end);

/* What a decoding table holds for each symbol and code length. A struct rather than a bare
 * 2-D array so that a table built at run time passes as const without a cast (C11 does not
 * convert a pointer to array to a pointer to const array). */
typedef struct {
    uint32_t entry[SK2D_HUFF_MAX_SYMBOLS][SK2D_HUFF_MAX_BITS + 1];
} sk2d_huff_payload_t;

/* Fills a decoding table of 2^SK2D_HUFF_MAX_BITS entries: the entry at the next
 * SK2D_HUFF_MAX_BITS input bits is payload->entry[symbol][code length]. */
void sk2d_huff_table(const sk2d_huff_t *self, const sk2d_huff_payload_t *payload, uint32_t *table);

/* ---- Bits ---- */

/* Little-endian 64-bit load and store; compilers turn each into one instruction. */
static inline uint64_t sk2d_load64(const uint8_t *src)
{
    return (uint64_t)src[0] | (uint64_t)src[1] << 8 | (uint64_t)src[2] << 16 |
           (uint64_t)src[3] << 24 | (uint64_t)src[4] << 32 | (uint64_t)src[5] << 40 |
           (uint64_t)src[6] << 48 | (uint64_t)src[7] << 56;
}

static inline void sk2d_store64(uint8_t *dst, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
}

/* Appends bits to a buffer that must have 8 bytes of room past the last byte written. */
typedef struct {
    uint8_t *dst;  /* where the next whole bytes go */
    uint64_t bits; /* pending bits, the oldest lowest */
    unsigned used; /* pending bits in `bits`, 0 .. 7 after a flush */
} sk2d_writer_t;

/* Adds `count` (<= 56 - used, so <= 49 right after a flush) bits of `value`. */
static inline void sk2d_put(sk2d_writer_t *w, uint64_t value, unsigned count)
{
    w->bits |= value << w->used;
    w->used += count;
}

/* Writes the whole bytes pending; leaves 0 .. 7 bits. */
static inline void sk2d_flush(sk2d_writer_t *w)
{
    sk2d_store64(w->dst, w->bits);
    w->dst += w->used >> 3;
    w->bits >>= w->used & 56;
    w->used &= 7;
}

/* Reads bits from a buffer padded with at least 8 readable bytes past its end. */
typedef struct {
    const uint8_t *src; /* next bytes to load */
    uint64_t bits;      /* unread bits, the next lowest */
    unsigned count;     /* valid bits in `bits`: 56 .. 63 after a refill */
} sk2d_reader_t;

/* Tops `bits` up to at least 56 valid bits, without a branch. */
static inline void sk2d_refill(sk2d_reader_t *r)
{
    r->bits |= sk2d_load64(r->src) << r->count;
    r->src += (63 - r->count) >> 3;
    r->count |= 56;
}

/* Where the next unread bit is, counted from `start`. */
static inline size_t sk2d_bit_position(const sk2d_reader_t *r, const uint8_t *start)
{
    return (size_t)(r->src - start) * 8 - r->count;
}

#endif
