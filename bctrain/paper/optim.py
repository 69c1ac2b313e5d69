"""Adam or plain SGD with the paper's update of binary weights, and the learning-rate schedule (§1, §5).

The optimizer proposes w_prop = w - step; a binary weight takes the scaled, clipped step
    w <- clip(w + lr_scale * (w_prop - w), -h, h) = clip(w - lr_scale * step, -h, h)
(the scale multiplies the step, not the gradient: under Adam a scaled gradient would cancel).
Other parameters (biases, BatchNorm gamma/beta, the w of a float baseline) take w <- w - step.

    sgd:  step = lr * g
    adam: m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;  t <- t + 1
          step = lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
Adam is written as in Lasagne's `adam` (the authors' code): the bias corrections fold into one
scalar step size, eps is added to sqrt(v). Every parameter has its own m and v; the authors' two
Adam instances count steps in lockstep, so one `iterations` counter serves every parameter.

Each trained variable is one `Param` record (its moments, lr_scale, h and layer). `apply` is the
paper's update in TensorFlow ops: one chain of elementwise ops per parameter, ending in a single
`assign` per state variable (XLA-compiled when the step is). `bctrain.step.fused_update` computes the
same float32 arithmetic in one pass over memory; which runs is the step plan's choice
(`bctrain.step.plan`). The gradients may be those of w / d (a 16-bit product's wb / h,
bctrain.paper.layers): `apply(grads, divisors=d)` then uses dL/dw = float32(g) / d.

Mixed float16 (`loss_scale=True`): `apply` receives gradients of the scaled loss, divides them by
the scale, and skips the whole update (and the step count) when any of them is not finite
(bctrain.step.loss_scale).

Derived state (the ±1 caches of `bctrain.step.caches`) registers with `derived`: after a checkpoint
restore `after_restore` re-seeds it from the restored weights (bctrain.run.checkpoints).

Learning rate: lr_epoch = lr_start * decay^epoch (epoch 0-based), decay = (lr_end / lr_start)^(1/epochs).
"""
from dataclasses import dataclass

import tensorflow as tf

from bctrain import choices
from bctrain.step.loss_scale import LossScale


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


@dataclass(frozen=True)
class Param:
    """One trained variable and what its update needs: a binary layer's latent weights (h set) are
    clipped to [-h, h] and take lr_scale times the step; the others take the step itself."""
    w: tf.Variable
    m: tf.Variable | None = None   # Adam's moments (None under SGD)
    v: tf.Variable | None = None
    lr_scale: float = 1.0
    h: float | None = None         # clip bound of binary weights; None: not clipped
    layer: int | None = None       # a binary parameter's layer index (bctrain.paper.models.Net.linear)

    @property
    def binary(self) -> bool:
        return self.h is not None


def _gradients(grads, params):
    """The gradients as tensors, one per parameter; a missing one is a bug in the caller."""
    grads = list(grads)
    if len(grads) != len(params):
        raise ValueError(f"{len(grads)} gradients for {len(params)} parameters")
    for g, p in zip(grads, params):
        if g is None:
            raise ValueError(f"parameter {p.w.name}: no gradient (not used by the loss?)")
    return [tf.convert_to_tensor(g) for g in grads]


