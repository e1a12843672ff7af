"""Hugging Face ``tokenizer.json`` files: write one for any Encoding, read byte-level BPE ones.

>>> import bpe, bpe.hf
>>> enc = bpe.train(["low lower lowest"] * 20, vocab_size=260, pattern="gpt2", progress=False)
>>> text = bpe.hf.to_tokenizer_json(enc)
>>> bpe.hf.from_tokenizer_json(text).encode("lowest") == enc.encode("lowest")
True

What a tokenizer.json means, in the terms of this library:

- **Bytes as characters.** Byte-level BPE stores each token as text in which byte ``b``
  is the character ``_BYTE_TO_CHAR[b]`` (printable bytes stand for themselves, the others
  are moved above U+0100, so a space is ``"Ġ"``).
- **Merges.** A tokenizer.json lists merges; tiktoken lists ranks. Listing, for each token
  in rank order, the pair that BPE joins last when it builds that token from its bytes
  makes the ``tokenizers`` library merge in the same order as rank-ordered BPE. The file
  sets ``ignore_merges`` so that a piece which is itself a token is looked up whole, as
  tiktoken does.
- **Split pattern.** ``tokenizers`` splits with Oniguruma, which reads ``X{1,3}+`` as
  "``X{1,3}``, repeated" rather than as a possessive count (cl100k's ``\\p{N}{1,3}+`` would
  take any number of digits), and which has its own Unicode tables. The exported pattern
  drops possessive marks after counted repeats and spells the general categories and
  ``\\s`` out as code point ranges at tiktoken's Unicode version.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import regex

from bpe import _bytes, _json, _reference, patterns
from bpe._files import write_atomic
from bpe.core import Encoding


_BYTE_TO_CHAR = _bytes.BYTE_TO_CHAR
_CHAR_TO_BYTE = _bytes.CHAR_TO_BYTE

#: The split of the ``ByteLevel`` pre-tokenizer when ``use_regex`` is on (GPT-2's pattern).
HF_BYTELEVEL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def token_to_text(token: bytes) -> str:
    """A token's bytes as byte-level text: ``b" the" -> "Ġthe"``."""
    return "".join(_BYTE_TO_CHAR[b] for b in token)


def text_to_token(text: str, where: str = "token") -> bytes:
    """Byte-level text back to bytes; a character outside the 256 stand-ins is a ValueError."""
    try:
        return bytes(_CHAR_TO_BYTE[c] for c in text)
    except KeyError as e:
        raise ValueError(f"{where} {text!r}: character {e.args[0]!r} stands for no byte "
                         "(not a byte-level BPE vocabulary)") from None


# ----------------------------------------------------------------------------------------
# Export


def last_merge(token: bytes, ranks: Mapping[bytes, int]) -> tuple[bytes, bytes] | None:
    """The pair that rank-ordered BPE joins last when it builds ``token`` from its bytes.

    ``None`` when BPE never reaches the whole token (it then needs no merge of its own).

    >>> last_merge(b"abc", {b"a": 0, b"b": 1, b"c": 2, b"bc": 3, b"abc": 4})
    (b'a', b'bc')
    """
    parts = _reference.merge_parts(token, ranks, stop=2)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _onig_pattern(pat_str: str) -> str:
    """``pat_str`` rewritten so that Oniguruma splits as tiktoken does (see the module doc)."""
    # "{m,n}+" is possessive in tiktoken's engine and in `regex`, a repeat in Oniguruma.
    # Dropping "+" there changes nothing for the named patterns: every counted repeat is
    # the last item of its alternative, where greedy and possessive match the same.
    pat = regex.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", pat_str)
    # Oniguruma reads "\\x{41}" but not the "\\U00000041" that pin_unicode writes.
    return regex.sub(r"\\U([0-9A-Fa-f]{8})", lambda m: "\\x{%X}" % int(m.group(1), 16),
                     patterns.pin_unicode(pat))


def _from_onig_pattern(pat_str: str) -> str:
    """The pattern for bpe (and the `regex` module) that ``pat_str`` from a tokenizer.json means."""
    for named in patterns.PATTERNS.values():
        if pat_str == _onig_pattern(named):  # one bpe wrote: use the original, and its scanner
            return named
    return regex.sub(r"\\x\{([0-9A-Fa-f]{1,8})\}", lambda m: "\\U%08X" % int(m.group(1), 16), pat_str)


