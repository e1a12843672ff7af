# The compiled engine: a byte-string -> rank table, BPE merging, and hand-written
# pretokenizer scanners for the three tiktoken pattern families.
#
# Everything here works on plain C data (UTF-8 bytes, rank arrays) and runs without the
# GIL; bpe/core.py is the Python face (arguments, special tokens, docs, pickling).
# Compiler directives are set in one place, setup.py (BPE_CYTHON_DEBUG=1 turns checks on).

from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING
from cpython.list cimport PyList_New
from cpython.number cimport PyNumber_Index
from cpython.sequence cimport PySequence_Check
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport calloc, free, malloc, realloc
from libc.string cimport memcmp, memcpy, memset

from bpe._types cimport rank_t, NO_RANK, RankVec

cdef extern from *:
    """
    #ifndef BPE_DEBUG
    #define BPE_DEBUG 0
    #endif
    """
    int BPE_DEBUG

#: True when built with BPE_CYTHON_DEBUG=1 (bounds and wraparound checks, -O0, assertions).
DEBUG_BUILD = bool(BPE_DEBUG)

cdef extern from *:
    """
    #define BPE_K0 0x9E3779B97F4A7C15ULL
    #define BPE_K1 0xFF51AFD7ED558CCDULL
    #define BPE_K2 0xC4CEB9FE1A85EC53ULL
    """
    const uint64_t BPE_K0
    const uint64_t BPE_K1
    const uint64_t BPE_K2

# Atomics for the piece cache's sequence locks and entries, and the pair memo (GCC and
# Clang builtins).
cdef extern from *:
    """
    static inline uint32_t bpe_load_acquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
    static inline uint32_t bpe_load_relaxed(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline int bpe_cas_acquire(uint32_t* p, uint32_t expected, uint32_t desired) {
        return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
    }
    static inline void bpe_store_release(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
    static inline void bpe_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
    static inline void bpe_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
    static inline uint8_t bpe_load_tag(const uint8_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void bpe_store_tag(uint8_t* p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    static inline void bpe_store_relaxed(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    static inline uint64_t bpe_load64(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
    static inline void bpe_store64(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
    """
    uint32_t bpe_load_acquire(const uint32_t* p) noexcept nogil
    uint32_t bpe_load_relaxed(const uint32_t* p) noexcept nogil
    int bpe_cas_acquire(uint32_t* p, uint32_t expected, uint32_t desired) noexcept nogil
    void bpe_store_release(uint32_t* p, uint32_t v) noexcept nogil
    void bpe_fence_acquire() noexcept nogil
    void bpe_fence_release() noexcept nogil
    uint8_t bpe_load_tag(const uint8_t* p) noexcept nogil
    void bpe_store_tag(uint8_t* p, uint8_t v) noexcept nogil
    void bpe_store_relaxed(uint32_t* p, uint32_t v) noexcept nogil
    uint64_t bpe_load64(const uint64_t* p) noexcept nogil
    void bpe_store64(uint64_t* p, uint64_t v) noexcept nogil

cdef extern from *:
    """
    #define bpe_prefetch(p) __builtin_prefetch(p)
    #define bpe_prefetch_write(p) __builtin_prefetch(p, 1)
    """
    void bpe_prefetch(const void* p) noexcept nogil
    void bpe_prefetch_write(const void* p) noexcept nogil

# The large tables (slots, trie, token records, piece cache) are read at random, so on a
# cold start most lookups also miss the TLB, and in a virtual machine a TLB miss walks two
# sets of page tables. Where the kernel offers transparent huge pages on request, tables of
# 2 MiB and more get a mapping of their own, 2 MiB-aligned, rounded up to whole 2 MiB
# pages and advised before its first touch. Through posix_memalign they had come from the
# heap, where pages freed earlier (already faulted in at 4 KiB) were reused: for o200k
# only 2 of the token records' 4.8 MB and 4 of the trie's 5.1 MB were on huge pages.
# The rounding adds 2.1 MB for o200k.
cdef extern from *:
    """
    #include <stdint.h>
    #include <stdlib.h>
    #include <string.h>
    #if defined(__linux__)
    #include <sys/mman.h>
    #endif
    #define BPE_OWN_MAPPING ((size_t)1 << 20)
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
    #define BPE_HUGE ((size_t)2 << 20)
    static size_t bpe_table_span(size_t size) { return (size + BPE_HUGE - 1) & ~(BPE_HUGE - 1); }
    #endif

    /* A table of `size` bytes, freed with bpe_table_free(p, size); NULL out of memory. */
    static void* bpe_table_alloc(size_t size) {
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (size >= BPE_HUGE) {
            size_t span = bpe_table_span(size);
            uint8_t* m = (uint8_t*)mmap(NULL, span + BPE_HUGE, PROT_READ | PROT_WRITE,
                                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            uint8_t* p;
            if (m == (uint8_t*)MAP_FAILED)
                return NULL;
            p = (uint8_t*)(((uintptr_t)m + BPE_HUGE - 1) & ~(uintptr_t)(BPE_HUGE - 1));
            if (p > m)
                munmap(m, (size_t)(p - m));
            munmap(p + span, (size_t)(m + BPE_HUGE - p));  /* p - m < BPE_HUGE: never empty */
            madvise(p, span, MADV_HUGEPAGE);
            return p;
        }
    #endif
        return malloc(size ? size : 1);
    }

    static void bpe_table_free(void* p, size_t size) {
        if (p == NULL)
            return;
    #if defined(__linux__) && defined(MADV_HUGEPAGE)
        if (size >= BPE_HUGE) {
            munmap(p, bpe_table_span(size));
            return;
        }
    #endif
        free(p);
    }

    /* Scratch arrays for building the tables, freed with bpe_scratch_free(p). Large ones
       get a mapping of their own too, so that freeing them returns the memory to the
       system, where malloc would keep it (30 MB for o200k) for nothing. Their size is in
       a 64-byte header. */
    static void* bpe_scratch_alloc(size_t size) {
        size_t total = size + 64;
        uint8_t* m;
    #if defined(__linux__)
        if (total >= BPE_OWN_MAPPING) {
            m = (uint8_t*)mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == (uint8_t*)MAP_FAILED)
                return NULL;
        } else
    #endif
        {
            m = (uint8_t*)malloc(total);
            if (m == NULL)
                return NULL;
        }
        *(size_t*)m = total;
        return m + 64;
    }

    static void bpe_scratch_free(void* p) {
        uint8_t* m;
        if (p == NULL)
            return;
        m = (uint8_t*)p - 64;
    #if defined(__linux__)
        if (*(size_t*)m >= BPE_OWN_MAPPING) {
            munmap(m, *(size_t*)m);
            return;
        }
    #endif
        free(m);
    }

    /* As realloc: NULL (and p untouched) out of memory. */
    static void* bpe_scratch_grow(void* p, size_t size) {
        void* q = bpe_scratch_alloc(size);
        size_t old;
        if (q != NULL && p != NULL) {
            old = *(size_t*)((uint8_t*)p - 64) - 64;
            memcpy(q, p, old < size ? old : size);
            bpe_scratch_free(p);
        }
        return q;
    }
    """
    void* table_alloc "bpe_table_alloc"(size_t size) noexcept nogil
    void table_free "bpe_table_free"(void* p, size_t size) noexcept nogil
    void* scratch_alloc "bpe_scratch_alloc"(size_t size) noexcept nogil
    void scratch_free "bpe_scratch_free"(void* p) noexcept nogil
    void* scratch_grow "bpe_scratch_grow"(void* p, size_t size) noexcept nogil

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL


# The UTF-8 of a str. ASCII strs are their own UTF-8, and a str whose UTF-8 Python already
# made keeps it; for the rest we write it ourselves, without the GIL, into a buffer the call
# frees, rather than through PyUnicode_AsUTF8AndSize, which makes a copy and leaves it on
# the str for as long as the str lives (memory the caller never asked for). Each code point
# is one 4-byte store whatever its length, and the length only moves the pointer; ASCII
# runs go four (UCS-2) or eight (Latin-1) code points at a time. debref.zh-cn, o200k, fresh
# engine per pass, median of 12: 29.6 -> 30.4 MB/s. The price: a second pass over the same
# strs converts them again, where Python's copy would have been at hand.
cdef extern from *:
    r"""
    typedef struct { const uint8_t* data; Py_ssize_t size; uint8_t* owned; } BpeUtf8;

    /* With the GIL: 1 when text's UTF-8 is at hand in u (ASCII, or made by Python before),
       0 when bpe_utf8_write must make it, -1 with an exception set. */
    static int bpe_utf8_ready(PyObject* text, BpeUtf8* u) {
        u->owned = NULL;
    #if PY_VERSION_HEX < 0x030C0000
        if (PyUnicode_READY(text) < 0)
            return -1;
    #endif
        if (PyUnicode_IS_ASCII(text)) {
            u->data = (const uint8_t*)PyUnicode_DATA(text);
            u->size = PyUnicode_GET_LENGTH(text);
            return 1;
        }
    #ifndef Py_GIL_DISABLED  /* without a GIL another thread may be making that UTF-8 now */
        if (PyUnicode_IS_COMPACT(text) && ((PyCompactUnicodeObject*)text)->utf8 != NULL) {
            u->data = (const uint8_t*)((PyCompactUnicodeObject*)text)->utf8;
            u->size = ((PyCompactUnicodeObject*)text)->utf8_length;
            return 1;
        }
    #endif
        return 0;
    }

    static inline uint32_t bpe_utf8_unit(uint32_t c, int* len) {
        /* The UTF-8 bytes of c (not a surrogate), first byte lowest. */
        if (c < 0x80) { *len = 1; return c; }
        uint32_t w2 = 0x80C0u | (c >> 6) | ((c & 0x3Fu) << 8);
        uint32_t w3 = 0x8080E0u | (c >> 12) | (((c >> 6) & 0x3Fu) << 8) | ((c & 0x3Fu) << 16);
        uint32_t w4 = 0x808080F0u | (c >> 18) | (((c >> 12) & 0x3Fu) << 8)
                      | (((c >> 6) & 0x3Fu) << 16) | ((c & 0x3Fu) << 24);
        *len = 2 + (c >= 0x800) + (c >= 0x10000);
        return c < 0x800 ? w2 : c < 0x10000 ? w3 : w4;
    }

    /* Fill u with the UTF-8 of text (a str that bpe_utf8_ready left to us). Needs no GIL
       while text is alive. 0, -1 when text holds a lone surrogate (UTF-8 cannot encode it;
       u.owned is still to be freed), or -2 out of memory. */
    static int bpe_utf8_write(PyObject* text, BpeUtf8* u) {
        Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0;
        int kind = PyUnicode_KIND(text), len;
        const void* src = PyUnicode_DATA(text);
        uint32_t bad = 0, c, w;
        uint8_t* o = u->owned = (uint8_t*)malloc((size_t)n * (kind == 4 ? 4 : kind + 1) + 8);
        if (o == NULL)
            return -2;
        if (kind == PyUnicode_1BYTE_KIND) {
            const uint8_t* s = (const uint8_t*)src;
            while (i < n) {
                if (i + 8 <= n) {
                    uint64_t q;
                    memcpy(&q, s + i, 8);
                    if (!(q & 0x8080808080808080ull)) { memcpy(o, &q, 8); o += 8; i += 8; continue; }
                }
                w = bpe_utf8_unit(s[i++], &len);
                memcpy(o, &w, 4);
                o += len;
            }
        } else if (kind == PyUnicode_2BYTE_KIND) {
            const uint16_t* s = (const uint16_t*)src;
            while (i < n) {
                if (i + 4 <= n) {
                    uint64_t q;
                    memcpy(&q, s + i, 8);
                    if (!(q & 0xFF80FF80FF80FF80ull)) {
                        w = (uint32_t)(q & 0xFF) | (uint32_t)((q >> 8) & 0xFF00)
                            | (uint32_t)((q >> 16) & 0xFF0000) | (uint32_t)((q >> 24) & 0xFF000000);
                        memcpy(o, &w, 4); o += 4; i += 4; continue;
                    }
                }
                c = s[i++];
                if (c >= 0x800) {  /* most of them in CJK text: no select */
                    bad |= (c & 0xF800) == 0xD800;
                    w = 0x8080E0u | (c >> 12) | (((c >> 6) & 0x3Fu) << 8) | ((c & 0x3Fu) << 16);
                    memcpy(o, &w, 4);
                    o += 3;
                    continue;
                }
                w = bpe_utf8_unit(c, &len);
                memcpy(o, &w, 4);
                o += len;
            }
        } else {
            const uint32_t* s = (const uint32_t*)src;
            while (i < n) {
                c = s[i++];
                bad |= (c & 0xFFFFF800u) == 0xD800;
                w = bpe_utf8_unit(c, &len);
                memcpy(o, &w, 4);
                o += len;
            }
        }
        u->data = u->owned;
        u->size = o - u->owned;
        return bad ? -1 : 0;
    }
    """
    ctypedef struct BpeUtf8:
        const uint8_t* data
        Py_ssize_t size
        uint8_t* owned
    int bpe_utf8_ready(object text, BpeUtf8* u) except -1
    int bpe_utf8_write(PyObject* text, BpeUtf8* u) noexcept nogil


