"""Per-epoch checkpoints of a run: written after each epoch, the newest two kept, the newest
readable one restored (TensorFlow's checkpoint guide: `tf.train.Checkpoint`).

`ckpt/ckpt-<epoch>.index` and `.data-*` hold the network, the optimizer state, the random generator
and the loop state. The files themselves are the record of which epochs exist; there is no separate
index to trust (`tf.train.CheckpointManager` keeps one, and a damaged index made it forget every
checkpoint and start the run over). A checkpoint that cannot be read (truncated by a full disk, cut
by a kill during the write, damaged) is skipped for the one before it, with a one-line notice; if
none can be read, `CheckpointError` refuses the resume. Nothing is deleted until a newer checkpoint
has been written. A failed write is one line naming the checkpoint and the reason, without
TensorFlow's graph decorations (`{{function_node __wrapped__SaveV2...}}`, `[Op:SaveV2]`).
`leftovers` lists what a killed write leaves behind: `ckpt-<epoch>_temp/` directories, where
TensorFlow writes a checkpoint's parts before merging them under the final names.
"""
import glob
import os
import re
import shutil
import sys

from bctrain.config import ConfigError

KEEP = 2
_INDEX = re.compile(r"ckpt-(\d+)\.index$")
_TEMP = re.compile(r"ckpt-\d+_temp$")  # TensorFlow's `<prefix>_temp/` of a write in progress
_DECORATIONS = re.compile(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]")


class CheckpointError(ConfigError):
    """No checkpoint of the run can be read or written (one line naming the files)."""


def prefix(ckpt_dir: str, epoch: int) -> str:
    return os.path.join(ckpt_dir, f"ckpt-{epoch}")


def epochs(ckpt_dir: str) -> list:
    """Epochs that have a checkpoint index file in `ckpt_dir`, newest first."""
    try:
        names = os.listdir(ckpt_dir)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CheckpointError(f"{ckpt_dir}: cannot list checkpoints ({exc.strerror or exc})") from None
    return sorted((int(m.group(1)) for m in map(_INDEX.match, names) if m), reverse=True)


def _remove(ckpt_dir: str, epoch: int):
    for path in glob.glob(glob.escape(prefix(ckpt_dir, epoch)) + ".*"):
        os.remove(path)


def tf_message(exc) -> str:
    """The first line of a TensorFlow error without its graph decorations."""
    text = _DECORATIONS.sub("", getattr(exc, "message", None) or str(exc)).strip()
    return " ".join(text.splitlines()[0].split()) if text else type(exc).__name__


def leftovers(ckpt_dir: str) -> list:
    """Paths of the `ckpt-<epoch>_temp` directories a killed or failed write left in `ckpt_dir`."""
    try:
        names = os.listdir(ckpt_dir)
    except FileNotFoundError:
        return []
    return sorted(os.path.join(ckpt_dir, n) for n in names if _TEMP.match(n))


def save(ckpt, ckpt_dir: str, epoch: int):
    """Write the checkpoint of `epoch`, then remove all but the KEEP newest up to `epoch` (and any
    left from a later epoch of an abandoned attempt)."""
    import tensorflow as tf  # this module's readers need no TensorFlow

    os.makedirs(ckpt_dir, exist_ok=True)
    try:
        ckpt.write(prefix(ckpt_dir, epoch))
    except tf.errors.OpError as exc:
        shutil.rmtree(prefix(ckpt_dir, epoch) + "_temp", ignore_errors=True)
        where, sep, why = tf_message(exc).partition("; ")  # "<a part's temporary file>; No space left ..."
        reason = why if sep and where.startswith(prefix(ckpt_dir, epoch)) else where + sep + why
        raise OSError(f"{prefix(ckpt_dir, epoch)}: checkpoint not written ({reason})") from None
    older = [e for e in epochs(ckpt_dir) if e <= epoch]
    for e in [e for e in epochs(ckpt_dir) if e > epoch] + older[KEEP:]:
        _remove(ckpt_dir, e)


def _after_restore(ckpt):
    """Let each checkpointed object re-seed what it derives from the restored variables (the ±1
    caches the optimizer owns: bctrain.step.caches), so a step may be made before or after a restore."""
    import tensorflow as tf

    for obj in tf.train.TrackableView(ckpt).children(ckpt).values():
        if callable(getattr(obj, "after_restore", None)):
            obj.after_restore()


def restore_newest(ckpt, ckpt_dir: str, err=None):
    """Restore the newest readable checkpoint into `ckpt`; return its epoch, or None if `ckpt_dir`
    holds no checkpoint at all. Unreadable ones are skipped with a notice on `err` (stderr)."""
    err = err or sys.stderr
    found = epochs(ckpt_dir)
    failures = []
    for epoch in found:
        try:
            # Every variable must get a value; an extra save_counter (CheckpointManager) is allowed.
            ckpt.read(prefix(ckpt_dir, epoch)).assert_existing_objects_matched()
        # Whatever the damage: TensorFlow raises OpErrors, but a truncated file gives IndexError,
        # a foreign one AssertionError or ValueError.
        except Exception as exc:  # noqa: BLE001
            first = tf_message(exc)[:160]
            failures.append(f"ckpt-{epoch} ({type(exc).__name__}: {first})")
            continue
        if failures:
            print(f"notice: {ckpt_dir}: unreadable {', '.join(failures)}; resuming from ckpt-{epoch}",
                  file=err)
        _after_restore(ckpt)
        return epoch
    if found:
        raise CheckpointError(f"{ckpt_dir}: no readable checkpoint ({'; '.join(failures)}); "
                              "nothing was changed")
    return None
