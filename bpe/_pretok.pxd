# Bulk pretokenization: where the next piece ends, for the encode loop, the trainer's
# counting and split(). The ASCII paths of the o200k and cl100k scanners read class masks
# made 64 bytes at a time (bpe/_c/simd.h: SSE2, AVX2 or NEON) instead of one byte at a
# time. From the masks, window_cuts finds every piece start of the window at once, and
# most pieces then end at one count of trailing zeros, with no branch on what kind of
# piece they are. Where the cuts cannot vouch for a piece, o200k reads its runs from the
# masks (masked_piece); where the masks cannot tell either (a piece that reaches the
# window's end, the last 63 bytes of a text) the byte-at-a-time ASCII paths of
# bpe/_scan.pxd decide, and where a non-ASCII code point could change the piece, the full
# scanners (docs/performance.md). tests/test_simd.py holds every level to `regex`.

from libc.stdint cimport uint8_t, uint64_t

from bpe._port cimport bpe_ctz64

from bpe._scan cimport (FAMILY_CL100K, FAMILY_O200K, cl100k_ascii, contraction, next_cl100k,
                        next_gpt2, next_o200k, o200k_ascii)

cdef extern from "_c/simd.h":
    ctypedef struct BpeMasks:
        uint64_t upper
        uint64_t lower
        uint64_t digit
        uint64_t space
        uint64_t high
        uint64_t other
        uint64_t newline
        uint64_t slash
        uint64_t blank
        uint64_t quote
    enum:
        SIMD_NONE "BPE_SIMD_NONE"
        SIMD_SCALAR "BPE_SIMD_SCALAR"
        SIMD_SSE2 "BPE_SIMD_SSE2"
        SIMD_AVX2 "BPE_SIMD_AVX2"
        SIMD_NEON "BPE_SIMD_NEON"
    int simd_get "bpe_simd_get"() noexcept nogil
    void simd_set "bpe_simd_set"(int level) noexcept nogil
    int simd_supported "bpe_simd_supported"(int level) noexcept nogil
    int simd_best "bpe_simd_best"() noexcept nogil
    void classify "bpe_classify"(int level, const uint8_t* p, BpeMasks* m) noexcept nogil
    unsigned run_end "bpe_run_end"(uint64_t mask, unsigned o) noexcept nogil
    unsigned msb64 "bpe_msb64"(uint64_t x) noexcept nogil

cdef enum:
    WINDOW = 64  # bytes per set of masks
    REFILL = 48  # a piece that starts this far into the window gets masks of its own: the
                 # ASCII paths look at most 3 bytes past a piece's first, and a run read from
                 # the masks may go 32 bytes before it reaches the window's end

# masked_piece's answers besides a piece's end:
cdef enum:
    FULL_SCAN = -1  # a non-ASCII code point may change the piece
    BYTE_SCAN = -2  # the piece reaches the window's end

cdef struct ScanWindow:
    size_t base     # where the masks start in the text
    bint valid      # masks are there (none yet, or too near the text's end for 64 bytes)
    int level       # the classifier (SIMD_NONE: the byte-at-a-time paths only)
    BpeMasks m
    uint64_t cuts   # window_cuts: the bytes that start a piece, where not unsure
    uint64_t unsure # window_cuts: the bytes whose bit in cuts the masks cannot vouch for


cdef inline void window_init(ScanWindow* w) noexcept nogil:
    """A window for a new text, with the classifier chosen for this process."""
    w.base = 0
    w.valid = False
    w.level = simd_get()


cdef inline bint bit(uint64_t mask, unsigned j) noexcept nogil:
    return (mask >> j) & 1


# All the piece starts of a window at once. Bit 0 starts a piece (a window is classified
# where one starts); whether byte k starts one then follows from the classes of bytes k-2
# to k+1 and from three kinds of run: newlines (o200k: and slashes) that a punctuation
# piece takes in at its end, white space from which a newline follows (white space up to
# its run's last newline is one piece) and digits (in threes from the run's start). What
# the masks cannot vouch for is unsure: non-ASCII bytes, white space other than ' ' and
# newlines (a tab prefixes letters, never punctuation), an apostrophe that may start a
# contraction and the three bytes after it, a thirteenth digit in a row, the last byte
# (its answer needs the next) and white space that reaches the window's end, each with
# the decisions that read it. A piece whose end the cuts vouch for then costs one count
# of trailing zeros; the others go to masked_piece below (o200k) or the byte paths.
# tests/test_simd.py holds the cuts, bit by bit, and the scanners to `regex`.

cdef inline uint64_t fill_up(uint64_t x, uint64_t g) noexcept nogil:
    """x's bits carried to higher bits through runs of g's."""
    x |= (x << 1) & g
    g &= g << 1
    x |= (x << 2) & g
    g &= g << 2
    x |= (x << 4) & g
    g &= g << 4
    x |= (x << 8) & g
    g &= g << 8
    x |= (x << 16) & g
    g &= g << 16
    return x | ((x << 32) & g)


