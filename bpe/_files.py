"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Every write goes to a fresh temporary file in the destination's folder (created with
``O_EXCL``, so a planted file or symlink is never followed), then ``os.replace`` puts it in
place; on any failure the temporary file is removed and the destination is untouched.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> write_atomic(folder / "a.txt", b"hello")
>>> (folder / "a.txt").read_bytes()
b'hello'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import IO, Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


@contextlib.contextmanager
def open_atomic(path: PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """A file object to write ``path`` through; it replaces ``path`` when the block ends
    without an exception, and is removed otherwise."""
    path = os.fspath(path)
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: PathLike, data: bytes | str, encoding: str = "utf-8") -> None:
    """Write ``data`` (bytes, or str as ``encoding``) to ``path`` atomically."""
    if isinstance(data, str):
        data = data.encode(encoding)
    with open_atomic(path, "wb") as f:
        f.write(data)
