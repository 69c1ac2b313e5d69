"""Run directory: a different config or other data are refused and nothing is overwritten."""
import dataclasses
import hashlib
import os

import numpy as np
import pytest

from bctrain.run import rundir
from bctrain.config import ConfigError, load_config, with_overrides
from bctrain.data.splits import Splits


def test_new_run_writes_config(tmp_path):
    cfg = with_overrides("mnist", epochs=2)
    rundir.prepare(str(tmp_path / "run"), cfg, resume=False)
    assert (tmp_path / "run" / "config.json").read_text() == cfg.to_json()


def test_different_config_is_refused_and_left_untouched(tmp_path):
    run = str(tmp_path / "run")
    rundir.prepare(run, with_overrides("mnist", epochs=2), resume=False)
    before = open(os.path.join(run, "config.json")).read()
    for resume in (False, True):
        with pytest.raises(ConfigError, match="epochs 2 != 3"):
            rundir.prepare(run, with_overrides("mnist", epochs=3), resume=resume)
    assert open(os.path.join(run, "config.json")).read() == before


def test_same_config_needs_resume(tmp_path):
    run, cfg = str(tmp_path / "run"), with_overrides("mnist", epochs=2)
    rundir.prepare(run, cfg, resume=False)
    with pytest.raises(ConfigError, match="--resume"):
        rundir.prepare(run, cfg, resume=False)
    rundir.prepare(run, cfg, resume=True)


def test_resume_without_run_and_foreign_directory_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        rundir.prepare(str(tmp_path / "none"), with_overrides("mnist"), resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a run directory"):
        rundir.prepare(str(tmp_path / "other"), with_overrides("mnist"), resume=False)


def test_a_resume_may_change_the_runtime_and_says_whether_the_results_stay_identical(tmp_path):
    run, cfg = str(tmp_path / "run"), with_overrides("mnist", epochs=2)
    rundir.prepare(run, cfg, resume=False)
    assert rundir.prepare(run, cfg, resume=True) == []
    faster = dataclasses.replace(cfg, steps_per_call=4, update_kernel="xla", eval_batch_size=500)
    lines = rundir.prepare(run, faster, resume=True)
    assert lines == [f"resuming with {name} {new!r} (the run had {old!r}): the same steps and results"
                     for name, new, old in (("update_kernel", "xla", "auto"), ("eval_batch_size", 500, 1000),
                                            ("steps_per_call", 4, 8))]
    assert load_config(run) == cfg  # config.json records the new runtime once the checkpoint is restored:
    rundir.record_runtime(run, faster)
    assert load_config(run) == faster
    other = dataclasses.replace(faster, jit=False, strategy="mirrored", replicas=2)
    lines = rundir.prepare(run, other, resume=True)
    assert [line.split(" (the run")[0] for line in lines] == [
        "resuming with jit False", "resuming with strategy 'mirrored'", "resuming with replicas 2"]
    assert all("will differ slightly from an uninterrupted run's" in line for line in lines)
    with pytest.raises(ConfigError, match=r"holds a different run \(seed 1 != 2\)"):
        rundir.prepare(run, dataclasses.replace(other, seed=2), resume=True)


def test_a_stochastic_run_keeps_the_random_algorithm_of_its_jit(tmp_path):
    run, cfg = str(tmp_path / "run"), with_overrides("mnist", epochs=2, binarize="stoch")
    rundir.prepare(run, cfg, resume=False)
    with pytest.raises(ConfigError, match="jit=False: .* draws its stochastic weights with threefry, which needs "
                                          "jit=True"):
        rundir.prepare(run, dataclasses.replace(cfg, jit=False), resume=True)
    assert rundir.prepare(run, dataclasses.replace(cfg, steps_per_call=2), resume=True)  # other changes are fine


def test_a_dropout_run_keeps_the_random_algorithm_of_its_jit(tmp_path):
    run, cfg = str(tmp_path / "run"), with_overrides("mnist-bnn", epochs=2, jit=False)
    rundir.prepare(run, cfg, resume=False)
    with pytest.raises(ConfigError, match="jit=True: .* draws its dropout masks with philox, which needs jit=False"):
        rundir.prepare(run, dataclasses.replace(cfg, jit=True), resume=True)


def _splits(x_train) -> Splits:
    labels = np.zeros(3, np.int64)
    return Splits("mnist-sample", x_train, np.zeros(len(x_train), np.int64), x_train[:3], labels, x_train[:3],
                  labels, "test")


MEAN = np.array([0.25, 0.5, 0.0], np.float32)


@pytest.mark.parametrize("params, parts", [
    ({}, []),                                        # kinds none and gcn_lcn
    ({"mean": MEAN}, [b"mean:float32:(3,);", MEAN.tobytes()]),
])
def test_the_data_record_names_the_training_images_and_the_fitted_parameters_of_any_kind(params, parts):
    x = np.arange(5 * 4, dtype=np.uint8).reshape(5, 2, 2)
    record = rundir.data_record(_splits(x), params)
    assert record == {"dataset": "mnist-sample", "n_train": 5, "n_val": 3, "n_test": 3,
                      "train_sha256": hashlib.sha256(x.tobytes()).hexdigest(),
                      "params_sha256": hashlib.sha256(b"".join(parts)).hexdigest()}


def _resume(tmp_path, stored: dict, data: dict):
    """A run directory whose data.json holds `stored`, resumed with the data record `data`."""
    run, cfg = str(tmp_path / "run"), with_overrides("mnist", epochs=2)
    rundir.prepare(run, cfg, resume=False, data=stored)
    before = open(os.path.join(run, "data.json")).read()
    try:
        rundir.prepare(run, cfg, resume=True, data=data)
    finally:
        assert open(os.path.join(run, "data.json")).read() == before


def _record(params=None):
    return rundir.data_record(_splits(np.ones((4, 2, 2), np.uint8)), {"mean": MEAN} if params is None else params)


def test_a_resume_on_the_same_data_goes_on(tmp_path):
    _resume(tmp_path, _record(), _record())


def test_a_resume_with_other_fitted_parameters_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"trained on other data \(params_sha256 [0-9a-f]{12}\.\.\. then, "):
        _resume(tmp_path, _record(), _record({"mean": MEAN + 1}))


