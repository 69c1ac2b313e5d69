/* AVX-512 path of bcnn_bgemm (included by bcnn_bgemm.h, which states the contract).
 *
 * Row kernel (M < 16, and the last M % 16 rows): a group's 16-entry table is one zmm register;
 * 16 weight bytes zero-extended to 16 dwords index it with vpermps (the low nibble directly,
 * vpermps reads only bits 0-3 of an index; the high nibble after a shift), so 32 outputs x 4
 * inputs cost one vpmovzxbd, one shift, two vpermps and two additions.
 *
 * Strip kernel (16 rows at a time): each of the 16 entries of a group's table is a zmm across the
 * 16 rows; a nibble selects one entry, added with one vaddps from memory, so one addition covers
 * 4 weights x 16 rows. The accumulators of 16 outputs live in registers over a chunk of groups;
 * between chunks, and until the end, they are parked transposed in the 16x16 square of Y the
 * outputs will occupy (rows m0.., columns n0..), and each square is transposed in place at the
 * end. Only a partial half-block (fewer than 16 outputs left) is parked in scratch.
 */
#ifndef BCNN_BGEMM_AVX512_H
#define BCNN_BGEMM_AVX512_H

#ifndef BCNN_BGEMM_H
#error "include bcnn_bgemm.h"
#endif

#include <immintrin.h>
#include <string.h>

#define BCNN_AVX512_ROW_CHUNK 128  /* groups per chunk in the row kernel: 8 KB of tables */
#define BCNN_AVX512_STRIP_CHUNK 32 /* groups per chunk in the strip kernel: 32 KB of tables */
#define BCNN_AVX512_SCRATCH(M, K) (16 + ((M) >= 16 \
    ? 256 * (BCNN_MIN(BCNN_GROUPS(K), BCNN_AVX512_STRIP_CHUNK) + 1) \
    : 16 * BCNN_MIN(BCNN_GROUPS(K), BCNN_AVX512_ROW_CHUNK)))
#define BCNN_BGEMM_SCRATCH_FLOATS(M, K) BCNN_AVX512_SCRATCH(M, K)
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

/* The 16 signed sums (±x0 ± x1) + (±x2 ± x3) of one group: entry i takes +x_t where bit t of i is
   set, so x_t is negated on the lanes whose bit t is clear (masks 0x5555, 0x3333, 0x0F0F, 0x00FF). */
static inline __m512 bcnn512_signed_sums(__m512 x0, __m512 x1, __m512 x2, __m512 x3)
{
    return _mm512_add_ps(_mm512_add_ps(bcnn512_neg(x0, 0x5555), bcnn512_neg(x1, 0x3333)),
                         _mm512_add_ps(bcnn512_neg(x2, 0x0F0F), bcnn512_neg(x3, 0x00FF)));
}

static inline __m512 bcnn512_row_table(const float *x, int k0, int K)
{
    if (k0 + 4 <= K)
        return bcnn512_signed_sums(_mm512_set1_ps(x[k0]), _mm512_set1_ps(x[k0 + 1]),
                                   _mm512_set1_ps(x[k0 + 2]), _mm512_set1_ps(x[k0 + 3]));
    return bcnn512_signed_sums(_mm512_set1_ps(x[k0]), _mm512_set1_ps(k0 + 1 < K ? x[k0 + 1] : 0.0f),
                               _mm512_set1_ps(k0 + 2 < K ? x[k0 + 2] : 0.0f), _mm512_setzero_ps());
}

static inline __mmask16 bcnn512_mask(int n)
{
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

static inline void bcnn512_row(int K, int N, const float *x, const uint8_t *W, float *y, float *T)
{
    int KG = BCNN_GROUPS(K), NB = (N + BCNN_BLOCK - 1) / BCNN_BLOCK;
    for (int g0 = 0; g0 < KG; g0 += BCNN_AVX512_ROW_CHUNK) {
        int gn = BCNN_MIN(BCNN_AVX512_ROW_CHUNK, KG - g0);
        for (int g = 0; g < gn; ++g)
            _mm512_store_ps(T + 16 * g, bcnn512_row_table(x, 4 * (g0 + g), K));
        for (int b = 0; b < NB; ++b) {
            const uint8_t *w = W + ((size_t)b * (size_t)KG + (size_t)g0) * 16u;
            int n0 = BCNN_BLOCK * b;
            __mmask16 mlo = bcnn512_mask(N - n0), mhi = bcnn512_mask(N - n0 - 16);
            __m512 lo = g0 ? _mm512_maskz_loadu_ps(mlo, y + n0) : _mm512_setzero_ps();
            __m512 hi = g0 ? _mm512_maskz_loadu_ps(mhi, y + n0 + 16) : _mm512_setzero_ps();
            for (int g = 0; g < gn; ++g) {
                __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(w + 16 * g)));
                __m512 t = _mm512_load_ps(T + 16 * g);
                lo = _mm512_add_ps(lo, _mm512_permutexvar_ps(v, t));
                hi = _mm512_add_ps(hi, _mm512_permutexvar_ps(_mm512_srli_epi32(v, 4), t));
            }
            _mm512_mask_storeu_ps(y + n0, mlo, lo);
            _mm512_mask_storeu_ps(y + n0 + 16, mhi, hi);
        }
    }
}

