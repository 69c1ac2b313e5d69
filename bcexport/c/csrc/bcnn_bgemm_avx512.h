/* AVX-512 path of bcnn_bgemm (included by bcnn_bgemm.h, which states the contract).
 *
 * A group's 16-entry table is one zmm register. 16 weight bytes zero-extended to 16 dwords index
 * it with vpermps, which reads only bits 0-3 of each index: the low nibbles directly, the high
 * nibbles after a shift. So 32 outputs x 4 inputs of one row cost two vpermps and two additions,
 * plus one vpmovzxbd and one shift shared by the R rows (8, 4, 2 or 1) processed together.
 *
 * Inputs are taken in chunks of BCNN512_CHUNK groups (bcnn_scratch.h, with the scratch size): the R rows' tables of a chunk (32 KB at most)
 * go to scratch and stay in L1 while every output block adds its entries; each chunk continues
 * from the partial sums the previous one stored in Y (a float store is exact: the summation order
 * is that of one sequential pass over the groups).
 *
 * Measured against a batch-wide form (a 16-row strip whose table entries are zmm vectors across
 * rows, one vaddps from memory per nibble, nibble offsets extracted with scalar shifts, results
 * transposed at the end; in the history of this file): no faster at M = 256 (MNIST shapes) and
 * slower for small M, N or K (docs/BENCHMARKS.md, "C kernels").
 */
#ifndef BCNN_BGEMM_AVX512_H
#define BCNN_BGEMM_AVX512_H

#ifndef BCNN_BGEMM_H
#error "include bcnn_bgemm.h"
#endif

#include <immintrin.h>

#define BCNN_BGEMM_KERNEL bcnn_bgemm_avx512

static inline float *bcnn512_align(float *p)
{
    return (float *)(((uintptr_t)p + 63u) & ~(uintptr_t)63u);
}

/* -x on the lanes of mask k (0 - x: exact). */
static inline __m512 bcnn512_neg(__m512 x, __mmask16 k)
{
    return _mm512_mask_sub_ps(x, k, _mm512_setzero_ps(), x);
}

/* The table of inputs x[k0 .. k0+3] (zero beyond K): lane i = (±x0 ± x1) + (±x2 ± x3) with +x_t
   where bit t of i is set, so x_t is negated on the lanes 0x5555, 0x3333, 0x0F0F, 0x00FF. */
static inline __m512 bcnn512_table(const float *x, int k0, int K)
{
    __m512 x0 = _mm512_set1_ps(x[k0]), x1 = _mm512_set1_ps(k0 + 1 < K ? x[k0 + 1] : 0.0f);
    __m512 x2 = _mm512_set1_ps(k0 + 2 < K ? x[k0 + 2] : 0.0f);
    __m512 x3 = _mm512_set1_ps(k0 + 3 < K ? x[k0 + 3] : 0.0f);
    return _mm512_add_ps(_mm512_add_ps(bcnn512_neg(x0, 0x5555), bcnn512_neg(x1, 0x3333)),
                         _mm512_add_ps(bcnn512_neg(x2, 0x0F0F), bcnn512_neg(x3, 0x00FF)));
}

static inline __mmask16 bcnn512_mask(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* Row r of the R rows: its accumulators for outputs n0.. (lo) and n0+16.. (hi) of one block. */
#define BCNN512_LOAD(r)                                                                       \
    __m512 lo##r = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mlo, y + r * ldy + n0); \
    __m512 hi##r = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(mhi, y + r * ldy + n0 + 16);
#define BCNN512_STEP(r)                                                                       \
    t = _mm512_load_ps(Tg + 16 * r);                                                          \
    lo##r = _mm512_add_ps(lo##r, _mm512_permutexvar_ps(v, t));                                 \
    hi##r = _mm512_add_ps(hi##r, _mm512_permutexvar_ps(vh, t));
#define BCNN512_STORE(r)                                                                      \
    _mm512_mask_storeu_ps(y + r * ldy + n0, mlo, lo##r);                                       \
    _mm512_mask_storeu_ps(y + r * ldy + n0 + 16, mhi, hi##r);

/* bcnn512_rowsR: all output blocks of R rows over one chunk (groups g0 .. g0+gn-1) whose tables
   are at T (row r of group g0+g at T + 16*(g*R + r)). */
#define BCNN512_ROWS(R, REP)                                                                  \
    static inline void bcnn512_rows##R(int KG, int g0, int gn, int N, const uint8_t *W,        \
                                       const float *T, float *y, size_t ldy)                  \
    {                                                                                          \
        int first = g0 == 0;                                                                   \
        for (int n0 = 0; n0 < N; n0 += BCNN_BLOCK) {                                           \
            const uint8_t *w = W + ((size_t)(n0 / BCNN_BLOCK) * (size_t)KG + (size_t)g0) * 16u; \
            __mmask16 mlo = bcnn512_mask(N - n0), mhi = bcnn512_mask(N - n0 - 16);             \
            REP(BCNN512_LOAD)                                                                  \
            for (int g = 0; g < gn; ++g) {                                                     \
                __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w + 16 * g))); \
                __m512i vh = _mm512_srli_epi32(v, 4);                                          \
                const float *Tg = T + 16 * R * g;                                              \
                __m512 t;                                                                      \
                REP(BCNN512_STEP)                                                              \
            }                                                                                  \
            REP(BCNN512_STORE)                                                                 \
        }                                                                                      \
    }
BCNN512_ROWS(8, BCNN_REP8)
BCNN512_ROWS(4, BCNN_REP4)
BCNN512_ROWS(2, BCNN_REP2)
BCNN512_ROWS(1, BCNN_REP1)

static inline void bcnn_bgemm_avx512(int M, int K, int N, const float *X, int ldx, const uint8_t *W,
                                     float *Y, int ldy, float *scratch)
{
    float *T = bcnn512_align(scratch);
    int KG = BCNN_GROUPS(K);
    for (int m = 0, R; m < M; m += R) {
        R = M - m >= 8 ? 8 : M - m >= 4 ? 4 : M - m >= 2 ? 2 : 1;
        float *y = Y + (size_t)m * (size_t)ldy;
        for (int g0 = 0; g0 < KG; g0 += BCNN512_CHUNK) {
            int gn = BCNN_MIN(BCNN512_CHUNK, KG - g0);
            for (int g = 0; g < gn; ++g)
                for (int r = 0; r < R; ++r)
                    _mm512_store_ps(T + 16 * (g * R + r),
                                    bcnn512_table(X + (size_t)(m + r) * (size_t)ldx, 4 * (g0 + g), K));
            if (R == 8)
                bcnn512_rows8(KG, g0, gn, N, W, T, y, (size_t)ldy);
            else if (R == 4)
                bcnn512_rows4(KG, g0, gn, N, W, T, y, (size_t)ldy);
            else if (R == 2)
                bcnn512_rows2(KG, g0, gn, N, W, T, y, (size_t)ldy);
            else
                bcnn512_rows1(KG, g0, gn, N, W, T, y, (size_t)ldy);
        }
    }
}

#endif
