"""Several training steps per call of the compiled step (`--steps-per-call`, as Keras'
steps_per_execution): fewer round trips through Python, the same steps in the same order.
"""
import tensorflow as tf


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
