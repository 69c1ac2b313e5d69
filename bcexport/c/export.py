"""`bcexport c RUN_DIR`: write the generated C inference code into RUN_DIR/c/, all or nothing (§9).

The files of `bcexport.c.generate` are written into a temporary directory next to `c/`, compiled there
with the strict flags (`-std=c99 -Wall -Wextra -Werror -pedantic`) under every compiler present
(gcc, clang, arm-none-eabi-gcc), built natively to read the kernel path and the scratch size, and
sized for a Cortex-M4; only then is the directory renamed to `c/` (an earlier `c/` is moved aside
first and removed after). `c/export.json` records the facts (runfiles.C_EXPORT_JSON). A failure
leaves the earlier `c/` untouched. A new export removes an earlier verify.json.
"""
import os
import shutil
import tempfile

from bccommon import runfiles
from bccommon import atomic
from bcexport import ExportError
from bccommon import digests
from bcexport.c import build as c_build
from bcexport.c.plan import DEFAULT_TILE
from bcexport.c.generate import bcnn_version, generate
from bcexport.pack import load_deployment
from bcexport.rundir import read_json_object

STRICT_COMPILERS = ("gcc", "clang", c_build.MCU_CC)


def replace_dir(tmp: str, final: str):
    """Rename `tmp` to `final`; an existing `final` is moved aside first and removed afterwards."""
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(prefix=os.path.basename(final) + ".old-", dir=os.path.dirname(final))
        os.rmdir(old)
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def read_c_export(run_dir: str) -> dict | None:
    """c/export.json of a run directory, None if there is no C export."""
    path = os.path.join(run_dir, runfiles.C_DIR, runfiles.C_EXPORT_JSON)
    return read_json_object(path, "C export summary") if os.path.isfile(path) else None


def summarize(run_dir: str, tmp: str, sources, compilers) -> dict:
    """The facts of c/export.json (module docstring)."""
    facts = sources.facts
    model = c_build.CModel(tmp, facts) if c_build.find_cc() else None
    native = ({"compiler": c_build.find_cc(), "flags": " ".join(c_build.NATIVE),
               "kernel_path": model.kernel_path, "scratch_bytes": model.scratch_bytes, "tile": facts["tile"]}
              if model else {"skipped": "no C compiler (cc, gcc or clang) on PATH"})
    return {
        "run": os.path.basename(os.path.abspath(run_dir)), "bcnn_version": bcnn_version(),
        "files": {f"{runfiles.C_DIR}/{name}": len(text.encode()) for name, text in sources.files.items()},
        "sha256": {f"{runfiles.C_DIR}/{name}": digest for name, digest in digests.record(tmp, sources.files).items()},
        **facts,
        "weight_bytes_float32": 4 * facts["binary_weights"],
        "strict_flags": " ".join(c_build.STRICT), "compiled_with": compilers,
        "native": native,
        "microcontroller": c_build.mcu_sizes(tmp, facts["prefix"], tile=1),
    }


def export_c(run_dir: str, prefix: str = "bcnn", tile: int = DEFAULT_TILE) -> dict:
    """Write RUN_DIR/c/ (module docstring); returns the summary written to c/export.json."""
    dep = load_deployment(run_dir)
    if tile < 1:
        raise ExportError(f"tile={tile}: expected at least 1 sample per tile")
    sources = generate(dep, os.path.basename(os.path.abspath(run_dir)), prefix, tile)
    tmp = tempfile.mkdtemp(prefix=f".{runfiles.C_DIR}.", suffix=".tmp", dir=run_dir)
    try:
        for name, text in sources.files.items():
            with open(os.path.join(tmp, name), "w", encoding="utf-8") as fh:
                fh.write(text)
        compilers = c_build.compile_check(tmp, sources.files, STRICT_COMPILERS)
        summary = summarize(run_dir, tmp, sources, compilers)
        atomic.write_json(os.path.join(tmp, runfiles.C_EXPORT_JSON), summary)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700; the sources are meant to be read by others
        stale = os.path.join(run_dir, runfiles.VERIFY_JSON)
        if os.path.exists(stale):
            os.remove(stale)
        replace_dir(tmp, os.path.join(run_dir, runfiles.C_DIR))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary
