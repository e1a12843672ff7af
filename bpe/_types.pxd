# Shared C-level types of the compiled engine.

from libc.stdint cimport uint8_t, uint32_t, uint64_t

ctypedef uint32_t rank_t

# A rank that no token has: "this byte string is not in the vocabulary".
cdef extern from *:
    """
    #define BPE_NO_RANK 0xFFFFFFFFu
    """
    const uint32_t NO_RANK "BPE_NO_RANK"


# A growable array of ranks, filled without the GIL.
cdef struct RankVec:
    rank_t* data
    size_t size
    size_t capacity
