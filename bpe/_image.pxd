# The engine's tables as a file (bpe/_image.pyx).

from libc.stdint cimport uint8_t

from bpe._backtrack cimport Backtrack
from bpe._vocab cimport Vocab

cdef int image_write(const char* path, const Vocab* v, const Backtrack* bt, const uint8_t* key) noexcept nogil
cdef int image_read(const char* path, Vocab* v, Backtrack** bt_out, const uint8_t* key) noexcept nogil
