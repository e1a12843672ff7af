"""Reading and writing rank files, and finding the official ones.

A ``.tiktoken`` file has one line per token: the token's bytes in base64, a space, its rank.

A named encoding's rank file is looked for, in this order:

1. ``$BPE_VOCAB_DIR/<name>.tiktoken``;
2. the files shipped inside the package (``bpe/_vocab/<name>.tiktoken.gz``: o200k_base and
   cl100k_base, so that these two work offline with nothing to set);
3. bpe's own cache, ``$BPE_CACHE_DIR`` (default ``~/.cache/bpe``; empty: no cache), as
   ``<name>.tiktoken``;
4. tiktoken's cache (``$TIKTOKEN_CACHE_DIR``, ``$DATA_GYM_CACHE_DIR`` or
   ``<tmp>/data-gym-cache``), where tiktoken keeps it under the sha1 of its URL;
5. the official URL, downloaded into bpe's cache once its sha256 equals the pinned hash.

Every candidate is checked against the pinned sha256. A file in ``$BPE_VOCAB_DIR`` or in
the package that does not match is an error (the user pointed at it, or the install is
damaged); a cached file that does not match is passed over.

The engine's tables built from a named encoding's file are kept in bpe's cache too, as
``engines/<sha256 of the file>.v<format>.bin`` (``bpe/_image.pyx``: versioned, for this
build only, checksummed). A later start reads them instead of the rank file, which it then
neither reads nor checks. Writing one removes the same file's images in older formats.
Delete the folder to rebuild; ``BPE_CACHE_DIR=`` (empty) turns both caches off.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping, Optional, Union

from bpe import _bytes, _image, _json, _ranks
from bpe._files import write_atomic

PathLike = Union[str, "os.PathLike[str]"]


def _is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_hash(data: bytes, expected_hash: str) -> bool:
    """Whether ``data`` hashes to ``expected_hash`` (sha256, hex), as in tiktoken."""
    return sha256_hex(data) == expected_hash.lower()


def verify_hash(data: bytes, expected_hash: str, source: str) -> None:
    """Raise ValueError naming ``source`` and both hashes when ``data`` does not hash to
    ``expected_hash``."""
    actual = sha256_hex(data)
    if actual != expected_hash.lower():
        raise ValueError(
            f"sha256 mismatch for {source}: expected {expected_hash.lower()}, got {actual}"
        )


def parse_tiktoken_bpe(contents: bytes, source: str = "<bytes>") -> dict[bytes, int]:
    """Parse the ``.tiktoken`` format; errors name ``source`` and the line.

    >>> parse_tiktoken_bpe(b"IQ== 0\\nIg== 1\\n")
    {b'!': 0, b'"': 1}
    """
    table = _ranks.RankTable.from_tiktoken(contents)
    return table.to_dict() if table is not None else _parse_lines(contents, source)


def parse_tiktoken_ranks(contents: bytes, source: str = "<bytes>") -> "Ranks":
    """Like :func:`parse_tiktoken_bpe`, as a :class:`Ranks` (no dict until one is asked for).

    A compiled parser reads the file; for anything it does not accept, the line-by-line
    parser below reads it again, to say what is wrong and on which line (or, for what the
    compiled one leaves to it, such as very sparse ranks, to give the dict)."""
    table = _ranks.RankTable.from_tiktoken(contents)
    if table is not None:
        return Ranks(table)
    return Ranks(_ranks.RankTable.from_dict(_parse_lines(contents, source)))


class Ranks(Mapping):
    """{token bytes: rank}, read-only, kept as the flat table a rank file was parsed into.

    The named encodings get their tokens this way: the engine is built from the table, and
    the dict of 200,000 bytes objects (tens of megabytes) is made only when something asks
    for it (``Encoding.mergeable_ranks``, or any read of this mapping).

    >>> ranks = parse_tiktoken_ranks(b"IQ== 0\\nIg== 1\\n")
    >>> len(ranks), ranks[b'"'], dict(ranks)
    (2, 1, {b'!': 0, b'"': 1})
    """

    def __init__(self, table: Optional[_ranks.RankTable] = None, *,
                 load: Optional[Callable[[], _ranks.RankTable]] = None, key: Optional[bytes] = None):
        """``table``, or ``load``, which reads it when first needed; ``key`` (32 bytes, the
        pinned sha256 of the rank file) names the tables built from it in the cache, so that
        a start that finds them there need not read the file."""
        if table is None and load is None:
            raise TypeError("Ranks needs a table or a function that loads one")
        self._table = table
        self._load = load
        self.key = key
        self._dict: Optional[dict[bytes, int]] = None

    @property
    def table(self) -> _ranks.RankTable:
        if self._table is None:
            self._table = self._load()
        return self._table

    def has_table(self) -> bool:
        return self._table is not None

    def adopt(self, table: _ranks.RankTable) -> None:
        """Take the table from an engine loaded from the cache (the same tokens and ranks as
        the file the key names), instead of reading the file."""
        self._table = table

    def as_dict(self) -> dict[bytes, int]:
        """The dict (made once, then shared: do not change it)."""
        if self._dict is None:
            self._dict = self.table.to_dict()
        return self._dict

    def __getitem__(self, token: bytes) -> int:
        return self.as_dict()[token]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.table)

    def keys(self):
        return self.as_dict().keys()

    def items(self):
        return self.as_dict().items()

    def values(self):
        return self.as_dict().values()

    def __repr__(self) -> str:
        return f"<Ranks of {len(self):,} tokens>"


def _parse_lines(contents: bytes, source: str) -> dict[bytes, int]:
    """The slow parser: the dict, or the ValueError that names the line."""
    ranks: dict[bytes, int] = {}
    seen_ranks: dict[int, int] = {}
    for lineno, line in enumerate(contents.splitlines(), start=1):
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(
                f"{source}, line {lineno}: expected 'base64-token rank', got {line[:80]!r}"
            )
        token_b64, rank_text = parts
        try:
            token = base64.b64decode(token_b64, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"{source}, line {lineno}: invalid base64 token {token_b64[:80]!r}"
            ) from None
        if not (rank_text.isdigit() and rank_text.isascii()):
            raise ValueError(
                f"{source}, line {lineno}: rank must be a non-negative integer, got {rank_text[:40]!r}"
            )
        rank = int(rank_text)
        if rank >= 2**32 - 1:
            raise ValueError(f"{source}, line {lineno}: rank {rank} does not fit in 32 bits")
        if not token:
            raise ValueError(f"{source}, line {lineno}: empty token")
        if token in ranks:
            raise ValueError(f"{source}, line {lineno}: token {token!r} appears twice")
        if rank in seen_ranks:
            raise ValueError(
                f"{source}, line {lineno}: rank {rank} already given on line {seen_ranks[rank]}"
            )
        ranks[token] = rank
        seen_ranks[rank] = lineno
    return ranks


#: The rank files shipped inside the package (see its LICENSE).
SHIPPED = Path(__file__).parent / "_vocab"


def read_file(path: PathLike) -> bytes:
    """Bytes of a local file or an http(s) URL (no cache)."""
    path = os.fspath(path)
    if _is_url(path):
        import urllib.request  # only when downloading: it pulls in ssl and sockets

        with urllib.request.urlopen(path, timeout=60) as response:
            return response.read()
    with open(path, "rb") as f:
        return f.read()


def cache_dir() -> Optional[Path]:
    """bpe's own cache folder for downloaded rank files; None when ``$BPE_CACHE_DIR`` is set
    but empty (no cache, as tiktoken reads an empty ``$TIKTOKEN_CACHE_DIR``)."""
    if "BPE_CACHE_DIR" in os.environ:
        folder = os.environ["BPE_CACHE_DIR"]
        return Path(folder) if folder else None
    return Path(os.path.expanduser("~")) / ".cache" / "bpe"


def engine_image_path(key: Optional[bytes]) -> Optional[Path]:
    """Where the engine's built tables for the rank file of sha256 ``key`` are kept
    (``<bpe cache>/engines/``), or None: no key, or the cache is off."""
    folder = cache_dir()
    if key is None or folder is None:
        return None
    return folder / "engines" / f"{key.hex()}.v{_image.VERSION}.bin"


def tiktoken_cache_path(url: str) -> Optional[Path]:
    """Where tiktoken would have cached ``url``, or None when its cache is disabled."""
    if "TIKTOKEN_CACHE_DIR" in os.environ:
        folder = os.environ["TIKTOKEN_CACHE_DIR"]
    elif "DATA_GYM_CACHE_DIR" in os.environ:
        folder = os.environ["DATA_GYM_CACHE_DIR"]
    else:
        folder = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    if not folder:
        return None
    return Path(folder) / hashlib.sha1(url.encode()).hexdigest()


def fetch_verified(file_name: str, url: str, expected_hash: str) -> bytes:
    """The contents of a pinned file, found in the order this module's docstring gives."""
    vocab_dir = os.environ.get("BPE_VOCAB_DIR")
    if vocab_dir:
        candidate = Path(vocab_dir) / file_name
        if candidate.is_file():
            data = candidate.read_bytes()
            verify_hash(data, expected_hash, str(candidate))
            return data
    shipped = SHIPPED / f"{file_name}.gz"
    if shipped.is_file():
        data = gzip.decompress(shipped.read_bytes())
        verify_hash(data, expected_hash, str(shipped))
        return data
    folder = cache_dir()
    cached = folder / file_name if folder is not None else None
    tiktoken_cached = tiktoken_cache_path(url)
    for candidate in (cached, tiktoken_cached):
        if candidate is not None and candidate.is_file():
            data = candidate.read_bytes()
            if sha256_hex(data) == expected_hash:
                return data
    import http.client  # only when downloading (it costs a fifth of `import bpe`)

    try:
        data = read_file(url)
    except (OSError, http.client.HTTPException) as e:  # IncompleteRead is no OSError
        raise OSError(
            f"cannot find {file_name}: not in $BPE_VOCAB_DIR ({vocab_dir or 'unset'}), "
            f"not in the caches ({cached or 'bpe cache off'}, {tiktoken_cached or 'tiktoken cache off'}), "
            f"and downloading {url} failed: {e!r}"
        ) from e
    verify_hash(data, expected_hash, url)
    if cached is not None:
        try:
            write_atomic(cached, data)
        except OSError:
            pass  # a read-only home still gets the encoding, just not the cache
    return data


