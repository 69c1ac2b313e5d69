"""bcexport.c.export and `bcexport c`: RUN_DIR/c/ written all or nothing, summary, and the C back
ends of `bcexport verify` (including a flipped weight bit in the generated source) (paper §9)."""
import dataclasses
import io
import json
import os
import re
import shutil

import numpy as np
import pytest

from bctrain.data.preprocess import apply_mean
from bcexport import ExportError, cli, reference
from bcexport.c import build as c_build
from bcexport.c.export import export_c, read_c_export
from bcexport.pack import load_deployment
from bcexport.verify import verify_run
from c_fixtures import require
from export_fixtures import cnn_config, mlp_config, synthetic_loader, synthetic_test_data

C_FILES = {"bcnn_model.h", "bcnn_model.c", "harness.c", "bcnn_runtime.h", "export.json"}


@pytest.fixture(scope="module")
def c_exported_mlp(exported_mlp_dir, tmp_path_factory):
    """The exported MLP run directory after `bcexport c` (copy it before changing it)."""
    require("cc")
    run_dir = shutil.copytree(exported_mlp_dir, tmp_path_factory.mktemp("c-mlp") / "run")
    export_c(str(run_dir))
    return str(run_dir)


def _copy(src, tmp_path):
    return str(shutil.copytree(src, tmp_path / "copy"))


def _verify(run_dir, cfg):
    return verify_run(run_dir, load_test=synthetic_loader(cfg), out=io.StringIO())


def test_export_writes_the_sources_and_summary(c_exported_mlp):
    c_dir = os.path.join(c_exported_mlp, "c")
    assert C_FILES <= set(os.listdir(c_dir))
    summary = read_c_export(c_exported_mlp)
    assert summary["files"] == {f"c/{n}": os.path.getsize(os.path.join(c_dir, n))
                                for n in os.listdir(c_dir) if n != "export.json"}
    assert summary["entry_points"] == {"x": "bcnn_predict", "pixels": "bcnn_predict_pixels"}
    assert summary["binary_weights"] == 784 * 32 + 32 * 16 + 16 * 10
    assert summary["weight_bytes"] == 196 * 16 + 8 * 16 + 4 * 16     # 4-input groups, 32-output blocks
    assert summary["native"]["kernel_path"] and summary["native"]["scratch_bytes"] > 0
    assert "gcc" in summary["compiled_with"] and summary["strict_flags"].startswith("-std=c99 -Wall")
    mcu = summary["microcontroller"]
    assert "skipped" in mcu or mcu["flash"] >= summary["weight_bytes"]
    assert not [n for n in os.listdir(c_exported_mlp) if n.startswith(".c")]


def test_failed_export_leaves_the_earlier_one(c_exported_mlp, tmp_path, monkeypatch):
    run_dir = _copy(c_exported_mlp, tmp_path)
    before = {n: open(os.path.join(run_dir, "c", n), "rb").read() for n in os.listdir(os.path.join(run_dir, "c"))}

    def broken(*args):
        raise ExportError("bcnn_model.c: gcc failed: error: boom")
    monkeypatch.setattr(c_build, "compile_check", broken)
    with pytest.raises(ExportError, match="boom"):
        export_c(run_dir, tile=3)
    after = {n: open(os.path.join(run_dir, "c", n), "rb").read() for n in os.listdir(os.path.join(run_dir, "c"))}
    assert after == before
    assert not [n for n in os.listdir(run_dir) if n.startswith(".c")]


def test_export_again_replaces_the_directory(c_exported_mlp, tmp_path):
    run_dir = _copy(c_exported_mlp, tmp_path)
    with open(os.path.join(run_dir, "verify.json"), "w") as fh:
        fh.write("{}")
    with open(os.path.join(run_dir, "c", "stray.txt"), "w") as fh:
        fh.write("old")
    assert export_c(run_dir, prefix="digits", tile=2)["tile"] == 2
    assert C_FILES <= set(os.listdir(os.path.join(run_dir, "c"))) and "stray.txt" not in os.listdir(
        os.path.join(run_dir, "c"))
    assert "digits_predict" in open(os.path.join(run_dir, "c", "bcnn_model.h")).read()
    assert not os.path.exists(os.path.join(run_dir, "verify.json"))
    assert not [n for n in os.listdir(run_dir) if n.startswith(".c") or n.startswith("c.old")]


