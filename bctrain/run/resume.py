"""`--resume`: continue a run exactly where its newest readable checkpoint left it, or refuse.

A resume never starts over in a directory that holds trained results: the checkpoint must be
readable (else the one before it, `bctrain.run.checkpoints`), `history.jsonl` must hold every epoch up to
it, and `best.npz` must be the weights the checkpoint's loop state selected (or those of a later
epoch, which the resumed run recomputes bit for bit). Any refusal happens before anything is
written. A run stopped before its first checkpoint resumes from the start: at most its first
epoch is recomputed, and bit for bit the same.
"""
import os

from bccommon import runfiles
from bctrain.run import checkpoints, rundir
from bctrain.config import ConfigError


def restore(ckpt, state, run_dir: str, keys=(), err=None) -> list:
    """Restore `ckpt` (whose loop state is `state`) for a resume; return the history up to it,
    whose records must each hold a number under every name in `keys`."""
    ckpt_dir = os.path.join(run_dir, runfiles.CKPT_DIR)
    epoch = checkpoints.restore_newest(ckpt, ckpt_dir, err) or 0
    if int(state.epoch) != epoch:
        raise ConfigError(f"{checkpoints.prefix(ckpt_dir, epoch)}: holds epoch {int(state.epoch)}, "
                          f"expected {epoch}; nothing was changed")
    history = rundir.read_history(run_dir)
    # An epoch is logged before it is checkpointed, so history may be one epoch ahead (an interruption
    # in between, or a damaged newest checkpoint); that epoch is recomputed identically. More is loss.
    if not epoch <= len(history) <= epoch + 1:
        have = f"the newest readable checkpoint is after epoch {epoch}" if epoch else f"{ckpt_dir} holds no checkpoint"
        raise ConfigError(f"{rundir.history_path(run_dir)}: {len(history)} epochs recorded, but {have}; "
                          "nothing was changed (start a new --run-dir)")
    for record in history[:epoch]:
        missing = [k for k in keys if type(record.get(k)) not in (int, float)]
        if missing:
            raise ConfigError(f"{rundir.history_path(run_dir)}: epoch {record['epoch']} has no number under "
                              f"{', '.join(missing)}; nothing was changed (start a new --run-dir)")
    best, selected = rundir.saved_best_epoch(run_dir), int(state.best_epoch) or None
    if best != selected and best != epoch + 1:
        found = "missing" if best is None else f"from epoch {best}"
        raise ConfigError(f"{run_dir}/{runfiles.BEST_NPZ}: {found}, the checkpoint selected epoch {selected}; "
                          "nothing was changed (start a new --run-dir)")
    return history[:epoch]
