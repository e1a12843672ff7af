# Shared C-level types of the compiled engine, and the one growth helper.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport realloc

ctypedef uint32_t rank_t

# A rank that no token has: "this byte string is not in the vocabulary".
cdef extern from *:
    """
    #define BPE_NO_RANK 0xFFFFFFFFu
    """
    const uint32_t NO_RANK "BPE_NO_RANK"


cdef inline void* grow(void* data, size_t* capacity, size_t item, size_t first,
                       size_t least=0) noexcept nogil:
    """``data`` (``capacity[0]`` items of ``item`` bytes) moved to a block twice as large
    (``first`` items when empty), or of ``least`` items when that is more; ``capacity``
    updated; NULL out of memory, and then ``data`` and ``capacity`` are untouched, so
    nothing is lost.

    >>> p = grow(p, &cap, sizeof(rank_t), 64)   # then: if p == NULL: fail, the old p intact
    """
    cdef size_t cap = capacity[0] * 2 if capacity[0] else first
    cdef void* moved
    if cap < capacity[0]:
        return NULL
    if cap < least:
        cap = least
    if cap > (<size_t>-1) // item:
        return NULL
    moved = realloc(data, cap * item)
    if moved != NULL:
        capacity[0] = cap
    return moved


# A growable array of ranks, filled without the GIL.
cdef struct RankVec:
    rank_t* data
    size_t size
    size_t capacity


cdef inline int vec_reserve(RankVec* v, size_t extra) noexcept nogil:
    """Room for `extra` more ranks, in one move (to twice the capacity, or more when that is
    not enough): 0, or -1 out of memory with v intact."""
    cdef rank_t* data
    if v.capacity - v.size >= extra:
        return 0
    if extra > (<size_t>-1) - v.size:
        return -1
    data = <rank_t*>grow(v.data, &v.capacity, sizeof(rank_t), 64, v.size + extra)
    if data == NULL:
        return -1
    v.data = data
    return 0


cdef inline int vec_push(RankVec* v, rank_t r) noexcept nogil:
    if v.size == v.capacity and vec_reserve(v, 1):
        return -1
    v.data[v.size] = r
    v.size += 1
    return 0


cdef inline size_t array_bytes(size_t count, size_t item) except? 0:
    """count * item, or OverflowError when that does not fit in size_t (32-bit targets)."""
    if item and count > (<size_t>-1) // item:
        raise OverflowError(f"a table of {count:,} entries of {item} bytes does not fit in memory")
    return count * item
