"""Generated C99 inference code with 1-bit weights and add/subtract kernels (paper §9).

    layout      the 1-bit weight layout of the generated C
    plan        blocking and scratch of each layer
    emit        small helpers that emit C declarations
    preprocess  the C pixel entry point's preprocessing constants
    generate    bcnn_model.h/.c and harness.c from the templates in csrc/
    build       compiling them: strict checks, the ctypes model, Cortex-M4 sizes
    export      RUN_DIR/c/ written all or nothing, c/export.json
    swap        RUN_DIR/c/ replaced as a whole; a swap killed half way rolled back; leftovers
"""