/* Tables of one strip (rows m0 .. m0+15) for groups g0 .. g0+gn-1: T[(g*16 + e)*16 + i] is entry e
   of row m0+i's table of group g0+g. */
static inline void bcnn512_strip_tables(int K, const float *X, int ldx, int g0, int gn, float *T)
{
    const __m512i rows = _mm512_set_epi32(15 * ldx, 14 * ldx, 13 * ldx, 12 * ldx, 11 * ldx, 10 * ldx,
                                          9 * ldx, 8 * ldx, 7 * ldx, 6 * ldx, 5 * ldx, 4 * ldx,
                                          3 * ldx, 2 * ldx, ldx, 0);
    for (int g = 0; g < gn; ++g) {
        int k0 = 4 * (g0 + g);
        __m512 x[4], a[4], c[4];
        for (int t = 0; t < 4; ++t)
            x[t] = k0 + t < K ? _mm512_i32gather_ps(rows, X + k0 + t, 4) : _mm512_setzero_ps();
        for (int t = 0; t < 4; t += 2) {
            __m512 p = x[t], q = x[t + 1], *s = t ? c : a;
            __m512 np = _mm512_sub_ps(_mm512_setzero_ps(), p), nq = _mm512_sub_ps(_mm512_setzero_ps(), q);
            s[0] = _mm512_add_ps(np, nq);
            s[1] = _mm512_add_ps(p, nq);
            s[2] = _mm512_add_ps(np, q);
            s[3] = _mm512_add_ps(p, q);
        }
        for (int j = 0; j < 4; ++j)
            for (int i = 0; i < 4; ++i)
                _mm512_store_ps(T + (16 * g + 4 * j + i) * 16, _mm512_add_ps(a[i], c[j]));
    }
}

/* In-place transpose of the 16x16 floats r[0..15]. */
static inline void bcnn512_transpose(__m512 r[16])
{
    __m512 t[16];
    for (int k = 0; k < 8; ++k) {
        t[2 * k] = _mm512_unpacklo_ps(r[2 * k], r[2 * k + 1]);
        t[2 * k + 1] = _mm512_unpackhi_ps(r[2 * k], r[2 * k + 1]);
    }
    for (int q = 0; q < 4; ++q) {   /* r[4c + q]: column 4L + c of rows 4q.. in 128-bit lane L */
        r[q] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
        r[4 + q] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xEE);
        r[8 + q] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
        r[12 + q] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xEE);
    }
    for (int c = 0; c < 4; ++c) {
        __m512 u0 = _mm512_shuffle_f32x4(r[4 * c], r[4 * c + 1], 0x44);
        __m512 u1 = _mm512_shuffle_f32x4(r[4 * c], r[4 * c + 1], 0xEE);
        __m512 u2 = _mm512_shuffle_f32x4(r[4 * c + 2], r[4 * c + 3], 0x44);
        __m512 u3 = _mm512_shuffle_f32x4(r[4 * c + 2], r[4 * c + 3], 0xEE);
        t[c] = _mm512_shuffle_f32x4(u0, u2, 0x88);
        t[4 + c] = _mm512_shuffle_f32x4(u0, u2, 0xDD);
        t[8 + c] = _mm512_shuffle_f32x4(u1, u3, 0x88);
        t[12 + c] = _mm512_shuffle_f32x4(u1, u3, 0xDD);
    }
    for (int k = 0; k < 16; ++k)
        r[k] = t[k];
}

/* Byte offset, within a group's 1 KB of strip tables, of the entry selected by the nibble at bit
   s of w: nibble * 64. */
#define BCNN512_OFF(w, s) ((s) >= 6 ? ((w) >> ((s) - 6)) & 0x3C0u : ((w) << (6 - (s))) & 0x3C0u)
#define BCNN512_ADD(j, w, s) acc[j] = _mm512_add_ps(acc[j], \
    _mm512_load_ps((const float *)((const char *)Tg + BCNN512_OFF(w, s))))

