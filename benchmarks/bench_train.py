"""Training-step throughput of the `mnist` preset (3x2048 MLP, batch 100) against its roofline.

Measures, in one run and in interleaved rounds (so that a slow spell of a shared machine hits every
row alike; the median round is reported; every measurement, a step's or the roofline's, runs
untimed first in its round, since the other rows ran in between):
- samples/s of the bctrain step: float32 as `bctrain train` runs it (forward and backward under XLA,
  the fused update of bctrain.step.fused_update after it, the preset's `steps_per_call` steps per call of
  the compiled function), with one step per call, with the XLA update instead (the whole step
  one XLA function), without XLA, and in the split arrangement; mixed_bfloat16 as `bctrain train`
  runs it (products in TensorFlow's oneDNN kernels, the fused update, which also writes the next
  step's ±1 weights), with the XLA update (and so an XLA binarization pass), with the whole step
  under XLA, and with no XLA and TensorFlow's own update ops;
- the same network trained by Keras `fit` in separate processes (benchmarks/fit_worker.py): Keras 3
  in float without XLA (with op determinism on, Keras refuses `jit_compile=True`), Keras 3 with XLA
  and op determinism off, and larq (BinaryConnect `QuantDense`, tf-keras) from the benchmark venv
  `.venv-larq` when it exists (`make bench-train` creates it);
- the roofline (benchmarks/roofline.py): the step's 11 matrix products alone (float32 under XLA and
  in oneDNN, bfloat16 in oneDNN), the in-place streaming bandwidth, the Adam update alone (each
  kernel), and the floor
  products + 28 bytes per latent weight / bandwidth of each precision (float32: the faster products).
A step's fraction of its floor is the median over rounds of its samples/s against the floor measured
in the same round (paired, so that a slow or fast spell of the machine cancels); the report also
gives the default float32 row's fraction in each round and the ratio of the two medians.
The step's FLOPs are those of its 11 products (`roofline.step_flops`). The CPU time other
processes used during each round is recorded (from /proc/stat, less this process and its workers):
above `LOADED` cores on average, the table is marked as measured on a loaded machine.

Usage: make bench-train   (or: python -m benchmarks.bench_train --steps 65 --binarize det)
"""
import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.quiet_tf import VERBOSE_FLAG, VERBOSE_HELP, tf  # first: TensorFlow loads quietly
from benchmarks import provenance, roofline
from benchmarks.tables.train import BF16_ROW, DEFAULT_ROW, floor_key, render
from bctrain.step import fused_update
from bctrain.paper.arch import count_binary_weights
from bctrain.config import with_overrides
from bctrain.data import pipeline
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step.build import make_train_step, plan_for
from bctrain.step.loop import make_train_loop, step_groups
from bctrain.step.plan import StepPlan
from bctrain.train import device_name

LARQ_PYTHON = ".venv-larq/bin/python"
LOADED = 0.25  # cores used by other processes, on average over a round, above which figures are marked


def synthetic(batch, steps, n_in=784, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch * steps, n_in)).astype(np.float32)
    labels = rng.integers(0, n_classes, batch * steps)
    y_pm1 = (2 * np.eye(n_classes, dtype=np.float32)[labels] - 1)
    return x, y_pm1


def bctrain_runner(cfg, x, y_pm1, steps, warmup, plan=None):
    """A function that times `steps` training steps of a fresh bctrain network (samples/s), after
    `warmup` untimed ones (each time: the other rows have run in between, as the roofline's
    measurements each run once untimed first). `plan`: the step plan (default: the run's,
    `bctrain.step.build.plan_for`)."""
    plan = plan or plan_for(cfg)
    net = Net(cfg, seed=1)
    opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start,
                    loss_scale=net.precision.loss_scaling)
    step = make_train_step(net, opt, plan)
    for i, batch in zip(range(warmup), pipeline.train_batches(x, y_pm1, cfg.batch_size, seed=1, epoch=0)):
        float(step(*batch)[0])
    loop = make_train_loop(step, plan.per_call)
    epoch = [0]

    def train(n_steps):  # fed by the training pipeline, `steps_per_call` steps per call, as `bctrain train` is
        epoch[0] += 1
        batches = iter(pipeline.train_batches(x, y_pm1, cfg.batch_size, seed=1, epoch=epoch[0]))
        for n in step_groups(n_steps, plan.per_call):
            loss, _ = loop(batches, n)
        return float(tf.reduce_sum(loss))

    train(min(steps, plan.per_call + 1))  # traced before timing: a full call and a call of one step

    def run():
        if warmup:
            train(warmup)
        start = time.perf_counter()
        train(steps)
        return steps * cfg.batch_size / (time.perf_counter() - start)
    return run


