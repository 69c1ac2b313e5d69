"""Start-up noise: TensorFlow's absl/oneDNN/CUDA lines hidden unless --verbose, real failures kept."""
import os
import subprocess
import sys

import pytest

from bctrain.run.startup import stderr_captured
from export_fixtures import make_run_dir, mlp_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_captured_output_is_dropped_on_success_and_replayed_on_failure(capfd):
    with stderr_captured():
        os.write(2, b"noise from C++\n")
    assert capfd.readouterr().err == ""
    with pytest.raises(ImportError):
        with stderr_captured():
            os.write(2, b"why the import failed\n")
            raise ImportError("no module")
    assert capfd.readouterr().err == "why the import failed\n"


def test_captured_output_is_not_replayed_after_ctrl_c(capfd):
    """Ctrl-C (or SIGTERM) while TensorFlow loads: the captured lines do not explain the stop."""
    with pytest.raises(KeyboardInterrupt):
        with stderr_captured():
            os.write(2, b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n")
            raise KeyboardInterrupt
    assert capfd.readouterr().err == ""


# TensorFlow's C++ side logs `E0000 ...` lines in successful runs, such as `oneDNN supports DT_HALF only on
# platforms with AVX-512` with mixed_float16 on an AVX-512 CPU. Stand-in for them on any machine without a
# GPU: the `failed call to cuInit` line of the first device query, here after TensorFlow has loaded.
RUNTIME_ERROR_LINE = """
import sys
from bctrain.run import startup
{quiet}
with startup.stderr_captured():
    import tensorflow as tf
print("--- loaded", file=sys.stderr, flush=True)
tf.config.list_physical_devices()
"""


@pytest.mark.slow
def test_tensorflow_runtime_error_lines_are_hidden_unless_verbose():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    after = []
    for quiet in ("", "startup.quiet_logging()"):
        result = subprocess.run([sys.executable, "-c", RUNTIME_ERROR_LINE.format(quiet=quiet)], cwd=ROOT, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        after.append(result.stderr.split("--- loaded\n", 1)[1])
    if not any(line.startswith("E0000") for line in after[0].splitlines()):
        pytest.skip("TensorFlow logs no error line at its first device query on this machine (a GPU driver?)")
    assert after[1] == ""


def run(*args):
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("verbose", [False, True])
def test_an_error_after_tensorflow_loads_is_the_only_line_unless_verbose(tmp_path, verbose):
    args = ["bctrain.cli", "train", "--dataset", "mnist-sample", "--n-classes", "5", "--run-dir", str(tmp_path / "r")]
    result = run(*args, *(["--verbose"] if verbose else []))
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and lines[-1].startswith("bctrain: error: n_classes=5")
    assert (len(lines) > 1) == verbose, result.stderr  # TensorFlow always logs at import (pinned version)


@pytest.mark.slow
def test_bcexport_errors_are_one_line_too(tmp_path):
    run_dir = make_run_dir(tmp_path / "float", mlp_config(binarize="none"))
    result = run("bcexport.cli", "onnx", run_dir)
    assert result.returncode == 2 and result.stderr.splitlines() == [
        f"bcexport onnx: error: {run_dir}: run is a float baseline (binarize=none): nothing to binarize"]


RETRACING = """
import sys
from bctrain.run import startup
tf = startup.load_tensorflow(verbose={verbose})
for n in range(8):  # a new function each time: TensorFlow warns about retracing from the sixth on
    tf.function(lambda x: x + 1)(tf.constant(n))
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_python_warnings_of_tensorflow_are_hidden_unless_verbose(verbose):
    result = subprocess.run([sys.executable, "-c", RETRACING.format(verbose=verbose)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert ("retracing" in result.stderr) == verbose, result.stderr[-2000:]
