"""Slow, obviously correct twins of the compiled engine. The tests hold ``_core`` to these.

>>> ranks = {b"a": 0, b"b": 1, b"ab": 2, b"abab": 3}
>>> bpe_merge(b"ababa", ranks)
[3, 0]
"""

from __future__ import annotations

from typing import Mapping

from bpe import patterns


def merge_parts(piece: bytes, ranks: Mapping[bytes, int], stop: int = 1) -> list[bytes]:
    """The parts tiktoken's rule leaves of ``piece``: merge the adjacent pair with the lowest
    rank, leftmost among equals, until no pair is a token or ``stop`` parts are left.

    >>> merge_parts(b"abc", {b"a": 0, b"b": 1, b"c": 2, b"bc": 3, b"abc": 4}, stop=2)
    [b'a', b'bc']
    """
    parts = [piece[i : i + 1] for i in range(len(piece))]
    while len(parts) > stop:
        best = None
        for i in range(len(parts) - 1):
            rank = ranks.get(parts[i] + parts[i + 1])
            if rank is not None and (best is None or rank < best[0]):
                best = (rank, i)
        if best is None:
            break
        i = best[1]
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    return parts


def bpe_merge(piece: bytes, ranks: Mapping[bytes, int]) -> list[int]:
    """tiktoken's rule (see :func:`merge_parts`) as ranks. Unlike encoding, this never looks
    the whole piece up first."""
    parts = merge_parts(piece, ranks)
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


def train_merges(piece_counts: Mapping[bytes, int], n_merges: int) -> list[tuple[int, int]]:
    """The merge list of byte-level BPE, recounting every pair at every step (slow, obvious).

    Each step takes the adjacent pair with the highest count over all pieces (a piece that
    occurs k times counts k times; "aaa" holds the pair (a, a) twice); ties go to the
    smallest (left id, right id). Byte b has id b; the k-th merge creates id 256 + k and
    replaces the pair's non-overlapping occurrences, left to right.

    >>> train_merges({b"aaabdaaabac": 1}, 3)  # aa, then ab (ties: the smaller pair), then aa+ab
    [(97, 97), (97, 98), (256, 257)]
    """
    words = [(list(piece), count) for piece, count in piece_counts.items() if count > 0]
    merges: list[tuple[int, int]] = []
    for step in range(n_merges):
        counts: dict[tuple[int, int], int] = {}
        for ids, count in words:
            for pair in zip(ids, ids[1:]):
                counts[pair] = counts.get(pair, 0) + count
        if not counts:
            break
        best = min(counts, key=lambda pair: (-counts[pair], pair))
        new_id = 256 + step
        for ids, _count in words:
            i = 0
            while i < len(ids) - 1:
                if (ids[i], ids[i + 1]) == best:
                    ids[i : i + 2] = [new_id]
                i += 1
        merges.append(best)
    return merges
