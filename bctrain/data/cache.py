"""Cache of preprocessed arrays, keyed by data, preprocessing and code (arXiv:1511.00363, §6).

GCN + ZCA over 60,000 CIFAR-10 images or GCN + LCN over 630,420 SVHN images takes minutes, so
for kinds marked `cached` (bctrain.data.preprocess.KINDS) the fitted parameters and the float32
arrays [N, D] of the three splits are kept in `$BCNN_CACHE/preprocessed/<dataset>-<kind>-<key>/`
(default `~/.cache/bcnn/...`): `x_train.npy`, `x_val.npy`, `x_test.npy`, `params.npz`,
`key.json`. The key is the SHA-256 of: the dataset name, the SHA-256 of every split's images and
labels, the kind, its settings, which splits the parameters are fitted on, and the code version
(the SHA-256 of the preprocessing modules' source and the NumPy version). A cache built from
other data, other parameters or other code therefore has another name and is never used.

An entry is built in a temporary directory next to it and renamed into place only when complete,
so an interrupted or failed build leaves nothing behind that could be used; an entry that does
not load (damaged files) is removed and rebuilt. Arrays are opened memory-mapped: SVHN's
training split is 7.4 GB in float32. Pure NumPy and stdlib.
"""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bctrain.data import download, gcn, lcn, preprocess, zca
from bctrain.data.splits import DataError, Splits

SPLITS = ("train", "val", "test")
APPLY_CHUNK = 5000  # images per chunk: bounds the float64 temporaries of GCN and LCN
CODE = (preprocess, gcn, zca, lcn)


def code_version() -> str:
    digest = hashlib.sha256(np.__version__.encode())
    for module in CODE + (sys.modules[__name__],):
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def key_record(splits: Splits, kind: str, fit_on: tuple) -> dict:
    """Everything the cached arrays depend on."""
    data = {}
    for name in SPLITS:
        x, y = getattr(splits, f"x_{name}"), getattr(splits, f"y_{name}")
        data[name] = {"x_sha256": hashlib.sha256(np.ascontiguousarray(x)).hexdigest(),
                      "y_sha256": hashlib.sha256(np.ascontiguousarray(y)).hexdigest(), "shape": list(x.shape)}
    return {"dataset": splits.name, "data": data, "kind": kind, "settings": preprocess.get(kind).settings,
            "fit_on": list(fit_on), "code": code_version()}


def fit_images(splits: Splits, fit_on: tuple) -> np.ndarray:
    if "test" in fit_on:
        raise ValueError("preprocessing parameters are never fitted on the test split")
    parts = [getattr(splits, f"x_{name}") for name in fit_on]
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


def compute(splits: Splits, kind: str, fit_on: tuple, out: dict | None = None) -> tuple[dict, dict]:
    """(params, {split: float32 [N, D]}) computed now; writes into the arrays of `out` if given."""
    k = preprocess.get(kind)
    params = k.fit(fit_images(splits, fit_on))
    arrays = {}
    for name in SPLITS:
        x = getattr(splits, f"x_{name}")
        dest = out[name] if out else np.empty((len(x), int(np.prod(x.shape[1:]))), np.float32)
        for i in range(0, len(x), APPLY_CHUNK):
            dest[i:i + APPLY_CHUNK] = k.apply(x[i:i + APPLY_CHUNK], params)
        arrays[name] = dest
    return params, arrays


def entry_dir(record: dict) -> Path:
    key = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:20]
    return download.cache_dir() / "preprocessed" / f"{record['dataset']}-{record['kind']}-{key}"


def _format_checked(path: Path) -> Path:
    """`path` if it starts as an .npz (zip) or .npy file must; else ValueError saying so (np.load
    would call any other bytes "pickled data", which they are not)."""
    if path.suffix == ".npz":
        ok = zipfile.is_zipfile(path)
    else:
        with open(path, "rb") as fh:
            ok = fh.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX
    if not ok:
        raise ValueError(f"{path.name} is not an {path.suffix} file")
    return path


def _load(directory: Path, record: dict) -> tuple[dict, dict]:
    with open(directory / "key.json") as fh:
        if json.load(fh) != record:
            raise ValueError("key.json does not match")
    with np.load(_format_checked(directory / "params.npz"), allow_pickle=False) as npz:
        params = {k: npz[k] for k in npz.files}
    arrays = {}
    for name in SPLITS:
        x = np.load(_format_checked(directory / f"x_{name}.npy"), mmap_mode="r", allow_pickle=False)
        shape = record["data"][name]["shape"]
        if x.dtype != np.float32 or x.shape != (shape[0], int(np.prod(shape[1:]))):
            raise ValueError(f"x_{name}.npy is {x.dtype}{list(x.shape)}")
        arrays[name] = x
    return params, arrays


def _build(directory: Path, splits: Splits, kind: str, fit_on: tuple, record: dict):
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", suffix=".tmp", dir=directory.parent))
    try:
        out = {}
        for name in SPLITS:
            x = getattr(splits, f"x_{name}")
            out[name] = np.lib.format.open_memmap(tmp / f"x_{name}.npy", mode="w+", dtype=np.float32,
                                                  shape=(len(x), int(np.prod(x.shape[1:]))))
        params, _ = compute(splits, kind, fit_on, out)
        for array in out.values():
            array.flush()
        del out
        np.savez(tmp / "params.npz", **params)
        (tmp / "key.json").write_text(json.dumps(record, indent=1, sort_keys=True))
        try:
            os.rename(tmp, directory)
        except OSError:
            if not directory.is_dir():  # not a concurrent build of the same entry: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def preprocessed(splits: Splits, kind: str, fit_on: tuple = ("train",), log=None) -> tuple[dict, dict]:
    """(params, {split: float32 [N, D]}) of `kind` fitted on the `fit_on` splits: from the cache
    when the kind is cached and an entry with the same key exists, else computed (and cached)."""
    if not preprocess.get(kind).cached:
        return compute(splits, kind, fit_on)
    record = key_record(splits, kind, fit_on)
    directory = entry_dir(record)
    if directory.is_dir():
        try:
            return _load(directory, record)
        except (OSError, ValueError, KeyError, EOFError) as e:
            print(f"notice: rebuilding the damaged preprocessing cache {directory} ({e})", file=log or sys.stderr)
            shutil.rmtree(directory, ignore_errors=True)
    print(f"preprocessing {splits.name} ({kind}) into {directory}", file=log or sys.stderr)
    try:
        _build(directory, splits, kind, fit_on, record)
    except OSError as e:
        raise DataError(f"{directory}: cannot write the preprocessing cache ({e.strerror or e})") from None
    return _load(directory, record)
