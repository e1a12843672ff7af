"""The helpers people write by hand around tiktoken: streaming decode, truncation, windows."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import bpe
from conftest import OFFICIAL, ours

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
TEXT = st.lists(st.sampled_from(list("ab cd\n\n.!?,") + ["中", "文", "é", "👍", "𝔘", " the", "   ",
                                                          "<|endoftext|>"]), max_size=40).map("".join)


def split_char(enc) -> str:
    """A character whose bytes this encoding spreads over two or more tokens."""
    for char in "𝔘𝕏🜁ꙮ𓀀🫠龘":
        tokens = enc.decode_tokens_bytes(enc.encode(char))
        if len(tokens) > 1:
            return char
    raise AssertionError("no multi-token character found")


# -- StreamDecoder ----------------------------------------------------------------------------

@pytest.mark.parametrize("name", OFFICIAL)
@SETTINGS
@given(ids=st.lists(st.one_of(st.integers(0, 255), st.integers(256, 100_000), st.sampled_from([100257, 199999])),
                    max_size=40),
       cuts=st.lists(st.integers(0, 40), max_size=8),
       errors=st.sampled_from(["replace", "ignore", "backslashreplace", "surrogateescape", "strict"]))
def test_stream_decoder_equals_decode_for_any_cut(name, ids, cuts, errors):
    enc = ours(name)
    ids = [i for i in ids if i != 100257 or name == "cl100k_base"]
    ids = [i for i in ids if i != 199999 or name == "o200k_base"]
    decoder = bpe.StreamDecoder(enc, errors=errors)
    try:
        want = enc.decode(ids, errors=errors)
    except UnicodeDecodeError:
        want = UnicodeDecodeError
    points = sorted({c for c in cuts if c <= len(ids)} | {0, len(ids)})
    try:
        got = "".join(decoder.feed(ids[a:b]) for a, b in zip(points, points[1:])) + decoder.flush()
    except UnicodeDecodeError:
        got = UnicodeDecodeError
    assert got == want


def test_a_character_cut_between_tokens_waits_for_the_rest():
    enc = bpe.get_encoding("o200k_base")
    decoder = bpe.StreamDecoder(enc)
    byte_tokens = [enc.encode_single_token(bytes([b])) for b in "👍".encode()]
    assert [decoder.feed([t]) for t in byte_tokens] == ["", "", "", "👍"]
    assert decoder.feed(byte_tokens[:2]) == "" and decoder.flush() == "\ufffd"  # cut short: replaced
    assert decoder.feed([enc.eot_token]) == "<|endoftext|>"  # special tokens decode as their text


# -- truncate ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OFFICIAL)
@SETTINGS
@given(text=TEXT, budget=st.integers(0, 30), side=st.sampled_from(["right", "left"]))
def test_truncate_keeps_the_longest_part_that_fits_at_a_clean_boundary(name, text, budget, side):
    enc = ours(name)
    policy = dict(allowed_special="all")
    part = enc.truncate(text, budget, side=side, **policy)
    assert (text.startswith(part) if side == "right" else text.endswith(part))
    assert enc.count(part, **policy) <= budget
    ids = enc.encode(text, **policy)
    if len(ids) <= budget:
        assert part == text
        return
    # the cut is a token boundary of the whole text's encoding, at a character boundary
    data = text.encode()
    ends = [sum(len(p) for p in enc.decode_tokens_bytes(ids[:k])) for k in range(len(ids) + 1)]
    clean = [k for k, e in enumerate(ends) if e == len(data) or data[e] & 0xC0 != 0x80]
    cut = len(part.encode()) if side == "right" else len(data) - len(part.encode())
    assert cut in [ends[k] for k in clean]
    # and the next clean boundary (one more token kept) would not fit
    if side == "right":
        k = next(k for k in clean if ends[k] > cut)
        longer = data[: ends[k]].decode()
        assert k > budget or enc.count(longer, **policy) > budget
    else:
        k = max(k for k in clean if ends[k] < cut)
        longer = data[ends[k]:].decode()
        assert len(ids) - k > budget or enc.count(longer, **policy) > budget


def test_truncate_edges():
    enc = bpe.get_encoding("o200k_base")
    assert enc.truncate("", 0) == "" and enc.truncate("", 5) == ""
    assert enc.truncate("hello world", 0) == "" and enc.truncate("hello world", 0, side="left") == ""
    assert enc.truncate("hello world", 1) == "hello" and enc.truncate("hello world", 1, side="left") == " world"
    char = split_char(enc)
    n = len(enc.encode(char))
    for budget in range(n):  # never half a character
        assert enc.truncate("a" + char, budget + 1) in ("a", "a" + char)
        assert enc.truncate(char + " a", budget + 1, side="left") in (" a", char + " a")
    text = "hi<|endoftext|>there"
    assert enc.truncate(text, 2, allowed_special="all") == "hi<|endoftext|>"
    with pytest.raises(ValueError, match="disallowed special token"):
        enc.truncate(text, 2)
    with pytest.raises(ValueError, match="max_tokens"):
        enc.truncate(text, -1)
    with pytest.raises(ValueError, match="side"):
        enc.truncate(text, 1, side="middle")


def test_truncate_judges_the_whole_texts_boundaries():
    """Cut alone, "  \n" tokenizes differently: the whole text's boundaries decide, and the
    part still fits its budget."""
    enc = bpe.get_encoding("cl100k_base")
    text = "a    \n\n\n   b"
    for budget in range(len(enc.encode(text)) + 1):
        part = enc.truncate(text, budget)
        assert text.startswith(part) and enc.count(part) <= budget


# -- split_tokens ------------------------------------------------------------------------------

@pytest.mark.parametrize("name", OFFICIAL)
@SETTINGS
@given(text=TEXT, size=st.integers(4, 12), overlap=st.integers(0, 11),
       prefer=st.sampled_from([None, "paragraph", "sentence", "line"]))
def test_windows_give_back_the_text_and_keep_their_budget(name, text, size, overlap, prefer):
    enc = ours(name)
    overlap = min(overlap, size - 1)
    spans = enc.split_tokens_offsets(text, size, overlap=overlap, prefer=prefer, allowed_special="all")
    windows = enc.split_tokens(text, size, overlap=overlap, prefer=prefer, allowed_special="all")
    assert len(windows) == len(spans)
    rebuilt, covered = "", 0
    for (start, end, first, last), window in zip(spans.tolist(), windows):
        assert window == text[start:end] and 0 < last - first <= size
        assert start <= covered  # windows follow one another with no gap
        rebuilt += text[covered:end]
        covered = end
    assert rebuilt == text
    tokens = spans[:, 2:].tolist()
    assert all(b[0] > a[0] and a[1] - b[0] <= overlap for a, b in zip(tokens, tokens[1:]))
    if text:
        assert tokens[0][0] == 0 and tokens[-1][1] == len(enc.encode(text, allowed_special="all"))


def test_windows_edges():
    enc = bpe.get_encoding("o200k_base")
    assert enc.split_tokens("", 5) == []
    assert enc.split_tokens("one two three four five", 2, overlap=1) == \
        ["one two", " two three", " three four", " four five"]
    with pytest.raises(ValueError, match="overlap"):
        enc.split_tokens("one two", 2, overlap=2)
    with pytest.raises(ValueError, match="max_tokens"):
        enc.split_tokens("one two", 0)
    char = split_char(enc)
    with pytest.raises(ValueError, match="takes more than max_tokens"):
        enc.split_tokens(char, 1)
    text = "First point made here. " * 6 + "\n\nNext part. " * 6
    for window in enc.split_tokens(text, 30, prefer="sentence")[:-1]:
        assert window.rstrip().endswith((".", "\n"))


# -- the command line --------------------------------------------------------------------------

def test_chunk_and_count_budget_on_the_command_line(tmp_path):
    (tmp_path / "a.txt").write_text("one two three four five six seven")
    (tmp_path / "short.txt").write_text("one two")

    def run(*args):
        return subprocess.run([sys.executable, "-m", "bpe", *args], capture_output=True, text=True,
                              cwd=tmp_path, timeout=120)

    done = run("chunk", "a.txt", "-t", "o200k_base", "--max-tokens", "3", "--overlap", "1", "-o", "out.jsonl", "-q")
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["one two three", " three four five", " five six seven"]
    assert all(r["source"] == "a.txt" and r["tokens"] <= 3 for r in rows)
    assert run("chunk", "a.txt", "-t", "o200k_base", "--max-tokens", "3", "--overlap", "3").returncode == 2
    over = run("count", "a.txt", "short.txt", "-t", "o200k_base", "--max-tokens", "3")
    assert over.returncode == 1 and "a.txt: 7 tokens, over the budget of 3" in over.stderr
    assert "short.txt" not in over.stderr
    assert run("count", "short.txt", "-t", "o200k_base", "--max-tokens", "3").returncode == 0


def test_progress_bar_shows_rate_and_time_left(capsys, monkeypatch):
    from bpe import _progress

    clock = iter([100.0, 102.0, 104.0, 104.0])
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: next(clock))
    bar = _progress.Bar("merging", True, 1000, "merges")
    bar(250, force=True)   # 2 s in: 125 merges/s, 750 to go
    bar.close(1000)
    err = capsys.readouterr().err
    assert "250/1,000 merges 2.0 s, 125.0 merges/s, 6 s left" in err
    assert "1,000/1,000 merges 4.0 s, 250.0 merges/s\x1b[K" in err  # nothing left to wait for


def test_progress_bar_shows_a_second_count_with_its_rate(capsys, monkeypatch):
    from bpe import _progress

    clock = iter([100.0, 102.0])
    monkeypatch.setattr(_progress.time, "perf_counter", lambda: next(clock))
    bar = _progress.Bar("counting", True, 10_000_000, "MB", 1e6, also="pieces")
    bar(5_000_000, force=True, also=1_200_000)
    err = capsys.readouterr().err
    assert "5.0/10.0 MB 2.0 s, 2.5 MB/s, 2 s left; 1,200,000 pieces, 600,000 pieces/s" in err
