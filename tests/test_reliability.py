"""One regression test per kind of defect that crashed, hung or silently misread input.

Each test is named after the kind, not the input that first showed it; the fuzzers in
test_fuzz.py generate many more inputs of each kind.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading

import pytest

import bpe
from bpe import _core, _reference, hf, load, patterns

BYTES = {bytes([b]): b for b in range(256)}
SMALL = BYTES | {b"ab": 256, b"cd": 257, b"abcd": 258, b"  ": 259}


def reference_ids(pat_str: str, text: str, ranks=SMALL) -> list[int]:
    """What any exact encoder must give: the reference split, then BPE on each piece."""
    out: list[int] = []
    for piece in patterns.split(pat_str, text):
        data = piece.encode("utf-8")
        out += [ranks[data]] if data in ranks else _reference.bpe_merge(data, ranks)
    return out


# -- 1. empty pieces ----------------------------------------------------------------------

EMPTY_MATCHING = [r"\w*", r"(?:)", r"\s*|\S", r"a*", r"\b", r"(?=a)|b*"]


@pytest.mark.parametrize("pat_str", EMPTY_MATCHING)
def test_patterns_that_match_the_empty_string_give_ids_not_a_crash(pat_str):
    enc = bpe.Encoding("empty", pat_str=pat_str, mergeable_ranks=SMALL, special_tokens={"<|e|>": 300})
    for text in ["", "abcd  ab!", "  x  ", "a" * 100, "中文 ab"]:
        assert enc.encode_ordinary(text) == reference_ids(pat_str, text)
        assert enc.encode(text + "<|e|>", allowed_special="all") == reference_ids(pat_str, text) + [300]
        assert enc.count(text) == len(reference_ids(pat_str, text))


def test_empty_pieces_through_every_door(tmp_path):
    """A saved file, a tokenizer.json, the command line and the trainer all take such a pattern."""
    enc = bpe.Encoding("empty", pat_str=r"\w*", mergeable_ranks=SMALL, special_tokens={})
    want = reference_ids(r"\w*", "abcd ab cd!")
    enc.save(tmp_path / "e.tok")
    assert bpe.Encoding.load(tmp_path / "e.tok").encode("abcd ab cd!") == want
    document = json.loads(hf.to_tokenizer_json(enc))
    document["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\w*"
    (tmp_path / "tokenizer.json").write_text(json.dumps(document))
    assert hf.from_tokenizer_json(tmp_path / "tokenizer.json").encode("abcd ab cd!") == want
    run = subprocess.run([sys.executable, "-m", "bpe", "encode", "-t", str(tmp_path / "e.tok"), "-q"],
                         input="abcd ab cd!", capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert [int(t) for t in run.stdout.split()] == want
    trained = bpe.train(["abab cdcd abab"] * 5, vocab_size=260, pattern=r"\w*", progress=False)
    assert trained.encode("abab cd") == reference_ids(r"\w*", "abab cd", trained._mergeable_ranks)
    assert len(trained.encode("abab")) == 1  # the pieces were counted: "abab" was learnt


def test_each_engine_takes_an_empty_piece():
    core = _core.CoreBPE(SMALL, {}, 0)
    assert core.encode_pieces(["", "ab", ""]) == [256]
    assert core.encode_single_piece(b"") == []
    for engine in ("merge", "backtrack"):
        assert core.encode_piece_with(b"", engine) in ([], None)


@pytest.mark.parametrize("pat_str", [r"(\w+)|\s", r"(?P<word>\w+)|(\s)|.", r"(a|aa)+$|."])
def test_patterns_with_capturing_groups_split_by_whole_matches(pat_str):
    """findall returns a pattern's groups, not its matches: pieces must be whole matches."""
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is the oracle: pip install '.[test]'")
    kwargs = dict(pat_str=pat_str, mergeable_ranks=SMALL, special_tokens={})
    ours, theirs = bpe.Encoding("groups", **kwargs), tiktoken.Encoding("groups", **kwargs)
    for text in ["abcd ab cd!", "aaa!", "  x\ny  "]:
        assert ours.encode(text) == theirs.encode(text)


# -- 2. ids converted once ----------------------------------------------------------------

class Index:
    def __init__(self, value):
        self.value = value

    def __index__(self):
        return self.value


class Shifty:
    """An id whose value changes each time it is converted (sized as one id, copied as another)."""

    def __init__(self):
        self.calls = 0

    def __index__(self):
        self.calls += 1
        return 97 if self.calls == 1 else 258

    __int__ = __index__


class Mutator:
    """An id whose conversion empties the list it sits in."""

    def __init__(self, victim: list):
        self.victim = victim

    def __index__(self):
        self.victim.clear()
        return 97


