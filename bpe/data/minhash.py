"""Near duplicates: MinHash signatures over shingles, LSH banding, connected components.

1. **Shingles.** The normalized, case-folded text is cut into words (:func:`text.words`),
   and a shingle is ``ngram`` consecutive words. In scripts written without spaces each
   character is a word, and a shingle is ``char_ngram`` consecutive characters.
2. **Signature.** Each shingle gets a 64-bit hash; permutation ``k`` maps a hash ``h`` to
   the top 32 bits of ``a_k * h + b_k`` (mod 2^64, ``a_k`` odd), and the signature keeps
   each permutation's minimum. Two documents agree at one permutation with probability
   equal to the Jaccard similarity of their shingle sets.
3. **Bands.** The ``num_perm`` values are cut into ``bands`` bands of ``rows`` values; two
   documents are candidates when one band is equal. With ``b`` bands of ``r`` rows a pair
   of similarity ``s`` becomes a candidate with probability ``1 - (1 - s^r)^b``. The default,
   32 bands of 4 rows over word 5-grams, gives 0.05 at s = 0.2, 0.23 at 0.3, 0.87 at 0.5 and
   0.99 at 0.6. On the planted copies of ``benchmarks/bench_data.py`` (1-10% of the words
   replaced) it finds 94% of them, and no two of the 1,241 distinct documents; 16 x 8 (a
   threshold near 0.7, datatrove's 14 x 8 is alike) finds 41%, missing most copies with
   more than 4% of their words changed.
4. **Clusters.** Candidates are joined into connected components; each keeps its first
   document in input order.

>>> m = MinHasher()
>>> a = "the quick brown fox jumps over the lazy dog and runs far away"
>>> b = "the quick brown fox jumps over the lazy dog and runs far off"
>>> round(estimate_jaccard(m.signature(a), m.signature(b)), 2)  # 7 of 9 shingles shared: 0.78
0.77
"""

from __future__ import annotations

import numpy as np

from bpe.data import text as _text

_M64 = (1 << 64) - 1


def _constants(seed: int, n: int) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.integers(1, 1 << 63, size=n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)


