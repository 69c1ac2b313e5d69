"""The evaluation step (paper §2, §5): errors of a batch with the real or the ±1 weights.

A split plan (16-bit products, or a strategy) binarizes in an XLA function and runs the products in
TensorFlow's kernels, as its training step does; under a strategy each replica counts its rows.
"""
import tensorflow as tf

from bctrain.paper.losses import n_errors
from bctrain.step.strategy import replica_slice

SUM = tf.distribute.ReduceOp.SUM


def make_eval_step(net, eval_mode: str, plan, strategy=None):
    """(x, labels) of a batch -> number of errors, in the form of `plan`'s training step."""
    jit = plan.jit
    if plan.form == "split":
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
