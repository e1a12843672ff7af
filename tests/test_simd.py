"""The vector classifiers (bpe/_c/simd.h) and the scanners that read their masks
(bpe/_pretok.pxd), at every level this build and CPU run: each level's masks equal the
scalar reference's on every byte value in every lane, the reference equals `regex` on
ASCII, and at each level the o200k and cl100k scanners cut exactly where `regex` does and
the ids are tiktoken's."""

from __future__ import annotations

import os
import random
import subprocess
import sys

import pytest
import regex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bpe import _classes, _core, patterns
from conftest import OFFICIAL, corpus_path, oracle, ours
from test_encoding import TRICKY

_classes.ensure()  # the full scanners read the code point table
LEVELS = _core.simd_levels()
VECTOR = [level for level in LEVELS if level not in ("none", "scalar")]
BYTES = {bytes([b]): b for b in range(256)}
FAMILIES = [(3, patterns.O200K_PATTERN), (2, patterns.CL100K_PATTERN)]
SCANNERS = {family: _core.CoreBPE(BYTES, {}, family) for family, _ in FAMILIES}


@pytest.fixture(params=LEVELS)
def level(request):
    """Each level in turn, the process's own level restored after the test."""
    old = _core.set_simd_level(request.param)
    try:
        yield request.param
    finally:
        _core.set_simd_level(old)


def test_every_x86_64_and_aarch64_build_has_a_vector_level():
    import platform

    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        assert "sse2" in LEVELS
    elif machine in ("aarch64", "arm64"):
        assert "neon" in LEVELS
    else:
        pytest.skip(f"{machine} has no vector level: the scanners read one byte at a time")
    assert _core.simd_level() == LEVELS[-1] or os.environ.get("BPE_SIMD")


def _bit(mask: int, j: int) -> bool:
    return bool(mask >> j & 1)


def test_the_reference_masks_are_the_patterns_classes_on_every_byte():
    expected = {
        "upper": r"\p{Lu}", "lower": r"\p{Ll}", "digit": r"\p{N}", "space": r"\s",
        "other": r"[^\s\p{L}\p{N}]", "newline": r"[\r\n]", "slash": "/", "blank": " ", "quote": "'",
    }
    for start in (0, 64):
        block = bytes(range(start, start + 64))
        masks = _core.class_masks(block, "scalar")
        for j, b in enumerate(block):
            for name, cls in expected.items():
                assert _bit(masks[name], j) == bool(regex.fullmatch(cls, chr(b))), (name, b)
            assert not _bit(masks["high"], j)
    high = _core.class_masks(bytes(range(128, 192)), "scalar")
    assert high["high"] == 2**64 - 1 and not any(v for k, v in high.items() if k != "high")


@pytest.mark.parametrize("vector", VECTOR)
def test_each_vector_level_equals_the_reference_on_every_byte_in_every_lane(vector):
    blocks = [bytes((shift + lane) % 256 for lane in range(64)) for shift in range(256)]
    rng = random.Random(7)
    blocks += [bytes(rng.choice(b"aZ09 \t\r\n/'.\x7f\x80\xff") for _ in range(64)) for _ in range(500)]
    for block in blocks:
        assert _core.class_masks(block, vector) == _core.class_masks(block, "scalar"), block


def test_levels_are_chosen_by_name_and_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown SIMD level 'avx9'.*none"):
        _core.set_simd_level("avx9")
    missing = [name for name in _core.SIMD_LEVELS if name not in LEVELS]
    for name in missing:
        with pytest.raises(ValueError, match="not available"):
            _core.set_simd_level(name)
    with pytest.raises(ValueError, match="64 bytes"):
        _core.class_masks(b"abc", "scalar")


@pytest.mark.parametrize("forced,expected", [("none", "none"), ("scalar", "scalar"), ("", None), ("avx9", None)])
def test_bpe_simd_forces_a_level_at_import(forced, expected, tmp_path):
    code = "import warnings, bpe._core as c\nprint(c.simd_level(), c.simd_levels()[-1])\n"
    env = dict(os.environ, BPE_SIMD=forced)
    run = subprocess.run([sys.executable, "-W", "always", "-c", code], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120, check=True)
    chosen, best = run.stdout.split()
    assert chosen == (expected or best)
    assert ("BPE_SIMD is ignored" in run.stderr) == (forced == "avx9")


# Texts long enough for the masks (a window is 64 bytes; the last 63 of a text are read a
# byte at a time), mostly ASCII so that runs end at every kind of byte, near windows' ends too.
ASCII = "".join(chr(c) for c in range(128))
long_text = st.lists(
    st.one_of(
        st.sampled_from(ASCII),
        st.sampled_from("aZ09 '.\n\t/"),
        st.sampled_from(["the", " The", "  ", "\r\n", "don't", "'S", "1234", "...", " ."]),
        st.sampled_from(TRICKY),
    ),
    min_size=40,
    max_size=300,
).map("".join)


@pytest.mark.parametrize("family,pattern", FAMILIES)
# The level fixture is set once for all of a test's examples, which is what is wanted here.
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=long_text)
def test_each_level_cuts_where_regex_does(level, family, pattern, text):
    assert SCANNERS[family].split(text) == patterns.split(pattern, text)


