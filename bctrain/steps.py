"""The compiled pieces of training: one training step and one evaluation step (paper §1, §5).

`train_step` is a single `tf.function`: forward with binarized weights, squared hinge loss,
gradient of the latent weights through the identity straight-through estimator, and the optimizer
update (scaled and clipped for binary weights).

float32: the whole step is one function, XLA-compiled if `jit`.
Mixed precision (`bctrain.precision`, `split_step`): XLA's CPU back end runs 16-bit dots at
float32 speed, TensorFlow's oneDNN kernels at 16-bit speed, so the step is one plain `tf.function`
calling two XLA-compiled ones (if `jit`): the product weights wb / h (binarization and cast, one
fused pass over w) before the gradient tape, and the update after it; the matrix products between
them run in TensorFlow's kernels. The tape differentiates with respect to the product weights
themselves: that is the identity straight-through estimator, dL/dw = dL/dwb = dL/d(wb / h) / h.
"""
import tensorflow as tf

from bctrain.losses import n_errors, squared_hinge


def make_train_step(net, opt, jit: bool, split=None):
    """The training step of `net`; `split` (default: the precision's choice) picks the arrangement."""
    if net.precision.split_step if split is None else split:
        return _make_split_train_step(net, opt, jit)
    binary = [w for w, _, _ in net.binary_params()]
    other = net.other_params()
    n_binary = len(binary)

    @tf.function(jit_compile=jit)
    def train_step(x, y_pm1):
        with tf.GradientTape() as tape:
            y = net(x, training=True)
            loss = squared_hinge(y, y_pm1)
        grads = tape.gradient(loss, binary + other)
        opt.apply(grads[:n_binary], grads[n_binary:])
        return loss, n_errors(y, tf.argmax(y_pm1, axis=1))

    return train_step


def _make_split_train_step(net, opt, jit: bool):
    w_refs = {lin.w.ref() for lin in net.linear}
    direct = [v for v in net.other_params() if v.ref() not in w_refs]  # biases, BatchNorm
    n_layers = len(net.linear)

    @tf.function(jit_compile=jit)
    def product_weights():
        return net.product_weights(training=True)

    @tf.function(jit_compile=jit)
    def update(wb_grads, direct_grads):
        grads = {lin.w.ref(): tf.cast(g, tf.float32) / lin.h for lin, g in zip(net.linear, wb_grads)}
        grads.update(zip((v.ref() for v in direct), direct_grads))
        opt.apply([grads[w.ref()] for w in opt.binary_vars], [grads[v.ref()] for v in opt.other_vars])

    @tf.function
    def train_step(x, y_pm1):
        wbs = product_weights()
        with tf.GradientTape() as tape:
            tape.watch(wbs)
            y = net(x, training=True, weights=wbs)
            loss = squared_hinge(y, y_pm1)
            scaled = opt.scale_loss(loss)
        grads = tape.gradient(scaled, wbs + direct)
        update(grads[:n_layers], grads[n_layers:])
        return loss, n_errors(y, tf.argmax(y_pm1, axis=1))

    return train_step


def make_eval_step(net, eval_mode: str, jit: bool):
    if net.precision.split_step:
        product_weights = tf.function(lambda: net.product_weights(False, eval_mode), jit_compile=jit)

        @tf.function
        def split_eval_step(x, labels):
            return n_errors(net(x, training=False, weights=product_weights()), labels)
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
