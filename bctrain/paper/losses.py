"""Squared hinge loss and error rate (paper §5: the "L2-SVM" output).

    squared_hinge(y, y_pm1) = mean over batch and classes of max(0, 1 - y_pm1 * y)^2
with targets y_pm1 = 2 * onehot - 1 in {-1, +1}; the predicted class is argmax(y).
"""
import tensorflow as tf


def squared_hinge(y, y_pm1):
    """mean(max(0, 1 - y_pm1 * y)^2) over batch and classes; y are scores, y_pm1 the +-1 targets."""
    with tf.name_scope("loss"):  # named for profiles (benchmarks.profile_step)
        y_pm1 = tf.cast(y_pm1, y.dtype)
        return tf.reduce_mean(tf.square(tf.maximum(0.0, 1.0 - y_pm1 * y)))


def _wrong(y, labels):
    """True where argmax(y) differs from the integer label."""
    predicted = tf.argmax(y, axis=-1, output_type=tf.int64)
    return tf.not_equal(predicted, tf.cast(labels, tf.int64))


def n_errors(y, labels):
    """Number of samples whose argmax(y) differs from the integer label (int32)."""
    return tf.reduce_sum(tf.cast(_wrong(y, labels), tf.int32))


def error_rate(y, labels):
    """Fraction of samples whose argmax(y) differs from the integer label (float32)."""
    return tf.reduce_mean(tf.cast(_wrong(y, labels), tf.float32))
