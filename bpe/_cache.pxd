# The piece cache: pieces that are not tokens -> their ranks, shared by threads.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free
from libc.string cimport memset

from bpe._port cimport (bpe_cas_acquire, bpe_ctz64, bpe_fence_acquire, bpe_fence_release, bpe_load64,
                        bpe_load_acquire, bpe_load_relaxed, bpe_load_tag, bpe_prefetch,
                        bpe_prefetch_write, bpe_store64, bpe_store_relaxed, bpe_store_release,
                        bpe_store_tag, table_alloc, table_free)
from bpe._types cimport RankVec, rank_t, vec_reserve
from bpe._vocab cimport load_le, word_at

# The piece cache: a four-way set-associative table from pieces that are not tokens to
# their ranks (a merge costs dozens of table lookups, a hit one), in three tiers by piece
# length so that the short pieces, most of them, get more entries in the same memory and a
# hit reads one cache line (docs/performance.md has the measurements).
#
# An entry is a 64-bit-aligned block: a header (seq, a sequence lock: 0 empty, odd while a
# writer fills the entry, even when stable; shape, the piece's length and number of
# tokens), then the piece's bytes, then its tokens. Many threads read and write it at once
# without a lock: a writer makes seq odd while it writes (skipping an entry another writer
# holds) and a reader checks seq before and after copying; a torn read is a miss, never a
# wrong answer. A piece may sit in any entry of its set, four in a row from a multiple of
# four (every tier has four entries at least); a new piece takes an empty way, else the way
# two bits of its hash pick. Two ways let three pieces whose sets collide evict each other on
# every pass over a text; four make that rare (docs/performance.md).
cdef enum:
    WAYS = 4             # entries per set (cache_matches reads four tags)
    SHORT_PIECE = 24     # 64-byte entries: up to 24 bytes and 8 tokens, one cache line
    CACHE_PIECE = 48     # 128-byte entries: up to 48 bytes and 18 tokens
    LONG_PIECE = 256     # 512-byte entries: up to 256 bytes and 62 tokens

cdef struct CacheHeader:
    uint32_t seq         # the sequence lock
    uint32_t shape       # the piece's length | its number of tokens << 16

cdef struct PieceCache:
    uint8_t* entries     # NULL: off
    uint8_t* tags        # per entry: 0 empty, else 8 bits of its piece's hash (see cache_tag)
    uint64_t mask        # number of entries - 1
    uint32_t entry_size  # bytes per entry
    uint32_t max_piece   # longest piece an entry holds
    uint32_t max_tokens  # most tokens an entry holds


cdef inline size_t cache_set(const PieceCache* cache, uint64_t h) noexcept nogil:
    """The first entry of the piece's set."""
    return (h >> 24) & cache.mask & ~(<size_t>WAYS - 1)


cdef inline CacheHeader* cache_entry(const PieceCache* cache, size_t i) noexcept nogil:
    return <CacheHeader*>(cache.entries + i * cache.entry_size)


# Each entry also has a one-byte tag in an array of its own (50 KiB for the three tiers by
# default), so that a piece the cache does not hold is known to miss without reading its
# entry, which on a cold pass is in no cache level; a miss prefetches the entry for the
# put that follows the merge. The tag is a filter only (a match still compares the piece);
# its bits (48 to 55 of the hash) are not the entry's index bits (24 and up) for a cache
# of less than 2^24 entries.
cdef inline uint8_t cache_tag(uint64_t h) noexcept nogil:
    return <uint8_t>(h >> 48) | 1


cdef inline unsigned cache_matches(const PieceCache* cache, uint64_t h, size_t first) noexcept nogil:
    """A bit for each way of the set starting at `first` whose tag is the piece's (written
    out for the four ways: GCC kept the loop, at nine instructions a way)."""
    cdef uint8_t tag = cache_tag(h)
    cdef const uint8_t* tags = cache.tags + first
    return (<unsigned>(bpe_load_tag(tags) == tag) | (<unsigned>(bpe_load_tag(tags + 1) == tag) << 1)
            | (<unsigned>(bpe_load_tag(tags + 2) == tag) << 2) | (<unsigned>(bpe_load_tag(tags + 3) == tag) << 3))


cdef inline size_t cache_victim(const PieceCache* cache, uint64_t h, size_t first) noexcept nogil:
    """The entry of the set starting at `first` that a new piece takes."""
    cdef unsigned k
    for k in range(WAYS):
        if bpe_load_tag(&cache.tags[first + k]) == 0:
            return first + k
    return first + ((h >> 21) & (WAYS - 1))


cdef inline bint cache_get(const PieceCache* cache, uint64_t h, const uint8_t* s, size_t n,
                           uint64_t head, RankVec* out) noexcept nogil:
    """Append the ranks of s[:n] (head: its load_head) when the cache holds it (out is
    unchanged when it does not, but for room it may have made)."""
    cdef size_t first = cache_set(cache, h)
    cdef unsigned matches = cache_matches(cache, h, first)
    while matches:  # a tag may match by chance (or a read be torn): then the next way
        if cache_read(cache, first + bpe_ctz64(matches), s, n, head, out):
            return True
        matches &= matches - 1
    return False


# Readers and writers share an entry without a lock, so every access to it is atomic
# (relaxed: plain loads and stores on x86-64 and ARM); a plain memcpy racing with a writer
# would be undefined behaviour, and the compiler could reload a count after checking it.
# The piece is stored as zero-padded little-endian words, compared a word at a time: the
# first against the head the caller has, the rest read by word_at, which has no branch on
# the piece's length (load_le's branches were a tenth of a warm pass's mispredictions on
# Chinese). The ranks are copied eight at a time, whatever their count, into room made for
# that: an entry's last block may read up to 7 ranks past it, into the next entry or the
# CACHE_SLACK bytes after the last, and those are never counted in.
cdef enum:
    COPY_BLOCK = 8       # ranks copied at a time
    CACHE_SLACK = 64     # bytes allocated past a tier's last entry (>= 7 ranks)


