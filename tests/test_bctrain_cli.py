"""`bctrain train`: user errors are one line on stderr, exit 2, and leave no run directory."""
import os

import pytest

from bctrain.cli import main


@pytest.mark.parametrize("args, words", [
    (["--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist"),
    (["--binarize", "sign"], "binarize"),
    (["--batch-size", "100000"], "batch_size=100000"),
    (["--hidden", "64", "--conv", "8", "--pool", "1"], "input_shape"),
    (["--dataset", "imagenet"], "dataset"),
    (["--resume"], "nothing to resume"),
])
def test_user_errors_are_one_line(tmp_path, capsys, args, words):
    run = tmp_path / "run"
    assert main(["train", "--epochs", "1", "--hidden", "16", "--run-dir", str(run)] + args) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("notice:")]
    assert len(err) == 1 and err[0].startswith("bctrain: error:") and words in err[0], err
    assert not run.exists()


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
    for flag in ("--epochs", "--binarize", "--seed", "--data-dir", "--run-dir", "--resume", "--jit"):
        assert flag in text


def test_output_is_one_line_per_epoch_when_not_a_terminal(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "--epochs", "2", "--hidden", "16", "--jit", "false", "--run-dir", run]) == 0
    captured = capsys.readouterr()
    epoch_lines = [line for line in captured.out.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in epoch_lines] == ["1", "2"]
    assert "step/s" not in captured.err and "\r" not in captured.err  # no progress bar


def test_interrupt_says_how_to_resume(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("bctrain.train.train", interrupted)
    assert main(["train", "--epochs", "1", "--run-dir", str(tmp_path / "run")]) == 130
    assert "--resume" in capsys.readouterr().err


def test_non_finite_training_exits_1_with_one_line(tmp_path, capsys):
    run = str(tmp_path / "run")
    assert main(["train", "--epochs", "3", "--hidden", "16", "--jit", "false", "--dataset", "mnist-sample",
                 "--optimizer", "sgd", "--lr-start", "1e30", "--lr-end", "1e29", "--run-dir", run]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("bctrain: error: training stopped:") and "epoch 1, step" in err[0]
