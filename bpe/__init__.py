"""bpe: byte-level BPE with a compiled core. tiktoken's API and ids, faster.

>>> import bpe
>>> enc = bpe.get_encoding("o200k_base")  # doctest: +SKIP
>>> enc.encode("hello world")  # doctest: +SKIP
[24912, 2375]
"""

from bpe import load  # tiktoken's rank-file module, as ``tiktoken.load``
from bpe._open import open_tokenizer
from bpe._stream import StreamDecoder
from bpe.core import Encoding
from bpe.load import dump_tiktoken_bpe, load_tiktoken_bpe
from bpe.model import encoding_for_model, encoding_name_for_model
from bpe.registry import get_encoding, list_encoding_names
from bpe.train import count_pieces, train

__version__ = "0.1.0"

# Modules that `import bpe` leaves for first use (each pulls in what a start-up does not need).
_LAZY_MODULES = ("hf",)


def __getattr__(name: str):
    if name in _LAZY_MODULES:
        import importlib

        return importlib.import_module(f"bpe.{name}")
    raise AttributeError(f"module 'bpe' has no attribute {name!r}")

__all__ = [
    "Encoding",
    "StreamDecoder",
    "get_encoding",
    "encoding_for_model",
    "encoding_name_for_model",
    "list_encoding_names",
    "load",
    "load_tiktoken_bpe",
    "dump_tiktoken_bpe",
    "open_tokenizer",
    "train",
    "count_pieces",
]
