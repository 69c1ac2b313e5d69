"""The CNN presets' training step against its roofline, and their epochs on this machine (issue 20).

For each preset (--presets, default `cifar10,svhn`: its full network, batch 50, random inputs of the
real shape fed by the training pipeline, op determinism on as in `bctrain train`), in one run and in
interleaved rounds as `make bench-train` does (every measurement runs untimed first in its round; the
median round is reported; the CPU time other processes used in each round is recorded):
- the roofline (benchmarks.roofline_conv): each kind of product alone (the convolutions forward,
  gradient with respect to the input, gradient with respect to the kernel; the dense products) in
  float32 and bfloat16, in TensorFlow's kernels and in XLA; the streaming bandwidth
  (benchmarks.roofline); the floor of each precision: the faster back end's products plus 28 bytes
  per latent weight at that bandwidth. On a CPU without bfloat16 instructions TensorFlow's bfloat16
  convolution gradients run a generic kernel tens of times slower: they are timed in the first
  round only, once each;
- the step in float32 and mixed_bfloat16, det and stoch, as `bctrain train` runs it (its plan,
  `bctrain.step.build.plan_for`), and the other arrangements --variants names (float32 det: the
  whole step under XLA with XLA's update, TensorFlow's kernels without XLA, the split step;
  bfloat16 det: the other form, by default only where the CPU has bfloat16 instructions). A step's
  floor ratio is the median over rounds of its time against the same round's floor.
Then once per preset and precision, the evaluation time per image (the preset's eval batch, ±1
weights). An epoch is extrapolated, not run: steps per epoch x seconds per step, plus the validation
and test images x evaluation seconds per image (the paper's splits: CIFAR-10 45,000 training
images, 5,000 + 10,000 evaluated; SVHN 598,388, 6,000 + 26,032); the full schedule is that times
the preset's epochs. On paper, for one GPU (--gpu, --gpu-tflops: its datasheet peaks): the FLOPs of
a step and of an evaluation over the peak of the precision, an estimate that no small batch
reaches. The CPU's flags say whether its bfloat16 figures ran on bfloat16 instructions.

Usage: make bench-cnn   (or: python -m benchmarks.bench_cnn --presets svhn --steps 2 --rounds 2)
"""
import argparse
import dataclasses
import os
import time

import numpy as np

from benchmarks.quiet_tf import VERBOSE_FLAG, VERBOSE_HELP, tf  # first: TensorFlow loads quietly
from benchmarks import provenance, roofline, roofline_conv
from benchmarks.bench_train import LOADED, bctrain_runner, cpu_seconds, paired_fraction
from benchmarks.tables.cnn import render_cnn
from bccommon import machine
from bctrain.config import PRESETS
from bctrain.data import pipeline
from bctrain.paper.arch import count_binary_weights, layer_specs
from bctrain.paper.models import Net
from bctrain.step.build import BF16_FLAGS, bf16_kernels, plan_for
from bctrain.step.evaluate import make_eval_step
from bctrain.step.plan import StepPlan
from bctrain.train import device_name

# Split sizes of the paper (PAPER.md §6): training images, evaluated images (validation + test).
SPLITS = {"cifar10": (45_000, 5_000 + 10_000), "svhn": (598_388, 6_000 + 26_032)}
PRECISIONS = ("float32", "mixed_bfloat16")
BACKENDS = {"kernels": False, "xla": True}  # name: jit
FLAGS = ("avx2", "fma", "avx512f", *BF16_FLAGS)
VARIANTS = {  # name: (precision, the det plan given the steps per call)
    "f32-xla-update": ("float32", lambda k: StepPlan("whole", True, "xla", "none", k)),
    "f32-no-xla": ("float32", lambda k: StepPlan("whole", False, "fused", "first", k)),
    "f32-split": ("float32", lambda k: StepPlan("split", True, "fused", "all", k)),
    "bf16-split": ("mixed_bfloat16", lambda k: StepPlan("split", True, "fused", "all", k)),
    "bf16-whole": ("mixed_bfloat16", lambda k: StepPlan("whole", True, "fused", "none", k)),
}


def forward_flops(cfg) -> int:
    """FLOPs of one image's forward pass through the binary linear layers (2 per multiply-add)."""
    return roofline_conv.kind_flops(layer_specs(cfg), cfg.input_shape, 1)["forward"] + 2 * sum(
        s.n_weights for s in layer_specs(cfg) if s.kind == "dense")


def synthetic_images(cfg, n, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, *cfg.input_shape)).astype(np.float32)
    return x, pipeline.to_pm1(rng.integers(0, cfg.n_classes, n), cfg.n_classes)


def step_rows(base, variants) -> list:
    """(name, config, plan or None for the run's own) of every step measured for a preset."""
    rows = []
    for precision in PRECISIONS:
        for mode in ("det", "stoch"):
            rows.append((f"{precision} {mode}", dataclasses.replace(base, precision=precision, binarize=mode), None))
    for name in variants:
        precision, make = VARIANTS[name]
        cfg = dataclasses.replace(base, precision=precision)
        plan = make(cfg.steps_per_call)
        if _shape(plan) != _shape(plan_for(cfg)):
            rows.append((f"{precision} det (--variants {name})", cfg, plan))
    return rows


