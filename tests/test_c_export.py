"""bcexport.c.export and `bcexport c`: RUN_DIR/c/ written all or nothing, summary, and the C back
ends of `bcexport verify` (including a flipped weight bit in the generated source) (paper §9)."""
import dataclasses
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest

from bctrain.data.preprocess import KINDS
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


@pytest.fixture(scope="module")
def c_exported_cnn(exported_cnn_dir, tmp_path_factory):
    """The exported CNN run directory after `bcexport c --tile 3` (copy it before changing it)."""
    require("cc")
    run_dir = shutil.copytree(exported_cnn_dir, tmp_path_factory.mktemp("c-cnn") / "run")
    export_c(str(run_dir), tile=3)
    return str(run_dir)


@pytest.mark.slow
def test_verify_checks_the_c_conv_model(c_exported_cnn, tmp_path):
    report = _verify(_copy(c_exported_cnn, tmp_path), cnn_config())
    assert report["passed"] and {"c", "c_raw"} <= set(report["backends"])
    for name in ("c", "c_raw"):
        assert report["backends"][name]["weight_problems"] == []
        assert report["backends"][name]["stored_weights"] == {
            "reader": "c_bits", "form": "bits", "bytes": read_c_export(c_exported_cnn)["weight_bytes"]}


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
    x = KINDS[dep.preprocess].apply(pixels, dep.params)
    hidden = reference.forward(dataclasses.replace(dep, blocks=dep.blocks[:-1]), x)
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
    assert report["backends"]["c"]["weight_problems"] == [
        "block2_w (block 2): 1 of 512 bits differ from the trained signs (first in byte "
        f"{(unit // 4) * 16})"]


def _rerecord_c(run_dir):
    """c/export.json with its SHA-256 record made to match the files now (a careful tamperer's rewrite)."""
    from bccommon import digests
    path = os.path.join(run_dir, "c", "export.json")
    with open(path) as fh:
        summary = json.load(fh)
    summary["sha256"] = digests.record(run_dir, summary["sha256"])
    with open(path, "w") as fh:
        json.dump(summary, fh)


def test_a_flipped_weight_bit_the_logits_cannot_see_fails(c_exported_cnn, tmp_path):
    """A sign flip from a hidden unit that never fires leaves every logit as it was; the stored bits
    still have to be exactly the trained signs."""
    run_dir = _copy(c_exported_cnn, tmp_path)
    dep = load_deployment(run_dir)
    pixels, _, _ = synthetic_test_data(cnn_config())
    probes = np.random.default_rng(0).integers(0, 256, (256,) + pixels.shape[1:], dtype=np.uint8)  # verify's
    x = KINDS[dep.preprocess].apply(np.concatenate([pixels, probes]), dep.params).reshape((-1,) + dep.input_shape)
    hidden = reference.forward(dataclasses.replace(dep, blocks=dep.blocks[:-1]), x)
    unit = int(np.argmin((hidden > 0).mean(axis=0)))
    assert np.all(hidden[:, unit] == 0)  # the fixture has a unit that never fires (16 units, seed 0)
    path = os.path.join(run_dir, "c", "bcnn_model.c")
    with open(path) as fh:
        source = fh.read()
    with open(path, "w") as fh:
        fh.write(_flip_bit(source, 3, unit, 2, 16))
    _rerecord_c(run_dir)
    report = _verify(run_dir, cnn_config())
    assert not report["passed"] and report["changed_since_export"] == []
    for name in ("c", "c_raw"):
        result = report["backends"][name]
        assert result["logits_within_tol"] and result["argmax_disagreements"] == 0
        assert not result["passed"]
        assert result["weight_problems"] == [
            f"block3_w (block 3): 1 of 512 bits differ from the trained signs (first in byte {(unit // 4) * 16 + 2})"]


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


def _c_entries(run_dir):
    """What `bcexport c` has in the run directory besides export.c.json: c/ and any leftovers."""
    return sorted(n for n in os.listdir(run_dir) if n == "c" or n.startswith((".c.", "c.old", ".export.c")))


def _swap_killed_between_its_renames(run_dir):
    """The run directory as a SIGKILL between the two renames of `bcexport.c.swap.install` leaves it:
    the earlier export moved aside, the new one complete in its temporary directory, no c/."""
    os.rename(os.path.join(run_dir, "c"), os.path.join(run_dir, ".c.old-k1ll3d.tmp"))
    shutil.copytree(os.path.join(run_dir, ".c.old-k1ll3d.tmp"), os.path.join(run_dir, ".c.n3wxprt.tmp"))