# ---------------------------------------------------------------------------------------
# Growable rank array

cdef inline int vec_push(RankVec* v, rank_t r) noexcept nogil:
    cdef size_t cap
    cdef rank_t* data
    if v.size == v.capacity:
        cap = v.capacity * 2 if v.capacity else 64
        data = <rank_t*>realloc(v.data, cap * sizeof(rank_t))
        if data == NULL:
            return -1
        v.data = data
        v.capacity = cap
    v.data[v.size] = r
    v.size += 1
    return 0


# Python ints for the lowest ranks, made once and shared by every list this module builds.
# BPE gives its most frequent tokens the lowest ranks: ranks below 4096 are 42-73% of the
# ids of our corpora, and an incref of one of these 4096 objects (128 KiB, kept in cache)
# costs a few instructions where making an int costs about 75 and freeing it more.
# Tried before: one shared int for every rank; those increfs touch megabytes of objects at
# random and measured 3-20% slower than making ints.
DEF SHARED_INTS = 4096

# The higher ranks are many (200,000 for o200k) but a text uses few of them often: a
# direct-mapped table keeps the last int made for each of 4,096 slots (128 KiB of objects,
# for the life of the process), so a rank seen lately costs an incref, and freeing the list
# later does not free it. Callgrind est. cycles of encoding and then freeing the lists,
# first 200 documents: debref.zh-cn o200k -3.6%, cl100k -8.2%; kjv -3.9%; debref.en -2.1%.
DEF RECENT_INTS = 4096
DEF RECENT_SHIFT = 20  # 32 - log2(RECENT_INTS)

cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define BPE_FREE_THREADED 1
    #else
    #define BPE_FREE_THREADED 0
    #endif
    """
    # The recent-int slots are a plain array that the GIL guards; without a GIL every high
    # rank gets a new int instead.
    const bint FREE_THREADED "BPE_FREE_THREADED"

cdef extern from "Python.h":
    PyObject* new_int "PyLong_FromLongLong"(long long value)
    void list_set_item "PyList_SET_ITEM"(object lst, Py_ssize_t i, PyObject* item)
    void incref "Py_INCREF"(PyObject* o)
    void xdecref "Py_XDECREF"(PyObject* o)

cdef PyObject* shared_int[SHARED_INTS]
cdef PyObject* recent_int[RECENT_INTS]  # NULL, or an int of rank recent_rank[slot]
cdef rank_t recent_rank[RECENT_INTS]


cdef int make_shared_ints() except -1:
    cdef size_t k
    for k in range(SHARED_INTS):
        shared_int[k] = new_int(k)  # kept for the life of the process
        if shared_int[k] == NULL:
            raise MemoryError()
    return 0


make_shared_ints()


cdef list vec_to_list(const RankVec* v):
    """The ranks as a Python list of ints (the one place that builds Python objects)."""
    cdef list out = PyList_New(v.size)
    cdef size_t k
    cdef rank_t r
    cdef uint32_t slot
    cdef PyObject* item
    for k in range(v.size):
        r = v.data[k]
        if r < SHARED_INTS:
            item = shared_int[r]
        elif FREE_THREADED:
            item = new_int(r)
            if item == NULL:
                raise MemoryError()
            list_set_item(out, k, item)
            continue
        else:
            slot = (r * <uint32_t>0x9E3779B1u) >> RECENT_SHIFT
            item = recent_int[slot]
            if item == NULL or recent_rank[slot] != r:
                item = new_int(r)
                if item == NULL:
                    raise MemoryError()  # the list is freed with the exception; NULL items are allowed
                xdecref(recent_int[slot])
                recent_int[slot] = item
                recent_rank[slot] = r
        incref(item)
        list_set_item(out, k, item)  # steals the reference
    return out


cdef bytearray vec_to_bytearray(const RankVec* v):
    """The ranks as native-endian uint32 bytes (numpy.frombuffer reads them without a copy)."""
    if v.size == 0:
        return bytearray()
    return bytearray((<const char*>v.data)[:v.size * sizeof(rank_t)])


# ---------------------------------------------------------------------------------------
# The rank table: open addressing over token byte strings stored in one blob.

cdef struct Slot:
    uint64_t head    # the token's first 8 bytes, zero-padded: short tokens compare here alone
    rank_t rank      # NO_RANK marks an empty slot
    uint32_t length  # the token's length in bytes


# The piece caches. An entry is a 64-bit-aligned block: a header (seq: a sequence lock, 0
# empty, odd while a writer fills the entry, even when stable; the piece's length; its
# number of tokens), then the piece's bytes, then its tokens. Pieces of up to 24 bytes (8
# tokens) get 64-byte entries, one cache line each; up to 48 bytes (18 tokens), 128-byte
# entries; long ones (up to 256 bytes, 62 tokens), 512-byte entries. Four in five of the
# non-token pieces of debref.zh-cn are short (all of kjv's), so that, in the same memory as
# one table of 128-byte entries for all of them, the short ones have twice the entries, and
# a hit reads one line. A second pass over debref.zh-cn (o200k) then misses 1,720 of its
# 29,175 lookups of up to 48 bytes, against 2,995; warm passes, alternating, median of 16
# paired ratios: o200k debref.zh-cn 1.22x (42.6 -> 49.8 MB/s), cl100k 1.13x, kjv 1.05x,
# debref.en 1.05x; a fresh process's pass over debref.zh-cn 0.99x (20 pairs).
DEF SHORT_PIECE = 24
DEF CACHE_PIECE = 48
DEF LONG_PIECE = 256

cdef struct CacheHeader:
    uint32_t seq         # the sequence lock
    uint32_t shape       # the piece's length | its number of tokens << 16

cdef struct PieceCache:
    uint8_t* entries     # NULL: off
    uint8_t* tags        # per entry: 0 empty, else 8 bits of its piece's hash (see cache_tag)
    uint64_t mask        # number of entries - 1
    uint32_t entry_size  # bytes per entry
    uint32_t max_piece   # longest piece an entry holds
    uint32_t max_tokens  # most tokens an entry holds


# The trie as matching reads it: a double array. Node x's child for byte c is slot
# da[x].base + c, and it is there when that slot's check is x, so a step is one add, one
# load and one compare, whatever the number of children. Against the bitmap trie it
# replaced (a 64-bit mask per 64-byte block and a popcount), callgrind on debref.zh-cn,
# o200k: 6.6% fewer instructions, 11% fewer branch mispredicts, 5.7% fewer est. cycles;
# and it is smaller (5.1 MB against 6.8 MB for o200k), since first-fit placement leaves
# almost no slot empty (421,923 slots for 421,661 nodes).
cdef struct DaSlot:
    uint32_t base        # children of this node are at base + byte
    uint32_t check       # the parent's slot (DA_FREE: no node here)
    rank_t token         # the token this path spells (| NOT_BUILT if BPE cannot build it),
                         #   or NO_RANK


# What matching and the compatibility test read about a token, together: one cache line
# where separate arrays cost up to four. The base is a copy of the node's, so that a walk
# from the token's node starts without a dependent load (est. cycles -2.5% on zh).
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


cdef struct Vocab:
    uint8_t* blob        # all token bytes, concatenated
    size_t blob_size     #   its size (table_free needs it)
    uint64_t* offset     # per rank: where its bytes start in blob
    uint32_t* length     # per rank: how many bytes, or NO_RANK where no token has this rank
    rank_t n_ranks       # max rank + 1
    Slot* slots
    uint64_t mask        # number of slots - 1 (a power of two)
    size_t max_len       # longest token, in bytes
    rank_t byte_rank[256]
    rank_t* pair_rank    # 65536 entries: the rank of every two-byte string, or NO_RANK
    uint64_t* filter     # a blocked Bloom filter of the tokens of 3 bytes and more
    uint64_t filter_mask # number of its 64-bit words - 1
    PieceCache short_cache  # pieces of 3 to 24 bytes that are not tokens -> their ranks
    PieceCache cache     # the same for 25 to 48 bytes
    PieceCache long_cache  # and for 49 to 256 bytes
    Backtrack* bt        # the long-piece encoder's tables (NULL: merge_large instead)


# Measured on debref.en with o200k (perf): lookups are bound by cache misses, not hashing.
# The first version kept a 32-bit tag in the slot and compared bytes in the blob, two
# misses per hit; keeping the first 8 bytes in the slot makes most hits one miss, and the
# two-byte pairs every merge starts with come from a 256 KB direct table.

cdef extern from *:
    """
    #if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    #error "bpe's token table reads bytes as little-endian words"
    #endif
    """

cdef inline uint64_t load_le(const uint8_t* p, size_t n) noexcept nogil:
    """p[:min(n, 8)] as a little-endian word, zero-padded, by fixed-size loads (a memcpy
    of variable size is a library call)."""
    cdef uint64_t w
    cdef uint32_t a, b
    if n >= 8:
        memcpy(&w, p, 8)
        return w
    if n >= 4:
        memcpy(&a, p, 4)
        memcpy(&b, p + n - 4, 4)  # overlaps a: the shared bytes agree
        return <uint64_t>a | (<uint64_t>b << (8 * (n - 4)))
    if n == 0:
        return 0
    return <uint64_t>p[0] | (<uint64_t>p[n >> 1] << (8 * (n >> 1))) | (<uint64_t>p[n - 1] << (8 * (n - 1)))


cdef inline uint64_t load_head(const uint8_t* p, size_t n) noexcept nogil:
    return load_le(p, n)


cdef inline uint64_t hash_bytes(const uint8_t* p, size_t n, uint64_t head) noexcept nogil:
    cdef uint64_t h = (head ^ (n * BPE_K1)) * BPE_K2
    cdef uint64_t w
    h ^= h >> 29
    p += 8
    while n > 8:
        w = load_le(p, n - 8)
        h = (h ^ w) * BPE_K1
        h ^= h >> 32
        p += 8
        n = n - 8
    h *= BPE_K0
    h ^= h >> 32
    return h


cdef inline rank_t vocab_probe(const Vocab* v, const uint8_t* p, size_t n, uint64_t head,
                               uint64_t h) noexcept nogil:
    """The rank of p[:n] (3 <= n <= max_len) given its head and hash, or NO_RANK."""
    cdef uint64_t i = h & v.mask
    cdef const Slot* slot
    while True:
        slot = &v.slots[i]
        if slot.rank == NO_RANK:
            return NO_RANK
        if slot.length == n and slot.head == head:
            if n <= 8 or memcmp(v.blob + v.offset[slot.rank] + 8, p + 8, n - 8) == 0:
                return slot.rank
        i = (i + 1) & v.mask


# Most lookups a merge makes are of strings that are not tokens (two in three on Chinese
# text with o200k). Each would be a cache miss in the multi-megabyte slot table; a Bloom
# filter small enough to stay in L2 (two bits in one 64-bit word per token, 128 KiB for
# o200k) answers most of them first.

cdef inline uint64_t filter_bits(uint64_t h) noexcept nogil:
    return (<uint64_t>1 << ((h >> 52) & 63)) | (<uint64_t>1 << ((h >> 58) & 63))


cdef inline bint filter_may_hold(const Vocab* v, uint64_t h) noexcept nogil:
    cdef uint64_t bits = filter_bits(h)
    return v.filter[(h >> 32) & v.filter_mask] & bits == bits


cdef inline rank_t vocab_lookup(const Vocab* v, const uint8_t* p, size_t n) noexcept nogil:
    """The rank of the token with bytes p[:n], or NO_RANK."""
    cdef uint64_t head, h
    if n > v.max_len:
        return NO_RANK
    if n == 1:
        return v.byte_rank[p[0]]
    if n == 2:
        return v.pair_rank[(<uint32_t>p[0] << 8) | p[1]]
    head = load_head(p, n)
    h = hash_bytes(p, n, head)
    if not filter_may_hold(v, h):
        return NO_RANK
    return vocab_probe(v, p, n, head, h)


# ---------------------------------------------------------------------------------------
# BPE merge of one piece.
#
# The result must equal tiktoken's: repeatedly merge the adjacent pair whose bytes have the
# lowest rank, the leftmost one among equal ranks. Short pieces use tiktoken's own O(n^2)
# scan over a small array (it touches little memory and wins below a few dozen bytes);
# longer ones use a binary heap of (rank, start) keys with lazy deletion over a linked list
# of parts, O(n log n). Pieces of BACKTRACK_SHORT bytes and more use the linear
# backtracking encoder further down when the vocabulary allows it, and these two otherwise.

DEF SMALL_PIECE = 48
DEF LARGE_ON_STACK = 256

cdef int merge_small(const Vocab* v, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
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


cdef inline void heap_push(uint64_t* heap, size_t* size, uint64_t key) noexcept nogil:
    cdef size_t i = size[0], parent
    size[0] += 1
    while i > 0:
        parent = (i - 1) >> 1
        if heap[parent] <= key:
            break
        heap[i] = heap[parent]
        i = parent
    heap[i] = key


cdef inline uint64_t heap_pop(uint64_t* heap, size_t* size) noexcept nogil:
    cdef uint64_t top = heap[0], last
    cdef size_t i = 0, child, n
    size[0] -= 1
    n = size[0]
    last = heap[n]
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= last:
            break
        heap[i] = heap[child]
        i = child
    heap[i] = last
    return top


cdef int merge_large(const Vocab* v, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    # Parts are named by the byte where they start; nxt/prv link the live ones. One block
    # holds the heap and the four arrays: on the stack up to LARGE_ON_STACK bytes of piece.
    cdef uint64_t local[5 * LARGE_ON_STACK + 5]
    cdef uint64_t* heap = &local[0]
    cdef uint32_t* nxt
    cdef uint32_t* prv
    cdef rank_t* part_rank
    cdef rank_t* pair_rank
    cdef size_t heap_size = 0, i, j, after, k
    cdef uint64_t key
    cdef rank_t r
    cdef int rc = 0
    if n > LARGE_ON_STACK:
        heap = <uint64_t*>malloc((5 * n + 5) * sizeof(uint64_t))
        if heap == NULL:
            return -1
    nxt = <uint32_t*>(heap + 3 * n + 4)  # 3n + 4 heap keys, then 4n + 2 uint32s
    prv = nxt + n + 1
    part_rank = prv + n + 1
    pair_rank = part_rank + n
    for i in range(n):
        nxt[i] = i + 1
        prv[i] = i - 1 if i else 0
        part_rank[i] = v.byte_rank[s[i]]
        pair_rank[i] = vocab_lookup(v, s + i, 2) if i + 1 < n else NO_RANK
        if pair_rank[i] != NO_RANK:
            heap_push(heap, &heap_size, (<uint64_t>pair_rank[i] << 32) | i)
    while heap_size:
        key = heap_pop(heap, &heap_size)
        i = <size_t><uint32_t>key
        r = <rank_t>(key >> 32)
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
            heap_push(heap, &heap_size, (<uint64_t>pair_rank[i] << 32) | i)
        # 3. the pair that ends with part i
        if i > 0:
            k = prv[i]
            pair_rank[k] = vocab_lookup(v, s + k, after - k)
            if pair_rank[k] != NO_RANK:
                heap_push(heap, &heap_size, (<uint64_t>pair_rank[k] << 32) | k)
    i = 0
    while i < n:
        if part_rank[i] == NO_RANK:
            rc = -2 - <int>s[i]
            break
        if vec_push(out, part_rank[i]):
            rc = -1
            break
        i = nxt[i]
    if heap != &local[0]:
        free(heap)
    return rc


# ---------------------------------------------------------------------------------------
# Long pieces: leftmost-longest matching with backtracking (linear time).
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

cdef inline void prefetch_slot(const Vocab* v, const uint8_t* p, size_t n, bint all_lengths) noexcept nogil:
    """Prefetch the hash-table slot of p[:n] (lengths 1 and 2 have direct tables)."""
    cdef uint64_t head
    if (all_lengths or n >= 3) and n <= v.max_len:
        head = load_head(p, n)
        bpe_prefetch(&v.slots[hash_bytes(p, n, head) & v.mask])


# Where backtracking replaces merging. Against merge_small (callgrind, first 60 documents
# of each corpus, o200k): from 13 bytes up it takes 17% fewer instructions on debref.zh-cn
# and 3% fewer on debref.en, the same on kjv and Python code; below 13 the O(n^2) merge is
# cheaper. Against merge_large it is linear, and with the pair memo below it is also faster
# from 49 to 256 bytes (debref.zh-cn -9% instructions, debref.en -4%; per piece, from 0.07x
# the heap's time on runs of "_" to 1.7x on runs of " -", which explore dead ends).
DEF BACKTRACK_SHORT = 13
# Pieces that end in a multi-byte code point (CJK words above all) are mostly not ASCII,
# where merge_small does a lookup per byte pair: from two CJK characters up backtracking
# is cheaper (callgrind est. cycles, debref.zh-cn: o200k -2.2%, cl100k -2.1%; 4 and 9
# bytes measured within 0.5% of 6). ASCII pieces never take this branch.
DEF BACKTRACK_SHORT_UTF8 = 6

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
DEF PAIR_MEMO = 8192
DEF PAIR_SHIFT = 51  # 64 - log2(PAIR_MEMO)

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


cdef int backtrack_encode(const Vocab* v, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    """Append the BPE ranks of s[:n]. 0 on success, -1 out of memory, -3 no encoding found
    (cannot happen for a vocabulary build_backtrack accepted; the caller then merges)."""
    cdef const Backtrack* bt = v.bt
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
            if (merge_small(v, p, n, &scratch) if n <= SMALL_PIECE else merge_large(v, p, n, &scratch)) != 0:
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


cdef extern from *:
    """
    #define BPE_DA_FREE 0xFFFFFFFFu
    #define BPE_NOT_BUILT 0x80000000u
    """
    const uint32_t NOT_BUILT "BPE_NOT_BUILT"  # DaSlot.token: a token BPE cannot build
    const uint32_t DA_FREE "BPE_DA_FREE"  # the check of a slot that holds no node

# Free slots tried for a node's children before they go past the last used slot. Most
# nodes have one child and take the first free slot; 64 tries already pack o200k and
# cl100k with less than 0.1% of the slots empty.
DEF DA_TRIES = 64


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


# ---------------------------------------------------------------------------------------
# The piece cache: a two-way set-associative table from pieces that are not tokens to
# their ranks.
#
# On natural text a third of the pieces that miss the vocabulary (debref.en, o200k) are
# new and the rest repeat; a merge costs dozens of table lookups, each a likely cache
# miss, a cache hit costs one. Many threads read and write it at once without a lock:
# each entry has a sequence number that a writer makes odd while it writes (skipping the
# entry when another writer holds it) and a reader checks before and after copying; a
# torn read is a miss, never a wrong answer. Memory: a fixed number of entries per tier
# (64, 128 or 512 bytes each, see CACHE_PIECE).
#
# A piece may sit in either entry of a pair (its set): 2i and 2i + 1. Direct-mapped, the
# 16K pieces of debref.zh-cn that are not tokens evicted one another in a 32K-entry cache:
# a second pass lost about 21% of them (the expected excess of a Poisson(1/2) load per
# entry); with two ways only sets of three or more lose one, and a second pass missed
# 2,995 of 29,155 lookups (10%). A new piece takes an empty way, else the way a bit of its
# hash picks. Warm passes, alternating, median of 11: o200k debref.zh-cn 35.6 -> 38.7 MB/s,
# cl100k 49.7 -> 52.7.

cdef inline size_t cache_set(const PieceCache* cache, uint64_t h) noexcept nogil:
    """The first entry of the piece's set."""
    return (h >> 24) & cache.mask & ~(<size_t>1)


