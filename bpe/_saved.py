"""The saved-tokenizer format: pattern, special tokens and ranks in one versioned JSON file.

``{"format": "bpe-tokenizer", "version": 1, "name": ..., "pattern": ...,
"special_tokens": {text: id}, "ranks": "<the .tiktoken file, one token a line>"}``

Never pickle: a file from anyone is safe to load, and whatever is wrong with it is a
ValueError that names the file. ``Encoding.save`` and ``Encoding.load`` use this module; it
deals in plain data (it sits below ``bpe.core``).

>>> text = dumps("tiny", r"\\S+", {b"a": 0, b"b": 1}, {"<|e|>": 2})
>>> parse(text, "tiny.tok")["mergeable_ranks"]
{b'a': 0, b'b': 1}
"""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path
from typing import Any, Mapping

from bpe import _json
from bpe.load import parse_tiktoken_bpe

FORMAT = "bpe-tokenizer"
FORMAT_VERSION = 1


def dumps(name: str, pat_str: str, mergeable_ranks: Mapping[bytes, int],
          special_tokens: Mapping[str, int]) -> str:
    """The document for an encoding's parts."""
    ranks = io.StringIO()
    for token, rank in sorted(mergeable_ranks.items(), key=lambda item: item[1]):
        ranks.write(f"{base64.b64encode(token).decode()} {rank}\n")
    document = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "name": name,
        "pattern": pat_str,
        "special_tokens": dict(special_tokens),
        "ranks": ranks.getvalue(),
    }
    return json.dumps(document, ensure_ascii=False, indent=1)


def read(path: str | os.PathLike) -> tuple[dict[str, Any], str]:
    """The ``Encoding`` arguments saved in ``path``, and the file's name for messages."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{source}: not a bpe tokenizer file ({e})") from None
    return parse(text, source), source


def parse(text: str, source: str = "<json>") -> dict[str, Any]:
    """The ``Encoding`` arguments of a document written by :func:`dumps`; errors name ``source``."""
    document = _json.loads(text, source, "a bpe tokenizer file")
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{source}: not a bpe tokenizer file (no \"format\": \"{FORMAT}\")")
    version = document.get("version")
    if type(version) is not int or version != FORMAT_VERSION:  # true == 1 in Python
        raise ValueError(f"{source}: tokenizer file version {_json.describe(version)}; "
                         f"this bpe reads version {FORMAT_VERSION}")
    for field, kind in (("name", str), ("pattern", str), ("special_tokens", dict), ("ranks", str)):
        if not isinstance(document.get(field), kind):
            raise ValueError(f"{source}: field {field!r} is missing or not a {kind.__name__}")
    special = document["special_tokens"]  # its ids are checked by Encoding, as every door's
    ranks = parse_tiktoken_bpe(document["ranks"].encode("ascii", "replace"), f"{source} (ranks)")
    if not ranks:
        raise ValueError(f"{source}: no ranks")
    return {"name": document["name"], "pat_str": document["pattern"], "mergeable_ranks": ranks,
            "special_tokens": special}
