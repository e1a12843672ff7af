"""``Encoding``: tiktoken's API over the compiled engine."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, AbstractSet, Collection, Literal, Mapping, Sequence

from bpe import _classes, _core, _image, _saved, patterns
from bpe._files import write_atomic
from bpe._pools import chunks, map_in_chunks, shared_pool, usable_cpus
from bpe._ranks import RankTable
from bpe._special import (check_each, common_prefix, fix_surrogates, refuse_marked, special_token_regex,
                          valid_text, watch_for)
from bpe.load import Ranks, engine_image_path

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


_PLAIN_SETS = (set, frozenset)


class Encoding:
    """A byte-level BPE encoding with tiktoken's API and ids.

    >>> enc = Encoding("tiny", pat_str=r"\\S+|\\s+",
    ...                mergeable_ranks={bytes([b]): b for b in range(256)} | {b"hi": 256},
    ...                special_tokens={"<|endoftext|>": 257})
    >>> enc.encode("hi hi<|endoftext|>", allowed_special="all")
    [256, 32, 256, 257]
    """

    def __init__(
        self,
        name: str,
        *,
        pat_str: str,
        mergeable_ranks: Mapping[bytes, int],
        special_tokens: dict[str, int],
        explicit_n_vocab: int | None = None,
    ):
        self.name = name
        self._pat_str = pat_str
        # A Ranks (a named encoding's rank file) gives the engine's tables from the cache, or
        # builds them from its flat table; the dict is made when someone reads
        # self._mergeable_ranks.
        self._ranks = mergeable_ranks
        self._special_tokens = special_tokens
        self._family = patterns.scanner_family(pat_str)
        core = table = None
        if isinstance(mergeable_ranks, Ranks):
            core = _engine_from_cache(mergeable_ranks, special_tokens, self._family)
            table = mergeable_ranks.table
        _check_ids(mergeable_ranks, special_tokens, table)
        self.max_token_value = max(
            table.max_rank if table is not None else max(mergeable_ranks.values()),
            max(special_tokens.values(), default=0),
        )
        if explicit_n_vocab:
            if len(mergeable_ranks) + len(special_tokens) != explicit_n_vocab:
                raise ValueError(
                    f"explicit_n_vocab={explicit_n_vocab} but there are {len(mergeable_ranks)} "
                    f"mergeable and {len(special_tokens)} special tokens"
                )
            if self.max_token_value != explicit_n_vocab - 1:
                raise ValueError(
                    f"explicit_n_vocab={explicit_n_vocab} but the largest id is {self.max_token_value}"
                )
        self._special_token_values = set(special_tokens.values())
        if self._family:
            _classes.ensure()
        else:
            # A bad pattern fails here. A scanner family's pattern is one of the known ones,
            # compiled only if something asks for the regex (about 0.15 s for o200k's).
            self._split_regex = patterns.compile_pattern(pat_str)
        if core is None:
            core = _core.CoreBPE(table if table is not None else mergeable_ranks, special_tokens, self._family)
            if isinstance(mergeable_ranks, Ranks):
                _engine_to_cache(mergeable_ranks, core)
        self._core_bpe = core

    @property
    def _mergeable_ranks(self) -> dict[bytes, int]:
        ranks = self._ranks
        return ranks.as_dict() if isinstance(ranks, Ranks) else ranks

    @functools.cached_property
    def _split_regex(self):
        return patterns.compile_pattern(self._pat_str)

    def __repr__(self) -> str:
        return f"<Encoding {self.name!r}>"

    # ------------------------------------------------------------------------------------
    # Encoding

    def _ordinary(self, text: str) -> list[int]:
        if self._family:
            return self._core_bpe.encode_ordinary(text)
        return self._core_bpe.encode_pieces(patterns.findall(self._split_regex, text, self._pat_str))

    def _special_policy(self, allowed_special, disallowed_special):
        """Resolve ``"all"`` in the special-token arguments as tiktoken does; TypeError for an
        ``allowed_special`` that is neither ``"all"`` nor a set (tiktoken's too)."""
        if allowed_special == "all":
            allowed_special = self.special_tokens_set
        elif not isinstance(allowed_special, AbstractSet):
            raise TypeError(f"allowed_special must be 'all' or a set of str, not "
                            f"{type(allowed_special).__name__}")
        if disallowed_special == "all":
            disallowed_special = self.special_tokens_set - allowed_special
        return allowed_special, disallowed_special

    def _encode_allowed(self, text: str, allowed_special: AbstractSet[str]) -> list[int]:
        """Encode with the allowed special tokens turned into their ids."""
        allowed = frozenset(t for t in allowed_special if t in self._special_tokens)
        if not allowed:
            return self._ordinary(text)
        out: list[int] = []
        start = 0
        for match in special_token_regex(allowed).finditer(text):
            out += self._ordinary(text[start : match.start()])
            out.append(self._special_tokens[match.group()])
            start = match.end()
        out += self._ordinary(text[start:])
        return out

    def encode_ordinary(self, text: str) -> list[int]:
        """Encodes a string into tokens, ignoring special tokens.

        Equivalent to ``encode(text, disallowed_special=())`` (but slightly faster).

        >>> enc.encode_ordinary("hello world")  # doctest: +SKIP
        [24912, 2375]
        """
        try:
            return self._ordinary(text)
        except UnicodeEncodeError:
            return self._ordinary(fix_surrogates(text))

    def encode(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        """Encodes a string into tokens.

        Special tokens are artificial tokens used to unlock capabilities from a model, such
        as fill-in-the-middle. By default, text that looks like a special token raises
        ValueError, because a user's text should not be able to inject one. Use
        ``allowed_special`` to encode such text as its special token, and
        ``disallowed_special=()`` (or removing the token from it) to encode it as ordinary text.

        >>> enc.encode("hello world")  # doctest: +SKIP
        [24912, 2375]
        >>> enc.encode("<|endoftext|>", allowed_special="all")  # doctest: +SKIP
        [199999]
        >>> enc.encode("<|endoftext|>", disallowed_special=())  # doctest: +SKIP
        [27, 91, 419, 1440, 919, 91, 29]
        """
        prefix = self._special_prefix
        if (type(allowed_special) in _PLAIN_SETS and not allowed_special and disallowed_special == "all"
                and type(text) is str and (prefix is None or (prefix and (prefix[0] not in text or prefix not in text)))):
            # The default call on text in which no special token starts (a memchr for the first
            # character of their shared start, then the whole start where that character
            # occurs): nothing to refuse and nothing to find, so straight to the engine.
            try:
                return self._ordinary(text)
            except UnicodeEncodeError:
                return self._ordinary(fix_surrogates(text))
        allowed_special, disallowed_special = self._special_policy(allowed_special, disallowed_special)
        check_each((text,), disallowed_special)
        try:
            return self._encode_allowed(text, allowed_special)
        except UnicodeEncodeError:
            return self._encode_allowed(fix_surrogates(text), allowed_special)

    def encode_to_numpy(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> "npt.NDArray[np.uint32]":
        """Like :meth:`encode`, as a ``uint32`` numpy array.

        >>> enc.encode_to_numpy("hello world")  # doctest: +SKIP
        array([24912,  2375], dtype=uint32)
        """
        import numpy as np

        allowed_special, disallowed_special = self._special_policy(allowed_special, disallowed_special)
        check_each((text,), disallowed_special)
        if self._fast_path(allowed_special):
            try:
                buf = self._core_bpe.encode_batch_buffer([text])[0]
            except UnicodeEncodeError:
                buf = self._core_bpe.encode_batch_buffer([fix_surrogates(text)])[0]
            return np.frombuffer(buf, dtype=np.uint32)
        return np.array(self.encode(text, allowed_special=allowed_special, disallowed_special=()),
                        dtype=np.uint32)

    def _fast_path(self, allowed_special) -> bool:
        """True when the compiled scanner can do all the work (no special tokens to find)."""
        return bool(self._family) and not (set(allowed_special) & self.special_tokens_set)

    def _in_chunks(self, function, texts: list[str], num_threads: int) -> list:
        """Run ``function`` (a compiled batch call that releases the GIL) over contiguous
        chunks of ``texts`` on up to ``num_threads`` threads; the results in order. More
        threads than usable CPUs only take turns (the default 8 on 2 CPUs ran slower than
        2 threads; docs/performance.md)."""
        threads = min(num_threads, usable_cpus())
        if threads <= 1 or len(texts) < 2 * threads:
            return [function(texts)]
        return list(shared_pool(threads).map(function, chunks(texts, threads)))

    def _batch_call(self, function, texts: list[str], num_threads: int) -> list:
        try:
            return self._in_chunks(function, texts, num_threads)
        except UnicodeEncodeError:
            return self._in_chunks(function, [fix_surrogates(t) for t in texts], num_threads)

    def _checked_batch(self, function, texts: list[str], num_threads: int, disallowed_special) -> list:
        """``_batch_call`` of a compiled batch call that also refuses disallowed special
        tokens: each thread marks the texts holding the tokens' shared start (a memchr on
        UTF-8 in cache; CPython's ``in`` on 2-byte strs, before the threads start, took 2-5%
        of a batch), and only those are searched. The parts come back without the marks."""
        disallowed = frozenset(disallowed_special)
        watch = watch_for(disallowed)
        if disallowed and not watch:
            check_each(texts, disallowed)
        parts = self._batch_call(functools.partial(function, watch=watch), texts, num_threads)
        refuse_marked(texts, parts, disallowed)
        return [part[:-1] for part in parts]

    def encode_batch_to_numpy(
        self,
        texts: Sequence[str],
        *,
        num_threads: int = 8,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> "tuple[npt.NDArray[np.uint32], npt.NDArray[np.int64]]":
        """Encode many texts into one flat ``uint32`` array plus ``int64`` offsets.

        Text ``k`` is ``ids[offsets[k]:offsets[k + 1]]``; ``len(offsets) == len(texts) + 1``.
        No Python list of ints is built, and contiguous chunks of the batch run on
        ``num_threads`` threads with the GIL released: the fast way to encode a corpus.

        >>> ids, offsets = enc.encode_batch_to_numpy(["hello", "hello world"])  # doctest: +SKIP
        >>> ids[offsets[1]:offsets[2]]  # doctest: +SKIP
        array([24912,  2375], dtype=uint32)
        """
        import numpy as np

        texts = list(texts)
        allowed_special, disallowed_special = self._special_policy(allowed_special, disallowed_special)
        offsets = np.zeros(len(texts) + 1, dtype=np.int64)
        if self._fast_path(allowed_special):
            parts = self._checked_batch(self._core_bpe.encode_batch_buffer, texts, num_threads,
                                        disallowed_special)
            # one part is the array as it is; several are copied together once
            ids = (np.frombuffer(parts[0][0], dtype=np.uint32) if len(parts) == 1 else
                   np.concatenate([np.frombuffer(buf, dtype=np.uint32) for buf, _ in parts]))
            position, base = 1, 0
            for buf, ends in parts:
                offsets[position : position + len(ends)] = np.asarray(ends, dtype=np.int64) + base
                position += len(ends)
                base += len(buf) // 4
            return ids, offsets
        check_each(texts, disallowed_special)
        encoded = [self.encode(t, allowed_special=allowed_special, disallowed_special=()) for t in texts]
        offsets[1:] = np.cumsum([len(e) for e in encoded])
        flat = np.fromiter((t for e in encoded for t in e), dtype=np.uint32, count=int(offsets[-1]))
        return flat, offsets

    def count(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> int:
        """``len(encode(text, ...))`` without building the list.

        >>> enc.count("hello world")  # doctest: +SKIP
        2
        """
        return self.count_batch([text], num_threads=1, allowed_special=allowed_special,
                                disallowed_special=disallowed_special)[0]

    def count_batch(
        self,
        texts: Sequence[str],
        *,
        num_threads: int = 8,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[int]:
        """The token count of each text, without building id lists, on ``num_threads`` threads.

        >>> enc.count_batch(["hello world", "hi"])  # doctest: +SKIP
        [2, 1]
        """
        texts = list(texts)
        allowed_special, disallowed_special = self._special_policy(allowed_special, disallowed_special)
        if self._fast_path(allowed_special):
            parts = self._checked_batch(self._core_bpe.count_batch, texts, num_threads, disallowed_special)
            return [n for (part,) in parts for n in part]
        check_each(texts, disallowed_special)
        return [len(self.encode(t, allowed_special=allowed_special, disallowed_special=()))
                for t in texts]

    def encode_ordinary_batch(self, text: list[str], *, num_threads: int = 8) -> list[list[int]]:
        """Encodes a list of strings into tokens, in parallel, ignoring special tokens.

        The engine releases the GIL, so the threads really run at once.

        >>> enc.encode_ordinary_batch(["hello world", "goodbye world"])  # doctest: +SKIP
        [[24912, 2375], [176407, 2375]]
        """
        return map_in_chunks(self.encode_ordinary, text, num_threads)

    def encode_batch(
        self,
        text: list[str],
        *,
        num_threads: int = 8,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[list[int]]:
        """Encodes a list of strings into tokens, in parallel (see :meth:`encode`).

        >>> enc.encode_batch(["hello world", "goodbye world"])  # doctest: +SKIP
        [[24912, 2375], [176407, 2375]]
        """
        allowed_special, disallowed_special = self._special_policy(allowed_special, disallowed_special)
        if not isinstance(disallowed_special, frozenset):
            disallowed_special = frozenset(disallowed_special)
        encoder = functools.partial(
            self.encode, allowed_special=allowed_special, disallowed_special=disallowed_special
        )
        return map_in_chunks(encoder, text, num_threads)

    def encode_with_unstable(
        self,
        text: str,
        *,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> tuple[list[int], list[list[int]]]:
        """Encodes a string into stable tokens and possible completion sequences.

        The last tokens of a text may change when more text follows. This returns the
        tokens that cannot change, and every token sequence the unstable rest could become.
        Note that the stable tokens are only a lower bound, and the completions are sorted.

        >>> enc.encode_with_unstable("hello fanta")  # doctest: +SKIP
        ([24912], [[...], ...])
        """
        allowed_special, disallowed_special = self._special_policy(allowed_special, disallowed_special)
        check_each((text,), disallowed_special)
        from bpe._unstable import encode_with_unstable

        try:
            text.encode("utf-8")  # only to find lone surrogates, without encoding twice
        except UnicodeEncodeError:
            text = fix_surrogates(text)
        return encode_with_unstable(self, text, allowed_special)

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """Encodes text corresponding to a single token to its token value.

        NOTE: this will encode all special tokens.

        Raises ``KeyError`` if the token is not in the vocabulary.

        >>> enc.encode_single_token("hello")  # doctest: +SKIP
        24912
        """
        if isinstance(text_or_bytes, str):
            text_or_bytes = text_or_bytes.encode("utf-8")
        elif not isinstance(text_or_bytes, bytes):
            raise TypeError(f"'{type(text_or_bytes).__name__}' object is not an instance of 'bytes'")
        rank = self._core_bpe.rank_of(text_or_bytes) if text_or_bytes else None
        if rank is not None:
            return rank
        try:
            special = self._special_tokens.get(text_or_bytes.decode("utf-8"))
        except UnicodeDecodeError:
            special = None
        if special is not None:
            return special
        raise KeyError(bytes(text_or_bytes))

    def _encode_bytes(self, text: bytes) -> list[int]:
        """Encodes any bytes, invalid UTF-8 included, as tiktoken does: valid UTF-8 as
        :meth:`encode_ordinary` would; from the first invalid byte on, the bytes join the
        last piece (and the whitespace tokens before it) and are merged as one piece.

        ``decode_bytes(_encode_bytes(b)) == b`` for all bytes ``b``.

        >>> enc._encode_bytes(b"hello \xff")  # doctest: +SKIP
        [24912, 220, 3]
        """
        if not isinstance(text, bytes):
            raise TypeError(f"'{type(text).__name__}' object is not an instance of 'bytes'")
        try:
            return self.encode_ordinary(text.decode("utf-8"))
        except UnicodeDecodeError as e:
            valid = e.start
        pieces = self.pieces(text[:valid].decode("utf-8"))
        tokens = self._core_bpe.encode_pieces(pieces[:-1])
        last = self._core_bpe.encode_pieces(pieces[-1:])
        tokens += last
        n_last = len(last)
        # tiktoken's rule: whitespace tokens before an all-whitespace last piece join it.
        decode = self._core_bpe.decode_single_token_bytes
        if n_last and _is_space(decode(tokens[-n_last])):
            while n_last < len(tokens) and _is_space(decode(tokens[-n_last - 1])):
                n_last += 1
        unstable = self._core_bpe.decode_bytes(tokens[len(tokens) - n_last :]) + text[valid:]
        del tokens[len(tokens) - n_last :]
        return tokens + self._core_bpe.encode_single_piece(unstable)

    def pieces(self, text: str) -> list[str]:
        """The pieces the split pattern cuts ``text`` into (an addition; tiktoken has none).

        >>> enc.pieces("Hello world's")  # doctest: +SKIP
        ['Hello', ' world', "'s"]
        """
        text = valid_text(text)
        if self._family:
            return self._core_bpe.split(text)
        return patterns.findall(self._split_regex, text, self._pat_str)

    def _encode_single_piece(self, text_or_bytes: str | bytes) -> list[int]:
        if isinstance(text_or_bytes, str):
            text_or_bytes = text_or_bytes.encode("utf-8")
        return self._core_bpe.encode_single_piece(text_or_bytes)

    def _encode_only_native_bpe(self, text: str) -> list[int]:
        """Encode with the `regex` reference splitter and the compiled merge (for tests)."""
        return self._core_bpe.encode_pieces(patterns.split(self._pat_str, text))

    # ------------------------------------------------------------------------------------
    # Cutting text by tokens (additions: tiktoken has none of these)

    def truncate(
        self,
        text: str,
        max_tokens: int,
        *,
        side: Literal["right", "left"] = "right",
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> str:
        """The longest part of ``text`` that fits in ``max_tokens`` tokens: its start
        (``side="right"`` cuts the right end off) or its end (``side="left"``).

        The cut falls on a token boundary of the whole text's encoding that is also a
        character boundary, and the part's own encoding has at most ``max_tokens`` tokens.
        One encode of the text (and a count of the part), not a search of repeated encodes.
        The special-token policy is :meth:`encode`'s.

        >>> enc.truncate("hello world, again", 2)  # doctest: +SKIP
        'hello world'
        >>> enc.truncate("hello world, again", 2, side="left")  # doctest: +SKIP
        ', again'
        """
        from bpe import _windows

        return _windows.truncate(self, text, max_tokens, side, allowed_special, disallowed_special)

    def split_tokens(
        self,
        text: str,
        max_tokens: int,
        *,
        overlap: int = 0,
        prefer: Literal["paragraph", "sentence", "line"] | None = None,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> list[str]:
        """``text`` in consecutive windows of at most ``max_tokens`` tokens, neighbours
        sharing ``overlap`` tokens (for retrieval chunks).

        Windows are cut only at token boundaries of the whole text's encoding that are also
        character boundaries, and token counts are that encoding's; where such a boundary
        does not fall exactly ``overlap`` tokens back, the overlap is the next smaller one.
        Dropping from each window the part the one before it already holds gives back
        ``text`` exactly (:meth:`split_tokens_offsets` says where each window lies).
        ``prefer`` ends a window at the last paragraph, sentence or line end in its last
        quarter, when there is one.

        >>> enc.split_tokens("one two three four five", 2, overlap=1)  # doctest: +SKIP
        ['one two', ' two three', ' three four', ' four five']
        """
        spans = self.split_tokens_offsets(text, max_tokens, overlap=overlap, prefer=prefer,
                                          allowed_special=allowed_special,
                                          disallowed_special=disallowed_special)
        fixed = valid_text(text)
        return [fixed[a:b] for a, b in spans[:, :2].tolist()]

    def split_tokens_offsets(
        self,
        text: str,
        max_tokens: int,
        *,
        overlap: int = 0,
        prefer: Literal["paragraph", "sentence", "line"] | None = None,
        allowed_special: Literal["all"] | AbstractSet[str] = set(),  # noqa: B006
        disallowed_special: Literal["all"] | Collection[str] = "all",
    ) -> "npt.NDArray[np.int64]":
        """The windows of :meth:`split_tokens` as an ``int64`` array of shape ``[n, 4]``:
        start and end character offsets, start and end token indices (into
        ``encode(text, ...)``), one row per window."""
        import numpy as np

        from bpe import _windows

        rows = _windows.windows(self, text, max_tokens, overlap, prefer, allowed_special, disallowed_special)
        return np.array(rows, dtype=np.int64).reshape(-1, 4)

    # ------------------------------------------------------------------------------------
    # Decoding

    def decode_bytes(self, tokens: Sequence[int]) -> bytes:
        """Decodes a list of tokens into bytes.

        >>> enc.decode_bytes([24912, 2375])  # doctest: +SKIP
        b'hello world'
        """
        return self._core_bpe.decode_bytes(tokens)

    def decode(self, tokens: Sequence[int], errors: str = "replace") -> str:
        """Decodes a list of tokens into a string.

        Bytes that are not valid UTF-8 (a token sequence cut in the middle of a character)
        become U+FFFD by default; ``errors`` takes the values ``bytes.decode`` takes.

        >>> enc.decode([24912, 2375])  # doctest: +SKIP
        'hello world'
        """
        return self._core_bpe.decode_bytes(tokens).decode("utf-8", errors=errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """Decodes a token into bytes; KeyError for an id no token has.

        >>> enc.decode_single_token_bytes(24912)  # doctest: +SKIP
        b'hello'
        """
        return self._core_bpe.decode_single_token_bytes(token)

    def decode_tokens_bytes(self, tokens: Sequence[int]) -> list[bytes]:
        """Decodes a list of tokens into a list of bytes, one per token.

        >>> enc.decode_tokens_bytes([24912, 2375])  # doctest: +SKIP
        [b'hello', b' world']
        """
        single = self._core_bpe.decode_single_token_bytes
        return [single(token) for token in tokens]

    def decode_with_offsets(self, tokens: Sequence[int]) -> tuple[str, list[int]]:
        """Decodes tokens into a string, and the character offset where each token starts.

        A token that starts inside a character (its first byte is a UTF-8 continuation
        byte) gets the offset of that character.

        >>> enc.decode_with_offsets([24912, 2375])  # doctest: +SKIP
        ('hello world', [0, 5])
        """
        token_bytes = self.decode_tokens_bytes(tokens)
        offsets = []
        chars = 0
        for token in token_bytes:
            starts_inside = 0x80 <= token[0] < 0xC0
            offsets.append(max(0, chars - starts_inside))
            chars += sum(1 for b in token if not 0x80 <= b < 0xC0)
        text = b"".join(token_bytes).decode("utf-8", errors="strict")
        return text, offsets

    def decode_batch(
        self, batch: Sequence[Sequence[int]], *, errors: str = "replace", num_threads: int = 8
    ) -> list[str]:
        """Decodes a batch (list of lists of tokens) into a list of strings."""
        decoder = functools.partial(self.decode, errors=errors)
        return map_in_chunks(decoder, batch, num_threads)

    def decode_bytes_batch(self, batch: Sequence[Sequence[int]], *, num_threads: int = 8) -> list[bytes]:
        """Decodes a batch (list of lists of tokens) into a list of bytes."""
        return map_in_chunks(self.decode_bytes, batch, num_threads)

    # ------------------------------------------------------------------------------------
    # Miscellaneous

    def token_byte_values(self) -> list[bytes]:
        """The bytes of every mergeable token, sorted."""
        return list(self._sorted_token_bytes)

    @functools.cached_property
    def _sorted_token_bytes(self) -> list[bytes]:
        return sorted(self._mergeable_ranks)

    @property
    def pat_str(self) -> str:
        """The split pattern (read-only; an addition to tiktoken's public names)."""
        return self._pat_str

    @property
    def mergeable_ranks(self) -> dict[bytes, int]:
        """{token bytes: rank} of the mergeable tokens (the Encoding's own dict: do not change it)."""
        return self._mergeable_ranks

    @property
    def special_tokens(self) -> dict[str, int]:
        """{text: id} of the special tokens (the Encoding's own dict: do not change it)."""
        return self._special_tokens

    @property
    def eot_token(self) -> int:
        return self._special_tokens["<|endoftext|>"]

    @functools.cached_property
    def _special_prefix(self) -> str:
        """What every special token begins with; None when there are no special tokens to
        look for, '' when they share no start (then every text takes the full check)."""
        return common_prefix(frozenset(self._special_tokens)) if self._special_tokens else None

    @functools.cached_property
    def special_tokens_set(self) -> set[str]:
        return set(self._special_tokens.keys())

    def is_special_token(self, token: int) -> bool:
        assert isinstance(token, int)
        return token in self._special_token_values

    @property
    def n_vocab(self) -> int:
        """For backwards compatibility. Prefer to use ``enc.max_token_value + 1``."""
        return self.max_token_value + 1

    def save(self, path) -> None:
        """Save pattern, special tokens and ranks to one file that :meth:`Encoding.load` reads.

        The format is versioned JSON (see ``bpe._saved``), never pickle, written atomically.
        For a rank file that tiktoken reads, use
        ``bpe.dump_tiktoken_bpe(enc.mergeable_ranks, path)``.

        >>> enc.save("my.tok"); Encoding.load("my.tok").encode("hi") == enc.encode("hi")  # doctest: +SKIP
        True
        """
        write_atomic(path, self.to_saved_json())

    @classmethod
    def load(cls, path) -> "Encoding":
        """The Encoding that :meth:`save` wrote to ``path``; a ValueError naming the file for
        anything that is not such a file.

        >>> enc = bpe.Encoding.load("my.tok")  # doctest: +SKIP
        """
        kwargs, source = _saved.read(path)
        return cls._from_saved(kwargs, source)

    @classmethod
    def from_saved_json(cls, text: str, source: str = "<json>") -> "Encoding":
        """Like :meth:`load`, from the file's text (``source`` names it in errors)."""
        return cls._from_saved(_saved.parse(text, source), source)

    def to_saved_json(self) -> str:
        """The text :meth:`save` writes."""
        return _saved.dumps(self.name, self._pat_str, self._mergeable_ranks, self._special_tokens)

    @classmethod
    def _from_saved(cls, kwargs: dict, source: str) -> "Encoding":
        try:
            return cls(**kwargs)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None

    def __getstate__(self) -> object:
        from bpe import registry

        if self is registry.ENCODINGS.get(self.name):
            return self.name
        return {
            "name": self.name,
            "pat_str": self._pat_str,
            "mergeable_ranks": self._mergeable_ranks,
            "special_tokens": self._special_tokens,
        }

    def __setstate__(self, value: object) -> None:
        from bpe import registry

        if isinstance(value, str):
            self.__dict__ = registry.get_encoding(value).__dict__
            return
        self.__init__(**value)


def _is_space(token: bytes) -> bool:
    return all(b in b" \n\t" for b in token)


def _engine_from_cache(ranks: Ranks, special_tokens: dict[str, int], family: int):
    """The engine whose tables an earlier process built for these ranks and kept in the
    cache (``bpe.load.engine_image_path``), or None; the ranks then take their table from it
    instead of reading the rank file."""
    path = engine_image_path(ranks.key)
    if path is None:
        return None
    core = _core.CoreBPE.load_image(path, ranks.key, special_tokens, family)
    if core is not None and not ranks.has_table():
        ranks.adopt(core.rank_table())
    return core


def _engine_to_cache(ranks: Ranks, core) -> None:
    """Keep the engine's tables in the cache for the next start (atomically; a cache that
    cannot be written is passed over: the next start builds the tables again)."""
    path = engine_image_path(ranks.key)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".tmp", delete=False) as f:
            temporary = Path(f.name)
        try:
            core.save_image(temporary, ranks.key)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)
        _remove_older_images(path)
    except OSError:
        pass


def _remove_older_images(path: Path) -> None:
    """Delete the images of the same rank file in older formats (``<key>.v<N>.bin``, N below
    this build's): no build reads them once a newer bpe is installed, and each is tens of
    megabytes. Newer formats are left for the newer bpe that wrote them."""
    key = path.name.split(".", 1)[0]
    for other in path.parent.glob(f"{key}.v*.bin"):
        version = other.name[len(key) + 2 : -len(".bin")]
        if version.isdigit() and int(version) < _image.VERSION:
            other.unlink(missing_ok=True)


def _check_ids(mergeable_ranks: Mapping[bytes, int], special_tokens: dict[str, int],
               table: "RankTable | None" = None) -> None:
    """ValueError for ids that would make decoding wrong or tables absurd: a special token
    on a mergeable token's id, or ids so sparse that tables sized by the largest id would
    take gigabytes for a few tokens (a hostile or corrupt file). ``table``, when given, holds
    the same tokens as ``mergeable_ranks`` and answers instead of a dict made for this."""
    if not mergeable_ranks:
        raise ValueError("mergeable_ranks is empty: an encoding needs at least one token")
    if table is not None:
        largest_rank = table.max_rank
        token_of = table.token_of if special_tokens else None
    else:
        by_id = {rank: token for token, rank in mergeable_ranks.items()}
        largest_rank = max(by_id)
        token_of = by_id.get
    for text, token_id in special_tokens.items():
        if not text:
            raise ValueError("a special token is the empty string (it would match everywhere)")
        if not isinstance(token_id, int) or isinstance(token_id, bool) or token_id < 0:
            raise ValueError(f"special token {text!r} has id {token_id!r}, not a non-negative integer")
        token = token_of(token_id)
        if token is not None:
            raise ValueError(f"special token {text!r} has id {token_id}, which token "
                             f"{token!r} already has")
    largest = max(largest_rank, max(special_tokens.values(), default=0))
    count = len(mergeable_ranks) + len(special_tokens)
    if largest > 4 * count + (1 << 20):
        raise ValueError(f"the largest id is {largest:,} for only {count:,} tokens: ids this "
                         "sparse are not supported (tables are sized by the largest id)")
