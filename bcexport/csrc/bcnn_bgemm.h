/* Binary matrix product with 1-bit weights: additions and subtractions only (BinaryConnect, §9).
 *
 *   Y[m*ldy + n] = sum_{k<K} X[m*ldx + k] * W(k, n),   W(k, n) in {-1, +1},  0 <= m < M, 0 <= n < N
 *
 * W is stored in the layout of bcexport/c_layout.py (its docstring is the definition): groups of
 * 4 inputs, blocks of 32 outputs, 16 bytes per (block, group), byte r holding output 32b+r in its
 * low nibble and 32b+16+r in its high nibble, bit t = sign bit of W(4g+t, n), 1 = +1.
 *
 * This file is the portable reference: one add or subtract per weight, in order k = 0, 1, ...
 * C99, no allocation, no stdio.
 */
#ifndef BCNN_BGEMM_H
#define BCNN_BGEMM_H

#include <stddef.h>
#include <stdint.h>

#define BCNN_GROUP 4
#define BCNN_BLOCK 32

static inline size_t bcnn_bgemm_bytes(int K, int N)
{
    return (size_t)((N + BCNN_BLOCK - 1) / BCNN_BLOCK) * (size_t)((K + BCNN_GROUP - 1) / BCNN_GROUP) * 16u;
}

static inline int bcnn_bit(const uint8_t *W, int KG, int k, int n)
{
    int b = n / BCNN_BLOCK, r = n % BCNN_BLOCK;
    uint8_t byte = W[((size_t)b * (size_t)KG + (size_t)(k / BCNN_GROUP)) * 16u + (size_t)(r % 16)];
    return (byte >> ((r < 16 ? 0 : 4) + k % BCNN_GROUP)) & 1;
}

static inline void bcnn_bgemm_ref(int M, int K, int N, const float *X, int ldx,
                                  const uint8_t *W, float *Y, int ldy)
{
    int KG = (K + BCNN_GROUP - 1) / BCNN_GROUP;
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

#endif
