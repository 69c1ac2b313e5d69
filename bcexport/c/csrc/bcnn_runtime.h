/* Runtime of the generated BinaryConnect inference code (arXiv:1511.00363, §9 Deployment).
 *
 * The block operations of bcexport/reference.py in C99, for one tile of samples at a time:
 *   dense   y = a (.) (x . wb) + c                       [M, K] x [K, N], wb in {-1, +1}
 *   conv    u = im2col3(x) . wb                           3x3, stride 1, SAME (zero padding), NHWC,
 *                                                         patch rows in (dy, dx, c) order, tiled
 *   pool    u = max_pool2(u)                              2x2, stride 2, VALID, before the affine
 *   affine  y = a (.) u + c, then ReLU on all but the last block
 * The products go through bcnn_matmul, the one place that names the kernel (bcnn_bgemm.h: adds and
 * subtracts only, no multiplication by a weight), except the convolutions with C % 4 == 0 on the
 * SIMD paths, which bcnn_tconv.h computes from table rows with the same sums in the same order
 * (conv, pool and affine of a block: bcnn_conv_block). Header-only, no allocation, no stdio; every
 * buffer is part of the caller's scratch (sizes: bcnn_model.h).
 */
#ifndef BCNN_RUNTIME_H
#define BCNN_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "bcnn_bgemm.h"

/* The kernel: the product and its name (its scratch: BCNN_MATMUL_SCRATCH_FLOATS, bcnn_scratch.h). */
static inline void bcnn_matmul(int M, int K, int N, const float *X, int ldx, const uint8_t *W,
                               float *Y, int ldy, float *scratch)
{
    bcnn_bgemm(M, K, N, X, ldx, W, Y, ldy, scratch);
}
static inline const char *bcnn_matmul_path(void)
{
    return bcnn_bgemm_path();
}

/* y[m, j] = a[j] * y[m, j] + c[j] for m < rows, j < n (row stride ldy); then max(y, 0) if relu. */
static inline void bcnn_affine(int rows, int n, float *y, int ldy, const float *a, const float *c, int relu)
{
    for (int m = 0; m < rows; ++m) {
        float *row = y + (size_t)m * (size_t)ldy;
        for (int j = 0; j < n; ++j) {
            float v = a[j] * row[j] + c[j];
            row[j] = (relu && v < 0.0f) ? 0.0f : v;
        }
    }
}

/* A dense block on M samples: y [M, N] (stride ldy) from x [M, K] (stride ldx). */
static inline void bcnn_dense(int M, int K, int N, const float *x, int ldx, const uint8_t *w,
                              const float *a, const float *c, int relu, float *y, int ldy, float *scratch)
{
    bcnn_matmul(M, K, N, x, ldx, w, y, ldy, scratch);
    bcnn_affine(M, N, y, ldy, a, c, relu);
}

/* Rows p0 .. p0+rows-1 of the im2col matrix of one image x [H, W, C]: row r is the 3x3 patch around
 * output pixel p0 + r (row-major), in (dy, dx, c) order, zero outside the image (SAME padding). */
static inline void bcnn_im2col3(int H, int W, int C, const float *x, int p0, int rows, float *patches)
{
    for (int r = 0; r < rows; ++r) {
        int i = (p0 + r) / W, j = (p0 + r) % W;
        float *dst = patches + (size_t)r * 9u * (size_t)C;
        for (int dy = 0; dy < 3; ++dy) {
            for (int dx = 0; dx < 3; ++dx) {
                int yy = i + dy - 1, xx = j + dx - 1;
                float *d = dst + (size_t)(dy * 3 + dx) * (size_t)C;
                if (yy < 0 || yy >= H || xx < 0 || xx >= W) {
                    for (int c = 0; c < C; ++c)
                        d[c] = 0.0f;
                } else {
                    const float *s = x + ((size_t)yy * (size_t)W + (size_t)xx) * (size_t)C;
                    for (int c = 0; c < C; ++c)
                        d[c] = s[c];
                }
            }
        }
    }
}

