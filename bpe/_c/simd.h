/* Bulk classification for the scanners (bpe/_pretok.pxd): 64 bytes at a time into one bit
   per byte for each class the ASCII paths of the o200k and cl100k scanners read.

   Levels: SSE2 (every x86-64 CPU), AVX2 (chosen at run time where the CPU has it), NEON
   (every AArch64 CPU), and the scalar table walk, the reference the others are tested
   against (tests/test_simd.py compares every level on every byte value in every lane). A
   build that has none of the vector levels scans with the byte-at-a-time paths of
   bpe/_scan.pxd, as before. */
#ifndef BPE_SIMD_H
#define BPE_SIMD_H

#include "port.h"

/* The vector levels need the intrinsics headers of GCC, Clang or MSVC; any other compiler
   gets the byte-at-a-time paths. */
#if defined(__GNUC__) || defined(__clang__) || defined(_MSC_VER)
#  define BPE_KNOWN_COMPILER 1
#endif
#if BPE_KNOWN_COMPILER && (defined(__x86_64__) || defined(_M_X64))
#  define BPE_X86_64 1
#  include <emmintrin.h>
#  include <immintrin.h>
#  define BPE_HAVE_AVX2 1
#  if defined(_MSC_VER) && !defined(__clang__)
#    include <intrin.h>
#    define BPE_TARGET_AVX2
#  else
#    define BPE_TARGET_AVX2 __attribute__((target("avx2")))
#  endif
#endif
#if BPE_KNOWN_COMPILER && (defined(__aarch64__) || defined(_M_ARM64))
#  define BPE_HAVE_NEON 1
#  include <arm_neon.h>
#endif

enum { BPE_SIMD_NONE = 0, BPE_SIMD_SCALAR = 1, BPE_SIMD_SSE2 = 2, BPE_SIMD_AVX2 = 3, BPE_SIMD_NEON = 4 };

/* Bit j of each mask is byte j of the block. "other" is an ASCII byte that is no letter,
   digit or white space; "high" a byte of 0x80 and up (part of a multi-byte code point);
   "quote" the apostrophe that may start a contraction. */
typedef struct {
    uint64_t upper, lower, digit, space, high, other, newline, slash, blank, quote;
} BpeMasks;

/* ASCII's classes are fixed by Unicode: letters A-Z a-z, digits 0-9, white space \t \n \v
   \f \r and the space (tests/test_simd.py checks these against the code point table). */
#define BPE_IS_UPPER(b) ((uint8_t)((b) - 'A') < 26)
#define BPE_IS_LOWER(b) ((uint8_t)((b) - 'a') < 26)
#define BPE_IS_DIGIT(b) ((uint8_t)((b) - '0') < 10)
#define BPE_IS_SPACE(b) ((uint8_t)((b) - 9) < 5 || (b) == ' ')

static void bpe_classify_scalar(const uint8_t* p, BpeMasks* m) {
    BpeMasks r;
    int j;
    memset(&r, 0, sizeof r);
    for (j = 0; j < 64; j++) {
        uint8_t b = p[j];
        uint64_t bit = (uint64_t)1 << j;
        if (b >= 0x80) { r.high |= bit; continue; }
        if (BPE_IS_UPPER(b)) r.upper |= bit;
        else if (BPE_IS_LOWER(b)) r.lower |= bit;
        else if (BPE_IS_DIGIT(b)) r.digit |= bit;
        else if (BPE_IS_SPACE(b)) r.space |= bit;
        else r.other |= bit;
        if (b == '\n' || b == '\r') r.newline |= bit;
        if (b == '/') r.slash |= bit;
        if (b == ' ') r.blank |= bit;
        if (b == '\'') r.quote |= bit;
    }
    *m = r;
}

/* Shared by the vector levels: the masks that follow from the others. */
BPE_ALWAYS_INLINE void bpe_masks_finish(BpeMasks* m) {
    m->other = ~(m->upper | m->lower | m->digit | m->space | m->high);
}

#if defined(BPE_X86_64)
/* A byte in [lo, lo + width): (b - lo) ^ 0x80, compared signed, is below width - 128. */
#  define BPE_SSE2_RANGE(x, lo, width) \
    _mm_cmplt_epi8(_mm_xor_si128(_mm_sub_epi8((x), _mm_set1_epi8((char)(lo))), _mm_set1_epi8((char)0x80)), \
                   _mm_set1_epi8((char)((width) - 128)))
#  define BPE_SSE2_EQ(x, c) _mm_cmpeq_epi8((x), _mm_set1_epi8((char)(c)))

