"""bcexport/csrc/bcnn_bgemm.h: every kernel path against NumPy float64, through tests/bgemm_driver.c.

Each target (compiler, flags, emulator) builds the driver, which runs all cases in one process;
outputs must be within the bound the header states, |y - exact| <= gamma_d * sum_k |x_k| with
d = ceil(K/4) + 2 (d = K for the one-weight-at-a-time reference), columns n >= N of Y untouched,
and the scratch no larger than BCNN_BGEMM_SCRATCH_FLOATS (the driver checks a guard).
"""
import math
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from bcexport.c_layout import pack_matrix
from bcexport.csrc import CSRC

DRIVER = Path(__file__).with_name("bgemm_driver.c")
STRICT = ("-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic")
QEMU = ("qemu-aarch64", "-L", "/usr/aarch64-linux-gnu")
SENTINEL = np.float32(1234.5)
U = 2.0 ** -24

# (M, K, N, ldx - K, ldy - N): K < 4, K and N off multiples of 4/16/32/64, odd M, M >= 16 with a
# row tail (the batch-wide x86 kernels), K over several table chunks, strided X and Y.
CASES = [(1, 1, 1, 0, 0), (1, 3, 5, 2, 3), (3, 5, 33, 0, 0), (2, 27, 10, 1, 0), (4, 64, 70, 0, 2),
         (1, 130, 47, 3, 1), (5, 36, 16, 0, 0), (1, 784, 2048, 0, 0), (1, 2048, 10, 0, 0),
         (16, 27, 32, 0, 0), (17, 36, 48, 1, 5), (33, 130, 47, 2, 1), (40, 1152, 20, 0, 0),
         (20, 300, 100, 4, 0), (64, 256, 256, 0, 0), (3, 520, 200, 0, 0)]


@dataclass(frozen=True)
class Target:
    compiler: str
    flags: tuple
    path: str                 # what bcnn_bgemm_path() must report
    cpu: tuple = ()           # /proc/cpuinfo flags needed to run natively
    runner: tuple = ()        # emulator prefix
    depth: str = "table"      # "table" (ceil(K/4) + 2) or "reference" (K)


AVX2 = ("-mavx2", "-mfma")
AVX512 = ("-mavx512f", "-mavx512bw", "-mavx512vl")
TARGETS = {
    "reference": Target("gcc", ("-DBGEMM_DRIVER_REF",), "portable", depth="reference"),
    "portable-gcc": Target("gcc", ("-DBCNN_PORTABLE",), "portable"),
    "portable-clang": Target("clang", ("-DBCNN_PORTABLE",), "portable"),
    "avx2-gcc": Target("gcc", AVX2, "avx2", cpu=("avx2", "fma")),
    "avx2-clang": Target("clang", AVX2, "avx2", cpu=("avx2", "fma")),
    "avx512-gcc": Target("gcc", AVX512, "avx512", cpu=("avx512f", "avx512bw", "avx512vl")),
    "avx512-clang": Target("clang", AVX512, "avx512", cpu=("avx512f", "avx512bw", "avx512vl")),
    "aarch64-portable": Target("aarch64-linux-gnu-gcc", ("-DBCNN_PORTABLE",), "portable", runner=QEMU),
}


def cpu_flags() -> set:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in text.splitlines() if line.startswith("flags")), set())


def missing(target: Target):
    """A one-line reason the target cannot be built and run here, or None."""
    for tool in (target.compiler, *target.runner[:1]):
        if not shutil.which(tool):
            return f"{tool} not installed (.ci/run installs it)"
    lacking = set(target.cpu) - cpu_flags()
    if lacking:
        return f"this CPU lacks {' '.join(sorted(lacking))}"
    return None


def build(target: Target, out: Path) -> Path:
    subprocess.run([target.compiler, *STRICT, *target.flags, f"-I{CSRC}", str(DRIVER), "-o", str(out)],
                   check=True, capture_output=True, text=True)
    return out


def make_case(m, k, n, dx, dy):
    rng = np.random.default_rng([m, k, n, dx, dy])
    wb = np.where(rng.random((k, n)) < 0.5, -1.0, 1.0)
    x = np.full((m, k + dx), np.nan, np.float32)    # columns k >= K must never be read
    x[:, :k] = rng.normal(size=(m, k))
    header = np.array([m, k, n, k + dx, n + dy], np.int32)
    return x, wb, header.tobytes() + x.tobytes() + pack_matrix(wb).tobytes()


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
    assert reported.stdout.split()[0] == target.path
    cases, ys = run_cases(exe, target)
    for (m, k, n, dx, dy), (x, wb, _), y in zip(CASES, cases, ys):
        x64 = x[:, :k].astype(np.float64)
        exact = x64 @ wb
        d = k if target.depth == "reference" else math.ceil(k / 4) + 2
        # float64 rounding of the oracle itself: k * 2^-53 * sum |x|
        bound = (gamma(d) + k * 2.0 ** -53) * np.abs(x64).sum(axis=1, keepdims=True)
        assert np.all(np.abs(y[:, :n] - exact) <= bound), (name, m, k, n)
        assert np.all(y[:, n:] == SENTINEL), (name, m, k, n)
