"""bcexport/c/csrc/bcnn_xnor.h: every popcount path against NumPy, through tests/xnor_driver.c.

Each target (compiler, flags, emulator) builds the driver, which runs all cases in one process on
rows packed by bcexport.c.bitrows; every path must give, exactly, popcount(x XOR w) = (K − x·w) / 2
of the ±1 rows (a NumPy matrix product). Row lengths K are off every multiple the paths step by
(64 bits per word, 256 per AVX2 step, 512 per AVX-512 step, 128 per NEON step), long enough to pass
the AVX2 byte-counter flush (31 steps) and the NEON 16-bit flush (2048 steps), and the rows start
at odd addresses. Around AVX2's blocks of 16 steps (the carry-save-adder tree): 15 steps and 3 words,
16 steps with 0 or 1 word after them, 17, 47 (a block, then 31 look-up steps) and 48 steps. The AVX-512 VPOPCNTDQ path is only compiled where the CPU lacks it.
"""
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bcexport.c import bitrows
from bcexport.c.csrc import CSRC, PATHS
from test_c_bgemm import QEMU, STRICT, Target, missing

DRIVER = Path(__file__).with_name("xnor_driver.c")
AVX512_POPCNT = PATHS["avx512"].flags + ("-mavx512vpopcntdq",)

# (rows, weight rows, K, byte offset of the rows); 4 or more weight rows exercise bcnn_xnor_pop4
CASES = [(1, 1, 1, 0), (2, 3, 63, 1), (1, 5, 64, 3), (3, 2, 65, 0), (2, 4, 200, 5), (1, 7, 256, 1),
         (2, 3, 257, 2), (1, 2, 511, 7), (3, 5, 513, 0), (1, 3, 784, 1), (2, 2, 1000, 3), (1, 4, 4096, 0),
         (1, 2, 7999, 1), (1, 1, 31 * 256 + 300, 2), (2, 5, 64 * 256, 0), (1, 2, 2048 * 128 + 64 * 3 + 5, 1),
         (1, 1, 4200 * 128 + 64, 1),
         (1, 5, 15 * 256 + 190, 1), (2, 4, 16 * 256 - 1, 3), (1, 6, 16 * 256 + 1, 0), (1, 4, 17 * 256, 5),
         (1, 5, 47 * 256 + 64, 2), (1, 4, 48 * 256, 0)]

TARGETS = {
    "portable-gcc": Target("gcc", PATHS["portable"].flags, "portable"),
    "portable-clang": Target("clang", PATHS["portable"].flags, "portable"),
    "native-gcc": Target("gcc", ("-march=native",), None),
    "avx2-gcc": Target("gcc", PATHS["avx2"].flags, "avx2", cpu=PATHS["avx2"].cpu),
    "avx2-clang": Target("clang", PATHS["avx2"].flags, "avx2", cpu=PATHS["avx2"].cpu),
    "avx512-gcc": Target("gcc", AVX512_POPCNT, "avx512", cpu=PATHS["avx512"].cpu + ("avx512_vpopcntdq",)),
    "avx512-clang": Target("clang", AVX512_POPCNT, "avx512", cpu=PATHS["avx512"].cpu + ("avx512_vpopcntdq",)),
    "aarch64-neon": Target("aarch64-linux-gnu-gcc", PATHS["neon"].flags, "neon", runner=QEMU),
    "aarch64-portable": Target("aarch64-linux-gnu-gcc", PATHS["portable"].flags, "portable", runner=QEMU),
}


def build(target: Target, out: Path, source=DRIVER) -> Path:
    proc = subprocess.run([target.compiler, *STRICT, *target.flags, f"-I{CSRC}", str(source), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def make_case(r, n, k, off):
    rng = np.random.default_rng([r, n, k, off])
    x = np.where(rng.random((r, k)) < 0.5, -1, 1)
    w = np.where(rng.random((n, k)) < rng.uniform(0.1, 0.9), -1, 1)    # skewed: counts far from K/2
    w[0] = -x[0]                       # every bit differs: 8 per byte, what the counters must hold
    words = bitrows.row_bytes(k) // 8
    head = np.array([r, n, words, off], np.int32).tobytes()
    return x, w, head + bitrows.pack_rows(x).tobytes() + bitrows.pack_rows(w).tobytes()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_popcount_path_matches_numpy(name, tmp_path):
    target = TARGETS[name]
    reason = missing(target)
    exe = None
    if reason and target.path == "avx512" and shutil.which(target.compiler):
        build(target, tmp_path / "driver")   # this CPU cannot run it: compile it at least
        pytest.skip(f"compiled only: {reason}")
    if reason:
        pytest.skip(reason)
    exe = build(target, tmp_path / "driver")
    path = subprocess.run([*target.runner, str(exe), "path"], capture_output=True, text=True, check=True).stdout
    assert path.split()[0] == (target.path or path.split()[0])
    cases = [make_case(*c) for c in CASES]
    proc = subprocess.run([*target.runner, str(exe)], input=b"".join(c[2] for c in cases),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    got, offset = np.frombuffer(proc.stdout, np.uint32), 0
    for (r, n, k, off), (x, w, _) in zip(CASES, cases):
        want = (k - x @ w.T) // 2                      # disagreeing positions of the ±1 rows
        np.testing.assert_array_equal(got[offset:offset + r * n].reshape(r, n), want, err_msg=f"{name} K={k}")
        offset += r * n
    assert offset == got.size


def test_bit_rows_round_trip_and_pad_with_zeros():
    rng = np.random.default_rng(0)
    for k in (1, 63, 64, 65, 130):
        pm1 = np.where(rng.random((3, k)) < 0.5, -1, 1)
        packed = bitrows.pack_rows(pm1)
        assert packed.shape == (3, 8 * -(-k // 64))
        np.testing.assert_array_equal(bitrows.unpack_rows(packed, k), pm1)
        # every bit from K on is 0: a popcount of x XOR w never counts padding
        assert not np.unpackbits(packed, axis=1, bitorder="little")[:, k:].any()
        assert (packed[:, 0] & 1).tolist() == (pm1[:, 0] > 0).astype(int).tolist()   # value 0 = bit 0 of byte 0
    w = np.where(rng.random((70, 5)) < 0.5, -1.0, 1.0)
    np.testing.assert_array_equal(bitrows.unpack_weights(bitrows.pack_weights(w), 70, 5), w)
