/* Preprocessing of raw uint8 pixels for the pixel entry point (arXiv:1511.00363, §6 recipes).
 *
 * Each kind computes x [M, D] (float32, the image flattened row-major NHWC) from pixels [M, D] as
 * bctrain/data/preprocess.py's KINDS[kind].apply does (bcexport.c.generate's table PREPROCESS says which
 * function serves which kind, with which constants and arrays):
 *   mean     x = pixels / 255 - mean                       float32, as in training
 *   none     x = pixels / 255                              float32
 *   pm1      x = pixels / 255 * 2 - 1                      float32, two roundings as in NumPy
 *   gcn_zca  x = zca(gcn(pixels, scale))                   double, rounded once to float32
 *   gcn_lcn  x = lcn(gcn(pixels, scale))                   GCN in double, LCN in float32
 * GCN (bctrain/data/gcn.py): g = (p - mean(p)) / divisor, divisor = ||p - mean(p)|| / scale, or 1
 * where that is below min_divisor. Its sums are exact (integers); the rest is double, as in NumPy.
 *
 * ZCA (bctrain/data/zca.py): x_j = sum_i (g_i - zca_mean_i) P_ij in float64 there. Here the same
 * sum is rearranged so that the float32 P is read as is and no double array is stored:
 *   x_j = (sum_i p_i P_ij - mean(p) colsum_j) / divisor - bias_j,
 *   colsum_j = sum_i P_ij,  bias_j = sum_i zca_mean_i P_ij    (double, by the generator in float64).
 * Every product p_i P_ij (a pixel value times a float32) is exact in double, so the only
 * roundings are the double sums': with u = 2^-53 and eight interleaved partial sums of D / 8 terms
 * added pairwise, |error of the dot| <= (D/8 + 3) u sum_i |p_i P_ij| / (1 - (D/8 + 3) u), some
 * 1e-13 of the terms' magnitude for D = 3072, far below one float32 rounding of x_j: x is the
 * float64 value rounded once, as NumPy's float32 x (tests/test_c_preprocess.py checks both).
 * Double rather than float32: verify's tolerance is the network's float32 noise on once-rounded
 * inputs, while a float32 ZCA adds an error that depends on how much the fitted matrix cancels
 * (0.085 of the tolerance on the run of docs/BENCHMARKS.md, `make bench-cnn-c`; past it on the
 * run bctrain/data/zca.py records); in double it costs about twice the arithmetic. P is a dense
 * float matrix, not a binary weight: multiply-adds are right here. It is given transposed (pt,
 * row j = column j of P) as the little-endian bytes of its float32 values (a generated source
 * holds them in string literals, which compilers read far faster than float literals); each
 * column is decoded once into work and shared by up to BCNN_ZCA_ROWS images.
 *
 * LCN (bctrain/data/lcn.py), per image and channel, on the GCN values rounded to float32, in
 * float32 operation for operation as NumPy's float32 form (g: the K-tap Gaussian in float32):
 *   blur(v)   = zero-padded "same" separable convolution: a K-tap pass along rows (axis H), then
 *               one along columns (axis W), each tap added in order k = 0 .. K-1 starting from 0
 *   centred   = x - blur(x),  denom = sqrt(blur(x * x)),
 *   divisor   = max(max(denom, mean over the image of denom (summed in double)), threshold),
 *   lcn(x)    = centred / divisor.
 * With IEEE float32 and no contraction of a*b+c into one rounding (gcc's default under -std=c99)
 * the results are NumPy's to the last bit, up to a rounding of GCN's double statistics.
 *
 * Header-only, no allocation, no stdio (sqrt and sqrtf come from <math.h>: link with -lm);
 * working memory is the caller's (`work`).
 */
#ifndef BCNN_PREPROCESS_H
#define BCNN_PREPROCESS_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "bcnn_scratch.h"

static inline void bcnn_pre_mean(int M, int D, const uint8_t *pixels, const float *mean, float *x)
{
    for (int m = 0; m < M; ++m)
        for (int i = 0; i < D; ++i) {
            size_t k = (size_t)m * (size_t)D + (size_t)i;
            x[k] = (float)pixels[k] / 255.0f - mean[i];
        }
}

static inline void bcnn_pre_unit(int M, int D, const uint8_t *pixels, float *x)
{
    for (size_t k = 0; k < (size_t)M * (size_t)D; ++k)
        x[k] = (float)pixels[k] / 255.0f;
}

/* BinaryNet's inputs in [-1, 1]: x = pixels / 255 rounded, doubled (exact), minus 1 rounded, the
 * two roundings of NumPy's float32 apply_pm1, so x is NumPy's to the last bit. Even where a compiler
 * contracts the last two steps into one fused multiply-add the result is the same: the product by 2
 * is exact, so fma(v, 2, -1) rounds the same real number once, as v * 2 - 1 does. */
