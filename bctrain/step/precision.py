"""Numeric precision of a training step: the table of `--precision` choices (paper §1 unchanged).

    float32         every tensor in float32 (the default, bit-identical to earlier releases)
    mixed_bfloat16  the products' operands in bfloat16: activations, and the weights as exact ±1
    mixed_float16   the same in float16, with dynamic loss scaling (float16's range is narrow)

In both mixed forms the latent weights w, biases, BatchNorm and all optimizer state stay float32:
a binary layer multiplies by wb / h (exactly ±1, representable in 16 bits) and scales the float32
result by h, and BatchNorm computes its statistics from the float32 product (bctrain.paper.layers). The
loss and the gradients of the float32 variables are float32.

`split_step`: the step runs its products in TensorFlow's own kernels (oneDNN on a CPU, cuBLAS on a
GPU) and only its elementwise parts (binarization, update) under XLA (bctrain.step.build): XLA's CPU
back end runs a bfloat16 dot at float32 speed, oneDNN at bfloat16 speed (docs/BENCHMARKS.md).
TensorFlow-free (stdlib only), so that `bctrain.config` can list the choices.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Precision:
    name: str
    help: str            # one line for --help
    compute: str         # dtype name of the products' operands and of the activations fed to them
    loss_scaling: bool   # dynamic loss scaling (bctrain.step.loss_scale)
    split_step: bool     # products outside XLA, elementwise parts in XLA (see above)


PRECISIONS = {p.name: p for p in (
    Precision("float32", "every tensor in float32", "float32", loss_scaling=False, split_step=False),
    Precision("mixed_bfloat16", "products in bfloat16, state float32", "bfloat16", loss_scaling=False,
              split_step=True),
    Precision("mixed_float16", "products in float16 with loss scaling, state float32", "float16",
              loss_scaling=True, split_step=True),
)}
