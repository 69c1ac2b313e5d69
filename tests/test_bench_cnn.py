"""benchmarks.bench_cnn: FLOP counts from the architecture, and one tiny run of the whole benchmark."""
import dataclasses
import json

import pytest

from benchmarks import bench_cnn
from bctrain.config import PRESETS


def test_forward_flops_are_the_hand_counted_ones():
    convs = [(32, 3, 128), (32, 128, 128), (16, 128, 256), (16, 256, 256), (8, 256, 512), (8, 512, 512)]
    conv = sum(2 * h * h * 9 * a * b for h, a, b in convs)
    dense = 2 * (8192 * 1024 + 1024 * 1024 + 1024 * 10)
    assert bench_cnn.forward_flops(PRESETS["cifar10"]) == conv + dense == 1_233_932_288
    assert bench_cnn.forward_flops(PRESETS["mnist"]) == 2 * 10_014_720
    assert bench_cnn.heaviest_conv(PRESETS["svhn"]) == (32, 64, 64)


@pytest.mark.slow
def test_a_tiny_run_writes_every_row(tmp_path, monkeypatch, capsys):
    tiny = {n: dataclasses.replace(PRESETS[n], conv=(4, 4), pool=(0, 1), hidden=(8,), eval_batch_size=10)
            for n in ("cifar10", "svhn")}
    monkeypatch.setattr(bench_cnn, "PRESETS", tiny)
    out = tmp_path / "r.json"
    bench_cnn.main(["--steps", "1", "--warmup", "1", "--eval-batches", "1", "--out", str(out)])
    result = json.loads(out.read_text())
    assert [(r["preset"], r["xla"]) for r in result["rows"]] == [("cifar10", True), ("cifar10", False),
                                                                  ("svhn", True), ("svhn", False)]
    for r in result["rows"]:
        assert r["seconds_per_epoch"] > r["seconds_per_step"] * r["steps_per_epoch"] > 0
        assert r["steps_per_epoch"] == {"cifar10": 900, "svhn": 11_967}[r["preset"]]
    assert len(result["on_paper"]) == 4 and "On paper" in capsys.readouterr().out


@pytest.mark.slow
def test_preprocessing_benchmark_runs_small(tmp_path, capsys):
    from benchmarks import bench_preprocess
    out = tmp_path / "p.json"
    bench_preprocess.main(["--fit-images", "30", "--apply-images", "20", "--lcn-images", "10", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["gcn_zca_fit_images"] == 30 and result["gcn_lcn_svhn_seconds_extrapolated"] > 0
    assert "| `gcn_zca` fit" in capsys.readouterr().out
