"""bcexport: ship a trained BinaryConnect network (arXiv:1511.00363, §9 Deployment).

Weights are stored as sign bits (sign(0) = +1) and each BatchNorm is folded into a per-unit affine,
so a block is y = a ⊙ pool(x ∗ wb) + c. Stages, one module each:
    pack            sign bits <-> uint8, BN folding, deployment weights of a run directory
    threshold       BinaryNet: each hidden block's BatchNorm + sign as one threshold per unit
    reference       NumPy float64 forward pass over the packed form (the oracle)
    tfmodel         inference tf.function over ±1 constants
    rundir          reading a run directory's results and export records
    onnx/           model.onnx, model.raw.onnx and model.packed.onnx (tf2onnx), export.json
    c/              C99 sources (bcnn_model.h/.c, harness.c), their build and RUN_DIR/c/
    backends        the table of back ends verify compares, and how each is run and read
    stored_weights  the stored ±1 weights and sign bits of each back end (one reader each: ONNX bits,
                    ONNX floats, the arrays of the generated C), against the trained signs
    lock            one writer per run directory: every command holds training's lock
    tolerance       the logit tolerance and the comparison of one back end's logits with the reference
    hidden          BinaryNet: every hidden bit of every back end, block by block
    verify          the parity gate over the whole test set (verify.json)
    cli             `bcexport onnx RUN_DIR`, `bcexport c RUN_DIR`, `bcexport verify RUN_DIR`
"""


class ExportError(ValueError):
    """A run directory or exported file that cannot be used (one-line message for the user)."""
