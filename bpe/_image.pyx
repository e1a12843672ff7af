# The engine's built tables as a file: written once per vocabulary into the cache and read
# back at the next start instead of building them again (the token table and its filter,
# the backtracking encoder's trie and token records). Cold code, its own extension module;
# bpe/_core.pyx calls it from CoreBPE.save_image and CoreBPE.load_image.
#
# The file is a header, then the arrays one after another, each exactly as it sits in
# memory. It is for this machine's build only: the header holds the format version, a
# byte-order mark, the sizes of the records, the key of what the tables were built from
# (the sha256 of the rank file) and a checksum of every array; a file that differs in any
# of them, or whose size is not what the header implies, is not read (the caller builds
# the tables and writes a new file). The checksum catches damage (a torn write, a bad
# disk), not an attacker who can write to the user's own cache.

from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdio cimport FILE, SEEK_END, SEEK_SET, fclose, fopen, fread, fseek, ftell, fwrite
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcmp, memcpy, memset

from bpe._backtrack cimport PAIR_MEMO, Backtrack, BtToken, DaSlot
from bpe._port cimport table_alloc
from bpe._types cimport NO_RANK, rank_t
from bpe._vocab cimport BPE_K1, BPE_K2, Slot, Vocab, WideSlot

cdef enum:
    IMAGE_VERSION = 2      # change whenever a table or record changes shape or meaning
    ENDIAN_MARK = 0x01020304

#: The format version (bpe.load names the cached files by it).
VERSION = IMAGE_VERSION


cdef struct ImageHeader:
    char magic[8]          # b"bpe-img\0"
    uint32_t version
    uint32_t endian        # ENDIAN_MARK as this machine writes it
    uint32_t record_sizes  # sizeof(Slot) | sizeof(BtToken) << 8 | sizeof(DaSlot) << 16
                           # | sizeof(WideSlot) << 24
    uint32_t has_backtrack
    uint8_t key[32]
    uint64_t n_ranks
    uint64_t mask
    uint64_t wide_mask
    uint64_t max_len
    uint64_t filter_mask
    uint64_t blob_size
    uint64_t n_da
    uint64_t checksum
    rank_t byte_rank[256]


cdef const char* MAGIC = b"bpe-img\0"


cdef inline uint32_t record_sizes() noexcept nogil:
    return <uint32_t>(sizeof(Slot) | (sizeof(BtToken) << 8) | (sizeof(DaSlot) << 16) | (sizeof(WideSlot) << 24))


cdef struct Part:
    void* data
    size_t size


cdef int image_parts(const Vocab* v, const Backtrack* bt, Part* parts) noexcept nogil:
    """The arrays in file order, with their sizes: how many."""
    parts[0] = Part(v.blob, v.blob_size)
    parts[1] = Part(v.offset, (<size_t>v.n_ranks + 1) * sizeof(uint64_t))
    parts[2] = Part(v.length, (<size_t>v.n_ranks + 1) * sizeof(uint32_t))
    parts[3] = Part(v.slots, (v.mask + 1) * sizeof(Slot))
    parts[4] = Part(v.wide, (v.wide_mask + 1) * sizeof(WideSlot))
    parts[5] = Part(v.pair_rank, 65536 * sizeof(rank_t))
    parts[6] = Part(v.filter, (v.filter_mask + 1) * sizeof(uint64_t))
    if bt == NULL:
        return 7
    parts[7] = Part(bt.tok, <size_t>v.n_ranks * sizeof(BtToken))
    parts[8] = Part(bt.da, bt.n_da * sizeof(DaSlot))
    return 9


cdef uint64_t checksum(const Part* parts, int count) noexcept nogil:
    """A 64-bit hash of the arrays: four independent multiply-xor lanes over 8-byte words
    (one lane would wait on each multiply), then the tail bytes."""
    cdef uint64_t lanes[4]
    cdef uint64_t w, h
    cdef const uint8_t* p
    cdef size_t n, i
    cdef int k, j
    for j in range(4):
        lanes[j] = BPE_K2 * <uint64_t>(j + 1)
    for k in range(count):
        p = <const uint8_t*>parts[k].data
        n = parts[k].size
        i = 0
        while i + 32 <= n:
            for j in range(4):
                memcpy(&w, p + i + 8 * j, 8)
                lanes[j] = (lanes[j] ^ w) * BPE_K1
                lanes[j] ^= lanes[j] >> 29
            i += 32
        while i < n:
            lanes[0] = (lanes[0] ^ p[i]) * BPE_K2
            i += 1
        lanes[1] ^= n
    h = 0
    for j in range(4):
        h = (h ^ lanes[j]) * BPE_K1
        h ^= h >> 32
    return h


