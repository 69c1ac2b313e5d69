"""bctrain.run.finite: the once-per-epoch check names the first non-finite step, or the variables."""
import math

import pytest
import tensorflow as tf

from bctrain.run.finite import NonFiniteError, all_finite, check_epoch, first_nonfinite_step


def losses(*values):
    return [tf.constant(v, tf.float32) for v in values]


def test_finite_epoch_passes():
    w = tf.Variable([1.0, -1.0], name="w")
    assert all_finite(losses(0.5, 0.4), [w, tf.Variable(3, name="step")])
    check_epoch(1, losses(0.5, 0.4), [w], kept="")


@pytest.mark.parametrize("values, step", [((0.5, math.nan, 0.3), 2), ((math.inf,), 1), ((0.1, 0.2), None)])
def test_first_nonfinite_step_is_one_based(values, step):
    assert first_nonfinite_step(losses(*values)) == step


def test_a_nan_loss_names_epoch_and_step():
    w = tf.Variable([math.nan], name="w")
    with pytest.raises(NonFiniteError, match=r"training loss nan at epoch 7, step 3 of 4; KEPT;"):
        check_epoch(7, losses(0.5, 0.4, math.nan, math.nan), [w], kept="KEPT")


def test_non_finite_variables_after_a_finite_loss_are_named():
    good, bad = tf.Variable([1.0], name="good"), tf.Variable([1.0, -math.inf], name="bn0/gamma")
    with pytest.raises(NonFiniteError, match=r"non-finite bn0/gamma:0 after epoch 2, step 2 of 2"):
        check_epoch(2, losses(0.5, 0.4), [good, bad], kept="")


def test_calls_of_several_steps_count_steps_not_calls():
    """One 1-d tensor per call of several steps (bctrain.step.loop.make_train_loop), scalars for single ones."""
    mixed = [tf.constant([0.5, 0.4, 0.3]), tf.constant([0.2, math.nan]), tf.constant(0.1)]
    assert first_nonfinite_step(mixed) == 5
    with pytest.raises(NonFiniteError, match=r"training loss nan at epoch 3, step 5 of 6;"):
        check_epoch(3, mixed, [tf.Variable([1.0])], kept="")
    assert all_finite([tf.constant([0.5, 0.4]), tf.constant(0.1)], [tf.Variable([1.0])])