def _cpu_seconds(pids) -> tuple:
    """(CPU seconds the whole machine has been busy, CPU seconds of this process and `pids`)."""
    tick = os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
    mine = sum(os.times()[:2]) * tick
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                mine += sum(int(v) for v in fh.read().rsplit(")", 1)[1].split()[11:13])  # utime, stime
        except OSError:
            pass
    return busy / tick, mine / tick


class FitWorker:
    """A benchmarks.fit_worker process: `run()` returns samples/s, or None if it is unavailable."""

    def __init__(self, python, inputs, steps, warmup, *flags):
        self.error = None
        cmd = [python, "-m", "benchmarks.fit_worker", inputs, "--steps", str(steps), "--warmup",
               str(warmup), *flags]
        env = dict(os.environ, PYTHONPATH=os.getcwd())
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=tempfile.TemporaryFile(), text=True, env=env)
        except OSError as exc:
            self.proc, self.error = None, f"{python}: {exc.strerror}"
            return
        self.ready = self._reply()

    def _reply(self):
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.proc.stderr.seek(0)
            lines = [ln for ln in self.proc.stderr.read().decode().splitlines() if ln.strip()]
            self.error = lines[-1] if lines else f"exit status {self.proc.returncode}"
            self.proc = None
        return line.strip()

    def run(self):
        if self.proc is None:
            return None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        reply = self._reply()
        return float(reply) if reply else None

    def close(self):
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()


def fit_workers(cfg, x, y_pm1, steps, warmup, determinism, larq_python, workdir):
    inputs = os.path.join(workdir, "inputs.npz")
    np.savez(inputs, x=x, y_pm1=y_pm1, hidden=np.array(cfg.hidden), batch=cfg.batch_size,
             lr=cfg.lr_start, bn_alpha=cfg.bn_alpha, bn_eps=cfg.bn_eps)
    det = "on" if determinism else "off"
    workers = {"Keras 3 fit (float), no XLA": FitWorker(sys.executable, inputs, steps, warmup,
                                                        "--kind", "keras", "--jit", "auto", "--determinism", det),
               "Keras 3 fit (float), XLA, op determinism off": FitWorker(
                   sys.executable, inputs, steps, warmup, "--kind", "keras", "--jit", "true", "--determinism", "off")}
    if larq_python:
        workers["larq fit (BinaryConnect, tf-keras)"] = FitWorker(larq_python, inputs, steps, warmup,
                                                                  "--kind", "larq", "--determinism", det)
    return workers