cdef inline size_t cache_second(const PieceCache* cache, size_t first) noexcept nogil:
    """The second entry of the set starting at `first` (the same entry in a one-entry cache)."""
    return first | (cache.mask & 1)


cdef inline CacheHeader* cache_entry(const PieceCache* cache, size_t i) noexcept nogil:
    return <CacheHeader*>(cache.entries + i * cache.entry_size)


# Each entry also has a one-byte tag in an array of its own (50 KiB for the three tiers by
# default), so that a piece the cache does not hold is known to miss without reading its
# entry. On a cold pass nearly every lookup misses, and the entries (4 MiB then, zeroed
# when the engine was built) are in no cache level: perf put 13% of a fresh process's pass
# over debref.zh-cn on the load of the entry's header. A miss now only prefetches the entry for the put that follows the
# merge. Fresh process, one pass, o200k, median of 14 (8 for the others), alternating:
# debref.zh-cn 30.9 -> 34.7 MB/s, debref.en 41.2 -> 45.8, kjv 80.4 -> 86.7; warm passes
# gain too (debref.en 56.7 -> 66.4), since a lookup that will miss no longer reads the
# entry. The tag is a filter only (a match still compares the piece); its bits (48 to 55
# of the hash) are not the entry's index bits (24 and up) for a cache of less than 2^24
# entries.
cdef inline uint8_t cache_tag(uint64_t h) noexcept nogil:
    return <uint8_t>(h >> 48) | 1


cdef inline ptrdiff_t cache_find(const PieceCache* cache, uint64_t h, size_t first) noexcept nogil:
    """The first entry of the set starting at `first` whose tag is the piece's, or -1."""
    cdef uint8_t tag = cache_tag(h)
    if bpe_load_tag(&cache.tags[first]) == tag:
        return first
    if bpe_load_tag(&cache.tags[cache_second(cache, first)]) == tag:
        return cache_second(cache, first)
    return -1


cdef inline size_t cache_victim(const PieceCache* cache, uint64_t h, size_t first) noexcept nogil:
    """The entry of the set starting at `first` that a new piece takes."""
    cdef size_t second = cache_second(cache, first)
    if bpe_load_tag(&cache.tags[first]) == 0:
        return first
    if bpe_load_tag(&cache.tags[second]) == 0:
        return second
    return second if (h >> 23) & 1 else first


cdef inline bint cache_get(const PieceCache* cache, uint64_t h, const uint8_t* s, size_t n,
                           RankVec* out) noexcept nogil:
    """Append the piece's ranks when the cache holds it (out may then be left with part of
    an entry on a False: the caller cuts it back)."""
    cdef size_t first = cache_set(cache, h), second = cache_second(cache, first)
    cdef ptrdiff_t i = cache_find(cache, h, first)
    if i < 0:
        return False
    if cache_read(cache, <size_t>i, s, n, out):
        return True
    # The first way's tag matched by chance (or its read was torn): try the second.
    if <size_t>i == first and second != first and bpe_load_tag(&cache.tags[second]) == cache_tag(h):
        return cache_read(cache, second, s, n, out)
    return False


# Readers and writers share an entry without a lock, so every access to it is atomic
# (relaxed: plain loads and stores on x86-64 and ARM); a plain memcpy racing with a writer
# would be undefined behaviour, and the compiler could reload a count after checking it.
# The piece is stored as zero-padded little-endian words, compared a word at a time.
cdef inline bint cache_read(const PieceCache* cache, size_t i, const uint8_t* s, size_t n,
                            RankVec* out) noexcept nogil:
    """Append the ranks of entry i when it holds s[:n]."""
    cdef CacheHeader* e = cache_entry(cache, i)
    cdef const uint64_t* words = <const uint64_t*>(e + 1)
    cdef const uint32_t* stored = <const uint32_t*>(<const uint8_t*>words + cache.max_piece)
    cdef rank_t tokens[62]
    cdef uint32_t before, k, count, shape
    cdef size_t w
    before = bpe_load_acquire(&e.seq)
    if before == 0 or before & 1:
        return False
    shape = bpe_load_relaxed(&e.shape)
    if (shape & 0xFFFF) != n:
        return False
    for w in range(0, n, 8):
        if bpe_load64(&words[w >> 3]) != load_le(s + w, n - w):
            return False
    count = shape >> 16
    if count > cache.max_tokens:
        return False
    for k in range(count):
        tokens[k] = bpe_load_relaxed(&stored[k])
    bpe_fence_acquire()
    if bpe_load_relaxed(&e.seq) != before:
        return False
    for k in range(count):
        if vec_push(out, tokens[k]):
            return False
    return True


cdef inline void cache_put(const PieceCache* cache, uint64_t h, const uint8_t* s, size_t n,
                           const rank_t* tokens, size_t count) noexcept nogil:
    cdef size_t i = cache_victim(cache, h, cache_set(cache, h)), w, k
    cdef CacheHeader* e = cache_entry(cache, i)
    cdef uint64_t* words = <uint64_t*>(e + 1)
    cdef uint32_t* stored = <uint32_t*>(<uint8_t*>words + cache.max_piece)
    cdef uint32_t seq = bpe_load_relaxed(&e.seq)
    if count > cache.max_tokens or seq & 1 or not bpe_cas_acquire(&e.seq, seq, seq + 1):
        return  # too many tokens, or another thread is writing this entry
    bpe_fence_release()
    bpe_store_relaxed(&e.shape, <uint32_t>n | (<uint32_t>count << 16))
    for w in range(0, n, 8):
        bpe_store64(&words[w >> 3], load_le(s + w, n - w))
    for k in range(count):
        bpe_store_relaxed(&stored[k], tokens[k])
    bpe_store_tag(&cache.tags[i], cache_tag(h))                         # under the lock: in
    bpe_store_release(&e.seq, seq + 2 if seq + 2 != 0 else 2)          # the writers' order


cdef int cache_init(PieceCache* cache, size_t entries, uint32_t entry_size, uint32_t max_piece) noexcept nogil:
    """Allocate a cache of `entries` (a power of two) zeroed entries. 0 or -1 out of memory."""
    cache.mask = entries - 1  # set first: table_free(entries) needs the size
    cache.entry_size = entry_size
    cache.entries = <uint8_t*>table_alloc(entries * entry_size)
    cache.tags = <uint8_t*>calloc(entries, 1)
    if cache.entries == NULL or cache.tags == NULL:
        return -1
    # Zero (and so fault in) every page now rather than during the first encodes.
    memset(cache.entries, 0, entries * entry_size)
    cache.max_piece = max_piece
    cache.max_tokens = (entry_size - sizeof(CacheHeader) - max_piece) // sizeof(rank_t)
    return 0


cdef inline int encode_piece(const Vocab* v, const uint8_t* s, size_t n, RankVec* out) noexcept nogil:
    """Append the ranks of one piece. 0 on success, -1 out of memory, -2-b: byte b has no rank."""
    cdef rank_t r
    if n == 0:
        return 0  # a split pattern may match the empty string: no bytes, no tokens
    r = vocab_lookup(v, s, n)
    if r != NO_RANK:
        return vec_push(out, r)
    return merge_piece(v, s, n, hash_bytes(s, n, load_head(s, n)) if 3 <= n <= LONG_PIECE else 0, out)


cdef inline const PieceCache* cache_for(const Vocab* v, size_t n) noexcept nogil:
    """The cache for pieces of n bytes, or NULL (none, or off)."""
    if 3 <= n <= SHORT_PIECE:
        return &v.short_cache if v.short_cache.entries != NULL else NULL
    if SHORT_PIECE < n <= CACHE_PIECE:
        return &v.cache if v.cache.entries != NULL else NULL
    if CACHE_PIECE < n <= LONG_PIECE:
        return &v.long_cache if v.long_cache.entries != NULL else NULL
    return NULL


cdef inline void prefetch_cached(const Vocab* v, uint64_t h, size_t n) noexcept nogil:
    """Start loading the cache entry a piece's lookup will read, or its put will write."""
    cdef const PieceCache* cache = cache_for(v, n)
    cdef const uint8_t* e
    cdef size_t first
    cdef ptrdiff_t i
    if cache != NULL:
        first = cache_set(cache, h)
        i = cache_find(cache, h, first)
        if i >= 0:
            e = <const uint8_t*>cache_entry(cache, <size_t>i)
            bpe_prefetch(e)
            if cache.entry_size > 64:  # the tokens start in the second line
                bpe_prefetch(e + 64)
        else:  # a miss: cache_put writes an entry after the merge
            bpe_prefetch_write(cache_entry(cache, cache_victim(cache, h, first)))


cdef inline int merge_piece(const Vocab* v, const uint8_t* s, size_t n, uint64_t h,
                            RankVec* out) noexcept nogil:
    """Append the ranks of a piece that is not a token; h is its hash when 3 <= n <= 256."""
    cdef size_t start = out.size
    cdef int rc = -3
    cdef const PieceCache* cache = cache_for(v, n)
    if cache != NULL:
        if cache_get(cache, h, s, n, out):
            return 0
        out.size = start  # a failed get may have pushed part of an entry
    if v.bt != NULL and (n >= BACKTRACK_SHORT or (n >= BACKTRACK_SHORT_UTF8 and s[n - 1] >= 0x80)):
        rc = backtrack_encode(v, s, n, out)
    if rc == -3:
        rc = merge_small(v, s, n, out) if n <= SMALL_PIECE else merge_large(v, s, n, out)
    if cache != NULL and rc == 0:
        cache_put(cache, h, s, n, out.data + start, out.size - start)
    return rc


# ---------------------------------------------------------------------------------------
# Pretokenizer scanners.
#
# Each returns the end of the piece that starts at byte i of valid UTF-8 text s[:n], exactly
# where the `regex` module (leftmost-first alternation, backtracking) ends the match of the
# family's pattern. The reasoning for each alternative is written next to it; the tests hold
# each scanner to the `regex` reference on arbitrary Unicode.

cdef enum:
    C_L = 1     # \p{L}
    C_N = 2     # \p{N}
    C_UP = 4    # [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
    C_LO = 8    # [\p{Ll}\p{Lm}\p{Lo}\p{M}]
    C_WS = 16   # \s (White_Space)
    B_OTHER = 32  # BYTE_CLASS only: an ASCII byte in [^\s\p{L}\p{N}]
    B_HIGH = 64   # BYTE_CLASS only: a byte of a multi-byte code point

