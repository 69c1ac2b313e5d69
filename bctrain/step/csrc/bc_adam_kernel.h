/* bcnn: the fused Adam step of bc_adam_kernel.c (C99, no TensorFlow). */
#ifndef BC_ADAM_KERNEL_H
#define BC_ADAM_KERNEL_H
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    float b1, c1, b2, c2;  /* beta1, 1 - beta1, beta2, 1 - beta2 (each rounded to float32 once) */
    float eps;             /* added to sqrt(v) */
    float h;               /* clip w to [-h, h]; h <= 0: no clip */
    float size;            /* the step's scalar: w <- w - size * m / (sqrt(v) + eps) */
    float g_div;           /* the gradient used is g / g_div (1: g itself) */
    float wb_value;        /* |wb| written in float32 (wb_bits 32) */
    uint32_t wb_word;      /* the 16-bit word of +|wb| (wb_bits 16); its sign bit flipped for -|wb| */
} bc_adam_params;

/* One Adam step of n weights in place; g is float32, or bfloat16 (uint16 words) if g_is_bf16.
 * wb (NULL: none) receives the binary weights of the new w, in wb_bits 32 (float32) or 16 (words).
 * Returns 0, or -1 for a wb_bits other than 16 or 32. */
int bc_adam_update(float *w, float *m, float *v, const void *g, int g_is_bf16, void *wb, int wb_bits,
                   int64_t n, bc_adam_params p);

/* The code path bc_adam_update takes on this CPU: "avx512", "avx2" or "portable". */
const char *bc_adam_path(void);

/* bc_adam_update on a given code path (one this CPU supports); -1 if `path` is not built here
 * (or wb_bits is invalid). */
int bc_adam_update_on(const char *path, float *w, float *m, float *v, const void *g, int g_is_bf16,
                      void *wb, int wb_bits, int64_t n, bc_adam_params p);

#ifdef __cplusplus
}
#endif
#endif
