"""bcexport.hidden: the gate on binary activations (BinaryNet, PAPER.md §10), every hidden bit of every
back end, on exported synthetic run directories (random weights, tests/export_fixtures.py)."""
import dataclasses
import json
import os

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from bcexport import ExportError, backends, hidden
from bcexport.onnx.export import export_run
from bcexport.pack import load_deployment
from bcexport.verify import verify_run
from export_fixtures import cnn_config, make_run_dir, mlp_config, synthetic_loader, synthetic_test_data


def bnn(cfg):
    return dataclasses.replace(cfg, binarize_act="sign", preprocess="pm1")


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def exported_bnn_dir(request, tmp_path_factory):
    cfg = bnn(mlp_config() if request.param == "mlp" else cnn_config())
    path = make_run_dir(tmp_path_factory.mktemp(request.param) / "run", cfg)
    export_run(path)
    return path


def _x(dep, n=300):
    from bctrain.data.preprocess import KINDS
    pixels, _, _ = synthetic_test_data(dep.cfg, n)
    return KINDS[dep.preprocess].apply(pixels, dep.params).reshape((n,) + dep.input_shape)


def test_every_back_end_gives_the_reference_s_hidden_bits(exported_bnn_dir):
    dep = load_deployment(exported_bnn_dir)
    report = verify_run(exported_bnn_dir, load_test=synthetic_loader(dep.cfg), out=open(os.devnull, "w"))
    assert report["passed"] and report["binary_activations"]["hidden_blocks"] == list(range(len(dep.blocks) - 1))
    names = {"tf_net", "onnx", "onnx_packed"} | ({"onnx_raw"} if dep.cfg.input_shape == (784,) else set())
    assert set(report["backends"]) == names
    for name, b in report["backends"].items():
        layers = b["hidden"]["layers"]
        assert [r["block"] for r in layers] == report["binary_activations"]["hidden_blocks"], name
        assert all(r["mismatches"] == 0 for r in layers) and b["argmax_agreement"] == 1.0, name
    assert json.load(open(os.path.join(exported_bnn_dir, "verify.json")))["passed"]


def test_a_flipped_bit_fails_in_the_block_where_it_arises(exported_bnn_dir):
    dep = load_deployment(exported_bnn_dir)
    x = _x(dep)
    logits, acts = backends.onnx_hidden(os.path.join(exported_bnn_dir, "model.onnx"), dep, exported_bnn_dir, 100)(x)
    slack = hidden.first_block_slack(dep, x)
    assert hidden.check_blocks(dep, x, acts, slack)["passed"]
    for k in range(len(acts)):
        flipped = [a.copy() for a in acts]
        flipped[k].reshape(-1)[7] *= -1
        check = hidden.check_blocks(dep, x, flipped, slack)
        assert not check["passed"]
        # the block itself, and (fed the flipped bit) possibly the next; never an earlier one
        assert [r["mismatches"] > 0 for r in check["layers"]][:k + 1] == [False] * k + [True]
    # with a slack covering every unit, a flip in the first block is a tie, not a failure
    flipped = [a.copy() for a in acts]
    flipped[0].reshape(-1)[7] *= -1
    check = hidden.check_blocks(dep, x, flipped, np.inf)
    assert check["layers"][0]["mismatches"] == 0 and check["layers"][0]["ties"] == 1


def test_a_changed_threshold_in_the_onnx_file_is_found(exported_bnn_dir, tmp_path):
    dep = load_deployment(exported_bnn_dir)
    model = onnx.load(os.path.join(exported_bnn_dir, "model.onnx"))
    block = len(dep.blocks) - 2  # the last hidden block: ±1 inputs, integer thresholds
    init = next(i for i in model.graph.initializer if i.name.split("/")[-1].startswith(f"thr{block}"))
    value = numpy_helper.to_array(init).copy()
    value += 2  # every unit's threshold: some sample meets one of them
    init.CopyFrom(numpy_helper.from_array(value, init.name))
    path = str(tmp_path / "model.onnx")
    onnx.save(model, path)
    x = _x(dep)
    _, acts = backends.onnx_hidden(path, dep, exported_bnn_dir, 100)(x)
    check = hidden.check_blocks(dep, x, acts, hidden.first_block_slack(dep, x))
    assert not check["passed"] and check["layers"][-1]["mismatches"] > 0
    assert all(r["mismatches"] == 0 for r in check["layers"][:-1])


def test_the_first_block_slack_bounds_float32_sums_in_any_order(tmp_path):
    """Sequential float32 sums forwards and backwards, NumPy's pairwise sum and a BLAS product stay
    within the slack of the exact (float64) product; the bound is not vacuous (some sums differ)."""
    cfg = bnn(mlp_config())
    dep = load_deployment(make_run_dir(tmp_path / "run", cfg))
    x = _x(dep, 50).astype(np.float32)
    wb = dep.blocks[0].wb
    exact = hidden.first_block_product(dep, x)
    slack = hidden.first_block_slack(dep, x)
    terms = x[:, :, None] * wb[None].astype(np.float32)  # exact products
    sums = [terms.sum(axis=1, dtype=np.float32), x @ wb.astype(np.float32),
            np.cumsum(terms, axis=1, dtype=np.float32)[:, -1],
            np.cumsum(terms[:, ::-1], axis=1, dtype=np.float32)[:, -1]]
    for s in sums:
        assert np.all(np.abs(s.astype(np.float64) - exact) <= slack)
    assert any(np.any(s.astype(np.float64) != exact) for s in sums)


def test_an_onnx_file_without_hidden_outputs_is_refused(exported_mlp_dir):
    model = onnx.load(os.path.join(exported_mlp_dir, "model.onnx"))  # BinaryConnect: ReLU, no act0
    with pytest.raises(ExportError, match="no tensor act0:0"):
        hidden.onnx_hidden_model(model, 1)
