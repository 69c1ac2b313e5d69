"""Run directory: a different config is refused and nothing is overwritten."""
import os

import pytest

from bctrain.run import rundir
from bctrain.config import ConfigError, with_overrides


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
