"""Time to first token and peak memory of a named encoding, in fresh processes.

    BPE_VOCAB_DIR=../shared/vocab taskset -c 1 python benchmarks/bench_start.py

Each round starts one process per library, in turn, that imports the library, gets the
encoding and encodes one short text; the process reports the seconds from before the
import to the first ids and its peak RSS. bpe gets the encoding as a user does, from the
rank files shipped in the package, twice: "bpe, first start" with an empty cache (it
builds the engine's tables and saves them), "bpe" with the tables a first start saved
(every later start). tiktoken reads the same rank files from a cache directory made here
(it would download them otherwise); peers that take a rank file read the one in
$BPE_VOCAB_DIR. Prints medians over the rounds, and the median of the per-round ratios to
tiktoken (below 1: faster, smaller). A bare interpreter's figures are the floor.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

TIKTOKEN_URL = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"

# What each library runs between the two clock readings; {name} is the encoding, {file}
# its rank file. A library that is not installed is left out.
LOADERS = {
    "python": "ids = [0]",
    "bpe, first start": "import bpe\nids = bpe.get_encoding({name!r}).encode('hello world')",
    "bpe": "import bpe\nids = bpe.get_encoding({name!r}).encode('hello world')",
    "tiktoken": "import tiktoken\nids = tiktoken.get_encoding({name!r}).encode('hello world')",
    "gigatoken": "import gigatoken\n"
                 "ids = gigatoken.Tokenizer.from_tiktoken({file!r}).as_tiktoken().encode('hello world')",
    "splintr-rs": "import splintr\nids = splintr.Tokenizer.from_pretrained({name!r}).encode('hello world')",
    "fastokens": "import fastokens\n"
                 "ids = fastokens.Tokenizer.from_tiktoken({file!r}, encoding={name!r}).encode_ordinary('hello world').ids",
    "kitoken": "import kitoken\nids = kitoken.Kitoken.from_tiktoken_file({file!r}).encode('hello world')",
}
MODULES = {"gigatoken": "gigatoken", "splintr-rs": "splintr", "fastokens": "fastokens", "kitoken": "kitoken",
           "tiktoken": "tiktoken"}

CHILD = """
import resource, time, json
start = time.perf_counter()
{body}
elapsed = time.perf_counter() - start
assert len(ids) > 0
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps([elapsed, peak / 1024 if {linux} else peak / 2**20]))
"""


def installed(lib: str) -> bool:
    module = MODULES.get(lib)
    if module is None:
        return True
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


def run_child(lib: str, name: str, env: dict[str, str]) -> tuple[float, float]:
    body = LOADERS[lib].format(name=name, file=str(Path(os.environ["BPE_VOCAB_DIR"]).resolve() / f"{name}.tiktoken"))
    code = CHILD.format(body=body, linux=sys.platform.startswith("linux"))
    child_env = dict(env)
    if lib.startswith("bpe"):
        child_env.pop("BPE_VOCAB_DIR", None)  # the shipped files, as a user gets them
    empty = tempfile.mkdtemp(prefix="bpe-first-start-")
    if lib == "bpe, first start":
        child_env["BPE_CACHE_DIR"] = empty
    try:
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env,
                              cwd=tempfile.gettempdir())
    finally:
        shutil.rmtree(empty, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"{lib} failed on {name}:\n{done.stderr}")
    elapsed, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="fresh processes per library (default 9)")
    parser.add_argument("--encoding", action="append", choices=["o200k_base", "cl100k_base"])
    args = parser.parse_args()
    vocab = os.environ.get("BPE_VOCAB_DIR")
    if not vocab:
        raise SystemExit("set BPE_VOCAB_DIR to the folder with the official rank files")
    names = args.encoding or ["o200k_base", "cl100k_base"]
    libs = [lib for lib in LOADERS if installed(lib)]
    print(f"| encoding | library | time to first token (s) | peak RSS (MB) | time / tiktoken | RSS / tiktoken |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as cache:
        for name in names:  # tiktoken finds its file under the sha1 of the URL
            key = hashlib.sha1(TIKTOKEN_URL.format(name).encode()).hexdigest()
            shutil.copy(Path(vocab) / f"{name}.tiktoken", Path(cache) / key)
        bpe_cache = Path(cache) / "bpe"
        bpe_cache.mkdir()
        env = {**os.environ, "TIKTOKEN_CACHE_DIR": cache, "BPE_CACHE_DIR": str(bpe_cache)}
        for name in names:
            run_child("bpe", name, env)  # the first start, which saves the engine's tables
        for name in names:
            results: dict[str, list[tuple[float, float]]] = {lib: [] for lib in libs}
            for _ in range(args.rounds):
                for lib in libs:  # alternate the libraries within a round
                    results[lib].append(run_child(lib, name, env))
            base = results.get("tiktoken")
            for lib in libs:
                times = [t for t, _ in results[lib]]
                peaks = [p for _, p in results[lib]]
                if base:
                    time_ratio = statistics.median(t / b for (t, _), (b, _) in zip(results[lib], base))
                    rss_ratio = statistics.median(p / b for (_, p), (_, b) in zip(results[lib], base))
                    ratios = f"{time_ratio:.2f}x | {rss_ratio:.2f}x"
                else:
                    ratios = "| "
                print(f"| {name} | {lib} | {statistics.median(times):.3f} | {statistics.median(peaks):.0f} | {ratios} |",
                      flush=True)


if __name__ == "__main__":
    main()
