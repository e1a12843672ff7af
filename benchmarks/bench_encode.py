"""Single-thread encode_ordinary throughput of bpe against tiktoken, in the same run.

    taskset -c 1 python benchmarks/bench_encode.py            # both encodings, shared corpora
    taskset -c 1 python benchmarks/bench_encode.py --quick    # fewer repeats

Needs BPE_VOCAB_DIR (the official rank files) and tiktoken (``pip install '.[bench]'``).
Corpora are ``../shared/corpus/*.txt`` beside BPE_VOCAB_DIR, or the files given with
--corpus. Each corpus is timed three ways, bpe and tiktoken alternating, medians reported:

- cold: a fresh process encodes each ~4 KB document once (nothing warmed up);
- warm: the same documents again in one process, after a first pass;
- whole: the corpus as one string.

Before timing, the ids of both are compared on every document: a benchmark of a wrong
answer is worthless. Output is a Markdown table with MB/s (of UTF-8 input) and ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DOC_CHARS = 4000
PATTERN_NAMES = ["o200k_base", "cl100k_base"]


def load_docs(path: Path) -> tuple[list[str], str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return [text[i : i + DOC_CHARS] for i in range(0, len(text), DOC_CHARS)], text


def make_encoders(name: str):
    import tiktoken

    import bpe

    ours = bpe.get_encoding(name)
    theirs = tiktoken.Encoding(name, pat_str=ours._pat_str, mergeable_ranks=ours._mergeable_ranks,
                               special_tokens=ours._special_tokens)
    return {"bpe": ours, "tiktoken": theirs}


def cold_child(lib: str, name: str, corpus: str) -> None:
    """Run in a fresh process: build the encoder, time one pass over the documents."""
    encoders = make_encoders(name)
    docs, _ = load_docs(Path(corpus))
    encode = encoders[lib].encode_ordinary
    start = time.perf_counter()
    for doc in docs:
        encode(doc)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def time_cold(lib: str, name: str, corpus: Path) -> float:
    out = subprocess.run(
        [sys.executable, __file__, "--cold-child", lib, name, str(corpus)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def time_pass(encode, items) -> float:
    start = time.perf_counter()
    for item in items:
        encode(item)
    return time.perf_counter() - start


def bench(name: str, corpus: Path, repeats: int) -> dict:
    encoders = make_encoders(name)
    docs, whole = load_docs(corpus)
    n_bytes = len(whole.encode("utf-8"))
    wrong = sum(encoders["bpe"].encode_ordinary(d) != encoders["tiktoken"].encode_ordinary(d) for d in docs)
    if wrong:
        raise SystemExit(f"{corpus.name}: {wrong} documents give different ids; not timing a wrong answer")
    times: dict[str, dict[str, list[float]]] = {lib: {"cold": [], "warm": [], "whole": []} for lib in encoders}
    for _ in range(repeats):
        for lib in ("bpe", "tiktoken"):  # alternate, so drift hits both
            times[lib]["cold"].append(time_cold(lib, name, corpus))
            times[lib]["warm"].append(time_pass(encoders[lib].encode_ordinary, docs))
            times[lib]["whole"].append(time_pass(encoders[lib].encode_ordinary, [whole]))
    return {
        lib: {kind: n_bytes / statistics.median(v) / 1e6 for kind, v in kinds.items()}
        for lib, kinds in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", type=Path, help="text file (repeatable)")
    parser.add_argument("--encoding", action="append", choices=PATTERN_NAMES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--cold-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.cold_child:
        cold_child(*args.cold_child)
        return
    if not os.environ.get("BPE_VOCAB_DIR"):
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files (e.g. ../shared/vocab)")
    corpora = args.corpus or sorted((Path(os.environ["BPE_VOCAB_DIR"]).parent / "corpus").glob("*.txt"))
    if not corpora:
        raise SystemExit("no corpus files: pass --corpus FILE")
    repeats = 3 if args.quick else args.repeats
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    print(f"# encode_ordinary, one thread (CPUs {affinity}), MB/s of UTF-8 input, median of {repeats}")
    print("| encoding | corpus | cold bpe | cold tiktoken | ratio | warm bpe | warm tiktoken | ratio | whole bpe | whole tiktoken | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.encoding or PATTERN_NAMES:
        for corpus in corpora:
            r = bench(name, corpus, repeats)
            cells = []
            for kind in ("cold", "warm", "whole"):
                ours, theirs = r["bpe"][kind], r["tiktoken"][kind]
                cells += [f"{ours:.1f}", f"{theirs:.1f}", f"**{ours / theirs:.2f}x**"]
            print(f"| {name} | {corpus.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
