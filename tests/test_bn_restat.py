"""benchmarks.bn_restat: the re-estimated statistics are the batch statistics of the ±1 network."""
import numpy as np

from benchmarks import bn_restat
from bctrain.config import with_overrides
from bctrain.paper.arch import layer_specs


def _net(rng):
    specs = layer_specs(with_overrides("mnist", input_shape=(6,), hidden=(5,), n_classes=3))
    z = {}
    for i, s in enumerate(specs):
        z.update({f"{i}/w": rng.uniform(-1, 1, (s.n_in, s.n_out)).astype(np.float32),
                  f"{i}/b": np.zeros(s.n_out, np.float32), f"{i}/gamma": rng.uniform(0.5, 2, s.n_out),
                  f"{i}/beta": rng.normal(size=s.n_out), f"{i}/mean": rng.normal(size=s.n_out),
                  f"{i}/std": rng.uniform(0.5, 2, s.n_out)})
    return specs, z


def test_recorded_statistics_are_those_of_the_sign_network_layer_by_layer():
    rng = np.random.default_rng(0)
    specs, z = _net(rng)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    record = []
    bn_restat.forward(specs, z, x, True, 1e-4, record=record)
    h0 = x @ np.where(z["0/w"] >= 0, 1.0, -1.0)  # the oracle: NumPy, sign(0) = +1
    np.testing.assert_allclose(record[0][0], h0.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(record[0][1], h0.std(0), rtol=1e-5)
    a0 = np.maximum((h0 - h0.mean(0)) * (z["0/gamma"] / (h0.std(0) + 1e-4)) + z["0/beta"], 0)
    h1 = a0 @ np.where(z["1/w"] >= 0, 1.0, -1.0)
    np.testing.assert_allclose(record[1][0], h1.mean(0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(record[1][1], h1.std(0), rtol=1e-4)


def test_the_trained_statistics_are_used_unless_others_are_given():
    rng = np.random.default_rng(1)
    specs, z = _net(rng)
    x = rng.normal(size=(8, 6)).astype(np.float32)
    h0 = x @ z["0/w"]
    a0 = np.maximum((h0 - z["0/mean"]) * (z["0/gamma"] / (z["0/std"] + 1e-4)) + z["0/beta"], 0)
    want = (a0 @ z["1/w"] - z["1/mean"]) * (z["1/gamma"] / (z["1/std"] + 1e-4)) + z["1/beta"]
    np.testing.assert_allclose(bn_restat.forward(specs, z, x, False, 1e-4), want, rtol=1e-4, atol=1e-5)
    stats = [(np.zeros(5), np.ones(5)), (np.zeros(3), np.ones(3))]
    assert not np.allclose(bn_restat.forward(specs, z, x, False, 1e-4, stats), want)
