"""RUN_DIR/c/ replaced as a whole, and what a killed `bcexport c` left behind put right (paper §9).

`bcexport c` builds the new export complete (c/export.json last) in `.c.<random>.tmp` next to `c/`,
then swaps with two renames: `c` -> `.c.old-<random>.tmp`, `.c.<random>.tmp` -> `c`, writes the
record `export.c.json` (runfiles.C_RECORD: a C export was made here, so `c/` must hold one whole;
verify refuses a missing or emptied `c/` while it exists) and removes the old export. A kill between
the two renames leaves no `c/`; `recover`, run under the run directory's lock (`bcexport.lock`) by
the next `bcexport c` and by `bcexport verify`, rolls the swap back: the export that never finished
is dropped and the earlier one, whole, is `c/` again. Every other moment leaves a whole `c/`. What a
kill leaves beside it (`.c.*.tmp`, the record's temporary, and `c.old-*` of earlier versions) is
removed by the next `bcexport c` (`leftovers`, after `recover`).
"""
import glob
import os
import shutil
import tempfile

from bccommon import atomic, runfiles

ASIDE = f".{runfiles.C_DIR}.old-"   # prefix of the earlier export moved aside (a `.c.*.tmp` name)
LEGACY_ASIDE = f"{runfiles.C_DIR}.old-*"  # what earlier versions of `bcexport c` moved aside


def _asides(run_dir: str) -> list:
    """Earlier exports moved aside by a swap, newest first."""
    paths = (glob.glob(os.path.join(glob.escape(run_dir), glob.escape(ASIDE) + "*.tmp"))
             + glob.glob(os.path.join(glob.escape(run_dir), LEGACY_ASIDE)))
    return sorted((p for p in paths if os.path.isdir(p) and not os.path.islink(p)),
                  key=os.path.getmtime, reverse=True)


def install(tmp: str, run_dir: str):
    """Make the complete export in `tmp` RUN_DIR/c (module docstring); the caller holds the lock."""
    final = os.path.join(run_dir, runfiles.C_DIR)
    old = None
    if os.path.lexists(final):
        old = tempfile.mkdtemp(prefix=ASIDE, suffix=".tmp", dir=run_dir)
        os.rmdir(old)
        os.rename(final, old)
    try:
        os.rename(tmp, final)
        try:
            if not os.path.isfile(os.path.join(run_dir, runfiles.C_RECORD)):
                write_record(run_dir)
        except BaseException:  # all or nothing: a full disk here puts the earlier export back
            os.rename(final, tmp)
            raise
    except BaseException:
        if old:
            os.rename(old, final)
        raise
    if old:
        shutil.rmtree(old, ignore_errors=True)


def recover(run_dir: str) -> str | None:
    """Roll back a swap killed between its renames: no `c/`, an earlier export moved aside. Returns
    one line saying so, None if there was nothing to do. The caller holds the lock."""
    final = os.path.join(run_dir, runfiles.C_DIR)
    if os.path.lexists(final):
        return None
    for aside in _asides(run_dir):
        if os.path.isfile(os.path.join(aside, runfiles.C_EXPORT_JSON)):
            os.rename(aside, final)
            return (f"notice: {final}: restored from {os.path.basename(aside)}, where an interrupted "
                    "`bcexport c` had moved it")
    return None


def leftovers(run_dir: str) -> list:
    """Remove what killed `bcexport c` runs left beside `c/` (module docstring); the removed paths."""
    removed = atomic.remove_temporaries(run_dir, [runfiles.C_DIR, runfiles.C_RECORD])
    for aside in _asides(run_dir):
        shutil.rmtree(aside)
        removed.append(aside)
    return sorted(removed)


def write_record(run_dir: str):
    """RUN_DIR/export.c.json: a C export was made here (module docstring)."""
    atomic.write_json(os.path.join(run_dir, runfiles.C_RECORD), {
        "c_export": f"{runfiles.C_DIR}/{runfiles.C_EXPORT_JSON}",
        "note": "written by `bcexport c` once c/ holds a complete C export; bcexport verify refuses a "
                "missing or emptied c/ while this file exists (remove both to drop the C export)"})

