"""Keep the memory a training step frees, so that the next step does not fault it in anew.

A step of the numpy GPT allocates and frees about a hundred megabytes of temporaries
(activations and their gradients). glibc gives a freed block above its mmap threshold
straight back to the kernel, and trims the top of a heap above its trim threshold, so each
step faulted the same memory in again: 16,000 to 28,000 minor page faults per step of a
16 x 128 batch, a quarter of its time, with the two slices' threads queueing on the
kernel's lock of the address space (docs/performance.md). With both thresholds raised,
freed blocks stay in the process for the next step. The process keeps its peak, which a
training process reaches at every step anyway.

The first batch that ``bpe.lm._parallel`` runs (a training step, or the scoring of a
batch) calls :func:`keep_freed_memory`. Only glibc has ``mallopt``; with another C library (musl, macOS, Windows) it does nothing.
``BPE_LM_KEEP_MEMORY=0`` in the environment leaves malloc as it is.

>>> isinstance(keep_freed_memory(), bool)
True
"""

from __future__ import annotations

import ctypes
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_LIMITS = (1 << 30, 32 << 20)  # 32 MiB where glibc refuses more (half its largest heap)

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory in the process; True when it took the settings.
    Idempotent: the first call decides, later calls return its answer."""
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get("BPE_LM_KEEP_MEMORY", "1").strip() == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):       # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    if not any(mallopt(_M_MMAP_THRESHOLD, limit) == 1 for limit in _MMAP_LIMITS):
        return False
    return mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1
