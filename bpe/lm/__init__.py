"""A small GPT in numpy, to judge a vocabulary by what a language model does with it.

Train on a text file encoded with any bpe vocabulary, then compare vocabularies by
validation bits per byte (nats / ln 2 / UTF-8 bytes), which does not depend on how many
tokens a vocabulary cuts the text into.

>>> import bpe, bpe.lm  # doctest: +SKIP
>>> run = bpe.lm.train_on_text("corpus.txt", bpe.get_encoding("o200k_base"), steps=200)  # doctest: +SKIP
>>> run["val_bpb"]  # doctest: +SKIP
2.31

Modules: ``model`` (layers, forward and backward), ``optim`` (AdamW, schedule, clipping),
``data`` (token files, batches), ``train`` (the loop, evaluation, checkpoints), ``sample``
(generation, multiple-choice scoring), ``cli`` (``bpe lm ...``).
"""

from __future__ import annotations

import os
import tempfile

from bpe.lm import data
from bpe.lm.model import GPTConfig
from bpe.lm.sample import generate, score_options
from bpe.lm.train import TrainConfig, evaluate, load_checkpoint, train

__all__ = ["GPTConfig", "TrainConfig", "train", "train_on_text", "evaluate", "generate",
           "score_options", "load_checkpoint"]


def train_on_text(path: str | os.PathLike, enc, *, out_dir: str | os.PathLike | None = None,
                  tokenizer: str | None = None, ctx: int = 128, d_model: int = 128, n_layer: int = 4,
                  n_head: int = 4, progress: bool = False, **train_settings) -> dict:
    """Encode a text file with ``enc`` and train on it; returns the figures of :func:`train`.

    ``train_settings`` are the fields of :class:`TrainConfig` (steps, batch, lr, seed ...).
    """
    gpt = GPTConfig(vocab_size=enc.n_vocab, ctx=ctx, d_model=d_model, n_layer=n_layer, n_head=n_head)
    with tempfile.TemporaryDirectory() as scratch:
        folder = out_dir if out_dir is not None else scratch
        tokens = data.prepare(path, enc, folder, tokenizer or enc.name)
        return train(tokens, gpt, TrainConfig(**train_settings), data.token_byte_lengths(enc),
                     out_dir=out_dir, progress=progress)