cdef int image_write(const char* path, const Vocab* v, const Backtrack* bt, const uint8_t* key) noexcept nogil:
    """Write the tables to path. 0, or -1 when the file could not be written whole."""
    cdef ImageHeader head
    cdef Part parts[9]
    cdef int count = image_parts(v, bt, parts), k, rc = 0
    cdef FILE* f
    memset(&head, 0, sizeof(head))
    memcpy(head.magic, MAGIC, 8)
    head.version = IMAGE_VERSION
    head.endian = ENDIAN_MARK
    head.record_sizes = record_sizes()
    head.has_backtrack = bt != NULL
    memcpy(head.key, key, 32)
    head.n_ranks = v.n_ranks
    head.mask = v.mask
    head.wide_mask = v.wide_mask
    head.max_len = v.max_len
    head.filter_mask = v.filter_mask
    head.blob_size = v.blob_size
    head.n_da = bt.n_da if bt != NULL else 0
    head.checksum = checksum(parts, count)
    memcpy(head.byte_rank, v.byte_rank, sizeof(v.byte_rank))
    f = fopen(path, "wb")
    if f == NULL:
        return -1
    if fwrite(&head, sizeof(head), 1, f) != 1:
        rc = -1
    for k in range(count):
        if rc == 0 and parts[k].size and fwrite(parts[k].data, parts[k].size, 1, f) != 1:
            rc = -1
    if fclose(f) != 0:
        rc = -1
    return rc


cdef int image_read(const char* path, Vocab* v, Backtrack** bt_out, const uint8_t* key) noexcept nogil:
    """Fill v (zeroed) and bt_out from the image at path, allocating every table as a
    build does (so that the same free calls release them). 0; 1 when the file is missing,
    from another build or version, for another key, or damaged; -1 out of memory. On any
    failure the caller frees what v and bt_out hold."""
    cdef ImageHeader head
    cdef Part parts[9]
    cdef Backtrack* bt = NULL
    cdef FILE* f = fopen(path, "rb")
    cdef int count, k, rc = 0
    cdef size_t expected
    cdef long actual
    if f == NULL:
        return 1
    if (fread(&head, sizeof(head), 1, f) != 1 or memcmp(head.magic, MAGIC, 8) != 0
            or head.version != IMAGE_VERSION or head.endian != ENDIAN_MARK
            or head.record_sizes != record_sizes() or memcmp(head.key, key, 32) != 0
            or head.n_ranks >= NO_RANK or head.mask >= (<uint64_t>1 << 40) or head.wide_mask >= (<uint64_t>1 << 40)
            or head.filter_mask >= (<uint64_t>1 << 40) or head.blob_size >= (<uint64_t>1 << 40)
            or head.n_da >= (<uint64_t>1 << 40)):
        fclose(f)
        return 1
    # The sizes the header implies must be the file's, before anything is allocated.
    expected = (sizeof(head) + head.blob_size + (head.n_ranks + 1) * (sizeof(uint64_t) + sizeof(uint32_t))
                + (head.mask + 1) * sizeof(Slot) + (head.wide_mask + 1) * sizeof(WideSlot) + 65536 * sizeof(rank_t) + (head.filter_mask + 1) * sizeof(uint64_t))
    if head.has_backtrack:
        expected += head.n_ranks * sizeof(BtToken) + head.n_da * sizeof(DaSlot)
    if fseek(f, 0, SEEK_END) != 0 or ftell(f) != <long>expected or fseek(f, sizeof(head), SEEK_SET) != 0:
        fclose(f)
        return 1
    v.n_ranks = <rank_t>head.n_ranks
    v.mask = head.mask
    v.wide_mask = head.wide_mask
    v.max_len = head.max_len
    v.filter_mask = head.filter_mask
    v.blob_size = head.blob_size
    memcpy(v.byte_rank, head.byte_rank, sizeof(v.byte_rank))
    v.blob = <uint8_t*>table_alloc(v.blob_size)
    v.offset = <uint64_t*>table_alloc((<size_t>v.n_ranks + 1) * sizeof(uint64_t))
    v.length = <uint32_t*>table_alloc((<size_t>v.n_ranks + 1) * sizeof(uint32_t))
    v.slots = <Slot*>table_alloc((v.mask + 1) * sizeof(Slot))
    v.wide = <WideSlot*>table_alloc((v.wide_mask + 1) * sizeof(WideSlot))
    v.pair_rank = <rank_t*>malloc(65536 * sizeof(rank_t))
    v.filter = <uint64_t*>calloc(v.filter_mask + 1, sizeof(uint64_t))
    if head.has_backtrack:
        bt = <Backtrack*>calloc(1, sizeof(Backtrack))
        bt_out[0] = bt
        if bt != NULL:
            bt.n_da = head.n_da
            bt.tok = <BtToken*>table_alloc(<size_t>v.n_ranks * sizeof(BtToken))
            bt.da = <DaSlot*>table_alloc(bt.n_da * sizeof(DaSlot))
            bt.pairs = <uint64_t*>malloc(PAIR_MEMO * sizeof(uint64_t))
    if not (v.blob and v.offset and v.length and v.slots and v.wide and v.pair_rank and v.filter) or (
            head.has_backtrack and not (bt and bt.tok and bt.da and bt.pairs)):
        fclose(f)
        return -1
    if bt != NULL:
        memset(bt.pairs, 0xFF, PAIR_MEMO * sizeof(uint64_t))  # b = NO_RANK: never a key
    count = image_parts(v, bt, parts)
    for k in range(count):
        if parts[k].size and fread(parts[k].data, parts[k].size, 1, f) != 1:
            rc = 1
            break
    fclose(f)
    if rc == 0 and checksum(parts, count) != head.checksum:
        rc = 1
    return rc
