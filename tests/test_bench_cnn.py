"""benchmarks.bench_cnn and its roofline (benchmarks.roofline_conv): FLOP counts by hand, the products
against NumPy, the floor, and one tiny run of the whole benchmark."""
import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import bench_cnn, roofline_conv
from bctrain.config import PRESETS, with_overrides
from bctrain.paper.arch import layer_specs


def test_forward_flops_are_the_hand_counted_ones():
    convs = [(32, 3, 128), (32, 128, 128), (16, 128, 256), (16, 256, 256), (8, 256, 512), (8, 512, 512)]
    conv = sum(2 * h * h * 9 * a * b for h, a, b in convs)
    dense = 2 * (8192 * 1024 + 1024 * 1024 + 1024 * 10)
    assert bench_cnn.forward_flops(PRESETS["cifar10"]) == conv + dense == 1_233_932_288
    assert bench_cnn.forward_flops(PRESETS["mnist"]) == 2 * 10_014_720
    flops = roofline_conv.kind_flops(layer_specs(PRESETS["cifar10"]), (32, 32, 3), 50)
    first = 2 * 50 * 32 * 32 * 9 * 3 * 128  # the first layer's input needs no gradient
    assert flops == {"forward": 50 * conv, "input gradient": 50 * conv - first, "kernel gradient": 50 * conv,
                     "dense": 3 * 50 * dense}


def _conv_same(x, w):
    """NumPy oracle: 3x3 'SAME' convolution (cross-correlation), NHWC x, HWIO w."""
    n, h, wd, _ = x.shape
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return sum(pad[:, i:i + h, j:j + wd, :] @ w[i, j] for i in range(3) for j in range(3))


def test_the_products_are_the_convolutions_and_their_gradients():
    cfg = with_overrides("cifar10", input_shape=(6, 6, 2), conv=(3, 4), pool=(1, 0), hidden=(5,), n_classes=3)
    specs = layer_specs(cfg)
    assert roofline_conv.conv_shapes(specs, cfg.input_shape) == [(6, 6, 2, 3), (3, 3, 3, 4)]
    convs, dense = roofline_conv._operands(specs, cfg.input_shape, 2, tf.float64)
    got = {kind: [t.numpy() for t in fn(ops)] for kind, (fn, which) in roofline_conv.FUNCTIONS.items()
           for ops in [(convs, dense)[which]]}
    convs = [[t.numpy() for t in c] for c in convs]
    for (x, dy, w), fwd, kernel in zip(convs, got["forward"], got["kernel gradient"]):
        np.testing.assert_allclose(fwd, _conv_same(x, w), rtol=1e-12)
        # d <dy, conv(x, w)> / dw and / dx, through the oracle's linearity
        np.testing.assert_allclose(kernel, [[np.einsum("nhwc,nhwd->cd", np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))[
            :, i:i + x.shape[1], j:j + x.shape[2], :], dy) for j in range(3)] for i in range(3)], rtol=1e-12)
    x, dy, w = convs[1]
    flipped = w[::-1, ::-1].transpose(0, 1, 3, 2)  # the input gradient is a convolution of dy by the flipped kernel
    np.testing.assert_allclose(got["input gradient"][0], _conv_same(dy, flipped), rtol=1e-12)
    assert len(got["input gradient"]) == 1 and len(got["dense"]) == 3 * 2


def test_the_floor_takes_the_faster_back_end_and_adds_the_update_traffic():
    kinds = dict.fromkeys(roofline_conv.KINDS, 0.25)
    roof = {"float32_kernels": kinds, "float32_xla": {**kinds, "dense": 0.5},
            "mixed_bfloat16_kernels": {"forward": 0.01},  # gradients not timed: not a candidate
            "mixed_bfloat16_xla": dict.fromkeys(roofline_conv.KINDS, 0.5), "stream_gbps": 28.0}
    got = bench_cnn.floors(roof, 1_000_000_000)  # 28 GB of traffic: 1 s
    assert got == {"float32": (2.0, "kernels"), "mixed_bfloat16": (3.0, "xla")}


@pytest.mark.slow
def test_a_tiny_run_writes_every_row(tmp_path, monkeypatch, capsys):
    tiny = {"svhn": dataclasses.replace(PRESETS["svhn"], conv=(4, 4), pool=(0, 1), hidden=(8,), eval_batch_size=10)}
    monkeypatch.setattr(bench_cnn, "PRESETS", tiny)
    out = tmp_path / "r.json"
    bench_cnn.main(["--presets", "svhn", "--steps", "1", "--warmup", "0", "--rounds", "1", "--variants", "f32-split",
                    "--out", str(out)])
    result = json.loads(out.read_text())
    preset = result["presets"]["svhn"]
    assert [s["name"] for s in preset["steps"]] == ["float32 det", "float32 stoch", "mixed_bfloat16 det",
                                                    "mixed_bfloat16 stoch", "float32 det (--variants f32-split)"]
    assert all(s["seconds_per_step"] > 0 and s["of_floor"] > 0 for s in preset["steps"])
    assert [(e["precision"], e["binarize"]) for e in preset["per_epoch"]] == [
        ("float32", "det"), ("float32", "stoch"), ("mixed_bfloat16", "det"), ("mixed_bfloat16", "stoch")]
    assert preset["steps_per_epoch"] == 11_967 and set(result["cpu_flags"]) >= {"avx512_bf16", "amx_bf16"}
    text = capsys.readouterr().out
    assert "| conv gradient wrt kernel |" in text and "On paper, an estimate" in text


def test_unknown_variants_are_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        bench_cnn.main(["--variants", "f32-split,fast"])
    assert exc.value.code == 2 and "--variants: unknown fast" in capsys.readouterr().err


@pytest.mark.slow
def test_preprocessing_benchmark_runs_small(tmp_path, capsys):
    from benchmarks import bench_preprocess
    out = tmp_path / "p.json"
    bench_preprocess.main(["--fit-images", "30", "--apply-images", "20", "--lcn-images", "10", "--out", str(out)])
    result = json.loads(out.read_text())
    assert result["gcn_zca_fit_images"] == 30 and result["gcn_lcn_svhn_seconds_extrapolated"] > 0
    assert "| `gcn_zca` fit" in capsys.readouterr().out
