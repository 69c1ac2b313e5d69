"""benchmarks.cnn_check and cnn_check_data: the MNIST sample in the CIFAR-10 and SVHN formats reads back
as the same digits with a disjoint test split; a tiny binary CNN learns from those files through the
real --data-dir path (the guard of the conv path's learning, issue 20 §1); the command refuses bad
arguments and a run directory holding other settings before anything trains.
(The check itself trains for most of an hour per preset: `make cnn-check`.)"""
import io
import json
import os

import numpy as np
import pytest

from benchmarks import cnn_check, cnn_check_data
from bctrain.config import with_overrides
from bctrain.data import load_splits
from bctrain.data.sample import load_sample

IMAGES = 1000  # 600 / 200 / 200 of the sample's train / validation / test digits


def padded(x28) -> np.ndarray:
    """The oracle: each digit in the middle of a black 32x32 image, the same in R, G and B."""
    out = np.zeros((len(x28), 32, 32, 3), np.uint8)
    for c in range(3):
        out[:, 2:30, 2:30, c] = x28
    return out


def rows(x) -> list:
    return sorted(map(bytes, x.reshape(len(x), -1)))


def test_to_rgb32_pads_with_black_and_repeats_the_channel():
    x = np.arange(2 * 28 * 28, dtype=np.uint32).reshape(2, 28, 28).astype(np.uint8)
    np.testing.assert_array_equal(cnn_check_data.to_rgb32(x), padded(x))


@pytest.mark.parametrize("preset", ["cifar10", "svhn"])
def test_files_read_back_as_the_sample_digits_with_a_disjoint_test_split(preset, tmp_path):
    cnn_check_data.write_data(preset, tmp_path / "data", IMAGES)
    s = load_splits(preset, str(tmp_path / "data"), allow_sample=False)
    sample = load_sample()
    pool = padded(np.concatenate([sample.x_train[:600], sample.x_val[:200]]))
    pool_digits = np.concatenate([sample.y_train[:600], sample.y_val[:200]])
    np.testing.assert_array_equal(s.x_test, padded(sample.x_test[:200]))
    np.testing.assert_array_equal(s.y_test, sample.y_test[:200])
    used_x, used_y = np.concatenate([s.x_train, s.x_val]), np.concatenate([s.y_train, s.y_val])
    if preset == "cifar10":  # five batches in order; validation = the last tenth
        np.testing.assert_array_equal(used_x, pool)
        np.testing.assert_array_equal(used_y, pool_digits)
        assert s.counts() == (720, 80, 200)
    else:  # round(400 * 700 / 73,257) = 4 per class from train, 1 from extra
        assert rows(used_x) == rows(pool) and s.counts() == (750, 50, 200)
        label_of = {bytes(x.ravel()): y for x, y in zip(pool, pool_digits)}
        assert [label_of[bytes(x.ravel())] for x in used_x] == used_y.tolist()  # 0 stays 0, not 10
    assert not set(rows(s.x_test)) & set(rows(used_x))
    for y in (s.y_train, s.y_val, s.y_test):
        assert np.bincount(y, minlength=10).min() > 0


def test_write_data_keeps_an_existing_directory(tmp_path):
    (tmp_path / "data").mkdir()
    cnn_check_data.write_data("svhn", tmp_path / "data", IMAGES)
    assert list((tmp_path / "data").iterdir()) == [] and [p.name for p in tmp_path.iterdir()] == ["data"]


def test_a_tiny_binary_cnn_learns_from_the_svhn_files(tmp_path):
    """The learning guard: det BinaryConnect, four narrow binary 3x3 convs (each followed by a pool)
    and a binary dense layer, 5 epochs on 750 digits read from the SVHN files (GCN + LCN); the test
    error must fall below 30 % on the 200 test digits. Chance is 90 %: 140 or more right out of 200 at
    p = 0.1 each has a probability below 1e-70. Measured (AMD EPYC, TensorFlow 2.21): 17.5 %; with
    the conv kernels frozen at their initial values (no gradient reaching them), 40.0 %, so a conv
    path that does not learn fails here even though the dense layers still do."""
    from bctrain.train import train
    cnn_check_data.write_data("svhn", tmp_path / "data", IMAGES)
    cfg = with_overrides("svhn", conv=(16, 16, 32, 32), pool=(1, 1, 1, 1), hidden=(64,), epochs=5,
                         lr_start=1e-2, lr_end=1e-3, jit=False, steps_per_call=1, eval_batch_size=50)
    metrics = train(cfg, str(tmp_path / "run"), data_dir=str(tmp_path / "data"), out=io.StringIO())
    assert metrics["n_test"] == 200 and metrics["test_error"] < 0.30, metrics["test_error"]


