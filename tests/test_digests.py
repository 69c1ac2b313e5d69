"""bccommon.digests: the SHA-256 record of exported files, and what verify reads from it."""
import hashlib

import pytest

from bccommon import digests


def test_record_then_changed_and_missing_files_are_named(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "a.onnx").write_bytes(b"model")
    (tmp_path / "c" / "net.c").write_bytes(b"int x;")
    rec = digests.record(str(tmp_path), ["a.onnx", "c/net.c"])
    assert rec == {"a.onnx": hashlib.sha256(b"model").hexdigest(), "c/net.c": hashlib.sha256(b"int x;").hexdigest()}
    assert digests.is_record(rec) and digests.changed(str(tmp_path), rec) == []
    (tmp_path / "a.onnx").write_bytes(b"model!")
    (tmp_path / "c" / "net.c").unlink()
    problems = digests.changed(str(tmp_path), rec)
    assert problems[0].startswith("a.onnx: changed since export (SHA-256 ") and problems[1] == "c/net.c: missing since export"
    assert digests.unrecorded(["a.onnx", "b.onnx"], rec) == ["b.onnx: not recorded at export (no SHA-256)"]


@pytest.mark.parametrize("value", [None, [], {"a": "xyz"}, {"/etc/passwd": "0" * 64}, {"../x": "0" * 64},
                                   {"a": "0" * 63}, {"a": "A" * 64}, {"": "0" * 64}])
def test_malformed_records_are_not_records(value):
    assert not digests.is_record(value)
