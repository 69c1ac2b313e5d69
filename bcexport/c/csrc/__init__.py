"""Hand-written C sources of the generated inference code (runtime kernels, templates), and the
compiler flags that select each path of the binary product kernel (bcnn_bgemm.h, paper §9)."""
from dataclasses import dataclass
from pathlib import Path

CSRC = Path(__file__).resolve().parent


@dataclass(frozen=True)
class KernelPath:
    flags: tuple   # gcc/clang flags that make bcnn_bgemm.h compile this path
    cpu: tuple     # CPU features (/proc/cpuinfo names) needed to run it


# bcnn_bgemm_path() reports the key. NEON is on by default in AArch64 compilers.
PATHS = {
    "portable": KernelPath(("-DBCNN_PORTABLE",), ()),
    "avx2": KernelPath(("-mavx2", "-mfma"), ("avx2", "fma")),
    "avx512": KernelPath(("-mavx512f", "-mavx512bw", "-mavx512vl"), ("avx512f", "avx512bw", "avx512vl")),
    "neon": KernelPath((), ("asimd",)),
}


def cpu_features() -> set:
    """This CPU's feature names from /proc/cpuinfo (x86 `flags`, AArch64 `Features`); empty if unknown."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return set()
    return next((set(line.split(":", 1)[1].split()) for line in lines
                 if line.split(":", 1)[0].strip() in ("flags", "Features")), set())
