# The compiled BPE trainer: the merge loop over distinct pieces.
#
# Same rule as bpe/_reference.py's train_merges (the tests hold it to that): take the
# adjacent pair with the highest count, ties to the smallest (left id, right id), merge its
# non-overlapping occurrences left to right. Instead of recounting, it keeps every pair's
# count and the pieces it occurs in up to date after each merge, and takes the best pair
# from a heap with lazy deletion:
#
# 1. Each distinct piece is an array of ids (its bytes at first) with its count.
# 2. A hash map holds, per pair, its total count and the pieces it occurs in.
# 3. The heap holds (count, pair) entries. Counts of existing pairs only fall (a merge
#    creates pairs with the new id and removes others), so an entry whose count is stale
#    is re-pushed with the current count when it reaches the top.
# 4. A merge visits only the pieces that hold the pair, rewrites them, and applies the
#    count changes of each rewrite: for x a b y -> x c y, (x,a) (a,b) (b,y) lose the
#    piece's count and (x,c) (c,y) gain it.

from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memset

from bpe._heap cimport Heap, heap_pop, heap_push
from bpe._port cimport bpe_prefetch
from bpe._types cimport grow


cdef struct PairEntry:
    uint64_t key        # left << 32 | right; EMPTY when the slot is free
    int64_t count
    uint32_t* words     # indices of the pieces holding the pair (may repeat or be stale)
    uint32_t n_words
    uint32_t cap_words
    uint32_t stamp      # the merge (+ 1) that last put this pair in the touched list


cdef extern from *:
    """
    #define BPE_EMPTY_PAIR 0xFFFFFFFFFFFFFFFFULL
    """
    const uint64_t EMPTY "BPE_EMPTY_PAIR"


cdef inline uint64_t mix(uint64_t k) noexcept nogil:
    k ^= k >> 33
    k *= <uint64_t>0xff51afd7ed558ccd
    k ^= k >> 33
    return k


cdef class _PairMap:
    cdef PairEntry* slots
    cdef uint64_t mask
    cdef uint64_t used

    def __cinit__(self):
        self.mask = (1 << 16) - 1
        self.slots = <PairEntry*>malloc((self.mask + 1) * sizeof(PairEntry))
        if self.slots == NULL:
            raise MemoryError()
        self._clear(self.slots, self.mask + 1)
        self.used = 0

    cdef void _clear(self, PairEntry* slots, uint64_t n) noexcept nogil:
        cdef uint64_t i
        memset(slots, 0, n * sizeof(PairEntry))
        for i in range(n):
            slots[i].key = EMPTY

    def __dealloc__(self):
        cdef uint64_t i
        if self.slots != NULL:
            for i in range(self.mask + 1):
                free(self.slots[i].words)
            free(self.slots)

    cdef PairEntry* get(self, uint64_t key, bint create) noexcept nogil:
        cdef uint64_t i
        if create and (self.used + 1) * 2 > self.mask + 1:
            if self._grow():
                return NULL
        i = mix(key) & self.mask
        while self.slots[i].key != EMPTY:
            if self.slots[i].key == key:
                return &self.slots[i]
            i = (i + 1) & self.mask
        if not create:
            return NULL
        self.slots[i].key = key
        self.used += 1
        return &self.slots[i]

    cdef int _grow(self) noexcept nogil:
        cdef uint64_t old_n = self.mask + 1, new_n = old_n * 2, i, j
        cdef PairEntry* old = self.slots
        cdef PairEntry* new = <PairEntry*>malloc(new_n * sizeof(PairEntry))
        if new == NULL:
            return -1
        self._clear(new, new_n)
        for i in range(old_n):
            if old[i].key != EMPTY:
                j = mix(old[i].key) & (new_n - 1)
                while new[j].key != EMPTY:
                    j = (j + 1) & (new_n - 1)
                new[j] = old[i]
        free(old)
        self.slots = new
        self.mask = new_n - 1
        return 0


