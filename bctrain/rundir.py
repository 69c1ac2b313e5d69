"""The run directory: config check, atomic writes, the JSON-lines history and the summary.

Everything a run writes goes through a temporary file and a rename, so an interrupted run never
leaves a half-written file; a directory that holds a different run is refused, never overwritten.
"""
import dataclasses
import io
import json
import os
import tempfile

import numpy as np

from bctrain.config import Config, ConfigError, load_config


_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: str, data: bytes):
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str, text: str):
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str, obj):
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def atomic_save_npz(path: str, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _differences(a: Config, b: Config) -> str:
    diffs = [f"{f.name} {getattr(a, f.name)!r} != {getattr(b, f.name)!r}"
             for f in dataclasses.fields(Config) if getattr(a, f.name) != getattr(b, f.name)]
    return ", ".join(diffs)


def prepare(run_dir: str, cfg: Config, resume: bool):
    """Create `run_dir` for `cfg`, or check that it holds the same config when resuming."""
    config_path = os.path.join(run_dir, "config.json")
    if os.path.isfile(config_path):
        stored = load_config(run_dir)
        if stored != cfg:
            raise ConfigError(f"{run_dir} holds a different run ({_differences(stored, cfg)}); "
                              "choose another --run-dir (RUN_DIR=...) or the same settings")
        if not resume:
            raise ConfigError(f"{run_dir} already holds this run; pass --resume (RESUME=1) to continue "
                              "it or choose another --run-dir (RUN_DIR=...)")
        return
    if resume:
        raise ConfigError(f"{run_dir}: nothing to resume (no config.json)")
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ConfigError(f"{run_dir} is not empty and is not a run directory; choose another --run-dir")
    os.makedirs(run_dir, exist_ok=True)
    atomic_write_text(config_path, cfg.to_json())


def history_path(run_dir: str) -> str:
    return os.path.join(run_dir, "history.jsonl")


def read_history(run_dir: str) -> list:
    path = history_path(run_dir)
    if not os.path.isfile(path):
        return []
    with open(path) as fh:
        return [json.loads(line) for line in fh if line.strip()]


def write_history(run_dir: str, records: list):
    atomic_write_text(history_path(run_dir), "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
