"""The paper's training step, written once (BinaryConnect, Algorithm 1): the reference plan.

    1. forward:   wb = binarize(w) (det: sign, stoch: +1 with probability hard_sigmoid(w)), then
                  the layers' products, BatchNorm, ReLU; the scores y             (§1, §2)
    2. loss:      squared hinge loss of y against ±1 targets                        (§5)
    3. backward:  dL/dw = dL/dwb: the straight-through estimator (bctrain.paper.binarize)
    4. update:    Adam (or SGD) step; binary w <- clip(w - lr_scale * step, -h, h)   (§1, §3)

One `tf.function` (XLA-compiled if `jit`): (x, y_pm1) of a batch -> (mean loss, errors). Every other
arrangement of the step (`bctrain.step.build`, chosen by `bctrain.step.plan`) must give exactly
these results on the same products (tests/test_plan.py).
"""
import tensorflow as tf

from bctrain.paper.losses import n_errors, squared_hinge


def make_reference_step(net, opt, jit: bool = True):
    @tf.function(jit_compile=jit)
    def reference_step(x, y_pm1):
        with tf.GradientTape() as tape:
            y = net(x, training=True)                     # 1. forward with wb = binarize(w)
            loss = squared_hinge(y, y_pm1)                # 2. squared hinge loss
            scaled = opt.scale_loss(loss)                 #    (times the loss scale of mixed_float16)
        grads = tape.gradient(scaled, opt.trained)        # 3. dL/dw = dL/dwb (straight-through)
        with tf.name_scope("update"):
            opt.apply(grads)                              # 4. scaled, clipped update
        return loss, n_errors(y, tf.argmax(y_pm1, axis=1))
    return reference_step
