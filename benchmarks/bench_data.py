"""Corpus cleaning: bpe.data against datatrove and datasketch, in the same run.

    python benchmarks/bench_data.py                       # the shared corpora, 2 workers
    python benchmarks/bench_data.py --downstream          # and the effect on a vocabulary and an LM

The corpus: the shared corpora (``../shared/corpus``) cut into documents (a KJV chapter; a
debref page cut into pieces of about 4 KB at blank lines), a tenth of them held apart as
clean text for the downstream figures, and into the rest are planted

* exact copies (10%, with their spaces doubled here and there: equal after normalisation),
* near copies (15%): 1-10% of the words replaced, a third of them also given a header line,
* junk (5%): symbol spam, bullet lists, ellipsis teasers, lorem ipsum, number tables,
  repeated lines, and text with no stop words.

Measured, each tool on the same JSONL file:

1. **Dedup alone** (filters off): recall of the planted copies (exact and near, and near by
   how much was edited), precision (planted copies among what was removed), MB/s.
   bpe: MinHash 32 bands x 4 rows on word 5-grams. datatrove: its MinHash stages 1-4
   (14 x 8, 5-grams). datasketch: ``MinHashLSH(threshold=0.7, num_perm=128)`` over the
   same word 5-grams, each document queried against those before it.
2. **Filters alone**: junk dropped, and clean originals dropped, by bpe's rules and by
   datatrove's Gopher quality + repetition filters.
3. **The whole pipeline** (bpe data clean; datatrove: filters then MinHash): MB/s.
4. With ``--downstream``: a vocabulary trained on the raw and on bpe's cleaned corpus;
   bytes per token on the held-apart text, and the numpy GPT's bits per byte on it after
   the same number of steps on each.

Each tool runs ``--repeats`` times, alternating; the median time is reported.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent.parent / "shared" / "corpus"
XML_HEADER = '<?xml version="1.0" encoding="UTF-8" standalone="no"?>'

# ----------------------------------------------------------------------------------------
# The corpus


def originals() -> list[str]:
    docs = []
    chapters: dict[str, list[str]] = {}
    for line in (CORPUS / "kjv.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"(\w+?\d+):", line)
        if m:
            chapters.setdefault(m.group(1), []).append(line)
    docs += ["\n".join(v) + "\n" for v in chapters.values()]
    for name in ("debref.en.txt", "debref.zh-cn.txt"):
        text = (CORPUS / name).read_text(encoding="utf-8", errors="replace")
        for page in text.split(XML_HEADER):
            buf = ""
            for para in page.split("\n\n"):
                buf += para + "\n\n"
                if len(buf) >= 4000:
                    docs.append(buf)
                    buf = ""
            if buf.strip():
                docs.append(buf)
    return docs


_FILLER = ["lo", "behold", "verily", "indeed", "yea", "thus"]


def near_copy(doc: str, rate: float, rng: random.Random) -> str:
    words = doc.split(" ")
    if len(words) < 20:  # unspaced text: replace characters instead
        chars = list(doc)
        for _ in range(max(1, int(len(chars) * rate))):
            chars[rng.randrange(len(chars))] = rng.choice("的是在了和有")
        return "".join(chars)
    for _ in range(max(1, int(len(words) * rate))):
        words[rng.randrange(len(words))] = rng.choice(_FILLER)
    return " ".join(words)


def junk(k: int, rng: random.Random, clean: list[str]) -> str:
    kind = k % 7
    if kind == 0:
        return " ".join(rng.choice(["#deal", "#win", "...", "#free", "click"]) for _ in range(200))
    if kind == 1:
        return "\n".join(f"• item {rng.randrange(10**6)} best price" for _ in range(80))
    if kind == 2:
        return "\n".join(f"You will not believe what happened next {i}..." for i in range(60))
    if kind == 3:
        return ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor. " * 20
                + rng.choice(clean)[:500])
    if kind == 4:
        return "\n".join(" ".join(str(rng.randrange(10**6)) for _ in range(10)) for _ in range(60))
    if kind == 5:
        return "Buy now and save big on every order today!\n" * 70
    return " ".join(f"Product{rng.randrange(999)} SKU{rng.randrange(99999)} Widget Gadget" for _ in range(80))


def build(seed: int, folder: Path) -> tuple[Path, list[dict], list[str]]:
    rng = random.Random(seed)
    docs = originals()
    rng.shuffle(docs)
    n_held = len(docs) // 10
    held, docs = docs[:n_held], docs[n_held:]
    rows = [{"id": f"o{i}", "kind": "original", "text": t} for i, t in enumerate(docs)]
    planted = []
    for j in range(len(docs) // 10):
        i = rng.randrange(len(docs))
        planted.append({"id": f"e{j}", "kind": "exact", "of": f"o{i}",
                        "text": docs[i].replace(". ", ".  ", 3)})
    for j in range(len(docs) * 15 // 100):
        i = rng.randrange(len(docs))
        rate = rng.uniform(0.01, 0.10)
        text = near_copy(docs[i], rate, rng)
        if j % 3 == 0:
            text = f"Mirrored from archive {rng.randrange(10**6)}, retrieved {rng.randrange(1990, 2025)}\n" + text
        planted.append({"id": f"n{j}", "kind": "near", "of": f"o{i}", "rate": round(rate, 4), "text": text})
    for j in range(len(docs) // 20):
        planted.append({"id": f"j{j}", "kind": "junk", "text": junk(j, rng, docs)})
    rng.shuffle(planted)
    rows += planted  # copies after their originals: the original is the one to keep
    path = folder / "corpus.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path, rows, held


# ----------------------------------------------------------------------------------------
# The tools: each returns (seconds, ids kept)


def run_bpe(path: Path, out: Path, workers: int, dedup: bool, filters: bool) -> tuple[float, set[str]]:
    from bpe import data

    cfg = data.CleanConfig(workers=workers, exact=dedup, near=dedup, boilerplate=filters,
                           quality=data.QualityConfig() if filters else None)
    t = time.perf_counter()
    data.clean([path], out / "bpe.jsonl", cfg)
    seconds = time.perf_counter() - t
    with open(out / "bpe.jsonl", encoding="utf-8") as f:
        return seconds, {json.loads(line)["id"] for line in f}


def run_datatrove(path: Path, out: Path, workers: int, dedup: bool, filters: bool) -> tuple[float, set[str]]:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import (MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter,
                                          MinhashDedupSignature)
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.filters import GopherQualityFilter, GopherRepetitionFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    work = out / "datatrove"
    shutil.rmtree(work, ignore_errors=True)
    src = work / "src"
    src.mkdir(parents=True)
    # datatrove reads a folder and splits its files among tasks: one file per worker
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    step = -(-len(lines) // workers)
    for w in range(workers):
        (src / f"part{w:03d}.jsonl").write_text("".join(lines[w * step:(w + 1) * step]), encoding="utf-8")

    def ex(pipeline, name, tasks=workers):
        return LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=workers,
                                     logging_dir=str(work / "logs" / name))

    t = time.perf_counter()
    current = src
    if filters:
        ex([JsonlReader(str(current)), GopherRepetitionFilter(), GopherQualityFilter(),
            JsonlWriter(str(work / "filtered"), compression=None)], "filter").run()
        current = work / "filtered"
    final = current
    if dedup:
        cfg = MinhashConfig()
        ex([JsonlReader(str(current)), MinhashDedupSignature(str(work / "sigs"), config=cfg)], "sig").run()
        ex([MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=cfg)], "buckets",
           tasks=cfg.num_buckets).run()
        ex([MinhashDedupCluster(str(work / "buckets"), str(work / "remove"), config=cfg)], "cluster", tasks=1).run()
        ex([JsonlReader(str(current)), MinhashDedupFilter(str(work / "remove")),
            JsonlWriter(str(work / "dedup"), compression=None)], "filter-dups").run()
        final = work / "dedup"
    seconds = time.perf_counter() - t
    kept = set()
    for f in sorted(Path(final).glob("*.jsonl")):
        for line in f.read_text(encoding="utf-8").splitlines():
            kept.add(json.loads(line)["id"])
    return seconds, kept


def run_datasketch(path: Path, out: Path, workers: int, dedup: bool, filters: bool) -> tuple[float, set[str]]:
    from datasketch import MinHash, MinHashLSH

    from bpe.data import text as _text

    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    t = time.perf_counter()
    lsh = MinHashLSH(threshold=0.7, num_perm=128)
    kept = set()
    for r in rows:
        folded = _text.normalize(r["text"]).casefold()
        ws = _text.words(folded)
        n = 5
        grams = {" ".join(ws[i:i + n]) for i in range(max(1, len(ws) - n + 1))}
        m = MinHash(num_perm=128)
        m.update_batch([g.encode() for g in grams])
        if not lsh.query(m):
            kept.add(r["id"])
        lsh.insert(r["id"], m)
    return time.perf_counter() - t, kept


TOOLS = {"bpe": run_bpe, "datatrove": run_datatrove, "datasketch": run_datasketch}


def available(name: str) -> bool:
    import importlib.util

    return name == "bpe" or importlib.util.find_spec(name) is not None


# ----------------------------------------------------------------------------------------
# Figures


def dedup_figures(rows: list[dict], kept: set[str]) -> dict:
    copies = [r for r in rows if r["kind"] in ("exact", "near")]
    # junk is for the filters: identical junk pages are duplicates too, but not planted ones
    removed = {r["id"] for r in rows if r["kind"] != "junk"} - kept
    hit = [r for r in copies if r["id"] not in kept]
    near = [r for r in copies if r["kind"] == "near"]
    bins = {"1-4%": (0.0, 0.04), "4-7%": (0.04, 0.07), "7-10%": (0.07, 1.0)}
    by_rate = {}
    for label, (lo, hi) in bins.items():
        group = [r for r in near if lo <= r["rate"] < hi]
        by_rate[label] = round(sum(r["id"] not in kept for r in group) / max(len(group), 1), 3)
    originals_removed = sum(1 for r in rows if r["kind"] == "original" and r["id"] in removed)
    return {"recall": round(len(hit) / len(copies), 3),
            "recall_exact": round(sum(r["kind"] == "exact" for r in hit) / max(1, sum(r["kind"] == "exact" for r in copies)), 3),
            "recall_near": round(sum(r["kind"] == "near" for r in hit) / max(1, len(near)), 3),
            "recall_near_by_edit": by_rate,
            "precision": round(len(hit) / max(len(removed), 1), 3),
            "originals_removed": originals_removed}


def filter_figures(rows: list[dict], kept: set[str]) -> dict:
    junk = [r for r in rows if r["kind"] == "junk"]
    orig = [r for r in rows if r["kind"] == "original"]
    return {"junk_dropped": round(sum(r["id"] not in kept for r in junk) / len(junk), 3),
            "originals_dropped": round(sum(r["id"] not in kept for r in orig) / len(orig), 3)}


def timed(tools, path, out, workers, repeats, dedup, filters):
    times = {t: [] for t in tools}
    kept = {}
    for _ in range(repeats):
        for t in tools:  # alternate the tools in each round
            seconds, kept[t] = TOOLS[t](path, out, workers, dedup, filters)
            times[t].append(seconds)
    return {t: statistics.median(v) for t, v in times.items()}, kept


def downstream(rows: list[dict], clean_path: Path, held: list[str], out: Path, vocab: int, steps: int) -> dict:
    import numpy as np

    import bpe
    from bpe import lm
    from bpe.lm import data as lm_data
    from bpe.lm import model

    raw = [r["text"] for r in rows]
    with open(clean_path, encoding="utf-8") as f:
        clean = [json.loads(line)["text"] for line in f]
    held_text = "\n".join(held)
    result = {}
    for name, docs in (("raw", raw), ("cleaned", clean)):
        enc = bpe.train(docs, vocab_size=vocab, pattern="o200k", progress=False)
        held_ids = enc.encode_ordinary(held_text)
        entry = {"documents": len(docs), "bytes": sum(len(d.encode()) for d in docs),
                 "held_bytes_per_token": round(len(held_text.encode()) / len(held_ids), 4)}
        if steps:
            corpus = out / f"{name}.txt"
            corpus.write_text("\n".join(docs), encoding="utf-8")
            gpt = lm.GPTConfig(vocab_size=enc.n_vocab, ctx=64, d_model=64, n_layer=2, n_head=2)
            tokens = lm_data.prepare(corpus, enc, out / name, name)
            run = lm.train(tokens, gpt, lm.TrainConfig(steps=steps, batch=16, seed=0),
                           lm_data.token_byte_lengths(enc), progress=False)
            held_tokens = np.asarray(held_ids, dtype=np.int64)
            figures = lm.evaluate(run["params_arrays"], gpt, held_tokens, lm_data.token_byte_lengths(enc),
                                  max_tokens=1 << 16)
            entry.update(lm_steps=steps, held_bits_per_byte=round(figures["val_bpb"], 4),
                         params=model.n_params(run["params_arrays"]))
        result[name] = entry
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--workers", type=int, default=2, help="processes for bpe and datatrove (default 2)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tools", default="bpe,datatrove,datasketch")
    ap.add_argument("--downstream", action="store_true", help="also train a vocabulary and an LM on raw and cleaned")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--lm-steps", type=int, default=300)
    ap.add_argument("--json", metavar="OUT", help="also write the figures as JSON")
    args = ap.parse_args()
    if not CORPUS.is_dir():
        sys.exit(f"bench_data: no shared corpus at {CORPUS}")
    tools = [t for t in args.tools.split(",") if available(t)]
    missing = [t for t in args.tools.split(",") if t not in tools]
    if missing:
        print(f"not installed, left out: {', '.join(missing)} (pip install '.[bench]')", file=sys.stderr)
    out = Path(tempfile.mkdtemp(prefix="bench_data-"))
    path, rows, held = build(args.seed, out)
    mb = path.stat().st_size / 1e6
    kinds = {k: sum(r["kind"] == k for r in rows) for k in ("original", "exact", "near", "junk")}
    print(f"corpus: {mb:.1f} MB, {len(rows):,} documents {kinds}; {len(held)} held apart; "
          f"{args.workers} workers, median of {args.repeats}")
    report = {"corpus_mb": round(mb, 2), "documents": kinds, "workers": args.workers}

    times, kept = timed(tools, path, out, args.workers, args.repeats, dedup=True, filters=False)
    print("\n1. dedup alone")
    print(f"{'tool':<11} {'MB/s':>7} {'recall':>7} {'exact':>6} {'near':>6} {'near by edit 1-4/4-7/7-10%':>28} "
          f"{'precision':>9} {'originals removed':>17}")
    report["dedup"] = {}
    for t in tools:
        f = dedup_figures(rows, kept[t])
        f["mb_per_s"] = round(mb / times[t], 2)
        report["dedup"][t] = f
        e = f["recall_near_by_edit"]
        print(f"{t:<11} {f['mb_per_s']:>7.2f} {f['recall']:>7.3f} {f['recall_exact']:>6.3f} {f['recall_near']:>6.3f} "
              f"{e['1-4%']:>10.3f} {e['4-7%']:>8.3f} {e['7-10%']:>8.3f} {f['precision']:>9.3f} {f['originals_removed']:>17}")

    ftools = [t for t in tools if t in ("bpe", "datatrove")]
    times, kept = timed(ftools, path, out, args.workers, args.repeats, dedup=False, filters=True)
    print("\n2. filters alone")
    report["filters"] = {}
    for t in ftools:
        f = filter_figures(rows, kept[t])
        f["mb_per_s"] = round(mb / times[t], 2)
        report["filters"][t] = f
        print(f"{t:<11} {f['mb_per_s']:>7.2f} MB/s   junk dropped {f['junk_dropped']:.3f}   "
              f"clean originals dropped {f['originals_dropped']:.3f}")

    times, kept = timed(ftools, path, out, args.workers, args.repeats, dedup=True, filters=True)
    print("\n3. the whole pipeline")
    report["pipeline"] = {}
    for t in ftools:
        report["pipeline"][t] = {"mb_per_s": round(mb / times[t], 2), "kept": len(kept[t])}
        print(f"{t:<11} {mb / times[t]:>7.2f} MB/s   {len(kept[t]):,} documents kept")
    if "bpe" in times and "datatrove" in times:
        print(f"bpe / datatrove: {times['datatrove'] / times['bpe']:.2f}x")

    if args.downstream:
        run_bpe(path, out, args.workers, True, True)
        report["downstream"] = downstream(rows, out / "bpe.jsonl", held, out, args.vocab_size, args.lm_steps)
        print(f"\n4. downstream (vocabulary {args.vocab_size}, o200k pattern; GPT {args.lm_steps} steps)")
        for name, e in report["downstream"].items():
            print(f"{name:<8} {e['documents']:>6,} documents {e['bytes'] / 1e6:>6.1f} MB   held-apart bytes/token "
                  f"{e['held_bytes_per_token']:.3f}" + (f"   bits/byte {e['held_bits_per_byte']:.3f}" if "held_bits_per_byte" in e else ""))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
