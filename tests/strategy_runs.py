"""Scenarios under tf.distribute, each run in a fresh process by tests/test_strategy.py (logical CPU
devices must be configured before TensorFlow starts). Prints one JSON object on its last line.

    python -m tests.strategy_runs equivalence det|stoch|det-sign
    python -m tests.strategy_runs resume det|stoch|bnn RUN_ROOT
    python -m tests.strategy_runs restore-on-one det|stoch RUN_ROOT
    python -m tests.strategy_runs variants RUN_ROOT
    python -m tests.strategy_runs multiworker full|cut|resume RUN_DIR   (every worker, TF_CONFIG set)
"""
import dataclasses
import json
import os
import sys

import numpy as np
import tensorflow as tf

from bctrain.step import strategy as strategies
from bctrain.config import with_overrides
from bctrain.data import load_splits, pipeline, preprocess
from bctrain.paper.layers import relu
from bctrain.paper.losses import squared_hinge
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.build import make_train_step
from bctrain.step.evaluate import make_eval_step
from bctrain.step.plan import choose_plan
from bctrain.train import train

STEPS = 5


# BinaryNet's MLP recipe: binary activations, dropout, inputs in [-1, 1]
BNN = dict(binarize_act="sign", dropout_in=0.2, dropout_hidden=0.5, preprocess="pm1")


def tiny(binarize="det", **kw):
    # h = Glorot value: the product weights are then +-h, not +-1 (catches a misplaced 1/h)
    if binarize == "bnn":
        binarize, kw = "det", {**BNN, **kw}
    elif binarize == "det-sign":
        binarize, kw = "det", {"binarize_act": "sign", **kw}
    return with_overrides("mnist", **{"dataset": "mnist-sample", "hidden": (32,), "batch_size": 200,
                                      "epochs": 2, "lr_start": 3e-3, "lr_end": 1e-3, "jit": False,
                                      "binarize": binarize, **kw})


def batches(cfg, n):
    splits = load_splits(cfg.dataset)
    _, (x, _, _) = preprocess.preprocess(cfg.preprocess, splits.x_train, splits.x_val, splits.x_test)
    y_pm1 = pipeline.to_pm1(splits.y_train, cfg.n_classes)
    data = pipeline.train_batches(x, y_pm1, cfg.batch_size, cfg.seed, 1)
    return [b for _, b in zip(range(n), data)], (x[:1000], splits.y_train[:1000])


def oracle_step(net, opt, x, y_pm1, draws):
    """One step on one device of the global batch whose row blocks use the replicas' draws."""
    replicas, n_layers = len(draws), len(net.linear)
    flat = [wb for replica in draws for wb in replica]
    direct = net.other_params()
    with tf.GradientTape() as tape:
        tape.watch(flat)
        rows = tf.split(x, replicas)
        for i, (spec, lin, bn) in enumerate(zip(net.specs, net.linear, net.bn)):
            z = tf.concat([lin.apply(h, draws[r][i]) for r, h in enumerate(rows)], 0)
            z = bn.sign(z, training=True) if spec.act == "sign" else bn(z, training=True)
            rows = tf.split(relu(z) if spec.relu else z, replicas)
        loss = squared_hinge(tf.concat(rows, 0), y_pm1)
    grads = tape.gradient(loss, flat + direct)
    w_grads = [lin.latent_gradient(tf.add_n(grads[i::n_layers][:replicas])) for i, lin in enumerate(net.linear)]
    opt.apply(w_grads + grads[len(flat):])


def equivalence(binarize):
    mirrored = strategies.make("mirrored", 2)
    cfg = tiny(binarize, h="1" if binarize == "det-sign" else "glorot")  # binary activations: h a power of 2
    data, (x_eval, y_eval) = batches(cfg, STEPS)
    with mirrored.scope():
        net_m = Net(cfg, seed=1)
        opt_m = Optimizer("adam", net_m.binary_params(), net_m.other_params(), lr=cfg.lr_start)
    net_1 = Net(cfg, seed=1)
    opt_1 = Optimizer("adam", net_1.binary_params(), net_1.other_params(), lr=cfg.lr_start)
    plan_m = choose_plan(dataclasses.replace(cfg, strategy="mirrored", update_kernel="xla"), gpu=False)
    plan_1 = choose_plan(dataclasses.replace(cfg, update_kernel="xla"), gpu=False)
    step_m = make_train_step(net_m, opt_m, plan_m, strategy=mirrored)
    step_1 = make_train_step(net_1, opt_1, plan_1)
    draw = tf.function(lambda: mirrored.run(lambda: net_m.product_weights(training=True)))
    losses, draws_differ = [], []
    for x, y_pm1 in data:
        if binarize == "stoch":  # the replicas' draws of this step, then the generator rewound
            state = net_m.gen.state.numpy()
            draws = [list(d) for d in zip(*[mirrored.experimental_local_results(w) for w in draw()])]
            net_m.gen.state.assign(state)
            draws_differ.append(bool(np.any(draws[0][0].numpy() != draws[1][0].numpy())))
            oracle_step(net_1, opt_1, x, y_pm1, draws)
            losses.append(float(step_m(x, y_pm1)[0]))
        else:
            losses.append([float(step_m(x, y_pm1)[0]), float(step_1(x, y_pm1)[0])])
    diffs, replicas_equal = {}, True
    for v_m, v_1 in zip(net_m.variables + opt_m.variables, net_1.variables + opt_1.variables):
        copies = [c.numpy() for c in mirrored.experimental_local_results(v_m)]
        replicas_equal &= all(np.array_equal(copies[0], c) for c in copies[1:])
        if v_m.dtype.is_floating:
            key = v_m.name.split("/")[-1].split(":")[0]
            diffs[key] = max(diffs.get(key, 0.0), float(np.max(np.abs(copies[0] - v_1.numpy()))))
    net_1.load_weights_dict(net_m.weights_dict())  # the same weights, evaluated on 2 replicas and on 1
    errors = [[int(make_eval_step(n, "binary", p, strategy=s)(x_eval[:k], y_eval[:k])) for k in (1000, 999, 1)]
              for n, p, s in ((net_m, plan_m, mirrored), (net_1, plan_1, None))]  # even, uneven, fewer rows
    return {"diffs": diffs, "replicas_equal": bool(replicas_equal), "losses": losses,
            "draws_differ": draws_differ, "eval_errors": errors}


