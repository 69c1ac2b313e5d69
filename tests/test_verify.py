"""bcexport.verify: the parity gate passes on a faithful export and fails on a damaged one (§9)."""
import dataclasses
import io
import json
import os
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from bctrain.data.preprocess import KINDS
from bcexport import ExportError, reference
from bccommon import digests
from bcexport.pack import load_deployment
from bcexport.onnx.packed import BITS_SUFFIX, find_binary_initializers
from bcexport.verify import compare, load_test_data, verify_run
from export_fixtures import cnn_config, mlp_config, synthetic_loader, synthetic_test_data


def _copy(src, tmp_path):
    return shutil.copytree(src, tmp_path / "copy")


def _verify(run_dir, cfg):
    return verify_run(run_dir, load_test=synthetic_loader(cfg), out=io.StringIO())


@pytest.mark.parametrize("which", ["mlp", "cnn"])
def test_faithful_export_passes(which, exported_mlp_dir, exported_cnn_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir if which == "mlp" else exported_cnn_dir, tmp_path)
    cfg = mlp_config() if which == "mlp" else cnn_config()
    report = _verify(run_dir, cfg)
    assert report["passed"], report
    expected = {"tf_net", "onnx", "onnx_packed"} | ({"onnx_raw"} if which == "mlp" else set())
    assert set(report["backends"]) == expected
    assert report["sizes"]["binary_weight_bytes_ratio"] <= 1 / 30
    with open(os.path.join(run_dir, "verify.json")) as fh:
        assert json.load(fh) == report
    accuracies = {b["accuracy"] for b in report["backends"].values()}
    assert accuracies == {report["reference"]["accuracy"]}


def test_compare_counts_ties_separately():
    ref = np.array([[1.0, 2.0, 0.0], [3.0, 3.0 + 1e-9, 0.0], [0.0, 5.0, 1.0]])
    tol = np.full(3, 1e-6)
    labels = np.array([1, 0, 1])
    tied = ref.copy()
    tied[1, 0] += 2e-9  # swaps a genuine tie: admissible
    r = compare(ref, tied, tol, labels)
    assert r["passed"] and r["tie_disagreements"] == 1 and r["argmax_disagreements"] == 0
    assert r["accuracy"] == 1.0
    wrong = ref.copy()
    wrong[2, 2] = 6.0  # a real disagreement, far outside the tolerance
    r = compare(ref, wrong, tol, labels)
    assert not r["passed"] and r["argmax_disagreements"] == 1 and not r["logits_within_tol"]
    off = ref + 1e-5  # same argmax everywhere but logits beyond tol
    assert not compare(ref, off, tol, labels)["passed"]


def test_non_finite_logits_fail_and_are_recorded_as_valid_json():
    ref = np.array([[1.0, 2.0], [3.0, 0.0]])
    other = np.array([[1.0, np.nan], [3.0, np.inf]])
    r = compare(ref, other, np.full(2, 1e-6), np.array([1, 0]))
    assert not r["passed"] and r["non_finite_logits"] == 2
    assert r["max_abs_logit_diff"] is None and r["max_diff_over_tol"] is None
    json.dumps(r, allow_nan=False)


def _most_active_hidden_unit(run_dir, cfg):
    dep = load_deployment(run_dir)
    pixels, _, _ = synthetic_test_data(cfg)
    x = KINDS[dep.preprocess].apply(pixels, dep.params)
    hidden = reference.forward(dataclasses.replace(dep, blocks=dep.blocks[:-1]), x)
    return int(np.argmax((hidden > 0).mean(axis=0)))


