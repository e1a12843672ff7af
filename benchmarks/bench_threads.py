"""How encode_batch_to_numpy scales from one thread to two (run on an otherwise idle machine).

    BPE_VOCAB_DIR=../shared/vocab python benchmarks/bench_threads.py

Prints MB/s for num_threads=1 and 2, alternating, median of 5, and the ratio.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import bpe


def main() -> None:
    if not os.environ.get("BPE_VOCAB_DIR"):
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files")
    corpora = sorted((Path(os.environ["BPE_VOCAB_DIR"]).parent / "corpus").glob("*.txt"))
    print("| encoding | corpus | 1 thread MB/s | 2 threads MB/s | ratio |")
    print("|---|---|---|---|---|")
    for name in ("o200k_base", "cl100k_base"):
        enc = bpe.get_encoding(name)
        for corpus in corpora:
            text = corpus.read_text(encoding="utf-8", errors="replace")
            docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
            n_bytes = len(text.encode("utf-8"))
            enc.encode_batch_to_numpy(docs)  # warm the piece cache for both
            speeds: dict[int, list[float]] = {1: [], 2: []}
            for _ in range(5):
                for threads in (1, 2):
                    start = time.perf_counter()
                    enc.encode_batch_to_numpy(docs, num_threads=threads)
                    speeds[threads].append(n_bytes / (time.perf_counter() - start) / 1e6)
            one, two = statistics.median(speeds[1]), statistics.median(speeds[2])
            print(f"| {name} | {corpus.name} | {one:.1f} | {two:.1f} | {two / one:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
