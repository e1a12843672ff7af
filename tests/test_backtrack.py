"""The backtracking encoder for long pieces, held to the merge engine and the reference.

Pieces of 13 bytes and more are encoded by leftmost-longest matching with backtracking
(bpe/_core.pyx); `encode_piece_with` runs either engine on any piece, so each is checked on
pieces of every length, not only where encode() would use it.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpe import _core, _reference
from conftest import OFFICIAL, ours
from test_engine import SAMPLE, TINY, train_tiny


def engines_agree(core, piece: bytes) -> list[int]:
    merged = core.encode_piece_with(piece, "merge")
    assert core.encode_piece_with(piece, "backtrack") == merged, piece
    return merged


def test_backtracking_is_on_for_ordinary_vocabularies():
    assert _core.CoreBPE(TINY, {}, 0).backtracking
    assert not _core.CoreBPE(TINY, {}, 0, backtrack=False).backtracking
    assert _core.CoreBPE(TINY, {}, 0, backtrack=False).encode_piece_with(b"ab", "backtrack") is None


@settings(max_examples=400, deadline=None)
@given(piece=st.binary(min_size=1, max_size=600))
def test_equals_reference_on_bytes(piece):
    core = _core.CoreBPE(TINY, {}, 0)
    assert core.encode_piece_with(piece, "backtrack") == _reference.encode_piece(piece, TINY)


@settings(max_examples=300, deadline=None)
@given(piece=st.text(alphabet=st.sampled_from("the dog's 中😀 \n"), min_size=1, max_size=400))
def test_equals_reference_on_text_like_pieces(piece):
    data = piece.encode("utf-8")
    core = _core.CoreBPE(TINY, {}, 0)
    assert core.encode_piece_with(data, "backtrack") == _reference.encode_piece(data, TINY)


SHARED = _core.CoreBPE(TINY, {}, 0)


@settings(max_examples=300, deadline=None)
@given(piece=st.text(alphabet=st.sampled_from("the dog's 中😀 \n"), min_size=1, max_size=200))
def test_pair_memo_across_calls(piece):
    # One engine for every example: its memo of compatible pairs fills up, and later pieces
    # read answers left by earlier ones, or find another pair in the slot.
    data = piece.encode("utf-8")
    expected = _reference.encode_piece(data, TINY)
    assert SHARED.encode_piece_with(data, "backtrack") == expected
    assert SHARED.encode_piece_with(data, "backtrack") == expected


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), merges=st.integers(1, 120),
       piece=st.text(alphabet=st.sampled_from("aab ab_"), min_size=1, max_size=300))
def test_vocabularies_of_repeats(seed, merges, piece):
    # Vocabularies trained on runs of one or two letters make long chains of prefixes and
    # deep merge trees: the hard case for the compatibility test and for backtracking.
    rnd = random.Random(seed)
    corpus = "".join(rnd.choice(["a" * rnd.randint(1, 40), "ab", " _", "_" * rnd.randint(1, 20), "b"])
                     for _ in range(60)).encode()
    ranks = train_tiny(corpus, merges)
    core = _core.CoreBPE(ranks, {}, 0)
    assert core.backtracking
    data = piece.encode()
    assert core.encode_piece_with(data, "backtrack") == _reference.encode_piece(data, ranks)


def test_leftmost_wins_among_equal_ranks():
    ranks = {bytes([b]): b for b in range(256)} | {b"aa": 256}
    core = _core.CoreBPE(ranks, {}, 0)
    for n in (3, 5, 257, 1001):
        assert core.encode_piece_with(b"a" * n, "backtrack") == [256] * (n // 2) + [97] * (n % 2)
        assert core.encode_single_piece(b"a" * n) == [256] * (n // 2) + [97] * (n % 2)


def test_refused_when_a_merge_makes_a_lower_rank():
    # "ab" has rank 0, below its parts: BPE still builds it, but ranks no longer give the
    # order of the merges, which the compatibility test relies on. The heap takes over.
    ranks = {bytes([b]): b + 1 for b in range(256)} | {b"ab": 0, b"abab": 257}
    core = _core.CoreBPE(ranks, {}, 0)
    assert not core.backtracking
    piece = b"ab" * 300 + b"a"
    assert core.encode_single_piece(piece) == _reference.encode_piece(piece, ranks)


def test_refused_without_every_byte():
    ranks = {b"a": 0, b"b": 1, b"ab": 2}
    core = _core.CoreBPE(ranks, {}, 0)
    assert not core.backtracking
    assert core.encode_single_piece(b"ab" * 200) == [2] * 200


def test_unbuildable_tokens_are_never_matched():
    # "abcd" is a token, but BPE on its bytes stops at a + bc + d (neither "abc" nor "bcd"
    # is a token), so BPE never produces it inside a longer piece; whole-piece lookup
    # still returns it for the piece "abcd" alone, as tiktoken does.
    ranks = {bytes([b]): b for b in range(256)} | {b"bc": 256, b"abcd": 257}
    core = _core.CoreBPE(ranks, {}, 0)
    assert core.backtracking
    assert core.encode_piece_with(b"abcd", "backtrack") == [97, 256, 100]
    for piece in (b"abcd" * 150, b"zabcdab" * 90):
        assert core.encode_piece_with(piece, "backtrack") == _reference.encode_piece(piece, ranks)
    assert core.encode_single_piece(b"abcd") == [257]


@pytest.mark.parametrize("name", OFFICIAL)
def test_every_official_token(name):
    # BPE on a token's own bytes, by both engines (no whole-piece lookup): all agree, and
    # this also checks which tokens the backtracking tables call buildable.
    enc = ours(name)
    core = enc._core_bpe
    assert core.backtracking
    for token in enc._mergeable_ranks:
        engines_agree(core, token)


@pytest.mark.parametrize("name", OFFICIAL)
def test_official_vocabularies_on_long_and_awkward_pieces(name):
    core = ours(name)._core_bpe
    rnd = random.Random(7)
    alphabets = ["ab", "a ", "_ ", " _=-", "0123456789", "的是了不在人有", "\u00e9e\u0301",
                 "\U0001f600\U0001f44d\u200d", "".join(map(chr, range(32, 127)))]
    for _ in range(300):
        alphabet = rnd.choice(alphabets)
        n = rnd.choice([2, 10, 49, 100, 257, 700, 3000])
        piece = "".join(rnd.choice(alphabet) for _ in range(n)).encode()
        engines_agree(core, piece)
    for piece in (b" " + b"_" * 999, b"=" * 1000, b"\xff" * 500, bytes(range(256)) * 3):
        engines_agree(core, piece)


@pytest.mark.parametrize("name", OFFICIAL)
def test_pair_memo_under_collisions(name):
    # Pieces glued from random CJK tokens of the vocabulary: tens of thousands of distinct
    # adjacent pairs, compatible or not, through one engine's 8192-slot memo.
    enc = ours(name)
    core = enc._core_bpe
    cjk = sorted(t for t in enc._mergeable_ranks
                 if 3 <= len(t) <= 9 and all(0xE4 <= b <= 0xE9 for b in t[::3])
                 and t.decode("utf-8", "replace").isalpha())
    assert len(cjk) > 500
    rnd = random.Random(11)
    for _ in range(3000):
        engines_agree(core, b"".join(rnd.choice(cjk) for _ in range(rnd.randint(2, 12))))


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), merges=st.integers(50, 400),
       piece=st.binary(min_size=1, max_size=200).map(lambda b: bytes(b"\x00\x01\x7f\x80\xfe\xff"[x % 6] for x in b)))
def test_trie_nodes_with_children_far_apart(seed, merges, piece):
    # The trie is a double array: a node's children sit at its base plus their byte, so a
    # node with children at 0x00 and 0xFF needs two free slots 255 apart, and a walk that
    # steps off a leaf or past the last slot must stop there. Vocabularies trained on
    # those bytes give many such nodes.
    rnd = random.Random(seed)
    corpus = bytes(rnd.choice(b"\x00\x01\x7f\x80\xfe\xff") for _ in range(3000))
    ranks = train_tiny(corpus, merges)
    core = _core.CoreBPE(ranks, {}, 0)
    assert core.backtracking
    assert core.encode_piece_with(piece, "backtrack") == _reference.encode_piece(piece, ranks)