class MinHasher:
    """Shingles a text and computes its MinHash signature and LSH band keys.

    The same arguments give the same values in every process and on every machine.
    """

    def __init__(self, num_perm: int = 128, bands: int = 32, ngram: int = 5, char_ngram: int = 5,
                 seed: int = 1):
        if num_perm < 1 or bands < 1 or num_perm % bands:
            raise ValueError(f"num_perm ({num_perm}) must be a positive multiple of bands ({bands})")
        if ngram < 1 or char_ngram < 1:
            raise ValueError(f"shingle sizes must be at least 1 (ngram={ngram}, char_ngram={char_ngram})")
        self.num_perm, self.bands, self.rows = num_perm, bands, num_perm // bands
        self.ngram, self.char_ngram = ngram, char_ngram
        self._a = _constants(seed, num_perm)                            # [num_perm] odd
        self._b = _constants(seed + 1, num_perm)                        # [num_perm]
        self._mix = _constants(seed + 2, max(ngram, char_ngram, self.rows))  # n-gram and band weights

    # 1. Shingles ---------------------------------------------------------------------------

    def shingle_hashes(self, doc: str) -> np.ndarray:
        """The distinct 64-bit hashes of the shingles of ``doc`` (sorted)."""
        folded = _text.normalize(doc).casefold()
        tokens = _text.words(folded)
        n = self.char_ngram if _text.is_unspaced(folded) else self.ngram
        if not tokens:
            return np.zeros(0, dtype=np.uint64)
        return self.hash_shingles(tokens, n)

    def hash_shingles(self, tokens: list[str], n: int) -> np.ndarray:
        """Hashes of the ``n``-grams of ``tokens`` (all of them as one when there are fewer)."""
        seen: dict[str, int] = {}
        for t in tokens:
            if t not in seen:
                seen[t] = _text.key(t)
        h = np.fromiter((seen[t] for t in tokens), dtype=np.uint64, count=len(tokens))  # [n_tok]
        n = min(n, len(h))
        m = len(h) - n + 1
        acc = np.zeros(m, dtype=np.uint64)                              # [n_shingles]
        for k in range(n):                                              # sum of weighted tokens
            acc += h[k:k + m] * self._mix[k]
        acc ^= acc >> np.uint64(29)                                     # spread the high bits down
        return np.unique(acc)

    # 2. Signature --------------------------------------------------------------------------

    def signature(self, doc: str) -> np.ndarray:
        """The MinHash signature of ``doc``: ``num_perm`` uint32 values."""
        return self.signature_of(self.shingle_hashes(doc))

    def signature_of(self, hashes: np.ndarray) -> np.ndarray:
        """The signature of a set of 64-bit shingle hashes (an empty set: all 2^32 - 1)."""
        sig = np.full(self.num_perm, 0xFFFFFFFF, dtype=np.uint64)       # [num_perm]
        step = max(1, (1 << 16) // self.num_perm)
        for lo in range(0, len(hashes), step):                          # bounded temporaries
            h = hashes[lo:lo + step]                                    # [step]
            perm = (h[None, :] * self._a[:, None] + self._b[:, None]) >> np.uint64(32)  # [num_perm, step]
            np.minimum(sig, perm.min(axis=1), out=sig)
        return sig.astype(np.uint32)

    # 3. Bands ------------------------------------------------------------------------------

    def band_keys(self, signatures: np.ndarray) -> np.ndarray:
        """One 64-bit key per band for each signature: ``[n_docs, num_perm] -> [n_docs, bands]``."""
        sig = np.asarray(signatures, dtype=np.uint64).reshape(-1, self.bands, self.rows)  # [n, b, r]
        keys = (sig * self._mix[None, None, :self.rows]).sum(axis=2, dtype=np.uint64)     # [n, b]
        return keys ^ (keys >> np.uint64(31))


def estimate_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """The share of permutations where two signatures agree: an estimate of their Jaccard."""
    return float(np.mean(np.asarray(a) == np.asarray(b)))


def candidate_probability(s: float, bands: int, rows: int) -> float:
    """The chance that a pair of Jaccard similarity ``s`` shares a band: ``1 - (1 - s^r)^b``."""
    return 1.0 - (1.0 - s ** rows) ** bands


# 4. Clusters -----------------------------------------------------------------------------


def clusters(band_keys: np.ndarray, ids: np.ndarray | None = None) -> np.ndarray:
    """For each row of ``band_keys`` (``[n, bands]``), the smallest id in its component.

    Rows that share a key in the same band column are joined; a row whose result is its own
    id is the one its cluster keeps. ``ids`` (default ``0..n-1``) name the rows.

    >>> keys = np.array([[1, 9], [2, 9], [3, 8], [2, 7]], dtype=np.uint64)
    >>> clusters(keys).tolist()
    [0, 0, 2, 0]
    """
    keys = np.asarray(band_keys, dtype=np.uint64)
    n = len(keys)
    ids = np.arange(n, dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
    edges = []
    for band in range(keys.shape[1] if n else 0):
        col = keys[:, band]
        order = np.lexsort((ids, col))                                  # by key, then id
        sorted_keys = col[order]
        joins = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1]) + 1  # rows joining the one before
        if not len(joins):
            continue
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        leaders = starts[np.searchsorted(starts, joins, side="right") - 1]
        edges.append(np.stack([ids[order[leaders]], ids[order[joins]]], axis=1))  # [n_joins, 2]
    rep = components(np.concatenate(edges) if edges else np.zeros((0, 2), np.int64))
    return np.fromiter((rep.get(i, i) for i in ids.tolist()), dtype=np.int64, count=n)


def components(edges) -> dict[int, int]:
    """For every id in ``edges`` (pairs of ids), the smallest id of its connected component.

    >>> components([(5, 7), (7, 2), (9, 10)])
    {5: 2, 7: 2, 2: 2, 9: 9, 10: 9}
    """
    parent: dict[int, int] = {}

    def find(i: int) -> int:
        root = i
        while parent[root] != root:
            root = parent[root]
        while parent[i] != root:                                        # path compression
            parent[i], i = root, parent[i]
        return root

    for a, b in np.asarray(edges, dtype=np.int64).reshape(-1, 2).tolist():
        parent.setdefault(a, a)
        parent.setdefault(b, b)
        ra, rb = find(a), find(b)
        if ra != rb:                                                    # the smaller id is the root
            parent[max(ra, rb)] = min(ra, rb)
    return {i: find(i) for i in parent}
