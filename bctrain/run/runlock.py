"""One trainer per run directory: an OS file lock held for the whole training process.

`fcntl.flock` on `RUN_DIR/train.lock` (`runfiles.LOCK`), taken before the run directory is written
and held until training ends. The kernel drops the lock when its file is closed, which happens on
any exit, SIGKILL included, so no stale lock survives its process (the file stays; its presence
means nothing, only the lock on it does). The file holds the holder's pid, for the message only.
"""
import contextlib
import fcntl
import os

from bccommon import runfiles
from bctrain.config import ConfigError


class RunDirInUse(ConfigError):
    """Another process holds the run directory's lock."""


def _holder(fd) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


@contextlib.contextmanager
def hold(run_dir: str):
    """Create `run_dir` if needed and hold its lock for the `with` block; RunDirInUse if taken."""
    os.makedirs(run_dir, exist_ok=True)
    fd = os.open(os.path.join(run_dir, runfiles.LOCK), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirInUse(f"{run_dir} is in use by another training process{_holder(fd)}; wait for it "
                              "to end, or choose another --run-dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock
