"""benchmarks.quiet_tf: the benchmarks start as quietly as the CLIs (TensorFlow's start-up lines
hidden unless --verbose), through bctrain.run.startup."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def start(module, *args):
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", module, "--help", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env)


@pytest.mark.slow
@pytest.mark.parametrize("module", ["benchmarks.bench_train"])
def test_a_benchmark_starts_without_tensorflow_lines_unless_verbose(module):
    quiet = start(module)
    assert quiet.returncode == 0 and quiet.stderr == "" and "--verbose" in quiet.stdout
    loud = start(module, "--verbose")
    assert loud.returncode == 0 and loud.stderr != ""   # TensorFlow always logs at import (pinned version)
