"""`bcexport c RUN_DIR`: write the generated C inference code into RUN_DIR/c/, all or nothing (§9).

The files of `bcexport.c.generate` are written into a temporary directory next to `c/`, compiled there
with the strict flags (`-std=c99 -Wall -Wextra -Werror -pedantic`) under every compiler present
(gcc, clang, arm-none-eabi-gcc), built natively to read the kernel path and the scratch size, and
sized for a Cortex-M4; only then is it swapped in as `c/` (`bcexport.c.swap`: every moment leaves a
whole `c/`, or one that the next `bcexport c` or `bcexport verify` restores). `c/export.json`
records the facts (runfiles.C_EXPORT_JSON), `export.c.json` that a C export was made. The C deploys
the BatchNorm statistics `bcexport onnx` recorded (`bcexport.rundir.deployed_weights`; c/export.json
repeats export.json's "bn_statistics" record, if any), so a stochastic run must be exported to ONNX
first. The whole command holds the run directory's lock (`bcexport.lock`); under it, it first puts
right and removes what a killed `bcexport c` left behind, saying so in one line. A failure (a full disk: the line names
the file) leaves the earlier `c/` untouched. A new export removes an earlier verify.json.
"""
import os
import shutil
import sys
import tempfile

from bccommon import runfiles
from bccommon import atomic
from bcexport import ExportError, lock
from bccommon import digests, version
from bcexport.c import build as c_build
from bcexport.c import swap
from bcexport.c.plan import DEFAULT_TILE
from bcexport.c.generate import bcnn_version, generate
from bcexport.pack import load_deployment
from bcexport.rundir import bn_statistics_record, read_json_object

STRICT_COMPILERS = ("gcc", "clang", c_build.MCU_CC)


def read_c_export(run_dir: str) -> dict | None:
    """c/export.json of a run directory; None if no C export was made; an ExportError if export.c.json
    says one was made but c/ does not hold it (removed, emptied)."""
    path = os.path.join(run_dir, runfiles.C_DIR, runfiles.C_EXPORT_JSON)
    if os.path.isfile(path):
        return read_json_object(path, "C export summary")
    if os.path.isfile(os.path.join(run_dir, runfiles.C_RECORD)):
        raise ExportError(f"{os.path.join(run_dir, runfiles.C_DIR)}: no complete C export (no "
                          f"{runfiles.C_EXPORT_JSON}), but {runfiles.C_RECORD} records one; run "
                          f"`bcexport c {run_dir}` again")
    return None


def summarize(run_dir: str, tmp: str, sources, compilers) -> dict:
    """The facts of c/export.json (module docstring)."""
    facts = sources.facts
    model = c_build.CModel(tmp, facts) if c_build.find_cc() else None
    native = ({"compiler": c_build.find_cc(), "flags": " ".join(c_build.NATIVE),
               "kernel_path": model.kernel_path, "scratch_bytes": model.scratch_bytes, "tile": facts["tile"]}
              if model else {"skipped": "no C compiler (cc, gcc or clang) on PATH"})
    return {
        "run": os.path.basename(os.path.abspath(run_dir)), "bcnn_version": bcnn_version(),
        "code_version": version.code_version(),
        "files": {f"{runfiles.C_DIR}/{name}": len(text.encode()) for name, text in sources.files.items()},
        "sha256": {f"{runfiles.C_DIR}/{name}": digest for name, digest in digests.record(tmp, sources.files).items()},
        **facts,
        "weight_bytes_float32": 4 * facts["binary_weights"],
        "strict_flags": " ".join(c_build.STRICT), "compiled_with": compilers,
        "native": native,
        "microcontroller": c_build.mcu_sizes(tmp, facts["prefix"], tile=1),
    }


def _write_sources(tmp: str, files: dict):
    for name, text in files.items():
        path = os.path.join(tmp, name)
        try:
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:  # a failed write() or close() carries no file name
            raise OSError(exc.errno, exc.strerror or str(exc), path) from exc


def _build(run_dir: str, tmp: str, sources, bn_record=None) -> dict:
    """Write, compile and summarize the export in `tmp`; an OSError (a full disk) names the file
    under c/ it was writing, not the temporary directory. `bn_record`: export.json's record of the
    re-estimated BatchNorm statistics the sources deploy, kept in c/export.json for verify."""
    try:
        _write_sources(tmp, sources.files)
        compilers = c_build.compile_check(tmp, sources.files, STRICT_COMPILERS)
        summary = summarize(run_dir, tmp, sources, compilers)
        if bn_record:
            summary["bn_statistics"] = bn_record
        atomic.write_json(os.path.join(tmp, runfiles.C_EXPORT_JSON), summary)
    except OSError as exc:
        where, final = str(exc.filename or ""), os.path.join(run_dir, runfiles.C_DIR)
        if where and not where.startswith(tmp + os.sep):
            raise  # a file elsewhere (the compilers' temporary directory) is named as it is
        name = os.path.join(final, os.path.relpath(where, tmp)) if where else final
        raise OSError(exc.errno, exc.strerror or str(exc), name) from exc
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the sources are meant to be read by others
    return summary


def export_c(run_dir: str, prefix: str = "bcnn", tile: int = DEFAULT_TILE, err=None) -> dict:
    """Write RUN_DIR/c/ (module docstring); returns the summary written to c/export.json. Notices
    (what a killed export left behind) go to `err` (stderr)."""
    err = err or sys.stderr
    dep = load_deployment(run_dir)
    bn_record = bn_statistics_record(run_dir)
    if dep.cfg.binarize == "stoch" and not os.path.isfile(os.path.join(run_dir, runfiles.EXPORT_JSON)):
        raise ExportError(f"{run_dir}: a stochastic run; run `bcexport onnx {run_dir}` first (it decides the "
                          "BatchNorm statistics every back end deploys)")
    if tile < 1:
        raise ExportError(f"tile={tile}: expected at least 1 sample per tile")
    sources = generate(dep, os.path.basename(os.path.abspath(run_dir)), prefix, tile)
    with lock.hold(run_dir):
        restored = swap.recover(run_dir)
        if restored:
            print(restored, file=err)
        lock.report_removed(swap.leftovers(run_dir), run_dir, "`bcexport c`", err)
        try:
            tmp = tempfile.mkdtemp(prefix=f".{runfiles.C_DIR}.", suffix=".tmp", dir=run_dir)
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), os.path.join(run_dir, runfiles.C_DIR)) from exc
        try:
            summary = _build(run_dir, tmp, sources, bn_record)
            stale = os.path.join(run_dir, runfiles.VERIFY_JSON)
            if os.path.exists(stale):
                os.remove(stale)
            swap.install(tmp, run_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return summary
