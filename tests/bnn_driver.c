/* Test driver of a generated BinaryNet model (tests/test_c_bnn.py), linked with its bcnn_model.c,
 * built natively or cross-compiled and run under qemu. `driver path` prints the kernel path.
 * Otherwise it reads float32 samples [n, BCNN_INPUT_SIZE] from stdin and writes float32 logits
 * [n, BCNN_N_CLASSES], then the hidden bits [n, BCNN_HIDDEN_BYTES], to stdout, from
 * bcnn_predict_hidden; bcnn_predict must give the same logits byte for byte (exit 3 otherwise).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bcnn_model.h"

int main(int argc, char **argv)
{
    size_t cap = 1 << 16, size = 0, got;
    float *x = malloc(cap * sizeof *x), *logits, *again, *scratch;
    uint8_t *hidden;
    int n;
    if (argc > 1 && strcmp(argv[1], "path") == 0) {
        printf("%s\n", bcnn_kernel_path());
        return 0;
    }
    while (x != NULL && (got = fread(x + size, sizeof *x, cap - size, stdin)) > 0) {
        size += got;
        if (size == cap)
            x = realloc(x, (cap *= 2) * sizeof *x);
    }
    n = (int)(size / BCNN_INPUT_SIZE);
    logits = malloc((size_t)n * BCNN_N_CLASSES * sizeof *logits + 1);
    again = malloc((size_t)n * BCNN_N_CLASSES * sizeof *again + 1);
    hidden = malloc((size_t)n * BCNN_HIDDEN_BYTES + 1);
    scratch = malloc(BCNN_SCRATCH_BYTES);
    if (x == NULL || logits == NULL || again == NULL || hidden == NULL || scratch == NULL
        || size % BCNN_INPUT_SIZE != 0) {
        fprintf(stderr, "bad input or out of memory\n");
        return 2;
    }
    if (bcnn_predict_hidden(x, n, logits, hidden, scratch, BCNN_SCRATCH_BYTES) != BCNN_OK
        || bcnn_predict(x, n, again, scratch, BCNN_SCRATCH_BYTES) != BCNN_OK)
        return 1;
    if (memcmp(logits, again, (size_t)n * BCNN_N_CLASSES * sizeof *logits) != 0)
        return 3;
    fwrite(logits, sizeof *logits, (size_t)n * BCNN_N_CLASSES, stdout);
    fwrite(hidden, 1, (size_t)n * BCNN_HIDDEN_BYTES, stdout);
    return 0;
}
