"""bcexport/c/csrc/bcnn_bgemm.h: every kernel path against NumPy float64, through tests/bgemm_driver.c.

Each target (compiler, flags, emulator) builds the driver, which runs all cases in one process;
outputs must be within the bound the header states, |y - exact| <= gamma_d * sum_k |x_k| with
d = ceil(K/4) + 2 (d = K for the one-weight-at-a-time reference), columns n >= N of Y untouched,
and the scratch no larger than BCNN_BGEMM_SCRATCH_FLOATS (the driver checks a guard). Table paths
must also reproduce, bit for bit, the order of float32 operations the header states (`emulate`).
"""
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bcexport.c.layout import pack_matrix
from bcexport.c.csrc import CSRC, PATHS, cpu_features

DRIVER = Path(__file__).with_name("bgemm_driver.c")
STRICT = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
QEMU = ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu")
SENTINEL = np.float32(1234.5)
U = 2.0 ** -24

# (M, K, N, ldx - K, ldy - N): K < 4, K and N off multiples of 4/16/32/64, M using every row set
# of the SIMD paths (8, 4, 2, 1), K over several table chunks of every path, strided X and Y.
CASES = [(1, 1, 1, 0, 0), (1, 3, 5, 2, 3), (3, 5, 33, 0, 0), (2, 27, 10, 1, 0), (4, 64, 70, 0, 2),
         (1, 130, 47, 3, 1), (5, 36, 16, 0, 0), (1, 784, 2048, 0, 0), (1, 2048, 10, 0, 0),
         (16, 27, 32, 0, 0), (17, 36, 48, 1, 5), (33, 130, 47, 2, 1), (40, 1152, 20, 0, 0),
         (20, 300, 100, 4, 0), (64, 256, 256, 0, 0), (3, 520, 200, 0, 0)]


@dataclass(frozen=True)
class Target:
    compiler: str
    flags: tuple
    path: str | None          # what bcnn_bgemm_path() must report (None: whatever the CPU has)
    cpu: tuple = ()           # /proc/cpuinfo flags needed to run natively
    runner: tuple = ()        # emulator prefix
    depth: str = "table"      # "table" (ceil(K/4) + 2) or "reference" (K)


PORTABLE, AVX2, AVX512 = PATHS["portable"], PATHS["avx2"], PATHS["avx512"]
TARGETS = {
    "reference": Target("gcc", ("-DBGEMM_DRIVER_REF",), None, depth="reference"),
    "portable-gcc": Target("gcc", PORTABLE.flags, "portable"),
    "portable-clang": Target("clang", PORTABLE.flags, "portable"),
    "native-gcc": Target("gcc", ("-march=native",), None),
    "avx2-gcc": Target("gcc", AVX2.flags, "avx2", cpu=AVX2.cpu),
    "avx2-clang": Target("clang", AVX2.flags, "avx2", cpu=AVX2.cpu),
    "avx512-gcc": Target("gcc", AVX512.flags, "avx512", cpu=AVX512.cpu),
    "avx512-clang": Target("clang", AVX512.flags, "avx512", cpu=AVX512.cpu),
    "aarch64-neon": Target("aarch64-linux-gnu-gcc", PATHS["neon"].flags, "neon", runner=QEMU),
    "aarch64-portable": Target("aarch64-linux-gnu-gcc", PORTABLE.flags, "portable", runner=QEMU),
}


def missing(target: Target):
    """A one-line reason the target cannot be built and run here, or None."""
    for tool in (target.compiler, *target.runner[:1]):
        if not shutil.which(tool):
            return f"{tool} not installed (.ci/run installs it)"
    lacking = set(target.cpu) - cpu_features()
    if lacking:
        return f"this CPU lacks {' '.join(sorted(lacking))}"
    return None


