"""``open_tokenizer``: an Encoding from a name or a file, whichever the caller has.

It sits above the three ways to get one (``registry``, the saved format, ``hf``), so that
the command line and the language-model tools take any of them through one call.
"""

from __future__ import annotations

import os

from bpe import registry
from bpe.core import Encoding


def open_tokenizer(name_or_path: str | os.PathLike) -> Encoding:
    """An Encoding from a name or a file, whichever ``name_or_path`` is.

    Names are those of :func:`bpe.list_encoding_names`. Files: one written by
    ``Encoding.save`` (read by ``Encoding.load``), or a Hugging Face ``tokenizer.json``.
    Anything else is a ValueError that says what was tried.

    >>> open_tokenizer("o200k_base").name  # doctest: +SKIP
    'o200k_base'
    """
    spec = os.fspath(name_or_path)
    if spec in registry.ENCODING_CONSTRUCTORS:  # bpe's own: no plugin discovery needed
        return registry.get_encoding(spec)
    if not os.path.isfile(spec):
        if spec in registry.list_encoding_names():  # a tiktoken_ext plugin's
            return registry.get_encoding(spec)
        raise ValueError(f"{spec!r} is neither a named encoding "
                         f"({', '.join(registry.list_encoding_names())}) nor an existing file")
    with open(spec, "rb") as f:
        head = f.read(4096)
    if b'"format"' in head and b"bpe-tokenizer" in head:
        return Encoding.load(spec)
    if head.lstrip().startswith(b"{") and (b'"model"' in head or b'"added_tokens"' in head):
        from bpe import hf  # only for tokenizer.json files: it imports the regex machinery

        return hf.from_tokenizer_json(spec)
    raise ValueError(f"{spec}: not a tokenizer file bpe reads (one written by Encoding.save, "
                     "or a Hugging Face tokenizer.json)")
