/* AVX2 path of bcnn_bgemm (included by bcnn_bgemm.h, which states the contract).
 *
 * vpermps on a ymm register looks up 8 entries, half a group's table. The other half follows by
 * symmetry: T[15 - i] = -T[i] exactly (every sign flips, and rounding to nearest is symmetric), so
 * for a nibble e with bit 3 set the entry is T[7 - (e & 7)] with its sign bit flipped. Per nibble
 * vector (8 outputs) the index e ^ (bit 3 ? 7 : 0) and the sign mask are derived once for the R
 * rows (4, 2 or 1) processed together; per row it costs one vpermps, one xor and one addition.
 * Inputs are taken in chunks of groups as in the AVX-512 path; tables are 8 floats per row and group.
 */
#ifndef BCNN_BGEMM_AVX2_H
#define BCNN_BGEMM_AVX2_H

#ifndef BCNN_BGEMM_H
#error "include bcnn_bgemm.h"
#endif

#include <immintrin.h>

#define BCNN_BGEMM_KERNEL bcnn_bgemm_avx2

static inline float *bcnn256_align(float *p)
{
    return (float *)(((uintptr_t)p + 31u) & ~(uintptr_t)31u);
}

static inline __m256 bcnn256_xor(__m256 x, __m256i s)
{
    return _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(x), s));
}

/* Entries 0..7 of the table of inputs x[k0 .. k0+3] (zero beyond K): lane i = (±x0 ± x1) + (±x2 - x3),
   +x_t where bit t of i is set: x0, x1, x2 are negated on the lanes whose bit is clear. */
static inline __m256 bcnn256_table(const float *x, int k0, int K)
{
    const int s = (int)0x80000000u;
    const __m256i n0 = _mm256_setr_epi32(s, 0, s, 0, s, 0, s, 0);
    const __m256i n1 = _mm256_setr_epi32(s, s, 0, 0, s, s, 0, 0);
    const __m256i n2 = _mm256_setr_epi32(s, s, s, s, 0, 0, 0, 0);
    __m256 x0 = _mm256_set1_ps(x[k0]), x1 = _mm256_set1_ps(k0 + 1 < K ? x[k0 + 1] : 0.0f);
    __m256 x2 = _mm256_set1_ps(k0 + 2 < K ? x[k0 + 2] : 0.0f);
    __m256 x3 = _mm256_set1_ps(k0 + 3 < K ? -x[k0 + 3] : 0.0f);
    return _mm256_add_ps(_mm256_add_ps(bcnn256_xor(x0, n0), bcnn256_xor(x1, n1)),
                         _mm256_add_ps(bcnn256_xor(x2, n2), x3));
}

/* Lanes i < n all ones: the maskload/maskstore mask of the first n of 8 outputs. */
static inline __m256i bcnn256_mask(int n)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* The first min(n, 8) floats at p (a tail block keeps its mask out of the registers of the loop). */
static inline __m256 bcnn256_load(const float *p, int n)
{
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, bcnn256_mask(n));
}

static inline void bcnn256_store(float *p, int n, __m256 v)
{
    if (n >= 8)
        _mm256_storeu_ps(p, v);
    else
        _mm256_maskstore_ps(p, bcnn256_mask(n), v);
}

/* From nibbles in bits 0-3 of each dword of v: the index into entries 0..7 and the sign to flip. */
static inline void bcnn256_decode(__m256i v, __m256i *idx, __m256i *sign)
{
    __m256i b3 = _mm256_srai_epi32(_mm256_slli_epi32(v, 28), 31);   /* all ones where bit 3 is set */
    *idx = _mm256_xor_si256(v, b3);
    *sign = _mm256_slli_epi32(b3, 31);
}

#define BCNN256_LOAD(r)                                                                        \
    __m256 lo##r = first ? _mm256_setzero_ps() : bcnn256_load(y + r * ldy + n, N - n);          \
    __m256 hi##r = first ? _mm256_setzero_ps() : bcnn256_load(y + r * ldy + n + 16, N - n - 16);
#define BCNN256_STEP(r)                                                                        \
    t = _mm256_load_ps(Tg + 8 * r);                                                            \
    lo##r = _mm256_add_ps(lo##r, bcnn256_xor(_mm256_permutevar8x32_ps(t, ilo), slo));          \
    hi##r = _mm256_add_ps(hi##r, bcnn256_xor(_mm256_permutevar8x32_ps(t, ihi), shi));
#define BCNN256_STORE(r)                                                                       \
    bcnn256_store(y + r * ldy + n, N - n, lo##r);                                              \
    bcnn256_store(y + r * ldy + n + 16, N - n - 16, hi##r);

/* bcnn256_rowsR: all outputs of R rows over one chunk (groups g0 .. g0+gn-1) whose half tables
   are at T (row r of group g0+g at T + 8*(g*R + r)); bytes 8q..8q+7 of each group's 16 hold
   outputs n = 32b + 8q + i (low nibbles) and n + 16 (high nibbles). */
#define BCNN256_ROWS(R, REP)                                                                   \
    static inline void bcnn256_rows##R(int KG, int g0, int gn, int N, const uint8_t *W,         \
                                       const float *T, float *y, size_t ldy)                   \
    {                                                                                           \
        int first = g0 == 0;                                                                    \
        for (int n = 0; n < N; n += n % BCNN_BLOCK ? 24 : 8) {                                  \
            const uint8_t *w = W + ((size_t)(n / BCNN_BLOCK) * (size_t)KG + (size_t)g0) * 16u  \
                               + (size_t)(n % BCNN_BLOCK);                                      \
            REP(BCNN256_LOAD)                                                                   \
            for (int g = 0; g < gn; ++g) {                                                      \
                __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(w + 16 * g))); \
                __m256i ilo, slo, ihi, shi;                                                     \
                const float *Tg = T + 8 * R * g;                                                \
                __m256 t;                                                                       \
                bcnn256_decode(v, &ilo, &slo);                                                  \
                bcnn256_decode(_mm256_srli_epi32(v, 4), &ihi, &shi);                            \
                REP(BCNN256_STEP)                                                               \
            }                                                                                   \
            REP(BCNN256_STORE)                                                                  \
        }                                                                                       \
    }
BCNN256_ROWS(4, BCNN_REP4)
BCNN256_ROWS(2, BCNN_REP2)
BCNN256_ROWS(1, BCNN_REP1)

static inline void bcnn_bgemm_avx2(int M, int K, int N, const float *X, int ldx, const uint8_t *W,
                                   float *Y, int ldy, float *scratch)
{
    float *T = bcnn256_align(scratch);
    int KG = BCNN_GROUPS(K);
    for (int m = 0, R; m < M; m += R) {
        R = M - m >= 4 ? 4 : M - m >= 2 ? 2 : 1;
        float *y = Y + (size_t)m * (size_t)ldy;
        for (int g0 = 0; g0 < KG; g0 += BCNN256_CHUNK) {
            int gn = BCNN_MIN(BCNN256_CHUNK, KG - g0);
            for (int g = 0; g < gn; ++g)
                for (int r = 0; r < R; ++r)
                    _mm256_store_ps(T + 8 * (g * R + r),
                                    bcnn256_table(X + (size_t)(m + r) * (size_t)ldx, 4 * (g0 + g), K));
            if (R == 4)
                bcnn256_rows4(KG, g0, gn, N, W, T, y, (size_t)ldy);
            else if (R == 2)
                bcnn256_rows2(KG, g0, gn, N, W, T, y, (size_t)ldy);
            else
                bcnn256_rows1(KG, g0, gn, N, W, T, y, (size_t)ldy);
        }
    }
}

#endif
