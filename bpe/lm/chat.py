"""The chat template of post-training: a prompt, then a response the loss falls on.

A conversation turn is ``USER prompt ASSISTANT response END``. When the vocabulary has the
special tokens ``<|user|>``, ``<|assistant|>`` and ``<|end|>`` (``bpe train --special ...``),
those are the markers, one token each. Otherwise the markers are the plain text
``"User: "`` and ``"\\nAssistant: "``, and END is ``<|endoftext|>`` when the vocabulary has
it (or nothing: generation then stops at its token limit).

The prompt part and the response part are encoded apart and joined, so the boundary
between them falls exactly between two tokens: the SFT loss mask covers the response and
END, and nothing of the prompt. Sampling encodes the prompt part the same way.

>>> import bpe
>>> t = ChatTemplate(bpe.get_encoding("cl100k_base"))
>>> ids, mask = t.example("2+2?", "4")
>>> t.enc.decode(ids)
'User: 2+2?\\nAssistant: 4<|endoftext|>'
>>> mask  # one per target (ids[1:]): the response "4" and the end token
[0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]
"""

from __future__ import annotations

import numpy as np

MARKERS = ("<|user|>", "<|assistant|>", "<|end|>")
PLAIN = ("User: ", "\nAssistant: ")


class ChatTemplate:
    def __init__(self, enc):
        self.enc = enc
        specials = enc.special_tokens
        if all(m in specials for m in MARKERS):
            self.user, self.assistant = [specials[MARKERS[0]]], [specials[MARKERS[1]]]
            self.end: int | None = specials[MARKERS[2]]
            self.kind = "special"
        else:
            self.user = enc.encode_ordinary(PLAIN[0])
            self.assistant = None  # part of the prompt's text, encoded with it
            self.end = specials.get("<|endoftext|>")
            self.kind = "plain"

    def prompt_ids(self, prompt: str) -> list[int]:
        """The tokens up to where the response begins."""
        if self.kind == "special":
            return self.user + self.enc.encode_ordinary(prompt) + self.assistant
        return self.enc.encode_ordinary(PLAIN[0] + prompt + PLAIN[1])

    def response_ids(self, response: str) -> list[int]:
        return self.enc.encode_ordinary(response) + ([self.end] if self.end is not None else [])

    def example(self, prompt: str, response: str) -> tuple[list[int], list[int]]:
        """The tokens of one turn and the loss mask over its targets (``ids[1:]``)."""
        p, r = self.prompt_ids(prompt), self.response_ids(response)
        return p + r, [0] * (len(p) - 1) + [1] * len(r)

    def response_text(self, ids: list[int]) -> str:
        """A sampled response's text, without END."""
        if self.end is not None and self.end in ids:
            ids = ids[:ids.index(self.end)]
        return self.enc.decode(ids)


def pad(rows: list[list[int]], value: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ids as one ``[B, L]`` array padded on the right, and their lengths ``[B]``."""
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.full((len(rows), int(lengths.max())), value, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out, lengths
