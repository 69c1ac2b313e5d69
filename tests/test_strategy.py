"""bctrain.step.strategy and the step under tf.distribute: replicas reproduce one device, resume, restore on
fewer replicas, two workers on localhost. Scenarios needing logical CPU devices run in fresh processes
(tests/strategy_runs.py), since devices can only be configured before TensorFlow starts."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from bctrain.step import strategy as strategies
from bctrain.config import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_slices_partition_every_batch():
    for n in range(0, 23):
        for replicas in (1, 2, 3, 4):
            bounds = [strategies.slice_bounds(n, replicas, r) for r in range(replicas)]
            assert bounds[0][0] == 0 and bounds[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, no overlap
            assert max(e - s for s, e in bounds) - min(e - s for s, e in bounds) <= 1


def test_the_chief_writes_results():
    assert strategies.is_chief(None, None, {})
    assert strategies.is_chief("worker", 0, {"worker": ["a:1", "b:2"]})
    assert not strategies.is_chief("worker", 1, {"worker": ["a:1", "b:2"]})
    assert strategies.is_chief("chief", 0, {"chief": ["a:1"], "worker": ["b:2"]})
    assert not strategies.is_chief("worker", 0, {"chief": ["a:1"], "worker": ["b:2"]})


def test_bad_strategy_arguments_are_one_line_errors(monkeypatch):
    with pytest.raises(ConfigError, match="strategy='ring'"):
        strategies.make("ring")
    with pytest.raises(ConfigError, match="replicas=-1"):
        strategies.make("mirrored", -1)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="TF_CONFIG"):
        strategies.make("multiworker")
    monkeypatch.setenv("TF_CONFIG", "[]")  # checked whole before TensorFlow's strategy sees it
    with pytest.raises(ConfigError, match="TF_CONFIG: expected a JSON object"):
        strategies.make("multiworker")

    class Two:
        num_replicas_in_sync = 2
    with pytest.raises(ConfigError, match="batch_size=101 is the global batch"):
        strategies.check_batch(101, Two())


def _scenario(*args, env=None, timeout=600):
    proc = subprocess.run([sys.executable, "-m", "tests.strategy_runs", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("binarize", ["det", "stoch", "det-sign"])
def test_two_replicas_reproduce_one_device(binarize, tmp_path):
    """5 Adam steps of a 784-32-10 net, global batch 200, on 2 logical CPU devices vs 1 device.

    det (and det-sign, binary activations): against the single-device step itself. stoch: each
    replica draws its own weights, so the
    oracle is one device computing the same global step with the replicas' draws on their rows.
    Not bit for bit: BatchNorm's sums and the weight gradients are added in another order (two
    halves, then the all-reduce). Tolerances: 1e-4 on latent weights (an Adam step moves them by
    about 0.07) and 1e-6 on BatchNorm parameters, std and Adam moments. Biases and the running means
    (which include them) are not compared: BatchNorm cancels the bias, so its gradient is rounding
    noise, which Adam's normalised step turns into differences up to lr.
    """
    r = _scenario("equivalence", binarize, env={"BCNN_CACHE": str(tmp_path)})
    assert r["replicas_equal"]  # the update leaves every replica with the same variables
    assert r["diffs"]["w"] < 1e-4
    for key in ("gamma", "beta", "std", "m", "v"):
        assert r["diffs"][key] < 1e-6, (key, r["diffs"])
    assert r["eval_errors"][0] == r["eval_errors"][1]  # every sample counted once, in uneven batches too
    if binarize == "stoch":
        assert all(r["draws_differ"])  # independent draws per replica
    else:
        for mirrored, single in r["losses"]:
            assert mirrored == pytest.approx(single, rel=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("binarize", ["stoch", "bnn"])
def test_a_mirrored_run_resumes_bit_identically(binarize, tmp_path):
    """bnn: binary activations and dropout, each replica drawing its rows' masks."""
    r = _scenario("resume", binarize, str(tmp_path), env={"BCNN_CACHE": str(tmp_path)})
    assert r["identical"] and r["losses"][0] == r["losses"][1] and r["replicas"] == [2, 2]


@pytest.mark.slow
def test_a_two_replica_checkpoint_restores_on_one(tmp_path):
    r = _scenario("restore-on-one", "det", str(tmp_path), env={"BCNN_CACHE": str(tmp_path)})
    assert r["strategies"] == [["mirrored", 2], ["default", 1]] and r["metrics_replicas"] == 1
    assert r["loss_cut"][0] == r["loss_full"][0]
    assert r["loss_cut"][1] == pytest.approx(r["loss_full"][1], rel=1e-4)  # same training, other sums


