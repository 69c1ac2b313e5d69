"""Feasibility of the CNN recipes on this machine: seconds per epoch of `cifar10` and `svhn`.

For each preset (its full network, batch 50), with and without XLA: the time of `--steps` training
steps (after `--warmup` untimed ones) on random inputs of the real shape [50, 32, 32, 3] fed by the
training pipeline, and of `--eval-batches` evaluation batches of the preset's eval batch size
(binary weights). An epoch is then extrapolated, not run: steps per epoch x seconds per step, plus
(validation + test images) x evaluation seconds per image, with the paper's split sizes
(CIFAR-10: 45,000 training steps' worth of images, 5,000 + 10,000 evaluated; SVHN: 598,388,
6,000 + 26,032). The full schedule (500 and 200 epochs) is that times the epochs.

FLOPs are counted from the architecture (`bctrain.paper.arch.layer_specs`): 2 x multiply-adds of every
conv (at its full resolution, before pooling) and dense layer; a training step is 3 x the forward
FLOPs (forward, input gradient, weight gradient); BatchNorm, ReLU, pooling and the optimizer update
are not counted (their cost is in the measured time). Achieved GFLOP/s is compared with two peaks
measured right before each row (so that a busy spell of a shared machine hits both alike): a
2048x2048 float32 matmul and the preset's most expensive conv (batch 50, float32, TensorFlow's
default kernel). The GPU rows are arithmetic, not measurements: FLOPs per epoch / an assumed
sustained rate (`--gpu-tflops`).

Usage: make bench-cnn   (or: python -m benchmarks.bench_cnn --steps 8 --presets cifar10)
"""
import argparse
import dataclasses
import os
import time

import numpy as np

from benchmarks.quiet_tf import VERBOSE_FLAG, VERBOSE_HELP, tf  # first: TensorFlow loads quietly
from benchmarks import provenance
from benchmarks.roofline import matmul_gflops
from benchmarks.tables.cnn import render_cnn
from bctrain.paper.arch import layer_specs
from bctrain.config import PRESETS
from bctrain.data import pipeline
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.build import make_train_step, plan_for
from bctrain.step.evaluate import make_eval_step
from bctrain.train import device_name

# Split sizes of the paper (PAPER.md §6): training images, evaluated images (validation + test).
SPLITS = {"cifar10": (45_000, 5_000 + 10_000), "svhn": (598_388, 6_000 + 26_032)}


def forward_flops(cfg) -> int:
    """FLOPs of one image's forward pass through the binary linear layers (2 per multiply-add)."""
    height, width = cfg.input_shape[:2] if cfg.conv else (1, 1)
    total = 0
    for s in layer_specs(cfg):
        if s.kind == "conv":
            total += 2 * height * width * s.kernel * s.kernel * s.n_in * s.n_out
            if s.pool:
                height, width = height // 2, width // 2
        else:
            total += 2 * s.n_in * s.n_out
    return total


def heaviest_conv(cfg) -> tuple:
    """(height, c_in, c_out) of the conv layer with the most FLOPs."""
    height, best = cfg.input_shape[0], (0, None)
    for s in layer_specs(cfg):
        if s.kind == "conv":
            flops = height * height * s.n_in * s.n_out
            best = max(best, (flops, (height, s.n_in, s.n_out)), key=lambda t: t[0])
            height //= 2 if s.pool else 1
    return best[1]


def conv_gflops(batch, height, c_in, c_out, repeats=5) -> float:
    x = tf.random.normal((batch, height, height, c_in))
    w = tf.random.normal((3, 3, c_in, c_out))
    conv = tf.function(lambda x, w: tf.nn.conv2d(x, w, strides=1, padding="SAME"))
    float(tf.reduce_sum(conv(x, w)))
    start = time.perf_counter()
    for _ in range(repeats):
        y = conv(x, w)
    float(tf.reduce_sum(y))
    return 2 * batch * height * height * 9 * c_in * c_out * repeats / (time.perf_counter() - start) / 1e9


