/* Test driver of bcnn_conv3 (tests/test_c_tconv.py), built natively or cross-compiled and run under
 * qemu. `driver path` prints the compiled path and whether it runs the table convolution. Otherwise
 * it reads cases from stdin until EOF, each: int32 H, W, C, N, R; float32 x[H*W*C]; uint8
 * W[bcnn_bgemm_bytes(9*C, N)], and writes per case float32 u[H*W*N] of bcnn_conv3 (the path's
 * conv: bcnn_tconv3 where BCNN_TCONV and C % 4 == 0), then float32 u[H*W*N] of im2col and the
 * portable bcnn_bgemm, R rows per product; then, for pool = 0 and 1, the output of bcnn_conv_block
 * (ReLU, fixed a and c) and of the separate passes on the im2col output (pooled: H/2*W/2*N floats).
 * The work buffer is misaligned by one float and followed
 * by GUARD floats of SENTINEL, which must survive (exit 3 otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcnn_runtime.h"

#define SENTINEL 1234.5f
#define GUARD 64

/* generated code sizes the work region with the macro: it must be an integer constant expression */
enum { WORK_AT_COMPILE_TIME = BCNN_CONV3_WORK_FLOATS(32, 128, 128, 16) };

static int read_all(void *p, size_t size, size_t n)
{
    return fread(p, size, n, stdin) == n;
}

int main(int argc, char **argv)
{
    int32_t h[5];
    if (argc > 1 && strcmp(argv[1], "path") == 0) {
        printf("%s %d %d\n", bcnn_bgemm_path(), (int)BCNN_TCONV, (int)WORK_AT_COMPILE_TIME);
        return 0;
    }
    while (fread(h, sizeof h[0], 5, stdin) == 5) {
        int H = h[0], W = h[1], C = h[2], N = h[3], R = h[4], K = 9 * C;
        size_t nx = (size_t)H * (size_t)W * (size_t)C, nu = (size_t)H * (size_t)W * (size_t)N;
        size_t nw = bcnn_bgemm_bytes(K, N), nwork = (size_t)BCNN_CONV3_WORK_FLOATS(W, C, N, R);
        size_t ns = (size_t)BCNN_MAX(BCNN_BGEMM_SCRATCH_FLOATS(R, K), BCNN_PORTABLE_SCRATCH_FLOATS(K));
        float *x = malloc(nx * sizeof *x), *u = malloc(nu * sizeof *u), *v = malloc(nu * sizeof *v);
        float *work = malloc((nwork + 1 + GUARD) * sizeof *work), *s = malloc(ns * sizeof *s);
        float *patches = malloc((size_t)R * (size_t)K * sizeof *patches);
        uint8_t *w = malloc(nw);
        float *a = malloc((size_t)N * sizeof *a), *c = malloc((size_t)N * sizeof *c);
        if (H < 1 || W < 1 || C < 1 || N < 1 || R < 1 || !x || !u || !v || !work || !s || !patches || !w || !a || !c) {
            fprintf(stderr, "bad case %d %d %d %d %d\n", H, W, C, N, R);
            return 2;
        }
        if (!read_all(x, sizeof *x, nx) || !read_all(w, 1, nw)) {
            fprintf(stderr, "truncated case\n");
            return 2;
        }
        for (size_t i = 0; i < nwork + 1 + GUARD; ++i)
            work[i] = SENTINEL;
        bcnn_conv3(H, W, C, N, R, x, w, u, work + 1, s);
        for (size_t i = 0; i < GUARD; ++i) {
            if (work[nwork + 1 + i] != SENTINEL || work[0] != SENTINEL) {
                fprintf(stderr, "work overrun: H=%d W=%d C=%d N=%d needs more than %zu floats\n", H, W, C, N, nwork);
                return 3;
            }
        }
        for (int p0 = 0; p0 < H * W; p0 += R) {
            int rows = BCNN_MIN(R, H * W - p0);
            bcnn_im2col3(H, W, C, x, p0, rows, patches);
            bcnn_bgemm_portable(rows, K, N, patches, K, w, v + (size_t)p0 * (size_t)N, N, s);
        }
        fwrite(u, sizeof *u, nu, stdout);
        fwrite(v, sizeof *v, nu, stdout);
        for (int pool = 0; pool < 2; ++pool) {   /* the whole block, against the separate passes */
            size_t np = pool ? (size_t)(H / 2) * (size_t)(W / 2) * (size_t)N : nu;
            for (int n = 0; n < N; ++n) {
                a[n] = (float)(n % 7 - 2) * 0.37f;   /* zero and negative scales too */
                c[n] = (float)(n % 5 - 2) * 0.11f;
            }
            bcnn_conv_block(H, W, C, N, R, x, w, pool, a, c, 1, u, work + 1, s);
            if (pool)
                bcnn_maxpool2(H, W, N, v);
            bcnn_affine((int)(np / (size_t)N), N, v, N, a, c, 1);
            fwrite(u, sizeof *u, np, stdout);
            fwrite(v, sizeof *v, np, stdout);
            for (int p0 = 0; p0 < H * W; p0 += R) {
                int rows = BCNN_MIN(R, H * W - p0);
                bcnn_im2col3(H, W, C, x, p0, rows, patches);
                bcnn_bgemm_portable(rows, K, N, patches, K, w, v + (size_t)p0 * (size_t)N, N, s);
            }
        }
        free(x);
        free(u);
        free(v);
        free(work);
        free(s);
        free(patches);
        free(w);
        free(a);
        free(c);
    }
    return 0;
}
