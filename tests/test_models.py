"""Architecture from a Config: parameter counts and per-layer scales of PAPER.md §3 and §6."""
import dataclasses
import math

import numpy as np
import pytest
import tensorflow as tf

from bctrain.config import PRESETS, with_overrides
from bctrain.paper.arch import count_binary_weights, layer_specs
from bctrain.paper.models import Net

CIFAR10, SVHN = PRESETS["cifar10"], PRESETS["svhn"]


@pytest.mark.parametrize("cfg, count", [
    (PRESETS["mnist"], 10_014_720), (CIFAR10, 14_022_016), (SVHN, 6_397_632),
    # BinaryNet: 784·4096 + 2·4096² + 4096·10; its CNNs are the BinaryConnect presets'
    (PRESETS["mnist-bnn"], 36_806_656), (PRESETS["cifar10-bnn"], 14_022_016), (PRESETS["svhn-bnn"], 6_397_632)])
def test_binary_weight_counts(cfg, count):
    assert count_binary_weights(layer_specs(cfg)) == count


def test_mnist_blocks_scales_and_output():
    specs = layer_specs(PRESETS["mnist"])
    assert [(s.n_in, s.n_out) for s in specs] == [(784, 2048), (2048, 2048), (2048, 2048), (2048, 10)]
    assert [s.relu for s in specs] == [True, True, True, False]  # the output is BN only (L2-SVM)
    assert [round(s.lr_scale, 2) for s in specs] == [43.45, 52.26, 52.26, 37.04]
    assert all(s.h == 1.0 for s in specs)


def test_binary_activations_are_the_hidden_blocks_and_the_output_stays_real():
    specs = layer_specs(PRESETS["cifar10-bnn"])
    assert [s.act for s in specs] == ["sign"] * 8 + ["none"]
    assert [s.act for s in layer_specs(PRESETS["mnist"])] == ["relu"] * 3 + ["none"]
    net = Net(with_overrides("mnist-bnn", hidden=(16, 8)), seed=1)
    taps = []
    y = net(tf.random.normal((5, 784)), training=False, taps=taps)
    assert y.shape == (5, 10) and len(np.unique(y.numpy())) > 2  # real scores
    assert [t.shape for t in taps] == [(5, 16), (5, 8)] and all(set(np.unique(t.numpy())) <= {-1, 1} for t in taps)
    state = net.dropout_gen.state.numpy().copy()
    net(tf.random.normal((5, 784)), training=False)  # no dropout, no draw at inference
    np.testing.assert_array_equal(net.dropout_gen.state.numpy(), state)
    assert not hasattr(Net(with_overrides("mnist", hidden=(16,)), seed=1), "dropout_gen")  # checkpoints unchanged


def test_mnist_paper_uses_glorot_h_without_scaling():
    specs = layer_specs(PRESETS["mnist-paper"])
    assert all(s.lr_scale == 1.0 for s in specs)
    assert specs[0].h == pytest.approx(math.sqrt(1.5 / (784 + 1024)))


def test_cnn_blocks_flatten_to_the_first_dense_layer():
    specs = layer_specs(CIFAR10)
    assert [s.kind for s in specs] == ["conv"] * 6 + ["dense"] * 3
    assert specs[6].n_in == 4 * 4 * 512 == 8192
    assert round(specs[0].lr_scale, 2) == 28.04 and round(specs[6].lr_scale, 2) == 78.38


def test_parameter_groups_and_initialisation():
    det = Net(with_overrides("mnist", hidden=(64,)), seed=3)
    assert [p.w for p in det.binary_params()] == [det.linear[0].w, det.linear[1].w]
    assert [p.layer for p in det.binary_params()] == [0, 1]
    assert all(np.abs(lin.w.numpy()).max() <= 1.0 for lin in det.linear)
    assert np.abs(det.linear[0].w.numpy()).max() > 0.99  # U(-1, 1), not a narrower range
    none = Net(with_overrides("mnist", hidden=(64,), binarize="none"), seed=3)
    assert none.binary_params() == [] and none.linear[0].w in none.other_params()
    limit = math.sqrt(6 / (784 + 64))  # Glorot uniform, Lasagne's default for non-binary layers
    assert limit * 0.98 < np.abs(none.linear[0].w.numpy()).max() <= limit


def test_forward_shape_and_weights_round_trip():
    cfg = with_overrides("mnist", hidden=(32,))
    a, b = Net(cfg, seed=1), Net(cfg, seed=2)
    b.load_weights_dict(a.weights_dict())
    x = tf.random.normal((5, 784))
    np.testing.assert_array_equal(a(x, training=False).numpy(), b(x, training=False).numpy())
    assert a(x, training=True).shape == (5, 10)


@pytest.mark.slow
@pytest.mark.parametrize("preset", ["cifar10", "svhn"])
def test_a_few_steps_of_each_cnn_preset_lower_the_loss(preset):
    """The full-size network of the preset, its optimizer settings, 5 steps on one random batch
    of 10 images (the preset's batch is 50; 10 keeps the test to a few seconds on a CPU)."""
    from bctrain.data.pipeline import to_pm1
    from bctrain.paper.optim import Optimizer
    from bctrain.step.build import make_train_step
    from bctrain.step.plan import choose_plan
    cfg = dataclasses.replace(PRESETS[preset], jit=False)
    tf.random.set_seed(0)
    net = Net(cfg, seed=1)
    opt = Optimizer(cfg.optimizer, net.binary_params(), net.other_params(), lr=cfg.lr_start,
                    beta1=cfg.beta1, beta2=cfg.beta2, eps=cfg.adam_eps)
    step = make_train_step(net, opt, choose_plan(dataclasses.replace(cfg, update_kernel="xla"), gpu=False))
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((10, 32, 32, 3)).astype(np.float32))
    y = tf.constant(to_pm1(rng.integers(0, 10, 10)))
    losses = [float(step(x, y)[0]) for _ in range(5)]
    assert losses[-1] < 0.8 * losses[0], losses
    assert all(np.abs(p.w.numpy()).max() <= 1.0 for p in net.binary_params())
