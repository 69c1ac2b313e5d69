"""Bytes of weights each inference back end holds in memory once loaded (paper §9: 32x less memory).

Measured on the loaded objects, not computed from the architecture:
    TF          the constants of the traced inference graph (±1 float32 weights, a, c)
    ORT         the initializers of the graph onnxruntime runs after its optimizations, read from the
                optimized model it writes (`optimized_model_filepath`): for model.packed.onnx the
                in-graph unpacking is constant-folded back to float32 when the session is created
    C           the weight arrays (1-bit weights, a, c; not the preprocessing mean) of the generated
                model's compiled shared library, from its symbol table (`nm --print-size`)
    NumPy f32   the unpacked arrays the reference pass multiplies with
"""
import os
import re
import shutil
import subprocess
import tempfile

import numpy as np

C_WEIGHT_SYMBOL = re.compile(r"^block\d+_[wac]$")


def tf_weight_bytes(concrete_function) -> int:
    """Bytes of every constant tensor in the graph of a TF concrete function."""
    import tensorflow as tf
    return sum(tf.make_ndarray(node.attr["value"].tensor).nbytes
               for node in concrete_function.graph.as_graph_def().node if node.op == "Const")


def ort_weight_bytes(path: str) -> int:
    """Bytes of the initializers of the model onnxruntime runs after optimizing `path`."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper
    with tempfile.TemporaryDirectory(prefix="bcnn-ort-") as tmp:
        opts = ort.SessionOptions()
        opts.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        opts.log_severity_level = 3  # its warning that the optimized file is machine-specific: known
        ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        model = onnx.load(opts.optimized_model_filepath)
        return sum(numpy_helper.to_array(init).nbytes for init in model.graph.initializer)


def c_weight_bytes(library: str) -> int | None:
    """Bytes of the weight arrays in a compiled generated model (None without `nm`)."""
    nm = shutil.which("nm")
    if not nm:
        return None
    out = subprocess.run([nm, "--print-size", library], capture_output=True, text=True, check=True).stdout
    fields = (line.split() for line in out.splitlines())
    return sum(int(f[1], 16) for f in fields if len(f) == 4 and C_WEIGHT_SYMBOL.match(f[3]))


def numpy_weight_bytes(weights) -> int:
    """Bytes of the unpacked (wb, a, c) arrays."""
    return sum(np.asarray(v).nbytes for block in weights for v in block)
