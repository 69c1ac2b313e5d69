/* Portable C99 path of bcnn_bgemm (included by bcnn_bgemm.h, which states the contract).
 *
 * One row at a time. The inputs are taken in chunks of BCNN_PORTABLE_CHUNK groups (bcnn_scratch.h):
 * the chunk's tables (16 floats per group) go to scratch, then every output adds one table entry per group,
 * continuing from the partial sum the previous chunk left in Y (a float store is exact, so the
 * summation order is that of one sequential pass). Scratch stays at most 2 KB whatever K is,
 * which is what a microcontroller can spare.
 */
#ifndef BCNN_BGEMM_PORTABLE_H
#define BCNN_BGEMM_PORTABLE_H

#ifndef BCNN_BGEMM_H
#error "include bcnn_bgemm.h"
#endif


/* Adds the chunk's table entries for outputs n0 .. n0+15 (low nibbles) and n0+16 .. n0+31 (high),
   where w points at the chunk's first group of the block; only outputs below n_end are stored. */
static inline void bcnn_portable_block(const float *T, int gn, const uint8_t *w, float *y,
                                       int n0, int n_end, int first)
{
    for (int r = 0; r < 16 && n0 + r < n_end; ++r) {
        int has_hi = n0 + 16 + r < n_end;
        float lo = first ? 0.0f : y[n0 + r];
        float hi = first || !has_hi ? 0.0f : y[n0 + 16 + r];
        const uint8_t *wr = w + r;
        for (const float *t = T; t < T + 16 * gn; t += 16, wr += 16) {
            unsigned byte = *wr;
            lo += t[byte & 15u];
            hi += t[byte >> 4];
        }
        y[n0 + r] = lo;
        if (has_hi)
            y[n0 + 16 + r] = hi;
    }
}

static inline void bcnn_bgemm_portable(int M, int K, int N, const float *X, int ldx,
                                       const uint8_t *W, float *Y, int ldy, float *scratch)
{
    int KG = BCNN_GROUPS(K), NB = (N + BCNN_BLOCK - 1) / BCNN_BLOCK;
    for (int m = 0; m < M; ++m) {
        const float *x = X + (size_t)m * (size_t)ldx;
        float *y = Y + (size_t)m * (size_t)ldy;
        for (int g0 = 0; g0 < KG; g0 += BCNN_PORTABLE_CHUNK) {
            int gn = BCNN_MIN(BCNN_PORTABLE_CHUNK, KG - g0);
            for (int g = 0; g < gn; ++g)
                bcnn_table16(scratch + 16 * g, x, 4 * (g0 + g), K);
            for (int b = 0; b < NB; ++b)
                bcnn_portable_block(scratch, gn, W + ((size_t)b * (size_t)KG + (size_t)g0) * 16u, y,
                                    BCNN_BLOCK * b, N, g0 == 0);
        }
    }
}

#endif