BPE_ALWAYS_INLINE void bpe_classify_sse2(const uint8_t* p, BpeMasks* m) {
    int k;
    memset(m, 0, sizeof *m);
    for (k = 0; k < 4; k++) {
        __m128i x = _mm_loadu_si128((const __m128i*)(p + 16 * k));
        int shift = 16 * k;
        __m128i nl = _mm_or_si128(BPE_SSE2_EQ(x, '\n'), BPE_SSE2_EQ(x, '\r'));
        __m128i blank = BPE_SSE2_EQ(x, ' ');
        m->upper |= (uint64_t)(uint32_t)_mm_movemask_epi8(BPE_SSE2_RANGE(x, 'A', 26)) << shift;
        m->lower |= (uint64_t)(uint32_t)_mm_movemask_epi8(BPE_SSE2_RANGE(x, 'a', 26)) << shift;
        m->digit |= (uint64_t)(uint32_t)_mm_movemask_epi8(BPE_SSE2_RANGE(x, '0', 10)) << shift;
        m->space |= (uint64_t)(uint32_t)_mm_movemask_epi8(_mm_or_si128(BPE_SSE2_RANGE(x, 9, 5), blank)) << shift;
        m->high |= (uint64_t)(uint32_t)_mm_movemask_epi8(x) << shift;
        m->newline |= (uint64_t)(uint32_t)_mm_movemask_epi8(nl) << shift;
        m->slash |= (uint64_t)(uint32_t)_mm_movemask_epi8(BPE_SSE2_EQ(x, '/')) << shift;
        m->blank |= (uint64_t)(uint32_t)_mm_movemask_epi8(blank) << shift;
        m->quote |= (uint64_t)(uint32_t)_mm_movemask_epi8(BPE_SSE2_EQ(x, '\'')) << shift;
    }
    bpe_masks_finish(m);
}
#endif

#if defined(BPE_HAVE_AVX2)
#  define BPE_AVX2_RANGE(x, lo, width) \
    _mm256_cmpgt_epi8(_mm256_set1_epi8((char)((width) - 128)), \
                      _mm256_xor_si256(_mm256_sub_epi8((x), _mm256_set1_epi8((char)(lo))), _mm256_set1_epi8((char)0x80)))
#  define BPE_AVX2_EQ(x, c) _mm256_cmpeq_epi8((x), _mm256_set1_epi8((char)(c)))

BPE_TARGET_AVX2 static void bpe_classify_avx2(const uint8_t* p, BpeMasks* m) {
    int k;
    memset(m, 0, sizeof *m);
    for (k = 0; k < 2; k++) {
        __m256i x = _mm256_loadu_si256((const __m256i*)(p + 32 * k));
        int shift = 32 * k;
        __m256i nl = _mm256_or_si256(BPE_AVX2_EQ(x, '\n'), BPE_AVX2_EQ(x, '\r'));
        __m256i blank = BPE_AVX2_EQ(x, ' ');
        m->upper |= (uint64_t)(uint32_t)_mm256_movemask_epi8(BPE_AVX2_RANGE(x, 'A', 26)) << shift;
        m->lower |= (uint64_t)(uint32_t)_mm256_movemask_epi8(BPE_AVX2_RANGE(x, 'a', 26)) << shift;
        m->digit |= (uint64_t)(uint32_t)_mm256_movemask_epi8(BPE_AVX2_RANGE(x, '0', 10)) << shift;
        m->space |= (uint64_t)(uint32_t)_mm256_movemask_epi8(_mm256_or_si256(BPE_AVX2_RANGE(x, 9, 5), blank)) << shift;
        m->high |= (uint64_t)(uint32_t)_mm256_movemask_epi8(x) << shift;
        m->newline |= (uint64_t)(uint32_t)_mm256_movemask_epi8(nl) << shift;
        m->slash |= (uint64_t)(uint32_t)_mm256_movemask_epi8(BPE_AVX2_EQ(x, '/')) << shift;
        m->blank |= (uint64_t)(uint32_t)_mm256_movemask_epi8(blank) << shift;
        m->quote |= (uint64_t)(uint32_t)_mm256_movemask_epi8(BPE_AVX2_EQ(x, '\'')) << shift;
    }
    bpe_masks_finish(m);
}
#endif

#if defined(BPE_HAVE_NEON)
/* NEON has no movemask: keep one bit per lane (its weight), then add neighbouring lanes
   pairwise three times, which leaves the four 16-byte blocks' masks as four 16-bit words. */
