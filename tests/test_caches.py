"""bctrain.step.caches: the ±1 caches are derived state, re-seeded by every checkpoint restore, so a
step made before a restore continues exactly as the uninterrupted run."""
import numpy as np
import pytest
import tensorflow as tf

from bctrain.config import with_overrides
from bctrain.data import pipeline
from bctrain.paper.models import Net
from bctrain.paper.optim import Optimizer
from bctrain.run import checkpoints
from bctrain.step import fused_update
from bctrain.step.build import make_train_step
from bctrain.step.caches import ProductWeightCache
from bctrain.step.plan import StepPlan

pytestmark = pytest.mark.skipif(fused_update.load() is None, reason=fused_update.reason() or "no fused op")
CFG = with_overrides("mnist", hidden=(48, 32), batch_size=20)


def _setup(plan):
    net = Net(CFG, seed=4)
    opt = Optimizer("adam", net.binary_params(), net.other_params(), lr=0.01)
    return net, opt, make_train_step(net, opt, plan), tf.train.Checkpoint(net=net, opt=opt)


def _batches(n):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n * CFG.batch_size, 784)).astype(np.float32)
    return list(pipeline.train_batches(x, pipeline.to_pm1(rng.integers(0, 10, len(x))), CFG.batch_size, 1, 1))


@pytest.mark.parametrize("plan", [pytest.param(StepPlan("whole", True, "fused", "first"), marks=pytest.mark.slow),
                                  StepPlan("split", True, "fused", "all")])
def test_a_step_made_before_the_restore_continues_as_the_uninterrupted_run(tmp_path, plan, monkeypatch):
    batches = _batches(6)
    net, _, step, ckpt = _setup(plan)
    for b in batches[:3]:
        step(*b)
    checkpoints.save(ckpt, str(tmp_path), 3)
    for b in batches[3:]:
        step(*b)
    want = net.weights_dict()

    def resumed():
        net2, _, step2, ckpt2 = _setup(plan)  # the step (and its caches) first, then the restore
        assert checkpoints.restore_newest(ckpt2, str(tmp_path)) == 3
        for b in batches[3:]:
            step2(*b)
        return net2.weights_dict()

    got = resumed()
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)
    monkeypatch.setattr(Optimizer, "after_restore", lambda self: None)  # control: caches left stale
    stale = resumed()
    assert max(np.max(np.abs(stale[k] - want[k])) for k in want) > 1e-3


def test_only_det_layers_have_a_cache_and_it_holds_sign_w_times_h():
    net = Net(with_overrides("mnist", hidden=(8,), h="glorot"), seed=1)
    opt = Optimizer("adam", net.binary_params(), net.other_params(), lr=0.01)
    cache = ProductWeightCache(net, opt, [0, 1])
    assert opt.derived == [cache] and cache.get(2) is None
    for i in (0, 1):
        w, h = net.linear[i].w.numpy(), net.specs[i].h
        np.testing.assert_array_equal(cache.get(i).numpy(), np.where(w >= 0, h, -h).astype(np.float32))
        assert cache.value(i) == pytest.approx(h)
    stoch = Net(with_overrides("mnist", hidden=(8,), binarize="stoch"), seed=1)
    with pytest.raises(ValueError, match="only det-binarized layers"):
        ProductWeightCache(stoch, Optimizer("adam", stoch.binary_params(), [], lr=0.01), [0])
