"""`bctrain train`: user errors are one line on stderr, exit 2, and leave no run directory."""
import os
import signal
import subprocess
import sys

import pytest

from bctrain.cli import Terminated, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("args, words", [
    (["--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
    (["--binarize", "sign"], "binarize"),
    (["--batch-size", "100000"], "batch_size=100000"),
    (["--hidden", "64", "--conv", "8", "--pool", "1"], "input_shape"),
    (["--dataset", "imagenet"], "dataset"),
    (["--resume"], "nothing to resume"),
    (["--seed", "-1"], "seed=-1"),
    (["--dataset", "mnist-sample", "--data-dir", "/some/dir"], "mnist-sample is bundled and reads none"),
    (["--h", "nan"], "h='nan'"),
    (["--bn-eps", "-1"], "bn_eps=-1.0"),
    (["--n-classes", "5", "--dataset", "mnist-sample"], "n_classes=5: mnist-sample has labels up to 9"),
    (["--binarize-act", "tanh"], "binarize_act='tanh': expected one of none, sign"),
    (["--preset", "mnist-bnn", "--h", "glorot"], "h='glorot': binary activations"),
    (["--dropout-hidden", "1"], "dropout_hidden=1.0"),
    (["--preprocess", "pm2"], "preprocess='pm2'"),
])
def test_user_errors_are_one_line(tmp_path, capsys, args, words):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--hidden", "16", "--run-dir", str(run)] + args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("notice:")]
    assert len(err) == 1 and err[0].startswith("bctrain: error:") and words in err[0], err
    assert not run.exists()


@pytest.mark.slow  # a few seconds or more: make test-all
def test_a_failed_start_does_not_block_the_run_directory(tmp_path, capsys):
    run = str(tmp_path / "run")
    base = ["train", "--epochs", "1", "--hidden", "16", "--jit", "false", "--run-dir", run]
    assert main(base + ["--data-dir", str(tmp_path / "missing")]) == 2
    assert main(base) == 0
    assert os.path.isfile(os.path.join(run, "metrics.json"))


def test_help_documents_every_make_variable(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--epochs", "--binarize", "--seed", "--data-dir", "--run-dir", "--resume", "--jit", "--precision",
                 "--patience", "--strategy", "--replicas", "--binarize-act", "--dropout-in", "--dropout-hidden"):
        assert flag in text


@pytest.mark.slow  # a few seconds or more: make test-all
def test_output_is_one_line_per_epoch_when_not_a_terminal(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "--epochs", "2", "--hidden", "16", "--jit", "false", "--run-dir", run]) == 0
    captured = capsys.readouterr()
    epoch_lines = [line for line in captured.out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in epoch_lines] == ["1", "2"]
    assert "step/s" not in captured.err and "\r" not in captured.err  # no progress bar


@pytest.mark.parametrize("started", [False, True])
@pytest.mark.parametrize("stop, code, word", [(KeyboardInterrupt, 130, "interrupted"), (Terminated, 143, "terminated")])
def test_interrupt_says_how_to_go_on(tmp_path, capsys, monkeypatch, started, stop, code, word):
    run = tmp_path / "run"

    def interrupted(*args, **kwargs):
        if started:  # Ctrl-C after the run directory was prepared
            run.mkdir()
            (run / "config.json").write_text("{}")
        raise stop

    monkeypatch.setattr("bctrain.train.train", interrupted)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["train", "--epochs", "1", "--run-dir", str(run)]) == code
    assert signal.getsignal(signal.SIGTERM) is before  # main() puts back the handler it found
    err = capsys.readouterr().err
    assert err.startswith(f"bctrain: {word}; ") and err.count("\n") == 1
    assert ("--resume" in err) == started and ("run the same command again" in err) == (not started)


def test_an_interrupted_worker_that_writes_nothing_says_to_restart_every_worker(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}')
    def terminated(*args, **kwargs):
        raise Terminated

    monkeypatch.setattr("bctrain.train.train", terminated)
    assert main(["train", "--strategy", "multiworker", "--run-dir", str(tmp_path / "run")]) == 143
    assert capsys.readouterr().err == ("bctrain: terminated; start every worker again, with --resume (RESUME=1) once "
                                       "the chief's run directory holds the run\n")


def test_sigterm_stops_in_one_line_with_exit_143(tmp_path):
    """A real SIGTERM (here while TensorFlow would load) ends the command as Ctrl-C does, in one line."""
    code = ("import os, signal, sys, time\n"
            "from bctrain.run import startup\n"
            "startup.load_tensorflow = lambda verbose: os.kill(os.getpid(), signal.SIGTERM) or time.sleep(30)\n"
            "from bctrain.cli import main\n"
            f"sys.exit(main(['train', '--run-dir', {str(tmp_path / 'run')!r}]))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (143, "bctrain: terminated; nothing was written; run the same "
                                                       "command again\n")


# The malformed TF_CONFIG of the reliability cases (D4); each crashed, some after writing the run directory.
TF_CONFIGS = [
    ("{not json", "TF_CONFIG: not JSON"),
    ("[]", "TF_CONFIG: expected a JSON object"),
    ('{"cluster": {"worker": ["localhost:12345"]}, "task": {"type": "worker", "index": 5}}', "task.index: 5"),
    ('{"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, "task": {"type": "chief", "index": 0}}',
     'task.type: "chief"'),
    ('{"cluster": {"worker": "localhost:12345"}, "task": {"type": "worker", "index": 0}}', "cluster.worker: "),
]


