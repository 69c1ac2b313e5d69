"""bcexport.onnx.export and bcexport.onnx.packed: the ONNX files and export.json (paper §9)."""
import hashlib
import json
import math
import os

import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
from onnx import numpy_helper

from bctrain.data.preprocess import KINDS
from bcexport import reference
from bcexport.onnx.export import OPSET, export_run
from bcexport.pack import load_deployment
from bcexport.onnx.packed import BITS_SUFFIX, find_binary_initializers
from bcexport.tfmodel import inference_function
from bcexport.verify import noise_level, tolerance
from export_fixtures import make_run_dir, mlp_config, synthetic_test_data

FILES = ("model.onnx", "model.packed.onnx", "model.raw.onnx", "export.json")


@pytest.fixture(params=["mlp", "cnn"])
def exported(request, exported_mlp_dir, exported_cnn_dir):
    return exported_mlp_dir if request.param == "mlp" else exported_cnn_dir


def _run(path, feed):
    sess = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["logits"]
    return sess.run(None, {sess.get_inputs()[0].name: feed})[0]


def _data(dep):
    pixels, _, _ = synthetic_test_data(dep.cfg, n=100, seed=11)
    return pixels, KINDS[dep.preprocess].apply(pixels, dep.params).reshape((len(pixels),) + dep.input_shape)


def test_files_are_written_atomically_and_valid(exported_mlp_dir):
    names = set(os.listdir(exported_mlp_dir))
    assert set(FILES) <= names
    assert not [n for n in names if n.endswith(".tmp")]
    for name in FILES[:3]:
        model = onnx.load(os.path.join(exported_mlp_dir, name))
        onnx.checker.check_model(model)
        assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {OPSET}
        assert len(model.graph.input) == 1 and [o.name for o in model.graph.output] == ["logits"]


def test_inference_function_is_a_plain_graph(exported_cnn_dir):
    dep = load_deployment(exported_cnn_dir)
    graph = inference_function(dep).get_concrete_function().graph
    ops = {op.type for op in graph.get_operations()}
    assert not ops & {"Sign", "RandomUniform", "StatelessRandomUniformV2", "VarHandleOp",
                      "ReadVariableOp", "FusedBatchNormV3"}
    assert not graph.variables


def test_onnx_models_equal_tf_and_reference(exported):
    dep = load_deployment(exported)
    _, x = _data(dep)
    ref = reference.forward(dep, x)
    tf_out = inference_function(dep)(tf.constant(x)).numpy()
    plain = _run(os.path.join(exported, "model.onnx"), x)
    packed = _run(os.path.join(exported, "model.packed.onnx"), x)
    np.testing.assert_array_equal(packed, plain)  # same graph once the bits are unpacked
    tol = tolerance(ref, noise_level(dep, x, ref))[:, None]
    for out in (tf_out, plain):
        assert np.all(np.abs(out - ref) <= tol)
        assert np.all(np.abs(out - tf_out) <= 2 * tol)
        np.testing.assert_array_equal(out.argmax(axis=1), ref.argmax(axis=1))


def test_raw_model_applies_preprocessing(exported_mlp_dir):
    dep = load_deployment(exported_mlp_dir)
    pixels, x = _data(dep)
    ref = reference.forward(dep, x)
    raw = _run(os.path.join(exported_mlp_dir, "model.raw.onnx"), pixels)
    assert np.all(np.abs(raw - ref) <= tolerance(ref, noise_level(dep, x, ref))[:, None])


