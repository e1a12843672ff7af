"""Corpus preparation (bpe.data): reading, duplicates, boilerplate, quality rules, mixing, Dask."""

from __future__ import annotations

import collections
import doctest
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

import numpy as np
import pytest

import bpe
from bpe import data
from bpe.data import minhash, mixing, quality, read, text

# ----------------------------------------------------------------------------------------
# Fixtures: prose made of random English sentences, which passes every quality rule and
# shares almost no 5-gram between documents.

_WORDS = ("the of and to in that with for is was have be it on as by at from this not or "
          "river stone garden window letter morning silver quiet market harbor lantern valley "
          "teacher doctor painter farmer sailor builder merchant singer gather carry follow "
          "remember answer borrow wander listen mend polish kindle narrow gentle bright hollow "
          "ancient early distant simple careful steady eager humble golden").split()


def prose(seed: int, n_words: int = 160) -> str:
    rng = random.Random(seed)
    sentences, count = [], 0
    while count < n_words:
        k = rng.randint(6, 14)
        words = [rng.choice(_WORDS) for _ in range(k)]
        sentences.append(" ".join(words).capitalize() + ".")
        count += k
    lines = [" ".join(sentences[i:i + 3]) for i in range(0, len(sentences), 3)]
    return "\n".join(lines) + "\n"


def edit(doc: str, rate: float, seed: int) -> str:
    """``doc`` with about ``rate`` of its words replaced."""
    rng = random.Random(seed)
    words = doc.split(" ")
    for _ in range(max(1, int(len(words) * rate))):
        words[rng.randrange(len(words))] = rng.choice(["lo", "behold", "verily", "yea"])
    return " ".join(words)


def write_jsonl(path, rows) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return str(path)


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def run_clean(tmp_path, rows, cfg=None, **kw):
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    report = data.clean([src], tmp_path / "out.jsonl", cfg or data.CleanConfig(workers=1), **kw)
    return report, read_jsonl(tmp_path / "out.jsonl")


# ----------------------------------------------------------------------------------------
# The doctests of the modules are examples users copy: hold them true.


@pytest.mark.parametrize("module", [text, minhash, quality, read])
def test_module_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


# ----------------------------------------------------------------------------------------
# text


def test_normal_form_is_nfc_with_whitespace_runs_made_one_space():
    decomposed = unicodedata.normalize("NFD", "Café  crème\t\nbrûlée ")
    assert text.normalize(decomposed) == "Café crème brûlée"
    assert text.normalize("A\u3000B\u00a0C") == "A B C"  # every str.isspace character


def test_words_split_unspaced_scripts_into_characters():
    assert text.words("GPU模型 runs 速い") == ["GPU", "模", "型", "runs", "速", "い"]
    assert text.words("well-known isn't") == ["well-known", "isn't"]


@pytest.mark.parametrize("sample,lang", [
    ("The river and the stone were in the garden with the farmer.", "en"),
    ("Der Fluss und die Steine sind nicht mit dem Garten von der Stadt.", "de"),
    ("Le fleuve et les pierres dans le jardin pour une journée.", "fr"),
    ("El río y las piedras del jardín para una tarde con el sol.", "es"),
    ("这是一个关于系统的文档，我们在这里说明它的用法。", "zh"),
    ("これは日本語の文書です。システムの使い方を説明します。", "ja"),
    ("Это документ о системе, и в нём что нужно для работы.", "ru"),
    ("12345 67890", "unknown"),
])
def test_language_guess(sample, lang):
    assert text.language(sample) == lang


# ----------------------------------------------------------------------------------------
# read


def test_jsonl_fields_pass_through_and_order_is_kept(tmp_path):
    rows = [{"id": f"d{i}", "url": f"https://x/{i}", "text": prose(i)} for i in range(5)]
    report, out = run_clean(tmp_path, rows)
    assert [r["id"] for r in out] == [f"d{i}" for i in range(5)]
    assert out[2] == rows[2]
    assert report["documents_in"] == report["documents_out"] == 5


