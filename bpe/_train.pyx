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
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memset


cdef struct PairEntry:
    uint64_t key        # left << 32 | right; EMPTY when the slot is free
    int64_t count
    uint32_t* words     # indices of the pieces holding the pair (may repeat or be stale)
    uint32_t n_words
    uint32_t cap_words


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
    cdef uint32_t cap
    cdef uint32_t* data
    if e.n_words and e.words[e.n_words - 1] == w:
        return 0
    if e.n_words == e.cap_words:
        cap = e.cap_words * 2 if e.cap_words else 4
        data = <uint32_t*>realloc(e.words, cap * sizeof(uint32_t))
        if data == NULL:
            return -1
        e.words = data
        e.cap_words = cap
    e.words[e.n_words] = w
    e.n_words += 1
    return 0


# Heap of (count, key), the largest count first and the smallest key among equal counts.
cdef inline bint better(int64_t c1, uint64_t k1, int64_t c2, uint64_t k2) noexcept nogil:
    return c1 > c2 or (c1 == c2 and k1 < k2)


cdef struct Heap:
    int64_t* counts
    uint64_t* keys
    size_t size
    size_t cap


cdef int heap_push(Heap* h, int64_t count, uint64_t key) noexcept nogil:
    cdef size_t i, parent, cap
    if h.size == h.cap:
        cap = h.cap * 2 if h.cap else 1024
        h.counts = <int64_t*>realloc(h.counts, cap * sizeof(int64_t))
        h.keys = <uint64_t*>realloc(h.keys, cap * sizeof(uint64_t))
        if h.counts == NULL or h.keys == NULL:
            return -1
        h.cap = cap
    i = h.size
    h.size += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not better(count, key, h.counts[parent], h.keys[parent]):
            break
        h.counts[i] = h.counts[parent]
        h.keys[i] = h.keys[parent]
        i = parent
    h.counts[i] = count
    h.keys[i] = key
    return 0


cdef void heap_pop(Heap* h) noexcept nogil:
    cdef size_t i = 0, child, n
    cdef int64_t c
    cdef uint64_t k
    h.size -= 1
    n = h.size
    c = h.counts[n]
    k = h.keys[n]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and better(h.counts[child + 1], h.keys[child + 1], h.counts[child], h.keys[child]):
            child += 1
        if not better(h.counts[child], h.keys[child], c, k):
            break
        h.counts[i] = h.counts[child]
        h.keys[i] = h.keys[child]
        i = child
    h.counts[i] = c
    h.keys[i] = k


cdef struct KeyVec:
    uint64_t* data
    size_t size
    size_t cap


cdef inline int bump(_PairMap pairs, uint32_t left, uint32_t right, int64_t delta,
                     uint32_t word, KeyVec* touched) noexcept nogil:
    """Add delta to a pair's count; a gaining pair records the piece and is marked touched."""
    cdef uint64_t key = (<uint64_t>left << 32) | right
    cdef PairEntry* e = pairs.get(key, delta > 0)
    cdef size_t cap
    if e == NULL:
        return -1 if delta > 0 else 0
    e.count += delta
    if delta > 0:
        if add_word(e, word):
            return -1
        if touched.size == touched.cap:
            cap = touched.cap * 2 if touched.cap else 256
            touched.data = <uint64_t*>realloc(touched.data, cap * sizeof(uint64_t))
            if touched.data == NULL:
                return -1
            touched.cap = cap
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
    cdef uint32_t* lengths = <uint32_t*>malloc((n_words + 1) * sizeof(uint32_t))
    cdef int64_t* weights = <int64_t*>malloc((n_words + 1) * sizeof(int64_t))
    cdef uint32_t* seen = <uint32_t*>malloc((n_words + 1) * sizeof(uint32_t))
    cdef KeyVec touched
    cdef _PairMap pairs = _PairMap()
    cdef Heap heap
    cdef PairEntry* e
    cdef uint64_t key
    cdef uint32_t a, b, c, n, i, j, word, idx
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
        # 1. pieces as id arrays
        for w in range(n_words):
            piece = pieces[w]
            data = piece
            n = len(piece)
            ids[w] = <uint32_t*>malloc((n + 1) * sizeof(uint32_t))
            if ids[w] == NULL:
                raise MemoryError()
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
                        if heap_push(&heap, pairs.slots[k].count, pairs.slots[k].key):
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
                    key = heap.keys[0]
                    count = heap.counts[0]
                    heap_pop(&heap)
                    e = pairs.get(key, False)
                    if e != NULL and e.count == count:
                        break
                    if e != NULL and e.count > 0:
                        if heap_push(&heap, e.count, key):
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
                    touched.size = 0
                    idx = 0
                    while not failed:
                        e = pairs.get(key, False)  # again: the map may have grown
                        if idx >= e.n_words:
                            break
                        word = e.words[idx]
                        idx += 1
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
                                    bump(pairs, seq[j - 1], a, -weight, word, &touched)
                                    if bump(pairs, seq[j - 1], c, weight, word, &touched):
                                        failed = True
                                if i + 2 < n:
                                    bump(pairs, b, seq[i + 2], -weight, word, &touched)
                                    if bump(pairs, c, seq[i + 2], weight, word, &touched):
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
                            if heap_push(&heap, e.count, touched.data[t]):
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
        for w in range(n_words):
            free(ids[w])
        free(ids)
        free(lengths)
        free(weights)
        free(seen)
        free(touched.data)
        free(heap.counts)
        free(heap.keys)
