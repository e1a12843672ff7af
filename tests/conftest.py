"""Shared fixtures: the official vocabularies and tiktoken oracles built from the same ranks.

o200k_base and cl100k_base ship inside the package, so the tests that need them run
offline with nothing set. Tests that need the shared corpus find it at ``$BPE_VOCAB_DIR/../corpus``
or ``../shared/corpus`` beside the project, and skip with a reason when it is not there;
with BPE_REQUIRE_VOCAB=1 (as .ci/run sets it) they fail instead, so nothing skips in CI.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

from bpe import _classes, patterns

# Tests build engines with _core.CoreBPE directly, below Encoding, which installs the
# scanners' character classes on first use: install them for those tests too.
_classes.ensure()

# The command-line tests run bpe in subprocesses from another folder (away from the
# uncompiled sources): hand them the vocabulary folder as an absolute path.
if os.environ.get("BPE_VOCAB_DIR"):
    os.environ["BPE_VOCAB_DIR"] = os.path.abspath(os.environ["BPE_VOCAB_DIR"])

# Engines built for named encodings are kept in bpe's cache; the tests keep theirs in a
# folder of their own (unless BPE_CACHE_DIR is set), not in the user's.
if "BPE_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["BPE_CACHE_DIR"] = tempfile.mkdtemp(prefix="bpe-test-cache-")

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
PROJECT = Path(__file__).resolve().parent.parent


def official_bytes(name: str) -> bytes:
    """The rank file of a shipped encoding, as tiktoken publishes it (checked by its sha256)."""
    import gzip

    from bpe import load, registry

    data = gzip.decompress((load.SHIPPED / f"{name}.tiktoken.gz").read_bytes())
    load.verify_hash(data, registry.RANK_FILES[name][1], name)
    return data


@functools.lru_cache(maxsize=None)
def official_ranks(name: str) -> dict[bytes, int]:
    """The ranks of a shipped encoding, found as ``get_encoding`` finds them."""
    from bpe import registry

    return registry.get_encoding(name)._mergeable_ranks


def oracle(name: str):
    """tiktoken's Encoding built from the same rank file (tiktoken cannot download here)."""
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is the oracle: pip install '.[test]'")
    return _oracle(name, tiktoken)


@functools.lru_cache(maxsize=None)
def _oracle(name, tiktoken):
    return tiktoken.Encoding(
        name, pat_str=PATTERNS[name], mergeable_ranks=official_ranks(name),
        special_tokens=SPECIALS[name],
    )


def ours(name: str):
    import bpe

    return bpe.get_encoding(name)


@pytest.fixture(params=OFFICIAL)
def pair(request):
    """(bpe's Encoding, tiktoken's Encoding) for each official vocabulary."""
    return ours(request.param), oracle(request.param)


def corpus_path(name: str) -> Path:
    """A file of the shared corpus (beside $BPE_VOCAB_DIR, or ../shared/corpus)."""
    folder = os.environ.get("BPE_VOCAB_DIR")
    where = Path(folder).parent / "corpus" if folder else PROJECT.parent / "shared" / "corpus"
    path = where / name
    if not path.is_file():
        reason = f"needs the shared corpus file {path}"
        if os.environ.get("BPE_REQUIRE_VOCAB") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path
