"""Finding special-token text, and refusing it where it is not allowed (as tiktoken does)."""

from __future__ import annotations

import functools
from typing import NoReturn

import regex


@functools.lru_cache(maxsize=128)
def special_token_regex(tokens: frozenset[str]) -> "regex.Pattern[str]":
    """A pattern matching any of ``tokens``, longest first, so that a special token that
    begins another cannot hide it.

    >>> special_token_regex(frozenset({"<|a|>", "<|a|>b"})).findall("x<|a|>by<|a|>")
    ['<|a|>b', '<|a|>']
    """
    inner = "|".join(regex.escape(token) for token in sorted(tokens, key=lambda t: (-len(t), t)))
    return regex.compile(f"({inner})")


@functools.lru_cache(maxsize=128)
def common_prefix(tokens: frozenset[str]) -> str:
    """The longest start every token shares ('' for none): text without it holds none of them,
    and ``in`` finds it far faster than the regex searches (tiktoken's all begin with ``<|``).

    >>> common_prefix(frozenset({"<|endoftext|>", "<|endofprompt|>"}))
    '<|endof'
    """
    first, last = min(tokens, default=""), max(tokens, default="")
    k = 0
    while k < min(len(first), len(last)) and first[k] == last[k]:
        k += 1
    return first[:k]


def raise_disallowed_special_token(token: str) -> NoReturn:
    raise ValueError(
        f"Encountered text corresponding to disallowed special token {token!r}.\n"
        "If you want this text to be encoded as a special token, "
        f"pass it to `allowed_special`, e.g. `allowed_special={{{token!r}, ...}}`.\n"
        f"If you want this text to be encoded as normal text, disable the check for this token "
        f"by passing `disallowed_special=(enc.special_tokens_set - {{{token!r}}})`.\n"
        "To disable this check for all special tokens, pass `disallowed_special=()`.\n"
    )


def check_each(texts, disallowed_special) -> None:
    """Raise for the first disallowed special token in any of ``texts``. What the texts
    share (the tokens' common start, their regex) is worked out once."""
    if not disallowed_special:
        return
    disallowed_special = frozenset(disallowed_special)  # the same object when it is one
    prefix = common_prefix(disallowed_special)
    first = prefix[:1]
    for text in texts:
        # a memchr for the first character, then the whole start: most texts stop here
        if first in text and prefix in text:
            if match := special_token_regex(disallowed_special).search(text):
                raise_disallowed_special_token(match.group())


def watch_for(disallowed: frozenset[str]) -> bytes:
    """The UTF-8 that the compiled batch calls mark the texts holding (the tokens' shared
    start), or b"" when there is none to look for: no token, no start they share, or a
    lone surrogate in it (which fix_surrogates would take out of the texts)."""
    try:
        return common_prefix(disallowed).encode("utf-8")
    except UnicodeEncodeError:
        return b""


def refuse_marked(texts, parts: list, disallowed: frozenset[str]) -> None:
    """Raise for the first disallowed token in the texts the parts of a compiled batch
    marked (each part's last item: indices into its own texts, whose count is the length
    of the item before it), in the texts' order."""
    start = 0
    for part in parts:
        for k in part[-1]:
            if match := special_token_regex(disallowed).search(texts[start + k]):
                raise_disallowed_special_token(match.group())
        start += len(part[-2])


def fix_surrogates(text: str) -> str:
    """What tiktoken does with text that is not valid Unicode: paired surrogates become the
    character they encode, lone ones become U+FFFD.

    >>> fix_surrogates("a\\ud83d\\ude00b\\udc00")
    'a😀b\\ufffd'
    """
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def valid_text(text: str) -> str:
    """``text`` as encoding reads it: :func:`fix_surrogates` when it holds surrogates, else
    ``text`` itself (no copy)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return fix_surrogates(text)
    return text