cdef inline int add_word(PairEntry* e, uint32_t w) noexcept nogil:
    cdef size_t cap
    cdef uint32_t* data
    if e.n_words and e.words[e.n_words - 1] == w:
        return 0
    if e.n_words == e.cap_words:
        cap = e.cap_words
        if cap >> 31:  # n_words is 32 bits: no more pieces than that per pair
            return -1
        data = <uint32_t*>grow(e.words, &cap, sizeof(uint32_t), 4)
        if data == NULL:
            return -1
        e.words = data
        e.cap_words = <uint32_t>cap
    e.words[e.n_words] = w
    e.n_words += 1
    return 0


# The heap (bpe/_heap.pxd) orders by priority then key, smallest first: a pair's priority
# is UINT64_MAX - count, so the largest count comes first and the smallest pair among equal
# counts.
cdef inline int push_pair(Heap* h, int64_t count, uint64_t key) noexcept nogil:
    return heap_push(h, <uint64_t>-1 - <uint64_t>count, key)


cdef inline int64_t top_count(const Heap* h) noexcept nogil:
    return <int64_t>(<uint64_t>-1 - h.items[0].prio)


cdef struct KeyVec:
    uint64_t* data
    size_t size
    size_t cap


cdef inline int bump(_PairMap pairs, uint32_t left, uint32_t right, int64_t delta,
                     uint32_t word, KeyVec* touched, uint32_t stamp) noexcept nogil:
    """Add delta to a pair's count; a gaining pair records the piece and is marked touched
    (once per merge: each touched pair gets one new heap entry, not one per occurrence)."""
    cdef uint64_t key = (<uint64_t>left << 32) | right
    cdef PairEntry* e = pairs.get(key, delta > 0)
    cdef uint64_t* data
    if e == NULL:
        return -1 if delta > 0 else 0
    e.count += delta
    if delta > 0:
        if add_word(e, word):
            return -1
        if e.stamp == stamp:
            return 0
        e.stamp = stamp
        if touched.size == touched.cap:
            data = <uint64_t*>grow(touched.data, &touched.cap, sizeof(uint64_t), 256)
            if data == NULL:
                return -1
            touched.data = data
        touched.data[touched.size] = key
        touched.size += 1
    return 0