def to_tokenizer_json(enc: Encoding) -> str:
    """A Hugging Face tokenizer.json (byte-level BPE) that encodes to the same ids as ``enc``.

    Load it with ``tokenizers.Tokenizer.from_str`` (or ``from_file`` after writing it out);
    special tokens become added tokens, matched before splitting, as ``encode`` with
    ``allowed_special="all"`` matches them.
    """
    ranks = enc.mergeable_ranks
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    vocab = {token_to_text(token): rank for token, rank in by_rank}
    if len(vocab) != len(ranks):
        raise ValueError(f"{enc.name}: two tokens have the same byte-level text")
    merges = []
    for token, _ in by_rank:
        if len(token) > 1:
            pair = last_merge(token, ranks)
            if pair is not None:
                merges.append(f"{token_to_text(pair[0])} {token_to_text(pair[1])}")
    added = [
        {"id": rank, "content": text, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for text, rank in sorted(enc.special_tokens.items(), key=lambda item: item[1])
    ]
    document = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Split", "pattern": {"Regex": _onig_pattern(enc.pat_str)},
                 "behavior": "Isolated", "invert": False},
                {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                 "use_regex": False},
            ],
        },
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                    "use_regex": False},
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None,
            "continuing_subword_prefix": None, "end_of_word_suffix": None,
            "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
            "vocab": vocab, "merges": merges,
        },
    }
    return json.dumps(document, ensure_ascii=False)


def save_tokenizer_json(enc: Encoding, path: str | os.PathLike) -> None:
    """Write :func:`to_tokenizer_json` to ``path`` (atomically)."""
    write_atomic(path, to_tokenizer_json(enc))


# ----------------------------------------------------------------------------------------
# Import


def _expect(value: Any, kind: type | tuple, source: str, where: str) -> Any:
    """``value`` when it is of JSON type ``kind`` (an int is never a bool), else a ValueError
    naming the file and the field."""
    if not isinstance(value, kind) or isinstance(value, bool):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise ValueError(f"{source}: {where} is {_json.describe(value)}, not {_JSON_NAMES.get(names, names)}")
    return value


_JSON_NAMES = {"dict": "an object", "list": "an array", "str": "a string", "int": "an integer",
               "list or str": "an array or a string"}


def _pre_tokenizer_pattern(node: Any, source: str) -> str:
    """The split pattern a tokenizer.json's pre-tokenizer stands for, or a ValueError."""
    if not isinstance(node, dict):
        raise ValueError(f"{source}: no pre_tokenizer; bpe reads byte-level BPE tokenizers only")
    kind = node.get("type")
    if kind == "ByteLevel":
        if node.get("add_prefix_space"):
            raise ValueError(f"{source}: ByteLevel with add_prefix_space is not supported")
        if not node.get("use_regex", True):
            raise ValueError(f"{source}: ByteLevel without a split pattern would make the whole "
                             "text one piece; bpe needs a split pattern")
        return HF_BYTELEVEL_PATTERN
    if kind == "Sequence":
        steps = _expect(node.get("pretokenizers"), list, source, "pre_tokenizer.pretokenizers")
        splits = [s for s in steps if isinstance(s, dict) and s.get("type") == "Split"]
        levels = [s for s in steps if isinstance(s, dict) and s.get("type") == "ByteLevel"]
        if len(steps) == 2 and len(splits) == 1 and len(levels) == 1 and steps[1] is levels[0]:
            split, level = splits[0], levels[0]
            if level.get("use_regex", True) or level.get("add_prefix_space"):
                raise ValueError(f"{source}: the ByteLevel step after Split must have "
                                 "use_regex and add_prefix_space off")
            pattern = split.get("pattern")
            if (split.get("behavior") != "Isolated" or split.get("invert")
                    or not isinstance(pattern, dict) or "Regex" not in pattern):
                raise ValueError(f"{source}: only a Split with a Regex, behavior Isolated and "
                                 "invert false is supported")
            regex_text = _expect(pattern["Regex"], str, source, "the Split pattern's Regex")
            return _from_onig_pattern(regex_text)
        if len(steps) == 1 and levels:
            return _pre_tokenizer_pattern(levels[0], source)
    raise ValueError(f"{source}: pre_tokenizer {_json.describe(node)} is not supported; bpe "
                     "reads ByteLevel, or Split(Regex) then ByteLevel")


def _added_tokens(entries: Any, source: str) -> dict[str, int]:
    """The added tokens as {content: id}; ValueError for a malformed, empty or repeated one."""
    special: dict[str, int] = {}
    by_id: dict[int, str] = {}
    for k, entry in enumerate(_expect(entries if entries is not None else [], list, source, "added_tokens")):
        _expect(entry, dict, source, f"added_tokens[{k}]")
        content = _expect(entry.get("content"), str, source, f"added_tokens[{k}].content")
        token_id = _expect(entry.get("id"), int, source, f"added_tokens[{k}].id")
        if not content:
            raise ValueError(f"{source}: added_tokens[{k}] is the empty string (it would match everywhere)")
        if token_id < 0:
            raise ValueError(f"{source}: added_tokens[{k}] ({content!r}) has the negative id {token_id}")
        if content in special and special[content] != token_id:
            raise ValueError(f"{source}: added token {content!r} has two ids, {special[content]} and {token_id}")
        if token_id in by_id and by_id[token_id] != content:
            raise ValueError(f"{source}: id {token_id} is both added token {by_id[token_id]!r} and {content!r}")
        special[content] = token_id
        by_id[token_id] = content
    return special


