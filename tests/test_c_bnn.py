"""bcexport.c.bnn: the generated C of BinaryNet networks, every kernel path bit for bit against NumPy.

A synthetic BinaryNet MLP (random weights, tests/export_fixtures.py) with widths off every multiple
of 64 bits and of the paths' steps, and a small CNN, are generated once; each target (compiler,
flags, emulator) links it with tests/bnn_driver.c and must give exactly the hidden bits and logits of a NumPy emulation:
block 0's u in bcnn_bgemm.h's order of float32 operations (tests/test_c_bgemm.py `emulate`), its
float32 thresholds, then integer products of ±1 rows and integer thresholds (bcexport.threshold),
and logits a·u + c in float32 (two roundings). Tiles of 16 and 1 samples, 37 samples (a ragged
tile); the CNN has an odd image (7x5: a pool drops a row and a column, every border is padded).
The gate (bcexport.hidden) must fail on a changed threshold in the C source. Train -> onnx -> c ->
verify of a tiny BinaryNet MLP and CNN: tests/test_end_to_end.py.
"""
import dataclasses
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bcexport import hidden
from bcexport.c import bitrows
from bcexport.c.build import CModel
from bcexport.c.csrc import PATHS
from bcexport.c.generate import generate
from bcexport.pack import load_deployment
from bcexport import reference
from c_fixtures import awkward_cnn_config, inputs, write_sources
from export_fixtures import make_run_dir, mlp_config
from test_c_bgemm import QEMU, STRICT, Target, emulate, missing

DRIVER = Path(__file__).with_name("bnn_driver.c")
AVX512_POPCNT = PATHS["avx512"].flags + ("-mavx512vpopcntdq",)
TARGETS = {
    "portable-gcc": Target("gcc", PATHS["portable"].flags, "portable+xnor-portable"),
    "portable-clang-tile1": Target("clang", PATHS["portable"].flags + ("-DBCNN_TILE=1",), "portable+xnor-portable"),
    "avx2-gcc": Target("gcc", PATHS["avx2"].flags, "avx2+xnor-avx2", cpu=PATHS["avx2"].cpu),
    "avx2-clang": Target("clang", PATHS["avx2"].flags, "avx2+xnor-avx2", cpu=PATHS["avx2"].cpu),
    "native-clang-tile1": Target("clang", ("-march=native", "-DBCNN_TILE=1"), None),
    "avx512-gcc": Target("gcc", AVX512_POPCNT, "avx512+xnor-avx512", cpu=PATHS["avx512"].cpu + ("avx512_vpopcntdq",)),
    "aarch64-neon": Target("aarch64-linux-gnu-gcc", PATHS["neon"].flags, "neon+xnor-neon", runner=QEMU),
    "aarch64-portable": Target("aarch64-linux-gnu-gcc", PATHS["portable"].flags, "portable+xnor-portable",
                               runner=QEMU),
}
N_SAMPLES = 37


def bnn_config(hidden_units=(300, 530, 70)):
    return dataclasses.replace(mlp_config(), hidden=hidden_units, binarize_act="sign", preprocess="pm1")


def bnn_cnn_config():
    """7x5x3 inputs, conv(5), conv(6)+pool on ±1 inputs (15 interior pixels, an odd row and column
    dropped by the pool), dense(19)."""
    return dataclasses.replace(awkward_cnn_config(), pool=(0, 1), binarize_act="sign", preprocess="pm1")


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def bnn_c(request, tmp_path_factory):
    """(deployment, c directory, preprocessed inputs) of a synthetic BinaryNet MLP or CNN."""
    cfg = bnn_config() if request.param == "mlp" else bnn_cnn_config()
    run = make_run_dir(tmp_path_factory.mktemp("bnn") / "run", cfg)
    dep = load_deployment(run)
    c_dir = write_sources(os.path.join(run, "c"), generate(dep, "bnn"))
    return dep, c_dir, inputs(dep, N_SAMPLES, seed=5)[1].reshape(N_SAMPLES, -1)


def oracle(dep, x) -> tuple:
    """(logits float32, [±1 int8 per hidden block]) in the C code's arithmetic (module docstring):
    block 0 as bcnn_bgemm.h sums (a conv: on its im2col rows), then exact integer products."""
    b0 = dep.blocks[0]
    x = x.astype(np.float32).reshape((len(x),) + dep.input_shape)
    if b0.kind == "conv":
        patches = reference.im2col3(x)
        u = emulate(patches.reshape(-1, patches.shape[-1]), b0.wb.reshape(patches.shape[-1], -1))
        u = u.reshape(patches.shape[:-1] + (b0.shape[-1],))
        u = reference.max_pool2(u) if b0.pool else u
    else:
        u = emulate(x, b0.wb)
    acts = [b0.sign.apply(u)]
    for b in dep.blocks[1:]:
        u = reference.product(b, b.wb, acts[-1])        # int32: ±1 products, exact
        if b.sign is None:
            return (b.a * u.astype(np.float32)).astype(np.float32) + b.c, acts
        acts.append(b.sign.apply(u))


