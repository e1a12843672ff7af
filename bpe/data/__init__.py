"""Corpus preparation before ``bpe train``: read, deduplicate, filter, mix.

>>> from bpe import data
>>> report = data.clean(["pages.jsonl"], "clean.jsonl")            # doctest: +SKIP
>>> report = data.mix(["web.jsonl", "code.jsonl"], "mix.jsonl",     # doctest: +SKIP
...                   weights={"web": 0.7, "code": 0.3}, budget=10_000_000,
...                   enc=bpe.get_encoding("o200k_base"))

``bpe data clean`` and ``bpe data mix`` are the same on the command line, and
:mod:`bpe.data.cluster` runs the cleaning on a Dask cluster.
"""

from bpe.data.cleaning import CleanConfig, clean
from bpe.data.minhash import MinHasher, clusters, estimate_jaccard
from bpe.data.mixing import mix, parse_weights
from bpe.data.quality import RULES, QualityConfig
from bpe.data.read import Document, read_documents
from bpe.data.text import language, normalize, words

__all__ = ["CleanConfig", "Document", "MinHasher", "QualityConfig", "RULES", "clean", "clusters",
           "estimate_jaccard", "language", "mix", "normalize", "parse_weights", "read_documents",
           "words"]
