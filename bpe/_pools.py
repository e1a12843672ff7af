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
