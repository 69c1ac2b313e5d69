"""Compiling the generated C: strict checks, a native shared library for Python, target sizes (§9).

`CModel` loads `RUN_DIR/c/` compiled with the native compiler (`-O2 -march=native`) into a
temporary directory and calls its entry points through ctypes (which releases the GIL, so threads
with one scratch each run in parallel). `mcu_sizes` compiles the model for a Cortex-M4
(`arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb -Os`) and reads flash and RAM from `arm-none-eabi-size`
and `-fstack-usage`. Compilers are run with argument lists, never through a shell. A missing
compiler or a failed compilation is an ExportError (one line: the first error line, or the signal
that killed the compiler, or its exit status).
"""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import tempfile

import numpy as np

from bcexport import ExportError

STRICT = ("-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic")
NATIVE = ("-O2", "-march=native")
MCU_CC, MCU_SIZE = "arm-none-eabi-gcc", "arm-none-eabi-size"
MCU_FLAGS = ("-mcpu=cortex-m4", "-mthumb", "-Os")


def find_cc(candidates=("cc", "gcc", "clang")) -> str | None:
    """The first C compiler on PATH (the CC environment variable first, if set)."""
    for name in ([os.environ["CC"]] if os.environ.get("CC") else []) + list(candidates):
        path = shutil.which(name)
        if path:
            return path
    return None


def failure(name: str, returncode: int, stderr: str) -> str:
    """Why a tool failed, in a few words: killed by a signal, its first error line, or its status."""
    if returncode < 0:
        try:
            return f"{name} killed by signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"{name} killed by signal {-returncode}"
    lines = [ln for ln in stderr.splitlines() if "error" in ln] or [ln for ln in stderr.splitlines() if ln.strip()]
    if lines:
        return f"{name} failed: {lines[0].strip()}"
    return f"{name} exited with status {returncode} and no output"


