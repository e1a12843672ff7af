# Pretokenizer scanners, one per pattern family, and their character classes.

from libc.stdint cimport uint8_t

cdef extern from "_c/scan.h":
    uint8_t UCLASS "bpe_uclass"[0x110000]
    uint8_t cls_at "bpe_cls_at"(const uint8_t* s, size_t i, size_t* ln) noexcept nogil
    size_t ascii_run "bpe_ascii_run"(const uint8_t* s, size_t k, size_t n, int fold) noexcept nogil
    uint8_t BYTE_CLASS "bpe_byte_class"[256]

# ---------------------------------------------------------------------------------------
# Pretokenizer scanners.
#
# Each returns the end of the piece that starts at byte i of valid UTF-8 text s[:n], exactly
# where the `regex` module (leftmost-first alternation, backtracking) ends the match of the
# family's pattern. The reasoning for each alternative is written next to it; the tests hold
# each scanner to the `regex` reference on arbitrary Unicode.

# The scanner of each pattern family (CoreBPE's family; 0: the caller splits).
cdef enum Family:
    FAMILY_GPT2 = 1
    FAMILY_CL100K = 2
    FAMILY_O200K = 3

cdef enum:
    C_L = 1     # \p{L}
    C_N = 2     # \p{N}
    C_UP = 4    # [\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]
    C_LO = 8    # [\p{Ll}\p{Lm}\p{Lo}\p{M}]
    C_WS = 16   # \s (White_Space)
    B_OTHER = 32  # BYTE_CLASS only: an ASCII byte in [^\s\p{L}\p{N}]
    B_HIGH = 64   # BYTE_CLASS only: a byte of a multi-byte code point


cdef inline size_t run_of(const uint8_t* s, size_t i, size_t n, uint8_t mask) noexcept nogil:
    """End of the run of code points from i whose class has a bit of mask."""
    cdef size_t ln
    while i < n and cls_at(s, i, &ln) & mask:
        i += ln
    return i


