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


@pytest.mark.threads
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


# -- hostile inputs: split patterns, tokenizer.json documents, saved-tokenizer files --------
# Each case must end, within a time bound, in correct ids or a ValueError: never a signal,
# a hang or another exception type.

import contextlib  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402

from bpe import _reference, hf  # noqa: E402

SMALL = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"cd": 257, b"abcd": 258, b"  ": 259}
PATTERN_PARTS = [r"\w*", r"\s+", r"\S", r"(", r")", r"[", r"]", r"\p{", r"\p{L}", r"\p{L", r"\P{^N}",
                 r"\pL", r"a+", r"(a+)+", r"(?:a|aa)+$", r"|", r"*", r"{2,3}+", r"(?=", r"(?i:",
                 r"[^]", r"\\", r"\d{1,3}", r"'s", r".", r"$", r"^", r"\b", r"(?!\S)", r"[\r\n]"]


@contextlib.contextmanager
def time_bound(seconds: float):
    """Fail (instead of hanging the run) when the block takes longer than ``seconds``."""
    def expired(signum, frame):
        raise AssertionError(f"took more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def expected_ids(pat_str: str, text: str) -> list[int]:
    out: list[int] = []
    for piece in patterns.split(pat_str, text):
        data = piece.encode("utf-8")
        out += [SMALL[data]] if data in SMALL else _reference.bpe_merge(data, SMALL)
    return out


@FUZZ
@given(parts=st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=6), text=texts)
def test_hostile_split_patterns_give_ids_or_a_value_error(parts, text, monkeypatch):
    monkeypatch.setenv("BPE_REGEX_TIMEOUT", "0.5")
    pat_str = "".join(parts)
    text = text.encode("utf-8", "replace").decode("utf-8")  # the pattern is under test here
    with time_bound(20):
        try:
            enc = bpe.Encoding("hostile", pat_str=pat_str, mergeable_ranks=SMALL, special_tokens={})
            got = enc.encode_ordinary(text)
        except ValueError:
            return
        assert got == expected_ids(pat_str, text)


def _mutations():
    """A JSON value in place of another: wrong types, floats, huge and negative ids, empty
    and overlapping strings, deep nesting."""
    return st.one_of(st.none(), st.booleans(), st.floats(allow_nan=True), st.integers(-2**70, 2**70),
                     st.sampled_from(["", "a", "ab", "<|e|>", "<|e", "\\p{", "Ġ", "a b"]),
                     st.just([]), st.just({}), st.just([[[[[]]]]]),
                     st.lists(st.integers(-3, 300), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(-3, 300), max_size=3))


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for k, v in enumerate(node[:4]):
            yield from _paths(v, prefix + (k,))


def _mutate(document, data):
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(document) if p]
        path = data.draw(st.sampled_from(paths))
        node = document
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = data.draw(_mutations())
    return document


_SMALL_ENC = bpe.Encoding("small", pat_str=patterns.R50K_PATTERN, mergeable_ranks=SMALL,
                          special_tokens={"<|e|>": 300, "<|e|>x": 301})


def _ends_in_ids_or_value_error(load, text: str, path) -> None:
    path.write_text(text)
    with time_bound(20):
        try:
            enc = load(path)
        except ValueError as e:
            assert str(path) in str(e), str(e)
            return
        ranks = enc._mergeable_ranks
        for sample in ["hello ab cd", "abcd<|e|>x", ""]:
            pieces = [p.encode() for p in patterns.split(enc._pat_str, sample)]
            if not all(bytes([b]) in ranks for p in pieces for b in p):
                with pytest.raises(ValueError, match="has no rank"):
                    enc.encode_ordinary(sample)
                continue
            want = [i for p in pieces for i in ([ranks[p]] if p in ranks else _reference.bpe_merge(p, ranks))]
            assert enc.encode_ordinary(sample) == want


@FUZZ
@given(data=st.data())
def test_mutated_tokenizer_json_loads_or_raises_value_error(data, tmp_path_factory):
    document = _mutate(json.loads(hf.to_tokenizer_json(_SMALL_ENC)), data)
    path = tmp_path_factory.mktemp("hf") / "tokenizer.json"
    _ends_in_ids_or_value_error(hf.from_tokenizer_json, json.dumps(document), path)


@FUZZ
@given(data=st.data())
def test_mutated_saved_tokenizers_load_or_raise_value_error(data, tmp_path_factory):
    document = _mutate(json.loads(_SMALL_ENC.to_saved_json()), data)
    path = tmp_path_factory.mktemp("saved") / "small.tok"
    _ends_in_ids_or_value_error(bpe.Encoding.load, json.dumps(document), path)
