"""Run directory: a different config is refused and nothing is overwritten."""
import dataclasses
import os

import pytest

from bctrain.run import rundir
from bctrain.config import ConfigError, load_config, with_overrides


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
