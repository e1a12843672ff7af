# The compiled engine's entry point: CoreBPE, the Python-visible engine.
#
# Everything here works on plain C data (UTF-8 bytes, rank arrays) and runs without the
# GIL; bpe/core.py is the Python face (arguments, special tokens, docs, pickling). The
# parts live in rooms of their own, each a .pxd of inline functions compiled into this one
# extension (so that the hot path has no calls through pointers): _encode (the engine
# record and the encode loop), _vocab (the token table),
# _merge (BPE by the rule), _backtrack (the linear encoder), _cache (the piece cache),
# _scan (the scanners), _count (the trainer's piece counts), _text (strs without the GIL),
# _ints (the id lists' Python ints);
# the cold table builder is its own module, _trie, and so are the rank-file parser, _ranks,
# and the tables' file, _image. C helpers are headers in bpe/_c.
# Compiler directives are set in one place, setup.py (BPE_CYTHON_DEBUG=1 turns checks on).

import os

from cpython.bytes cimport PyBytes_FromStringAndSize
from cpython.list cimport PyList_New
from cpython.number cimport PyNumber_Index
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memchr, memcmp, memcpy, memset

from bpe._backtrack cimport PAIR_MEMO, BtToken, DaSlot, backtrack_encode
from bpe._cache cimport cache_free, caches_init
from bpe._decode cimport decode_ids
from bpe._count cimport (PieceMap, piece_map_add, piece_map_add_count, piece_map_free, piece_map_init,
                         piece_map_prune)
from bpe._encode cimport Engine, encode_piece, encode_text
from bpe._image cimport image_read, image_write
from bpe._ints cimport prefill_rank_ints, vec_to_bytearray, vec_to_list
from bpe._merge cimport merge_any
from bpe._ranks cimport RankTable, table_of_vocab
from bpe._port cimport table_alloc
from bpe._pretok cimport (SIMD_AVX2, SIMD_NEON, SIMD_NONE, SIMD_SCALAR, SIMD_SSE2, BpeMasks, ScanWindow,
                          classify, next_piece, simd_best, simd_get, simd_set, simd_supported, window_cuts,
                          window_init)
from bpe._scan cimport (B_HIGH, B_OTHER, BYTE_CLASS, C_L, C_LO, C_N, C_UP, C_WS, FAMILY_CL100K,
                        FAMILY_GPT2, FAMILY_O200K, UCLASS)
from bpe._text cimport (BpeUtf8, PyUnicode_AsUTF8AndSize, Texts, bpe_utf8_ready, bpe_utf8_write,
                        raise_for_utf8, texts_close, texts_open, texts_run)
from bpe._trie cimport build_backtrack, free_backtrack
from bpe._types cimport NO_RANK, RankVec, array_bytes, rank_t
from bpe._vocab cimport Slot, Vocab, WideSlot, fill_slots, vocab_free, vocab_lookup

cdef extern from *:
    """
    #ifndef BPE_DEBUG
    #define BPE_DEBUG 0
    #endif
    """
    int BPE_DEBUG

#: True when built with BPE_CYTHON_DEBUG=1 (bounds and wraparound checks, -O0, assertions).
DEBUG_BUILD = bool(BPE_DEBUG)


prefill_rank_ints()


# ---------------------------------------------------------------------------------------
# What stays out of line, and why: bpe/_c/out_of_line.h.
cdef extern from "_c/out_of_line.h": pass
#: The functions kept out of line, by their C names (tests/test_rooms.py looks for each).
OUT_OF_LINE = ("__pyx_f_3bpe_6_merge_merge_small", "__pyx_f_3bpe_6_merge_merge_large",
               "__pyx_f_3bpe_10_backtrack_backtrack_encode", "__pyx_f_3bpe_5_scan_next_gpt2",
               "__pyx_f_3bpe_5_scan_next_cl100k", "__pyx_f_3bpe_5_scan_next_o200k",
               "__pyx_f_3bpe_6_count_piece_map_add", "__pyx_f_3bpe_7_encode_encode_text",
               "__pyx_f_3bpe_7_encode_merge_uncached", "__pyx_f_3bpe_6_cache_cache_get")


