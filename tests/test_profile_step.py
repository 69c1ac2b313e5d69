"""benchmarks.profile_step: the event arithmetic against hand-computed values, and a smoke run."""
import pytest

from benchmarks import profile_step as ps


def test_union_counts_overlaps_once():
    assert ps.union_seconds([]) == 0
    assert ps.union_seconds([(0, 2), (1, 3), (5, 6), (5.5, 5.75)]) == 4  # [0, 3) and [5, 6)
    assert ps.union_seconds([(4, 5), (0, 1)]) == 2


def test_kinds_and_framework_events():
    assert ps.kind_of("MatMul_1.8") == "products"  # an XLA dot named after its TensorFlow op
    assert ps.kind_of("gradient_tape/MatMul_2/MatMul_1:_MklMatMul") == "products"
    assert ps.kind_of("BcAdamUpdate_2:BcAdamUpdate") == "update"
    assert ps.kind_of("compare_select_fusion.3") == "other kernels"
    assert not any(ps.is_kernel(n) for n in ("ThunkExecutor::Execute", "BlockUntilReady", "end: MatMul.10",
                                             "MemoryAllocation"))
    assert ps.is_kernel("broadcast_add_fusion.7") and ps.is_kernel("Relu_2:Relu")


def test_only_innermost_kernels_of_a_thread_are_kept():
    events = [(0, 10, "a", "outer_fusion"), (1, 3, "a", "MatMul.1"), (4, 5, "a", "add_fusion"),
              (2, 6, "b", "MatMul.2")]  # another thread: kept even though it overlaps
    assert ps.leaf_kernels(events) == [(1, 3, "a", "MatMul.1"), (2, 6, "b", "MatMul.2"), (4, 5, "a", "add_fusion")]


def test_summary_of_one_step_by_hand():
    kernels = [(-1, 1, "a", "MatMul.0"),                  # starts before the step: 0..1 counts
               (2, 4, "a", "MatMul.1"), (3, 5, "b", "MatMul.2"),  # products 2..5
               (4, 6, "a", "select_fusion"),              # other 4..6
               (7, 9, "a", "BcAdamUpdate:BcAdamUpdate"), (7, 8, "b", "BcAdamUpdate_1:BcAdamUpdate"),
               (11, 12, "a", "MatMul.3")]                 # after the step: left out
    got = ps.summarize(kernels, 0, 10)
    assert got == {"products": 4, "update": 2, "other kernels": 2, "step": 10, "some kernel running": 7,
                   "no kernel event": 3}


@pytest.mark.slow
def test_smoke_run_prints_a_timeline_and_a_summary(capsys):
    ps.main(["--hidden", "32", "--steps", "3", "--timeline", "--min-ms", "0"])
    out = capsys.readouterr().out
    assert "median of 3 profiled steps" in out
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines()
            if line.startswith("| ") and line.count("|") == 3 and line.split("|")[2].strip()[:1].isdigit()}
    assert rows["products"] > 0 and rows["step"] > 0
    assert rows["some kernel running"] <= rows["step"] + 1e-9
    assert abs(rows["some kernel running"] + rows["no kernel event"] - rows["step"]) < 0.02  # printed to 0.01 ms
    assert "| MatMul" in out  # the timeline shows the products


def test_bad_step_count_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        ps.main(["--steps", "0"])
    assert exc.value.code == 2 and "--steps must be at least 1" in capsys.readouterr().err