def load_tiktoken_bpe(tiktoken_bpe_file: PathLike, expected_hash: Optional[str] = None) -> dict[bytes, int]:
    """Read a ``.tiktoken`` rank file (a path or an http(s) URL) into ``{token bytes: rank}``.

    With ``expected_hash``, the file's sha256 must equal it. A malformed line raises
    ValueError naming the file and the line.

    >>> ranks = load_tiktoken_bpe("o200k_base.tiktoken")  # doctest: +SKIP
    >>> ranks[b"hello"]  # doctest: +SKIP
    24912
    """
    source = os.fspath(tiktoken_bpe_file)
    if _is_url(source):  # downloads go through tiktoken's cache, as in tiktoken
        contents = read_file_cached(source, expected_hash)
    else:
        contents = read_file(source)
    if expected_hash is not None:
        verify_hash(contents, expected_hash, source)
    ranks = parse_tiktoken_bpe(contents, source)
    if not ranks:
        raise ValueError(f"{source}: no tokens (the file is empty)")
    return ranks


def dump_tiktoken_bpe(bpe_ranks: Mapping[bytes, int], tiktoken_bpe_file: PathLike) -> None:
    """Write ranks in the ``.tiktoken`` format, ordered by rank (byte-exact with the official files)."""
    lines = [
        base64.b64encode(token) + b" " + str(rank).encode() + b"\n"
        for token, rank in sorted(bpe_ranks.items(), key=lambda item: item[1])
    ]
    write_atomic(tiktoken_bpe_file, b"".join(lines))


