"""The training loop on the bundled sample: learning, run record, resume, refusal."""
import dataclasses
import hashlib
import json
import os

import numpy as np
import pytest

from bctrain.config import ConfigError, with_overrides
from bctrain.data import load_splits
from bctrain.run.finite import NonFiniteError
from bctrain.train import train


def tiny(**kw):
    return with_overrides("mnist", hidden=(32,), batch_size=200, lr_start=3e-3, lr_end=1e-3, jit=False, **kw)


def quiet():
    return open(os.devnull, "w")


def test_a_few_epochs_learn_and_write_the_run_record(tmp_path):
    run = str(tmp_path / "run")
    metrics = train(tiny(epochs=3), run, out=quiet())
    history = [json.loads(line) for line in open(os.path.join(run, "history.jsonl"))]
    assert [r["epoch"] for r in history] == [1, 2, 3]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    # 6,000 training samples and a 32-unit net: well above chance (90 % error) after one epoch.
    assert history[0]["val_error_binary"] < 0.25
    assert metrics["dataset"] == "mnist-sample" and metrics["binarize"] == "det"
    for key in ("n_train", "n_val", "n_test", "epochs_run", "best_epoch", "val_error", "test_error",
                "test_error_binary", "seconds_per_epoch", "samples_per_second", "device", "tensorflow_version"):
        assert key in metrics
    best = min(history, key=lambda r: (r["val_error_binary"], -r["epoch"]))
    assert metrics["best_epoch"] == best["epoch"] and metrics["test_error"] == best["test_error_binary"]
    assert all(0.0 <= f <= 1.0 for f in history[-1]["flip_ratio"]) and len(history[-1]["at_bound"]) == 2
    for name in ("config.json", "best.npz", "preprocess.npz", "metrics.json", "curves.png", "weights_layer0.png"):
        assert os.path.isfile(os.path.join(run, name)), name
    assert os.listdir(os.path.join(run, "tb"))
    weights = np.load(os.path.join(run, "best.npz"))
    assert np.abs(weights["0/w"]).max() <= 1.0
    prep = np.load(os.path.join(run, "preprocess.npz"))  # kind "mean" and its one fitted parameter
    assert sorted(prep.files) == ["kind", "mean"] and str(prep["kind"]) == "mean"
    x_train = load_splits("mnist-sample", None).x_train
    np.testing.assert_allclose(prep["mean"], x_train.reshape(len(x_train), -1).mean(axis=0) / 255, atol=1e-7)
    data = json.load(open(os.path.join(run, "data.json")))
    assert sorted(data) == ["dataset", "n_test", "n_train", "n_val", "params_sha256", "train_sha256"]


def test_stochastic_run_reports_real_and_binary(tmp_path):
    metrics = train(tiny(epochs=1, binarize="stoch"), str(tmp_path / "run"), out=quiet())
    assert metrics["test_error"] is not None and metrics["test_error_binary"] is not None
    history = json.loads(open(tmp_path / "run" / "history.jsonl").readline())
    assert {"val_error_real", "val_error_binary", "test_error_real", "test_error_binary"} <= set(history)


BNN = dict(binarize_act="sign", dropout_in=0.2, dropout_hidden=0.5, preprocess="pm1")  # BinaryNet's MLP recipe


@pytest.mark.parametrize("binarize, jit, bnn", [("det", False, {}),
                                                pytest.param("stoch", False, {}, marks=pytest.mark.slow),
                                                pytest.param("stoch", True, {}, marks=pytest.mark.slow),
                                                pytest.param("det", False, BNN, marks=pytest.mark.slow),
                                                pytest.param("det", True, BNN, marks=pytest.mark.slow),
                                                pytest.param("stoch", True, BNN, marks=pytest.mark.slow)])
def test_resume_is_bit_identical(tmp_path, binarize, jit, bnn):
    """Resumed after epoch 1, the run ends with the uninterrupted one's weights: the stochastic
    weights' and the dropout masks' generators are checkpointed."""
    cfg = dataclasses.replace(tiny(epochs=2, binarize=binarize, **bnn), jit=jit)
    train(cfg, str(tmp_path / "full"), out=quiet())
    assert train(cfg, str(tmp_path / "cut"), out=quiet(), stop_after=1) is None
    assert not os.path.exists(tmp_path / "cut" / "metrics.json")
    train(cfg, str(tmp_path / "cut"), resume=True, out=quiet())
    full, cut = np.load(tmp_path / "full" / "best.npz"), np.load(tmp_path / "cut" / "best.npz")
    for key in full.files:
        np.testing.assert_array_equal(full[key], cut[key], err_msg=key)
    hist_full = [json.loads(x) for x in open(tmp_path / "full" / "history.jsonl")]
    hist_cut = [json.loads(x) for x in open(tmp_path / "cut" / "history.jsonl")]
    assert [r["train_loss"] for r in hist_full] == [r["train_loss"] for r in hist_cut]


