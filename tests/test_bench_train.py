"""benchmarks.bench_train and its roofline: the products against NumPy, a smoke run, the Keras worker."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from bctrain.paper.arch import layer_specs
from bctrain.config import with_overrides
from benchmarks import bench_train, roofline


def test_step_products_are_the_eleven_products_of_an_mnist_step():
    specs = layer_specs(with_overrides("mnist", hidden=(6, 5, 4)))
    a, d, w = roofline.product_operands(specs, batch=3, dtype=tf.float64)
    got = [p.numpy() for p in roofline.step_products(a, d, w)]
    a, d, w = ([t.numpy() for t in ts] for ts in (a, d, w))
    expected = ([ai @ wi for ai, wi in zip(a, w)] + [ai.T @ di for ai, di in zip(a, d)]
                + [di @ wi.T for di, wi in zip(d[1:], w[1:])])
    assert len(got) == 11
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-12)
    flops = sum(2 * g.size * k for g, k in zip(got, [s.n_in for s in specs] + [3] * 4 + [s.n_out for s in specs[1:]]))
    assert flops == roofline.step_flops(specs, batch=3)


def test_floor_adds_the_least_update_traffic():
    assert roofline.floor_seconds(0.010, 10_000_000, 28.0) == 0.010 + 0.010


def test_fraction_of_the_floor_pairs_each_round_with_its_own_floor():
    # 100-sample steps at 200, 100, 400 samples/s (0.5, 1.0, 0.25 s) against floors of 0.4, 0.9, 0.2 s:
    # 80 %, 90 %, 80 %, median 80 %. The same floors in other rounds pair differently (180 %, 40 %,
    # 80 %: median 80 %; 40 %, 40 %, 360 %: median 40 %), where the ratio of the medians (0.4 s
    # against 0.5 s) would say 80 % whatever the pairing.
    assert bench_train.paired_fraction([200, 100, 400], [0.4, 0.9, 0.2], 100) == pytest.approx(0.8)
    assert bench_train.paired_fraction([200, 100, 400], [0.9, 0.4, 0.2], 100) == pytest.approx(0.8)
    assert bench_train.paired_fraction([200, 100, 400], [0.2, 0.4, 0.9], 100) == pytest.approx(0.4)
    with pytest.raises(ValueError):
        bench_train.paired_fraction([200], [0.4, 0.9], 100)


def test_round_floor_takes_the_faster_float32_products():
    roof = {"products_float32_xla_s": 0.020, "products_float32_onednn_s": 0.025,
            "products_bfloat16_onednn_s": 0.008, "stream_gbps": 28.0}
    floors = bench_train.round_floor_seconds(roof, 10_000_000)  # 280 MB at 28 GB/s: 10 ms
    assert floors == {"float32": pytest.approx(0.030), "mixed_bfloat16": pytest.approx(0.018)}


@pytest.mark.slow
def test_smoke_run_writes_every_bctrain_row_and_the_roofline(tmp_path, capsys):
    out = tmp_path / "bench.json"
    bench_train.main(["--steps", "2", "--warmup", "1", "--rounds", "1", "--hidden", "32", "--no-fit",
                      "--larq-python", str(tmp_path / "none"), "--out", str(out)])
    result = json.loads(out.read_text())
    assert len(result["samples_per_second"]) == 9 and all(v > 0 for v in result["samples_per_second"].values())
    assert set(result["floor_seconds"]) == {"float32", "mixed_bfloat16"}
    assert set(result["of_floor"]) == set(result["samples_per_second"]) and len(result["roofline_rounds"]) == 1
    assert all(v > 0 for v in result["roofline"].values())
    assert "larq" in " ".join(result["unavailable"])
    assert len(result["other_processes_cores"]) == 1 and isinstance(result["loaded"], bool)
    text = capsys.readouterr().out
    assert "| floor, float32 |" in text and "not measured" in text


@pytest.mark.slow
def test_keras_refuses_xla_under_op_determinism(tmp_path):
    """Why the old "Keras 3 fit, XLA" row was not XLA: Keras turns jit_compile off under determinism."""
    inputs = tmp_path / "in.npz"
    x, y_pm1 = bench_train.synthetic(20, 2)
    np.savez(inputs, x=x, y_pm1=y_pm1, hidden=np.array([8]), batch=20, lr=1e-3, bn_alpha=0.15, bn_eps=1e-4)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.fit_worker", str(inputs), "--kind", "keras",
                           "--jit", "true", "--determinism", "on", "--steps", "2", "--warmup", "1"],
                          input="run\n", capture_output=True, text=True, timeout=120)
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines[0] == "ready jit_compile=False", proc.stderr[-500:]
    assert float(lines[1]) > 0


def test_an_unavailable_worker_says_why():
    worker = bench_train.FitWorker("/nonexistent/python", "in.npz", 1, 1, "--kind", "larq")
    assert worker.run() is None and "/nonexistent/python" in worker.error
