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
 *     and one addition (no permute, no sign flip); BCNN_TC_P = 2 blocks of 8 pixels share each
 *     decoding, and one 32-bit load gives the 8 nibbles of a group for a register tile;
 *   - the sums are kept in registers for 8 outputs (bytes r .. r+3 of each group: outputs r .. r+3
 *     and r+16 .. r+19 of the block of 32) over BCNN_TC_CHUNK groups, in scratch between chunks (a
 *     float store is exact, so the order stays that of one sequential pass); a chunk's tables
 *     (2 blocks x 16 groups x 1 KB) stay in L1 while the tiles of up to BCNN_TC_NR outputs pass.
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

/* dst[l * ds + k] = src[k * ss + l] for k, l < 8: a copy, so any path gives the same bits. */
static inline void bcnn_tc_t8x8(const float *src, size_t ss, float *dst, size_t ds)
{
#if BCNN_BGEMM_PATH_ID == BCNN_PATH_NEON
    for (size_t l = 0; l < 8; ++l)
        for (size_t k = 0; k < 8; ++k)
            dst[l * ds + k] = src[k * ss + l];
#else
    __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ss), r2 = _mm256_loadu_ps(src + 2 * ss);
    __m256 r3 = _mm256_loadu_ps(src + 3 * ss), r4 = _mm256_loadu_ps(src + 4 * ss), r5 = _mm256_loadu_ps(src + 5 * ss);
    __m256 r6 = _mm256_loadu_ps(src + 6 * ss), r7 = _mm256_loadu_ps(src + 7 * ss);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1), t2 = _mm256_unpacklo_ps(r2, r3);
    __m256 t3 = _mm256_unpackhi_ps(r2, r3), t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    r0 = _mm256_shuffle_ps(t0, t2, 0x44);
    r1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    r2 = _mm256_shuffle_ps(t1, t3, 0x44);
    r3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    r4 = _mm256_shuffle_ps(t4, t6, 0x44);
    r5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    r6 = _mm256_shuffle_ps(t5, t7, 0x44);
    r7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst, _mm256_permute2f128_ps(r0, r4, 0x20));
    _mm256_storeu_ps(dst + ds, _mm256_permute2f128_ps(r1, r5, 0x20));
    _mm256_storeu_ps(dst + 2 * ds, _mm256_permute2f128_ps(r2, r6, 0x20));
    _mm256_storeu_ps(dst + 3 * ds, _mm256_permute2f128_ps(r3, r7, 0x20));
    _mm256_storeu_ps(dst + 4 * ds, _mm256_permute2f128_ps(r0, r4, 0x31));
    _mm256_storeu_ps(dst + 5 * ds, _mm256_permute2f128_ps(r1, r5, 0x31));
    _mm256_storeu_ps(dst + 6 * ds, _mm256_permute2f128_ps(r2, r6, 0x31));
    _mm256_storeu_ps(dst + 7 * ds, _mm256_permute2f128_ps(r3, r7, 0x31));
#endif
}

#if BCNN_TC_P != 2
#error "the register tile of bcnn_tc_products holds 2 pixel blocks"
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
    int j8 = C % 8 == 0 ? W / 8 * 8 : 0;
    for (int j = 0; j < j8; j += 8)
        for (int c = 0; c < C; c += 8)
            bcnn_tc_t8x8(xrow + (size_t)j * (size_t)C + (size_t)c, (size_t)C,
                         xt + (size_t)c * (size_t)XT + (size_t)j + 1u, (size_t)XT);
    for (int j = j8; j < W; ++j)
        for (int c = 0; c < C; ++c)
            xt[(size_t)c * (size_t)XT + (size_t)j + 1u] = xrow[(size_t)j * (size_t)C + (size_t)c];
}

/* Register tile: 8 outputs (n .. n+3, n+16 .. n+19 of a block of 32: the low and high nibbles of
 * weight bytes r .. r+3) for each of the BCNN_TC_P = 2 pixel blocks, 16 sums. */
#define BCNN_TC_O(S) S(0, 0) S(1, 8) S(2, 16) S(3, 24) S(4, 128) S(5, 136) S(6, 144) S(7, 152)
#define BCNN_TC_LOAD(k, off)                                                                  \
    bcnn_v8 a##k = first ? bcnn_v8_zero() : bcnn_v8_load(ua + (off));                         \
    bcnn_v8 b##k = first ? bcnn_v8_zero() : bcnn_v8_load(ub + (off));
