"""The ``bpe`` command (also ``python -m bpe``): train, encode, decode, count, show, inspect, bench.

Every subcommand has ``--help`` with an example. A user's mistake (a missing file, an
unknown encoding, a bad flag value) prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import sysconfig
import time
from pathlib import Path
from typing import Iterator

from bpe._cli_common import Parser, UserError, positive, tokenizer, tokenizer_flag
from bpe._files import open_atomic, write_atomic

EXAMPLES = """\
examples:
  bpe                                          encode the standard library with o200k_base, time it
  bpe train corpus.txt --vocab-size 32768 --pattern o200k -o my.bpe
  bpe encode --tokenizer my.bpe notes.txt      ids, separated by spaces
  bpe encode --tokenizer o200k_base --format bin -o train.bin a.txt b.txt
  echo 'hello world' | bpe count --tokenizer cl100k_base
  bpe show --tokenizer o200k_base "Tokenizers split text like this."
  bpe inspect --tokenizer my.bpe
  bpe bench --tokenizer o200k_base corpus.txt
  bpe lm train --data corpus.txt --tokenizer my.bpe --steps 500 --out runs/my
  bpe data clean pages.jsonl -o clean.jsonl    deduplicate and filter before training

A tokenizer is a named encoding (o200k_base, cl100k_base, ...), a file written by
`bpe train` or Encoding.save, or a Hugging Face tokenizer.json. Rank files of the named
encodings are found in $BPE_VOCAB_DIR, the caches, or downloaded once (see bpe.load).
"""


# ----------------------------------------------------------------------------------------
# Helpers shared by the subcommands


def _check_files(paths: list[str]) -> list[Path]:
    for name in paths:
        if not Path(name).is_file():
            raise UserError(f"no such file: {name}" if not Path(name).exists() else f"not a file: {name}")
    return [Path(p) for p in paths]


def _texts(enc, path: Path | None, stats: dict) -> Iterator[str]:
    """The text of a file (or stdin when ``path`` is None) in chunks that encode exactly as
    the whole text would: cut only where the encoding's pattern surely breaks, and read
    whole when it has no such places (a custom pattern) or a special token holds a newline."""
    from bpe import patterns
    from bpe._chunks import read_chunks

    if path is None:
        data = sys.stdin.buffer.read()
        stats["bytes"] += len(data)
        yield data.decode("utf-8", errors="replace")
        return
    cut = bool(patterns.scanner_family(enc.pat_str)) and not any(
        "\n" in s for s in enc.special_tokens)
    yield from read_chunks(path, stats, cut)


def _documents(enc, paths: list[Path], field: str, stats: dict) -> Iterator[Iterator[str]]:
    """The documents of the inputs, each as the chunks of its text: a JSONL file (.jsonl,
    .ndjson, .json, also .gz or .zst) gives one document per line (its ``field``), a
    compressed text file one, any other file (or stdin) one, read in chunks."""
    from bpe.data import read as _read

    for path in paths or [None]:
        if path is not None and (_read.kind(path) == "jsonl" or _compressed(path)):
            try:
                for doc in _read.read_documents([path], field=field, stats=stats):
                    yield iter((doc.text,))
            except ValueError as e:
                raise UserError(str(e)) from None
        else:
            yield _texts(enc, path, stats)


def _compressed(path: Path) -> bool:
    return path.name.lower().endswith((".gz", ".zst", ".zstd"))


def _encoder(enc, allow_special: bool):
    if allow_special:
        return lambda text: enc.encode(text, allowed_special="all")
    return enc.encode_ordinary


def _bar(label: str, paths: list[Path], quiet: bool):
    from bpe._progress import Bar

    total = sum(p.stat().st_size for p in paths)
    return Bar(label, not quiet and sys.stderr.isatty() and total > 1 << 20, total, "MB", 1e6)


def _human(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError


# ----------------------------------------------------------------------------------------
# bpe train


def _train_texts(paths: list[Path], field: str) -> Iterator[str]:
    from bpe._chunks import read_chunks
    from bpe.data import read as _read

    for path in paths:
        if _read.kind(path) == "jsonl" or _compressed(path):
            for doc in _read.read_documents([path], field=field):
                yield doc.text
        else:
            yield from read_chunks(path, {"bytes": 0, "replaced": 0})


def cmd_train(args) -> int:
    import bpe
    from bpe.data import read as _read

    paths = _check_files(args.files)
    if args.vocab_size < 256 + len(args.special):
        raise UserError(f"--vocab-size {args.vocab_size} is too small: it must hold the 256 byte "
                        f"tokens and {len(args.special)} special tokens")
    if not 0 <= args.holdout < 0.5:
        raise UserError(f"--holdout {args.holdout} must be a fraction in [0, 0.5)")
    out = Path(args.output)
    if not out.parent.is_dir():
        raise UserError(f"no such folder for -o: {out.parent}")
    start = time.perf_counter()
    source: object = [str(p) for p in paths]
    if any(_read.kind(p) == "jsonl" or _compressed(p) for p in paths):
        source = _train_texts(paths, args.field)  # documents from JSON Lines, streamed
    try:
        enc = bpe.train(source, vocab_size=args.vocab_size, pattern=args.pattern,
                        special_tokens=args.special, min_frequency=args.min_frequency,
                        progress=not args.quiet, num_threads=args.threads,
                        name=args.name or out.stem, holdout=args.holdout, max_pieces=args.max_pieces)
    except ValueError as e:
        raise UserError(str(e)) from None
    enc.save(out)
    elapsed = time.perf_counter() - start
    stats = enc.training_stats
    summary = {
        "output": str(out),
        "vocab_size": enc.n_vocab,
        "merges": stats["merges"],
        "special_tokens": len(args.special),
        "train_bytes": stats["bytes"] - stats.get("holdout_bytes", 0),
        "holdout_bytes": stats.get("holdout_bytes", 0),
        "holdout_bytes_per_token": round(stats["holdout_bytes"] / max(stats["holdout_tokens"], 1), 4)
        if stats.get("holdout_bytes") else None,
        "seconds": round(elapsed, 3),
    }
    if args.tokenizer_json:
        from bpe import hf

        hf.save_tokenizer_json(enc, args.tokenizer_json)
        summary["tokenizer_json"] = args.tokenizer_json
    bpt = summary["holdout_bytes_per_token"]
    print(f"wrote {out}: vocabulary {enc.n_vocab:,} ({stats['merges']:,} merges, "
          f"{len(args.special)} special), trained on {_human(summary['train_bytes'])} in {elapsed:.1f} s"
          + (f"; {bpt:.3f} bytes per token on {_human(summary['holdout_bytes'])} held apart"
             if bpt else "; nothing held apart (--holdout 0)"))
    print(json.dumps(summary))
    return 0


# ----------------------------------------------------------------------------------------
# bpe encode / decode / count


def cmd_encode(args) -> int:
    enc = tokenizer(args.tokenizer)
    paths = _check_files(args.files) if args.files else []
    encode = _encoder(enc, args.allow_special)
    if args.format == "bin":
        return _encode_bin(enc, paths, encode, args)
    if args.output:
        raise UserError("-o is for --format bin; text and json go to stdout")
    out = sys.stdout
    stats = {"bytes": 0, "replaced": 0}
    for doc in _documents(enc, paths, args.field, stats):
        if args.format == "json":
            ids: list[int] = []
            for text in doc:
                ids.extend(encode(text))
            out.write(json.dumps(ids) + "\n")
        else:
            first = True
            for text in doc:
                ids = encode(text)
                if ids:
                    out.write(("" if first else " ") + " ".join(map(str, ids)))
                    first = False
            out.write("\n")
    return 0


def _encode_bin(enc, paths: list[Path], encode, args) -> int:
    """Token ids of each document (file) then the end-of-text token, as one flat array."""
    import numpy as np

    if not args.output:
        raise UserError("--format bin needs -o OUT (a binary file)")
    dtype = np.uint16 if enc.max_token_value < 1 << 16 else np.uint32
    eot = enc.special_tokens.get("<|endoftext|>")
    if eot is None and len(paths) > 1 and not args.quiet:
        print(f"bpe encode: note: {enc.name} has no <|endoftext|> token; documents are not "
              "separated", file=sys.stderr)
    out = Path(args.output)
    stats = {"bytes": 0, "replaced": 0}
    n_tokens = n_docs = 0
    bar = _bar("encoding", paths, args.quiet)
    with open_atomic(out) as f:
        for doc in _documents(enc, paths, args.field, stats):
            n_docs += 1
            for text in doc:
                ids = np.asarray(encode(text), dtype=dtype)
                f.write(ids.tobytes())
                n_tokens += len(ids)
                bar(stats["bytes"])
            if eot is not None:
                f.write(np.asarray([eot], dtype=dtype).tobytes())
                n_tokens += 1
    bar.close(stats["bytes"])
    meta = {
        "format": "bpe-tokens", "version": 1, "tokenizer": args.tokenizer, "encoding": enc.name,
        "dtype": np.dtype(dtype).name, "n_vocab": enc.n_vocab, "tokens": n_tokens,
        "bytes": stats["bytes"], "documents": n_docs, "eot": eot,
        "files": [str(p) for p in paths],
    }
    write_atomic(str(out) + ".json", json.dumps(meta, indent=1) + "\n")
    if not args.quiet:
        print(f"wrote {out}: {n_tokens:,} tokens ({meta['dtype']}) from {_human(stats['bytes'])}, "
              f"{stats['bytes'] / max(n_tokens, 1):.2f} bytes per token; {out}.json describes it",
              file=sys.stderr)
    return 0


_ID = re.compile(r"\S+")


def _read_ids(args) -> list[int]:
    """Ids from a file or stdin: whitespace-separated integers, a JSON list, or --format bin."""
    import numpy as np

    name = args.file or "<stdin>"
    if args.file:
        _check_files([args.file])
    if args.format == "bin":
        if not args.file:
            raise UserError("--format bin reads a file, not stdin")
        meta_path = Path(args.file + ".json")
        dtype = args.dtype or (json.loads(meta_path.read_text()).get("dtype") if meta_path.is_file() else None)
        if dtype not in ("uint16", "uint32"):
            raise UserError(f"{name}: say --dtype uint16 or uint32 (no {meta_path.name} beside it)")
        size = os.path.getsize(args.file)
        if size % np.dtype(dtype).itemsize:
            raise UserError(f"{name}: {size} bytes is not a whole number of {dtype} ids")
        return np.fromfile(args.file, dtype=dtype).tolist()
    data = Path(args.file).read_bytes() if args.file else sys.stdin.buffer.read()
    text = data.decode("utf-8", errors="replace")
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as e:
            raise UserError(f"{name}: not a JSON list of ids ({e})") from None
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise UserError(f"{name}: a JSON list of integers was expected")
        return ids
    ids = []
    for line_no, line in enumerate(text.splitlines(), 1):
        for m in _ID.finditer(line):
            word = m.group()
            if not (word.isascii() and word.isdigit()):
                raise UserError(f"{name}, line {line_no}: {word[:40]!r} is not a token id")
            ids.append(int(word))
    return ids


def cmd_decode(args) -> int:
    enc = tokenizer(args.tokenizer)
    ids = _read_ids(args)
    try:
        data = enc.decode_bytes(ids)
    except (KeyError, OverflowError, ValueError) as e:
        raise UserError(f"{args.file or '<stdin>'}: {e.args[0] if e.args else e}") from None
    if args.errors == "strict":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as e:
            raise UserError(f"the ids decode to bytes that are not UTF-8 at byte {e.start} "
                            "(--errors replace writes U+FFFD there, --errors bytes writes them as they are)") from None
    elif args.errors == "replace":
        data = data.decode("utf-8", errors="replace").encode("utf-8")
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    return 0


def cmd_count(args) -> int:
    enc = tokenizer(args.tokenizer)
    paths = _check_files(args.files) if args.files else []
    rows = []
    for path in paths or [None]:
        stats = {"bytes": 0, "replaced": 0}
        n = 0
        for text in _texts(enc, path, stats):
            n += enc.count(text, allowed_special="all" if args.allow_special else set(),
                           disallowed_special=())
        rows.append((str(path) if path else "<stdin>", n, stats["bytes"]))
    if args.json:
        print(json.dumps([{"file": f, "tokens": n, "bytes": b} for f, n, b in rows]))
        return 0
    width = max(len(r[0]) for r in rows + [("total", 0, 0)])
    print(f"{'file':<{width}}  {'tokens':>12}  {'bytes':>14}  bytes/token   ({enc.name})")
    for f, n, b in rows:
        print(f"{f:<{width}}  {n:>12,}  {b:>14,}  {b / max(n, 1):>11.3f}")
    if len(rows) > 1:
        n, b = sum(r[1] for r in rows), sum(r[2] for r in rows)
        print(f"{'total':<{width}}  {n:>12,}  {b:>14,}  {b / max(n, 1):>11.3f}")
    return _over_budget(rows, args.max_tokens)


def _over_budget(rows: list, max_tokens: int | None) -> int:
    """1 (and each file named on stderr) when a file has more than ``max_tokens`` tokens."""
    over = [(f, n) for f, n, _ in rows if max_tokens is not None and n > max_tokens]
    for f, n in over:
        print(f"bpe count: {f}: {n:,} tokens, over the budget of {max_tokens:,}", file=sys.stderr)
    return 1 if over else 0


def cmd_chunk(args) -> int:
    enc = tokenizer(args.tokenizer)
    paths = _check_files(args.files) if args.files else []
    if args.overlap >= args.max_tokens:
        raise UserError(f"--overlap ({args.overlap}) must be less than --max-tokens ({args.max_tokens})")
    allowed = "all" if args.allow_special else set()
    n_windows = 0
    with (open_atomic(args.output, "w", encoding="utf-8") if args.output
          else contextlib.nullcontext(sys.stdout)) as out:
        for path in paths or [None]:
            text = (path.read_text(encoding="utf-8", errors="replace") if path
                    else sys.stdin.buffer.read().decode("utf-8", errors="replace"))
            try:
                spans = enc.split_tokens_offsets(text, args.max_tokens, overlap=args.overlap,
                                                 prefer=args.prefer, allowed_special=allowed,
                                                 disallowed_special=())
            except ValueError as e:
                raise UserError(f"{path or '<stdin>'}: {e}") from None
            for k, (start, end, first, last) in enumerate(spans.tolist()):
                out.write(json.dumps({"source": str(path) if path else "<stdin>", "window": k,
                                      "start": start, "end": end, "tokens": last - first,
                                      "text": text[start:end]}, ensure_ascii=False) + "\n")
            n_windows += len(spans)
    if args.output and not args.quiet:
        print(f"wrote {args.output}: {n_windows:,} windows of at most {args.max_tokens:,} tokens "
              f"from {len(paths) or 1} file(s)", file=sys.stderr)
    return 0


# ----------------------------------------------------------------------------------------
# bpe show / inspect


def _names_a_file(text: str) -> bool:
    if len(text) > 4096 or "\n" in text:
        return False
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long, a NUL byte: text, not a file
        return False


def cmd_show(args) -> int:
    from bpe import _view

    enc = tokenizer(args.tokenizer)
    if args.text is None:
        text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
    elif not args.literal and _names_a_file(args.text):
        text = Path(args.text).read_text(encoding="utf-8", errors="replace")
    else:
        text = args.text
    ids = enc.encode(text, allowed_special="all") if args.allow_special else enc.encode_ordinary(text)
    units = _view.units(enc, ids)
    if args.html:
        write_atomic(args.html, _view.html(units, enc.name, text))
        print(f"wrote {args.html}: {len(ids):,} tokens", file=sys.stderr)
        return 0
    colour = {"auto": sys.stdout.isatty(), "always": True, "never": False}[args.color]
    sys.stdout.write(_view.terminal(units) if colour else _view.plain(units))
    sys.stdout.write(f"\n{len(ids):,} tokens, {len(text.encode('utf-8')):,} bytes\n")
    return 0


def cmd_inspect(args) -> int:
    from bpe import _view

    enc = tokenizer(args.tokenizer)
    report = _view.inspect(enc, top=args.top)
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(_view.format_report(report))
    return 0


# ----------------------------------------------------------------------------------------
# bpe bench / demo


def _oracle(enc):
    try:
        import tiktoken
    except ImportError:
        return None
    return tiktoken.Encoding(enc.name, pat_str=enc.pat_str, mergeable_ranks=enc.mergeable_ranks,
                             special_tokens=enc.special_tokens)


def cmd_bench(args) -> int:
    import statistics

    enc = tokenizer(args.tokenizer)
    paths = _check_files(args.files)
    if args.repeats < 1:
        raise UserError("--repeats must be at least 1")
    texts = [p.read_text(encoding="utf-8", errors="replace") for p in paths]
    docs = [t[i : i + args.doc_chars] for t in texts for i in range(0, len(t), args.doc_chars)]
    n_bytes = sum(len(d.encode("utf-8")) for d in docs)
    theirs = _oracle(enc)
    runners = {"bpe": enc}
    if theirs is not None:
        runners["tiktoken"] = theirs
    times: dict[str, list[float]] = {k: [] for k in runners}
    for _ in range(args.repeats):  # alternate, so that both see the same machine
        for label, e in runners.items():
            start = time.perf_counter()
            for d in docs:
                e.encode_ordinary(d)
            times[label].append(time.perf_counter() - start)
    print(f"{_human(n_bytes)} in {len(docs):,} documents of {args.doc_chars:,} characters, "
          f"{enc.name}, one thread, median of {args.repeats}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for label, t in med.items():
        print(f"  {label:<9} {n_bytes / t / 1e6:8.1f} MB/s")
    if theirs is None:
        print("  (pip install tiktoken to time it in the same run)")
        return 0
    same = all(enc.encode_ordinary(d) == theirs.encode_ordinary(d) for d in docs)
    print(f"  bpe / tiktoken: {med['tiktoken'] / med['bpe']:.2f}x; identical ids: {'yes' if same else 'NO'}")
    return 0 if same else 1


def _collect(paths: list[str]) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = Path(name)
        if path.is_dir():
            # The standard library's folder also holds installed packages: leave those out.
            files.extend(sorted(p for p in path.rglob("*.py")
                                if p.is_file() and "site-packages" not in p.parts))
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"no such file or folder: {name}")
    if not files:
        raise UserError(f"no files to encode in {', '.join(paths)}")
    return files


def cmd_demo(args) -> int:
    paths = args.paths or [sysconfig.get_paths()["stdlib"]]
    files = _collect(paths)
    enc = tokenizer(args.encoding)
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    start = time.perf_counter()
    ours = [enc.encode_ordinary(t) for t in texts]
    ours_s = time.perf_counter() - start
    n_tokens = sum(len(ids) for ids in ours)
    print(f"encoded {len(files)} files from {', '.join(paths)}")
    print(f"  {n_bytes / 1e6:.1f} MB -> {n_tokens:,} tokens with {enc.name} "
          f"({n_bytes / max(n_tokens, 1):.2f} bytes per token)")
    print(f"  bpe:      {ours_s:.2f} s, {n_bytes / ours_s / 1e6:.1f} MB/s (one thread)")
    theirs_enc = _oracle(enc)
    if theirs_enc is None:
        print("  (pip install tiktoken to time it on the same files and compare ids)")
        return 0
    start = time.perf_counter()
    theirs = [theirs_enc.encode_ordinary(t) for t in texts]
    theirs_s = time.perf_counter() - start
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"  tiktoken: {theirs_s:.2f} s, {n_bytes / theirs_s / 1e6:.1f} MB/s -> bpe is "
          f"{theirs_s / ours_s:.2f}x tiktoken")
    print(f"  identical ids: {same} of {len(files)} files")
    return 0 if same == len(files) else 1


# ----------------------------------------------------------------------------------------
# The parser


def _sub(sub, name: str, help: str, example: str, func) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="bpe", description="Byte-level BPE: tiktoken's ids, faster; train, "
                     "inspect and judge vocabularies.", epilog=EXAMPLES,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)

    p = _sub(sub, "train", "train a vocabulary on text files and save it",
             "bpe train corpus.txt --vocab-size 32768 --pattern o200k --special '<|endoftext|>' -o my.bpe",
             cmd_train)
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="UTF-8 text files (invalid bytes become U+FFFD), or JSON Lines (.jsonl, also "
                        ".gz/.zst, as `bpe data clean` writes): one document per line")
    p.add_argument("--field", default="text", help="the text field of JSONL inputs (default text)")
    p.add_argument("--vocab-size", type=positive, required=True,
                   help="tokens in all: 256 bytes + merges + special tokens")
    p.add_argument("--pattern", default="o200k",
                   help="split pattern: gpt2, cl100k, o200k (default) or a regex")
    p.add_argument("--special", action="append", default=[], metavar="TOKEN",
                   help="a special token (repeat for more); they take the last ids")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the tokenizer file to write (bpe.Encoding.load reads it)")
    p.add_argument("--tokenizer-json", metavar="PATH", help="also write a Hugging Face tokenizer.json")
    p.add_argument("--min-frequency", type=positive, default=1, help="stop when no pair occurs this often")
    p.add_argument("--holdout", type=float, default=0.02,
                   help="fraction of the text kept out of training to measure bytes per token (default 0.02)")
    p.add_argument("--threads", type=positive, default=None, help="threads for counting (default: all cores)")
    p.add_argument("--max-pieces", type=positive, default=None, metavar="N",
                   help="bound counting's memory: a thread holding more than N distinct pieces forgets "
                        "those seen fewer than 2, 4, 8, ... times until N/2 remain (approximate counts; "
                        "default: exact, however many)")
    p.add_argument("--name", help="the encoding's name (default: OUT's stem)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bars")

    p = _sub(sub, "encode", "encode text files (or stdin) to token ids",
             "bpe encode --tokenizer o200k_base --format bin -o train.bin a.txt b.txt", cmd_encode)
    tokenizer_flag(p)
    p.add_argument("files", nargs="*", metavar="FILE",
                   help="files to encode (default: stdin); a JSON Lines file (.jsonl, also .gz/.zst) "
                        "holds one document per line")
    p.add_argument("--field", default="text", help="the text field of JSONL inputs (default text)")
    p.add_argument("--format", choices=["text", "json", "bin"], default="text",
                   help="text: ids separated by spaces, a line per document (a file, or a JSONL line); "
                        "json: a JSON list per document; bin: one flat uint16 (or uint32) array, each "
                        "document followed by <|endoftext|>, streamed, with OUT.json describing it")
    p.add_argument("-o", "--output", metavar="OUT", help="the .bin file to write (--format bin)")
    p.add_argument("--allow-special", action="store_true",
                   help="encode special-token text (<|endoftext|>) as the special token, not as text")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")

    p = _sub(sub, "decode", "decode token ids back to text",
             "bpe encode -t o200k_base notes.txt | bpe decode -t o200k_base", cmd_decode)
    tokenizer_flag(p)
    p.add_argument("file", nargs="?", metavar="FILE", help="ids: whitespace-separated, a JSON list, or "
                   "--format bin (default: stdin)")
    p.add_argument("--format", choices=["text", "bin"], default="text", help="how the ids are stored")
    p.add_argument("--dtype", choices=["uint16", "uint32"], help="for --format bin without FILE.json beside it")
    p.add_argument("--errors", choices=["replace", "strict", "bytes"], default="bytes",
                   help="bytes that are not UTF-8: write as they are (default, lossless), "
                        "replace with U+FFFD, or fail")

    p = _sub(sub, "count", "count tokens per file, with totals",
             "bpe count --tokenizer cl100k_base *.md", cmd_count)
    tokenizer_flag(p)
    p.add_argument("files", nargs="*", metavar="FILE", help="files (default: stdin)")
    p.add_argument("--allow-special", action="store_true", help="count special-token text as one token")
    p.add_argument("--json", action="store_true", help="a JSON list of {file, tokens, bytes}")
    p.add_argument("--max-tokens", type=positive, metavar="N",
                   help="exit 1, naming each file on stderr, when a file has more than N tokens "
                        "(a check for prompt files in CI)")

    p = _sub(sub, "chunk", "cut files into windows of at most N tokens, for retrieval",
             "bpe chunk docs/*.md -t cl100k_base --max-tokens 512 --overlap 64 -o chunks.jsonl", cmd_chunk)
    tokenizer_flag(p)
    p.add_argument("files", nargs="*", metavar="FILE", help="text files (default: stdin)")
    p.add_argument("--max-tokens", type=positive, required=True, metavar="N", help="tokens per window at most")
    p.add_argument("--overlap", type=int, default=0, metavar="K",
                   help="tokens each window shares with the one before (default 0; less than N)")
    p.add_argument("--prefer", choices=["paragraph", "sentence", "line"],
                   help="end a window at the last paragraph, sentence or line end in its last quarter")
    p.add_argument("--allow-special", action="store_true", help="special-token text is one token")
    p.add_argument("-o", "--output", metavar="OUT.jsonl",
                   help="one JSON line per window: source, window, start and end characters, tokens, "
                        "text (default: stdout)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")

    p = _sub(sub, "show", "show where the token boundaries fall in a text",
             "bpe show --tokenizer o200k_base \"Hello, world!\"   (or a FILE, or stdin)", cmd_show)
    tokenizer_flag(p)
    p.add_argument("text", nargs="?", metavar="TEXT|FILE", help="the text, or a file holding it (default: stdin)")
    p.add_argument("--literal", action="store_true", help="TEXT is text even when a file has that name")
    p.add_argument("--html", metavar="OUT", help="write an HTML page instead; hover a token for its id")
    p.add_argument("--color", choices=["auto", "always", "never"], default="auto",
                   help="alternating background colours (auto: when stdout is a terminal), else | between tokens")
    p.add_argument("--allow-special", action="store_true", help="show special-token text as one token")

    p = _sub(sub, "inspect", "vocabulary statistics: lengths, longest tokens, scripts",
             "bpe inspect --tokenizer my.bpe", cmd_inspect)
    tokenizer_flag(p)
    p.add_argument("--top", type=positive, default=10, help="how many of the longest tokens to list")
    p.add_argument("--json", action="store_true", help="the report as one JSON object")

    p = _sub(sub, "bench", "time encoding against tiktoken (when installed) in the same run",
             "taskset -c 1 bpe bench --tokenizer o200k_base corpus.txt", cmd_bench)
    tokenizer_flag(p)
    p.add_argument("files", nargs="+", metavar="FILE", help="text files to encode")
    p.add_argument("--repeats", type=int, default=5, help="runs of each, alternating (median reported)")
    p.add_argument("--doc-chars", type=positive, default=4096, help="cut the text into documents of this size")

    p = _sub(sub, "demo", "encode files (default: the Python standard library) and compare with tiktoken",
             "bpe demo --encoding cl100k_base my_project/", cmd_demo)
    p.add_argument("paths", nargs="*", help="files or folders (folders: their *.py files)")
    p.add_argument("--encoding", default="o200k_base", help="tokenizer (default o200k_base)")

    try:
        from bpe.lm import cli as lm_cli
    except ImportError:  # the language-model trainer is optional to the rest of the command
        lm_cli = None
    if lm_cli is not None:
        lm_cli.add_parser(sub, Parser)
    from bpe.data import cli as data_cli

    data_cli.add_parser(sub, Parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv or ["demo"])
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except UserError as e:
        print(f"bpe {args.command}: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `bpe encode ... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 0
    except KeyboardInterrupt:
        print(f"\nbpe {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
