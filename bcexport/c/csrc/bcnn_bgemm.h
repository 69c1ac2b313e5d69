/* Binary matrix product with 1-bit weights: additions and subtractions only (BinaryConnect, §9).
 *
 *   Y[m*ldy + n] = sum_{k<K} X[m*ldx + k] * W(k, n),   W(k, n) in {-1, +1},  0 <= m < M, 0 <= n < N
 *
 * W is stored in the layout of bcexport/c/layout.py (its docstring is the definition): groups of
 * 4 inputs, blocks of 32 outputs, 16 bytes per (block, group), byte r holding output 32b+r in its
 * low nibble and 32b+16+r in its high nibble, bit t = sign bit of W(4g+t, n), 1 = +1.
 *
 * Table kernels (T-MAC, BiQGEMM): for each group g of 4 inputs the 16 signed sums
 *   T_g[i] = (±x0 ± x1) + (±x2 ± x3),   sign of x_t = + if bit t of i is set,
 * are built with additions (negation flips a sign bit), and a nibble of W is the index of the
 * entry to add: one table lookup and one addition per 4 weights, no multiplication anywhere.
 *
 *   void bcnn_bgemm(M, K, N, X, ldx, W, Y, ldy, scratch)      M, N >= 0, K >= 1, ldx >= K, ldy >= N
 *       scratch: BCNN_BGEMM_SCRATCH_FLOATS(M, K) floats, any alignment, contents ignored.
 *       Reads X only at k < K, writes Y only at n < N (and, while running, only there).
 *   const char *bcnn_bgemm_path(void)      "avx512", "avx2", "neon" or "portable"
 *
 * The path is chosen at compile time from the target macros (-mavx512f -mavx512bw, -mavx2,
 * AArch64 NEON; -DBCNN_PORTABLE forces the portable C99 path) by bcnn_scratch.h, which also
 * defines BCNN_BGEMM_SCRATCH_FLOATS without any of the kernels' code. The SIMD paths process rows in
 * sets of R (chosen by M: 8, 4, 2 or 1 on AVX-512) that share the decoding of each weight byte.
 *
 * Error bound, every path: each output is a sequential sum over the KG = ceil(K/4) groups, in
 * group order, of table entries that carry two roundings each, so with u = 2^-24 and d = KG + 2,
 *   |Y - exact| <= gamma_d * sum_k |X[m*ldx + k]|,   gamma_d = d*u / (1 - d*u)
 * (Higham, Accuracy and Stability of Numerical Algorithms, §3.1). Each term is ±x added, never
 * the cancellation-prone 2*sum_{w=+1} x - sum x. All paths perform the same float32 operations in
 * the same order, so with IEEE arithmetic (no -ffast-math) their results are identical bit for bit
 * (tests/test_c_bgemm.py checks it against a NumPy emulation of that order).
 *
 * C99, header-only, no allocation, no stdio.
 */
#ifndef BCNN_BGEMM_H
#define BCNN_BGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "bcnn_scratch.h"

#define BCNN_BLOCK 32

/* BCNN_REPn(S): S(0) S(1) ... S(n-1), for kernels that keep n rows in named registers. */
#define BCNN_REP1(S) S(0)
#define BCNN_REP2(S) S(0) S(1)
#define BCNN_REP4(S) S(0) S(1) S(2) S(3)
#define BCNN_REP8(S) S(0) S(1) S(2) S(3) S(4) S(5) S(6) S(7)

static inline size_t bcnn_bgemm_bytes(int K, int N)
{
    return (size_t)((N + BCNN_BLOCK - 1) / BCNN_BLOCK) * (size_t)BCNN_GROUPS(K) * 16u;
}

static inline int bcnn_bit(const uint8_t *W, int KG, int k, int n)
{
    int b = n / BCNN_BLOCK, r = n % BCNN_BLOCK;
    uint8_t byte = W[((size_t)b * (size_t)KG + (size_t)(k / BCNN_GROUP)) * 16u + (size_t)(r % 16)];
    return (byte >> ((r < 16 ? 0 : 4) + k % BCNN_GROUP)) & 1;
}

/* The plain reference: one add or subtract per weight, in order k = 0, 1, ... */
static inline void bcnn_bgemm_ref(int M, int K, int N, const float *X, int ldx,
                                  const uint8_t *W, float *Y, int ldy)
{
    int KG = BCNN_GROUPS(K);
    for (int m = 0; m < M; ++m) {
        for (int n = 0; n < N; ++n) {
            float acc = 0.0f;
            for (int k = 0; k < K; ++k) {
                float x = X[(size_t)m * (size_t)ldx + (size_t)k];
                acc = bcnn_bit(W, KG, k, n) ? acc + x : acc - x;
            }
            Y[(size_t)m * (size_t)ldy + (size_t)n] = acc;
        }
    }
}

/* The 16 signed sums of inputs x[k0 .. k0+3] (zero beyond K) into T[0..15], two roundings each. */
static inline void bcnn_table16(float *T, const float *x, int k0, int K)
{
    float x0 = x[k0], x1 = k0 + 1 < K ? x[k0 + 1] : 0.0f;
    float x2 = k0 + 2 < K ? x[k0 + 2] : 0.0f, x3 = k0 + 3 < K ? x[k0 + 3] : 0.0f;
    float a[4], c[4];
    a[0] = -x0 - x1; a[1] = x0 - x1; a[2] = x1 - x0; a[3] = x0 + x1;
    c[0] = -x2 - x3; c[1] = x2 - x3; c[2] = x3 - x2; c[3] = x2 + x3;
    for (int j = 0; j < 4; ++j)
        for (int i = 0; i < 4; ++i)
            T[4 * j + i] = a[i] + c[j];
}

#include "bcnn_bgemm_portable.h"

#if BCNN_BGEMM_PATH_ID == BCNN_PATH_AVX512
#include "bcnn_bgemm_avx512.h"
#elif BCNN_BGEMM_PATH_ID == BCNN_PATH_AVX2
#include "bcnn_bgemm_avx2.h"
#elif BCNN_BGEMM_PATH_ID == BCNN_PATH_NEON
#include "bcnn_bgemm_neon.h"
#else
#define BCNN_BGEMM_KERNEL bcnn_bgemm_portable
#endif

static inline void bcnn_bgemm(int M, int K, int N, const float *X, int ldx, const uint8_t *W,
                              float *Y, int ldy, float *scratch)
{
    BCNN_BGEMM_KERNEL(M, K, N, X, ldx, W, Y, ldy, scratch);
}

static inline const char *bcnn_bgemm_path(void)
{
    return BCNN_BGEMM_PATH;
}

#endif