def test_packed_model_stores_one_bit_per_weight(exported):
    dep = load_deployment(exported)
    plain = onnx.load(os.path.join(exported, "model.onnx"))
    packed = onnx.load(os.path.join(exported, "model.packed.onnx"))
    assert len(find_binary_initializers(plain, dep)) == len(dep.blocks)
    assert find_binary_initializers(packed, dep) == {}
    bits = [i for i in packed.graph.initializer if i.name.endswith(BITS_SUFFIX)]
    assert len(bits) == len(dep.blocks)
    assert all(i.data_type == onnx.TensorProto.UINT8 for i in bits)
    packed_bytes = sum(numpy_helper.to_array(i).nbytes for i in bits)
    assert packed_bytes == sum(math.ceil(b.n_weights / 8) for b in dep.blocks)
    assert packed_bytes <= 4 * dep.n_binary_weights / 30


def test_export_json(exported_mlp_dir):
    with open(os.path.join(exported_mlp_dir, "export.json")) as fh:
        info = json.load(fh)
    dep = load_deployment(exported_mlp_dir)
    assert info["opset"] == OPSET and info["binary_weights"] == dep.n_binary_weights
    assert info["binary_weight_bytes"]["float32"] == 4 * dep.n_binary_weights
    assert info["binary_weight_bytes"]["ratio"] <= 1 / 30
    assert info["files"] == {n: os.path.getsize(os.path.join(exported_mlp_dir, n)) for n in FILES[:3]}
    assert info["sha256"] == {n: hashlib.sha256(open(os.path.join(exported_mlp_dir, n), "rb").read()).hexdigest()
                              for n in FILES[:3]}
    assert set(info["versions"]) >= {"tensorflow", "tf2onnx", "onnx", "onnxruntime"}
    assert "note" not in info


def test_stochastic_run_gets_a_note(tmp_path):
    run_dir = make_run_dir(tmp_path / "stoch", mlp_config(binarize="stoch"))
    assert "real-valued" in export_run(run_dir, bn_restat_images=0)["note"]


def test_export_is_all_or_nothing(exported_mlp_dir, tmp_path, monkeypatch):
    import shutil
    from bcexport import ExportError
    from bcexport.onnx import export as onnx_export
    run_dir = str(shutil.copytree(exported_mlp_dir, tmp_path / "copy"))
    before = {n: open(os.path.join(run_dir, n), "rb").read() for n in os.listdir(run_dir)
              if n.endswith((".onnx", ".json"))}
    calls = []

    def refuse_second(data):
        calls.append(1)
        if len(calls) == 2:
            raise ExportError("model: onnxruntime refuses it (simulated)")

    monkeypatch.setattr(onnx_export, "session", refuse_second)
    with pytest.raises(ExportError, match="simulated"):
        onnx_export.export_run(run_dir)
    assert {n: open(os.path.join(run_dir, n), "rb").read() for n in before} == before


def test_sessions_are_quiet_about_unused_initializers(capfd):
    from bcexport.onnx.export import session
    from onnx import helper
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["logits"])], "g",
                              [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, [1])],
                              [numpy_helper.from_array(np.zeros(3, np.float32), "unused")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    capfd.readouterr()
    session(model)
    assert "Removing initializer" not in capfd.readouterr().err  # onnxruntime warns at its default level


def test_leftovers_of_a_killed_export_are_removed_by_the_next_one_in_one_line(exported_mlp_dir, tmp_path):
    import io
    import shutil
    run_dir = str(shutil.copytree(exported_mlp_dir, tmp_path / "copy"))
    mine = [".export.json.a1.tmp", ".model.onnx.b2.tmp", ".model.packed.onnx.c3.tmp", ".model.raw.onnx.d4.tmp"]
    for name in mine + [".best.npz.e5.tmp"]:  # the last is training's: not the export's to remove
        with open(os.path.join(run_dir, name), "wb") as fh:
            fh.write(b"partial")
    err = io.StringIO()
    export_run(run_dir, err=err)
    assert err.getvalue() == (f"notice: {run_dir}: removed 4 leftover(s) of an interrupted `bcexport onnx`: "
                              + ", ".join(mine) + "\n")
    assert [n for n in os.listdir(run_dir) if n.endswith(".tmp")] == [".best.npz.e5.tmp"]
