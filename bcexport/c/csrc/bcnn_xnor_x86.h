/* x86 paths of bcnn_xnor_pop (included by bcnn_xnor.h, which states the contract): AVX2 with
 * vpshufb nibble look-ups, AVX-512 with VPOPCNTDQ.
 *
 * AVX2 has no vector popcount. The look-up per 256 bits (Mula, Kurz, Lemire 2018) costs 8 vector
 * operations with its XOR: 2 AND, a shift, 2 VPSHUFB and 2 byte adds. Rows of 16 or more vectors
 * go 16 at a time through a carry-save-adder tree instead (Harley-Seal, same paper): a full adder
 * (2 XOR, 2 AND, 1 OR) turns three vectors of one weight into one of that weight and one of twice
 * it, so 11 of them take the 16 XORs down to 5 vectors of weights 1, 1, 2, 4, 8, whose bits are
 * counted by look-ups of weighted tables: 107 operations per 16 vectors instead of 128. A hidden
 * row of mnist-bnn (K = 4096) is one tree. The paper's loop carries ones .. eights from block to
 * block and counts only the sixteens; with one block per row that saves nothing, so each block is
 * counted whole. Shorter rows and the rest of a row take the look-up, the last 1..3 words the
 * portable code. */
#ifndef BCNN_XNOR_X86_H
#define BCNN_XNOR_X86_H

#ifndef BCNN_XNOR_H
#error "include bcnn_xnor.h"
#endif

#include <immintrin.h>

#if BCNN_XNOR_PATH_ID == BCNN_XNOR_AVX512

/* 8 words per step; the last 1..7 by a masked load (masked-off lanes read nothing and are 0). */
static inline uint32_t bcnn_xnor_pop_avx512(const uint8_t *x, const uint8_t *w, int words)
{
    __m512i acc = _mm512_setzero_si512();
    int j = 0;
    for (; j + 8 <= words; j += 8) {
        __m512i v = _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + 8 * j)),
                                     _mm512_loadu_si512((const void *)(w + 8 * j)));
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(v));
    }
    if (j < words) {
        __mmask8 k = (__mmask8)((1u << (words - j)) - 1u);
        __m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi64(k, (const void *)(x + 8 * j)),
                                     _mm512_maskz_loadu_epi64(k, (const void *)(w + 8 * j)));
        acc = _mm512_add_epi64(acc, _mm512_popcnt_epi64(v));
    }
    return (uint32_t)_mm512_reduce_add_epi64(acc);
}
#define BCNN_XNOR_KERNEL(x, w, words) bcnn_xnor_pop_avx512(x, w, words)

#else

/* Set bits of each byte of v: two 16-entry look-ups (low and high nibbles) and their sum (<= 8). */
static inline __m256i bcnn_xnor_bytes256(__m256i v)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i low = _mm256_set1_epi8(0x0f);
    __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(v, low));
    __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low));
    return _mm256_add_epi8(lo, hi);
}

static inline uint32_t bcnn_xnor_sum256(__m256i sum)
{
    __m128i s = _mm_add_epi64(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
    s = _mm_add_epi64(s, _mm_unpackhi_epi64(s, s));
    return (uint32_t)_mm_cvtsi128_si64(s);
}

/* h:l = a + b + c, bit by bit (a full adder on 256 lanes: 2 XOR, 2 AND, 1 OR). */
static inline void bcnn_xnor_csa(__m256i *h, __m256i *l, __m256i a, __m256i b, __m256i c)
{
    __m256i u = _mm256_xor_si256(a, b);
    *h = _mm256_or_si256(_mm256_and_si256(a, b), _mm256_and_si256(u, c));
    *l = _mm256_xor_si256(u, c);
}

/* Bytes of lut (weights times the set bits of a nibble) summed over both nibbles of each byte of v. */
static inline __m256i bcnn_xnor_wbytes(__m256i v, __m256i lut)
{
    const __m256i low = _mm256_set1_epi8(0x0f);
    return _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(v, low)),
                           _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(v, 4), low)));
}

