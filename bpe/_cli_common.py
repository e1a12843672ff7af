"""What the ``bpe`` command and its ``bpe lm`` subcommands share: errors, ``--tokenizer``,
argument types. Both command modules import this one, and neither imports the other's
internals."""

from __future__ import annotations

import argparse
import sys


class UserError(Exception):
    """A mistake in the command line or its inputs: one line on stderr, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (``bpe train: error: ... (see bpe train --help)``)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        sys.exit(2)


def tokenizer(spec: str):
    """The Encoding that ``--tokenizer`` names; a UserError saying why when there is none."""
    from bpe._open import open_tokenizer

    try:
        return open_tokenizer(spec)
    except ValueError as e:
        raise UserError(str(e).splitlines()[0]) from None
    except OSError as e:
        raise UserError(f"{e} (set BPE_VOCAB_DIR to a folder holding {spec}.tiktoken)") from None


def tokenizer_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tokenizer", "-t", required=True, metavar="NAME_OR_PATH",
                   help="a named encoding (o200k_base, cl100k_base, ...), a file from `bpe train` "
                        "or Encoding.save, or a Hugging Face tokenizer.json")


def positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an integer") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return n
