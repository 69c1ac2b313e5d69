/* bcnn: Adam (Lasagne's form, as the BinaryConnect authors' code) in one pass over memory.
 *
 * For i in [0, n), with g_i = g[i] / g_div (g in float32, or in bfloat16 as 16-bit words):
 *     m_i <- fma(b1, m_i, c1 * g_i)            c1 = 1 - b1, rounded to float32 once
 *     v_i <- fma(b2, v_i, c2 * (g_i * g_i))    c2 = 1 - b2
 *     w_i <- w_i - (size * m_i) / (sqrt(v_i) + eps), then clip to [-h, h] if h > 0
 * `size` is the step's scalar (lr, bias corrections and the layer's lr_scale; bctrain/optim.py).
 * This is the float32 arithmetic XLA's CPU back end compiles bctrain.optim's update to (it
 * contracts b*x + c*y into fma(b, x, c*y) on a CPU with FMA), so the two agree bit for bit there;
 * the point is the memory traffic: w, m, v, g read once and w, m, v written once, where XLA makes
 * three passes (docs/BENCHMARKS.md).
 *
 * No TensorFlow here: bc_adam_op.cc wraps it as a TensorFlow op, and the tests build it alone.
 * x86-64: AVX-512 and AVX2 variants chosen at run time, a portable one otherwise. Build with
 * -O3 -fno-math-errno -ffp-contract=off (no contraction beyond the two fma calls above).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "bc_adam_kernel.h"

static inline float bf16_to_float(uint16_t bits) {
    uint32_t u = (uint32_t)bits << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* The clip is written with comparisons (not fminf/fmaxf, which GCC does not vectorise here). */
#define BC_ADAM_BODY(LOAD_G)                                                    \
    for (int64_t i = 0; i < n; ++i) {                                           \
        float gi = LOAD_G;                                                      \
        if (div) gi = gi / p.g_div;                                             \
        const float mi = fmaf(p.b1, m[i], p.c1 * gi);                           \
        const float vi = fmaf(p.b2, v[i], p.c2 * (gi * gi));                    \
        m[i] = mi;                                                              \
        v[i] = vi;                                                              \
        float wi = w[i] - (p.size * mi) / (sqrtf(vi) + p.eps);                  \
        if (clip) wi = wi < -p.h ? -p.h : (wi > p.h ? p.h : wi);                \
        w[i] = wi;                                                              \
    }

#define BC_ADAM_VARIANT(NAME, ATTR)                                                              \
    ATTR static void NAME##_f32(float *restrict w, float *restrict m, float *restrict v,        \
                                const float *restrict g, int64_t n, bc_adam_params p, int div,  \
                                int clip) {                                                      \
        BC_ADAM_BODY(g[i])                                                                       \
    }                                                                                            \
    ATTR static void NAME##_bf16(float *restrict w, float *restrict m, float *restrict v,       \
                                 const uint16_t *restrict g, int64_t n, bc_adam_params p,       \
                                 int div, int clip) {                                            \
        BC_ADAM_BODY(bf16_to_float(g[i]))                                                        \
    }

#if defined(__x86_64__) && defined(__GNUC__)
BC_ADAM_VARIANT(avx512, __attribute__((target("avx512f,avx512bw,avx512vl,fma,prefer-vector-width=512"))))
BC_ADAM_VARIANT(avx2, __attribute__((target("avx2,fma"))))
#endif
BC_ADAM_VARIANT(portable, )

const char *bc_adam_path(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return "avx512";
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
#endif
    return "portable";
}

int bc_adam_update_on(const char *path, float *w, float *m, float *v, const void *g, int g_is_bf16,
                      int64_t n, bc_adam_params p) {
    const int div = p.g_div != 1.0f, clip = p.h > 0.0f;
    if (strcmp(path, "portable") == 0) {
        if (g_is_bf16) portable_bf16(w, m, v, g, n, p, div, clip);
        else portable_f32(w, m, v, g, n, p, div, clip);
        return 0;
    }
#if defined(__x86_64__) && defined(__GNUC__)
    if (strcmp(path, "avx512") == 0) {
        if (g_is_bf16) avx512_bf16(w, m, v, g, n, p, div, clip);
        else avx512_f32(w, m, v, g, n, p, div, clip);
        return 0;
    }
    if (strcmp(path, "avx2") == 0) {
        if (g_is_bf16) avx2_bf16(w, m, v, g, n, p, div, clip);
        else avx2_f32(w, m, v, g, n, p, div, clip);
        return 0;
    }
#endif
    return -1;
}

void bc_adam_update(float *w, float *m, float *v, const void *g, int g_is_bf16, int64_t n,
                    bc_adam_params p) {
    bc_adam_update_on(bc_adam_path(), w, m, v, g, g_is_bf16, n, p);
}