def time_training(cfg, steps, warmup) -> float:
    """Seconds per training step of a fresh network of `cfg`."""
    rng = np.random.default_rng(0)
    n = cfg.batch_size * max(steps, warmup)
    x = rng.standard_normal((n, *cfg.input_shape)).astype(np.float32)
    y_pm1 = pipeline.to_pm1(rng.integers(0, cfg.n_classes, n), cfg.n_classes)
    net = Net(cfg, seed=1)
    opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start)
    step = make_train_step(net, opt, plan_for(cfg))  # the plan `bctrain train` would run
    for _, batch in zip(range(warmup), pipeline.train_batches(x, y_pm1, cfg.batch_size, seed=1, epoch=0)):
        float(step(*batch)[0])
    start = time.perf_counter()
    for _, batch in zip(range(steps), pipeline.train_batches(x, y_pm1, cfg.batch_size, seed=1, epoch=1)):
        loss, _ = step(*batch)
    float(loss)
    return (time.perf_counter() - start) / steps


def time_eval(cfg, batches) -> float:
    """Seconds per evaluated image (binary weights, eval batch size of `cfg`)."""
    net = Net(cfg, seed=1)
    step = make_eval_step(net, "binary", plan_for(cfg))
    x = tf.random.normal((cfg.eval_batch_size, *cfg.input_shape))
    labels = tf.zeros([cfg.eval_batch_size], tf.int64)
    int(step(x, labels))
    start = time.perf_counter()
    for _ in range(batches):
        n_wrong = step(x, labels)
    int(n_wrong)
    return (time.perf_counter() - start) / (batches * cfg.eval_batch_size)


def measure(name, args) -> list:
    base = PRESETS[name]
    n_train, n_eval = SPLITS[name]
    fwd = forward_flops(base)
    rows = []
    for jit in (True, False):
        cfg = dataclasses.replace(base, jit=jit)
        peaks = {"matmul": matmul_gflops(), "conv": conv_gflops(base.batch_size, *heaviest_conv(base))}
        step_s = time_training(cfg, args.steps, args.warmup)
        eval_s = time_eval(cfg, args.eval_batches)
        steps = n_train // cfg.batch_size
        epoch_s = steps * step_s + n_eval * eval_s
        gflops = 3 * fwd * cfg.batch_size / step_s / 1e9
        rows.append({"preset": name, "xla": jit, "seconds_per_step": step_s, "eval_seconds_per_image": eval_s,
                     "steps_per_epoch": steps, "seconds_per_epoch": epoch_s, "epochs": cfg.epochs,
                     "schedule_hours": epoch_s * cfg.epochs / 3600, "train_gflops": gflops,
                     "matmul_peak_gflops": peaks["matmul"], "conv_peak_gflops": peaks["conv"],
                     "of_matmul_peak": gflops / peaks["matmul"], "of_conv_peak": gflops / peaks["conv"]})
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="cifar10,svhn")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per measurement")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps before (compilation, caches)")
    parser.add_argument("--eval-batches", type=int, default=2, help="timed evaluation batches")
    parser.add_argument("--gpu-tflops", default="10,30", help="assumed sustained GPU TFLOP/s for the on-paper rows")
    parser.add_argument("--out", default="benchmarks/results/bench_cnn.json", help="JSON results file")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    tf.config.experimental.enable_op_determinism()  # as `bctrain train` runs
    tf.random.set_seed(1)
    names = [n for n in args.presets.split(",") if n]
    load_before = os.getloadavg()[0]
    rows = [r for name in names for r in measure(name, args)]
    gpu = [float(t) for t in args.gpu_tflops.split(",")]
    load = os.getloadavg()

    paper = []
    for name in names:
        n_train, n_eval = SPLITS[name]
        fwd = forward_flops(PRESETS[name])
        epoch_flops = 3 * fwd * n_train + fwd * n_eval
        for t in gpu:
            hours = epoch_flops * PRESETS[name].epochs / (t * 1e12) / 3600
            paper.append({"preset": name, "assumed_tflops": t, "epoch_tflop": epoch_flops / 1e12,
                          "schedule_hours": hours})
    result = {"device": device_name(), "tensorflow": tf.__version__, "load_average_before": load_before,
              "load_average_after": load, "steps": args.steps, "warmup": args.warmup,
              "forward_flops": {n: forward_flops(PRESETS[n]) for n in names}, "rows": rows, "on_paper": paper}
    print(render_cnn(provenance.write(args.out, result, "benchmarks.bench_cnn", argv, result["device"])))


if __name__ == "__main__":
    main()
