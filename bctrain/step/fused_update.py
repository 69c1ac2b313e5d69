"""The fused Adam update: a TensorFlow CPU op built from bctrain/csrc on first use (docs/BENCHMARKS.md).

XLA's CPU back end compiles bctrain.paper.optim's Adam step into three passes over memory (new m, new v,
then w), 40 bytes per weight moved where the update needs 28; the update of the `mnist` net's 10 M
latent weights is memory-bound, so a one-pass kernel (csrc/bc_adam_kernel.c, wrapped as the op
`BcAdamUpdate` by csrc/bc_adam_op.cc) takes about half the time, with the same float32 arithmetic
(bit-identical to XLA's on a CPU with FMA; tests/test_fused_update.py).

`load()` compiles the two files against the installed TensorFlow (its headers and
`tf.sysconfig` flags; a C and a C++ compiler are needed; a few seconds) into a directory of the
Python environment (`cache_dir`; the venv's share/bcnn/ops) keyed by the sources, the TensorFlow version and the
flags, and loads it; `make venv` builds it ahead. Where that is impossible (no compiler, another
operating system) `load()` returns None and `reason()` says why: the XLA update is used instead.
There is no GPU kernel: on a GPU, XLA fuses the update itself.

`apply` runs the update of an Optimizer with it. Whether a step uses it is the step plan's choice
(bctrain.step.plan).

    python -m bctrain.step.fused_update      build (if needed) and print the library's path and code path
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import tensorflow as tf

SRC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc")
SOURCES = ("bc_adam_kernel.h", "bc_adam_kernel.c", "bc_adam_op.cc")
C_FLAGS = ["-O3", "-fPIC", "-std=c99", "-fno-math-errno", "-ffp-contract=off"]
CXX_FLAGS = ["-O2", "-fPIC", "-shared", "-Wno-deprecated-declarations"]

_state = {}


def cache_dir() -> str:
    """$BCNN_OPS_DIR, else <the Python environment>/share/bcnn/ops if writable, else ~/.cache/bcnn/ops."""
    if os.environ.get("BCNN_OPS_DIR"):
        return os.path.expanduser(os.environ["BCNN_OPS_DIR"])
    beside = os.path.join(sys.prefix, "share", "bcnn", "ops")
    existing = beside
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if os.access(existing, os.W_OK):
        return beside
    return os.path.join(os.path.expanduser("~"), ".cache", "bcnn", "ops")


def _key() -> str:
    h = hashlib.sha256()
    for name in SOURCES:
        with open(os.path.join(SRC_DIR, name), "rb") as f:
            h.update(name.encode() + b"\0" + f.read())
    flags = tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags() + C_FLAGS + CXX_FLAGS
    h.update(("\0".join([tf.__version__, sys.platform] + flags)).encode())
    return h.hexdigest()[:16]


def library_path() -> str:
    return os.path.join(cache_dir(), _key(), "bc_adam.so")


def _run(cmd, cwd):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        lines = [ln for ln in (done.stderr or done.stdout).splitlines() if "error" in ln] or ["no output"]
        raise RuntimeError(f"{os.path.basename(cmd[0])} failed: {lines[0].strip()}")


def build(path: str):
    """Compile the op into `path` (written to a temporary file in the same directory, then renamed)."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError(f"built on Linux only (this is {sys.platform})")
    cc, cxx = os.environ.get("CC", "cc"), os.environ.get("CXX", "c++")
    for tool in (cc, cxx):
        if shutil.which(tool) is None:
            raise RuntimeError(f"no compiler {tool!r} on PATH")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tempfile.TemporaryDirectory(dir=os.path.dirname(path)) as tmp:
        obj = os.path.join(tmp, "bc_adam_kernel.o")
        _run([cc, *C_FLAGS, "-c", os.path.join(SRC_DIR, "bc_adam_kernel.c"), "-o", obj], tmp)
        lib = os.path.join(tmp, "bc_adam.so")
        _run([cxx, *CXX_FLAGS, *tf.sysconfig.get_compile_flags(), "-I" + SRC_DIR,
              os.path.join(SRC_DIR, "bc_adam_op.cc"), obj, "-o", lib, *tf.sysconfig.get_link_flags()], tmp)
        os.replace(lib, path)


def load():
    """The loaded op module (with `.bc_adam_update`), or None if it cannot be had (see `reason`)."""
    if "module" not in _state:
        _state["module"], _state["reason"] = None, ""
        try:
            path = library_path()
            if not os.path.isfile(path):
                build(path)
            _state["module"] = tf.load_op_library(path)
        except (OSError, RuntimeError, tf.errors.OpError) as e:
            _state["reason"] = f"fused update unavailable ({e}); using the XLA update"
    return _state["module"]


def reason() -> str:
    """Why `load()` returned None ("" if it did not)."""
    load()
    return _state["reason"]


def failure() -> str:
    """Why an attempt to load failed ("" if none was made or it succeeded); never builds."""
    return _state.get("reason", "")


def apply(opt, grads, divisors=None, cache=None):
    """The update of `opt` (a bctrain.paper.optim.Optimizer, Adam, no loss scaling) by the fused op:
    the same float32 arithmetic as `opt.apply(grads, divisors)`, one pass over memory per parameter.
    With a `cache` (bctrain.step.caches), the op also writes the cached layers' next product weights."""
    if opt.kind != "adam" or opt.loss_scale is not None:
        raise ValueError("the fused update is Adam without loss scaling")
    op = load()
    if op is None:
        raise RuntimeError(reason())
    grads = list(grads)
    divisors = [1.0] * len(grads) if divisors is None else [float(d) for d in divisors]
    if not len(grads) == len(divisors) == len(opt.params):
        raise ValueError(f"{len(grads)} gradients and {len(divisors)} divisors for {len(opt.params)} parameters")
    opt.iterations.assign_add(1)
    size = opt.step_size()
    consts = dict(beta1=opt.beta1, one_minus_beta1=1.0 - opt.beta1, beta2=opt.beta2,
                  one_minus_beta2=1.0 - opt.beta2, eps=opt.eps)
    for p, g, d in zip(opt.params, grads, divisors):
        if g is None:
            raise ValueError(f"parameter {p.w.name}: no gradient (not used by the loss?)")
        g = tf.convert_to_tensor(g)
        target = None if cache is None or p.layer is None else cache.get(p.layer)
        wb = {"wb": []} if target is None else {"wb": [target.handle], "wb_value": cache.value(p.layer)}
        if g.dtype not in (tf.float32, tf.bfloat16):
            g, d = tf.cast(g, tf.float32) / d, 1.0
        op.bc_adam_update(p.w.handle, p.m.handle, p.v.handle, g, tf.cast(p.lr_scale * size, tf.float32),
                          h=p.h if p.binary else 0.0, g_div=d, **wb, **consts)


def main():
    module = load()
    if module is None:
        print(reason(), file=sys.stderr)
        return 1
    import ctypes
    path = ctypes.CDLL(library_path()).bc_adam_path
    path.restype = ctypes.c_char_p
    print(f"{library_path()} ({path().decode()} code path)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
