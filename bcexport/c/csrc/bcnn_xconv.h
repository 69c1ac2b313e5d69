/* BinaryNet's 3x3 convolutions on ±1 inputs as XNOR-popcount on bit rows (issue 21 §3).
 *
 * An image of H x W pixels with C channels is H*W bit rows of C values (bcnn_xnor.h), pixel
 * (i, j) at row i*W + j, BCNN_XROW_BYTES(C) bytes each. A conv's weights are, per output n, its 9
 * taps (dy, dx) in row-major order, each a bit row of the C input channels: 9 rows per output.
 * SAME zero padding is exact: a tap outside the image holds 0, which no ±1 bit can, so it is left
 * out of the sum instead of stored:
 *
 *     u(i, j, n) = sum over the taps inside the image of (C - 2 popcount(x XOR w))
 *                = C * (taps inside) - 2 * popcount over those taps
 *
 * (docs/BINARYNET.md: the same u as the zero-padded convolution; no tap_sums correction is
 * needed because nothing outside the image is counted). The taps of one kernel row that lie
 * inside the image are consecutive pixels and consecutive tap rows, so they are one popcount call.
 * A 2x2 max-pool (stride 2, VALID) takes the largest integer u of each window, before the
 * comparison, as the deployment defines it (with direction -1 the comparison is decreasing in u,
 * so pooling the bits would be an AND, not an OR: pooling u is right for both). Header-only, no
 * allocation, no stdio.
 */
#ifndef BCNN_XCONV_H
#define BCNN_XCONV_H

#include <stddef.h>
#include <stdint.h>

#include "bcnn_xnor.h"

/* u at output pixel (i, j) of one output whose 9 tap rows start at wn. */
static inline int32_t bcnn_xconv_u(int H, int W, int C, const uint8_t *x, const uint8_t *wn, int i, int j)
{
    int words = BCNN_XROW_WORDS(C), dx0 = j == 0 ? 1 : 0, dx1 = j == W - 1 ? 1 : 2;
    size_t px = 8u * (size_t)words;
    int32_t taps = 0;
    uint32_t pop = 0;
    for (int dy = 0; dy < 3; ++dy) {
        int yy = i + dy - 1;
        if (yy < 0 || yy >= H)
            continue;
        pop += bcnn_xnor_pop(x + ((size_t)yy * (size_t)W + (size_t)(j + dx0 - 1)) * px,
                             wn + (size_t)(dy * 3 + dx0) * px, (dx1 - dx0 + 1) * words);
        taps += dx1 - dx0 + 1;
    }
    return taps * (int32_t)C - 2 * (int32_t)pop;
}

/* Bits y (one bit row of N values per output pixel) of a conv block on the bits x [H, W, C], with
 * weights w (9 tap rows per output), 2x2 max-pool of u if pool, then dir[n] * u >= thr[n]. */
static inline void bcnn_xconv_sign(int H, int W, int C, int N, int pool, const uint8_t *x, const uint8_t *w,
                                   const int32_t *thr, const int8_t *dir, uint8_t *y)
{
    int Ho = pool ? H / 2 : H, Wo = pool ? W / 2 : W;
    size_t wrow = 9u * (size_t)BCNN_XROW_BYTES(C), ldy = (size_t)BCNN_XROW_BYTES(N);
    for (size_t b = 0; b < (size_t)Ho * (size_t)Wo * ldy; ++b)
        y[b] = 0;
    for (int n = 0; n < N; ++n) {
        const uint8_t *wn = w + (size_t)n * wrow;
        for (int i = 0; i < Ho; ++i) {
            for (int j = 0; j < Wo; ++j) {
                int32_t u;
                if (pool) {
                    int32_t u00 = bcnn_xconv_u(H, W, C, x, wn, 2 * i, 2 * j);
                    int32_t u01 = bcnn_xconv_u(H, W, C, x, wn, 2 * i, 2 * j + 1);
                    int32_t u10 = bcnn_xconv_u(H, W, C, x, wn, 2 * i + 1, 2 * j);
                    int32_t u11 = bcnn_xconv_u(H, W, C, x, wn, 2 * i + 1, 2 * j + 1);
                    int32_t m0 = u00 > u01 ? u00 : u01, m1 = u10 > u11 ? u10 : u11;
                    u = m0 > m1 ? m0 : m1;
                } else {
                    u = bcnn_xconv_u(H, W, C, x, wn, i, j);
                }
                if (dir[n] * u >= thr[n])
                    y[((size_t)i * (size_t)Wo + (size_t)j) * ldy + (size_t)(n / 8)] |= (uint8_t)(1u << (n % 8));
            }
        }
    }
}

/* The bits of P pixel rows of C values (BCNN_XROW_BYTES(C) bytes each) as one row of P*C values
 * in NHWC order (value p*C + c), into `bytes` bytes of y, the rest of them zero: the flatten
 * before the first dense block, and a conv block's bits for predict_hidden. */
static inline void bcnn_flatten_bits(int P, int C, const uint8_t *x, uint8_t *y, size_t bytes)
{
    size_t px = (size_t)BCNN_XROW_BYTES(C);
    for (size_t b = 0; b < bytes; ++b)
        y[b] = 0;
    for (int p = 0; p < P; ++p) {
        for (int c = 0; c < C; ++c) {
            size_t k = (size_t)p * (size_t)C + (size_t)c;
            unsigned bit = (x[(size_t)p * px + (size_t)(c / 8)] >> (c % 8)) & 1u;
            y[k / 8] |= (uint8_t)(bit << (k % 8));
        }
    }
}

#endif
