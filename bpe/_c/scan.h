/* The scanners' character classes (see _scan.pxd). */
#ifndef BPE_SCAN_H
#define BPE_SCAN_H

#include "port.h"

/* Class bits of every code point at tiktoken's Unicode version (set_unicode_classes fills
   it), and the classifier every scanner step calls, in C so that it can be forced inline. */
static uint8_t bpe_uclass[0x110000];

/* The classes of single bytes, for the ASCII fast paths: a byte from 0x80 up has only
   B_HIGH, so a loop over one class stops at the first non-ASCII code point. */
static uint8_t bpe_byte_class[256];

BPE_ALWAYS_INLINE uint8_t bpe_cls_at(const uint8_t* s, size_t i, size_t* ln) {
    uint8_t b = s[i];
    if (b < 0x80) { *ln = 1; return bpe_uclass[b]; }
    if (b < 0xE0) { *ln = 2; return bpe_uclass[((b & 0x1F) << 6) | (s[i + 1] & 0x3F)]; }
    if (b < 0xF0) {
        *ln = 3;
        return bpe_uclass[((b & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)];
    }
    *ln = 4;
    return bpe_uclass[((b & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12)
                      | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F)];
}
/* Runs of ASCII letters eight bytes at a time: a word's end is then found with one
   branch that is mostly not taken, instead of a loop exit that the branch predictor misses
   about once a word. With fold, A-Z count as a-z (x | 0x20 maps exactly A-Z into a-z). */
static inline size_t bpe_ascii_run(const uint8_t* s, size_t k, size_t n, int fold) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t x, y, in, out;
    while (k + 8 <= n) {
        memcpy(&x, s + k, 8);
        if (fold)
            x |= 0x2020202020202020ULL;
        y = x & ~highs;  /* bytes of 0x7F or less: the sums below cannot carry */
        in = (y + (0x80 - 'a') * ones) & ~(y + (0x7F - 'z') * ones) & ~x & highs;
        out = ~in & highs;
        if (out)
            return k + ((size_t)bpe_ctz64(out) >> 3);
        k += 8;
    }
    while (k < n && ((s[k] | (fold ? 0x20 : 0)) - 'a') < 26u)
        k++;
    return k;
}
#endif /* BPE_SCAN_H */
