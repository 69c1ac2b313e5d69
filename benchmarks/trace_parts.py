"""Which part of the training step a profiled kernel belongs to (benchmarks.profile_step).

The network names its parts (bctrain.paper: name scopes `binarize`, `conv`, `dense`, `pool`,
`batchnorm`, `relu`, `loss`; bctrain.step: `update`), and TensorFlow keeps those names in every op
derived from them, gradients included (`gradient_tape/.../pool/...`). A kernel of TensorFlow's own
is named `op_name:OpType`; an XLA kernel is named after its HLO instruction, whose metadata (in the
HLO module the profiler stores with the trace) gives the TensorFlow op it came from. So:
    conv products, dense products   Conv2D and its two gradients, MatMul (TensorFlow's kernels or
                                    XLA's convolution and dot instructions)
    bias and casts                  the rest of a conv/dense scope: the bias add, a 16-bit product's
                                    casts and its scaling by h
    binarization, pooling, BatchNorm, ReLU, loss, update   their scopes (the fused update by its op)
    layout copies                   XLA's copies and transposes (operands laid out for a product;
                                    XLA may fuse the elementwise work that produces them into them)
    other kernels                   anything else
An XLA fusion counts for the part of a product it contains, else of its root op, else of the op most
of its instructions came from. An XLA instruction without metadata (a reduction XLA split in two, a wrapped copy) takes the part
of the instruction that uses its result, unless it is a layout copy. TensorFlow-free: the caller
passes the parsed HLO protos.
"""
import re

PARTS = ("conv products", "dense products", "bias and casts", "binarization", "pooling", "BatchNorm", "ReLU",
         "loss", "update", "layout copies", "other kernels")
SCOPES = {"binarize": "binarization", "pool": "pooling", "batchnorm": "BatchNorm", "relu": "ReLU",
          "loss": "loss", "update": "update"}
CONV_OPS = ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter")
LAYOUT_OPCODES = ("copy", "transpose", "bitcast", "reshape", "parameter", "constant", "tuple",
                  "get-tuple-element")


def part_of_op(op_name: str, op_type: str) -> str | None:
    """The part of a TensorFlow op (None: the name says nothing)."""
    kind = re.sub(r"^_?(Mkl)?(Native)?(Fused)?", "", op_type)  # oneDNN's: _MklNativeConv2D, _MklMatMul, ...
    if "BcAdamUpdate" in op_type:
        return "update"
    if kind.startswith(CONV_OPS):
        return "conv products"
    if kind.startswith(("MatMul", "BatchMatMul")):
        return "dense products"
    scopes = [re.sub(r"_\d+$", "", scope) for scope in op_name.split("/")]  # a reused scope is NAME_1, ...
    for scope in reversed(scopes):  # the innermost named part (a BatchNorm inside no other)
        if scope in SCOPES:
            return SCOPES[scope]
    if "conv" in scopes or "dense" in scopes:
        return "bias and casts"
    return None


def part_of_kernel(name: str, hlo_part: str | None = None) -> str:
    """The part of a profiled kernel `name` (`op_name:OpType` of TensorFlow's kernels; an HLO
    instruction's name for XLA's, whose part `hlo_parts` found)."""
    if hlo_part is not None:
        return hlo_part
    op_name, _, op_type = name.partition(":")
    if "BcAdamUpdate" in name:
        return "update"
    return part_of_op(op_name, op_type) or "other kernels"


def hlo_parts(module) -> dict:
    """{instruction name: part} of every instruction of an HLO module (an xla HloModuleProto)."""
    by_id = {c.id: c for c in module.computations}
    instructions = {}
    for comp in module.computations:
        for ins in comp.instructions:
            instructions[(comp.id, ins.id)] = ins
    own = {}
    users = {}
    for comp in module.computations:
        for ins in comp.instructions:
            for operand in ins.operand_ids:
                users.setdefault((comp.id, operand), []).append((comp.id, ins.id))
            own[(comp.id, ins.id)] = _own_part(ins, by_id)

    resolved = {}

    def resolve(start):
        """The part of `start`, else that of its first user that has one, depth first. Each
        instruction is resolved once: an HLO graph can have exponentially many paths."""
        stack, path = [(start, False)], set()
        while stack:
            key, expanded = stack.pop()
            if key in resolved or (key in path and not expanded):  # done, or a cycle
                continue
            if own[key] is not None:
                resolved[key] = own[key]
            elif not expanded:
                path.add(key)
                stack.append((key, True))
                stack.extend((u, False) for u in reversed(users.get(key, [])) if u not in resolved)
            else:
                path.discard(key)
                resolved[key] = next((resolved[u] for u in users.get(key, []) if resolved.get(u)), None)
        return resolved[start]

    return {instructions[key].name: resolve(key) or "other kernels" for key in own}


def _own_part(ins, computations) -> str | None:
    """The part an instruction's own metadata (or its fused instructions') names, else None."""
    if ins.opcode == "convolution":
        return "conv products"
    if ins.opcode == "dot":
        return "dense products"
    called = [computations[c] for c in ins.called_computation_ids if c in computations]
    inner = [i for c in called for i in c.instructions]
    roots = [i.opcode for c in called for i in c.instructions if i.id == c.root_id]
    if ins.opcode in ("copy", "transpose") or (ins.opcode == "fusion" and roots and roots[0] in ("copy", "transpose")):
        return "layout copies"  # operands laid out for a product (XLA may fuse elementwise work into it)
    for i in inner:  # a product fused with what follows it counts as the product
        if i.opcode in ("convolution", "dot"):
            return "conv products" if i.opcode == "convolution" else "dense products"
    if ins.metadata.op_type:  # a fusion is named after its root op
        part = part_of_op(ins.metadata.op_name, ins.metadata.op_type)
        if part is not None:
            return part
    named = [part_of_op(i.metadata.op_name, i.metadata.op_type) for i in inner if i.metadata.op_type]
    named = [p for p in named if p is not None]
    if named:
        return max(set(named), key=named.count)
    if inner and all(i.opcode in LAYOUT_OPCODES for i in inner):
        return "layout copies"
    return None
