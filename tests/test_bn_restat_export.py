"""bcexport.bn_restat and its use by `bcexport onnx`, `c` and `verify`: a stochastic run deploys
BatchNorm statistics re-estimated under sign(w) (bn_stats.npz, recorded in export.json)."""
import dataclasses
import json
import os
import shutil

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from bccommon import runfiles
from bcexport import ExportError, bn_restat, cli
from bcexport.onnx.export import export_models, export_run
from bcexport.pack import deployment, fold_bn, load_deployment
from bcexport.rundir import load_best
from bcexport.verify import verify_run
from bctrain.config import load_config
from bctrain.data.preprocess import KINDS
from export_fixtures import (cnn_config, make_run_dir, mlp_config, synthetic_loader, synthetic_test_data,
                             synthetic_train_loader)

N_TRAIN = 60  # synthetic training images the loader offers


def _oracle(cfg, weights, pixels, params):
    """Batch mean and biased std of every block's pre-activations through h·sign(w), block by block,
    in float64, with direct loops for the convolution (shares no code with bcexport)."""
    x = KINDS[cfg.preprocess].apply(pixels, params).astype(np.float64).reshape(len(pixels), *cfg.input_shape)
    n_blocks = len(cfg.conv) + len(cfg.hidden) + 1
    h = float(cfg.h)
    stats = {}
    for i in range(n_blocks):
        wb = h * np.where(weights[f"{i}/w"] >= 0, 1.0, -1.0)
        if wb.ndim == 4:  # 3x3 SAME conv, then the optional 2x2 max-pool
            xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
            z = sum(np.einsum("nhwc,co->nhwo", xp[:, dy:dy + x.shape[1], dx:dx + x.shape[2]], wb[dy, dx])
                    for dy in range(3) for dx in range(3))
            if cfg.pool[i]:
                z = np.maximum.reduce([z[:, a::2, b::2] for a in (0, 1) for b in (0, 1)])
        else:
            z = x.reshape(len(x), -1) @ wb
        z = z + weights[f"{i}/b"]
        axes = tuple(range(z.ndim - 1))
        mean, std = z.mean(axis=axes), z.std(axis=axes)
        stats[f"{i}/mean"], stats[f"{i}/std"] = mean, std
        y = (z - mean) * weights[f"{i}/gamma"] / (std + cfg.bn_eps) + weights[f"{i}/beta"]
        x = np.where(y >= 0, 1.0, -1.0) if cfg.binarize_act == "sign" else np.maximum(y, 0)
    return stats


def _stoch_run(path, cfg):
    return make_run_dir(path, dataclasses.replace(cfg, binarize="stoch"))


CONFIGS = {"cnn": cnn_config(), "mlp-h": mlp_config(h="0.5"), "binarynet": mlp_config(binarize_act="sign")}


@pytest.mark.parametrize("name", CONFIGS)
def test_exported_statistics_are_those_of_the_sign_network(tmp_path, name):
    run_dir = _stoch_run(tmp_path / "run", CONFIGS[name])
    cfg = load_config(run_dir)
    summary = export_run(run_dir, bn_restat_images=40, load_train=synthetic_train_loader(cfg, N_TRAIN))
    with np.load(os.path.join(run_dir, runfiles.BN_STATS_NPZ)) as data:
        got = {k: data[k] for k in data.files}
    with np.load(os.path.join(run_dir, runfiles.PREPROCESS_NPZ)) as data:
        params = {k: data[k] for k in data.files if k != "kind"}
    pixels = synthetic_train_loader(cfg, N_TRAIN)(run_dir, None).x_train[:40]  # the first 40, in order
    want = _oracle(cfg, load_best(run_dir, cfg), pixels, params)
    assert sorted(got) == sorted(want)
    for key, value in want.items():
        assert got[key].dtype == np.float32
        np.testing.assert_allclose(got[key], value, rtol=1e-5, atol=1e-5 * np.abs(value).max(), err_msg=key)
    assert summary["bn_statistics"]["images"] == 40 and "40 training images" in summary["note"]
    # every back end deploys them: the folded affine of the deployment is that of the new statistics
    dep, w = load_deployment(run_dir), load_best(run_dir, cfg)
    a, c = fold_bn(float(cfg.h), w["0/b"], w["0/gamma"], w["0/beta"], got["0/mean"], got["0/std"], cfg.bn_eps)
    np.testing.assert_array_equal(dep.blocks[0].a, a)
    np.testing.assert_array_equal(dep.blocks[0].c, c)


