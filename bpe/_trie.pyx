# Building the backtracking encoder's tables (cold: once per vocabulary). See
# _backtrack.pxd for what they mean.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy, memset

from bpe._backtrack cimport DA_FREE, NOT_BUILT, Backtrack, BtToken, DaSlot, PAIR_MEMO, TrieBuildNode, compatible
from bpe._merge cimport merge_any
from bpe._port cimport scratch_alloc, scratch_free, scratch_grow, table_alloc, table_free
from bpe._types cimport NO_RANK, RankVec, rank_t
from bpe._vocab cimport Vocab, prefetch_slot, vocab_lookup


cdef Backtrack* build_backtrack(const Vocab* v) noexcept nogil:
    """The tables backtrack_encode needs, or NULL when this vocabulary cannot use it (out of
    memory, a byte without a rank, a token BPE builds from a part of higher rank)."""
    cdef Backtrack* bt
    cdef rank_t r, a, b
    cdef size_t n
    cdef const uint8_t* p
    cdef RankVec scratch = RankVec(NULL, 0, 0)
    cdef bint ok = True
    if v.n_ranks == 0 or v.n_ranks > NOT_BUILT or v.max_len > 0xFFFF:
        return NULL
    for n in range(256):
        if v.byte_rank[n] == NO_RANK:
            return NULL
    bt = <Backtrack*>calloc(1, sizeof(Backtrack))
    if bt == NULL:
        return NULL
    bt.tok = <BtToken*>table_alloc(v.n_ranks * sizeof(BtToken))
    bt.shorter = <rank_t*>table_alloc(v.n_ranks * sizeof(rank_t))
    bt.pairs = <uint64_t*>malloc(PAIR_MEMO * sizeof(uint64_t))
    if bt.tok == NULL or bt.shorter == NULL or bt.pairs == NULL or build_trie(v, bt) or pack_da(v, bt):
        free_backtrack(bt, v.n_ranks)
        return NULL
    memset(bt.pairs, 0xFF, PAIR_MEMO * sizeof(uint64_t))  # b = NO_RANK: never a key
    # 1. In rank order, the last merge that builds each token: the split of its bytes into
    #    two buildable tokens of lower rank that BPE keeps apart until that merge. At most
    #    one split qualifies (BPE's result is unique). The left parts to try are the token's
    #    prefixes that are tokens, longest first: the chain bt.shorter, from the trie.
    for r in range(v.n_ranks):
        bt.tok[r].left = NO_RANK
        bt.tok[r].right = NO_RANK
        bt.tok[r].length = v.length[r]
    for r in range(v.n_ranks):
        if r + 8 < v.n_ranks and bt.shorter[r + 8] != NO_RANK:
            a = bt.shorter[r + 8]  # prefetch the first right part that will be looked up
            prefetch_slot(v, v.blob + v.offset[r + 8] + v.length[a], v.length[r + 8] - v.length[a], False)
        n = v.length[r]
        if n == NO_RANK or n < 2:
            continue
        p = v.blob + v.offset[r]
        a = bt.shorter[r]
        while a != NO_RANK:
            if a < r and (v.length[a] == 1 or bt.tok[a].left != NO_RANK):
                b = vocab_lookup(v, p + v.length[a], n - v.length[a])
                if b < r and (v.length[b] == 1 or bt.tok[b].left != NO_RANK) and compatible(
                        bt, p + v.length[a], a, b, 0):
                    bt.tok[r].left = a
                    bt.tok[r].right = b
                    break
            a = bt.shorter[a]
        if bt.tok[r].left == NO_RANK:
            # Not buildable from lower ranks. If BPE builds it all the same, the vocabulary
            # merges into lower ranks and the rank order above does not hold: give up.
            scratch.size = 0
            if merge_any(v, p, n, &scratch) != 0:
                ok = False
            elif scratch.size == 1 and scratch.data[0] == r:
                ok = False
            if not ok:
                break
    free(scratch.data)
    if not ok:
        free_backtrack(bt, v.n_ranks)
        return NULL
    # 2. Matching only returns buildable tokens: mark the rest in the trie (the compatibility
    #    test still sees them), and make each token's `shorter` the next buildable prefix.
    for r in range(v.n_ranks):
        if v.length[r] > 1 and v.length[r] != NO_RANK and bt.tok[r].left == NO_RANK:
            bt.da[bt.tok[r].slot].token = r | NOT_BUILT
    for r in range(v.n_ranks):
        if v.length[r] == NO_RANK:
            continue
        a = bt.shorter[r]
        while a != NO_RANK and v.length[a] > 1 and bt.tok[a].left == NO_RANK:
            a = bt.shorter[a]
        bt.shorter[r] = a
    for r in range(v.n_ranks):
        bt.tok[r].shorter = bt.shorter[r]
    table_free(bt.shorter, v.n_ranks * sizeof(rank_t))
    bt.shorter = NULL
    return bt


