"""Single-thread encode_ordinary throughput of bpe against tiktoken, in the same run.

    taskset -c 1 python benchmarks/bench_encode.py            # both encodings, shared corpora
    taskset -c 1 python benchmarks/bench_encode.py --quick    # fewer repeats

Needs BPE_VOCAB_DIR (the official rank files) and tiktoken (``pip install '.[bench]'``).
Corpora are ``../shared/corpus/*.txt`` beside BPE_VOCAB_DIR, or the files given with
--corpus. Each corpus is timed three ways, bpe and tiktoken alternating, medians reported:

- cold: a fresh process encodes each ~4 KB document once (nothing warmed up);
- steady: a fresh process encodes every other document untimed, then the rest timed
  (caches warm with the corpus's vocabulary, the documents themselves new);
- warm: the same documents again in one process, after a first pass;
- whole: the corpus as one string.

Peers (quicktok-v1, fastokens, gigatoken, splintr-rs, riptoken, wordchipper, kitoken) are
timed where installed. Before timing, every library's ids are compared with tiktoken's on
every document: a peer that differs is left out, saying so (a benchmark of a wrong answer
is worthless), and bpe differing stops the run. Output is a Markdown table with MB/s (of UTF-8 input) and ratios to
tiktoken. The shared host drifts between fast and slow modes from one round to the next,
so each ratio is the median of ratios taken within a round, not a ratio of two medians.
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


def _bpe(name):
    import bpe

    return bpe.get_encoding(name).encode_ordinary


def _tiktoken(name):
    import tiktoken

    import bpe

    ours = bpe.get_encoding(name)
    return tiktoken.Encoding(name, pat_str=ours._pat_str, mergeable_ranks=ours._mergeable_ranks,
                             special_tokens=ours._special_tokens).encode_ordinary


def _quicktok(name):
    import quicktok

    return quicktok.get_encoding(name).encode


def _fastokens(name):
    import fastokens

    tok = fastokens.Tokenizer.from_tiktoken(
        str(Path(os.environ["BPE_VOCAB_DIR"]) / f"{name}.tiktoken"), encoding=name)
    return lambda text: tok.encode_ordinary(text).ids


def _rank_file(name) -> str:
    return str(Path(os.environ["BPE_VOCAB_DIR"]) / f"{name}.tiktoken")


def _gigatoken(name):
    import gigatoken

    return gigatoken.Tokenizer.from_tiktoken(_rank_file(name)).as_tiktoken().encode_ordinary


def _splintr(name):
    import splintr

    return splintr.Tokenizer.from_pretrained(name).encode_ordinary  # its own copy of the ranks


def _riptoken(name):
    import riptoken

    import bpe

    ours = bpe.get_encoding(name)  # riptoken.get_encoding asks tiktoken, which downloads
    return riptoken.CoreBPE(ours.mergeable_ranks, ours.special_tokens, ours.pat_str).encode_ordinary


def _wordchipper(name):
    import wordchipper

    return wordchipper.Tokenizer.from_pretrained(name).encode


def _kitoken(name):
    import kitoken

    return kitoken.Kitoken.from_tiktoken_file(_rank_file(name)).encode


#: name -> factory of a per-document ``encode(text) -> list[int]``; peers only where installed.
PER_DOCUMENT = {"bpe": _bpe, "tiktoken": _tiktoken, "quicktok-v1": _quicktok, "fastokens": _fastokens,
                "gigatoken": _gigatoken, "splintr-rs": _splintr, "riptoken": _riptoken,
                "wordchipper": _wordchipper, "kitoken": _kitoken}


def available(name: str) -> dict:
    found = {}
    for lib, factory in PER_DOCUMENT.items():
        try:
            found[lib] = factory(name)
        except ImportError:
            continue
    return found


def flat_batch_calls(name: str, only: str | None = None) -> dict:
    """Whole-corpus calls that build no per-token Python objects, one thread. With only, the
    one library's call alone (and nothing else's tables in the process)."""
    import numpy as np

    calls = {}
    if only in (None, "bpe"):
        import bpe

        enc = bpe.get_encoding(name)
        calls["bpe"] = lambda docs: enc.encode_batch_to_numpy(docs, num_threads=1)[0]
    if only in (None, "fastokens"):
        try:
            import fastokens

            tok = fastokens.Tokenizer.from_tiktoken(
                str(Path(os.environ["BPE_VOCAB_DIR"]) / f"{name}.tiktoken"), encoding=name)
            calls["fastokens"] = lambda docs: np.frombuffer(tok.encode_batch_flat(docs)[0], np.uint32)
        except ImportError:
            pass
    return calls


def count_calls(name: str) -> dict:
    import bpe

    enc = bpe.get_encoding(name)
    calls = {"bpe": lambda docs: enc.count_batch(docs, num_threads=1)}
    try:
        import toktok

        calls["toktok-rs"] = lambda docs: toktok.batch_count(docs, name)
    except ImportError:
        pass
    try:
        import quicktok

        qenc = quicktok.get_encoding(name)
        calls["quicktok-v1"] = lambda docs: quicktok.count_batch(qenc, docs, 1).tolist()
    except ImportError:
        pass
    return calls


def cold_child(lib: str, name: str, corpus: str, mode: str = "cold") -> None:
    """Run in a fresh process: build the encoder, time one pass over the documents (cold),
    or encode every other document untimed and then time the rest (steady: a service that
    has seen the vocabulary of its traffic, but not these documents)."""
    encode = PER_DOCUMENT[lib](name)
    docs, _ = load_docs(Path(corpus))
    if mode == "steady":
        for doc in docs[::2]:
            encode(doc)
        docs = docs[1::2]
    start = time.perf_counter()
    for doc in docs:
        encode(doc)
    print(json.dumps({"seconds": time.perf_counter() - start,
                      "bytes": sum(len(d.encode("utf-8")) for d in docs)}))


def time_cold(lib: str, name: str, corpus: Path, mode: str = "cold") -> tuple[float, int]:
    out = subprocess.run(
        [sys.executable, __file__, "--cold-child", lib, name, str(corpus), mode],
        check=True, capture_output=True, text=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], result["bytes"]


def time_pass(encode, items) -> float:
    start = time.perf_counter()
    for item in items:
        encode(item)
    return time.perf_counter() - start


def time_call(call, docs) -> float:
    start = time.perf_counter()
    call(docs)
    return time.perf_counter() - start


def bench(name: str, corpus: Path, repeats: int, cold_repeats: int) -> dict:
    """(MB/s, ratio to tiktoken) per library and mode: cold, warm, whole (per document) and
    flat, count (batch)."""
    encoders = available(name)
    docs, whole = load_docs(corpus)
    n_bytes = len(whole.encode("utf-8"))
    want = [encoders["tiktoken"](d) for d in docs]
    for lib, encode in list(encoders.items()):
        wrong = sum(list(encode(d)) != w for d, w in zip(docs, want))
        if wrong and lib == "bpe":
            raise SystemExit(f"bpe on {corpus.name}: {wrong} documents differ from tiktoken")
        if wrong:  # a peer's wrong answer is not timed; say so
            print(f"# {lib} on {name} {corpus.name}: {wrong} of {len(docs)} documents differ from tiktoken; "
                  "left out", flush=True)
            del encoders[lib]
    flat, counts = flat_batch_calls(name), count_calls(name)
    flat_want = [t for w in want for t in w]
    for lib, call in flat.items():
        if call(docs).tolist() != flat_want:
            raise SystemExit(f"{lib} flat batch on {corpus.name} differs from tiktoken")
    for lib, call in list(counts.items()):
        if list(call(docs)) != [len(w) for w in want]:
            raise SystemExit(f"{lib} counts on {corpus.name} differ from tiktoken")
    times: dict[str, dict[str, list[float]]] = {}
    for round_ in range(max(repeats, cold_repeats)):
        for lib, encode in encoders.items():  # alternate, so drift hits all alike
            t = times.setdefault(lib, {})
            if round_ < cold_repeats:
                seconds, _ = time_cold(lib, name, corpus)
                t.setdefault("cold", []).append(seconds)
                seconds, steady_bytes = time_cold(lib, name, corpus, "steady")
                # scaled to the whole corpus's bytes, so MB/s below divides alike
                t.setdefault("steady", []).append(seconds * n_bytes / steady_bytes)
            if round_ < repeats:
                t.setdefault("warm", []).append(time_pass(encode, docs))
                t.setdefault("whole", []).append(time_pass(encode, [whole]))
        if round_ >= repeats:
            continue
        for lib, call in flat.items():
            times.setdefault(lib, {}).setdefault("flat", []).append(time_call(call, docs))
        for lib, call in counts.items():
            times.setdefault(lib, {}).setdefault("count", []).append(time_call(call, docs))
    # The host drifts between modes from one round to the next, so each ratio is taken
    # within a round (tiktoken's time over the library's, in the same mode; flat and count
    # against tiktoken's warm pass) and the median of those is reported.
    ref = times["tiktoken"]
    return {
        lib: {kind: (n_bytes / statistics.median(v) / 1e6,
                     statistics.median(b / x for b, x in zip(ref.get(kind, ref["warm"]), v)))
              for kind, v in kinds.items()}
        for lib, kinds in times.items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", action="append", type=Path, help="text file (repeatable)")
    parser.add_argument("--encoding", action="append", choices=PATTERN_NAMES)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cold-repeats", type=int, default=9,
                        help="fresh processes per library for the cold figure (one pass each is short, "
                             "so it takes more of them to settle)")
    parser.add_argument("--quick", action="store_true", help="3 repeats")
    parser.add_argument("--cold-child", nargs=4, help=argparse.SUPPRESS)
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
    cold_repeats = 3 if args.quick else args.cold_repeats
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    modes = ["cold", "steady", "warm", "whole", "flat", "count"]
    print(f"# one thread (CPUs {affinity}), MB/s of UTF-8 input, median of {repeats} ({cold_repeats} for cold); "
          "in brackets: the median over rounds of the ratio to tiktoken's encode_ordinary timed in the same "
          "round and mode (flat, count: to its warm)")
    print("| encoding | corpus | library | " + " | ".join(modes) + " |")
    print("|---|---|---|" + "---|" * len(modes))
    for name in args.encoding or PATTERN_NAMES:
        for corpus in corpora:
            r = bench(name, corpus, repeats, cold_repeats)
            for lib, speeds in r.items():
                cells = []
                for mode in modes:
                    if mode not in speeds:
                        cells.append("")
                        continue
                    speed, ratio = speeds[mode]
                    cells.append(f"{speed:.1f} ({ratio:.2f}x)")
                print(f"| {name} | {corpus.name} | {lib} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