cdef void engine_free(Engine* e) noexcept nogil:
    cdef int k
    free_backtrack(e.bt, e.vocab.n_ranks)
    e.bt = NULL
    vocab_free(&e.vocab)
    for k in range(3):
        cache_free(&e.caches[k])


# ---------------------------------------------------------------------------------------
# The scanners' character classes

#: The class bits the scanners read, by name (bpe/_classes.py builds the code point table).
CLASS_BITS = {"L": C_L, "N": C_N, "UP": C_UP, "LO": C_LO, "WS": C_WS}

#: The scanner of each pattern family, by name (bpe.patterns.Family holds the same values).
FAMILIES = {"gpt2": FAMILY_GPT2, "cl100k": FAMILY_CL100K, "o200k": FAMILY_O200K}


def set_unicode_classes(const uint8_t[::1] classes):  # IN: one byte of class bits per code point
    """Install the code point classes the scanners use (bpe._classes.ensure calls this once)."""
    if classes.shape[0] != 0x110000:
        raise ValueError(f"expected 0x110000 class bytes, got {classes.shape[0]}")
    memcpy(UCLASS, &classes[0], 0x110000)
    cdef int b
    for b in range(256):
        if b >= 0x80:
            BYTE_CLASS[b] = B_HIGH
        elif UCLASS[b] & (C_L | C_N | C_WS):
            BYTE_CLASS[b] = UCLASS[b]
        else:
            BYTE_CLASS[b] = B_OTHER


def unicode_classes_set():
    """Whether :func:`set_unicode_classes` has run (the table is filled on first use)."""
    return BYTE_CLASS[ord("a")] != 0


# ---------------------------------------------------------------------------------------
# The classifier the scanners' ASCII paths read (bpe/_c/simd.h)

#: Classifier levels by name: "none" reads bytes one at a time (bpe/_scan.pxd only);
#: "scalar" is the masks' reference table walk (for tests); the rest are vector units.
SIMD_LEVELS = {"none": SIMD_NONE, "scalar": SIMD_SCALAR, "sse2": SIMD_SSE2, "avx2": SIMD_AVX2,
               "neon": SIMD_NEON}
_SIMD_NAMES = {level: name for name, level in SIMD_LEVELS.items()}


def simd_levels():
    """The levels this build and CPU run, fastest last (the default is the fastest)."""
    return [name for name, level in SIMD_LEVELS.items() if simd_supported(level)]


def simd_level():
    """The level the scanners use now."""
    return _SIMD_NAMES[simd_get()]


def set_simd_level(str name):
    """Use the classifier ``name`` (one of :func:`simd_levels`) for every text scanned from
    now on, in every thread; returns the level it replaces. For tests and benchmarks (every
    level cuts the same pieces): call it while no other thread is encoding."""
    if name not in SIMD_LEVELS:
        raise ValueError(f"unknown SIMD level {name!r}: expected one of {', '.join(SIMD_LEVELS)}")
    if not simd_supported(SIMD_LEVELS[name]):
        raise ValueError(f"SIMD level {name!r} is not available on this build and CPU "
                         f"(available: {', '.join(simd_levels())})")
    old = simd_level()
    simd_set(SIMD_LEVELS[name])
    return old


cdef int classifier_of(const uint8_t[::1] block, str level) except -1:
    """The classifier named ``level``, for a block of 64 bytes (ValueError otherwise)."""
    if block.shape[0] != 64:
        raise ValueError(f"a block is 64 bytes, not {block.shape[0]}")
    if level not in SIMD_LEVELS or SIMD_LEVELS[level] == SIMD_NONE or not simd_supported(SIMD_LEVELS[level]):
        raise ValueError(f"SIMD level {level!r} has no classifier on this build and CPU")
    return SIMD_LEVELS[level]


