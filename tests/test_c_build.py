"""bcexport.c.build and the generated harness: strict compiles, the harness on files, AArch64 under
qemu, Cortex-M4 sizes (paper §9). Toolchain tests skip with a reason when the tool is missing."""
import os
import platform
import subprocess

import numpy as np
import pytest

from bcexport import ExportError, reference
from bcexport.c.build import MCU_CC, STRICT, build_shared, compile_check, mcu_sizes, run_cc
from bcexport.c.generate import generate
from bcexport.c.csrc import PATHS, cpu_features
from c_fixtures import awkward_run, float32_bound, inputs, require, write_sources


def native_path() -> str:
    """The kernel path bcnn_bgemm.h picks under -march=native on this CPU."""
    have = cpu_features()
    return next((p for p in ("avx512", "avx2") if set(PATHS[p].cpu) <= have), "portable")


# Native builds of the model: every x86-64 kernel path (flags: bcexport.c.csrc.PATHS), and -march=native.
NATIVE_BUILDS = {name: ("-O2", "-march=x86-64", *PATHS[name].flags) for name in ("portable", "avx2", "avx512")}
NATIVE_BUILDS["native"] = ("-O2", "-march=native")


@pytest.fixture(params=["mlp", "cnn"])
def generated(request, tmp_path):
    """(deployment, c_dir, facts) of an awkward tiny network (tile 4)."""
    _, dep = awkward_run(tmp_path, request.param)
    sources = generate(dep, "awkward", tile=4)
    return dep, write_sources(tmp_path / "c", sources), sources.facts


def build_harness(cc, c_dir, out, flags=("-O2",), prefix=()):
    subprocess.run([*prefix, cc, *STRICT, *flags, f"-I{c_dir}", os.path.join(c_dir, "harness.c"),
                    os.path.join(c_dir, "bcnn_model.c"), "-o", out, "-lm"], check=True)
    return out


def run_harness(exe, args, runner=()):
    return subprocess.run([*runner, exe, *args], capture_output=True, text=True)


@pytest.mark.parametrize("compiler", ["gcc", "clang", MCU_CC])
def test_every_generated_file_compiles_strictly(generated, compiler):
    require(compiler)
    _, c_dir, _ = generated
    assert compile_check(c_dir, os.listdir(c_dir), [compiler]) == [compiler]


@pytest.mark.parametrize("build", NATIVE_BUILDS)
def test_harness_matches_the_reference(generated, tmp_path, build):
    cc, = require("cc")
    if platform.machine() != "x86_64":
        pytest.skip("x86-64 builds")
    flags, path = NATIVE_BUILDS[build], native_path() if build == "native" else build
    needs = set(PATHS[path].cpu) - cpu_features()
    if needs:
        pytest.skip(f"this CPU lacks {', '.join(sorted(needs))}")
    dep, c_dir, _ = generated
    exe = build_harness(cc, c_dir, str(tmp_path / "harness"), flags)
    pixels, x = inputs(dep, 13, seed=2)
    x.astype("<f4").tofile(tmp_path / "x.bin")
    pixels.tofile(tmp_path / "p.bin")
    proc = run_harness(exe, ["-o", str(tmp_path / "y.bin"), "-r", "3", str(tmp_path / "x.bin")])
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("timing: 13 samples, 3 calls: median ")
    assert proc.stderr.strip().endswith(f"(kernel {path})")
    logits = np.fromfile(tmp_path / "y.bin", "<f4").reshape(13, dep.blocks[-1].shape[-1])
    ref = reference.forward(dep, x)
    assert np.all(np.abs(logits - ref) <= float32_bound(dep, x, ref))
    text = run_harness(exe, ["-p", str(tmp_path / "p.bin")])
    assert text.returncode == 0 and text.stderr == ""
    np.testing.assert_array_equal(np.loadtxt(text.stdout.splitlines(), dtype=np.float32, ndmin=2), logits)


