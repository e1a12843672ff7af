"""Training byte-level BPE vocabularies: count pieces, then run the compiled merge loop.

>>> enc = train(["the cat sat on the mat"] * 10, vocab_size=260, pattern="gpt2", progress=False)
>>> enc.encode("the mat")
[256, 259]

The rule, shared with rustbpe, bpeasy and ffbpe: each merge takes the adjacent pair with
the highest count over all pieces, ties going to the smallest (left id, right id), where
byte b has id b and the k-th merge creates id 256 + k.
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Mapping, Union

from bpe import _classes, _core, _train, patterns
from bpe._chunks import read_chunks, safe_cut
from bpe._progress import Bar

Source = Union[str, "os.PathLike[str]", Iterable[str], Mapping[bytes, int]]



def _resolve_pattern(pattern: str) -> str:
    if pattern in patterns.PATTERNS:
        return patterns.PATTERNS[pattern]
    if pattern in ("r50k", "p50k"):
        return patterns.R50K_PATTERN
    if len(pattern) < 12 and pattern.isidentifier():
        raise ValueError(
            f"unknown pattern name {pattern!r}; use one of {', '.join(patterns.PATTERNS)} or a regex"
        )
    patterns.compile_pattern(pattern)  # ValueError naming the pattern when it does not compile
    return pattern


def _regex_counter(pat_str: str):
    """A function counting the pieces of a list of texts with `regex`, for patterns that no
    compiled scanner splits: {piece bytes: count}."""
    compiled = patterns.compile_pattern(pat_str)

    def count(texts: list[str]) -> dict[bytes, int]:
        counts: collections.Counter = collections.Counter()
        for text in texts:
            counts.update(patterns.findall(compiled, text, pat_str))
        counts.pop("", None)  # a pattern that matches the empty string: no bytes to merge
        return {piece.encode("utf-8", "surrogatepass"): n for piece, n in counts.items()}

    return count


_BATCH_CHARS = 1 << 22  # characters per counting task


def _split_long(text: str, size: int) -> Iterable[str]:
    """``text`` in parts of about ``size`` characters, cut only where every named pattern is
    sure to break (:func:`bpe._chunks.safe_cut`), so the parts split as the whole does; a
    stretch with no such place stays whole."""
    start = 0
    while len(text) - start > size:
        at = safe_cut(text[start:start + size])
        if not at:
            break
        yield text[start:start + at]
        start += at
    yield text[start:]


def _batches(texts: Iterable[str], chars: int, cut: bool) -> Iterable[tuple[list[str], int]]:
    """Texts grouped into lists of about ``chars`` characters, with how many of the texts
    given have been taken so far. With ``cut``, a text longer than ``chars`` is cut into
    parts (so one long string is counted on every thread too)."""
    batch: list[str] = []
    size = taken = 0
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"expected texts (str), got {type(text).__name__}")
        taken += 1
        for part in (_split_long(text, chars) if cut and len(text) > chars else (text,)):
            batch.append(part)
            size += len(part)
            if size >= chars:
                yield batch, taken
                batch, size = [], 0
    if batch:
        yield batch, taken


def _prune(counts, max_pieces: int | None) -> None:
    """The ``max_pieces`` schedule: while more than ``max_pieces`` distinct pieces are held,
    forget those counted fewer than 2 times, then 4, 8, ..., until at most half of
    ``max_pieces`` remain. ``counts`` is a C PieceCounter or a Counter."""
    if not max_pieces or len(counts) <= max_pieces:
        return
    floor = 2
    while len(counts) > max_pieces // 2:
        if isinstance(counts, collections.Counter):
            for piece in [p for p, c in counts.items() if c < floor]:
                del counts[piece]
        else:
            counts.prune(floor)
        floor *= 2


def _count_parallel(texts: Iterable[str], pat_str: str, num_threads: int | None, report=None,
                    max_pieces: int | None = None) -> collections.Counter:
    """Piece counts of texts, batches counted on ``num_threads`` threads (all cores: None).

    At most two batches per thread are in flight, so memory stays bounded for a stream;
    with ``max_pieces``, so do the counts (:func:`_prune`: each thread's after each batch,
    and the joined ones).
    With a compiled scanner, each thread counts into a C counter of its own and the counters
    are joined once at the end; merging a dict per batch into one Counter, in Python, took
    most of the time on text with many distinct pieces (kernel sources: the workers waited
    on it at 8 MB/s).
    """
    family = patterns.scanner_family(pat_str)
    threads = num_threads or os.cpu_count() or 1
    total: collections.Counter = collections.Counter()
    counters: list = []  # the threads' C counters
    done = pieces = 0
    if family:
        _classes.ensure()
        local = threading.local()

        def count(batch: list[str]) -> int:
            counter = getattr(local, "counter", None)
            if counter is None:
                counter = local.counter = _core.PieceCounter(family)
                counters.append(counter)  # list.append is atomic
            cut = counter.add(batch)
            _prune(counter, max_pieces)
            return cut  # how many pieces the batch had
    else:
        count = _regex_counter(pat_str)  # returns the batch's dict, added in this thread
    with ThreadPoolExecutor(threads) as pool:
        pending: collections.deque = collections.deque()
        for batch, done in _batches(texts, _BATCH_CHARS, bool(family)):
            pending.append(pool.submit(count, batch))
            if len(pending) >= 2 * threads:
                pieces += _finish(pending.popleft(), total, max_pieces)
                if report:
                    report(done, pieces)
        while pending:
            pieces += _finish(pending.popleft(), total, max_pieces)
    if report:
        report(done, pieces)
    if counters:
        for other in counters[1:]:
            counters[0].merge(other)
            _prune(counters[0], max_pieces)
        total.update(counters[0].to_dict())
    return total


def _finish(future, total: collections.Counter, max_pieces: int | None = None) -> int:
    """Wait for a batch; add its counts when it returns them (a C counter keeps its own).
    Returns how many pieces the batch had."""
    result = future.result()
    if isinstance(result, int):
        return result
    total.update(result)
    _prune(total, max_pieces)
    return sum(result.values())


def count_pieces(texts: Iterable[str], *, pattern: str = "o200k", num_threads: int | None = None) -> collections.Counter:
    """How often each piece (as UTF-8 bytes) occurs in ``texts``, each text split on its own.

    Counters from different shards add up (``a + b``, ``sum(..., Counter())``), and
    :func:`train` accepts the sum: counting can run anywhere and train once. Batches of
    texts are counted on ``num_threads`` threads (None: all cores).

    >>> count_pieces(["hello hello world"], pattern="gpt2") == {b"hello": 1, b" hello": 1, b" world": 1}
    True
    """
    if isinstance(texts, str):
        raise TypeError("count_pieces takes an iterable of texts; wrap a single text in a list")
    return _count_parallel(texts, _resolve_pattern(pattern), num_threads)


def train(
    source: Source,
    *,
    vocab_size: int,
    pattern: str = "o200k",
    special_tokens: Iterable[str] = (),
    min_frequency: int = 1,
    progress: bool = True,
    num_threads: int | None = None,
    name: str | None = None,
    holdout: float = 0.0,
    max_pieces: int | None = None,
):
    """Train a byte-level BPE Encoding.

    ``source`` is a path, a list of paths, an iterable of texts (each split on its own, as
    documents), or piece counts from :func:`count_pieces`. ``vocab_size`` counts everything:
    the 256 byte tokens, the merges and the special tokens, which take the ids after the last
    merge. ``pattern`` is ``"gpt2"``, ``"cl100k"``, ``"o200k"`` or a regex. Merges stop early,
    with a message, when no pair occurs ``min_frequency`` times. Counting runs on
    ``num_threads`` threads (None: all cores); the merge loop runs on one. The merges do not
    depend on the thread count, the chunking or the order of the files.

    ``holdout`` keeps that fraction of the text out of training (every n-th document, or
    block of about 64 KB of a file, up to 8 MB in all) and measures bytes per token on it,
    reported in the summary and in ``enc.training_stats``.

    ``max_pieces`` bounds the memory of counting a corpus with very many distinct pieces
    (None: exact counts, however many). Whenever a counting thread holds more than
    ``max_pieces`` distinct pieces, it forgets those it has counted fewer than 2 times, then
    4, 8, ..., until at most half of ``max_pieces`` remain; the joined counts get the same
    treatment. The counts, and so the merges, are then approximate: a piece forgotten early
    loses the occurrences it had, and rare pieces are gone. Pieces too rare to make a merge
    are the ones dropped first, so the merges that come from frequent pairs are kept.

    >>> enc = train(["low lower lowest"] * 5, vocab_size=258, pattern="gpt2", progress=False)
    >>> enc.n_vocab
    258
    """
    specials = list(special_tokens)
    pat_str = _resolve_pattern(pattern)
    _check_arguments(vocab_size, specials, min_frequency)
    if max_pieces is not None and (isinstance(max_pieces, bool) or not isinstance(max_pieces, int) or max_pieces < 2):
        raise ValueError(f"max_pieces must be an int of at least 2, or None, got {max_pieces!r}")
    if not 0 <= holdout < 0.5:
        raise ValueError(f"holdout must be a fraction in [0, 0.5), got {holdout!r}")
    if holdout and isinstance(source, Mapping):
        raise ValueError("holdout needs text: piece counts cannot be held apart")
    paths = _as_paths(source)
    held: list[str] = []
    start = time.perf_counter()
    stats = {"bytes": 0, "replaced": 0}

    # 1. count pieces
    if isinstance(source, Mapping):
        counts = collections.Counter({bytes(k): int(v) for k, v in source.items()})
    else:
        if paths is not None:
            bar = Bar("counting", progress, sum(p.stat().st_size for p in paths), "MB", 1e6, also="pieces")
            # Where a regex of the user's may join across any cut, files are read whole.
            streamed = bool(patterns.scanner_family(pat_str))
            texts = (chunk for p in paths for chunk in read_chunks(p, stats, streamed))
            if holdout:
                texts = _hold_apart(texts, holdout, held)
            counts = _count_parallel(texts, pat_str, num_threads,
                                     lambda done, pieces: bar(stats["bytes"], also=pieces), max_pieces)
            bar.close(stats["bytes"])
        else:
            bar = Bar("counting", progress, None, "texts", also="pieces")
            texts = _measured(source, stats)
            texts = _hold_apart(texts, holdout, held) if holdout else texts
            counts = _count_parallel(texts, pat_str, num_threads, lambda done, pieces: bar(done, also=pieces),
                                     max_pieces)
            bar.close()
    if not counts:
        raise ValueError("the corpus is empty: no text to train on")

    # 2. merge
    n_merges = vocab_size - 256 - len(specials)
    pieces = list(counts)
    weights = [counts[p] for p in pieces]
    n_pieces = len(counts)
    del counts  # the dict's tens of megabytes are not needed while merging
    bar = Bar("merging", progress, n_merges, "merges")
    merges = _train.train_merges(pieces, weights, n_merges, bar, min_frequency)
    bar.close(len(merges))

    # 3. ranks: byte b is b, merge k is 256 + k
    token_bytes = [bytes([b]) for b in range(256)]
    ranks = {t: i for i, t in enumerate(token_bytes)}
    duplicates = 0
    for left, right in merges:
        token = token_bytes[left] + token_bytes[right]
        token_bytes.append(token)
        if token in ranks:
            duplicates += 1  # the same bytes reached by another merge: tiktoken keeps one id
        else:
            ranks[token] = len(token_bytes) - 1
    if duplicates:
        raise ValueError(
            f"{duplicates} merges create byte strings that an earlier merge already created; "
            "a tiktoken-style vocabulary cannot hold them"
        )
    next_id = 256 + len(merges)
    special_ids = {token: next_id + i for i, token in enumerate(specials)}

    from bpe.core import Encoding

    enc = Encoding(name or f"bpe-{vocab_size}", pat_str=pat_str, mergeable_ranks=ranks,
                   special_tokens=special_ids)
    elapsed = time.perf_counter() - start
    if held:
        stats["holdout_bytes"] = sum(len(t.encode("utf-8")) for t in held)
        stats["holdout_tokens"] = sum(enc.count_batch(held))
    if progress:
        short = len(merges) < n_merges
        print(
            f"trained {enc.name}: {n_pieces:,} distinct pieces, {len(merges):,} merges"
            + (f" (asked for {n_merges:,}: no pair occurs {min_frequency}+ times any more)" if short else "")
            + f", {len(specials)} special tokens, vocabulary {enc.n_vocab:,}, {elapsed:.1f} s"
            + (f"; {stats['replaced']:,} invalid UTF-8 sequences replaced" if stats["replaced"] else "")
            + (f"; {stats['holdout_bytes'] / max(stats['holdout_tokens'], 1):.2f} bytes per token on "
               f"{stats['holdout_bytes']:,} bytes held apart" if held else ""),
            file=sys.stderr,
        )
    enc.training_stats = {"pieces": n_pieces, "merges": len(merges), "seconds": elapsed, **stats}
    return enc


def _measured(texts: Iterable[str], stats: dict) -> Iterable[str]:
    """``texts``, adding the UTF-8 size of each to ``stats["bytes"]``."""
    for text in texts:
        stats["bytes"] += len(text.encode("utf-8", "surrogatepass"))
        yield text


_HOLDOUT_LIMIT = 8 << 20  # characters held apart at most


def _hold_apart(texts: Iterable[str], fraction: float, held: list[str]) -> Iterable[str]:
    """``texts`` less a ``fraction`` of them, which goes to ``held``.

    A long text (a chunk of a file) gives up its tail, from a newline that a letter follows;
    short texts (documents) are held apart whole, every n-th (n = 1/fraction).
    ``["a", "b", "c", "d"]`` at 0.25 -> yields a, b, c; held gets ["d"].
    """
    every = max(2, round(1 / fraction))
    seen = held_chars = 0
    for text in texts:
        seen += 1
        if held_chars >= _HOLDOUT_LIMIT:
            yield text
        elif len(text) >= 1 << 11:
            at = safe_cut(text[: int(len(text) * (1 - fraction))])
            if at and len(text) - at <= 2 * fraction * len(text):
                held.append(text[at:])
                held_chars += len(text) - at
                yield text[:at]
            else:  # no place to cut near the end: keep it all for training
                yield text
        elif seen % every == 0:
            held.append(text)
            held_chars += len(text)
        else:
            yield text


def _check_arguments(vocab_size: int, specials: list[str], min_frequency: int) -> None:
    if not isinstance(vocab_size, int) or vocab_size < 256 + len(specials):
        raise ValueError(
            f"vocab_size={vocab_size!r} is too small: it counts the 256 byte tokens and the "
            f"{len(specials)} special tokens, so it must be at least {256 + len(specials)}"
        )
    seen = set()
    for token in specials:
        if not isinstance(token, str) or not token:
            raise ValueError(f"special token {token!r} must be a non-empty string")
        if token in seen:
            raise ValueError(f"special token {token!r} is given twice")
        seen.add(token)
    if min_frequency < 1:
        raise ValueError(f"min_frequency must be at least 1, got {min_frequency}")


def _is_file(item) -> bool:
    if isinstance(item, os.PathLike):
        return True
    if not isinstance(item, str) or len(item) > 4096 or "\n" in item:
        return False
    try:
        return os.path.isfile(item)
    except (OSError, ValueError):
        return False


def _as_paths(source) -> list[Path] | None:
    """The files of ``source`` when it names files (checked to exist), else None.

    A str or path alone is a file name; a list is of file names when every item is a path
    object or the name of an existing file, and of texts otherwise.
    """
    if isinstance(source, (str, os.PathLike)):
        items = [source]
    elif isinstance(source, (list, tuple)) and source and all(_is_file(s) for s in source):
        items = list(source)
    else:
        return None
    paths = [Path(s) for s in items]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ValueError(f"no such file: {missing[0][:200]}")
    return paths
