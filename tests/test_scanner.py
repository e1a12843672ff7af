"""Each hand-written scanner cuts text exactly where the `regex` reference does."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpe import _core, patterns
from test_encoding import TRICKY

FAMILIES = [
    (1, patterns.R50K_PATTERN),
    (2, patterns.CL100K_PATTERN),
    (3, patterns.O200K_PATTERN),
]
BYTES = {bytes([b]): b for b in range(256)}
SCANNERS = {fam: _core.CoreBPE(BYTES, {}, fam) for fam, _ in FAMILIES}

weighted = st.text(
    alphabet=st.one_of(
        st.sampled_from(TRICKY),
        st.sampled_from(TRICKY),
        st.characters(exclude_categories=("Cs",)),
    ),
    max_size=80,
)


@pytest.mark.parametrize("family,pattern", FAMILIES)
@settings(max_examples=1500, deadline=None)
@given(text=weighted)
def test_scanner_equals_regex(family, pattern, text):
    assert SCANNERS[family].split(text) == patterns.split(pattern, text)


# Mostly ASCII, so that ASCII runs end at every kind of code point: the scanners take an
# ASCII fast path and must leave it wherever a non-ASCII code point could change the piece.
ASCII = "".join(chr(c) for c in range(128))
mostly_ascii = st.text(
    alphabet=st.one_of(
        st.sampled_from(ASCII),
        st.sampled_from("aZ09 '.\n"),
        st.sampled_from("aZ09 '.\n"),
        st.sampled_from(TRICKY),
    ),
    max_size=80,
)


@pytest.mark.parametrize("family,pattern", FAMILIES)
@settings(max_examples=1500, deadline=None)
@given(text=mostly_ascii)
def test_scanner_equals_regex_near_ascii(family, pattern, text):
    assert SCANNERS[family].split(text) == patterns.split(pattern, text)


@pytest.mark.parametrize("family,pattern", FAMILIES)
@pytest.mark.parametrize(
    "text",
    [
        "", " ", "  ", "a", " a", "  a", "\n", " \n", "\n ", "\r\n\r\n  x", " \t\n \tx",
        "don't DON'T Don'T we'LL you'Re I'M it'ſ they'VE he'D", "'", "''s", "x'",
        "12345678 1 12 123 1234", "١٢٣٤", "ǅungla ǅ", "HTTPServer iPhone NASA's",
        "a\u0301b \u0301 \u0301a", "x  /path//to\n/", "foo!!\n\n", "?\r\n", "   \r\n  ",
        "end   ", "\u00a0\u00a0x", "\u3000中文 日本語", "\U0001f600\U0001f600 x",
        "\U000330c0a", "a\U000330c0'S",
        "abcé ABCé ABCdé ABé 12٣ 1٣ 123٣ .— ,.— !é /x ſ 's 'S 'é", "x'ſ a'Ll", "Ab\u0301c",
    ],
)
def test_scanner_examples(family, pattern, text):
    assert SCANNERS[family].split(text) == patterns.split(pattern, text)


# Letter runs are scanned eight bytes at a time: runs that end just before, at and after
# each eight-byte step, ended by every kind of byte that a range test could get wrong.
_ENDINGS = ["", "é", "É", "'s", "'S", "1", " ", "@", "[", "`", "{", "\x7f", "\x00", "ſ", "中"]


@pytest.mark.parametrize("family,pattern", FAMILIES)
@pytest.mark.parametrize("length", [1, 7, 8, 9, 15, 16, 17, 24])
def test_scanner_letter_runs_at_word_boundaries(family, pattern, length):
    words = ["xyzabcdefghijklmnopqrstuvw"[:length], "QRSTUVWXYZABCDEFGHIJKLMNOP"[:length],
             ("Ab" * length)[:length], "Q" + "a" * (length - 1)]
    for word in words:
        for ending in _ENDINGS:
            for text in (word + ending, " " + word + ending + " z", "!" + word + ending):
                assert SCANNERS[family].split(text) == patterns.split(pattern, text), text


# Whitespace takes an ASCII path too (the whitespace alternatives, a space before other,
# the prefix of a letter run): every string of up to four code points over whitespace of
# each kind, the code points whitespace can be a prefix of or run into, and non-ASCII ones
# that are whitespace, a letter and other.
_AROUND_SPACE = " \t\n\r\x0ba,'1/\xa0中—"


@pytest.mark.parametrize("family,pattern", FAMILIES)
def test_scanner_whitespace_exhaustively(family, pattern):
    for length in range(1, 5):
        for chars in itertools.product(_AROUND_SPACE, repeat=length):
            text = "".join(chars)
            assert SCANNERS[family].split(text) == patterns.split(pattern, text), text


@pytest.mark.parametrize("family,pattern", FAMILIES)
def test_scanner_three_byte_runs_in_every_block(family, pattern):
    # Every 64-code-point block below U+10000 (where CJK lives), in runs of three-byte code
    # points that span the block's edges, after a space, a letter and other code points.
    for block in range(0x800 // 64, 0x10000 // 64):
        if 0xD800 <= block * 64 < 0xE000:
            continue
        lo = block * 64
        before, after = (c if not 0xD800 <= ord(c) < 0xE000 else "" for c in (chr(lo - 1), chr(lo + 64)))
        run = "".join(map(chr, (lo, lo + 1, lo + 62, lo + 63))) + after
        for text in (run, " " + run + "'s x", "a" + run[:2] + "1" + run[2:], before + run + " "):
            assert SCANNERS[family].split(text) == patterns.split(pattern, text), (hex(lo), text)


def test_pinned_pattern_differs_from_raw_regex_where_unicode_moved():
    # U+330C0 is a letter for the regex module (Unicode 17) but unassigned for tiktoken.
    import regex

    text = "\U000330c0's"
    assert regex.findall(patterns.O200K_PATTERN, text) == [text]
    assert patterns.split(patterns.O200K_PATTERN, text) == ["\U000330c0'", "s"]
    assert SCANNERS[3].split(text) == ["\U000330c0'", "s"]
