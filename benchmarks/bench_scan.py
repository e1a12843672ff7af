"""The scanners alone, at each classifier level, and warm encoding at each level.

    BPE_VOCAB_DIR=../shared/vocab taskset -c 1 python benchmarks/bench_scan.py

For each encoding and shared corpus: ``count_cuts`` (the pieces of the whole corpus,
cut and counted, no ranks) and a warm pass of ``encode_ordinary`` over ~4,000-character
documents, at every level ``bpe._core.simd_levels()`` lists ("none" reads one byte at a
time; "scalar" is the masks' slow reference walk and is left out unless --all). The levels
alternate within each round; the table gives the median MB/s and the median over rounds of
each round's ratio to "none" (the shared host drifts between rounds; a ratio of medians
would mix its modes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import bpe
from bpe import _core


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--mb", type=float, default=1.0, help="the first MB of each corpus (default 1)")
    parser.add_argument("--all", action="store_true", help="time the scalar reference level too")
    args = parser.parse_args()
    if not os.environ.get("BPE_VOCAB_DIR"):
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files")
    corpora = sorted((Path(os.environ["BPE_VOCAB_DIR"]).parent / "corpus").glob("*.txt"))
    levels = [level for level in _core.simd_levels() if args.all or level != "scalar"]
    print(f"levels: {', '.join(levels)} (default {_core.simd_level()})")
    print("| encoding | corpus | mode | " + " | ".join(levels) + " |")
    print("|---|---|---|" + "---|" * len(levels))
    for name in ("o200k_base", "cl100k_base"):
        enc = bpe.get_encoding(name)
        core = enc._core_bpe
        for corpus in corpora:
            text = corpus.read_text(encoding="utf-8", errors="replace")[: int(args.mb * 1e6)]
            data = text.encode()
            docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
            for d in docs:  # warm the piece cache
                core.encode_ordinary(d)
            modes = {"scan": lambda: core.count_cuts(data),
                     "warm encode": lambda: [core.encode_ordinary(d) for d in docs]}
            for mode, run in modes.items():
                speed: dict[str, list[float]] = {level: [] for level in levels}
                ratio: dict[str, list[float]] = {level: [] for level in levels}
                for _ in range(args.rounds):
                    took = {}
                    for level in levels:
                        old = _core.set_simd_level(level)
                        try:
                            start = time.perf_counter()
                            run()
                            took[level] = time.perf_counter() - start
                        finally:
                            _core.set_simd_level(old)
                        speed[level].append(len(data) / took[level] / 1e6)
                    for level in levels:
                        ratio[level].append(took["none"] / took[level])
                cells = [f"{statistics.median(speed[l]):.0f} ({statistics.median(ratio[l]):.2f}x)" for l in levels]
                print(f"| {name} | {corpus.name} | {mode} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
