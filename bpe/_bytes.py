"""GPT-2's table of bytes as printable characters, used by its ``vocab.bpe`` and
``encoder.json`` files and by every byte-level BPE ``tokenizer.json``.

Printable Latin-1 bytes (``!`` to ``~``, ``¡`` to ``¬``, ``®`` to ``ÿ``) stand for
themselves; the other 68 bytes get the characters from U+0100 on, in byte order.

>>> BYTE_TO_CHAR[ord(" ")], BYTE_TO_CHAR[ord("a")]
('Ġ', 'a')
"""

from __future__ import annotations

#: The bytes that stand for themselves, in byte order.
PRINTABLE = [b for b in range(256) if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or 0xAE <= b]


def _table() -> list[str]:
    moved = iter(range(256, 256 + 256 - len(PRINTABLE)))
    keep = set(PRINTABLE)
    return [chr(b) if b in keep else chr(next(moved)) for b in range(256)]


#: byte -> its character
BYTE_TO_CHAR: list[str] = _table()
#: character -> its byte
CHAR_TO_BYTE: dict[str, int] = {c: b for b, c in enumerate(BYTE_TO_CHAR)}
#: GPT-2's rank order of the single bytes: the printable ones first, then the others
RANK_ORDER: list[int] = PRINTABLE + [b for b in range(256) if b not in set(PRINTABLE)]