cdef struct TrieWork:
    uint32_t node        # a node whose children are still to be made
    uint32_t depth       # its depth: the tokens in its range share their first `depth` bytes
    uint32_t lo, hi      # its range of the rank array
    rank_t above         # the longest token on the path above it


cdef int build_trie(const Vocab* v, Backtrack* bt) noexcept nogil:
    """Fill bt.build/label/n_nodes with the trie of all tokens, bt.shorter with each token's
    longest proper prefix that is a token, and bt.node_of. Each node's children are made
    together, so they are contiguous and sorted by label; nodes are expanded depth first,
    which keeps the part of the rank array being sorted in the cache."""
    cdef rank_t* ranks = NULL
    cdef rank_t* tmp = NULL
    cdef TrieWork* work = NULL
    cdef TrieWork w
    cdef size_t m = 0, total = 1, top = 1, k, j, lo, n_nodes = 1, first
    cdef size_t counts[257]
    cdef rank_t r, x
    cdef uint8_t c
    for r in range(v.n_ranks):
        if v.length[r] != NO_RANK:
            m += 1
            total += v.length[r]
    ranks = <rank_t*>scratch_alloc(m * sizeof(rank_t))
    tmp = <rank_t*>scratch_alloc(m * sizeof(rank_t))
    work = <TrieWork*>scratch_alloc(total * sizeof(TrieWork))
    bt.build = <TrieBuildNode*>scratch_alloc(total * sizeof(TrieBuildNode))
    bt.label = <uint8_t*>scratch_alloc(total)
    bt.node_of = <uint32_t*>scratch_alloc(v.n_ranks * sizeof(uint32_t))
    if not (ranks and tmp and work and bt.build and bt.label and bt.node_of):
        scratch_free(ranks)
        scratch_free(tmp)
        scratch_free(work)
        return -1
    m = 0
    for r in range(v.n_ranks):
        bt.shorter[r] = NO_RANK
        if v.length[r] != NO_RANK:
            ranks[m] = r
            m += 1
    bt.build[0] = TrieBuildNode(0, NO_RANK, 0)
    bt.label[0] = 0
    work[0] = TrieWork(0, 0, 0, <uint32_t>m, NO_RANK)
    while top:
        top -= 1
        w = work[top]
        lo = w.lo
        # The token that ends at this node (at most one) moves to the front of the range.
        for k in range(w.lo, w.hi):
            if v.length[ranks[k]] == w.depth:
                x = ranks[k]
                ranks[k] = ranks[lo]
                ranks[lo] = x
                bt.build[w.node].token = x
                bt.node_of[x] = w.node
                bt.shorter[x] = w.above
                w.above = x
                lo += 1
                break
        # Sort the rest by their byte at this depth: insertion sort for a few, else counting.
        if w.hi - lo <= 24:
            for k in range(lo + 1, w.hi):
                x = ranks[k]
                c = v.blob[v.offset[x] + w.depth]
                j = k
                while j > lo and v.blob[v.offset[ranks[j - 1]] + w.depth] > c:
                    ranks[j] = ranks[j - 1]
                    j -= 1
                ranks[j] = x
        else:
            memset(counts, 0, sizeof(counts))
            for k in range(lo, w.hi):
                counts[v.blob[v.offset[ranks[k]] + w.depth] + 1] += 1
            for k in range(256):
                counts[k + 1] += counts[k]
            for k in range(lo, w.hi):
                c = v.blob[v.offset[ranks[k]] + w.depth]
                tmp[counts[c]] = ranks[k]
                counts[c] += 1
            memcpy(ranks + lo, tmp, (w.hi - lo) * sizeof(rank_t))
        # One child per byte value present, made together in byte order.
        first = n_nodes
        bt.build[w.node].first = <uint32_t>first
        k = lo
        while k < w.hi:
            c = v.blob[v.offset[ranks[k]] + w.depth]
            j = k + 1
            while j < w.hi and v.blob[v.offset[ranks[j]] + w.depth] == c:
                j += 1
            bt.build[n_nodes] = TrieBuildNode(0, NO_RANK, 0)
            bt.label[n_nodes] = c
            work[top] = TrieWork(<uint32_t>n_nodes, w.depth + 1, <uint32_t>k, <uint32_t>j, w.above)
            top += 1
            n_nodes += 1
            k = j
        bt.build[w.node].count = <uint16_t>(n_nodes - first)
    bt.n_nodes = n_nodes
    scratch_free(ranks)
    scratch_free(tmp)
    scratch_free(work)
    return 0


