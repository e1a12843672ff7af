/* Each vector classifier of bpe/_c/simd.h against the scalar reference, outside Python:
   for a CPU this machine cannot run, through an emulator (tools/simd_check.sh). Every byte
   value in every lane, then random blocks; then the UTF-8 writer's ASCII runs with the
   first non-ASCII code unit in every lane. Exits 1 at the first difference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../bpe/_c/simd.h"

static int same(const BpeMasks* a, const BpeMasks* b) {
    return a->upper == b->upper && a->lower == b->lower && a->digit == b->digit && a->space == b->space
        && a->high == b->high && a->other == b->other && a->newline == b->newline
        && a->slash == b->slash && a->blank == b->blank && a->quote == b->quote;
}

/* The ASCII runs of bpe_ascii_units, Latin-1 and UCS-2: the count, and the bytes written,
   for a run of every length up to 80 ended by every kind of unit that is not ASCII. */
static int check_ascii_runs(void) {
    static const uint16_t ends[] = {0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF};
    uint8_t latin1[96], ascii[96], out[96 + 16];
    uint16_t ucs2[96];
    size_t run, k, e, got, want;
    int wide;
    for (e = 0; e < sizeof ends / sizeof ends[0]; e++) {
        for (run = 0; run <= 80; run++) {
            for (k = 0; k < 96; k++) {
                ascii[k] = (uint8_t)(k == run ? 0 : 32 + (k * 7) % 95);
                ucs2[k] = k == run ? ends[e] : ascii[k];
                latin1[k] = k == run ? (uint8_t)(ends[e] < 0x100 ? ends[e] : 0x80) : ascii[k];
            }
#if defined(BPE_X86_64) || defined(BPE_HAVE_NEON)
            want = run;
#else
            want = 0;
#endif
            for (wide = 0; wide < 2; wide++) {
                if (!wide && ends[e] >= 0x100)
                    continue;
                got = wide ? bpe_ascii_units(ucs2, 1, 96, out) : bpe_ascii_units(latin1, 0, 96, out);
                if (got != want || memcmp(out, ascii, got) != 0) {
                    printf("%s: an ASCII run of %zu ended by U+%04X counted as %zu (or copied wrong)\n",
                           wide ? "ucs2" : "latin1", run, (unsigned)ends[e], got);
                    return 1;
                }
            }
        }
    }
    printf("ascii runs: counted and copied at every length up to 80\n");
    return 0;
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
    return check_ascii_runs();
}
