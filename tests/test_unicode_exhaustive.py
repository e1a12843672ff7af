"""Every code point, in the contexts where its category decides the split, against tiktoken.

The `regex` module's Unicode tables are newer than tiktoken's, and the two split
differently around the code points assigned since (U+330C0 among them). This walks all
of them: bpe must give tiktoken's ids for every one.
"""

from __future__ import annotations

import pytest

from conftest import OFFICIAL, oracle, ours

CONTEXTS = {
    "a{}b": lambda c: "a" + c + "b",
    "_{}": lambda c: "_" + c,
    "{}1": lambda c: c + "1",
    "{}'s": lambda c: c + "'s",
    "A{}a": lambda c: "A" + c + "a",
}
CODE_POINTS = [cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF]


@pytest.mark.slow
@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize("name", OFFICIAL)
def test_every_code_point(name, context):
    enc, tk = ours(name), oracle(name)
    make = CONTEXTS[context]
    texts = [make(chr(cp)) for cp in CODE_POINTS]
    encode = tk.encode_ordinary
    want = [encode(t) for t in texts]
    got_ids, offsets = enc.encode_batch_to_numpy(texts)
    got = got_ids.tolist()
    differing = [
        f"U+{CODE_POINTS[k]:04X}"
        for k in range(len(texts))
        if got[offsets[k] : offsets[k + 1]] != want[k]
    ]
    assert differing == [], f"{len(differing)} code points differ in {context!r}: {differing[:20]}"
