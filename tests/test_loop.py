"""bctrain.step.loop: several steps per call train exactly as one step per call (the steps of a
plan with 4 per call against its canonical plan: tests/test_plan.py)."""
import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from bctrain.config import ConfigError, with_overrides
from bctrain.step.loop import make_train_loop, step_groups
from bctrain.train import train


@pytest.mark.parametrize("n, per_call, groups", [
    (11, 4, [4, 4, 2, 1]), (9, 8, [8, 1]), (10, 3, [3, 3, 3, 1]), (2, 8, [1, 1]), (1, 8, [1]), (5, 1, [1] * 5)])
def test_step_groups_cover_the_epoch_and_end_with_a_single_step(n, per_call, groups):
    assert step_groups(n, per_call) == groups


@pytest.mark.parametrize("n, per_call", [(0, 4), (4, 0)])
def test_step_groups_refuse_empty_epochs_and_calls(n, per_call):
    with pytest.raises(ValueError, match="at least 1"):
        step_groups(n, per_call)


@pytest.mark.slow
def test_training_records_the_same_epochs_whatever_the_steps_per_call(tmp_path):
    """30 steps per epoch (6,000 samples, batch 200): calls of 7 against calls of 1."""
    base = with_overrides("mnist", hidden=(32,), batch_size=200, lr_start=3e-3, lr_end=1e-3, epochs=2)
    runs = {}
    for k in (1, 7):
        run = str(tmp_path / f"k{k}")
        train(dataclasses.replace(base, steps_per_call=k), run, out=open(os.devnull, "w"))
        runs[k] = [json.loads(line) for line in open(os.path.join(run, "history.jsonl"))]
    for a, b in zip(runs[1], runs[7]):
        assert (a["steps_per_call"], b["steps_per_call"]) == (1, 7)
        for key in ("train_loss", "train_error", "val_error_binary", "test_error_binary", "flip_ratio",
                    "flip_ratio_epoch", "at_bound"):
            assert a[key] == b[key], key
    best = [np.load(tmp_path / f"k{k}" / "best.npz") for k in (1, 7)]
    for key in best[0].files:
        np.testing.assert_array_equal(best[0][key], best[1][key], err_msg=key)


@pytest.mark.parametrize("k", [0, 65])
def test_steps_per_call_must_be_1_to_64(k):
    with pytest.raises(ConfigError, match="steps_per_call"):
        with_overrides("mnist", steps_per_call=k)


def test_a_call_runs_1_to_per_call_steps_and_a_full_call_is_traced_once():
    calls = []

    def step(x, y):  # counts its Python calls: per_call while a full call is traced, 1 per eager step
        calls.append(1)
        return tf.reduce_sum(x), tf.constant(0)

    loop = make_train_loop(step, 3)
    data = tf.data.Dataset.from_tensor_slices((tf.range(8.0), tf.zeros(8)))
    batches = iter(data)
    np.testing.assert_array_equal(loop(batches, 3)[0].numpy(), [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(loop(batches, tf.constant(2))[0].numpy(), [3.0, 4.0])
    np.testing.assert_array_equal(loop(batches, 3)[0].numpy(), [5.0, 6.0, 7.0])
    np.testing.assert_array_equal(loop(iter(data), 3)[0].numpy(), [0.0, 1.0, 2.0])  # a new epoch's iterator
    assert len(calls) == 3 + 2  # one trace of the full call, and the two steps of the short call
    for n in (0, 4):
        with pytest.raises(ValueError, match="expected 1 to 3"):
            loop(batches, n)

