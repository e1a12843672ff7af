# The C helpers of bpe/_c: portability (port.h) and table memory (alloc.h).

from libc.stdint cimport uint8_t, uint32_t, uint64_t

cdef extern from "_c/port.h":
    uint32_t bpe_load_acquire(const uint32_t* p) noexcept nogil
    uint32_t bpe_load_relaxed(const uint32_t* p) noexcept nogil
    int bpe_cas_acquire(uint32_t* p, uint32_t expected, uint32_t desired) noexcept nogil
    void bpe_store_release(uint32_t* p, uint32_t v) noexcept nogil
    void bpe_store_relaxed(uint32_t* p, uint32_t v) noexcept nogil
    void bpe_fence_acquire() noexcept nogil
    void bpe_fence_release() noexcept nogil
    uint8_t bpe_load_tag(const uint8_t* p) noexcept nogil
    void bpe_store_tag(uint8_t* p, uint8_t v) noexcept nogil
    uint64_t bpe_load64(const uint64_t* p) noexcept nogil
    void bpe_store64(uint64_t* p, uint64_t v) noexcept nogil
    void bpe_prefetch(const void* p) noexcept nogil
    void bpe_prefetch_write(const void* p) noexcept nogil
    unsigned bpe_ctz64(uint64_t x) noexcept nogil

cdef extern from "_c/alloc.h":
    void* table_alloc "bpe_table_alloc"(size_t size) noexcept nogil
    void table_free "bpe_table_free"(void* p, size_t size) noexcept nogil
    void* scratch_alloc "bpe_scratch_alloc"(size_t size) noexcept nogil
    void scratch_free "bpe_scratch_free"(void* p) noexcept nogil
    void* scratch_grow "bpe_scratch_grow"(void* p, size_t size) noexcept nogil
