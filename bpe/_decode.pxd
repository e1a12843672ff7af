# Token ids back to bytes: the tokens' bytes from the table, the special tokens' from a dict.

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.number cimport PyNumber_Index
from cpython.sequence cimport PySequence_Check
from libc.stdint cimport uint32_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from bpe._types cimport NO_RANK
from bpe._vocab cimport Vocab


cdef inline bytes decode_ids(const Vocab* v, dict special_decoder, object tokens):
    """The bytes of the ids in ``tokens`` (CoreBPE.decode_bytes says how ids are read)."""
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
            if t < v.n_ranks and v.length[t] != NO_RANK:
                total += v.length[t]
            else:
                special = special_decoder.get(t)
                if special is None:
                    raise KeyError(f"Invalid token for decoding: {t}")
                total += len(special)
        result = PyBytes_FromStringAndSize(NULL, total)
        dst = PyBytes_AS_STRING(result)
        for k in range(count):
            t = c_ids[k]
            if t < v.n_ranks and v.length[t] != NO_RANK:
                memcpy(dst + pos, v.blob + v.offset[t], v.length[t])
                pos += v.length[t]
            else:
                special = special_decoder[t]
                memcpy(dst + pos, <const char*>special, len(special))
                pos += len(special)
        return result
    finally:
        free(c_ids)