@pytest.mark.parametrize("line,message", [
    ("{not json", "in.jsonl:2: not a JSON object"),
    ("[1, 2]", "in.jsonl:2: a JSON list, not an object"),
    ('{"body": "x"}', "in.jsonl:2: no field 'text' (it has 'body'"),
    ('{"text": 5}', "in.jsonl:2: field 'text' holds a JSON int, not a string"),
])
def test_bad_jsonl_names_file_and_line(tmp_path, line, message):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"text": "fine"}) + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as e:
        list(read.read_documents([path]))
    assert message in str(e.value)


def test_text_files_split_on_separator_lines_and_blank_lines(tmp_path):
    p = tmp_path / "fortunes"
    p.write_text("one\n%\n%\ntwo\nlines\n%\n  \n", encoding="utf-8")
    docs = list(read.read_documents([p], split_on="%"))
    assert [d.text for d in docs] == ["one\n", "two\nlines\n"]
    assert [d.record for d in docs] == [{"source": str(p), "part": 0}, {"source": str(p), "part": 1}]
    q = tmp_path / "paras.txt"
    q.write_text("a\nb\n\n\nc\n\nd", encoding="utf-8")
    assert [d.text for d in read.read_documents([q], split_on="")] == ["a\nb\n", "c\n", "d"]
    assert [d.text for d in read.read_documents([q])] == ["a\nb\n\n\nc\n\nd"]


