"""model.packed.onnx: the binary weights stored as 1 bit each, unpacked by standard ONNX ops (§9).

Surgery on the converted float graph: every float32 initializer that holds a block's ±1 weights
(in whatever layout the converter chose, e.g. OIHW for convolutions) is replaced by a uint8
initializer of its sign bits plus a small subgraph that rebuilds the same tensor under the same name:

    bits uint8 [B] -> Unsqueeze [B, 1] -> BitShift RIGHT by [0..7] -> BitwiseAnd 1 -> Reshape [8B]
      -> Slice [:n] -> Cast float -> ×2 −1 -> Reshape (original dims)

Bit order is the one of `bcexport.pack` (row-major over the initializer's own layout, least
significant bit first, 1 = +1). BitwiseAnd needs opset 18. The rest of the graph is untouched, so
its outputs equal model.onnx's exactly.
"""
import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from bcexport import ExportError
from bcexport.pack import Deployment, pack_bits

MIN_OPSET = 18  # BitwiseAnd
BITS_SUFFIX = "__bits"


def layouts(wb: np.ndarray) -> list:
    """The arrangements of a ±1 kernel a converter may store: as is, or conv HWIO -> OIHW."""
    out = [wb]
    if wb.ndim == 4:
        out.append(wb.transpose(3, 2, 0, 1))
    return out


def find_binary_initializers(model: onnx.ModelProto, dep: Deployment) -> dict:
    """{initializer name: block index} for the initializers equal to a block's ±1 weights."""
    found = {}
    for init in model.graph.initializer:
        if init.data_type != TensorProto.FLOAT:
            continue
        dims = tuple(init.dims)
        sizes = [i for i, b in enumerate(dep.blocks) if b.n_weights == math.prod(dims)]
        if not sizes:
            continue
        value = numpy_helper.to_array(init)
        for i in sizes:
            if any(v.shape == dims and np.array_equal(v, value) for v in layouts(dep.blocks[i].wb)):
                found[init.name] = i
                break
    return found


def _shared_constants(prefix: str) -> list:
    return [
        numpy_helper.from_array(np.arange(8, dtype=np.uint8), f"{prefix}shifts"),
        numpy_helper.from_array(np.ones(1, dtype=np.uint8), f"{prefix}one_u8"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), f"{prefix}axis1"),
        numpy_helper.from_array(np.array([-1], dtype=np.int64), f"{prefix}flat"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), f"{prefix}zero_i64"),
        numpy_helper.from_array(np.array(2.0, dtype=np.float32), f"{prefix}two"),
        numpy_helper.from_array(np.array(1.0, dtype=np.float32), f"{prefix}one_f"),
    ]


def _unpack_subgraph(name: str, dims: tuple, p: str) -> tuple:
    """Nodes and initializers that compute tensor `name` (±1 float32 of `dims`) from `name`_bits."""
    n = math.prod(dims)
    t = f"{name}__"
    inits = [numpy_helper.from_array(np.array(dims, dtype=np.int64), t + "dims"),
             numpy_helper.from_array(np.array([n], dtype=np.int64), t + "count")]
    nodes = [
        helper.make_node("Unsqueeze", [name + BITS_SUFFIX, p + "axis1"], [t + "col"]),
        helper.make_node("BitShift", [t + "col", p + "shifts"], [t + "shifted"], direction="RIGHT"),
        helper.make_node("BitwiseAnd", [t + "shifted", p + "one_u8"], [t + "bit"]),
        helper.make_node("Reshape", [t + "bit", p + "flat"], [t + "flat"]),
        helper.make_node("Slice", [t + "flat", p + "zero_i64", t + "count"], [t + "used"]),
        helper.make_node("Cast", [t + "used"], [t + "float"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [t + "float", p + "two"], [t + "twice"]),
        helper.make_node("Sub", [t + "twice", p + "one_f"], [t + "pm1"]),
        helper.make_node("Reshape", [t + "pm1", t + "dims"], [name]),
    ]
    return nodes, inits


def pack_model(model: onnx.ModelProto, dep: Deployment) -> tuple:
    """(packed ModelProto, {name: (block, float bytes, packed bytes)}); `model` is not modified."""
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    if opset < MIN_OPSET:
        raise ExportError(f"packed model needs opset >= {MIN_OPSET} (BitwiseAnd), model has {opset}")
    targets = find_binary_initializers(model, dep)
    matched = sorted(targets.values())
    if matched != list(range(len(dep.blocks))):
        raise ExportError(f"converted graph: found the ±1 weights of blocks {matched}, "
                          f"expected each of the {len(dep.blocks)} blocks exactly once")
    prefix = "bcexport_unpack__"
    nodes, inits, info = [], _shared_constants(prefix), {}
    for init in model.graph.initializer:
        if init.name in targets:
            dims = tuple(init.dims)
            bits = pack_bits(numpy_helper.to_array(init))
            unpack_nodes, unpack_inits = _unpack_subgraph(init.name, dims, prefix)
            nodes += unpack_nodes
            inits += unpack_inits + [numpy_helper.from_array(bits, init.name + BITS_SUFFIX)]
            info[init.name] = (targets[init.name], 4 * math.prod(dims), int(bits.nbytes))
        else:
            inits.append(init)
    packed = onnx.ModelProto()
    packed.CopyFrom(model)
    del packed.graph.initializer[:]
    packed.graph.initializer.extend(inits)
    del packed.graph.node[:]
    packed.graph.node.extend(nodes + list(model.graph.node))  # unpacking first: topological order
    onnx.checker.check_model(packed)
    return packed, info