def test_a_swap_killed_between_its_renames_is_rolled_back_by_verify_and_export(c_exported_mlp, tmp_path):
    run_dir = _copy(c_exported_mlp, tmp_path)
    before = open(os.path.join(run_dir, "c", "bcnn_model.c")).read()
    _swap_killed_between_its_renames(run_dir)
    err = io.StringIO()
    report = verify_run(run_dir, load_test=synthetic_loader(mlp_config()), out=io.StringIO(), err=err)
    assert report["passed"] and {"c", "c_raw"} <= set(report["backends"])
    assert err.getvalue() == (f"notice: {run_dir}/c: restored from .c.old-k1ll3d.tmp, where an interrupted "
                              "`bcexport c` had moved it\n")
    assert open(os.path.join(run_dir, "c", "bcnn_model.c")).read() == before
    err = io.StringIO()
    export_c(run_dir, err=err)
    assert err.getvalue() == (f"notice: {run_dir}: removed 1 leftover(s) of an interrupted `bcexport c`: "
                              ".c.n3wxprt.tmp\n")
    assert _c_entries(run_dir) == ["c"]


@pytest.mark.slow
def test_a_real_kill_between_the_renames_leaves_an_export_the_next_one_completes(c_exported_mlp, tmp_path):
    run_dir = _copy(c_exported_mlp, tmp_path)
    before = open(os.path.join(run_dir, "c", "export.json")).read()
    script = ("import os, signal, sys\n"
              "from bcexport.c.export import export_c\n"
              "real, calls = os.rename, []\n"
              "def rename(a, b):\n"
              "    calls.append(b)\n"
              "    if len(calls) == 2:\n"
              "        os.kill(os.getpid(), signal.SIGKILL)\n"
              "    real(a, b)\n"
              "os.rename = rename\n"
              "export_c(sys.argv[1], tile=5)\n")
    proc = subprocess.run([sys.executable, "-c", script, run_dir], env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.returncode == -signal.SIGKILL
    assert not os.path.exists(os.path.join(run_dir, "c"))  # the window this test is about
    err = io.StringIO()
    assert export_c(run_dir, tile=2, err=err)["tile"] == 2
    lines = err.getvalue().splitlines()
    assert lines[0].startswith(f"notice: {run_dir}/c: restored from .c.old-") and len(lines) == 2
    assert lines[1].startswith(f"notice: {run_dir}: removed 1 leftover(s) of an interrupted `bcexport c`: .c.")
    assert _c_entries(run_dir) == ["c"]
    assert open(os.path.join(run_dir, "c", "export.json")).read() != before
    assert _verify(run_dir, mlp_config())["passed"]


@pytest.mark.parametrize("damage", ["removed", "emptied"])
def test_verify_refuses_a_recorded_c_export_that_is_gone(c_exported_mlp, tmp_path, damage):
    run_dir = _copy(c_exported_mlp, tmp_path)
    c_dir = os.path.join(run_dir, "c")
    shutil.rmtree(c_dir)
    if damage == "emptied":
        os.mkdir(c_dir)
    with pytest.raises(ExportError, match=rf"^{re.escape(c_dir)}: no complete C export \(no export.json\), but "
                                          rf"export.c.json records one; run `bcexport c {re.escape(run_dir)}` again$"):
        _verify(run_dir, mlp_config())


def test_leftovers_of_killed_exports_are_removed_by_the_next_one_in_one_line(c_exported_mlp, tmp_path):
    run_dir = _copy(c_exported_mlp, tmp_path)
    for name in (".c.abcd1234.tmp", ".c.old-efgh5678.tmp", "c.old-ijkl9012"):  # the last: earlier versions
        shutil.copytree(os.path.join(run_dir, "c"), os.path.join(run_dir, name))
    with open(os.path.join(run_dir, ".export.c.json.mnop.tmp"), "w") as fh:
        fh.write("{")
    err = io.StringIO()
    export_c(run_dir, err=err)
    assert err.getvalue() == (f"notice: {run_dir}: removed 4 leftover(s) of an interrupted `bcexport c`: "
                              ".c.abcd1234.tmp, .c.old-efgh5678.tmp, .export.c.json.mnop.tmp, c.old-ijkl9012\n")
    assert _c_entries(run_dir) == ["c"]


def test_an_export_or_verify_of_a_run_directory_in_use_is_refused(c_exported_mlp, tmp_path):
    from bcexport import lock
    from bcexport.onnx.export import export_run
    run_dir = _copy(c_exported_mlp, tmp_path)
    before = sorted(os.listdir(run_dir))
    with lock.hold(run_dir):
        for command in (lambda: export_c(run_dir), lambda: _verify(run_dir, mlp_config()),
                        lambda: export_run(run_dir)):
            with pytest.raises(ExportError, match=rf"^{re.escape(run_dir)} is in use by another process "
                                                  rf"\(pid {os.getpid()}\)"):
                command()
    assert sorted(os.listdir(run_dir)) == [n for n in before if n != "verify.json"]
    assert export_c(run_dir)["tile"]  # the lock dies with its holder
