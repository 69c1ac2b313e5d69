/* 3x3 binary convolution read straight from table rows, 8 output pixels per vector (§9).
 *
 *   u[i, j, n] = sum_k P(i, j)[k] * W(k, n),   P(i, j) the 3x3 patch of x [H, W, C] around (i, j) in
 *   (dy, dx, c) order, zero outside the image (SAME), W in the layout of bcnn_bgemm.h, C % 4 == 0.
 *
 * The same sums as im2col followed by bcnn_bgemm, bit for bit: output (i, j, n) adds, from 0 and in
 * group order g = (3 dy + dx) C/4 + c/4, the table entry T_g[e] = (±x0 ± x1) + (±x2 ± x3) of the 4
 * inputs of group g that nibble e of W(g, n) names (bcnn_table16's formula). What changes is the
 * work and the memory walked:
 *   - the 16 entries of every (input pixel, 4 channels) are built once per image (im2col and the
 *     bgemm table built them for each of the 9 patches that hold the pixel), in table rows: for
 *     input row r, x-block xb (8 output columns) and channel group cg, entry e is a slot of 16 floats,
 *     float p holding input column 8 xb + p - 1 (0 <= p < 10 used, zero outside the image), so that
 *     the 8 output columns of the block read their input shifted by dx as floats dx .. dx + 7;
 *   - the lanes of a vector are 8 output pixels, not 8 outputs: one weight nibble, decoded once
 *     with scalar shifts, names the slot to add for all 8 pixels, so a lookup is one vector load
 *     and one addition (no permute, no sign flip); BCNN_TC_P blocks of 8 pixels share each decoding;
 *   - the sums are kept in registers for 4 outputs (bytes r, r+1 of each group: outputs r, r+1,
 *     r+16, r+17 of the block of 32) over BCNN_TC_CHUNK groups, in scratch between chunks (a float
 *     store is exact, so the order stays that of one sequential pass).
 * Table rows are built as the blocks reach them, in a ring of BCNN_TC_RING rows, plus one row of
 * zero pixels for the padding above and below the image. Scratch: BCNN_TCONV_FLOATS (bcnn_scratch.h).
 * Lanes are independent sums, so the vector width of the target cannot change a result: AVX2 (also
 * on AVX-512 builds) and NEON (two q registers per vector) run the same code.
 *
 * C99, header-only, no allocation, no stdio. Included by bcnn_runtime.h on the paths where
 * BCNN_TCONV is 1 (bcnn_scratch.h).
 */
#ifndef BCNN_TCONV_H
#define BCNN_TCONV_H

#include <stddef.h>
#include <stdint.h>

#include "bcnn_bgemm.h"

#if BCNN_BGEMM_PATH_ID == BCNN_PATH_NEON
#include <arm_neon.h>
typedef struct {
    float32x4_t a, b;
} bcnn_v8;
static inline bcnn_v8 bcnn_v8_load(const float *p)
{
    bcnn_v8 v;
    v.a = vld1q_f32(p);
    v.b = vld1q_f32(p + 4);
    return v;
}
static inline void bcnn_v8_store(float *p, bcnn_v8 v)
{
    vst1q_f32(p, v.a);
    vst1q_f32(p + 4, v.b);
}
static inline bcnn_v8 bcnn_v8_zero(void)
{
    bcnn_v8 v;
    v.a = vdupq_n_f32(0.0f);
    v.b = v.a;
    return v;
}
static inline bcnn_v8 bcnn_v8_add(bcnn_v8 x, bcnn_v8 y)
{
    x.a = vaddq_f32(x.a, y.a);
    x.b = vaddq_f32(x.b, y.b);
    return x;
}
static inline bcnn_v8 bcnn_v8_sub(bcnn_v8 x, bcnn_v8 y)
{
    x.a = vsubq_f32(x.a, y.a);
    x.b = vsubq_f32(x.b, y.b);
    return x;
}
static inline bcnn_v8 bcnn_v8_neg(bcnn_v8 x)
{
    x.a = vnegq_f32(x.a);
    x.b = vnegq_f32(x.b);
    return x;
}
#else
#include <immintrin.h>
typedef __m256 bcnn_v8;
#define bcnn_v8_load _mm256_loadu_ps
#define bcnn_v8_store _mm256_storeu_ps
#define bcnn_v8_zero _mm256_setzero_ps
#define bcnn_v8_add _mm256_add_ps
#define bcnn_v8_sub _mm256_sub_ps
static inline bcnn_v8 bcnn_v8_neg(bcnn_v8 x)
{
    return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f));
}
#endif

