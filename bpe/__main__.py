"""The ``bpe`` command (also ``python -m bpe``).

With no arguments it encodes the Python standard library's own sources, which every
machine with Python has, and prints what it found; tiktoken, when installed, is timed on
the same files and its ids compared.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
import time
from pathlib import Path

EXAMPLES = """\
examples:
  bpe                                   encode the standard library with o200k_base
  bpe demo --encoding cl100k_base       the same with cl100k_base
  bpe demo my_project/ notes.txt        encode your own files and folders

Rank files are found in $BPE_VOCAB_DIR, the caches, or downloaded once (see bpe.load).
"""


class UserError(Exception):
    """A mistake in the command line or its inputs: one line on stderr, exit status 2."""


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


def demo(args: argparse.Namespace) -> int:
    import bpe

    paths = args.paths or [sysconfig.get_paths()["stdlib"]]
    files = _collect(paths)
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in files]
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if args.encoding not in bpe.list_encoding_names():
        raise UserError(f"unknown encoding {args.encoding!r}; choose from {', '.join(bpe.list_encoding_names())}")
    try:
        enc = bpe.get_encoding(args.encoding)
    except OSError as e:
        raise UserError(f"{e} (set BPE_VOCAB_DIR to a folder holding {args.encoding}.tiktoken)") from None

    start = time.perf_counter()
    ours = [enc.encode_ordinary(t) for t in texts]
    ours_s = time.perf_counter() - start
    n_tokens = sum(len(ids) for ids in ours)
    print(f"encoded {len(files)} files from {', '.join(paths)}")
    print(f"  {n_bytes / 1e6:.1f} MB -> {n_tokens:,} tokens with {enc.name} "
          f"({n_bytes / max(n_tokens, 1):.2f} bytes per token)")
    print(f"  bpe:      {ours_s:.2f} s, {n_bytes / ours_s / 1e6:.1f} MB/s (one thread)")
    try:
        import tiktoken
    except ImportError:
        print("  (pip install tiktoken to time it on the same files and compare ids)")
        return 0
    theirs_enc = tiktoken.Encoding(enc.name, pat_str=enc._pat_str,
                                   mergeable_ranks=enc._mergeable_ranks,
                                   special_tokens=enc._special_tokens)
    start = time.perf_counter()
    theirs = [theirs_enc.encode_ordinary(t) for t in texts]
    theirs_s = time.perf_counter() - start
    same = sum(a == b for a, b in zip(ours, theirs))
    print(f"  tiktoken: {theirs_s:.2f} s, {n_bytes / theirs_s / 1e6:.1f} MB/s -> bpe is "
          f"{theirs_s / ours_s:.2f}x tiktoken")
    print(f"  identical ids: {same} of {len(files)} files")
    return 0 if same == len(files) else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpe",
        description="Byte-level BPE tokenizer with tiktoken's ids and a compiled core.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser(
        "demo",
        help="encode files (default: the Python standard library) and print a summary",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="*", help="files or folders (folders: their *.py files)")
    p.add_argument("--encoding", default="o200k_base", help="named encoding (default o200k_base)")
    p.set_defaults(func=demo)
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
        print(f"bpe: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
