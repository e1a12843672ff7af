"""The trainer: exact merges (against the slow reference and rustbpe), map-reduce counting,
streaming files, save and load, and the errors for bad input."""

from __future__ import annotations

import collections
import multiprocessing
import random
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bpe
from bpe import _reference, _train, patterns
from conftest import corpus_path


def test_wikipedia_example():
    # aaabdaaabac: aa first, then ab (it ties with (256, a) at 2 and is the smaller pair).
    assert _train.train_merges([b"aaabdaaabac"], [1], 3) == [(97, 97), (97, 98), (256, 257)]
    assert _reference.train_merges({b"aaabdaaabac": 1}, 3) == [(97, 97), (97, 98), (256, 257)]


@settings(max_examples=300, deadline=None)
@given(
    counts=st.dictionaries(st.binary(min_size=1, max_size=16).map(lambda b: bytes(x % 5 + 97 for x in b)),
                           st.integers(1, 6), min_size=1, max_size=12),
    n_merges=st.integers(0, 40),
)
def test_compiled_merges_equal_reference(counts, n_merges):
    got = _train.train_merges(list(counts), list(counts.values()), n_merges)
    assert got == _reference.train_merges(counts, n_merges)


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab cd\n'sÉé中文!1"), min_size=1, max_size=200))
def test_train_on_text_equals_reference(text):
    counts = bpe.count_pieces([text], pattern="o200k")
    enc = bpe.train(counts, vocab_size=256 + 20, pattern="o200k", progress=False)
    merges = _reference.train_merges(counts, 20)
    assert len(enc._mergeable_ranks) == 256 + len(merges)
    for k, (left, right) in enumerate(merges):
        token = enc.decode_single_token_bytes(left) + enc.decode_single_token_bytes(right)
        assert enc._mergeable_ranks[token] == 256 + k


def test_same_merges_as_rustbpe_on_kjv():
    rustbpe = pytest.importorskip("rustbpe", reason="rustbpe is the peer: pip install '.[test]'")
    text = corpus_path("kjv.txt").read_text(encoding="utf-8")
    theirs = rustbpe.Tokenizer()
    theirs.train_from_iterator(iter([text]), 4096, pattern=patterns.CL100K_PATTERN)
    ours = bpe.train([text], vocab_size=4096, pattern="cl100k", progress=False)
    assert ours._mergeable_ranks == dict(theirs.get_mergeable_ranks())


def _count(texts):
    return bpe.count_pieces(texts, pattern="cl100k")


def test_counting_equals_the_regex_split_and_leaves_the_texts_as_they_were():
    # Distinct pieces past one arena block (1 MiB) and a piece longer than a block, in every
    # str kind (ASCII, Latin-1, UCS-2, UCS-4); no UTF-8 copy may stay on the strs counted.
    rng = random.Random(5)
    letters = "abcdefghijklmnopqrstuvwxyzÉé中文"
    words = ["".join(rng.choice(letters) for _ in range(rng.randint(1, 30))) for _ in range(60_000)]
    texts = [" ".join(words[i : i + 500]) for i in range(0, len(words), 500)]
    texts += ["a" * 1_500_000, "café, 12345 " * 1000, "é 🙂 x\n\n" * 1000, ""]
    sizes = [sys.getsizeof(t) for t in texts]
    for name, pat_str in [("o200k", patterns.O200K_PATTERN), ("cl100k", patterns.CL100K_PATTERN),
                          ("gpt2", patterns.R50K_PATTERN)]:
        want = collections.Counter(p.encode() for t in texts for p in patterns.split(pat_str, t))
        assert bpe.count_pieces(texts, pattern=name, num_threads=1) == want, name
    assert [sys.getsizeof(t) for t in texts] == sizes


def test_counting_a_lone_surrogate_raises():
    with pytest.raises(UnicodeEncodeError, match="surrogates not allowed"):
        bpe.count_pieces(["fine", "bad \ud800 here"], pattern="o200k", num_threads=1)


def test_map_reduce_counting_equals_one_pass():
    texts = [f"line {i}: the quick brown fox {i % 7} jumps\n" * (i % 5 + 1) for i in range(400)]
    shards = [texts[i::4] for i in range(4)]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        summed = sum(pool.map(_count, shards), collections.Counter())
    assert summed == bpe.count_pieces(texts, pattern="cl100k")
    a = bpe.train(summed, vocab_size=400, pattern="cl100k", progress=False)
    b = bpe.train(texts, vocab_size=400, pattern="cl100k", progress=False)
    assert a._mergeable_ranks == b._mergeable_ranks


