"""Where a `mnist` training step spends its time, with a constant batch and through the pipeline.

Times (one process, median of --rounds rounds of --steps steps, batch 100, op determinism on):
- the float32 step (XLA) and the mixed_bfloat16 step (split: products in oneDNN; with the XLA update
  the binarization is an XLA pass, with the fused one (bctrain.step.fused_update) the update writes the
  next step's ±1 weights; measured also without that output), each with either update, fed one
  constant batch, and fed by `bctrain.data.pipeline.train_batches` over in-memory arrays;
- the pieces of the mixed_bfloat16 step: binarization (product weights, XLA; the pass the fused
  update's ±1 output saves), forward and backward outside XLA, and the update alone (XLA, fused;
  the fused one without the ±1 output).
Run it again with XLA_FLAGS=--xla_cpu_use_onednn=true to see what oneDNN inside XLA changes.

Usage: python -m benchmarks.bench_step_parts [--steps 40] [--rounds 3]
"""
import argparse
import os
import time

import numpy as np

from benchmarks.quiet_tf import VERBOSE_FLAG, VERBOSE_HELP, tf  # first: TensorFlow loads quietly
from benchmarks import roofline
from bctrain.config import with_overrides
from bctrain.data import pipeline
from bctrain.paper.losses import squared_hinge
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.build import make_train_step
from bctrain.step.plan import StepPlan

BATCH = 100


def _median_seconds(fn, steps, rounds):
    fn()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(steps):
            out = fn()
        tf.nest.map_structure(lambda v: v.numpy() if hasattr(v, "numpy") else v, out)
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def measure(precision, kernel, x, y_pm1, steps, rounds, wb_cache=True):
    cfg = with_overrides("mnist", precision=precision)
    net = Net(cfg, seed=1)
    opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start,
                    loss_scale=net.precision.loss_scaling)
    form = "split" if net.precision.split_step else "whole"
    cached = {"whole": "first", "split": "all"}[form] if kernel == "fused" and wb_cache else "none"
    step = make_train_step(net, opt, StepPlan(form, True, kernel, cached))
    xb, yb = tf.constant(x[:BATCH]), tf.constant(y_pm1[:BATCH])
    out = {"constant batch": BATCH / _median_seconds(lambda: step(xb, yb), steps, rounds)}
    batches = iter(())

    def fed():
        nonlocal batches
        try:
            return step(*next(batches))
        except StopIteration:
            batches = iter(pipeline.train_batches(x, y_pm1, BATCH, seed=1, epoch=0))
            return step(*next(batches))
    out["pipeline"] = BATCH / _median_seconds(fed, steps, rounds)
    return net, out


def bf16_pieces(net, x, y_pm1, steps, rounds):
    xb, yb = tf.constant(x[:BATCH]), tf.constant(y_pm1[:BATCH])
    product_weights = tf.function(lambda: net.product_weights(training=True), jit_compile=True)
    w_refs = {lin.w.ref() for lin in net.linear}
    direct = [v for v in net.other_params() if v.ref() not in w_refs]

    @tf.function
    def forward_backward(wbs):
        with tf.GradientTape() as tape:
            tape.watch(wbs)
            loss = squared_hinge(net(xb, training=True, weights=wbs), yb)
        return tape.gradient(loss, wbs + direct)

    wbs = product_weights()
    out = {"binarize ms": 1e3 * _median_seconds(product_weights, steps, rounds),
           "forward+backward ms": 1e3 * _median_seconds(lambda: forward_backward(wbs), steps, rounds)}
    for kernel in ("xla", "fused"):
        out[f"update alone ({kernel}) ms"] = 1e3 * roofline.update_seconds(net, repeats=steps, kernel=kernel)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6000, 784)).astype(np.float32)
    y_pm1 = pipeline.to_pm1(rng.integers(0, 10, 6000))
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}; samples/s, median of {args.rounds} x {args.steps} steps")
    variants = [("float32", "xla", True), ("float32", "fused", True), ("mixed_bfloat16", "xla", True),
                ("mixed_bfloat16", "fused", False), ("mixed_bfloat16", "fused", True)]
    for precision, kernel, wb_cache in variants:
        net, rates = measure(precision, kernel, x, y_pm1, args.steps, args.rounds, wb_cache)
        how = {"xla": "xla update", "fused": "fused update"}[kernel]
        if precision == "mixed_bfloat16" and kernel == "fused":
            how += ", writing the next ±1 weights" if wb_cache else ", binarization pass (no ±1 output)"
        print(f"{precision}, {how}: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()))
    for k, v in bf16_pieces(net, x, y_pm1, args.steps, args.rounds).items():
        print(f"mixed_bfloat16 {k}: {v:.1f}")


if __name__ == "__main__":
    main()
