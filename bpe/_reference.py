"""Slow, obviously correct twins of the compiled engine. The tests hold ``_core`` to these.

>>> ranks = {b"a": 0, b"b": 1, b"ab": 2, b"abab": 3}
>>> bpe_merge(b"ababa", ranks)
[3, 0]
"""

from __future__ import annotations

from typing import Mapping

from bpe import patterns


def bpe_merge(piece: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """tiktoken's rule: merge the adjacent pair with the lowest rank, leftmost among equals.

    Unlike encoding, this never looks the whole piece up first.
    """
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while len(parts) > 1:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    missing = [p for p in parts if p not in ranks]
    if missing:
        raise ValueError(f"byte 0x{missing[0][0]:02X} has no rank in this vocabulary")
    return [ranks[p] for p in parts]


def encode_piece(piece: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """One piece: its own rank when it is a token, else the merge."""
    rank = ranks.get(piece)
    return [rank] if rank is not None else bpe_merge(piece, ranks)


def encode_ordinary(text: str, pat_str: str, ranks: Mapping[bytes, int]) -> list[int]:
    """Split with the ``regex`` reference, then encode each piece."""
    out: list[int] = []
    for piece in patterns.split(pat_str, text):
        out.extend(encode_piece(piece.encode("utf-8"), ranks))
    return out
