"""Two encoders side by side in alternating fresh processes: the ratio of their speeds.

    taskset -c 1 python benchmarks/bench_pair.py fastokens bpe               # a peer against bpe
    taskset -c 1 python benchmarks/bench_pair.py bpe@../base bpe --rounds 11  # two builds of bpe

Each contender is a library of ``bench_encode.py`` (bpe, tiktoken, fastokens, ...) or
``bpe@FOLDER``: the bpe package (built in place) in FOLDER, such as a ``git worktree`` of
another commit, to measure a change. In every round each contender runs in a fresh process
(the order alternating from round to round) that encodes the first --docs documents of
~4 KB once (first), three times more (warm: the fastest pass), and where the library has a
flat batch call (bpe ``encode_batch_to_numpy`` on one thread, fastokens
``encode_batch_flat``) the same documents through it three times (flat). Printed per corpus
and encoding: the median over rounds of the per-round ratio time(A) / time(B), so above 1
means B is faster. The shared host drifts between fast and slow modes from round to round;
a ratio taken within a round cancels most of that. Needs BPE_VOCAB_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def child(spec: str, name: str, corpus: str, n_docs: int) -> None:
    lib, _, folder = spec.partition("@")
    sys.path.insert(0, str(HERE))
    if folder:  # ahead of HERE and of any installed bpe
        sys.path.insert(0, str(Path(folder).resolve()))
    import bench_encode

    encode = bench_encode.PER_DOCUMENT[lib](name)
    flat = bench_encode.flat_batch_calls(name, only=lib).get(lib)
    docs = bench_encode.load_docs(Path(corpus))[0][:n_docs]
    if lib == "bpe":  # the package imported is the one asked for
        import bpe

        expected = Path(folder).resolve() if folder else None
        if expected is not None and Path(bpe.__file__).resolve().parent.parent != expected:
            raise SystemExit(f"bpe came from {bpe.__file__}, not from {expected}")
    result = {"first": bench_encode.time_pass(encode, docs),
              "warm": min(bench_encode.time_pass(encode, docs) for _ in range(3))}
    if flat is not None:
        result["flat"] = min(bench_encode.time_call(flat, docs) for _ in range(3))
    print(json.dumps(result))


def run(spec: str, name: str, corpus: Path, n_docs: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", spec, name, str(corpus), str(n_docs)],
                         capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{spec} on {name} {corpus.name} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if sys.argv[1:2] == ["--child"]:  # one timed process (see run)
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("a", help="contender A: a library name, or bpe@FOLDER")
    parser.add_argument("b", help="contender B, the same way")
    parser.add_argument("--rounds", type=int, default=7, help="fresh-process pairs per cell (default 7)")
    parser.add_argument("--docs", type=int, default=300, help="documents of ~4 KB per pass (default 300)")
    parser.add_argument("--encoding", action="append", choices=["o200k_base", "cl100k_base"])
    parser.add_argument("--corpus", action="append", type=Path, help="text file (repeatable)")
    args = parser.parse_args()
    if not os.environ.get("BPE_VOCAB_DIR"):
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files (e.g. ../shared/vocab)")
    corpora = args.corpus or sorted((Path(os.environ["BPE_VOCAB_DIR"]).parent / "corpus").glob("*.txt"))
    if not corpora:
        raise SystemExit("no corpus files: pass --corpus FILE")
    print(f"# time({args.a}) / time({args.b}), median of {args.rounds} rounds of fresh processes, "
          f"first {args.docs} documents; above 1: {args.b} is faster")
    print("| encoding | corpus | first | warm | flat |")
    print("|---|---|---|---|---|")
    for name in args.encoding or ["o200k_base", "cl100k_base"]:
        for corpus in corpora:
            ratios: dict[str, list[float]] = {}
            for round_ in range(args.rounds):
                order = [args.a, args.b] if round_ % 2 == 0 else [args.b, args.a]
                times = {spec: run(spec, name, corpus, args.docs) for spec in order}
                for mode in ("first", "warm", "flat"):
                    if mode in times[args.a] and mode in times[args.b]:
                        ratios.setdefault(mode, []).append(times[args.a][mode] / times[args.b][mode])
            cells = [f"{statistics.median(ratios[m]):.3f}" if m in ratios else "" for m in ("first", "warm", "flat")]
            print(f"| {name} | {corpus.name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
