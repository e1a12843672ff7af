# The token table: every token's bytes, a hash table from bytes to rank, direct tables for
# one and two bytes, and a Bloom filter in front of the hash table. Built once, then read
# by any number of threads.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free
from libc.string cimport memcmp, memcpy

from bpe._port cimport bpe_prefetch, table_free
from bpe._types cimport NO_RANK, rank_t

cdef extern from *:
    """
    #define BPE_K0 0x9E3779B97F4A7C15ULL
    #define BPE_K1 0xFF51AFD7ED558CCDULL
    #define BPE_K2 0xC4CEB9FE1A85EC53ULL
    """
    const uint64_t BPE_K0
    const uint64_t BPE_K1
    const uint64_t BPE_K2


cdef struct Slot:
    uint64_t head    # the token's bytes (1 to 8), zero-padded
    rank_t rank      # NO_RANK marks an empty slot
    uint32_t length  # the token's length in bytes


cdef struct WideSlot:
    uint64_t head    # the token's first 8 bytes
    uint64_t second  # bytes 8 to 15, zero-padded: tokens of up to 16 bytes compare here alone
    rank_t rank      # NO_RANK marks an empty slot
    uint32_t length  # the token's length in bytes (9 and more)
    uint64_t offset  # where its bytes start in blob (the same as offset[rank], without that load)


cdef struct Vocab:
    uint8_t* blob        # all token bytes, concatenated
    size_t blob_size     #   its size (table_free needs it)
    uint64_t* offset     # per rank: where its bytes start in blob
    uint32_t* length     # per rank: how many bytes, or NO_RANK where no token has this rank
    rank_t n_ranks       # max rank + 1
    Slot* slots          # the tokens of up to 8 bytes
    uint64_t mask        #   number of slots - 1 (a power of two)
    WideSlot* wide       # the tokens of 9 bytes and more
    uint64_t wide_mask   #   number of wide slots - 1 (a power of two)
    size_t max_len       # longest token, in bytes
    rank_t byte_rank[256]
    rank_t* pair_rank    # 65536 entries: the rank of every two-byte string, or NO_RANK
    uint64_t* filter     # a blocked Bloom filter of the tokens of 3 bytes and more
    uint64_t filter_mask # number of its 64-bit words - 1


# Lookups are bound by cache misses, not hashing: a slot keeps the token's first 8 bytes
# and a wide slot its first 16, so that a hit on a token of up to 16 bytes costs one miss
# and no read of its bytes elsewhere, and the two-byte pairs every merge starts with come
# from a 256 KB direct table (docs/performance.md). The short tokens have a table of
# 16-byte slots of their own, four to a cache line: most pieces of text are short, and a
# probe that goes on to the next slot stays in its line more often than with wide slots.

cdef inline uint64_t load_le(const uint8_t* p, size_t n) noexcept nogil:
    """p[:min(n, 8)] as a little-endian word, zero-padded, by fixed-size loads (a memcpy
    of variable size is a library call)."""
    cdef uint64_t w
    cdef uint32_t a, b
    if n >= 8:
        memcpy(&w, p, 8)
        return w
    if n >= 4:
        memcpy(&a, p, 4)
        memcpy(&b, p + n - 4, 4)  # overlaps a: the shared bytes agree
        return <uint64_t>a | (<uint64_t>b << (8 * (n - 4)))
    if n == 0:
        return 0
    return <uint64_t>p[0] | (<uint64_t>p[n >> 1] << (8 * (n >> 1))) | (<uint64_t>p[n - 1] << (8 * (n - 1)))


cdef inline uint64_t word_at(const uint8_t* p, size_t n, size_t w) noexcept nogil:
    """Bytes w to w + 8 of p[:n] as a little-endian word, zero-padded, for 8 <= n and w < n:
    one load that stays inside p[:n] and a shift, with no branch on how many bytes are left
    (the last word of a piece is read from its last 8 bytes)."""
    cdef size_t at = w if w + 8 <= n else n - 8
    cdef uint64_t v
    memcpy(&v, p + at, 8)
    return v >> (8 * (w - at))


