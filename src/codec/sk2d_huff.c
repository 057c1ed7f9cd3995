/* Length-limited canonical Huffman codes for sk2d: building, describing, reading back, and
 * the one-lookup decoding tables.
 *
 * The lengths come from a plain Huffman tree over at most 66 symbols, built with two queues
 * after an insertion sort (a frame builds eight of them, which on small frames is not free). When
 * the tree is deeper than SK2D_HUFF_MAX_BITS the frequencies are halved (keeping every used symbol
 * at 1 or more) and the tree built again: simpler than package-merge, always complete, and on depth
 * residuals within a fraction of a percent of the optimum, since only symbols rarer than 2^-11 are
 * affected. */
#include "codec/sk2d_huff.h"

#include <string.h>

#include "sk2/error.h"

/* Code lengths of a Huffman tree over freq (used symbols only, at least two); returns the
 * longest. The used symbols sorted by frequency (ties by symbol) and the merged nodes, which
 * come out in order of weight, are two queues: each merge takes the two lightest fronts,
 * a symbol before a node of the same weight. */
static int s_tree_lengths(const uint32_t *freq, int symbols, uint8_t *length)
{
    int order[SK2D_HUFF_MAX_SYMBOLS];
    int n = 0;
    for (int i = 0; i < symbols; i++) {
        length[i] = 0;
        if (!freq[i])
            continue;
        int j = n++;
        for (; j > 0 && freq[order[j - 1]] > freq[i]; j--)
            order[j] = order[j - 1];
        order[j] = i;
    }
    /* Node m (0 .. n-2) has weight[m]; a symbol's parent is leaf_parent[its rank]. */
    uint64_t weight[SK2D_HUFF_MAX_SYMBOLS];
    int leaf_parent[SK2D_HUFF_MAX_SYMBOLS], node_parent[SK2D_HUFF_MAX_SYMBOLS];
    int leaf = 0, node = 0;
    for (int m = 0; m < n - 1; m++) {
        weight[m] = 0;
        for (int pick = 0; pick < 2; pick++) {
            if (leaf < n && (node >= m || freq[order[leaf]] <= weight[node])) {
                weight[m] += freq[order[leaf]];
                leaf_parent[leaf++] = m;
            } else {
                weight[m] += weight[node];
                node_parent[node++] = m;
            }
        }
    }
    /* Depths from the root (the last node) down; nodes reuse node_parent for theirs. */
    int depth[SK2D_HUFF_MAX_SYMBOLS];
    depth[n - 2] = 0;
    for (int m = n - 3; m >= 0; m--)
        depth[m] = depth[node_parent[m]] + 1;
    int longest = 0;
    for (int r = 0; r < n; r++) {
        int bits = depth[leaf_parent[r]] + 1;
        length[order[r]] = (uint8_t)bits;
        if (bits > longest)
            longest = bits;
    }
    return longest;
}

static uint16_t s_reverse(uint32_t code, int bits)
{
    uint32_t out = 0;
    for (int i = 0; i < bits; i++)
        out |= ((code >> i) & 1u) << (bits - 1 - i);
    return (uint16_t)out;
}

/* Canonical codes from the lengths: shorter codes first, ties by symbol. */
static void s_assign_codes(sk2d_huff_t *self)
{
    uint32_t next = 0;
    for (int bits = 1; bits <= SK2D_HUFF_MAX_BITS; bits++) {
        for (int i = 0; i < self->symbols; i++) {
            if (self->length[i] == bits) {
                self->code[i] = s_reverse(next, bits);
                next++;
            }
        }
        next <<= 1;
    }
}

