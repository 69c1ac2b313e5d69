"""The compiled pieces of training: one training step and one evaluation step (paper §1, §5).

`train_step` is a single `tf.function`: forward with binarized weights, squared hinge loss,
gradient of the latent weights through the identity straight-through estimator, and the optimizer
update (scaled and clipped for binary weights).

float32: the whole step is one function, XLA-compiled if `jit`; with the fused update
(bctrain.step.fused_update, the default on a CPU) the forward and backward pass are that XLA function
and the update runs after it, outside XLA (a custom op cannot be compiled by XLA); with det
binarization the update also writes the first layer's next ±1 weights, which the first product
reads (`_product_weight_caches`).
Mixed precision (`bctrain.step.precision`, `split_step`): XLA's CPU back end runs 16-bit dots at
float32 speed, TensorFlow's oneDNN kernels at 16-bit speed, so the step is one plain `tf.function`
calling two XLA-compiled ones (if `jit`): the product weights wb / h (binarization and cast, one
fused pass over w) before the gradient tape, and the update after it; the matrix products between
them run in TensorFlow's kernels. The tape differentiates with respect to the product weights
themselves: that is the identity straight-through estimator, dL/dw = dL/dwb (= dL/d(wb / h) / h for
the 16-bit product weights wb / h). With the fused update and det binarization (no strategy), the
binarization pass goes too: the update writes the new w's product weights into variables the
next step reads (`_product_weight_caches`), in the same pass over memory.

Under a tf.distribute strategy (bctrain.step.strategy) the step is always split, and runs on every
replica (`strategy.run`): each takes its rows of the global batch, draws its own product weights
(a tf.random.Generator created in the strategy's scope gives each replica an independent stream,
reproducible from the seed), and scales its mean loss by its share of the global batch, so that the
all-reduced (summed) gradients are those of the loss averaged over the global batch. The update is
then applied once per variable: `merge_call` leaves the replicas and `strategy.extended.update`
runs the same XLA-compiled update on each replica's copy of the variables (every read and write
inside it resolves to that copy) with the same all-reduced gradients, so every replica keeps
identical latent weights and optimizer state. The nested XLA functions are traced once per device.
"""
import tensorflow as tf

from bctrain.paper.losses import n_errors, squared_hinge
from bctrain.step.strategy import replica_slice

SUM = tf.distribute.ReduceOp.SUM


def make_train_step(net, opt, jit: bool, split=None, strategy=None, wb_cache=True):
    """The training step of `net`: (x, y_pm1) of the global batch -> (mean loss, errors).

    `split` (default: the precision's choice) picks the arrangement; a `strategy` (None: the default
    one) always runs the split step on each replica. `wb_cache` (fused update, det, no strategy):
    the update writes the next step's ±1 product weights (`_product_weight_caches`), every layer's
    in the split step, the first layer's in the float32 XLA step; False keeps the binarization
    pass in the step (benchmarks/bench_step_parts.py)."""

    if strategy is not None or (net.precision.split_step if split is None else split):
        caches = _product_weight_caches(net, opt) if strategy is None and wb_cache else None
        return _make_split_train_step(net, opt, jit, strategy or tf.distribute.get_strategy(), caches)
    binary = [w for w, _, _ in net.binary_params()]
    other = net.other_params()
    n_binary = len(binary)
    # fused update, det: the first layer's ±1 weights come from the previous update (`_product_weight_caches`)
    caches = _product_weight_caches(net, opt, n_layers=1) if wb_cache and net.compute_dtype == tf.float32 else None
    first = None if caches is None else caches[0]

    def forward_backward(x, y_pm1):
        with tf.GradientTape() as tape:
            if first is None:
                y = net(x, training=True)
                sources = binary
            else:  # d loss / d wb1 is d loss / d w1 (the identity straight-through estimator)
                wb1 = first.read_value()
                tape.watch(wb1)
                y = net(x, training=True, weights=[wb1] + [lin.product_weights(training=True)
                                                           for lin in net.linear[1:]])
                sources = [wb1] + binary[1:]
            loss = squared_hinge(y, y_pm1)
        return loss, n_errors(y, tf.argmax(y_pm1, axis=1)), tape.gradient(loss, sources + other)

    if opt.fused:
        forward_backward = tf.function(forward_backward, jit_compile=jit)
        first_w = net.linear[0].w.ref()
        caches = None if first is None else [first if w.ref() == first_w else None for w in opt.binary_vars]

        @tf.function
        def fused_train_step(x, y_pm1):
            loss, wrong, grads = forward_backward(x, y_pm1)
            opt.apply(grads[:n_binary], grads[n_binary:], binary_caches=caches)
            return loss, wrong
        return fused_train_step

    @tf.function(jit_compile=jit)
    def train_step(x, y_pm1):
        loss, wrong, grads = forward_backward(x, y_pm1)
        opt.apply(grads[:n_binary], grads[n_binary:])
        return loss, wrong

    return train_step


