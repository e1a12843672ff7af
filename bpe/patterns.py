"""Split patterns: the named ones, and the `regex` reference splitter pinned to tiktoken's Unicode.

tiktoken's regex engine and the Python ``regex`` module agree on the syntax of the split
patterns but not on the Unicode version behind ``\\p{L}``, ``\\p{N}``, ``\\p{M}``: the
``regex`` module knows thousands of recently assigned letters that tiktoken still sees as
unassigned, and splits text around them differently. :func:`pin_unicode` rewrites every
general-category class of a pattern as explicit code point ranges read from
``bpe/_unicode_data.py`` (tiktoken's Unicode version), so that ``regex`` splits exactly as
tiktoken does.

>>> split(O200K_PATTERN, "Hello world's 12345!")
['Hello', ' world', "'s", ' ', '123', '45', '!']
"""

from __future__ import annotations

import enum
import functools
import os

import regex

from bpe import _unicode_data

R50K_PATTERN = (
    r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
)
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)

#: Family names accepted wherever a pattern is asked for (training, the command line).
PATTERNS = {"gpt2": R50K_PATTERN, "cl100k": CL100K_PATTERN, "o200k": O200K_PATTERN}

class Family(enum.IntEnum):
    """The compiled engine's scanners (``bpe._core.FAMILIES`` has the same values)."""

    NONE = 0    # no scanner: the pattern is split with `regex`
    GPT2 = 1
    CL100K = 2
    O200K = 3


# The compiled engine has a hand-written scanner for each of these patterns.
_SCANNER_FAMILY = {R50K_PATTERN: Family.GPT2, CL100K_PATTERN: Family.CL100K, O200K_PATTERN: Family.O200K}

# White_Space has been the same set of code points since Unicode 6.3.
WHITE_SPACE = (
    (0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680),
    (0x2000, 0x200A), (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000),
)


def scanner_family(pat_str: str) -> Family:
    """The compiled scanner that splits exactly like ``pat_str``, or ``Family.NONE``."""
    return _SCANNER_FAMILY.get(pat_str, Family.NONE)


