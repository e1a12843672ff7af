"""Hugging Face tokenizer.json: what bpe writes, `tokenizers` encodes identically, and back."""

from __future__ import annotations

import functools
import json
import sys

import pytest
from hypothesis import given, settings, strategies as st

import bpe
import bpe.hf
from conftest import OFFICIAL, corpus_path, ours

tokenizers = pytest.importorskip("tokenizers", reason="tokenizers is a test extra: pip install '.[test]'")

TEXT = "The quick brown fox's 12345 jumps\n\n  over 'THE' lazy dog? Ça va… 你好，世界！ 🙂\r\n\tend"


@functools.lru_cache(maxsize=None)
def exported(name: str):
    enc = ours(name)
    return enc, tokenizers.Tokenizer.from_str(bpe.hf.to_tokenizer_json(enc))


@functools.lru_cache(maxsize=None)
def trained():
    corpus = [TEXT * 3, "low lower lowest newer wider 1234567 <|endoftext|>"] * 10
    return bpe.train(corpus, vocab_size=400, pattern="cl100k", special_tokens=["<|endoftext|>"],
                     progress=False)


def hf_ids(tok, text: str) -> list[int]:
    return tok.encode(text, add_special_tokens=False).ids


def test_byte_table_is_gpt2s():
    assert bpe.hf.token_to_text(b" the") == "Ġthe"
    assert bpe.hf.token_to_text(b"\n") == "Ċ"
    assert bpe.hf.text_to_token("Ġthe") == b" the"
    assert sorted(bpe.hf.token_to_text(bytes([b])) for b in range(256)) == sorted(
        tokenizers.pre_tokenizers.ByteLevel.alphabet())


def test_last_merge_is_the_final_bpe_step():
    ranks = {bytes([b]): b for b in range(256)} | {b"ab": 256, b"bc": 257, b"abc": 258, b"xyz": 259}
    assert bpe.hf.last_merge(b"abc", ranks) == (b"ab", b"c")
    assert bpe.hf.last_merge(b"xyz", ranks) is None  # neither "xy" nor "yz" is a token


def test_trained_encoding_round_trips_through_tokenizers():
    enc = trained()
    tok = tokenizers.Tokenizer.from_str(bpe.hf.to_tokenizer_json(enc))
    for text in (TEXT, "lowest newer", "12345678", "a<|endoftext|>b"):
        assert hf_ids(tok, text) == enc.encode(text, allowed_special="all")
        assert tok.decode(enc.encode(text, allowed_special="all"), skip_special_tokens=False) == text
    back = bpe.hf.from_tokenizer_json(bpe.hf.to_tokenizer_json(enc))
    assert back._mergeable_ranks == enc._mergeable_ranks
    assert back._special_tokens == enc._special_tokens
    assert back.encode(TEXT) == enc.encode(TEXT)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_exported_trained_encoding_matches_on_any_text(text):
    enc = trained()
    tok = _trained_tok()
    assert hf_ids(tok, text) == enc.encode(text, allowed_special="all")


@functools.lru_cache(maxsize=None)
def _trained_tok():
    return tokenizers.Tokenizer.from_str(bpe.hf.to_tokenizer_json(trained()))


@pytest.mark.parametrize("name", OFFICIAL)
@pytest.mark.parametrize("corpus", ["kjv.txt", "debref.en.txt", "debref.zh-cn.txt"])
def test_exported_official_encoding_matches_on_corpora(name, corpus):
    enc, tok = exported(name)
    text = corpus_path(corpus).read_text(encoding="utf-8", errors="replace")[:400_000]
    docs = [text[i : i + 4096] for i in range(0, len(text), 4096)]
    theirs = [e.ids for e in tok.encode_batch(docs, add_special_tokens=False)]
    assert theirs == enc.encode_ordinary_batch(docs)


@pytest.mark.parametrize("name", OFFICIAL)
def test_exported_pattern_splits_like_tiktoken_across_unicode(name):
    # Oniguruma's own Unicode tables and its reading of "{1,3}+" would split differently;
    # the exported pattern must not. Every 3rd code point, in contexts the pattern cares about.
    enc, tok = exported(name)
    chars = [chr(c) for c in range(0, sys.maxunicode + 1, 3) if not 0xD800 <= c <= 0xDFFF]
    texts = []
    for k in range(0, len(chars), 64):
        block = chars[k : k + 64]
        texts.append("".join(c + "'s 12345" for c in block))
        texts.append("".join(" " + c + "a\n" for c in block))
    theirs = [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]
    ours_ = enc.encode_ordinary_batch(texts)
    bad = [t for t, a, b in zip(texts, theirs, ours_) if a != b]
    assert not bad, f"{len(bad)} texts differ, first {bad[0][:60]!r}"


def test_import_of_a_tokenizers_trained_file_encodes_like_tokenizers(tmp_path):
    models, trainers, pre = tokenizers.models, tokenizers.trainers, tokenizers.pre_tokenizers
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<|endoftext|>", "<pad>"],
                                  initial_alphabet=pre.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([TEXT * 5, "the then there these those thesis"] * 20, trainer)
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    enc = bpe.hf.from_tokenizer_json(path)
    assert enc.name == "tokenizer"
    # Its ids are not bytes' values: "<|endoftext|>" is 0, and "!" is 2.
    assert enc.encode_single_token("<|endoftext|>") == 0
    for text in (TEXT, "the thesis<pad> then<|endoftext|>", "x" * 1000, "'s'S 1234"):
        assert enc.encode(text, allowed_special="all") == hf_ids(tok, text)
        assert enc.decode(hf_ids(tok, text)) == text


def _minimal(**changes) -> str:
    enc = trained()
    document = json.loads(bpe.hf.to_tokenizer_json(enc))
    for path, value in changes.items():
        node = document
        *parents, last = path.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    return json.dumps(document)


@pytest.mark.parametrize("changes, message", [
    ({"model__type": "WordPiece"}, "not a BPE tokenizer"),
    ({"normalizer": {"type": "NFC"}}, "has a normalizer"),
    ({"pre_tokenizer": None}, "no pre_tokenizer"),
    ({"pre_tokenizer": {"type": "Whitespace"}}, "is not supported"),
    ({"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": True}}, "add_prefix_space"),
    ({"model__vocab": {"a": 0}}, "byte 0x00"),
    ({"model__merges": ["Ġ t", "a b"]}, "not in the vocabulary"),
    ({"model__continuing_subword_prefix": "##"}, "continuing_subword_prefix"),
])
def test_import_refuses_what_it_cannot_encode_exactly(changes, message):
    with pytest.raises(ValueError, match=message):
        bpe.hf.from_tokenizer_json(_minimal(**changes))


def test_import_refuses_merges_out_of_id_order():
    document = json.loads(bpe.hf.to_tokenizer_json(trained()))
    merges = document["model"]["merges"]
    merges[0], merges[1] = merges[1], merges[0]
    with pytest.raises(ValueError, match="merge 1 .* lower than the merge before it"):
        bpe.hf.from_tokenizer_json(json.dumps(document))


def test_import_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not JSON"):
        bpe.hf.from_tokenizer_json(path)
    with pytest.raises(ValueError, match="missing.json: cannot read"):
        bpe.hf.from_tokenizer_json(tmp_path / "missing.json")
    bad_char = _minimal(model__vocab={"€": 0})
    with pytest.raises(ValueError, match="stands for no byte"):
        bpe.hf.from_tokenizer_json(bad_char)
