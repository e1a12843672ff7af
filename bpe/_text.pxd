# A batch of Python strs read without the GIL, and their UTF-8.

from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t
from libc.stdlib cimport calloc, free, malloc

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

cdef extern from "_c/utf8.h":
    ctypedef struct BpeUtf8:
        const uint8_t* data
        Py_ssize_t size
        uint8_t* owned
    int bpe_utf8_ready(object text, BpeUtf8* u) except -1
    int bpe_utf8_write(PyObject* text, BpeUtf8* u) noexcept nogil


cdef inline int raise_for_utf8(str text, int bad) except -1:
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


cdef inline int texts_open(Texts* t, tuple keep) except -1:
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


# The work a batch call does on each text: 0, or a failure that stops the batch.
ctypedef int (*TextWork)(void* job, Py_ssize_t k, const uint8_t* s, size_t n) noexcept nogil


cdef inline int texts_run(Texts* t, TextWork work, void* job, Py_ssize_t* failed,
                          int* bad) noexcept nogil:
    """Without the GIL: work on each text's UTF-8 in order, each text's UTF-8 freed after
    it. Returns 0 or work's failure; a text that UTF-8 cannot encode stops the batch with
    failed[0] = its index and bad[0] = bpe_utf8_write's failure (see raise_for_utf8)."""
    cdef Py_ssize_t k
    cdef int rc = 0
    for k in range(t.count):
        bad[0] = texts_utf8(t, k)
        if bad[0]:
            failed[0] = k
            return 0
        rc = work(job, k, t.utf8[k].data, t.utf8[k].size)
        texts_done(t, k)
        if rc:
            return rc
    return 0


cdef inline void texts_close(Texts* t) noexcept:
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

