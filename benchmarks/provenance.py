"""What a results file records beside its figures: the command, the machine, the date, the code.

Every figure in README.md and docs/ is rendered from a results file (benchmarks.render), and names
these four, so that a reader knows what produced it and a re-measurement changes the file, not
prose. `stamp()` returns them as a dict to merge into the results; `write()` merges and writes
atomically (bccommon.atomic: an interrupted run leaves the earlier file). Stdlib only (NumPy is
imported by `write`, when it is called).

command       `make TARGET VAR=...` when make ran it (the Makefile passes it in BCNN_COMMAND), else
              the Python command line
argv          the Python command line, always
machine       the device the caller measured on (TensorFlow benchmarks: bctrain.train.device_name(),
              which names the GPUs), else bccommon.machine.describe(): CPU model and cores
date          UTC, ISO 8601, to the second
code_version  `git describe --always --dirty` of the repository, or None outside a git checkout
"""
import datetime
import os
import shlex
import sys

from bccommon import machine, version  # stdlib only: bench_infer sets NumPy's threads before importing it

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_DIR = os.path.join(ROOT, "benchmarks", "results")
COMMAND_ENV = "BCNN_COMMAND"


def python_command(module: str, args=None) -> str:
    """`python -m MODULE ARGS`; `args` defaults to this process's command-line arguments."""
    return shlex.join(["python", "-m", module, *(sys.argv[1:] if args is None else args)])


def code_version(root: str = ROOT):
    """`git describe --always --dirty` of `root`, or None (bccommon.version)."""
    return version.code_version(root)


def stamp(module: str, args=None, device=None) -> dict:
    """The provenance fields of a results file measured now by `python -m module args`."""
    here = python_command(module, args)
    return {"command": os.environ.get(COMMAND_ENV) or here, "argv": here,
            "machine": device or machine.describe(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "code_version": code_version()}


def write(path: str, result: dict, module: str, args=None, device=None) -> dict:
    """`result` with its provenance (`stamp`), written atomically to `path` (its directory made if
    needed); returns what was written."""
    from bccommon import atomic
    out = {**result, **stamp(module, args, device)}
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic.write_json(path, out)
    return out


def line(result: dict) -> str:
    """One sentence naming what produced `result`: its command, machine, date and code version."""
    machine_name = result.get("machine") or result.get("device") or "an unrecorded machine"
    date = (result.get("date") or "")[:10] or "an unrecorded date"
    code = f" (code {result['code_version']})" if result.get("code_version") else ""
    command = result.get("command") or "an unrecorded command"
    return f"Measured by `{command}` on {machine_name}, {date}{code}."