cdef inline uint64_t load_head(const uint8_t* p, size_t n) noexcept nogil:
    return load_le(p, n)


cdef inline uint64_t second_word(const uint8_t* p, size_t n) noexcept nogil:
    """Bytes 8 to 15 of p[:n] as a little-endian word, zero-padded (0 when n <= 8)."""
    return load_le(p + 8, n - 8) if n > 8 else 0


cdef inline uint64_t hash_words(const uint8_t* p, size_t n, uint64_t head, uint64_t second) noexcept nogil:
    """hash_bytes of p[:n] given its first two words (load_head, second_word)."""
    cdef uint64_t h = (head ^ (n * BPE_K1)) * BPE_K2
    cdef uint64_t w
    h ^= h >> 29
    if n > 8:
        h = (h ^ second) * BPE_K1
        h ^= h >> 32
        p += 16
        while n > 16:
            w = load_le(p, n - 16)
            h = (h ^ w) * BPE_K1
            h ^= h >> 32
            p += 8
            n = n - 8
    h *= BPE_K0
    h ^= h >> 32
    return h


cdef inline uint64_t hash_bytes(const uint8_t* p, size_t n, uint64_t head) noexcept nogil:
    return hash_words(p, n, head, second_word(p, n))


cdef inline const void* slot_of(const Vocab* v, size_t n, uint64_t h) noexcept nogil:
    """Where the probe for a string of n bytes with hash h starts (to prefetch it)."""
    if n <= 8:
        return &v.slots[h & v.mask]
    return &v.wide[h & v.wide_mask]


cdef inline rank_t vocab_probe(const Vocab* v, const uint8_t* p, size_t n, uint64_t head,
                               uint64_t h) noexcept nogil:
    """The rank of p[:n] (n >= 1) given its head and hash, or NO_RANK."""
    return vocab_probe_words(v, p, n, head, second_word(p, n), h)


cdef inline rank_t vocab_probe_words(const Vocab* v, const uint8_t* p, size_t n, uint64_t head,
                                     uint64_t second, uint64_t h) noexcept nogil:
    """vocab_probe for a caller that has already read p[:n]'s second word."""
    cdef uint64_t i
    cdef const Slot* slot
    cdef const WideSlot* wide
    if n <= 8:
        i = h & v.mask
        while True:
            slot = &v.slots[i]
            if slot.rank == NO_RANK:
                return NO_RANK
            if slot.length == n and slot.head == head:
                return slot.rank
            i = (i + 1) & v.mask
    i = h & v.wide_mask
    while True:
        wide = &v.wide[i]
        if wide.rank == NO_RANK:
            return NO_RANK
        if wide.length == n and wide.head == head and wide.second == second:
            if n <= 16 or memcmp(v.blob + wide.offset + 16, p + 16, n - 16) == 0:
                return wide.rank
        i = (i + 1) & v.wide_mask


# Most lookups a merge makes are of strings that are not tokens (two in three on Chinese
# text with o200k). Each would be a cache miss in the multi-megabyte slot table; a Bloom
# filter small enough to stay in L2 (two bits in one 64-bit word per token, 128 KiB for
# o200k) answers most of them first.

cdef inline uint64_t filter_bits(uint64_t h) noexcept nogil:
    return (<uint64_t>1 << ((h >> 52) & 63)) | (<uint64_t>1 << ((h >> 58) & 63))


cdef inline bint filter_may_hold(const Vocab* v, uint64_t h) noexcept nogil:
    cdef uint64_t bits = filter_bits(h)
    return v.filter[(h >> 32) & v.filter_mask] & bits == bits


cdef inline rank_t vocab_find_head(const Vocab* v, const uint8_t* p, size_t n, uint64_t head,
                                   size_t hashed_max, uint64_t* h) noexcept nogil:
    """The rest of a lookup once p[:n]'s head is read: the hash (handed on in h when
    n <= hashed_max, else 0), the Bloom filter, the slot."""
    cdef uint64_t second = second_word(p, n)
    cdef uint64_t hash = hash_words(p, n, head, second)
    h[0] = hash if n <= hashed_max else 0
    if n > v.max_len or not filter_may_hold(v, hash):
        return NO_RANK
    return vocab_probe_words(v, p, n, head, second, hash)