@pytest.mark.slow
def test_mixed_precisions_and_per_replica_statistics_train_under_two_replicas(tmp_path):
    r = _scenario("variants", str(tmp_path), env={"BCNN_CACHE": str(tmp_path)})
    assert all(0.0 < e < 0.5 for e in r["test_errors"].values()), r  # learned (chance: 0.9)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _two_workers(tmp_path, args, scratch_name="tmp"):
    """Run `args` (after `python -m`) as workers 0 and 1 of a localhost cluster; their outputs."""
    workers = [f"localhost:{p}" for p in _free_ports(2)]
    procs = []
    for i in range(2):
        scratch = tmp_path / f"{scratch_name}{i}"
        scratch.mkdir()
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "BCNN_CACHE": str(tmp_path / "cache"),
               "TMPDIR": str(scratch),
               "TF_CONFIG": json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, "-m", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        outputs = [p.communicate(timeout=600) for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], [err[-1500:] for _, err in outputs]
    return outputs


@pytest.mark.slow
def test_two_workers_resume_bit_identically(tmp_path):
    """Both workers stopped after epoch 1 and relaunched with --resume continue exactly as an
    uninterrupted two-worker run (stochastic: the workers' draws are restored too)."""
    _two_workers(tmp_path, ["tests.strategy_runs", "multiworker", "full", str(tmp_path / "full")], "a")
    _two_workers(tmp_path, ["tests.strategy_runs", "multiworker", "cut", str(tmp_path / "cut")], "b")
    assert not (tmp_path / "cut" / "metrics.json").exists()
    _two_workers(tmp_path, ["tests.strategy_runs", "multiworker", "resume", str(tmp_path / "cut")], "c")
    full, cut = np.load(tmp_path / "full" / "best.npz"), np.load(tmp_path / "cut" / "best.npz")
    for key in full.files:
        np.testing.assert_array_equal(full[key], cut[key], err_msg=key)


@pytest.mark.slow
def test_two_workers_on_localhost_write_one_run_directory(tmp_path):
    run = tmp_path / "run"
    outputs = _two_workers(tmp_path, ["bctrain.cli", "train", "--strategy", "multiworker", "--dataset",
                                      "mnist-sample", "--epochs", "1", "--hidden", "16", "--jit", "false",
                                      "--run-dir", str(run)])
    history = [json.loads(line) for line in open(run / "history.jsonl")]
    assert len(history) == 1 and (history[0]["strategy"], history[0]["replicas"], history[0]["workers"]) == \
        ("multiworker", 2, 2)
    assert sorted(os.listdir(run / "ckpt")) == ["ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    assert json.load(open(run / "metrics.json"))["replicas"] == 2
    assert "epoch    1" in outputs[0][0] and outputs[1][0] == ""  # only the chief reports
    assert os.listdir(tmp_path / "tmp1") == []  # the other worker's private directory is gone
    assert set(os.listdir(tmp_path)) <= {"cache", "run", "tmp0", "tmp1"}  # nothing else was written


def _listening(port) -> bool:
    try:
        socket.create_connection(("localhost", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("stop, code, line", [
    (None, 2, "bctrain: error: TF_CONFIG: after 3 s still waiting for worker 0 at localhost:{peer} (Connection "
     "refused); start every worker with the same TF_CONFIG cluster, or allow longer with BCTRAIN_PEER_TIMEOUT=SECONDS"),
    (signal.SIGINT, 130, "bctrain: interrupted; start every worker again, with --resume (RESUME=1) once the chief's "
     "run directory holds the run"),
    (signal.SIGTERM, 143, "bctrain: terminated; start every worker again, with --resume (RESUME=1) once the chief's "
     "run directory holds the run"),
], ids=["timeout", "SIGINT", "SIGTERM"])
def test_a_worker_waiting_for_a_peer_that_never_comes_stops_in_time_or_on_a_signal(tmp_path, stop, code, line):
    """Worker 1 of two, worker 0 never started: it waits BCTRAIN_PEER_TIMEOUT seconds (here 3, or 60
    when it is to be stopped by a signal) and stops with one line naming worker 0; SIGINT and SIGTERM
    stop it at once. Nothing is written. (It used to wait inside TensorFlow forever, deaf to both.)"""
    peer, port = _free_ports(2)
    env = {**os.environ, "BCTRAIN_PEER_TIMEOUT": "60" if stop else "3", "TF_CONFIG": json.dumps(
        {"cluster": {"worker": [f"localhost:{peer}", f"localhost:{port}"]}, "task": {"type": "worker", "index": 1}})}
    proc = subprocess.Popen([sys.executable, "-m", "bctrain.cli", "train", "--strategy", "multiworker", "--dataset",
                             "mnist-sample", "--run-dir", str(tmp_path / "run")], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while not _listening(port):  # it waits for worker 0 once it listens on its own port
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        waiting = time.monotonic()
        if stop:
            proc.send_signal(stop)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - waiting < (5 if stop else 8)
    assert (proc.returncode, err.splitlines(), out) == (code, [line.format(peer=peer)], "")
    assert not (tmp_path / "run").exists()


def test_only_the_chief_task_writes_results(monkeypatch):
    cluster = {"worker": ["a:1", "b:2"]}
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}}))
    assert strategies.task_writes_results("default") and not strategies.task_writes_results("multiworker")
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}}))
    assert strategies.task_writes_results("multiworker")