@pytest.mark.parametrize("command", ["train", "repeat"])
@pytest.mark.parametrize("tf_config, words", TF_CONFIGS)
def test_a_malformed_tf_config_is_one_line_before_tensorflow_loads(tmp_path, capsys, monkeypatch, command,
                                                                  tf_config, words):
    monkeypatch.setenv("TF_CONFIG", tf_config)
    monkeypatch.setattr("bctrain.run.startup.load_tensorflow", lambda verbose: pytest.fail("TensorFlow loaded"))
    where = "--run-dir" if command == "train" else "--root-dir"
    assert main([command, "--strategy", "multiworker", "--dataset", "mnist-sample", where, str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bctrain: error: TF_CONFIG: ") and words in err[0], err
    assert not (tmp_path / "r").exists()


def test_a_worker_lost_during_multiworker_training_is_one_line(tmp_path, capsys, monkeypatch):
    import tensorflow as tf

    def peer_gone(*args, **kwargs):  # what the collectives raise once another worker has stopped
        raise tf.errors.UnavailableError(None, None, "Collective ops is aborted by: ... Socket closed")

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 0}}')
    monkeypatch.setattr("bctrain.train.train", peer_gone)
    assert main(["train", "--strategy", "multiworker", "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bctrain: error: TF_CONFIG: another worker stopped or became "
                                               "unreachable (UnavailableError); start every worker again"), err


@pytest.mark.parametrize("make, words", [
    ("file", "exists and is not a directory"), ("file parent", "Not a directory"),
    ("symlink loop", "Too many levels of symbolic links"), ("empty", "--run-dir: empty"),
    ("read-only", "run the same command again"),
])
def test_a_run_directory_the_system_refuses_is_one_line(tmp_path, capsys, make, words):
    (tmp_path / "file").write_text("mine")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    run = {"file": tmp_path / "file", "file parent": tmp_path / "file" / "run", "empty": "",
           "symlink loop": tmp_path / "loop", "read-only": read_only_dir(tmp_path) / "run"}[make]
    assert main(["train", "--epochs", "1", "--hidden", "16", "--jit", "false", "--dataset", "mnist-sample",
                 "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bctrain: error:") and words in err[0], err
    assert (tmp_path / "file").read_text() == "mine"


def read_only_dir(tmp_path):
    """A directory this process cannot write in: a mode-555 one, or /sys when running as root."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    for candidate in (ro, "/sys"):
        try:
            os.mkdir(os.path.join(candidate, "probe"))
        except OSError:
            return type(tmp_path)(candidate)
        os.rmdir(os.path.join(candidate, "probe"))
    pytest.skip("no read-only directory found for this user")


@pytest.mark.parametrize("args, words", [(["--seeds", "0"], "seeds=0"), (["--shard", "2/2"], "shard='2/2'"),
                                         (["--patience", "-1"], "patience")])
def test_repeat_user_errors_are_one_line(tmp_path, capsys, args, words):
    root = tmp_path / "rep"
    assert main(["repeat", "--epochs", "1", "--hidden", "16", "--root-dir", str(root)] + args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("notice:")]
    assert len(err) == 1 and err[0].startswith("bctrain: error:") and words in err[0], err
    assert not root.exists()


def test_repeat_command_writes_the_summary(tmp_path, capsys):
    root = tmp_path / "rep"
    assert main(["repeat", "--seeds", "1", "--epochs", "1", "--hidden", "16", "--jit", "false",
                 "--root-dir", str(root)]) == 0
    assert (root / "seed-1" / "metrics.json").is_file() and (root / "summary.json").is_file()
    assert "mean ± std (n = 1)" in capsys.readouterr().out


@pytest.mark.slow  # a few seconds or more: make test-all
def test_non_finite_training_exits_1_with_one_line(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "--epochs", "3", "--hidden", "16", "--jit", "false", "--dataset", "mnist-sample",
                 "--optimizer", "sgd", "--lr-start", "1e30", "--lr-end", "1e29", "--run-dir", run]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bctrain: error: training stopped:") and "epoch 1, step" in err[0]


@pytest.mark.parametrize("text", ["16,,16,", "16,", "a,16", "16;16"])
def test_a_malformed_size_list_is_refused(capsys, text):
    with pytest.raises(SystemExit) as info:
        main(["train", "--hidden", text])
    assert info.value.code == 2 and "expected comma-separated integers" in capsys.readouterr().err


NO_TENSORFLOW = ("import sys; from bctrain.cli import main; rc = main(sys.argv[1:]); "
                 "assert 'tensorflow' not in sys.modules, 'TensorFlow was loaded'; sys.exit(rc)")


@pytest.mark.parametrize("args, words", [
    (["train", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist: data directory does not exist"),
    (["train", "--data-dir", "FILE"], "FILE: not a directory; expected a data directory"),
    (["repeat", "--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist: data directory does not exist"),
    (["repeat", "--seed", "4294967295", "--seeds", "3"], "seeds=3 from seed=4294967295"),
    (["train", "--dataset", "mnist-sample", "--data-dir", "/some/dir"], "mnist-sample is bundled and reads none"),
])
def test_errors_that_need_no_tensorflow_come_before_it_loads(tmp_path, args, words):
    """Issue 22 item 13: `--data-dir /nonexistent` took seconds (TensorFlow's import) to be refused."""
    (tmp_path / "FILE").write_text("not a directory")
    args = [str(tmp_path / "FILE") if a == "FILE" else a for a in args]
    where = ["--run-dir", str(tmp_path / "run")] if args[0] == "train" else ["--root-dir", str(tmp_path / "rep")]
    proc = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, *args, "--epochs", "1", *where],
                          capture_output=True, text=True, timeout=120)
    err = proc.stderr.splitlines()
    assert proc.returncode == 2 and len(err) == 1 and err[0].startswith("bctrain: error:"), proc.stderr
    assert words.replace("FILE", str(tmp_path / "FILE")) in err[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]
