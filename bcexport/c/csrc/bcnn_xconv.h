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
 * inside the image are consecutive pixels and consecutive tap rows, so they are one popcount call;
 * on the vector paths an interior pixel's 9 taps are first copied into one row (its patch).
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

/* u of the four outputs whose tap rows start at w, w + ws, w + 2 ws, w + 3 ws, at pixel (i, j):
 * the taps of each kernel row inside the image are one bcnn_xnor_pop4 call for all four. */
static inline void bcnn_xconv_u4(int H, int W, int C, const uint8_t *x, const uint8_t *w, size_t ws, int i, int j,
                                 int32_t *u)
{
    int words = BCNN_XROW_WORDS(C), dx0 = j == 0 ? 1 : 0, dx1 = j == W - 1 ? 1 : 2;
    size_t px = 8u * (size_t)words;
    int32_t taps = 0;
    uint32_t pop[4] = {0, 0, 0, 0}, p[4];
    for (int dy = 0; dy < 3; ++dy) {
        int yy = i + dy - 1;
        if (yy < 0 || yy >= H)
            continue;
        bcnn_xnor_pop4(x + ((size_t)yy * (size_t)W + (size_t)(j + dx0 - 1)) * px, w + (size_t)(dy * 3 + dx0) * px,
                       ws, (dx1 - dx0 + 1) * words, p);
        for (int r = 0; r < 4; ++r)
            pop[r] += p[r];
        taps += dx1 - dx0 + 1;
    }
    for (int r = 0; r < 4; ++r)
        u[r] = taps * (int32_t)C - 2 * (int32_t)pop[r];
}

/* u of nr <= 4 outputs (tap rows at w + r * ws) at pixel (i, j), into u[0 .. nr-1]. */
static inline void bcnn_xconv_un(int H, int W, int C, const uint8_t *x, const uint8_t *w, size_t ws, int nr,
                                 int i, int j, int32_t *u)
{
    if (nr == 4) {
        bcnn_xconv_u4(H, W, C, x, w, ws, i, j, u);
        return;
    }
    for (int r = 0; r < nr; ++r)
        u[r] = bcnn_xconv_u(H, W, C, x, w + (size_t)r * ws, i, j);
}

/* On the vector paths an interior pixel's 9 taps are copied side by side (one bit row of 9 C
 * values, C <= 512) once, and every output then takes one popcount over the whole patch, long
 * enough for the vector steps; on the portable path (a microcontroller: no vectors, little stack)
 * every pixel goes tap row by tap row. */
#if BCNN_XNOR_PATH_ID == BCNN_XNOR_PORTABLE
#define BCNN_XCONV_PATCH_WORDS 1
#else
#define BCNN_XCONV_PATCH_WORDS 72
#endif

/* bcnn_xconv_pop2x4(x, ps, w, ws, words, out): out[4 q + r] = popcount(p_q XOR w_r) for the two
 * patches p_0 = x, p_1 = x + ps and the four rows w_r = w + r ws: on AVX2 one pass that loads each
 * weight vector once for both patches (bcnn_xconv_x86.h), elsewhere two bcnn_xnor_pop4. */
#if BCNN_XNOR_PATH_ID == BCNN_XNOR_AVX2
#include "bcnn_xconv_x86.h"
#if BCNN_XCONV_PATCH_WORDS > BCNN_XCONV_PAIR_MAX_WORDS
#error "a patch longer than bcnn_xconv_pop2x4 takes"
#endif
#else
static inline void bcnn_xconv_pop2x4(const uint8_t *x, size_t ps, const uint8_t *w, size_t ws, int words,
                                     uint32_t *out)
{
    bcnn_xnor_pop4(x, w, ws, words, out);
    bcnn_xnor_pop4(x + ps, w, ws, words, out + 4);
}
#endif

/* 1 if (i, j) has all 9 taps inside the image and its patch fits, and then the patch. */
static inline int bcnn_xconv_patch(int H, int W, int C, const uint8_t *x, int i, int j, uint8_t *patch)
{
    int words = BCNN_XROW_WORDS(C);
    size_t seg = 24u * (size_t)words;
    if (i < 1 || i > H - 2 || j < 1 || j > W - 2 || 9 * words > BCNN_XCONV_PATCH_WORDS)
        return 0;
    for (int dy = 0; dy < 3; ++dy) {
        const uint8_t *src = x + ((size_t)(i + dy - 1) * (size_t)W + (size_t)(j - 1)) * 8u * (size_t)words;
        for (size_t b = 0; b < seg; ++b)
            patch[(size_t)dy * seg + b] = src[b];
    }
    return 1;
}