void sk2d_huff_build(sk2d_huff_t *self, const uint32_t *freq, int symbols)
{
    self->symbols = symbols;
    self->single = -1;
    memset(self->length, 0, sizeof self->length);
    memset(self->code, 0, sizeof self->code);
    int used = 0, last = 0;
    for (int i = 0; i < symbols; i++) {
        if (freq[i] > 0) {
            used++;
            last = i;
        }
    }
    if (used <= 1) {
        self->single = last;
        return;
    }
    uint32_t scaled[SK2D_HUFF_MAX_SYMBOLS];
    memcpy(scaled, freq, sizeof scaled[0] * (size_t)symbols);
    while (s_tree_lengths(scaled, symbols, self->length) > SK2D_HUFF_MAX_BITS)
        for (int i = 0; i < symbols; i++)
            scaled[i] = scaled[i] ? (scaled[i] + 1) / 2 : 0;
    s_assign_codes(self);
}

/* A description: one byte n. n = 0: a 0-bit code, and the next byte is its symbol. Otherwise
 * the lengths of symbols 0 .. n-1 follow as 4-bit nibbles, two a byte, low nibble first;
 * symbols from n on are unused. */
static int s_described_symbols(const sk2d_huff_t *self)
{
    int n = 0;
    for (int i = 0; i < self->symbols; i++)
        if (self->length[i])
            n = i + 1;
    return n;
}

size_t sk2d_huff_size(const sk2d_huff_t *self)
{
    if (self->single >= 0)
        return 2;
    return 1 + ((size_t)s_described_symbols(self) + 1) / 2;
}

uint8_t *sk2d_huff_write(const sk2d_huff_t *self, uint8_t *dst)
{
    if (self->single >= 0) {
        dst[0] = 0;
        dst[1] = (uint8_t)self->single;
        return dst + 2;
    }
    int n = s_described_symbols(self);
    *dst++ = (uint8_t)n;
    for (int i = 0; i < n; i += 2) {
        uint8_t high = i + 1 < n ? self->length[i + 1] : 0;
        *dst++ = (uint8_t)(self->length[i] | (unsigned)high << 4);
    }
    return dst;
}

int sk2d_huff_read(sk2d_huff_t *self, int symbols, const uint8_t **src, const uint8_t *end)
{
    const uint8_t *p = *src;
    self->symbols = symbols;
    self->single = -1;
    memset(self->length, 0, sizeof self->length);
    memset(self->code, 0, sizeof self->code);
    if (end - p < 1)
        return SK2_ECORRUPT;
    int n = *p++;
    if (n == 0) {
        if (end - p < 1 || *p >= symbols)
            return SK2_ECORRUPT;
        self->single = *p++;
        *src = p;
        return 0;
    }
    if (n > symbols || end - p < (n + 1) / 2)
        return SK2_ECORRUPT;
    /* Kraft's sum in units of 2^-MAX_BITS: a complete code sums to exactly 2^MAX_BITS. */
    uint32_t kraft = 0;
    for (int i = 0; i < n; i++) {
        unsigned bits = (i % 2 == 0) ? (p[i / 2] & 0x0fu) : (p[i / 2] >> 4);
        if (bits > SK2D_HUFF_MAX_BITS)
            return SK2_ECORRUPT;
        self->length[i] = (uint8_t)bits;
        if (bits)
            kraft += 1u << (SK2D_HUFF_MAX_BITS - bits);
    }
    /* n odd: the unused high nibble of the last byte must be 0, so each code has one form. */
    if (n % 2 == 1 && (p[n / 2] >> 4) != 0)
        return SK2_ECORRUPT;
    if (kraft != 1u << SK2D_HUFF_MAX_BITS)
        return SK2_ECORRUPT;
    s_assign_codes(self);
    *src = p + (n + 1) / 2;
    return 0;
}

void sk2d_huff_table(const sk2d_huff_t *self, const sk2d_huff_payload_t *payload, uint32_t *table)
{
    const uint32_t size = 1u << SK2D_HUFF_MAX_BITS;
    if (self->single >= 0) {
        for (uint32_t i = 0; i < size; i++)
            table[i] = payload->entry[self->single][0];
        return;
    }
    for (int s = 0; s < self->symbols; s++) {
        unsigned bits = self->length[s];
        if (!bits)
            continue;
        uint32_t entry = payload->entry[s][bits];
        for (uint32_t i = self->code[s]; i < size; i += 1u << bits)
            table[i] = entry;
    }
}