/* Row i of the 2x2 max-pool (stride 2, VALID) of u [H, W, C], in place: from rows 2i and 2i+1 into
 * row i of u [H/2, W/2, C] (an odd last column is dropped). Output element q is written after its
 * inputs are read, and every later output reads only elements at positions > q, so pooling the
 * rows in order in place is safe. */
static inline void bcnn_pool_row(int W, int C, float *u, int i)
{
    int W2 = W / 2;
    for (int j = 0; j < W2; ++j) {
        const float *s00 = u + ((size_t)(2 * i) * (size_t)W + (size_t)(2 * j)) * (size_t)C;
        const float *s01 = s00 + C, *s10 = s00 + (size_t)W * (size_t)C, *s11 = s10 + C;
        float *d = u + ((size_t)i * (size_t)W2 + (size_t)j) * (size_t)C;
        for (int c = 0; c < C; ++c) {
            float m0 = s00[c] > s01[c] ? s00[c] : s01[c];
            float m1 = s10[c] > s11[c] ? s10[c] : s11[c];
            d[c] = m0 > m1 ? m0 : m1;
        }
    }
}

/* 2x2 max-pool, stride 2, VALID, in place: u [H, W, C] -> u [H/2, W/2, C] (an odd last row or column
 * is dropped), row by row. */
static inline void bcnn_maxpool2(int H, int W, int C, float *u)
{
    for (int i = 0; i < H / 2; ++i)
        bcnn_pool_row(W, C, u, i);
}

#if BCNN_TCONV
#include "bcnn_tconv.h"
#endif

/* u [H, W, N] = conv3x3(x [H, W, C], wb). work: BCNN_CONV3_WORK_FLOATS(W, C, N, R) floats: the table
 * rows of bcnn_tconv3 where it runs (BCNN_TCONV, C % 4 == 0), else R im2col rows, R output pixels
 * per product. Both give the same bits (bcnn_tconv.h). */
static inline void bcnn_conv3(int H, int W, int C, int N, int R, const float *x, const uint8_t *w,
                              float *u, float *work, float *scratch)
{
    float *patches = work;
    int pixels = H * W;
#if BCNN_TCONV
    if (C % 4 == 0) {
        bcnn_tconv3(H, W, C, N, x, w, u, work, 0, NULL, NULL, 0);
        return;
    }
#endif
    for (int p0 = 0; p0 < pixels; p0 += R) {
        int rows = pixels - p0 < R ? pixels - p0 : R;
        bcnn_im2col3(H, W, C, x, p0, rows, patches);
        bcnn_matmul(rows, 9 * C, N, patches, 9 * C, w, u + (size_t)p0 * (size_t)N, N, scratch);
    }
}

/* A conv block: u = conv3x3(x, wb), then the 2x2 max-pool if pool, then the affine y = a (.) u + c
 * (and ReLU) on the H x W (or H/2 x W/2) pixels, into u. The table convolution does the pool and
 * the affine row by row as rows complete; the operations and their order per element are those of
 * bcnn_maxpool2 and bcnn_affine either way. */
static inline void bcnn_conv_block(int H, int W, int C, int N, int R, const float *x, const uint8_t *w, int pool,
                                   const float *a, const float *c, int relu, float *u, float *work, float *scratch)
{
#if BCNN_TCONV
    if (C % 4 == 0) {
        bcnn_tconv3(H, W, C, N, x, w, u, work, pool, a, c, relu);
        return;
    }
#endif
    bcnn_conv3(H, W, C, N, R, x, w, u, work, scratch);
    if (pool)
        bcnn_maxpool2(H, W, N, u);
    bcnn_affine(pool ? (H / 2) * (W / 2) : H * W, N, u, N, a, c, relu);
}

static inline void bcnn_copy(size_t n, const float *src, float *dst)
{
    for (size_t i = 0; i < n; ++i)
        dst[i] = src[i];
}

#endif
