# The engine record and the encode loop: text to ranks, piece by piece. The loop walks the
# classifier's windows where it can (encode_window), takes each piece's rank from the token
# table when the piece is a token and from the piece cache or a merge when it is not.

from libc.stdint cimport uint8_t, uint64_t

from bpe._backtrack cimport BACKTRACK_SHORT, BACKTRACK_SHORT_UTF8, Backtrack, backtrack_encode
from bpe._cache cimport (CACHE_PIECE, LONG_PIECE, SHORT_PIECE, PieceCache, cache_entry, cache_get,
                         cache_put, cache_set, cache_victim)
from bpe._merge cimport merge_any
from bpe._port cimport bpe_ctz64, bpe_prefetch_write
from bpe._pretok cimport (REFILL, SIMD_NONE, WINDOW, ScanWindow, next_piece, piece_past_cuts, window_fill,
                          window_init)
from bpe._scan cimport FAMILY_CL100K, FAMILY_O200K, next_cl100k, next_o200k
from bpe._types cimport NO_RANK, RankVec, rank_t, vec_push, vec_reserve
from bpe._vocab cimport Vocab, vocab_find, vocab_find_cut, vocab_find_wide

# The engine record: the token table, the piece cache's three tiers, the backtracking tables

cdef struct Engine:
    Vocab vocab
    PieceCache caches[3]  # pieces of 3 to 24 bytes, 25 to 48, 49 to 256 (entries NULL: off)
    Backtrack* bt         # the linear encoder's tables (NULL: the merges instead)


cdef inline const PieceCache* cache_for(const Engine* e, size_t n) noexcept nogil:
    """The cache for pieces of n bytes, or NULL (none, or off)."""
    cdef const PieceCache* cache
    if n < 3 or n > LONG_PIECE:
        return NULL
    cache = &e.caches[0 if n <= SHORT_PIECE else 1 if n <= CACHE_PIECE else 2]
    return cache if cache.entries != NULL else NULL


cdef inline int merge_piece(const Engine* e, const uint8_t* s, size_t n, uint64_t h,
                            RankVec* out) noexcept nogil:
    """Append the ranks of a piece that is not a token; h is its hash when 3 <= n <= 256.
    Inlined, so that a piece the cache holds costs no call."""
    cdef const PieceCache* cache = cache_for(e, n)
    if cache != NULL and cache_get(cache, h, s, n, out):
        return 0
    return merge_uncached(e, cache, s, n, h, out)


cdef inline int merge_uncached(const Engine* e, const PieceCache* cache, const uint8_t* s, size_t n,
                               uint64_t h, RankVec* out) noexcept nogil:
    """merge_piece for a piece its cache (NULL: none for its length, or off) does not hold:
    BPE, then the answer put in the cache."""
    cdef size_t start = out.size
    cdef int rc = -3
    if cache != NULL:
        # the entry the put below takes: on a first pass it is in no cache level, and the
        # merge takes long enough for it to arrive
        bpe_prefetch_write(cache_entry(cache, cache_victim(cache, h, cache_set(cache, h))))
    if e.bt != NULL and (n >= BACKTRACK_SHORT or (n >= BACKTRACK_SHORT_UTF8 and s[n - 1] >= 0x80)):
        rc = backtrack_encode(e.bt, s, n, out)
    if rc == -3:
        rc = merge_any(&e.vocab, s, n, out)
    if cache != NULL and rc == 0:
        cache_put(cache, h, s, n, out.data + start, out.size - start)
    return rc


