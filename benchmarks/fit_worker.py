"""A Keras `fit` of the `mnist` network, timed on request: the reference rows of bench_train.

Runs as a separate process, so that each row can have its own Python environment and TensorFlow
settings: Keras 3 in the project's venv (with or without XLA; Keras refuses `jit_compile=True` while
TensorFlow op determinism is on), or larq on tf-keras in the benchmark venv `.venv-larq` (larq needs
tf-keras and numpy < 2, which the project does not use). Imports neither bctrain nor the project.

Protocol: reads the inputs from the .npz given (x, y_pm1, and the network in `hidden`, `batch`,
`lr`, `bn_alpha`, `bn_eps`), builds and warms up the model, prints "ready", then for each line
"run" on stdin trains `--warmup` untimed steps, then `--steps` timed ones, and prints their samples/s; exits
at end of input.

    larq:   QuantDense(kernel_quantizer="ste_sign", kernel_constraint="weight_clip"), the
            BinaryConnect layer of larq's documentation, BatchNormalization, ReLU; Adam.
    keras:  the same network in float (Dense).
"""
import argparse
import os
import sys
import time


def build(kind, keras, hidden, n_in, n_classes, bn_alpha, bn_eps):
    if kind == "larq":
        import larq
        dense = lambda units: larq.layers.QuantDense(units, kernel_quantizer="ste_sign",
                                                     kernel_constraint="weight_clip")
    else:
        dense = keras.layers.Dense
    layers = [keras.Input((n_in,))]
    for units in tuple(hidden) + (n_classes,):
        layers += [dense(units), keras.layers.BatchNormalization(momentum=1 - bn_alpha, epsilon=bn_eps)]
        if units != n_classes:
            layers.append(keras.layers.Activation("relu"))
    return keras.Sequential(layers)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("inputs", help=".npz written by bench_train")
    parser.add_argument("--kind", choices=("keras", "larq"), required=True)
    parser.add_argument("--jit", choices=("auto", "true", "false"), default="auto")
    parser.add_argument("--determinism", choices=("on", "off"), default="on")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.kind == "larq":  # larq builds on tf.keras: tf-keras, not Keras 3
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
    import numpy as np
    import tensorflow as tf
    if args.kind == "larq":
        keras = tf.keras
    else:
        import keras
    if args.determinism == "on":
        tf.config.experimental.enable_op_determinism()
    tf.random.set_seed(1)
    with np.load(args.inputs) as f:
        x, y_pm1 = f["x"], f["y_pm1"]
        hidden, batch = [int(v) for v in f["hidden"]], int(f["batch"])
        lr, bn_alpha, bn_eps = float(f["lr"]), float(f["bn_alpha"]), float(f["bn_eps"])
    model = build(args.kind, keras, hidden, x.shape[1], y_pm1.shape[1], bn_alpha, bn_eps)
    jit = {"auto": "auto", "true": True, "false": False}[args.jit]
    compile_args = {} if args.kind == "larq" else {"jit_compile": jit}  # tf-keras: its default
    model.compile(optimizer=keras.optimizers.Adam(lr), loss=keras.losses.SquaredHinge(), **compile_args)
    # bctrain's pipeline conditions: tf.data autotuning off, 2 batches prefetched (bctrain.data.pipeline)
    options = tf.data.Options()
    options.autotune.enabled = False
    data = (tf.data.Dataset.from_tensor_slices((x, y_pm1)).batch(batch, drop_remainder=True)
            .repeat().prefetch(2).with_options(options))
    model.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)
    jit_used = getattr(model, "jit_compile", None)
    print(f"ready jit_compile={jit_used}", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            continue
        if args.warmup:  # untimed, as bench_train's own rows (the other rows ran in between)
            model.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
        print(args.steps * batch / (time.perf_counter() - start), flush=True)


if __name__ == "__main__":
    main()
