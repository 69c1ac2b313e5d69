"""The step plan: how the paper's training step is carried out, chosen in one place (`choose_plan`).

Every plan computes the paper's step (`bctrain.step.reference`); they differ in where each part runs:
    form      "whole": forward, backward (and the XLA update) in one function, XLA-compiled if `jit`;
              "split": the matrix products in TensorFlow's own kernels (oneDNN on a CPU, cuBLAS on a
              GPU), binarization and update XLA-compiled if `jit` (or by the fused op). A 16-bit
              precision needs it (XLA's CPU back end runs 16-bit dots at float32 speed, oneDNN at
              16-bit speed), and so does a tf.distribute strategy (each replica runs it).
    update    "xla": the optimizer's TensorFlow ops (bctrain.paper.optim), compiled with the step if
              `jit`; "fused": the one-pass CPU op (bctrain.step.fused_update), outside XLA.
    cached    the layers whose next ±1 product weights the fused update writes (bctrain.step.caches):
              every det layer in the split step (it saves the binarization pass), the first layer in
              the whole float32 step (the one binarization XLA cannot overlap with a product), none
              otherwise.
    per_call  training steps per call of the compiled function (bctrain.step.loop).
The plan's `why` says, one line per decision, why it was chosen. Every plan gives the reference
plan's results bit for bit on the same products (tests/test_plan.py). TensorFlow-free: the caller
says whether a GPU is visible and whether the fused op loads.
"""
from dataclasses import dataclass

from bctrain import choices
from bctrain.paper.arch import count_binary_weights, layer_specs
from bctrain.step.precision import PRECISIONS

# Below this many latent weights, `auto` leaves a float32 XLA step whole with XLA's update inside:
# there the step's two halves and their hand-over cost more than the fused update saves. Measured
# with `benchmarks.bench_train --no-fit --hidden N,N,N` (docs/BENCHMARKS.md): the whole-XLA step
# 1.18x and 1.28x faster at 0.33 M and 0.93 M weights, the same within the noise at 2.9 M, the
# fused one 1.04x and 1.07x faster at 5.9 M and 10 M.
AUTO_MIN_WEIGHTS = 2_000_000

FORMS = ("whole", "split")
CACHED = ("none", "first", "all")


class PlanError(ValueError):
    """A runtime setting that cannot be honoured here (one line)."""


@dataclass(frozen=True)
class StepPlan:
    form: str = "whole"
    jit: bool = True
    update: str = "xla"
    cached: str = "none"
    per_call: int = 1
    replicated: bool = False
    why: tuple = ()

    def __post_init__(self):
        if self.form not in FORMS or self.cached not in CACHED or self.update not in ("xla", "fused"):
            raise ValueError(f"not a step plan: {self}")
        if self.cached != "none" and self.update != "fused":
            raise ValueError("only the fused update writes ±1 caches")
        if self.cached != "none" and self.cached != {"whole": "first", "split": "all"}[self.form]:
            raise ValueError("the whole step caches the first layer's ±1 weights, the split step every layer's")
        if self.per_call < 1 or (self.replicated and (self.per_call != 1 or self.form != "split")):
            raise ValueError(f"not a step plan: {self}")

    @property
    def arithmetic(self) -> tuple:
        """What decides the results bit for bit: (products, update). Products are XLA's dots when the
        whole step is compiled, else TensorFlow's kernels; the update is FMA-contracted when compiled
        by XLA or run by the fused op (the same arithmetic), else TensorFlow's ops. Plans of the same
        arithmetic give the same results (tests/test_plan.py)."""
        products = "xla" if self.form == "whole" and self.jit else "kernels"
        return products, "fma" if self.jit or self.update == "fused" else "ops"

    def describe(self) -> str:
        """One line for the run's start line and history: e.g. 'whole XLA step, fused update, ...'."""
        form = self.form + (" XLA" if self.jit else "") + " step"
        cached = {"none": "", "first": ", first layer's ±1 weights cached", "all": ", ±1 weights cached"}[self.cached]
        return f"{form}, {self.update} update{cached}, {self.per_call} step{'s' if self.per_call > 1 else ''} per call"


REFERENCE = StepPlan(why=("the reference plan: the paper's step in one function",))


def choose_plan(cfg, gpu: bool, fused_status=lambda: "") -> StepPlan:
    """The plan of a run of `cfg` (a bctrain.config.Config) on this machine.

    gpu: a GPU is visible (the variables would live there; the fused op is CPU-only).
    fused_status: called where the fused update is wanted: "" if the op loads, else why not
    (`bctrain.step.build.plan_for` loads it, building it on first use).
    Raises PlanError where `cfg` asks for the fused update and it cannot be had."""
    why = []
    precision = PRECISIONS[cfg.precision]
    replicated = cfg.strategy != "default"
    split = replicated or precision.split_step
    if replicated:
        why.append(f"split step on every replica: strategy {cfg.strategy}")
    elif precision.split_step:
        why.append(f"split step: {cfg.precision} runs its products in TensorFlow's kernels (16-bit speed there)")
    else:
        why.append("whole step: float32 products" + (" compiled by XLA with the rest" if cfg.jit else ""))

    update, reason = _update(cfg, split, gpu, fused_status)
    why.append(reason)
    cached = "none"
    if update == "fused" and cfg.binarize == "det" and not replicated:
        cached = "all" if split else "first"
        why.append("±1 weights of every layer written by the update (no binarization pass)" if split else
                   "the first layer's ±1 weights written by the update (its binarization would delay the "
                   "first product)")
    per_call = 1 if replicated else cfg.steps_per_call
    why.append(f"{per_call} step{'s' if per_call > 1 else ''} per call"
               + (" (1 under a strategy)" if replicated else ""))
    return StepPlan("split" if split else "whole", bool(cfg.jit), update, cached, per_call, replicated, tuple(why))


def _update(cfg, split: bool, gpu: bool, fused_status) -> tuple:
    """(update kernel, why) for `cfg.update_kernel`."""
    kind = cfg.update_kernel
    choices.check("update kernel", kind, choices.UPDATE_KERNELS)
    if kind == "xla":
        return "xla", "xla update: asked for"
    if cfg.optimizer != "adam" or PRECISIONS[cfg.precision].loss_scaling:
        return "xla", f"xla update: the fused op is Adam without loss scaling ({cfg.optimizer}, {cfg.precision})"
    if gpu:
        if kind == "fused":
            raise PlanError("--update-kernel fused: the fused update is CPU-only and a GPU is visible")
        return "xla", "xla update: a GPU is visible (XLA fuses the update there)"
    if kind == "auto" and cfg.jit and not split:
        n = count_binary_weights(layer_specs(cfg))
        if n < AUTO_MIN_WEIGHTS:
            return "xla", (f"xla update inside the whole XLA step: {n:,} weights, under {AUTO_MIN_WEIGHTS:,} "
                           "(there the hand-over to the fused op costs more than it saves)")
    unavailable = fused_status()
    if unavailable:
        if kind == "fused":
            raise PlanError(f"--update-kernel fused: {unavailable}")
        return "xla", f"xla update: {unavailable}"
    return "fused", "fused update: one pass over memory (Adam on a CPU)" + (" (asked for)" if kind == "fused" else "")
