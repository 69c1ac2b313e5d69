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

Two kernels compute the same float32 arithmetic (`kernel`):
- "xla": each parameter is updated by one chain of elementwise ops ending in a single `assign` per
  state variable, compiled by XLA when the caller is (bctrain.step.steps). XLA's CPU back end makes three
  passes over memory per parameter (new m, new v, then w); the update of the 3x2048 MNIST net's
  10M latent weights is memory-bound (docs/BENCHMARKS.md).
- "fused": Adam only, on a CPU: the op of bctrain.step.fused_update, one pass over memory (w, m, v, g
  read once, w, m, v written once), bit-identical to XLA's compilation of the chain above on a CPU
  with FMA. It runs outside XLA (bctrain.step.steps arranges the step so).
The binary gradients may be those of w / d (a 16-bit product's wb / h, bctrain.paper.layers):
`apply(..., binary_divisors=d)` then uses dL/dw = g / d, cast to float32 first.

Mixed float16 (`loss_scale=True`): `apply` receives gradients of the scaled loss, divides them by
the scale, and skips the whole update (and the step count) when any of them is not finite
(bctrain.step.loss_scale).

Learning rate: lr_epoch = lr_start * decay^epoch (epoch 0-based), decay = (lr_end / lr_start)^(1/epochs).
"""
import tensorflow as tf

from bctrain.step import fused_update
from bctrain.step.loss_scale import LossScale

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
    kernel:        "xla" or "fused" (see above; `fused_update.resolve` picks one for "auto"). SGD
                   and a loss-scaled update always use "xla" (`self.kernel` says which is used).
    """

    def __init__(self, kind, binary_params, other_params, lr, beta1=0.9, beta2=0.999, eps=1e-8,
                 name=None, loss_scale=False, kernel="xla"):
        super().__init__(name=name)
        if kind not in KINDS:
            raise ValueError(f"optimizer {kind!r}: expected one of {', '.join(KINDS)}")
        if kernel not in ("xla", "fused"):
            raise ValueError(f"update kernel {kernel!r}: expected xla or fused")
        self.kind = kind
        self.kernel = "fused" if kernel == "fused" and kind == "adam" and not loss_scale else "xla"
        self._op = fused_update.load() if self.kernel == "fused" else None
        if self.kernel == "fused" and self._op is None:
            raise RuntimeError(fused_update.reason())
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

    @property
    def fused(self) -> bool:
        """True if `apply` runs the fused op (the caller must not XLA-compile it)."""
        return self.kernel == "fused"

    def apply(self, binary_grads, other_grads, binary_divisors=None, binary_caches=None):
        """One update of every parameter from its gradient (lists aligned with the two groups).

        `binary_divisors` (one number per binary parameter, or None for all 1): the binary gradients
        are of w / d, and dL/dw = float32(g) / d. `binary_caches` (fused kernel only; one variable or
        None per binary parameter): the update also writes there the new w's deterministic product
        weights, sign(w) * h / d in the variable's dtype (bctrain/step/steps.py reads them next step)."""
        binary_grads = _gradients(binary_grads, self.binary_vars, "binary")
        other_grads = _gradients(other_grads, self.other_vars, "other")
        divisors = [1.0] * len(binary_grads) if binary_divisors is None else [float(d) for d in binary_divisors]
        if len(divisors) != len(binary_grads):
            raise ValueError(f"{len(divisors)} divisors for {len(binary_grads)} binary gradients")
        if self.fused:
            self._fused_update(binary_grads, other_grads, divisors, binary_caches)
            return
        if binary_caches is not None and any(c is not None for c in binary_caches):
            raise ValueError("binary_caches need the fused update kernel")
        binary_grads = [g if d == 1.0 and g.dtype.size >= 4 else tf.cast(g, tf.float32) / d
                        for g, d in zip(binary_grads, divisors)]
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

    def _fused_update(self, binary_grads, other_grads, divisors, caches=None):
        self.iterations.assign_add(1)
        size = self._step_size()
        consts = dict(beta1=self.beta1, one_minus_beta1=1.0 - self.beta1, beta2=self.beta2,
                      one_minus_beta2=1.0 - self.beta2, eps=self.eps)
        caches = [None] * len(binary_grads) if caches is None else list(caches)
        if len(caches) != len(binary_grads):
            raise ValueError(f"{len(caches)} caches for {len(binary_grads)} binary gradients")
        params = [(w, g, self.lr_scales[i] * size, self.hs[i], divisors[i], caches[i])
                  for i, (w, g) in enumerate(zip(self.binary_vars, binary_grads))]
        params += [(w, g, size, 0.0, 1.0, None) for w, g in zip(self.other_vars, other_grads)]
        for i, (w, g, step_size, h, d, cache) in enumerate(params):
            wb = {"wb": []} if cache is None else {"wb": [cache.handle], "wb_value": h / divisors[i]}
            if g.dtype not in (tf.float32, tf.bfloat16):
                g = tf.cast(g, tf.float32) / d
                d = 1.0
            self._op.bc_adam_update(w.handle, self.m[i].handle, self.v[i].handle, g,
                                    tf.cast(step_size, tf.float32), h=h, g_div=d, **wb, **consts)
