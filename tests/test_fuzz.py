"""Fuzzing with hypothesis: random text, ids, special-token policies, batches and rank files.

Each test draws ``BPE_FUZZ_EXAMPLES`` examples (200 by default, which CI runs). For an hour
of fuzzing, raise the budget and let each run pick new random seeds:

    BPE_FUZZ_EXAMPLES=200000 BPE_VOCAB_DIR=../shared/vocab timeout 3600 pytest -m fuzz -x -p no:cacheprovider

A failure prints the smallest input hypothesis found, and ``--hypothesis-seed=N`` replays a run.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import bpe
from bpe import patterns
from bpe.load import dump_tiktoken_bpe, parse_tiktoken_bpe
from conftest import OFFICIAL, SPECIALS, oracle, ours

EXAMPLES = int(os.environ.get("BPE_FUZZ_EXAMPLES", "200"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
pytestmark = pytest.mark.fuzz

# Text weighted toward what breaks tokenizers: every code point (lone surrogates too), the
# contractions, digits, whitespace runs, and special tokens and pieces of them.
FRAGMENTS = ["<|endoftext|>", "<|endofprompt|>", "<|fim_prefix|>", "<|", "|>", "endoftext",
             "'s", "'S", "'ll", "n't", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000", "123",
             "4567", "ǅ", "İ", "ﬃ", "👍🏽", "\u200d", "\ufe0f", "a", "A", " the", "中文", "\u0300"]
pieces = st.one_of(st.text(max_size=8), st.sampled_from(FRAGMENTS),
                   st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
texts = st.lists(pieces, max_size=40).map("".join)


def outcome(call):
    """The result of ``call()``, or the type of the exception it raised."""
    try:
        return call()
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return type(e)


@pytest.mark.parametrize("name", OFFICIAL)
@FUZZ
@given(text=texts, data=st.data())
def test_encode_with_any_special_policy_matches_tiktoken(name, text, data):
    enc, tk = ours(name), oracle(name)
    specials = sorted(SPECIALS[name])
    allowed = data.draw(st.one_of(st.just("all"), st.sets(st.sampled_from(specials))))
    disallowed = data.draw(st.one_of(st.just("all"), st.just(()), st.sets(st.sampled_from(specials))))
    ours_ = outcome(lambda: enc.encode(text, allowed_special=allowed, disallowed_special=disallowed))
    theirs = outcome(lambda: tk.encode(text, allowed_special=allowed, disallowed_special=disallowed))
    assert ours_ == theirs
    if isinstance(ours_, list):
        assert enc.count(text, allowed_special=allowed, disallowed_special=disallowed) == len(ours_)
    assert enc.encode_ordinary(text) == tk.encode_ordinary(text)


@pytest.mark.parametrize("name", OFFICIAL)
@FUZZ
@given(ids=st.lists(st.one_of(st.integers(0, 200_100), st.integers(-5, 2**40)), max_size=30))
def test_decode_any_ids_matches_tiktoken(name, ids):
    enc, tk = ours(name), oracle(name)
    ours_, theirs = outcome(lambda: enc.decode_bytes(ids)), outcome(lambda: tk.decode_bytes(ids))
    if isinstance(theirs, bytes):
        assert ours_ == theirs
        assert enc.decode(ids) == tk.decode(ids)
    else:  # tiktoken refuses the ids: so must bpe, with an exception, never a crash
        assert isinstance(ours_, type) and issubclass(ours_, (KeyError, ValueError, OverflowError, TypeError))


@pytest.mark.parametrize("name", OFFICIAL)
@FUZZ
@given(batch=st.lists(texts, max_size=12), threads=st.integers(1, 4))
def test_batch_calls_equal_one_at_a_time(name, batch, threads):
    enc, tk = ours(name), oracle(name)
    singles = [tk.encode_ordinary(t) for t in batch]
    assert enc.encode_ordinary_batch(batch, num_threads=threads) == singles
    assert enc.encode_batch(batch, num_threads=threads, disallowed_special=()) == \
        [tk.encode(t, disallowed_special=()) for t in batch]
    assert enc.count_batch(batch, num_threads=threads, disallowed_special=()) == \
        [len(tk.encode(t, disallowed_special=())) for t in batch]
    flat, offsets = enc.encode_batch_to_numpy(batch, num_threads=threads, disallowed_special=())
    assert [flat[offsets[k]:offsets[k + 1]].tolist() for k in range(len(batch))] == singles
    assert enc.decode_batch(singles) == [tk.decode(s) for s in singles]


VALID = b"".join(b"%s %d\n" % (__import__("base64").b64encode(bytes([b])), b) for b in range(256)) + \
    b"aGVsbG8= 256\nIHdvcmxk 257\n"


@FUZZ
@given(data=st.data())
def test_mutated_rank_files_load_or_raise_value_error(data, tmp_path_factory):
    content = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        kind = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate", "garbage"]))
        at = data.draw(st.integers(0, max(0, len(content) - 1)))
        if kind == "flip" and content:
            content[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            content[at:at] = data.draw(st.binary(max_size=20))
        elif kind == "delete":
            del content[at : at + data.draw(st.integers(1, 30))]
        elif kind == "truncate":
            del content[at:]
        else:
            content = bytearray(data.draw(st.binary(max_size=200)))
    folder = tmp_path_factory.mktemp("mutant")
    path = folder / "mutant.tiktoken"
    path.write_bytes(bytes(content))
    try:
        ranks = bpe.load_tiktoken_bpe(path)
    except ValueError as e:
        assert str(path) in str(e)
        return
    # accepted: then it is a faithful reading, and an Encoding either builds or says why
    dump_tiktoken_bpe(ranks, folder / "again.tiktoken")
    assert parse_tiktoken_bpe((folder / "again.tiktoken").read_bytes()) == ranks
    try:
        enc = bpe.Encoding("m", pat_str=patterns.R50K_PATTERN, mergeable_ranks=ranks, special_tokens={})
    except ValueError:
        return
    text = "hello world"
    if all(bytes([b]) in ranks for b in text.encode()):
        assert enc.decode(enc.encode(text)) == text
