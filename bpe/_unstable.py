"""``Encoding.encode_with_unstable``: the stable prefix of an encoding and its possible endings.

This follows tiktoken's algorithm step by step (it is rarely called, so it is Python):
the tokens of the last piece are unstable (more text may merge into them), whitespace
tokens before them too; every token that starts with the unstable bytes is a possible
ending, and so is every re-encoding of the unstable bytes followed by a token that could
straddle the boundary.
"""

from __future__ import annotations

import bisect

from bpe import _reference
from bpe._special import special_token_regex


def _is_all_space(token_bytes: bytes) -> bool:
    return all(b in b" \n\t" for b in token_bytes)


def _last_char_len(data: bytes) -> tuple[str | None, int]:
    """The last UTF-8 character of ``data`` and its byte length ((None, 1) when invalid)."""
    for size in range(1, min(4, len(data)) + 1):
        try:
            char = data[-size:].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if len(char) == 1:
            return char, size
        break
    return None, 1


def encode_with_unstable(enc, text: str, allowed_special) -> tuple[list[int], list[list[int]]]:
    ranks = enc.mergeable_ranks
    allowed = frozenset(t for t in allowed_special if t in enc.special_tokens)

    # 1. Encode as usual, remembering how many tokens the last regex piece gave.
    tokens: list[int] = []
    last_piece_len = 0
    start = 0
    specials = []
    if allowed:
        specials = list(special_token_regex(allowed).finditer(text))
    segments = []
    for match in specials:
        segments.append((text[start : match.start()], enc.special_tokens[match.group()]))
        start = match.end()
    segments.append((text[start:], None))
    for segment, special in segments:
        for piece in enc.pieces(segment):
            piece_tokens = enc._encode_single_piece(piece)
            tokens += piece_tokens
            last_piece_len = len(piece_tokens)
        if special is not None:
            tokens.append(special)
            last_piece_len = 0
    if last_piece_len == 0:
        return tokens, []

    # 2. Whitespace tokens before an all-whitespace last piece are unstable too.
    decode = enc.decode_single_token_bytes
    if _is_all_space(decode(tokens[-last_piece_len])):
        while last_piece_len < len(tokens) and _is_all_space(decode(tokens[-last_piece_len - 1])):
            last_piece_len += 1
    unstable = enc.decode_bytes(tokens[-last_piece_len:])
    del tokens[-last_piece_len:]
    if not unstable:
        return tokens, []

    completions: set[tuple[int, ...]] = set()
    sorted_bytes = enc.token_byte_values()

    # 3. Single tokens that start with the unstable bytes.
    point = bisect.bisect_left(sorted_bytes, unstable)
    while point < len(sorted_bytes) and sorted_bytes[point].startswith(unstable):
        completions.add((ranks[sorted_bytes[point]],))
        point += 1

    # 4. A token straddling each inner position: re-encode prefix + token.
    for i in range(1, len(unstable)):
        prefix, suffix = unstable[:i], unstable[i:]
        point = bisect.bisect_left(sorted_bytes, suffix)
        while point < len(sorted_bytes) and sorted_bytes[point].startswith(suffix):
            possibility = prefix + sorted_bytes[point]
            try:
                encoded = enc.encode_ordinary(possibility.decode("utf-8"))
            except UnicodeDecodeError:
                encoded = _reference.bpe_merge(possibility, ranks)
            seq: list[int] = []
            seq_len = 0
            for token in encoded:
                seq.append(token)
                seq_len += len(decode(token))
                if seq_len >= len(unstable):
                    break
            completions.add(tuple(seq))
            point += 1

    # 5. A split may appear before trailing whitespace once more text follows.
    if len(unstable) > 1:
        char, size = _last_char_len(unstable)
        if len(unstable) - size > 0 and char is not None and char.isspace() and _is_white_space(char):
            reencoded = _reference.bpe_merge(unstable[:-size], ranks)
            reencoded += _reference.bpe_merge(unstable[-size:], ranks)
            completions.add(tuple(reencoded))

    return tokens, sorted(list(c) for c in completions)


def _is_white_space(char: str) -> bool:
    from bpe.patterns import WHITE_SPACE

    cp = ord(char)
    return any(a <= cp <= b for a, b in WHITE_SPACE)
