"""The machine a figure was measured on: every speed figure names it (CPU model and cores, or GPU).

TensorFlow-free: `describe` takes the GPU names the caller found (bctrain asks TensorFlow).
"""
import os
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown CPU" where there is none)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "unknown CPU"
    return next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "unknown CPU")


def cpu_flags() -> frozenset:
    """The instruction-set flags of the CPU (/proc/cpuinfo), empty where there is none."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return frozenset()
    return frozenset(next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), ()))


def describe(gpus=()) -> str:
    """'GPU: <names>' if any GPU names are given, else 'CPU: <model>, <n> cores'."""
    if gpus:
        return "GPU: " + ", ".join(gpus)
    return f"CPU: {cpu_model()}, {os.cpu_count()} cores"