def train_merges(list pieces, list counts, size_t n_merges, progress=None, int64_t min_frequency=1):
    """Merges of byte-level BPE over distinct pieces (bytes) with their counts.

    Returns a list of (left id, right id), the k-th creating id 256 + k; fewer than
    n_merges when no pair occurs min_frequency times any more. ``progress`` is called now
    and then with the number of merges done.
    """
    cdef size_t n_words = len(pieces), w, k, step, t
    cdef uint32_t** ids = <uint32_t**>malloc((n_words + 1) * sizeof(uint32_t*))
    cdef uint32_t* flat = NULL
    cdef size_t total
    cdef uint32_t* lengths = <uint32_t*>malloc((n_words + 1) * sizeof(uint32_t))
    cdef int64_t* weights = <int64_t*>malloc((n_words + 1) * sizeof(int64_t))
    cdef uint32_t* seen = <uint32_t*>malloc((n_words + 1) * sizeof(uint32_t))
    cdef KeyVec touched
    cdef _PairMap pairs = _PairMap()
    cdef Heap heap
    cdef PairEntry* e
    cdef uint64_t key
    cdef uint32_t a, b, c, n, i, j, word, idx, stamp
    cdef uint32_t* seq
    cdef int64_t count, weight
    cdef const unsigned char* data
    cdef bint failed = False
    cdef list merges = []
    memset(&heap, 0, sizeof(Heap))
    memset(&touched, 0, sizeof(KeyVec))
    if ids == NULL or lengths == NULL or weights == NULL or seen == NULL:
        raise MemoryError()
    memset(ids, 0, (n_words + 1) * sizeof(uint32_t*))
    try:
        # 1. pieces as id arrays, one after another in one block (a merge visits the pieces
        #    that hold its pair in the order they were counted: in order in memory too)
        total = 0
        for w in range(n_words):
            total += len(<bytes?>pieces[w])
        flat = <uint32_t*>malloc((total + 1) * sizeof(uint32_t))
        if flat == NULL:
            raise MemoryError()
        total = 0
        for w in range(n_words):
            piece = pieces[w]
            data = piece
            n = len(piece)
            ids[w] = flat + total
            total += n
            for k in range(n):
                ids[w][k] = data[k]
            lengths[w] = n
            weights[w] = counts[w]
            seen[w] = 0xFFFFFFFF
        with nogil:
            # 2. count every pair, 3. heap them
            for w in range(n_words):
                for k in range(lengths[w] - 1 if lengths[w] else 0):
                    e = pairs.get((<uint64_t>ids[w][k] << 32) | ids[w][k + 1], True)
                    if e == NULL or add_word(e, <uint32_t>w):
                        failed = True
                        break
                    e.count += weights[w]
                if failed:
                    break
            if not failed:
                for k in range(pairs.mask + 1):
                    if pairs.slots[k].key != EMPTY and pairs.slots[k].count > 0:
                        if push_pair(&heap, pairs.slots[k].count, pairs.slots[k].key):
                            failed = True
                            break
        if failed:
            raise MemoryError()
        step = 0
        while step < n_merges:
            with nogil:
                # the best pair whose heap entry is current
                key = 0
                count = 0
                while heap.size:
                    count = top_count(&heap)
                    key = heap_pop(&heap).key
                    e = pairs.get(key, False)
                    if e != NULL and e.count == count:
                        break
                    if e != NULL and e.count > 0:
                        if push_pair(&heap, e.count, key):
                            failed = True
                            break
                    count = 0
                if count < min_frequency:
                    count = 0
                if count > 0 and not failed:
                    # 4. rewrite every piece that holds the pair
                    a = <uint32_t>(key >> 32)
                    b = <uint32_t>key
                    c = <uint32_t>(256 + step)
                    stamp = <uint32_t>(step + 1)
                    touched.size = 0
                    idx = 0
                    while not failed:
                        e = pairs.get(key, False)  # again: the map may have grown
                        if idx >= e.n_words:
                            break
                        word = e.words[idx]
                        idx += 1
                        if idx + 1 < e.n_words:  # the piece after next: its ids miss the caches
                            bpe_prefetch(ids[e.words[idx + 1]])
                        if seen[word] == step:
                            continue
                        seen[word] = <uint32_t>step
                        seq = ids[word]
                        n = lengths[word]
                        weight = weights[word]
                        i = 0
                        j = 0
                        while i < n:
                            if i + 1 < n and seq[i] == a and seq[i + 1] == b:
                                # x a b y -> x c y; x is already rewritten, y not yet
                                if j > 0:
                                    bump(pairs, seq[j - 1], a, -weight, word, &touched, stamp)
                                    if bump(pairs, seq[j - 1], c, weight, word, &touched, stamp):
                                        failed = True
                                if i + 2 < n:
                                    bump(pairs, b, seq[i + 2], -weight, word, &touched, stamp)
                                    if bump(pairs, c, seq[i + 2], weight, word, &touched, stamp):
                                        failed = True
                                seq[j] = c
                                i += 2
                            else:
                                seq[j] = seq[i]
                                i += 1
                            j += 1
                        lengths[word] = j
                    e = pairs.get(key, False)
                    e.count = 0
                    for t in range(touched.size):
                        e = pairs.get(touched.data[t], False)
                        if e != NULL and e.count > 0:
                            if push_pair(&heap, e.count, touched.data[t]):
                                failed = True
            if failed:
                raise MemoryError()
            if count <= 0:
                break
            merges.append((int(a), int(b)))
            step += 1
            if progress is not None and step % 256 == 0:
                progress(step)
        return merges
    finally:
        free(flat)
        free(ids)
        free(lengths)
        free(weights)
        free(seen)
        free(touched.data)
        free(heap.items)
