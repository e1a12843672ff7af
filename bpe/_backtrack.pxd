# Long pieces: leftmost-longest matching with backtracking (linear time). The tables are
# built by bpe/_trie.pyx.

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from bpe._port cimport bpe_load64, bpe_store64
from bpe._types cimport NO_RANK, RankVec, rank_t, vec_push
from bpe._vocab cimport BPE_K2

cdef extern from *:
    """
    #define BPE_DA_FREE 0xFFFFFFFFu
    #define BPE_NOT_BUILT 0x80000000u
    """
    const uint32_t NOT_BUILT "BPE_NOT_BUILT"  # DaSlot.token: a token BPE cannot build
    const uint32_t DA_FREE "BPE_DA_FREE"  # the check of a slot that holds no node


# The trie as matching reads it: a double array. Node x's child for byte c is slot
# da[x].base + c, and it is there when that slot's check is x, so a step is one add, one
# load and one compare, whatever the number of children.
cdef struct DaSlot:
    uint32_t base        # children of this node are at base + byte
    uint32_t check       # the parent's slot (DA_FREE: no node here)
    rank_t token         # the token this path spells (| NOT_BUILT if BPE cannot build it),
                         #   or NO_RANK


# What matching and the compatibility test read about a token, together: one cache line
# where separate arrays cost up to four. The base is a copy of the node's, so that a walk
# from the token's node starts without a dependent load.
cdef struct BtToken:
    rank_t left          # the two tokens whose merge builds it (the last merge BPE makes on
    rank_t right         #   its bytes); NO_RANK for bytes and unbuildable tokens
    uint32_t slot        # its node in the double array
    uint32_t base        #   and that node's base (saves a dependent load)
    uint32_t length      # its length in bytes (NO_RANK: no token has this rank)
    rank_t shorter       # the longest buildable token that is a proper prefix of it


cdef struct TrieBuildNode:
    uint32_t first       # index of the first child
    rank_t token
    uint16_t count       # number of children


cdef struct Backtrack:
    BtToken* tok         # per rank: its split, its trie node and its length
    rank_t* shorter      # per rank: BtToken.shorter, while building
    DaSlot* da           # the trie of all tokens; slot 0 is the root, whose child for byte
    size_t n_da          #   c is slot 1 + c (every byte is a token)
    size_t n_nodes       # while building: the number of trie nodes
    TrieBuildNode* build  # the trie while building: per node, its children and token
    uint8_t* label       #   and the byte on the edge into it
    uint32_t* node_of    # per rank: its node (only while building)
    uint64_t* pairs      # PAIR_MEMO answers of compatible(a, b): see compatible_memo



#
# BPE's result on a piece is the one token sequence in which every adjacent pair is
# "compatible": BPE run on the bytes of the two tokens alone gives back those two tokens
# (the encoding of any span of the result is the result's tokens on that span). So the
# encoder takes the longest token that matches at the current position; when it is not
# compatible with the token before it, it tries the next shorter token that matches there;
# when none is, it drops the token before and tries shorter ones in its place. A bit per
# byte position records the positions found to be dead ends (whatever token reaches a
# position is the same in every compatible sequence, so a dead end stays one), which keeps
# the work linear in the piece length.
#
# Only tokens that BPE can build are matched: t is buildable when BPE on t's bytes gives t,
# and then the last merge it makes joins two buildable tokens left[t] + right[t]. The
# compatibility test below relies on every merge making a token of higher rank than its
# two parts, so that ranks give the order in which the merges happen; build_backtrack()
# checks this for the vocabulary and leaves long pieces to merge_large when it fails.

# Where backtracking replaces merging (measured: docs/performance.md).
cdef enum:
    BACKTRACK_SHORT = 13       # below this the O(n^2) scan is cheaper
    BACKTRACK_SHORT_UTF8 = 6   # for pieces ending in a multi-byte code point (CJK words)

