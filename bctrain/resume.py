"""`--resume`: continue a run exactly where its newest readable checkpoint left it, or refuse.

A resume never starts over in a directory that holds trained results: the checkpoint must be
readable (else the one before it, `bctrain.checkpoints`), `history.jsonl` must hold every epoch up to
it, and `best.npz` must be the weights the checkpoint's loop state selected (or those of a later
epoch, which the resumed run recomputes bit for bit). Any refusal happens before anything is
written. Only a directory in which no epoch ever finished (no checkpoint, no history, no best.npz:
a run stopped in its first epoch) resumes from the start, since there is nothing to lose.
"""
import os

from bctrain import checkpoints, rundir, runfiles
from bctrain.config import ConfigError


def restore(ckpt, state, run_dir: str, keys=(), err=None) -> list:
    """Restore `ckpt` (whose loop state is `state`) for a resume; return the history up to it,
    whose records must each hold a number under every name in `keys`."""
    ckpt_dir = os.path.join(run_dir, runfiles.CKPT_DIR)
    epoch = checkpoints.restore_newest(ckpt, ckpt_dir, err)
    history = rundir.read_history(run_dir)
    best = rundir.saved_best_epoch(run_dir)
    if epoch is None:
        if history or best is not None:
            raise ConfigError(f"{run_dir}: nothing to resume from: {ckpt_dir} holds no checkpoint but "
                              f"{'history.jsonl has ' + str(len(history)) + ' epochs' if history else 'best.npz exists'}; "
                              "nothing was changed (start a new --run-dir)")
        return []
    if int(state.epoch) != epoch:
        raise ConfigError(f"{checkpoints.prefix(ckpt_dir, epoch)}: holds epoch {int(state.epoch)}, "
                          f"expected {epoch}; nothing was changed")
    if len(history) < epoch:
        raise ConfigError(f"{rundir.history_path(run_dir)}: {len(history)} epochs recorded, the checkpoint "
                          f"is after epoch {epoch}; nothing was changed (start a new --run-dir)")
    for record in history[:epoch]:
        missing = [k for k in keys if type(record.get(k)) not in (int, float)]
        if missing:
            raise ConfigError(f"{rundir.history_path(run_dir)}: epoch {record['epoch']} has no number under "
                              f"{', '.join(missing)}; nothing was changed (start a new --run-dir)")
    selected = int(state.best_epoch)
    if best is None or (best != selected and best <= epoch):
        found = "missing" if best is None else f"from epoch {best}"
        raise ConfigError(f"{run_dir}/{runfiles.BEST_NPZ}: {found}, the checkpoint selected epoch {selected}; "
                          "nothing was changed (start a new --run-dir)")
    return history[:epoch]
