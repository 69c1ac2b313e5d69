/* Timing program of benchmarks/bench_bgemm.py: bcnn_bgemm (the path compiled in) on shapes MxKxN.
 *
 *   bench_bgemm time SECONDS SHAPE...   per shape, after two untimed calls, calls it until SECONDS
 *                                       have passed; prints "M K N calls seconds_per_call"
 *   bench_bgemm count CALLS SHAPE...    per shape, CALLS calls and nothing else (for callgrind)
 *   bench_bgemm clock                   the clock in GHz, from a chain of dependent additions
 *
 * X is uniform in [-1, 1), W random bytes: the kernels do the same work whatever the values.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bcnn_bgemm.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int run(int timing, double arg, int M, int K, int N)
{
    size_t nw = bcnn_bgemm_bytes(K, N);
    float *X = malloc(sizeof(float) * (size_t)M * (size_t)K), *Y = malloc(sizeof(float) * (size_t)M * (size_t)N);
    float *S = malloc(sizeof(float) * (size_t)BCNN_BGEMM_SCRATCH_FLOATS(M, K));
    uint8_t *W = malloc(nw);
    long calls = 0;
    double start, elapsed;
    if (!X || !Y || !S || !W)
        return 1;
    for (size_t i = 0; i < nw; ++i)
        W[i] = (uint8_t)(rand() >> 7);
    for (size_t i = 0; i < (size_t)M * (size_t)K; ++i)
        X[i] = (float)rand() / ((float)RAND_MAX + 1.0f) * 2.0f - 1.0f;
    if (timing) {
        bcnn_bgemm(M, K, N, X, K, W, Y, N, S);
        bcnn_bgemm(M, K, N, X, K, W, Y, N, S);
        start = now();
        do {
            bcnn_bgemm(M, K, N, X, K, W, Y, N, S);
            ++calls;
            elapsed = now() - start;
        } while (elapsed < arg);
        printf("%d %d %d %ld %.9e\n", M, K, N, calls, elapsed / (double)calls);
    } else {
        for (calls = 0; calls < (long)arg; ++calls)
            bcnn_bgemm(M, K, N, X, K, W, Y, N, S);
    }
    free(X);
    free(Y);
    free(S);
    free(W);
    return 0;
}

/* x86-64: 8 dependent register additions per iteration, 1 cycle each. */
static int clock_ghz(void)
{
#if defined(__x86_64__)
    long x = 0, n = 50000000;
    double best = 1e9;
    for (int r = 0; r < 5; ++r) {
        double t = now();
        for (long i = 0; i < n; ++i)
            __asm__ volatile("add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\t"
                             "add %1, %0\n\tadd %1, %0\n\tadd %1, %0\n\tadd %1, %0" : "+r"(x) : "r"(i));
        t = now() - t;
        best = t < best ? t : best;
    }
    printf("clock %.3f\n", 8e-9 * (double)n / best);
    return x == 1;
#else
    return 1;
#endif
}

int main(int argc, char **argv)
{
    int timing;
    if (argc == 2 && strcmp(argv[1], "clock") == 0)
        return clock_ghz();
    timing = argc > 2 && strcmp(argv[1], "time") == 0;
    if (argc < 4 || (!timing && strcmp(argv[1], "count") != 0)) {
        fprintf(stderr, "usage: %s time SECONDS|count CALLS MxKxN...\n", argv[0]);
        return 2;
    }
    printf("path %s\n", bcnn_bgemm_path());
    for (int i = 3; i < argc; ++i) {
        int M, K, N;
        if (sscanf(argv[i], "%dx%dx%d", &M, &K, &N) != 3 || M < 1 || K < 1 || N < 1) {
            fprintf(stderr, "bad shape %s, expected MxKxN\n", argv[i]);
            return 2;
        }
        if (run(timing, atof(argv[2]), M, K, N))
            return 1;
    }
    return 0;
}