def test_the_same_run_gives_the_same_statistics():
    cfg = cnn_config()
    from export_fixtures import preprocess_params, random_weights
    params = preprocess_params(cfg)
    weights = random_weights(cfg, params)
    x = KINDS[cfg.preprocess].apply(synthetic_test_data(cfg, 30)[0], params).reshape(30, *cfg.input_shape)
    from bctrain.paper.arch import layer_specs
    first, second = (bn_restat.restat(layer_specs(cfg), weights, x, cfg.bn_eps) for _ in range(2))
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


@pytest.fixture(scope="module")
def exported_stoch_dir(tmp_path_factory):
    """A stochastic BinaryNet MLP exported with re-estimated statistics (copy it before changing it)."""
    run_dir = _stoch_run(tmp_path_factory.mktemp("stoch") / "run", mlp_config(binarize_act="sign"))
    export_run(run_dir, load_train=synthetic_train_loader(load_config(run_dir), N_TRAIN), bn_restat_images=N_TRAIN)
    return run_dir


def test_verify_passes_on_a_restat_export(exported_stoch_dir, tmp_path):
    run_dir = shutil.copytree(exported_stoch_dir, tmp_path / "copy")
    report = verify_run(str(run_dir), load_test=synthetic_loader(load_config(run_dir)), out=open(os.devnull, "w"))
    assert report["passed"]
    for name, b in report["backends"].items():  # BinaryNet: every hidden bit as the reference's
        assert [r["mismatches"] for r in b["hidden"]["layers"]] == [0, 0], name


