"""The training step a `StepPlan` describes (bctrain.step.plan): the reference step, or a faster
arrangement of the same arithmetic.

    whole, xla update     the reference step itself (bctrain.step.reference)
    whole, fused update   forward and backward in one function (XLA-compiled if jit), then the fused op
                          outside XLA (a custom op cannot be compiled by XLA); with the first layer's
                          cache the first product reads the ±1 weights the previous update wrote
    split                 the product weights (binarization, or the caches) first, in an XLA function;
                          the dropout masks where their generator's algorithm runs (threefry under
                          XLA, philox in TensorFlow's kernels, as in the whole step of the run's jit);
                          the products under the gradient tape in TensorFlow's kernels; then the update
                          (XLA-compiled, or the fused op). The tape differentiates with respect to the
                          product weights themselves: that is the identity straight-through estimator,
                          dL/dw = dL/dwb (= dL/d(wb / h) / h for 16-bit product weights wb / h).

Under a tf.distribute strategy (plan.replicated) the split step runs on every replica
(`strategy.run`): each takes its rows of the global batch, draws its own product weights (a
tf.random.Generator created in the strategy's scope gives each replica an independent stream,
reproducible from the seed), and scales its mean loss by its share of the global batch, so that the
all-reduced (summed) gradients are those of the loss averaged over the global batch. The update is
then applied once per variable: `merge_call` leaves the replicas and `strategy.extended.update`
runs the same update on each replica's copy of the variables with the same all-reduced gradients, so
every replica keeps identical latent weights and optimizer state.
"""
import os

import tensorflow as tf

from bccommon import machine
from bctrain.paper.losses import n_errors, squared_hinge
from bctrain.step import fused_update
from bctrain.step.caches import ProductWeightCache
from bctrain.step.plan import choose_plan
from bctrain.step.reference import make_reference_step
from bctrain.step.strategy import replica_slice

SUM = tf.distribute.ReduceOp.SUM


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # CPU flags of bfloat16 dot-product instructions


def bf16_kernels() -> bool:
    """Whether TensorFlow's CPU kernels compute bfloat16 products with bfloat16 instructions: oneDNN's,
    on a CPU with avx512_bf16 or amx_bf16 (TensorFlow turns oneDNN on by default on such CPUs;
    TF_ENABLE_ONEDNN_OPTS=0 turns it off)."""
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").lower() not in ("0", "false")
    return onednn and bool(machine.cpu_flags() & set(BF16_FLAGS))


def plan_for(cfg):
    """`choose_plan` for this machine: whether TensorFlow sees a GPU, whether the fused op loads
    (built on first use, only where the plan would use it), and whether the CPU's bfloat16 kernels are fast."""
    return choose_plan(cfg, gpu=bool(tf.config.list_logical_devices("GPU")),
                       fused_status=lambda: "" if fused_update.load() is not None else fused_update.reason(),
                       bf16_kernels=bf16_kernels())


def make_train_step(net, opt, plan, strategy=None):
    """The training step of `net` and `opt` under `plan`: (x, y_pm1) of the global batch -> (mean
    loss, errors). `strategy`: the tf.distribute strategy of a replicated plan."""
    if plan.replicated != (strategy is not None):
        raise ValueError("a replicated plan needs its strategy, and only it")
    cache = _make_cache(net, opt, plan)
    if plan.form == "split":
        return _split_step(net, opt, plan, cache, strategy or tf.distribute.get_strategy())
    if plan.update == "xla":
        return make_reference_step(net, opt, plan.jit)
    return _whole_fused_step(net, opt, plan, cache)


def _make_cache(net, opt, plan):
    """The ±1 caches the plan asks for (None for none)."""
    if plan.cached == "none":
        return None
    binary_layers = [p.layer for p in opt.params if p.binary]
    return ProductWeightCache(net, opt, binary_layers[:1] if plan.cached == "first" else binary_layers)


def _update(opt, plan, cache):
    """(grads, divisors) -> None: the plan's update kernel (named "update" for profiles)."""
    def update(grads, divisors=None):
        with tf.name_scope("update"):
            if plan.update == "fused":
                return fused_update.apply(opt, grads, divisors, cache)
            return opt.apply(grads, divisors)
    return update