static inline void bcnn_pre_pm1(int M, int D, const uint8_t *pixels, float *x)
{
    for (size_t k = 0; k < (size_t)M * (size_t)D; ++k)
        x[k] = (float)pixels[k] / 255.0f * 2.0f - 1.0f;
}

/* GCN of one image p [D]: its mean and divisor. sum (p - mean)^2 = (D sum p^2 - (sum p)^2) / D with
 * an exact integer numerator (D <= 2^20 keeps it below 2^53, so it converts exactly). */
static inline void bcnn_gcn_stats(int D, const uint8_t *p, double scale, double min_divisor,
                                  double *mean, double *divisor)
{
    uint64_t s = 0, s2 = 0;
    for (int i = 0; i < D; ++i) {
        s += p[i];
        s2 += (uint64_t)p[i] * p[i];
    }
    *mean = (double)s / D;
    *divisor = sqrt((double)((uint64_t)D * s2 - s * s) / D) / scale;
    if (*divisor < min_divisor)
        *divisor = 1.0;
}

static inline double bcnn_sum8(const double a[8])
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* sum_i v[i] col[i] in double: eight partial sums, term i going to sum i % 8, then added pairwise
 * (bcnn_sum8). The products of two float32 values are exact in double. */
static inline double bcnn_dot1(int D, const float *v, const float *col)
{
    double a[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 8 <= D; i += 8)    /* whole blocks of 8 apart, so that the compiler vectorizes them */
        for (int k = 0; k < 8; ++k)
            a[k] += (double)v[i + k] * (double)col[i + k];
    for (int k = 0; i + k < D; ++k)
        a[k] += (double)v[i + k] * (double)col[i + k];
    return bcnn_sum8(a);
}

/* bcnn_dot1 of four rows v, v + ldv, v + 2 ldv, v + 3 ldv at once (each column value read once),
 * in the same order as bcnn_dot1, so grouping rows changes no result. */