def test_one_flipped_packed_bit_fails(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    path = os.path.join(run_dir, "model.packed.onnx")
    model = onnx.load(path)
    last = [i for i in model.graph.initializer if i.name.endswith(BITS_SUFFIX)]
    init = next(i for i in last if tuple(numpy_helper.to_array(i).shape) == ((16 * 10 + 7) // 8,))
    k = _most_active_hidden_unit(run_dir, mlp_config()) * 10  # weight [unit, class 0] of [16, 10]
    bits = numpy_helper.to_array(init).copy()
    bits[k // 8] ^= np.uint8(1 << (k % 8))
    init.CopyFrom(numpy_helper.from_array(bits, init.name))
    onnx.save(model, path)
    report = _verify(run_dir, mlp_config())
    assert not report["passed"]
    assert not report["backends"]["onnx_packed"]["passed"]
    assert all(report["backends"][k]["passed"] for k in ("tf_net", "onnx", "onnx_raw"))


def _shift_last_affine(path):
    """Add 0.01 to one value of the last block's folded shift c2 in an ONNX file."""
    model = onnx.load(path)
    init = next(i for i in model.graph.initializer if i.name.startswith("c2"))
    value = numpy_helper.to_array(init).copy()
    value[3] += 0.01
    init.CopyFrom(numpy_helper.from_array(value, init.name))
    onnx.save(model, path)


def test_altered_initializer_fails(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    path = os.path.join(run_dir, "model.onnx")
    _shift_last_affine(path)
    report = _verify(run_dir, mlp_config())
    assert not report["passed"] and not report["backends"]["onnx"]["passed"]
    assert report["backends"]["onnx_packed"]["passed"]


def test_corrupted_onnx_file_is_an_error(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    with open(os.path.join(run_dir, "model.packed.onnx"), "wb") as fh:
        fh.write(b"\x08garbage, not a protobuf\xff\xff")
    with pytest.raises(ExportError, match="model.packed.onnx: onnxruntime refuses it"):
        _verify(run_dir, mlp_config())


def test_verify_before_export_is_an_error(tiny_run_dir):
    with pytest.raises(ExportError, match="bcexport onnx"):
        _verify(tiny_run_dir, mlp_config())


def test_default_loader_uses_the_recorded_dataset(tiny_run_dir):
    with pytest.raises(ExportError, match="dataset 'synthetic'"):
        load_test_data(tiny_run_dir)
    with open(os.path.join(tiny_run_dir, "metrics.json"), "w") as fh:
        json.dump({"dataset": "mnist-sample", "data_dir": None}, fh)
    pixels, labels, name = load_test_data(tiny_run_dir)
    assert name == "mnist-sample" and pixels.dtype == np.uint8 and pixels.shape[1:] == (28, 28)
    assert labels.shape == (len(pixels),)


@pytest.mark.parametrize("metrics", [[1, 2], {"dataset": "mnist-sample", "data_dir": 5}, {"dataset": 7}])
def test_wrongly_shaped_metrics_json_is_an_error(tiny_run_dir, metrics):
    with open(os.path.join(tiny_run_dir, "metrics.json"), "w") as fh:
        json.dump(metrics, fh)
    with pytest.raises(ExportError, match="metrics.json"):
        load_test_data(tiny_run_dir)


def test_a_tolerance_too_loose_to_test_parity_is_refused(exported_mlp_dir, tmp_path, monkeypatch):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    monkeypatch.setattr("bcexport.verify.noise_level", lambda *args: 1e-5)  # rtol 1.6e-4
    with pytest.raises(ExportError, match="would not be a parity check"):
        _verify(run_dir, mlp_config())
    assert not os.path.exists(os.path.join(run_dir, "verify.json"))


def test_weights_that_meet_only_zero_test_inputs_are_still_checked(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    dep = load_deployment(run_dir)
    pixels, labels, _ = synthetic_test_data(mlp_config())
    pixels = pixels.copy()
    pixels.reshape(len(pixels), -1)[:, 0] = 0  # input 0 is 0 - mean[0] in every test image ...
    prep = dict(np.load(os.path.join(run_dir, "preprocess.npz")))
    prep["mean"][0] = 0.0  # ... and the mean makes it exactly 0: its weights never matter
    np.savez(os.path.join(run_dir, "preprocess.npz"), **prep)
    path = os.path.join(run_dir, "model.onnx")
    model = onnx.load(path)
    init = next(i for i in model.graph.initializer
                if numpy_helper.to_array(i).shape == dep.blocks[0].shape)
    w = numpy_helper.to_array(init).copy()
    w[0, :] *= -1  # every weight from input 0
    init.CopyFrom(numpy_helper.from_array(w, init.name))
    onnx.save(model, path)
    report = verify_run(run_dir, load_test=lambda r, d: (pixels, labels, "synthetic"), out=io.StringIO())
    assert not report["backends"]["onnx"]["passed"]  # caught by the random images after the test set
    assert report["backends"]["onnx_packed"]["passed"] and report["n_random_probes"] > 0


def test_packed_file_must_store_each_block_as_its_bits(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    path = os.path.join(run_dir, "model.packed.onnx")
    model = onnx.load(path)
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(4, np.uint8), "dummy" + BITS_SUFFIX))
    onnx.save(model, path)
    report = _verify(run_dir, mlp_config())
    assert not report["passed"] and not report["backends"]["onnx_packed"]["passed"]
    assert "dummy__bits holds the bits of no block" in report["backends"]["onnx_packed"]["weight_problems"]


def test_a_float_model_in_place_of_the_packed_one_fails(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    shutil.copy(os.path.join(run_dir, "model.onnx"), os.path.join(run_dir, "model.packed.onnx"))
    out = io.StringIO()
    report = verify_run(run_dir, load_test=synthetic_loader(mlp_config()), out=out)
    assert not report["passed"] and not report["size_passed"]
    assert report["sizes"]["binary_weight_bytes_packed"] == 0
    assert "0 packed bytes = 0 of float32" in out.getvalue() and "verify: FAILED" in out.getvalue()


def test_a_refused_verification_leaves_no_old_verdict(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    assert _verify(run_dir, mlp_config())["passed"]
    os.remove(os.path.join(run_dir, "model.raw.onnx"))  # listed in export.json: required
    with pytest.raises(ExportError, match="model.raw.onnx"):
        _verify(run_dir, mlp_config())
    assert not os.path.exists(os.path.join(run_dir, "verify.json"))


def test_every_exported_file_is_verified_whatever_export_json_lists(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    export_json = os.path.join(run_dir, "export.json")
    with open(export_json) as fh:
        exported = json.load(fh)
    del exported["files"]["model.raw.onnx"]
    with open(export_json, "w") as fh:
        json.dump(exported, fh)
    path = os.path.join(run_dir, "model.raw.onnx")
    _shift_last_affine(path)
    report = _verify(run_dir, mlp_config())
    assert not report["passed"] and not report["backends"]["onnx_raw"]["passed"]


def _rewrite_record(run_dir, drop=()):
    """export.json with its SHA-256 record made to match the files now (a tamperer's rewrite),
    `drop`ped files removed from it."""
    path = os.path.join(run_dir, "export.json")
    with open(path) as fh:
        exported = json.load(fh)
    for name in drop:
        del exported["files"][name]
    exported["sha256"] = digests.record(run_dir, [n for n in exported["sha256"] if n not in drop])
    with open(path, "w") as fh:
        json.dump(exported, fh)


def test_a_file_changed_since_export_is_named_even_if_it_still_passes(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    path = os.path.join(run_dir, "model.raw.onnx")
    model = onnx.load(path)
    model.producer_name = "someone else"  # same network, other bytes
    onnx.save(model, path)
    out = io.StringIO()
    report = verify_run(run_dir, load_test=synthetic_loader(mlp_config()), out=out)
    assert all(b["passed"] for b in report["backends"].values()) and not report["passed"]
    assert len(report["changed_since_export"]) == 1
    assert report["changed_since_export"][0].startswith("model.raw.onnx: changed since export")
    assert "export record: model.raw.onnx: changed since export" in out.getvalue()


def test_a_model_file_left_out_of_the_record_is_still_verified_and_named(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    path = os.path.join(run_dir, "model.raw.onnx")
    _shift_last_affine(path)
    _rewrite_record(run_dir, drop=["model.raw.onnx"])
    report = _verify(run_dir, mlp_config())
    assert not report["passed"] and not report["backends"]["onnx_raw"]["passed"]
    assert report["changed_since_export"] == ["model.raw.onnx: not recorded at export (no SHA-256)"]


@pytest.mark.parametrize("file, backend", [("model.onnx", "onnx"), ("model.raw.onnx", "onnx_raw")])
def test_a_float_weight_off_by_less_than_the_tolerance_fails(exported_mlp_dir, tmp_path, file, backend):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    dep = load_deployment(run_dir)
    path = os.path.join(run_dir, file)
    model = onnx.load(path)
    name = next(n for n, block in find_binary_initializers(model, dep).items() if block == 1)
    init = next(i for i in model.graph.initializer if i.name == name)
    value = numpy_helper.to_array(init).copy()
    k = int(np.flatnonzero(value.reshape(-1) == -1)[0])
    value.reshape(-1)[k] = np.float32(-1.0000305)  # 2^-15 off: far below the logit tolerance
    init.CopyFrom(numpy_helper.from_array(value, init.name))
    onnx.save(model, path)
    _rewrite_record(run_dir)  # so that only the weight check can catch it
    report = _verify(run_dir, mlp_config())
    result = report["backends"][backend]
    assert result["logits_within_tol"] and result["argmax_disagreements"] == 0
    assert not result["passed"] and not report["passed"] and report["changed_since_export"] == []
    assert any("is not a block's trained ±1 weights" in p for p in result["weight_problems"])
    assert any("block 1 weights stored as exact ±1 floats 0 times" in p for p in result["weight_problems"])


def test_an_export_json_without_digests_is_refused(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    path = os.path.join(run_dir, "export.json")
    with open(path) as fh:
        exported = json.load(fh)
    del exported["sha256"]
    with open(path, "w") as fh:
        json.dump(exported, fh)
    with pytest.raises(ExportError, match="no valid 'sha256' record"):
        _verify(run_dir, mlp_config())


def test_a_killed_verification_s_leftover_is_removed_in_one_line(exported_mlp_dir, tmp_path):
    run_dir = _copy(exported_mlp_dir, tmp_path)
    with open(os.path.join(run_dir, ".verify.json.x7.tmp"), "w") as fh:
        fh.write('{"passed": tr')
    err = io.StringIO()
    assert verify_run(run_dir, load_test=synthetic_loader(mlp_config()), out=io.StringIO(), err=err)["passed"]
    assert err.getvalue() == (f"notice: {run_dir}: removed 1 leftover(s) of an interrupted `bcexport verify`: "
                              ".verify.json.x7.tmp\n")
    assert not [n for n in os.listdir(run_dir) if n.endswith(".tmp")]
