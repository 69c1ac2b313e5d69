/* Test driver of bcnn_xnor_pop (tests/test_c_xnor.py), built natively or cross-compiled and run
 * under qemu. `driver path` prints the compiled path. Otherwise it reads cases from stdin until
 * EOF, each: int32 R (rows), N (weight rows), words, offset; uint8 X[R * 8 * words],
 * W[N * 8 * words], and writes uint32 P[R * N] (P[r * N + n] = popcount(X_r XOR W_n)) to stdout.
 * The rows are read from `offset` bytes into their buffers, so that no path can rely on alignment.
 * bcnn_xnor_pop4 (and bcnn_xnor_pop4_next where 8 rows follow) must give bcnn_xnor_pop's counts
 * on every 4 consecutive weight rows (exit 4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcnn_xnor.h"

int main(int argc, char **argv)
{
    int32_t h[4];
    if (argc > 1 && strcmp(argv[1], "path") == 0) {
        printf("%s\n", bcnn_xnor_path());
        return 0;
    }
    while (fread(h, sizeof h[0], 4, stdin) == 4) {
        int R = h[0], N = h[1], words = h[2], off = h[3];
        size_t row = 8u * (size_t)words;
        uint8_t *X = malloc((size_t)R * row + (size_t)off + 1), *W = malloc((size_t)N * row + (size_t)off + 1);
        uint32_t *P = malloc((size_t)R * (size_t)N * sizeof *P);
        if (R < 1 || N < 1 || words < 1 || off < 0 || !X || !W || !P) {
            fprintf(stderr, "bad case %d %d %d %d\n", R, N, words, off);
            return 2;
        }
        if (fread(X + off, 1, (size_t)R * row, stdin) != (size_t)R * row
            || fread(W + off, 1, (size_t)N * row, stdin) != (size_t)N * row) {
            fprintf(stderr, "truncated case\n");
            return 2;
        }
        for (int r = 0; r < R; ++r) {
            const uint8_t *x = X + off + (size_t)r * row;
            for (int n = 0; n < N; ++n)
                P[(size_t)r * (size_t)N + (size_t)n] = bcnn_xnor_pop(x, W + off + (size_t)n * row, words);
            for (int n = 0; n + 4 <= N; ++n) {     /* every window of 4 rows, against bcnn_xnor_pop */
                uint32_t p4[4], q4[4];
                bcnn_xnor_pop4(x, W + off + (size_t)n * row, row, words, p4);
                if (n + 8 <= N)
                    bcnn_xnor_pop4_next(x, W + off + (size_t)n * row, row, words, q4);
                for (int i = 0; i < 4; ++i)
                    if (p4[i] != P[(size_t)r * (size_t)N + (size_t)(n + i)]
                        || (n + 8 <= N && q4[i] != p4[i])) {
                        fprintf(stderr, "bcnn_xnor_pop4(_next) row %d differs from bcnn_xnor_pop\n", i);
                        return 4;
                    }
            }
        }
        fwrite(P, sizeof *P, (size_t)R * (size_t)N, stdout);
        free(X);
        free(W);
        free(P);
    }
    return 0;
}