def test_gzip_and_zstd_inputs_read_as_their_plain_versions(tmp_path):
    zstandard = pytest.importorskip("zstandard", reason="zstandard is in the test extras")
    rows = [{"text": prose(i)} for i in range(3)]
    plain = write_jsonl(tmp_path / "a.jsonl", rows)
    raw = open(plain, "rb").read()
    (tmp_path / "a.jsonl.gz").write_bytes(gzip.compress(raw))
    (tmp_path / "a.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(raw))
    (tmp_path / "b.txt.gz").write_bytes(gzip.compress(rows[0]["text"].encode()))
    want = [d.text for d in read.read_documents([plain])]
    assert [d.text for d in read.read_documents([tmp_path / "a.jsonl.gz"])] == want
    assert [d.text for d in read.read_documents([tmp_path / "a.jsonl.zst"])] == want
    assert [d.text for d in read.read_documents([tmp_path / "b.txt.gz"])] == want[:1]


def test_html_text_is_extracted_without_the_markup(tmp_path):
    pytest.importorskip("trafilatura", reason="trafilatura is in the test extras")
    body = "".join(f"<p>{line}</p>" for line in prose(3).splitlines())
    page = (f"<html><head><title>T</title><script>var x = 1;</script></head><body>"
            f"<nav><a href='/'>Home</a></nav><article>{body}</article></body></html>")
    (tmp_path / "page.html").write_text(page, encoding="utf-8")
    (doc,) = read.read_documents([tmp_path / "page.html"])
    assert "var x" not in doc.text and "<p>" not in doc.text
    assert prose(3).splitlines()[0][:40] in doc.text


def test_invalid_utf8_becomes_replacement_characters(tmp_path):
    p = tmp_path / "bad.txt"
    p.write_bytes(b"ok \xff\xfe done")
    (doc,) = read.read_documents([p])
    assert doc.text == "ok \ufffd\ufffd done"


# ----------------------------------------------------------------------------------------
# exact duplicates and boilerplate


def test_exact_duplicates_after_normalisation_are_removed_and_counted(tmp_path):
    a, b = prose(1), prose(2)
    variant = unicodedata.normalize("NFD", a).replace(" ", "  \t")  # same after NFC + spaces
    rows = [{"id": 0, "text": a}, {"id": 1, "text": b}, {"id": 2, "text": variant}, {"id": 3, "text": a}]
    report, out = run_clean(tmp_path, rows, rejected=tmp_path / "rej")
    assert [r["id"] for r in out] == [0, 1]
    assert report["exact_duplicates"] == 2
    rejected = read_jsonl(tmp_path / "rej" / "exact_duplicate.jsonl")
    assert [(r["id"], r["_duplicate_of"], r["_reason"]) for r in rejected] == [
        (2, 0, "exact_duplicate"), (3, 0, "exact_duplicate")]
    report, out = run_clean(tmp_path, rows, data.CleanConfig(workers=1, exact=False, near=False,
                                                             boilerplate=False))
    assert len(out) == 4 and report["exact_duplicates"] == 0


def test_boilerplate_lines_leave_every_document_but_the_first(tmp_path):
    footer = "Copyright 2024 Example Corporation. All rights reserved."
    short = "Back to top"
    rows = [{"id": i, "text": prose(10 + i) + f"{footer}\n{short}\n"} for i in range(5)]
    rows.append({"id": 5, "text": prose(20) + "A line of thirty characters or more, once.\n"})
    report, out = run_clean(tmp_path, rows)
    assert report["boilerplate_lines"] == 4
    assert footer in out[0]["text"]
    for r in out[1:5]:
        assert footer not in r["text"] and short in r["text"]  # short lines are not counted
        assert r["text"] == rows[r["id"]]["text"].replace(footer + "\n", "")
    assert out[5]["text"] == rows[5]["text"]
    assert report["bytes_out"] == sum(len(r["text"].encode()) for r in out)


def test_boilerplate_needs_min_docs(tmp_path):
    footer = "Copyright 2024 Example Corporation. All rights reserved."
    rows = [{"text": prose(i) + footer + "\n"} for i in range(2)]
    report, _ = run_clean(tmp_path, rows)
    assert report["boilerplate_lines"] == 0
    report, _ = run_clean(tmp_path, rows, data.CleanConfig(workers=1, boilerplate_min_docs=2))
    assert report["boilerplate_lines"] == 1


# ----------------------------------------------------------------------------------------
# near duplicates


def test_jaccard_estimates_agree_with_datasketch():
    datasketch = pytest.importorskip("datasketch", reason="datasketch is in the test extras (Python 3.10+)")
    rng = random.Random(7)
    hasher = data.MinHasher(num_perm=256, bands=32)
    for trial in range(12):
        base = [f"s{rng.randrange(10**9)}" for _ in range(400)]
        keep = rng.randint(40, 400)
        other = base[:keep] + [f"t{rng.randrange(10**9)}" for _ in range(400 - keep)]
        a, b = set(base), set(other)
        true = len(a & b) / len(a | b)
        ours = data.estimate_jaccard(hasher.signature_of(hasher.hash_shingles(sorted(a), 1)),
                                     hasher.signature_of(hasher.hash_shingles(sorted(b), 1)))
        ma, mb = datasketch.MinHash(num_perm=256, seed=trial), datasketch.MinHash(num_perm=256, seed=trial)
        for s in a:
            ma.update(s.encode())
        for s in b:
            mb.update(s.encode())
        theirs = ma.jaccard(mb)
        # Each estimate has a standard deviation of sqrt(J (1 - J) / 256) <= 0.031.
        assert abs(ours - true) < 0.1, (trial, ours, true)
        assert abs(theirs - true) < 0.1, (trial, theirs, true)
        assert abs(ours - theirs) < 0.14, (trial, ours, theirs)


def test_signature_is_the_same_in_every_process():
    doc = prose(5)
    here = data.MinHasher().signature(doc).tolist()
    code = ("import json, sys; from bpe.data import MinHasher; "
            "print(json.dumps(MinHasher().signature(sys.stdin.read()).tolist()))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=doc.encode(), capture_output=True, env=env,
                         cwd=tempfile.gettempdir(), check=True).stdout
    assert json.loads(out) == here


def test_candidate_probability_is_the_banding_s_curve():
    assert minhash.candidate_probability(0.5, 16, 8) == pytest.approx(0.0605, abs=1e-3)
    assert minhash.candidate_probability(0.85, 16, 8) > 0.98


def test_planted_near_duplicates_are_found_and_distinct_documents_kept(tmp_path):
    originals = [prose(100 + i, 300) for i in range(40)]
    copies = [edit(originals[i], 0.02, i) for i in range(0, 40, 2)]
    rows = [{"id": f"o{i}", "text": t} for i, t in enumerate(originals)]
    rows += [{"id": f"c{i}", "text": t} for i, t in enumerate(copies)]
    report, out = run_clean(tmp_path, rows, rejected=tmp_path / "rej")
    kept = {r["id"] for r in out}
    assert {f"o{i}" for i in range(40)} <= kept           # no original lost
    assert report["near_duplicates"] == len(copies) == 20
    for r in read_jsonl(tmp_path / "rej" / "near_duplicate.jsonl"):
        assert r["_duplicate_of"] == 2 * int(r["id"][1:])  # each copy points at its original


def test_clusters_keep_the_first_document_of_each_component():
    keys = np.array([[5, 1], [6, 2], [5, 3], [7, 3], [8, 4]], dtype=np.uint64)
    assert data.clusters(keys).tolist() == [0, 1, 0, 0, 4]  # 0~2 by band 0, 2~3 by band 1
    assert data.clusters(keys, ids=np.array([9, 8, 7, 6, 5])).tolist() == [6, 8, 6, 6, 5]
    assert data.clusters(np.zeros((0, 4), np.uint64)).tolist() == []


def test_unspaced_scripts_use_character_shingles():
    zh = "系统管理员可以通过配置文件来修改服务的默认行为并记录所有变化以便日后检查" * 2
    h = data.MinHasher()
    assert len(h.shingle_hashes(zh)) > 30  # one "word" per character, not one per sentence
    near = zh.replace("配置", "设置", 1)
    assert data.estimate_jaccard(h.signature(zh), h.signature(near)) > 0.6


def test_bad_minhash_sizes_are_refused():
    with pytest.raises(ValueError, match="multiple of bands"):
        data.CleanConfig(num_perm=100, bands=16)
    with pytest.raises(ValueError, match="at least 2"):
        data.CleanConfig(boilerplate_min_docs=1)


# ----------------------------------------------------------------------------------------
# quality rules: for each, a document that fails it (and only by it, the rules before it
# passing) and the same document passing with the rule off.

_GOOD = prose(42, 200)
_FAILS = {
    "words": "Too short a text to be a page.",
    "mean_word_length": " ".join(["a"] * 80) + " the and with to of",
    "symbol_ratio": _GOOD + "\n" + " ".join(["#tag"] * 40),
    "bullet_lines": "\n".join(f"- {line}" for line in _GOOD.splitlines()),
    "ellipsis_lines": "\n".join(f"{line}..." for line in _GOOD.splitlines()),
    "alphabetic": _GOOD + " " + " ".join(str(i) for i in range(200)),
    "stop_words": " ".join(["river stone garden window letter morning silver"] * 1)
    + " " + " ".join(f"Lantern{i} valley{i} harbor{i}" for i in range(30)),
    "duplicate_lines": _GOOD + ("The same line again and again here.\n" * 12),
    "top_ngram": _GOOD + " ".join(["silver lantern"] * 60),
    "duplicate_ngrams": _GOOD.replace("\n", " ") + "\n" + _GOOD,  # no line repeats, every 5-gram does
    "lorem_ipsum": _GOOD + "Lorem ipsum dolor sit amet.",
}


def test_good_prose_passes_every_rule():
    assert quality.check(_GOOD, quality.QualityConfig()) is None


@pytest.mark.parametrize("rule", quality.RULES)
def test_each_rule_catches_its_kind_and_can_be_turned_off(rule):
    doc = _FAILS[rule]
    assert quality.check(doc, quality.QualityConfig()) == rule
    assert quality.check(doc, quality.QualityConfig(disabled={rule})) != rule


def test_unknown_rule_names_the_rules():
    with pytest.raises(ValueError, match="unknown quality rule.*stopwords.*stop_words"):
        quality.QualityConfig(disabled={"stopwords"})


def test_quality_counts_per_rule_and_rejected_files(tmp_path):
    rows = [{"id": rule, "text": doc} for rule, doc in _FAILS.items()] + [{"id": "good", "text": _GOOD}]
    rows.append({"id": "blank", "text": "  \n\t "})
    # The documents share _GOOD's lines: no boilerplate step, or it would take them out.
    report, out = run_clean(tmp_path, rows, data.CleanConfig(workers=1, near=False, boilerplate=False),
                            rejected=tmp_path / "rej")
    assert [r["id"] for r in out] == ["good"]
    assert report["filtered"] == dict(sorted({**{r: 1 for r in quality.RULES}, "empty": 1}.items()))
    for rule in quality.RULES:
        (row,) = read_jsonl(tmp_path / "rej" / f"{rule}.jsonl")
        assert row["id"] == rule and row["_reason"] == rule


def test_chinese_prose_passes_with_the_same_rules():
    zh = ("系统管理员通过配置文件修改服务的默认行为。我们在这里说明它的用法，以及为什么这样做。"
          "每一个软件包都有自己的维护者，他们负责修复错误并发布新的版本。用户可以从镜像下载这些文件。")
    assert quality.check(zh, quality.QualityConfig()) is None


# ----------------------------------------------------------------------------------------
# the pipeline as a whole


def test_the_result_does_not_depend_on_the_number_of_workers(tmp_path):
    originals = [prose(300 + i) for i in range(30)]
    rows = [{"id": i, "text": t} for i, t in enumerate(originals)]
    rows += [{"id": 100 + i, "text": edit(originals[i], 0.01, i)} for i in range(0, 30, 3)]
    rows += [{"id": 200, "text": originals[4]}, {"id": 201, "text": _FAILS["bullet_lines"]}]
    src = write_jsonl(tmp_path / "in.jsonl", rows)
    reports, outputs = [], []
    for workers in (1, 2):
        out = tmp_path / f"out{workers}.jsonl"
        report = data.clean([src], out, data.CleanConfig(workers=workers))
        reports.append({k: v for k, v in report.items() if k != "seconds"})
        outputs.append(out.read_bytes())
    assert reports[0] == reports[1] and outputs[0] == outputs[1]
    assert reports[0]["exact_duplicates"] == 1 and reports[0]["near_duplicates"] == 10


def test_lone_surrogates_in_json_survive(tmp_path):
    path = tmp_path / "in.jsonl"
    doc = prose(9)
    path.write_text(json.dumps({"text": doc + "\ud800"}) + "\n", encoding="utf-8")
    data.clean([path], tmp_path / "out.jsonl", data.CleanConfig(workers=1))
    assert read_jsonl(tmp_path / "out.jsonl") == [{"text": doc + "\ud800"}]


def test_missing_input_is_named(tmp_path):
    with pytest.raises(ValueError, match="no such file: .*nope.jsonl"):
        data.clean([tmp_path / "nope.jsonl"], tmp_path / "out.jsonl")


# ----------------------------------------------------------------------------------------
# mix


def _domains(tmp_path, sizes: dict[str, int]) -> list[str]:
    paths = []
    for k, (name, n) in enumerate(sizes.items()):
        paths.append(write_jsonl(tmp_path / f"{name}.jsonl",
                                 [{"id": f"{name}{i}", "text": prose(1000 * k + i, 100)} for i in range(n)]))
    return paths


def test_mix_meets_each_domains_share_of_the_budget(tmp_path):
    enc = bpe.get_encoding("o200k_base")
    paths = _domains(tmp_path, {"web": 60, "code": 60})
    report = data.mix(paths, tmp_path / "mix.jsonl", weights={"web": 3, "code": 1}, budget=4000, enc=enc)
    rows = read_jsonl(tmp_path / "mix.jsonl")
    tokens = collections.Counter()
    for r in rows:
        tokens[r["id"].rstrip("0123456789")] += len(enc.encode_ordinary(r["text"]))
    doc_max = max(len(enc.encode_ordinary(prose(i, 100))) for i in range(5)) * 2
    assert abs(tokens["web"] - 3000) <= doc_max and abs(tokens["code"] - 1000) <= doc_max
    assert report["domains"]["web"]["tokens"] == tokens["web"]
    assert report["tokens_out"] == sum(tokens.values()) and report["documents_out"] == len(rows)
    assert [r["id"] for r in rows] != sorted(r["id"] for r in rows)  # shuffled, not in input order
    again = tmp_path / "again.jsonl"
    data.mix(paths, again, weights={"web": 3, "code": 1}, budget=4000, enc=enc)
    assert again.read_bytes() == (tmp_path / "mix.jsonl").read_bytes()  # the seed decides


def test_mix_repeats_a_small_domain_up_to_max_epochs(tmp_path):
    enc = bpe.get_encoding("o200k_base")
    paths = _domains(tmp_path, {"big": 80, "small": 3})
    report = data.mix(paths, tmp_path / "mix.jsonl", weights={"big": 0.5, "small": 0.5}, budget=4000,
                      enc=enc, max_epochs=2)
    small = report["domains"]["small"]
    assert small["epochs"] == 2 and small["documents"] == 6
    assert small["tokens"] == 2 * small["available_tokens"] and small["shortfall_tokens"] > 0


def test_mix_by_field_and_its_errors(tmp_path):
    enc = bpe.get_encoding("o200k_base")
    src = write_jsonl(tmp_path / "all.jsonl", [{"lang": "en" if i % 2 else "de", "text": prose(i, 60)}
                                               for i in range(20)])
    report = data.mix([src], tmp_path / "m.jsonl", weights={"en": 1, "de": 1}, budget=500, enc=enc, by="lang")
    assert set(report["domains"]) == {"en", "de"}
    with pytest.raises(ValueError, match="no documents for domain.*fr.*the inputs hold de, en"):
        data.mix([src], tmp_path / "m.jsonl", weights={"fr": 1}, budget=500, enc=enc, by="lang")
    with pytest.raises(ValueError, match="no string field 'site'"):
        data.mix([src], tmp_path / "m.jsonl", weights={"x": 1}, budget=500, enc=enc, by="site")
    for bad in ("web", "web=-1", "web=x", "web=1,web=2", "a=0"):
        with pytest.raises(ValueError):
            mixing.parse_weights(bad)


# ----------------------------------------------------------------------------------------
# the command line: clean -> train -> encode on JSONL


def bpe_cli(*args):
    """``python -m bpe ARGS`` from a folder away from the sources (whose bpe is not built)."""
    proc = subprocess.run([sys.executable, "-m", "bpe", *map(str, args)], capture_output=True, check=False,
                          cwd=tempfile.gettempdir(), env={**os.environ, "COLUMNS": "100"})
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_cli_clean_train_encode(tmp_path):
    rows = [{"id": i, "text": prose(500 + i)} for i in range(20)] + [{"id": 99, "text": prose(500)}]
    src = write_jsonl(tmp_path / "raw.jsonl", rows)
    status, out, err = bpe_cli("data", "clean", src, "-o", tmp_path / "clean.jsonl", "--workers", 2,
                               "--rejected", tmp_path / "rej")
    assert status == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert set(report) == {"documents_in", "documents_out", "exact_duplicates", "near_duplicates",
                           "boilerplate_lines", "filtered", "bytes_in", "bytes_out", "seconds"}
    assert (report["documents_in"], report["documents_out"], report["exact_duplicates"]) == (21, 20, 1)
    status, out, err = bpe_cli("train", tmp_path / "clean.jsonl", "--vocab-size", 300, "-o", tmp_path / "t.bpe",
                               "-q", "--holdout", 0)
    assert status == 0, err
    enc = bpe.Encoding.load(tmp_path / "t.bpe")
    want = bpe.train([r["text"] for r in rows[:20]], vocab_size=300, progress=False)
    assert enc.mergeable_ranks == want.mergeable_ranks  # each JSONL line a document, as in Python
    status, out, err = bpe_cli("encode", "-t", tmp_path / "t.bpe", tmp_path / "clean.jsonl")
    assert status == 0, err
    assert [list(map(int, line.split())) for line in out.splitlines()] == [
        enc.encode_ordinary(r["text"]) for r in rows[:20]]


def test_cli_errors_are_one_line(tmp_path):
    status, _, err = bpe_cli("data", "clean", tmp_path / "missing.jsonl", "-o", tmp_path / "o.jsonl")
    assert status == 2 and "no such file" in err and "Traceback" not in err
    status, _, err = bpe_cli("data", "mix", tmp_path / "missing.jsonl", "-o", tmp_path / "o.jsonl",
                             "-t", "o200k_base", "--weights", "a", "--tokens", 5)
    assert status == 2 and "bad weight 'a'" in err
    status, out, _ = bpe_cli("data", "clean", "--help")
    assert status == 0 and "--rejected" in out and "stop_words" in out and "--split-on" in out


# ----------------------------------------------------------------------------------------
# Dask: the same result on a LocalCluster


def test_dask_cluster_gives_the_single_machine_result(tmp_path):
    pytest.importorskip("dask.distributed", reason="dask[distributed] is in the test extras (Python 3.10+)")
    import dask.bag as db
    from dask.distributed import Client, LocalCluster

    from bpe.data import cluster

    footer = "Copyright 2024 Example Corporation. All rights reserved."
    originals = [prose(700 + i) + (footer + "\n" if i % 4 == 0 else "") for i in range(40)]
    rows = [{"id": i, "text": t} for i, t in enumerate(originals)]
    rows += [{"id": 100 + i, "text": edit(originals[i], 0.01, i)} for i in range(0, 40, 5)]
    rows += [{"id": 200, "text": originals[7]}, {"id": 201, "text": _FAILS["ellipsis_lines"]}]
    cfg = data.CleanConfig(workers=1)
    local = data.clean([write_jsonl(tmp_path / "in.jsonl", rows)], tmp_path / "out.jsonl", cfg)
    want = read_jsonl(tmp_path / "out.jsonl")

    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as lc, Client(lc):
        kept, report = cluster.clean_bag(db.from_sequence(rows, npartitions=5), cfg)
        got = kept.compute()
        counts = cluster.count_pieces_bag(kept.pluck("text"), pattern="o200k")
    assert got == want
    for k in ("documents_in", "documents_out", "exact_duplicates", "near_duplicates",
              "boilerplate_lines", "filtered", "bytes_in", "bytes_out"):
        assert report[k] == local[k], k
    # 10 originals and 2 of their copies hold the footer: all but the first lose it
    assert local["near_duplicates"] == 8 and local["boilerplate_lines"] == 11
    texts = [r["text"] for r in want]
    assert counts == bpe.count_pieces(texts, pattern="o200k")
    a = bpe.train(counts, vocab_size=320, progress=False)
    b = bpe.train(texts, vocab_size=320, progress=False)
    assert a.mergeable_ranks == b.mergeable_ranks


def test_lm_data_reads_jsonl_one_document_each_with_end_of_text(tmp_path):
    from bpe.lm import data as lm_data

    enc = bpe.get_encoding("cl100k_base")
    texts = [prose(i, 30) for i in range(3)]
    src = write_jsonl(tmp_path / "docs.jsonl", [{"text": t} for t in texts])
    tokens = lm_data.prepare(src, enc, tmp_path, "cl100k_base")
    want = [t for text in texts for t in enc.encode_ordinary(text) + [enc.eot_token]]
    assert tokens.tokens.tolist() == want
    assert tokens.n_bytes == sum(len(t.encode()) for t in texts)
