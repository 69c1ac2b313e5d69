"""Adam or plain SGD over two parameter groups, and the per-epoch learning-rate schedule (§1, §5).

The optimizer proposes w_prop = w - step; a binary weight takes the scaled, clipped step
    w <- clip(w + lr_scale * (w_prop - w), -h, h) = clip(w - lr_scale * step, -h, h)
(the scale multiplies the step, not the gradient: under Adam a scaled gradient would cancel).
Other parameters (biases, BatchNorm gamma/beta, the w of a float baseline) take w <- w - step.

    sgd:  step = lr * g
    adam: m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  t <- t + 1
          step = lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
Adam is written as in Lasagne's `adam` (the authors' code): the bias corrections fold into one
scalar step size, eps is added to sqrt(v). Every parameter has its own m and v; the authors' two
Adam instances count steps in lockstep, so one `iterations` counter serves both groups.

Each parameter is updated by one chain of elementwise ops ending in a single `assign` per state
variable. XLA fuses it into three passes over memory per parameter (new m, new v, then w); the
update of the 3x2048 MNIST net's 10M latent weights is memory-bound (docs/BENCHMARKS.md).

Mixed float16 (`loss_scale=True`): `apply` receives gradients of the scaled loss, divides them by
the scale, and skips the whole update (and the step count) when any of them is not finite
(bctrain.loss_scale).

Learning rate: lr_epoch = lr_start * decay^epoch (epoch 0-based), decay = (lr_end / lr_start)^(1/epochs).
"""
import tensorflow as tf

from bctrain.loss_scale import LossScale

KINDS = ("adam", "sgd")


def lr_decay(lr_start, lr_end, epochs) -> float:
    """(lr_end / lr_start)^(1 / epochs): the factor applied to the learning rate once per epoch."""
    if not (lr_start > 0 and lr_end > 0):
        raise ValueError(f"learning rates {lr_start!r} -> {lr_end!r}: expected positive numbers")
    if epochs < 1:
        raise ValueError(f"epochs={epochs!r}: expected at least 1")
    return (lr_end / lr_start) ** (1.0 / epochs)


def lr_at_epoch(lr_start, lr_end, epochs, epoch) -> float:
    """The learning rate of `epoch` (0-based): lr_start * decay^epoch."""
    return lr_start * lr_decay(lr_start, lr_end, epochs) ** epoch


def _gradients(grads, variables, group):
    """The gradients as tensors, one per variable; a missing one is a bug in the caller."""
    grads = list(grads)
    if len(grads) != len(variables):
        raise ValueError(f"{group} group: {len(grads)} gradients for {len(variables)} parameters")
    for g, var in zip(grads, variables):
        if g is None:
            raise ValueError(f"{group} parameter {var.name}: no gradient (not used by the loss?)")
    return [tf.convert_to_tensor(g) for g in grads]


class Optimizer(tf.Module):
    """Adam or SGD with a scaled and clipped binary group; state in tf.Variables (checkpointable).

    binary_params: list of (w, lr_scale, h) for the latent weights of binary layers.
    other_params:  list of variables updated plainly.
    lr:            a scalar tf.Variable (assigned by the training loop each epoch) or a number.
    loss_scale:    keep a dynamic loss scale (mixed_float16); see `scale_loss`.
    """

    def __init__(self, kind, binary_params, other_params, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 name=None, loss_scale=False):
        super().__init__(name=name)
        if kind not in KINDS:
            raise ValueError(f"optimizer {kind!r}: expected one of {', '.join(KINDS)}")
        self.kind = kind
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.binary_vars = [w for w, _, _ in binary_params]
        self.lr_scales = [float(s) for _, s, _ in binary_params]
        self.hs = [float(h) for _, _, h in binary_params]
        self.other_vars = list(other_params)
        with self.name_scope:
            if isinstance(lr, tf.Variable):
                self.lr = lr
            else:
                self.lr = tf.Variable(float(lr), trainable=False, name="lr")
            self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
            params = self.binary_vars + self.other_vars
            n_slots = len(params) if kind == "adam" else 0
            self.m = [tf.Variable(tf.zeros(p.shape, p.dtype), trainable=False, name="m")
                      for p in params[:n_slots]]
            self.v = [tf.Variable(tf.zeros(p.shape, p.dtype), trainable=False, name="v")
                      for p in params[:n_slots]]
        self.loss_scale = LossScale(name="loss_scale") if loss_scale else None

    def scale_loss(self, loss):
        """The loss to differentiate: multiplied by the dynamic loss scale, if there is one."""
        return loss if self.loss_scale is None else self.loss_scale.scale_loss(loss)

    def _step_size(self):
        """The scalar in front of the step (float64, so bias corrections stay exact at t = 1)."""
        lr = tf.cast(self.lr, tf.float64)
        if self.kind == "sgd":
            return lr
        t = tf.cast(self.iterations, tf.float64)
        return lr * tf.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)

    def _step(self, i, g, size):
        """The descent step of parameter `i` (w_prop = w - step), updating its Adam moments."""
        size = tf.cast(size, g.dtype)
        if self.kind == "sgd":
            return size * g
        m = self.beta1 * self.m[i] + (1.0 - self.beta1) * g
        v = self.beta2 * self.v[i] + (1.0 - self.beta2) * tf.square(g)
        self.m[i].assign(m)
        self.v[i].assign(v)
        return size * m / (tf.sqrt(v) + self.eps)

    def apply(self, binary_grads, other_grads):
        """One update of every parameter from its gradient (lists aligned with the two groups)."""
        binary_grads = _gradients(binary_grads, self.binary_vars, "binary")
        other_grads = _gradients(other_grads, self.other_vars, "other")
        if self.loss_scale is None:
            self._update(binary_grads, other_grads)
            return
        grads, finite = self.loss_scale.unscale(binary_grads + other_grads)
        n = len(binary_grads)

        def update():
            self._update(grads[:n], grads[n:])
            return tf.constant(True)
        tf.cond(finite, update, lambda: tf.constant(False))
        self.loss_scale.update(finite)

    def _update(self, binary_grads, other_grads):
        self.iterations.assign_add(1)
        size = self._step_size()
        for i, (w, g) in enumerate(zip(self.binary_vars, binary_grads)):
            h = self.hs[i]
            step = self._step(i, g, self.lr_scales[i] * size)
            w.assign(tf.clip_by_value(w - step, -h, h))
        offset = len(self.binary_vars)
        for i, (w, g) in enumerate(zip(self.other_vars, other_grads)):
            w.assign(w - self._step(offset + i, g, size))