# Class bits of every code point at tiktoken's Unicode version (set_unicode_classes fills
# it), and the classifier every scanner step calls. It is C so that it can be forced
# inline: GCC left some calls to the Cython version out of line, and _scan_only-style
# timing showed the calls.
cdef extern from *:
    """
    static uint8_t bpe_uclass[0x110000];

    static inline __attribute__((always_inline))
    uint8_t bpe_cls_at(const uint8_t* s, size_t i, size_t* ln) {
        uint8_t b = s[i];
        if (b < 0x80) { *ln = 1; return bpe_uclass[b]; }
        if (b < 0xE0) { *ln = 2; return bpe_uclass[((b & 0x1F) << 6) | (s[i + 1] & 0x3F)]; }
        if (b < 0xF0) {
            *ln = 3;
            return bpe_uclass[((b & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)];
        }
        *ln = 4;
        return bpe_uclass[((b & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12)
                          | ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F)];
    }
    """
    uint8_t UCLASS "bpe_uclass"[0x110000]
    uint8_t cls_at "bpe_cls_at"(const uint8_t* s, size_t i, size_t* ln) noexcept nogil


def set_unicode_classes(const uint8_t[::1] classes):  # IN: one byte of class bits per code point
    """Install the code point classes the scanners use (bpe/core.py calls this once)."""
    if classes.shape[0] != 0x110000:
        raise ValueError(f"expected 0x110000 class bytes, got {classes.shape[0]}")
    memcpy(UCLASS, &classes[0], 0x110000)
    cdef int b
    for b in range(256):
        if b >= 0x80:
            BYTE_CLASS[b] = B_HIGH
        elif UCLASS[b] & (C_L | C_N | C_WS):
            BYTE_CLASS[b] = UCLASS[b]
        else:
            BYTE_CLASS[b] = B_OTHER


# The classes of single bytes, for the ASCII fast paths: a byte from 0x80 up has only
# B_HIGH, so a loop over one class stops at the first non-ASCII code point.
cdef uint8_t BYTE_CLASS[256]

# Runs of ASCII letters eight bytes at a time: a word's end is then found with one
# branch that is mostly not taken, instead of a loop exit that the branch predictor misses
# about once a word. With fold, A-Z count as a-z (x | 0x20 maps exactly A-Z into a-z).
cdef extern from *:
    """
    static inline size_t bpe_ascii_run(const uint8_t* s, size_t k, size_t n, int fold) {
        const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        uint64_t x, y, in, out;
        while (k + 8 <= n) {
            memcpy(&x, s + k, 8);
            if (fold)
                x |= 0x2020202020202020ULL;
            y = x & ~highs;  /* bytes of 0x7F or less: the sums below cannot carry */
            in = (y + (0x80 - 'a') * ones) & ~(y + (0x7F - 'z') * ones) & ~x & highs;
            out = ~in & highs;
            if (out)
                return k + ((size_t)__builtin_ctzll(out) >> 3);
            k += 8;
        }
        while (k < n && ((s[k] | (fold ? 0x20 : 0)) - 'a') < 26u)
            k++;
        return k;
    }
    """
    size_t ascii_run "bpe_ascii_run"(const uint8_t* s, size_t k, size_t n, int fold) noexcept nogil


cdef inline size_t run_of(const uint8_t* s, size_t i, size_t n, uint8_t mask) noexcept nogil:
    """End of the run of code points from i whose class has a bit of mask."""
    cdef size_t ln
    while i < n and cls_at(s, i, &ln) & mask:
        i += ln
    return i


