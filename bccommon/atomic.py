"""Writes that land whole or not at all: a temporary file in the same directory, then a rename.

An interrupted write never leaves a half-written file under the final name, and an OSError (full
disk, read-only or missing directory) names the final path, whatever step failed, and leaves the
old file in place. Used by training, export and the benchmarks. TensorFlow-free.
"""
import glob
import io
import json
import os
import shutil
import tempfile

import numpy as np


def temporary_pattern(name: str) -> str:
    """The glob of the temporary files `write_bytes` makes for a final file `name`."""
    return "." + glob.escape(name) + ".*.tmp"


def remove_temporaries(directory: str, names) -> list:
    """Remove what a killed writer left of the files `names` in `directory` (their `.NAME.*.tmp`
    temporaries, files or directories); return the removed paths, sorted. The caller holds the lock
    that makes it the directory's only writer."""
    removed = []
    for name in names:
        for path in glob.glob(os.path.join(glob.escape(directory), temporary_pattern(name))):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
    return sorted(removed)


def write_bytes(path: str, data: bytes):
    """Write `path` as a whole or not at all (temporary file, then rename). An OSError (full disk,
    read-only or missing directory) names `path`, whatever step failed, and leaves the old file."""
    directory = os.path.dirname(os.path.abspath(path))
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be read by others
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.filename != path:
            raise OSError(exc.errno, exc.strerror or str(exc), path) from exc
        raise


def write_text(path: str, text: str):
    write_bytes(path, text.encode())


def write_json(path: str, obj):
    """JSON as the standard defines it: a NaN or infinity is a bug here, never written as a bare token."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")


def save_npz(path: str, **arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_bytes(path, buf.getvalue())
