"""bcexport.cli: exit codes and one-line errors of `bcexport onnx` / `bcexport verify` (paper §9)."""
import errno
import json
import os
import re
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from bccommon import atomic
from bcexport import cli, verify
from export_fixtures import cnn_config, make_run_dir, mlp_config, synthetic_loader


def _error_line(capsys):
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_help_documents_the_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["verify", "--help"])
    assert exc.value.code == 0
    assert "--data-dir" in capsys.readouterr().out


def test_missing_run_directory(tmp_path, capsys):
    assert cli.main(["onnx", str(tmp_path / "nope")]) == cli.EXIT_USAGE
    assert "no such run directory" in _error_line(capsys)


def test_a_binarynet_exports_to_c(tmp_path, capsys):
    import dataclasses
    run = make_run_dir(tmp_path / "bnn", dataclasses.replace(cnn_config(), binarize_act="sign", preprocess="pm1"))
    assert cli.main(["c", run]) == 0
    out = capsys.readouterr().out
    assert f"to {run}/c" in out and "no pixel entry point" not in out   # pm1 has one (bcnn_pre_pm1)
    summary = json.load(open(os.path.join(run, "c", "export.json")))
    assert summary["entry_points"]["pixels"] == "bcnn_predict_pixels"
    assert summary["hidden"]["shapes"] == [[8, 8, 4], [4, 4, 8], [16]]


@pytest.mark.parametrize("missing", ["metrics.json", "best.npz"])
def test_unfinished_run(tiny_run_dir, missing, capsys):
    os.remove(os.path.join(tiny_run_dir, missing))
    assert cli.main(["onnx", tiny_run_dir]) == cli.EXIT_USAGE
    assert f"unfinished run (no {missing})" in _error_line(capsys)


def test_not_a_run_directory(tmp_path, capsys):
    assert cli.main(["verify", str(tmp_path)]) == cli.EXIT_USAGE
    assert "no config.json" in _error_line(capsys)


def test_unknown_preset(tiny_run_dir, capsys):
    path = os.path.join(tiny_run_dir, "config.json")
    with open(path) as fh:
        config = json.load(fh)
    config["recipe"]["preset"] = "imagenet"
    with open(path, "w") as fh:
        json.dump(config, fh)
    assert cli.main(["onnx", tiny_run_dir]) == cli.EXIT_USAGE
    assert "unknown preset 'imagenet'" in _error_line(capsys)


def test_unreadable_weights(tiny_run_dir, capsys):
    with open(os.path.join(tiny_run_dir, "best.npz"), "wb") as fh:
        fh.write(b"not a zip file")
    assert cli.main(["onnx", tiny_run_dir]) == cli.EXIT_USAGE
    assert "best.npz: unreadable" in _error_line(capsys)


def test_verify_before_export(tiny_run_dir, capsys):
    assert cli.main(["verify", tiny_run_dir]) == cli.EXIT_USAGE
    assert "run `bcexport onnx" in _error_line(capsys)


def test_export_then_verify(tiny_run_dir, monkeypatch, capsys):
    assert cli.main(["onnx", tiny_run_dir]) == 0
    assert "model.packed.onnx" in capsys.readouterr().out
    monkeypatch.setattr(verify, "load_test_data", synthetic_loader(mlp_config()))
    assert cli.main(["verify", tiny_run_dir]) == 0
    assert "verify: PASSED" in capsys.readouterr().out


def test_an_earlier_releases_run_directory_exports_and_verifies(tmp_path, monkeypatch, capsys):
    """Earlier releases stored a `mean` array in preprocess.npz for every kind: ignored unless the
    kind is "mean" (here non-zero, so that using it would show)."""
    cfg = mlp_config(preprocess="none")
    run_dir = make_run_dir(tmp_path / "run", cfg)
    np.savez(os.path.join(run_dir, "preprocess.npz"), kind=np.array("none"), mean=np.full(784, 0.5, np.float32))
    assert cli.main(["onnx", run_dir]) == 0
    monkeypatch.setattr(verify, "load_test_data", synthetic_loader(cfg))
    assert cli.main(["verify", run_dir]) == 0
    assert "verify: PASSED" in capsys.readouterr().out
    assert json.load(open(os.path.join(run_dir, "verify.json")))["preprocess"] == "none"


def test_corrupted_onnx(exported_mlp_dir, tmp_path, monkeypatch, capsys):
    run_dir = shutil.copytree(exported_mlp_dir, tmp_path / "copy")
    with open(os.path.join(run_dir, "model.onnx"), "wb") as fh:
        fh.write(os.urandom(256))
    monkeypatch.setattr(verify, "load_test_data", synthetic_loader(mlp_config()))
    assert cli.main(["verify", str(run_dir)]) == cli.EXIT_USAGE
    assert "onnxruntime refuses it" in _error_line(capsys)