@pytest.mark.parametrize("damage", ["tamper", "remove"])
def test_verify_fails_in_one_line_without_the_recorded_statistics(exported_stoch_dir, tmp_path, capsys, damage):
    run_dir = str(shutil.copytree(exported_stoch_dir, tmp_path / "copy"))
    path = os.path.join(run_dir, runfiles.BN_STATS_NPZ)
    if damage == "remove":
        os.remove(path)
    else:
        with np.load(path) as data:
            stats = {k: data[k] for k in data.files}
        stats["0/std"] = stats["0/std"] * 2
        np.savez(path, **stats)
    assert cli.main(["verify", run_dir]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert f"{runfiles.BN_STATS_NPZ}: {'missing' if damage == 'remove' else 'changed since export'}" in err
    assert not os.path.exists(os.path.join(run_dir, runfiles.VERIFY_JSON))


def test_a_det_export_deploys_the_trained_statistics(exported_mlp_dir):
    """The default for a det run: no bn_stats.npz, no record, and model files holding the constants of
    the trained statistics (best.npz as it is). Node names of a second conversion in one process
    differ, so the constants are compared, not the bytes (a new process writes the same bytes)."""
    assert not os.path.exists(os.path.join(exported_mlp_dir, runfiles.BN_STATS_NPZ))
    with open(os.path.join(exported_mlp_dir, runfiles.EXPORT_JSON)) as fh:
        assert "bn_statistics" not in json.load(fh)
    cfg = load_config(exported_mlp_dir)
    models = export_models(deployment(exported_mlp_dir, cfg, load_best(exported_mlp_dir, cfg)))["models"]
    for name, model in models.items():
        assert _constants(onnx.load(os.path.join(exported_mlp_dir, name))) == _constants(model), name


def _constants(model) -> list:
    return sorted(numpy_helper.to_array(t).tobytes() for t in model.graph.initializer)


def test_zero_images_keep_the_trained_statistics_and_remove_old_ones(exported_stoch_dir, tmp_path):
    run_dir = str(shutil.copytree(exported_stoch_dir, tmp_path / "copy"))
    summary = export_run(run_dir, bn_restat_images=0)
    assert "bn_statistics" not in summary and not os.path.exists(os.path.join(run_dir, runfiles.BN_STATS_NPZ))
    cfg = load_config(run_dir)
    want = deployment(run_dir, cfg, load_best(run_dir, cfg))
    assert all(np.array_equal(a.c, b.c) for a, b in zip(load_deployment(run_dir).blocks, want.blocks))


def _record_dataset(run_dir, dataset, data_dir=None):
    with open(os.path.join(run_dir, runfiles.METRICS_JSON), "w") as fh:
        json.dump({"dataset": dataset, "data_dir": data_dir}, fh)


@pytest.mark.parametrize("argv, message", [
    (["--bn-restat-images", "-1"], "--bn-restat-images -1: expected 0"),
    (["--bn-restat-images", "6001"], "--bn-restat-images 6001: expected 0 to 6000"),
    (["--data-dir", "NO_DATA"], "NO_DATA"),
])
def test_bad_input_is_refused_before_anything_is_written(tmp_path, capsys, argv, message):
    run_dir = _stoch_run(tmp_path / "run", mlp_config())
    _record_dataset(run_dir, "mnist-sample")
    if "NO_DATA" in argv:  # a dataset with files, from a directory that is not there
        _record_dataset(run_dir, "mnist")
        argv = ["--data-dir", str(tmp_path / "NO_DATA")]
    before = sorted(os.listdir(run_dir))
    assert cli.main(["onnx", run_dir, *argv]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert sorted(os.listdir(run_dir)) == before


def test_the_training_images_must_be_the_runs(tmp_path, capsys):
    run_dir = _stoch_run(tmp_path / "run", mlp_config())
    _record_dataset(run_dir, "mnist-sample")
    with open(os.path.join(run_dir, runfiles.DATA_JSON), "w") as fh:
        json.dump({"dataset": "mnist-sample", "train_sha256": "0" * 64}, fh)
    assert cli.main(["onnx", run_dir, "--bn-restat-images", "10"]) == cli.EXIT_USAGE
    assert "train_sha256" in capsys.readouterr().err
    assert not os.path.exists(os.path.join(run_dir, runfiles.EXPORT_JSON))


def test_a_stochastic_c_export_needs_the_onnx_export_first(tmp_path):
    from bcexport.c.export import export_c
    run_dir = _stoch_run(tmp_path / "run", mlp_config())
    with pytest.raises(ExportError, match="bcexport onnx"):
        export_c(run_dir)


@pytest.mark.slow  # compiles the C under every compiler present: ~15 s
def test_the_c_export_deploys_the_recorded_statistics(exported_stoch_dir, tmp_path, capsys):
    """BinaryNet: the C, built from the re-estimated statistics, passes verify bit for bit; after a
    new ONNX export with other statistics, verify names the stale C export."""
    from bcexport.c.export import export_c, read_c_export
    run_dir = str(shutil.copytree(exported_stoch_dir, tmp_path / "copy"))
    export_c(run_dir)
    with open(os.path.join(run_dir, runfiles.EXPORT_JSON)) as fh:
        assert read_c_export(run_dir)["bn_statistics"] == json.load(fh)["bn_statistics"]
    cfg = load_config(run_dir)
    devnull = open(os.devnull, "w")
    report = verify_run(run_dir, load_test=synthetic_loader(cfg), out=devnull)
    assert report["passed"] and "c" in report["backends"]
    assert [r["mismatches"] for r in report["backends"]["c"]["hidden"]["layers"]] == [0, 0]
    export_run(run_dir, bn_restat_images=20, load_train=synthetic_train_loader(cfg, N_TRAIN))
    report = verify_run(run_dir, load_test=synthetic_loader(cfg), out=devnull)
    assert not report["passed"]
    assert any("other BatchNorm statistics" in line for line in report["changed_since_export"])


def test_help_names_the_flag_and_its_default(capsys):
    with pytest.raises(SystemExit):
        cli.main(["onnx", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "--bn-restat-images N" in out and f"default: {bn_restat.DEFAULT_IMAGES} for a --binarize stoch" in out
