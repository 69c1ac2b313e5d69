"""bcexport: ship a trained BinaryConnect network (arXiv:1511.00363, §9 Deployment).

Weights are stored as sign bits (sign(0) = +1) and each BatchNorm is folded into a per-unit affine,
so a block is y = a ⊙ pool(x ∗ wb) + c. Stages, one module each:
    pack          sign bits <-> uint8, BN folding, deployment weights of a run directory
    reference     NumPy float64 forward pass over the packed form (the oracle)
    tfmodel       inference tf.function over ±1 constants
    onnx_export   model.onnx, model.raw.onnx (tf2onnx) and export.json
    packed_onnx   model.packed.onnx: 1-bit weight initializers unpacked in-graph
    c_layout      the 1-bit weight layout of the generated C
    cgen          C99 sources (bcnn_model.h/.c, harness.c) from templates (c_emit, c_plan, csrc/)
    c_build       compiling them: strict checks, the ctypes model, Cortex-M4 sizes
    c_export      RUN_DIR/c/ written all or nothing, c/export.json
    verify        the parity gate over the whole test set (verify.json)
    cli           `bcexport onnx RUN_DIR`, `bcexport c RUN_DIR`, `bcexport verify RUN_DIR`
"""


class ExportError(ValueError):
    """A run directory or exported file that cannot be used (one-line message for the user)."""