def read_file_cached(blobpath: PathLike, expected_hash: Optional[str] = None) -> bytes:
    """The bytes of a file or URL, through tiktoken's cache (``$TIKTOKEN_CACHE_DIR``, else
    ``$DATA_GYM_CACHE_DIR``, else ``<tmp>/data-gym-cache``; empty: no cache) under the sha1
    of ``blobpath``, as tiktoken's function of that name. With ``expected_hash``, a cached
    copy that does not match is fetched again, and fetched data that does not match is a
    ValueError."""
    blobpath = os.fspath(blobpath)
    cache_path = tiktoken_cache_path(blobpath)
    if cache_path is not None and cache_path.is_file():
        data = cache_path.read_bytes()
        if expected_hash is None or check_hash(data, expected_hash):
            return data
    data = read_file(blobpath)
    if expected_hash is not None:
        verify_hash(data, expected_hash, blobpath)
    if cache_path is not None:
        try:
            write_atomic(cache_path, data)
        except OSError:
            pass  # a read-only cache still gets the data, just not the copy
    return data


def data_gym_to_mergeable_bpe_ranks(
    vocab_bpe_file: PathLike,
    encoder_json_file: PathLike,
    vocab_bpe_hash: Optional[str] = None,
    encoder_json_hash: Optional[str] = None,
    clobber_one_byte_tokens: bool = False,
) -> dict[bytes, int]:
    """Ranks from GPT-2's original ``vocab.bpe`` and ``encoder.json`` files (paths or URLs,
    read through :func:`read_file_cached`), with tiktoken's signature.

    ``clobber_one_byte_tokens`` takes the single bytes' ranks from ``encoder.json`` instead
    of GPT-2's printable-first order."""
    vocab_bpe = read_file_cached(vocab_bpe_file, vocab_bpe_hash)
    encoder_json = read_file_cached(encoder_json_file, encoder_json_hash)
    return data_gym_ranks(vocab_bpe, encoder_json, clobber_one_byte_tokens,
                          os.fspath(vocab_bpe_file), os.fspath(encoder_json_file))


