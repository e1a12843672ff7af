/* Compiled for every target by tools/cross_check.py: uses each helper of bpe/_c that does
   not need Python, so that a target whose compiler lacks one fails here, at compile time. */
#include "../bpe/_c/port.h"
#include "../bpe/_c/alloc.h"
#include "../bpe/_c/scan.h"
#include "../bpe/_c/simd.h"

int bpe_port_check(uint32_t* word, uint64_t* wide, uint8_t* tag, const uint8_t* text, size_t n) {
    uint32_t seq = bpe_load_acquire(word);
    size_t ln = 0;
    BpeMasks masks;
    void* table = bpe_table_alloc(1 << 22);
    void* scratch = bpe_scratch_alloc(1 << 21);
    scratch = bpe_scratch_grow(scratch, 1 << 22);
    if (!bpe_cas_acquire(word, seq, seq + 1))
        return -1;
    bpe_fence_release();
    bpe_store_relaxed(word + 1, bpe_load_relaxed(word + 1) + 1);
    bpe_store64(wide, bpe_load64(wide) + bpe_ctz64(0x80u));
    bpe_store_tag(tag, (uint8_t)(bpe_load_tag(tag) | 1));
    bpe_prefetch(text);
    bpe_prefetch_write(wide);
    bpe_fence_acquire();
    bpe_store_release(word, seq + 2);
    bpe_table_free(table, 1 << 22);
    bpe_scratch_free(scratch);
    bpe_simd_set(bpe_simd_best());
    bpe_classify(bpe_simd_get(), text, &masks);  /* text: 64 bytes or more */
    return (int)(bpe_cls_at(text, 0, &ln) + bpe_ascii_run(text, 0, n, 1) + bpe_byte_class[text[0]]
                 + bpe_run_end(masks.lower, 0) + bpe_msb64(masks.high | 1));
}
