"""Dynamic loss scaling for float16 products (mixed_float16; Micikevicius et al., 2018).

float16 represents magnitudes from 6e-8 to 65504: small gradients of the loss would flush to zero
on the way back through float16 products. The loss is multiplied by `scale` before the gradient
and the float32 gradients are divided by it afterwards. A step whose gradients are not all finite
(the scaled values overflowed) is skipped and halves the scale; `growth_interval` finite steps in a
row double it. The state is two tf.Variables, checkpointed with the run. bfloat16 has float32's
exponent range and needs none of this.
"""
import tensorflow as tf


class LossScale(tf.Module):
    def __init__(self, initial=2.0 ** 15, growth_interval=2000, name=None):
        super().__init__(name=name)
        self.growth_interval = int(growth_interval)
        with self.name_scope:
            self.scale = tf.Variable(float(initial), trainable=False, name="scale")
            self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="good_steps")

    def scale_loss(self, loss):
        return loss * tf.cast(self.scale, loss.dtype)

    def unscale(self, grads):
        """(grads / scale as float32, whether every value is finite)."""
        grads = [tf.cast(g, tf.float32) / self.scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        return grads, finite

    def update(self, finite):
        """Halve the scale after a non-finite step; double it after `growth_interval` finite ones."""
        good = tf.where(finite, self.good_steps + 1, tf.zeros_like(self.good_steps))
        grow = good >= self.growth_interval
        factor = tf.where(finite, tf.where(grow, 2.0, 1.0), 0.5)
        self.scale.assign(tf.maximum(self.scale * factor, 1.0))
        self.good_steps.assign(tf.where(grow, tf.zeros_like(good), good))
