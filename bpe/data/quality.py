"""Heuristic quality rules in the style of Gopher (Rae et al., 2021) and C4 (Raffel et al., 2020).

A document is checked against the rules in the order of :data:`RULES`, and the first rule it
fails is its reason for being dropped (each dropped document counts under one rule). Every
threshold is a field of :class:`QualityConfig`, and any rule can be turned off by name.

Words are :func:`bpe.data.text.words`: in Chinese, Japanese and Thai each character is a
word, so there the mean-word-length rule does not apply and the n-gram rules take n-grams
twice as long (a word of these languages is about two characters).

The thresholds are Gopher's, set for web pages. Long documents repeat more of their
5-grams by nature (a 100 KB manual repeats its command lines): for such corpora raise
``duplicate_ngrams`` or turn the rule off.

>>> doc = "The cat sat on the mat and looked at the door. " * 12
>>> check(doc, QualityConfig())
'top_ngram'
>>> check(doc, QualityConfig(disabled={"top_ngram"}))
'duplicate_ngrams'
>>> check(doc, QualityConfig(disabled={"duplicate_ngrams", "top_ngram"})) is None
True
"""

from __future__ import annotations

import dataclasses

import numpy as np
import regex

from bpe.data import text as _text

_LETTER = regex.compile(r"\p{L}")

RULES = (
    "words",             # word count within [min_words, max_words]
    "mean_word_length",  # mean word length within [min_mean_word, max_mean_word] characters
    "symbol_ratio",      # ("#" + "..." + "…") per word at most max_symbol_ratio
    "bullet_lines",      # share of lines starting with a bullet at most max_bullet_lines
    "ellipsis_lines",    # share of lines ending in "..." or "…" at most max_ellipsis_lines
    "alphabetic",        # share of words holding a letter at least min_alphabetic
    "stop_words",        # at least min_stop_words stop words of the detected language (Latin
                         # script with none of any language's fails; other scripts without a
                         # list are not judged)
    "duplicate_lines",   # share of lines (and of their characters) repeating an earlier line
    "top_ngram",         # characters in the most frequent 2-, 3-, 4-gram
    "duplicate_ngrams",  # characters covered by repeats (occurrences after the first) of 5- to 10-grams
    "lorem_ipsum",       # placeholder text (C4)
)

_BULLETS = ("•", "‣", "▪", "●", "◦", "-", "*", "·", "–", "—", "+")
_TOP_NGRAM = {2: 0.20, 3: 0.18, 4: 0.16}
_DUP_NGRAM = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}


@dataclasses.dataclass
class QualityConfig:
    """Thresholds of the rules (the Gopher paper's values) and the rules turned off."""

    min_words: int = 50
    max_words: int = 100_000
    min_mean_word: float = 3.0
    max_mean_word: float = 10.0
    max_symbol_ratio: float = 0.1
    max_bullet_lines: float = 0.9
    max_ellipsis_lines: float = 0.3
    min_alphabetic: float = 0.8
    min_stop_words: int = 2
    max_duplicate_lines: float = 0.3
    max_duplicate_line_chars: float = 0.2
    top_ngram: dict = dataclasses.field(default_factory=lambda: dict(_TOP_NGRAM))
    duplicate_ngrams: dict = dataclasses.field(default_factory=lambda: dict(_DUP_NGRAM))
    disabled: set = dataclasses.field(default_factory=set)

    def __post_init__(self):
        unknown = set(self.disabled) - set(RULES)
        if unknown:
            raise ValueError(f"unknown quality rule(s) {', '.join(sorted(unknown))}; "
                             f"the rules are {', '.join(RULES)}")