#define BCNN_REP3(S) S(0) S(1) S(2)
#if BCNN_TC_P == 1
#define BCNN_TC_REP BCNN_REP1
#elif BCNN_TC_P == 2
#define BCNN_TC_REP BCNN_REP2
#elif BCNN_TC_P == 3
#define BCNN_TC_REP BCNN_REP3
#elif BCNN_TC_P == 4
#define BCNN_TC_REP BCNN_REP4
#else
#error "BCNN_TC_P must be 1 to 4"
#endif

#define BCNN_TC_SLOT 16                      /* floats per table entry slot (10 used) */
#define BCNN_TC_ENTRY_FLOATS (16 * BCNN_TC_SLOT)

/* The 16 entries of the groups of input row xt (C rows of the transposed input, XT floats each,
 * float 8 xb + p = input column 8 xb + p - 1) into the table row tab. */
static inline void bcnn_tc_build(int XB, int CG, size_t xs, const float *xt, int XT, float *tab)
{
    for (int xb = 0; xb < XB; ++xb) {
        for (int cg = 0; cg < CG; ++cg) {
            float *t = tab + (size_t)xb * xs + (size_t)cg * BCNN_TC_ENTRY_FLOATS;
            for (int h = 0; h < 2; ++h) {
                const float *s = xt + (size_t)(4 * cg) * (size_t)XT + (size_t)(8 * xb + 8 * h);
                bcnn_v8 x0 = bcnn_v8_load(s), x1 = bcnn_v8_load(s + XT);
                bcnn_v8 x2 = bcnn_v8_load(s + 2 * (size_t)XT), x3 = bcnn_v8_load(s + 3 * (size_t)XT);
                bcnn_v8 a[4], c[4];
                a[0] = bcnn_v8_sub(bcnn_v8_neg(x0), x1);
                a[1] = bcnn_v8_sub(x0, x1);
                a[2] = bcnn_v8_sub(x1, x0);
                a[3] = bcnn_v8_add(x0, x1);
                c[0] = bcnn_v8_sub(bcnn_v8_neg(x2), x3);
                c[1] = bcnn_v8_sub(x2, x3);
                c[2] = bcnn_v8_sub(x3, x2);
                c[3] = bcnn_v8_add(x2, x3);
                for (int j = 0; j < 4; ++j)
                    for (int i = 0; i < 4; ++i)
                        bcnn_v8_store(t + (4 * j + i) * BCNN_TC_SLOT + 8 * h, bcnn_v8_add(a[i], c[j]));
            }
        }
    }
}

/* Input row r of x [H, W, C] into xt (columns 1 .. W of each channel's row; the rest stays zero). */
static inline void bcnn_tc_transpose(int W, int C, const float *xrow, float *xt, int XT)
{
    for (int j = 0; j < W; ++j)
        for (int c = 0; c < C; ++c)
            xt[(size_t)c * (size_t)XT + (size_t)j + 1u] = xrow[(size_t)j * (size_t)C + (size_t)c];
}

#define BCNN_TC_LOAD(q)                                                                       \
    float *u##q = acc + ((size_t)(q) * (size_t)NP + (size_t)n) * 8u;                          \
    bcnn_v8 s##q##0 = bcnn_v8_load(u##q), s##q##1 = bcnn_v8_load(u##q + 8);                  \
    bcnn_v8 s##q##2 = bcnn_v8_load(u##q + 128), s##q##3 = bcnn_v8_load(u##q + 136);            \
    const float *t##q = tp[q];
#define BCNN_TC_ADD(q)                                                                        \
    s##q##0 = bcnn_v8_add(s##q##0, bcnn_v8_load(t##q + i0));                                  \
    s##q##1 = bcnn_v8_add(s##q##1, bcnn_v8_load(t##q + i1));                                  \
    s##q##2 = bcnn_v8_add(s##q##2, bcnn_v8_load(t##q + i2));                                  \
    s##q##3 = bcnn_v8_add(s##q##3, bcnn_v8_load(t##q + i3));
