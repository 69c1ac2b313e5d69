"""Reading a finished run directory for export (docs/DESIGN.md "Run directory"; paper §9).

Export only reads what training wrote (`config.json`, `best.npz`, `preprocess.npz`, `metrics.json`,
`data.json`) and adds its own files next to them; `deployed_weights` is the one reader of the
weights every back end deploys (best.npz with the BatchNorm statistics export.json records,
bcexport.bn_restat). Problems a user can fix are `ExportError`s with one line naming
the file and what was expected.
"""
import json
import os
import zipfile

import numpy as np

from bccommon import runfiles
from bctrain.paper.arch import WEIGHT_KEYS, layer_specs
from bctrain.config import Config, load_config
from bctrain.data import DATASETS, load_splits
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


def run_splits(run_dir: str, data_dir=None):
    """The Splits (bctrain.data) of the dataset the run used (metrics.json), from `data_dir`, else the
    directory metrics.json records, else the download cache; never the bundled sample in its place."""
    metrics = read_metrics(run_dir)
    dataset = metrics.get("dataset")
    if dataset not in DATASETS:
        raise ExportError(f"{run_dir}/metrics.json: dataset {dataset!r}, expected one of {', '.join(DATASETS)}")
    if not isinstance(metrics.get("data_dir"), (str, type(None))):
        raise ExportError(f"{run_dir}/metrics.json: data_dir {metrics['data_dir']!r}, expected a path or null")
    return load_splits(dataset, data_dir or metrics.get("data_dir"), allow_sample=False)


def read_data_json(run_dir: str) -> dict | None:
    """data.json (the identity of the training data), or None for a run directory without one."""
    path = os.path.join(run_dir, runfiles.DATA_JSON)
    return read_json_object(path, "data record") if os.path.isfile(path) else None


def bn_statistics_record(run_dir: str) -> dict | None:
    """export.json's record of re-estimated BatchNorm statistics ({"file", "images", "sha256"}), or
    None: no export yet, or one that deploys the trained running statistics."""
    if not os.path.isfile(os.path.join(run_dir, runfiles.EXPORT_JSON)):
        return None
    record = read_export(run_dir).get("bn_statistics")
    if record is None:
        return None
    if (not isinstance(record, dict) or record.get("file") != runfiles.BN_STATS_NPZ
            or not digests.is_record({record["file"]: record.get("sha256")})
            or not isinstance(record.get("images"), int) or record["images"] < 1):
        raise ExportError(f"{run_dir}/{runfiles.EXPORT_JSON}: bn_statistics {record!r}, expected "
                          f"{{'file': '{runfiles.BN_STATS_NPZ}', 'images': N >= 1, 'sha256': hex}}; run "
                          f"`bcexport onnx {run_dir}` again")
    return record


def deployed_weights(run_dir: str, cfg: Config) -> dict:
    """The weights every back end deploys: best.npz, with each block's BatchNorm mean and std replaced
    by the re-estimated ones (bcexport.bn_restat) when export.json records them. The statistics file
    must be there and have the recorded SHA-256 (an ExportError of one line otherwise)."""
    weights = load_best(run_dir, cfg)
    record = bn_statistics_record(run_dir)
    if record is None:
        return weights
    path = os.path.join(run_dir, runfiles.BN_STATS_NPZ)
    again = f"run `bcexport onnx {run_dir}` again"
    if not os.path.isfile(path):
        raise ExportError(f"{path}: missing, but {runfiles.EXPORT_JSON} records BatchNorm statistics "
                          f"re-estimated on {record['images']} training images; {again}")
    got = digests.sha256_file(path)
    if got != record["sha256"]:
        raise ExportError(f"{path}: changed since export (SHA-256 {got[:12]}..., exported "
                          f"{record['sha256'][:12]}...); {again}")
    stats = _load_npz(path)
    for i in range(len(layer_specs(cfg))):
        for key in ("mean", "std"):
            name = f"{i}/{key}"
            if name not in stats or stats[name].shape != weights[name].shape:
                raise ExportError(f"{path}: {name} missing or not of shape {weights[name].shape}; {again}")
            if not np.all(np.isfinite(stats[name])) or (key == "std" and not np.all(stats[name] > 0)):
                raise ExportError(f"{path}: {name} holds non-finite{' or non-positive' * (key == 'std')} values")
            weights[name] = np.asarray(stats[name], dtype=np.float32)
    return weights


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