def test_decode_bytes_converts_each_id_once_from_a_snapshot():
    enc = bpe.Encoding("small", pat_str=r"\S+|\s+", mergeable_ranks=SMALL, special_tokens={})
    assert enc.decode_bytes([Index(97), Index(258)]) == b"aabcd"  # __index__ only, as tiktoken
    shifty = Shifty()
    assert enc.decode_bytes([shifty, 98] * 1) == b"ab" and shifty.calls == 1
    ids: list = [98] * 1000
    ids.insert(0, Mutator(ids))
    assert enc.decode_bytes(ids) == b"a" + b"b" * 1000
    with pytest.raises(TypeError):
        enc.decode_bytes(iter([97]))  # not a sequence, as in tiktoken


# -- 3, 4. patterns that would hang -------------------------------------------------------

@pytest.mark.parametrize("pat_str", [r"\p{", r"\p{L", r"a|\P{Lu", r"[\p{L]"])
def test_an_unclosed_property_is_a_value_error_not_a_hang(pat_str, tmp_path):
    code = (f"import bpe\ntry:\n    bpe.Encoding('x', pat_str={pat_str!r}, mergeable_ranks={{b'a': 0}}, "
            "special_tokens={})\nexcept ValueError as e:\n    print('ValueError', e)\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)  # away from the uncompiled sources
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("ValueError") and "split pattern" in run.stdout


def test_a_catastrophic_pattern_stops_with_a_value_error_naming_it(monkeypatch):
    monkeypatch.setenv("BPE_REGEX_TIMEOUT", "0.2")
    enc = bpe.Encoding("slow", pat_str=r"(a|aa)+$|.", mergeable_ranks=SMALL, special_tokens={})
    assert enc.encode("aaa!") == reference_ids(r"(a|aa)+$|.", "aaa!")
    with pytest.raises(ValueError, match=r"split pattern '\(a\|aa\)\+\$\|\.' ran for more than"):
        enc.encode("a" * 60 + "!")
    with pytest.raises(patterns.PatternTimeout):
        bpe.train(["a" * 60 + "!"], vocab_size=257, pattern=r"(a|aa)+$|.", progress=False)


# -- 5. the shared piece cache ------------------------------------------------------------

@pytest.mark.threads
def test_threads_sharing_four_cache_entries_never_read_a_torn_one():
    """Every piece lands in the same set of four entries (the least a tier has); readers
    must see whole entries."""
    ranks = BYTES | {bytes([97 + i, 98 + i]): 256 + i for i in range(20)}
    core = _core.CoreBPE(ranks, {}, 0, cache_entries=2)
    pieces = [bytes([97 + (i % 20)] * (3 + i % 40)) + bytes([98 + i % 20]) * (i % 7) for i in range(60)]
    want = {p: _reference.bpe_merge(p, ranks) for p in pieces}
    texts = [[p.decode("latin-1") for p in pieces[i:] + pieces[:i]] for i in range(8)]
    errors: list = []

    def work(k):
        for _ in range(40):
            for piece_text in texts[k]:
                piece = piece_text.encode("latin-1")
                got = core.encode_pieces([piece_text]) if piece.isascii() else None
                if got is not None and got != want[piece]:
                    errors.append((piece, got))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors[:3]


# -- 6. sizes and re-initialisation -------------------------------------------------------

def test_ids_on_both_sides_of_the_int_table_are_right_every_time():
    # Ranks below 2**18 get an int kept per rank, larger ones a slot of recent ints: ids
    # from either side, repeated and mixed in one list, keep their values (and a rank that
    # shares a slot with another evicts it without losing either).
    edge = 1 << 18
    high = [edge - 1, edge, edge + 1, 900_000]
    ranks = BYTES | {pair: r for pair, r in zip((b"ab", b"cd", b"ef", b"gh"), high)}
    core = _core.CoreBPE(ranks, {}, 0)
    text = "abcdefgh" * 50 + "x"
    want = high * 50 + [ord("x")]
    for _ in range(3):
        got = core.encode_pieces([text[i : i + 2] for i in range(0, len(text), 2)])
        assert got == want and all(type(i) is int for i in got)


def test_table_sizes_cannot_wrap_and_an_engine_cannot_be_built_twice():
    with pytest.raises(ValueError, match="sparse"):
        _core.CoreBPE(BYTES | {b"ab": 2**32 - 2}, {}, 0)
    with pytest.raises(ValueError, match="outside"):
        _core.CoreBPE(BYTES | {b"ab": 2**32 - 1}, {}, 0)
    with pytest.raises(TypeError, match="not int"):
        _core.CoreBPE(BYTES | {b"ab": 256.0}, {}, 0)
    core = _core.CoreBPE(SMALL, {}, 0)
    with pytest.raises(RuntimeError, match="twice"):
        core.__init__(BYTES, {}, 0)
    assert core.encode_single_piece(b"abcd") == [258]  # the first tables are untouched


# -- 7, 8. tokenizer.json and JSON files ----------------------------------------------------

def _small_tokenizer_json() -> dict:
    enc = bpe.Encoding("small", pat_str=patterns.R50K_PATTERN, mergeable_ranks=SMALL,
                       special_tokens={"<|e|>": 300})
    return json.loads(hf.to_tokenizer_json(enc))


def _set(document, path, value):
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


HOSTILE_TOKENIZER_JSON = [
    (("added_tokens", 0, "id"), 300.7, "added_tokens[0].id"),
    (("added_tokens", 0, "id"), True, "added_tokens[0].id"),
    (("added_tokens", 0, "content"), "", "empty string"),
    (("added_tokens", 0, "content"), None, "added_tokens[0].content"),
    (("added_tokens",), [{"id": 300}], "added_tokens[0].content"),
    (("added_tokens",), {"id": 300}, "added_tokens is"),
    (("added_tokens",), [{"id": 300, "content": "<|e|>"}, {"id": 301, "content": "<|e|>"}], "two ids"),
    (("added_tokens",), [{"id": 300, "content": "<|e|>"}, {"id": 300, "content": "<|f|>"}], "id 300 is both"),
    (("added_tokens", 0, "id"), -4, "negative id"),
    (("added_tokens", 0, "id"), 10**30, "sparse"),
    (("normalizer",), "NFC", "normalizer"),
    (("model", "vocab"), ["a", "b"], "model.vocab is"),
    (("model", "vocab", "a"), 97.0, "model.vocab['a']"),
    (("model", "vocab", "a"), -1, "negative id"),
    (("model", "merges"), "a b", "model.merges is"),
    (("model", "merges", 0), 5, "model.merges[0]"),
    (("model", "merges", 0), ["a", "b", "c"], "not two tokens"),
    (("pre_tokenizer", "pretokenizers"), "Split", "pretokenizers"),
    (("pre_tokenizer", "pretokenizers", 0, "pattern"), "x", "Split"),
    (("pre_tokenizer", "pretokenizers", 0, "pattern", "Regex"), 5, "Regex"),
    (("pre_tokenizer", "pretokenizers", 0, "pattern", "Regex"), r"\p{L", "split pattern"),
    (("pre_tokenizer", "pretokenizers", 0, "pattern", "Regex"), "(", "does not compile"),
    (("model",), "BPE", "not a BPE tokenizer"),
]


@pytest.mark.parametrize("path,value,problem", HOSTILE_TOKENIZER_JSON,
                         ids=[f"{'.'.join(map(str, p))}={v!r}"[:50] for p, v, _ in HOSTILE_TOKENIZER_JSON])
def test_tokenizer_json_that_cannot_be_encoded_is_refused_naming_file_and_field(tmp_path, path, value, problem):
    file = tmp_path / "tokenizer.json"
    file.write_text(json.dumps(_set(_small_tokenizer_json(), path, value)))
    with pytest.raises(ValueError) as e:
        hf.from_tokenizer_json(file)
    assert str(file) in str(e.value) and problem in str(e.value), str(e.value)


@pytest.mark.parametrize("content,problem", [
    ("[" * 100_000, "nested too deeply"),
    ('{"version": ' + "9" * 5000 + "}", "not"),
    ('{"format": "bpe-tokenizer", "version": true, "name": "x", "pattern": "a", '
     '"special_tokens": {}, "ranks": "YQ== 0\\n"}', "version true"),
    ('{"format": "bpe-tokenizer", "version": 1, "name": "x", "pattern": "a", '
     '"special_tokens": {"<|e|>": 1.5}, "ranks": "YQ== 0\\n"}', "1.5"),
])
def test_json_files_of_any_shape_are_a_value_error_naming_the_file(tmp_path, content, problem):
    for reader, name in ((bpe.Encoding.load, "saved.tok"), (hf.from_tokenizer_json, "tokenizer.json"),
                         (bpe.open_tokenizer, "any.json")):
        file = tmp_path / name
        file.write_text(content)
        with pytest.raises(ValueError) as e:
            reader(str(file))
        assert str(file) in str(e.value), str(e.value)
    with pytest.raises(ValueError) as e:
        bpe.Encoding.load(tmp_path / "saved.tok")
    assert problem in str(e.value), str(e.value)


# -- 9. files ---------------------------------------------------------------------------------

def test_an_empty_cache_variable_means_no_cache(tmp_path, monkeypatch):
    data = b"YQ== 0\n"
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BPE_VOCAB_DIR", raising=False)
    monkeypatch.setenv("BPE_CACHE_DIR", "")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    monkeypatch.setattr(load, "read_file", lambda url: data)
    assert load.fetch_verified("x.tiktoken", "https://example.invalid/x", load.sha256_hex(data)) == data
    assert list(tmp_path.iterdir()) == []


def test_a_download_cut_short_is_an_os_error_saying_so(tmp_path, monkeypatch):
    def cut_short(url):
        raise http.client.IncompleteRead(b"YQ", 100)

    monkeypatch.delenv("BPE_VOCAB_DIR", raising=False)
    monkeypatch.setenv("BPE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", "")
    monkeypatch.setattr(load, "read_file", cut_short)
    with pytest.raises(OSError, match="IncompleteRead"):
        load.fetch_verified("x.tiktoken", "https://example.invalid/x", "0" * 64)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    enc = bpe.Encoding("small", pat_str=r"\S+|\s+", mergeable_ranks=SMALL, special_tokens={})
    writers = [lambda p: enc.save(p), lambda p: bpe.dump_tiktoken_bpe(SMALL, p),
               lambda p: hf.save_tokenizer_json(enc, p)]

    def fail(src, dst):
        raise OSError("disk full")

    for k, write in enumerate(writers):
        target = tmp_path / f"out{k}"
        target.write_bytes(b"old")
        monkeypatch.setattr(os, "replace", fail)
        with pytest.raises(OSError, match="disk full"):
            write(target)
        monkeypatch.undo()
        assert target.read_bytes() == b"old"
        write(target)
        assert target.read_bytes() != b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out0", "out1", "out2"]


def test_encode_output_goes_through_a_private_temporary_file(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    out = tmp_path / "ids.bin"
    (tmp_path / "ids.bin.tmp").symlink_to(victim)  # the fixed name the old code wrote through
    src = tmp_path / "in.txt"
    src.write_text("abcd ab cd")
    enc = bpe.Encoding("small", pat_str=r"\S+|\s+", mergeable_ranks=SMALL, special_tokens={})
    enc.save(tmp_path / "small.tok")
    run = subprocess.run([sys.executable, "-m", "bpe", "encode", str(src), "-t", str(tmp_path / "small.tok"),
                          "--format", "bin", "-o", str(out), "-q"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert victim.read_bytes() == b"keep"
    assert len(out.read_bytes()) == 2 * len(enc.encode("abcd ab cd"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.bin", "ids.bin.json", "ids.bin.tmp",
                                                          "in.txt", "small.tok", "victim"]


# -- 10. argument types ---------------------------------------------------------------------

ARGUMENTS = {
    "tuple allowed_special": lambda e: e.encode("ab<|e|>", allowed_special=("<|e|>",), disallowed_special=()),
    "list allowed_special": lambda e: e.encode("ab", allowed_special=["<|e|>"]),
    "bytearray to encode_single_token": lambda e: e.encode_single_token(bytearray(b"ab")),
    "memoryview to encode_single_token": lambda e: e.encode_single_token(memoryview(b"ab")),
    "iterator to decode_bytes": lambda e: e.decode_bytes(iter([97])),
    "generator to decode_bytes": lambda e: e.decode_bytes(x for x in [97]),
    "set to decode_bytes": lambda e: e.decode_bytes({97}),
    "str to decode_bytes": lambda e: e.decode_bytes("ab"),
    "None to decode_bytes": lambda e: e.decode_bytes(None),
    "float id": lambda e: e.decode_bytes([97.0]),
    "negative id": lambda e: e.decode_bytes([-1]),
    "id of 2**32": lambda e: e.decode_bytes([2**32]),
    "str to _encode_bytes": lambda e: e._encode_bytes("ab"),
    "bytes to encode_ordinary": lambda e: e.encode_ordinary(b"ab"),
    "frozenset allowed_special": lambda e: e.encode("ab<|e|>", allowed_special=frozenset({"<|e|>"})),
    "tuple to decode_bytes": lambda e: e.decode_bytes((97, 98)),
    "range to decode_bytes": lambda e: e.decode_bytes(range(97, 99)),
    "__index__ ids": lambda e: e.decode_bytes([Index(97)]),
}


@pytest.mark.parametrize("call", ARGUMENTS, ids=list(ARGUMENTS))
def test_argument_types_are_refused_as_tiktoken_refuses_them(call):
    tiktoken = pytest.importorskip("tiktoken", reason="tiktoken is the oracle: pip install '.[test]'")
    kwargs = dict(pat_str=r"\S+|\s+", mergeable_ranks=SMALL, special_tokens={"<|e|>": 300})
    ours, theirs = bpe.Encoding("t", **kwargs), tiktoken.Encoding("t", **kwargs)

    def outcome(enc):
        try:
            return ("ok", ARGUMENTS[call](enc))
        except Exception as e:  # noqa: BLE001 - the type is what is compared
            return ("raised", type(e))

    assert outcome(ours) == outcome(theirs)
