"""What a model file stores for the binary weights: exactly the trained signs (paper §9).

Parity on the test set bounds what a change of weights can do to the logits, but a change below the
logit tolerance (a weight −1 → −1.0000305) or one that only meets inputs no test image has would
pass it. So the stored weights are checked directly, against the deployment's `wb = sign(w)`:
    bits   (model.packed.onnx)  each block's weights stored exactly once, as the bits `pack_bits`
                                gives for them; no float tensor large enough to hold a block.
    float  (model.onnx, model.raw.onnx)  each block's weights stored exactly once as a float tensor
                                equal to its ±1 weights (in a layout the converter may choose); every
                                float tensor of a block's size is one of them.
"""
import math

import numpy as np
import onnx
from onnx import numpy_helper

from bcexport import ExportError
from bcexport.onnx import packed as packed_onnx
from bcexport.pack import Deployment, pack_bits


def _load(path: str) -> onnx.ModelProto:
    try:
        return onnx.load(path)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ExportError(f"{path}: not an ONNX model ({type(exc).__name__})") from None


def _float_tensors(model: onnx.ModelProto):
    """Every float32 tensor stored in the file: initializers and Constant-node values."""
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT:
            yield init.name, init
    for node in model.graph.node:
        for attr in node.attribute:
            if node.op_type == "Constant" and attr.type == onnx.AttributeProto.TENSOR:
                yield node.name or node.output[0], attr.t


def _count_problems(matches: list, dep: Deployment, how: str) -> list:
    return [f"block {i} weights stored {how} {matches.count(i)} times, expected once"
            for i in range(len(dep.blocks)) if matches.count(i) != 1]


def packed_structure(path: str, dep: Deployment) -> tuple:
    """(bytes of sign-bit initializers, problems) of a packed model (module docstring: bits)."""
    model = _load(path)
    matches, problems, total = [], [], 0
    for init in model.graph.initializer:
        if not init.name.endswith(packed_onnx.BITS_SUFFIX):
            continue
        bits = numpy_helper.to_array(init)
        total += bits.nbytes
        hit = [i for i, b in enumerate(dep.blocks) if init.data_type == onnx.TensorProto.UINT8 and any(
            np.array_equal(pack_bits(v), bits) for v in packed_onnx.layouts(b.wb))]
        if not hit:
            problems.append(f"{init.name} holds the bits of no block")
        matches += hit[:1]
    problems += _count_problems(matches, dep, "as bits")
    smallest = min(b.n_weights for b in dep.blocks)
    problems += [f"float tensor {name} with {math.prod(t.dims)} values" for name, t in _float_tensors(model)
                 if math.prod(t.dims) >= smallest]
    return total, problems


def float_structure(path: str, dep: Deployment) -> list:
    """Problems of a model storing ±1 float weights (module docstring: float); [] if none."""
    sizes = {b.n_weights for b in dep.blocks}
    matches, problems = [], []
    for name, tensor in _float_tensors(_load(path)):
        if math.prod(tensor.dims) not in sizes:
            continue
        value = numpy_helper.to_array(tensor)
        hit = [i for i, b in enumerate(dep.blocks) if b.n_weights == value.size and any(
            v.shape == value.shape and np.array_equal(v, value) for v in packed_onnx.layouts(b.wb))]
        if not hit:
            problems.append(f"float tensor {name} with {value.size} values is not a block's trained ±1 weights")
        matches += hit[:1]
    return problems + _count_problems(matches, dep, "as exact ±1 floats")
