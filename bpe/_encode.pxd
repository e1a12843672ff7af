# The engine record and the encode loop: text to ranks, piece by piece. The loop cuts pieces
# in batches, walking the classifier's windows where it can (cut_window), then takes each
# piece's rank from the token table when the piece is a token and from the piece cache or a
# merge when it is not.

from libc.stdint cimport uint8_t, uint64_t

from bpe._backtrack cimport BACKTRACK_SHORT, BACKTRACK_SHORT_UTF8, Backtrack, backtrack_encode
from bpe._cache cimport (CACHE_PIECE, LONG_PIECE, SHORT_PIECE, PieceCache, cache_entry, cache_get,
                         cache_put, cache_set, cache_victim)
from bpe._merge cimport merge_any
from bpe._port cimport bpe_ctz64, bpe_prefetch, bpe_prefetch_write
from bpe._pretok cimport (REFILL, SIMD_NONE, WINDOW, ScanWindow, next_piece, piece_past_cuts, window_fill,
                          window_init)
from bpe._scan cimport FAMILY_CL100K, FAMILY_O200K, next_cl100k, next_o200k
from bpe._types cimport NO_RANK, RankVec, rank_t, vec_push, vec_reserve
from bpe._vocab cimport Vocab, cut_head, hash_bytes, load_head, slot_of, vocab_find, vocab_probe

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


cdef inline int merge_piece(const Engine* e, const uint8_t* s, size_t n, uint64_t head, uint64_t h,
                            RankVec* out) noexcept nogil:
    """Append the ranks of a piece that is not a token; head is its load_head, h its hash
    when 3 <= n <= 256. Inlined, so that a piece the cache holds costs no call."""
    cdef const PieceCache* cache = cache_for(e, n)
    if cache != NULL and cache_get(cache, h, s, n, head, out):
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
    return merge_piece(e, s, n, load_head(s, n), h, out)


# The encode loop, in batches: it cuts up to BATCH pieces, hashing each and prefetching the
# token slot it would have (and, for a piece over PREFETCH_CACHE bytes, which is seldom a
# token, the first entry of its piece cache set), and only then looks them up and appends
# their ranks. A lookup made as soon as its piece was cut waited for its slot's cache miss,
# and a mispredicted branch between two lookups kept the next miss from starting early;
# here a batch's misses overlap (docs/performance.md).

cdef enum:
    COUNT_FLUSH = 4096     # ranks held before counting empties the scratch vector
    RESERVE_MAX = 1 << 22  # bytes of text above which room for ranks is not made up front
    BATCH = 256            # pieces cut before they are looked up (8 KiB of stack)
    BATCH_ROOM = 72        # room left for one cut_window (at most one piece per bit of its
                           # window, and the one past it)
    PREFETCH_CACHE = 8     # pieces longer than this get their cache entry prefetched too

cdef struct Batch:
    size_t count
    size_t start[BATCH]    # where each piece starts in the text
    size_t length[BATCH]
    uint64_t head[BATCH]   # its first 8 bytes (load_head)
    uint64_t hash[BATCH]   # hash_bytes, for pieces of at most LONG_PIECE bytes (else 0)


cdef inline void batch_add(const Engine* e, Batch* b, const uint8_t* s, size_t i, size_t j,
                           bint readable) noexcept nogil:
    """Add the piece s[i:j] (1 <= j - i; readable: 8 bytes readable from s + i) to the batch,
    which has room, and prefetch what its lookup will read."""
    cdef size_t n = j - i, k = b.count
    cdef uint64_t head = cut_head(s + i, n) if readable else load_head(s + i, n), h = 0
    cdef const PieceCache* cache
    if n <= LONG_PIECE:
        h = hash_bytes(s + i, n, head)
        if n <= e.vocab.max_len:
            bpe_prefetch(slot_of(&e.vocab, n, h))
        if n > PREFETCH_CACHE:
            cache = cache_for(e, n)
            if cache != NULL:
                bpe_prefetch(cache_entry(cache, cache_set(cache, h)))
    b.start[k] = i
    b.length[k] = n
    b.head[k] = head
    b.hash[k] = h
    b.count = k + 1