static inline void bcnn_dot4(int D, const float *v, size_t ldv, const float *col, double out[4])
{
    double a0[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, a1[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    double a2[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0}, a3[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 8 <= D; i += 8)
        for (int k = 0; k < 8; ++k) {
            double w = (double)col[i + k];
            a0[k] += (double)v[i + k] * w;
            a1[k] += (double)v[ldv + (size_t)(i + k)] * w;
            a2[k] += (double)v[2 * ldv + (size_t)(i + k)] * w;
            a3[k] += (double)v[3 * ldv + (size_t)(i + k)] * w;
        }
    for (int k = 0; i + k < D; ++k) {
        double w = (double)col[i + k];
        a0[k] += (double)v[i + k] * w;
        a1[k] += (double)v[ldv + (size_t)(i + k)] * w;
        a2[k] += (double)v[2 * ldv + (size_t)(i + k)] * w;
        a3[k] += (double)v[3 * ldv + (size_t)(i + k)] * w;
    }
    out[0] = bcnn_sum8(a0);
    out[1] = bcnn_sum8(a1);
    out[2] = bcnn_sum8(a2);
    out[3] = bcnn_sum8(a3);
}

/* out[i] = the float32 whose IEEE-754 binary32 form has the little-endian bytes b[4i .. 4i+3], on
 * any byte order (on a little-endian one the compiler makes it a copy). */
static inline float bcnn_f32le(const unsigned char *b)
{
    union {
        uint32_t u;
        float f;
    } v;
    v.u = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    return v.f;
}

static inline void bcnn_load_f32le(int n, const unsigned char *restrict b, float *restrict out)
{
    int i = 0;
    for (; i + 8 <= n; i += 8)    /* whole blocks of 8 apart, so that the compiler vectorizes them */
        for (int k = 0; k < 8; ++k)
            out[i + k] = bcnn_f32le(b + 4 * (size_t)(i + k));
    for (; i < n; ++i)
        out[i] = bcnn_f32le(b + 4 * (size_t)i);
}

/* ZCA after GCN (module comment). pt: P transposed, [D, D] float32 as little-endian bytes (4 per
 * value; a generated source holds them in string literals, which compilers read far faster than
 * float literals). work: BCNN_ZCA_WORK_FLOATS(D) floats: the images as float, then one column. */
static inline void bcnn_pre_gcn_zca(int M, int D, double scale, double min_divisor, const uint8_t *pixels,
                                    const unsigned char *pt, const double *colsum, const double *bias,
                                    float *x, float *work)
{
    float *col = work + (size_t)BCNN_ZCA_ROWS * (size_t)D;
    for (int m0 = 0; m0 < M; m0 += BCNN_ZCA_ROWS) {
        int rows = M - m0 < BCNN_ZCA_ROWS ? M - m0 : BCNN_ZCA_ROWS;
        double mean[BCNN_ZCA_ROWS], divisor[BCNN_ZCA_ROWS], dot[BCNN_ZCA_ROWS];
        for (int r = 0; r < rows; ++r) {
            const uint8_t *p = pixels + (size_t)(m0 + r) * (size_t)D;
            bcnn_gcn_stats(D, p, scale, min_divisor, &mean[r], &divisor[r]);
            for (int i = 0; i < D; ++i)
                work[(size_t)r * (size_t)D + (size_t)i] = (float)p[i];
        }
        for (int j = 0; j < D; ++j) {
            bcnn_load_f32le(D, pt + 4 * (size_t)j * (size_t)D, col);
            for (int r = 0; r < rows; r += rows - r >= 4 ? 4 : 1) {
                if (rows - r >= 4)
                    bcnn_dot4(D, work + (size_t)r * (size_t)D, (size_t)D, col, dot + r);
                else
                    dot[r] = bcnn_dot1(D, work + (size_t)r * (size_t)D, col);
            }
            for (int r = 0; r < rows; ++r)
                x[(size_t)(m0 + r) * (size_t)D + (size_t)j] =
                    (float)((dot[r] - mean[r] * colsum[j]) / divisor[r] - bias[j]);
        }
    }
}

/* out [H, W] = one K-tap pass over channel c of v [H, W, C] (square = 1: of v * v), along rows
 * (dy = 1, dx = 0) or columns (dy = 0, dx = 1), zero outside the image. */
static inline void bcnn_blur_pass(int H, int W, int C, int c, int K, const float *g, const float *v, int square,
                                  int dy, int dx, float *out)
{
    int r = K / 2;
    for (int i = 0; i < H; ++i)
        for (int j = 0; j < W; ++j) {
            float acc = 0.0f;
            for (int k = 0; k < K; ++k) {
                int ii = i + dy * (k - r), jj = j + dx * (k - r);
                float t = 0.0f;
                if (ii >= 0 && ii < H && jj >= 0 && jj < W) {
                    t = v[((size_t)ii * (size_t)W + (size_t)jj) * (size_t)C + (size_t)c];
                    t = square ? t * t : t;
                }
                acc = acc + g[k] * t;
            }
            out[(size_t)i * (size_t)W + (size_t)j] = acc;
        }
}

/* LCN in place of one channel c of x [H, W, C] (module comment); work: 3 H W floats. */
static inline void bcnn_lcn_channel(int H, int W, int C, int c, int K, const float *g, float threshold,
                                    float *x, float *work)
{
    size_t n = (size_t)H * (size_t)W;
    float *rows = work, *blur = work + n, *denom = work + 2 * n;
    double total = 0.0;
    float image_mean, divisor;
    bcnn_blur_pass(H, W, C, c, K, g, x, 0, 1, 0, rows);
    bcnn_blur_pass(H, W, 1, 0, K, g, rows, 0, 0, 1, blur);
    bcnn_blur_pass(H, W, C, c, K, g, x, 1, 1, 0, rows);
    bcnn_blur_pass(H, W, 1, 0, K, g, rows, 0, 0, 1, denom);
    for (size_t q = 0; q < n; ++q) {
        denom[q] = sqrtf(denom[q]);
        total += denom[q];
    }
    image_mean = (float)(total / (double)n);
    for (size_t q = 0; q < n; ++q) {
        float *v = x + q * (size_t)C + (size_t)c;
        divisor = denom[q] > image_mean ? denom[q] : image_mean;
        divisor = divisor > threshold ? divisor : threshold;
        *v = (*v - blur[q]) / divisor;
    }
}

static inline void bcnn_pre_gcn_lcn(int M, int H, int W, int C, double scale, double min_divisor, int K,
                                    float threshold, const uint8_t *pixels, const float *g, float *x, float *work)
{
    int D = H * W * C;
    for (int m = 0; m < M; ++m) {
        const uint8_t *p = pixels + (size_t)m * (size_t)D;
        float *xm = x + (size_t)m * (size_t)D;
        double mean, divisor;
        bcnn_gcn_stats(D, p, scale, min_divisor, &mean, &divisor);
        for (int i = 0; i < D; ++i)
            xm[i] = (float)(((double)p[i] - mean) / divisor);
        for (int c = 0; c < C; ++c)
            bcnn_lcn_channel(H, W, C, c, K, g, threshold, xm, work);
    }
}

#endif
