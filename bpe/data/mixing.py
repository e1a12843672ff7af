"""``bpe data mix``: documents sampled by domain to target weights and a token budget.

A document's domain is the value of a field (``by``) or, by default, the input file it
came from (its name without suffixes: ``web.jsonl.gz`` is ``web``). Domain ``d`` gets
``weight_d * budget`` tokens, counted with the chosen tokenizer:

1. every document's tokens are counted (one pass over the inputs);
2. each domain's documents are shuffled (``seed``) and taken in that order until its target
   is reached, the document that crosses it included; a domain smaller than its target is
   taken whole as many times as it needs (each epoch shuffled anew), at most
   ``max_epochs``, and the shortfall is reported;
3. the chosen documents are read again and written in one shuffled order.

The chosen documents are held in memory while they are shuffled (about the budget times
the bytes per token).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from bpe._files import open_atomic
from bpe.data import read as _read
from bpe.data.cleaning import write_row


def domain_of_path(path: str | os.PathLike) -> str:
    """``corpus/web.jsonl.gz`` -> ``web``."""
    return Path(path).name.split(".")[0]


def parse_weights(spec: str) -> dict[str, float]:
    """``"web=0.7,code=0.3"`` -> ``{"web": 0.7, "code": 0.3}`` (a ValueError naming a bad part)."""
    out: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, eq, value = part.partition("=")
        try:
            w = float(value) if eq else float("nan")
        except ValueError:
            w = float("nan")
        if not name or not w >= 0 or w == float("inf"):
            raise ValueError(f"bad weight {part!r}: write DOMAIN=WEIGHT, a weight >= 0")
        if name in out:
            raise ValueError(f"domain {name!r} is weighted twice")
        out[name] = w
    if not out or sum(out.values()) <= 0:
        raise ValueError(f"weights {spec!r} name no domain with a positive weight")
    return out


def mix(inputs: Iterable[str | os.PathLike], output: str | os.PathLike, *, weights: dict[str, float],
        budget: int, enc, by: str | None = None, field: str = "text", split_on: str | None = None,
        seed: int = 0, max_epochs: int = 4, num_threads: int = 8) -> dict:
    """Write a mix of ``budget`` tokens to ``output`` (JSONL); the report (see the module)."""
    if budget < 1:
        raise ValueError(f"the token budget must be positive, not {budget}")
    if max_epochs < 1:
        raise ValueError(f"max_epochs must be at least 1, not {max_epochs}")
    paths = _read.check_inputs([os.fspath(p) for p in inputs])
    start = time.perf_counter()
    total_w = sum(weights.values())
    share = {d: w / total_w for d, w in weights.items()}
    names: dict[str, int] = {}

    def documents():
        for i, doc in enumerate(_read.read_documents(paths, field=field, split_on=split_on)):
            if by is None:
                domain = domain_of_path(doc.source)
            elif by in doc.record and isinstance(doc.record[by], (str, int)):
                domain = str(doc.record[by])
            else:
                raise ValueError(f"{doc.source}: document {i} has no string field {by!r} to take "
                                 "its domain from (--by)")
            yield i, domain, doc

    # 1. Count
    dom, tokens = [], []
    batch: list[str] = []

    def flush():
        tokens.extend(enc.count_batch(batch, num_threads=num_threads, disallowed_special=()))
        batch.clear()

    for _i, domain, doc in documents():
        dom.append(names.setdefault(domain, len(names)))
        batch.append(doc.text)
        if len(batch) >= 1024:
            flush()
    flush()
    missing = sorted(set(share) - set(names))
    if missing:
        raise ValueError(f"no documents for domain(s) {', '.join(missing)}; the inputs hold "
                         f"{', '.join(sorted(names)) or 'no documents'}")
    dom_a = np.asarray(dom, dtype=np.int64)
    tok_a = np.asarray(tokens, dtype=np.int64)

    # 2. Choose
    rng = np.random.default_rng(seed)
    copies = np.zeros(len(dom_a), dtype=np.int64)
    domains = {}
    for name, d in sorted(names.items()):
        members = np.flatnonzero(dom_a == d)
        available = int(tok_a[members].sum())
        target = int(round(share.get(name, 0.0) * budget))
        taken, epochs = 0, 0
        while taken < target and available > 0 and epochs < max_epochs:
            order = rng.permutation(members)
            need = target - taken
            cum = np.cumsum(tok_a[order])
            if cum[-1] <= need:
                chosen = order
            else:
                chosen = order[: int(np.searchsorted(cum, need)) + 1]
            copies[chosen] += 1
            taken += int(tok_a[chosen].sum())
            epochs += 1
        domains[name] = {"weight": round(share.get(name, 0.0), 6), "target_tokens": target,
                         "tokens": taken, "documents": int(copies[members].sum()),
                         "available_tokens": available, "epochs": epochs,
                         "shortfall_tokens": max(0, target - taken)}

    # 3. Write
    chosen_rows = []
    for i, _domain, doc in documents():
        if copies[i]:
            chosen_rows.append(doc.output(doc.text, field))
    repeats = copies[copies > 0]
    order = rng.permutation(np.repeat(np.arange(len(chosen_rows)), repeats))
    with open_atomic(output, "w", encoding="utf-8") as f:
        for j in order.tolist():
            write_row(f, chosen_rows[j])
    return {"documents_in": len(dom_a), "documents_out": int(copies.sum()),
            "tokens_out": int((copies * tok_a).sum()), "budget": budget, "tokenizer": enc.name,
            "domains": domains, "seconds": round(time.perf_counter() - start, 3)}
