"""bctrain.run.leftovers: what killed writers left in a run directory is removed, nothing else."""
import io

from bctrain.run import leftovers

LEFT = [".best.npz.k2x9q1.tmp", ".history.jsonl.a8b7c6.tmp", ".config.json.z1.tmp", ".curves.png.q.tmp",
        "ckpt/ckpt-3_temp/part-00000-of-00001.data-00000-of-00001.tempstate17302280565611823264"]
KEPT = ["best.npz", "history.jsonl", "config.json", "ckpt/ckpt-2.index", "ckpt/ckpt-2.data-00000-of-00001",
        "tb/events.out.tfevents.1.host.1.0.v2", ".model.onnx.x1.tmp", ".notes.txt.a.tmp", "best.npz.tmp",
        "ckpt/ckpt-2_temp.txt", "train.lock"]  # export's temporaries are bcexport's to remove


def make_run(tmp_path):
    for name in LEFT + KEPT:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    return tmp_path


def files(run) -> set:
    return {str(p.relative_to(run)) for p in run.rglob("*") if p.is_file()}


def test_only_the_leftovers_of_training_writes_are_removed(tmp_path):
    run = make_run(tmp_path)
    removed = leftovers.remove(str(run))
    assert removed == sorted(LEFT[:4]) + ["ckpt/ckpt-3_temp"]
    assert files(run) == set(KEPT)
    assert leftovers.remove(str(run)) == []


def test_the_removal_is_said_in_one_line(tmp_path):
    run = make_run(tmp_path)
    out = io.StringIO()
    leftovers.clean(str(run), out)
    assert out.getvalue() == ("removed 5 leftovers of an interrupted run: .best.npz.k2x9q1.tmp, .config.json.z1.tmp, "
                              ".curves.png.q.tmp, .history.jsonl.a8b7c6.tmp, ckpt/ckpt-3_temp\n")
    leftovers.clean(str(run), out)  # nothing left: nothing said
    assert out.getvalue().count("\n") == 1


def test_leftover_names():
    assert all(leftovers.is_leftover(name) for name in (".data.json.abc.tmp", ".config.json.1.tmp"))
    assert not any(leftovers.is_leftover(name) for name in ("data.json", ".data.json", ".model.onnx.1.tmp", "x.tmp"))