def run_driver(target, c_dir, x, exe):
    proc = subprocess.run([target.compiler, *STRICT, *target.flags, f"-I{c_dir}", os.path.join(c_dir, "bcnn_model.c"),
                           str(DRIVER), "-o", str(exe)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    path = subprocess.run([*target.runner, str(exe), "path"], capture_output=True, text=True, check=True).stdout.strip()
    proc = subprocess.run([*target.runner, str(exe)], input=x.astype(np.float32).tobytes(), capture_output=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    return path, proc.stdout


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_every_kernel_path_gives_the_numpy_bits_and_logits(name, bnn_c, tmp_path):
    target = TARGETS[name]
    dep, c_dir, x = bnn_c
    reason = missing(target)
    if reason and "lacks" in reason and target.path.startswith("avx512"):
        proc = subprocess.run([target.compiler, *STRICT, *target.flags, f"-I{c_dir}", "-c",
                               os.path.join(c_dir, "bcnn_model.c"), "-o", str(tmp_path / "m.o")],
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        pytest.skip(f"compiled only: {reason}")
    if reason:
        pytest.skip(reason)
    path, out = run_driver(target, c_dir, x, tmp_path / "driver")
    assert path == (target.path or path)
    n_classes = dep.blocks[-1].shape[1]
    logits = np.frombuffer(out[:4 * N_SAMPLES * n_classes], np.float32).reshape(N_SAMPLES, n_classes)
    bits = np.frombuffer(out[4 * N_SAMPLES * n_classes:], np.uint8).reshape(N_SAMPLES, -1)
    want_logits, want_acts = oracle(dep, x)
    at = 0
    for k, want in enumerate(want_acts):
        n = want[0].size
        got = bitrows.unpack_rows(bits[:, at:at + -(-n // 8)], n).reshape(want.shape)
        np.testing.assert_array_equal(got, want, err_msg=f"{name}: hidden block {k}")
        at += -(-n // 8)
    assert at == bits.shape[1]
    np.testing.assert_array_equal(logits, want_logits, err_msg=name)


def test_the_gate_finds_a_changed_threshold_in_the_c_source(bnn_c, tmp_path):
    dep, c_dir, x = bnn_c
    facts = generate(dep, "bnn").facts
    slack = hidden.first_block_slack(dep, x)
    logits, acts = CModel(c_dir, facts).predict_hidden(x)
    assert hidden.check_blocks(dep, x, acts, slack)["passed"]
    changed = write_sources(tmp_path / "c", type("S", (), {"files": {
        name: open(os.path.join(c_dir, name)).read() for name in os.listdir(c_dir)}})())
    source = Path(changed, "bcnn_model.c")
    text = source.read_text()
    name = "block1_thr["       # the second hidden block's: ±1 inputs, integer thresholds
    head, rest = text.split(name, 1)
    length, rest = rest.split("] = {", 1)
    values, rest = rest.split("}", 1)
    bumped = ", ".join(str(int(v) + 1) for v in values.replace("\n", " ").split(","))
    source.write_text(f"{head}{name}{length}] = {{{bumped}}}{rest}")
    check = hidden.check_blocks(dep, x, CModel(changed, facts).predict_hidden(x)[1], slack)
    assert not check["passed"] and [r["mismatches"] > 0 for r in check["layers"]][:2] == [False, True]


def test_a_c_export_of_a_binarynet_records_its_entry_points_and_cortex_m4_sizes(tmp_path):
    """pm1 inputs have a pixel entry point: from uint8 pixels it gives the bits and logits of
    predict on NumPy's float32 pm1 of them."""
    from bcexport.backends import c_model
    from bcexport.c.export import export_c
    from bctrain.data.preprocess import KINDS
    run = make_run_dir(tmp_path / "run", bnn_config((37, 70)))
    summary = export_c(run)
    assert summary["entry_points"] == {"x": "bcnn_predict", "pixels": "bcnn_predict_pixels"}
    assert summary["hidden"] == {"entry_points": {"x": "bcnn_predict_hidden", "pixels": "bcnn_predict_pixels_hidden"},
                                 "bytes": 5 + 9, "shapes": [[37], [70]]}
    pixels = np.random.default_rng(2).integers(0, 256, (N_SAMPLES, 784), dtype=np.uint8)
    model = c_model(run)
    logits, acts = model.predict_hidden(pixels, "pixels")
    want_logits, want_acts = model.predict_hidden(KINDS["pm1"].apply(pixels, {}))
    np.testing.assert_array_equal(logits, want_logits)
    np.testing.assert_array_equal(model.predict(pixels, "pixels"), want_logits)
    for a, b in zip(acts, want_acts, strict=True):
        np.testing.assert_array_equal(a, b)
    assert summary["native"]["kernel_path"].count("+xnor-") == 1
    # weights: block 0 in the add/subtract layout (2 blocks of 32 outputs x 196 groups x 16 B), then
    # 70 rows of 37 bits and 10 rows of 70 (8 and 16 bytes each)
    assert summary["weight_bytes"] == 2 * 196 * 16 + 70 * 8 + 10 * 16
    mcu = summary["microcontroller"]
    if "skipped" not in mcu:
        assert mcu["flash"] > summary["weight_bytes"] and mcu["ram"] > 0
