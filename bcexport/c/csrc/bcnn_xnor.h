/* XNOR-popcount of bit rows: the binary products of BinaryNet's hidden blocks (issue 21 §3).
 *
 * A row of K values in {-1, +1} is stored as BCNN_XROW_BYTES(K) = 8 * ceil(K / 64) bytes: value k
 * is bit k % 8 of byte k / 8 (least significant bit first), 1 = +1, 0 = -1, and the bits from K up
 * to the end of the row are 0. bcexport/c/bitrows.py is the definition (numpy.packbits, "little").
 * For two such rows x and w (padding 0 in both, so it never counts),
 *
 *     sum_k x_k * w_k = K - 2 * popcount(x XOR w)
 *
 * (x_k * w_k = +1 where the bits agree, -1 where they differ: XNOR and popcount).
 *
 *   uint32_t bcnn_xnor_pop(const uint8_t *x, const uint8_t *w, int words)
 *       popcount(x XOR w) over `words` 64-bit words (8 * words bytes each), any alignment.
 *   void bcnn_xnor_pop4(x, w, ws, words, out)    the same for the 4 rows w + r * ws into out[r]
 *   void bcnn_xnor_pop4_next(...)                 the same, prefetching rows 4..7 (which must exist)
 *   const char *bcnn_xnor_path(void)      "avx512", "avx2", "neon" or "portable"
 *
 * Paths, chosen at compile time from the target macros (-DBCNN_PORTABLE forces the portable one):
 *   avx512    AVX-512F + VPOPCNTDQ (-mavx512vpopcntdq): 512 bits per XOR + VPOPCNTQ + add;
 *             the ragged end by a masked load. Without VPOPCNTDQ an AVX-512 build takes avx2.
 *   avx2      vpshufb nibble look-up (Mula, Kurz, Lemire 2018): 256 bits per XOR, two look-ups,
 *             byte adds; byte counters summed into 64-bit ones (vpsadbw) every 31 steps, before
 *             they could overflow (31 * 8 < 256). Rows of 16 or more steps 16 at a time through
 *             a carry-save-adder tree first (Harley-Seal, same paper; bcnn_xnor_x86.h).
 *   neon      vcnt on 128 bits, pairwise-accumulated into 16-bit lanes (vpadal), those into
 *             32-bit lanes every 2048 steps (2048 * 16 < 65536).
 *   portable  C99, no compiler builtins: the classic SWAR popcount of a 64-bit word.
 * Words a vector path leaves over are counted by the portable code. The result is an integer, so
 * every path gives the same value (tests/test_c_xnor.py checks each against NumPy on ragged rows).
 *
 * C99, header-only, no allocation, no stdio; a word is assembled from its bytes, so the kernels
 * need no alignment and no particular byte order.
 */
#ifndef BCNN_XNOR_H
#define BCNN_XNOR_H

#include <stddef.h>
#include <stdint.h>

#define BCNN_XROW_WORDS(K) (((K) + 63) / 64)
#define BCNN_XROW_BYTES(K) (8 * BCNN_XROW_WORDS(K))
#define BCNN_XNOR_MIN(a, b) ((a) < (b) ? (a) : (b))

#define BCNN_XNOR_PORTABLE 0
#define BCNN_XNOR_AVX2 1
#define BCNN_XNOR_AVX512 2
#define BCNN_XNOR_NEON 3
#if defined(BCNN_PORTABLE)
#define BCNN_XNOR_PATH_ID BCNN_XNOR_PORTABLE
#define BCNN_XNOR_PATH "portable"
#elif defined(__AVX512F__) && defined(__AVX512VPOPCNTDQ__) && defined(__x86_64__)
#define BCNN_XNOR_PATH_ID BCNN_XNOR_AVX512
#define BCNN_XNOR_PATH "avx512"
#elif defined(__AVX2__) && defined(__x86_64__)
#define BCNN_XNOR_PATH_ID BCNN_XNOR_AVX2
#define BCNN_XNOR_PATH "avx2"
#elif defined(__ARM_NEON) && defined(__aarch64__)
#define BCNN_XNOR_PATH_ID BCNN_XNOR_NEON
#define BCNN_XNOR_PATH "neon"
#else
#define BCNN_XNOR_PATH_ID BCNN_XNOR_PORTABLE
#define BCNN_XNOR_PATH "portable"
#endif

/* Bytes p[0..7] as a word, byte i in bits 8i..8i+7 (compilers make this one load on little-endian). */
static inline uint64_t bcnn_load64(const uint8_t *p)
{
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24
           | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

/* Set bits of v: bit pairs, then nibbles, then bytes summed by one multiplication. */
static inline uint32_t bcnn_popcount64(uint64_t v)
{
    v = v - ((v >> 1) & UINT64_C(0x5555555555555555));
    v = (v & UINT64_C(0x3333333333333333)) + ((v >> 2) & UINT64_C(0x3333333333333333));
    v = (v + (v >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
    return (uint32_t)((v * UINT64_C(0x0101010101010101)) >> 56);
}

/* popcount(x XOR w) over words j0 .. words-1, one word at a time. */
static inline uint32_t bcnn_xnor_pop_portable(const uint8_t *x, const uint8_t *w, int j0, int words)
{
    uint32_t count = 0;
    for (int j = j0; j < words; ++j)
        count += bcnn_popcount64(bcnn_load64(x + 8 * j) ^ bcnn_load64(w + 8 * j));
    return count;
}

#if BCNN_XNOR_PATH_ID == BCNN_XNOR_AVX512 || BCNN_XNOR_PATH_ID == BCNN_XNOR_AVX2
#include "bcnn_xnor_x86.h"
#elif BCNN_XNOR_PATH_ID == BCNN_XNOR_NEON
#include "bcnn_xnor_neon.h"
#else
#define BCNN_XNOR_KERNEL(x, w, words) bcnn_xnor_pop_portable(x, w, 0, words)
#endif

static inline uint32_t bcnn_xnor_pop(const uint8_t *x, const uint8_t *w, int words)
{
    return BCNN_XNOR_KERNEL(x, w, words);
}

/* popcount(x XOR w_r) for the four rows w_r = w + r * ws (r = 0..3) into out[0..3]: a vector
   path may share the loads of x among them (AVX2 does); otherwise four bcnn_xnor_pop. */
static inline void bcnn_xnor_pop4_hint(const uint8_t *x, const uint8_t *w, size_t ws, int words, uint32_t *out,
                                       int next)
{
#ifdef BCNN_XNOR_KERNEL4
    BCNN_XNOR_KERNEL4(x, w, ws, words, out, next);
#else
    (void)next;
    for (int r = 0; r < 4; ++r)
        out[r] = bcnn_xnor_pop(x, w + (size_t)r * ws, words);
#endif
}

static inline void bcnn_xnor_pop4(const uint8_t *x, const uint8_t *w, size_t ws, int words, uint32_t *out)
{
    bcnn_xnor_pop4_hint(x, w, ws, words, out, 0);
}

/* As bcnn_xnor_pop4, and the four rows after them, which must exist, may be prefetched (AVX2). */
static inline void bcnn_xnor_pop4_next(const uint8_t *x, const uint8_t *w, size_t ws, int words, uint32_t *out)
{
    bcnn_xnor_pop4_hint(x, w, ws, words, out, 1);
}

static inline const char *bcnn_xnor_path(void)
{
    return BCNN_XNOR_PATH;
}

#endif
