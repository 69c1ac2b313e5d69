"""One trainer per run directory: the lock refuses a second trainer and dies with its holder."""
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bctrain.run.runlock import RunDirInUse, hold
from bctrain.train import train
from test_resume import CFG, quiet

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = [sys.executable, "-m", "bctrain.cli", "train", "--dataset", "mnist-sample", "--hidden", "16",
         "--batch-size", "200", "--epochs", "3", "--jit", "false"]


def test_a_held_lock_refuses_another_holder_until_released(tmp_path):
    run = str(tmp_path / "run")
    with hold(run):
        with pytest.raises(RunDirInUse, match=rf"{run} is in use by another training process \(pid {os.getpid()}\)"):
            with hold(run):
                pass
    with hold(run):  # released on leaving the block
        pass


def trainer(run, *extra):
    return subprocess.Popen(TRAIN + ["--run-dir", str(run), *extra], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_second_trainer_is_refused_and_a_killed_one_resumes_bit_identical(tmp_path):
    first = trainer(tmp_path / "run")
    line = first.stdout.readline()
    while line and not line.startswith("epoch"):
        line = first.stdout.readline()
    assert line.startswith("epoch    1"), first.communicate()[1]
    delay = random.uniform(0.0, 0.4)  # lands at some step of epoch 2 or 3, or in a checkpoint write
    time.sleep(delay)
    first.send_signal(signal.SIGSTOP)  # frozen, so it still holds the lock while the second one starts
    try:
        second = trainer(tmp_path / "run", "--resume")
        out, err = second.communicate(timeout=120)
        lines = err.splitlines()
        assert second.returncode == 2 and len(lines) == 1 and "is in use by another training process" in lines[0], err
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    finished = (tmp_path / "run" / "metrics.json").exists()
    if not finished:
        train(CFG, str(tmp_path / "run"), resume=True, out=quiet())  # the lock died with its holder
    train(CFG, str(tmp_path / "full"), out=quiet())
    a, b = np.load(tmp_path / "run" / "best.npz"), np.load(tmp_path / "full" / "best.npz")
    assert all(np.array_equal(a[k], b[k]) for k in b.files), f"killed {delay:.3f} s after epoch 1"
    losses = [[json.loads(x)["train_loss"] for x in open(tmp_path / d / "history.jsonl")] for d in ("run", "full")]
    assert losses[0] == losses[1] and len(losses[0]) == 3, f"killed {delay:.3f} s after epoch 1"
