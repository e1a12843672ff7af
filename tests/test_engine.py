"""The compiled merge against the slow reference, and the gpt2 family on a small vocabulary."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe
from bpe import _core, _reference, patterns


def train_tiny(text: bytes, merges: int) -> dict[bytes, int]:
    """A tiny BPE vocabulary learned from ``text`` (most frequent pair, first seen on ties)."""
    ranks = {bytes([b]): b for b in range(256)}
    parts = [bytes([b]) for b in text]
    for _ in range(merges):
        counts: dict[tuple[bytes, bytes], int] = {}
        for a, b in zip(parts, parts[1:]):
            counts[(a, b)] = counts.get((a, b), 0) + 1
        if not counts:
            break
        (a, b), _count = max(counts.items(), key=lambda kv: kv[1])
        ranks[a + b] = len(ranks)
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                merged.append(a + b)
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    return ranks


SAMPLE = (
    "the quick brown fox jumps over the lazy dog. The dog's bark isn't loud; they'll see.\n"
    "  indented line\twith tabs\r\nnumbers 12345 and 2024, café naïve — 中文字符 😀😀\n"
) * 3
TINY = train_tiny(SAMPLE.encode("utf-8"), 300)
CORE = _core.CoreBPE(TINY, {}, 0)


def test_wikipedia_example():
    # aaabdaaabac: merging aa, then aab... the reference and the engine agree.
    ranks = {bytes([b]): b for b in range(256)} | {b"aa": 256, b"ab": 257, b"aaab": 258}
    core = _core.CoreBPE(ranks, {}, 0)
    assert core.encode_single_piece(b"aaabdaaabac") == [258, 100, 258, 97, 99]
    assert _reference.encode_piece(b"aaabdaaabac", ranks) == [258, 100, 258, 97, 99]


@settings(max_examples=500, deadline=None)
@given(piece=st.binary(min_size=1, max_size=200))
def test_merge_equals_reference_on_bytes(piece):
    assert CORE.encode_single_piece(piece) == _reference.encode_piece(piece, TINY)


@settings(max_examples=300, deadline=None)
@given(piece=st.text(alphabet=st.sampled_from("the dog's 中😀 \n"), min_size=1, max_size=400))
def test_merge_equals_reference_on_text_like_pieces(piece):
    data = piece.encode("utf-8")
    assert CORE.encode_single_piece(data) == _reference.encode_piece(data, TINY)


def test_leftmost_wins_among_equal_ranks():
    ranks = {bytes([b]): b for b in range(256)} | {b"aa": 256}
    core = _core.CoreBPE(ranks, {}, 0)
    for n in (3, 5, 49, 101):  # both the small and the heap path
        assert core.encode_single_piece(b"a" * n) == [256] * (n // 2) + [97] * (n % 2)


def test_missing_byte_is_a_clear_error():
    core = _core.CoreBPE({b"a": 0, b"b": 1}, {}, 0)
    with pytest.raises(ValueError, match="0x63"):
        core.encode_single_piece(b"abc")


@pytest.mark.parametrize("name,pattern", [
    ("r50k", patterns.R50K_PATTERN),
    ("cl100k", patterns.CL100K_PATTERN),
    ("o200k", patterns.O200K_PATTERN),
])
@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(SAMPLE + "'S'LL'Ve \u00a0\u2028ǅ\u0301"), max_size=120))
def test_small_vocabulary_equals_tiktoken(name, pattern, text):
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is the oracle: pip install '.[test]'")
    special = {"<|endoftext|>": len(TINY)}
    ours = bpe.Encoding(name, pat_str=pattern, mergeable_ranks=TINY, special_tokens=special)
    theirs = tiktoken.Encoding(name, pat_str=pattern, mergeable_ranks=TINY, special_tokens=special)
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)
    assert ours._encode_only_native_bpe(text) == theirs.encode_ordinary(text)
    assert ours.encode_ordinary(text) == _reference.encode_ordinary(text, pattern, TINY)


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(SAMPLE + "'"), max_size=120))
def test_pattern_without_scanner_uses_regex_path(text):
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is the oracle: pip install '.[test]'")
    pattern = r"""\p{L}+|\p{N}|[^\p{L}\p{N}\s]+|\s+"""
    ours = bpe.Encoding("custom", pat_str=pattern, mergeable_ranks=TINY, special_tokens={})
    theirs = tiktoken.Encoding("custom", pat_str=pattern, mergeable_ranks=TINY, special_tokens={})
    assert ours._family == 0
    assert ours.encode_ordinary(text) == theirs.encode_ordinary(text)


@pytest.mark.threads
def test_piece_cache_under_thread_contention():
    # A tiny cache (8 entries, and 1 for long pieces) shared by 4 threads is overwritten
    # all the time: every result must still equal the uncached engine's.
    import threading

    # Up to 40 bytes: the short-piece cache; 60 to 200 bytes: the long-piece cache (1 entry).
    pieces = [w.encode() for w in SAMPLE.split()] + [SAMPLE[i : i + 40].encode() for i in range(0, 200, 3)]
    pieces += [SAMPLE[i : i + 60 + i % 140].encode() for i in range(0, 200, 7)]
    plain = _core.CoreBPE(TINY, {}, 0, 0)
    want = [plain.encode_single_piece(p) for p in pieces]
    shared = _core.CoreBPE(TINY, {}, 0, 8)
    errors = []

    def work(seed):
        for k in range(3000):
            i = (k * 7 + seed) % len(pieces)
            if shared.encode_single_piece(pieces[i]) != want[i]:
                errors.append(i)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_cache_size_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        _core.CoreBPE(TINY, {}, 0, 1000)


# The engine writes the UTF-8 of non-ASCII strs itself (bpe_utf8_write): one 4-byte store per
# code point and word-at-a-time ASCII runs, per str kind (Latin-1, UCS-2, UCS-4).
EDGES = "\x00\x7f\x80\xff\u0100\u07ff\u0800\ud7ff\ue000\uffff\U00010000\U0010ffff中é😀 aZ"


@settings(max_examples=1500, deadline=None)
@given(text=st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from(EDGES)),
    st.text(alphabet=st.characters(max_codepoint=0xFF)),
    st.text(alphabet=st.characters(max_codepoint=0xFFFF)),
    st.lists(st.sampled_from(["abcdefgh", "é", "中文", "😀", " ", "\ud800", "xyz1234"])).map("".join),
))
def test_utf8_of_equals_python(text):
    try:
        want = text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _core.utf8_of(text)
        return
    assert _core.utf8_of(text) == want


def test_utf8_of_ascii_runs_ended_in_every_lane():
    """The vector ASCII runs (bpe/_c/simd.h, 16 code units at a time) stop at the first unit
    that is not ASCII, in whichever lane of a block it falls, in each str kind."""
    for end in ("\x80", "é", "\u0100", "中", "\uffff", "😀"):
        for run in range(0, 70):
            for tail in (0, 1, 15, 16, 17, 40):
                text = "".join(chr(32 + (k * 7) % 95) for k in range(run)) + end + "x" * tail
                assert _core.utf8_of(text) == text.encode("utf-8"), (end, run, tail)


def test_utf8_of_every_code_point():
    for kind_floor in (0, 0x100, 0x10000):  # the same code points in each str kind
        for start in range(0, 0x110000, 0x8000):
            cps = [c for c in range(start, min(start + 0x8000, 0x110000)) if not 0xD800 <= c < 0xE000]
            text = (chr(kind_floor) if kind_floor else "") + "".join(map(chr, cps))
            assert _core.utf8_of(text) == text.encode("utf-8"), hex(start)


def test_encode_same_before_and_after_python_caches_utf8():
    enc = bpe.Encoding("tiny", pat_str=patterns.CL100K_PATTERN, mergeable_ranks=train_tiny(SAMPLE.encode(), 60),
                       special_tokens={})
    text = SAMPLE + "ÿ" * 9
    first = enc.encode_ordinary(text)
    enc._core_bpe.split(text)  # leaves Python's UTF-8 on the str
    assert enc.encode_ordinary(text) == first
    assert enc.encode_ordinary_batch([text, SAMPLE], num_threads=1) == [first, enc.encode_ordinary(SAMPLE)]


@pytest.mark.parametrize("entries", [1, 4, 8])
def test_piece_cache_tags_that_collide(entries):
    # One set for every piece (a tier has four entries at least): its one-byte tag (seven
    # bits of the hash) matches some other piece about once in 128, and the piece must still
    # be compared before use, in any way of the set.
    ranks = train_tiny(SAMPLE.encode(), 80)
    one = _core.CoreBPE(ranks, {}, 1, cache_entries=entries)
    off = _core.CoreBPE(ranks, {}, 1, cache_entries=0)
    words = sorted({w for w in SAMPLE.replace("\n", " ").split(" ") if w})
    pieces = [" " + a + b for a in words for b in words]  # a few thousand distinct pieces
    for piece in pieces + pieces[::-1]:
        assert one.encode_ordinary(piece) == off.encode_ordinary(piece), piece


@pytest.mark.parametrize("entries", [4, 64])
def test_piece_cache_hits_of_every_length_and_token_count(entries):
    # A hit compares the piece's words after the first from its last 8 bytes (word_at) and
    # copies its ranks eight at a time, reading past the count into the next entry, or past
    # the last entry of a tier into the slack after it. Pieces of every length a tier holds
    # (3-24, 25-48, 49-256 bytes), with token counts on both sides of each block of eight
    # and of each tier's limit (8, 18, 62 ranks), must come back from the cache as the
    # merges gave them. With 4 entries every tier is one set, so its last entry is in use,
    # and pieces that share their length and first word meet in it with matching tags.
    rng = random.Random(entries)
    ranks = {bytes([b]): b for b in range(256)}
    for a in "abcd":
        for b in "abcd":
            ranks[(a + b).encode()] = len(ranks)
    for quad in ("abab", "cdcd", "abcd", "dcba"):
        ranks[quad.encode()] = len(ranks)
    cached = _core.CoreBPE(ranks, {}, 1, cache_entries=entries)
    off = _core.CoreBPE(ranks, {}, 1, cache_entries=0)
    pieces = []
    for n in range(2, 256):  # the piece is a space and n letters: 3 to 256 bytes
        for alphabet in ("abcd", "abcdxyz", "xyz"):
            pieces.append(" " + "".join(rng.choice(alphabet) for _ in range(n)))
    for n in (16, 24, 40, 100):  # same length, same first 8 bytes: only the later words differ
        pieces += [" abcdabc" + "".join(rng.choice("abcd") for _ in range(n - 8)) for _ in range(300)]
    counts = {len(off.encode_ordinary(piece)) for piece in pieces}
    for _ in range(3):  # the first pass puts, the next two hit (when the piece fits)
        rng.shuffle(pieces)  # each piece's ranks land where another's were before
        assert cached.encode_batch_buffer(pieces) == off.encode_batch_buffer(pieces)
        assert [cached.encode_ordinary(p) for p in pieces] == [off.encode_ordinary(p) for p in pieces]
    assert {7, 8, 9, 16, 17, 18, 19, 56, 62, 63} <= counts  # the edges were reached


@pytest.mark.parametrize("call", ["encode_batch_buffer", "count_batch", "count_pieces"])
def test_batches_name_the_bad_text(call):
    # A non-str is refused before any work, by its index; a lone surrogate in the middle of
    # a batch raises Python's own error after the texts before it were done (the UTF-8
    # written for those is freed: the debug build's AddressSanitizer run checks that).
    ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256}
    core = _core.CoreBPE(ranks, {}, 3)
    run = getattr(core, call) if call != "count_pieces" else (lambda texts: _core.count_pieces(texts, 3))
    with pytest.raises(TypeError, match=r"texts\[2\] is bytes, not str"):
        run(["ab", "中文", b"ab"])
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        run(["ab", "中文 ab", "x \ud800 y", "é"])
    # and the engine is left as good as new
    fresh = getattr(_core.CoreBPE(ranks, {}, 3), call) if call != "count_pieces" else run
    assert run(["ab", "中文 ab", "é"]) == fresh(["ab", "中文 ab", "é"])


def _near_tokens() -> tuple[dict[bytes, int], list[bytes]]:
    """A vocabulary whose long tokens share their first 8 or 16 bytes with each other, and
    strings that share them too without being tokens: the token table keeps a token's
    first 8 bytes in its slot (16 for tokens over 8 bytes), and the rest compares elsewhere."""
    base = b"abcdefghijklmnopqrstuvwxyzabcdefghijklmn"
    ranks = {bytes([b]): b for b in range(256)}
    near = []
    for n in range(3, len(base) + 1):
        ranks.setdefault(base[:n], len(ranks))
        for k in (0, 7, 8, 9, 15, 16, 17, n - 1):
            if k < n:
                token = base[:k] + b"X" + base[k + 1:n]
                if n in (8, 9, 16, 17, 24, 33):
                    ranks.setdefault(token, len(ranks))
                near.append(base[:k] + b"Q" + base[k + 1:n])  # no token: the merges decide
                near.append(token)
    return ranks, near + list(ranks)


def test_tokens_sharing_their_first_words_are_told_apart():
    ranks, strings = _near_tokens()
    core = _core.CoreBPE(ranks, {}, 0)
    for s in strings:
        assert core.encode_single_piece(s) == _reference.encode_piece(s, ranks), s
    # the same strings as pieces of a text, through the batched lookups of the encode loop
    text = "\n".join(s.decode("latin-1") for s in strings if s.isalpha())
    ours = bpe.Encoding("near", pat_str=patterns.CL100K_PATTERN, mergeable_ranks=ranks, special_tokens={})
    assert ours._family != 0
    assert ours.encode_ordinary(text) == _reference.encode_ordinary(text, patterns.CL100K_PATTERN, ranks)
