"""Reading a finished run directory for export (docs/DESIGN.md "Run directory"; paper §9).

Export only reads what training wrote (`config.json`, `best.npz`, `preprocess.npz`, `metrics.json`)
and adds its own files next to them. Problems a user can fix are `ExportError`s with one line naming
the file and what was expected.
"""
import json
import os
import zipfile

import numpy as np

from bccommon import runfiles
from bctrain.paper.arch import WEIGHT_KEYS, layer_specs
from bctrain.config import Config, load_config
from bctrain.data.preprocess import KINDS
from bcexport import ExportError
from bccommon import digests



def require_finished(run_dir: str) -> Config:
    """The Config of a finished run (config.json, metrics.json and best.npz present)."""
    cfg = load_config(run_dir)
    for name in (runfiles.METRICS_JSON, runfiles.BEST_NPZ):
        if not os.path.isfile(os.path.join(run_dir, name)):
            raise ExportError(f"{run_dir}: unfinished run (no {name}); train it to the end first")
    return cfg


def read_json_object(path: str, what: str) -> dict:
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ExportError(f"{path}: unreadable {what} ({exc})") from None
    if not isinstance(data, dict):
        raise ExportError(f"{path}: expected a JSON object")
    return data


def read_metrics(run_dir: str) -> dict:
    return read_json_object(os.path.join(run_dir, runfiles.METRICS_JSON), "metrics")


def read_export(run_dir: str) -> dict:
    """export.json, written last by `bcexport onnx` (so its presence means a complete export)."""
    path = os.path.join(run_dir, runfiles.EXPORT_JSON)
    if not os.path.isfile(path):
        raise ExportError(f"{run_dir}: no {runfiles.EXPORT_JSON}; run `bcexport onnx {run_dir}` first")
    exported = read_json_object(path, runfiles.EXPORT_JSON)
    if not isinstance(exported.get("files"), dict):
        raise ExportError(f"{path}: expected an object with 'files'")
    if not digests.is_record(exported.get("sha256")):
        raise ExportError(f"{path}: no valid 'sha256' record of the exported files; run "
                          f"`bcexport onnx {run_dir}` again")
    return exported


def _load_npz(path: str) -> dict:
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ExportError(f"{path}: unreadable npz ({exc})") from None


def load_best(run_dir: str, cfg: Config) -> dict:
    """best.npz as float32 arrays, checked against the shapes `layer_specs(cfg)` implies."""
    path = os.path.join(run_dir, runfiles.BEST_NPZ)
    weights = _load_npz(path)
    for i, s in enumerate(layer_specs(cfg)):
        w_shape = (s.kernel, s.kernel, s.n_in, s.n_out) if s.kind == "conv" else (s.n_in, s.n_out)
        for key in WEIGHT_KEYS:
            name = f"{i}/{key}"
            if name not in weights:
                raise ExportError(f"{path}: no weight {name!r} (block {i} of {cfg.preset})")
            expected = w_shape if key == "w" else (s.n_out,)
            if weights[name].shape != expected:
                raise ExportError(f"{path}: {name} has shape {weights[name].shape}, expected {expected}")
            if not np.all(np.isfinite(weights[name])):
                raise ExportError(f"{path}: {name} holds non-finite values")
        if not np.all(weights[f"{i}/std"] > 0):
            raise ExportError(f"{path}: {i}/std must be positive")
    return {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}


def load_preprocess(run_dir: str, n_inputs: int) -> tuple:
    """(kind, params) of preprocess.npz: kind one of bctrain.data.preprocess.KINDS; params
    {name: float32 array}, the kind's fitted parameters, checked against its `param_shapes`.
    Other keys are ignored: earlier releases stored a `mean` array beside every kind (zeros
    unless kind "mean", whose parameter it is)."""
    path = os.path.join(run_dir, runfiles.PREPROCESS_NPZ)
    data = _load_npz(path)
    if "kind" not in data:
        raise ExportError(f"{path}: expected key 'kind'")
    kind = str(data["kind"])
    if kind not in KINDS:
        raise ExportError(f"{path}: kind {kind!r}, expected one of {', '.join(KINDS)}")
    params = {}
    for name, shape in KINDS[kind].param_shapes(n_inputs).items():
        if name not in data or data[name].shape != shape:
            got = list(data[name].shape) if name in data else "missing"
            raise ExportError(f"{path}: {name} is {got}, expected {list(shape)} for kind {kind!r}")
        params[name] = np.asarray(data[name], dtype=np.float32)
        if not np.all(np.isfinite(params[name])):
            raise ExportError(f"{path}: {name} holds non-finite values")
    return kind, params
