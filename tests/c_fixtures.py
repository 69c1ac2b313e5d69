"""Tiny networks with awkward sizes, their generated C, and toolchain checks for the C tests (§9).

Widths are no multiple of 4, 16, 32 or 64; the conv input is 7x5x3, so pooling drops an odd row and
column and every border pixel is padded. Tests that need a tool skip with a one-line reason when it
is missing (`.ci/run` installs the toolchains).
"""
import os
import shutil

import numpy as np
import pytest

from bctrain.config import with_overrides
from bctrain.data.preprocess import KINDS
from bcexport.pack import load_deployment
from export_fixtures import make_run_dir, synthetic_pixels


def awkward_mlp_config():
    return with_overrides("mnist", hidden=(37, 70), epochs=1)


def awkward_cnn_config():
    return with_overrides("mnist", input_shape=(7, 5, 3), conv=(5, 6), pool=(1, 0), hidden=(19,), epochs=1)


def require(*tools):
    """The paths of `tools`, or skip the test naming the first missing one."""
    paths = [shutil.which(t) for t in tools]
    for tool, path in zip(tools, paths):
        if not path:
            pytest.skip(f"{tool} not on PATH (.ci/run installs it)")
    return paths


def write_sources(c_dir, sources):
    os.makedirs(c_dir, exist_ok=True)
    for name, text in sources.files.items():
        with open(os.path.join(c_dir, name), "w") as fh:
            fh.write(text)
    return str(c_dir)


def awkward_run(tmp_path, kind, seed=0):
    """(run_dir, deployment) of the awkward MLP or CNN."""
    cfg = awkward_mlp_config() if kind == "mlp" else awkward_cnn_config()
    run = make_run_dir(tmp_path / f"{kind}-run", cfg, seed=seed)
    return run, load_deployment(run)


def inputs(dep, n, seed=0):
    """(pixels uint8 [n, *input_shape], preprocessed float32 x [n, *input_shape]) of random images."""
    pixels = synthetic_pixels(dep.input_shape, n, seed)
    return pixels, KINDS[dep.preprocess].apply(pixels, dep.params).reshape((n,) + dep.input_shape)


def float32_bound(dep, x, ref):
    """A bound for float32 logits: 16 x the deviation of NumPy's float32 pass from the float64
    reference (bcexport.verify's rule), at least 16 x 4 u, relative to max(1, |logits|)."""
    from bcexport import reference
    scale = np.maximum(1.0, np.abs(ref).max(axis=1, keepdims=True))
    dev = (np.abs(reference.forward(dep, x, dtype=np.float32) - ref) / scale).max()
    return 16 * max(dev, 4 * 2.0 ** -24) * scale
