"""How batch encoding scales from one thread to two (run on an otherwise idle machine).

    BPE_VOCAB_DIR=../shared/vocab python benchmarks/bench_threads.py

For each corpus (~4,000-character documents; a corpus under --min-mb is repeated up to
it, so that a call lasts tens of milliseconds), times bpe's ``encode_batch_to_numpy`` and,
when installed, tiktoken's ``encode_ordinary_batch`` at num_threads=1 and 2, alternating,
after a warm-up pass. Prints each library's median MB/s and the median over rounds of the
per-round ratio two threads / one (the shared host drifts between rounds; a ratio of
medians would mix its modes). The first row is the host's own ceiling: sha256 of 16 MB
buffers (hashlib releases the GIL, and hashing touches almost no memory), two at once
against two in turn. A virtual machine's two cores need not give 2x even there.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import bpe


def calls(name: str) -> dict:
    enc = bpe.get_encoding(name)
    found = {"bpe": lambda docs, threads: enc.encode_batch_to_numpy(docs, num_threads=threads)}
    try:
        import tiktoken
    except ImportError:
        return found
    theirs = tiktoken.Encoding(name, pat_str=enc._pat_str, mergeable_ranks=enc._mergeable_ranks,
                               special_tokens=enc._special_tokens)
    found["tiktoken"] = lambda docs, threads: theirs.encode_ordinary_batch(docs, num_threads=threads)
    return found


def host_ceiling(rounds: int) -> tuple[float, float, float]:
    """(one thread MB/s, two threads MB/s, median per-round ratio) of sha256 on 16 MB buffers."""
    import hashlib
    from concurrent.futures import ThreadPoolExecutor

    buf = bytes(range(256)) * (1 << 16)
    one, two = [], []
    with ThreadPoolExecutor(2) as pool:
        for _ in range(rounds):
            start = time.perf_counter()
            hashlib.sha256(buf).digest(), hashlib.sha256(buf).digest()
            one.append(2 * len(buf) / (time.perf_counter() - start) / 1e6)
            start = time.perf_counter()
            list(pool.map(lambda b: hashlib.sha256(b).digest(), [buf, buf]))
            two.append(2 * len(buf) / (time.perf_counter() - start) / 1e6)
    return statistics.median(one), statistics.median(two), statistics.median(b / a for a, b in zip(one, two))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--min-mb", type=float, default=4.0, help="repeat a smaller corpus up to this size")
    args = parser.parse_args()
    if not os.environ.get("BPE_VOCAB_DIR"):
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files")
    corpora = sorted((Path(os.environ["BPE_VOCAB_DIR"]).parent / "corpus").glob("*.txt"))
    print("| encoding | corpus | library | 1 thread MB/s | 2 threads MB/s | ratio |")
    print("|---|---|---|---|---|---|")
    one, two, ratio = host_ceiling(args.rounds)
    print(f"| (host) | 16 MB buffers | sha256 | {one:.1f} | {two:.1f} | {ratio:.2f}x |", flush=True)
    for name in ("o200k_base", "cl100k_base"):
        libraries = calls(name)
        for corpus in corpora:
            text = corpus.read_text(encoding="utf-8", errors="replace")
            docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
            size = len(text.encode("utf-8"))
            docs = docs * max(1, round(args.min_mb * 1e6 / size))
            n_bytes = sum(len(d.encode("utf-8")) for d in docs)
            speeds = {(lib, threads): [] for lib in libraries for threads in (1, 2)}
            for encode in libraries.values():
                encode(docs, 1)  # warm the piece caches
            for _ in range(args.rounds):
                for lib, encode in libraries.items():
                    for threads in (1, 2):
                        start = time.perf_counter()
                        encode(docs, threads)
                        speeds[lib, threads].append(n_bytes / (time.perf_counter() - start) / 1e6)
            for lib in libraries:
                one, two = speeds[lib, 1], speeds[lib, 2]
                ratio = statistics.median(b / a for a, b in zip(one, two))
                print(f"| {name} | {corpus.name} | {lib} | {statistics.median(one):.1f} | "
                      f"{statistics.median(two):.1f} | {ratio:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
