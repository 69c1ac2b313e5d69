"""Training-step throughput of the `mnist` preset (3x2048 MLP, batch 100) on this machine.

Measures, in one run: samples/s of the bctrain step with and without XLA, the same network trained
by Keras 3 `model.fit` (float Dense + BatchNorm, Adam, squared hinge) fed a repeated `tf.data`
pipeline with `steps_per_epoch` (so compute is compared with compute, not Keras' idle time at epoch
boundaries with NumPy inputs), and the float32 matmul GFLOP/s of the machine. The step's FLOPs are
counted as 6 x (binary weights) per sample (forward, input gradient and weight gradient).

Usage: make bench-train   (or: python -m benchmarks.bench_train --steps 60 --binarize det)
"""
import argparse
import dataclasses
import os
import time

import numpy as np
import tensorflow as tf

from bctrain.config import with_overrides
from bctrain.data import pipeline
from bctrain.arch import count_binary_weights
from bctrain.models import Net
from bctrain.optim import Optimizer
from bctrain.rundir import atomic_write_json
from bctrain.steps import make_train_step
from bctrain.train import device_name


def synthetic(batch, steps, n_in=784, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch * steps, n_in)).astype(np.float32)
    labels = rng.integers(0, n_classes, batch * steps)
    y_pm1 = (2 * np.eye(n_classes, dtype=np.float32)[labels] - 1)
    return x, y_pm1


def bctrain_runner(cfg, x, y_pm1, steps, warmup):
    """A function that times `steps` training steps of a fresh bctrain network (samples/s)."""
    net = Net(cfg, seed=1)
    opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start)
    step = make_train_step(net, opt, cfg.jit)
    for i, batch in zip(range(warmup), pipeline.train_batches(x, y_pm1, cfg.batch_size, seed=1, epoch=0)):
        float(step(*batch)[0])
    epoch = [0]

    def run():  # fed by the training pipeline, as `bctrain train` is
        epoch[0] += 1
        start = time.perf_counter()
        for batch in pipeline.train_batches(x, y_pm1, cfg.batch_size, seed=1, epoch=epoch[0]):
            loss, _ = step(*batch)
        float(loss)
        return steps * cfg.batch_size / (time.perf_counter() - start)
    return run


def keras_runner(cfg, x, y_pm1, steps, warmup, jit):
    """The same network in float, Keras 3 `fit` on a repeated tf.data pipeline (samples/s)."""
    import keras
    model = keras.Sequential([keras.Input((784,))])
    for units in cfg.hidden:
        model.add(keras.layers.Dense(units))
        model.add(keras.layers.BatchNormalization(momentum=1 - cfg.bn_alpha, epsilon=cfg.bn_eps))
        model.add(keras.layers.Activation("relu"))
    model.add(keras.layers.Dense(cfg.n_classes))
    model.add(keras.layers.BatchNormalization(momentum=1 - cfg.bn_alpha, epsilon=cfg.bn_eps))
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr_start), loss=keras.losses.SquaredHinge(),
                  jit_compile=jit)
    # The same input conditions as bctrain's pipeline: tf.data autotuning off (see pipeline.py).
    options = tf.data.Options()
    options.autotune.enabled = False
    data = (tf.data.Dataset.from_tensor_slices((x, y_pm1)).batch(cfg.batch_size, drop_remainder=True)
            .repeat().prefetch(pipeline.PREFETCH).with_options(options))
    model.fit(data, steps_per_epoch=warmup, epochs=1, verbose=0)

    def run():
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        return steps * cfg.batch_size / (time.perf_counter() - start)
    return run


def matmul_gflops(n=2048, repeats=10):
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    mm = tf.function(lambda a, b: tf.matmul(a, b))
    float(tf.reduce_sum(mm(a, b)))
    start = time.perf_counter()
    for _ in range(repeats):
        c = mm(a, b)
    float(tf.reduce_sum(c))
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps before each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--no-determinism", action="store_true", help="leave TensorFlow op determinism off")
    parser.add_argument("--binarize", default="det", choices=("det", "stoch", "none"))
    parser.add_argument("--out", default="benchmarks/results/bench_train.json", help="JSON results file")
    args = parser.parse_args(argv)
    if not args.no_determinism:  # as in `bctrain train`, which needs it for bit-identical resume
        tf.config.experimental.enable_op_determinism()
        tf.random.set_seed(1)
    base = with_overrides("mnist", binarize=args.binarize)
    x, y_pm1 = synthetic(base.batch_size, args.steps)
    flops_per_sample = 6 * count_binary_weights(Net(base, seed=1).specs)
    runners = {"bctrain, XLA": bctrain_runner(base, x, y_pm1, args.steps, args.warmup),
               "bctrain, no XLA": bctrain_runner(dataclasses.replace(base, jit=False), x, y_pm1, args.steps, args.warmup),
               # Keras' default, jit_compile="auto", resolves to no XLA for this model with TensorFlow.
               "Keras 3 fit (float)": keras_runner(base, x, y_pm1, args.steps, args.warmup, "auto"),
               "Keras 3 fit (float), XLA": keras_runner(base, x, y_pm1, args.steps, args.warmup, True)}
    samples, peaks = {name: [] for name in runners}, []
    for _ in range(args.rounds):  # interleaved, so a slow spell of the machine hits every row alike
        peaks.append(matmul_gflops())
        for name, run in runners.items():
            samples[name].append(run())
    rows = {name: float(np.median(v)) for name, v in samples.items()}
    gflops = float(np.median(peaks))
    keras_rate = rows["Keras 3 fit (float)"]
    print(f"device: {device_name()}, TensorFlow {tf.__version__}, op determinism "
          f"{'off' if args.no_determinism else 'on'}, batch {base.batch_size}, {args.steps} steps per measurement")
    print(f"matmul peak (2048x2048 float32, median of {args.rounds}): {gflops:.1f} GFLOP/s")
    print(f"{'step':26s} {'samples/s':>10s} {'vs Keras':>9s} {'GFLOP/s':>8s} {'of peak':>8s}")
    for name, rate in rows.items():
        achieved = rate * flops_per_sample / 1e9
        print(f"{name:26s} {rate:10,.0f} {rate / keras_rate:8.2f}x {achieved:8.1f} {achieved / gflops:7.0%}")
    result = {"determinism": not args.no_determinism, "rounds": samples, "matmul_gflops_rounds": peaks, "device": device_name(), "tensorflow": tf.__version__, "matmul_gflops": gflops,
              "binarize": args.binarize, "batch_size": base.batch_size, "steps": args.steps,
              "flops_per_sample": flops_per_sample, "samples_per_second": rows}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
