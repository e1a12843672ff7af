"""How encode time grows with input length on pathological inputs (should be linear).

    BPE_VOCAB_DIR=../shared/vocab taskset -c 1 python benchmarks/bench_worst_case.py

For each input kind, times encode_ordinary at n = 10^5, 10^6 and 10^7 code points and
prints each step's growth; linear growth gives about 10, and anything above 12 is a
finding. The sizes are timed side by side in each of --rounds rounds (a round takes the
median of 5 calls at 10^5, of 3 at 10^6, one call at 10^7), and a growth is the median over
rounds of that round's ratio: the shared host drifts by more than 20% between minutes, which
a ratio of medians taken minutes apart would mix in. The times printed are medians over
rounds. Every timed call gets a freshly built Encoding, so that
the piece cache starts empty: with one Encoding, the repeats at 10^5 would find every piece
cached and the ratio would mislead. The three scanner families are o200k_base, cl100k_base
and, for gpt2/r50k/p50k's pattern (whose rank files are not at hand offline), o200k_base's
ranks split by that pattern: the growth is the scanner's and the merges', not the ranks'.
`--max 6` stops at 10^6.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_worst_case import make  # noqa: E402

import bpe  # noqa: E402

from bpe import patterns  # noqa: E402

KINDS = ["a", "space", "letters", "emoji", "newline", "bytes", "digits"]


def median_time(enc, pat_str: str, text: str, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        fresh = bpe.Encoding(enc.name, pat_str=pat_str, mergeable_ranks=enc._ranks,
                             special_tokens=enc._special_tokens)
        start = time.perf_counter()
        fresh.encode_ordinary(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def growth(enc, pat_str: str, texts: dict[int, str], rounds: int) -> tuple[list[float], list[float]]:
    """(median time of each text, median over rounds of each step's ratio later / earlier) for
    the texts of n = 10^5, 10^6, ... code points (``bytes`` decodes to fewer: keyed by n)."""
    per_round = [[median_time(enc, pat_str, text, {10**5: 5, 10**6: 3}.get(n, 1)) for n, text in texts.items()]
                 for _ in range(rounds)]
    times = [statistics.median(row[k] for row in per_round) for k in range(len(texts))]
    ratios = [statistics.median(row[k + 1] / row[k] for row in per_round) for k in range(len(texts) - 1)]
    return times, ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max", type=int, choices=[6, 7], default=7, help="largest power of ten (default 7)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every size side by side (default 5)")
    args = parser.parse_args()
    if not os.environ.get("BPE_VOCAB_DIR"):
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files")
    sizes = [10**k for k in range(5, args.max + 1)]
    print("| scanner | input | " + " | ".join(f"10^{len(str(n)) - 1} (s)" for n in sizes) + " | "
          + " | ".join(f"x10 to 10^{len(str(n)) - 1}" for n in sizes[1:]) + " |")
    print("|---" * (2 * len(sizes) + 1) + "|")
    o200k = bpe.get_encoding("o200k_base")
    rows = [("o200k_base", o200k, o200k._pat_str), ("cl100k_base", bpe.get_encoding("cl100k_base"), None),
            ("gpt2 pattern, o200k ranks", o200k, patterns.R50K_PATTERN)]
    for label, enc, pat_str in rows:
        for kind in KINDS:
            times, ratios = growth(enc, pat_str or enc._pat_str, {n: make(kind, n) for n in sizes}, args.rounds)
            print(f"| {label} | {kind} | " + " | ".join(f"{t:.4f}" for t in times) + " | "
                  + " | ".join(f"{g:.1f}" for g in ratios) + " |", flush=True)


if __name__ == "__main__":
    main()