/* Outputs n0 .. n0+15 (nibble h of bytes 0..15) of one strip over one chunk of groups: acc[j]
   (output n0+j across the 16 rows) starts from and returns to park + j*ldp. */
static inline void bcnn512_strip_half(const float *T, int gn, const uint8_t *w, int h,
                                      float *park, size_t ldp, int first)
{
    __m512 acc[16];
    for (int j = 0; j < 16; ++j)
        acc[j] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(park + (size_t)j * ldp);
    for (int g = 0; g < gn; ++g) {
        const float *Tg = T + 256 * g;
        uint64_t a, b;
        memcpy(&a, w + 16 * g, 8);
        memcpy(&b, w + 16 * g + 8, 8);
        if (h) {
            BCNN512_ADD(0, a, 4); BCNN512_ADD(1, a, 12); BCNN512_ADD(2, a, 20); BCNN512_ADD(3, a, 28);
            BCNN512_ADD(4, a, 36); BCNN512_ADD(5, a, 44); BCNN512_ADD(6, a, 52); BCNN512_ADD(7, a, 60);
            BCNN512_ADD(8, b, 4); BCNN512_ADD(9, b, 12); BCNN512_ADD(10, b, 20); BCNN512_ADD(11, b, 28);
            BCNN512_ADD(12, b, 36); BCNN512_ADD(13, b, 44); BCNN512_ADD(14, b, 52); BCNN512_ADD(15, b, 60);
        } else {
            BCNN512_ADD(0, a, 0); BCNN512_ADD(1, a, 8); BCNN512_ADD(2, a, 16); BCNN512_ADD(3, a, 24);
            BCNN512_ADD(4, a, 32); BCNN512_ADD(5, a, 40); BCNN512_ADD(6, a, 48); BCNN512_ADD(7, a, 56);
            BCNN512_ADD(8, b, 0); BCNN512_ADD(9, b, 8); BCNN512_ADD(10, b, 16); BCNN512_ADD(11, b, 24);
            BCNN512_ADD(12, b, 32); BCNN512_ADD(13, b, 40); BCNN512_ADD(14, b, 48); BCNN512_ADD(15, b, 56);
        }
    }
    for (int j = 0; j < 16; ++j)
        _mm512_storeu_ps(park + (size_t)j * ldp, acc[j]);
}

static inline void bcnn512_strip(int K, int N, const float *X, int ldx, const uint8_t *W,
                                 float *Y, int ldy, float *T, float *tail)
{
    int KG = BCNN_GROUPS(K), NH = (N + 15) / 16;
    for (int g0 = 0; g0 < KG; g0 += BCNN_AVX512_STRIP_CHUNK) {
        int gn = BCNN_MIN(BCNN_AVX512_STRIP_CHUNK, KG - g0);
        bcnn512_strip_tables(K, X, ldx, g0, gn, T);
        for (int q = 0; q < NH; ++q) {
            const uint8_t *w = W + ((size_t)(q / 2) * (size_t)KG + (size_t)g0) * 16u;
            int full = 16 * q + 16 <= N;
            bcnn512_strip_half(T, gn, w, q % 2, full ? Y + 16 * q : tail, full ? (size_t)ldy : 16u, g0 == 0);
        }
    }
    for (int q = 0; q < NH; ++q) {
        int full = 16 * q + 16 <= N;
        float *park = full ? Y + 16 * q : tail;
        size_t ldp = full ? (size_t)ldy : 16u;
        __m512 r[16];
        for (int j = 0; j < 16; ++j)
            r[j] = _mm512_loadu_ps(park + (size_t)j * ldp);
        bcnn512_transpose(r);
        for (int i = 0; i < 16; ++i)
            _mm512_mask_storeu_ps(Y + (size_t)i * (size_t)ldy + 16 * q, bcnn512_mask(N - 16 * q), r[i]);
    }
}

static inline void bcnn_bgemm_avx512(int M, int K, int N, const float *X, int ldx, const uint8_t *W,
                                     float *Y, int ldy, float *scratch)
{
    float *T = bcnn512_align(scratch);
    int m = 0;
    for (; m + 16 <= M; m += 16)
        bcnn512_strip(K, N, X + (size_t)m * (size_t)ldx, ldx, W, Y + (size_t)m * (size_t)ldy, ldy,
                      T, T + 256 * BCNN_MIN(BCNN_GROUPS(K), BCNN_AVX512_STRIP_CHUNK));
    for (; m < M; ++m)
        bcnn512_row(K, N, X + (size_t)m * (size_t)ldx, W, Y + (size_t)m * (size_t)ldy, T);
}

#endif
