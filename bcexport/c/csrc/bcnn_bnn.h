/* Block operations of a BinaryNet network in C: ±1 activations as bit rows (issue 21 §3).
 *
 * docs/BINARYNET.md (Deployment format) defines the blocks; bcexport/threshold.py the comparison
 * every hidden unit makes, out = +1 where direction * u >= threshold, else -1 (direction +1, -1 or
 * 0, a constant unit). Activations are bit rows of bcnn_xnor.h (1 = +1), one row per sample.
 *   first block (real inputs)  u = x . wb by bcnn_bgemm (float32, bcnn_bgemm.h), then
 *                              bcnn_sign_real: float32 thresholds -> bits
 *   hidden blocks (±1 inputs)  bcnn_xnor_sign: u = K - 2 * popcount(x XOR w), an exact integer,
 *                              compared with the integer thresholds -> bits
 *   output block (±1 inputs)   bcnn_xnor_affine: logits = a * (float)u + c
 * The integer products and comparisons are exact, so every kernel path gives the same bits (and
 * the same bits as TensorFlow: bcexport.threshold); the first block's u is a float32 sum in the
 * order of bcnn_bgemm.h, the same on every path. Header-only, no allocation, no stdio.
 */
#ifndef BCNN_BNN_H
#define BCNN_BNN_H

#include <stddef.h>
#include <stdint.h>

#include "bcnn_xnor.h"

static inline void bcnn_zero_bytes(uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; ++i)
        p[i] = 0;
}

/* Bits y [M rows of ldy bytes] of the first block's float u [M, N] (row stride ldu); the rest of
 * each row of y is zeroed (the padding of a bit row). */
static inline void bcnn_sign_real(int M, int N, const float *u, int ldu, const float *thr, const int8_t *dir,
                                  uint8_t *y, int ldy)
{
    for (int m = 0; m < M; ++m) {
        const float *row = u + (size_t)m * (size_t)ldu;
        uint8_t *bits = y + (size_t)m * (size_t)ldy;
        bcnn_zero_bytes(bits, (size_t)ldy);
        for (int n = 0; n < N; ++n) {
            float v = dir[n] > 0 ? row[n] : dir[n] < 0 ? -row[n] : 0.0f;
            if (v >= thr[n])
                bits[n / 8] |= (uint8_t)(1u << (n % 8));
        }
    }
}

/* Popcounts pop[r] of x xor the weight rows n0 .. n0 + nr - 1 (nr = min(4, N - n0), returned); the
 * first sample row (`first`) also brings the next 4 units' weights into the cache. */
static inline int bcnn_xnor_pops(const uint8_t *xm, const uint8_t *w, size_t ws, int words, int n0, int N,
                                 int first, uint32_t pop[4])
{
    int r, nr = N - n0 < 4 ? N - n0 : 4;
    if (nr == 4 && first && n0 + 8 <= N)
        bcnn_xnor_pop4_next(xm, w + (size_t)n0 * ws, ws, words, pop);
    else if (nr == 4)
        bcnn_xnor_pop4(xm, w + (size_t)n0 * ws, ws, words, pop);
    else
        for (r = 0; r < nr; ++r)
            pop[r] = bcnn_xnor_pop(xm, w + (size_t)(n0 + r) * ws, words);
    return nr;
}

/* Bits y [M rows of ldy bytes] of a hidden block on bit rows x [M rows of ldx bytes, K values] with
 * weights w [N bit rows of K values]: unit n of row m is +1 where dir[n] * u >= thr[n]. */
static inline void bcnn_xnor_sign(int M, int K, int N, const uint8_t *x, int ldx, const uint8_t *w,
                                  const int32_t *thr, const int8_t *dir, uint8_t *y, int ldy)
{
    int words = BCNN_XROW_WORDS(K);
    size_t ws = 8u * (size_t)words;
    for (int m = 0; m < M; ++m)
        bcnn_zero_bytes(y + (size_t)m * (size_t)ldy, (size_t)ldy);
    for (int n0 = 0; n0 < N; n0 += 4) {
        for (int m = 0; m < M; ++m) {
            const uint8_t *xm = x + (size_t)m * (size_t)ldx;
            uint8_t *ym = y + (size_t)m * (size_t)ldy;
            uint32_t pop[4];
            int r, nr = bcnn_xnor_pops(xm, w, ws, words, n0, N, m == 0, pop);
            unsigned bits = 0;      /* n0 is a multiple of 4: the group's bits share one byte */
            for (r = 0; r < nr; ++r) {
                int n = n0 + r;
                int32_t u = (int32_t)K - 2 * (int32_t)pop[r];
                bits |= (unsigned)(dir[n] * u >= thr[n]) << r;
            }
            ym[n0 / 8] |= (uint8_t)(bits << (n0 % 8));
        }
    }
}

/* Logits y [M, N] (row stride ldy) of the output block: a[n] * u + c[n], u exact in float32; two
 * statements, so that no compiler contracts them into a fused multiply-add (C99 6.5 §8: clang's
 * default contracts within an expression): every build rounds twice, as the tests' NumPy does. */
static inline void bcnn_xnor_affine(int M, int K, int N, const uint8_t *x, int ldx, const uint8_t *w,
                                    const float *a, const float *c, float *y, int ldy)
{
    int words = BCNN_XROW_WORDS(K);
    size_t ws = 8u * (size_t)words;
    for (int n0 = 0; n0 < N; n0 += 4) {
        for (int m = 0; m < M; ++m) {
            const uint8_t *xm = x + (size_t)m * (size_t)ldx;
            uint32_t pop[4];
            int r, nr = bcnn_xnor_pops(xm, w, ws, words, n0, N, m == 0, pop);
            for (r = 0; r < nr; ++r) {
                int n = n0 + r;
                float au = a[n] * (float)((int32_t)K - 2 * (int32_t)pop[r]);
                y[(size_t)m * (size_t)ldy + (size_t)n] = au + c[n];
            }
        }
    }
}

/* The first `bytes` bytes of M bit rows (stride ldx) to dst (stride ld_dst): a block's outputs for
 * the caller of predict_hidden. */
static inline void bcnn_copy_bits(int M, size_t bytes, const uint8_t *x, int ldx, uint8_t *dst, size_t ld_dst)
{
    for (int m = 0; m < M; ++m)
        for (size_t i = 0; i < bytes; ++i)
            dst[(size_t)m * ld_dst + i] = x[(size_t)m * (size_t)ldx + i];
}

#endif
