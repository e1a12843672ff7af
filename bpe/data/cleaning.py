"""``bpe data clean``: exact duplicates, boilerplate lines, quality rules, near duplicates.

The pipeline reads its inputs three times, so that memory holds a few numbers per document
and per distinct line, never the corpus:

1. **Keys.** Each document's key (its normalized text hashed, :mod:`bpe.data.text`) and the
   keys of its lines of at least ``boilerplate_min_chars`` characters. A document whose key
   was seen before is an exact duplicate, and its lines are not counted. A line found in at
   least ``boilerplate_min_docs`` of the remaining documents is boilerplate.
2. **Verdicts.** Boilerplate lines are removed from every document but the first that holds
   them; a document left empty is dropped (rule ``empty``), then the quality rules
   (:mod:`bpe.data.quality`) run, then the MinHash band keys of what passed are computed.
   Documents sharing a band key are joined (:func:`bpe.data.minhash.clusters`), and each
   cluster keeps its first document.
3. **Output.** The kept documents, in input order, with their lines removed; and with
   ``rejected``, what each step dropped.

Steps 1 and 2 run in worker processes (``workers``, default every core); the order of the
output and every count are the same for any number of workers.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from bpe._files import open_atomic
from bpe._progress import Bar
from bpe.data import minhash as _minhash
from bpe.data import quality as _quality
from bpe.data import read as _read
from bpe.data import text as _text


@dataclasses.dataclass
class CleanConfig:
    """What ``clean`` does; every step can be turned off."""

    field: str = "text"
    split_on: str | None = None
    exact: bool = True
    boilerplate: bool = True
    boilerplate_min_docs: int = 3
    boilerplate_min_chars: int = 30
    near: bool = True
    num_perm: int = 128
    bands: int = 32
    ngram: int = 5
    char_ngram: int = 5
    seed: int = 1
    quality: _quality.QualityConfig | None = dataclasses.field(default_factory=_quality.QualityConfig)
    workers: int | None = None

    def __post_init__(self):
        if self.boilerplate_min_docs < 2:
            raise ValueError(f"boilerplate_min_docs must be at least 2, not {self.boilerplate_min_docs}")
        self.hasher()  # ValueError for bad MinHash sizes now, not in a worker

    def hasher(self) -> _minhash.MinHasher:
        return _minhash.MinHasher(self.num_perm, self.bands, self.ngram, self.char_ngram, self.seed)


def empty_report() -> dict:
    return {"documents_in": 0, "documents_out": 0, "exact_duplicates": 0, "near_duplicates": 0,
            "boilerplate_lines": 0, "filtered": {}, "bytes_in": 0, "bytes_out": 0, "seconds": 0.0}


# ----------------------------------------------------------------------------------------
# The work on one batch of documents: plain functions of lists, shared by the worker
# processes, the single-process path and the Dask partitions (bpe.data.cluster).


def doc_key(text: str) -> int:
    return _text.key(_text.normalize(text))


def line_keys(text: str, cfg: CleanConfig) -> np.ndarray:
    """The distinct keys of the lines of ``text`` long enough to count as boilerplate."""
    keys = {_text.key(n) for n in map(_text.normalize, text.split("\n"))
            if len(n) >= cfg.boilerplate_min_chars}
    return np.fromiter(keys, dtype=np.uint64, count=len(keys))


def boilerplate_table(keys: np.ndarray, docs: np.ndarray, cfg: CleanConfig) -> tuple[np.ndarray, np.ndarray]:
    """From every (line key, document id) pair, the keys in enough documents and the first
    document of each: ``(sorted keys, first ids)``."""
    if not len(keys):
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    order = np.lexsort((docs, keys))                                    # by key, then id
    k, d = keys[order], docs[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    counts = np.diff(np.r_[starts, len(k)])
    hot = starts[counts >= cfg.boilerplate_min_docs]
    return k[hot], d[hot]


def strip_boilerplate(index: int, text: str, table, cfg: CleanConfig) -> tuple[str, int]:
    """``text`` without the boilerplate lines whose first document is not ``index``; and how
    many lines went."""
    keys, first = table
    if not len(keys):
        return text, 0
    parts = text.split("\n")
    long = [(i, _text.key(n)) for i, n in enumerate(map(_text.normalize, parts))
            if len(n) >= cfg.boilerplate_min_chars]
    if not long:
        return text, 0
    k = np.fromiter((h for _, h in long), dtype=np.uint64, count=len(long))   # [n_long]
    at = np.minimum(np.searchsorted(keys, k), len(keys) - 1)
    hit = (keys[at] == k) & (first[at] != index)
    if not hit.any():
        return text, 0
    drop = {long[j][0] for j in np.flatnonzero(hit).tolist()}
    return "\n".join(p for i, p in enumerate(parts) if i not in drop), len(drop)


def verdicts(indices: list[int], texts: list[str], table, cfg: CleanConfig):
    """Step 2 for a batch: per document ``(lines removed, rule or None, band keys or None)``."""
    hasher = cfg.hasher() if cfg.near else None
    out = []
    for index, text in zip(indices, texts):
        cleaned, removed = strip_boilerplate(index, text, table, cfg) if cfg.boilerplate else (text, 0)
        rule = "empty" if not cleaned.strip() else (
            _quality.check(cleaned, cfg.quality) if cfg.quality is not None else None)
        bands = None
        if rule is None and hasher is not None:
            bands = hasher.band_keys(hasher.signature(cleaned)[None, :])[0]
        out.append((removed, rule, bands))
    return out


def _keys_batch(_indices: list[int], texts: list[str]):
    cfg = _STATE["cfg"]
    return [(doc_key(t), line_keys(t, cfg) if cfg.boilerplate else None,
             len(t.encode("utf-8", "surrogatepass"))) for t in texts]


def _verdicts_batch(indices: list[int], texts: list[str]):
    return verdicts(indices, texts, _STATE["table"], _STATE["cfg"])


_STATE: dict = {}


def _init(cfg: CleanConfig, table=None) -> None:
    _STATE["cfg"], _STATE["table"] = cfg, table


# ----------------------------------------------------------------------------------------
# Running batches in order through worker processes, a bounded number in flight.


def _batches(docs: Iterable[tuple[int, str]], chars: int = 1 << 20) -> Iterator[tuple[list[int], list[str]]]:
    ids: list[int] = []
    texts: list[str] = []
    size = 0
    for i, t in docs:
        ids.append(i)
        texts.append(t)
        size += len(t)
        if size >= chars or len(ids) >= 2048:
            yield ids, texts
            ids, texts, size = [], [], 0
    if ids:
        yield ids, texts


@contextlib.contextmanager
def _runner(workers: int, initargs: tuple):
    """A function mapping a batch function over batches, results in order."""
    if workers <= 1:
        _init(*initargs)

        def serial(fn: Callable, batches):
            for args in batches:
                yield args, fn(*args)
        yield serial
        return
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork with threads about can deadlock
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init, initargs=initargs) as pool:
        def parallel(fn: Callable, batches):
            pending: collections.deque = collections.deque()
            for args in batches:
                pending.append((args, pool.submit(fn, *args)))
                if len(pending) >= 2 * workers:
                    a, fut = pending.popleft()
                    yield a, fut.result()
            while pending:
                a, fut = pending.popleft()
                yield a, fut.result()
        yield parallel


class _Rows:
    """(id, band keys) rows appended one at a time into arrays that double when full."""

    def __init__(self, width: int):
        self.ids = np.zeros(1024, np.int64)
        self.keys = np.zeros((1024, width), np.uint64)
        self.n = 0

    def append(self, i: int, row: np.ndarray) -> None:
        if self.n == len(self.ids):
            self.ids = np.resize(self.ids, 2 * self.n)
            self.keys = np.resize(self.keys, (2 * self.n, self.keys.shape[1]))
        self.ids[self.n], self.keys[self.n] = i, row
        self.n += 1

    def __len__(self) -> int:
        return self.n

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return self.ids[:self.n], self.keys[:self.n]


# ----------------------------------------------------------------------------------------
# The pipeline


def write_row(f, row: dict) -> None:
    """One JSONL line, UTF-8 as it is; a text holding lone surrogates (valid JSON input can)
    is written with escapes, since UTF-8 cannot hold them."""
    try:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    except UnicodeEncodeError:  # TextIOWrapper encodes the whole line before buffering any of it
        f.write(json.dumps(row) + "\n")


def clean(inputs: Iterable[str | os.PathLike], output: str | os.PathLike, cfg: CleanConfig | None = None,
          *, rejected: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """Clean the documents of ``inputs`` into the JSONL file ``output``; the report.

    The report counts ``documents_in``, ``documents_out``, ``exact_duplicates``,
    ``near_duplicates``, ``boilerplate_lines`` (lines removed), ``filtered`` (documents per
    rule, ``empty`` included), ``bytes_in`` and ``bytes_out`` (UTF-8 of the texts) and
    ``seconds``. With ``rejected``, that folder gets one JSONL file per reason
    (``exact_duplicate``, ``near_duplicate``, each rule) holding the documents it dropped,
    each with ``_reason`` and, for duplicates, ``_duplicate_of`` (the kept document's
    position in the input, from 0).
    """
    cfg = cfg or CleanConfig()
    paths = _read.check_inputs([os.fspath(p) for p in inputs])
    start = time.perf_counter()
    workers = cfg.workers or os.cpu_count() or 1
    report = empty_report()
    total = None if any(str(p).lower().endswith((".gz", ".zst", ".zstd")) for p in paths) else \
        sum(p.stat().st_size for p in paths)

    def documents(label: str, stats: dict):
        bar = Bar(label, progress and sys.stderr.isatty(), total, "MB", 1e6)
        for i, doc in enumerate(_read.read_documents(paths, field=cfg.field, split_on=cfg.split_on,
                                                     stats=stats)):
            if i % 256 == 0:
                bar(stats.get("bytes", 0))
            yield i, doc
        bar.close(stats.get("bytes", 0))

    # 1. Keys
    first_of: dict[int, int] = {}
    duplicate_of: dict[int, int] = {}
    key_parts, doc_parts = [], []
    n_docs = 0
    with _runner(workers, (cfg,)) as run:
        stream = ((i, d.text) for i, d in documents("clean 1/3 keys", {}))
        for (ids, _texts), results in run(_keys_batch, _batches(stream)):
            for i, (k, lines, size) in zip(ids, results):
                n_docs += 1
                report["bytes_in"] += size
                if cfg.exact and k in first_of:
                    duplicate_of[i] = first_of[k]
                    continue
                first_of.setdefault(k, i)
                if lines is not None and len(lines):
                    key_parts.append(lines)
                    doc_parts.append(np.full(len(lines), i, dtype=np.int64))
    del first_of
    report["documents_in"] = n_docs
    report["exact_duplicates"] = len(duplicate_of)
    table = boilerplate_table(np.concatenate(key_parts) if key_parts else np.zeros(0, np.uint64),
                              np.concatenate(doc_parts) if doc_parts else np.zeros(0, np.int64), cfg)
    del key_parts, doc_parts

    # 2. Verdicts
    reason: dict[int, str] = {}
    changed: set[int] = set()
    bands_of = _Rows(cfg.bands)  # 8 bytes a band per kept document, in one growing array
    filtered: collections.Counter = collections.Counter()
    with _runner(workers, (cfg, table)) as run:
        stream = ((i, d.text) for i, d in documents("clean 2/3 verdicts", {}) if i not in duplicate_of)
        for (ids, _texts), results in run(_verdicts_batch, _batches(stream)):
            for i, (removed, rule, bands) in zip(ids, results):
                if removed:
                    report["boilerplate_lines"] += removed
                    changed.add(i)
                if rule is not None:
                    reason[i] = rule
                    filtered[rule] += 1
                elif bands is not None:
                    bands_of.append(i, bands)
    report["filtered"] = dict(sorted(filtered.items()))
    if len(bands_of):
        ids, keys = bands_of.arrays()
        reps = _minhash.clusters(keys, ids)
        for i, r in zip(ids[reps != ids].tolist(), reps[reps != ids].tolist()):
            reason[i] = "near_duplicate"
            duplicate_of[i] = r
        report["near_duplicates"] = int((reps != ids).sum())
    for i in duplicate_of:
        reason.setdefault(i, "exact_duplicate")

    # 3. Output
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open_atomic(output, "w", encoding="utf-8"))
        sinks: dict[str, object] = {}
        for i, doc in documents("clean 3/3 writing", {}):
            why = reason.get(i)
            if why is None:
                text = strip_boilerplate(i, doc.text, table, cfg)[0] if i in changed else doc.text
                write_row(out, doc.output(text, cfg.field))
                report["documents_out"] += 1
                report["bytes_out"] += len(text.encode("utf-8", "surrogatepass"))
            elif rejected is not None:
                if why not in sinks:
                    sinks[why] = stack.enter_context(open_atomic(Path(rejected) / f"{why}.jsonl", "w",
                                                                 encoding="utf-8"))
                row = dict(doc.record, _reason=why)
                if i in duplicate_of:
                    row["_duplicate_of"] = duplicate_of[i]
                write_row(sinks[why], row)
    report["seconds"] = round(time.perf_counter() - start, 3)
    return report