cdef inline size_t run_of_other(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """End of the run of [^\\s\\p{L}\\p{N}] from i."""
    cdef size_t ln
    while i < n and not (cls_at(s, i, &ln) & (C_WS | C_L | C_N)):
        i += ln
    return i


cdef inline size_t contraction(const uint8_t* s, size_t e, size_t n, bint fold) noexcept nogil:
    """End after an optional 's 't 're 've 'm 'll 'd at e (any case when fold)."""
    cdef uint8_t b, b2
    if e + 1 >= n or s[e] != 39:
        return e
    b = s[e + 1]
    b2 = s[e + 2] if e + 2 < n else 0
    if fold:
        # Simple case folding: ASCII case, and U+017F LONG S folds to s.
        if b == 0xC5 and b2 == 0xBF:
            return e + 3
        b |= 0x20
        b2 |= 0x20
    if b == 115 or b == 116 or b == 109 or b == 100:  # s t m d
        return e + 2
    if (b == 114 and b2 == 101) or (b == 118 and b2 == 101) or (b == 108 and b2 == 108):
        return e + 3  # re ve ll
    return e


cdef inline size_t whitespace_run(const uint8_t* s, size_t i, size_t n,
                                  size_t* last_start, size_t* newline_end) noexcept nogil:
    """End of the \\s run from i; where its last code point starts; the end of its last \\r or \\n (0: none)."""
    cdef size_t ln
    last_start[0] = i
    newline_end[0] = 0
    while i < n and cls_at(s, i, &ln) & C_WS:
        if s[i] == 13 or s[i] == 10:
            newline_end[0] = i + 1
        last_start[0] = i
        i += ln
    return i


cdef inline size_t o200k_space(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """o200k's \\s*[\\r\\n]+ | \\s+(?!\\S) | \\s+ from the whitespace at i."""
    cdef size_t w, last_start, nl_end
    w = whitespace_run(s, i, n, &last_start, &nl_end)
    if nl_end:
        return nl_end       # \s*[\r\n]+
    if w == n:
        return n            # \s+(?!\S) at the end of the text
    if last_start > i:
        return last_start   # \s+(?!\S)
    return w                # \s+


cdef inline size_t cl100k_space(const uint8_t* s, size_t i, size_t n, size_t l0) noexcept nogil:
    """cl100k's \\s++$ | \\s*[\\r\\n] | \\s+(?!\\S) | \\s from the whitespace at i, whose code
    point is l0 bytes long."""
    cdef size_t w, last_start, nl_end
    w = whitespace_run(s, i, n, &last_start, &nl_end)
    if w == n:
        return n            # \s++$
    if nl_end:
        return nl_end       # \s*[\r\n]: up to the last newline of the run
    if last_start > i:
        return last_start   # \s+(?!\S)
    return i + l0           # \s


cdef inline size_t up_to_three_digits(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """\\p{N}{1,3} from i (the code point at i is known to be \\p{N})."""
    cdef size_t ln, k = 1
    cls_at(s, i, &ln)
    i += ln
    while k < 3 and i < n and cls_at(s, i, &ln) & C_N:
        i += ln
        k += 1
    return i


# r50k / p50k / gpt2:  's|'t|... | ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s
cdef inline size_t next_gpt2(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t l0, ln, e, w, last_start, nl_end
    cdef uint8_t c0 = cls_at(s, i, &l0), c1
    e = contraction(s, i, n, False)
    if e != i:
        return e
    if s[i] == 32 and i + 1 < n:
        # ' ?X++' tries the space first; a space is never L, N or "other" itself.
        c1 = cls_at(s, i + 1, &ln)
        if c1 & C_L:
            return run_of(s, i + 1, n, C_L)
        if c1 & C_N:
            return run_of(s, i + 1, n, C_N)
        if not (c1 & C_WS):
            return run_of_other(s, i + 1, n)
    if c0 & C_L:
        return run_of(s, i, n, C_L)
    if c0 & C_N:
        return run_of(s, i, n, C_N)
    if not (c0 & C_WS):
        return run_of_other(s, i, n)
    w = whitespace_run(s, i, n, &last_start, &nl_end)
    if w == n:
        return n            # \s++$
    if last_start > i:
        return last_start   # \s+(?!\S): give the last space back to the next piece
    return i + l0           # \s


# cl100k:  '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+
#          | ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s
cdef inline size_t next_cl100k(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t l0, ln, e
    cdef uint8_t c0 = cls_at(s, i, &l0)
    cdef uint8_t b0 = s[i]
    e = contraction(s, i, n, True)
    if e != i:
        return e
    if c0 & C_L:
        return run_of(s, i, n, C_L)
    if not (c0 & C_N) and b0 != 13 and b0 != 10:
        # The possessive prefix takes this code point; letters must follow.
        if i + l0 < n and cls_at(s, i + l0, &ln) & C_L:
            return run_of(s, i + l0, n, C_L)
    if c0 & C_N:
        return up_to_three_digits(s, i, n)
    e = i
    if b0 == 32 and i + 1 < n and not (cls_at(s, i + 1, &ln) & (C_WS | C_L | C_N)):
        e = i + 1
    elif not (c0 & C_WS):
        e = i
    else:
        e = n + 1  # whitespace: handled below
    if e <= n:
        e = run_of_other(s, e, n)
        while e < n and (s[e] == 13 or s[e] == 10):
            e += 1
        return e
    return cl100k_space(s, i, n, l0)


# o200k: the letter alternatives without their optional one-code-point prefix.
# First:  [UP]*[LO]+  Backtracking gives back UP code points until [LO]+ can start, so the
# match is the UP run plus the LO run after it when a lowercase letter follows the UP run,
# else the UP run up to its last code point that is also LO, else no match.
cdef inline ptrdiff_t o200k_first(const uint8_t* s, size_t p, size_t n) noexcept nogil:
    cdef size_t q = p, ln
    cdef ptrdiff_t last_lo_end = -1
    cdef uint8_t c
    while q < n:
        c = cls_at(s, q, &ln)
        if not (c & C_UP):
            break
        q += ln
        if c & C_LO:
            last_lo_end = q
    if q < n and cls_at(s, q, &ln) & C_LO:
        return run_of(s, q, n, C_LO)
    return last_lo_end


# Second: [UP]+[LO]*
cdef inline ptrdiff_t o200k_second(const uint8_t* s, size_t p, size_t n) noexcept nogil:
    cdef size_t ln
    if p >= n or not (cls_at(s, p, &ln) & C_UP):
        return -1
    return run_of(s, run_of(s, p, n, C_UP), n, C_LO)


# ASCII fast paths. Each returns -1 where a non-ASCII code point could change the piece.

cdef inline ptrdiff_t ascii_digits(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    """\p{N}{1,3} from an ASCII digit at i."""
    cdef size_t k = i + 1
    while k < n and k < i + 3 and BYTE_CLASS[s[k]] & C_N:
        k += 1
    if k < n and k < i + 3 and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    return k


cdef inline ptrdiff_t ascii_other(const uint8_t* s, size_t i, size_t n, bint slash) noexcept nogil:
    """' ?[^\s\p{L}\p{N}]+[\r\n]*' from i ([\r\n/]* with slash), where s[i + 1] is not a letter."""
    cdef size_t k
    if BYTE_CLASS[s[i]] & B_OTHER:
        k = i + 1
    elif s[i] == 32 and BYTE_CLASS[s[i + 1]] & B_OTHER:
        k = i + 2
    else:
        return -1
    while k < n and BYTE_CLASS[s[k]] & B_OTHER:
        k += 1
    if k < n and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    while k < n and (s[k] == 13 or s[k] == 10 or (slash and s[k] == 47)):
        k += 1
    return k


# ASCII whitespace at i, for cl100k and o200k. The letter alternatives take it (unless it
# is \r or \n) as the prefix of letters that follow: 0, go on to the letters. " ?[^\s\p{L}
# \p{N}]+" takes a space before other ASCII. Else the whitespace alternatives decide,
# wherever the run ends (they read any code point). -1: a multi-byte code point follows,
# which may be a letter or other. Indentation and line ends, which are most of the pieces
# of Python code that are not words, had all gone through the full scanner.
cdef inline ptrdiff_t ascii_space(const uint8_t* s, size_t i, size_t n, bint o200k) noexcept nogil:
    cdef uint8_t b
    if s[i] != 13 and s[i] != 10 and i + 1 < n:
        b = BYTE_CLASS[s[i + 1]]
        if b & B_HIGH:
            return -1
        if b & C_L:
            return 0
        if s[i] == 32 and b & B_OTHER:
            return ascii_other(s, i, n, o200k)
    return o200k_space(s, i, n) if o200k else cl100k_space(s, i, n, 1)


# The start both ASCII fast paths share: the piece's end when a number, white space or
# punctuation decides it; -1 when a non-ASCII code point (or, for cl100k, an apostrophe,
# which may start a contraction) could change it; else -2, with k[0] where the letters
# start (i, or i + 1 after a one-byte prefix).
cdef inline ptrdiff_t ascii_start(const uint8_t* s, size_t i, size_t n, bint o200k,
                                  size_t* k) noexcept nogil:
    cdef ptrdiff_t e
    cdef uint8_t c = BYTE_CLASS[s[i]]
    k[0] = i
    if c & C_N:
        return ascii_digits(s, i, n)
    if not (c & C_L):
        if c & C_WS:
            e = ascii_space(s, i, n, o200k)
            if e != 0:
                return e
        elif i + 1 >= n or (not o200k and s[i] == 39):
            return -1
        elif not (BYTE_CLASS[s[i + 1]] & C_L):
            return ascii_other(s, i, n, o200k)
        k[0] = i + 1  # the one-code-point prefix
    return -2


# cl100k: a letter run, after an optional prefix code point.
cdef inline ptrdiff_t cl100k_ascii(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t k
    cdef ptrdiff_t e = ascii_start(s, i, n, False, &k)
    if e != -2:
        return e
    k = ascii_run(s, k, n, True)  # [A-Za-z]*
    if k < n and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    return k


# o200k, when ASCII decides the piece (-1: it does not, scan in full). ASCII letters are
# UP (A-Z) or LO (a-z), never both, so the first letter alternative is the UP run plus a
# LO run when one follows, and else the second one takes the UP run; a non-ASCII code
# point where a run ends could extend it. Most pieces of English text take this path.
cdef inline ptrdiff_t o200k_ascii(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t k
    cdef ptrdiff_t e = ascii_start(s, i, n, True, &k)
    if e != -2:
        return e
    while k < n and BYTE_CLASS[s[k]] & C_UP:
        k += 1
    k = ascii_run(s, k, n, False)  # [a-z]*
    if k < n and BYTE_CLASS[s[k]] & B_HIGH:
        return -1
    return contraction(s, k, n, True)


# o200k: [^\r\n\p{L}\p{N}]?[UP]*[LO]+(?i:'s|...)? | [^\r\n\p{L}\p{N}]?[UP]+[LO]*(?i:'s|...)?
#        | \p{N}{1,3} | ?[^\s\p{L}\p{N}]+[\r\n/]* | \s*[\r\n]+ | \s+(?!\S) | \s+
cdef inline size_t next_o200k(const uint8_t* s, size_t i, size_t n) noexcept nogil:
    cdef size_t l0, ln
    cdef ptrdiff_t e = -1
    cdef uint8_t c0 = cls_at(s, i, &l0)
    cdef uint8_t b0 = s[i]
    cdef bint prefix = not (c0 & (C_L | C_N)) and b0 != 13 and b0 != 10 and i + l0 < n
    # The letter alternatives need a letter or mark here or right after the prefix; most
    # spaces and punctuation have neither and skip four failing attempts.
    if c0 & (C_UP | C_LO) or (prefix and cls_at(s, i + l0, &ln) & (C_UP | C_LO)):
        # Each letter alternative tries with the prefix first, then without it.
        if prefix:
            e = o200k_first(s, i + l0, n)
        if e < 0:
            e = o200k_first(s, i, n)
        if e < 0 and prefix:
            e = o200k_second(s, i + l0, n)
        if e < 0:
            e = o200k_second(s, i, n)
        if e >= 0:
            return contraction(s, e, n, True)
    if c0 & C_N:
        return up_to_three_digits(s, i, n)
    # Every letter and mark matched above, so the code point is whitespace or "other".
    e = -1
    if b0 == 32:
        if i + 1 < n and not (cls_at(s, i + 1, &ln) & (C_WS | C_L | C_N)):
            e = i + 1
    elif not (c0 & C_WS):
        e = i
    if e >= 0:
        e = run_of_other(s, e, n)
        while <size_t>e < n and (s[e] == 13 or s[e] == 10 or s[e] == 47):
            e += 1
        return e
    return o200k_space(s, i, n)
