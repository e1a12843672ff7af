"""Hostile files, many threads, long runs: bpe keeps working and never answers wrongly."""

from __future__ import annotations

import gc
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
import textwrap
import threading

import pytest

import bpe
from bpe import _core, patterns
from conftest import corpus_path, ours

# ----------------------------------------------------------------------------------------
# Hostile vocabulary files


@pytest.mark.parametrize("content, problem", [
    (b"", "no tokens"),
    (b"\n\n  \n", "line 3: expected"),
    (b"YWJj 0\nYW", "line 2: expected"),                        # truncated line
    (b"YWJj 0\nYWJ 1\n", "line 2: invalid base64"),               # truncated base64
    (b"YWJj 0\nYQ== 1.5\n", "line 2: rank must be"),
    (b"YWJj 0\nYQ== 1e3\n", "line 2: rank must be"),
    (b"YWJj 0\nYQ== 99999999999\n", "line 2: rank 99999999999 does not fit"),
    (b"\x00\xff\xfe\x89PNG\r\n\x1a\n 0\n", "line 1"),             # binary garbage
    (b"YWJj 0\n" + b"QUFB" * 3_000_000 + b"\n", "line 2: expected"),  # a 12 MB line, no rank
    (b"YWJj 0\nYWJj 1\n", "token b'abc' appears twice"),
    (b"YWJj 0\nYQ== 0\n", "rank 0 already given on line 1"),
    (b"=== 0\n", "line 1: invalid base64"),
    (b" 0\n", "line 1: expected"),
], ids=lambda v: repr(v[:24]) if isinstance(v, bytes) else None)
def test_hostile_rank_files_raise_value_error_naming_file_and_line(tmp_path, content, problem):
    path = tmp_path / "hostile.tiktoken"
    path.write_bytes(content)
    with pytest.raises(ValueError) as e:
        bpe.load_tiktoken_bpe(path)
    assert str(path) in str(e.value) and problem in str(e.value), str(e.value)[:300]


def _document(**changes) -> str:
    enc = bpe.train(["hello world"] * 3, vocab_size=260, pattern="gpt2", special_tokens=["<|endoftext|>"],
                    progress=False)
    document = json.loads(enc.to_saved_json())
    document.update(changes)
    return json.dumps(document)


@pytest.mark.parametrize("content, problem", [
    (b"", "not a bpe tokenizer file"),
    (b"\x80\x04\x95 binary", "not a bpe tokenizer file"),
    (pickle.dumps({"format": "bpe-tokenizer"}), "not a bpe tokenizer file"),  # never unpickled
    (b'{"format": "bpe-tokenizer", "version": 1, "name": "x"', "not a bpe tokenizer file"),
    (b"[1, 2, 3]", "no \"format\""),
    (_document(version=2).encode(), "version 2"),
    (_document(ranks=7).encode(), "field 'ranks'"),
    (_document(special_tokens={"<|x|>": True}).encode(), "not a non-negative integer"),
    (_document(special_tokens={"<|x|>": -1}).encode(), "not a non-negative integer"),
    (_document(special_tokens={"": 300}).encode(), "empty string"),
    (_document(special_tokens={"<|x|>": 104}).encode(), "which token b'h' already has"),
    (_document(special_tokens={"<|x|>": 3_000_000_000}).encode(), "sparse"),
    (_document(pattern="(unclosed").encode(), "does not compile"),
    (_document(ranks="YQ== 0\nYQ== 1\n").encode(), "(ranks), line 2: token b'a' appears twice"),
    (_document(ranks="").encode(), "no ranks"),
], ids=lambda v: repr(v[:24]) if isinstance(v, bytes) else None)
def test_hostile_tokenizer_files_raise_value_error_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "hostile.bpe"
    path.write_bytes(content)
    with pytest.raises(ValueError) as e:
        bpe.Encoding.load(path)
    assert str(path) in str(e.value) and problem in str(e.value), str(e.value)[:300]


def test_saved_files_are_json_not_pickle(tmp_path):
    enc = bpe.train(["hello world"] * 3, vocab_size=260, pattern="gpt2", progress=False)
    enc.save(tmp_path / "t.bpe")
    data = (tmp_path / "t.bpe").read_bytes()
    assert json.loads(data)["format"] == "bpe-tokenizer"
    assert b"\x80\x04" not in data and b"pickle" not in data


# ----------------------------------------------------------------------------------------
# Threads


def _texts(seed: int, n: int) -> list[str]:
    rng = random.Random(seed)
    # Pieces of every engine: short ones merge, 13-48 bytes (the CJK run, the underscores)
    # backtrack and share the pair memo, 49-256 go to the heap and the long piece cache.
    words = ["the", "quick", "données", "中文", "🙂", "12345", "don't", "\n\n", "  ", "ǅx", "ﬃ",
             "中文的句子没有空格", "_" * 30, "汉字没有空格所以一整句话是一个片段"]
    return ["".join(rng.choice(words) + rng.choice(" \n") for _ in range(rng.randint(1, 200)))
            + str(seed * 1000 + k) for k in range(n)]


