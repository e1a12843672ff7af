"""Training data for the language model: a text file as a flat array of token ids.

``prepare`` encodes the file once into ``tokens.bin`` (uint16 when every id fits, else
uint32) with ``tokens.bin.json`` beside it, which names the vocabulary and counts the
tokens and bytes; ``np.memmap`` reads it back. The last 10% of the tokens are the
validation set. Bits per byte divide the validation loss by the UTF-8 bytes of exactly the
tokens scored, so vocabularies of different sizes compare.

>>> split_point(1000)
900
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bpe._files import open_atomic, write_atomic

VAL_FRACTION = 0.1


def split_point(n_tokens: int) -> int:
    """Where the validation set starts: the last 10% of the tokens are held out."""
    return n_tokens - int(round(n_tokens * VAL_FRACTION))


def token_byte_lengths(enc) -> np.ndarray:
    """[n_vocab] the UTF-8 bytes each id stands for (0 for ids that are no token)."""
    lengths = np.zeros(enc.n_vocab, np.int64)
    for token, rank in enc.mergeable_ranks.items():
        lengths[rank] = len(token)
    for text, rank in enc.special_tokens.items():
        lengths[rank] = len(text.encode("utf-8"))
    return lengths


@dataclass
class TokenData:
    tokens: np.ndarray          # [n] all ids, memory-mapped
    n_vocab: int
    n_bytes: int

    @property
    def train(self) -> np.ndarray:
        return self.tokens[: split_point(len(self.tokens))]

    @property
    def val(self) -> np.ndarray:
        return self.tokens[split_point(len(self.tokens)):]


def prepare(text_path: str | os.PathLike, enc, out_dir: str | os.PathLike, tokenizer: str,
            field: str = "text") -> TokenData:
    """Encode ``text_path`` with ``enc`` into ``out_dir/tokens.bin`` (+ ``.json``), streamed in
    chunks that encode exactly as the whole text (see ``bpe._chunks.read_chunks``).

    A JSON Lines file (``.jsonl``, also ``.gz``/``.zst``, as ``bpe data clean`` writes)
    gives one document per line (its ``field``), each followed by ``<|endoftext|>`` when
    the vocabulary has it."""
    from bpe import patterns
    from bpe._chunks import read_chunks
    from bpe.data import read as _read

    out = Path(out_dir) / "tokens.bin"
    dtype = np.uint16 if enc.max_token_value < 1 << 16 else np.uint32
    stats = {"bytes": 0, "replaced": 0}
    cut = bool(patterns.scanner_family(enc.pat_str))
    eot = enc.special_tokens.get("<|endoftext|>")
    n = 0
    if _read.kind(text_path) == "jsonl":
        def texts():
            for doc in _read.read_documents([text_path], field=field):
                stats["bytes"] += len(doc.text.encode("utf-8", "surrogatepass"))
                yield doc.text, True
    else:
        def texts():
            for chunk in read_chunks(Path(text_path), stats, cut):
                yield chunk, False
    with open_atomic(out) as f:
        for text, document_end in texts():
            # special-token text in the file is text, as in any other document
            ids = enc.encode_to_numpy(text, disallowed_special=()).astype(dtype)
            f.write(ids.tobytes())
            n += len(ids)
            if document_end and eot is not None:
                f.write(np.asarray([eot], dtype=dtype).tobytes())
                n += 1
    meta = {"format": "bpe-tokens", "version": 1, "source": os.path.basename(text_path),
            "tokenizer": tokenizer, "encoding": enc.name, "n_vocab": enc.n_vocab,
            "dtype": np.dtype(dtype).name, "tokens": n, "bytes": stats["bytes"],
            "replaced": stats["replaced"], "val_start": split_point(n)}
    write_atomic(str(out) + ".json", json.dumps(meta, indent=1) + "\n")
    return open_tokens(out)


def open_tokens(path: str | os.PathLike) -> TokenData:
    """A ``tokens.bin`` written by :func:`prepare` (or ``bpe encode --format bin``)."""
    meta_path = Path(str(path) + ".json")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{meta_path}: cannot read the description of {path} ({e})") from None
    tokens = np.memmap(path, dtype=meta["dtype"], mode="r")
    if len(tokens) != meta["tokens"]:
        raise ValueError(f"{path}: {len(tokens)} tokens, but {meta_path} says {meta['tokens']}")
    return TokenData(tokens, int(meta["n_vocab"]), int(meta["bytes"]))


def get_batch(tokens: np.ndarray, batch: int, ctx: int, rng: np.random.Generator):
    """``batch`` random windows: inputs [B, T] and the next tokens [B, T] as targets."""
    starts = rng.integers(0, len(tokens) - ctx, batch)                     # [B]
    rows = np.stack([np.asarray(tokens[s : s + ctx + 1], np.int64) for s in starts])  # [B, T+1]
    return rows[:, :-1], rows[:, 1:]


def windows(tokens: np.ndarray, ctx: int, max_tokens: int | None = None):
    """Consecutive windows over ``tokens`` that score every token after the first once:
    yields (inputs [1, t], targets [1, t]) with t <= ctx."""
    end = len(tokens) - 1
    if max_tokens is not None:
        end = min(end, max_tokens)
    for start in range(0, end, ctx):
        stop = min(start + ctx, end)
        chunk = np.asarray(tokens[start : stop + 1], np.int64)
        yield chunk[None, :-1], chunk[None, 1:]