#define BCNN_XNOR_LUT(k) _mm256_setr_epi8(0, k, k, 2 * k, k, 2 * k, 2 * k, 3 * k, k, 2 * k, 2 * k, 3 * k, \
                                          2 * k, 3 * k, 3 * k, 4 * k, 0, k, k, 2 * k, k, 2 * k, 2 * k, 3 * k, \
                                          k, 2 * k, 2 * k, 3 * k, 2 * k, 3 * k, 3 * k, 4 * k)
#define BCNN_XNOR_D(i) _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(x + 32 * (i))), \
                                        _mm256_loadu_si256((const __m256i *)(const void *)(w + 32 * (i))))

/* popcount(x XOR w) of 16 vectors (512 bytes) as 64-bit lanes: the XORs through a tree of 11 full
   adders to two vectors of weight 1 and one each of weights 2, 4 and 8, whose bits are counted by
   weighted nibble look-ups (a byte holds at most 2*8 + 2*8 + 4*8 + 8*8 = 128), summed by vpsadbw. */
static inline __m256i bcnn_xnor_hs16(const uint8_t *x, const uint8_t *w)
{
    __m256i c0, c1, c2, c3, c4, c5, c6, s0, s1, s2, s3, s4, o0, o1, t0, t1, t, f0, f1, f2, f, e, b;
    bcnn_xnor_csa(&c0, &s0, BCNN_XNOR_D(0), BCNN_XNOR_D(1), BCNN_XNOR_D(2));
    bcnn_xnor_csa(&c1, &s1, BCNN_XNOR_D(3), BCNN_XNOR_D(4), BCNN_XNOR_D(5));
    bcnn_xnor_csa(&c2, &s2, BCNN_XNOR_D(6), BCNN_XNOR_D(7), BCNN_XNOR_D(8));
    bcnn_xnor_csa(&c3, &s3, BCNN_XNOR_D(9), BCNN_XNOR_D(10), BCNN_XNOR_D(11));
    bcnn_xnor_csa(&c4, &s4, BCNN_XNOR_D(12), BCNN_XNOR_D(13), BCNN_XNOR_D(14));
    bcnn_xnor_csa(&c5, &o0, s0, s1, s2);
    bcnn_xnor_csa(&c6, &o1, s3, s4, BCNN_XNOR_D(15));
    bcnn_xnor_csa(&f0, &t0, c0, c1, c2);
    bcnn_xnor_csa(&f1, &t1, c3, c4, c5);
    bcnn_xnor_csa(&f2, &t, t0, t1, c6);
    bcnn_xnor_csa(&e, &f, f0, f1, f2);
    b = _mm256_add_epi8(_mm256_add_epi8(bcnn_xnor_wbytes(o0, BCNN_XNOR_LUT(1)), bcnn_xnor_wbytes(o1, BCNN_XNOR_LUT(1))),
                        _mm256_add_epi8(bcnn_xnor_wbytes(t, BCNN_XNOR_LUT(2)), bcnn_xnor_wbytes(f, BCNN_XNOR_LUT(4))));
    b = _mm256_add_epi8(b, bcnn_xnor_wbytes(e, BCNN_XNOR_LUT(8)));
    return _mm256_sad_epu8(b, _mm256_setzero_si256());
}

/* 16 vectors at a time by bcnn_xnor_hs16, then 4 words per step, byte counters summed into 64-bit
   lanes every 31 steps; the last 1..3 words by the portable code. */
static inline uint32_t bcnn_xnor_pop_avx2(const uint8_t *x, const uint8_t *w, int words)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i sum = zero;
    int j = 0, steps = words / 4;
    for (; j + 16 <= steps; j += 16)
        sum = _mm256_add_epi64(sum, bcnn_xnor_hs16(x + 32 * j, w + 32 * j));
    while (j < steps) {
        int end = BCNN_XNOR_MIN(steps, j + 31);
        __m256i bytes = zero;
        for (; j < end; ++j) {
            __m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(const void *)(x + 32 * j)),
                                         _mm256_loadu_si256((const __m256i *)(const void *)(w + 32 * j)));
            bytes = _mm256_add_epi8(bytes, bcnn_xnor_bytes256(v));
        }
        sum = _mm256_add_epi64(sum, _mm256_sad_epu8(bytes, zero));
    }
    return bcnn_xnor_sum256(sum) + bcnn_xnor_pop_portable(x, w, 4 * steps, words);
}
#define BCNN_XNOR_KERNEL(x, w, words) bcnn_xnor_pop_avx2(x, w, words)