def roofline_round(cfg, net):
    specs, n = net.specs, count_binary_weights(net.specs)
    return {"products_float32_xla_s": roofline.products_seconds(specs, cfg.batch_size, tf.float32, jit=True),
            "products_float32_onednn_s": roofline.products_seconds(specs, cfg.batch_size, tf.float32, jit=False),
            "products_bfloat16_onednn_s": roofline.products_seconds(specs, cfg.batch_size, tf.bfloat16, jit=False),
            "stream_gbps": roofline.stream_gbps(n),
            "update_s": roofline.update_seconds(net),
            "update_fused_s": (roofline.update_seconds(net, kernel="fused")
                               if fused_update.load() is not None else None)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=65,
                        help="timed steps per measurement (65: 8 calls of 8 and an epoch's last step, as the bulk "
                             "of an epoch runs; an mnist epoch is 500 steps, 62 such calls, one of 3 and the last)")
    parser.add_argument("--warmup", type=int, default=10,
                        help="untimed steps before each measurement (and before the first, to compile)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the median is reported")
    parser.add_argument("--no-determinism", action="store_true", help="leave TensorFlow op determinism off")
    parser.add_argument("--binarize", default="det", choices=("det", "stoch", "none"))
    parser.add_argument("--hidden", type=lambda t: tuple(int(v) for v in t.split(",")), default=None,
                        help="hidden layers instead of the preset's 2048,2048,2048 (smoke tests)")
    parser.add_argument("--no-fit", action="store_true", help="leave out the Keras and larq rows")
    parser.add_argument("--larq-python", default=LARQ_PYTHON, help="Python of the larq benchmark venv")
    parser.add_argument("--out", default="benchmarks/results/bench_train.json", help="JSON results file")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    if not args.no_determinism:  # as in `bctrain train`, which needs it for bit-identical resume
        tf.config.experimental.enable_op_determinism()
        tf.random.set_seed(1)
    base = with_overrides("mnist", binarize=args.binarize, hidden=args.hidden)
    bf16 = dataclasses.replace(base, precision="mixed_bfloat16")
    x, y_pm1 = synthetic(base.batch_size, args.steps)
    net = Net(base, seed=1)
    n_binary = count_binary_weights(net.specs)
    flops_per_sample = roofline.step_flops(net.specs, base.batch_size) / base.batch_size
    xla_update = {"update_kernel": "xla"}
    k = base.steps_per_call
    variants = {  # name: (config, plan; None: the config's own, as `bctrain train` chooses it)
        DEFAULT_ROW: (base, None),
        "bctrain float32, one step per call (--steps-per-call 1)": (dataclasses.replace(base, steps_per_call=1), None),
        "bctrain float32, XLA update (whole step one XLA function)": (dataclasses.replace(base, **xla_update), None),
        "bctrain float32, no XLA (fused update)": (dataclasses.replace(base, jit=False), None),
        "bctrain float32, split (products oneDNN, fused update writes the next wb)": (
            base, StepPlan("split", True, "fused", "all" if base.binarize == "det" else "none", k)),
        BF16_ROW: (bf16, None),
        "bctrain mixed_bfloat16, XLA update (and an XLA binarization pass)": (dataclasses.replace(bf16, **xla_update), None),
        "bctrain mixed_bfloat16, whole step XLA": (dataclasses.replace(bf16, **xla_update), StepPlan(per_call=k)),
        "bctrain mixed_bfloat16, no XLA, TensorFlow's update ops": (dataclasses.replace(bf16, jit=False, **xla_update), None),
    }
    runners = {name: bctrain_runner(cfg, x, y_pm1, args.steps, args.warmup, plan=plan)
               for name, (cfg, plan) in variants.items()}
    with tempfile.TemporaryDirectory() as workdir:
        larq_python = args.larq_python if os.path.exists(args.larq_python) else None
        workers = {} if args.no_fit else fit_workers(base, x, y_pm1, args.steps, args.warmup,
                                                     not args.no_determinism, larq_python, workdir)
        rows = {name: [] for name in list(runners) + list(workers)}
        roofs, loads = [], []
        pids = [w.proc.pid for w in workers.values() if w.proc is not None]
        for _ in range(args.rounds):
            start, (busy, mine) = time.perf_counter(), _cpu_seconds(pids)
            roofs.append(roofline_round(base, net))
            for name, run in runners.items():
                rows[name].append(run())
            for name, worker in workers.items():
                rows[name].append(worker.run())
            busy_end, mine_end = _cpu_seconds(pids)
            loads.append(max(0.0, (busy_end - busy) - (mine_end - mine)) / (time.perf_counter() - start))
        for worker in workers.values():
            worker.close()
    unavailable = {name: w.error for name, w in workers.items() if w.error}
    if not os.path.exists(args.larq_python):
        unavailable["larq fit (BinaryConnect, tf-keras)"] = f"{args.larq_python} not found (make bench-train creates it)"
    rates = {name: float(np.median(v)) for name, v in rows.items() if None not in v}
    roof = {key: None if roofs[0][key] is None else float(np.median([r[key] for r in roofs])) for key in roofs[0]}
    floors = round_floor_seconds(roof, n_binary)  # of the median roofline
    round_floors = [round_floor_seconds(r, n_binary) for r in roofs]
    of_floor = {name: paired_fraction(v, [f[floor_key(name)] for f in round_floors], base.batch_size)
                for name, v in rows.items() if None not in v}
    result = {"device": device_name(), "tensorflow": tf.__version__, "determinism": not args.no_determinism,
              "default_update_kernel": plan_for(base).update, "default_step_plan": plan_for(base).describe(),
              "binarize": args.binarize, "batch_size": base.batch_size, "steps": args.steps,
              "flops_per_sample": flops_per_sample, "binary_weights": n_binary, "rounds": rows,
              "other_processes_cores": loads, "loaded": max(loads) > LOADED,
              "roofline": roof, "floor_seconds": floors, "samples_per_second": rates, "unavailable": unavailable,
              "roofline_rounds": roofs, "floor_seconds_rounds": round_floors, "of_floor": of_floor,
              "update_bytes_per_weight": roofline.UPDATE_BYTES_PER_WEIGHT}
    print(render(provenance.write(args.out, result, "benchmarks.bench_train", argv, result["device"])))


def round_floor_seconds(roof: dict, n_binary: int) -> dict:
    """The floors of one round's roofline measurements (float32: the faster of its products)."""
    f32 = min(roof["products_float32_xla_s"], roof["products_float32_onednn_s"])
    return {"float32": roofline.floor_seconds(f32, n_binary, roof["stream_gbps"]),
            "mixed_bfloat16": roofline.floor_seconds(roof["products_bfloat16_onednn_s"], n_binary, roof["stream_gbps"])}


def paired_fraction(rates, floors, batch) -> float:
    """The median over rounds of a step's fraction of its floor, each round's step (samples/s)
    against the same round's floor (seconds): the machine's speed of the moment, which drifts
    between rounds, cancels in each pair."""
    if len(rates) != len(floors) or not rates:
        raise ValueError(f"{len(rates)} rates for {len(floors)} floors")
    return float(np.median([rate * floor / batch for rate, floor in zip(rates, floors)]))


if __name__ == "__main__":
    main()
