"""The floor of a CNN training step: its convolutions and dense products alone (benchmarks.bench_cnn).

A step of a conv net at batch B runs, for every 3x3 conv layer at its own resolution H x W (before
its pool), three convolutions of 2·B·H·W·9·c_in·c_out FLOPs each: the forward one, the gradient
with respect to its input (not for the first layer: the images need none) and the gradient with
respect to its kernel; and for every dense layer the three products of benchmarks.roofline (here
every dense layer needs its input gradient: convolutions come before). These are the products'
kinds: "forward", "input gradient", "kernel gradient" (convolutions) and "dense" (all three dense
products). `products_seconds` times each kind alone on random operands of the step's shapes, as one
function over every layer: TensorFlow's own kernels (jit False: Conv2D, Conv2DBackpropInput,
Conv2DBackpropFilter, MatMul; oneDNN's where TensorFlow enables it, else Eigen's) or XLA's (jit
True), in float32 or bfloat16 (operands and result in that dtype, as a mixed step runs them).
The floor is the products of the faster of the two (the sum over kinds) plus the least update
traffic, 28 bytes per latent weight at the streaming bandwidth (benchmarks.roofline).
"""
from benchmarks.quiet_tf import tf  # first: TensorFlow loads quietly
from benchmarks.roofline import median_seconds

CONV_KINDS = ("forward", "input gradient", "kernel gradient")
KINDS = CONV_KINDS + ("dense",)


def conv_shapes(specs, input_shape) -> list:
    """(height, width, c_in, c_out) of every conv layer, at the resolution it computes at."""
    height, width = (tuple(input_shape) + (1, 1))[:2]  # an MLP's (n_in,): no conv layers
    out = []
    for s in specs:
        if s.kind == "conv":
            out.append((height, width, s.n_in, s.n_out))
            if s.pool:
                height, width = height // 2, width // 2
    return out


def kind_flops(specs, input_shape, batch) -> dict:
    """FLOPs of each kind of product in one step (2 per multiply-add)."""
    convs = conv_shapes(specs, input_shape)
    one = [2 * batch * h * w * 9 * c_in * c_out for h, w, c_in, c_out in convs]
    dense = sum(s.n_weights for s in specs if s.kind == "dense")
    return {"forward": sum(one), "input gradient": sum(one[1:]), "kernel gradient": sum(one),
            "dense": 2 * batch * 3 * dense}


def _operands(specs, input_shape, batch, dtype, seed=0):
    gen = tf.random.Generator.from_seed(seed)

    def normal(shape):
        return tf.cast(gen.normal(shape), dtype)
    convs = [(normal([batch, h, w, c_in]), normal([batch, h, w, c_out]), normal([3, 3, c_in, c_out]))
             for h, w, c_in, c_out in conv_shapes(specs, input_shape)]
    dense = [(normal([batch, s.n_in]), normal([batch, s.n_out]), normal([s.n_in, s.n_out]))
             for s in specs if s.kind == "dense"]
    return convs, dense


# The ops the gradient tape emits for tf.nn.conv2d's gradients (stride 1, "SAME").
def _forward(convs):
    return [tf.nn.conv2d(x, w, strides=1, padding="SAME") for x, _, w in convs]


def _input_gradient(convs):
    return [tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(x), filter=w, out_backprop=dy,
                                           strides=[1, 1, 1, 1], padding="SAME") for x, dy, w in convs[1:]]


def _kernel_gradient(convs):
    return [tf.raw_ops.Conv2DBackpropFilter(input=x, filter_sizes=tf.shape(w), out_backprop=dy,
                                            strides=[1, 1, 1, 1], padding="SAME") for x, dy, w in convs]


def _dense(dense):
    return ([tf.matmul(a, w) for a, _, w in dense] + [tf.matmul(a, d, transpose_a=True) for a, d, _ in dense]
            + [tf.matmul(d, w, transpose_b=True) for _, d, w in dense])


FUNCTIONS = {"forward": (_forward, 0), "input gradient": (_input_gradient, 0),
             "kernel gradient": (_kernel_gradient, 0), "dense": (_dense, 1)}


def products_seconds(specs, input_shape, batch, dtype, jit, repeats=3, kinds=KINDS) -> dict:
    """{kind: median seconds of that kind's products alone} (`kinds`: which to time)."""
    operands = _operands(specs, input_shape, batch, dtype)
    out = {}
    for kind in kinds:
        fn, which = FUNCTIONS[kind]
        out[kind] = median_seconds(tf.function(fn, jit_compile=jit), (operands[which],), repeats)
    return out