def class_masks(const uint8_t[::1] block, str level):
    """The class masks of 64 bytes at ``level``, by class name (for tests): bit j is byte j."""
    cdef BpeMasks m
    classify(classifier_of(block, level), &block[0], &m)
    return {"upper": m.upper, "lower": m.lower, "digit": m.digit, "space": m.space, "high": m.high,
            "other": m.other, "newline": m.newline, "slash": m.slash, "blank": m.blank, "quote": m.quote}


def window_cuts_of(const uint8_t[::1] block, str level, bint o200k):
    """(cuts, unsure) of 64 bytes at ``level`` (for tests): bit k of cuts says whether byte
    k starts an o200k (else cl100k) piece when byte 0 starts one, wherever bit k of unsure
    is clear."""
    cdef ScanWindow w
    classify(classifier_of(block, level), &block[0], &w.m)
    window_cuts(&w, o200k)
    return w.cuts, w.unsure


def _simd_from_environment():
    """BPE_SIMD=none|scalar|sse2|avx2|neon forces a level (to rule the vector code in or out
    when something looks wrong); unset or empty, the fastest this CPU runs."""
    import warnings
    name = os.environ.get("BPE_SIMD", "").strip().lower()
    simd_set(simd_best())
    if name:
        try:
            set_simd_level(name)
        except ValueError as err:
            warnings.warn(f"BPE_SIMD is ignored: {err}", RuntimeWarning, stacklevel=2)


_simd_from_environment()


# ---------------------------------------------------------------------------------------
# The Python-visible engine

def utf8_of(str text):
    """The UTF-8 bytes the engine reads for ``text`` (for tests). Raises UnicodeEncodeError on
    lone surrogates, as ``text.encode()`` does."""
    cdef BpeUtf8 u
    cdef int bad = 0
    try:
        if not bpe_utf8_ready(text, &u):
            bad = bpe_utf8_write(<PyObject*>text, &u)
        if bad:
            raise_for_utf8(text, bad)
        return PyBytes_FromStringAndSize(<const char*>u.data, u.size)
    finally:
        free(u.owned)


# ---------------------------------------------------------------------------------------
# Piece counting for the trainer

cdef struct CountJob:
    PieceMap* map
    int family
    size_t cut       # pieces counted


cdef int count_text(void* job, Py_ssize_t k, const uint8_t* s, size_t n) noexcept nogil:
    cdef CountJob* c = <CountJob*>job
    cdef size_t i = 0, end
    cdef int rc = 0
    cdef ScanWindow w
    window_init(&w)
    while i < n and rc == 0:
        end = next_piece(c.family, s, i, n, &w)
        rc = piece_map_add(c.map, s + i, end - i)
        c.cut += 1
        i = end
    return rc


def count_pieces(list texts, int family):
    """How often each piece occurs in texts (each split on its own by the scanner of
    ``family``): {bytes: count}. Raises UnicodeEncodeError on lone surrogates."""
    cdef PieceCounter counter = PieceCounter(family)
    counter.add(texts)
    return counter.to_dict()


