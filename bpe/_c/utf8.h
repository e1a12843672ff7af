/* The UTF-8 of a str, written by bpe (see _text.pxd). */
#ifndef BPE_UTF8_H
#define BPE_UTF8_H

#include <Python.h>
#include "port.h"
#include "simd.h"

/* ASCII strs are their own UTF-8, and a str whose UTF-8 Python already made keeps it; for
   the rest bpe writes it, without the GIL, into a buffer the call frees, rather than
   through PyUnicode_AsUTF8AndSize, which makes a copy and leaves it on the str for as long
   as the str lives (memory the caller never asked for). Each code point is one 4-byte
   store whatever its length, and the length only moves the pointer; ASCII runs go 16
   code points at a time with SSE2 or NEON, else four (UCS-2) or eight (Latin-1). */
typedef struct { const uint8_t* data; Py_ssize_t size; uint8_t* owned; } BpeUtf8;

/* With the GIL: 1 when text's UTF-8 is at hand in u (ASCII, or made by Python before),
   0 when bpe_utf8_write must make it, -1 with an exception set. */
static int bpe_utf8_ready(PyObject* text, BpeUtf8* u) {
    u->owned = NULL;
#if PY_VERSION_HEX < 0x030C0000
    if (PyUnicode_READY(text) < 0)
        return -1;
#endif
    if (PyUnicode_IS_ASCII(text)) {
        u->data = (const uint8_t*)PyUnicode_DATA(text);
        u->size = PyUnicode_GET_LENGTH(text);
        return 1;
    }
#ifndef Py_GIL_DISABLED  /* without a GIL another thread may be making that UTF-8 now */
    if (PyUnicode_IS_COMPACT(text) && ((PyCompactUnicodeObject*)text)->utf8 != NULL) {
        u->data = (const uint8_t*)((PyCompactUnicodeObject*)text)->utf8;
        u->size = ((PyCompactUnicodeObject*)text)->utf8_length;
        return 1;
    }
#endif
    return 0;
}

static inline uint32_t bpe_utf8_unit(uint32_t c, int* len) {
    /* The UTF-8 bytes of c (not a surrogate), first byte lowest. */
    if (c < 0x80) { *len = 1; return c; }
    uint32_t w2 = 0x80C0u | (c >> 6) | ((c & 0x3Fu) << 8);
    uint32_t w3 = 0x8080E0u | (c >> 12) | (((c >> 6) & 0x3Fu) << 8) | ((c & 0x3Fu) << 16);
    uint32_t w4 = 0x808080F0u | (c >> 18) | (((c >> 12) & 0x3Fu) << 8)
                  | (((c >> 6) & 0x3Fu) << 16) | ((c & 0x3Fu) << 24);
    *len = 2 + (c >= 0x800) + (c >= 0x10000);
    return c < 0x800 ? w2 : c < 0x10000 ? w3 : w4;
}

/* Fill u with the UTF-8 of text (a str that bpe_utf8_ready left to us). Needs no GIL
   while text is alive. 0, -1 when text holds a lone surrogate (UTF-8 cannot encode it;
   u.owned is still to be freed), or -2 out of memory. */
static int bpe_utf8_write(PyObject* text, BpeUtf8* u) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(text), i = 0;
    int kind = PyUnicode_KIND(text), len;
    const void* src = PyUnicode_DATA(text);
    uint32_t bad = 0, c, w;
    uint8_t* o = u->owned = (uint8_t*)malloc((size_t)n * (kind == 4 ? 4 : kind + 1) + 8);
    if (o == NULL)
        return -2;
    if (kind == PyUnicode_1BYTE_KIND) {
        const uint8_t* s = (const uint8_t*)src;
        while (i < n) {
            if (s[i] < 0x80 && i + 16 <= n) {
                Py_ssize_t k = (Py_ssize_t)bpe_ascii_units(s + i, 0, (size_t)(n - i), o);
                i += k;
                o += k;
                if (i >= n)
                    break;
            }
            if (i + 8 <= n) {
                uint64_t q;
                memcpy(&q, s + i, 8);
                if (!(q & 0x8080808080808080ull)) { memcpy(o, &q, 8); o += 8; i += 8; continue; }
            }
            w = bpe_utf8_unit(s[i++], &len);
            memcpy(o, &w, 4);
            o += len;
        }
    } else if (kind == PyUnicode_2BYTE_KIND) {
        const uint16_t* s = (const uint16_t*)src;
        while (i < n) {
            if (s[i] < 0x80 && i + 16 <= n) {
                Py_ssize_t k = (Py_ssize_t)bpe_ascii_units(s + i, 1, (size_t)(n - i), o);
                i += k;
                o += k;
                if (i >= n)
                    break;
            }
            if (i + 4 <= n) {
                uint64_t q;
                memcpy(&q, s + i, 8);
                if (!(q & 0xFF80FF80FF80FF80ull)) {
                    w = (uint32_t)(q & 0xFF) | (uint32_t)((q >> 8) & 0xFF00)
                        | (uint32_t)((q >> 16) & 0xFF0000) | (uint32_t)((q >> 24) & 0xFF000000);
                    memcpy(o, &w, 4); o += 4; i += 4; continue;
                }
            }
            c = s[i++];
            if (c >= 0x800) {  /* most of them in CJK text: no select */
                bad |= (c & 0xF800) == 0xD800;
                w = 0x8080E0u | (c >> 12) | (((c >> 6) & 0x3Fu) << 8) | ((c & 0x3Fu) << 16);
                memcpy(o, &w, 4);
                o += 3;
                continue;
            }
            w = bpe_utf8_unit(c, &len);
            memcpy(o, &w, 4);
            o += len;
        }
    } else {
        const uint32_t* s = (const uint32_t*)src;
        while (i < n) {
            c = s[i++];
            bad |= (c & 0xFFFFF800u) == 0xD800;
            w = bpe_utf8_unit(c, &len);
            memcpy(o, &w, 4);
            o += len;
        }
    }
    u->data = u->owned;
    u->size = o - u->owned;
    return bad ? -1 : 0;
}
#endif /* BPE_UTF8_H */