def test_bad_arguments_are_usage_errors(capsys):
    for argv in (["--presets", "mnist"], ["--modes", "det,det"], ["--precisions", "float16"], ["--images", "50"]):
        with pytest.raises(SystemExit) as exc:
            cnn_check.main(argv)
        assert exc.value.code == 2
    assert "--images 50" in capsys.readouterr().err


def test_a_run_directory_with_other_settings_is_refused_before_anything_trains(tmp_path, capsys):
    other = tmp_path / "cifar10-det"
    other.mkdir()
    (other / "config.json").write_text(with_overrides("cifar10", epochs=3).to_json())
    assert cnn_check.main(["--out-dir", str(tmp_path), "--epochs", "2", "--json", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err
    assert "cifar10-det holds a different run" in err and "epochs 3 != 2" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cifar10-det"]  # no data written, nothing trained


def test_plan_trains_every_mode_in_float32_and_det_in_the_other_precisions():
    names = [r.name for r in cnn_check.plan(("cifar10", "svhn"), ("none", "det", "stoch"),
                                            ("float32", "mixed_bfloat16"))]
    assert names == ["cifar10-float", "cifar10-det", "cifar10-stoch", "cifar10-det-mixed_bfloat16",
                     "svhn-float", "svhn-det", "svhn-stoch", "svhn-det-mixed_bfloat16"]
    assert [r.name for r in cnn_check.plan(("svhn",), ("det",), ("mixed_bfloat16",))] == ["svhn-det-mixed_bfloat16"]


def _fake_run(run_dir, errors, selected):
    run_dir.mkdir()
    history = [{"epoch": i + 1, "lr": 1e-3, "train_loss": 1.0 / (i + 1), "train_error": e, "val_error_real": e,
                "test_error_real": e + 0.01, "val_error_binary": e, "test_error_binary": e + 0.02,
                "seconds": 10.0 + i, "flip_ratio": [0.1]} for i, e in enumerate(errors)]
    (run_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    best = history[selected - 1]
    (run_dir / "metrics.json").write_text(json.dumps({
        "best_epoch": selected, "val_error": best["val_error_real"], "test_error": best["test_error_real"],
        "test_error_binary": best["test_error_binary"], "n_train": 7, "n_val": 8, "n_test": 9,
        "binary_weights": 5, "tensorflow_version": "x"}))


def test_result_takes_the_selected_epoch_and_the_curve_of_the_run(tmp_path):
    _fake_run(tmp_path / "run", [0.5, 0.2, 0.3], selected=2)
    r = cnn_check.result(cnn_check.Run("svhn", "stoch", "float32"), tmp_path / "run")
    assert r["selected_epoch"] == 2
    assert (r["val_error"], r["test_error"], r["test_error_binary"]) == pytest.approx((0.2, 0.21, 0.22))
    assert r["epochs"] == 3 and r["seconds_per_epoch"] == 11.0 and r["seconds_total"] == 33.0
    assert [c["epoch"] for c in r["curve"]] == [1, 2, 3] and "flip_ratio" not in r["curve"][0]
    assert r["curve"][2]["test_error_binary"] == pytest.approx(0.32)


def test_gaps_are_test_error_differences_in_points():
    runs = {"float": {"test_error": 0.010}, "det": {"test_error": 0.0125}, "det-mixed_bfloat16": {"test_error": 0.012}}
    assert cnn_check.gaps(runs) == pytest.approx({"det_minus_float_pp": 0.25, "det_mixed_bfloat16_minus_det_pp": -0.05})


def test_finished_runs_are_reused_and_summarised_without_training(tmp_path, capsys):
    run = cnn_check.Run("svhn", "stoch", "float32")
    _fake_run(tmp_path / run.name, [0.5, 0.2], selected=2)
    args = cnn_check.parse_args(["--epochs", "2"])
    (tmp_path / run.name / "config.json").write_text(with_overrides("svhn", **cnn_check.overrides(run, args)).to_json())
    argv = ["--epochs", "2", "--presets", "svhn", "--modes", "stoch", "--precisions", "float32",
            "--out-dir", str(tmp_path), "--json", str(tmp_path / "r.json"), "--figure", str(tmp_path / "f.png")]
    assert cnn_check.main(argv) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    p = results["presets"]["svhn"]
    assert list(p["runs"]) == ["stoch"] and p["runs"]["stoch"]["test_error"] == pytest.approx(0.21)
    assert (p["preprocess"], p["conv"], p["hidden"], p["lr_start"]) == ("gcn_lcn", [32, 32, 64, 64, 128, 128],
                                                                        [256, 256], 1e-2)
    assert results["epochs"] == 2 and results["machine"].startswith(("CPU: ", "GPU: "))
    assert results["command"].startswith("python -m benchmarks.cnn_check --epochs 2") and "code_version" in results
    assert (tmp_path / "f.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "finished earlier" in out and "| `svhn` | stoch | 21.00 % | 22.00 % | 2 of 2 |" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "r.json", "svhn-stoch"]  # no data written


@pytest.mark.parametrize("code", [130, 143])  # Ctrl-C, SIGTERM: bctrain left a resumable run
def test_an_interrupted_or_terminated_run_stops_the_check_without_starting_the_next(code, tmp_path, monkeypatch, capsys):
    started = []
    monkeypatch.setattr(cnn_check, "train", lambda run, *a, **k: started.append(run.name) or code)
    monkeypatch.setattr(cnn_check.cnn_check_data, "write_data", lambda *a, **k: tmp_path / "data")
    argv = ["--presets", "svhn", "--precisions", "float32", "--out-dir", str(tmp_path), "--json", str(tmp_path / "r.json")]
    assert cnn_check.main(argv) == 130
    assert started == ["svhn-float"] and not (tmp_path / "r.json").exists()
    assert "run the same command again to resume" in capsys.readouterr().err


def test_a_sigterm_to_the_check_reaches_the_training_and_stops_the_check(tmp_path, monkeypatch, capsys):
    # The training stands in for bctrain: it says it is ready, then waits 5 s; on SIGTERM it writes
    # a mark and exits 143 as bctrain does. This test's own handler (not reached when the check
    # forwards the signal) keeps a missing forward from ending the test process.
    import signal
    import sys
    import threading
    mark = tmp_path / "terminated"
    child = ("import pathlib, signal, sys, time\n"
             f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(mark)!r}).write_text('x'), sys.exit(143)))\n"
             "print('ready', flush=True)\ntime.sleep(5)\n")
    monkeypatch.setattr(cnn_check, "train_command", lambda *a, **k: [sys.executable, "-c", child])
    real_print = print

    def print_then_signal(*args, **kwargs):  # the first line from the training: SIGTERM to us
        real_print(*args, **kwargs)
        if args and "ready" in str(args[0]):
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
    monkeypatch.setattr(cnn_check, "print", print_then_signal, raising=False)
    run = cnn_check.plan(("svhn",), ("none",), ("float32",))[0]
    args = cnn_check.parse_args(["--out-dir", str(tmp_path)])
    got = []

    def ours(*_):
        got.append("test process")
    before = signal.signal(signal.SIGTERM, ours)
    try:
        code = cnn_check.train(run, args, tmp_path, tmp_path / "run", resume=False)
        assert signal.getsignal(signal.SIGTERM) is ours  # restored by the check
    finally:
        signal.signal(signal.SIGTERM, before)
    assert code == 143 and mark.read_text() == "x" and got == []
    assert "[svhn-float] ready" in capsys.readouterr().out