# Free slots tried for a node's children before they go past the last used slot. Most
# nodes have one child and take the first free slot; 64 tries already pack o200k and
# cl100k with less than 0.1% of the slots empty.
cdef enum:
    DA_TRIES = 64


cdef int da_grow(DaSlot** da, uint32_t** nxt, uint32_t** prv, size_t* cap) noexcept nogil:
    """Double the building arrays. The free list runs from nxt[0] to the sentinel at index
    cap; the old sentinel becomes a free slot and the new slots follow it."""
    cdef size_t k, old = cap[0], grown = 2 * cap[0]
    cdef DaSlot* d
    cdef uint32_t* n
    cdef uint32_t* p
    if grown >= 0x7FFFFFFF:
        return -1
    d = <DaSlot*>scratch_grow(da[0], grown * sizeof(DaSlot))
    if d == NULL:
        return -1
    da[0] = d
    n = <uint32_t*>scratch_grow(nxt[0], (grown + 1) * sizeof(uint32_t))
    if n == NULL:
        return -1
    nxt[0] = n
    p = <uint32_t*>scratch_grow(prv[0], (grown + 1) * sizeof(uint32_t))
    if p == NULL:
        return -1
    prv[0] = p
    for k in range(old, grown):
        d[k] = DaSlot(0, DA_FREE, NO_RANK)
        n[k] = <uint32_t>(k + 1)
        if k > old:
            p[k] = <uint32_t>(k - 1)
    p[grown] = <uint32_t>(grown - 1)
    cap[0] = grown
    return 0