def check(doc: str, cfg: QualityConfig) -> str | None:
    """The first rule of :data:`RULES` that ``doc`` fails, or None when it passes them all."""
    on = [r for r in RULES if r not in cfg.disabled]
    if not on:
        return None
    ws = _text.words(doc)
    n = len(ws)
    unspaced = _text.is_unspaced(doc)
    lines = [ln.strip() for ln in doc.split("\n")]
    lines = [ln for ln in lines if ln]
    ids = None
    for rule in on:
        if rule == "words" and not cfg.min_words <= n <= cfg.max_words:
            return rule
        if n == 0:
            continue  # the word rules below have nothing to measure
        if rule == "mean_word_length" and not unspaced:
            mean = sum(map(len, ws)) / n
            if not cfg.min_mean_word <= mean <= cfg.max_mean_word:
                return rule
        elif rule == "symbol_ratio":
            symbols = doc.count("#") + doc.count("...") + doc.count("…")
            if symbols / n > cfg.max_symbol_ratio:
                return rule
        elif rule == "bullet_lines" and lines:
            if sum(ln.startswith(_BULLETS) for ln in lines) / len(lines) > cfg.max_bullet_lines:
                return rule
        elif rule == "ellipsis_lines" and lines:
            if sum(ln.endswith(("...", "…")) for ln in lines) / len(lines) > cfg.max_ellipsis_lines:
                return rule
        elif rule == "alphabetic":
            alpha = sum(map(str.isalpha, ws))  # words of letters only, counted in C
            if alpha < cfg.min_alphabetic * n:  # then the words that mix letters in, one by one
                alpha += sum(1 for w in ws if not w.isalpha() and _LETTER.search(w))
            if alpha / n < cfg.min_alphabetic:
                return rule
        elif rule == "stop_words":
            lang = _text.language(doc)
            if lang == "unknown":
                # Latin letters with no language's stop words are not running text; other
                # scripts without a list here (Arabic, Devanagari, ...) are not judged.
                if _text.is_latin(doc):
                    return rule
            elif sum(map(_text.STOP_WORDS[lang].__contains__, map(str.lower, ws))) < cfg.min_stop_words:
                return rule
        elif rule == "duplicate_lines" and lines and _duplicate_lines(lines, cfg):
            return rule
        elif rule in ("top_ngram", "duplicate_ngrams"):
            if ids is None:
                ids = _word_ids(ws)
            if _ngram_rule(rule, ids, cfg, 2 if unspaced else 1):
                return rule
        elif rule == "lorem_ipsum" and "lorem ipsum" in doc.lower():
            return rule
    return None


def _duplicate_lines(lines: list[str], cfg: QualityConfig) -> bool:
    seen: set[str] = set()
    dup_lines = dup_chars = 0
    for ln in lines:
        if ln in seen:
            dup_lines += 1
            dup_chars += len(ln)
        seen.add(ln)
    total_chars = sum(map(len, lines))
    return (dup_lines / len(lines) > cfg.max_duplicate_lines
            or dup_chars / max(total_chars, 1) > cfg.max_duplicate_line_chars)


def _word_ids(ws: list[str]) -> tuple[np.ndarray, np.ndarray, int]:
    """Each word as an integer, each word's length, and how many distinct words there are."""
    distinct, w = np.unique(np.array(ws, dtype=str), return_inverse=True)                     # [n]
    lengths = np.fromiter(map(len, ws), dtype=np.int64, count=len(ws))                         # [n]
    return w.astype(np.int64).reshape(-1), lengths, len(distinct)


def _ngram_rule(rule: str, word_ids, cfg: QualityConfig, scale: int) -> bool:
    w, lengths, vocab = word_ids
    total = int(lengths.sum())
    limits = cfg.top_ngram if rule == "top_ngram" else cfg.duplicate_ngrams
    for n, limit in sorted(limits.items()):
        n *= scale
        if len(w) < n or total == 0:
            continue
        grams = _ngram_ids(w, n, vocab)                                      # [n_grams]
        uniq, first, inverse, counts = np.unique(grams, return_index=True, return_inverse=True,
                                                 return_counts=True)
        if rule == "top_ngram":
            top = int(np.argmax(counts))
            chars = int(lengths[first[top]:first[top] + n].sum())
            if counts[top] > 1 and counts[top] * chars / total > limit:
                return True
        else:
            # occurrences after the first of their n-gram; the first copy is not a repeat
            starts = np.flatnonzero(first[inverse] != np.arange(len(grams)))
            cover = np.zeros(len(w) + 1, dtype=np.int64)                        # [n + 1]
            np.add.at(cover, starts, 1)
            np.add.at(cover, starts + n, -1)
            covered = np.cumsum(cover[:-1]) > 0                                 # [n] words in them
            if lengths[covered].sum() / total > limit:
                return True
    return False


def _ngram_ids(w: np.ndarray, n: int, vocab: int) -> np.ndarray:
    # One exact integer per n-gram while it fits in 63 bits, a 64-bit hash beyond.
    m = len(w) - n + 1
    if vocab ** n < (1 << 62):
        out = np.zeros(m, dtype=np.int64)
        for k in range(n):
            out = out * vocab + w[k:k + m]
        return out
    out = np.zeros(m, dtype=np.uint64)
    for k in range(n):
        out = (out ^ w[k:k + m].astype(np.uint64)) * np.uint64(0x100000001B3)
    return out
