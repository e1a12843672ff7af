"""Named encodings (tiktoken's) and the model-name table.

>>> list_encoding_names()
['gpt2', 'r50k_base', 'p50k_base', 'p50k_edit', 'cl100k_base', 'o200k_base', 'o200k_harmony']
"""

from __future__ import annotations

import importlib
import pkgutil
import threading
from typing import Any, Callable

from bpe import patterns
from bpe.load import Ranks, data_gym_ranks, fetch_verified, parse_tiktoken_ranks

ENDOFTEXT = "<|endoftext|>"
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"
ENDOFPROMPT = "<|endofprompt|>"

_BASE = "https://openaipublic.blob.core.windows.net"

#: name -> (official URL, pinned sha256) of each rank file.
RANK_FILES = {
    "r50k_base": (f"{_BASE}/encodings/r50k_base.tiktoken",
                  "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"),
    "p50k_base": (f"{_BASE}/encodings/p50k_base.tiktoken",
                  "94b5ca7dff4d00767bc256fdd1b27e5b17361d7b8a5f968547f9f23eb70d2069"),
    "cl100k_base": (f"{_BASE}/encodings/cl100k_base.tiktoken",
                    "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"),
    "o200k_base": (f"{_BASE}/encodings/o200k_base.tiktoken",
                   "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"),
}
GPT2_FILES = {
    "vocab.bpe": (f"{_BASE}/gpt-2/encodings/main/vocab.bpe",
                  "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"),
    "encoder.json": (f"{_BASE}/gpt-2/encodings/main/encoder.json",
                     "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"),
}


def _ranks(name: str) -> Ranks:
    """The named rank file's tokens (a read-only mapping, read when first needed: an Encoding
    whose engine is in the cache need not read it; the dict is made only when asked for)."""
    url, sha = RANK_FILES[name]

    def load():
        return parse_tiktoken_ranks(fetch_verified(f"{name}.tiktoken", url, sha), f"{name}.tiktoken").table

    return Ranks(load=load, key=bytes.fromhex(sha))


def _gpt2() -> dict[str, Any]:
    files = {f: fetch_verified(f"gpt2.{f}", url, sha) for f, (url, sha) in GPT2_FILES.items()}
    ranks = data_gym_ranks(files["vocab.bpe"], files["encoder.json"])
    return dict(name="gpt2", explicit_n_vocab=50257, pat_str=patterns.R50K_PATTERN,
                mergeable_ranks=ranks, special_tokens={ENDOFTEXT: 50256})


def _r50k_base() -> dict[str, Any]:
    return dict(name="r50k_base", explicit_n_vocab=50257, pat_str=patterns.R50K_PATTERN,
                mergeable_ranks=_ranks("r50k_base"), special_tokens={ENDOFTEXT: 50256})


def _p50k_base() -> dict[str, Any]:
    return dict(name="p50k_base", explicit_n_vocab=50281, pat_str=patterns.R50K_PATTERN,
                mergeable_ranks=_ranks("p50k_base"), special_tokens={ENDOFTEXT: 50256})


def _p50k_edit() -> dict[str, Any]:
    special = {ENDOFTEXT: 50256, FIM_PREFIX: 50281, FIM_MIDDLE: 50282, FIM_SUFFIX: 50283}
    return dict(name="p50k_edit", pat_str=patterns.R50K_PATTERN,
                mergeable_ranks=_ranks("p50k_base"), special_tokens=special)


def _cl100k_base() -> dict[str, Any]:
    special = {ENDOFTEXT: 100257, FIM_PREFIX: 100258, FIM_MIDDLE: 100259, FIM_SUFFIX: 100260,
               ENDOFPROMPT: 100276}
    return dict(name="cl100k_base", pat_str=patterns.CL100K_PATTERN,
                mergeable_ranks=_ranks("cl100k_base"), special_tokens=special)


def _o200k_base() -> dict[str, Any]:
    return dict(name="o200k_base", pat_str=patterns.O200K_PATTERN,
                mergeable_ranks=_ranks("o200k_base"),
                special_tokens={ENDOFTEXT: 199999, ENDOFPROMPT: 200018})