def _shape(plan):
    return plan.form, plan.jit, plan.update, plan.cached


def roofline_round(cfg, net, first_round) -> dict:
    """One round of the preset's roofline: {precision_backend: {kind: seconds}, "stream_gbps": ...}."""
    specs, out = net.specs, {}
    slow = () if bf16_kernels() or first_round else ("input gradient", "kernel gradient")
    for precision, dtype in (("float32", tf.float32), ("mixed_bfloat16", tf.bfloat16)):
        for backend, jit in BACKENDS.items():
            skip = slow if (precision, backend) == ("mixed_bfloat16", "kernels") else ()
            kinds = [k for k in roofline_conv.KINDS if k not in skip]
            repeats = 1 if precision == "mixed_bfloat16" and backend == "kernels" and not bf16_kernels() else 3
            out[f"{precision}_{backend}"] = roofline_conv.products_seconds(
                specs, cfg.input_shape, cfg.batch_size, dtype, jit, repeats=repeats, kinds=kinds)
    out["stream_gbps"] = roofline.stream_gbps(count_binary_weights(specs))
    return out


def floors(roof: dict, n_weights: int) -> dict:
    """{precision: (floor seconds, back end)}: the faster back end's products plus the update traffic."""
    out = {}
    for precision in PRECISIONS:
        totals = {b: sum(roof[f"{precision}_{b}"].values()) for b in BACKENDS
                  if len(roof[f"{precision}_{b}"]) == len(roofline_conv.KINDS)}
        backend = min(totals, key=totals.get)
        out[precision] = (roofline.floor_seconds(totals[backend], n_weights, roof["stream_gbps"]), backend)
    return out


def median_roofline(rounds: list) -> dict:
    """The median over rounds of every figure (a kind timed in fewer rounds: over those)."""
    out = {"stream_gbps": float(np.median([r["stream_gbps"] for r in rounds]))}
    for key in rounds[0]:
        if key != "stream_gbps":
            out[key] = {k: float(np.median([r[key][k] for r in rounds if k in r[key]])) for k in roofline_conv.KINDS
                        if any(k in r[key] for r in rounds)}
    return out


def eval_seconds_per_image(cfg, batches) -> float:
    """Seconds per evaluated image (±1 weights, the preset's eval batch), as `bctrain train` evaluates."""
    step = make_eval_step(Net(cfg, seed=1), "binary", plan_for(cfg))
    x = tf.random.stateless_normal((cfg.eval_batch_size, *cfg.input_shape), seed=[1, 2])
    labels = tf.zeros([cfg.eval_batch_size], tf.int64)
    int(step(x, labels))
    start = time.perf_counter()
    for _ in range(batches):
        n_wrong = step(x, labels)
    int(n_wrong)
    return (time.perf_counter() - start) / (batches * cfg.eval_batch_size)


def measure(names, args) -> tuple:
    """Every preset's roofline and steps, interleaved over rounds; (per preset, per-round loads)."""
    presets, runners = {}, {}
    for name in names:
        base = PRESETS[name]
        x, y_pm1 = synthetic_images(base, base.batch_size * max(args.steps, args.warmup, 1))
        rows = step_rows(base, args.variants)
        runners[name] = [(label, cfg, plan, bctrain_runner(cfg, x, y_pm1, args.steps, args.warmup, plan=plan))
                         for label, cfg, plan in rows]
        presets[name] = {"net": Net(base, seed=1), "roofs": [], "times": {label: [] for label, *_ in rows}}
    loads = []
    for i in range(args.rounds):
        start, (busy, mine) = time.perf_counter(), cpu_seconds([])
        for name in names:
            presets[name]["roofs"].append(roofline_round(PRESETS[name], presets[name]["net"], first_round=i == 0))
            for label, cfg, _, run in runners[name]:
                presets[name]["times"][label].append(cfg.batch_size / run())
        busy_end, mine_end = cpu_seconds([])
        loads.append(max(0.0, (busy_end - busy) - (mine_end - mine)) / (time.perf_counter() - start))
    return {name: summarize(name, presets[name], runners[name], args) for name in names}, loads


