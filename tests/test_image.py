"""The engine's tables kept in the cache (bpe/_image.pyx): an engine read back encodes and
decodes exactly as the one built, a damaged or stale file is never used, and a start that
finds the file needs no rank file."""

from __future__ import annotations

import struct

import pytest

import bpe
from bpe import _core, _image, load, registry
from conftest import corpus_path


def corpus_text(name: str) -> str:
    return corpus_path(name).read_text(encoding="utf-8", errors="replace")

NAMES = ["o200k_base", "cl100k_base"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BPE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BPE_VOCAB_DIR", raising=False)  # the shipped files
    return tmp_path / "cache"


def fresh(name: str) -> bpe.Encoding:
    """A new Encoding of a named encoding (get_encoding would return the process's one)."""
    return bpe.Encoding(**registry.ENCODING_CONSTRUCTORS[name]())


def image_of(name: str):
    return load.engine_image_path(bytes.fromhex(registry.RANK_FILES[name][1]))


@pytest.mark.parametrize("name", NAMES)
def test_an_engine_read_back_is_the_engine_built(cache, name, monkeypatch):
    built = fresh(name)
    assert image_of(name).is_file()
    monkeypatch.setattr(load, "fetch_verified", lambda *a: pytest.fail("read the rank file"))
    again = fresh(name)  # from the image alone
    assert again._ranks._load is not None and again._ranks.has_table()  # the table came from the engine
    assert again.mergeable_ranks == built.mergeable_ranks
    assert list(again.mergeable_ranks) == list(built.mergeable_ranks)
    assert again._core_bpe.backtracking and again._core_bpe.backtrack_bytes == built._core_bpe.backtrack_bytes
    assert again.n_vocab == built.n_vocab and again.special_tokens_set == built.special_tokens_set
    for corpus in ("kjv.txt", "debref.zh-cn.txt", "debref.en.txt"):
        text = corpus_text(corpus)[:200_000]
        ids = built.encode_ordinary(text)
        assert again.encode_ordinary(text) == ids
        assert again.decode(ids) == built.decode(ids)
    hard = "\U0001f600" * 3000 + " x" * 2000 + "".join(chr(c) for c in range(0x3000, 0x3400))
    assert again.encode(hard) == built.encode(hard)
    assert again.encode("<|endoftext|>", allowed_special="all") == built.encode("<|endoftext|>", allowed_special="all")


def damage(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["payload", "version", "key", "truncated", "longer", "empty"])
def test_a_damaged_or_stale_image_is_rebuilt(cache, how):
    name = "cl100k_base"
    reference = fresh(name).encode_ordinary(corpus_text("kjv.txt")[:50_000])
    path = image_of(name)
    good = path.read_bytes()
    key = bytes.fromhex(registry.RANK_FILES[name][1])
    if how == "payload":
        damage(path, len(good) // 2)
    elif how == "version":
        path.write_bytes(good[:8] + struct.pack("<I", _image.VERSION + 1) + good[12:])
    elif how == "key":
        damage(path, 24)  # inside the key
    elif how == "truncated":
        path.write_bytes(good[:-1])
    elif how == "longer":
        path.write_bytes(good + b"\0")
    else:
        path.write_bytes(b"")
    assert _core.CoreBPE.load_image(path, key, {}, 2) is None
    again = fresh(name)  # builds, and writes a good image over the bad one
    assert again.encode_ordinary(corpus_text("kjv.txt")[:50_000]) == reference
    assert path.read_bytes() == good
    assert _core.CoreBPE.load_image(path, key, {}, 2) is not None


def test_images_of_older_formats_are_removed_when_a_new_one_is_written(cache):
    path = image_of("cl100k_base")
    key = path.name.split(".")[0]
    path.parent.mkdir(parents=True)
    older, newer, other_key = (path.parent / f"{key}.v{_image.VERSION - 1}.bin",
                               path.parent / f"{key}.v{_image.VERSION + 1}.bin",
                               path.parent / f"{'0' * 64}.v{_image.VERSION - 1}.bin")
    for stale in (older, newer, other_key):
        stale.write_bytes(b"tables of another bpe")
    fresh("cl100k_base")
    assert path.is_file()
    assert not older.exists()  # no build of this bpe or a later one reads it
    assert newer.exists() and other_key.exists()  # a newer bpe's, and another rank file's


def test_an_image_is_for_its_key_only(cache):
    fresh("cl100k_base")
    assert _core.CoreBPE.load_image(image_of("cl100k_base"), bytes(32), {}, 2) is None
    with pytest.raises(ValueError, match="32 bytes"):
        _core.CoreBPE.load_image(image_of("cl100k_base"), b"short", {}, 2)


def test_no_cache_no_image(tmp_path, monkeypatch):
    monkeypatch.setenv("BPE_CACHE_DIR", "")
    monkeypatch.delenv("BPE_VOCAB_DIR", raising=False)
    assert load.engine_image_path(bytes(32)) is None
    assert fresh("cl100k_base").encode("hello world") == [15339, 1917]


def test_a_cache_that_cannot_be_written_is_passed_over(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("BPE_CACHE_DIR", str(blocked))
    monkeypatch.delenv("BPE_VOCAB_DIR", raising=False)
    assert fresh("cl100k_base").encode("hello world") == [15339, 1917]
    assert blocked.read_text() == "a file where the cache folder would be"


def test_save_image_names_the_file_it_cannot_write(tmp_path):
    core = bpe.get_encoding("cl100k_base")._core_bpe
    with pytest.raises(OSError, match="no-such-folder"):
        core.save_image(tmp_path / "no-such-folder" / "x.bin", bytes(32))


def test_an_image_is_the_same_bytes_every_time(tmp_path):
    """Every byte of the tables is defined (no heap garbage in holes or padding): the same
    vocabulary gives the same file, whatever memory the tables were carved from."""
    ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"abc": 257, b"zz": 260,  # 258, 259: holes
                                                     b"abcdefghijklmnopqrstu": 261}  # a wide slot
    files = set()
    for k in range(4):
        litter = [bytearray(b"\xaa" * 100_000) for _ in range(20)]
        del litter  # freed memory full of 0xAA for the next tables to be carved from
        _core.CoreBPE(ranks, {}, 2).save_image(tmp_path / f"{k}.bin", bytes(32))
        files.add((tmp_path / f"{k}.bin").read_bytes())
    assert len(files) == 1
    back = _core.CoreBPE.load_image(tmp_path / "0.bin", bytes(32), {}, 2)
    assert back.encode_ordinary("abc zz abab") == _core.CoreBPE(ranks, {}, 2).encode_ordinary("abc zz abab")
    assert back.rank_table().to_dict() == ranks
