"""benchmarks.trace_parts: the part of the step of TensorFlow ops and of XLA instructions, by hand."""
from types import SimpleNamespace as NS

from benchmarks import trace_parts as tp


def test_ops_by_type_then_by_innermost_named_scope():
    assert tp.part_of_op("gradient_tape/conv_3/Conv2D/Conv2DBackpropFilter", "Conv2DBackpropFilter") == "conv products"
    assert tp.part_of_op("conv/Conv2D", "_MklNativeConv2D") == "conv products"  # oneDNN's kernel
    assert tp.part_of_op("gradient_tape/dense_1/MatMul_1", "MatMul") == "dense products"
    assert tp.part_of_op("gradient_tape/pool_2/Max_grad/Equal", "Equal") == "pooling"  # a reused scope is NAME_N
    assert tp.part_of_op("batchnorm_4/moments/Mean", "Mean") == "BatchNorm"
    assert tp.part_of_op("binarize_1/SelectV2", "SelectV2") == "binarization"
    assert tp.part_of_op("conv_1/add", "AddV2") == "bias and casts"
    assert tp.part_of_op("update/BcAdamUpdate_2", "BcAdamUpdate") == "update"
    assert tp.part_of_op("AddN_3", "AddN") is None


def test_kernel_names_of_tensorflow_kernels():
    assert tp.part_of_kernel("StatefulPartitionedCall/gradient_tape/relu_2/ReluGrad:ReluGrad") == "ReLU"
    assert tp.part_of_kernel("AddN_17:AddN") == "other kernels"
    assert tp.part_of_kernel("broadcast_add_fusion.3", "BatchNorm") == "BatchNorm"  # XLA's: from its module


def _ins(id, name, opcode, op_type="", op_name="", operands=(), called=()):
    return NS(id=id, name=name, opcode=opcode, metadata=NS(op_type=op_type, op_name=op_name),
              operand_ids=list(operands), called_computation_ids=list(called))


def test_xla_instructions_by_metadata_fusion_root_and_user():
    fused_bias = NS(id=2, root_id=21, instructions=[_ins(20, "p", "parameter"),
                                                    _ins(21, "add", "add", "AddV2", "conv/add", [20])])
    fused_layout = NS(id=3, root_id=31, instructions=[_ins(30, "m", "multiply", "Mul", "batchnorm/mul", []),
                                                      _ins(31, "t", "transpose", operands=[30])])
    fused_product = NS(id=4, root_id=41, instructions=[_ins(40, "d", "dot"), _ins(41, "a", "add", "AddV2",
                                                                                   "dense/add", [40])])
    window = NS(id=5, root_id=50, instructions=[_ins(50, "rw", "reduce-window")])
    entry = NS(id=1, root_id=16, instructions=[
        _ins(10, "Conv2D.1", "convolution", "Conv2D", "conv/Conv2D"),
        _ins(11, "broadcast_add_fusion", "fusion", "AddV2", "conv/add", [10], [2]),
        _ins(12, "wrapped_reduce-window", "fusion", operands=[11], called=[5]),   # no metadata: its user's part
        _ins(13, "wrapped_reduce", "fusion", "Mean", "batchnorm_1/Mean", [12]),
        _ins(14, "transpose_copy_fusion", "fusion", operands=[13], called=[3]),   # root a transpose
        _ins(15, "dot_add_fusion", "fusion", "AddV2", "dense/add", [14], [4]),   # contains a product
        _ins(16, "copy.3", "copy", operands=[15])])
    module = NS(computations=[entry, fused_bias, fused_layout, fused_product, window])
    parts = tp.hlo_parts(module)
    assert {k: parts[k] for k in ("Conv2D.1", "broadcast_add_fusion", "wrapped_reduce-window", "wrapped_reduce",
                                  "transpose_copy_fusion", "dot_add_fusion", "copy.3")} == {
        "Conv2D.1": "conv products", "broadcast_add_fusion": "bias and casts", "wrapped_reduce-window": "BatchNorm",
        "wrapped_reduce": "BatchNorm", "transpose_copy_fusion": "layout copies", "dot_add_fusion": "dense products",
        "copy.3": "layout copies"}


def test_a_graph_of_many_paths_is_resolved_in_linear_time():
    # 60 diamonds in a row from the first instruction, 2^60 paths, none naming a part; the first
    # instruction's other user names one. A search that revisits instructions tries every path
    # before it finds that user (it hung `make test-all` in CI).
    ins, prev = [_ins(0, "n0", "add")], 0
    for k in range(60):
        a, b, c = 3 * k + 1, 3 * k + 2, 3 * k + 3
        ins += [_ins(a, f"n{a}", "add", operands=[prev]), _ins(b, f"n{b}", "add", operands=[prev]),
                _ins(c, f"n{c}", "add", operands=[a, b])]
        prev = c
    ins.append(_ins(prev + 1, "tagged", "add", "AddV2", "batchnorm/add", [0]))
    parts = tp.hlo_parts(NS(computations=[NS(id=1, root_id=prev, instructions=ins)]))
    assert parts["n0"] == "BatchNorm" and parts["tagged"] == "BatchNorm"
    assert {parts[f"n{i}"] for i in range(1, prev + 1)} == {"other kernels"}
