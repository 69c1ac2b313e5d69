/* Test driver of bcnn_bgemm (tests/test_c_bgemm.py), built natively or cross-compiled and run
 * under qemu. `driver path` prints the compiled path. Otherwise it reads cases from stdin until
 * EOF, each: int32 M, K, N, ldx, ldy; float32 X[M*ldx]; uint8 W[bcnn_bgemm_bytes(K, N)], and
 * writes float32 Y[M*ldy] per case to stdout. Y starts filled with SENTINEL (the columns n >= N
 * must keep it); the scratch is misaligned by one float and followed by GUARD floats of SENTINEL,
 * which must survive (exit 3 otherwise). -DBGEMM_DRIVER_REF runs bcnn_bgemm_ref instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcnn_bgemm.h"

#define SENTINEL 1234.5f
#define GUARD 64

/* generated code sizes static buffers with the macro: it must be an integer constant expression */
enum { SCRATCH_AT_COMPILE_TIME = BCNN_BGEMM_SCRATCH_FLOATS(256, 1152) };

static int read_all(void *p, size_t size, size_t n)
{
    return fread(p, size, n, stdin) == n;
}

int main(int argc, char **argv)
{
    int32_t h[5];
    if (argc > 1 && strcmp(argv[1], "path") == 0) {
        printf("%s %d\n", bcnn_bgemm_path(), (int)SCRATCH_AT_COMPILE_TIME);
        return 0;
    }
    while (fread(h, sizeof h[0], 5, stdin) == 5) {
        int M = h[0], K = h[1], N = h[2], ldx = h[3], ldy = h[4];
        size_t nx = (size_t)M * (size_t)ldx, ny = (size_t)M * (size_t)ldy, nw = bcnn_bgemm_bytes(K, N);
        size_t ns = (size_t)BCNN_BGEMM_SCRATCH_FLOATS(M, K);
        float *X = malloc(nx * sizeof *X), *Y = malloc(ny * sizeof *Y);
        float *S = malloc((ns + 1 + GUARD) * sizeof *S);
        uint8_t *W = malloc(nw);
        if (M < 1 || K < 1 || N < 1 || ldx < K || ldy < N || !X || !Y || !S || !W) {
            fprintf(stderr, "bad case %d %d %d %d %d\n", M, K, N, ldx, ldy);
            return 2;
        }
        if (!read_all(X, sizeof *X, nx) || !read_all(W, 1, nw)) {
            fprintf(stderr, "truncated case\n");
            return 2;
        }
        for (size_t i = 0; i < ny; ++i)
            Y[i] = SENTINEL;
        for (size_t i = 0; i < ns + 1 + GUARD; ++i)
            S[i] = SENTINEL;
#ifdef BGEMM_DRIVER_REF
        bcnn_bgemm_ref(M, K, N, X, ldx, W, Y, ldy);
#else
        bcnn_bgemm(M, K, N, X, ldx, W, Y, ldy, S + 1);
#endif
        for (size_t i = 0; i < GUARD; ++i) {
            if (S[ns + 1 + i] != SENTINEL || S[0] != SENTINEL) {
                fprintf(stderr, "scratch overrun: M=%d K=%d needs more than %zu floats\n", M, K, ns);
                return 3;
            }
        }
        fwrite(Y, sizeof *Y, ny, stdout);
        free(X);
        free(Y);
        free(S);
        free(W);
    }
    return 0;
}
