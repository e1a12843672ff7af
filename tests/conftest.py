"""Shared fixtures: the official vocabularies (from $BPE_VOCAB_DIR) and tiktoken oracles.

Tests that need the official rank files skip with a reason when BPE_VOCAB_DIR is unset;
with BPE_REQUIRE_VOCAB=1 (as .ci/run sets it) they fail instead, so nothing skips in CI.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from bpe import patterns

# The command-line tests run bpe in subprocesses from another folder (away from the
# uncompiled sources): hand them the vocabulary folder as an absolute path.
if os.environ.get("BPE_VOCAB_DIR"):
    os.environ["BPE_VOCAB_DIR"] = os.path.abspath(os.environ["BPE_VOCAB_DIR"])

SPECIALS = {
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    "cl100k_base": {
        "<|endoftext|>": 100257,
        "<|fim_prefix|>": 100258,
        "<|fim_middle|>": 100259,
        "<|fim_suffix|>": 100260,
        "<|endofprompt|>": 100276,
    },
}
PATTERNS = {"o200k_base": patterns.O200K_PATTERN, "cl100k_base": patterns.CL100K_PATTERN}
OFFICIAL = ["o200k_base", "cl100k_base"]


def vocab_dir() -> Path:
    folder = os.environ.get("BPE_VOCAB_DIR")
    if folder and all((Path(folder) / f"{n}.tiktoken").is_file() for n in OFFICIAL):
        return Path(folder)
    reason = "needs the official rank files: set BPE_VOCAB_DIR to a folder with o200k_base.tiktoken and cl100k_base.tiktoken"
    if os.environ.get("BPE_REQUIRE_VOCAB") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@functools.lru_cache(maxsize=None)
def _ranks(name: str, folder: str) -> dict[bytes, int]:
    from bpe.load import load_tiktoken_bpe

    return load_tiktoken_bpe(Path(folder) / f"{name}.tiktoken")


def oracle(name: str):
    """tiktoken's Encoding built from the same rank file (tiktoken cannot download here)."""
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is the oracle: pip install '.[test]'")
    return _oracle(name, str(vocab_dir()), tiktoken)


@functools.lru_cache(maxsize=None)
def _oracle(name, folder, tiktoken):
    return tiktoken.Encoding(
        name, pat_str=PATTERNS[name], mergeable_ranks=_ranks(name, folder),
        special_tokens=SPECIALS[name],
    )


def ours(name: str):
    vocab_dir()
    import bpe

    return bpe.get_encoding(name)


@pytest.fixture(params=OFFICIAL)
def pair(request):
    """(bpe's Encoding, tiktoken's Encoding) for each official vocabulary."""
    return ours(request.param), oracle(request.param)


def corpus_path(name: str) -> Path:
    """A file of ../shared/corpus (found beside BPE_VOCAB_DIR)."""
    path = vocab_dir().parent / "corpus" / name
    if not path.is_file():
        reason = f"needs the shared corpus file {path}"
        if os.environ.get("BPE_REQUIRE_VOCAB") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
