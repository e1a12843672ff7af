"""Cutting text by tokens: ``Encoding.truncate`` and ``Encoding.split_tokens``.

Both encode the whole text once and cut only where the whole text's encoding has a token
boundary that is also a character boundary (a token may end inside a character of several
bytes; the cut then moves to the nearest boundary that does not split it).
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

from bpe._special import valid_text

# Where a window prefers to end, when asked (searched in the last quarter of the window):
# the text before the cut ends with one of these, and for a sentence the text after it
# starts with white space (so that "3.14" is not a sentence end) unless the stop is CJK.
_PREFER = {
    "paragraph": re.compile(r"\n[ \t]*\n[ \t]*"),
    "line": re.compile(r"\n[ \t]*"),
    "sentence": re.compile(r"[.!?][\"')\]]*(?=\s)|[。！？][」』）]*|\n[ \t]*"),
}


class Cuts(NamedTuple):
    """The whole text's encoding, seen from where it may be cut."""

    text: str            # the text cut (lone surrogates replaced, as encoding does)
    n_tokens: int
    tokens: list[int]    # the token indices k where text may be cut before token k (0 and n incl.)
    chars: list[int]     # the character offset of each of those cuts


def cuts(enc, text: str, allowed_special, disallowed_special) -> Cuts:
    """Encode ``text`` once and list the places where it may be cut."""
    ids = enc.encode(text, allowed_special=allowed_special, disallowed_special=disallowed_special)
    text = valid_text(text)
    tokens, chars = [0], [0]
    pieces = enc.decode_tokens_bytes(ids)
    n_chars = 0
    for k, token in enumerate(pieces, start=1):
        n_chars += sum(1 for b in token if b & 0xC0 != 0x80)  # characters that start here
        if k == len(pieces) or pieces[k][0] & 0xC0 != 0x80:  # the next token starts a character
            tokens.append(k)
            chars.append(n_chars)
    return Cuts(text, len(ids), tokens, chars)


def truncate(enc, text: str, max_tokens: int, side: str, allowed_special, disallowed_special) -> str:
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' (keep the start) or 'left' (keep the end), not {side!r}")
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be 0 or more, not {max_tokens}")
    c = cuts(enc, text, allowed_special, disallowed_special)
    if c.n_tokens <= max_tokens:
        return c.text
    def fits(part: str) -> bool:  # the part's own encoding can differ at its new edge
        return enc.count(part, allowed_special=allowed_special, disallowed_special=disallowed_special) <= max_tokens

    if side == "right":  # the last clean cut at or before max_tokens
        i = bisect.bisect_right(c.tokens, max_tokens) - 1
        while i > 0 and not fits(c.text[: c.chars[i]]):
            i -= 1
        return c.text[: c.chars[i]]
    i = bisect.bisect_left(c.tokens, c.n_tokens - max_tokens)  # the first clean cut after the excess
    while i < len(c.tokens) - 1 and not fits(c.text[c.chars[i] :]):
        i += 1
    return c.text[c.chars[i] :]


def windows(enc, text: str, max_tokens: int, overlap: int, prefer: str | None,
            allowed_special, disallowed_special) -> list[tuple[int, int, int, int]]:
    """(start char, end char, start token, end token) of each window."""
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
    if not 0 <= overlap < max_tokens:
        raise ValueError(f"overlap must be at least 0 and less than max_tokens ({max_tokens}), not {overlap}")
    if prefer is not None and prefer not in _PREFER:
        raise ValueError(f"prefer must be one of {', '.join(_PREFER)} or None, not {prefer!r}")
    c = cuts(enc, text, allowed_special, disallowed_special)
    out: list[tuple[int, int, int, int]] = []
    i = 0  # index into c.tokens of the window's start
    while c.tokens[i] < c.n_tokens:
        start = c.tokens[i]
        j = bisect.bisect_right(c.tokens, start + max_tokens) - 1
        if j <= i:
            raise ValueError(f"the character at offset {c.chars[i]} takes more than max_tokens="
                             f"{max_tokens} tokens, so no window can end after it")
        if prefer is not None and c.tokens[j] < c.n_tokens:
            j = _preferred_end(c, i, j, start + max_tokens * 3 // 4, _PREFER[prefer])
        out.append((c.chars[i], c.chars[j], start, c.tokens[j]))
        if c.tokens[j] == c.n_tokens:
            break
        # the next window starts overlap tokens back (at a clean cut), but always moves on
        i = max(i + 1, bisect.bisect_left(c.tokens, c.tokens[j] - overlap))
    return out


def _preferred_end(c: Cuts, i: int, j: int, from_token: int, unit: "re.Pattern[str]") -> int:
    """The last cut in i+1..j at or after ``from_token`` that ends a unit of text, else j."""
    for k in range(j, i, -1):
        if c.tokens[k] < from_token:
            break
        at = c.chars[k]
        near = c.text[max(0, at - 8) : at + 1]  # the unit's end, and the character after it
        if any(m.end() == min(8, at) for m in unit.finditer(near)):
            return k
    return j
