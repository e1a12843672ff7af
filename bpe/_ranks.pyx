# Rank files parsed in C: a .tiktoken file's lines straight into the flat table CoreBPE is
# built from (bpe/_core.pyx), with no Python object per token. Cold code (once per
# vocabulary), so its own extension module; bpe.load checks it against its line parser.

from cpython.bytes cimport PyBytes_FromStringAndSize
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy, memset

from bpe._types cimport NO_RANK, rank_t
from bpe._vocab cimport Vocab, hash_bytes, load_head


cdef signed char B64_VALUE[256]  # the value of each base64 character, -1 for the rest


cdef void make_b64_values() noexcept:
    cdef const char* alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    cdef int k
    memset(B64_VALUE, -1, 256)
    for k in range(64):
        B64_VALUE[<uint8_t>alphabet[k]] = k


make_b64_values()


cdef inline bint is_field_space(uint8_t c) noexcept nogil:
    """bytes.split()'s whitespace, less the line ends (a line has none)."""
    return c == 32 or c == 9 or c == 11 or c == 12


cdef inline size_t skip(const uint8_t* s, size_t q, size_t end, bint space) noexcept nogil:
    """The first position from q (at most end) whose byte is not space (space) or is space (not space)."""
    while q < end and is_field_space(s[q]) == space:
        q += 1
    return q


cdef inline ptrdiff_t b64_decode(const uint8_t* s, size_t n, uint8_t* out) noexcept nogil:
    """Decode s[:n] when it is canonical base64 (whole quads, or '==' after two characters
    and '=' after three, with the unused low bits zero), into out; the number of bytes, or
    -1 for anything else. Python's decoders agree on the canonical form in every version,
    and not on the rest (3.13 refuses padding after whole quads, which 3.12 ignores): that
    is left to the line parser, which decodes it as the running Python does."""
    cdef size_t data = 0, k, pads, rem, o = 0
    cdef uint32_t quad
    while data < n and B64_VALUE[s[data]] >= 0:
        data += 1
    pads = n - data
    rem = data & 3
    if data == 0 or rem == 1 or pads != (0 if rem == 0 else 4 - rem):
        return -1
    for k in range(data, n):
        if s[k] != 61:  # '='
            return -1
    if (rem == 2 and B64_VALUE[s[data - 1]] & 15) or (rem == 3 and B64_VALUE[s[data - 1]] & 3):
        return -1  # bits below the last byte that are not zero
    k = 0
    while k + 4 <= data:
        quad = ((<uint32_t>B64_VALUE[s[k]] << 18) | (<uint32_t>B64_VALUE[s[k + 1]] << 12)
                | (<uint32_t>B64_VALUE[s[k + 2]] << 6) | <uint32_t>B64_VALUE[s[k + 3]])
        out[o] = quad >> 16
        out[o + 1] = (quad >> 8) & 0xFF
        out[o + 2] = quad & 0xFF
        o += 3
        k += 4
    if rem >= 2:
        quad = (<uint32_t>B64_VALUE[s[k]] << 18) | (<uint32_t>B64_VALUE[s[k + 1]] << 12)
        if rem == 3:
            quad |= <uint32_t>B64_VALUE[s[k + 2]] << 6
        out[o] = quad >> 16
        o += 1
        if rem == 3:
            out[o] = (quad >> 8) & 0xFF
            o += 1
    return o


cdef class RankTable:
    """Mergeable tokens and their ranks in one flat block, in the order given: what
    ``bpe._core.CoreBPE`` is built from (the fields are in _ranks.pxd). :meth:`from_tiktoken` parses a ``.tiktoken`` file's bytes
    in C (no Python object per token); :meth:`to_dict` makes the dict when someone asks."""
    def __dealloc__(self):
        free(self.blob)
        free(self.offset)
        free(self.length)
        free(self.rank)
        free(self.by_rank)

    cdef int allocate(self, size_t count, size_t blob_size) except -1:
        self.blob = <uint8_t*>malloc(blob_size + 1)
        self.offset = <uint64_t*>malloc((count + 1) * sizeof(uint64_t))
        self.length = <uint32_t*>malloc((count + 1) * sizeof(uint32_t))
        self.rank = <rank_t*>malloc((count + 1) * sizeof(rank_t))
        if self.blob == NULL or self.offset == NULL or self.length == NULL or self.rank == NULL:
            raise MemoryError()
        return 0

    cdef bytes token(self, size_t k):
        return PyBytes_FromStringAndSize(<const char*>self.blob + self.offset[k], self.length[k])

    def __len__(self):
        return self.count

    @staticmethod
    def from_dict(dict mergeable_ranks):
        """The table of a {token bytes: rank} dict (TypeError or ValueError naming the entry)."""
        cdef RankTable t = RankTable.__new__(RankTable)
        cdef size_t total = 0, k = 0, ln
        cdef bytes tok
        cdef object rank_obj
        for tok, rank_obj in mergeable_ranks.items():
            if type(tok) is not bytes:
                raise TypeError(f"token {tok!r} is {type(tok).__name__}, not bytes")
            if type(rank_obj) is not int:
                raise TypeError(f"rank {rank_obj!r} of token {tok!r} is {type(rank_obj).__name__}, not int")
            if not 0 <= rank_obj < NO_RANK:
                raise ValueError(f"rank {rank_obj!r} of token {tok!r} is outside 0..{NO_RANK - 1}")
            if not tok:
                raise ValueError(f"the empty byte string cannot be a token (rank {rank_obj})")
            total += len(tok)
        t.allocate(len(mergeable_ranks), total)
        total = 0
        for tok, rank_obj in mergeable_ranks.items():
            ln = len(tok)
            memcpy(t.blob + total, <const char*>tok, ln)
            t.offset[k] = total
            t.length[k] = <uint32_t>ln
            t.rank[k] = <rank_t>rank_obj
            if t.rank[k] > t.max_rank:
                t.max_rank = t.rank[k]
            total += ln
            k += 1
        t.count = k
        t.blob_size = total
        return t

    @staticmethod
    def from_tiktoken(const uint8_t[::1] contents):
        """The table of a ``.tiktoken`` file's bytes, or None for anything
        ``bpe.load.parse_tiktoken_bpe`` would refuse (which then says what and where), and
        for ranks too sparse to check for repeats in a bitmap."""
        cdef RankTable t = RankTable.__new__(RankTable)
        cdef size_t n = contents.shape[0], lines = 1, i
        cdef bint ok
        for i in range(n):
            if contents[i] == 10 or contents[i] == 13:
                lines += 1
        t.allocate(lines, n)
        if n:
            with nogil:
                ok = parse_lines(t, &contents[0], n) and no_repeats(t)
            if not ok:
                return None
        return t

    def to_dict(self):
        """{token bytes: rank}, in the table's order."""
        cdef dict out = {}
        cdef size_t k
        for k in range(self.count):
            out[self.token(k)] = self.rank[k]
        return out

    def token_of(self, uint64_t rank):
        """The bytes of the token with this rank, or None."""
        cdef size_t k
        if self.by_rank == NULL:
            if self.max_rank > 4 * <uint64_t>self.count + (1 << 20):
                raise ValueError(f"the largest rank is {self.max_rank:,} for only {self.count:,} "
                                 "tokens: ranks this sparse are not supported")
            self.by_rank = <uint32_t*>calloc(self.max_rank + 1, sizeof(uint32_t))
            if self.by_rank == NULL:
                raise MemoryError()
            for k in range(self.count):
                self.by_rank[self.rank[k]] = <uint32_t>(k + 1)
        if rank > self.max_rank or self.by_rank[rank] == 0:
            return None
        return self.token(self.by_rank[rank] - 1)