cdef inline uint64_t fill_down(uint64_t x, uint64_t g) noexcept nogil:
    """x's bits carried to lower bits through runs of g's."""
    x |= (x >> 1) & g
    g &= g >> 1
    x |= (x >> 2) & g
    g &= g >> 2
    x |= (x >> 4) & g
    g &= g >> 4
    x |= (x >> 8) & g
    g &= g >> 8
    x |= (x >> 16) & g
    g &= g >> 16
    return x | ((x >> 32) & g)


cdef inline void window_cuts(ScanWindow* w, bint o200k) noexcept nogil:
    """The window's cuts and unsure bits for o200k, else cl100k: the two differ in three
    places. o200k cuts a word where a capital follows a small letter, takes slashes in
    after newlines at a punctuation piece's end and keeps a contraction in its word;
    cl100k cuts a contraction ('s 'll ...) as a piece of its own, wherever it starts."""
    cdef uint64_t lo = w.m.lower, up = w.m.upper, letter = lo | up, digit = w.m.digit
    cdef uint64_t space = w.m.space, blank = w.m.blank, nl = w.m.newline, other = w.m.other
    cdef uint64_t high = w.m.high, slash = w.m.slash if o200k else 0
    cdef uint64_t taken, to_nl = 0, q, quote, tail, starts, d2, d4, d7, d10, seeds
    # Each run is filled only where the window has one, and in the cheapest way that is
    # exact: in prose most windows need none of them.
    # newlines (and o200k's slashes after them) right after punctuation end its piece
    seeds = nl & (other << 1)
    if slash & ((nl << 1) | (nl >> 1)):
        taken = fill_up(seeds, nl | slash)
    else:  # runs of newlines alone, each with a seed at its start or none: a carry fills them
        taken = ((nl + seeds) ^ nl) & nl
    # a space after a newline starts a piece unless a newline follows within the run
    if blank & (nl << 1):
        to_nl = fill_down(nl, space)
    # an apostrophe before a letter may start a contraction (in o200k only after one), whose
    # end, up to three bytes on, is unsure too
    quote = w.m.quote & ((letter | high) >> 1)
    if o200k:
        quote &= (letter | high) << 1
    q = high | (space & ~blank & ~nl) | quote
    # digits go in threes from their run's start
    starts = digit & ~(digit << 1)
    d2 = digit & (digit << 1)
    d4 = d2 & (d2 << 2)  # the last of four digits in a row
    if d4:
        d7 = d4 & (d4 << 3)
        d10 = d7 & (d4 << 6)
        starts |= (d4 & (starts << 3)) | (d7 & (starts << 6)) | (d10 & (starts << 9))
        q |= d10 & (d4 << 9)
    # and what reads a run from its other end: digits counted from an unsure byte before
    # them, newlines that non-ASCII punctuation may take in, white space that a non-ASCII
    # byte ends (white space too, maybe); the runs overlap here, which is only cautious
    if high | ((q << 1) & digit):
        q |= (fill_up(((q << 1) & digit) | (nl & (high << 1)), digit | nl | slash)
              | fill_down(space & (high >> 1), space))
    # white space at the window's end may go on, and hold a newline: the bits above the
    # last byte that is not white space (all but bit 0 when there is none)
    tail = ~((<uint64_t>2 << msb64(~space | 1)) - 1)
    # a decision reads bytes k-2 to k, and k+1 for a space
    w.unsure = (q | (q << 1) | (q << 2) | ((q >> 1) & blank) | (quote << 3) | tail
                | (<uint64_t>1 << 63))
    w.cuts = ((letter & ((lo << 1 & up if o200k else 0) | (nl << 1) | (digit << 1)
                         | ((other << 1) & (((other & ~taken) << 2) | (blank << 2)))))
              | (other & ((letter << 1) | (digit << 1) | (nl << 1)))
              | starts
              | (nl & ~(space << 1))
              | (blank & (~(space << 1) | ((nl << 1) & ~to_nl) | ((blank << 1) & ~(space >> 1))))
              | ((taken << 1) & ~taken)) & ~taken


cdef inline void window_fill(ScanWindow* w, const uint8_t* s, size_t i, bint o200k) noexcept nogil:
    """The window of s[i:i + 64] (all readable): its masks, cuts and unsure bits."""
    classify(w.level, s + i, &w.m)
    window_cuts(w, o200k)
    w.base = i
    w.valid = True


cdef inline ptrdiff_t cut_piece(const ScanWindow* w, size_t i) noexcept nogil:
    """The end of the piece at i read from the window's cuts, or -1 where it is unsure."""
    cdef unsigned o = <unsigned>(i - w.base), c
    cdef uint64_t after = ~((<uint64_t>2 << o) - 1), rest = w.cuts & after
    if rest == 0:
        return -1
    c = bpe_ctz64(rest)
    if w.unsure & after & ((<uint64_t>2 << c) - 1):
        return -1
    return w.base + c


