"""Training speed and memory of bpe against rustbpe, Hugging Face tokenizers and ffbpe.

    python benchmarks/bench_train.py FILE [FILE ...] --vocab-size 32768 --pattern cl100k

The files are joined and cut into documents of about 4 KB at line ends; the last 10% of
the documents are held apart. Each library trains on the same documents in a process of its
own (so peak RSS is its own), and reports wall time, CPU time (user + system, all
threads) and peak RSS. Then: do its merges equal bpe's, rank for rank, and how many bytes
does a token cover on the held-apart text (its vocabulary, encoded with bpe's engine and
the same pattern; Hugging Face's with its own tokenizer)?

rustbpe gets bpe's exact pattern. Hugging Face tokenizers gets the same pattern as a
Split pre-tokenizer; its BPE trainer breaks ties differently, so its merges are not
expected to match. ffbpe takes no pattern, so it is timed with its own pre-tokenizer.
Libraries that are not installed are skipped (``pip install '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# "documents only" loads the documents and trains nothing: the floor under every peak RSS.
LIBRARIES = ["documents only", "bpe", "rustbpe", "tokenizers", "ffbpe"]


def _documents(files: list[str]) -> list[str]:
    """The files joined and cut into documents of about 4 KB at line ends."""
    text = "".join(Path(f).read_text(encoding="utf-8", errors="replace") for f in files)
    docs, start = [], 0
    while start < len(text):
        end = text.find("\n", start + 4000)
        end = len(text) if end < 0 else end + 1
        docs.append(text[start:end])
        start = end
    return docs


def _training_documents(files_path: str) -> list[str]:
    docs = _documents(json.loads(Path(files_path).read_text()))
    return docs[: len(docs) * 9 // 10]


def _write_ranks(token_bytes: list[bytes], out: str) -> None:
    import base64

    Path(out).write_text("\n".join(base64.b64encode(t).decode() for t in token_bytes), encoding="ascii")


def child(lib: str, docs_path: str, vocab_size: int, pattern_name: str, out: str) -> None:
    """Train one library; print its measurements as JSON; write its tokens in id order."""
    from bpe import patterns

    pattern = patterns.PATTERNS[pattern_name]
    docs = _training_documents(docs_path)
    start = time.perf_counter()
    cpu0 = time.process_time()
    extra = {}
    if lib == "documents only":
        tokens = []
    elif lib == "bpe":
        import bpe

        enc = bpe.train(docs, vocab_size=vocab_size, pattern=pattern_name, progress=False)
        tokens = sorted(enc._mergeable_ranks, key=enc._mergeable_ranks.get)
    elif lib == "rustbpe":
        import rustbpe

        tok = rustbpe.Tokenizer()
        tok.train_from_iterator(iter(docs), vocab_size, pattern=pattern)
        tokens = [t for t, _ in sorted(tok.get_mergeable_ranks(), key=lambda item: item[1])]
    elif lib == "tokenizers":
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(pattern), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(docs, trainer=trainer)
        tok.save(out + ".json")
        extra["tokenizer_json"] = out + ".json"
        tokens = []
    elif lib == "ffbpe":
        import ffbpe

        model = ffbpe.train_bpe(docs, vocab_size=vocab_size)
        vocab = model.vocab
        try:
            items = sorted(((i, t) for t, i in vocab.items()), key=lambda item: item[0])
            tokens = [t if isinstance(t, bytes) else str(t).encode() for _, t in items]
        except AttributeError:
            tokens = []
    else:
        raise SystemExit(f"unknown library {lib}")
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu0
    _write_ranks(tokens, out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall": wall, "cpu": cpu, "peak_mb": peak, **extra}))


def bytes_per_token(lib: str, result: dict, ranks_path: str, pattern_name: str, heldout: list[str]) -> float | None:
    import base64

    import bpe
    from bpe import patterns

    n_bytes = sum(len(d.encode("utf-8")) for d in heldout)
    if lib == "documents only":
        return None
    if lib == "tokenizers":
        from tokenizers import Tokenizer

        tok = Tokenizer.from_file(result["tokenizer_json"])
        return n_bytes / sum(len(e.ids) for e in tok.encode_batch(heldout))
    lines = Path(ranks_path).read_text(encoding="ascii").splitlines()
    if not lines:
        return None
    ranks = {}
    for i, line in enumerate(lines):
        ranks.setdefault(base64.b64decode(line), i)
    if lib == "ffbpe" or len(ranks) != len(lines):
        return None
    enc = bpe.Encoding(lib, pat_str=patterns.PATTERNS[pattern_name], mergeable_ranks=ranks, special_tokens={})
    return n_bytes / sum(enc.count_batch(heldout))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*")
    parser.add_argument("--vocab-size", type=int, default=32768)
    parser.add_argument("--pattern", default="cl100k", choices=["gpt2", "cl100k", "o200k"])
    parser.add_argument("--libraries", nargs="+", choices=LIBRARIES, default=LIBRARIES,
                        help="which to run, in this order (default all; bpe first: the others' merges are compared with its)")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        lib, docs_path, vocab, pattern, out = args.child
        child(lib, docs_path, int(vocab), pattern, out)
        return
    if not args.files:
        parser.error("name at least one text file")
    docs = _documents(args.files)
    cut = len(docs) * 9 // 10
    train_docs, heldout = docs[:cut], docs[cut:]
    n_bytes = sum(len(d.encode("utf-8")) for d in train_docs)
    with tempfile.TemporaryDirectory() as tmp:
        docs_path = os.path.join(tmp, "files.json")
        Path(docs_path).write_text(json.dumps([os.path.abspath(f) for f in args.files]))
        print(f"# {n_bytes / 1e6:.1f} MB in {len(train_docs):,} documents, vocab {args.vocab_size}, "
              f"pattern {args.pattern}; {len(heldout):,} documents held apart")
        print("| library | wall s | CPU s | peak RSS MB | merges equal bpe's | bytes/token held apart |")
        print("|---|---|---|---|---|---|")
        reference = None
        for lib in args.libraries:
            out = os.path.join(tmp, f"{lib}.ranks")
            proc = subprocess.run(
                [sys.executable, __file__, "--child", lib, docs_path, str(args.vocab_size), args.pattern, out],
                capture_output=True, text=True,
            )
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
                print(f"| {lib} | skipped: {last[:100]} | | | | |", flush=True)
                continue
            result = json.loads(proc.stdout.strip().splitlines()[-1])
            tokens = Path(out).read_text(encoding="ascii").splitlines()
            if lib == "bpe":
                reference = tokens
            if lib == "documents only":
                equal = ""
            elif lib == "tokenizers":
                equal = "no (its own tie-break)"
            elif lib == "ffbpe":
                equal = "n/a (its own pre-tokenizer)"
            else:
                equal = "(reference)" if lib == "bpe" else "yes" if tokens == reference else "NO"
            bpt = bytes_per_token(lib, result, out, args.pattern, heldout)
            print(f"| {lib} | {result['wall']:.2f} | {result['cpu']:.2f} | {result['peak_mb']:.0f} | {equal} | "
                  f"{'' if bpt is None else f'{bpt:.3f}'} |", flush=True)


if __name__ == "__main__":
    main()