cdef bint parse_lines(RankTable t, const uint8_t* s, size_t n) noexcept nogil:
    """Fill t from the lines of s, as bytes.splitlines() cuts them: 'base64 rank' each, blank
    lines skipped. False at the first line parse_tiktoken_bpe refuses."""
    cdef size_t i = 0, end, next_line, a, b, c, d, q, total = 0, k = 0
    cdef ptrdiff_t ln
    cdef uint64_t value
    while i < n:
        end = i
        while end < n and s[end] != 10 and s[end] != 13:
            end += 1
        next_line = end + 2 if end + 1 < n and s[end] == 13 and s[end + 1] == 10 else end + 1
        if end > i:
            a = skip(s, i, end, True)     # the token field is s[a:b], the rank field s[c:d]
            b = skip(s, a, end, False)
            c = skip(s, b, end, True)
            d = skip(s, c, end, False)
            if a == b or c == d or skip(s, d, end, True) != end:
                return False  # not two fields
            ln = b64_decode(s + a, b - a, t.blob + total)
            if ln < 0:
                return False
            value = 0
            for q in range(c, d):
                if not 48 <= s[q] <= 57:
                    return False
                value = value * 10 + (s[q] - 48)
                if value >= NO_RANK:
                    return False  # does not fit in 32 bits
            t.offset[k] = total
            t.length[k] = <uint32_t>ln
            t.rank[k] = <rank_t>value
            if value > t.max_rank:
                t.max_rank = value
            total += <size_t>ln
            k += 1
        i = next_line
    t.count = k
    t.blob_size = total
    return True


cdef bint no_repeats(RankTable t) noexcept nogil:
    """Whether every token and every rank of t appears once (False also for sparse ranks)."""
    cdef size_t size = 16, k, j, mask
    cdef uint64_t h, bit
    cdef bint ok = True
    if t.max_rank > 4 * <uint64_t>t.count + (1 << 20):
        return False
    while size < 2 * t.count:
        size *= 2
    mask = size - 1
    seen = <uint32_t*>calloc(size, sizeof(uint32_t))            # entry + 1 by token hash
    ranks = <uint64_t*>calloc(t.max_rank // 64 + 1, sizeof(uint64_t))  # a bit per rank
    if seen == NULL or ranks == NULL:
        ok = False
    k = 0
    while ok and k < t.count:
        bit = <uint64_t>1 << (t.rank[k] & 63)
        if ranks[t.rank[k] >> 6] & bit:
            ok = False
            break
        ranks[t.rank[k] >> 6] |= bit
        p = t.blob + t.offset[k]
        h = hash_bytes(p, t.length[k], load_head(p, t.length[k]))
        j = h & mask
        while seen[j]:
            if (t.length[seen[j] - 1] == t.length[k]
                    and memcmp(t.blob + t.offset[seen[j] - 1], p, t.length[k]) == 0):
                ok = False
                break
            j = (j + 1) & mask
        seen[j] = <uint32_t>(k + 1)
        k += 1
    free(seen)
    free(ranks)
    return ok


cdef RankTable table_of_vocab(const Vocab* v):
    """The tokens of a built token table, in rank order."""
    cdef RankTable t = RankTable.__new__(RankTable)
    cdef size_t k = 0, total = 0
    cdef rank_t r
    for r in range(v.n_ranks):
        if v.length[r] != NO_RANK:
            k += 1
            total += v.length[r]
    t.allocate(k, total)
    k = 0
    total = 0
    for r in range(v.n_ranks):
        if v.length[r] != NO_RANK:
            memcpy(t.blob + total, v.blob + v.offset[r], v.length[r])
            t.offset[k] = total
            t.length[k] = v.length[r]
            t.rank[k] = r
            t.max_rank = r
            total += v.length[r]
            k += 1
    t.count = k
    t.blob_size = total
    return t

