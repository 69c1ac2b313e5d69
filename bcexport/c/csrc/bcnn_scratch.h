/* Scratch sizes of the inference runtime, without its code (arXiv:1511.00363, §9 Deployment).
 *
 * The generated bcnn_model.h states the scratch a call needs as a constant expression of these
 * macros, so it includes this header alone: a program that includes bcnn_model.h gets <stddef.h>,
 * <stdint.h> and macros, no kernel code, no intrinsics header, no <math.h>.
 *
 * The kernel path of bcnn_bgemm.h is chosen here, once, from the target macros (bcnn_bgemm.h then
 * includes that path's code), because each path needs its own scratch. So a file that sizes a
 * scratch with BCNN_SCRATCH_FLOATS must be compiled for the same target as bcnn_model.c (or ask
 * bcnn_scratch_bytes() at run time; a scratch too small is refused with an error code, never
 * overrun). Macros only, C99.
 */
#ifndef BCNN_SCRATCH_H
#define BCNN_SCRATCH_H

#define BCNN_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BCNN_MAX(a, b) ((a) > (b) ? (a) : (b))
#define BCNN_GROUP 4
#define BCNN_GROUPS(K) (((K) + BCNN_GROUP - 1) / BCNN_GROUP)

/* The kernel path: -DBCNN_PORTABLE forces the portable C99 one. */
#define BCNN_PATH_PORTABLE 0
#define BCNN_PATH_AVX2 1
#define BCNN_PATH_AVX512 2
#define BCNN_PATH_NEON 3
#if defined(BCNN_PORTABLE)
#define BCNN_BGEMM_PATH_ID BCNN_PATH_PORTABLE
#define BCNN_BGEMM_PATH "portable"
#elif defined(__AVX512F__) && defined(__AVX512BW__)
#define BCNN_BGEMM_PATH_ID BCNN_PATH_AVX512
#define BCNN_BGEMM_PATH "avx512"
#elif defined(__AVX2__)
#define BCNN_BGEMM_PATH_ID BCNN_PATH_AVX2
#define BCNN_BGEMM_PATH "avx2"
#elif defined(__ARM_NEON) && defined(__aarch64__) && !defined(__ARM_BIG_ENDIAN)
#define BCNN_BGEMM_PATH_ID BCNN_PATH_NEON
#define BCNN_BGEMM_PATH "neon"
#else
#define BCNN_BGEMM_PATH_ID BCNN_PATH_PORTABLE
#define BCNN_BGEMM_PATH "portable"
#endif

/* Each path keeps the tables of a chunk of input groups in scratch (see its header). */
#define BCNN_PORTABLE_CHUNK 32   /* 2 KB of tables, what a microcontroller can spare */
#define BCNN256_CHUNK 128        /* AVX2: 4 rows of half tables take 16 KB */
#define BCNN512_CHUNK 64         /* AVX-512: 8 rows of tables take 32 KB */
#define BCNN_NEON_CHUNK 64       /* NEON: 4 KB of tables */
#define BCNN_PORTABLE_SCRATCH_FLOATS(K) (16 * BCNN_MIN(BCNN_GROUPS(K), BCNN_PORTABLE_CHUNK))

/* Floats of scratch bcnn_bgemm needs for M rows of K inputs (the contract of bcnn_bgemm.h). */
#if BCNN_BGEMM_PATH_ID == BCNN_PATH_AVX512
#define BCNN_BGEMM_SCRATCH_FLOATS(M, K) (16 + 16 * BCNN_MIN(M, 8) * BCNN_MIN(BCNN_GROUPS(K), BCNN512_CHUNK))
#elif BCNN_BGEMM_PATH_ID == BCNN_PATH_AVX2
#define BCNN_BGEMM_SCRATCH_FLOATS(M, K) (8 + 8 * BCNN_MIN(M, 4) * BCNN_MIN(BCNN_GROUPS(K), BCNN256_CHUNK))
#elif BCNN_BGEMM_PATH_ID == BCNN_PATH_NEON
#define BCNN_BGEMM_SCRATCH_FLOATS(M, K) (16 * BCNN_MIN(BCNN_GROUPS(K), BCNN_NEON_CHUNK))
#else
#define BCNN_BGEMM_SCRATCH_FLOATS(M, K) BCNN_PORTABLE_SCRATCH_FLOATS(K)
#endif

/* The table convolution of bcnn_tconv.h: on the SIMD paths, for convs whose C is a multiple of 4
 * (-DBCNN_IM2COL keeps im2col and bcnn_bgemm everywhere; the portable path always does, its
 * scratch being what a microcontroller can spare). Its blocking: BCNN_TC_P blocks of 8 pixels per
 * register tile, sums over BCNN_TC_CHUNK groups between stores, BCNN_TC_NR outputs per sweep. */
#if BCNN_BGEMM_PATH_ID == BCNN_PATH_PORTABLE || defined(BCNN_IM2COL)
#define BCNN_TCONV 0
#else
#define BCNN_TCONV 1
#endif
#define BCNN_TC_P 2
#define BCNN_TC_RING (BCNN_TC_P + 2)
#define BCNN_TC_CHUNK 16
#define BCNN_TC_NR 512
/* Floats of work of bcnn_tconv3 on a W-wide image, C inputs, N outputs: the zero row and the ring
 * of table rows (16 entries of 16 floats per 8 columns and 4 channels), the transposed input row,
 * and the sums of a tile. */
#define BCNN_TC_XPAD 16     /* floats between x-blocks and between table rows: no power-of-2 strides */
#define BCNN_TC_RPAD 48
#define BCNN_TC_XB(W) (((W) + 7) / 8)
#define BCNN_TC_XS(C) ((size_t)((C) / 4) * 256u + BCNN_TC_XPAD)
#define BCNN_TC_ROWF(W, C) ((size_t)BCNN_TC_XB(W) * BCNN_TC_XS(C) + BCNN_TC_RPAD)
#define BCNN_TCONV_FLOATS(W, C, N) ((BCNN_TC_RING + 1) * (BCNN_TC_XB(W) * (((C) / 4) * 256 + BCNN_TC_XPAD) \
                                                          + BCNN_TC_RPAD) \
                                    + (C) * (8 * BCNN_TC_XB(W) + 16) + BCNN_TC_P * (((N) + 31) / 32) * 256)
/* Floats of work of bcnn_conv3 (bcnn_runtime.h): table rows, or R im2col rows; rounded up to 16. */
#define BCNN_CONV3_WORK_FLOATS(W, C, N, R) \
    (((BCNN_TCONV && (C) % 4 == 0 ? BCNN_TCONV_FLOATS(W, C, N) : (R) * 9 * (C)) + 15) / 16 * 16)

/* bcnn_runtime.h's bcnn_matmul runs bcnn_bgemm. */
#define BCNN_MATMUL_SCRATCH_FLOATS(M, K) BCNN_BGEMM_SCRATCH_FLOATS(M, K)

/* Working memory of the pixel entry point's preprocessing (bcnn_preprocess.h): ZCA converts
 * BCNN_ZCA_ROWS images of D pixels at a time to float, and one column of the matrix; LCN blurs one
 * channel of an H x W image. */
#define BCNN_ZCA_ROWS 8
#define BCNN_ZCA_WORK_FLOATS(D) ((BCNN_ZCA_ROWS + 1) * (D))
#define BCNN_LCN_WORK_FLOATS(H, W) (3 * (H) * (W))

#endif
