"""``StreamDecoder``: text of tokens as they arrive, whole characters only.

A model emits tokens one at a time, and a character's UTF-8 bytes may be split over two
or more of them (most CJK characters and emoji in byte-level BPE). Decoding each token on
its own prints U+FFFD for each part; this holds the bytes of an unfinished character back
until the rest arrives.

>>> import bpe
>>> enc = bpe.get_encoding("o200k_base")
>>> decoder = StreamDecoder(enc)
>>> ids = enc.encode("naïve 👍")
>>> "".join(decoder.feed([t]) for t in ids) + decoder.flush()
'naïve 👍'
"""

from __future__ import annotations

import codecs
from typing import Iterable


class StreamDecoder:
    """Decode a token stream piece by piece, exactly as ``enc.decode`` decodes it whole.

    For any token sequence and any way of cutting it into :meth:`feed` calls, the texts
    returned by ``feed`` followed by :meth:`flush` join to ``enc.decode(tokens, errors)``.
    Special tokens decode as their text.
    """

    def __init__(self, enc, errors: str = "replace"):
        self._decode_bytes = enc.decode_bytes
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors)

    def feed(self, tokens: Iterable[int]) -> str:
        """The complete characters that ``tokens`` finish; the bytes of a character still
        cut wait for the next call."""
        ids = tokens if isinstance(tokens, (list, tuple)) else list(tokens)
        return self._utf8.decode(self._decode_bytes(ids))

    def flush(self) -> str:
        """What is left, decoded with ``errors`` (U+FFFD for an unfinished character by
        default); the decoder is then empty and ready for a new stream."""
        return self._utf8.decode(b"", final=True)

    def reset(self) -> None:
        """Drop whatever is held back."""
        self._utf8.reset()