def test_an_earlier_releases_data_json_with_mean_sha256_resumes(tmp_path):
    """Releases before this one also recorded `mean_sha256` (zeros unless kind "mean"): a key the
    record no longer has is not compared."""
    old = {**_record({}), "mean_sha256": hashlib.sha256(np.zeros(4, np.float32).tobytes()).hexdigest()}
    _resume(tmp_path, old, _record({}))


def test_an_earlier_releases_data_json_without_params_sha256_resumes(tmp_path):
    """Releases before the preprocessing table recorded no params_sha256: their parameter (the
    training mean) follows from the training images, still compared."""
    old = {k: v for k, v in _record().items() if k != "params_sha256"}
    _resume(tmp_path, {**old, "mean_sha256": hashlib.sha256(MEAN.tobytes()).hexdigest()}, _record())
    with pytest.raises(ConfigError, match="train_sha256 "):
        _resume(tmp_path / "other", old, rundir.data_record(_splits(np.zeros((4, 2, 2), np.uint8)), {}))


def test_a_data_json_without_a_key_every_release_wrote_is_refused(tmp_path):
    stored = {k: v for k, v in _record().items() if k != "train_sha256"}
    with pytest.raises(ConfigError) as info:
        _resume(tmp_path, stored, _record())
    assert str(info.value) == (f"{tmp_path / 'run' / 'data.json'}: no train_sha256, so a resume cannot check "
                               "that the data are the same; nothing was changed (start a new --run-dir)")
