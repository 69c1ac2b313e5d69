"""The back ends `bcexport verify` checks against the NumPy reference: one table (paper §9).

Each entry says which run-directory file it runs (None: the training code itself), what it is fed
("x": the preprocessed float32 input [N, *input_shape]; "pixels": raw uint8 images, preprocessing
inside the model), how to get its logits, and how to read the binary weights its file stores: a
reader of `bcexport.stored_weights` that compares them with the trained signs exactly, without
trusting any logit (None only for the training code path, which runs best.npz itself). A back end
whose file exists is always verified (unless its `available` test says the file lacks it, as a C
model without a pixel entry point); a `required` one, or one that export.json or c/export.json
lists, must exist. `details` adds facts to its verify.json entry (the C kernel path). With binary
activations (BinaryNet) a back end must also give its hidden blocks' ±1 outputs (`hidden`,
bcexport.hidden); one without them cannot be verified there. Adding a back end is one entry here.
"""
import functools
import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bccommon import runfiles
from bcexport import ExportError, stored_weights

FEEDS = ("x", "pixels")


@dataclass(frozen=True)
class Backend:
    name: str
    file: str | None        # run-directory file it runs; None for the training code path
    feed: str               # "x" | "pixels"
    logits: Callable        # (path, dep, inputs, batch, run_dir) -> float logits [N, n_classes]
    required: bool = True   # must exist after `bcexport onnx`
    stored: Callable | None = None      # (path, dep) -> stored_weights.Stored: its binary weights, read
    available: Callable | None = None   # (run_dir) -> False: skip it although its file exists
    details: Callable | None = None     # (run_dir) -> dict recorded in verify.json
    hidden: Callable | None = None      # (path, dep, run_dir, batch) -> run: inputs -> (logits, [±1 per hidden block])


def batched(fn, x, batch) -> np.ndarray:
    """fn applied to consecutive slices of `batch` rows of x, concatenated."""
    return np.concatenate([fn(x[i:i + batch]) for i in range(0, len(x), batch)])


def tf_net_logits(path, dep, x, batch, run_dir) -> np.ndarray:
    """The training code path: bctrain.paper.models.Net on the latent weights (`deployed_weights`: best.npz
    with the recorded BatchNorm statistics), binary eval."""
    import tensorflow as tf  # only this back end needs TensorFlow

    from bctrain.paper.models import Net
    from bcexport.rundir import deployed_weights
    net = Net(dep.cfg, seed=dep.cfg.seed)
    net.load_weights_dict(deployed_weights(run_dir, dep.cfg))
    return batched(lambda xb: net(tf.constant(xb), training=False, eval_mode="binary").numpy(), x, batch)


def _batched_outputs(fn, x, batch) -> tuple:
    """(first output, [the others]) of fn (a list of arrays per slice) over slices of x, concatenated."""
    parts = [fn(x[i:i + batch]) for i in range(0, len(x), batch)]
    outs = [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]
    return outs[0], outs[1:]


def tf_net_hidden(path, dep, run_dir, batch):
    """The training code path with its hidden blocks' ±1 outputs (Net's taps), products in float32:
    the deployed arithmetic, whatever precision trained it."""
    import dataclasses

    import tensorflow as tf

    from bctrain.paper.models import Net
    from bcexport.rundir import deployed_weights
    cfg = dataclasses.replace(dep.cfg, precision="float32")
    net = Net(cfg, seed=cfg.seed)
    net.load_weights_dict(deployed_weights(run_dir, cfg))

    def run(xb):
        taps = []
        y = net(tf.constant(xb), training=False, eval_mode="binary", taps=taps)
        return [y.numpy()] + [t.numpy().astype(np.int8) for t in taps]
    return lambda x: _batched_outputs(run, x, batch)


def onnx_hidden(path, dep, run_dir, batch):
    """onnxruntime on an in-memory copy of the ONNX file with its act<i> tensors as outputs."""
    from bcexport.hidden import hidden_blocks, onnx_hidden_model
    from bcexport.onnx.export import session
    sess = session(onnx_hidden_model(stored_weights.load_onnx(path), len(hidden_blocks(dep))))
    name = sess.get_inputs()[0].name

    def run(xb):
        logits, *acts = sess.run(None, {name: xb})
        return [logits] + [a.astype(np.int8) for a in acts]
    return lambda feed: _batched_outputs(run, feed, batch)


