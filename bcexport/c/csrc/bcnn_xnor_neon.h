/* NEON path of bcnn_xnor_pop (included by bcnn_xnor.h, which states the contract): vcnt on 128
 * bits, pairwise-accumulated into 16-bit lanes, those into 32-bit lanes every 2048 steps. */
#ifndef BCNN_XNOR_NEON_H
#define BCNN_XNOR_NEON_H

#ifndef BCNN_XNOR_H
#error "include bcnn_xnor.h"
#endif

#include <arm_neon.h>

/* 2 words per step; an odd last word by the portable code. */
static inline uint32_t bcnn_xnor_pop_neon(const uint8_t *x, const uint8_t *w, int words)
{
    uint32x4_t total = vdupq_n_u32(0);
    int steps = words / 2;
    for (int j = 0; j < steps;) {
        int end = BCNN_XNOR_MIN(steps, j + 2048);
        uint16x8_t acc = vdupq_n_u16(0);
        for (; j < end; ++j)
            acc = vpadalq_u8(acc, vcntq_u8(veorq_u8(vld1q_u8(x + 16 * j), vld1q_u8(w + 16 * j))));
        total = vpadalq_u16(total, acc);
    }
    return vaddvq_u32(total) + bcnn_xnor_pop_portable(x, w, 2 * steps, words);
}
#define BCNN_XNOR_KERNEL(x, w, words) bcnn_xnor_pop_neon(x, w, words)

#endif