cdef inline void copy_block(rank_t* into, const uint32_t* stored) noexcept nogil:
    into[0] = bpe_load_relaxed(&stored[0])
    into[1] = bpe_load_relaxed(&stored[1])
    into[2] = bpe_load_relaxed(&stored[2])
    into[3] = bpe_load_relaxed(&stored[3])
    into[4] = bpe_load_relaxed(&stored[4])
    into[5] = bpe_load_relaxed(&stored[5])
    into[6] = bpe_load_relaxed(&stored[6])
    into[7] = bpe_load_relaxed(&stored[7])


cdef inline bint cache_read(const PieceCache* cache, size_t i, const uint8_t* s, size_t n,
                            uint64_t head, RankVec* out) noexcept nogil:
    """Append the ranks of entry i when it holds s[:n]. They are copied into out's room
    first and counted in only when the entry's sequence shows no writer came meanwhile."""
    cdef CacheHeader* e = cache_entry(cache, i)
    cdef const uint64_t* words = <const uint64_t*>(e + 1)
    cdef const uint32_t* stored = <const uint32_t*>(<const uint8_t*>words + cache.max_piece)
    cdef rank_t* into
    cdef uint32_t before, k, count, shape
    cdef size_t w
    before = bpe_load_acquire(&e.seq)
    if before == 0 or before & 1:
        return False
    shape = bpe_load_relaxed(&e.shape)
    if (shape & 0xFFFF) != n or bpe_load64(&words[0]) != head:
        return False
    for w in range(8, n, 8):
        if bpe_load64(&words[w >> 3]) != word_at(s, n, w):
            return False
    count = shape >> 16
    if count > cache.max_tokens or vec_reserve(out, count + COPY_BLOCK - 1):
        return False
    into = out.data + out.size
    k = 0
    while k < count:
        copy_block(into + k, stored + k)
        k += COPY_BLOCK
    bpe_fence_acquire()
    if bpe_load_relaxed(&e.seq) != before:
        return False
    out.size += count
    return True


cdef inline void cache_put(const PieceCache* cache, uint64_t h, const uint8_t* s, size_t n,
                           const rank_t* tokens, size_t count) noexcept nogil:
    cdef size_t i = cache_victim(cache, h, cache_set(cache, h)), w, k
    cdef CacheHeader* e = cache_entry(cache, i)
    cdef uint64_t* words = <uint64_t*>(e + 1)
    cdef uint32_t* stored = <uint32_t*>(<uint8_t*>words + cache.max_piece)
    cdef uint32_t seq = bpe_load_relaxed(&e.seq)
    if count > cache.max_tokens or seq & 1 or not bpe_cas_acquire(&e.seq, seq, seq + 1):
        return  # too many tokens, or another thread is writing this entry
    bpe_fence_release()
    bpe_store_relaxed(&e.shape, <uint32_t>n | (<uint32_t>count << 16))
    for w in range(0, n, 8):
        bpe_store64(&words[w >> 3], load_le(s + w, n - w))
    for k in range(count):
        bpe_store_relaxed(&stored[k], tokens[k])
    bpe_store_tag(&cache.tags[i], cache_tag(h))                         # under the lock: in
    bpe_store_release(&e.seq, seq + 2 if seq + 2 != 0 else 2)          # the writers' order


cdef inline int cache_init(PieceCache* cache, size_t entries, uint32_t entry_size, uint32_t max_piece) noexcept nogil:
    """Allocate a cache of `entries` (a power of two, WAYS at least) zeroed entries. 0 or -1
    out of memory."""
    cache.mask = entries - 1  # set first: table_free(entries) needs the size
    cache.entry_size = entry_size
    cache.entries = <uint8_t*>table_alloc(entries * entry_size + CACHE_SLACK)
    cache.tags = <uint8_t*>calloc(entries, 1)
    if cache.entries == NULL or cache.tags == NULL:
        return -1
    # Zero (and so fault in) every page now rather than during the first encodes.
    memset(cache.entries, 0, entries * entry_size + CACHE_SLACK)
    cache.max_piece = max_piece
    cache.max_tokens = (entry_size - sizeof(CacheHeader) - max_piece) // sizeof(rank_t)
    return 0


cdef inline void cache_free(PieceCache* cache) noexcept nogil:
    table_free(cache.entries, (cache.mask + 1) * cache.entry_size + CACHE_SLACK)
    free(cache.tags)
    cache.entries = NULL
    cache.tags = NULL


cdef inline int caches_init(PieceCache* caches, size_t entries) noexcept nogil:
    """The engine's three tiers for `entries` (a power of two, or 0 for none): pieces of up to
    24 bytes in `entries` entries of 64 bytes, up to 48 in half as many of 128, up to 256 in
    a sixteenth as many of 512, each tier one set (WAYS entries) at least. 0, or -1 out of
    memory."""
    if entries == 0:
        return 0
    if (cache_init(&caches[0], entries if entries > WAYS else WAYS, 64, SHORT_PIECE)
            or cache_init(&caches[1], entries // 2 if entries // 2 > WAYS else WAYS, 128, CACHE_PIECE)
            or cache_init(&caches[2], entries // 16 if entries // 16 > WAYS else WAYS, 512, LONG_PIECE)):
        return -1
    return 0

