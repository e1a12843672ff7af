"""Instruction counts of ``encode_ordinary`` under callgrind: a stable signal on a noisy host.

Counts only what runs inside ``CoreBPE.encode_ordinary`` (loading the encoding and cutting
the documents are left out), over the first ``--docs`` documents of 4,096 characters of each
shared corpus, for o200k_base and cl100k_base:

    python benchmarks/callgrind_encode.py                 # this environment's bpe
    python benchmarks/callgrind_encode.py --python OTHER  # another build's interpreter, to compare

Instruction counts repeat exactly for the same build and input; compare two builds by
running both (the same machine, any load).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
CHILD = """
import sys, bpe
enc = bpe.get_encoding(sys.argv[1])
text = open(sys.argv[2], encoding="utf-8", errors="replace").read()
docs = [text[i : i + 4096] for i in range(0, len(text), 4096)][: int(sys.argv[3])]
core = enc._core_bpe
for d in docs:
    core.encode_ordinary(d)
"""


def count(python: str, encoding: str, corpus: Path, docs: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        done = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        "--collect-atstart=no", "--toggle-collect=*CoreBPE_*encode_ordinary*",
                        python, "-c", CHILD, encoding, str(corpus), str(docs)],
                       capture_output=True, text=True, cwd=tmp)
        if done.returncode:
            raise SystemExit(f"{python} on {corpus.name} failed:\n{done.stderr[-2000:]}")
        totals = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.M)
        return int(totals.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose bpe is counted")
    parser.add_argument("--docs", type=int, default=200, help="documents per corpus (default 200)")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="folder of the shared corpus")
    args = parser.parse_args()
    files = [p for p in (args.corpus / n for n in ("kjv.txt", "debref.en.txt", "debref.zh-cn.txt")) if p.is_file()]
    if os.environ.get("BPE_CODE_CORPUS"):
        files.append(Path(os.environ["BPE_CODE_CORPUS"]))
    for encoding in ("o200k_base", "cl100k_base"):
        for corpus in files:
            print(f"{encoding:12s} {corpus.name:18s} {count(args.python, encoding, corpus, args.docs):>14,} instructions",
                  flush=True)


if __name__ == "__main__":
    main()
