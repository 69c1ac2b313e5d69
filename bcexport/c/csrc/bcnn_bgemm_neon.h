/* AArch64 NEON path of bcnn_bgemm (included by bcnn_bgemm.h, which states the contract).
 *
 * A group's 16-float table is 64 bytes, four q registers: TBL with four table registers looks up
 * 16 bytes, i.e. 4 floats, given the byte indices 4e, 4e+1, 4e+2, 4e+3 of each entry e. The 16
 * nibbles of 16 outputs become those indices with one shift, six zips and four ORs; each quarter
 * (4 outputs) then costs one TBL and one addition. One row at a time; inputs in chunks of groups
 * whose tables (portable bcnn_table16) go to scratch, partial sums continuing in Y as in the
 * portable path. Little-endian only (bcnn_bgemm.h selects it so).
 */
#ifndef BCNN_BGEMM_NEON_H
#define BCNN_BGEMM_NEON_H

#ifndef BCNN_BGEMM_H
#error "include bcnn_bgemm.h"
#endif

#include <arm_neon.h>

#define BCNN_BGEMM_KERNEL bcnn_bgemm_neon

/* q[j]: byte indices into a 64-byte table of the entries named by nibbles 4j .. 4j+3 of nib. */
static inline void bcnn_neon_index(uint8x16_t nib, uint8x16_t q[4])
{
    static const uint8_t bytes[16] = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3};
    uint8x16_t lanes = vld1q_u8(bytes), n4 = vshlq_n_u8(nib, 2);
    uint16x8_t z0 = vreinterpretq_u16_u8(vzip1q_u8(n4, n4)), z1 = vreinterpretq_u16_u8(vzip2q_u8(n4, n4));
    q[0] = vorrq_u8(vreinterpretq_u8_u16(vzip1q_u16(z0, z0)), lanes);
    q[1] = vorrq_u8(vreinterpretq_u8_u16(vzip2q_u16(z0, z0)), lanes);
    q[2] = vorrq_u8(vreinterpretq_u8_u16(vzip1q_u16(z1, z1)), lanes);
    q[3] = vorrq_u8(vreinterpretq_u8_u16(vzip2q_u16(z1, z1)), lanes);
}

#define BCNN_NEON_LOOKUP(j)                                                                   \
    lo##j = vaddq_f32(lo##j, vreinterpretq_f32_u8(vqtbl4q_u8(t, qlo[j])));                     \
    hi##j = vaddq_f32(hi##j, vreinterpretq_f32_u8(vqtbl4q_u8(t, qhi[j])));
#define BCNN_NEON_LOAD(j)                                                                     \
    float32x4_t lo##j = vld1q_f32(acc + 4 * j), hi##j = vld1q_f32(acc + 16 + 4 * j);
#define BCNN_NEON_STORE(j)                                                                    \
    vst1q_f32(acc + 4 * j, lo##j);                                                            \
    vst1q_f32(acc + 16 + 4 * j, hi##j);

/* Adds the chunk's entries (gn groups, tables at T, weights of the block at w) to acc[0..31]. */
static inline void bcnn_neon_block(const float *T, int gn, const uint8_t *w, float acc[32])
{
    BCNN_REP4(BCNN_NEON_LOAD)
    for (int g = 0; g < gn; ++g) {
        const uint8_t *tb = (const uint8_t *)(T + 16 * g);
        uint8x16x4_t t;
        uint8x16_t qlo[4], qhi[4], byte = vld1q_u8(w + 16 * g);
        t.val[0] = vld1q_u8(tb);
        t.val[1] = vld1q_u8(tb + 16);
        t.val[2] = vld1q_u8(tb + 32);
        t.val[3] = vld1q_u8(tb + 48);
        bcnn_neon_index(vandq_u8(byte, vdupq_n_u8(15)), qlo);
        bcnn_neon_index(vshrq_n_u8(byte, 4), qhi);
        BCNN_REP4(BCNN_NEON_LOOKUP)
    }
    BCNN_REP4(BCNN_NEON_STORE)
}

static inline void bcnn_bgemm_neon(int M, int K, int N, const float *X, int ldx, const uint8_t *W,
                                   float *Y, int ldy, float *scratch)
{
    int KG = BCNN_GROUPS(K);
    for (int m = 0; m < M; ++m) {
        const float *x = X + (size_t)m * (size_t)ldx;
        float *y = Y + (size_t)m * (size_t)ldy;
        for (int g0 = 0; g0 < KG; g0 += BCNN_NEON_CHUNK) {
            int gn = BCNN_MIN(BCNN_NEON_CHUNK, KG - g0);
            for (int g = 0; g < gn; ++g)
                bcnn_table16(scratch + 16 * g, x, 4 * (g0 + g), K);
            for (int n0 = 0; n0 < N; n0 += BCNN_BLOCK) {
                int nv = BCNN_MIN(BCNN_BLOCK, N - n0);
                float acc[32] = {0.0f};
                for (int i = 0; g0 > 0 && i < nv; ++i)
                    acc[i] = y[n0 + i];
                bcnn_neon_block(scratch, gn, W + ((size_t)(n0 / BCNN_BLOCK) * (size_t)KG + (size_t)g0) * 16u, acc);
                for (int i = 0; i < nv; ++i)
                    y[n0 + i] = acc[i];
            }
        }
    }
}

#endif