cdef inline size_t run_of_other(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """End of the run of [^\\s\\p{L}\\p{N}] from i."""
    cdef size_t ln
    while i < n and not (cls_at(s, i, &ln) & (C_WS | C_L | C_N)):
        i += ln
    return i


cdef inline size_t contraction(const uint8_t* s, size_t e, size_t n, bint fold) noexcept nogil:
    """End after an optional 's 't 're 've 'm 'll 'd at e (any case when fold)."""
    cdef uint8_t b, b2
    if e + 1 >= n or s[e] != 39:
        return e
    b = s[e + 1]
    b2 = s[e + 2] if e + 2 < n else 0
    if fold:
        # Simple case folding: ASCII case, and U+017F LONG S folds to s.
        if b == 0xC5 and b2 == 0xBF:
            return e + 3
        b |= 0x20
        b2 |= 0x20
    if b == 115 or b == 116 or b == 109 or b == 100:  # s t m d
        return e + 2
    if (b == 114 and b2 == 101) or (b == 118 and b2 == 101) or (b == 108 and b2 == 108):
        return e + 3  # re ve ll
    return e


cdef inline size_t whitespace_run(const uint8_t* s, size_t i, size_t n,
                                  size_t* last_start, size_t* newline_end) noexcept nogil:
    """End of the \\s run from i; where its last code point starts; the end of its last \\r or \\n (0: none)."""
    cdef size_t ln
    last_start[0] = i
    newline_end[0] = 0
    while i < n and cls_at(s, i, &ln) & C_WS:
        if s[i] == 13 or s[i] == 10:
            newline_end[0] = i + 1
        last_start[0] = i
        i += ln
    return i


cdef inline size_t o200k_space(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """o200k's \\s*[\\r\\n]+ | \\s+(?!\\S) | \\s+ from the whitespace at i."""
    cdef size_t w, last_start, nl_end
    w = whitespace_run(s, i, n, &last_start, &nl_end)
    if nl_end:
        return nl_end       # \s*[\r\n]+
    if w == n:
        return n            # \s+(?!\S) at the end of the text
    if last_start > i:
        return last_start   # \s+(?!\S)
    return w                # \s+


cdef inline size_t cl100k_space(const uint8_t* s, size_t i, size_t n, size_t l0) noexcept nogil:
    """cl100k's \\s++$ | \\s*[\\r\\n] | \\s+(?!\\S) | \\s from the whitespace at i, whose code
    point is l0 bytes long."""
    cdef size_t w, last_start, nl_end
    w = whitespace_run(s, i, n, &last_start, &nl_end)
    if w == n:
        return n            # \s++$
    if nl_end:
        return nl_end       # \s*[\r\n]: up to the last newline of the run
    if last_start > i:
        return last_start   # \s+(?!\S)
    return i + l0           # \s


cdef inline size_t up_to_three_digits(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """\\p{N}{1,3} from i (the code point at i is known to be \\p{N})."""
    cdef size_t ln, k = 1
    cls_at(s, i, &ln)
    i += ln
    while k < 3 and i < n and cls_at(s, i, &ln) & C_N:
        i += ln
        k += 1
    return i


# r50k / p50k / gpt2:  's|'t|... | ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s
cdef size_t next_gpt2(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t l0, ln, e, w, last_start, nl_end
    cdef uint8_t c0 = cls_at(s, i, &l0), c1
    e = contraction(s, i, n, False)
    if e != i:
        return e
    if s[i] == 32 and i + 1 < n:
        # ' ?X++' tries the space first; a space is never L, N or "other" itself.
        c1 = cls_at(s, i + 1, &ln)
        if c1 & C_L:
            return run_of(s, i + 1, n, C_L)
        if c1 & C_N:
            return run_of(s, i + 1, n, C_N)
        if not (c1 & C_WS):
            return run_of_other(s, i + 1, n)
    if c0 & C_L:
        return run_of(s, i, n, C_L)
    if c0 & C_N:
        return run_of(s, i, n, C_N)
    if not (c0 & C_WS):
        return run_of_other(s, i, n)
    w = whitespace_run(s, i, n, &last_start, &nl_end)
    if w == n:
        return n            # \s++$
    if last_start > i:
        return last_start   # \s+(?!\S): give the last space back to the next piece
    return i + l0           # \s


# cl100k:  '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+
#          | ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s
cdef size_t next_cl100k(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t l0, ln, e
    cdef uint8_t c0 = cls_at(s, i, &l0)
    cdef uint8_t b0 = s[i]
    e = contraction(s, i, n, True)
    if e != i:
        return e
    if c0 & C_L:
        return run_of(s, i, n, C_L)
    if not (c0 & C_N) and b0 != 13 and b0 != 10:
        # The possessive prefix takes this code point; letters must follow.
        if i + l0 < n and cls_at(s, i + l0, &ln) & C_L:
            return run_of(s, i + l0, n, C_L)
    if c0 & C_N:
        return up_to_three_digits(s, i, n)
    e = i
    if b0 == 32 and i + 1 < n and not (cls_at(s, i + 1, &ln) & (C_WS | C_L | C_N)):
        e = i + 1
    elif not (c0 & C_WS):
        e = i
    else:
        e = n + 1  # whitespace: handled below
    if e <= n:
        e = run_of_other(s, e, n)
        while e < n and (s[e] == 13 or s[e] == 10):
            e += 1
        return e
    return cl100k_space(s, i, n, l0)


# o200k: the letter alternatives without their optional one-code-point prefix.
# First:  [UP]*[LO]+  Backtracking gives back UP code points until [LO]+ can start, so the
# match is the UP run plus the LO run after it when a lowercase letter follows the UP run,
# else the UP run up to its last code point that is also LO, else no match.
cdef inline ptrdiff_t o200k_first(const uint8_t* s, size_t p, size_t n) noexcept nogil:
    cdef size_t q = p, ln
    cdef ptrdiff_t last_lo_end = -1
    cdef uint8_t c
    while q < n:
        c = cls_at(s, q, &ln)
        if not (c & C_UP):
            break
        q += ln
        if c & C_LO:
            last_lo_end = q
    if q < n and cls_at(s, q, &ln) & C_LO:
        return run_of(s, q, n, C_LO)
    return last_lo_end


# Second: [UP]+[LO]*
cdef inline ptrdiff_t o200k_second(const uint8_t* s, size_t p, size_t n) noexcept nogil:
    cdef size_t ln
    if p >= n or not (cls_at(s, p, &ln) & C_UP):
        return -1
    return run_of(s, run_of(s, p, n, C_UP), n, C_LO)


# ASCII fast paths. Each returns -1 where a non-ASCII code point could change the piece.

cdef inline ptrdiff_t ascii_digits(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """\p{N}{1,3} from an ASCII digit at i."""
    cdef size_t k = i + 1
    while k < n and k < i + 3 and BYTE_CLASS[s[k]] & C_N:
        k += 1
    if k < n and k < i + 3 and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    return k


cdef inline ptrdiff_t ascii_other(const uint8_t* s, size_t i, size_t n, bint slash) noexcept nogil:
    """' ?[^\s\p{L}\p{N}]+[\r\n]*' from i ([\r\n/]* with slash), where s[i + 1] is not a letter."""
    cdef size_t k
    if BYTE_CLASS[s[i]] & B_OTHER:
        k = i + 1
    elif s[i] == 32 and BYTE_CLASS[s[i + 1]] & B_OTHER:
        k = i + 2
    else:
        return -1
    while k < n and BYTE_CLASS[s[k]] & B_OTHER:
        k += 1
    if k < n and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    while k < n and (s[k] == 13 or s[k] == 10 or (slash and s[k] == 47)):
        k += 1
    return k


# ASCII whitespace at i, for cl100k and o200k. The letter alternatives take it (unless it
# is \r or \n) as the prefix of letters that follow: 0, go on to the letters. " ?[^\s\p{L}
# \p{N}]+" takes a space before other ASCII. Else the whitespace alternatives decide,
# wherever the run ends (they read any code point). -1: a multi-byte code point follows,
# which may be a letter or other. Indentation and line ends, which are most of the pieces
# of Python code that are not words, had all gone through the full scanner.
cdef inline ptrdiff_t ascii_space(const uint8_t* s, size_t i, size_t n, bint o200k) noexcept nogil:
    cdef uint8_t b
    if s[i] != 13 and s[i] != 10 and i + 1 < n:
        b = BYTE_CLASS[s[i + 1]]
        if b & B_HIGH:
            return -1
        if b & C_L:
            return 0
        if s[i] == 32 and b & B_OTHER:
            return ascii_other(s, i, n, o200k)
    return o200k_space(s, i, n) if o200k else cl100k_space(s, i, n, 1)


# cl100k: a letter run, after an optional prefix code point.
cdef inline ptrdiff_t cl100k_ascii(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t k = i
    cdef ptrdiff_t e
    cdef uint8_t c = BYTE_CLASS[s[i]]
    if c & C_N:
        return ascii_digits(s, i, n)
    if not (c & C_L):
        if c & C_WS:
            e = ascii_space(s, i, n, False)
            if e != 0:
                return e
        elif i + 1 >= n or s[i] == 39:
            return -1  # an apostrophe may start a contraction
        elif not (BYTE_CLASS[s[i + 1]] & C_L):
            return ascii_other(s, i, n, False)
        k = i + 1
    k = ascii_run(s, k, n, True)  # [A-Za-z]*
    if k < n and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    return k


# o200k, when ASCII decides the piece (-1: it does not, scan in full). ASCII letters are
# UP (A-Z) or LO (a-z), never both, so the first letter alternative is the UP run plus a
# LO run when one follows, and else the second one takes the UP run; a non-ASCII code
# point where a run ends could extend it. Nearly every piece of kjv.txt takes this path, 88%
# of debref.en and 58% of debref.zh-cn (o200k scanning and merging: 17%, 10% and 2% fewer
# instructions).
cdef inline ptrdiff_t o200k_ascii(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t k = i
    cdef ptrdiff_t e
    cdef uint8_t c = BYTE_CLASS[s[i]]
    if c & C_N:
        return ascii_digits(s, i, n)
    if not (c & C_L):
        if c & C_WS:
            e = ascii_space(s, i, n, True)
            if e != 0:
                return e
        elif i + 1 >= n:
            return -1
        elif not (BYTE_CLASS[s[i + 1]] & C_L):
            return ascii_other(s, i, n, True)
        k = i + 1  # the one-code-point prefix
    while k < n and BYTE_CLASS[s[k]] & C_UP:
        k += 1
    k = ascii_run(s, k, n, False)  # [a-z]*
    if k < n and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    return contraction(s, k, n, True)


# o200k: [^\r\n\p{L}\p{N}]?[UP]*[LO]+(?i:'s|...)? | [^\r\n\p{L}\p{N}]?[UP]+[LO]*(?i:'s|...)?
#        | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
cdef size_t next_o200k(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t l0, ln
    cdef ptrdiff_t e = -1
    cdef uint8_t c0 = cls_at(s, i, &l0)
    cdef uint8_t b0 = s[i]
    cdef bint prefix = not (c0 & (C_L | C_N)) and b0 != 13 and b0 != 10 and i + l0 < n
    # The letter alternatives need a letter or mark here or right after the prefix; most
    # spaces and punctuation have neither and skip four failing attempts (o200k scanning
    # alone: 116 -> 207 MB/s on debref.en).
    if c0 & (C_UP | C_LO) or (prefix and cls_at(s, i + l0, &ln) & (C_UP | C_LO)):
        # Each letter alternative tries with the prefix first, then without it.
        if prefix:
            e = o200k_first(s, i + l0, n)
        if e < 0:
            e = o200k_first(s, i, n)
        if e < 0 and prefix:
            e = o200k_second(s, i + l0, n)
        if e < 0:
            e = o200k_second(s, i, n)
        if e >= 0:
            return contraction(s, e, n, True)
    if c0 & C_N:
        return up_to_three_digits(s, i, n)
    # Every letter and mark matched above, so the code point is whitespace or "other".
    e = -1
    if b0 == 32:
        if i + 1 < n and not (cls_at(s, i + 1, &ln) & (C_WS | C_L | C_N)):
            e = i + 1
    elif not (c0 & C_WS):
        e = i
    if e >= 0:
        e = run_of_other(s, e, n)
        while <size_t>e < n and (s[e] == 13 or s[e] == 10 or s[e] == 47):
            e += 1
        return e
    return o200k_space(s, i, n)


# The ASCII fast paths are inlined here and the full scanners called when they decline:
# a full scanner's call and register saves cost as much as the fast path itself.
cdef inline size_t next_piece(int family, const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef ptrdiff_t e
    if family == 3:
        if s[i] < 0x80:
            e = o200k_ascii(s, i, n)
            if e >= 0:
                return e
        return next_o200k(s, i, n)
    if family == 2:
        if s[i] < 0x80:
            e = cl100k_ascii(s, i, n)
            if e >= 0:
                return e
        return next_cl100k(s, i, n)
    return next_gpt2(s, i, n)


# Pieces are cut and hashed a batch at a time, and the table slots of the whole batch are
# prefetched before the first lookup: the lookups are bound by cache misses, and this lets
# the misses of a batch overlap instead of queueing one after another. Measured with a
# runtime switch, interleaved, median of 9 (flat batch, MB/s): o200k kjv 47.9 -> 52.8,
# debref.en 32.9 -> 37.0, cl100k debref.en 37.3 -> 47.0. Tried and dropped: prefetching
# the two lookups after each merge in merge_small (slower, 7-23%).
DEF BATCH = 16

cdef int encode_text(const Vocab* v, int family, const uint8_t* s, size_t n, RankVec* out,
                     size_t* counted) noexcept nogil:
    """Append the ranks of s[:n] to out. With counted, count them instead: out is scratch
    space, emptied after every batch, and counted[0] gets the total."""
    cdef size_t start[BATCH + 1]
    cdef uint64_t head[BATCH]
    cdef uint64_t h[BATCH]
    cdef rank_t rank[BATCH]
    cdef bint maybe[BATCH]
    cdef size_t i = 0, k, m, length
    cdef int rc
    while i < n:
        # 1. cut a batch of pieces, hash them, prefetch their slots
        m = 0
        start[0] = i
        while m < BATCH and i < n:
            i = next_piece(family, s, i, n)
            length = i - start[m]
            maybe[m] = False
            if length >= 3 and (length <= v.max_len or length <= LONG_PIECE):
                head[m] = load_head(s + start[m], length)
                h[m] = hash_bytes(s + start[m], length, head[m])
                if length <= v.max_len and filter_may_hold(v, h[m]):
                    maybe[m] = True
                    bpe_prefetch(&v.slots[h[m] & v.mask])
            m += 1
            start[m] = i
        # 2. whole-piece lookups; prefetch the cache entries of the pieces that are not tokens
        for k in range(m):
            length = start[k + 1] - start[k]
            if length < 3:
                rank[k] = vocab_lookup(v, s + start[k], length)
                continue
            rank[k] = vocab_probe(v, s + start[k], length, head[k], h[k]) if maybe[k] else NO_RANK
            if rank[k] == NO_RANK and length <= LONG_PIECE:
                prefetch_cached(v, h[k], length)
        # 3. in order: the tokens, and the merged pieces
        for k in range(m):
            if rank[k] != NO_RANK:
                if vec_push(out, rank[k]):
                    return -1
                continue
            length = start[k + 1] - start[k]
            rc = merge_piece(v, s + start[k], length, h[k] if 3 <= length <= LONG_PIECE else 0, out)
            if rc:
                return rc
        if counted != NULL:
            counted[0] += out.size
            out.size = 0
    return 0


# ---------------------------------------------------------------------------------------
# Piece counting for the trainer: a hash map from piece bytes to their count, filled
# without the GIL. A piece seen for the first time is copied into the map's arena, so that
# each text's UTF-8 can be freed as soon as it is counted: the corpus is never held twice.

cdef struct PieceCount:
    const uint8_t* p
    uint64_t h
    uint32_t n
    int64_t count


cdef struct PieceMap:
    PieceCount* slots
    uint64_t mask
    uint64_t used
    uint8_t* block       # the arena's newest block (its first 8 bytes: the previous block)
    size_t free_at       #   where its unused part starts,
    size_t block_size    #   and its size


DEF ARENA_BLOCK = 1 << 20


cdef const uint8_t* piece_map_keep(PieceMap* m, const uint8_t* p, size_t n) noexcept nogil:
    """A copy of p[:n] in the arena, or NULL out of memory."""
    cdef uint8_t* block
    cdef size_t size
    if m.block == NULL or m.free_at + n > m.block_size:
        size = ARENA_BLOCK if n + 8 <= ARENA_BLOCK else n + 8
        block = <uint8_t*>malloc(size)
        if block == NULL:
            return NULL
        (<uint8_t**>block)[0] = m.block
        m.block = block
        m.free_at = 8
        m.block_size = size
    memcpy(m.block + m.free_at, p, n)
    m.free_at += n
    return m.block + m.free_at - n


cdef void piece_map_free(PieceMap* m) noexcept nogil:
    cdef uint8_t* block = m.block
    cdef uint8_t* previous
    while block != NULL:
        previous = (<uint8_t**>block)[0]
        free(block)
        block = previous
    m.block = NULL
    free(m.slots)
    m.slots = NULL


cdef int piece_map_grow(PieceMap* m) noexcept nogil:
    cdef uint64_t old_n = m.mask + 1, new_n = old_n * 2, i, j
    cdef PieceCount* fresh = <PieceCount*>malloc(new_n * sizeof(PieceCount))
    if fresh == NULL:
        return -1
    memset(fresh, 0, new_n * sizeof(PieceCount))
    for i in range(old_n):
        if m.slots[i].p != NULL:
            j = m.slots[i].h & (new_n - 1)
            while fresh[j].p != NULL:
                j = (j + 1) & (new_n - 1)
            fresh[j] = m.slots[i]
    free(m.slots)
    m.slots = fresh
    m.mask = new_n - 1
    return 0


cdef int piece_map_add(PieceMap* m, const uint8_t* p, size_t n) noexcept nogil:
    cdef uint64_t h = hash_bytes(p, n, load_head(p, n)), i
    if (m.used + 1) * 2 > m.mask + 1 and piece_map_grow(m):
        return -1
    i = h & m.mask
    while m.slots[i].p != NULL:
        if m.slots[i].h == h and m.slots[i].n == n and memcmp(m.slots[i].p, p, n) == 0:
            m.slots[i].count += 1
            return 0
        i = (i + 1) & m.mask
    m.slots[i].p = piece_map_keep(m, p, n)
    if m.slots[i].p == NULL:
        return -1
    m.slots[i].h = h
    m.slots[i].n = <uint32_t>n
    m.slots[i].count = 1
    m.used += 1
    return 0


cdef void fill_slots(Vocab* v) noexcept nogil:
    """Insert every token into the hash table (empty, with blob/offset/length filled).
    Bound by cache misses: the slot of the token a few ranks ahead is prefetched."""
    cdef rank_t r
    cdef uint64_t i, head, h
    cdef const uint8_t* p
    cdef size_t n
    for r in range(v.n_ranks):
        if r + 8 < v.n_ranks and v.length[r + 8] != NO_RANK:
            prefetch_slot(v, v.blob + v.offset[r + 8], v.length[r + 8], True)
        n = v.length[r]
        if n == NO_RANK:
            continue
        p = v.blob + v.offset[r]
        head = load_head(p, n)
        h = hash_bytes(p, n, head)
        i = h & v.mask
        while v.slots[i].rank != NO_RANK:
            i = (i + 1) & v.mask
        v.slots[i].head = head
        v.slots[i].rank = r
        v.slots[i].length = <uint32_t>n
        v.filter[(h >> 32) & v.filter_mask] |= filter_bits(h)


# ---------------------------------------------------------------------------------------
# The Python-visible engine

cdef int raise_for_utf8(str text, int bad) except -1:
    """Raise what bpe_utf8_write's failure `bad` means for text."""
    cdef Py_ssize_t n
    if bad == -2:
        raise MemoryError()
    PyUnicode_AsUTF8AndSize(text, &n)  # raises UnicodeEncodeError, with the surrogate's position
    raise SystemError("bpe_utf8_write found a lone surrogate that Python could encode")


# A batch of texts read without the GIL: the strs (held alive by the caller's tuple), and
# the UTF-8 of each, at hand for ASCII strs and those Python converted before, else
# written one text at a time and freed as soon as that text is done.
cdef struct Texts:
    Py_ssize_t count
    PyObject** objs
    BpeUtf8* utf8
    uint8_t* ready


cdef int texts_open(Texts* t, tuple keep) except -1:
    """Fill t for keep (every item must be a str). Call texts_close(t) in any case."""
    cdef Py_ssize_t k
    t.count = len(keep)
    t.objs = <PyObject**>malloc((t.count + 1) * sizeof(PyObject*))
    t.utf8 = <BpeUtf8*>calloc(t.count + 1, sizeof(BpeUtf8))
    t.ready = <uint8_t*>malloc(t.count + 1)
    if t.objs == NULL or t.utf8 == NULL or t.ready == NULL:
        raise MemoryError()
    for k in range(t.count):
        if not isinstance(keep[k], str):
            raise TypeError(f"texts[{k}] is {type(keep[k]).__name__}, not str")
        t.objs[k] = <PyObject*>keep[k]
        t.ready[k] = bpe_utf8_ready(keep[k], &t.utf8[k])
    return 0


cdef inline int texts_utf8(Texts* t, Py_ssize_t k) noexcept nogil:
    """Make text k's UTF-8 ready (t.utf8[k]): 0, or bpe_utf8_write's failure."""
    if t.ready[k]:
        return 0
    return bpe_utf8_write(t.objs[k], &t.utf8[k])


cdef inline void texts_done(Texts* t, Py_ssize_t k) noexcept nogil:
    free(t.utf8[k].owned)
    t.utf8[k].owned = NULL


cdef void texts_close(Texts* t) noexcept:
    cdef Py_ssize_t k
    if t.utf8 != NULL:
        for k in range(t.count):
            free(t.utf8[k].owned)
    free(t.utf8)
    free(t.objs)
    free(t.ready)
    t.utf8 = NULL
    t.objs = NULL
    t.ready = NULL


def utf8_of(str text):
    """The UTF-8 bytes the engine reads for ``text`` (for tests). Raises UnicodeEncodeError on
    lone surrogates, as ``text.encode()`` does."""
    cdef BpeUtf8 u
    cdef int bad = 0
    try:
        if not bpe_utf8_ready(text, &u):
            bad = bpe_utf8_write(<PyObject*>text, &u)
        if bad:
            raise_for_utf8(text, bad)
        return PyBytes_FromStringAndSize(<const char*>u.data, u.size)
    finally:
        free(u.owned)


cdef size_t array_bytes(size_t count, size_t item) except? 0:
    """count * item, or OverflowError when that does not fit in size_t (32-bit targets)."""
    if item and count > (<size_t>-1) // item:
        raise OverflowError(f"a table of {count:,} entries of {item} bytes does not fit in memory")
    return count * item


cdef class CoreBPE:
    """Rank table, piece cache and scanner: the compiled part of an Encoding.

    The piece cache holds ``cache_entries`` pieces of up to 24 bytes (64 bytes each and a
    one-byte tag; the default 32768 is 2 MiB), half as many of 25 to 48 bytes (128 bytes
    each, 2 MiB by default) and a sixteenth as many of 49 to 256 bytes (512 bytes each,
    1 MiB by default); 0 turns all three off.

    ``family`` picks the hand-written scanner (1 gpt2, 2 cl100k, 3 o200k); with 0 the caller
    splits the text and passes pieces to :meth:`encode_pieces`.

    ``backtrack=False`` leaves pieces of 13 bytes and more to the merges instead of the
    backtracking encoder (for tests and benchmarks; the results are the same).
    """
    cdef Vocab v
    cdef readonly int family
    cdef dict special_decoder   # id -> bytes

    def __cinit__(self):
        memset(&self.v, 0, sizeof(Vocab))

    def __init__(self, dict mergeable_ranks, dict special_tokens, int family,
                 size_t cache_entries=32768, bint backtrack=True):
        cdef size_t total = 0, n_slots = 16, k, ln
        cdef uint64_t i, head, max_rank = 0
        cdef const uint8_t* p
        cdef rank_t r
        cdef bytes tok
        cdef object rank_obj
        if self.v.blob != NULL:
            raise RuntimeError("CoreBPE.__init__ was called twice: build a new CoreBPE instead")
        for tok, rank_obj in mergeable_ranks.items():
            if type(tok) is not bytes:
                raise TypeError(f"token {tok!r} is {type(tok).__name__}, not bytes")
            if type(rank_obj) is not int:
                raise TypeError(f"rank {rank_obj!r} of token {tok!r} is {type(rank_obj).__name__}, not int")
            if not 0 <= rank_obj < NO_RANK:
                raise ValueError(f"rank {rank_obj!r} of token {tok!r} is outside 0..{NO_RANK - 1}")
            total += len(tok)
            if rank_obj > max_rank:
                max_rank = rank_obj
        # Tables are sized by the largest rank: refuse ranks so sparse that they would take
        # gigabytes for a few tokens (this also keeps n_ranks + 1 far below 2**32).
        if max_rank > 4 * <uint64_t>len(mergeable_ranks) + (1 << 20):
            raise ValueError(f"the largest rank is {max_rank:,} for only {len(mergeable_ranks):,} "
                             "tokens: ranks this sparse are not supported")
        while n_slots < 2 * len(mergeable_ranks):
            n_slots *= 2
        self.family = family
        self.v.n_ranks = <rank_t>(max_rank + 1) if mergeable_ranks else 0
        self.v.blob_size = total + 1
        self.v.mask = n_slots - 1  # set before allocating: __dealloc__ frees by these sizes
        self.v.blob = <uint8_t*>table_alloc(self.v.blob_size)
        self.v.offset = <uint64_t*>table_alloc(array_bytes(<size_t>self.v.n_ranks + 1, sizeof(uint64_t)))
        self.v.length = <uint32_t*>table_alloc(array_bytes(<size_t>self.v.n_ranks + 1, sizeof(uint32_t)))
        self.v.slots = <Slot*>table_alloc(array_bytes(n_slots, sizeof(Slot)))
        self.v.pair_rank = <rank_t*>malloc(65536 * sizeof(rank_t))
        # Filter: one 64-bit word per 32 slots, 4 to 8 bits per token.
        self.v.filter = <uint64_t*>calloc(n_slots // 32 if n_slots >= 32 else 1, sizeof(uint64_t))
        if not (self.v.blob and self.v.offset and self.v.length and self.v.slots and self.v.pair_rank
                and self.v.filter):
            raise MemoryError()
        self.v.filter_mask = (n_slots // 32 if n_slots >= 32 else 1) - 1
        if cache_entries:
            if cache_entries & (cache_entries - 1):
                raise ValueError(f"cache_entries must be a power of two or 0, got {cache_entries}")
            if (cache_init(&self.v.short_cache, cache_entries, 64, SHORT_PIECE)
                    or cache_init(&self.v.cache, cache_entries // 2 or 1, 128, CACHE_PIECE)
                    or cache_init(&self.v.long_cache, cache_entries // 16 or 1, 512, LONG_PIECE)):
                raise MemoryError()
        for k in range(n_slots):
            self.v.slots[k].rank = NO_RANK
        for k in range(self.v.n_ranks):
            self.v.length[k] = NO_RANK
        for k in range(256):
            self.v.byte_rank[k] = NO_RANK
        for k in range(65536):
            self.v.pair_rank[k] = NO_RANK
        total = 0
        for tok, rank_obj in mergeable_ranks.items():
            r = rank_obj
            ln = len(tok)
            if self.v.length[r] != NO_RANK:
                raise ValueError(f"rank {r} is given to two tokens: {self.decode_single(r)!r} and {tok!r}")
            if ln == 0:
                raise ValueError(f"the empty byte string cannot be a token (rank {r})")
            memcpy(self.v.blob + total, <const char*>tok, ln)
            self.v.offset[r] = total
            self.v.length[r] = ln
            total += ln
            if ln > self.v.max_len:
                self.v.max_len = ln
            p = <const uint8_t*><const char*>tok
            if ln == 1:
                self.v.byte_rank[p[0]] = r
            elif ln == 2:
                self.v.pair_rank[(<uint32_t>p[0] << 8) | p[1]] = r
        with nogil:
            fill_slots(&self.v)
        self.special_decoder = {rank: text.encode("utf-8") for text, rank in special_tokens.items()}
        if backtrack:
            with nogil:
                self.v.bt = build_backtrack(&self.v)

    def __dealloc__(self):
        free_backtrack(self.v.bt, self.v.n_ranks)
        table_free(self.v.blob, self.v.blob_size)
        table_free(self.v.offset, (<size_t>self.v.n_ranks + 1) * sizeof(uint64_t))
        table_free(self.v.length, (<size_t>self.v.n_ranks + 1) * sizeof(uint32_t))
        table_free(self.v.slots, (self.v.mask + 1) * sizeof(Slot))
        free(self.v.pair_rank)
        free(self.v.filter)
        table_free(self.v.short_cache.entries, (self.v.short_cache.mask + 1) * self.v.short_cache.entry_size)
        table_free(self.v.cache.entries, (self.v.cache.mask + 1) * self.v.cache.entry_size)
        table_free(self.v.long_cache.entries, (self.v.long_cache.mask + 1) * self.v.long_cache.entry_size)
        free(self.v.short_cache.tags)
        free(self.v.cache.tags)
        free(self.v.long_cache.tags)

    cdef bytes decode_single(self, rank_t r):
        if r < self.v.n_ranks and self.v.length[r] != NO_RANK:
            return PyBytes_FromStringAndSize(<const char*>self.v.blob + self.v.offset[r], self.v.length[r])
        return None

    cdef raise_for(self, int rc):
        if rc == -1:
            raise MemoryError()
        raise ValueError(f"byte 0x{-2 - rc:02X} has no rank in this vocabulary, so text containing it cannot be encoded")

    # -- encoding ------------------------------------------------------------------------

    def encode_ordinary(self, str text):
        """Ranks of ``text`` split by the family scanner. Raises UnicodeEncodeError on lone surrogates."""
        cdef BpeUtf8 u
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0, bad = 0
        cdef bint ready = bpe_utf8_ready(text, &u)
        try:
            with nogil:
                if not ready:
                    bad = bpe_utf8_write(<PyObject*>text, &u)
                if bad == 0:
                    rc = encode_text(&self.v, self.family, u.data, u.size, &out, NULL)
            if bad:
                raise_for_utf8(text, bad)
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(u.owned)
            free(out.data)

    cdef object run_batch(self, list texts, bint counting):
        """Encode (or count) every text with the GIL released for the whole batch.

        Returns (bytearray of uint32 ranks, end offsets), or the counts when counting.
        """
        cdef tuple keep = tuple(texts)  # the strs stay alive while the GIL is released
        cdef Py_ssize_t count = len(keep), k, failed = -1
        cdef Texts t = Texts(0, NULL, NULL, NULL)
        cdef size_t* sizes = <size_t*>malloc((count + 1) * sizeof(size_t))
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0, bad = 0
        try:
            if sizes == NULL:
                raise MemoryError()
            texts_open(&t, keep)
            with nogil:
                for k in range(count):
                    bad = texts_utf8(&t, k)
                    if bad:
                        failed = k
                        break
                    if counting:
                        sizes[k] = 0
                        rc = encode_text(&self.v, self.family, t.utf8[k].data, t.utf8[k].size, &out, &sizes[k])
                    else:
                        rc = encode_text(&self.v, self.family, t.utf8[k].data, t.utf8[k].size, &out, NULL)
                        sizes[k] = out.size
                    texts_done(&t, k)
                    if rc:
                        break
            if failed >= 0:
                raise_for_utf8(keep[failed], bad)
            if rc:
                self.raise_for(rc)
            if counting:
                return [sizes[k] for k in range(count)]
            return vec_to_bytearray(&out), [sizes[k] for k in range(count)]
        finally:
            texts_close(&t)
            free(sizes)
            free(out.data)

    def encode_batch_buffer(self, list texts):
        """Ranks of many texts, flat: (bytearray of uint32 ranks, list of end offsets)."""
        return self.run_batch(texts, False)

    def count_batch(self, list texts):
        """Token counts of many texts, without building id lists."""
        return self.run_batch(texts, True)

    def count_pieces(self, list texts):
        """How often each piece occurs in texts (each split on its own): {bytes: count}.
        Raises UnicodeEncodeError on lone surrogates."""
        cdef tuple keep = tuple(texts)  # the strs stay alive while the GIL is released
        cdef Py_ssize_t count = len(keep), k, failed = -1
        cdef Texts t = Texts(0, NULL, NULL, NULL)
        cdef PieceMap m
        cdef size_t i, e, n
        cdef uint64_t slot
        cdef int rc = 0, bad = 0
        cdef const uint8_t* s
        cdef dict out = {}
        m.mask = 1023
        m.used = 0
        m.block = NULL
        m.slots = <PieceCount*>calloc(1024, sizeof(PieceCount))
        try:
            if m.slots == NULL:
                raise MemoryError()
            if self.family == 0:
                raise ValueError("this encoding has no compiled scanner")
            texts_open(&t, keep)
            with nogil:
                for k in range(count):
                    bad = texts_utf8(&t, k)
                    if bad:
                        failed = k
                        break
                    s = t.utf8[k].data
                    n = t.utf8[k].size
                    i = 0
                    while i < n and rc == 0:
                        e = next_piece(self.family, s, i, n)
                        rc = piece_map_add(&m, s + i, e - i)
                        i = e
                    texts_done(&t, k)
                    if rc:
                        break
            if failed >= 0:
                raise_for_utf8(keep[failed], bad)
            if rc:
                raise MemoryError()
            for slot in range(m.mask + 1):
                if m.slots[slot].p != NULL:
                    out[PyBytes_FromStringAndSize(<const char*>m.slots[slot].p, m.slots[slot].n)] = m.slots[slot].count
            return out
        finally:
            texts_close(&t)
            piece_map_free(&m)

    def encode_pieces(self, list pieces):
        """Ranks of pieces split elsewhere (the regex path for patterns without a scanner)."""
        cdef Py_ssize_t count = len(pieces), k, n
        cdef const uint8_t** ptrs = <const uint8_t**>malloc((count + 1) * sizeof(uint8_t*))
        cdef size_t* lens = <size_t*>malloc((count + 1) * sizeof(size_t))
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0
        try:
            if ptrs == NULL or lens == NULL:
                raise MemoryError()
            for k in range(count):
                ptrs[k] = <const uint8_t*>PyUnicode_AsUTF8AndSize(pieces[k], &n)
                lens[k] = n
            with nogil:
                for k in range(count):
                    rc = encode_piece(&self.v, ptrs[k], lens[k], &out)
                    if rc:
                        break
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(ptrs)
            free(lens)
            free(out.data)

    def encode_single_piece(self, const uint8_t[::1] piece):
        """BPE ranks of one piece of bytes, without splitting it."""
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0
        cdef size_t n = piece.shape[0]
        try:
            if n:
                with nogil:
                    rc = encode_piece(&self.v, &piece[0], n, &out)
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(out.data)

    def encode_piece_with(self, const uint8_t[::1] piece, str engine):
        """BPE ranks of one piece by one engine, without the whole-piece lookup or the cache:
        "merge" (the O(n^2) merge up to 48 bytes, the heap above) or "backtrack" (None when
        this vocabulary does not allow it). Tests hold the engines to each other."""
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0, which
        cdef size_t n = piece.shape[0]
        if engine == "merge":
            which = 0
        elif engine == "backtrack":
            which = 1
            if self.v.bt == NULL:
                return None
        else:
            raise ValueError(f"engine must be 'merge' or 'backtrack', not {engine!r}")
        try:
            if n:
                with nogil:
                    if which == 1:
                        rc = backtrack_encode(&self.v, &piece[0], n, &out)
                    elif n <= SMALL_PIECE:
                        rc = merge_small(&self.v, &piece[0], n, &out)
                    else:
                        rc = merge_large(&self.v, &piece[0], n, &out)
            if rc == -3:
                raise RuntimeError(f"the backtracking encoder found no encoding of {bytes(piece)!r}")
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(out.data)

    @property
    def backtrack_bytes(self):
        """Memory held by the backtracking encoder's tables, in bytes (0 when off)."""
        if self.v.bt == NULL:
            return 0
        return (self.v.n_ranks * sizeof(BtToken) + self.v.bt.n_da * sizeof(DaSlot)
                + PAIR_MEMO * sizeof(uint64_t))

    @property
    def backtracking(self):
        """Whether pieces of 13 bytes and more use the backtracking encoder (else merging)."""
        return self.v.bt != NULL

    def split(self, str text):
        """The pieces the family scanner cuts ``text`` into (for tests and inspection)."""
        cdef Py_ssize_t n
        cdef const uint8_t* s = <const uint8_t*>PyUnicode_AsUTF8AndSize(text, &n)
        cdef size_t i = 0, e
        cdef list out = []
        if self.family == 0:
            raise ValueError("this encoding has no compiled scanner")
        while i < <size_t>n:
            e = next_piece(self.family, s, i, n)
            out.append((<const char*>s)[i:e].decode("utf-8"))
            i = e
        return out

    def rank_of(self, const uint8_t[::1] token):
        """The rank of a token's bytes, or None."""
        cdef rank_t r = NO_RANK
        if token.shape[0]:
            r = vocab_lookup(&self.v, &token[0], token.shape[0])
        return None if r == NO_RANK else r

    # -- decoding ------------------------------------------------------------------------

    def decode_bytes(self, tokens):
        """The bytes of a sequence of token ids; KeyError for an id no token has.

        Each id is converted once (``__index__``, as tiktoken does) into a C array before
        anything is sized or copied, from a snapshot of ``tokens``: Python code that an id's
        conversion runs cannot change what is copied."""
        cdef list ids
        cdef Py_ssize_t count, k
        cdef size_t total = 0, pos = 0
        cdef uint32_t* c_ids = NULL
        cdef uint32_t t
        cdef object item
        cdef bytes special
        cdef bytes result
        cdef char* dst
        if isinstance(tokens, str) or not PySequence_Check(tokens):
            raise TypeError(f"'{type(tokens).__name__}' object is not an instance of 'Sequence'")
        ids = list(tokens)
        count = len(ids)
        c_ids = <uint32_t*>malloc((count + 1) * sizeof(uint32_t))
        if c_ids == NULL:
            raise MemoryError()
        try:
            for k in range(count):
                item = ids[k]
                c_ids[k] = item if type(item) is int else PyNumber_Index(item)  # 1.5: TypeError
            for k in range(count):
                t = c_ids[k]
                if t < self.v.n_ranks and self.v.length[t] != NO_RANK:
                    total += self.v.length[t]
                else:
                    special = self.special_decoder.get(t)
                    if special is None:
                        raise KeyError(f"Invalid token for decoding: {t}")
                    total += len(special)
            result = PyBytes_FromStringAndSize(NULL, total)
            dst = PyBytes_AS_STRING(result)
            for k in range(count):
                t = c_ids[k]
                if t < self.v.n_ranks and self.v.length[t] != NO_RANK:
                    memcpy(dst + pos, self.v.blob + self.v.offset[t], self.v.length[t])
                    pos += self.v.length[t]
                else:
                    special = self.special_decoder[t]
                    memcpy(dst + pos, <const char*>special, len(special))
                    pos += len(special)
            return result
        finally:
            free(c_ids)

    def decode_single_token_bytes(self, token):
        cdef uint32_t t = PyNumber_Index(token)
        cdef bytes out = self.decode_single(t)
        if out is None:
            out = self.special_decoder.get(t)
            if out is None:
                raise KeyError(str(t))
        return out

