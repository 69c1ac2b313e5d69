"""The ±1 product weights of the next step, written by the fused update (docs/BENCHMARKS.md).

With det binarization the next step's product weights are a function of the new w alone,
sign(w) * h / d (d = h for a 16-bit product, 1 in float32). The fused update
(`bctrain.step.fused_update`) already reads and writes every w: it writes those weights too, in the
same pass, into this cache, and the next step's products read them instead of binarizing w again.

The cache is derived state: it is not checkpointed. It is seeded from w when made, and it registers
with the optimizer, whose `after_restore` re-seeds it after every checkpoint restore
(`bctrain.run.checkpoints`), so a step may be made before or after a restore.
"""
import tensorflow as tf


class ProductWeightCache:
    """Variables holding the det product weights of the binary layers `layers` (indices of Net.linear)."""

    def __init__(self, net, opt, layers):
        self.net = net
        self.layers = tuple(layers)
        for i in self.layers:
            lin = net.linear[i]
            if not (lin.is_binary and lin.mode == "det"):
                raise ValueError(f"layer {i}: only det-binarized layers have a ±1 cache (mode {lin.mode!r})")
        self.variables = {i: tf.Variable(net.linear[i].product_weights(training=True), trainable=False,
                                         name=f"wb_cache{i}") for i in self.layers}
        opt.derived.append(self)

    def get(self, layer: int):
        """The cache variable of `layer`, or None if that layer has none."""
        return self.variables.get(layer)

    def value(self, layer: int) -> float:
        """|product weight| of `layer`: h / d (1 for a 16-bit product, h in float32)."""
        lin = self.net.linear[layer]
        return lin.h / lin.product_divisor

    def reseed(self):
        """Recompute every cached layer's product weights from its current w."""
        for i, var in self.variables.items():
            var.assign(self.net.linear[i].product_weights(training=True))
