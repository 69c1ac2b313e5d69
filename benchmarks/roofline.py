"""The floor of a training step, measured: its matrix products alone and its least memory traffic.

A BinaryConnect step of an MLP at batch B does 3 products per layer (forward, input gradient, weight
gradient; the first layer needs no input gradient): 11 for the 4-layer `mnist` net,
2 * B * (3 * weights - weights of the first layer) FLOPs (`step_flops`). Its update must at least read w, m, v, g and write w, m, v: 28 bytes per latent weight
(float32). floor = products + 28 bytes * weights / streaming bandwidth; a step cannot be faster.

`products_seconds` times the 11 products on random operands in one function (float32 under XLA, as
the float32 step runs them; bfloat16 in TensorFlow's oneDNN kernels, as the split mixed step does);
`stream_gbps` the streaming bandwidth an in-place update reaches: one XLA pass w <- w / 2 + b over
arrays the size of the latent weights (read w and b, write w in place: 12 bytes per element; an
out-of-place c = a + s * b, which earlier releases timed, writes to fresh memory and measured about
35 GB/s where this measures about 60 on the development machine: the update is in place, so its
floor uses this); `update_seconds` the optimizer update alone (bctrain.paper.optim, either kernel).
"""
import time

from benchmarks.quiet_tf import tf  # first: TensorFlow loads quietly
from bctrain.paper.optim import Optimizer
from bctrain.step import fused_update

UPDATE_BYTES_PER_WEIGHT = 28  # read w, m, v, g; write w, m, v; float32


def _seconds(fn, args, repeats):
    """Median seconds of `fn(*args)` over `repeats` calls (after one warm-up call).

    TensorFlow executes synchronously by default: a call returns when its outputs are computed."""
    fn(*args)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def product_operands(specs, batch, dtype, seed=0):
    """Random operands of the step's products: activations a_i, output gradients d_i, weights w_i."""
    gen = tf.random.Generator.from_seed(seed)
    a = [tf.cast(gen.normal([batch, s.n_in]), dtype) for s in specs]
    d = [tf.cast(gen.normal([batch, s.n_out]), dtype) for s in specs]
    w = [tf.cast(gen.normal([s.n_in, s.n_out]), dtype) for s in specs]
    return a, d, w


def step_products(a, d, w):
    """The products of one step: a_i @ w_i, a_i^T @ d_i, and d_i @ w_i^T for every layer but the first."""
    out = [tf.matmul(ai, wi) for ai, wi in zip(a, w)]
    out += [tf.matmul(ai, di, transpose_a=True) for ai, di in zip(a, d)]
    out += [tf.matmul(di, wi, transpose_b=True) for di, wi in zip(d[1:], w[1:])]
    return out


def matmul_gflops(n=2048, repeats=10):
    """The machine's float32 matmul rate at n x n (TensorFlow's kernels): a peak for comparisons."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda a, b: tf.matmul(a, b))
    return 2 * n ** 3 / _seconds(mm, (a, b), repeats) / 1e9


def step_flops(specs, batch) -> int:
    """FLOPs of `step_products`: 2 per multiply-add."""
    return 2 * batch * (3 * sum(s.n_weights for s in specs) - specs[0].n_weights)


def products_seconds(specs, batch, dtype, jit, repeats=20):
    fn = tf.function(step_products, jit_compile=jit)
    return _seconds(fn, product_operands(specs, batch, dtype), repeats)


def stream_gbps(n, repeats=20):
    gen = tf.random.Generator.from_seed(1)
    w, b = tf.Variable(gen.normal([n])), gen.normal([n])

    @tf.function(jit_compile=True)
    def fn(b):
        w.assign(w * 0.5 + b)
    return 12 * n / _seconds(fn, (b,), repeats) / 1e9


def update_seconds(net, repeats=20, kernel="xla"):
    """One Adam update of every parameter of `net` (gradients fixed), as the step runs it: the XLA
    update compiled by XLA, the fused one outside it (bctrain.paper.optim, bctrain.step.fused_update)."""
    opt = Optimizer("adam", net.binary_params(), net.other_params(), lr=1e-3)
    grads = [tf.random.stateless_normal(w.shape, seed=[i, 0]) * 1e-3 for i, w in enumerate(opt.trained)]

    @tf.function(jit_compile=kernel == "xla")
    def apply(grads):
        if kernel == "fused":
            fused_update.apply(opt, grads)
        else:
            opt.apply(grads)
        return opt.iterations

    return _seconds(apply, (grads,), repeats)


def floor_seconds(products, n_weights, gbps):
    return products + UPDATE_BYTES_PER_WEIGHT * n_weights / (gbps * 1e9)
