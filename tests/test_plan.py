"""bctrain.step.plan: which plan a configuration gets and why, and every plan against the reference.

A plan's results are decided by its arithmetic (`StepPlan.arithmetic`: the products' kernels and
the update's rounding); every plan must give, bit for bit, the results of the canonical plan of its
arithmetic: the reference step (bctrain.step.reference) compiled by XLA or not, or, for TensorFlow's
kernels with an FMA-contracted update (which no reference plan has), the split step with the XLA
update and nothing else changed.
"""
import dataclasses
import itertools

import numpy as np
import pytest
import tensorflow as tf

from bctrain.config import with_overrides
from bctrain.data import pipeline
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.step import fused_update
from bctrain.step.build import make_train_step
from bctrain.step.loop import make_train_loop, step_groups
from bctrain.step.plan import AUTO_MIN_WEIGHTS, REFERENCE, PlanError, StepPlan, choose_plan

LOADS = lambda: ""  # noqa: E731 (the fused op loads)
STEPS = 9


def _plan(preset="mnist", gpu=False, fused=LOADS, **overrides):
    return choose_plan(with_overrides(preset, **overrides), gpu=gpu, fused_status=fused)


def _shape(plan):
    return plan.form, plan.jit, plan.update, plan.cached, plan.per_call, plan.replicated


@pytest.mark.parametrize("overrides, expected", [
    # the mnist net (10 M weights): whole XLA step, fused update writing the first layer's ±1 weights
    (dict(), ("whole", True, "fused", "first", 8, False)),
    (dict(binarize="stoch"), ("whole", True, "fused", "none", 8, False)),
    (dict(binarize="none"), ("whole", True, "fused", "none", 8, False)),
    (dict(preset="mnist-small"), ("whole", True, "xla", "none", 8, False)),  # under AUTO_MIN_WEIGHTS
    (dict(preset="mnist-small", jit=False), ("whole", False, "fused", "first", 8, False)),
    (dict(preset="mnist-small", update_kernel="fused"), ("whole", True, "fused", "first", 8, False)),
    (dict(update_kernel="xla", steps_per_call=3), ("whole", True, "xla", "none", 3, False)),
    (dict(precision="mixed_bfloat16"), ("split", True, "fused", "all", 8, False)),
    (dict(precision="mixed_float16"), ("split", True, "xla", "none", 8, False)),  # loss scaling
    (dict(optimizer="sgd"), ("whole", True, "xla", "none", 8, False)),
    (dict(strategy="mirrored"), ("split", True, "fused", "none", 1, True)),
    (dict(preset="cifar10", jit=False), ("whole", False, "fused", "first", 8, False)),
])
def test_each_configuration_gets_its_plan(overrides, expected):
    plan = _plan(**overrides)
    assert _shape(plan) == expected
    assert len(plan.why) == 3 + (plan.cached != "none")  # form, update, caches, calls: each says why


def test_a_bfloat16_conv_net_runs_whole_without_bfloat16_instructions():
    """Where TensorFlow's bfloat16 conv gradients are slow (bctrain.step.plan.CONV_BF16_WHY)."""
    slow = dict(preset="cifar10", precision="mixed_bfloat16")
    plan = choose_plan(with_overrides(**slow), gpu=False, fused_status=LOADS, bf16_kernels=False)
    assert _shape(plan) == ("whole", True, "fused", "none", 8, False) and "bfloat16 instructions" in plan.why[0]
    assert _plan(**slow).form == "split"  # the CPU has them (the default of choose_plan)
    assert choose_plan(with_overrides(**slow), gpu=True, bf16_kernels=False).form == "split"
    for other in (dict(preset="mnist", precision="mixed_bfloat16"), dict(slow, jit=False),
                  dict(slow, precision="mixed_float16")):
        assert choose_plan(with_overrides(**other), gpu=False, fused_status=LOADS, bf16_kernels=False).form == "split"