cdef class PieceCounter:
    """Piece counts kept in C across calls: :meth:`add` counts texts into it (the GIL
    released) without a Python object per piece; :meth:`to_dict` makes the dict once, at the
    end. One thread at a time per counter; :meth:`merge` joins counters of several threads."""
    cdef PieceMap m
    cdef readonly int family

    def __cinit__(self, int family):
        if family not in (FAMILY_GPT2, FAMILY_CL100K, FAMILY_O200K):
            raise ValueError(f"family {family} has no compiled scanner")
        self.family = family
        if piece_map_init(&self.m):
            raise MemoryError()

    def __dealloc__(self):
        piece_map_free(&self.m)

    def __len__(self):
        return self.m.used

    def add(self, list texts):
        """Count the pieces of every text; returns how many pieces that was. Raises
        UnicodeEncodeError on lone surrogates."""
        cdef tuple keep = tuple(texts)  # the strs stay alive while the GIL is released
        cdef Py_ssize_t failed = -1
        cdef Texts t = Texts(0, NULL, NULL, NULL)
        cdef CountJob job = CountJob(&self.m, self.family, 0)
        cdef int rc = 0, bad = 0
        try:
            texts_open(&t, keep)
            with nogil:
                rc = texts_run(&t, count_text, &job, &failed, &bad)
            if failed >= 0:
                raise_for_utf8(keep[failed], bad)
            if rc:
                raise MemoryError()
            return job.cut
        finally:
            texts_close(&t)

    def merge(self, PieceCounter other):
        """Add other's counts to this counter's."""
        cdef uint64_t slot
        cdef int rc = 0
        with nogil:
            for slot in range(other.m.mask + 1):
                if other.m.slots[slot].p != NULL and rc == 0:
                    rc = piece_map_add_count(&self.m, other.m.slots[slot].p, other.m.slots[slot].n,
                                             other.m.slots[slot].count)
        if rc:
            raise MemoryError()

    def prune(self, int64_t min_count):
        """Forget the pieces counted fewer than ``min_count`` times (their memory too)."""
        cdef int rc
        with nogil:
            rc = piece_map_prune(&self.m, min_count)
        if rc:
            raise MemoryError()

    def to_dict(self):
        """{piece bytes: count}."""
        cdef dict out = {}
        cdef uint64_t slot
        for slot in range(self.m.mask + 1):
            if self.m.slots[slot].p != NULL:
                out[PyBytes_FromStringAndSize(<const char*>self.m.slots[slot].p, self.m.slots[slot].n)] = self.m.slots[slot].count
        return out


cdef struct BatchJob:
    const Engine* engine
    int family
    RankVec* out
    size_t* sizes        # per text: the end of its ranks in out, or its count
    bint counting
    const uint8_t* watch  # bytes whose texts are marked in seen (watch_n 0: none)
    size_t watch_n
    uint8_t* seen


cdef inline bint holds(const uint8_t* s, size_t n, const uint8_t* w, size_t m) noexcept nogil:
    """Whether s[:n] contains w[:m] (m >= 1): a memchr for w's first byte, then a compare."""
    cdef const uint8_t* p = s
    cdef const uint8_t* end = s + n
    while <size_t>(end - p) >= m:
        p = <const uint8_t*>memchr(p, w[0], <size_t>(end - p) - m + 1)
        if p == NULL:
            return False
        if memcmp(p, w, m) == 0:
            return True
        p += 1
    return False


cdef int batch_text(void* job, Py_ssize_t k, const uint8_t* s, size_t n) noexcept nogil:
    cdef BatchJob* b = <BatchJob*>job
    cdef int rc
    # searched here rather than in Python before the batch: on bytes in cache, in each thread
    if b.watch_n and holds(s, n, b.watch, b.watch_n):
        b.seen[k] = 1
    if b.counting:
        b.sizes[k] = 0
        return encode_text(b.engine, b.family, s, n, b.out, &b.sizes[k])
    rc = encode_text(b.engine, b.family, s, n, b.out, NULL)
    b.sizes[k] = b.out.size
    return rc


cdef bytes image_name(path, const uint8_t[::1] key):
    if key.shape[0] != 32:
        raise ValueError(f"the key is 32 bytes, not {key.shape[0]}")
    return os.fsencode(path)