class Optimizer(tf.Module):
    """Adam or SGD over `params` (binary ones first); state in tf.Variables (checkpointed).

    binary_params: the binary layers' parameters (`bctrain.paper.models.BinaryParam`: w, lr_scale, h, layer).
    other_params:  variables updated plainly.
    lr:            a scalar tf.Variable (assigned by the training loop each epoch) or a number.
    loss_scale:    keep a dynamic loss scale (mixed_float16); see `scale_loss`.
    """

    def __init__(self, kind, binary_params, other_params, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 name=None, loss_scale=False):
        super().__init__(name=name)
        try:
            choices.check("optimizer", kind, choices.OPTIMIZERS)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        self.kind = kind
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        binary_params, other_params = list(binary_params), list(other_params)
        variables = [p.w for p in binary_params] + other_params
        with self.name_scope:
            self.lr = lr if isinstance(lr, tf.Variable) else tf.Variable(float(lr), trainable=False, name="lr")
            self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
            # lists of slots: the checkpoint layout (opt/m/<i>, opt/v/<i>) of earlier releases
            n_slots = len(variables) if kind == "adam" else 0
            self.m = [tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False, name="m") for w in variables[:n_slots]]
            self.v = [tf.Variable(tf.zeros(w.shape, w.dtype), trainable=False, name="v") for w in variables[:n_slots]]
        slots = list(zip(self.m, self.v)) if kind == "adam" else [(None, None)] * len(variables)
        self.params = tuple(
            [Param(b.w, m, v, float(b.lr_scale), float(b.h), b.layer) for b, (m, v) in zip(binary_params, slots)]
            + [Param(w, m, v) for w, (m, v) in zip(other_params, slots[len(binary_params):])])
        self.loss_scale = LossScale(name="loss_scale") if loss_scale else None
        self.derived = []  # objects with reseed(), re-seeded after a restore (not checkpointed)

    @property
    def trained(self) -> list:
        """The trained variables, in `params` order (what the step differentiates)."""
        return [p.w for p in self.params]

    def after_restore(self):
        """Called after a checkpoint restore (bctrain.run.checkpoints): re-seed the derived state."""
        for obj in self.derived:
            obj.reseed()

    def scale_loss(self, loss):
        """The loss to differentiate: multiplied by the dynamic loss scale, if there is one."""
        return loss if self.loss_scale is None else self.loss_scale.scale_loss(loss)

    def step_size(self):
        """The scalar in front of the step (float64, so bias corrections stay exact at t = 1)."""
        lr = tf.cast(self.lr, tf.float64)
        if self.kind == "sgd":
            return lr
        t = tf.cast(self.iterations, tf.float64)
        return lr * tf.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)

    def _step(self, p: Param, g, size):
        """The descent step of `p` (w_prop = w - step), updating its Adam moments."""
        size = tf.cast(size, g.dtype)
        if self.kind == "sgd":
            return size * g
        m = self.beta1 * p.m + (1.0 - self.beta1) * g
        v = self.beta2 * p.v + (1.0 - self.beta2) * tf.square(g)
        p.m.assign(m)
        p.v.assign(v)
        return size * m / (tf.sqrt(v) + self.eps)

    def apply(self, grads, divisors=None):
        """One update of every parameter from its gradient (aligned with `params`).

        `divisors` (one number per parameter, or None for all 1): the gradients are of w / d, and
        dL/dw = float32(g) / d."""
        grads = as_float32_gradients(grads, self.params, divisors)
        if self.loss_scale is None:
            self._update(grads)
            return
        grads, finite = self.loss_scale.unscale(grads)

        def update():
            self._update(grads)
            return tf.constant(True)
        tf.cond(finite, update, lambda: tf.constant(False))
        self.loss_scale.update(finite)

    def _update(self, grads):
        self.iterations.assign_add(1)
        size = self.step_size()
        for p, g in zip(self.params, grads):
            step = self._step(p, g, p.lr_scale * size)
            p.w.assign(tf.clip_by_value(p.w - step, -p.h, p.h) if p.binary else p.w - step)


def as_float32_gradients(grads, params, divisors=None) -> list:
    """dL/dw per parameter: a gradient of w / d (16-bit product weights) becomes float32(g) / d."""
    grads = _gradients(grads, params)
    divisors = [1.0] * len(grads) if divisors is None else [float(d) for d in divisors]
    if len(divisors) != len(grads):
        raise ValueError(f"{len(divisors)} divisors for {len(grads)} gradients")
    return [g if d == 1.0 and g.dtype.size >= 4 else tf.cast(g, tf.float32) / d for g, d in zip(grads, divisors)]