cdef inline bint compatible(const Backtrack* bt, const uint8_t* p, rank_t a, rank_t b,
                            rank_t limit) noexcept nogil:
    """Whether BPE on the bytes of a then b (b starting at p) keeps the boundary at p.

    Replays the merges that build a and b backwards, newest first. At each step the part of
    a that touches the boundary and the part of b that touches it sit side by side until the
    next merge that changes one of them, which has rank `limit`; if their concatenation is a
    token of lower rank (the left merge wins a tie), BPE would merge across the boundary.
    The concatenation is looked up in the trie, from the node of a's part over the bytes of
    b's part: most such paths end after a byte or two, where a hash of the bytes would cost
    a few dozen instructions and a probe."""
    cdef const BtToken* ta = &bt.tok[a]
    cdef const BtToken* tb = &bt.tok[b]
    cdef const DaSlot* da = bt.da
    cdef uint32_t node, child, k
    cdef rank_t c
    while True:
        if limit:
            node = ta.slot
            child = ta.base + p[0]
            k = 0
            while da[child].check == node:
                node = child
                k += 1
                if k == tb.length:
                    break
                child = da[node].base + p[k]
            if k == tb.length:
                c = da[node].token
                if c != NO_RANK and (c & ~NOT_BUILT) < limit:
                    return False
        if tb.left != NO_RANK and (ta.left == NO_RANK or b >= a):
            limit = b + 1  # b was built last: before that its left part touched the boundary
            b = tb.left
            tb = &bt.tok[b]
        elif ta.left != NO_RANK:
            limit = a
            a = ta.right
            ta = &bt.tok[a]
        else:
            return True  # two single bytes: the state BPE starts from


# Adjacent token pairs repeat in text as words do, and replaying their merges costs a dozen
# table lookups. A direct-mapped memo keeps the last answer per slot as one 64-bit word,
# a << 32 | b with bit 63 set when compatible (so a must be below 2**31), read and written
# whole: threads share it without a lock, and a slot holding another pair is a miss.
cdef enum:
    PAIR_MEMO = 8192  # 64 KiB of memo, shared by threads
    PAIR_SHIFT = 51   # 64 - log2(PAIR_MEMO)

cdef inline bint compatible_memo(const Backtrack* bt, const uint8_t* p, rank_t a,
                                 rank_t b) noexcept nogil:
    """compatible(bt, p, a, b, NO_RANK), remembered."""
    cdef uint64_t key, found
    cdef uint64_t* slot
    cdef bint ok
    if a >> 31:
        return compatible(bt, p, a, b, NO_RANK)
    key = (<uint64_t>a << 32) | b
    slot = &bt.pairs[(key * BPE_K2) >> PAIR_SHIFT]
    found = bpe_load64(slot)
    if (found & ~(<uint64_t>1 << 63)) == key:
        return <bint>(found >> 63)
    ok = compatible(bt, p, a, b, NO_RANK)
    bpe_store64(slot, key | (<uint64_t>ok << 63))
    return ok


cdef inline rank_t longest_match(const Backtrack* bt, const uint8_t* s, size_t i,
                                 size_t n) noexcept nogil:
    """The longest buildable token that s[i:n] (i < n) starts with."""
    cdef const DaSlot* da = bt.da
    cdef uint32_t node = 1 + s[i], child  # every byte is a token
    cdef rank_t best = da[node].token
    i += 1
    while i < n:
        child = da[node].base + s[i]
        if da[child].check != node:
            break
        node = child
        if da[node].token < NOT_BUILT:  # neither NO_RANK nor an unbuildable token
            best = da[node].token
        i += 1
    return best


cdef inline int backtrack_encode(const Backtrack* bt, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    """Append the BPE ranks of s[:n]. 0 on success, -1 out of memory, -3 no encoding found
    (cannot happen for a vocabulary build_backtrack accepted; the caller then merges)."""
    cdef size_t start = out.size, pos = 0, end
    cdef uint64_t local[64]
    cdef uint64_t* live = &local[0]
    if n >= 4096:
        live = <uint64_t*>malloc(((n >> 6) + 1) * sizeof(uint64_t))
    cdef rank_t t, last
    if live == NULL:
        return -1
    if n == 0:
        return 0
    memset(live, 0xFF, ((n >> 6) + 1) * sizeof(uint64_t))
    t = longest_match(bt, s, 0, n)
    while pos < n:
        last = out.data[out.size - 1] if out.size > start else NO_RANK
        end = pos + bt.tok[t].length
        if (live[end >> 6] >> (end & 63)) & 1 and (
                last == NO_RANK or compatible_memo(bt, s + pos, last, t)):
            if vec_push(out, t):
                if live != &local[0]:
                    free(live)
                return -1
            pos = end
            if pos < n:
                t = longest_match(bt, s, pos, n)
        elif bt.tok[t].shorter != NO_RANK:
            t = bt.tok[t].shorter
        elif last != NO_RANK:
            # Nothing fits at pos after `last`: pos is a dead end; try shorter tokens for last.
            live[pos >> 6] &= ~(<uint64_t>1 << (pos & 63))
            out.size -= 1
            pos -= bt.tok[last].length
            t = last
        else:
            break
    if live != &local[0]:
        free(live)
    if pos != n:
        out.size = start
        return -3
    return 0