# Every kind of piece at every offset of a window: the samples after 0 to 70 bytes of padding.
_SAMPLES = [
    "Hello World, don't THE Lord's HTTPServer iPhone aB.cD  x\t y \n\n  z\r\n 123456 7 .x ..x  .x",
    "foo!!\n\n//bar  /path//to\n/ end   \x0b\x0c x\u00a0y é'S x'll 12\u0663 \u3000z\t\n",
    "a" * 70 + " " * 70 + "\n" * 3 + "B" * 70 + "." * 70 + "7" * 8,
]


@pytest.mark.parametrize("family,pattern", FAMILIES)
def test_each_level_cuts_every_piece_kind_at_every_window_offset(level, family, pattern):
    for sample in _SAMPLES:
        for pad in ("x", " ", "\n", "é"):
            for shift in range(71):
                text = pad * shift + sample + sample
                assert SCANNERS[family].split(text) == patterns.split(pattern, text), (shift, pad, sample)


@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_each_level_gives_tiktokens_ids_and_counts(level, name):
    assert name in OFFICIAL
    enc, tk = ours(name), oracle(name)
    for corpus in ("kjv.txt", "debref.en.txt", "debref.zh-cn.txt"):
        text = corpus_path(corpus).read_text(encoding="utf-8", errors="replace")[:120_000]
        docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
        expected = [tk.encode_ordinary(doc) for doc in docs]
        assert [enc.encode_ordinary(doc) for doc in docs] == expected, corpus
        assert enc._core_bpe.count_cuts(text.encode()) == len(patterns.split(enc._pat_str, text))


# The window's cuts (bpe/_pretok.pxd window_cuts), bit by bit: from every piece start of
# random texts that mix every ASCII byte with the pieces whose ends are decided far from
# them (contractions, newlines taken in after punctuation, white space up to its last
# newline, digits in threes, non-ASCII letters, digits, punctuation and white space).
_PARTS = [chr(c) for c in range(128)] + [
    "É", "é", "\u0301", "\x85", "\u2028", "\u2014", "\u4e2d", "\u01c5", "\u02b0", "\u00a0 ", "\n\u3000",
    " \u0301", "\u0967", "\u0663", "the", " The", "  ", "\r\n", "don't", "'S", "x'\u017f", "1234", "...", " .",
    "\n\n", "  \n", " \n ", "x.y", "HTTPServer", "iPhone", "\n    ", ".\n", "./\n/", "12345678901234",
    "'ll", "'re", "it's", " 've", "'LL",
]


def _random_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(_PARTS) for _ in range(rng.randint(64, 300))) for _ in range(count)]


@pytest.mark.parametrize("family,pattern", FAMILIES)
@pytest.mark.parametrize("level", [level for level in LEVELS if level != "none"])
def test_window_cuts_are_regexs_piece_starts_wherever_they_are_sure(level, family, pattern):
    sure = 0
    for text in _random_texts(11, 400):
        data, starts, at = text.encode(), set(), 0
        for piece in patterns.split(pattern, text):
            starts.add(at)
            at += len(piece.encode())
        for start in sorted(starts):
            if len(data) - start < 64 or data[start] >= 0x80:
                continue  # the scanner makes no window there
            cuts, unsure = _core.window_cuts_of(data[start : start + 64], level, family == 3)
            for k in range(1, 64):
                if not unsure >> k & 1:
                    sure += 1
                    assert bool(cuts >> k & 1) == (start + k in starts), (data[start : start + 64], k)
    assert sure > 500_000  # most bits are vouched for, so the assertions above had work


@pytest.mark.parametrize("family,pattern", FAMILIES)
@pytest.mark.parametrize("level", [level for level in LEVELS if level != "none"])
def test_window_cuts_vouch_for_all_of_plain_prose_and_code(level, family, pattern):
    for text in ("In the beginning God created the heaven and the earth.\n And the earth was",
                 "    def split(self, text: str) -> list[str]:\n        return [x.y(3) for x in text]"):
        cuts, unsure = _core.window_cuts_of(text.encode()[:64], level, family == 3)
        assert unsure == 1 << 63, hex(unsure)  # the last byte's answer needs the next
        starts, at = [], 0
        for piece in patterns.split(pattern, text):
            starts.append(at)
            at += len(piece)
        assert [k for k in range(1, 63) if cuts >> k & 1] == [k for k in starts if 0 < k < 63]


@pytest.mark.parametrize("family,pattern", FAMILIES)
def test_each_level_cuts_random_mixed_texts_where_regex_does(level, family, pattern):
    for text in _random_texts(12, 1500):
        assert SCANNERS[family].split(text) == patterns.split(pattern, text), text


# The encode loop walks a window's cuts itself (bpe/_encode.pxd cut_window) rather than
# asking the scanner for each piece, and looks pieces up in batches of up to 256, so it is
# held to tiktoken on the same mixed texts, at lengths on both sides of the 72 bytes a
# window needs (the texts have 40 to 220 pieces, and the one joined from them fills batch
# after batch), and in the counting mode too.
@pytest.mark.parametrize("name", ["o200k_base", "cl100k_base"])
def test_each_level_encodes_random_mixed_texts_as_tiktoken_does(level, name):
    assert name in OFFICIAL
    enc, tk = ours(name), oracle(name)
    rng = random.Random(13)
    texts = _random_texts(13, 500) + ["".join(rng.choice(_PARTS) for _ in range(rng.randint(40, 90)))
                                      for _ in range(300)]
    texts.append("".join(texts))  # one long text: windows after windows
    expected = [tk.encode_ordinary(text) for text in texts]
    assert [enc.encode_ordinary(text) for text in texts] == expected
    assert enc.count_batch(texts, num_threads=1) == [len(ids) for ids in expected]
