"""One writer per run directory: `bcexport onnx`, `bcexport c` and `bcexport verify` hold its lock (§9).

The lock is training's (`bctrain.run.runlock`: `flock` on RUN_DIR/train.lock, dropped by the kernel
when its holder's file is closed, on any exit, SIGKILL included), so two exports, an export and a
verification, or an export and a `bctrain train --resume` of one run directory never run at once:
the second is refused in one line naming the holder's pid. Under the lock, a command may complete or
roll back what a killed one left half done, and remove its leftovers (`bccommon.atomic.remove_temporaries`).
"""
import contextlib
import os

from bccommon import runfiles
from bctrain.run import runlock
from bcexport import ExportError


def _holder(run_dir: str) -> str:
    try:
        with open(os.path.join(run_dir, runfiles.LOCK)) as fh:
            pid = fh.read(32).strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""


@contextlib.contextmanager
def hold(run_dir: str):
    """Hold the lock of an existing `run_dir` for the `with` block; ExportError if another process has it."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(runlock.hold(run_dir))
        except runlock.RunDirInUse:
            raise ExportError(f"{run_dir} is in use by another process{_holder(run_dir)} (a training or another "
                              "bcexport command); wait for it to end") from None
        except OSError as exc:  # writing the holder's pid into a full disk carries no file name
            path = os.path.join(run_dir, runfiles.LOCK)
            raise OSError(exc.errno, exc.strerror or str(exc), exc.filename or path) from exc
        yield


def report_removed(removed, run_dir: str, what: str, err):
    """One line naming what a killed writer left behind and was just removed (nothing if nothing)."""
    if removed:
        names = ", ".join(os.path.relpath(p, run_dir) for p in removed)
        print(f"notice: {run_dir}: removed {len(removed)} leftover(s) of an interrupted {what}: {names}", file=err)