def data_gym_ranks(vocab_bpe: bytes, encoder_json: bytes, clobber_one_byte_tokens: bool = False,
                   vocab_source: str = "vocab.bpe", encoder_source: str = "encoder.json") -> dict[bytes, int]:
    """:func:`data_gym_to_mergeable_bpe_ranks` on the files' contents.

    GPT-2 wrote every byte as a printable character (``bpe._bytes``).
    """
    def to_bytes(text: str, where: str) -> bytes:
        try:
            return bytes(_bytes.CHAR_TO_BYTE[c] for c in text)
        except KeyError as e:
            raise ValueError(f"{where}: character {e.args[0]!r} stands for no byte") from None

    ranks = {bytes([b]): i for i, b in enumerate(_bytes.RANK_ORDER)}
    merges = vocab_bpe.decode("utf-8").split("\n")[1:-1]
    for lineno, merge in enumerate(merges, start=2):
        parts = merge.split()
        if len(parts) != 2:
            raise ValueError(f"{vocab_source}, line {lineno}: expected two tokens, got {merge!r}")
        where = f"{vocab_source}, line {lineno}"
        ranks[to_bytes(parts[0], where) + to_bytes(parts[1], where)] = len(ranks)
    document = _json.loads(encoder_json, encoder_source)
    if not isinstance(document, dict):
        raise ValueError(f"{encoder_source}: not an object of token: id")
    encoder = {to_bytes(k, encoder_source): v for k, v in document.items()}
    encoder.pop(b"<|endoftext|>", None)
    encoder.pop(b"<|startoftext|>", None)
    if clobber_one_byte_tokens:
        for token, rank in encoder.items():
            if len(token) == 1:
                ranks[token] = rank
    if encoder != ranks:
        raise ValueError(f"{encoder_source} does not agree with the merges in {vocab_source}")
    return ranks
