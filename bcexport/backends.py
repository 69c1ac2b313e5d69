"""The back ends `bcexport verify` checks against the NumPy reference: one table (paper §9).

Each entry says which run-directory file it runs (None: the training code itself), what it is fed
("x": the preprocessed float32 input [N, *input_shape]; "pixels": raw uint8 images, preprocessing
inside the model), how to get its logits, and how its file stores the binary weights (checked by
`bcexport.stored_weights`). A back end whose file exists is always verified; a
`required` one, or one that export.json lists, must exist. Adding a back end is one entry here.
"""
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bctrain import runfiles
from bcexport import ExportError

FEEDS = ("x", "pixels")


@dataclass(frozen=True)
class Backend:
    name: str
    file: str | None        # run-directory file it runs; None for the training code path
    feed: str               # "x" | "pixels"
    logits: Callable        # (path, dep, inputs, batch, run_dir) -> float logits [N, n_classes]
    required: bool = True   # must exist after `bcexport onnx`
    weights: str | None = None  # how its file stores the binary weights: "float" (exact ±1) | "bits"


def batched(fn, x, batch) -> np.ndarray:
    """fn applied to consecutive slices of `batch` rows of x, concatenated."""
    return np.concatenate([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def tf_net_logits(path, dep, x, batch, run_dir) -> np.ndarray:
    """The training code path: bctrain.models.Net on the latent best.npz weights, binary eval."""
    import tensorflow as tf  # only this back end needs TensorFlow

    from bctrain.models import Net
    from bcexport.rundir import load_best
    net = Net(dep.cfg, seed=dep.cfg.seed)
    net.load_weights_dict(load_best(run_dir, dep.cfg))
    return batched(lambda xb: net(tf.constant(xb), training=False, eval_mode="binary").numpy(), x, batch)


def onnx_logits(path, dep, feed, batch, run_dir) -> np.ndarray:
    """onnxruntime on an ONNX file (CPU)."""
    from bcexport.onnx_export import session
    sess = session(path)
    name = sess.get_inputs()[0].name
    return batched(lambda xb: sess.run(None, {name: xb})[0], feed, batch)


BACKENDS = (
    Backend("tf_net", None, "x", tf_net_logits),
    Backend("onnx", runfiles.MODEL_ONNX, "x", onnx_logits, weights="float"),
    Backend("onnx_packed", runfiles.MODEL_PACKED_ONNX, "x", onnx_logits, weights="bits"),
    Backend("onnx_raw", runfiles.MODEL_RAW_ONNX, "pixels", onnx_logits, required=False, weights="float"),
)


def present(run_dir: str, exported=(), backends=BACKENDS) -> list:
    """[(backend, path or None)] of the back ends to verify in `run_dir`: those whose file exists.
    A missing file that is required, or listed in `exported` (export.json), is an ExportError."""
    out = []
    for b in backends:
        path = os.path.join(run_dir, b.file) if b.file else None
        if path and not os.path.isfile(path):
            if b.required or b.file in exported:
                raise ExportError(f"{run_dir}: no {b.file}; run `bcexport onnx {run_dir}` first")
            continue
        out.append((b, path))
    return out
