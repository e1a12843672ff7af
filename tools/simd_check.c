/* Each vector classifier of bpe/_c/simd.h against the scalar reference, outside Python:
   for a CPU this machine cannot run, through an emulator (tools/simd_check.sh). Every byte
   value in every lane, then random blocks; exits 1 at the first difference. */
#include <stdio.h>
#include <stdlib.h>
#include "../bpe/_c/simd.h"

static int same(const BpeMasks* a, const BpeMasks* b) {
    return a->upper == b->upper && a->lower == b->lower && a->digit == b->digit && a->space == b->space
        && a->high == b->high && a->other == b->other && a->newline == b->newline
        && a->slash == b->slash && a->blank == b->blank && a->quote == b->quote;
}

int main(void) {
    static const int levels[] = {BPE_SIMD_SSE2, BPE_SIMD_AVX2, BPE_SIMD_NEON};
    static const char* names[] = {"sse2", "avx2", "neon"};
    uint8_t block[64];
    BpeMasks want, got;
    unsigned seed = 7;
    int k, shift, lane, r, tested = 0;
    for (k = 0; k < 3; k++) {
        if (!bpe_simd_supported(levels[k]))
            continue;
        for (r = 0; r < 256 + 100000; r++) {
            for (lane = 0; lane < 64; lane++) {
                if (r < 256) {
                    shift = r;
                    block[lane] = (uint8_t)(shift + lane);
                } else {
                    seed = seed * 1103515245u + 12345u;
                    block[lane] = (uint8_t)(seed >> 16);
                }
            }
            bpe_classify_scalar(block, &want);
            bpe_classify(levels[k], block, &got);
            if (!same(&want, &got)) {
                printf("%s differs from the scalar reference on block %d\n", names[k], r);
                return 1;
            }
        }
        printf("%s: the same masks as the scalar reference on %d blocks\n", names[k], 256 + 100000);
        tested++;
    }
    if (!tested) {
        printf("no vector level on this CPU\n");
        return 1;
    }
    return 0;
}