def run_cc(cc: str, args, what: str):
    """Run a compiler; a failure is an ExportError with the compiler's first error line (or the
    signal that killed it, or its exit status)."""
    proc = subprocess.run([cc, *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ExportError(f"{what}: {failure(os.path.basename(cc), proc.returncode, proc.stderr)}")
    return proc


def build_shared(c_dir: str, out_dir: str, cc: str | None = None, flags=NATIVE, source="bcnn_model.c") -> str:
    """Compile `c_dir/source` into a shared library in `out_dir`; returns its path."""
    cc = cc or find_cc()
    if not cc:
        raise ExportError(f"{c_dir}: no C compiler (cc, gcc or clang) on PATH to build the C model")
    out = os.path.join(out_dir, "libbcnn_model.so")
    run_cc(cc, [*STRICT, *flags, "-shared", "-fPIC", f"-I{c_dir}", os.path.join(c_dir, source), "-o", out, "-lm"],
           os.path.join(c_dir, source))
    return out


class CModel:
    """The generated model of `c_dir` as a Python object (logits as float32 NumPy arrays)."""

    def __init__(self, c_dir: str, facts: dict, cc: str | None = None, flags=NATIVE):
        cc = cc or find_cc()
        self._tmp = tempfile.TemporaryDirectory(prefix="bcnn-c-")
        self.library = build_shared(c_dir, self._tmp.name, cc, flags)
        self.lib = ctypes.CDLL(self.library)
        self.build = f"{os.path.basename(cc)} {' '.join(flags)}"
        p, f32, u8 = facts["prefix"], ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_uint8)
        self.input_size = int(np.prod(facts["input_shape"]))
        self.n_classes = facts["n_classes"]
        self._fns = {}
        for feed, (name, ptr) in {"x": (f"{p}_predict", f32), "pixels": (f"{p}_predict_pixels", u8)}.items():
            if feed in facts["entry_points"]:
                fn = getattr(self.lib, name)
                fn.argtypes = [ptr, ctypes.c_int, f32, f32, ctypes.c_size_t]
                fn.restype = ctypes.c_int
                self._fns[feed] = (fn, ptr)
        self.hidden = facts.get("hidden")   # BinaryNet: the entry points that also give the hidden bits
        self._hidden_fns = {}
        for feed, name in (self.hidden or {}).get("entry_points", {}).items():
            fn = getattr(self.lib, name)
            fn.argtypes = [self._fns[feed][1], ctypes.c_int, f32, u8, f32, ctypes.c_size_t]
            fn.restype = ctypes.c_int
            self._hidden_fns[feed] = fn
        for name, restype in ((f"{p}_kernel_path", ctypes.c_char_p), (f"{p}_scratch_bytes", ctypes.c_size_t)):
            getattr(self.lib, name).restype = restype
        self.kernel_path = getattr(self.lib, f"{p}_kernel_path")().decode()
        self.scratch_bytes = getattr(self.lib, f"{p}_scratch_bytes")()

    @property
    def feeds(self) -> tuple:
        """The inputs it takes: "x" (preprocessed float32) and, if generated, "pixels" (uint8)."""
        return tuple(self._fns)

    def new_scratch(self) -> np.ndarray:
        """A scratch buffer for one thread (64-byte aligned)."""
        raw = np.empty(self.scratch_bytes // 4 + 16, np.float32)
        skip = (-raw.ctypes.data % 64) // 4
        return raw[skip:skip + self.scratch_bytes // 4]

    def predict(self, inputs, feed: str = "x", scratch=None) -> np.ndarray:
        """Logits [N, n_classes] of inputs [N, ...] (float32 for feed "x", uint8 pixels for "pixels")."""
        fn, ptr = self._fns[feed]
        dtype = np.float32 if feed == "x" else np.uint8
        data = np.ascontiguousarray(inputs, dtype=dtype).reshape(len(inputs), self.input_size)
        logits = np.empty((len(data), self.n_classes), np.float32)
        scratch = self.new_scratch() if scratch is None else scratch
        f32 = ctypes.POINTER(ctypes.c_float)
        err = fn(data.ctypes.data_as(ptr), len(data), logits.ctypes.data_as(f32), scratch.ctypes.data_as(f32),
                 scratch.nbytes)
        if err:
            raise ExportError(f"C model returned error {err} on {len(data)} samples")
        return logits

    def predict_hidden(self, inputs, feed: str = "x", scratch=None) -> tuple:
        """BinaryNet: (logits [N, n_classes], [±1 int8 [N, *output shape] of each hidden block])."""
        from bcexport.c.bitrows import unpack_rows
        fn, ptr = self._hidden_fns[feed], self._fns[feed][1]
        data = np.ascontiguousarray(inputs, dtype=np.float32 if feed == "x" else np.uint8)
        data = data.reshape(len(inputs), self.input_size)
        logits = np.empty((len(data), self.n_classes), np.float32)
        bits = np.zeros((len(data), self.hidden["bytes"]), np.uint8)
        scratch = self.new_scratch() if scratch is None else scratch
        f32 = ctypes.POINTER(ctypes.c_float)
        err = fn(data.ctypes.data_as(ptr), len(data), logits.ctypes.data_as(f32),
                 bits.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)), scratch.ctypes.data_as(f32), scratch.nbytes)
        if err:
            raise ExportError(f"C model returned error {err} on {len(data)} samples")
        acts, at = [], 0
        for shape in self.hidden["shapes"]:
            values = int(np.prod(shape))
            acts.append(unpack_rows(bits[:, at:at + -(-values // 8)], values).reshape(len(data), *shape))
            at += -(-values // 8)
        return logits, acts


def size_of(obj: str, tool: str = MCU_SIZE) -> dict:
    """text, data and bss bytes of an object file (Berkeley format of `size`, arm-none-eabi-size)."""
    out = subprocess.run([shutil.which(tool), obj], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def mcu_sizes(c_dir: str, prefix: str, tile: int = 1) -> dict:
    """Flash and RAM of the model on a Cortex-M4 with `tile` samples per tile (module docstring).

    flash = text (code and the const weights) + data; RAM = data + bss + the caller's scratch
    (measured as the bss of `float scratch[PREFIX_SCRATCH_FLOATS]`) + the stack, bounded by the sum
    of every function's frame (no recursion, no dynamic frames). Without the toolchain: {"skipped": why}.
    """
    if not (shutil.which(MCU_CC) and shutil.which(MCU_SIZE)):
        return {"skipped": f"{MCU_CC} or {MCU_SIZE} not on PATH"}
    with tempfile.TemporaryDirectory(prefix="bcnn-mcu-") as tmp:
        define = f"-D{prefix.upper()}_TILE={tile}"
        flags = [*STRICT, *MCU_FLAGS, define, f"-I{c_dir}", "-c"]
        model_o, probe_o = os.path.join(tmp, "model.o"), os.path.join(tmp, "probe.o")
        run_cc(MCU_CC, [*flags, "-fstack-usage", os.path.join(c_dir, "bcnn_model.c"), "-o", model_o],
               "cortex-m4 build")
        probe_c = os.path.join(tmp, "probe.c")
        with open(probe_c, "w") as fh:
            fh.write(f'#include "bcnn_model.h"\nfloat scratch[{prefix.upper()}_SCRATCH_FLOATS] = {{0}};\n')
        run_cc(MCU_CC, [*flags, probe_c, "-o", probe_o], "cortex-m4 scratch probe")
        frames = []
        with open(os.path.join(tmp, "model.su")) as fh:
            for line in fh:
                size, kind = line.split("\t")[1:3]
                if kind.strip() != "static":
                    raise ExportError(f"cortex-m4 build: stack frame of {line.split()[0]} is {kind.strip()}")
                frames.append(int(size))
        model, scratch = size_of(model_o), size_of(probe_o)["bss"]
    stack = sum(frames)
    return {"target": f"{MCU_CC} {' '.join(MCU_FLAGS)} {define}", **model,
            "scratch": scratch, "stack_bound": stack,
            "flash": model["text"] + model["data"],
            "ram": model["data"] + model["bss"] + scratch + stack}


def compile_check(c_dir: str, files, compilers) -> list:
    """Compile every .c of `files` with the strict flags under each available compiler (-c, -O2);
    returns the compilers used (a missing one is skipped)."""
    used = []
    for name in compilers:
        cc = shutil.which(name)
        if not cc:
            continue
        extra = list(MCU_FLAGS) if name == MCU_CC else ["-O2"]
        with tempfile.TemporaryDirectory(prefix="bcnn-cc-") as tmp:
            for f in files:
                if f.endswith(".c"):
                    run_cc(cc, [*STRICT, *extra, f"-I{c_dir}", "-c", os.path.join(c_dir, f),
                                "-o", os.path.join(tmp, re.sub(r"\W", "_", f) + ".o")], f"{f} ({name})")
        used.append(name)
    return used
