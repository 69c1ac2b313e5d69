"""Run directory: a different config is refused and nothing is overwritten; atomic writes."""
import errno
import os

import pytest

from bctrain import rundir
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


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "a.json")
    rundir.atomic_write_json(path, {"x": 1})
    rundir.atomic_write_json(path, {"x": 2})
    assert open(path).read().strip().endswith("}") and os.listdir(tmp_path) == ["a.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "metrics.json")
    rundir.atomic_write_json(path, {"x": 1})

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        rundir.atomic_write_json(path, {"x": 2})
    assert open(path).read() == '{\n  "x": 1\n}\n' and os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("fault", ["full disk at the rename", "directory gone"])
def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, fault):
    path = str(tmp_path / "history.jsonl")
    rundir.atomic_write_text(path, "old\n")
    if fault == "directory gone":
        path = str(tmp_path / "gone" / "history.jsonl")
    else:
        def full(src, dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as info:
        rundir.atomic_write_text(path, "new\n")
    assert info.value.filename == path
    assert os.listdir(tmp_path) == ["history.jsonl"] and (tmp_path / "history.jsonl").read_text() == "old\n"