def _hammer(encodings, threads: int = 8, rounds: int = 30):
    """Every thread encodes its own texts with every encoding, round after round, and checks
    each answer against the one computed on one thread beforehand."""
    work = {t: _texts(t, 40) for t in range(threads)}
    expected = {(t, e.name): [e.encode_ordinary(x) for x in work[t]] for t in work for e in encodings}
    failures: list[str] = []

    def run(t):
        try:
            for r in range(rounds):
                for e in encodings:
                    if r % 3 == 0:
                        got = e.encode_ordinary_batch(work[t], num_threads=2)
                    elif r % 3 == 1:
                        got = [e.encode(x, disallowed_special=()) for x in work[t]]
                    else:
                        flat, offsets = e.encode_batch_to_numpy(work[t], num_threads=2, disallowed_special=())
                        got = [flat[offsets[k]:offsets[k + 1]].tolist() for k in range(len(work[t]))]
                    if got != expected[(t, e.name)]:
                        failures.append(f"thread {t}, round {r}, {e.name}")
                    if e.decode_batch(got) != work[t]:
                        failures.append(f"thread {t}, round {r}, {e.name}: decode")
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(f"thread {t}: {exc!r}")

    pool = [threading.Thread(target=run, args=(t,), daemon=True) for t in range(threads)]
    for p in pool:
        p.start()
    for p in pool:
        p.join(timeout=300)
    assert not any(p.is_alive() for p in pool), "a thread did not finish in 300 s (deadlock?)"
    assert not failures, failures[:5]


@pytest.mark.threads
def test_many_threads_share_official_and_trained_encodings():
    trained = bpe.train(_texts(99, 200), vocab_size=1000, pattern="cl100k", progress=False, name="trained")
    _hammer([ours("o200k_base"), ours("cl100k_base"), trained])


@pytest.mark.memory
def test_piece_cache_stays_within_its_bound():
    # A tiny cache under eight threads and far more distinct pieces than it holds: answers
    # stay right, and memory does not grow with the number of distinct pieces.
    enc = bpe.Encoding("tiny-cache", pat_str=patterns.R50K_PATTERN,
                       mergeable_ranks={bytes([b]): b for b in range(256)} | {b"ab": 256, b"abc": 257},
                       special_tokens={})
    enc._core_bpe = _core.CoreBPE(enc._mergeable_ranks, {}, enc._family, cache_entries=8)
    _hammer([enc], threads=8, rounds=6)
    before = _rss()
    rng = random.Random(0)
    for _ in range(20):
        words = [" ".join("".join(rng.choice("abcxyz") for _ in range(rng.randint(4, 40))) for _ in range(50))
                 for _ in range(200)]
        enc.encode_ordinary_batch(words)
    assert _rss() - before < 8 << 20


# ----------------------------------------------------------------------------------------
# Memory


def _rss() -> int:
    """Resident set size of this process, in bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.memory
def test_engines_built_and_dropped_give_their_memory_back():
    # The large tables and the build's scratch arrays have mappings of their own (2 MiB
    # pages, rounded up): each must be unmapped whole when the engine goes.
    enc = ours("o200k_base")
    def build_and_drop():
        core = _core.CoreBPE(enc._mergeable_ranks, {}, enc._family)
        assert core.encode_ordinary("hello 世界") == enc.encode_ordinary("hello 世界")
        del core
        gc.collect()
    build_and_drop()
    before = _rss()
    for _ in range(12):
        build_and_drop()
    grown = _rss() - before
    print(f"RSS grew {grown / 1e6:.2f} MB over 12 engines built and dropped")
    assert grown < 12e6


@pytest.mark.memory
def test_a_million_encodes_and_decodes_do_not_grow_memory():
    enc = ours("o200k_base")
    texts = [f"Hello, world {k}! Ünïcödé 中文 🙂 don't" for k in range(1000)]
    for k in range(20_000):
        enc.decode(enc.encode(texts[k % 1000]))
    gc.collect()
    before = _rss()
    for k in range(1_000_000):
        enc.decode(enc.encode(texts[k % 1000]))
    gc.collect()
    grown = _rss() - before
    print(f"RSS grew {grown / 1e6:.2f} MB over 10^6 encode + decode")
    assert grown < 5 << 20


@pytest.mark.memory
def test_training_twice_frees_the_first_run():
    text = corpus_path("kjv.txt").read_text(encoding="utf-8")[:2_000_000]
    docs = [text[i : i + 4000] for i in range(0, len(text), 4000)]
    first = bpe.train(docs, vocab_size=3000, pattern="o200k", progress=False)
    del first
    gc.collect()
    after_first = _rss()
    second = bpe.train(docs, vocab_size=3000, pattern="o200k", progress=False)
    del second
    gc.collect()
    grown = _rss() - after_first
    print(f"RSS grew {grown / 1e6:.2f} MB from the first training to the second")
    assert grown < 10 << 20


@pytest.mark.slow
@pytest.mark.memory
def test_a_200_mb_string_encodes_in_linear_memory():
    # In a fresh process, so that the peak belongs to this work alone.
    script = textwrap.dedent("""
        import resource, sys, bpe
        enc = bpe.get_encoding("o200k_base")
        unit = open(sys.argv[1], encoding="utf-8").read()[:1_000_000]
        text = (unit * 201)[:200_000_000]
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        ids = enc.encode_to_numpy(text)
        n = enc.count(text)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        assert n == len(ids)
        assert ids[:1000].tolist() == enc.encode_ordinary(text[:20000])[:1000]
        print(len(text), len(ids), base, peak)
    """)
    # (not from the project folder, where `import bpe` would find the uncompiled sources)
    proc = subprocess.run([sys.executable, "-c", script, str(corpus_path("kjv.txt"))],
                          capture_output=True, text=True, timeout=900, cwd=tempfile.gettempdir())
    assert proc.returncode == 0, proc.stderr[-2000:]
    n_chars, n_ids, base, peak = map(int, proc.stdout.split())
    extra = peak - base
    print(f"200 MB: {n_ids:,} ids, peak {peak / 1e6:.0f} MB, {extra / 1e6:.0f} MB above the text")
    # the ids (4 bytes each) and a UTF-8 copy of the text are needed; nothing quadratic
    assert extra < 4 * n_ids + 2 * n_chars + (64 << 20)
