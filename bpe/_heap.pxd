# One binary min-heap of (priority, key) pairs, for the encoder's heap merge (priority: a
# pair's rank and position) and the trainer's merge loop (priority: the count, largest
# first, as UINT64_MAX - count; key: the pair, smallest first among equal counts).

from libc.stdint cimport uint64_t

from bpe._types cimport grow


cdef struct HeapItem:
    uint64_t prio
    uint64_t key


cdef struct Heap:
    HeapItem* items
    size_t size
    size_t cap
    bint fixed          # items is the caller's memory (never grown nor freed here)


cdef inline bint heap_before(const HeapItem* a, const HeapItem* b) noexcept nogil:
    return a.prio < b.prio or (a.prio == b.prio and a.key < b.key)


cdef inline int heap_push(Heap* h, uint64_t prio, uint64_t key) noexcept nogil:
    """0, or -1 when the heap is full (fixed) or out of memory (nothing is lost then)."""
    cdef size_t i, parent
    cdef HeapItem item = HeapItem(prio, key)
    cdef HeapItem* items
    if h.size == h.cap:
        if h.fixed:
            return -1
        items = <HeapItem*>grow(h.items, &h.cap, sizeof(HeapItem), 1024)
        if items == NULL:
            return -1
        h.items = items
    i = h.size
    h.size += 1
    while i > 0:
        parent = (i - 1) >> 1
        if not heap_before(&item, &h.items[parent]):
            break
        h.items[i] = h.items[parent]
        i = parent
    h.items[i] = item
    return 0


cdef inline HeapItem heap_pop(Heap* h) noexcept nogil:
    """The first item (the heap must not be empty)."""
    cdef HeapItem top = h.items[0], last
    cdef size_t i = 0, child, n
    h.size -= 1
    n = h.size
    last = h.items[n]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap_before(&h.items[child + 1], &h.items[child]):
            child += 1
        if not heap_before(&h.items[child], &last):
            break
        h.items[i] = h.items[child]
        i = child
    h.items[i] = last
    return top