def test_changed_weight_fails_verification(exported_mlp_dir, tmp_path, monkeypatch, capsys):
    run_dir = shutil.copytree(exported_mlp_dir, tmp_path / "copy")
    path = os.path.join(run_dir, "model.onnx")
    model = onnx.load(path)
    init = next(i for i in model.graph.initializer if i.name.startswith("a2"))
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(model, path)
    monkeypatch.setattr(verify, "load_test_data", synthetic_loader(mlp_config()))
    assert cli.main(["verify", str(run_dir)]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "verify: FAILED" in out and "FAIL" in out.splitlines()[3]
    with open(os.path.join(run_dir, "verify.json")) as fh:
        report = json.load(fh)
    assert report["passed"] is False and report["backends"]["onnx"]["max_abs_logit_diff"] > 1e-3


def _record_dataset(run_dir, dataset):
    with open(os.path.join(run_dir, "metrics.json"), "w") as fh:
        json.dump({"dataset": dataset, "data_dir": None}, fh)


def test_verify_on_the_bundled_sample(exported_mlp_dir, tmp_path, capsys):
    run_dir = shutil.copytree(exported_mlp_dir, tmp_path / "copy")
    _record_dataset(run_dir, "mnist-sample")
    assert cli.main(["verify", str(run_dir)]) == 0
    with open(os.path.join(run_dir, "verify.json")) as fh:
        report = json.load(fh)
    assert report["dataset"] == "mnist-sample" and report["n_test"] > 1000


def test_missing_data_dir(exported_mlp_dir, tmp_path, capsys):
    run_dir = shutil.copytree(exported_mlp_dir, tmp_path / "copy")
    _record_dataset(run_dir, "mnist")
    assert cli.main(["verify", str(run_dir), "--data-dir", str(tmp_path / "no-data")]) == cli.EXIT_USAGE
    assert "no-data" in _error_line(capsys)


def test_a_run_directory_that_is_a_file(tmp_path, capsys):
    (tmp_path / "run").write_text("mine")
    assert cli.main(["onnx", str(tmp_path / "run")]) == cli.EXIT_USAGE
    assert "run: not a directory" in _error_line(capsys)


def test_an_export_the_disk_refuses_half_way_is_one_line_and_not_complete(exported_mlp_dir, tmp_path,
                                                                          monkeypatch, capsys):
    run_dir = shutil.copytree(exported_mlp_dir, tmp_path / "copy")
    real = atomic.write_bytes

    def full_at_the_packed_model(path, data):
        if path.endswith("model.packed.onnx"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", full_at_the_packed_model)
    assert cli.main(["onnx", str(run_dir)]) == cli.EXIT_USAGE
    assert f"{run_dir}/model.packed.onnx: No space left on device" in _error_line(capsys)
    assert not os.path.exists(os.path.join(run_dir, "export.json"))  # no complete export
    assert cli.main(["verify", str(run_dir)]) == cli.EXIT_USAGE
    assert "run `bcexport onnx" in _error_line(capsys)


def test_a_verdict_the_disk_refuses_is_one_line(exported_mlp_dir, tmp_path, monkeypatch, capsys):
    run_dir = shutil.copytree(exported_mlp_dir, tmp_path / "copy")

    def read_only(path, obj):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS), path)

    monkeypatch.setattr(verify, "load_test_data", synthetic_loader(mlp_config()))
    monkeypatch.setattr(atomic, "write_json", read_only)
    assert cli.main(["verify", str(run_dir)]) == cli.EXIT_USAGE
    assert "verify.json: Read-only file system" in _error_line(capsys)


def _fill(directory):
    """Write zeros into `directory` until its file system is full."""
    fd = os.open(os.path.join(directory, "filler"), os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


def test_a_c_export_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path, capsys):
    if os.geteuid() != 0:
        pytest.skip("a small tmpfs needs root to mount")
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs: {mount.stderr.strip()}")
    try:
        run_dir = make_run_dir(disk / "run", mlp_config())
        assert cli.main(["c", run_dir]) == 0
        capsys.readouterr()
        c_dir = os.path.join(run_dir, "c")
        before = {n: open(os.path.join(c_dir, n), "rb").read() for n in os.listdir(c_dir)}
        _fill(disk)
        assert cli.main(["c", run_dir, "--tile", "3"]) == cli.EXIT_USAGE
        assert re.fullmatch(rf"bcexport c: error: {re.escape(c_dir)}/[\w.]+: No space left on device\n",
                            _error_line(capsys))
        assert {n: open(os.path.join(c_dir, n), "rb").read() for n in os.listdir(c_dir)} == before
        assert sorted(os.listdir(run_dir)) == sorted(["c", "export.c.json", "train.lock", "config.json", "best.npz",
                                                      "preprocess.npz", "metrics.json"])
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_c_export_whose_summary_the_disk_refuses_names_it(tmp_path, monkeypatch, capsys):
    run_dir = make_run_dir(tmp_path / "run", mlp_config())
    real = atomic.write_json

    def full_at_the_summary(path, obj):
        if path.endswith("/export.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real(path, obj)

    monkeypatch.setattr(atomic, "write_json", full_at_the_summary)
    assert cli.main(["c", run_dir]) == cli.EXIT_USAGE
    assert _error_line(capsys) == f"bcexport c: error: {run_dir}/c/export.json: No space left on device\n"
    assert not [n for n in os.listdir(run_dir) if n.startswith(".c") or n in ("c", "export.c.json")]