cdef inline ptrdiff_t masked_other(const ScanWindow* w, unsigned q) noexcept nogil:
    """' ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*', its run going on from bit q."""
    q = run_end(w.m.other, q)
    if q == WINDOW:
        return BYTE_SCAN
    if bit(w.m.high, q):
        return FULL_SCAN
    q = run_end(w.m.newline | w.m.slash, q)
    if q == WINDOW:
        return BYTE_SCAN
    return w.base + q


cdef inline ptrdiff_t masked_space(const ScanWindow* w, unsigned o) noexcept nogil:
    """The white-space alternatives from the white space at bit o: up to the end of the
    run's last \\r or \\n, else all but its last code point, else the one (the end of the
    text, where o200k_space answers otherwise, is never inside a window)."""
    cdef unsigned e = run_end(w.m.space, o)
    cdef uint64_t nl
    if e == WINDOW:
        return BYTE_SCAN
    if bit(w.m.high, e):
        return FULL_SCAN  # the run may go on through a non-ASCII space
    nl = w.m.newline & (((<uint64_t>1) << e) - 1) & ~(((<uint64_t>1) << o) - 1)
    if nl:
        return w.base + msb64(nl) + 1
    if e - 1 > o:
        return w.base + e - 1
    return w.base + e


cdef inline ptrdiff_t masked_piece(const ScanWindow* w, const uint8_t* s, size_t i,
                                   size_t n) noexcept nogil:
    """The end of the o200k piece at i (ASCII, less than REFILL bytes into the window), read
    from the masks as bpe/_scan.pxd's o200k_ascii reads the bytes."""
    cdef unsigned o = <unsigned>(i - w.base), k, r
    cdef uint64_t letters = w.m.upper | w.m.lower
    if bit(w.m.digit, o):  # \p{N}{1,3}
        r = run_end(w.m.digit, o) - o
        if r >= 3:
            return i + 3
        return FULL_SCAN if bit(w.m.high, o + r) else <ptrdiff_t>(i + r)
    k = o
    if not bit(letters, o):
        if bit(w.m.space, o):
            if bit(w.m.newline, o):
                return masked_space(w, o)
            if bit(w.m.high, o + 1):
                return FULL_SCAN
            if not bit(letters, o + 1):
                if bit(w.m.blank, o) and bit(w.m.other, o + 1):
                    return masked_other(w, o + 2)
                return masked_space(w, o)
        elif not bit(letters, o + 1):
            return masked_other(w, o + 1)
        k = o + 1  # the one-code-point prefix of the letters
    k = run_end(w.m.upper, k)  # [A-Z]*[a-z]*: ASCII letters are UP or LO, never both
    if k == WINDOW:
        return BYTE_SCAN
    k = run_end(w.m.lower, k)
    if k == WINDOW:
        return BYTE_SCAN
    if bit(w.m.high, k):
        return FULL_SCAN
    if s[w.base + k] == 39:  # an apostrophe: maybe a contraction
        return contraction(s, w.base + k, n, True)
    return w.base + k


# The ASCII paths are inlined here and the full scanners called when they decline: a full
# scanner's call and register saves cost as much as the fast path itself.
cdef inline size_t piece_past_cuts(const ScanWindow* w, bint o200k, const uint8_t* s, size_t i,
                                   size_t n) noexcept nogil:
    """Where the o200k (else cl100k) piece at byte i ends when the window's cuts cannot say:
    from the masks (o200k, w valid and i less than REFILL bytes into it), else the ASCII
    byte paths, else the full scanner."""
    cdef ptrdiff_t e
    if s[i] < 0x80:
        if o200k and w.valid:
            e = masked_piece(w, s, i, n)
            if e >= 0:
                return e
            if e == FULL_SCAN:
                return next_o200k(s, i, n)
        e = o200k_ascii(s, i, n) if o200k else cl100k_ascii(s, i, n)
        if e >= 0:
            return e
    return next_o200k(s, i, n) if o200k else next_cl100k(s, i, n)


cdef inline size_t next_piece(int family, const uint8_t* s, size_t i, size_t n,
                              ScanWindow* w) noexcept nogil:
    """Where the piece that starts at byte i of s[:n] ends (w: window_init for each text)."""
    cdef ptrdiff_t e
    cdef bint o200k = family == FAMILY_O200K
    if not o200k and family != FAMILY_CL100K:
        return next_gpt2(s, i, n)
    if s[i] < 0x80 and w.level != SIMD_NONE:
        if not w.valid or i - w.base >= REFILL:
            w.valid = n - i >= WINDOW
            if w.valid:
                window_fill(w, s, i, o200k)
        if w.valid:
            e = cut_piece(w, i)
            if e >= 0:
                return e
    return piece_past_cuts(w, o200k, s, i, n)
