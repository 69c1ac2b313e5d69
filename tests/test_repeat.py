"""bctrain.run.repeat: seeds in their own run directories, skipped when finished, mean ± std summary."""
import json
import math
import os

import pytest

from bctrain.run import repeat as rep
from bctrain.config import SEED_MAX, ConfigError, with_overrides
from bctrain.train import train


def tiny(**kw):
    return with_overrides("mnist", **{"hidden": (16,), "batch_size": 200, "epochs": 1, "jit": False, **kw})


def quiet():
    return open(os.devnull, "w")


def test_mean_and_sample_std_against_hand_values():
    assert rep.mean_std([1.0, 2.0, 3.0, 4.0]) == {"n": 4, "mean": 2.5, "std": pytest.approx(math.sqrt(5 / 3))}
    assert rep.mean_std([0.5]) == {"n": 1, "mean": 0.5, "std": None}
    assert rep.mean_std([]) == {"n": 0, "mean": None, "std": None}


def test_seeds_and_shards():
    assert rep.seeds_of(tiny(seed=5), 3) == [5, 6, 7]
    assert rep.parse_shard("1/3") == (1, 3)
    for bad in ("3/3", "x", "1/0", "-1/2"):
        with pytest.raises(ConfigError, match="shard"):
            rep.parse_shard(bad)
    with pytest.raises(ConfigError, match="seeds=0"):
        rep.seeds_of(tiny(), 0)
    assert rep.seeds_of(tiny(seed=SEED_MAX - 2), 3)[-1] == SEED_MAX


def test_seeds_above_the_largest_are_refused_before_anything_is_written(tmp_path, monkeypatch):
    """D8: --seed 4294967295 --seeds 3 would train seeds 2^32 and 2^32 + 1, which train and export refuse."""
    calls = []
    monkeypatch.setattr("bctrain.train.train", _fake_train(calls, {}))
    root = tmp_path / "rep"
    with pytest.raises(ConfigError, match=f"seeds=3 from seed={SEED_MAX}: the last seed would be {SEED_MAX + 2}"):
        rep.repeat(tiny(seed=SEED_MAX), str(root), 3, out=quiet())
    assert calls == [] and not root.exists()


def _fake_train(calls, errors):
    """Stands in for bctrain.train.train: records the call and writes config.json and metrics.json."""
    def fake(cfg, run_dir, data_dir=None, resume=False, out=None, **where):
        calls.append((cfg.seed, resume))
        os.makedirs(run_dir, exist_ok=True)
        with open(os.path.join(run_dir, "config.json"), "w") as fh:
            fh.write(cfg.to_json())
        metrics = {"best_epoch": 1, "epochs_run": 1, "val_error": errors[cfg.seed], "test_error": errors[cfg.seed],
                   "test_error_binary": errors[cfg.seed], "seconds_per_epoch": 2.0}
        with open(os.path.join(run_dir, "metrics.json"), "w") as fh:
            json.dump(metrics, fh)
    return fake