def test_the_small_net_limit_is_the_measured_one():
    assert _plan(hidden=(1000, 1000)).update == "xla"    # 1,794,000 weights
    assert _plan(hidden=(1100, 1100)).update == "fused"  # 2,083,400
    assert AUTO_MIN_WEIGHTS == 2_000_000


def test_without_the_op_or_with_a_gpu_auto_takes_the_xla_update_and_fused_is_refused():
    missing = lambda: "fused update unavailable (no compiler)"  # noqa: E731
    plan = _plan(fused=missing)
    assert plan.update == "xla" and plan.cached == "none"
    assert any("no compiler" in line for line in plan.why)
    with pytest.raises(PlanError, match="no compiler"):
        _plan(fused=missing, update_kernel="fused")
    assert _plan(gpu=True).update == "xla"
    with pytest.raises(PlanError, match="GPU"):
        _plan(gpu=True, update_kernel="fused")


def test_the_op_is_asked_for_only_where_it_would_be_used():
    asked = []
    _plan(update_kernel="xla", fused=lambda: asked.append(1) or "")
    _plan(preset="mnist-small", fused=lambda: asked.append(1) or "")
    assert asked == []


@pytest.mark.parametrize("fields", [
    dict(form="diagonal"), dict(update="sgd"), dict(cached="first", update="xla"),
    dict(form="split", cached="first", update="fused"), dict(form="whole", cached="all", update="fused"),
    dict(per_call=0), dict(replicated=True), dict(replicated=True, form="split", per_call=2)])
def test_inconsistent_plans_are_refused(fields):
    with pytest.raises(ValueError):
        StepPlan(**fields)


def test_the_reference_plan_is_the_paper_step_alone():
    assert _shape(REFERENCE) == ("whole", True, "xla", "none", 1, False)
    assert REFERENCE.arithmetic == ("xla", "fma")
    assert dataclasses.replace(REFERENCE, jit=False).arithmetic == ("kernels", "ops")


def _canonical(plan) -> StepPlan:
    return {("xla", "fma"): REFERENCE, ("kernels", "ops"): dataclasses.replace(REFERENCE, jit=False),
            ("kernels", "fma"): StepPlan("split", True, "xla")}[plan.arithmetic]


def _trained(cfg, plan):
    """Weights and optimizer state after STEPS steps of `plan` (the last call of one step)."""
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(STEPS * cfg.batch_size, *cfg.input_shape)).astype(np.float32)
    y_pm1 = pipeline.to_pm1(rng.integers(0, 10, len(x)))
    net = Net(cfg, seed=4)
    opt = Optimizer("adam", net.binary_params(), net.other_params(), lr=0.01)
    loop = make_train_loop(make_train_step(net, opt, plan), plan.per_call)
    batches = iter(pipeline.train_batches(x, y_pm1, cfg.batch_size, seed=1, epoch=1))
    losses = [loop(batches, n)[0] for n in step_groups(STEPS, plan.per_call)]
    losses = np.concatenate([np.atleast_1d(np.asarray(loss)) for loss in losses])
    return {**net.weights_dict(), **{f"opt/{i}": v.numpy() for i, v in enumerate(opt.variables)}}, losses


def _assert_same(got, want, what):
    (got_w, got_loss), (want_w, want_loss) = got, want
    np.testing.assert_array_equal(got_loss, want_loss, err_msg=what)
    assert got_w.keys() == want_w.keys()
    for key in want_w:
        np.testing.assert_array_equal(got_w[key], want_w[key], err_msg=f"{what}: {key}")


BNN = dict(binarize_act="sign", dropout_in=0.2, dropout_hidden=0.5)  # BinaryNet's MLP: binary activations, dropout


def _config(binarize, precision, jit, conv=False, **bnn):
    # stoch draws need XLA for threefry (bctrain.paper.models): stoch plans run compiled
    if conv:
        return with_overrides("cifar10", input_shape=(8, 8, 3), conv=(4, 6), pool=(0, 1), hidden=(16,), batch_size=10,
                              binarize=binarize, precision=precision, jit=jit, h="glorot", **bnn)
    return with_overrides("mnist", hidden=(48, 32), batch_size=20, binarize=binarize, precision=precision, jit=jit,
                          **bnn)


