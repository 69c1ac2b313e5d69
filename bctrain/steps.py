"""The compiled pieces of training: one training step and one evaluation step (paper §1, §5).

`train_step` is a single `tf.function` (optionally XLA-compiled): forward with binarized weights,
squared hinge loss, gradient of the latent weights through the identity straight-through estimator,
and the optimizer update (scaled and clipped for binary weights).
"""
import tensorflow as tf

from bctrain.losses import n_errors, squared_hinge


def make_train_step(net, opt, jit: bool):
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


def make_eval_step(net, eval_mode: str, jit: bool):
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