#define BCNN_TC_ADD2(q)                                                                       \
    s##q##0 = bcnn_v8_add(s##q##0, bcnn_v8_load(t##q + BCNN_TC_ENTRY_FLOATS + j0));           \
    s##q##1 = bcnn_v8_add(s##q##1, bcnn_v8_load(t##q + BCNN_TC_ENTRY_FLOATS + j1));           \
    s##q##2 = bcnn_v8_add(s##q##2, bcnn_v8_load(t##q + BCNN_TC_ENTRY_FLOATS + j2));           \
    s##q##3 = bcnn_v8_add(s##q##3, bcnn_v8_load(t##q + BCNN_TC_ENTRY_FLOATS + j3));           \
    t##q += 2 * BCNN_TC_ENTRY_FLOATS;
#define BCNN_TC_STORE(q)                                                                      \
    bcnn_v8_store(u##q, s##q##0);                                                             \
    bcnn_v8_store(u##q + 8, s##q##1);                                                         \
    bcnn_v8_store(u##q + 128, s##q##2);                                                       \
    bcnn_v8_store(u##q + 136, s##q##3);

/* The sums of BCNN_TC_P pixel blocks (block q's table rows for dy = 0, 1, 2 at base[3q + dy]) over
 * all KG = 9 CG groups, for the NP outputs (N rounded up to 32), into acc [P][NP][8]. */
static inline void bcnn_tc_products(int CG, int NP, const uint8_t *W, const float *const *base, float *acc)
{
    size_t KG = 9u * (size_t)CG;
    /* the sums start from +0, as bcnn_bgemm's do (0 + e is e, and +0 for e = -0) */
    for (size_t i = 0; i < BCNN_TC_P * (size_t)NP * 8u; i += 8)
        bcnn_v8_store(acc + i, bcnn_v8_zero());
    for (int n0 = 0; n0 < NP; n0 += BCNN_TC_NR) {
        int n1 = BCNN_MIN(NP, n0 + BCNN_TC_NR);
        for (int dd = 0; dd < 9; ++dd) {
            for (int c0 = 0; c0 < CG; c0 += BCNN_TC_CHUNK) {
                int gn = BCNN_MIN(BCNN_TC_CHUNK, CG - c0), g0 = dd * CG + c0;
                const float *tp[BCNN_TC_P];
                for (int q = 0; q < BCNN_TC_P; ++q)
                    tp[q] = base[3 * q + dd / 3] + dd % 3 + (size_t)c0 * BCNN_TC_ENTRY_FLOATS;
                /* the quads n = 32 b + r, r = 0, 2, .., 14: bytes r, r+1 of each group of block b */
                const uint8_t *wq = W + ((size_t)(n0 / BCNN_BLOCK) * KG + (size_t)g0) * 16u;
                for (int n = n0; n < n1; n += 2, wq += 2) {
                    const uint8_t *w = wq;
                    if (n % BCNN_BLOCK == 16) {
                        n += 16;
                        wq += 16u * KG - 16u;
                        w = wq;
                        if (n >= n1)
                            break;
                    }
                    BCNN_TC_REP(BCNN_TC_LOAD)
                    /* two groups per turn: the second group's entries at a constant displacement */
                    for (const uint8_t *wend = w + 16 * (gn & ~1); w < wend; w += 32) {
                        unsigned b0 = w[0], b1 = w[1], c0 = w[16], c1 = w[17];
                        size_t i0 = (size_t)(b0 & 15u) * BCNN_TC_SLOT, i1 = (size_t)(b1 & 15u) * BCNN_TC_SLOT;
                        size_t i2 = (size_t)(b0 >> 4) * BCNN_TC_SLOT, i3 = (size_t)(b1 >> 4) * BCNN_TC_SLOT;
                        size_t j0 = (size_t)(c0 & 15u) * BCNN_TC_SLOT, j1 = (size_t)(c1 & 15u) * BCNN_TC_SLOT;
                        size_t j2 = (size_t)(c0 >> 4) * BCNN_TC_SLOT, j3 = (size_t)(c1 >> 4) * BCNN_TC_SLOT;
                        BCNN_TC_REP(BCNN_TC_ADD)
                        BCNN_TC_REP(BCNN_TC_ADD2)
                    }
                    if (gn & 1) {
                        unsigned b0 = w[0], b1 = w[1];
                        size_t i0 = (size_t)(b0 & 15u) * BCNN_TC_SLOT, i1 = (size_t)(b1 & 15u) * BCNN_TC_SLOT;
                        size_t i2 = (size_t)(b0 >> 4) * BCNN_TC_SLOT, i3 = (size_t)(b1 >> 4) * BCNN_TC_SLOT;
                        BCNN_TC_REP(BCNN_TC_ADD)
                    }
                    BCNN_TC_REP(BCNN_TC_STORE)
                }
            }
        }
    }
}

/* The block's pool and affine (bcnn_runtime.h's bcnn_pool_row and bcnn_affine, the same operations
 * as separate passes) on the rows of u that became complete: `*done` of them were processed before. */
static inline void bcnn_tc_post(int H, int W, int N, int complete, int pool, const float *a, const float *c,
                                int relu, float *u, int *done)
{
    int W2 = W / 2;
    for (; pool && 2 * *done + 2 <= complete && *done < H / 2; ++*done) {
        bcnn_pool_row(W, N, u, *done);
        bcnn_affine(W2, N, u + (size_t)*done * (size_t)W2 * (size_t)N, N, a, c, relu);
    }
    for (; !pool && *done < complete; ++*done)
        bcnn_affine(W, N, u + (size_t)*done * (size_t)W * (size_t)N, N, a, c, relu);
}

/* u [H, W, N] = conv3x3(x [H, W, C], W), C % 4 == 0; work: BCNN_TCONV_FLOATS(H, W, C, N) floats. With
 * a != NULL, each row pair (pool) or row is then pooled and its affine applied as soon as it is
 * complete, while it is in cache (u [H/2, W/2, N] with pool). */
static inline void bcnn_tconv3(int H, int W, int C, int N, const float *x, const uint8_t *w, float *u, float *work,
                               int pool, const float *a, const float *c, int relu)
{
    int done = 0;
    int XB = (W + 7) / 8, CG = C / 4, XT = 8 * XB + 16, NP = (N + BCNN_BLOCK - 1) / BCNN_BLOCK * BCNN_BLOCK;
    size_t xs = BCNN_TC_XS(C), rowf = BCNN_TC_ROWF(W, C);
    float *zero = work, *ring = zero + rowf, *xt = ring + BCNN_TC_RING * rowf, *acc = xt + (size_t)C * (size_t)XT;
    int blocks = H * XB, next = 0;
    for (size_t i = 0; i < (size_t)C * (size_t)XT; ++i)
        xt[i] = 0.0f;
    bcnn_tc_build(XB, CG, xs, xt, XT, zero);
    for (int f0 = 0; f0 < blocks; f0 += BCNN_TC_P) {
        int last = BCNN_MIN(f0 + BCNN_TC_P, blocks) - 1;
        const float *base[3 * BCNN_TC_P];
        for (; next <= last / XB + 1 && next < H; ++next) {
            bcnn_tc_transpose(W, C, x + (size_t)next * (size_t)W * (size_t)C, xt, XT);
            bcnn_tc_build(XB, CG, xs, xt, XT, ring + (size_t)(next % BCNN_TC_RING) * rowf);
        }
        for (int q = 0; q < BCNN_TC_P; ++q) {
            int f = BCNN_MIN(f0 + q, last), i = f / XB, xb = f % XB;
            for (int dy = 0; dy < 3; ++dy) {
                int r = i + dy - 1;
                const float *row = r < 0 || r >= H ? zero : ring + (size_t)(r % BCNN_TC_RING) * rowf;
                base[3 * q + dy] = row + (size_t)xb * xs;
            }
        }
        bcnn_tc_products(CG, NP, w, base, acc);
        for (int q = 0; q <= last - f0; ++q) {
            int i = (f0 + q) / XB, j0 = 8 * ((f0 + q) % XB);
            const float *sums = acc + (size_t)q * (size_t)NP * 8u;
            for (int l = 0; l < 8 && j0 + l < W; ++l) {
                float *d = u + ((size_t)i * (size_t)W + (size_t)(j0 + l)) * (size_t)N;
                for (int n = 0; n < N; ++n)
                    d[n] = sums[(size_t)n * 8u + (size_t)l];
            }
        }
        if (a != NULL)
            bcnn_tc_post(H, W, N, (last + 1) / XB, pool, a, c, relu, u, &done);
    }
}

#endif