cdef inline rank_t vocab_find(const Vocab* v, const uint8_t* p, size_t n, size_t hashed_max,
                              uint64_t* h) noexcept nogil:
    """The rank of the token with bytes p[:n], or NO_RANK. h gets the hash of p[:n] when
    3 <= n <= hashed_max, else 0: a caller who goes on to a table keyed by the same hash
    (the piece cache) then hashes once, whether or not p[:n] is a token."""
    h[0] = 0
    if n < 3:
        if n == 1:
            return v.byte_rank[p[0]]
        if n == 2:
            return v.pair_rank[(<uint32_t>p[0] << 8) | p[1]]
        return NO_RANK
    if n > v.max_len and n > hashed_max:
        return NO_RANK
    return vocab_find_head(v, p, n, load_head(p, n), hashed_max, h)


cdef inline uint64_t cut_head(const uint8_t* p, size_t n) noexcept nogil:
    """load_head of p[:n] (1 <= n) with 8 bytes readable from p: one load, masked, and no
    branch on whether the piece is 1, 2, 3-7 or 8 bytes long (a text's piece lengths are
    the branch predictor's worst case)."""
    cdef uint64_t head
    cdef size_t k = n if n < 8 else 8
    memcpy(&head, p, 8)
    return head & ((~<uint64_t>0) >> (64 - 8 * k))


cdef inline rank_t vocab_lookup(const Vocab* v, const uint8_t* p, size_t n) noexcept nogil:
    """The rank of the token with bytes p[:n], or NO_RANK."""
    cdef uint64_t unused
    return vocab_find(v, p, n, 0, &unused)


cdef inline void prefetch_slot(const Vocab* v, const uint8_t* p, size_t n, bint all_lengths) noexcept nogil:
    """Prefetch the hash-table slot of p[:n] (lengths 1 and 2 have direct tables)."""
    cdef uint64_t head
    if (all_lengths or n >= 3) and n <= v.max_len:
        head = load_head(p, n)
        bpe_prefetch(slot_of(v, n, hash_bytes(p, n, head)))



cdef inline void fill_slots(Vocab* v) noexcept nogil:
    """Insert every token into the hash table (empty, with blob/offset/length filled).
    Bound by cache misses: the slot of the token a few ranks ahead is prefetched."""
    cdef rank_t r
    cdef uint64_t i, head, second, h
    cdef const uint8_t* p
    cdef size_t n
    for r in range(v.n_ranks):
        if r + 8 < v.n_ranks and v.length[r + 8] != NO_RANK:
            prefetch_slot(v, v.blob + v.offset[r + 8], v.length[r + 8], True)
        n = v.length[r]
        if n == NO_RANK:
            continue
        p = v.blob + v.offset[r]
        head = load_head(p, n)
        second = second_word(p, n)
        h = hash_words(p, n, head, second)
        if n <= 8:
            i = h & v.mask
            while v.slots[i].rank != NO_RANK:
                i = (i + 1) & v.mask
            v.slots[i].head = head
            v.slots[i].rank = r
            v.slots[i].length = <uint32_t>n
        else:
            i = h & v.wide_mask
            while v.wide[i].rank != NO_RANK:
                i = (i + 1) & v.wide_mask
            v.wide[i].head = head
            v.wide[i].second = second
            v.wide[i].rank = r
            v.wide[i].length = <uint32_t>n
            v.wide[i].offset = v.offset[r]
        v.filter[(h >> 32) & v.filter_mask] |= filter_bits(h)



cdef inline void vocab_free(Vocab* v) noexcept nogil:
    table_free(v.blob, v.blob_size)
    table_free(v.offset, (<size_t>v.n_ranks + 1) * sizeof(uint64_t))
    table_free(v.length, (<size_t>v.n_ranks + 1) * sizeof(uint32_t))
    table_free(v.slots, (v.mask + 1) * sizeof(Slot))
    table_free(v.wide, (v.wide_mask + 1) * sizeof(WideSlot))
    free(v.pair_rank)
    free(v.filter)