cdef class CoreBPE:
    """Rank table, piece cache and scanner: the compiled part of an Encoding.

    The piece cache holds ``cache_entries`` pieces of up to 24 bytes (64 bytes each and a
    one-byte tag; the default 32768 is 2 MiB), half as many of 25 to 48 bytes (128 bytes
    each, 2 MiB by default) and a sixteenth as many of 49 to 256 bytes (512 bytes each,
    1 MiB by default), four entries a tier at least; 0 turns all three off.

    ``family`` picks the hand-written scanner (1 gpt2, 2 cl100k, 3 o200k); with 0 the caller
    splits the text and passes pieces to :meth:`encode_pieces`.

    ``backtrack=False`` leaves pieces of 13 bytes and more to the merges instead of the
    backtracking encoder (for tests and benchmarks; the results are the same).
    """
    cdef Engine e
    cdef readonly int family
    cdef dict special_decoder   # id -> bytes

    def __cinit__(self):
        memset(&self.e, 0, sizeof(Engine))

    def __init__(self, ranks, dict special_tokens, int family,
                 size_t cache_entries=32768, bint backtrack=True):
        cdef RankTable table = ranks if isinstance(ranks, RankTable) else RankTable.from_dict(ranks)
        cdef size_t n_slots = 16, n_short = 16, n_wide = 16, wide_tokens = 0, k, ln
        cdef const uint8_t* p
        cdef rank_t r
        if self.e.vocab.blob != NULL:
            raise RuntimeError("CoreBPE.__init__ was called twice: build a new CoreBPE instead")
        # Tables are sized by the largest rank: refuse ranks so sparse that they would take
        # gigabytes for a few tokens (this also keeps n_ranks + 1 far below 2**32).
        if table.max_rank > 4 * <uint64_t>table.count + (1 << 20):
            raise ValueError(f"the largest rank is {table.max_rank:,} for only {table.count:,} "
                             "tokens: ranks this sparse are not supported")
        for k in range(table.count):
            wide_tokens += table.length[k] > 8
        while n_slots < 2 * table.count:  # the filter's size
            n_slots *= 2
        while n_short < 2 * (table.count - wide_tokens):
            n_short *= 2
        while n_wide < 2 * wide_tokens:
            n_wide *= 2
        self.family = family
        self.e.vocab.n_ranks = <rank_t>(table.max_rank + 1) if table.count else 0
        self.e.vocab.blob_size = table.blob_size + 1
        self.e.vocab.mask = n_short - 1  # set before allocating: __dealloc__ frees by these sizes
        self.e.vocab.wide_mask = n_wide - 1
        self.e.vocab.blob = <uint8_t*>table_alloc(self.e.vocab.blob_size)
        self.e.vocab.offset = <uint64_t*>table_alloc(array_bytes(<size_t>self.e.vocab.n_ranks + 1, sizeof(uint64_t)))
        self.e.vocab.length = <uint32_t*>table_alloc(array_bytes(<size_t>self.e.vocab.n_ranks + 1, sizeof(uint32_t)))
        self.e.vocab.slots = <Slot*>table_alloc(array_bytes(n_short, sizeof(Slot)))
        self.e.vocab.wide = <WideSlot*>table_alloc(array_bytes(n_wide, sizeof(WideSlot)))
        self.e.vocab.pair_rank = <rank_t*>malloc(65536 * sizeof(rank_t))
        # Filter: one 64-bit word per 32 slots, 4 to 8 bits per token.
        self.e.vocab.filter = <uint64_t*>calloc(n_slots // 32 if n_slots >= 32 else 1, sizeof(uint64_t))
        if not (self.e.vocab.blob and self.e.vocab.offset and self.e.vocab.length and self.e.vocab.slots
                and self.e.vocab.wide and self.e.vocab.pair_rank and self.e.vocab.filter):
            raise MemoryError()
        self.e.vocab.filter_mask = (n_slots // 32 if n_slots >= 32 else 1) - 1
        self.start_caches(cache_entries)
        # Every byte defined (the tables may be saved to a file): empty slots, offsets of holes.
        memset(self.e.vocab.slots, 0, array_bytes(n_short, sizeof(Slot)))
        memset(self.e.vocab.wide, 0, array_bytes(n_wide, sizeof(WideSlot)))
        memset(self.e.vocab.offset, 0, array_bytes(<size_t>self.e.vocab.n_ranks + 1, sizeof(uint64_t)))
        for k in range(n_short):
            self.e.vocab.slots[k].rank = NO_RANK
        for k in range(n_wide):
            self.e.vocab.wide[k].rank = NO_RANK
        for k in range(self.e.vocab.n_ranks + 1):
            self.e.vocab.length[k] = NO_RANK
        self.e.vocab.blob[table.blob_size] = 0
        for k in range(256):
            self.e.vocab.byte_rank[k] = NO_RANK
        for k in range(65536):
            self.e.vocab.pair_rank[k] = NO_RANK
        if table.blob_size:
            memcpy(self.e.vocab.blob, table.blob, table.blob_size)
        for k in range(table.count):
            r = table.rank[k]
            ln = table.length[k]
            if self.e.vocab.length[r] != NO_RANK:
                raise ValueError(f"rank {r} is given to two tokens: {self.decode_single(r)!r} and "
                                 f"{table.token(k)!r}")
            self.e.vocab.offset[r] = table.offset[k]
            self.e.vocab.length[r] = ln
            if ln > self.e.vocab.max_len:
                self.e.vocab.max_len = ln
            p = table.blob + table.offset[k]
            if ln == 1:
                self.e.vocab.byte_rank[p[0]] = r
            elif ln == 2:
                self.e.vocab.pair_rank[(<uint32_t>p[0] << 8) | p[1]] = r
        with nogil:
            fill_slots(&self.e.vocab)
        self.special_decoder = {rank: text.encode("utf-8") for text, rank in special_tokens.items()}
        if backtrack:
            with nogil:
                self.e.bt = build_backtrack(&self.e.vocab)

    cdef start_caches(self, size_t cache_entries):
        if cache_entries & (cache_entries - 1):
            raise ValueError(f"cache_entries must be a power of two or 0, got {cache_entries}")
        if caches_init(self.e.caches, cache_entries):
            raise MemoryError()

    # -- the built tables as a file (bpe/_image.pyx) -----------------------------------------

    def save_image(self, path, const uint8_t[::1] key):
        """Write the tables to ``path`` under ``key`` (32 bytes: what they are built from)."""
        cdef bytes name = image_name(path, key)
        cdef const char* c_name = name
        cdef int rc
        with nogil:
            rc = image_write(c_name, &self.e.vocab, self.e.bt, &key[0])
        if rc:
            raise OSError(f"cannot write the engine image {os.fsdecode(name)}")

    @staticmethod
    def load_image(path, const uint8_t[::1] key, dict special_tokens, int family, size_t cache_entries=32768):
        """The CoreBPE :meth:`save_image` wrote to ``path`` under ``key``; None if missing or stale."""
        cdef CoreBPE core = CoreBPE.__new__(CoreBPE)
        cdef bytes name = image_name(path, key)
        cdef const char* c_name = name
        cdef int rc
        with nogil:
            rc = image_read(c_name, &core.e.vocab, &core.e.bt, &key[0])
        if rc == -1:
            raise MemoryError()
        if rc:
            return None  # what was read is freed with core
        core.family = family
        core.start_caches(cache_entries)
        core.special_decoder = {rank: text.encode("utf-8") for text, rank in special_tokens.items()}
        return core

    def rank_table(self):
        """The mergeable tokens as a RankTable, in rank order."""
        return table_of_vocab(&self.e.vocab)

    def __dealloc__(self):
        engine_free(&self.e)

    cdef bytes decode_single(self, rank_t r):
        if r < self.e.vocab.n_ranks and self.e.vocab.length[r] != NO_RANK:
            return PyBytes_FromStringAndSize(<const char*>self.e.vocab.blob + self.e.vocab.offset[r], self.e.vocab.length[r])
        return None

    cdef raise_for(self, int rc):
        if rc == -1:
            raise MemoryError()
        raise ValueError(f"byte 0x{-2 - rc:02X} has no rank in this vocabulary, so text containing it cannot be encoded")

    # -- encoding ------------------------------------------------------------------------

    def encode_ordinary(self, str text):
        """Ranks of ``text`` split by the family scanner. Raises UnicodeEncodeError on lone surrogates."""
        cdef BpeUtf8 u
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0, bad = 0
        cdef bint ready = bpe_utf8_ready(text, &u)
        try:
            with nogil:
                if not ready:
                    bad = bpe_utf8_write(<PyObject*>text, &u)
                if bad == 0:
                    rc = encode_text(&self.e, self.family, u.data, u.size, &out, NULL)
            if bad:
                raise_for_utf8(text, bad)
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(u.owned)
            free(out.data)

    cdef object run_batch(self, list texts, bint counting, bytes watch):
        """Encode (or count) every text with the GIL released for the whole batch.

        Returns (bytearray of uint32 ranks, end offsets, seen), or (counts, seen) when
        counting; seen lists the texts whose UTF-8 holds watch, in order (none for b"").
        """
        cdef tuple keep = tuple(texts)  # the strs stay alive while the GIL is released
        cdef Py_ssize_t count = len(keep), k, failed = -1
        cdef Texts t = Texts(0, NULL, NULL, NULL)
        cdef size_t* sizes = <size_t*>malloc((count + 1) * sizeof(size_t))
        cdef uint8_t* seen = <uint8_t*>calloc(count + 1, 1)
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef BatchJob job = BatchJob(&self.e, self.family, &out, sizes, counting,
                                     <const uint8_t*><const char*>watch, len(watch), seen)
        cdef int rc = 0, bad = 0
        try:
            if sizes == NULL or seen == NULL:
                raise MemoryError()
            texts_open(&t, keep)
            with nogil:
                rc = texts_run(&t, batch_text, &job, &failed, &bad)
            if failed >= 0:
                raise_for_utf8(keep[failed], bad)
            if rc:
                self.raise_for(rc)
            marked = [k for k in range(count) if seen[k]] if job.watch_n else []
            if counting:
                return [sizes[k] for k in range(count)], marked
            return vec_to_bytearray(&out), [sizes[k] for k in range(count)], marked
        finally:
            texts_close(&t)
            free(sizes)
            free(seen)
            free(out.data)

    def encode_batch_buffer(self, list texts, bytes watch=b""):
        """Ranks of many texts, flat: (bytearray of uint32 ranks, list of end offsets, the
        indices of the texts whose UTF-8 holds watch)."""
        return self.run_batch(texts, False, watch)

    def count_batch(self, list texts, bytes watch=b""):
        """Token counts of many texts, without building id lists, and the indices of the
        texts whose UTF-8 holds watch."""
        return self.run_batch(texts, True, watch)

    def encode_pieces(self, list pieces):
        """Ranks of pieces split elsewhere (the regex path for patterns without a scanner)."""
        cdef Py_ssize_t count = len(pieces), k, n
        cdef const uint8_t** ptrs = <const uint8_t**>malloc((count + 1) * sizeof(uint8_t*))
        cdef size_t* lens = <size_t*>malloc((count + 1) * sizeof(size_t))
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0
        try:
            if ptrs == NULL or lens == NULL:
                raise MemoryError()
            for k in range(count):
                ptrs[k] = <const uint8_t*>PyUnicode_AsUTF8AndSize(pieces[k], &n)
                lens[k] = n
            with nogil:
                for k in range(count):
                    rc = encode_piece(&self.e, ptrs[k], lens[k], &out)
                    if rc:
                        break
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(ptrs)
            free(lens)
            free(out.data)

    def encode_single_piece(self, const uint8_t[::1] piece):
        """BPE ranks of one piece of bytes, without splitting it."""
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0
        cdef size_t n = piece.shape[0]
        try:
            if n:
                with nogil:
                    rc = encode_piece(&self.e, &piece[0], n, &out)
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(out.data)

    def encode_piece_with(self, const uint8_t[::1] piece, str engine):
        """BPE ranks of one piece by one engine, without the whole-piece lookup or the cache:
        "merge" (the O(n^2) merge up to 48 bytes, the heap above) or "backtrack" (None when
        this vocabulary does not allow it). Tests hold the engines to each other."""
        cdef RankVec out = RankVec(NULL, 0, 0)
        cdef int rc = 0, which
        cdef size_t n = piece.shape[0]
        if engine == "merge":
            which = 0
        elif engine == "backtrack":
            which = 1
            if self.e.bt == NULL:
                return None
        else:
            raise ValueError(f"engine must be 'merge' or 'backtrack', not {engine!r}")
        try:
            if n:
                with nogil:
                    if which == 1:
                        rc = backtrack_encode(self.e.bt, &piece[0], n, &out)
                    else:
                        rc = merge_any(&self.e.vocab, &piece[0], n, &out)
            if rc == -3:
                raise RuntimeError(f"the backtracking encoder found no encoding of {bytes(piece)!r}")
            if rc:
                self.raise_for(rc)
            return vec_to_list(&out)
        finally:
            free(out.data)

    @property
    def backtrack_bytes(self):
        """Memory held by the backtracking encoder's tables, in bytes (0 when off)."""
        if self.e.bt == NULL:
            return 0
        return (self.e.vocab.n_ranks * sizeof(BtToken) + self.e.bt.n_da * sizeof(DaSlot)
                + PAIR_MEMO * sizeof(uint64_t))

    @property
    def backtracking(self):
        """Whether pieces of 13 bytes and more use the backtracking encoder (else merging)."""
        return self.e.bt != NULL

    def count_cuts(self, const uint8_t[::1] data):
        """How many pieces the family scanner cuts UTF-8 ``data`` into, ranks left out (for
        benchmarks/bench_scan.py: the scanner's own speed)."""
        cdef size_t n = data.shape[0], i = 0, c = 0
        cdef ScanWindow w
        if self.family == 0:
            raise ValueError("this encoding has no compiled scanner")
        if n == 0:
            return 0  # &data[0] needs a byte
        window_init(&w)
        with nogil:
            while i < n:
                i = next_piece(self.family, &data[0], i, n, &w)
                c += 1
        return c

    def split(self, str text):
        """The pieces the family scanner cuts ``text`` into (for tests and inspection)."""
        cdef Py_ssize_t n
        cdef const uint8_t* s = <const uint8_t*>PyUnicode_AsUTF8AndSize(text, &n)
        cdef size_t i = 0, e
        cdef list out = []
        cdef ScanWindow w
        if self.family == 0:
            raise ValueError("this encoding has no compiled scanner")
        window_init(&w)
        while i < <size_t>n:
            e = next_piece(self.family, s, i, n, &w)
            out.append((<const char*>s)[i:e].decode("utf-8"))
            i = e
        return out

    def rank_of(self, const uint8_t[::1] token):
        """The rank of a token's bytes, or None."""
        cdef rank_t r = NO_RANK
        if token.shape[0]:
            r = vocab_lookup(&self.e.vocab, &token[0], token.shape[0])
        return None if r == NO_RANK else r

    # -- decoding ------------------------------------------------------------------------

    def decode_bytes(self, tokens):
        """The bytes of a sequence of token ids; KeyError for an id no token has.

        Each id is converted once (``__index__``, as tiktoken does) into a C array before
        anything is sized or copied, from a snapshot of ``tokens``: Python code that an id's
        conversion runs cannot change what is copied."""
        return decode_ids(&self.e.vocab, self.special_decoder, tokens)

    def decode_single_token_bytes(self, token):
        cdef uint32_t t = PyNumber_Index(token)
        cdef bytes out = self.decode_single(t)
        if out is None:
            out = self.special_decoder.get(t)
            if out is None:
                raise KeyError(str(t))
        return out


