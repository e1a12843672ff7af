# Python ints and bytes for the ids: the one place that builds Python objects from ranks.

from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from cpython.list cimport PyList_New
from cpython.ref cimport PyObject
from libc.stdint cimport uint32_t
from libc.string cimport memcpy

from bpe._types cimport RankVec, rank_t

# BPE gives its most frequent tokens the lowest ranks, so the ints
# of ranks below SHARED_INTS are made once and shared (an incref instead of an allocation),
# and for the rest a direct-mapped table keeps the last int made per slot. See
# docs/performance.md.
cdef enum:
    SHARED_INTS = 4096   # shared ints: 128 KiB of objects, in cache
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
    # The recent-int slots are a plain array that the GIL guards; without a GIL every high
    # rank gets a new int instead.
    const bint FREE_THREADED "BPE_FREE_THREADED"

cdef extern from "Python.h":
    PyObject* new_int "PyLong_FromLongLong"(long long value)
    void list_set_item "PyList_SET_ITEM"(object lst, Py_ssize_t i, PyObject* item)
    void incref "Py_INCREF"(PyObject* o)
    void xdecref "Py_XDECREF"(PyObject* o)

cdef extern from *:
    """
    static PyObject* bpe_shared_int[4096];
    static PyObject* bpe_recent_int[4096];  /* NULL, or an int of rank bpe_recent_rank[slot] */
    static uint32_t bpe_recent_rank[4096];
    """
    PyObject* shared_int "bpe_shared_int"[4096]   # SHARED_INTS
    PyObject* recent_int "bpe_recent_int"[4096]   # RECENT_INTS
    rank_t recent_rank "bpe_recent_rank"[4096]


cdef inline int make_shared_ints() except -1:
    cdef size_t k
    for k in range(SHARED_INTS):
        shared_int[k] = new_int(k)  # kept for the life of the process
        if shared_int[k] == NULL:
            raise MemoryError()
    return 0



cdef inline list vec_to_list(const RankVec* v):
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


cdef inline bytearray vec_to_bytearray(const RankVec* v):
    """The ranks as native-endian uint32 bytes (numpy.frombuffer reads them as they are),
    copied once and without the GIL, so that the other threads of a batch go on meanwhile."""
    cdef bytearray out = PyByteArray_FromStringAndSize(NULL, v.size * sizeof(rank_t))
    cdef char* into = PyByteArray_AS_STRING(out)
    if v.size:  # memcpy from the NULL of an empty vector is undefined, even for 0 bytes
        with nogil:
            memcpy(into, v.data, v.size * sizeof(rank_t))
    return out