def test_binary_activations_with_dropout_learn(tmp_path):
    metrics = train(tiny(epochs=2, **BNN), str(tmp_path / "run"), out=quiet())
    history = [json.loads(line) for line in open(tmp_path / "run" / "history.jsonl")]
    assert metrics["binarize_act"] == "sign" and history[-1]["train_loss"] < history[0]["train_loss"]
    # a 32-unit binary-activation net on 6,000 samples: far above chance (90 % error) after two epochs
    assert metrics["val_error"] < 0.4


@pytest.mark.slow  # a few seconds or more: make test-all
def test_mismatched_run_directory_is_refused(tmp_path):
    run = str(tmp_path / "run")
    train(tiny(epochs=1), run, out=quiet())
    before = open(os.path.join(run, "best.npz"), "rb").read()
    with pytest.raises(ConfigError, match="different run"):
        train(tiny(epochs=1, seed=2), run, resume=True, out=quiet())
    assert open(os.path.join(run, "best.npz"), "rb").read() == before


def test_learning_rate_starts_at_lr_start_and_decays_once_per_epoch(tmp_path):
    cfg = tiny(epochs=3)
    train(cfg, str(tmp_path / "run"), out=quiet())
    lrs = [json.loads(x)["lr"] for x in open(tmp_path / "run" / "history.jsonl")]
    decay = (cfg.lr_end / cfg.lr_start) ** (1 / cfg.epochs)
    assert lrs == pytest.approx([cfg.lr_start, cfg.lr_start * decay, cfg.lr_start * decay ** 2], rel=1e-12)


@pytest.mark.slow  # a few seconds or more: make test-all
def test_stochastic_selection_uses_real_weights(tmp_path):
    metrics = train(tiny(epochs=3, binarize="stoch"), str(tmp_path / "run"), out=quiet())
    history = [json.loads(x) for x in open(tmp_path / "run" / "history.jsonl")]
    best = max((r for r in history if r["val_error_real"] <= min(h["val_error_real"] for h in history
                                                                 if h["epoch"] <= r["epoch"])),
               key=lambda r: r["epoch"])
    assert metrics["best_epoch"] == best["epoch"]
    assert metrics["test_error"] == best["test_error_real"]
    assert metrics["test_error_binary"] == best["test_error_binary"]
    assert int(np.load(tmp_path / "run" / "best.npz")["epoch"]) == best["epoch"]


@pytest.mark.slow  # a few seconds or more: make test-all
def test_float_baseline_has_no_binary_diagnostics(tmp_path):
    metrics = train(tiny(epochs=1, binarize="none"), str(tmp_path / "run"), out=quiet())
    record = json.loads(open(tmp_path / "run" / "history.jsonl").readline())
    assert "flip_ratio" not in record and "val_error_real" in record
    assert metrics["test_error_binary"] is None and metrics["test_error"] < 0.5


@pytest.mark.slow  # a few seconds or more: make test-all
def test_resume_on_other_data_is_refused(tmp_path):
    from tests.test_mnist import write_mnist_dir
    cfg = tiny(epochs=2)
    run = str(tmp_path / "run")
    train(cfg, run, out=quiet(), stop_after=1)
    before = open(os.path.join(run, "preprocess.npz"), "rb").read()
    write_mnist_dir(tmp_path / "other", n_train=1200, n_test=200)
    with pytest.raises(ConfigError, match="other data") as info:
        train(cfg, run, data_dir=str(tmp_path / "other"), resume=True, out=quiet())
    # Names what differs, with the recorded and the new values
    assert "dataset 'mnist-sample' then, 'mnist' now" in str(info.value)
    assert "train_sha256 " in str(info.value) and "... then, " in str(info.value)
    assert open(os.path.join(run, "preprocess.npz"), "rb").read() == before


def test_epochs_without_improvement_counts_strict_improvements():
    from bctrain.train import epochs_without_improvement
    history = lambda *vals: [{"v": v} for v in vals]
    assert epochs_without_improvement(history(), "v") == 0
    assert epochs_without_improvement(history(0.5), "v") == 0
    assert epochs_without_improvement(history(0.5, 0.4, 0.4, 0.45), "v") == 2  # equal is no improvement
    assert epochs_without_improvement(history(0.5, 0.6, 0.3), "v") == 0


@pytest.mark.slow  # a few seconds or more: make test-all
def test_patience_stops_early_and_keeps_the_selection_rule(tmp_path):
    from bctrain.train import epochs_without_improvement
    cfg = dataclasses.replace(tiny(epochs=20, patience=2), lr_end=1e-7)
    metrics = train(cfg, str(tmp_path / "run"), out=quiet())
    history = [json.loads(x) for x in open(tmp_path / "run" / "history.jsonl")]
    assert metrics["epochs_run"] == len(history) < 20
    # stopped at the first epoch after which the validation error had not fallen for 2 epochs
    stale = [epochs_without_improvement(history[:e], "val_error_binary") for e in range(1, len(history) + 1)]
    assert stale[-1] == 2 and max(stale[:-1]) < 2
    best = max((r for r in history if r["val_error_binary"] <= min(h["val_error_binary"] for h in history
                                                                   if h["epoch"] <= r["epoch"])),
               key=lambda r: r["epoch"])
    assert metrics["best_epoch"] == best["epoch"] and metrics["test_error"] == best["test_error_binary"]
    assert int(np.load(tmp_path / "run" / "best.npz")["epoch"]) == best["epoch"]


