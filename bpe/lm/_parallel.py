"""Both cores for one training step: the batch is cut in slices that run side by side.

numpy runs element-wise work (softmax, GELU) and small matmuls (attention) on one core, and
releases the GIL while it does. BLAS threads its large matmuls by itself, but its idle
threads spin, and they slow the other slice's work more than they help. So while slices run
on our threads, BLAS is asked to keep to one thread each; the slices' gradients are then
summed, weighted by their share of the tokens (the mean loss over the whole batch).

>>> import numpy as np
>>> from bpe.lm.model import GPTConfig, init_params
>>> cfg = GPTConfig(vocab_size=20, ctx=4, d_model=8, n_layer=1, n_head=2)
>>> p = init_params(cfg)
>>> x = np.zeros((4, 4), np.int64)
>>> loss, grads = loss_and_grads(p, cfg, x, x)
>>> sorted(grads) == sorted(p)
True
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from bpe._pools import shared_pool
from bpe.lm import model
from bpe.lm._memory import keep_freed_memory

# (setter, getter) symbol names of the BLAS libraries numpy is built with
_BLAS_FUNCTIONS = [
    ("scipy_openblas_set_num_threads64_", "scipy_openblas_get_num_threads64_"),
    ("scipy_openblas_set_num_threads", "scipy_openblas_get_num_threads"),
    ("openblas_set_num_threads64_", "openblas_get_num_threads64_"),
    ("openblas_set_num_threads", "openblas_get_num_threads"),
]


def _find_blas():
    """The (set, get) thread-count functions of the BLAS loaded in this process, or None."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "blas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for setter, getter in _BLAS_FUNCTIONS:
            if hasattr(lib, setter) and hasattr(lib, getter):
                return getattr(lib, setter), getattr(lib, getter)
    return None


_BLAS = _find_blas()
_LOCK = threading.Lock()


@contextlib.contextmanager
def blas_threads(n: int):
    """BLAS uses ``n`` threads inside the block (when its thread count can be set)."""
    if _BLAS is None:
        yield
        return
    set_threads, get_threads = _BLAS
    with _LOCK:
        before = get_threads()
        set_threads(n)
        try:
            yield
        finally:
            set_threads(before)


def default_threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _pool(threads: int) -> ThreadPoolExecutor:
    return shared_pool(threads, "bpe-lm")


def _bounds(n: int, parts: int) -> list[tuple[int, int]]:
    """``_bounds(16, 2)`` -> [(0, 8), (8, 16)]"""
    cuts = [n * k // parts for k in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:]))


def token_nll(params, cfg, idx, targets, threads: int | None = None) -> np.ndarray:
    """:func:`model.token_nll` of the batch [B, T], slices of it side by side."""
    keep_freed_memory()
    threads = min(threads or default_threads(), len(idx))
    if threads <= 1 or _BLAS is None:
        return model.token_nll(params, cfg, idx, targets)
    with blas_threads(1):
        parts = [_pool(threads).submit(model.token_nll, params, cfg, idx[lo:hi], targets[lo:hi])
                 for lo, hi in _bounds(len(idx), threads)]
        return np.concatenate([f.result() for f in parts])


def loss_and_grads(params, cfg, idx, targets, threads: int | None = None):
    """Mean loss over the batch idx/targets [B, T] and its gradients, on ``threads`` threads."""
    keep_freed_memory()
    threads = min(threads or default_threads(), len(idx))
    if threads <= 1 or _BLAS is None:
        loss, cache = model.forward(params, cfg, idx, targets)
        return loss, model.backward(params, cfg, cache)
    def run(lo, hi):
        loss, cache = model.forward(params, cfg, idx[lo:hi], targets[lo:hi])
        return (hi - lo) / len(idx), loss, model.backward(params, cfg, cache)

    with blas_threads(1):
        results = [f.result() for f in [_pool(threads).submit(run, lo, hi)
                                        for lo, hi in _bounds(len(idx), threads)]]
    loss = sum(w * l for w, l, _ in results)
    grads = {}
    for name in params:
        g = results[0][2][name] * results[0][0]
        for w, _, other in results[1:]:
            g += other[name] * w
        grads[name] = g
    return loss, grads


def sum_over_slices(fn, n: int, threads: int | None = None):
    """``fn(lo, hi) -> (loss, grads, *extra)`` for the rows ``lo:hi`` of a batch of ``n``, each
    part already scaled to the whole batch, run on slices side by side and summed (the
    post-training losses of ``bpe.lm.post`` take a ``norm`` for this)."""
    keep_freed_memory()
    threads = min(threads or default_threads(), n)
    if threads <= 1 or _BLAS is None:
        return fn(0, n)
    with blas_threads(1):
        results = [f.result() for f in [_pool(threads).submit(fn, lo, hi) for lo, hi in _bounds(n, threads)]]
    grads = results[0][1]
    for other in results[1:]:
        for name, g in other[1].items():
            grads[name] += g
    extras = [sum(r[k] for r in results) if not isinstance(results[0][k], dict)
              else {key: sum(r[k][key] for r in results) for key in results[0][k]}
              for k in range(2, len(results[0]))]
    return (sum(r[0] for r in results), grads, *extras)
