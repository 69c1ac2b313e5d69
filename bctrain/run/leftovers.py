"""What a killed training process left in its run directory, removed by the next run of it.

Every file training writes goes to a temporary name first and is renamed when whole
(bccommon.atomic); a process killed in between leaves the temporary: `.best.npz.*.tmp` (as large as
the weights), `.history.jsonl.*.tmp`, ... TensorFlow writes a checkpoint's parts into
`ckpt/ckpt-<epoch>_temp/` before merging them under the final names (bctrain.run.checkpoints), so a
kill there leaves up to a whole checkpoint. Nothing ever reads them. The next `bctrain train` or
`--resume` of the directory, holding its lock (no other trainer can be writing), removes them once
the run is accepted and says so in one line. Export's own leftovers are bcexport's to remove.
"""
import fnmatch
import os
import shutil

from bccommon import atomic, runfiles
from bctrain.run import checkpoints

# the run-directory files training writes through bccommon.atomic
WRITTEN = (runfiles.CONFIG_JSON, runfiles.DATA_JSON, runfiles.HISTORY_JSONL, runfiles.METRICS_JSON,
           runfiles.BEST_NPZ, runfiles.PREPROCESS_NPZ, runfiles.CURVES_PNG, runfiles.WEIGHTS_PNG)


def is_leftover(name: str) -> bool:
    """Whether `name`, in a run directory, is the temporary of a file training writes."""
    return any(fnmatch.fnmatchcase(name, atomic.temporary_pattern(w)) for w in WRITTEN)


def remove(run_dir: str) -> list:
    """Remove the leftovers of killed writers in `run_dir`; return their paths relative to it.
    The caller holds the run directory's lock (bctrain.run.runlock)."""
    removed = atomic.remove_temporaries(run_dir, WRITTEN)
    for path in checkpoints.leftovers(os.path.join(run_dir, runfiles.CKPT_DIR)):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.unlink(path)
        removed.append(path)
    return [os.path.relpath(p, run_dir) for p in removed]


def clean(run_dir: str, out):
    """`remove`, and one line on `out` naming what was removed (nothing if there was nothing)."""
    removed = remove(run_dir)
    if removed:
        print(f"removed {len(removed)} leftover{'s' if len(removed) > 1 else ''} of an interrupted run: "
              f"{', '.join(removed)}", file=out)