cdef inline int encode_piece(const Engine* e, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    """Append the ranks of one piece. 0 on success, -1 out of memory, -2-b: byte b has no rank."""
    cdef rank_t r
    cdef uint64_t h
    if n == 0:
        return 0  # a split pattern may match the empty string: no bytes, no tokens
    r = vocab_find(&e.vocab, s, n, LONG_PIECE, &h)
    if r != NO_RANK:
        return vec_push(out, r)
    return merge_piece(e, s, n, h, out)


# The encode loop

cdef enum:
    COUNT_FLUSH = 4096     # ranks held before counting empties the scratch vector
    RESERVE_MAX = 1 << 22  # bytes of text above which room for ranks is not made up front

cdef inline int encode_span(const Engine* e, const uint8_t* s, size_t i, size_t j, size_t n,
                            RankVec* out) noexcept nogil:
    """Append the ranks of the piece s[i:j] of s[:n]."""
    cdef uint64_t h
    cdef rank_t r
    if n - i >= 8:
        r = vocab_find_wide(&e.vocab, s + i, j - i, LONG_PIECE, &h)
    else:
        r = vocab_find(&e.vocab, s + i, j - i, LONG_PIECE, &h)
    if r != NO_RANK:
        return vec_push(out, r)
    return merge_piece(e, s + i, j - i, h, out)


# Where the classifier has a window of ASCII, the loop walks the window's cuts itself: the
# pieces from one unsure bit to the next are consecutive cut bits, each a count of trailing
# zeros and a lookup, with room for their ranks made once (docs/performance.md).

cdef inline ptrdiff_t encode_window(const Engine* e, bint o200k, const uint8_t* s, size_t i,
                                    size_t n, ScanWindow* w, RankVec* out) noexcept nogil:
    """Append the ranks of the pieces from byte i (ASCII, 72 bytes readable) to at least
    REFILL bytes on; returns where the next piece starts, or the error (< 0)."""
    cdef unsigned o = 0, c
    cdef uint64_t above, unsure, ends, h
    cdef size_t j
    cdef rank_t r
    cdef int rc
    cdef const uint8_t* base = s + i
    window_fill(w, s, i, o200k)
    while True:
        # the sure pieces from bit o: every cut below the first unsure bit above o
        above = ~((<uint64_t>2 << o) - 1)
        unsure = w.unsure & above
        ends = w.cuts & above & ((unsure & (~unsure + 1)) - 1)
        if vec_reserve(out, WINDOW):
            return -1
        while ends:
            c = bpe_ctz64(ends)
            ends &= ends - 1
            r = vocab_find_cut(&e.vocab, base + o, c - o, &h)
            if r != NO_RANK:
                out.data[out.size] = r  # within the room made above
                out.size += 1
            else:
                rc = merge_piece(e, base + o, c - o, h, out)
                if rc == 0 and vec_reserve(out, WINDOW):
                    rc = -1
                if rc:
                    return rc
            o = c
        if o >= REFILL:
            return w.base + o
        # the piece at bit o is unsure
        j = piece_past_cuts(w, o200k, s, w.base + o, n)
        rc = encode_span(e, s, w.base + o, j, n, out)
        if rc:
            return rc
        if j - w.base >= REFILL:
            return j
        o = <unsigned>(j - w.base)


cdef inline int encode_text(const Engine* e, int family, const uint8_t* s, size_t n, RankVec* out,
                            size_t* counted) noexcept nogil:
    """Append the ranks of s[:n] to out. With counted, count them instead: out is scratch
    space, emptied now and then, and counted[0] gets the total."""
    cdef size_t i = 0, j
    cdef ptrdiff_t next
    cdef int rc
    cdef bint o200k = family == FAMILY_O200K
    cdef bint windows
    cdef ScanWindow w
    window_init(&w)
    windows = w.level != SIMD_NONE and (o200k or family == FAMILY_CL100K)
    # room for a token per 4 bytes (about what prose and code take) in one move, not six
    if counted == NULL and vec_reserve(out, (n if n < RESERVE_MAX else RESERVE_MAX) // 4 + WINDOW):
        return -1
    while i < n:
        if windows and s[i] < 0x80 and n - i >= WINDOW + 8:
            next = encode_window(e, o200k, s, i, n, &w, out)
            if next < 0:
                return <int>next
            i = <size_t>next
        else:
            if windows and s[i] >= 0x80:  # straight to the full scanner (CJK: most pieces)
                j = next_o200k(s, i, n) if o200k else next_cl100k(s, i, n)
            else:
                j = next_piece(family, s, i, n, &w)
            rc = encode_span(e, s, i, j, n, out)
            if rc:
                return rc
            i = j
        if counted != NULL and out.size >= COUNT_FLUSH:
            counted[0] += out.size
            out.size = 0
    if counted != NULL:
        counted[0] += out.size
        out.size = 0
    return 0
