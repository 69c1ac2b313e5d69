"""Inference tf.functions of the deployment form, over ±1 constants (paper §9).

Each block is y = a ⊙ pool(x ∗ wb) + c (ReLU on all but the last), with wb the unpacked sign bits
as float32 ±1 constants: no Sign op, no random op, no variables, no training branch. A hidden block
with binary activations (BinaryNet, §10) is instead y = 2·[d ⊙ u >= t] − 1 with its thresholds t
and directions d (`bcexport.threshold`), as float32 constants (the integer thresholds are exact
there), named act<i>: the verification adds them to the ONNX outputs (bcexport.hidden). sign(0) = +1
is in the thresholds; ONNX's Sign, which gives 0 at 0, is not used. On ±1 inputs u is an exact integer
in float32.

The constants are created inside the traced body: tf2onnx turns a tensor captured from outside a
tf.function into an extra graph input, while constants built during tracing are frozen into the
graph (and become ONNX initializers named after them: wb0, a0, c0, ...).

A constant Mul right after a convolution is folded into the kernel twice over: by grappler's
constant folding (MulConvPushDown, which tf2onnx runs while freezing) and by tf2onnx's transpose
optimizer. Either would turn the ±1 kernel into a ±a one, so for a conv block without pool the scale
is broadcast to the dynamic shape of the conv output first: the same products, but not a constant.
"""
import math

import tensorflow as tf

from bctrain.data.preprocess import KINDS
from bcexport import ExportError
from bcexport.pack import Deployment


def _blocks_graph(dep: Deployment, x):
    """The block stack on a float32 tensor x [N, *input_shape]; call only while tracing."""
    for i, blk in enumerate(dep.blocks):
        if blk.kind == "conv":
            u = tf.nn.conv2d(x, tf.constant(blk.wb, name=f"wb{i}"), strides=1, padding="SAME")
        else:
            if len(x.shape) > 2:
                x = tf.reshape(x, [-1, math.prod(x.shape[1:])])
            u = tf.matmul(x, tf.constant(blk.wb, name=f"wb{i}"))
        if blk.pool:
            u = tf.nn.max_pool2d(u, ksize=2, strides=2, padding="VALID")
        if blk.sign is not None:
            x = _sign_graph(blk, u, i)
            continue
        a = tf.constant(blk.a, name=f"a{i}")
        if blk.kind == "conv" and not blk.pool:
            a = tf.broadcast_to(a, tf.shape(u))  # keeps the kernel ±1: see the module docstring
        x = a * u + tf.constant(blk.c, name=f"c{i}")
        if blk.relu:
            x = tf.nn.relu(x)
    return tf.identity(x, name="logits")


def act_name(i: int) -> str:
    """The name of block i's ±1 output in the graph (and in the ONNX files)."""
    return f"act{i}"


def _sign_graph(blk, u, i):
    """±1 where direction · u >= threshold (the constants broadcast as `a` is, for the same reason)."""
    d = tf.constant(blk.sign.direction.astype("float32"), name=f"dir{i}")
    if blk.kind == "conv" and not blk.pool:
        d = tf.broadcast_to(d, tf.shape(u))
    up = d * u >= tf.constant(blk.sign.threshold.astype("float32"), name=f"thr{i}")
    return tf.subtract(2.0 * tf.cast(up, tf.float32), 1.0, name=act_name(i))  # 1 or 0 -> +1 or −1, exactly


def inference_function(dep: Deployment):
    """tf.function: x float32 [None, *input_shape] (preprocessed) -> logits float32 [None, classes]."""
    spec = tf.TensorSpec([None, *dep.input_shape], tf.float32, name="x")

    @tf.function(input_signature=[spec])
    def infer(x):
        return _blocks_graph(dep, x)

    return infer


def has_raw_model(dep: Deployment) -> bool:
    """Whether the network takes the run's raw images (same number of values)."""
    return bool(dep.image_shape) and math.prod(dep.image_shape) == math.prod(dep.input_shape)


def raw_inference_function(dep: Deployment):
    """tf.function: uint8 pixels [None, *image_shape] -> logits, with the run's preprocessing
    (`KINDS[dep.preprocess].graph`, e.g. pixels / 255 − mean, or GCN then ZCA) in the graph."""
    if not has_raw_model(dep):
        raise ExportError(f"raw-pixel model needs images of {math.prod(dep.input_shape)} values, "
                          f"the run's dataset has {dep.image_shape or 'no image shape'}")
    spec = tf.TensorSpec([None, *dep.image_shape], tf.uint8, name="pixels")
    kind = KINDS[dep.preprocess]

    @tf.function(input_signature=[spec])
    def infer_raw(pixels):
        x = kind.graph(tf.cast(pixels, tf.float32), dep.params)
        return _blocks_graph(dep, tf.reshape(x, [-1, *dep.input_shape]))

    return infer_raw