/* Four weight rows (w, w + ws, w + 2 ws, w + 3 ws) against one x: blocks of 16 vectors by
   bcnn_xnor_hs16, row after row; then look-up steps, where each x load serves four XORs and the
   four independent sums keep more of the vector pipes busy. With `next`, the look-up steps
   prefetch the four rows after these (which the caller guarantees exist), 128 bytes per step: at
   batch 1 the weights stream from L3 once, and this took a quarter off a 4096 x 4096 block with
   the look-up alone. The tree blocks prefetch nothing: there the hardware prefetcher alone was
   faster than any software prefetch tried (docs/BINARYNET.md). */
static inline void bcnn_xnor_pop4_avx2(const uint8_t *x, const uint8_t *w, size_t ws, int words, uint32_t *out,
                                       int next)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i s0 = zero, s1 = zero, s2 = zero, s3 = zero;
    int steps = words / 4;
    int j0 = 0;
    for (; j0 + 16 <= steps; j0 += 16) {
        const uint8_t *wj = w + 32 * j0;
        s0 = _mm256_add_epi64(s0, bcnn_xnor_hs16(x + 32 * j0, wj));
        s1 = _mm256_add_epi64(s1, bcnn_xnor_hs16(x + 32 * j0, wj + ws));
        s2 = _mm256_add_epi64(s2, bcnn_xnor_hs16(x + 32 * j0, wj + 2 * ws));
        s3 = _mm256_add_epi64(s3, bcnn_xnor_hs16(x + 32 * j0, wj + 3 * ws));
    }
    for (int j = j0; j < steps;) {
        int end = BCNN_XNOR_MIN(steps, j + 31);
        __m256i b0 = zero, b1 = zero, b2 = zero, b3 = zero;
        for (; j < end; ++j) {
            const uint8_t *wj = w + 32 * j;
            if (next) {
                _mm_prefetch((const char *)(w + 4 * ws + 128 * (size_t)j), _MM_HINT_T0);
                _mm_prefetch((const char *)(w + 4 * ws + 128 * (size_t)j + 64), _MM_HINT_T0);
            }
            __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(x + 32 * j));
#define BCNN_XNOR_ROW4(r) \
            b##r = _mm256_add_epi8(b##r, bcnn_xnor_bytes256(_mm256_xor_si256(xv, \
                       _mm256_loadu_si256((const __m256i *)(const void *)(wj + (size_t)(r) * ws)))));
            BCNN_XNOR_ROW4(0) BCNN_XNOR_ROW4(1) BCNN_XNOR_ROW4(2) BCNN_XNOR_ROW4(3)
#undef BCNN_XNOR_ROW4
        }
        s0 = _mm256_add_epi64(s0, _mm256_sad_epu8(b0, zero));
        s1 = _mm256_add_epi64(s1, _mm256_sad_epu8(b1, zero));
        s2 = _mm256_add_epi64(s2, _mm256_sad_epu8(b2, zero));
        s3 = _mm256_add_epi64(s3, _mm256_sad_epu8(b3, zero));
    }
    out[0] = bcnn_xnor_sum256(s0) + bcnn_xnor_pop_portable(x, w, 4 * steps, words);
    out[1] = bcnn_xnor_sum256(s1) + bcnn_xnor_pop_portable(x, w + ws, 4 * steps, words);
    out[2] = bcnn_xnor_sum256(s2) + bcnn_xnor_pop_portable(x, w + 2 * ws, 4 * steps, words);
    out[3] = bcnn_xnor_sum256(s3) + bcnn_xnor_pop_portable(x, w + 3 * ws, 4 * steps, words);
}
#define BCNN_XNOR_KERNEL4(x, w, ws, words, out, next) bcnn_xnor_pop4_avx2(x, w, ws, words, out, next)

#endif

#endif