def test_streaming_a_file_counts_as_splitting_it_whole(tmp_path, monkeypatch):
    from bpe import _chunks

    monkeypatch.setattr(_chunks, "_CHUNK", 97)  # many small chunks, cut mid-line
    text = ("Alpha beta\n\n  gamma's DELTA\r\n\tepsilon 12345\n" * 50) + "tail  \n\n"
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode("utf-8") + b"\xff\xfe bad bytes\n")
    stats = {"bytes": 0, "replaced": 0}
    chunks = list(_chunks.read_chunks(path, stats))
    assert len(chunks) > 10 and "".join(chunks) == text + "\ufffd\ufffd bad bytes\n"
    assert stats["replaced"] == 2
    for pattern in ("gpt2", "cl100k", "o200k"):
        whole = bpe.count_pieces([text + "\ufffd\ufffd bad bytes\n"], pattern=pattern)
        assert bpe.count_pieces(chunks, pattern=pattern) == whole
    enc = bpe.train(path, vocab_size=300, pattern="o200k", progress=False)
    assert enc.training_stats["replaced"] == 2


def test_vocab_size_counts_everything_and_specials_come_last(tmp_path):
    text = corpus_path("kjv.txt").read_text(encoding="utf-8")[:50_000]
    enc = bpe.train([text], vocab_size=300, pattern="o200k",
                    special_tokens=["<|endoftext|>", "<|pad|>"], progress=False)
    assert enc.n_vocab == 300
    assert enc.encode("<|endoftext|><|pad|>", allowed_special="all") == [298, 299]
    assert max(enc._mergeable_ranks.values()) == 297


def test_runs_out_of_pairs_and_says_so(capsys):
    enc = bpe.train(["abab"], vocab_size=1000, pattern="gpt2", progress=True)
    assert enc.training_stats["merges"] < 1000 - 256
    assert "asked for 744" in capsys.readouterr().err


def test_min_frequency_stops_merging():
    enc = bpe.train(["aa bb aa"], vocab_size=300, pattern="gpt2", min_frequency=2, progress=False)
    assert enc.training_stats["merges"] == 1  # only (a, a) occurs twice


def test_save_load_round_trip_and_tiktoken_export(tmp_path):
    text = corpus_path("kjv.txt").read_text(encoding="utf-8")[:300_000]
    enc = bpe.train([text], vocab_size=1000, pattern="cl100k", special_tokens=["<|endoftext|>"],
                    progress=False, name="kjv-1000")
    enc.save(tmp_path / "kjv.tok")
    again = bpe.Encoding.load(tmp_path / "kjv.tok")
    assert again.name == "kjv-1000" and again._pat_str == enc._pat_str
    sample = text[:20_000] + "<|endoftext|>"
    assert again.encode(sample, allowed_special="all") == enc.encode(sample, allowed_special="all")
    import json

    assert json.loads((tmp_path / "kjv.tok").read_text())["format"] == "bpe-tokenizer"  # JSON, no pickle
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is the oracle: pip install '.[test]'")
    import tiktoken.load

    bpe.dump_tiktoken_bpe(enc._mergeable_ranks, tmp_path / "kjv.tiktoken")
    ranks = tiktoken.load.load_tiktoken_bpe(str(tmp_path / "kjv.tiktoken"))
    theirs = tiktoken.Encoding("kjv", pat_str=enc._pat_str, mergeable_ranks=ranks,
                               special_tokens=enc._special_tokens)
    assert theirs.encode(sample, allowed_special="all") == enc.encode(sample, allowed_special="all")


