"""How encode time grows with input length on pathological inputs (should be linear).

    BPE_VOCAB_DIR=../shared/vocab taskset -c 1 python benchmarks/bench_worst_case.py

For each input kind, times encode_ordinary at n = 10^5 and 10^6 code points (median of 5)
and prints the ratio; linear growth gives about 10, and anything above 12 is a finding.
Every timed call gets a freshly built Encoding, so that the piece cache starts empty: with
one Encoding, the repeats at 10^5 would find every piece cached and the ratio would mislead.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_worst_case import make  # noqa: E402

import bpe  # noqa: E402

KINDS = ["a", "space", "letters", "emoji", "newline", "bytes"]


def median_time(enc, text: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        fresh = bpe.Encoding(enc.name, pat_str=enc._pat_str, mergeable_ranks=enc._mergeable_ranks,
                             special_tokens=enc._special_tokens)
        start = time.perf_counter()
        fresh.encode_ordinary(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    if not os.environ.get("BPE_VOCAB_DIR"):
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files")
    print("| encoding | input | bpe 10^5 (s) | bpe 10^6 (s) | growth x10 |")
    print("|---|---|---|---|---|")
    for name in ("o200k_base", "cl100k_base"):
        enc = bpe.get_encoding(name)
        for kind in KINDS:
            small, large = make(kind, 10**5), make(kind, 10**6)
            t_small = median_time(enc, small)
            t_large = median_time(enc, large)
            print(f"| {name} | {kind} | {t_small:.4f} | {t_large:.3f} | {t_large / t_small:.1f} |", flush=True)


if __name__ == "__main__":
    main()
