# Piece counting for the trainer: a hash map from piece bytes to their count.

from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy, memset

from bpe._vocab cimport hash_bytes, load_head

# ---------------------------------------------------------------------------------------
# Piece counting for the trainer: a hash map from piece bytes to their count, filled
# without the GIL. A piece seen for the first time is copied into the map's arena, so that
# each text's UTF-8 can be freed as soon as it is counted: the corpus is never held twice.

cdef struct PieceCount:
    const uint8_t* p
    uint64_t h
    uint32_t n
    int64_t count


cdef struct PieceMap:
    PieceCount* slots
    uint64_t mask
    uint64_t used
    uint8_t* block       # the arena's newest block (its first 8 bytes: the previous block)
    size_t free_at       #   where its unused part starts,
    size_t block_size    #   and its size


cdef enum:
    ARENA_BLOCK = 1 << 20  # the arena grows a megabyte at a time


cdef inline const uint8_t* piece_map_keep(PieceMap* m, const uint8_t* p, size_t n) noexcept nogil:
    """A copy of p[:n] in the arena, or NULL out of memory."""
    cdef uint8_t* block
    cdef size_t size
    if m.block == NULL or m.free_at + n > m.block_size:
        size = ARENA_BLOCK if n + 8 <= ARENA_BLOCK else n + 8
        block = <uint8_t*>malloc(size)
        if block == NULL:
            return NULL
        (<uint8_t**>block)[0] = m.block
        m.block = block
        m.free_at = 8
        m.block_size = size
    memcpy(m.block + m.free_at, p, n)
    m.free_at += n
    return m.block + m.free_at - n


cdef inline void piece_map_free(PieceMap* m) noexcept nogil:
    cdef uint8_t* block = m.block
    cdef uint8_t* previous
    while block != NULL:
        previous = (<uint8_t**>block)[0]
        free(block)
        block = previous
    m.block = NULL
    free(m.slots)
    m.slots = NULL


cdef inline int piece_map_grow(PieceMap* m) noexcept nogil:
    cdef uint64_t old_n = m.mask + 1, new_n = old_n * 2, i, j
    cdef PieceCount* fresh = <PieceCount*>malloc(new_n * sizeof(PieceCount))
    if fresh == NULL:
        return -1
    memset(fresh, 0, new_n * sizeof(PieceCount))
    for i in range(old_n):
        if m.slots[i].p != NULL:
            j = m.slots[i].h & (new_n - 1)
            while fresh[j].p != NULL:
                j = (j + 1) & (new_n - 1)
            fresh[j] = m.slots[i]
    free(m.slots)
    m.slots = fresh
    m.mask = new_n - 1
    return 0


cdef inline int piece_map_init(PieceMap* m) noexcept nogil:
    """An empty map (1,024 slots). 0, or -1 out of memory."""
    memset(m, 0, sizeof(PieceMap))
    m.mask = 1023
    m.slots = <PieceCount*>calloc(1024, sizeof(PieceCount))
    return 0 if m.slots != NULL else -1


cdef inline int piece_map_add(PieceMap* m, const uint8_t* p, size_t n) noexcept nogil:
    return piece_map_add_count(m, p, n, 1)


cdef inline int piece_map_add_count(PieceMap* m, const uint8_t* p, size_t n, int64_t count) noexcept nogil:
    """Add count occurrences of p[:n]. 0, or -1 out of memory."""
    cdef uint64_t h = hash_bytes(p, n, load_head(p, n)), i
    if (m.used + 1) * 2 > m.mask + 1 and piece_map_grow(m):
        return -1
    i = h & m.mask
    while m.slots[i].p != NULL:
        if m.slots[i].h == h and m.slots[i].n == n and memcmp(m.slots[i].p, p, n) == 0:
            m.slots[i].count += count
            return 0
        i = (i + 1) & m.mask
    m.slots[i].p = piece_map_keep(m, p, n)
    if m.slots[i].p == NULL:
        return -1
    m.slots[i].h = h
    m.slots[i].n = <uint32_t>n
    m.slots[i].count = count
    m.used += 1
    return 0


cdef inline int piece_map_prune(PieceMap* m, int64_t min_count) noexcept nogil:
    """Drop the pieces counted fewer than min_count times, into a fresh table and arena (the
    dropped pieces' bytes are freed too). 0, or -1 out of memory (m is then unchanged)."""
    cdef PieceMap kept
    cdef uint64_t slot
    if piece_map_init(&kept):
        return -1
    for slot in range(m.mask + 1):
        if m.slots[slot].p != NULL and m.slots[slot].count >= min_count:
            if piece_map_add_count(&kept, m.slots[slot].p, m.slots[slot].n, m.slots[slot].count):
                piece_map_free(&kept)
                return -1
    piece_map_free(m)
    m[0] = kept
    return 0