@pytest.mark.parametrize(
    "content,problem",
    [
        (b"not json", "not a bpe tokenizer file"),
        (b'{"format": "other"}', "not a bpe tokenizer file"),
        (b'{"format": "bpe-tokenizer", "version": 99}', "version 99"),
        (b'{"format": "bpe-tokenizer", "version": 1, "name": "x", "pattern": "\\\\S+", '
         b'"special_tokens": {}, "ranks": "YQ== 0\\nbad line\\n"}', "line 2"),
        (b'{"format": "bpe-tokenizer", "version": 1, "name": "x", "pattern": "\\\\S+", '
         b'"special_tokens": {"<s>": -1}, "ranks": "YQ== 0\\n"}', "'<s>' has id -1"),
    ],
)
def test_load_rejects_bad_files(tmp_path, content, problem):
    path = tmp_path / "bad.tok"
    path.write_bytes(content)
    with pytest.raises(ValueError) as e:
        bpe.Encoding.load(path)
    assert str(path) in str(e.value) and problem in str(e.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"vocab_size": 255}, "too small"),
        ({"vocab_size": 257, "special_tokens": ["<a>", "<b>"]}, "at least 258"),
        ({"vocab_size": 300, "pattern": "o300k"}, "unknown pattern name"),
        ({"vocab_size": 300, "pattern": "(unclosed"}, "does not compile"),
        ({"vocab_size": 300, "special_tokens": [""]}, "non-empty"),
        ({"vocab_size": 300, "special_tokens": ["<a>", "<a>"]}, "given twice"),
        ({"vocab_size": 300, "min_frequency": 0}, "min_frequency"),
        ({"vocab_size": 300, "max_pieces": 1}, "max_pieces"),
        ({"vocab_size": 300, "max_pieces": True}, "max_pieces"),
        ({"vocab_size": 300, "max_pieces": 10.5}, "max_pieces"),
    ],
)
def test_bad_arguments_fail_before_work(kwargs, message):
    with pytest.raises(ValueError, match=message):
        bpe.train(["some text"], progress=False, **kwargs)


def test_empty_corpus_and_missing_file(tmp_path):
    with pytest.raises(ValueError, match="empty"):
        bpe.train([], vocab_size=300, progress=False)
    with pytest.raises(ValueError, match="no such file"):
        bpe.train(str(tmp_path / "missing.txt"), vocab_size=300, progress=False)


@pytest.mark.threads
def test_counting_threads_and_patterns_agree():
    texts = [f"Doc {i}: naïve café, 数字 {i * 37}\n\n  indented\tline's end  " * (i % 4 + 1) for i in range(300)]
    for pattern in ("gpt2", "cl100k", "o200k", r"\w+|\s+|[^\w\s]+"):
        one = bpe.count_pieces(texts, pattern=pattern, num_threads=1)
        assert bpe.count_pieces(texts, pattern=pattern, num_threads=3) == one
        assert bpe.count_pieces(list(reversed(texts)), pattern=pattern, num_threads=2) == one
        pat = patterns.PATTERNS.get(pattern, pattern)
        want = collections.Counter(p.encode() for t in texts for p in patterns.split(pat, t))
        assert one == want


def test_files_are_read_whole_for_a_custom_pattern(tmp_path, monkeypatch):
    from bpe import _chunks

    monkeypatch.setattr(_chunks, "_CHUNK", 7)
    path = tmp_path / "c.txt"
    path.write_text("ab\ncd\nef\n" * 20)
    stats = {"bytes": 0, "replaced": 0}
    assert list(_chunks.read_chunks(path, stats, cut=False)) == ["ab\ncd\nef\n" * 20]
    pattern = r"(?s).{1,40}"  # a piece may span any newline
    enc = bpe.train(path, vocab_size=300, pattern=pattern, progress=False)
    ref = bpe.train(["ab\ncd\nef\n" * 20], vocab_size=300, pattern=pattern, progress=False)
    assert enc._mergeable_ranks == ref._mergeable_ranks


def test_one_long_text_is_cut_for_the_counting_threads_and_counts_the_same(monkeypatch):
    import importlib

    train_module = importlib.import_module("bpe.train")  # bpe.train is also the function
    text = "".join(f"Line {i} of a long text, with words {i * 7}\n  indented {i}\n\n" for i in range(3000))
    want = bpe.count_pieces([text], pattern="o200k", num_threads=1)
    monkeypatch.setattr(train_module, "_BATCH_CHARS", 5000)
    batches = list(train_module._batches([text], 5000, True))
    assert len(batches) > 10 and sum(len(p) for b, _ in batches for p in b) == len(text)
    assert batches[-1][1] == 1  # one text given
    assert bpe.count_pieces([text], pattern="o200k", num_threads=2) == want
    # a regex of the user's may join across any cut: such texts stay whole
    pattern = r"\S+\n\n|\s+|\S+"
    assert list(train_module._batches([text], 5000, False)) == [([text], 1)]
    assert bpe.count_pieces([text], pattern=pattern, num_threads=2) == bpe.count_pieces([text], pattern=pattern, num_threads=1)


