"""bccommon.atomic: whole-or-nothing writes, and the removal of a killed writer's temporaries."""
import errno
import os

import pytest

from bccommon import atomic


def test_remove_temporaries_removes_only_the_named_files_leftovers(tmp_path):
    for name in (".best.npz.k2j.tmp", ".history.jsonl.a1.tmp", "best.npz", ".best.npz.kept", ".bestXnpz.q.tmp"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / ".c.d8.tmp").mkdir()
    (tmp_path / ".c.d8.tmp" / "bcnn_model.c").write_text("int x;")
    removed = atomic.remove_temporaries(str(tmp_path), ["best.npz", "c"])
    assert removed == sorted(str(tmp_path / n) for n in (".best.npz.k2j.tmp", ".c.d8.tmp"))
    assert sorted(os.listdir(tmp_path)) == [".best.npz.kept", ".bestXnpz.q.tmp", ".history.jsonl.a1.tmp", "best.npz"]
    assert atomic.remove_temporaries(str(tmp_path), ["best.npz"]) == []


def test_atomic_write_leaves_no_temporary_file(tmp_path):
    path = str(tmp_path / "a.json")
    atomic.write_json(path, {"x": 1})
    atomic.write_json(path, {"x": 2})
    assert open(path).read().strip().endswith("}") and os.listdir(tmp_path) == ["a.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = str(tmp_path / "metrics.json")
    atomic.write_json(path, {"x": 1})

    def crash(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic.write_json(path, {"x": 2})
    assert open(path).read() == '{\n  "x": 1\n}\n' and os.listdir(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("fault", ["full disk at the rename", "directory gone"])
def test_a_failed_write_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch, fault):
    path = str(tmp_path / "history.jsonl")
    atomic.write_text(path, "old\n")
    if fault == "directory gone":
        path = str(tmp_path / "gone" / "history.jsonl")
    else:
        def full(src, dst):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OSError) as info:
        atomic.write_text(path, "new\n")
    assert info.value.filename == path
    assert os.listdir(tmp_path) == ["history.jsonl"] and (tmp_path / "history.jsonl").read_text() == "old\n"