def summarize(name, measured, runners, args) -> dict:
    base, net = PRESETS[name], measured["net"]
    n_weights = count_binary_weights(net.specs)
    round_floors = [floors(r, n_weights) for r in measured["roofs"]]
    roof = median_roofline(measured["roofs"])
    steps = []
    for label, cfg, plan, _ in runners:
        times = measured["times"][label]
        floor_s = [f[cfg.precision][0] for f in round_floors]
        steps.append({"name": label, "precision": cfg.precision, "binarize": cfg.binarize, "default": plan is None,
                      "plan": (plan or plan_for(cfg)).describe(), "seconds_per_step": float(np.median(times)),
                      "rounds": times, "of_floor": paired_fraction([1 / t for t in times], floor_s, 1)})
    n_train, n_eval = SPLITS[name]
    kind_flops = roofline_conv.kind_flops(net.specs, base.input_shape, base.batch_size)
    eval_s = {p: eval_seconds_per_image(dataclasses.replace(base, precision=p), args.eval_batches) for p in PRECISIONS}
    epochs = []
    for row in (r for r in steps if r["default"]):
        epoch_s = n_train // base.batch_size * row["seconds_per_step"] + n_eval * eval_s[row["precision"]]
        epochs.append({"precision": row["precision"], "binarize": row["binarize"], "seconds_per_epoch": epoch_s,
                       "schedule_hours": epoch_s * base.epochs / 3600})
    return {"binary_weights": n_weights, "kind_flops": kind_flops, "forward_flops_per_image": forward_flops(base),
            "steps_per_epoch": n_train // base.batch_size, "eval_images": n_eval, "epochs": base.epochs,
            "roofline": roof, "roofline_rounds": measured["roofs"],
            "floor_seconds": {p: floors(roof, n_weights)[p][0] for p in PRECISIONS},
            "floor_backend": {p: floors(roof, n_weights)[p][1] for p in PRECISIONS},
            "floor_seconds_rounds": [{p: f[p][0] for p in PRECISIONS} for f in round_floors],
            "steps": steps, "eval_seconds_per_image": eval_s, "per_epoch": epochs}


def on_paper(name, preset: dict, gpu_tflops: dict) -> list:
    """Per precision: seconds of a step, an epoch and the schedule at the GPU's peak (an estimate)."""
    base, out = PRESETS[name], []
    step_flops = sum(preset["kind_flops"].values())
    for precision, tflops in gpu_tflops.items():
        step_s = step_flops / (tflops * 1e12)
        epoch_s = preset["steps_per_epoch"] * step_s + preset["eval_images"] * preset["forward_flops_per_image"] / (
            tflops * 1e12)
        out.append({"precision": precision, "peak_tflops": tflops, "step_flops": step_flops, "step_seconds": step_s,
                    "seconds_per_epoch": epoch_s, "schedule_hours": epoch_s * base.epochs / 3600})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="cifar10,svhn")
    parser.add_argument("--steps", type=int, default=9,
                        help="timed steps per measurement (9: a call of the preset's 8 steps and one more)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps before each measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is reported")
    parser.add_argument("--eval-batches", type=int, default=1, help="timed evaluation batches per precision")
    parser.add_argument("--variants", default="auto",
                        help=f"other arrangements of the step, comma-separated from {', '.join(VARIANTS)}; auto: the "
                             "float32 ones, and bf16-split or bf16-whole (the non-default) where the CPU has bfloat16 "
                             "instructions")
    parser.add_argument("--gpu", default="NVIDIA H100 SXM", help="the GPU of the on-paper rows")
    parser.add_argument("--gpu-tflops", default="float32=494.7,mixed_bfloat16=989.4",
                        help="its peak TFLOP/s per precision (default: H100 SXM datasheet, dense; float32 products "
                             "run as TF32 on its tensor cores, TensorFlow's default there)")
    parser.add_argument("--out", default="benchmarks/results/bench_cnn.json", help="JSON results file")
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)
    args = parser.parse_args(argv)
    if args.variants == "auto":
        other = ["bf16-split" if plan_for(dataclasses.replace(PRESETS["cifar10"], precision="mixed_bfloat16")).form
                 == "whole" else "bf16-whole"] if bf16_kernels() else []
        args.variants = ["f32-xla-update", "f32-no-xla", "f32-split", *other]
    else:
        args.variants = [v for v in args.variants.split(",") if v]
        unknown = [v for v in args.variants if v not in VARIANTS]
        if unknown:
            parser.error(f"--variants: unknown {', '.join(unknown)} (expected some of {', '.join(VARIANTS)})")
    if min(args.steps, args.rounds, args.eval_batches) < 1 or args.warmup < 0:
        parser.error("--steps, --rounds and --eval-batches must be at least 1, --warmup at least 0")
    gpu_tflops = dict((k, float(v)) for k, v in (item.split("=") for item in args.gpu_tflops.split(",")))
    tf.config.experimental.enable_op_determinism()  # as `bctrain train` runs
    tf.random.set_seed(1)
    names = [n for n in args.presets.split(",") if n]
    presets, loads = measure(names, args)
    flags = machine.cpu_flags()
    result = {"device": device_name(), "tensorflow": tf.__version__, "determinism": True,
              "cpu_flags": {f: f in flags for f in FLAGS}, "bf16_kernels": bf16_kernels(),
              "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
              "batch_size": PRESETS[names[0]].batch_size, "steps": args.steps, "warmup": args.warmup,
              "rounds": args.rounds, "other_processes_cores": loads, "loaded": max(loads) > LOADED,
              "update_bytes_per_weight": roofline.UPDATE_BYTES_PER_WEIGHT, "presets": presets,
              "gpu": args.gpu, "on_paper": {name: on_paper(name, presets[name], gpu_tflops) for name in names}}
    print(render_cnn(provenance.write(args.out, result, "benchmarks.bench_cnn", argv, result["device"])))


if __name__ == "__main__":
    main()