static inline uint64_t bpe_neon_bits(uint8x16_t a, uint8x16_t b, uint8x16_t c, uint8x16_t d) {
    static const uint8_t weights[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t w = vld1q_u8(weights);
    uint8x16_t s0 = vpaddq_u8(vandq_u8(a, w), vandq_u8(b, w));
    uint8x16_t s1 = vpaddq_u8(vandq_u8(c, w), vandq_u8(d, w));
    s0 = vpaddq_u8(s0, s1);
    s0 = vpaddq_u8(s0, s0);
    return vgetq_lane_u64(vreinterpretq_u64_u8(s0), 0);
}
#  define BPE_NEON_RANGE(x, lo, width) vcltq_u8(vsubq_u8((x), vdupq_n_u8(lo)), vdupq_n_u8(width))
#  define BPE_NEON_EQ(x, c) vceqq_u8((x), vdupq_n_u8(c))
#  define BPE_NEON_MASK(expr) bpe_neon_bits(expr(x[0]), expr(x[1]), expr(x[2]), expr(x[3]))
#  define BPE_NEON_UPPER(v) BPE_NEON_RANGE(v, 'A', 26)
#  define BPE_NEON_LOWER(v) BPE_NEON_RANGE(v, 'a', 26)
#  define BPE_NEON_DIGIT(v) BPE_NEON_RANGE(v, '0', 10)
#  define BPE_NEON_SPACE(v) vorrq_u8(BPE_NEON_RANGE(v, 9, 5), BPE_NEON_EQ(v, ' '))
#  define BPE_NEON_HIGH(v) vcgeq_u8((v), vdupq_n_u8(0x80))
#  define BPE_NEON_NEWLINE(v) vorrq_u8(BPE_NEON_EQ(v, '\n'), BPE_NEON_EQ(v, '\r'))
#  define BPE_NEON_SLASH(v) BPE_NEON_EQ(v, '/')
#  define BPE_NEON_BLANK(v) BPE_NEON_EQ(v, ' ')
#  define BPE_NEON_QUOTE(v) BPE_NEON_EQ(v, '\'')

static void bpe_classify_neon(const uint8_t* p, BpeMasks* m) {
    uint8x16_t x[4];
    int k;
    for (k = 0; k < 4; k++)
        x[k] = vld1q_u8(p + 16 * k);
    m->upper = BPE_NEON_MASK(BPE_NEON_UPPER);
    m->lower = BPE_NEON_MASK(BPE_NEON_LOWER);
    m->digit = BPE_NEON_MASK(BPE_NEON_DIGIT);
    m->space = BPE_NEON_MASK(BPE_NEON_SPACE);
    m->high = BPE_NEON_MASK(BPE_NEON_HIGH);
    m->newline = BPE_NEON_MASK(BPE_NEON_NEWLINE);
    m->slash = BPE_NEON_MASK(BPE_NEON_SLASH);
    m->blank = BPE_NEON_MASK(BPE_NEON_BLANK);
    m->quote = BPE_NEON_MASK(BPE_NEON_QUOTE);
    bpe_masks_finish(m);
}
#endif

#if defined(BPE_HAVE_NEON)
/* The first lane of m (lanes 0x00 or 0xFF, not all 0x00) that is 0xFF: narrowed by a shift
   of 4, each lane is a nibble of one 64-bit word. */
static inline unsigned bpe_neon_first(uint8x16_t m) {
    uint8x8_t nibbles = vshrn_n_u16(vreinterpretq_u16_u8(m), 4);
    return bpe_ctz64(vget_lane_u64(vreinterpret_u64_u8(nibbles), 0)) >> 2;
}

/* 16 bytes stored at o, and how many of them are ASCII from the first on (16: all). */
static inline size_t bpe_neon_ascii16(uint8x16_t v, uint8_t* o) {
    uint8x16_t high = vcgeq_u8(v, vdupq_n_u8(0x80));
    vst1q_u8(o, v);
    return vmaxvq_u8(high) ? bpe_neon_first(high) : 16;
}
#endif

/* For the UTF-8 writer (utf8.h): 16 code units (Latin-1 or UCS-2) from s written to o as
   bytes, and how many of them are ASCII from the first on (16: all). The baseline of each
   architecture, so no run-time choice; without SSE2 or NEON, 0 (and nothing written). */
static inline size_t bpe_ascii16_latin1(const uint8_t* s, uint8_t* o) {
#if defined(BPE_X86_64)
    __m128i v = _mm_loadu_si128((const __m128i*)s);
    unsigned high = (unsigned)_mm_movemask_epi8(v);
    _mm_storeu_si128((__m128i*)o, v);
    return high ? bpe_ctz64(high) : 16;
#elif defined(BPE_HAVE_NEON)
    return bpe_neon_ascii16(vld1q_u8(s), o);
#else
    (void)s; (void)o;
    return 0;
#endif
}

static inline size_t bpe_ascii16_ucs2(const uint16_t* s, uint8_t* o) {
#if defined(BPE_X86_64)
    const __m128i not_ascii = _mm_set1_epi16((short)0xFF80), zero = _mm_setzero_si128();
    __m128i a = _mm_loadu_si128((const __m128i*)s), b = _mm_loadu_si128((const __m128i*)(s + 8));
    __m128i ascii = _mm_packs_epi16(_mm_cmpeq_epi16(_mm_and_si128(a, not_ascii), zero),
                                    _mm_cmpeq_epi16(_mm_and_si128(b, not_ascii), zero));
    unsigned high = ~(unsigned)_mm_movemask_epi8(ascii) & 0xFFFFu;
    _mm_storeu_si128((__m128i*)o, _mm_packus_epi16(a, b));
    return high ? bpe_ctz64(high) : 16;
#elif defined(BPE_HAVE_NEON)
    /* a saturating narrow: a unit of 0x100 and up becomes 0xFF, no more ASCII than it was */
    return bpe_neon_ascii16(vcombine_u8(vqmovn_u16(vld1q_u16(s)), vqmovn_u16(vld1q_u16(s + 8))), o);
#else
    (void)s; (void)o;
    return 0;
#endif
}

/* How many of the code units s[:n] are ASCII from the first on, their bytes written to o,
   16 at a time: at most the multiple of 16 below n, and up to 16 bytes past the count may
   be written. ucs2 is a constant at each call, so the test goes once it is inlined. */
static inline size_t bpe_ascii_units(const void* s, int ucs2, size_t n, uint8_t* o) {
    size_t i, k;
    for (i = 0; i + 16 <= n; i += 16) {
        k = ucs2 ? bpe_ascii16_ucs2((const uint16_t*)s + i, o + i) : bpe_ascii16_latin1((const uint8_t*)s + i, o + i);
        if (k < 16)
            return i + k;
    }
    return i;
}

/* Whether this CPU runs a level (the build has its code and the CPU its instructions). */
static int bpe_simd_supported(int level) {
    switch (level) {
    case BPE_SIMD_NONE:
    case BPE_SIMD_SCALAR:
        return 1;
#if defined(BPE_X86_64)
    case BPE_SIMD_SSE2:
        return 1;
#endif
#if defined(BPE_HAVE_AVX2)
    case BPE_SIMD_AVX2: {
#  if defined(_MSC_VER) && !defined(__clang__)
        int r[4];
        __cpuidex(r, 0, 0);
        if (r[0] < 7)
            return 0;
        __cpuidex(r, 1, 0);
        if (!(r[2] & (1 << 27)) || !(r[2] & (1 << 28)))  /* OSXSAVE and AVX */
            return 0;
        if ((_xgetbv(0) & 6) != 6)                      /* the OS saves the YMM registers */
            return 0;
        __cpuidex(r, 7, 0);
        return (r[1] & (1 << 5)) != 0;
#  else
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
#  endif
    }
#endif
#if defined(BPE_HAVE_NEON)
    case BPE_SIMD_NEON:
        return 1;
#endif
    default:
        return 0;
    }
}

/* The best level this CPU runs (the table walk is a reference, never the default). */
static int bpe_simd_best(void) {
    if (bpe_simd_supported(BPE_SIMD_AVX2)) return BPE_SIMD_AVX2;
    if (bpe_simd_supported(BPE_SIMD_SSE2)) return BPE_SIMD_SSE2;
    if (bpe_simd_supported(BPE_SIMD_NEON)) return BPE_SIMD_NEON;
    return BPE_SIMD_NONE;
}

/* The level the scanners use: set once at import (bpe._core), or by set_simd_level. Each
   text reads it once, when its scan starts. */
static int bpe_simd_level = BPE_SIMD_NONE;
static int bpe_simd_get(void) { return bpe_simd_level; }
static void bpe_simd_set(int level) { bpe_simd_level = level; }

BPE_ALWAYS_INLINE void bpe_classify(int level, const uint8_t* p, BpeMasks* m) {
    switch (level) {
#if defined(BPE_HAVE_AVX2)
    case BPE_SIMD_AVX2: bpe_classify_avx2(p, m); return;
#endif
#if defined(BPE_X86_64)
    case BPE_SIMD_SSE2: bpe_classify_sse2(p, m); return;
#endif
#if defined(BPE_HAVE_NEON)
    case BPE_SIMD_NEON: bpe_classify_neon(p, m); return;
#endif
    default: bpe_classify_scalar(p, m); return;
    }
}

/* End of the run of mask's bits from bit o (64: the run reaches the block's end). */
BPE_ALWAYS_INLINE unsigned bpe_run_end(uint64_t mask, unsigned o) {
    uint64_t rest = ~(mask >> o);
    return rest ? o + bpe_ctz64(rest) : 64;
}
#endif /* BPE_SIMD_H */