def test_shards_split_the_seeds_and_the_summary_names_the_missing(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("bctrain.train.train", _fake_train(calls, {1: 0.01, 2: 0.02, 3: 0.04}))
    root = str(tmp_path / "rep")
    summary = rep.repeat(tiny(), root, 3, shard=(1, 2), out=quiet())
    assert calls == [(2, False)] and summary["missing"] == [1, 3]
    assert "Not finished: seeds 1, 3." in open(os.path.join(root, "summary.md")).read()
    summary = rep.repeat(tiny(), root, 3, out=quiet())
    assert calls == [(2, False), (1, False), (3, False)] and summary["missing"] == []
    stats = json.load(open(os.path.join(root, "summary.json")))["stats"]["test_error"]
    assert stats["n"] == 3 and stats["mean"] == pytest.approx(0.07 / 3)
    assert stats["std"] == pytest.approx(math.sqrt(((0.01 - 0.07 / 3) ** 2 + (0.02 - 0.07 / 3) ** 2
                                                    + (0.04 - 0.07 / 3) ** 2) / 2))
    assert "| mean ± std (n = 3) | | | 2.33 ± 1.53 %" in open(os.path.join(root, "summary.md")).read()


@pytest.mark.slow
def test_two_seeds_train_then_a_second_call_skips_them(tmp_path, monkeypatch):
    root = str(tmp_path / "rep")
    summary = rep.repeat(tiny(), root, 2, out=quiet())
    assert sorted(summary["runs"]) == ["1", "2"] and summary["missing"] == []
    errors = [summary["runs"][s]["test_error"] for s in ("1", "2")]
    assert errors[0] != errors[1]  # different seeds, different runs
    assert summary["stats"]["test_error"]["mean"] == pytest.approx(sum(errors) / 2)
    assert summary["config"]["recipe"]["hidden"] == [16]
    for seed in (1, 2):
        assert json.load(open(os.path.join(root, f"seed-{seed}", "config.json")))["recipe"]["seed"] == seed

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished seed was trained again")
    monkeypatch.setattr("bctrain.train.train", must_not_train)
    log = tmp_path / "log.txt"
    with open(log, "w") as out:
        again = rep.repeat(tiny(), root, 2, out=out)
    assert again["runs"] == summary["runs"] and log.read_text().count("skipped") == 2


@pytest.mark.slow  # a few seconds or more: make test-all
def test_binarynet_seeds_differ_and_are_summarised(tmp_path):
    """Binary activations with dropout: each seed its own weights and dropout masks."""
    cfg = tiny(binarize_act="sign", dropout_in=0.2, dropout_hidden=0.5, preprocess="pm1")
    summary = rep.repeat(cfg, str(tmp_path / "rep"), 2, out=quiet())
    errors = [summary["runs"][s]["test_error"] for s in ("1", "2")]
    assert errors[0] != errors[1] and summary["stats"]["test_error"]["n"] == 2
    assert summary["config"]["recipe"]["binarize_act"] == "sign"


@pytest.mark.slow  # a few seconds or more: make test-all
def test_an_interrupted_seed_is_resumed(tmp_path, monkeypatch):
    root = str(tmp_path / "rep")
    cfg = tiny(epochs=2)
    train(cfg, rep.seed_dir(root, 1), out=quiet(), stop_after=1)
    calls = []
    monkeypatch.setattr("bctrain.train.train", _fake_train(calls, {1: 0.1}))
    rep.repeat(cfg, root, 1, out=quiet())
    assert calls == [(1, True)]


def _files(root):
    return {p: open(os.path.join(d, p), "rb").read() for d, _, names in os.walk(root) for p in names}


@pytest.mark.slow
def test_finished_seeds_of_another_configuration_are_refused_not_summarised(tmp_path, monkeypatch):
    """D1: a second repeat with other settings on the same root used to skip the finished seeds and
    write their statistics under the new settings (exit 0). Real runs, as in the reproduction."""
    root = str(tmp_path / "rep")
    rep.repeat(tiny(), root, 1, out=quiet())
    before = _files(root)
    monkeypatch.setattr("bctrain.train.train", _fake_train([], {1: 0.5}))
    for changed, field in ((tiny(hidden=(8,), binarize="stoch"), "hidden (16,) != (8,)"),
                           (tiny(epochs=2), "epochs 1 != 2")):
        with pytest.raises(ConfigError, match=r"seed-1 holds a different run \(.*") as info:
            rep.repeat(changed, root, 1, out=quiet())
        assert field in str(info.value) and "--root-dir" in str(info.value) and "\n" not in str(info.value)
    assert _files(root) == before  # no summary rewritten, nothing trained


@pytest.mark.parametrize("finished", [False, True])
def test_a_seed_of_another_configuration_is_refused_before_any_seed_trains(tmp_path, monkeypatch, finished):
    calls = []
    monkeypatch.setattr("bctrain.train.train", _fake_train(calls, {1: 0.1, 2: 0.2}))
    root = str(tmp_path / "rep")
    _fake_train([], {2: 0.2})(tiny(seed=2, hidden=(8,)), rep.seed_dir(root, 2))
    if not finished:  # interrupted: config.json without metrics.json
        os.remove(os.path.join(rep.seed_dir(root, 2), "metrics.json"))
    with pytest.raises(ConfigError, match=r"seed-2 holds a different run \(hidden \(8,\) != \(16,\)\)"):
        rep.repeat(tiny(), root, 2, out=quiet())
    assert calls == [] and os.listdir(root) == ["seed-2"]


def test_a_summary_of_another_configuration_is_not_overwritten(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr("bctrain.train.train", _fake_train(calls, {1: 0.1, 7: 0.2}))
    root = str(tmp_path / "rep")
    rep.repeat(tiny(), root, 1, out=quiet())
    before = _files(root)
    with pytest.raises(ConfigError, match=r"summary.json holds a different run \(.*hidden \(16,\) != \(8,\)"):
        rep.repeat(tiny(seed=7, hidden=(8,)), root, 1, out=quiet())  # seed-7 does not exist yet
    assert _files(root) == before and calls == [(1, False)]
    with open(os.path.join(root, "summary.json"), "w") as fh:
        fh.write("[1, 2")
    with pytest.raises(ConfigError, match="summary.json: unreadable summary"):
        rep.repeat(tiny(), root, 1, out=quiet())
    assert rep.repeat(tiny(), str(tmp_path / "other"), 1, out=quiet())["missing"] == []
