"""Named encodings (tiktoken's) and the model-name table.

>>> list_encoding_names()
['gpt2', 'r50k_base', 'p50k_base', 'p50k_edit', 'cl100k_base', 'o200k_base', 'o200k_harmony']
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from bpe import patterns
from bpe.load import data_gym_to_mergeable_bpe_ranks, fetch_verified, parse_tiktoken_bpe

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


def _ranks(name: str) -> dict[bytes, int]:
    url, sha = RANK_FILES[name]
    return parse_tiktoken_bpe(fetch_verified(f"{name}.tiktoken", url, sha), f"{name}.tiktoken")


def _gpt2() -> dict[str, Any]:
    files = {f: fetch_verified(f"gpt2.{f}", url, sha) for f, (url, sha) in GPT2_FILES.items()}
    ranks = data_gym_to_mergeable_bpe_ranks(files["vocab.bpe"], files["encoder.json"])
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

MODEL_TO_ENCODING: dict[str, str] = {
    # reasoning and chat
    "o1": "o200k_base", "o3": "o200k_base", "o4-mini": "o200k_base", "gpt-5": "o200k_base",
    "gpt-4.1": "o200k_base", "gpt-4o": "o200k_base", "gpt-4": "cl100k_base",
    "gpt-3.5-turbo": "cl100k_base", "gpt-3.5": "cl100k_base", "gpt-35-turbo": "cl100k_base",
    # base
    "davinci-002": "cl100k_base", "babbage-002": "cl100k_base",
    # embeddings
    "text-embedding-ada-002": "cl100k_base", "text-embedding-3-small": "cl100k_base",
    "text-embedding-3-large": "cl100k_base",
    # deprecated text and code models
    "text-davinci-003": "p50k_base", "text-davinci-002": "p50k_base",
    "text-davinci-001": "r50k_base", "text-curie-001": "r50k_base",
    "text-babbage-001": "r50k_base", "text-ada-001": "r50k_base", "davinci": "r50k_base",
    "curie": "r50k_base", "babbage": "r50k_base", "ada": "r50k_base",
    "code-davinci-002": "p50k_base", "code-davinci-001": "p50k_base",
    "code-cushman-002": "p50k_base", "code-cushman-001": "p50k_base",
    "davinci-codex": "p50k_base", "cushman-codex": "p50k_base",
    "text-davinci-edit-001": "p50k_edit", "code-davinci-edit-001": "p50k_edit",
    "text-similarity-davinci-001": "r50k_base", "text-similarity-curie-001": "r50k_base",
    "text-similarity-babbage-001": "r50k_base", "text-similarity-ada-001": "r50k_base",
    "text-search-davinci-doc-001": "r50k_base", "text-search-curie-doc-001": "r50k_base",
    "text-search-babbage-doc-001": "r50k_base", "text-search-ada-doc-001": "r50k_base",
    "code-search-babbage-code-001": "r50k_base", "code-search-ada-code-001": "r50k_base",
    "gpt2": "gpt2", "gpt-2": "gpt2",
}

# Checked in this order: the first prefix that fits wins.
MODEL_PREFIX_TO_ENCODING: dict[str, str] = {
    "o1-": "o200k_base", "o3-": "o200k_base", "o4-mini-": "o200k_base", "gpt-5": "o200k_base",
    "gpt-4.5-": "o200k_base", "gpt-4.1-": "o200k_base", "chatgpt-4o-": "o200k_base",
    "gpt-4o-": "o200k_base", "gpt-4-": "cl100k_base", "gpt-3.5-turbo-": "cl100k_base",
    "gpt-35-turbo-": "cl100k_base", "gpt-oss-": "o200k_harmony",
    "ft:gpt-4o": "o200k_base", "ft:gpt-4": "cl100k_base", "ft:gpt-3.5-turbo": "cl100k_base",
    "ft:davinci-002": "cl100k_base", "ft:babbage-002": "cl100k_base",
}

_lock = threading.RLock()
ENCODINGS: dict[str, Any] = {}


def list_encoding_names() -> list[str]:
    return list(ENCODING_CONSTRUCTORS)


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
        if encoding_name not in ENCODING_CONSTRUCTORS:
            raise ValueError(
                f"Unknown encoding {encoding_name!r}. Plugins found: []\n"
                f"Known encodings: {', '.join(ENCODING_CONSTRUCTORS)}"
            )
        enc = Encoding(**ENCODING_CONSTRUCTORS[encoding_name]())
        ENCODINGS[encoding_name] = enc
        return enc


def encoding_name_for_model(model_name: str) -> str:
    """The encoding a model uses; KeyError for a model the table does not know."""
    if model_name in MODEL_TO_ENCODING:
        return MODEL_TO_ENCODING[model_name]
    for prefix, name in MODEL_PREFIX_TO_ENCODING.items():
        if model_name.startswith(prefix):
            return name
    raise KeyError(
        f"Could not automatically map {model_name} to a tokeniser. "
        "Please use `bpe.get_encoding` to explicitly get the tokeniser you expect."
    ) from None


def encoding_for_model(model_name: str):
    """The Encoding a model uses, e.g. ``encoding_for_model("gpt-4o")`` is o200k_base."""
    return get_encoding(encoding_name_for_model(model_name))


def open_tokenizer(name_or_path: str):
    """An Encoding from a name or a file, whichever ``name_or_path`` is.

    Names are those of :func:`list_encoding_names`. Files: one written by ``Encoding.save``
    (``bpe.load``), or a Hugging Face ``tokenizer.json``. Anything else is a ValueError that
    says what was tried.

    >>> open_tokenizer("o200k_base").name  # doctest: +SKIP
    'o200k_base'
    """
    import os

    if name_or_path in ENCODING_CONSTRUCTORS:
        return get_encoding(name_or_path)
    if not os.path.isfile(name_or_path):
        raise ValueError(
            f"{name_or_path!r} is neither a named encoding ({', '.join(ENCODING_CONSTRUCTORS)}) "
            "nor an existing file"
        )
    with open(name_or_path, "rb") as f:
        head = f.read(4096)
    if b'"format"' in head and b"bpe-tokenizer" in head:
        from bpe.load import load_encoding

        return load_encoding(name_or_path)
    if head.lstrip().startswith(b"{") and (b'"model"' in head or b'"added_tokens"' in head):
        from bpe import hf

        return hf.from_tokenizer_json(name_or_path)
    raise ValueError(
        f"{name_or_path}: not a tokenizer file bpe reads (one written by Encoding.save, "
        "or a Hugging Face tokenizer.json)"
    )
