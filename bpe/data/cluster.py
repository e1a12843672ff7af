"""The cleaning of :mod:`bpe.data.cleaning` and the piece counting of ``bpe.train`` on Dask.

``pip install 'bpe-cy[dask]'``. Records are dicts holding the text in ``cfg.field``, in a
``dask.bag.Bag``; the result keeps every document that ``clean`` keeps, in the same order,
and the report has the same counts (a test holds the two to each other). Nothing gathers
the corpus on one machine; the client receives the keys of duplicated documents, the
boilerplate lines, the candidate pairs of near duplicates, the ids of what is dropped, and
counts (reductions):

1. exact duplicates: ``foldby`` over document keys (count and first id per key);
2. boilerplate: ``foldby`` over line keys of the documents left (count and first id);
3. verdicts per partition, as in the single-machine pipeline;
4. near duplicates: the band keys are the shuffle key (``groupby`` on (band, key)), each
   group gives its (first, other) pairs, and their components are found on the client;
5. the kept records, with boilerplate lines removed.

A document's id is ``partition * 2**32 + position``, so ids order documents as the bag does.

>>> from dask.distributed import Client, LocalCluster        # doctest: +SKIP
>>> import dask.bag as db
>>> with LocalCluster(n_workers=2) as cluster, Client(cluster):
...     kept, report = clean_bag(db.read_text("pages-*.jsonl").map(json.loads))
...     kept.map(json.dumps).to_textfiles("clean-*.jsonl")
...     counts = count_pieces_bag(kept.pluck("text"), pattern="o200k")
...     enc = bpe.train(counts, vocab_size=32768, pattern="o200k")
"""

from __future__ import annotations

import collections
import time

import numpy as np

from bpe.data import cleaning as _cleaning
from bpe.data import minhash as _minhash

_NO_ID = 1 << 62


def _tag(records, partition: int):
    return [(partition << 32 | i, r) for i, r in enumerate(records)]


def _first(acc, item):
    return acc[0] + 1, min(acc[1], item[1])


def _merge(a, b):
    return a[0] + b[0], min(a[1], b[1])


def clean_bag(bag, cfg: _cleaning.CleanConfig | None = None):
    """``(bag of kept records, report)``: :func:`bpe.data.clean` over a Dask bag of records."""
    import dask
    import dask.bag as db

    cfg = cfg or _cleaning.CleanConfig()
    start = time.perf_counter()
    field = cfg.field
    parts = bag.to_delayed()
    tagged = db.from_delayed([dask.delayed(_tag)(p, i) for i, p in enumerate(parts)]).persist()

    def text(item):
        value = item[1].get(field) if isinstance(item[1], dict) else None
        if not isinstance(value, str):
            raise ValueError(f"record {item[0] >> 32}:{item[0] & 0xFFFFFFFF} has no string field {field!r}")
        return value

    # 1. Exact duplicates: the first id of every key held by more than one document.
    first_of: dict = {}
    if cfg.exact:
        keyed = tagged.map(lambda item: (_cleaning.doc_key(text(item)), item[0]))
        groups = keyed.foldby(lambda kv: kv[0], _first, (0, _NO_ID), _merge, (0, _NO_ID))
        first_of = dict(groups.filter(lambda kv: kv[1][0] > 1).map(lambda kv: (kv[0], kv[1][1])).compute())

    def is_duplicate(item, first):
        if not first:
            return False
        k = _cleaning.doc_key(text(item))
        return k in first and first[k] != item[0]

    duplicates = tagged.filter(lambda item: is_duplicate(item, first_of))
    exact_ids = set(duplicates.map(lambda item: item[0]).compute()) if first_of else set()
    rest = tagged.filter(lambda item: item[0] not in exact_ids)

    # 2. Boilerplate lines: those in at least boilerplate_min_docs documents, with their first.
    table = (np.zeros(0, np.uint64), np.zeros(0, np.int64))
    if cfg.boilerplate:
        pairs = rest.map(lambda item: [(int(k), item[0]) for k in _cleaning.line_keys(text(item), cfg)]).flatten()
        hot = pairs.foldby(lambda kv: kv[0], _first, (0, _NO_ID), _merge, (0, _NO_ID))
        lines = sorted(hot.filter(lambda kv: kv[1][0] >= cfg.boilerplate_min_docs)
                       .map(lambda kv: (kv[0], kv[1][1])).compute())
        if lines:
            table = (np.array([k for k, _ in lines], dtype=np.uint64), np.array([d for _, d in lines], dtype=np.int64))
    table_d = dask.delayed(table)

    # 3. Verdicts
    def verdict_part(items, tbl):
        ids = [i for i, _ in items]
        return [(i, *v) for i, v in zip(ids, _cleaning.verdicts(ids, [text(it) for it in items], tbl, cfg))]

    verdict_parts = [dask.delayed(verdict_part)(p, table_d) for p in rest.to_delayed()]
    verdicts = db.from_delayed(verdict_parts).persist()
    boilerplate_lines = int(verdicts.pluck(1).sum().compute())
    filtered = collections.Counter(dict(verdicts.pluck(2).filter(lambda r: r is not None).frequencies().compute()))

    # 4. Near duplicates: band keys as the shuffle key.
    near: dict = {}
    if cfg.near:
        def band_items(v):
            return [] if v[3] is None else [((b, int(k)), v[0]) for b, k in enumerate(v[3])]

        def group_edges(group):
            ids = sorted(i for _, i in group[1])
            return [(ids[0], other) for other in ids[1:]]

        edges = (verdicts.map(band_items).flatten().groupby(lambda kv: kv[0], shuffle="tasks")
                 .map(group_edges).flatten().compute())
        near = {i: r for i, r in _minhash.components(edges).items() if i != r}
    dropped = {v[0] for v in verdicts.filter(lambda v: v[2] is not None).compute()} | set(near)

    # 5. The kept records
    def keep_part(items, tbl):
        out = []
        for i, record in items:
            if i in exact_ids or i in dropped:
                continue
            cleaned = _cleaning.strip_boilerplate(i, text((i, record)), tbl, cfg)[0] if cfg.boilerplate else record[field]
            out.append(dict(record, **{field: cleaned}))
        return out

    kept = db.from_delayed([dask.delayed(keep_part)(p, table_d) for p in tagged.to_delayed()]).persist()
    report = _cleaning.empty_report()
    report.update(documents_in=int(tagged.count().compute()), documents_out=int(kept.count().compute()),
                  exact_duplicates=len(exact_ids), near_duplicates=len(near), boilerplate_lines=boilerplate_lines,
                  filtered=dict(sorted(filtered.items())),
                  bytes_in=int(tagged.map(lambda item: len(text(item).encode("utf-8", "surrogatepass"))).sum().compute()),
                  bytes_out=int(kept.map(lambda r: len(r[field].encode("utf-8", "surrogatepass"))).sum().compute()),
                  seconds=round(time.perf_counter() - start, 3))
    return kept, report


def count_pieces_bag(texts, *, pattern: str = "o200k") -> collections.Counter:
    """``bpe.count_pieces`` per partition of a bag of strings, summed: ``bpe.train`` takes it."""
    from bpe.train import count_pieces

    def count(part):
        return [dict(count_pieces(list(part), pattern=pattern, num_threads=1))]

    def add(a, b):
        a = collections.Counter(a)
        a.update(b)
        return a

    return collections.Counter(texts.map_partitions(count).fold(add, add, initial=collections.Counter()).compute())