def test_harness_rejects_a_wrong_size_file(generated, tmp_path):
    cc, = require("cc")
    dep, c_dir, _ = generated
    exe = build_harness(cc, c_dir, str(tmp_path / "harness"))
    size = int(np.prod(dep.input_shape))
    (tmp_path / "bad.bin").write_bytes(b"\0" * (4 * size + 2))
    for args, detail in ((["bad.bin"], f"{4 * size + 2} bytes is not a positive multiple of one sample "
                                       f"({4 * size} bytes: {size} float32 values)"),
                         (["-p", "empty.bin"], "0 bytes is not a positive multiple"),
                         (["missing.bin"], "cannot read missing.bin"), (["-x"], "usage: harness")):
        (tmp_path / "empty.bin").write_bytes(b"")
        proc = subprocess.run([exe, *args], capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 2 and proc.stdout == ""
        assert len(proc.stderr.strip().splitlines()) == 1 and detail in proc.stderr, proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("path", ["neon", "portable"])
def test_aarch64_harness_under_qemu(generated, tmp_path, path):
    cc, qemu = require("aarch64-linux-gnu-gcc", "qemu-aarch64")
    flags = ("-O2", *PATHS[path].flags)
    dep, c_dir, _ = generated
    exe = build_harness(cc, c_dir, str(tmp_path / "harness-aarch64"), flags)
    pixels, x = inputs(dep, 7, seed=5)
    x.astype("<f4").tofile(tmp_path / "x.bin")
    proc = run_harness(exe, ["-o", str(tmp_path / "y.bin"), "-r", "1", str(tmp_path / "x.bin")],
                       runner=(qemu, "-L", "/usr/aarch64-linux-gnu"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip().endswith(f"(kernel {path})")
    logits = np.fromfile(tmp_path / "y.bin", "<f4").reshape(7, -1)
    ref = reference.forward(dep, x)
    assert np.all(np.abs(logits - ref) <= float32_bound(dep, x, ref))


def test_cortex_m4_sizes(generated):
    require(MCU_CC, "arm-none-eabi-size")
    dep, c_dir, facts = generated
    sizes = mcu_sizes(c_dir, "bcnn", tile=1)
    assert sizes["flash"] == sizes["text"] + sizes["data"] >= facts["weight_bytes"]
    assert sizes["ram"] == sizes["data"] + sizes["bss"] + sizes["scratch"] + sizes["stack_bound"]
    assert sizes["data"] == sizes["bss"] == 0       # no static buffers: all working memory is scratch
    assert sizes["scratch"] >= 4 * 2 * int(np.prod(dep.input_shape)) and 0 < sizes["stack_bound"] < 4096
    assert "-DBCNN_TILE=1" in sizes["target"]


def test_missing_compiler_is_one_export_error(generated, tmp_path, monkeypatch):
    _, c_dir, _ = generated
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("CC", raising=False)
    with pytest.raises(ExportError, match="no C compiler"):
        build_shared(c_dir, str(tmp_path))
    assert mcu_sizes(c_dir, "bcnn") == {"skipped": "arm-none-eabi-gcc or arm-none-eabi-size not on PATH"}


def test_compile_error_is_one_export_error(generated, tmp_path):
    cc, = require("cc")
    _, c_dir, _ = generated
    with open(os.path.join(c_dir, "bcnn_model.c"), "a") as fh:
        fh.write("int unused_and_wrong = ;\n")
    with pytest.raises(ExportError, match=r"bcnn_model.c: \w+ failed: .*error"):
        build_shared(c_dir, str(tmp_path), cc)


@pytest.mark.parametrize("script, expected", [
    ("exit 1", r"false exited with status 1 and no output"),
    ("kill -9 $$", r"false killed by signal 9 \(SIGKILL\)"),
    ("echo 'x.c:1: error: boom' >&2; exit 3", r"false failed: x.c:1: error: boom"),
])
def test_a_failing_or_killed_compiler_is_reported_with_its_status(tmp_path, script, expected):
    cc = tmp_path / "false"
    cc.write_text(f"#!/bin/sh\n{script}\n")
    cc.chmod(0o755)
    with pytest.raises(ExportError, match=rf"^bcnn_model.c: {expected}$"):
        run_cc(str(cc), [], "bcnn_model.c")
