"""Tiny dataset files in the official formats, written by the tests themselves (no network).

CIFAR-10 "python version": Python 2 pickles (protocol 2, as cPickle wrote them in 2009) of dicts
with `batch_label`, `labels`, `data` (a numpy uint8 array [N, 3072], channel-major) and
`filenames`, in `cifar-10-batches-py/` inside `cifar-10-python.tar.gz`. The pickles are written
opcode by opcode, so they reference `numpy.core.multiarray._reconstruct` and carry the array
bytes as a Python 2 string, exactly like the official files, whatever numpy runs the tests.

SVHN format 2: MATLAB files with `X` uint8 [32, 32, 3, N] and `y` double [N, 1] in 1..10 (10 = digit 0),
written with scipy.io.savemat.
"""
import io
import struct
import tarfile

import numpy as np

from bctrain.data import cifar10, svhn


def _str(b: bytes) -> bytes:
    """A Python 2 str: SHORT_BINSTRING or BINSTRING."""
    return (b"U" + bytes([len(b)]) if len(b) < 256 else b"T" + struct.pack("<I", len(b))) + b


def _int(v: int) -> bytes:
    """BININT1, BININT, or LONG1 (a Python 2 long, little-endian two's complement) beyond 32 bits."""
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if -2 ** 31 <= v < 2 ** 31:
        return b"J" + struct.pack("<i", v)
    n = v.bit_length() // 8 + 1
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _uint8_array(a: np.ndarray) -> bytes:
    dtype = (_global("numpy", "dtype") + _str(b"u1") + _int(0) + _int(1) + b"\x87R"
             + b"(" + _int(3) + _str(b"|") + b"NNN" + _int(-1) + _int(-1) + _int(0) + b"tb")
    shape = b"(" + b"".join(_int(d) if d < 256 else b"J" + struct.pack("<i", d) for d in a.shape) + b"t"
    return (_global("numpy.core.multiarray", "_reconstruct") + _global("numpy", "ndarray")
            + _int(0) + b"\x85" + _str(b"b") + b"\x87R"
            + b"(" + _int(1) + shape + dtype + b"\x89" + _str(np.ascontiguousarray(a).tobytes()) + b"tb")


def py2_pickle(value) -> bytes:
    """Protocol-2 pickle of str/bytes keys, ints, lists of ints or strs, and uint8 arrays."""
    def enc(v):
        if isinstance(v, np.ndarray):
            return _uint8_array(v)
        if isinstance(v, (str, bytes)):
            return _str(v.encode() if isinstance(v, str) else v)
        if isinstance(v, int):
            return _int(v)
        if isinstance(v, list):
            return b"](" + b"".join(enc(i) for i in v) + b"e"
        if isinstance(v, dict):
            return b"}(" + b"".join(enc(k) + enc(x) for k, x in v.items()) + b"u"
        raise TypeError(type(v))
    return b"\x80\x02" + enc(value) + b"."


def cifar_batch(x_nhwc: np.ndarray, labels, name="training batch 1 of 5") -> bytes:
    x = np.asarray(x_nhwc, np.uint8)
    return py2_pickle({"batch_label": name, "labels": [int(v) for v in labels],
                       "data": x.transpose(0, 3, 1, 2).reshape(len(x), -1),
                       "filenames": [f"img_{i}.png" for i in range(len(x))]})


def cifar_arrays(n_per_batch=6, n_test=8, seed=0) -> dict:
    """{batch name: (images NHWC, labels)} for the five training batches and the test batch."""
    rng = np.random.default_rng(seed)
    names = cifar10.TRAIN_BATCHES + (cifar10.TEST_BATCH,)
    return {n: (rng.integers(0, 256, (n_test if n == cifar10.TEST_BATCH else n_per_batch, 32, 32, 3), dtype=np.uint8),
                rng.integers(0, 10, n_test if n == cifar10.TEST_BATCH else n_per_batch))
            for n in names}


def write_cifar_archive(path, arrays: dict, override: dict | None = None):
    """cifar-10-python.tar.gz at `path` with the given batches; `override` replaces member bytes."""
    override = override or {}
    with tarfile.open(path, "w:gz") as tar:
        members = {n: cifar_batch(*a) for n, a in arrays.items()}
        members["batches.meta"] = py2_pickle({"label_names": ["airplane"] * 10, "num_vis": 3072})
        members.update(override)
        for name, data in members.items():
            info = tarfile.TarInfo(f"{cifar10.FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_cifar_folder(directory, arrays: dict):
    folder = directory / cifar10.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        (folder / name).write_bytes(cifar_batch(*a))
    return folder


def svhn_arrays(n_train=60, n_extra=40, n_test=12, seed=0) -> dict:
    """{file name: (images NHWC, raw labels 1..10)}; every class present at least twice per file."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, n in ((svhn.TRAIN, n_train), (svhn.EXTRA, n_extra), (svhn.TEST, n_test)):
        labels = np.concatenate([np.tile(np.arange(1, 11), 2), rng.integers(1, 11, max(0, n - 20))])[:n]
        out[name] = (rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.permutation(labels))
    return out


def write_svhn_mat(path, x_nhwc, labels):
    import scipy.io
    scipy.io.savemat(path, {"X": np.asarray(x_nhwc, np.uint8).transpose(1, 2, 3, 0),
                            "y": np.asarray(labels, np.float64).reshape(-1, 1)})  # doubles, as the official files


def write_svhn_dir(directory, arrays: dict):
    directory.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in arrays.items():
        write_svhn_mat(directory / name, x, y)
    return directory