def build(target: Target, out: Path) -> Path:
    proc = subprocess.run([target.compiler, *STRICT, *target.flags, f"-I{CSRC}", str(DRIVER), "-o", str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return out


def make_case(m, k, n, dx, dy):
    rng = np.random.default_rng([m, k, n, dx, dy])
    wb = np.where(rng.random((k, n)) < 0.5, -1.0, 1.0)
    x = np.full((m, k + dx), np.nan, np.float32)    # columns k >= K must never be read
    x[:, :k] = rng.normal(size=(m, k)) * 10.0 ** rng.uniform(-2, 2, (m, k))  # magnitudes that round
    header = np.array([m, k, n, k + dx, n + dy], np.int32)
    return x, wb, header.tobytes() + x.tobytes() + pack_matrix(wb).tobytes()


def emulate(x, wb) -> np.ndarray:
    """The header's order of float32 operations, in NumPy: table entries (±x0 ± x1) + (±x2 ± x3),
    then a sequential sum over groups from 0. Every table path must match it bit for bit."""
    m, k = x.shape
    kg = math.ceil(k / 4)
    xg = np.zeros((m, 4 * kg), np.float32)
    xg[:, :k] = x
    xg = xg.reshape(m, kg, 4)
    sgn = [lambda e, t=t: xg[..., t] if e >> t & 1 else -xg[..., t] for t in range(4)]
    table = np.stack([(sgn[0](e) + sgn[1](e)) + (sgn[2](e) + sgn[3](e)) for e in range(16)], axis=-1)
    bits = np.zeros((4 * kg, wb.shape[1]), np.int64)
    bits[:k] = wb > 0
    nib = sum(bits[t::4] << t for t in range(4))                        # [kg, N]
    y = np.zeros((m, wb.shape[1]), np.float32)
    for g in range(kg):
        y = y + table[:, g, nib[g]]
    return y


def gamma(d: int) -> float:
    return d * U / (1 - d * U)


def run_cases(exe: Path, target: Target):
    cases = [make_case(*c) for c in CASES]
    proc = subprocess.run([*target.runner, str(exe)], input=b"".join(c[2] for c in cases),
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    ys, offset = [], 0
    for (m, k, n, dx, dy), (x, wb, _) in zip(CASES, cases):
        size = m * (n + dy) * 4
        ys.append(np.frombuffer(proc.stdout[offset:offset + size], np.float32).reshape(m, n + dy))
        offset += size
    assert offset == len(proc.stdout)
    return cases, ys


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_kernel_path_matches_numpy(name, tmp_path):
    target = TARGETS[name]
    reason = missing(target)
    if reason:
        pytest.skip(reason)
    exe = build(target, tmp_path / "driver")
    reported = subprocess.run([*target.runner, str(exe), "path"], capture_output=True, text=True, check=True)
    assert reported.stdout.split()[0] == (target.path or reported.stdout.split()[0])
    cases, ys = run_cases(exe, target)
    for (m, k, n, dx, dy), (x, wb, _), y in zip(CASES, cases, ys):
        x64 = x[:, :k].astype(np.float64)
        exact = x64 @ wb
        d = k if target.depth == "reference" else math.ceil(k / 4) + 2
        # float64 rounding of the oracle itself: k * 2^-53 * sum |x|
        bound = (gamma(d) + k * 2.0 ** -53) * np.abs(x64).sum(axis=1, keepdims=True)
        assert np.all(np.abs(y[:, :n] - exact) <= bound), (name, m, k, n)
        if target.depth == "table":
            np.testing.assert_array_equal(y[:, :n], emulate(x[:, :k], wb), err_msg=f"{name} {m}x{k}x{n}")
        assert np.all(y[:, n:] == SENTINEL), (name, m, k, n)


def test_portable_path_compiles_for_cortex_m4(tmp_path):
    cc = "arm-none-eabi-gcc"
    if not shutil.which(cc):
        pytest.skip(f"{cc} not installed (.ci/run installs it)")
    src = tmp_path / "m4.c"
    src.write_text('#include "bcnn_bgemm.h"\n'
                   'typedef char path_is_portable[sizeof(BCNN_BGEMM_PATH) == sizeof("portable") ? 1 : -1];\n'
                   "static float scratch[BCNN_BGEMM_SCRATCH_FLOATS(1, 784)];\n"
                   "void layer(const float *x, const uint8_t *w, float *y)\n"
                   "{ bcnn_bgemm(1, 784, 256, x, 784, w, y, 256, scratch); }\n")
    for fpu in ((), ("-mfloat-abi=hard", "-mfpu=fpv4-sp-d16")):
        proc = subprocess.run([cc, "-mcpu=cortex-m4", "-mthumb", *STRICT, "-Os", *fpu, f"-I{CSRC}", "-c",
                               str(src), "-o", str(tmp_path / "m4.o")], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
