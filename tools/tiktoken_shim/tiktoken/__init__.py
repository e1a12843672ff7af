"""A stand-in ``tiktoken`` package that is bpe: on the path before site-packages, every
``import tiktoken`` (subprocesses too) gets bpe and its modules under tiktoken's names.
Used by tools/tiktoken_suite.sh to run tiktoken's own tests against bpe."""

import sys

import bpe
import bpe._educational
import bpe.core
import bpe.load
import bpe.model
import bpe.registry

sys.modules["tiktoken"] = bpe
for _name in ("core", "load", "model", "registry", "_educational"):
    sys.modules[f"tiktoken.{_name}"] = sys.modules[f"bpe.{_name}"]