def make_train_loop(train_step, per_call: int):
    """Several steps of `train_step` per call: (iterator, n) -> (losses [n] float32, errors [n] int32).

    The next n batches of the iterator (1 <= n <= `per_call`; an int or a scalar tensor) are trained
    on in order. A full call (n = `per_call`) is one `tf.function` in which the steps are unrolled
    (as Keras' steps_per_execution, without a loop between the steps), traced once: the Python
    round trip is paid once per `per_call` steps and no loop machinery runs between them (a
    `tf.range` loop measured about 0.4 ms more per `mnist` step, docs/BENCHMARKS.md). A shorter
    call (an epoch's rest and its last step, `step_groups`) runs `train_step` n times, one call
    each. Either way each step is the one `train_step` runs alone, in the same order: the results
    are the same (tests/test_train_loop.py). `per_call` 1: `train_step` on the next batch (scalar
    loss and errors)."""
    if per_call == 1:
        return lambda iterator, n: train_step(*next(iterator))

    def stacked(results):
        return (tf.stack([tf.cast(loss, tf.float32) for loss, _ in results]),
                tf.stack([tf.cast(wrong, tf.int32) for _, wrong in results]))

    @tf.function
    def full_call(iterator):
        return stacked([train_step(*next(iterator)) for _ in range(per_call)])  # ordered: shared variables

    def call(iterator, n):
        n = int(n)
        if not 1 <= n <= per_call:
            raise ValueError(f"{n} steps in one call: expected 1 to {per_call}")
        return full_call(iterator) if n == per_call else stacked([train_step(*next(iterator)) for _ in range(n)])
    return call


def step_groups(n_steps: int, per_call: int) -> list:
    """Sizes of the calls of an epoch of `n_steps` steps, at most `per_call` each; the last step
    is a call of its own (the epoch loop reads the weights just before it, for the flip ratio)."""
    if n_steps < 1 or per_call < 1:
        raise ValueError(f"n_steps {n_steps} and per_call {per_call} must be at least 1")
    head = n_steps - 1
    return [min(per_call, head - i) for i in range(0, head, per_call)] + [1]


def _product_weight_caches(net, opt, n_layers=None):
    """With the fused update, per linear layer: a variable holding the product weights the next
    step uses (binary layers in det mode, of the first `n_layers` layers only if given), which the
    update rewrites from the new w in the same pass, or None (no fused update, other layers).
    Seeded from w here: the step that owns them must be made again after anything but the step
    itself changes w (bctrain/train.py makes it after a resume's restore). None if no layer has one.

    The split step caches every layer's: there they save the binarization pass (docs/BENCHMARKS.md,
    `benchmarks/bench_step_parts.py`). The float32 XLA step caches the first layer's only: that
    binarization is the one pass XLA cannot overlap (the first product waits for it, about 0.5 ms of
    a 34 ms `mnist` step), while XLA binarizes the other layers beside the first products; caching
    them too measured no faster (the update then writes 32 MB more; docs/BENCHMARKS.md items 17-18)."""
    if not opt.fused:
        return None
    binary_refs = {w.ref() for w in opt.binary_vars}
    cached = net.linear if n_layers is None else net.linear[:n_layers]
    caches = [tf.Variable(lin.product_weights(training=True), trainable=False, name="wb_cache")
              if lin.is_binary and lin.mode == "det" and lin.w.ref() in binary_refs else None
              for lin in cached]
    caches += [None] * (len(net.linear) - len(caches))
    return caches if any(c is not None for c in caches) else None


