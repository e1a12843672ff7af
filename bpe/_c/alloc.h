/* Memory for the engine's tables. */
#ifndef BPE_ALLOC_H
#define BPE_ALLOC_H

/* The large tables (slots, trie, token records, piece cache) are read at random, so on a
   cold start most lookups also miss the TLB, and in a virtual machine a TLB miss walks two
   sets of page tables. Where the kernel offers transparent huge pages on request, tables of
   2 MiB and more get a mapping of their own, 2 MiB-aligned, rounded up to whole 2 MiB
   pages and advised before its first touch (heap memory may already be faulted in at
   4 KiB, and advice does not change pages that are there). See docs/performance.md. */
#include "port.h"
#include <stdlib.h>
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
#endif /* BPE_ALLOC_H */