def test_piece_counters_add_up_across_calls_and_threads():
    """The trainer's per-thread C counters: counts added over many calls and joined with
    merge equal one count of everything."""
    from bpe import _core

    rnd = random.Random(5)
    words = ["the", " the", "Zoë", " 東京", "\n\n", "  ", "123456", " don't", "é"]
    texts = ["".join(rnd.choice(words) for _ in range(rnd.randrange(0, 40))) for _ in range(300)]
    whole = _core.count_pieces(texts, 3)
    a, b = _core.PieceCounter(3), _core.PieceCounter(3)
    a.add(texts[:100])
    a.add(texts[100:150])
    b.add(texts[150:])
    a.merge(b)
    assert a.to_dict() == whole and len(a) == len(whole)
    assert bpe.count_pieces(texts, pattern="o200k", num_threads=2) == whole
    with pytest.raises(UnicodeEncodeError):
        a.add(["fine", "lone \ud800 surrogate"])
    with pytest.raises(ValueError, match="no compiled scanner"):
        _core.PieceCounter(0)


@given(st.text(alphabet="ab\n \t#é1", max_size=60), st.integers(0, 70))
@settings(max_examples=500, deadline=None)
def test_safe_cut_is_the_last_newline_a_letter_follows(text, start):
    from bpe._chunks import safe_cut

    start = min(start, len(text))
    want = 0
    for k in range(len(text) - 1, start - 1, -1):
        if text[k] == "\n" and k + 1 < len(text) and text[k + 1].isascii() and text[k + 1].isalpha():
            want = k + 1
            break
    assert safe_cut(text, start) == want


def test_a_long_stretch_without_cuts_is_read_whole(tmp_path):
    """12 MB of lines that no letter begins (a #define table, where the reader used to
    search the whole growing stretch again with every megabyte read): the chunks are the
    file exactly, cut only at its one safe place."""
    from bpe import _chunks

    path = tmp_path / "table.h"
    table = "#define REG_%d 0x%04x\n"
    path.write_text("start\n" + "".join(table % (k, k) for k in range(500_000)) + "end\n", encoding="utf-8")
    stats = {"bytes": 0, "replaced": 0}
    chunks = list(_chunks.read_chunks(path, stats))
    assert "".join(chunks) == path.read_text(encoding="utf-8")
    assert len(chunks) == 2 and chunks[1] == "end\n"  # the one cut: before "end"
    assert stats["bytes"] == path.stat().st_size


def test_a_counter_prunes_the_rare_pieces_and_keeps_the_rest_exactly():
    from bpe import _core

    texts = [("the cat " * (i % 7) + f"rare{i} ") * (i % 3 + 1) for i in range(400)]
    counter = _core.PieceCounter(3)
    counter.add(texts)
    whole = counter.to_dict()
    counter.prune(3)
    assert counter.to_dict() == {p: c for p, c in whole.items() if c >= 3}
    assert len(counter) == len(counter.to_dict()) < len(whole)
    counter.add(texts)  # the pruned counter goes on counting
    assert counter.to_dict()[b" cat"] == 2 * whole[b" cat"]
    counter.prune(10**9)
    assert len(counter) == 0 and counter.to_dict() == {}


@pytest.mark.parametrize("pattern", ["o200k", r"\w+|\s+|[^\w\s]+"])  # the C counters, and the regex path
def test_max_pieces_bounds_the_counts_and_keeps_the_frequent_pieces(pattern):
    import importlib

    train_module = importlib.import_module("bpe.train")  # the module: bpe.train is the function
    text = corpus_path("kjv.txt").read_text(encoding="utf-8")[:1_500_000]
    docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
    pat = train_module._resolve_pattern(pattern)
    exact = train_module._count_parallel(docs, pat, 2)
    bounded = train_module._count_parallel(docs, pat, 2, max_pieces=2000)
    assert len(exact) > 4000 and len(bounded) <= 2000
    assert all(count <= exact[piece] for piece, count in bounded.items())
    top = [piece for piece, _ in exact.most_common(200)]
    assert all(piece in bounded for piece in top)
    enc = bpe.train(docs, vocab_size=600, pattern=pattern, progress=False, max_pieces=2000)
    assert enc.decode(enc.encode_ordinary(text[:5000])) == text[:5000]
    assert bpe.train(docs[:50], vocab_size=400, pattern=pattern, progress=False, max_pieces=10**6).encode_ordinary(
        text[:3000]) == bpe.train(docs[:50], vocab_size=400, pattern=pattern, progress=False).encode_ordinary(text[:3000])
