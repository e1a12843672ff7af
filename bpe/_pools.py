"""Thread pools kept for the life of the process, so that a batch call does not start and
join its threads every time (on the project's host that cost 0.3 to 1 ms a call, a tenth
of encoding a 700 KB batch).

Work submitted here must never wait on other work of the same pool (every caller submits
compiled calls or numpy work that runs to its end), so a pool cannot deadlock on itself.
A forked child starts with no pools: the parent's threads do not exist in it.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

_lock = threading.Lock()
_pools: dict[tuple[str, int], ThreadPoolExecutor] = {}


#: Pools of more threads than this are not kept (their threads would stay for nothing).
MAX_KEPT = 64


def shared_pool(threads: int, name: str = "bpe") -> ThreadPoolExecutor:
    """The process's pool of ``threads`` threads for ``name``'s work, made on first use (a
    pool of its own, dropped after use, above MAX_KEPT threads; ValueError below 1)."""
    if threads > MAX_KEPT:
        return ThreadPoolExecutor(threads, thread_name_prefix=name)
    key = (name, threads)
    pool = _pools.get(key)
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = _pools[key] = ThreadPoolExecutor(threads, thread_name_prefix=name)
    return pool


def _forget_after_fork() -> None:
    global _lock
    _lock = threading.Lock()
    _pools.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


#: Items shorter than this on average (characters of a text, ids of a list) are mapped on
#: the calling thread: their Python work, under the GIL, outweighs what threads share.
SHORT_ITEMS = 4096


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def chunks(items, count: int) -> list:
    """``items`` (a list or tuple) in at most ``count`` contiguous slices, in order."""
    step = -(-len(items) // count)
    return [items[i : i + step] for i in range(0, len(items), step)]


def map_in_chunks(function, items, threads: int) -> list:
    """``[function(x) for x in items]`` on up to ``threads`` threads of a shared pool, in
    contiguous chunks, the results in order and the first exception (in the items' order)
    raised. A task for each item would cost the pool about 20 µs, more than encoding or
    decoding a short text; several chunks per thread keep threads evenly loaded when the
    items' sizes differ. More threads than usable CPUs, or threads for short items, only
    contend for the GIL (docs/performance.md), so then fewer threads, or none, run."""
    if threads < 1:
        raise ValueError(f"num_threads must be 1 or more, got {threads}")
    items = items if isinstance(items, (list, tuple)) else list(items)
    threads = min(threads, usable_cpus(), len(items))
    if threads > 1:
        try:
            if sum(map(len, items)) < SHORT_ITEMS * len(items):
                threads = 1
        except TypeError:  # an item without a length (an iterator of ids): no guess
            pass
    if threads <= 1:
        return [function(x) for x in items]
    out: list = []
    parts = shared_pool(threads).map(lambda chunk: [function(x) for x in chunk], chunks(items, 4 * threads))
    for part in parts:
        out.extend(part)
    return out