/* u of nr <= 4 outputs (tap rows at w + r * ws) at pixel (i, j) whose patch is `patch` if `inside`. */
static inline void bcnn_xconv_at(int H, int W, int C, const uint8_t *x, const uint8_t *w, size_t ws, int nr,
                                 int i, int j, int inside, const uint8_t *patch, int32_t *u)
{
    int words = BCNN_XROW_WORDS(C);
    uint32_t p[4];
    if (!inside) {
        bcnn_xconv_un(H, W, C, x, w, ws, nr, i, j, u);
        return;
    }
    if (nr == 4)
        bcnn_xnor_pop4(patch, w, ws, 9 * words, p);
    for (int r = 0; r < nr; ++r)
        u[r] = 9 * (int32_t)C - 2 * (int32_t)(nr == 4 ? p[r] : bcnn_xnor_pop(patch, w + (size_t)r * ws, 9 * words));
}

/* u[q][0 .. nr-1] of nr <= 4 outputs (tap rows at w + r * ws) at the P positions (pi[q], pj[q]),
 * patch[q] built where inside[q]: two inside positions in a row, with 4 outputs, by one
 * bcnn_xconv_pop2x4 (each weight row read once for both), any other one by bcnn_xconv_at. */
static inline void bcnn_xconv_positions(int H, int W, int C, const uint8_t *x, const uint8_t *w, size_t ws, int nr,
                                        int P, const int *pi, const int *pj, const int *inside,
                                        uint8_t patch[][8 * BCNN_XCONV_PATCH_WORDS], int32_t u[][4])
{
    int words = BCNN_XROW_WORDS(C);
    for (int q = 0; q < P;) {
        if (q + 1 < P && nr == 4 && inside[q] && inside[q + 1]) {
            uint32_t p[8];
            bcnn_xconv_pop2x4(patch[q], sizeof patch[q], w, ws, 9 * words, p);
            for (int r = 0; r < 4; ++r) {
                u[q][r] = 9 * (int32_t)C - 2 * (int32_t)p[r];
                u[q + 1][r] = 9 * (int32_t)C - 2 * (int32_t)p[4 + r];
            }
            q += 2;
        } else {
            bcnn_xconv_at(H, W, C, x, w, ws, nr, pi[q], pj[q], inside[q], patch[q], u[q]);
            q += 1;
        }
    }
}

/* Bits y (one bit row of N values per output pixel) of a conv block on the bits x [H, W, C], with
 * weights w (9 tap rows per output), 2x2 max-pool of u if pool, then dir[n] * u >= thr[n]. With
 * pool, one output pixel (its 4 window positions) at a time; without, two neighbours in a row at a
 * time; their patches built once, outputs four at a time (bcnn_xconv_positions). */
static inline void bcnn_xconv_sign(int H, int W, int C, int N, int pool, const uint8_t *x, const uint8_t *w,
                                   const int32_t *thr, const int8_t *dir, uint8_t *y)
{
    int Ho = pool ? H / 2 : H, Wo = pool ? W / 2 : W, q;
    size_t wrow = 9u * (size_t)BCNN_XROW_BYTES(C), ldy = (size_t)BCNN_XROW_BYTES(N);
    uint8_t patch[4][8 * BCNN_XCONV_PATCH_WORDS] = {{0}};   /* once per block: flow analysis cannot see
                                                                that only a built patch is read */
    for (size_t b = 0; b < (size_t)Ho * (size_t)Wo * ldy; ++b)
        y[b] = 0;
    for (int i = 0; i < Ho; ++i) {
        for (int j = 0; j < Wo; j += pool ? 1 : 2) {
            int outs = pool || j + 1 == Wo ? 1 : 2, positions = pool ? 4 : outs, pi[4], pj[4], inside[4];
            for (q = 0; q < positions; ++q) {
                pi[q] = pool ? 2 * i + q / 2 : i;
                pj[q] = pool ? 2 * j + q % 2 : j + q;
                inside[q] = bcnn_xconv_patch(H, W, C, x, pi[q], pj[q], patch[q]);
            }
            for (int n0 = 0; n0 < N; n0 += 4) {
                int nr = N - n0 < 4 ? N - n0 : 4;
                int32_t u[4][4];
                bcnn_xconv_positions(H, W, C, x, w + (size_t)n0 * wrow, wrow, nr, positions, pi, pj, inside, patch,
                                     u);
                for (q = 1; pool && q < positions; ++q)
                    for (int r = 0; r < nr; ++r)
                        u[0][r] = u[0][r] > u[q][r] ? u[0][r] : u[q][r];
                for (int o = 0; o < outs; ++o) {
                    uint8_t *yp = y + ((size_t)i * (size_t)Wo + (size_t)(j + o)) * ldy;
                    for (int r = 0; r < nr; ++r) {
                        int n = n0 + r;
                        yp[n / 8] |= (uint8_t)((unsigned)(dir[n] * u[o][r] >= thr[n]) << (n % 8));
                    }
                }
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