def _svhn_dir(tmp_path):
    from dataset_files import svhn_arrays, write_svhn_dir
    return write_svhn_dir(tmp_path / "svhn", svhn_arrays(n_train=60, n_extra=40, n_test=12))


def tiny_cnn(**kw):
    return with_overrides("svhn", **{"conv": (4, 4), "pool": (0, 1), "hidden": (8,), "batch_size": 10, "epochs": 2,
                                     "jit": False, **kw})


def test_a_cnn_trains_on_svhn_files_with_gcn_lcn(tmp_path):
    data_dir = _svhn_dir(tmp_path)
    run = str(tmp_path / "run")
    metrics = train(tiny_cnn(), run, data_dir=str(data_dir), out=quiet())
    assert metrics["dataset"] == "svhn" and (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (80, 20, 12)
    prep = np.load(os.path.join(run, "preprocess.npz"))
    assert prep.files == ["kind"] and str(prep["kind"]) == "gcn_lcn"  # a kind without fitted parameters
    data = json.load(open(os.path.join(run, "data.json")))
    assert data["dataset"] == "svhn" and data["params_sha256"] == hashlib.sha256(b"").hexdigest()
    weights = np.load(os.path.join(run, "best.npz"))
    assert weights["0/w"].shape == (3, 3, 3, 4) and weights["2/w"].shape == (16 * 16 * 4, 8)


@pytest.mark.slow  # a few seconds or more: make test-all
def test_cnn_resume_is_bit_identical_and_reuses_the_preprocessing_cache(tmp_path, monkeypatch):
    from bctrain.data import cache
    data_dir = str(_svhn_dir(tmp_path))
    cfg = tiny_cnn()
    train(cfg, str(tmp_path / "full"), data_dir=data_dir, out=quiet())
    monkeypatch.setattr(cache, "compute", lambda *a, **k: pytest.fail("preprocessed twice"))
    assert train(cfg, str(tmp_path / "cut"), data_dir=data_dir, out=quiet(), stop_after=1) is None
    train(cfg, str(tmp_path / "cut"), data_dir=data_dir, resume=True, out=quiet())
    full, cut = np.load(tmp_path / "full" / "best.npz"), np.load(tmp_path / "cut" / "best.npz")
    for key in full.files:
        np.testing.assert_array_equal(full[key], cut[key], err_msg=key)


@pytest.mark.parametrize("change, message", [
    ({"input_shape": (32, 32, 1)}, "the conv layers need the images' 32,32,3"),
    ({"conv": (), "pool": (), "input_shape": (784,)}, "the images have 3072 values"),
])
def test_input_shape_must_fit_the_images(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):
        train(tiny_cnn(**change), str(tmp_path / "run"), data_dir=str(_svhn_dir(tmp_path)), out=quiet())
    assert not os.path.exists(tmp_path / "run")


def test_non_finite_training_stops_and_keeps_the_last_finite_epoch(tmp_path):
    # Finite in epoch 1 (lr 1e-3), then the learning rate grows to 3e13 and the loss overflows.
    cfg = dataclasses.replace(tiny(epochs=3, optimizer="sgd"), lr_start=1e-3, lr_end=1e30)
    run = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"at epoch 2, step \d+ of 30; the checkpoint of epoch 1"):
        train(cfg, str(run), out=quiet())
    text = (run / "history.jsonl").read_text()
    history = [json.loads(line) for line in text.splitlines()]
    assert [r["epoch"] for r in history] == [1] and "NaN" not in text and "Infinity" not in text
    assert int(np.load(run / "best.npz")["epoch"]) == 1
    assert all(np.all(np.isfinite(v)) for v in np.load(run / "best.npz").values())
    assert sorted(os.listdir(run / "ckpt")) == ["ckpt-1.data-00000-of-00001", "ckpt-1.index"]
    assert not (run / "metrics.json").exists()


def test_a_run_that_is_never_finite_writes_no_weights(tmp_path):
    run = tmp_path / "run"
    with pytest.raises(NonFiniteError, match=r"at epoch 1, step \d+ of 30; no epoch had finished"):
        cfg = dataclasses.replace(tiny(epochs=3, optimizer="sgd"), lr_start=1e30, lr_end=1e29)
        train(cfg, str(run), out=quiet())
    assert not any((run / name).exists() for name in ("best.npz", "history.jsonl", "metrics.json", "ckpt"))
