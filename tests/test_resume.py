"""--resume resumes or refuses: checkpoint fallback, and damaged run directories left untouched."""
import errno
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tensorflow as tf

from bccommon import atomic
from bctrain.cli import main
from bctrain.config import ConfigError, with_overrides
from bctrain.train import train

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CFG = with_overrides("mnist", dataset="mnist-sample", hidden=(16,), batch_size=200, epochs=3, jit=False)
ARGS = ["train", "--dataset", "mnist-sample", "--hidden", "16", "--batch-size", "200", "--epochs", "3",
        "--jit", "false"]  # CFG on the command line


def quiet():
    return open(os.devnull, "w")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """An uninterrupted 3-epoch run, and the same run stopped after epoch 2."""
    root = tmp_path_factory.mktemp("resume")
    train(CFG, str(root / "full"), out=quiet())
    assert train(CFG, str(root / "cut"), out=quiet(), stop_after=2) is None
    return root


@pytest.fixture
def cut(runs, tmp_path):
    return shutil.copytree(runs / "cut", tmp_path / "cut")


def snapshot(run) -> dict:
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*"))
            if p.is_file() and p.name != "train.lock"}


def assert_same_result(run, full):
    a, b = np.load(run / "best.npz"), np.load(full / "best.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert (run / "history.jsonl").read_text().count("\n") == 3


def test_a_junk_checkpoint_index_is_ignored(cut, runs):
    (cut / "ckpt" / "checkpoint").write_text("junk junk\n")
    train(CFG, str(cut), resume=True, out=quiet())
    assert_same_result(cut, runs / "full")


def test_an_unreadable_latest_checkpoint_falls_back_to_the_previous_one(cut, runs, capsys):
    data = cut / "ckpt" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[:100])
    train(CFG, str(cut), resume=True, out=quiet())
    notices = [line for line in capsys.readouterr().err.splitlines() if "ckpt-2" in line]
    assert len(notices) == 1 and "resuming from ckpt-1" in notices[0]
    assert_same_result(cut, runs / "full")  # epoch 2 recomputed bit for bit
    assert sorted(os.listdir(cut / "ckpt")) == [f"ckpt-{e}.{x}" for e in (2, 3)
                                                 for x in ("data-00000-of-00001", "index")]


def damage(cut, fault):
    if fault == "no readable checkpoint":
        for e in (1, 2):
            (cut / "ckpt" / f"ckpt-{e}.index").write_bytes(b"not an sstable")
    elif fault == "checkpoint directory deleted":
        shutil.rmtree(cut / "ckpt")
    elif fault == "history emptied":
        (cut / "history.jsonl").write_text("")
    elif fault == "history cut mid-line":
        text = (cut / "history.jsonl").read_text()
        (cut / "history.jsonl").write_text(text[:len(text) - 40])
    elif fault == "history one epoch short":
        (cut / "history.jsonl").write_text((cut / "history.jsonl").read_text().splitlines()[0] + "\n")
    elif fault == "history line without epoch":
        lines = (cut / "history.jsonl").read_text().splitlines()
        (cut / "history.jsonl").write_text(lines[0] + "\n" + lines[1].replace('"epoch"', '"epok"') + "\n")
    elif fault == "history line not an object":
        (cut / "history.jsonl").write_text("[1, 2]\n[3]\n")
    elif fault == "data.json deleted":
        os.remove(cut / "data.json")
    elif fault == "data.json a list":
        (cut / "data.json").write_text("[]")
    elif fault == "best.npz deleted":
        os.remove(cut / "best.npz")
    elif fault == "best.npz truncated":
        (cut / "best.npz").write_bytes((cut / "best.npz").read_bytes()[:50])


@pytest.mark.parametrize("fault, words", [
    ("no readable checkpoint", "no readable checkpoint (ckpt-2 ("),
    ("checkpoint directory deleted", "2 epochs recorded, but"),
    ("history emptied", "0 epochs recorded, but the newest readable checkpoint is after epoch 2"),
    ("history cut mid-line", "line 2 unreadable"),
    ("history one epoch short", "1 epochs recorded"),
    ("history line without epoch", "line 2 is not the record of epoch 2"),
    ("history line not an object", "line 1 is not the record of epoch 1"),
    ("data.json deleted", "data.json: missing"),
    ("data.json a list", "data.json: expected a JSON object"),
    ("best.npz deleted", "best.npz: missing, the checkpoint selected epoch"),
    ("best.npz truncated", "best.npz: unreadable"),
])
def test_a_damaged_run_directory_is_refused_and_left_untouched(cut, fault, words):
    damage(cut, fault)
    before = snapshot(cut)
    with pytest.raises(ConfigError) as info:
        train(CFG, str(cut), resume=True, out=quiet())
    assert words in str(info.value) and "\n" not in str(info.value)
    assert snapshot(cut) == before


