/* AVX2 kernel of bcnn_xconv.h: two interior pixels' patches against four outputs' tap rows in one
 * pass (included by bcnn_xconv.h on the avx2 path, which states the contract).
 *
 * A patch is short (9 ceil(C/64) words: 9 for 64 channels, 72 for 512), so bcnn_xnor_pop4's fixed
 * costs (four reductions of byte counters, the last 1-3 words one at a time in scalar code) weigh
 * as much as its vector steps. Here each weight vector is loaded once for two patches (eight XORs
 * per six loads instead of four per five), the last 1-3 words are one more vector step on masked
 * loads (masked-off lanes read nothing and are 0 in both operands, so they count nothing), and the
 * eight counts are reduced together: byte counters (at most 8 per step, 31 steps = 124 words hold
 * in a byte) summed by vpsadbw, two rows packed per 64-bit lane, then one transposing add.
 */
#ifndef BCNN_XCONV_X86_H
#define BCNN_XCONV_X86_H

#ifndef BCNN_XCONV_H
#error "include bcnn_xconv.h"
#endif

#include <immintrin.h>

#define BCNN_XCONV_PAIR_MAX_WORDS 124

/* out[4 q + r] = popcount(p_q XOR w_r) for the patches p_0 = x, p_1 = x + ps and the rows
 * w_r = w + r ws (r = 0..3), `words` <= BCNN_XCONV_PAIR_MAX_WORDS words each. */
static inline void bcnn_xconv_pop2x4(const uint8_t *x, size_t ps, const uint8_t *w, size_t ws, int words,
                                     uint32_t *out)
{
    const __m256i zero = _mm256_setzero_si256();
    __m256i a0 = zero, a1 = zero, a2 = zero, a3 = zero, b0 = zero, b1 = zero, b2 = zero, b3 = zero;
    int steps = words / 4, rest = words % 4;
    const __m256i mask = _mm256_cmpgt_epi64(_mm256_set1_epi64x(rest), _mm256_setr_epi64x(0, 1, 2, 3));
#define BCNN_XCONV_LOAD(p) _mm256_loadu_si256((const __m256i *)(const void *)(p))
#define BCNN_XCONV_MLOAD(p) _mm256_maskload_epi64((const long long *)(const void *)(p), mask)
#define BCNN_XCONV_ROW(r, LOAD, off) { \
        __m256i wv = LOAD(w + (size_t)(r) * ws + (off)); \
        a##r = _mm256_add_epi8(a##r, bcnn_xnor_bytes256(_mm256_xor_si256(x0, wv))); \
        b##r = _mm256_add_epi8(b##r, bcnn_xnor_bytes256(_mm256_xor_si256(x1, wv))); }
#define BCNN_XCONV_STEP(LOAD, off) { \
        __m256i x0 = LOAD(x + (off)), x1 = LOAD(x + ps + (off)); \
        BCNN_XCONV_ROW(0, LOAD, off) BCNN_XCONV_ROW(1, LOAD, off) \
        BCNN_XCONV_ROW(2, LOAD, off) BCNN_XCONV_ROW(3, LOAD, off) }
    for (int j = 0; j < steps; ++j)
        BCNN_XCONV_STEP(BCNN_XCONV_LOAD, 32 * (size_t)j)
    if (rest)
        BCNN_XCONV_STEP(BCNN_XCONV_MLOAD, 32 * (size_t)steps)
#undef BCNN_XCONV_STEP
#undef BCNN_XCONV_ROW
#undef BCNN_XCONV_MLOAD
#undef BCNN_XCONV_LOAD
    /* 64-bit lanes (count of row r) | (count of row r + 1) << 32, then a transposing add: lane k
       of the result is the sum over the four lanes of the k-th packed vector. */
    __m256i pa01 = _mm256_add_epi64(_mm256_sad_epu8(a0, zero), _mm256_slli_epi64(_mm256_sad_epu8(a1, zero), 32));
    __m256i pa23 = _mm256_add_epi64(_mm256_sad_epu8(a2, zero), _mm256_slli_epi64(_mm256_sad_epu8(a3, zero), 32));
    __m256i pb01 = _mm256_add_epi64(_mm256_sad_epu8(b0, zero), _mm256_slli_epi64(_mm256_sad_epu8(b1, zero), 32));
    __m256i pb23 = _mm256_add_epi64(_mm256_sad_epu8(b2, zero), _mm256_slli_epi64(_mm256_sad_epu8(b3, zero), 32));
    __m256i ta = _mm256_add_epi64(_mm256_unpacklo_epi64(pa01, pa23), _mm256_unpackhi_epi64(pa01, pa23));
    __m256i tb = _mm256_add_epi64(_mm256_unpacklo_epi64(pb01, pb23), _mm256_unpackhi_epi64(pb01, pb23));
    __m256i t = _mm256_add_epi64(_mm256_permute2x128_si256(ta, tb, 0x20), _mm256_permute2x128_si256(ta, tb, 0x31));
    _mm256_storeu_si256((__m256i *)(void *)out, t);
}
#define BCNN_XCONV_PAIR 1

#endif