def _o200k_harmony() -> dict[str, Any]:
    base = _o200k_base()
    special = {
        **base["special_tokens"],
        "<|startoftext|>": 199998,
        "<|endoftext|>": 199999,
        "<|reserved_200000|>": 200000,
        "<|reserved_200001|>": 200001,
        "<|return|>": 200002,
        "<|constrain|>": 200003,
        "<|reserved_200004|>": 200004,
        "<|channel|>": 200005,
        "<|start|>": 200006,
        "<|end|>": 200007,
        "<|message|>": 200008,
        "<|reserved_200009|>": 200009,
        "<|reserved_200010|>": 200010,
        "<|reserved_200011|>": 200011,
        "<|call|>": 200012,
    }
    special.update({f"<|reserved_{i}|>": i for i in range(200013, 201088)})
    return dict(name="o200k_harmony", pat_str=base["pat_str"],
                mergeable_ranks=base["mergeable_ranks"], special_tokens=special)


ENCODING_CONSTRUCTORS: dict[str, Callable[[], dict[str, Any]]] = {
    "gpt2": _gpt2,
    "r50k_base": _r50k_base,
    "p50k_base": _p50k_base,
    "p50k_edit": _p50k_edit,
    "cl100k_base": _cl100k_base,
    "o200k_base": _o200k_base,
    "o200k_harmony": _o200k_harmony,
}

_lock = threading.RLock()
ENCODINGS: dict[str, Any] = {}


_plugins: dict[str, Callable[[], dict[str, Any]]] | None = None
_plugin_modules: list[str] = []


def _find_plugins() -> dict[str, Callable[[], dict[str, Any]]]:
    """Encodings that ``tiktoken_ext`` plugin modules register, found as tiktoken finds them
    (every module of the ``tiktoken_ext`` namespace package that defines
    ``ENCODING_CONSTRUCTORS``). Names bpe builds in keep bpe's constructors (which need no
    tiktoken and find the shipped files), so tiktoken's own ``openai_public`` adds nothing."""
    global _plugins
    with _lock:
        if _plugins is not None:
            return _plugins
        found: dict[str, Callable[[], dict[str, Any]]] = {}
        try:
            import tiktoken_ext
        except ImportError:
            _plugins = found
            return found
        modules = [name for _, name, _ in pkgutil.iter_modules(tiktoken_ext.__path__, "tiktoken_ext.")]
        for module_name in modules:
            module = importlib.import_module(module_name)
            constructors = getattr(module, "ENCODING_CONSTRUCTORS", None)
            if not isinstance(constructors, dict):
                raise ValueError(f"tiktoken plugin {module_name} does not define ENCODING_CONSTRUCTORS")
            for name, constructor in constructors.items():
                if name in ENCODING_CONSTRUCTORS:
                    continue
                if name in found:
                    raise ValueError(f"Duplicate encoding name {name} in tiktoken plugin {module_name}")
                found[name] = constructor
        _plugin_modules[:] = modules
        _plugins = found
        return found


def _constructor(name: str) -> Callable[[], dict[str, Any]] | None:
    return ENCODING_CONSTRUCTORS.get(name) or _find_plugins().get(name)


def list_encoding_names() -> list[str]:
    """The named encodings: bpe's own, then those of ``tiktoken_ext`` plugins."""
    return list(ENCODING_CONSTRUCTORS) + list(_find_plugins())


def get_encoding(encoding_name: str):
    """The named encoding, built once per process and shared (it is thread-safe).

    >>> get_encoding("o200k_base").encode("hello world")  # doctest: +SKIP
    [24912, 2375]
    """
    from bpe.core import Encoding

    if not isinstance(encoding_name, str):
        raise ValueError(f"Expected a string in get_encoding, got {type(encoding_name)}")
    enc = ENCODINGS.get(encoding_name)
    if enc is not None:
        return enc
    with _lock:
        if encoding_name in ENCODINGS:
            return ENCODINGS[encoding_name]
        constructor = _constructor(encoding_name)
        if constructor is None:
            raise ValueError(
                f"Unknown encoding {encoding_name}.\n"
                f"Plugins found: {_plugin_modules}\n"
                f"Known encodings: {', '.join(list_encoding_names())}"
            )
        enc = Encoding(**constructor())
        ENCODINGS[encoding_name] = enc
        return enc
