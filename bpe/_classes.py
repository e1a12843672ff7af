"""The scanners' character classes, installed into the engine on first use (not at import).

One byte of class bits per code point, at tiktoken's Unicode version (``_unicode_data``),
from the bits the engine exports (``_core.CLASS_BITS``).
"""

from __future__ import annotations

import threading

from bpe import _core, _unicode_data, patterns

_lock = threading.Lock()


def table() -> bytes:
    """The class byte of every code point."""
    bits = _core.CLASS_BITS
    letter, number, up, lo = bits["L"], bits["N"], bits["UP"], bits["LO"]
    bits_of = {
        "Lu": letter | up, "Lt": letter | up, "Ll": letter | lo, "Lm": letter | up | lo,
        "Lo": letter | up | lo, "Mn": up | lo, "Mc": up | lo, "Me": up | lo,
        "Nd": number, "Nl": number, "No": number,
    }
    out = bytearray(0x110000)
    runs = _unicode_data.RUNS
    for k in range(0, len(runs), 2):
        value = bits_of.get(_unicode_data.CATEGORIES[runs[k + 1]], 0)
        if value:
            end = runs[k + 2] if k + 2 < len(runs) else 0x110000
            out[runs[k] : end] = bytes([value]) * (end - runs[k])
    for first, last in patterns.WHITE_SPACE:
        for cp in range(first, last + 1):
            out[cp] |= bits["WS"]
    return bytes(out)


def ensure() -> None:
    """Install the table once per process (any thread may call this first)."""
    if _core.unicode_classes_set():
        return
    with _lock:
        if not _core.unicode_classes_set():
            _core.set_unicode_classes(table())
