/* Preprocessing of raw uint8 pixels for the pixel entry point (arXiv:1511.00363, §6 recipes).
 *
 * Each kind computes x [M, D] (float32, the image flattened row-major NHWC) from pixels [M, D] as
 * bctrain/data/preprocess.py's KINDS[kind].apply does (bcexport.cgen's table PREPROCESS says which
 * function serves which kind, with which constants and arrays):
 *   mean     x = pixels / 255 - mean                       float32, as in training
 *   none     x = pixels / 255                              float32
 *   gcn_zca  x = zca(gcn(pixels, scale))                   double, rounded once to float32
 *   gcn_lcn  x = lcn(gcn(pixels, scale))                   GCN in double, LCN in float32
 * GCN (bctrain/data/gcn.py): g = (p - mean(p)) / divisor, divisor = ||p - mean(p)|| / scale, or 1
 * where that is below min_divisor. Its sums are exact (integers); the rest is double, as in NumPy.
 *
 * ZCA (bctrain/data/zca.py): x_j = sum_i (g_i - zca_mean_i) P_ij in float64 there. Here the same
 * sum is rearranged so that the float32 P is read as is and no double array is stored:
 *   x_j = (sum_i p_i P_ij - mean(p) colsum_j) / divisor - bias_j,
 *   colsum_j = sum_i P_ij,  bias_j = sum_i zca_mean_i P_ij    (double, by the generator in float64).
 * Every product p_i P_ij (an 8-bit integer times a float32) is exact in double, so the only
 * roundings are the double sums': with u = 2^-53 and eight interleaved partial sums of D / 8 terms,
 * |error of the dot| <= (D/8 + 3) u sum_i |p_i P_ij|, far below one float32 rounding of x_j for
 * images (tests/test_c_preprocess.py measures it against the float64 NumPy definition). P is a
 * dense float matrix, not a binary weight: multiply-adds are right here. It is given transposed
 * (pt, row j = column j of P) so that each x_j is one contiguous dot product, and up to
 * BCNN_ZCA_ROWS images share each row of pt while it is in cache.
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

#define BCNN_ZCA_ROWS 8 /* images sharing each row of pt */

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

/* sum_i p[i] * w[i] in double: eight partial sums (term i goes to sum i % 8), added pairwise. */
static inline double bcnn_dot_u8(int D, const uint8_t *p, const float *w)
{
    double acc[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int i = 0;
    for (; i + 8 <= D; i += 8)
        for (int k = 0; k < 8; ++k)
            acc[k] += (double)p[i + k] * (double)w[i + k];
    for (int k = 0; i < D; ++i, ++k)
        acc[k] += (double)p[i] * (double)w[i];
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

static inline void bcnn_pre_gcn_zca(int M, int D, double scale, double min_divisor, const uint8_t *pixels,
                                    const float *pt, const double *colsum, const double *bias, float *x)
{
    for (int m0 = 0; m0 < M; m0 += BCNN_ZCA_ROWS) {
        int rows = M - m0 < BCNN_ZCA_ROWS ? M - m0 : BCNN_ZCA_ROWS;
        double mean[BCNN_ZCA_ROWS], divisor[BCNN_ZCA_ROWS];
        for (int r = 0; r < rows; ++r)
            bcnn_gcn_stats(D, pixels + (size_t)(m0 + r) * (size_t)D, scale, min_divisor, &mean[r], &divisor[r]);
        for (int j = 0; j < D; ++j) {
            const float *col = pt + (size_t)j * (size_t)D;
            for (int r = 0; r < rows; ++r) {
                double dot = bcnn_dot_u8(D, pixels + (size_t)(m0 + r) * (size_t)D, col);
                x[(size_t)(m0 + r) * (size_t)D + (size_t)j] = (float)((dot - mean[r] * colsum[j]) / divisor[r] - bias[j]);
            }
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
