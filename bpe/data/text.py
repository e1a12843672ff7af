"""What the cleaning steps agree on about text: its normal form, its hash, its words, its language.

The normal form behind every duplicate check is Unicode NFC, whitespace runs (any of
``str.isspace``) made one space, and the ends stripped. Case is kept: "Amen" and "AMEN" are
different lines.

>>> normalize("Caf\\u0065\\u0301  au\\tlait\\n")
'Café au lait'
>>> words("Don't stop, 42 times")
["Don't", 'stop', '42', 'times']
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata

import numpy as np
import regex

# A word: a run of letters, marks and digits, with inner apostrophes and hyphens.
_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+(?:['’\-][\p{L}\p{M}\p{N}]+)*")
# Scripts written without spaces between words: their "words" are single characters.
_UNSPACED = regex.compile(r"[\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}]")


def normalize(text: str) -> str:
    """NFC, whitespace runs made one space, ends stripped: the key every duplicate check uses."""
    return " ".join(unicodedata.normalize("NFC", text).split())  # split(): runs of str.isspace


def key(text: str) -> int:
    """A 64-bit hash of ``text`` as it is (normalize first for a duplicate key).

    blake2b, so the value is the same in every process and on every machine: the worker
    processes and the Dask workers compare keys they computed apart.
    """
    data = text.encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "little")


def words(text: str) -> list[str]:
    """The words of ``text``; in scripts without spaces (Chinese, Japanese, Thai) each
    character is a word, so counts and n-grams mean the same thing in every language.

    >>> words("模型 is 小")
    ['模', '型', 'is', '小']
    """
    if not _UNSPACED.search(text):
        return _WORD.findall(text)
    out: list[str] = []
    for w in _WORD.findall(text):
        if _UNSPACED.search(w):
            out.extend(_split_unspaced(w))
        else:
            out.append(w)
    return out


def _split_unspaced(w: str) -> list[str]:
    # "GPU模型" -> ["GPU", "模", "型"]: spaced runs stay whole, unspaced characters stand alone.
    parts, run = [], ""
    for ch in w:
        if _UNSPACED.match(ch):
            if run:
                parts.append(run)
                run = ""
            parts.append(ch)
        else:
            run += ch
    if run:
        parts.append(run)
    return parts


# Letters by script, from Unicode blocks (letters: general category L at the Unicode version
# of the engine's tables). One table lookup per character counts them all at once in numpy.
NONE, LATIN, HAN, KANA, HANGUL, CYRILLIC, UNSPACED_OTHER, OTHER = range(8)
_BLOCKS = {
    LATIN: ((0x41, 0x24F), (0x1E00, 0x1EFF), (0x2C60, 0x2C7F), (0xA720, 0xA7FF), (0xFF21, 0xFF5A)),
    HAN: ((0x2E80, 0x2FDF), (0x3005, 0x3007), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xF900, 0xFAFF),
          (0x20000, 0x3347F)),
    KANA: ((0x3040, 0x30FF), (0x31F0, 0x31FF), (0xFF66, 0xFF9F)),
    HANGUL: ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF)),
    CYRILLIC: ((0x400, 0x52F), (0x1C80, 0x1C8F), (0x2DE0, 0x2DFF), (0xA640, 0xA69F)),
    UNSPACED_OTHER: ((0xE00, 0xEFF), (0x1000, 0x109F), (0x1780, 0x17FF)),  # Thai, Lao, Myanmar, Khmer
}


@functools.lru_cache(maxsize=None)
def _script_table() -> np.ndarray:
    from bpe._unicode_data import CATEGORIES, RUNS

    starts = np.array(RUNS[0::2], dtype=np.int64)
    cats = np.array(RUNS[1::2], dtype=np.int64)
    category = np.repeat(cats, np.diff(np.r_[starts, 0x110000]))                # [0x110000]
    letter_ids = [i for i, c in enumerate(CATEGORIES) if c.startswith("L")]
    is_letter = np.isin(category, letter_ids)
    table = np.where(is_letter, OTHER, NONE).astype(np.uint8)
    for script, ranges in _BLOCKS.items():
        for lo, hi in ranges:
            block = table[lo:hi + 1]
            block[is_letter[lo:hi + 1]] = script
    return table


def script_counts(text: str) -> np.ndarray:
    """How many letters of each script ``text`` holds: ``[8]``, indexed by NONE ... OTHER."""
    cps = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")  # [n]
    return np.bincount(_script_table()[cps], minlength=8)


def _letters(counts: np.ndarray) -> int:
    return int(counts[1:].sum())


def is_unspaced(text: str, share: float = 0.3) -> bool:
    """True when at least ``share`` of the letters are in scripts written without spaces."""
    c = script_counts(text)
    return _letters(c) > 0 and int(c[HAN] + c[KANA] + c[UNSPACED_OTHER]) >= share * _letters(c)


# A few of the most frequent function words per language: enough to tell the Latin-script
# languages apart and to say whether a document reads as running text (the Gopher rule).
STOP_WORDS = {
    "en": {"the", "be", "to", "of", "and", "that", "have", "with", "is", "in", "it", "for"},
    "de": {"der", "die", "und", "das", "ist", "nicht", "mit", "von", "sich", "den", "ein", "zu"},
    "fr": {"le", "la", "les", "et", "des", "est", "une", "pas", "que", "dans", "pour", "du"},
    "es": {"el", "la", "los", "las", "y", "que", "del", "una", "por", "con", "para", "es"},
    "it": {"il", "di", "che", "è", "per", "una", "non", "della", "sono", "gli", "con", "del"},
    "pt": {"o", "os", "que", "não", "uma", "com", "para", "do", "da", "em", "é", "dos"},
    "nl": {"de", "het", "een", "en", "van", "is", "niet", "dat", "op", "te", "voor", "zijn"},
    "ru": {"и", "в", "не", "на", "что", "с", "по", "это", "как", "для", "из", "к"},
    "zh": {"的", "是", "在", "了", "和", "有", "不", "这", "我", "中", "为", "以"},
    "ja": {"の", "に", "は", "を", "た", "が", "で", "て", "と", "し", "れ", "な"},
    "ko": {"이", "그", "수", "것", "및", "의", "는", "을", "를", "에", "하는", "있다"},
}


def is_latin(text: str, sample: int = 4000) -> bool:
    """True when most letters of ``text`` (its first ``sample`` characters) are Latin."""
    c = script_counts(text[:sample])
    return _letters(c) > 0 and int(c[LATIN]) >= 0.5 * _letters(c)


def language(text: str, sample: int = 4000) -> str:
    """A guess at the language of ``text`` from its script, then its stop words.

    Japanese when kana appear, Chinese for Han without kana, Korean for Hangul, Russian for
    Cyrillic; among Latin-script languages the one whose stop words are most frequent.
    ``"unknown"`` when nothing decides (the stop-word rule then does not apply).

    >>> language("The cat sat on the mat with the hat.")
    'en'
    >>> language("これは日本語の文です。")
    'ja'
    """
    head = text[:sample]
    c = script_counts(head)
    letters = _letters(c) or 1
    if c[KANA] >= 0.05 * letters:
        return "ja"
    if c[HAN] >= 0.3 * letters:
        return "zh"
    if c[HANGUL] >= 0.3 * letters:
        return "ko"
    if c[CYRILLIC] >= 0.3 * letters:
        return "ru"
    lowered = [w.lower() for w in _WORD.findall(head)]
    best, hits = "unknown", 0
    for lang in ("en", "de", "fr", "es", "it", "pt", "nl"):
        n = sum(map(STOP_WORDS[lang].__contains__, lowered))
        if n > hits:
            best, hits = lang, n
    return best if hits >= 2 else "unknown"
