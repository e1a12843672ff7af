"""Reading documents: JSONL, plain text and HTML, each also gzip- or zstd-compressed.

The kind of a file comes from its name once ``.gz`` or ``.zst`` is taken off: ``.jsonl``,
``.ndjson`` and ``.json`` are JSON Lines (one object per line, the text in ``field``);
``.html`` and ``.htm`` are HTML, whose text trafilatura extracts (``pip install
'bpe-cy[html]'``); anything else is UTF-8 text, one document per file or, with
``split_on``, one per run of lines between separator lines.

Each document is a :class:`Document`: its text and the record it goes back into on output
(the JSONL object with every other field, or ``{"source": path}`` and ``"part"`` for text).

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> p = os.path.join(d, "f.txt")
>>> _ = open(p, "w").write("one\\n%\\ntwo\\nlines\\n")
>>> [doc.text for doc in read_documents([p], split_on="%")]
['one\\n', 'two\\nlines\\n']
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
from pathlib import Path
from typing import IO, Iterable, Iterator

JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
HTML_SUFFIXES = (".html", ".htm")


@dataclasses.dataclass
class Document:
    """One document: ``text``, and ``record`` (the fields written back around it)."""

    text: str
    record: dict
    source: str

    def output(self, text: str, field: str = "text") -> dict:
        """The record to write, holding ``text`` in ``field``."""
        out = dict(self.record)
        out[field] = text
        return out


def kind(path: str | os.PathLike) -> str:
    """``"jsonl"``, ``"html"`` or ``"text"``, from the name with ``.gz``/``.zst`` taken off."""
    name = str(path).lower()
    for ext in (".gz", ".zst", ".zstd"):
        if name.endswith(ext):
            name = name[: -len(ext)]
    if name.endswith(JSONL_SUFFIXES):
        return "jsonl"
    if name.endswith(HTML_SUFFIXES):
        return "html"
    return "text"


def open_binary(path: str | os.PathLike) -> IO[bytes]:
    """``path`` opened for reading bytes, decompressed when its name ends in .gz or .zst."""
    name = str(path).lower()
    if name.endswith(".gz"):
        return gzip.open(path, "rb")
    if name.endswith((".zst", ".zstd")):
        return _zstd_reader(path)
    return open(path, "rb")


def _zstd_reader(path) -> IO[bytes]:
    try:
        from compression import zstd  # type: ignore[import-not-found]  # Python 3.14

        return zstd.open(path, "rb")
    except ImportError:
        pass
    try:
        import zstandard
    except ImportError:
        raise ValueError(f"{path}: reading .zst files needs zstandard (pip install 'bpe-cy[data]')") from None
    f = open(path, "rb")
    # The stream reader reads but cannot iterate lines: buffer it.
    return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(f, closefd=True))


def read_documents(paths: Iterable[str | os.PathLike], *, field: str = "text",
                   split_on: str | None = None, stats: dict | None = None) -> Iterator[Document]:
    """The documents of ``paths`` in order (see the module's docstring for the kinds).

    Invalid UTF-8 becomes U+FFFD. A JSONL line that is not an object, or lacks ``field``,
    or holds something other than a string there, is a ``ValueError`` naming file and line.
    ``stats["bytes"]`` (when given) grows by the bytes read, after decompression.
    """
    for path in paths:
        k = kind(path)
        if k == "jsonl":
            yield from _jsonl(path, field, stats)
        elif k == "html":
            yield from _html(path, stats)
        else:
            yield from _text_file(path, split_on, stats)


def _count(stats, n: int) -> None:
    if stats is not None:
        stats["bytes"] = stats.get("bytes", 0) + n


def _jsonl(path, field: str, stats) -> Iterator[Document]:
    with open_binary(path) as raw:
        for lineno, line in enumerate(raw, 1):
            _count(stats, len(line))
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except (ValueError, RecursionError) as e:
                raise ValueError(f"{path}:{lineno}: not a JSON object ({e})") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path}:{lineno}: a JSON {type(row).__name__}, not an object")
            if field not in row:
                raise ValueError(f"{path}:{lineno}: no field {field!r} (it has "
                                 f"{', '.join(map(repr, row)) or 'no fields'}; choose one with --field)")
            text = row[field]
            if not isinstance(text, str):
                raise ValueError(f"{path}:{lineno}: field {field!r} holds a JSON "
                                 f"{type(text).__name__}, not a string")
            yield Document(text, row, str(path))


def _text_file(path, split_on: str | None, stats) -> Iterator[Document]:
    with open_binary(path) as raw:
        f = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        if split_on is None:
            text = f.read()
            _count(stats, len(text.encode("utf-8", "surrogatepass")))
            yield Document(text, {"source": str(path)}, str(path))
            return
        sep = split_on.strip()
        part, lines = 0, []
        for line in f:
            _count(stats, len(line.encode("utf-8", "surrogatepass")))
            if line.strip() == sep:
                if "".join(lines).strip():
                    yield Document("".join(lines), {"source": str(path), "part": part}, str(path))
                    part += 1
                lines = []
            else:
                lines.append(line)
        if lines and "".join(lines).strip():
            yield Document("".join(lines), {"source": str(path), "part": part}, str(path))


def _html(path, stats) -> Iterator[Document]:
    try:
        import trafilatura
    except ImportError:
        raise ValueError(f"{path}: extracting text from HTML needs trafilatura "
                         "(pip install 'bpe-cy[html]')") from None
    with open_binary(path) as raw:
        data = raw.read()
    _count(stats, len(data))
    text = trafilatura.extract(data.decode("utf-8", errors="replace"), include_comments=False,
                               include_tables=True, favor_recall=True) or ""
    yield Document(text, {"source": str(path)}, str(path))


def check_inputs(paths: Iterable[str]) -> list[Path]:
    """The paths as Paths; a ValueError for the first that is missing or not a file."""
    out = []
    for name in paths:
        p = Path(name)
        if not p.is_file():
            raise ValueError(f"no such file: {name}" if not p.exists() else f"not a file: {name}")
        out.append(p)
    return out