@functools.lru_cache(maxsize=None)
def category_ranges(name: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges of a general category (``"L"``, ``"Lu"``, ``"N"`` ...), inclusive.

    >>> category_ranges("Nd")[0]
    (48, 57)
    """
    cats = _unicode_data.CATEGORIES
    wanted = {i for i, c in enumerate(cats) if c == name or (len(name) == 1 and c[0] == name)}
    if not wanted:
        raise ValueError(f"unknown general category {name!r}")
    runs = _unicode_data.RUNS
    out: list[tuple[int, int]] = []
    for k in range(0, len(runs), 2):
        first, cat = runs[k], runs[k + 1]
        last = (runs[k + 2] if k + 2 < len(runs) else 0x110000) - 1
        if cat in wanted:
            if out and out[-1][1] == first - 1:
                out[-1] = (out[-1][0], last)
            else:
                out.append((first, last))
    return tuple(out)


def _complement(ranges) -> tuple[tuple[int, int], ...]:
    out, nxt = [], 0
    for a, b in ranges:
        if a > nxt:
            out.append((nxt, a - 1))
        nxt = b + 1
    if nxt <= 0x10FFFF:
        out.append((nxt, 0x10FFFF))
    return tuple(out)


def _class_body(ranges) -> str:
    return "".join(
        f"\\U{a:08X}" if a == b else f"\\U{a:08X}-\\U{b:08X}" for a, b in ranges
    )


@functools.lru_cache(maxsize=64)
def pin_unicode(pat_str: str) -> str:
    """Rewrite ``\\p{..}``, ``\\P{..}``, ``\\s`` and ``\\S`` as explicit ranges at tiktoken's Unicode.

    Category names other than general categories (scripts, binary properties) are left for
    the ``regex`` module to interpret with its own tables.
    """
    out: list[str] = []
    i, n, in_class = 0, len(pat_str), False
    while i < n:
        ch = pat_str[i]
        if ch == "\\" and i + 1 < n:
            esc = pat_str[i + 1]
            ranges = None
            end = i + 2
            if esc in "pP":
                if end < n and pat_str[end] == "{":
                    close = pat_str.find("}", end)
                    if close < 0:
                        raise ValueError(f"split pattern {pat_str!r}: '\\{esc}{{' at position {i} "
                                         "has no closing '}'")
                    name = pat_str[end + 1 : close]
                    end = close + 1
                else:
                    name = pat_str[end : end + 1]
                    end += 1
                negate = esc == "P"
                if name.startswith("^"):
                    name, negate = name[1:], not negate
                try:
                    ranges = category_ranges(name)
                except ValueError:
                    ranges = None
                if ranges is not None and negate:
                    ranges = _complement(ranges)
            elif esc in "sS":
                ranges = WHITE_SPACE if esc == "s" else _complement(WHITE_SPACE)
            if ranges is None:
                out.append(pat_str[i:end])
            elif in_class:
                out.append(_class_body(ranges))
            else:
                out.append("[" + _class_body(ranges) + "]")
            i = end
            continue
        if ch == "[" and not in_class:
            in_class = True
            out.append(ch)
            i += 1
            # A ']' straight after '[' or '[^' is a literal.
            if i < n and pat_str[i] == "^":
                out.append("^")
                i += 1
            if i < n and pat_str[i] == "]":
                out.append("]")
                i += 1
            continue
        if ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@functools.lru_cache(maxsize=64)
def compile_pattern(pat_str: str) -> "regex.Pattern[str]":
    """The ``regex`` pattern that splits exactly as tiktoken does with ``pat_str``.

    ValueError (as tiktoken raises) when the pattern does not compile, naming it."""
    if not isinstance(pat_str, str):
        raise TypeError(f"a split pattern is a str, not {type(pat_str).__name__}")
    try:
        return regex.compile(pin_unicode(pat_str))
    except regex.error as e:
        raise ValueError(f"split pattern {pat_str!r} does not compile: {e}") from None


class PatternTimeout(ValueError):
    """A split pattern backtracked for longer than :func:`time_limit` allows on one text."""


def time_limit(n_chars: int) -> float | None:
    """Seconds a custom split pattern may take on a text of ``n_chars`` characters.

    ``$BPE_REGEX_TIMEOUT`` seconds (default 10) plus as many again per million characters:
    well-behaved patterns split megabytes a second, while one that backtracks
    catastrophically (``(a|aa)+$``) would run for ages on a few dozen characters. 0 means no
    limit.
    """
    base = float(os.environ.get("BPE_REGEX_TIMEOUT", "10"))
    return base * (1 + n_chars / 1e6) if base > 0 else None


def findall(compiled: "regex.Pattern[str]", text: str, pat_str: str) -> list[str]:
    """``compiled.findall(text)`` (``compiled`` is ``compile_pattern(pat_str)``) within
    :func:`time_limit`; PatternTimeout, naming the pattern, past it."""
    limit = time_limit(len(text))
    try:
        if compiled.groups:  # findall would return the groups: a piece is the whole match
            return [m.group() for m in compiled.finditer(text, timeout=limit)]
        return compiled.findall(text, timeout=limit)
    except TimeoutError:
        raise PatternTimeout(
            f"split pattern {pat_str[:200]!r} ran for more than {limit:.1f} s on a "
            f"text of {len(text):,} characters: it backtracks catastrophically on this text "
            "(raise BPE_REGEX_TIMEOUT to allow more, 0 for no limit)"
        ) from None


def split(pat_str: str, text: str) -> list[str]:
    """Split ``text`` into pieces with the reference splitter (slow, obviously correct)."""
    return findall(compile_pattern(pat_str), text, pat_str)
