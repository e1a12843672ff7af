"""bpe's ids equal tiktoken's: fixed examples, the shared corpora, and generated text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import OFFICIAL, corpus_path, oracle, ours

# Characters that decide splits: whitespace of every kind, apostrophes and contraction
# letters in any case (with U+017F, which folds to s), digits of several scripts, combining
# marks, titlecase and modifier letters, CJK, emoji, and letters assigned after Unicode 16.
TRICKY = (
    " \t\n\r\x0b\x0c\x85\xa0\u1680\u2000\u2028\u2029\u202f\u205f\u3000"
    "'sStTdDmMlLvVrReE\u017f/!?.,;:-_()[]{}<>\"`~@#$%^&*+=|\\"
    "0123456789\u0660\u0967\u2153\u2460\u216b"
    "\u0301\u0308\u20dd\u0903"
    "\u01c5\u01c8\u02b0\u3005\u00aa"
    "aZéßİıΩж中文日本語한국"
    "\U0001f600\U0001f44d\u200d\ufe0f"
    "\U000330c0\U00018d00\u1c89"
)
unicode_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(TRICKY),
        st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()),
    ),
    max_size=60,
)


def test_hello_world_fixed_ids():
    assert ours("o200k_base").encode("hello world") == [24912, 2375]
    assert ours("cl100k_base").encode("hello world") == [15339, 1917]
    assert ours("cl100k_base").encode("hello <|endoftext|>", allowed_special="all") == [15339, 220, 100257]


@pytest.mark.parametrize("name", OFFICIAL)
@pytest.mark.parametrize("corpus", ["kjv.txt", "debref.en.txt", "debref.zh-cn.txt"])
def test_shared_corpora_in_4kb_documents(name, corpus):
    text = corpus_path(corpus).read_text(encoding="utf-8", errors="replace")
    docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
    enc, tk = ours(name), oracle(name)
    differing = [i for i, doc in enumerate(docs) if enc.encode_ordinary(doc) != tk.encode_ordinary(doc)]
    assert differing == [], f"{len(differing)} of {len(docs)} documents differ, first at {differing[:1]}"
    ids, offsets = enc.encode_batch_to_numpy(docs)
    assert ids.tolist() == [t for doc in docs for t in tk.encode_ordinary(doc)]
    assert offsets[-1] == len(ids)


@pytest.mark.parametrize("name", OFFICIAL)
def test_every_token_between_separators(name):
    # Where 8 bytes are readable the encode loop looks a piece up with one 8-byte load,
    # masked to the piece's length: every token's text, each a piece of its own between
    # separators, goes through it at every length.
    enc, tk = ours(name), oracle(name)
    texts = []
    for rank in range(tk.n_vocab):
        try:
            texts.append(tk.decode_single_token_bytes(rank).decode("utf-8"))
        except (KeyError, UnicodeDecodeError):
            continue  # a special token's gap, or part of a multi-byte character
    assert len(texts) > tk.n_vocab // 2
    for separator in ("\n\n", "\x00", "1"):
        text = separator.join(texts)
        assert enc.encode_ordinary(text) == tk.encode_ordinary(text), repr(separator)


@settings(max_examples=400, deadline=None)
@given(text=unicode_text)
def test_any_unicode_equals_tiktoken(text):
    for name in OFFICIAL:
        enc, tk = ours(name), oracle(name)
        assert enc.encode_ordinary(text) == tk.encode_ordinary(text)
        assert enc.encode(text, disallowed_special=()) == tk.encode(text, disallowed_special=())


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=200))
def test_decode_round_trips(text):
    for name in OFFICIAL:
        enc = ours(name)
        assert enc.decode(enc.encode_ordinary(text)) == text
        assert enc.decode_bytes(enc.encode_ordinary(text)) == text.encode("utf-8")


@pytest.mark.parametrize(
    "text",
    [
        "\ud800",                      # lone high surrogate
        "a\udfffb",                    # lone low surrogate
        "\ud83d\ude00 paired",         # a surrogate pair in a str: becomes the emoji
        "x\ud83d",
        "\udc00\ud800\udc00",
    ],
)
def test_lone_surrogates_as_tiktoken(text):
    for name in OFFICIAL:
        enc, tk = ours(name), oracle(name)
        assert enc.encode(text) == tk.encode(text)
        assert enc.encode_ordinary(text) == tk.encode_ordinary(text)
        assert enc.encode_to_numpy(text).tolist() == tk.encode(text)
        assert enc.count(text) == len(tk.encode(text))


@pytest.mark.parametrize("n", [1, 47, 48, 49, 1000, 100_000])
@pytest.mark.parametrize("unit", ["a", " ", "\n", "\U0001f600", "ab", " \n", "1", "'s", "ſ"])
def test_long_runs_equal_tiktoken(n, unit):
    for name in OFFICIAL:
        enc, tk = ours(name), oracle(name)
        assert enc.encode(unit * n) == tk.encode(unit * n)


def test_a_million_bytes_in_one_piece():
    enc, tk = ours("o200k_base"), oracle("o200k_base")
    text = "a" * 1_000_000
    assert enc.encode(text) == tk.encode(text)
    # tiktoken itself fails on a million spaces: check the round trip, and that the run is
    # cut into the same repeated token tiktoken uses for a shorter run.
    spaces = " " * 1_000_000
    ids = enc.encode(spaces)
    assert enc.decode(ids) == spaces
    shorter = tk.encode(" " * 100_000)
    assert ids[: len(shorter) - 2] == shorter[:-2]
    assert set(ids[:-2]) == {shorter[0]}