def test_cli(c_exported_mlp, tmp_path, capsys):
    run_dir = _copy(c_exported_mlp, tmp_path)
    assert cli.main(["c", run_dir, "--tile", "8"]) == 0
    out = capsys.readouterr().out
    assert re.match(rf"wrote \d+ files to {re.escape(run_dir)}/c: weights 3,328 B \(1 bit each\), compiled with gcc",
                    out), out
    assert cli.main(["c", str(tmp_path / "nope")]) == cli.EXIT_USAGE
    assert cli.main(["c", run_dir, "--tile", "0"]) == cli.EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"bcexport c: error: {tmp_path / 'nope'}: no such run directory",
                   "bcexport c: error: tile=0: expected at least 1 sample per tile"]


def test_verify_checks_both_c_entry_points(c_exported_mlp, tmp_path):
    report = _verify(_copy(c_exported_mlp, tmp_path), mlp_config())
    assert report["passed"], report
    for name in ("c", "c_raw"):
        b = report["backends"][name]
        assert b["passed"] and b["details"]["kernel_path"] and "-march=native" in b["details"]["build"]
        assert b["max_diff_over_tol"] < 1
    assert "c/bcnn_model.c" in report["sizes"]["files"]


@pytest.mark.slow
def test_verify_checks_the_c_conv_model(exported_cnn_dir, tmp_path):
    require("cc")
    run_dir = _copy(exported_cnn_dir, tmp_path)
    export_c(run_dir, tile=3)
    report = _verify(run_dir, cnn_config())
    assert report["passed"] and {"c", "c_raw"} <= set(report["backends"])


def _flip_bit(source: str, block: int, k: int, n: int, n_in: int) -> str:
    """The source with the bit of W(k, n) of `block` flipped (layout: bcexport.c.layout)."""
    match = re.search(rf"static const uint8_t block{block}_w\[\d+\] = \{{(.*?)\}};", source, re.S)
    values = [int(v, 16) for v in match.group(1).replace(",", " ").split()]
    kg = -(-n_in // 4)
    index = ((n // 32) * kg + k // 4) * 16 + n % 16
    values[index] ^= 1 << ((4 if n % 32 >= 16 else 0) + k % 4)
    body = ", ".join(f"0x{v:02x}" for v in values)
    return source[:match.start(1)] + "\n    " + body + "\n" + source[match.end(1):]


def test_one_flipped_weight_bit_in_the_c_source_fails(c_exported_mlp, tmp_path):
    run_dir = _copy(c_exported_mlp, tmp_path)
    dep = load_deployment(run_dir)
    pixels, _, _ = synthetic_test_data(mlp_config())
    hidden = reference.forward(dataclasses.replace(dep, blocks=dep.blocks[:-1]), apply_mean(pixels, dep.mean))
    unit = int(np.argmax((hidden > 0).mean(axis=0)))     # an input of the last block that is often non-zero
    path = os.path.join(run_dir, "c", "bcnn_model.c")
    with open(path) as fh:
        source = fh.read()
    with open(path, "w") as fh:
        fh.write(_flip_bit(source, 2, unit, 0, 16))
    report = _verify(run_dir, mlp_config())
    assert not report["passed"]
    assert not report["backends"]["c"]["passed"] and not report["backends"]["c_raw"]["passed"]
    assert all(report["backends"][k]["passed"] for k in ("tf_net", "onnx", "onnx_packed", "onnx_raw"))


def test_listed_c_source_must_exist(c_exported_mlp, tmp_path):
    run_dir = _copy(c_exported_mlp, tmp_path)
    os.remove(os.path.join(run_dir, "c", "bcnn_model.c"))
    with pytest.raises(ExportError, match=r"no c/bcnn_model.c; run `bcexport c "):
        _verify(run_dir, mlp_config())
    with open(os.path.join(run_dir, "c", "export.json")) as fh:
        assert "c/bcnn_model.c" in json.load(fh)["files"]


def test_a_c_file_changed_since_export_is_named(c_exported_mlp, tmp_path):
    run_dir = _copy(c_exported_mlp, tmp_path)
    assert _verify(run_dir, mlp_config())["changed_since_export"] == []
    with open(os.path.join(run_dir, "c", "harness.c"), "a") as fh:
        fh.write("/* edited after export */\n")
    report = _verify(run_dir, mlp_config())
    assert not report["passed"]
    assert [p.split(":")[0] for p in report["changed_since_export"]] == ["c/harness.c"]