def _whole_fused_step(net, opt, plan, cache):
    first = None if cache is None else cache.get(0)
    if first is not None and opt.params[0].layer != 0:
        raise ValueError("the first layer's cache needs the first parameter to be layer 0's weights")
    update = _update(opt, plan, cache)
    # d loss / d w1 = d loss / d wb1 / d: a 16-bit cache holds wb / h (bctrain.paper.layers)
    divisors = None if first is None else [net.linear[0].product_divisor] + [1.0] * (len(opt.params) - 1)

    @tf.function(jit_compile=plan.jit)
    def forward_backward(x, y_pm1):
        with tf.GradientTape() as tape:
            if first is None:
                y = net(x, training=True)
                sources = opt.trained
            else:  # d loss / d wb1 is d loss / d w1 (the identity straight-through estimator)
                wb1 = first.read_value()
                tape.watch(wb1)
                y = net(x, training=True, weights=[wb1] + [lin.product_weights(training=True)
                                                           for lin in net.linear[1:]])
                sources = [wb1] + opt.trained[1:]
            loss = squared_hinge(y, y_pm1)
        return loss, n_errors(y, tf.argmax(y_pm1, axis=1)), tape.gradient(loss, sources)

    @tf.function
    def fused_train_step(x, y_pm1):
        loss, wrong, grads = forward_backward(x, y_pm1)
        update(grads, divisors)
        return loss, wrong
    return fused_train_step


def _split_step(net, opt, plan, cache, strategy):
    n_layers = len(net.linear)
    cached = [None if cache is None else cache.get(i) for i in range(n_layers)]
    # Where each trained parameter's gradient comes from: a layer's product weights, or itself.
    layer_of = {id(lin.w): i for i, lin in enumerate(net.linear)}
    sources = [layer_of.get(id(p.w)) for p in opt.params]
    direct = [p.w for p, layer in zip(opt.params, sources) if layer is None]  # biases, BatchNorm
    divisors = [net.linear[layer].product_divisor if p.binary else 1.0 for p, layer in zip(opt.params, sources)]
    apply_update = _update(opt, plan, cache)

    @tf.function(jit_compile=plan.jit)
    def computed_product_weights():
        return [lin.product_weights(training=True) for lin, c in zip(net.linear, cached) if c is None]

    def product_weights():  # the cached ones are read outside XLA (no copy)
        computed = iter(computed_product_weights() if any(c is None for c in cached) else [])
        return [next(computed) if c is None else c.read_value() for c in cached]

    dropout_keep = None
    if any(net.drop):
        threefry = net.dropout_gen.algorithm == tf.random.Algorithm.THREEFRY.value
        dropout_keep = tf.function(net.dropout_keep, jit_compile=threefry)

    def update(wb_grads, direct_grads):
        direct_grads = iter(direct_grads)
        grads = [next(direct_grads) if layer is None else
                 wb_grads[layer] if p.binary else net.linear[layer].latent_gradient(wb_grads[layer])
                 for p, layer in zip(opt.params, sources)]
        apply_update(grads, divisors)

    if plan.update == "xla":
        update = tf.function(update, jit_compile=plan.jit)

    def apply_once(strategy, grads):  # cross-replica context: each replica's copy, the same gradients
        return strategy.extended.update(opt.iterations, lambda _, g: update(g[:n_layers], g[n_layers:]),
                                        args=(grads,), group=True)

    def replica_step(x, y_pm1):
        ctx = tf.distribute.get_replica_context()
        x, y_pm1 = replica_slice(x), replica_slice(y_pm1)
        share = x.shape[0] * ctx.num_replicas_in_sync  # rows of the global batch
        wbs = product_weights()
        keep = dropout_keep(x.shape[0]) if dropout_keep else None
        with tf.GradientTape() as tape:
            tape.watch(wbs)
            y = net(x, training=True, weights=wbs, keep=keep)
            loss = squared_hinge(y, y_pm1)
            if ctx.num_replicas_in_sync > 1:
                loss = loss * (x.shape[0] / share)
            scaled = opt.scale_loss(loss)
        grads = tape.gradient(scaled, wbs + direct)
        if ctx.num_replicas_in_sync > 1:
            grads = ctx.all_reduce(SUM, [tf.cast(g, tf.float32) for g in grads])
        ctx.merge_call(apply_once, args=(grads,))
        return loss, n_errors(y, tf.argmax(y_pm1, axis=1))

    @tf.function
    def train_step(x, y_pm1):
        loss, wrong = strategy.run(replica_step, args=(x, y_pm1))
        return strategy.reduce(SUM, loss, axis=None), strategy.reduce(SUM, wrong, axis=None)

    return train_step
