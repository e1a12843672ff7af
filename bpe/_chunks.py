r"""Reading a text file in chunks that split exactly as the whole file would.

The named patterns (gpt2, cl100k, o200k) never join a newline with an ASCII letter after
it, so a file may be cut there and each chunk split on its own.

>>> safe_cut("one line\nnext")
9
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path
from typing import Iterable

_CHUNK = 1 << 20  # bytes read at a time from a file


# The last newline that an ASCII letter follows, at or after where the search starts: the
# greedy ".*" runs to the end and backs off (in C) to it, so a long stretch of lines that
# begin otherwise (indented code, #define tables) costs no Python loop per line.
_LAST_CUT = re.compile(r".*\n(?=[A-Za-z])", re.S)


def safe_cut(text: str, start: int = 0) -> int:
    r"""The last position where every named pattern is sure to end a piece: after a newline
    that an ASCII letter follows (no alternative of gpt2, cl100k or o200k joins the two).
    0 when there is none after ``start``.

    >>> safe_cut("a\nb\n  c"), safe_cut("a\nb\n  c", 2), safe_cut("\n\t\n")
    (2, 0, 0)
    """
    match = _LAST_CUT.match(text, start)
    return match.end() if match else 0


def read_chunks(path: Path, stats: dict, cut: bool = True) -> Iterable[str]:
    """A file's text in chunks cut only where the named split patterns are sure to break,
    so that splitting the chunks gives the pieces of splitting the whole file (with
    ``cut=False``, for other patterns, the whole file at once). Invalid UTF-8 becomes U+FFFD
    and is counted in ``stats["replaced"]``."""
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    carry = ""
    with open(path, "rb") as f:
        while True:
            raw = f.read(_CHUNK)
            final = not raw
            text = decoder.decode(raw, final=final)
            stats["bytes"] += len(raw)
            stats["replaced"] += text.count("\ufffd") - raw.count(b"\xef\xbf\xbd")
            searched = max(0, len(carry) - 1)  # held no cut (its last newline's follower was unread)
            carry += text
            if final:
                if carry:
                    yield carry
                return
            at = safe_cut(carry, searched) if cut else 0
            if at:
                yield carry[:at]
                carry = carry[at:]
