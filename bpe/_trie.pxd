# The backtracking tables' builder (cold, its own extension module).

from bpe._backtrack cimport Backtrack
from bpe._types cimport rank_t
from bpe._vocab cimport Vocab

cdef Backtrack* build_backtrack(const Vocab* v) noexcept nogil
cdef void free_backtrack(Backtrack* bt, rank_t n_ranks) noexcept nogil