needs_op = pytest.mark.skipif(fused_update.load() is None, reason=fused_update.reason() or "no fused op")


@needs_op
@pytest.mark.parametrize("binarize, precision, jit, conv, bnn", [
    ("det", "float32", True, False, {}), ("det", "mixed_bfloat16", True, False, {}),
    pytest.param("det", "float32", True, False, BNN, marks=pytest.mark.slow),
    pytest.param("det", "mixed_bfloat16", True, False, BNN, marks=pytest.mark.slow),
    pytest.param("det", "mixed_bfloat16", True, True, {}, marks=pytest.mark.slow),  # whole: no bfloat16 instructions
    pytest.param("det", "float32", True, True, {}, marks=pytest.mark.slow),
    pytest.param("stoch", "float32", True, False, {}, marks=pytest.mark.slow),
    pytest.param("stoch", "float32", True, False, BNN, marks=pytest.mark.slow),
    pytest.param("det", "float32", False, False, {}, marks=pytest.mark.slow),
    pytest.param("det", "float32", False, False, BNN, marks=pytest.mark.slow)])
def test_the_chosen_plan_gives_the_results_of_its_arithmetic_s_canonical_plan(binarize, precision, jit, conv, bnn):
    cfg = _config(binarize, precision, jit, conv, **bnn)
    plan = choose_plan(dataclasses.replace(cfg, steps_per_call=4, update_kernel="fused"), gpu=False,
                       bf16_kernels=not conv)
    assert plan.per_call == 4 and plan.update == "fused"
    canonical = _canonical(plan)
    assert plan != canonical
    _assert_same(_trained(cfg, plan), _trained(cfg, canonical), f"{plan.describe()} vs {canonical.describe()}")


def test_a_perturbed_step_would_be_caught():
    """Control: the comparison above sees a plan whose first batch differs in one value by 1e-4."""
    cfg = _config("det", "float32", True)
    want = _trained(cfg, REFERENCE)
    real = pipeline.train_batches

    def perturbed(x, *args, **kw):
        x = x.copy()
        x[0, 0] += 1e-4
        return real(x, *args, **kw)

    pipeline.train_batches = perturbed
    try:
        got = _trained(cfg, REFERENCE)
    finally:
        pipeline.train_batches = real
    with pytest.raises(AssertionError):
        _assert_same(got, want, "perturbed")


def _every_plan(binarize, precision, jit):
    for form, update, cached, per_call in itertools.product(("whole", "split"), ("xla", "fused"),
                                                           ("none", "first", "all"), (1, 4)):
        try:
            plan = StepPlan(form, jit, update, cached, per_call)
        except ValueError:
            continue
        # a whole 16-bit step caches nothing (bctrain.step.plan: XLA's excess precision)
        if (cached == "none" or binarize == "det") and (form == "split" or precision == "float32" or cached == "none"):
            yield plan


@needs_op
@pytest.mark.slow
@pytest.mark.parametrize("binarize, precision, jit, bnn", [
    ("det", "float32", True, {}), ("det", "float32", False, {}), ("stoch", "float32", True, {}),
    ("det", "mixed_bfloat16", True, {}), ("det", "mixed_bfloat16", False, {}),
    ("det", "float32", True, BNN), ("det", "float32", False, BNN), ("stoch", "float32", True, BNN),
    ("det", "mixed_bfloat16", True, BNN)])
def test_every_plan_gives_the_results_of_its_arithmetic_s_canonical_plan(binarize, precision, jit, bnn):
    cfg = _config(binarize, precision, jit, **bnn)
    results = {}
    for plan in _every_plan(binarize, precision, jit):
        canonical = _canonical(plan)
        if canonical not in results:
            results[canonical] = _trained(cfg, canonical)
        _assert_same(_trained(cfg, plan), results[canonical], f"{plan.describe()} vs {canonical.describe()}")