cdef inline int batch_flush(const Engine* e, const uint8_t* s, Batch* b, RankVec* out) noexcept nogil:
    """Append the ranks of the batch's pieces, in order, and empty it. Every token is in
    the slot table, the one- and two-byte ones too, so one probe serves every length."""
    cdef size_t k, n, count = b.count
    cdef rank_t r
    cdef int rc
    b.count = 0
    if vec_reserve(out, count):  # a rank per piece: most pieces are tokens
        return -1
    for k in range(count):
        n = b.length[k]
        r = NO_RANK
        if n <= e.vocab.max_len:
            r = vocab_probe(&e.vocab, s + b.start[k], n, b.head[k], b.hash[k])
        if r != NO_RANK:
            out.data[out.size] = r  # within the room made above
            out.size += 1
        else:
            rc = merge_piece(e, s + b.start[k], n, b.head[k], b.hash[k], out)
            if rc == 0 and vec_reserve(out, count - k):
                rc = -1
            if rc:
                return rc
    return 0


# Where the classifier has a window of ASCII, the loop walks the window's cuts itself: the
# pieces from one unsure bit to the next are consecutive cut bits, each a count of trailing
# zeros.

cdef inline size_t cut_window(const Engine* e, bint o200k, const uint8_t* s, size_t i, size_t n,
                              ScanWindow* w, Batch* b) noexcept nogil:
    """Add the pieces from byte i (ASCII, 72 bytes readable) to at least REFILL bytes on to
    the batch (BATCH_ROOM free); returns where the next piece starts."""
    cdef unsigned o = 0, c
    cdef uint64_t above, unsure, ends
    cdef size_t j
    window_fill(w, s, i, o200k)
    while True:
        # the sure pieces from bit o: every cut below the first unsure bit above o
        above = ~((<uint64_t>2 << o) - 1)
        unsure = w.unsure & above
        ends = w.cuts & above & ((unsure & (~unsure + 1)) - 1)
        while ends:
            c = bpe_ctz64(ends)
            ends &= ends - 1
            batch_add(e, b, s, i + o, i + c, True)
            o = c
        if o >= REFILL:
            return i + o
        # the piece at bit o is unsure
        j = piece_past_cuts(w, o200k, s, i + o, n)
        batch_add(e, b, s, i + o, j, n - (i + o) >= 8)
        if j - i >= REFILL:
            return j
        o = <unsigned>(j - i)


cdef inline int encode_text(const Engine* e, int family, const uint8_t* s, size_t n, RankVec* out,
                            size_t* counted) noexcept nogil:
    """Append the ranks of s[:n] to out. With counted, count them instead: out is scratch
    space, emptied now and then, and counted[0] gets the total."""
    cdef size_t i = 0, j
    cdef int rc
    cdef bint o200k = family == FAMILY_O200K
    cdef bint windows
    cdef ScanWindow w
    cdef Batch b
    b.count = 0
    window_init(&w)
    windows = w.level != SIMD_NONE and (o200k or family == FAMILY_CL100K)
    # room for a token per 4 bytes (about what prose and code take) in one move, not six
    if counted == NULL and vec_reserve(out, (n if n < RESERVE_MAX else RESERVE_MAX) // 4 + WINDOW):
        return -1
    while i < n:
        if b.count > BATCH - BATCH_ROOM:
            rc = batch_flush(e, s, &b, out)
            if rc:
                return rc
            if counted != NULL and out.size >= COUNT_FLUSH:
                counted[0] += out.size
                out.size = 0
        if windows and s[i] < 0x80 and n - i >= WINDOW + 8:
            i = cut_window(e, o200k, s, i, n, &w, &b)
        else:
            if windows and s[i] >= 0x80:  # straight to the full scanner (CJK: most pieces)
                j = next_o200k(s, i, n) if o200k else next_cl100k(s, i, n)
            else:
                j = next_piece(family, s, i, n, &w)
            batch_add(e, &b, s, i, j, n - i >= 8)
            i = j
    rc = batch_flush(e, s, &b, out)
    if rc:
        return rc
    if counted != NULL:
        counted[0] += out.size
        out.size = 0
    return 0
