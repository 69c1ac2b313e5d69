"""benchmarks.provenance: every results file records its command, machine, date and code version."""
import datetime
import json
import os

from benchmarks import provenance


def test_the_make_command_is_recorded_when_make_ran_it(monkeypatch):
    monkeypatch.delenv(provenance.COMMAND_ENV, raising=False)
    alone = provenance.stamp("benchmarks.bench_x", ["--steps", "2", "a b"])
    assert alone["command"] == alone["argv"] == "python -m benchmarks.bench_x --steps 2 'a b'"
    monkeypatch.setenv(provenance.COMMAND_ENV, "make bench-x EPOCHS=2")
    by_make = provenance.stamp("benchmarks.bench_x", [])
    assert by_make["command"] == "make bench-x EPOCHS=2" and by_make["argv"] == "python -m benchmarks.bench_x"


def test_machine_date_and_code_version():
    s = provenance.stamp("m", [], device="GPU: test card")
    assert s["machine"] == "GPU: test card"
    assert provenance.stamp("m", [])["machine"].startswith("CPU: ")
    when = datetime.datetime.fromisoformat(s["date"])
    assert abs((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()) < 60
    if os.path.isdir(os.path.join(provenance.ROOT, ".git")) or os.path.isfile(os.path.join(provenance.ROOT, ".git")):
        assert s["code_version"]                      # a checkout (worktrees have a .git file)
    assert provenance.code_version("/") is None       # no repository there


def test_write_adds_the_provenance_and_keeps_the_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "r.json"
    out = provenance.write(str(path), {"figure": 1.5}, "benchmarks.bench_x", ["--n", "1"])
    assert json.loads(path.read_text()) == out and out["figure"] == 1.5 and out["argv"].endswith("--n 1")
    from bccommon import atomic

    def full_disk(p, text):
        raise OSError(28, "No space left on device", p)
    monkeypatch.setattr(atomic, "write_text", full_disk)
    try:
        provenance.write(str(path), {"figure": 2.5}, "benchmarks.bench_x", [])
    except OSError:
        pass
    assert json.loads(path.read_text())["figure"] == 1.5


def test_line_names_command_machine_date_and_code():
    r = {"command": "make bench-x", "machine": "CPU: Y, 2 cores", "date": "2026-11-27T10:00:00+00:00",
         "code_version": "abc1234"}
    assert provenance.line(r) == "Measured by `make bench-x` on CPU: Y, 2 cores, 2026-11-27 (code abc1234)."
    assert provenance.line({"device": "CPU: Z"}) == ("Measured by `an unrecorded command` on CPU: Z, "
                                                     "an unrecorded date.")