def _make_split_train_step(net, opt, jit: bool, strategy, caches=None):
    w_refs = {lin.w.ref() for lin in net.linear}
    direct = [v for v in net.other_params() if v.ref() not in w_refs]  # biases, BatchNorm
    n_layers = len(net.linear)
    caches = caches or [None] * n_layers

    @tf.function(jit_compile=jit)
    def computed_product_weights():
        return [lin.product_weights(training=True) for lin, c in zip(net.linear, caches) if c is None]

    def product_weights():  # the cached ones are read outside XLA (no copy)
        computed = iter(computed_product_weights() if any(c is None for c in caches) else [])
        return [next(computed) if c is None else c.read_value() for c in caches]

    layer_of = {lin.w.ref(): i for i, lin in enumerate(net.linear)}
    binary_layers = [net.linear[layer_of[w.ref()]] for w in opt.binary_vars]
    binary_caches = None
    if any(c is not None for c in caches):
        binary_caches = [caches[layer_of[w.ref()]] for w in opt.binary_vars]

    def update(wb_grads, direct_grads):
        # binary weights: the gradient of wb / d goes to the optimizer with d (it divides, in float32)
        grads = {lin.w.ref(): g if lin.is_binary else lin.latent_gradient(g)
                 for lin, g in zip(net.linear, wb_grads)}
        grads.update(zip((v.ref() for v in direct), direct_grads))
        opt.apply([grads[w.ref()] for w in opt.binary_vars], [grads[v.ref()] for v in opt.other_vars],
                  binary_divisors=[lin.product_divisor for lin in binary_layers],
                  binary_caches=binary_caches)

    if not opt.fused:
        update = tf.function(update, jit_compile=jit)

    def apply_once(strategy, grads):  # cross-replica context: each replica's copy, the same gradients
        return strategy.extended.update(opt.iterations, lambda _, g: update(g[:n_layers], g[n_layers:]),
                                        args=(grads,), group=True)

    def replica_step(x, y_pm1):
        ctx = tf.distribute.get_replica_context()
        x, y_pm1 = replica_slice(x), replica_slice(y_pm1)
        share = x.shape[0] * ctx.num_replicas_in_sync  # rows of the global batch
        wbs = product_weights()
        with tf.GradientTape() as tape:
            tape.watch(wbs)
            y = net(x, training=True, weights=wbs)
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


def make_eval_step(net, eval_mode: str, jit: bool, strategy=None):
    """(x, labels) of a batch -> number of errors; under a strategy each replica counts its rows."""
    if strategy is not None or net.precision.split_step:
        strategy = strategy or tf.distribute.get_strategy()
        product_weights = tf.function(lambda: net.product_weights(False, eval_mode), jit_compile=jit)

        def replica_eval(x, labels):
            x, labels = replica_slice(x), replica_slice(labels)
            return n_errors(net(x, training=False, weights=product_weights()), labels)

        @tf.function
        def split_eval_step(x, labels):
            return strategy.reduce(SUM, strategy.run(replica_eval, args=(x, labels)), axis=None)
        return split_eval_step

    @tf.function(jit_compile=jit)
    def eval_step(x, labels):
        y = net(x, training=False, eval_mode=eval_mode)
        return n_errors(y, labels)

    return eval_step


def dataset_error_rate(eval_step, batches) -> float:
    """Fraction of misclassified samples over a `pipeline.eval_batches` dataset."""
    errors, count = 0, 0
    for x, labels in batches:
        errors += int(eval_step(x, labels))
        count += int(x.shape[0])
    return errors / count
