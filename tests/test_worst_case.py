"""Pathological inputs of a million code points encode correctly (tiktoken is the oracle).

How the time grows with n is measured by benchmarks/bench_worst_case.py, not here.
"""

from __future__ import annotations

import random

import pytest

from conftest import OFFICIAL, oracle, ours

N = 1_000_000


def make(kind: str, n: int) -> str:
    rnd = random.Random(0)
    if kind == "letters":
        return "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(n))
    if kind == "bytes":
        return bytes(rnd.getrandbits(8) for _ in range(n)).decode("utf-8", "replace")
    if kind == "digits":  # digits and newlines: runs of numbers cut into threes, line ends
        return "".join(rnd.choice("0123456789\n") for _ in range(n))
    return {"a": "a", "space": " ", "emoji": "\U0001f600", "newline": "\n"}[kind] * n


@pytest.mark.parametrize("kind", ["a", "space", "letters", "emoji", "newline", "bytes", "digits"])
@pytest.mark.parametrize("name", OFFICIAL)
def test_million(name, kind):
    enc, tk = ours(name), oracle(name)
    text = make(kind, N)
    ids = enc.encode_ordinary(text)
    assert enc.decode(ids) == text
    assert enc.count(text) == len(ids)
    if name == "o200k_base" and kind == "space":
        # tiktoken overflows its stack here; it encodes a tenth of the run, and a longer
        # run repeats the same longest-space token.
        shorter = tk.encode_ordinary(make(kind, N // 10))
        assert ids[: len(shorter) - 2] == shorter[:-2]
        assert set(ids[:-2]) == {shorter[0]}
    else:
        assert ids == tk.encode_ordinary(text)
