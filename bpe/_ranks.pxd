# The rank table (bpe/_ranks.pyx): what CoreBPE is built from.

from libc.stdint cimport uint8_t, uint32_t, uint64_t

from bpe._types cimport rank_t
from bpe._vocab cimport Vocab


cdef class RankTable:
    cdef uint8_t* blob       # the tokens' bytes, one after another
    cdef uint64_t* offset    # per entry: where its bytes start in blob
    cdef uint32_t* length    # per entry: how many bytes
    cdef rank_t* rank        # per entry: its rank
    cdef uint32_t* by_rank   # entry + 1 of each rank (0: none), built on first use
    cdef readonly size_t count
    cdef readonly size_t blob_size
    cdef readonly uint64_t max_rank

    cdef int allocate(self, size_t count, size_t blob_size) except -1
    cdef bytes token(self, size_t k)


cdef RankTable table_of_vocab(const Vocab* v)