@pytest.mark.slow  # a few seconds or more: make test-all
def test_an_earlier_releases_run_directory_resumes(cut, runs):
    """Releases before the preprocessing table wrote `mean_sha256` into data.json (not compared
    any more) and no `params_sha256` (not required; test_rundir.py has each case alone); for kind
    "mean" their preprocess.npz was this one's (`kind`, `mean`)."""
    data = json.loads((cut / "data.json").read_text())
    mean = np.load(cut / "preprocess.npz")["mean"]
    old = {**{k: v for k, v in data.items() if k != "params_sha256"},
           "mean_sha256": hashlib.sha256(mean.tobytes()).hexdigest()}
    (cut / "data.json").write_text(json.dumps(old))
    train(CFG, str(cut), resume=True, out=quiet())
    assert_same_result(cut, runs / "full")
    assert json.loads((cut / "data.json").read_text()) == old  # left as it was


@pytest.mark.parametrize("kept", [("config.json", "data.json", "preprocess.npz"),  # stopped in epoch 1
                                  pytest.param(("config.json", "data.json", "preprocess.npz", "best.npz"),
                                               marks=pytest.mark.slow)])
def test_a_run_stopped_before_its_first_checkpoint_resumes_from_the_start(runs, tmp_path, kept):
    run = tmp_path / "early"
    run.mkdir()
    for name in kept:
        shutil.copy(runs / "cut" / name, run / name)
    if "best.npz" in kept:  # stopped between logging epoch 1 and checkpointing it
        best = dict(np.load(run / "best.npz"))
        np.savez(run / "best.npz", **{**best, "epoch": np.array(1)})
        (run / "history.jsonl").write_text((runs / "cut" / "history.jsonl").read_text().splitlines()[0] + "\n")
    train(CFG, str(run), resume=True, out=quiet())
    assert_same_result(run, runs / "full")


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_resume_removes_what_a_killed_run_left(cut, runs):
    """A kill during a write leaves its temporary: of best.npz, of history.jsonl, a checkpoint's parts."""
    (cut / ".best.npz.k2x9q1.tmp").write_bytes((cut / "best.npz").read_bytes()[:1000])
    (cut / ".history.jsonl.a8b7c6.tmp").write_text("{")
    (cut / "ckpt" / "ckpt-3_temp").mkdir()
    (cut / "ckpt" / "ckpt-3_temp" / "part-00000-of-00001.data-00000-of-00001.tempstate123").write_bytes(bytes(100))
    out = io.StringIO()
    train(CFG, str(cut), resume=True, out=out)
    assert ("removed 3 leftovers of an interrupted run: .best.npz.k2x9q1.tmp, .history.jsonl.a8b7c6.tmp, "
            "ckpt/ckpt-3_temp\n") in out.getvalue()
    assert not [p for p in cut.rglob("*") if p.name.endswith(".tmp") or p.name.endswith("_temp")]
    assert_same_result(cut, runs / "full")


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_start_killed_while_writing_config_json_is_run_again(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("train.lock", "data.json", ".config.json.k1x2.tmp"):
        (run / name).write_text("{")
    assert main(ARGS + ["--run-dir", str(run), "--epochs", "1"]) == 0
    assert "removed 1 leftover of an interrupted run: .config.json.k1x2.tmp\n" in capsys.readouterr().out
    assert not list(run.glob(".*.tmp"))


def test_a_full_disk_at_the_start_leaves_a_directory_the_same_command_accepts(tmp_path, monkeypatch, capsys):
    run = str(tmp_path / "run")
    real = atomic.write_bytes

    def disk_full_at_config(path, data):
        if path.endswith("config.json"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", disk_full_at_config)
    assert main(ARGS + ["--run-dir", run]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("bctrain")]
    assert err == [f"bctrain: error: {run}/config.json: No space left on device; fix this, then run the "
                   "same command again"]
    monkeypatch.setattr(atomic, "write_bytes", real)
    assert main(ARGS + ["--run-dir", run, "--epochs", "1"]) == 0


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_full_disk_mid_run_stops_in_one_line_and_the_run_resumes(runs, tmp_path, monkeypatch, capsys):
    run = str(tmp_path / "run")
    real = atomic.write_bytes

    def disk_full_at_epoch_2(path, data):
        if path.endswith("history.jsonl") and data.count(b"\n") == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", disk_full_at_epoch_2)
    assert main(ARGS + ["--run-dir", run]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("bctrain")]
    assert err == [f"bctrain: error: {run}/history.jsonl: No space left on device; fix this, then continue "
                   "with --resume (RESUME=1)"]
    assert (tmp_path / "run" / "history.jsonl").read_text().count("\n") == 1
    monkeypatch.setattr(atomic, "write_bytes", real)
    assert main(ARGS + ["--run-dir", run, "--resume"]) == 0
    assert_same_result(tmp_path / "run", runs / "full")


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_full_disk_during_a_checkpoint_write_falls_back_on_resume(runs, tmp_path, monkeypatch, capsys):
    run = str(tmp_path / "run")
    real = tf.train.Checkpoint.write

    def cut_short_at_epoch_2(self, prefix, *args, **kwargs):
        out = real(self, prefix, *args, **kwargs)
        if prefix.endswith("ckpt-2"):
            data = prefix + ".data-00000-of-00001"
            os.truncate(data, os.path.getsize(data) // 2)
            raise tf.errors.ResourceExhaustedError(None, None, f"{data}: No space left on device")
        return out

    monkeypatch.setattr(tf.train.Checkpoint, "write", cut_short_at_epoch_2)
    assert main(ARGS + ["--run-dir", run]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("bctrain")]
    assert len(err) == 1 and "ckpt-2: checkpoint not written" in err[0] and "--resume" in err[0], err
    monkeypatch.setattr(tf.train.Checkpoint, "write", real)
    assert main(ARGS + ["--run-dir", run, "--resume"]) == 0
    assert "unreadable ckpt-2" in capsys.readouterr().err
    assert_same_result(tmp_path / "run", runs / "full")


@pytest.fixture
def small_fs(tmp_path):
    """A real 4 MiB file system (tmpfs), unmounted after the test; skipped where mounting is not allowed."""
    mnt = tmp_path / "fs"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True,
                             text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip() or mounted.returncode}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


# `bctrain train` whose file system is filled up just before the checkpoint of epoch 2 is written.
FULL_AT_CHECKPOINT_2 = """
import os, sys
from bctrain.cli import main
from bctrain.run import checkpoints
save = checkpoints.save
def fill_then_save(ckpt, ckpt_dir, epoch):
    if epoch == 2:
        with open(os.path.join(sys.argv[1], "filler"), "wb", buffering=0) as fh:
            for size in (1 << 16, 1 << 10, 1):
                try:
                    while True:
                        fh.write(bytes(size))
                except OSError:
                    pass
    save(ckpt, ckpt_dir, epoch)
checkpoints.save = fill_then_save
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
def test_a_really_full_disk_during_a_checkpoint_write_is_one_line_and_the_run_resumes(runs, small_fs):
    run = small_fs / "run"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-c", FULL_AT_CHECKPOINT_2, str(small_fs), *ARGS, "--run-dir", str(run)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert (result.returncode, result.stderr) == (2, f"bctrain: error: {run}/ckpt/ckpt-2: checkpoint not written (No "
                                                     "space left on device); fix this, then continue with --resume "
                                                     "(RESUME=1)\n")
    assert sorted(os.listdir(run / "ckpt")) == ["ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    (small_fs / "filler").unlink()
    resumed = subprocess.run([sys.executable, "-m", "bctrain.cli", *ARGS, "--run-dir", str(run), "--resume"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0 and resumed.stderr == "", resumed.stderr
    assert_same_result(run, runs / "full")


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_tensorboard_write_error_stops_in_one_line_and_the_run_resumes(runs, tmp_path, monkeypatch, capsys):
    run = str(tmp_path / "run")
    real = tf.summary.histogram

    def disk_full(*args, **kwargs):
        if kwargs.get("step", None) == 2 or tf.summary.experimental.get_step() == 2:
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(tf.summary, "histogram", disk_full)
    assert main(ARGS + ["--run-dir", run]) == 2
    err = [x for x in capsys.readouterr().err.splitlines() if x.startswith("bctrain")]
    assert len(err) == 1 and "tb: events not written" in err[0] and "--resume" in err[0], err
    monkeypatch.setattr(tf.summary, "histogram", real)
    assert main(ARGS + ["--run-dir", run, "--resume"]) == 0
    assert_same_result(tmp_path / "run", runs / "full")


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_resumed_xla_step_with_the_fused_update_continues_bit_identically(tmp_path):
    """The float32 XLA step with the fused update reads the first layer's ±1 weights from a variable
    the update writes (bctrain.step.caches); a resume must seed it from the restored weights."""
    cfg = with_overrides("mnist", dataset="mnist-sample", hidden=(16,), batch_size=200, epochs=3,
                         jit=True, update_kernel="fused")
    train(cfg, str(tmp_path / "full"), out=quiet())
    assert train(cfg, str(tmp_path / "cut"), out=quiet(), stop_after=2) is None
    train(cfg, str(tmp_path / "cut"), resume=True, out=quiet())
    assert_same_result(tmp_path / "cut", tmp_path / "full")
