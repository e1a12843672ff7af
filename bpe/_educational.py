"""Byte pair encoding to read, step by step: the names of ``tiktoken._educational`` over
bpe's slow reference (``bpe._reference``), for learning and for code written against them.

Nothing here is fast; ``bpe.Encoding`` gives the same ids. Training breaks ties between
equally frequent pairs by the smaller pair of ids, as ``bpe.train`` and rustbpe do.

>>> enc = SimpleBytePairEncoding.train("hello hello world", vocab_size=260, pat_str=r"\\S+|\\s+")
>>> enc.decode(enc.encode("hello", visualise=None))
'hello'
"""

from __future__ import annotations

import collections

from bpe import _reference, patterns

_COLOURS = [167, 179, 185, 77, 80, 68, 134]  # 256-colour backgrounds, cycled


class SimpleBytePairEncoding:
    """A pattern and ranks, encoded and decoded in plain Python."""

    def __init__(self, *, pat_str: str, mergeable_ranks: dict[bytes, int]) -> None:
        self.pat_str = pat_str
        self.mergeable_ranks = mergeable_ranks
        self._decoder = {rank: token for token, rank in mergeable_ranks.items()}

    def encode(self, text: str, visualise: str | None = "colour") -> list[int]:
        """Split ``text`` with the pattern, then merge each piece (printing each merge step
        when ``visualise`` is "colour" or "simple")."""
        out: list[int] = []
        for piece in patterns.split(self.pat_str, text):
            out += bpe_encode(self.mergeable_ranks, piece.encode("utf-8"), visualise)
        return out

    def decode_bytes(self, tokens: list[int]) -> bytes:
        return b"".join(self._decoder[t] for t in tokens)

    def decode(self, tokens: list[int]) -> str:
        """The text of ``tokens`` (bytes that are not UTF-8 become U+FFFD)."""
        return self.decode_bytes(tokens).decode("utf-8", errors="replace")

    def decode_tokens_bytes(self, tokens: list[int]) -> list[bytes]:
        return [self._decoder[t] for t in tokens]

    @staticmethod
    def train(training_data: str, vocab_size: int, pat_str: str) -> "SimpleBytePairEncoding":
        """Learn ranks from ``training_data`` (see :func:`bpe_train`)."""
        ranks = bpe_train(training_data, vocab_size, pat_str, visualise=None)
        return SimpleBytePairEncoding(pat_str=pat_str, mergeable_ranks=ranks)

    @staticmethod
    def from_tiktoken(encoding) -> "SimpleBytePairEncoding":
        """The same ranks and pattern as an ``Encoding`` (or a name of one)."""
        if isinstance(encoding, str):
            from bpe.registry import get_encoding

            encoding = get_encoding(encoding)
        return SimpleBytePairEncoding(pat_str=encoding.pat_str, mergeable_ranks=encoding.mergeable_ranks)


def bpe_encode(mergeable_ranks: dict[bytes, int], input: bytes, visualise: str | None = "colour") -> list[int]:
    """Merge the adjacent pair of lowest rank until none is a token (never looking the whole
    piece up first), showing the parts after every step when asked."""
    parts = [input[i : i + 1] for i in range(len(input))]
    while True:
        if visualise in ("colour", "color"):
            visualise_tokens(parts)
        elif visualise == "simple":
            print(parts)
        ranked = [(mergeable_ranks.get(a + b), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
        ranked = [(rank, i) for rank, i in ranked if rank is not None]
        if not ranked:
            break
        _, i = min(ranked)
        parts[i : i + 2] = [parts[i] + parts[i + 1]]
    if visualise:
        print()
    return [mergeable_ranks[part] for part in parts]


def bpe_train(data: str, vocab_size: int, pat_str: str, visualise: str | None = "colour") -> dict[bytes, int]:
    """Ranks of ``vocab_size`` tokens: the 256 bytes, then the most frequent adjacent pair of
    the pieces of ``data``, merged, again and again (``bpe._reference.train_merges``)."""
    if vocab_size < 256:
        raise ValueError("vocab_size must be at least 256, so that every byte is a token")
    counts = collections.Counter(piece.encode("utf-8") for piece in patterns.split(pat_str, data))
    ranks = {bytes([b]): b for b in range(256)}
    tokens = [bytes([b]) for b in range(256)]
    for left, right in _reference.train_merges(counts, vocab_size - 256):
        tokens.append(tokens[left] + tokens[right])
        ranks[tokens[-1]] = len(tokens) - 1
        if visualise in ("colour", "color", "simple"):
            print(f"merge {len(tokens) - 257}: {tokens[left]!r} + {tokens[right]!r} -> {tokens[-1]!r}")
    return ranks


def visualise_tokens(token_values: list[bytes]) -> None:
    """Print the tokens side by side on alternating background colours."""
    text = "".join(f"\u001b[48;5;{_COLOURS[k % len(_COLOURS)]}m{token.decode('utf-8', errors='replace')}"
                   for k, token in enumerate(token_values))
    print(text + "\u001b[0m")


def train_simple_encoding() -> SimpleBytePairEncoding:
    """Train on this module's own source to 600 tokens, and check that it round-trips."""
    with open(__file__, encoding="utf-8") as f:
        data = f.read()
    enc = SimpleBytePairEncoding.train(data, vocab_size=600, pat_str=patterns.CL100K_PATTERN)
    tokens = enc.encode("hello world", visualise=None)
    assert enc.decode(tokens) == "hello world"
    assert enc.decode_bytes(tokens) == b"hello world"
    assert enc.decode_tokens_bytes(tokens) == [enc._decoder[t] for t in tokens]
    return enc