def _weights(run_dir):
    with np.load(os.path.join(run_dir, "best.npz")) as f:
        return {k: f[k] for k in f.files}


def _history(run_dir):
    with open(os.path.join(run_dir, "history.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def resume(binarize, root):
    quiet = open(os.devnull, "w")
    cfg = tiny(binarize, strategy="mirrored", replicas=2)
    train(cfg, os.path.join(root, "full"), out=quiet)
    train(cfg, os.path.join(root, "cut"), out=quiet, stop_after=1)
    train(cfg, os.path.join(root, "cut"), out=quiet, resume=True)
    full, cut = _weights(os.path.join(root, "full")), _weights(os.path.join(root, "cut"))
    return {"identical": all(np.array_equal(full[k], cut[k]) for k in full),
            "losses": [[r["train_loss"] for r in _history(os.path.join(root, d))] for d in ("full", "cut")],
            "replicas": [r["replicas"] for r in _history(os.path.join(root, "full"))]}


def restore_on_one(binarize, root):
    quiet = open(os.devnull, "w")
    cfg = tiny(binarize, strategy="mirrored", replicas=2)
    train(cfg, os.path.join(root, "full"), out=quiet)
    train(cfg, os.path.join(root, "cut"), out=quiet, stop_after=1)
    default = dataclasses.replace(cfg, strategy="default", replicas=0)
    metrics = train(default, os.path.join(root, "cut"), out=quiet, resume=True)  # 1 replica
    full, cut = _history(os.path.join(root, "full")), _history(os.path.join(root, "cut"))
    return {"strategies": [(r["strategy"], r["replicas"]) for r in cut], "metrics_replicas": metrics["replicas"],
            "loss_full": [r["train_loss"] for r in full], "loss_cut": [r["train_loss"] for r in cut]}


def variants(root):
    """One epoch each, in one process: mixed precisions (XLA draws), per-replica BatchNorm, and
    BinaryNet's MLP in bfloat16 (its ±1 activations exact there)."""
    quiet = open(os.devnull, "w")
    errors = {}
    for name, kw in [("bf16-stoch-xla", dict(precision="mixed_bfloat16", binarize="stoch", jit=True)),
                     ("f16", dict(precision="mixed_float16")), ("replica-bn", dict(bn_stats="replica")),
                     ("bf16-bnn", dict(precision="mixed_bfloat16", binarize="bnn"))]:
        cfg = dataclasses.replace(tiny(**{k: v for k, v in kw.items() if k == "binarize"}), epochs=1,
                                  strategy="mirrored", replicas=2, **{k: v for k, v in kw.items() if k != "binarize"})
        errors[name] = train(cfg, os.path.join(root, name), out=quiet)["test_error"]
    return {"test_errors": errors}


def multiworker(mode, run_dir):
    """One tiny 2-epoch run under multiworker: whole, stopped after epoch 1, or resumed."""
    cfg = tiny("stoch", strategy="multiworker")
    metrics = train(cfg, run_dir, out=open(os.devnull, "w"), stop_after=1 if mode == "cut" else None,
                    resume=mode == "resume")
    return {"finished": metrics is not None}


def main(argv):
    scenario = argv[0]
    if scenario == "equivalence":
        result = equivalence(argv[1])
    elif scenario == "resume":
        result = resume(argv[1], argv[2])
    elif scenario == "multiworker":
        result = multiworker(argv[1], argv[2])
    elif scenario == "variants":
        result = variants(argv[1])
    else:
        result = restore_on_one(argv[1], argv[2])
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
