# Python ints and bytes for the ids: the one place that builds Python objects from ranks.

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.list cimport PyList_New
from cpython.ref cimport PyObject
from libc.stdint cimport uint32_t
from libc.string cimport memcpy

from bpe._types cimport RankVec, rank_t

# A list of ids needs an int object per id. Each rank below RANK_INTS gets one int object,
# made the first time the rank is returned and kept for the life of the process, so that a
# rank seen before costs an incref instead of an allocation, with one well-predicted test;
# only the ranks a process meets are made (pymalloc then packs them together, which is what
# keeps the increfs in cache). Ranks of larger vocabularies go through a direct-mapped
# table that keeps the last int made per slot. See docs/performance.md.
cdef enum:
    PREFILLED_INTS = 4096   # ranks whose int is made at import
    RANK_INTS = 262144   # ranks with an int of their own (a 2 MiB table, touched as used)
    RECENT_INTS = 4096   # slots of recently made ints of higher ranks
    RECENT_SHIFT = 20    # 32 - log2(RECENT_INTS)

cdef extern from *:
    """
    #ifdef Py_GIL_DISABLED
    #define BPE_FREE_THREADED 1
    #else
    #define BPE_FREE_THREADED 0
    #endif
    """
    # The rank table and the recent-int slots are plain arrays that the GIL guards; without
    # a GIL, ranks from PREFILLED_INTS up get a new int each time instead.
    const bint FREE_THREADED "BPE_FREE_THREADED"

cdef extern from "Python.h":
    PyObject* new_int "PyLong_FromLongLong"(long long value)
    void list_set_item "PyList_SET_ITEM"(object lst, Py_ssize_t i, PyObject* item)
    void incref "Py_INCREF"(PyObject* o)
    void xdecref "Py_XDECREF"(PyObject* o)

cdef extern from *:
    """
    static PyObject* bpe_rank_int[262144];  /* NULL until the rank is first returned */
    static PyObject* bpe_recent_int[4096];  /* NULL, or an int of rank bpe_recent_rank[slot] */
    static uint32_t bpe_recent_rank[4096];
    """
    PyObject* rank_int "bpe_rank_int"[262144]     # RANK_INTS
    PyObject* recent_int "bpe_recent_int"[4096]   # RECENT_INTS
    rank_t recent_rank "bpe_recent_rank"[4096]


cdef inline int prefill_rank_ints() except -1:
    """The ints of the lowest ranks (bytes and the commonest merges), made once at import."""
    cdef size_t k
    for k in range(PREFILLED_INTS):
        rank_int[k] = new_int(k)
        if rank_int[k] == NULL:
            raise MemoryError()
    return 0


cdef inline PyObject* int_of_rank(rank_t r) except NULL:
    """A new reference to an int of value r, made once where the GIL allows."""
    cdef PyObject* item
    cdef uint32_t slot
    if r < RANK_INTS:
        item = rank_int[r]
        if item == NULL:
            item = new_int(r)
            if item == NULL:
                return NULL
            if FREE_THREADED:
                return item  # a new int each time: the table is filled under the GIL only
            rank_int[r] = item
    elif FREE_THREADED:
        return new_int(r)
    else:
        slot = (r * <uint32_t>0x9E3779B1u) >> RECENT_SHIFT
        item = recent_int[slot]
        if item == NULL or recent_rank[slot] != r:
            item = new_int(r)
            if item == NULL:
                return NULL
            xdecref(recent_int[slot])
            recent_int[slot] = item
            recent_rank[slot] = r
    incref(item)
    return item


cdef inline list vec_to_list(const RankVec* v):
    """The ranks as a Python list of ints (the one place that builds Python objects)."""
    cdef list out = PyList_New(v.size)
    cdef size_t k
    cdef PyObject* item
    for k in range(v.size):
        item = int_of_rank(v.data[k])  # raises MemoryError (the list, its unset items NULL, is freed)
        list_set_item(out, k, item)    # steals the reference
    return out


cdef inline bytearray vec_to_bytearray(const RankVec* v):
    """The ranks as native-endian uint32 bytes (numpy.frombuffer reads them as they are),
    copied once and without the GIL, so that the other threads of a batch go on meanwhile."""
    cdef bytearray out = PyByteArray_FromStringAndSize(NULL, v.size * sizeof(rank_t))
    cdef char* into = PyByteArray_AS_STRING(out)
    if v.size:  # memcpy from the NULL of an empty vector is undefined, even for 0 bytes
        with nogil:
            memcpy(into, v.data, v.size * sizeof(rank_t))
    return out
