/* Portability: byte order, forced inlining, prefetch, the lowest and highest set bit, and the atomics
   the engine uses, for GCC and Clang (their builtins), MSVC (its intrinsics) and any other
   C11 compiler (<stdatomic.h>). Everything else in bpe/_c includes this first. */
#ifndef BPE_PORT_H
#define BPE_PORT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- byte order: the token tables read bytes as little-endian words ------------------ */
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
#  if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#    error "bpe supports little-endian machines only: its tables read token bytes as little-endian words"
#  endif
#elif defined(_MSC_VER) || defined(__x86_64__) || defined(__i386__) || defined(_M_X64) || \
      defined(_M_IX86) || defined(_M_ARM64) || defined(__LITTLE_ENDIAN__)
   /* little-endian */
#else
#  error "bpe cannot tell this compiler's byte order; it supports little-endian machines only"
#endif

/* ---- forced inlining ------------------------------------------------------------------ */
#if defined(_MSC_VER)
#  define BPE_ALWAYS_INLINE static __forceinline
#elif defined(__GNUC__) || defined(__clang__)
#  define BPE_ALWAYS_INLINE static inline __attribute__((always_inline))
#else
#  define BPE_ALWAYS_INLINE static inline
#endif

/* ---- prefetch (a hint: doing nothing is correct) --------------------------------------- */
#if defined(__GNUC__) || defined(__clang__)
#  define bpe_prefetch(p) __builtin_prefetch(p)
#  define bpe_prefetch_write(p) __builtin_prefetch(p, 1)
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
#  include <xmmintrin.h>
#  define bpe_prefetch(p) _mm_prefetch((const char*)(p), _MM_HINT_T0)
#  define bpe_prefetch_write(p) _mm_prefetch((const char*)(p), _MM_HINT_T0)
#else
#  define bpe_prefetch(p) ((void)(p))
#  define bpe_prefetch_write(p) ((void)(p))
#endif

/* ---- count trailing zeros of a nonzero word -------------------------------------------- */
#if defined(__GNUC__) || defined(__clang__)
BPE_ALWAYS_INLINE unsigned bpe_ctz64(uint64_t x) { return (unsigned)__builtin_ctzll(x); }
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_ARM64))
#  include <intrin.h>
BPE_ALWAYS_INLINE unsigned bpe_ctz64(uint64_t x) { unsigned long i; _BitScanForward64(&i, x); return (unsigned)i; }
#else
BPE_ALWAYS_INLINE unsigned bpe_ctz64(uint64_t x) {
    unsigned n = 0;
    while (!(x & 1)) { x >>= 1; n++; }
    return n;
}
#endif

/* ---- index of the highest set bit of a nonzero word -------------------------------------- */
#if defined(__GNUC__) || defined(__clang__)
BPE_ALWAYS_INLINE unsigned bpe_msb64(uint64_t x) { return 63u - (unsigned)__builtin_clzll(x); }
#elif defined(_MSC_VER) && (defined(_M_X64) || defined(_M_ARM64))
BPE_ALWAYS_INLINE unsigned bpe_msb64(uint64_t x) { unsigned long i; _BitScanReverse64(&i, x); return (unsigned)i; }
#else
BPE_ALWAYS_INLINE unsigned bpe_msb64(uint64_t x) {
    unsigned n = 63;
    while (!(x >> 63)) { x <<= 1; n--; }
    return n;
}
#endif

/* ---- atomics ---------------------------------------------------------------------------
   The piece cache's sequence locks (acquire loads, release stores, an acquiring CAS, the two
   fences) and relaxed loads and stores of 8, 32 and 64 bits for what they guard. Relaxed
   accesses compile to plain moves on x86-64 and AArch64. */
