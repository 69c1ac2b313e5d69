"""benchmarks.results_mnist: trains, resumes or reads each mode's run, writes its results file only
once every mode has finished, and never replaces the full schedule's file with a shorter check.
(`bctrain train` itself is replaced by a stand-in here; `make results-mnist EPOCHS=2` runs it.)"""
import json
import os
import subprocess

import pytest

from benchmarks import results_mnist


@pytest.fixture
def fake_train(monkeypatch):
    """A stand-in for `bctrain train` that records its arguments and finishes the run, unless the
    mode is in `fail`."""
    calls, fail, real_run = [], set(), subprocess.run

    def run(cmd, **kw):
        if "bctrain.cli" not in cmd:
            return real_run(cmd, **kw)  # git, for the code version
        args = cmd[cmd.index("train") + 1:]
        calls.append(args)
        mode, run_dir = args[args.index("--binarize") + 1], args[args.index("--run-dir") + 1]
        if mode in fail:
            return subprocess.CompletedProcess(cmd, 2)
        os.makedirs(run_dir, exist_ok=True)
        metrics = {"best_epoch": 1, "epochs_run": 2, "val_error": 0.1, "test_error": 0.2, "seconds_per_epoch": 3.0,
                   "test_error_binary": None if mode == "none" else 0.25, "n_train": 6000, "n_val": 2000,
                   "n_test": 2000, "device": "CPU: T, 2 cores", "dataset": "mnist-sample"}
        with open(os.path.join(run_dir, "metrics.json"), "w") as fh:
            json.dump(metrics, fh)
        return subprocess.CompletedProcess(cmd, 0)
    monkeypatch.setattr(results_mnist.subprocess, "run", run)
    return calls, fail


def test_every_mode_trains_then_a_rerun_only_reads(tmp_path, fake_train, capsys):
    calls, _ = fake_train
    out = tmp_path / "r.json"
    args = ["--epochs", "2", "--root-dir", str(tmp_path / "runs"), "--out", str(out)]
    assert results_mnist.main(args) == 0
    assert [c[c.index("--binarize") + 1] for c in calls] == ["det", "stoch", "none"]
    assert all("--resume" not in c and c[c.index("--epochs") + 1] == "2" for c in calls)
    result = json.loads(out.read_text())
    assert [r["binarize"] for r in result["rows"]] == ["det", "stoch", "none"] and result["epochs"] == 2
    assert result["machine"] == "CPU: T, 2 cores" and result["date"] and "--binarize MODE" in result["train_command"]
    assert "| stoch | 1 of 2 | 10.00 % | 20.00 % (real weights) | 25.00 % | 3.0 |" in capsys.readouterr().out
    assert results_mnist.main(args) == 0 and len(calls) == 3   # finished runs are read, not trained again


def test_an_interrupted_run_is_resumed(tmp_path, fake_train):
    calls, _ = fake_train
    started = tmp_path / "runs" / "sample-stoch-e2"
    started.mkdir(parents=True)
    (started / "config.json").write_text("{}")
    assert results_mnist.main(["--epochs", "2", "--root-dir", str(tmp_path / "runs"), "--out",
                               str(tmp_path / "r.json")]) == 0
    assert ["--resume" in c for c in calls] == [False, True, False]


def test_a_failed_run_stops_with_its_code_and_writes_no_results(tmp_path, fake_train, capsys):
    calls, fail = fake_train
    fail.add("stoch")
    out = tmp_path / "r.json"
    with pytest.raises(SystemExit) as exc:
        results_mnist.main(["--epochs", "2", "--root-dir", str(tmp_path / "runs"), "--out", str(out)])
    assert exc.value.code == 2 and len(calls) == 2 and not out.exists()
    assert capsys.readouterr().err.startswith("results_mnist: error: bctrain train --binarize stoch exited with 2")


def test_a_shorter_check_never_replaces_the_full_results():
    full = results_mnist.PRESETS["mnist"].epochs
    assert results_mnist.default_out(full).endswith("benchmarks/results/mnist_sample.json")
    assert results_mnist.default_out(2).endswith("benchmarks/results/mnist_sample_2epochs.json")
