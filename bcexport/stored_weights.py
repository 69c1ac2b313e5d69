"""What a model file stores for the binary weights: exactly the trained signs (paper §9).

Parity on the test set bounds what a change of weights can do to the logits, but a change below the
logit tolerance (a weight −1 → −1.0000305), or one that only meets inputs no test image has (an
input that is always 0, a hidden unit that never fires), would pass it. So every back end whose file
stores the weights names a reader here in its entry of `bcexport.backends.BACKENDS`; the reader
takes the weights out of the file and compares them with the deployment's `wb = sign(w)` exactly,
without running the model:
    onnx_bits   (model.packed.onnx)  each block's weights stored exactly once, as the bits `pack_bits`
                gives for them; no float tensor large enough to hold a block.
    onnx_float  (model.onnx, model.raw.onnx)  each block's weights stored exactly once as a float
                tensor equal to its ±1 weights (in a layout the converter may choose); every float
                tensor of a block's size is one of them.
    c_bits      (c/bcnn_model.c)  each block's weights in exactly one array `block<i>_w`
                (`bcexport.c.generate.weight_array`), read back from the source as the compiler reads
                it (`bcexport.c.emit.read_byte_arrays`), holding exactly the bytes of the trained signs
                in the 1-bit layout of `bcexport.c.layout` (`bcexport.c.generate.packed_weights`, padding
                bits 0); no other `const uint8_t` array.
"""
import math
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import numpy_helper

from bcexport import ExportError
from bcexport.c.emit import read_byte_arrays
from bcexport.c.generate import packed_weights, weight_array
from bcexport.onnx import packed as packed_onnx
from bcexport.pack import Deployment, pack_bits


@dataclass(frozen=True)
class Stored:
    """What a reader found: the form of the weights, the bytes holding them, one line per problem."""
    reader: str
    form: str                 # "bits" | "float"
    bytes: int
    problems: list = field(default_factory=list)

    def summary(self) -> dict:
        return {"reader": self.reader, "form": self.form, "bytes": self.bytes}


def load_onnx(path: str) -> onnx.ModelProto:
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


def onnx_bits(path: str, dep: Deployment) -> Stored:
    """A packed ONNX model (module docstring: onnx_bits)."""
    model = load_onnx(path)
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
    return Stored("onnx_bits", "bits", total, problems)


def onnx_float(path: str, dep: Deployment) -> Stored:
    """An ONNX model storing ±1 float weights (module docstring: onnx_float)."""
    sizes = {b.n_weights for b in dep.blocks}
    matches, problems, total = [], [], 0
    for name, tensor in _float_tensors(load_onnx(path)):
        if math.prod(tensor.dims) not in sizes:
            continue
        value = numpy_helper.to_array(tensor)
        hit = [i for i, b in enumerate(dep.blocks) if b.n_weights == value.size and any(
            v.shape == value.shape and np.array_equal(v, value) for v in packed_onnx.layouts(b.wb))]
        if not hit:
            problems.append(f"float tensor {name} with {value.size} values is not a block's trained ±1 weights")
        matches += hit[:1]
        total += value.nbytes
    return Stored("onnx_float", "float", total, problems + _count_problems(matches, dep, "as exact ±1 floats"))


def c_bits(path: str, dep: Deployment) -> Stored:
    """The generated C source (module docstring: c_bits)."""
    try:
        with open(path, encoding="utf-8") as fh:
            arrays = read_byte_arrays(fh.read())
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: unreadable C source ({exc})") from None
    names = [weight_array(i) for i in range(len(dep.blocks))]
    problems, total = [], 0
    for i, (name, block) in enumerate(zip(names, dep.blocks)):
        found = arrays.get(name, [])
        if len(found) != 1:
            problems.append(f"{name} (block {i}): defined {len(found)} times, expected once")
            continue
        if found[0] is None:
            problems.append(f"{name} (block {i}): not a list of 0xNN bytes as long as its declared length")
            continue
        stored, expected = np.frombuffer(found[0], np.uint8), packed_weights(block)
        total += stored.size
        if stored.size != expected.size:
            problems.append(f"{name} (block {i}): {stored.size} bytes, expected {expected.size}")
            continue
        wrong = np.flatnonzero(np.unpackbits(stored ^ expected))
        if wrong.size:
            problems.append(f"{name} (block {i}): {wrong.size} of {8 * expected.size} bits differ from the "
                            f"trained signs (first in byte {wrong[0] // 8})")
    problems += [f"{name}: a uint8_t array that holds no block's weights" for name in arrays if name not in names]
    return Stored("c_bits", "bits", total, problems)
