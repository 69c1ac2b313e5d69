"""The shape of the generated C code: blocks as matrix products and the scratch buffers (paper §9).

A tile of up to `tile` samples goes through the blocks at a time. Convolution blocks run one sample
at a time (`bcnn_conv_block`): where the target has the table convolution (bcnn_tconv.h: the SIMD
paths, C % 4 == 0) from table rows, else `rows` output pixels per product (their im2col rows: a
64 KB budget, rounded up to a multiple of the kernels' row set); the work region holds what the
target's form needs, the most over the blocks (`conv_work`, a C expression of bcnn_scratch.h's
macros). Each output image goes to one of two image buffers; the last one is flattened (row-major
NHWC, a plain copy) into row s of the first activation buffer. Dense blocks then take the whole tile as the M rows of one product, ping-ponging
between two activation buffers of `tile` rows, and the last block writes the caller's logits.
The raw-pixel entry point preprocesses a tile into the second activation buffer (the first block
reads it, never writes it), with the working memory its preprocessing kind needs (`pre_floats`, a
C expression, `bcexport.c.generate.PREPROCESS`) in a region of its own. Region sizes are rounded up to 16
floats, so that every region of a 64-byte aligned scratch is 64-byte aligned. TensorFlow-free: only
the deployment form is read.
"""
import math
from dataclasses import dataclass

from bcexport import ExportError
from bcexport.pack import Deployment

ALIGN_FLOATS = 16            # 64 bytes
PATCH_FLOATS = 16384         # im2col rows per product: as many as fit in 64 KB, rounded up to ROW_SET
# The kernels decode each weight byte once for a set of up to 8 rows (AVX-512; AVX2 4, NEON and
# portable 1), so a product of fewer rows wastes decoding: on the cifar10 network (9 * 512 inputs
# in the deepest conv, 3 rows in 64 KB) rows rounded up to a multiple of 8 took 10 % less time per
# image (docs/BENCHMARKS.md), for a patch buffer of 144 KB instead of 64 KB.
ROW_SET = 8
DEFAULT_TILE = 16


def round_up(n: int, multiple: int = ALIGN_FLOATS) -> int:
    return -(-n // multiple) * multiple


@dataclass(frozen=True)
class Step:
    """One block as the C code runs it: the [K, N] binary product and what surrounds it."""

    index: int
    kind: str          # "dense" | "conv"
    k: int             # inputs of the product (conv: 9 * c_in)
    n: int             # outputs (units or filters)
    relu: bool
    pool: bool
    height: int = 1    # conv: input image height and width
    width: int = 1
    rows: int = 0      # conv: im2col rows per product

    @property
    def c_in(self) -> int:
        return self.k // 9 if self.kind == "conv" else self.k

    @property
    def out_pixels(self) -> int:
        """Pixels of the block's output image (after the pool), 1 for dense."""
        if self.kind != "conv":
            return 1
        return (self.height // 2) * (self.width // 2) if self.pool else self.height * self.width


@dataclass(frozen=True)
class Plan:
    steps: tuple
    input_size: int      # floats per sample
    n_classes: int
    act_width: int       # floats per row of each activation buffer
    image_floats: int    # floats of each image buffer (0 without conv blocks)
    patch_floats: int    # floats of the im2col rows (0 without conv blocks; see conv_work)
    pre_floats: str = "0"  # C expression: floats the pixel entry point's preprocessing works in

    @property
    def conv_steps(self) -> tuple:
        return tuple(s for s in self.steps if s.kind == "conv")

    @property
    def conv_work(self) -> str:
        """C expression: floats of the conv blocks' work region, the largest over the blocks of
        bcnn_scratch.h's BCNN_CONV3_WORK_FLOATS (table rows where the target runs bcnn_tconv3,
        else `rows` im2col rows); "0" without conv blocks."""
        expr = "0"
        for s in self.conv_steps:
            e = f"BCNN_CONV3_WORK_FLOATS({s.width}, {s.c_in}, {s.n}, {s.rows})"
            expr = e if expr == "0" else f"BCNN_MAX({expr}, {e})"
        return expr

    @property
    def dense_steps(self) -> tuple:
        return tuple(s for s in self.steps if s.kind == "dense")

    @property
    def flat_size(self) -> int:
        """Inputs of the first dense block."""
        return self.dense_steps[0].k

    def regions(self, tile: str) -> list:
        """[(name, offset, floats)] of the scratch regions, as C expressions of the tile size `tile`;
        the last one, "kernel", is the kernel's scratch (its size is the kernel's to say)."""
        act = f"{tile} * {self.act_width}"
        pre = f"(({self.pre_floats}) + {ALIGN_FLOATS - 1}) / {ALIGN_FLOATS} * {ALIGN_FLOATS}"
        sizes = [("act0", act), ("act1", act), ("img0", self.image_floats), ("img1", self.image_floats),
                 ("conv", self.conv_work if self.conv_steps else 0), ("pre", pre if self.pre_floats != "0" else 0)]
        out, offset = [], "0"
        for name, size in sizes:
            if size:
                out.append((name, offset, size))
                offset = f"{offset} + {size}" if offset != "0" else str(size)
        out.append(("kernel", offset, None))
        return out

    def products(self, tile: str) -> list:
        """(M, K) of every binary product, for the kernel's scratch size (M as C text)."""
        return [(str(s.rows) if s.kind == "conv" else tile, s.k) for s in self.steps]


def make_plan(dep: Deployment) -> Plan:
    """The plan of a deployment; an architecture the generator cannot express is an ExportError."""
    steps, shape = [], tuple(dep.input_shape)
    for i, b in enumerate(dep.blocks):
        if b.kind == "conv":
            kh, kw, c_in, c_out = b.shape
            if (kh, kw) != (3, 3) or len(shape) != 3 or shape[2] != c_in:
                raise ExportError(f"block {i}: conv {b.shape} on input {shape}: the C generator takes "
                                  f"3x3 kernels on [H, W, C] inputs")
            height, width = shape[0], shape[1]
            rows = min(height * width, round_up(max(1, PATCH_FLOATS // (9 * c_in)), ROW_SET))
            steps.append(Step(i, "conv", 9 * c_in, c_out, b.relu, b.pool, height, width, rows))
            shape = (height // 2, width // 2, c_out) if b.pool else (height, width, c_out)
        elif b.kind == "dense" and not b.pool:
            if b.shape[0] != math.prod(shape):
                raise ExportError(f"block {i}: dense {b.shape} after an output of shape {shape}")
            steps.append(Step(i, "dense", b.shape[0], b.shape[1], b.relu, False))
            shape = (b.shape[1],)
        else:
            raise ExportError(f"block {i}: {b.kind} block{' with pool' if b.pool else ''} has no C form")
    if steps[-1].kind != "dense":
        raise ExportError("the last block must be dense")
    if any(a.kind == "dense" and b.kind == "conv" for a, b in zip(steps, steps[1:])):
        raise ExportError("a conv block after a dense block has no C form")
    input_size = math.prod(dep.input_shape)
    convs = [s for s in steps if s.kind == "conv"]
    widths = [input_size] + [s.k for s in steps if s.kind == "dense"] + [s.n for s in steps[:-1]
                                                                         if s.kind == "dense"]
    return Plan(tuple(steps), input_size, steps[-1].n, round_up(max(widths)),
                round_up(max((s.height * s.width * s.n for s in convs), default=0)),
                round_up(max((s.rows * s.k for s in convs), default=0)))
