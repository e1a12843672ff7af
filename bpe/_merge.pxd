# BPE merge of one piece, by the rule itself: the O(n^2) scan for short pieces and a heap
# over adjacent pairs for long ones. (_backtrack.pxd has the linear encoder that replaces
# both where the vocabulary allows it.)

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc

from bpe._heap cimport Heap, HeapItem, heap_pop, heap_push
from bpe._types cimport NO_RANK, RankVec, rank_t, vec_push
from bpe._vocab cimport Vocab, vocab_lookup

#
# The result must equal tiktoken's: repeatedly merge the adjacent pair whose bytes have the
# lowest rank, the leftmost one among equal ranks. Short pieces use tiktoken's own O(n^2)
# scan over a small array (it touches little memory and wins below a few dozen bytes);
# longer ones use a binary heap of (rank, start) keys with lazy deletion over a linked list
# of parts, O(n log n). Pieces of BACKTRACK_SHORT bytes and more use the linear
# backtracking encoder further down when the vocabulary allows it, and these two otherwise.

cdef enum:
    SMALL_PIECE = 48       # the O(n^2) scan up to here, the heap above
    LARGE_ON_STACK = 256   # the heap merge's arrays on the stack up to here

cdef inline int merge_small(const Vocab* v, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    cdef size_t start[SMALL_PIECE + 1]
    cdef rank_t part_rank[SMALL_PIECE]
    cdef rank_t pair_rank[SMALL_PIECE]
    cdef size_t m = n, k, best
    cdef rank_t r, best_rank
    if n == 0:
        return 0  # an empty piece (a pattern that matches the empty string) has no tokens
    for k in range(n + 1):
        start[k] = k
    for k in range(n):
        part_rank[k] = v.byte_rank[s[k]]
    for k in range(1, n):  # not range(n - 1): n is unsigned
        pair_rank[k - 1] = vocab_lookup(v, s + k - 1, 2)
    while m > 1:
        best_rank = NO_RANK
        best = 0
        for k in range(m - 1):
            if pair_rank[k] < best_rank:
                best_rank = pair_rank[k]
                best = k
        if best_rank == NO_RANK:
            break
        # Part best absorbs part best + 1.
        part_rank[best] = best_rank
        for k in range(best + 1, m - 1):
            start[k] = start[k + 1]
            part_rank[k] = part_rank[k + 1]
            pair_rank[k] = pair_rank[k + 1]
        start[m - 1] = start[m]
        m -= 1
        if best + 1 < m:
            pair_rank[best] = vocab_lookup(v, s + start[best], start[best + 2] - start[best])
        if best > 0:
            pair_rank[best - 1] = vocab_lookup(v, s + start[best - 1], start[best + 1] - start[best - 1])
    for k in range(m):
        if part_rank[k] == NO_RANK:
            return -2 - <int>s[start[k]]
        if vec_push(out, part_rank[k]):
            return -1
    return 0


cdef inline int merge_large(const Vocab* v, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    # Parts are named by the byte where they start; nxt/prv link the live ones. One block
    # holds the heap (keys: a pair's rank, then its start) and the four arrays: on the
    # stack up to LARGE_ON_STACK bytes of piece.
    cdef uint64_t local[8 * LARGE_ON_STACK + 9]
    cdef uint64_t* block = &local[0]
    cdef Heap heap
    cdef uint32_t* nxt
    cdef uint32_t* prv
    cdef rank_t* part_rank
    cdef rank_t* pair_rank
    cdef size_t i, j, after, k
    cdef HeapItem top
    cdef rank_t r
    cdef int rc = 0
    if n > LARGE_ON_STACK:
        block = <uint64_t*>malloc((8 * n + 9) * sizeof(uint64_t))
        if block == NULL:
            return -1
    heap = Heap(<HeapItem*>block, 0, 3 * n + 4, True)  # at most 3 pushes a merge, n - 1 merges
    nxt = <uint32_t*>(block + 2 * (3 * n + 4))  # then 4n + 2 uint32s
    prv = nxt + n + 1
    part_rank = prv + n + 1
    pair_rank = part_rank + n
    for i in range(n):
        nxt[i] = i + 1
        prv[i] = i - 1 if i else 0
        part_rank[i] = v.byte_rank[s[i]]
        pair_rank[i] = vocab_lookup(v, s + i, 2) if i + 1 < n else NO_RANK
        if pair_rank[i] != NO_RANK:
            heap_push(&heap, (<uint64_t>pair_rank[i] << 32) | i, 0)
    while heap.size:
        top = heap_pop(&heap)
        i = <size_t><uint32_t>top.prio
        r = <rank_t>(top.prio >> 32)
        if pair_rank[i] != r:
            continue  # stale: part i has changed since this key was pushed
        # 1. part i absorbs the part after it
        j = nxt[i]
        after = nxt[j]
        part_rank[i] = r
        nxt[i] = after
        if after < n:
            prv[after] = i
        pair_rank[j] = NO_RANK
        # 2. the pair that now starts at i
        pair_rank[i] = vocab_lookup(v, s + i, nxt[after] - i) if after < n else NO_RANK
        if pair_rank[i] != NO_RANK:
            heap_push(&heap, (<uint64_t>pair_rank[i] << 32) | i, 0)
        # 3. the pair that ends with part i
        if i > 0:
            k = prv[i]
            pair_rank[k] = vocab_lookup(v, s + k, after - k)
            if pair_rank[k] != NO_RANK:
                heap_push(&heap, (<uint64_t>pair_rank[k] << 32) | k, 0)
    i = 0
    while i < n:
        if part_rank[i] == NO_RANK:
            rc = -2 - <int>s[i]
            break
        if vec_push(out, part_rank[i]):
            rc = -1
            break
        i = nxt[i]
    if block != &local[0]:
        free(block)
    return rc


cdef inline int merge_any(const Vocab* v, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    """BPE by the rule on a piece of any length: the O(n^2) scan up to SMALL_PIECE bytes
    (it touches little memory and wins there), the heap above. 0, -1 out of memory, or
    -2-b when byte b has no rank."""
    if n <= SMALL_PIECE:
        return merge_small(v, s, n, out)
    return merge_large(v, s, n, out)
