/* Timing driver of the XNOR-popcount blocks (benchmarks/bench_xnor.py; bcexport/c/csrc/bcnn_bnn.h).
 *
 *   bench_xnor time M K N SECONDS     CPU microseconds per bcnn_xnor_sign call on M rows, K x N
 *   bench_xnor clock                  the clock in GHz, from a chain of dependent additions
 * Both measure this thread's CPU time (CLOCK_THREAD_CPUTIME_ID), so that time spent waiting for
 * a core on a loaded machine is not counted. Random bits: the kernel's work does not depend on them.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bcnn_bnn.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int run(int M, int K, int N, double seconds)
{
    size_t rb = (size_t)BCNN_XROW_BYTES(K), ob = (size_t)BCNN_XROW_BYTES(N);
    uint8_t *X = malloc((size_t)M * rb), *W = malloc((size_t)N * rb), *Y = malloc((size_t)M * ob);
    int32_t *thr = malloc(sizeof(int32_t) * (size_t)N);
    int8_t *dir = malloc((size_t)N);
    long calls = 0;
    double start, elapsed;
    if (!X || !W || !Y || !thr || !dir)
        return 1;
    for (size_t i = 0; i < (size_t)M * rb; ++i)
        X[i] = (uint8_t)(rand() >> 7);
    for (size_t i = 0; i < (size_t)N * rb; ++i)
        W[i] = (uint8_t)(rand() >> 7);
    for (int n = 0; n < N; ++n) {
        thr[n] = 0;
        dir[n] = 1;
    }
    bcnn_xnor_sign(M, K, N, X, (int)rb, W, thr, dir, Y, (int)ob);
    start = now();
    do {
        bcnn_xnor_sign(M, K, N, X, (int)rb, W, thr, dir, Y, (int)ob);
        ++calls;
        elapsed = now() - start;
    } while (elapsed < seconds);
    printf("%s %.4f %u\n", bcnn_xnor_path(), 1e6 * elapsed / (double)calls, (unsigned)Y[0]);
    return 0;
}

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
    if (argc == 2 && argv[1][0] == 'c')
        return clock_ghz();
    if (argc == 6)
        return run(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atof(argv[5]));
    fprintf(stderr, "usage: bench_xnor time M K N SECONDS | bench_xnor clock\n");
    return 2;
}
