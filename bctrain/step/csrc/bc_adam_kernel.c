/* bcnn: Adam (Lasagne's form, as the BinaryConnect authors' code) in one pass over memory.
 *
 * For i in [0, n), with g_i = g[i] / g_div (g in float32, or in bfloat16 as 16-bit words):
 *     m_i <- fma(b1, m_i, c1 * g_i)            c1 = 1 - b1, rounded to float32 once
 *     v_i <- fma(b2, v_i, c2 * (g_i * g_i))    c2 = 1 - b2
 *     w_i <- w_i - (size * m_i) / (sqrt(v_i) + eps), then clip to [-h, h] if h > 0
 * `size` is the step's scalar (lr, bias corrections and the layer's lr_scale; bctrain/paper/optim.py).
 * This is the float32 arithmetic XLA's CPU back end compiles bctrain.paper.optim's update to (it
 * contracts b*x + c*y into fma(b, x, c*y) on a CPU with FMA), so the two agree bit for bit there;
 * the point is the memory traffic: w, m, v, g read once and w, m, v written once, where XLA makes
 * three passes (docs/BENCHMARKS.md). Optionally the same pass writes the next step's binary weights
 * wb_i = w_i >= 0 ? +wb_value : -wb_value, in float32 or as a 16-bit word (bfloat16 or float16,
 * whose bits for +wb_value are wb_word), so that the step needs no separate binarization pass.
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

/* The clip is written with comparisons (not fminf/fmaxf, which GCC does not vectorise here).
 * STORE_WB writes the new binary weight (sign(0) = +1, bctrain/paper/binarize.py) or nothing. */
#define BC_ADAM_ONE_WEIGHT(LOAD_G, STORE_WB)                                    \
    {                                                                           \
        float gi = LOAD_G;                                                      \
        if (div) gi = gi / p.g_div;                                             \
        const float mi = fmaf(p.b1, m[i], p.c1 * gi);                           \
        const float vi = fmaf(p.b2, v[i], p.c2 * (gi * gi));                    \
        m[i] = mi;                                                              \
        v[i] = vi;                                                              \
        float wi = w[i] - (p.size * mi) / (sqrtf(vi) + p.eps);                  \
        if (clip) wi = wi < -p.h ? -p.h : (wi > p.h ? p.h : wi);                \
        w[i] = wi;                                                              \
        STORE_WB;                                                               \
    }

/* Chunks of BC_CHUNK weights (a loop of constant length, which GCC vectorises), each after a
 * software prefetch of the lines of w, m, v and g BC_AHEAD weights further on: with the hardware
 * prefetchers alone the update of the `mnist` net's 10 M weights took 6.2-6.5 ms in
 * `benchmarks.bench_train`, with this 5.1-5.3 ms in four runs of six (6.3 in two; docs/BENCHMARKS.md). */
#define BC_CHUNK 64
#define BC_AHEAD 512
#define BC_PREFETCH(ptr, at)                                                    \
    for (int k = 0; k < BC_CHUNK * (int)sizeof(*(ptr)); k += 64)                \
        __builtin_prefetch((const char *)((ptr) + (at)) + k, 0, 3)
#define BC_ADAM_BODY(LOAD_G, STORE_WB)                                          \
    int64_t i0 = 0;                                                             \
    for (; i0 + BC_CHUNK <= n; i0 += BC_CHUNK) {                                \
        if (i0 + BC_AHEAD + BC_CHUNK <= n) {                                    \
            BC_PREFETCH(w, i0 + BC_AHEAD);                                      \
            BC_PREFETCH(m, i0 + BC_AHEAD);                                      \
            BC_PREFETCH(v, i0 + BC_AHEAD);                                      \
            BC_PREFETCH(g, i0 + BC_AHEAD);                                      \
        }                                                                       \
        for (int64_t i = i0; i < i0 + BC_CHUNK; ++i) BC_ADAM_ONE_WEIGHT(LOAD_G, STORE_WB) \
    }                                                                           \
    for (int64_t i = i0; i < n; ++i) BC_ADAM_ONE_WEIGHT(LOAD_G, STORE_WB)

#define BC_NO_WB (void)wb
#define BC_WB32 ((float *)wb)[i] = wi >= 0.0f ? p.wb_value : -p.wb_value
#define BC_WB16 ((uint16_t *)wb)[i] = wi >= 0.0f ? word : (uint16_t)(word ^ 0x8000u)

#define BC_ADAM_ONE(NAME, ATTR, GT, LOAD_G, STORE_WB)                                             \
    ATTR static void NAME(float *restrict w, float *restrict m, float *restrict v,               \
                          const GT *restrict g, void *restrict wb, int64_t n, bc_adam_params p,  \
                          int div, int clip) {                                                    \
        const uint16_t word = (uint16_t)p.wb_word;                                                \
        (void)word;                                                                               \
        BC_ADAM_BODY(LOAD_G, STORE_WB)                                                            \
    }

typedef void (*bc_adam_fn)(float *, float *, float *, const void *, void *, int64_t, bc_adam_params,
                           int, int);

/* Six functions per code path: g float32 or bfloat16, times no wb, float32 wb, 16-bit wb. */
#define BC_ADAM_VARIANT(NAME, ATTR)                                                               \
    BC_ADAM_ONE(NAME##_f32, ATTR, float, g[i], BC_NO_WB)                                          \
    BC_ADAM_ONE(NAME##_f32_wb32, ATTR, float, g[i], BC_WB32)                                      \
    BC_ADAM_ONE(NAME##_f32_wb16, ATTR, float, g[i], BC_WB16)                                      \
    BC_ADAM_ONE(NAME##_bf16, ATTR, uint16_t, bf16_to_float(g[i]), BC_NO_WB)                       \
    BC_ADAM_ONE(NAME##_bf16_wb32, ATTR, uint16_t, bf16_to_float(g[i]), BC_WB32)                   \
    BC_ADAM_ONE(NAME##_bf16_wb16, ATTR, uint16_t, bf16_to_float(g[i]), BC_WB16)                   \
    static const bc_adam_fn NAME##_fns[2][3] = {                                                  \
        {(bc_adam_fn)NAME##_f32, (bc_adam_fn)NAME##_f32_wb32, (bc_adam_fn)NAME##_f32_wb16},       \
        {(bc_adam_fn)NAME##_bf16, (bc_adam_fn)NAME##_bf16_wb32, (bc_adam_fn)NAME##_bf16_wb16}};

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
                      void *wb, int wb_bits, int64_t n, bc_adam_params p) {
    const int div = p.g_div != 1.0f, clip = p.h > 0.0f;
    const int kind = wb == 0 ? 0 : (wb_bits == 32 ? 1 : (wb_bits == 16 ? 2 : -1));
    const bc_adam_fn(*fns)[3] = 0;
    if (kind < 0) return -1;
    if (strcmp(path, "portable") == 0) fns = portable_fns;
#if defined(__x86_64__) && defined(__GNUC__)
    if (strcmp(path, "avx512") == 0) fns = avx512_fns;
    if (strcmp(path, "avx2") == 0) fns = avx2_fns;
#endif
    if (fns == 0) return -1;
    fns[g_is_bf16 ? 1 : 0][kind](w, m, v, g, wb, n, p, div, clip);
    return 0;
}

int bc_adam_update(float *w, float *m, float *v, const void *g, int g_is_bf16, void *wb, int wb_bits,
                   int64_t n, bc_adam_params p) {
    return bc_adam_update_on(bc_adam_path(), w, m, v, g, g_is_bf16, wb, wb_bits, n, p);
}
