/* Prototypes, in Cython's C names, of the room functions bpe/_core.pyx keeps out of line.

   The rooms' functions are all inline (a .pxd can hold no other kind), but inlined into
   the encode loop the full scanners, the merges, the backtracking encoder and the counter's
   insertion crowd its registers and code and push the ASCII fast paths out of it (and the
   encode loop itself, called once per text, is one copy for its several callers). These
   prototypes tell GCC and Clang to keep them out of line, as they were when they were
   plain functions of one file; tests/test_rooms.py checks that each name still exists in
   the built module (a renamed room would leave a name pointing at nothing). */
#ifndef BPE_OUT_OF_LINE_H
#define BPE_OUT_OF_LINE_H
#include <stddef.h>
#include <stdint.h>
#if defined(__GNUC__) || defined(__clang__)
#define BPE_OUT_OF_LINE __attribute__((noinline))
#define BPE_IN_LINE __attribute__((always_inline))
#else
#define BPE_OUT_OF_LINE
#define BPE_IN_LINE
#endif
struct __pyx_t_3bpe_6_vocab_Vocab;
struct __pyx_t_3bpe_6_types_RankVec;
struct __pyx_t_3bpe_10_backtrack_Backtrack;
struct __pyx_t_3bpe_6_count_PieceMap;
static int __pyx_f_3bpe_6_merge_merge_small(struct __pyx_t_3bpe_6_vocab_Vocab const *, uint8_t const *,
    size_t, struct __pyx_t_3bpe_6_types_RankVec *) BPE_OUT_OF_LINE;
static int __pyx_f_3bpe_6_merge_merge_large(struct __pyx_t_3bpe_6_vocab_Vocab const *, uint8_t const *,
    size_t, struct __pyx_t_3bpe_6_types_RankVec *) BPE_OUT_OF_LINE;
static int __pyx_f_3bpe_10_backtrack_backtrack_encode(struct __pyx_t_3bpe_10_backtrack_Backtrack const *,
    uint8_t const *, size_t, struct __pyx_t_3bpe_6_types_RankVec *) BPE_OUT_OF_LINE;
static size_t __pyx_f_3bpe_5_scan_next_gpt2(uint8_t const *, size_t, size_t) BPE_OUT_OF_LINE;
static size_t __pyx_f_3bpe_5_scan_next_cl100k(uint8_t const *, size_t, size_t) BPE_OUT_OF_LINE;
static size_t __pyx_f_3bpe_5_scan_next_o200k(uint8_t const *, size_t, size_t) BPE_OUT_OF_LINE;
/* And the other way: the piece cutter and its ASCII paths, inlined into each loop that cuts
   pieces (GCC would keep them out of line for their size; the calls and their register
   saves cost 10-20% of a warm pass). */
struct __pyx_t_3bpe_7_pretok_ScanWindow;
static size_t __pyx_f_3bpe_7_pretok_next_piece(int, uint8_t const *, size_t, size_t,
    struct __pyx_t_3bpe_7_pretok_ScanWindow *) BPE_IN_LINE;
static void __pyx_f_3bpe_7_pretok_window_fill(struct __pyx_t_3bpe_7_pretok_ScanWindow *, uint8_t const *, size_t,
    int) BPE_IN_LINE;
static ptrdiff_t __pyx_f_3bpe_7_pretok_masked_piece(struct __pyx_t_3bpe_7_pretok_ScanWindow const *,
    uint8_t const *, size_t, size_t) BPE_IN_LINE;
static ptrdiff_t __pyx_f_3bpe_5_scan_o200k_ascii(uint8_t const *, size_t, size_t) BPE_IN_LINE;
static ptrdiff_t __pyx_f_3bpe_5_scan_cl100k_ascii(uint8_t const *, size_t, size_t) BPE_IN_LINE;
static ptrdiff_t __pyx_f_3bpe_5_scan_ascii_start(uint8_t const *, size_t, size_t, int, size_t *) BPE_IN_LINE;
static ptrdiff_t __pyx_f_3bpe_5_scan_ascii_space(uint8_t const *, size_t, size_t, int) BPE_IN_LINE;
static ptrdiff_t __pyx_f_3bpe_7_pretok_masked_space(struct __pyx_t_3bpe_7_pretok_ScanWindow const *, unsigned int) BPE_IN_LINE;
static ptrdiff_t __pyx_f_3bpe_7_pretok_masked_other(struct __pyx_t_3bpe_7_pretok_ScanWindow const *, unsigned int) BPE_IN_LINE;
/* The token lookup that also hands on the piece's hash (encode_piece's): out of line it
   would cost a call per piece. */
static uint32_t __pyx_f_3bpe_6_vocab_vocab_find_head(struct __pyx_t_3bpe_6_vocab_Vocab const *,
    uint8_t const *, size_t, uint64_t, size_t, uint64_t *) BPE_IN_LINE;
static uint32_t __pyx_f_3bpe_6_vocab_vocab_find(struct __pyx_t_3bpe_6_vocab_Vocab const *,
    uint8_t const *, size_t, size_t, uint64_t *) BPE_IN_LINE;
struct __pyx_t_3bpe_7_encode_Engine;
struct __pyx_t_3bpe_6_cache_PieceCache;
static int __pyx_f_3bpe_7_encode_merge_uncached(struct __pyx_t_3bpe_7_encode_Engine const *,
    struct __pyx_t_3bpe_6_cache_PieceCache const *, uint8_t const *, size_t, uint64_t,
    struct __pyx_t_3bpe_6_types_RankVec *) BPE_OUT_OF_LINE;
static int __pyx_f_3bpe_6_cache_cache_get(struct __pyx_t_3bpe_6_cache_PieceCache const *, uint64_t,
    uint8_t const *, size_t, uint64_t, struct __pyx_t_3bpe_6_types_RankVec *) BPE_OUT_OF_LINE;
static int __pyx_f_3bpe_7_encode_merge_piece(struct __pyx_t_3bpe_7_encode_Engine const *, uint8_t const *,
    size_t, uint64_t, uint64_t, struct __pyx_t_3bpe_6_types_RankVec *) BPE_IN_LINE;
static int __pyx_f_3bpe_7_encode_encode_text(struct __pyx_t_3bpe_7_encode_Engine const *, int,
    uint8_t const *, size_t, struct __pyx_t_3bpe_6_types_RankVec *, size_t *) BPE_OUT_OF_LINE;
static int __pyx_f_3bpe_6_count_piece_map_add(struct __pyx_t_3bpe_6_count_PieceMap *, uint8_t const *,
    size_t) BPE_OUT_OF_LINE;
#endif