#if defined(__GNUC__) || defined(__clang__)
BPE_ALWAYS_INLINE uint32_t bpe_load_acquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
BPE_ALWAYS_INLINE uint32_t bpe_load_relaxed(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
BPE_ALWAYS_INLINE void bpe_store_release(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
BPE_ALWAYS_INLINE void bpe_store_relaxed(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
BPE_ALWAYS_INLINE int bpe_cas_acquire(uint32_t* p, uint32_t expected, uint32_t desired) {
    return __atomic_compare_exchange_n(p, &expected, desired, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}
BPE_ALWAYS_INLINE void bpe_fence_acquire(void) { __atomic_thread_fence(__ATOMIC_ACQUIRE); }
BPE_ALWAYS_INLINE void bpe_fence_release(void) { __atomic_thread_fence(__ATOMIC_RELEASE); }
BPE_ALWAYS_INLINE uint8_t bpe_load_tag(const uint8_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
BPE_ALWAYS_INLINE void bpe_store_tag(uint8_t* p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
BPE_ALWAYS_INLINE uint64_t bpe_load64(const uint64_t* p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
BPE_ALWAYS_INLINE void bpe_store64(uint64_t* p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }

#elif defined(_MSC_VER)
#  include <intrin.h>
/* Volatile accesses of aligned words are single loads and stores. On x86 and x64 the
   hardware orders them (a compiler barrier is all an acquire or release needs); on ARM64 a
   data memory barrier does the ordering. */
#  if defined(_M_ARM64)
#    define BPE_FENCE() __dmb(_ARM64_BARRIER_ISH)
#  else
#    define BPE_FENCE() _ReadWriteBarrier()
#  endif
BPE_ALWAYS_INLINE uint32_t bpe_load_relaxed(const uint32_t* p) { return *(const volatile uint32_t*)p; }
BPE_ALWAYS_INLINE uint32_t bpe_load_acquire(const uint32_t* p) { uint32_t v = *(const volatile uint32_t*)p; BPE_FENCE(); return v; }
BPE_ALWAYS_INLINE void bpe_store_relaxed(uint32_t* p, uint32_t v) { *(volatile uint32_t*)p = v; }
BPE_ALWAYS_INLINE void bpe_store_release(uint32_t* p, uint32_t v) { BPE_FENCE(); *(volatile uint32_t*)p = v; }
BPE_ALWAYS_INLINE int bpe_cas_acquire(uint32_t* p, uint32_t expected, uint32_t desired) {
    return (uint32_t)_InterlockedCompareExchange((volatile long*)p, (long)desired, (long)expected) == expected;
}
BPE_ALWAYS_INLINE void bpe_fence_acquire(void) { BPE_FENCE(); }
BPE_ALWAYS_INLINE void bpe_fence_release(void) { BPE_FENCE(); }
BPE_ALWAYS_INLINE uint8_t bpe_load_tag(const uint8_t* p) { return *(const volatile uint8_t*)p; }
BPE_ALWAYS_INLINE void bpe_store_tag(uint8_t* p, uint8_t v) { *(volatile uint8_t*)p = v; }
#  if defined(_M_IX86)  /* no single 64-bit move: read and write the words with interlocked calls */
BPE_ALWAYS_INLINE uint64_t bpe_load64(const uint64_t* p) {
    return (uint64_t)_InterlockedCompareExchange64((volatile long long*)p, 0, 0);
}
BPE_ALWAYS_INLINE void bpe_store64(uint64_t* p, uint64_t v) { _InterlockedExchange64((volatile long long*)p, (long long)v); }
#  else
BPE_ALWAYS_INLINE uint64_t bpe_load64(const uint64_t* p) { return *(const volatile uint64_t*)p; }
BPE_ALWAYS_INLINE void bpe_store64(uint64_t* p, uint64_t v) { *(volatile uint64_t*)p = v; }
#  endif

#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L && !defined(__STDC_NO_ATOMICS__)
#  include <stdatomic.h>
/* The tables are plain memory; these compilers are told it holds atomics of the same size. */
#  define BPE_A32(p) ((_Atomic uint32_t*)(p))
BPE_ALWAYS_INLINE uint32_t bpe_load_relaxed(const uint32_t* p) { return atomic_load_explicit(BPE_A32(p), memory_order_relaxed); }
BPE_ALWAYS_INLINE uint32_t bpe_load_acquire(const uint32_t* p) { return atomic_load_explicit(BPE_A32(p), memory_order_acquire); }
BPE_ALWAYS_INLINE void bpe_store_relaxed(uint32_t* p, uint32_t v) { atomic_store_explicit(BPE_A32(p), v, memory_order_relaxed); }
BPE_ALWAYS_INLINE void bpe_store_release(uint32_t* p, uint32_t v) { atomic_store_explicit(BPE_A32(p), v, memory_order_release); }
BPE_ALWAYS_INLINE int bpe_cas_acquire(uint32_t* p, uint32_t expected, uint32_t desired) {
    return atomic_compare_exchange_strong_explicit(BPE_A32(p), &expected, desired, memory_order_acquire, memory_order_relaxed);
}
BPE_ALWAYS_INLINE void bpe_fence_acquire(void) { atomic_thread_fence(memory_order_acquire); }
BPE_ALWAYS_INLINE void bpe_fence_release(void) { atomic_thread_fence(memory_order_release); }
BPE_ALWAYS_INLINE uint8_t bpe_load_tag(const uint8_t* p) { return atomic_load_explicit((_Atomic uint8_t*)p, memory_order_relaxed); }
BPE_ALWAYS_INLINE void bpe_store_tag(uint8_t* p, uint8_t v) { atomic_store_explicit((_Atomic uint8_t*)p, v, memory_order_relaxed); }
BPE_ALWAYS_INLINE uint64_t bpe_load64(const uint64_t* p) { return atomic_load_explicit((_Atomic uint64_t*)p, memory_order_relaxed); }
BPE_ALWAYS_INLINE void bpe_store64(uint64_t* p, uint64_t v) { atomic_store_explicit((_Atomic uint64_t*)p, v, memory_order_relaxed); }

#else
#  error "bpe needs atomics: GCC or Clang builtins, MSVC intrinsics, or C11 <stdatomic.h>"
#endif

#endif /* BPE_PORT_H */
