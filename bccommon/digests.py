"""SHA-256 of files: of datasets, and of every file an exporter writes, recorded at export and checked
by verify (paper §9).

An exporter lists the files it wrote (paths relative to the run directory) and stores
`record(run_dir, names)` in its JSON record (`export.json` key "sha256" for `bcexport onnx`);
`bcexport verify` checks every recorded digest with `changed` and names each file that is missing
or differs since export, and `unrecorded` names files it verifies that no record covers. A later
exporter (the C sources) records its files the same way. TensorFlow-free.
"""
import hashlib
import os
import re

_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_file(path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB blocks (the one definition, for data and exports)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record(run_dir: str, names) -> dict:
    """{name: SHA-256 hex} of files `names` (relative to `run_dir`), as they are on disk now."""
    return {name: sha256_file(os.path.join(run_dir, name)) for name in names}


def is_record(value) -> bool:
    """A mapping of relative file names (no '..', not absolute) to SHA-256 hex digests."""
    return isinstance(value, dict) and all(
        isinstance(k, str) and k and not os.path.isabs(k) and ".." not in k.split("/")
        and isinstance(v, str) and _HEX64.fullmatch(v) for k, v in value.items())


def changed(run_dir: str, recorded: dict) -> list:
    """One line per recorded file that is missing or whose SHA-256 differs from the record."""
    problems = []
    for name, expected in sorted(recorded.items()):
        path = os.path.join(run_dir, name)
        if not os.path.isfile(path):
            problems.append(f"{name}: missing since export")
            continue
        got = sha256_file(path)
        if got != expected:
            problems.append(f"{name}: changed since export (SHA-256 {got[:12]}..., exported {expected[:12]}...)")
    return problems


def unrecorded(names, recorded: dict) -> list:
    """One line per file in `names` that the record does not cover."""
    return [f"{name}: not recorded at export (no SHA-256)" for name in names if name not in recorded]