def _merge_parts(merge: Any, source: str, k: int) -> tuple[str, str]:
    """The two sides of merge ``k``: "a b" or ["a", "b"]."""
    where = f"model.merges[{k}]"
    _expect(merge, (list, str), source, where)
    parts = merge.split(" ") if isinstance(merge, str) else merge
    if len(parts) != 2 or not all(isinstance(p, str) and p for p in parts):
        raise ValueError(f"{source}: {where} is {_json.describe(merge)}, not two tokens")
    return parts[0], parts[1]


def from_tokenizer_json(text_or_path: str | os.PathLike, name: str | None = None) -> Encoding:
    """An Encoding from a byte-level BPE tokenizer.json (a file path, or the JSON text).

    Added tokens become special tokens: ``enc.encode(text, allowed_special="all")`` gives
    the ids of ``tokenizer.encode(text, add_special_tokens=False).ids``. The file's merges
    must be listed in the order of the ids they produce (as the ``tokenizers`` trainer and
    tiktoken-derived files list them), since bpe merges by token id; a file that breaks
    this is refused rather than encoded differently. Whatever is refused is a ValueError
    naming the file and the field.
    """
    if isinstance(text_or_path, os.PathLike) or not str(text_or_path).lstrip().startswith("{"):
        source = os.fspath(text_or_path)
        try:
            text = Path(source).read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"{source}: cannot read ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise ValueError(f"{source}: not UTF-8 ({e})") from None
    else:
        source, text = "<tokenizer.json>", str(text_or_path)
    document = _json.loads(text, source)
    _expect(document, dict, source, "the document")
    model = document.get("model")
    if not isinstance(model, dict) or model.get("type", "BPE") != "BPE":
        raise ValueError(f"{source}: not a BPE tokenizer (model type "
                         f"{_json.describe(model.get('type')) if isinstance(model, dict) else None})")
    if document.get("normalizer") is not None:
        raise ValueError(f"{source}: has a normalizer ({_json.describe(document['normalizer'])}); "
                         "bpe encodes text as given")
    for option in ("continuing_subword_prefix", "end_of_word_suffix", "dropout"):
        if model.get(option):
            raise ValueError(f"{source}: model option {option}={model[option]!r} is not supported")
    pat_str = _pre_tokenizer_pattern(document.get("pre_tokenizer"), source)
    special = _added_tokens(document.get("added_tokens"), source)
    special_ids = set(special.values())

    ranks: dict[bytes, int] = {}
    for token_text, token_id in _expect(model.get("vocab", {}), dict, source, "model.vocab").items():
        _expect(token_id, int, source, f"model.vocab[{token_text!r}]")
        if token_text in special and special[token_text] == token_id:
            continue
        if token_id < 0:
            raise ValueError(f"{source}: vocabulary token {token_text!r} has the negative id {token_id}")
        token = text_to_token(token_text, f"{source}: vocabulary token")
        if token in ranks:
            raise ValueError(f"{source}: token {token_text!r} appears twice")
        if token_id in special_ids:
            raise ValueError(f"{source}: id {token_id} is both {token_text!r} and an added token")
        ranks[token] = token_id
    missing = [b for b in range(256) if bytes([b]) not in ranks]
    if missing:
        raise ValueError(f"{source}: byte 0x{missing[0]:02X} ({_BYTE_TO_CHAR[missing[0]]!r}) is not "
                         f"in the vocabulary ({len(missing)} bytes missing)")

    previous = -1
    for k, merge in enumerate(_expect(model.get("merges", []), list, source, "model.merges")):
        left, right = _merge_parts(merge, source, k)
        joined = text_to_token(left, f"{source}: merge {k}") + text_to_token(right, f"{source}: merge {k}")
        rank = ranks.get(joined)
        if rank is None:
            raise ValueError(f"{source}: merge {k} ({left!r} {right!r}) makes a token that is "
                             "not in the vocabulary")
        if rank <= previous:
            raise ValueError(f"{source}: merge {k} ({left!r} {right!r}) makes id {rank}, lower "
                             f"than the merge before it (id {previous}); bpe needs merges in id order")
        previous = rank
    if name is None:
        name = "tokenizer" if source.startswith("<") else Path(source).name.removesuffix(".json")
    try:
        return Encoding(name, pat_str=pat_str, mergeable_ranks=ranks, special_tokens=special)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