cdef int da_place(const Backtrack* bt, DaSlot** da, uint32_t** nxt, uint32_t** prv,
                  size_t* cap, uint32_t* slot_of, size_t* end) noexcept nogil:
    """Place every node of bt.build in the building arrays (see pack_da). 0 or -1."""
    cdef size_t i, k, f, b, tries
    cdef uint32_t first, count, x, c0
    slot_of[0] = 0
    for i in range(bt.n_nodes):
        x = slot_of[i]
        da[0][x].token = bt.build[i].token
        count = bt.build[i].count
        if count == 0:
            continue  # base 0: slots 0-255 are the root's, so no step leads on
        first = bt.build[i].first
        c0 = bt.label[first]
        f = nxt[0][0]
        tries = 0
        while True:
            if tries == DA_TRIES or f + 256 > cap[0]:
                b = end[0]  # past the last used slot, everything is free
                break
            if f >= c0:
                b = f - c0
                k = 0
                while k < count and da[0][b + bt.label[first + k]].check == DA_FREE:
                    k += 1
                if k == count:
                    break
            f = nxt[0][f]
            tries += 1
        while b + 256 > cap[0]:
            if da_grow(da, nxt, prv, cap):
                return -1
        da[0][x].base = <uint32_t>b
        for k in range(first, first + count):
            f = b + bt.label[k]
            da[0][f].check = x
            slot_of[k] = <uint32_t>f
            nxt[0][prv[0][f]] = nxt[0][f]
            prv[0][nxt[0][f]] = prv[0][f]
            if f >= end[0]:
                end[0] = f + 1
    return 0


cdef int pack_da(const Vocab* v, Backtrack* bt) noexcept nogil:
    """Turn the trie bt.build/label into the double array that longest_match and compatible
    read (bt.da), set each token's slot and free the building tables. Nodes are placed in
    build order, parents before children; each node's children take the first base where
    all their slots are free. 0, or -1 out of memory or too many nodes."""
    cdef size_t cap = 4096, i, end = 1  # doubled as needed (so every vocabulary grows it)
    cdef DaSlot* da = <DaSlot*>scratch_alloc(cap * sizeof(DaSlot))
    # nxt and prv: the free slots in order (see da_grow)
    cdef uint32_t* nxt = <uint32_t*>scratch_alloc((cap + 1) * sizeof(uint32_t))
    cdef uint32_t* prv = <uint32_t*>scratch_alloc((cap + 1) * sizeof(uint32_t))
    cdef uint32_t* slot_of = <uint32_t*>scratch_alloc(bt.n_nodes * sizeof(uint32_t))
    cdef int rc = -1
    if da and nxt and prv and slot_of and bt.build[0].count == 256:
        for i in range(cap):
            da[i] = DaSlot(0, DA_FREE, NO_RANK)
            nxt[i] = <uint32_t>(i + 1)
            prv[i + 1] = <uint32_t>i
        da[0].check = DA_FREE - 1  # the root: no node's child
        # The walk finds the root's children at 1 + byte, so they must land there.
        rc = da_place(bt, &da, &nxt, &prv, &cap, slot_of, &end)
        while rc == 0 and end + 256 > cap:
            rc = da_grow(&da, &nxt, &prv, &cap)
        if rc == 0 and da[0].base != 1:
            rc = -1
        if rc == 0:
            bt.n_da = end + 256  # a step from any used slot stays inside
            bt.da = <DaSlot*>table_alloc(bt.n_da * sizeof(DaSlot))
            if bt.da == NULL:
                rc = -1
            else:
                memcpy(bt.da, da, bt.n_da * sizeof(DaSlot))
                for i in range(v.n_ranks):
                    bt.tok[i].slot = slot_of[bt.node_of[i]] if v.length[i] != NO_RANK else 0
                    bt.tok[i].base = bt.da[bt.tok[i].slot].base
                scratch_free(bt.node_of)
                bt.node_of = NULL
                scratch_free(bt.build)
                scratch_free(bt.label)
                bt.build = NULL
                bt.label = NULL
    scratch_free(da)
    scratch_free(nxt)
    scratch_free(prv)
    scratch_free(slot_of)
    return rc


cdef void free_backtrack(Backtrack* bt, rank_t n_ranks) noexcept nogil:
    if bt != NULL:
        table_free(bt.tok, n_ranks * sizeof(BtToken))
        table_free(bt.shorter, n_ranks * sizeof(rank_t))
        table_free(bt.da, bt.n_da * sizeof(DaSlot))
        scratch_free(bt.build)
        scratch_free(bt.label)
        scratch_free(bt.node_of)
        free(bt.pairs)
        free(bt)