#define BCNN_TC_STORE(k, off)                                                                 \
    bcnn_v8_store(ua + (off), a##k);                                                          \
    bcnn_v8_store(ub + (off), b##k);
/* entry k's offset, 16 floats per slot: nibble k of the word (low nibbles of its 4 bytes, then high) */
#define BCNN_TC_E(k, off)                                                                     \
    size_t e##k = (k) < 4 ? (size_t)((v >> (8 * (k))) << 4) & 0xF0u : (size_t)(v >> (8 * (k) - 32)) & 0xF0u;
#define BCNN_TC_ADD(k, off)                                                                   \
    a##k = bcnn_v8_add(a##k, bcnn_v8_load(t0 + e##k));                                        \
    b##k = bcnn_v8_add(b##k, bcnn_v8_load(t1 + e##k));

/* The sums of BCNN_TC_P = 2 pixel blocks (block q's table rows for dy = 0, 1, 2 at base[3q + dy])
 * over all KG = 9 CG groups, for the NP outputs (N rounded up to 32), into acc [2][NP][8]. Loop
 * order: output sweeps of BCNN_TC_NR, then groups in order (dd, then chunks of BCNN_TC_CHUNK
 * channel groups, whose 2 x 16 KB of tables stay in L1 while the sweep's register tiles pass over
 * them), then the tiles. One 32-bit load gives a tile's 8 weight nibbles of a group. */
static inline void bcnn_tc_products(int CG, int NP, const uint8_t *W, const float *const *base, float *acc)
{
    size_t KG = 9u * (size_t)CG;
    for (int n0 = 0; n0 < NP; n0 += BCNN_TC_NR) {
        int n1 = BCNN_MIN(NP, n0 + BCNN_TC_NR);
        for (int dd = 0; dd < 9; ++dd) {
            for (int c0 = 0; c0 < CG; c0 += BCNN_TC_CHUNK) {
                int gn = BCNN_MIN(BCNN_TC_CHUNK, CG - c0), g0 = dd * CG + c0;
                /* the sums start from +0, as bcnn_bgemm's do (0 + e is e, and +0 for e = -0) */
                int first = g0 == 0;
                const float *tb0 = base[dd / 3] + dd % 3 + (size_t)c0 * BCNN_TC_ENTRY_FLOATS;
                const float *tb1 = base[3 + dd / 3] + dd % 3 + (size_t)c0 * BCNN_TC_ENTRY_FLOATS;
                for (int n = n0; n < n1; n += n % BCNN_BLOCK == 12 ? 20 : 4) {
                    const uint8_t *w = W + ((size_t)(n / BCNN_BLOCK) * KG + (size_t)g0) * 16u + (size_t)(n % 32);
                    float *ua = acc + (size_t)n * 8u, *ub = acc + ((size_t)NP + (size_t)n) * 8u;
                    const float *t0 = tb0, *t1 = tb1;
                    BCNN_TC_O(BCNN_TC_LOAD)
                    for (const uint8_t *wend = w + 16 * gn; w < wend; w += 16) {
                        uint32_t v = (uint32_t)w[0] | (uint32_t)w[1] << 8 | (uint32_t)w[2] << 16 | (uint32_t)w[3] << 24;
                        BCNN_TC_O(BCNN_TC_E)
                        BCNN_TC_O(BCNN_TC_ADD)
                        t0 += BCNN_TC_ENTRY_FLOATS;
                        t1 += BCNN_TC_ENTRY_FLOATS;
                    }
                    BCNN_TC_O(BCNN_TC_STORE)
                }
            }
        }
    }
}

/* The block's pool and affine (bcnn_runtime.h's bcnn_pool_row and bcnn_affine, the same operations
 * as separate passes) on the rows of u that became complete: `*done` of them were processed before. */
#if BCNN_BGEMM_PATH_ID != BCNN_PATH_NEON
/* bcnn_pool_row 8 channels at a time (C % 8 == 0): maxps(a, b) is a > b ? a : b, as the scalar
 * expression, so the same bits. (The affine stays scalar: a vector multiply and add need not be
 * contracted into a fused multiply-add where the compiler contracts the scalar expression, as clang
 * does by default on FMA targets, and the bits would then differ.) */
static inline void bcnn_tc_pool_row(int W, int C, float *u, int i)
{
    int W2 = W / 2;
    for (int j = 0; j < W2; ++j) {
        const float *s00 = u + ((size_t)(2 * i) * (size_t)W + (size_t)(2 * j)) * (size_t)C;
        const float *s01 = s00 + C, *s10 = s00 + (size_t)W * (size_t)C, *s11 = s10 + C;
        float *d = u + ((size_t)i * (size_t)W2 + (size_t)j) * (size_t)C;
        for (int c = 0; c < C; c += 8) {
            __m256 m0 = _mm256_max_ps(_mm256_loadu_ps(s00 + c), _mm256_loadu_ps(s01 + c));
            __m256 m1 = _mm256_max_ps(_mm256_loadu_ps(s10 + c), _mm256_loadu_ps(s11 + c));
            _mm256_storeu_ps(d + c, _mm256_max_ps(m0, m1));
        }
    }
}
#define BCNN_TC_POOL_ROW(W, N, u, i) (N % 8 == 0 ? bcnn_tc_pool_row(W, N, u, i) : bcnn_pool_row(W, N, u, i))
#else
#define BCNN_TC_POOL_ROW(W, N, u, i) bcnn_pool_row(W, N, u, i)
#endif

static inline void bcnn_tc_post(int H, int W, int N, int complete, int pool, const float *a, const float *c,
                                int relu, float *u, int *done)
{
    int W2 = W / 2;
    for (; pool && 2 * *done + 2 <= complete && *done < H / 2; ++*done) {
        BCNN_TC_POOL_ROW(W, N, u, *done);
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
            float *d = u + ((size_t)i * (size_t)W + (size_t)j0) * (size_t)N;
            int n8 = j0 + 8 <= W ? N / 8 * 8 : 0;
            for (int n = 0; n < n8; n += 8)
                bcnn_tc_t8x8(sums + (size_t)n * 8u, 8u, d + n, (size_t)N);
            for (int l = 0; l < 8 && j0 + l < W; ++l)
                for (int n = n8; n < N; ++n)
                    d[(size_t)l * (size_t)N + (size_t)n] = sums[(size_t)n * 8u + (size_t)l];
        }
        if (a != NULL)
            bcnn_tc_post(H, W, N, (last + 1) / XB, pool, a, c, relu, u, &done);
    }
}

#endif