def onnx_logits(path, dep, feed, batch, run_dir) -> np.ndarray:
    """onnxruntime on an ONNX file (CPU)."""
    from bcexport.onnx.export import session
    sess = session(path)
    name = sess.get_inputs()[0].name
    return batched(lambda xb: sess.run(None, {name: xb})[0], feed, batch)


@functools.lru_cache(maxsize=2)
def _c_model(c_dir: str, digest: str):
    from bcexport.c.build import CModel
    from bcexport.c.export import read_c_export
    summary = read_c_export(os.path.dirname(c_dir))
    if summary is None:
        raise ExportError(f"{c_dir}: no {runfiles.C_EXPORT_JSON}; run `bcexport c {os.path.dirname(c_dir)}`")
    return CModel(c_dir, summary)


def c_model(run_dir: str):
    """RUN_DIR/c compiled natively (bcexport.c.build.CModel), built once per content of its sources."""
    c_dir = os.path.abspath(os.path.join(run_dir, runfiles.C_DIR))
    digest = hashlib.sha256()
    for name in sorted(os.listdir(c_dir)):
        if name.endswith((".c", ".h")):
            with open(os.path.join(c_dir, name), "rb") as fh:
                digest.update(name.encode() + b"\0" + fh.read())
    return _c_model(c_dir, digest.hexdigest())


def c_logits(path, dep, x, batch, run_dir) -> np.ndarray:
    """The generated C model's float entry point, through ctypes."""
    model = c_model(run_dir)
    return batched(lambda xb: model.predict(xb, "x"), x, batch)


def c_raw_logits(path, dep, pixels, batch, run_dir) -> np.ndarray:
    """The generated C model's pixel entry point (preprocessing in C), through ctypes."""
    model = c_model(run_dir)
    return batched(lambda pb: model.predict(pb, "pixels"), pixels, batch)


def _c_hidden_run(run_dir, feed, batch):
    model = c_model(run_dir)

    def run(xb):
        logits, acts = model.predict_hidden(xb, feed)
        return [logits, *acts]
    return lambda inputs: _batched_outputs(run, inputs, batch)


def c_hidden(path, dep, run_dir, batch):
    """The generated C model's predict_hidden (BinaryNet): logits and every hidden block's bits."""
    return _c_hidden_run(run_dir, "x", batch)


def c_raw_hidden(path, dep, run_dir, batch):
    """As c_hidden, through the pixel entry point (predict_pixels_hidden)."""
    return _c_hidden_run(run_dir, "pixels", batch)


def c_has_pixels(run_dir: str) -> bool:
    from bcexport.c.export import read_c_export
    return "pixels" in (read_c_export(run_dir) or {}).get("entry_points", {})


def c_details(run_dir: str) -> dict:
    model = c_model(run_dir)
    return {"kernel_path": model.kernel_path, "build": model.build}


C_FILE = f"{runfiles.C_DIR}/{runfiles.C_SOURCE}"
BACKENDS = (
    Backend("tf_net", None, "x", tf_net_logits, hidden=tf_net_hidden),
    Backend("onnx", runfiles.MODEL_ONNX, "x", onnx_logits, stored=stored_weights.onnx_float, hidden=onnx_hidden),
    Backend("onnx_packed", runfiles.MODEL_PACKED_ONNX, "x", onnx_logits, stored=stored_weights.onnx_bits,
            hidden=onnx_hidden),
    Backend("onnx_raw", runfiles.MODEL_RAW_ONNX, "pixels", onnx_logits, required=False,
            stored=stored_weights.onnx_float, hidden=onnx_hidden),
    Backend("c", C_FILE, "x", c_logits, required=False, stored=stored_weights.c_bits, details=c_details,
            hidden=c_hidden),
    Backend("c_raw", C_FILE, "pixels", c_raw_logits, required=False, stored=stored_weights.c_bits,
            available=c_has_pixels, details=c_details, hidden=c_raw_hidden),
)


def present(run_dir: str, exported=(), backends=BACKENDS) -> list:
    """[(backend, path or None)] of the back ends to verify in `run_dir`: those whose file exists
    (and that are `available`). A missing file that is required, or listed in `exported` (the files
    of export.json and c/export.json), is an ExportError."""
    out = []
    for b in backends:
        path = os.path.join(run_dir, b.file) if b.file else None
        if path and not os.path.isfile(path):
            if b.required or b.file in exported:
                command = "c" if b.file.startswith(runfiles.C_DIR + "/") else "onnx"
                raise ExportError(f"{run_dir}: no {b.file}; run `bcexport {command} {run_dir}` first")
            continue
        if b.available is None or b.available(run_dir):
            out.append((b, path))
    return out
