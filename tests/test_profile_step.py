"""benchmarks.profile_step: the event arithmetic against hand-computed values, and a smoke run."""
import os

import pytest

from benchmarks import profile_step as ps
from benchmarks.quiet_tf import tf


def test_union_counts_overlaps_once():
    assert ps.union_seconds([]) == 0
    assert ps.union_seconds([(0, 2), (1, 3), (5, 6), (5.5, 5.75)]) == 4  # [0, 3) and [5, 6)
    assert ps.union_seconds([(4, 5), (0, 1)]) == 2


def test_framework_events_are_not_kernels():
    assert not any(ps.is_kernel(n) for n in ("ThunkExecutor::Execute", "BlockUntilReady", "end: MatMul.10",
                                             "MemoryAllocation", "ParallelFor", "ExecutorDoneCallback"))
    assert ps.is_kernel("broadcast_add_fusion.7") and ps.is_kernel("Relu_2:Relu")


def test_only_innermost_kernels_of_a_thread_are_kept():
    events = [(0, 10, "a", "outer_fusion", "x"), (1, 3, "a", "MatMul.1", "x"), (4, 5, "a", "add_fusion", "x"),
              (2, 6, "b", "MatMul.2", "x")]  # another thread: kept even though it overlaps
    assert ps.leaf_kernels(events) == [(1, 3, "a", "MatMul.1", "x"), (2, 6, "b", "MatMul.2", "x"),
                                       (4, 5, "a", "add_fusion", "x")]


def test_gaps_are_what_no_interval_covers():
    assert ps.gaps([(1, 2), (1.5, 3), (5, 6)], 0, 10) == [(0, 1), (3, 5), (6, 10)]
    assert ps.gaps([(-1, 11)], 0, 10) == [] and ps.gaps([], 0, 1) == [(0, 1)]


def test_summary_of_one_step_by_hand():
    conv, dense, bn, upd = "conv products", "dense products", "BatchNorm", "update"
    kernels = [(-1, 1, "a", "MatMul:MatMul", dense),       # starts before the step: 0..1 counts
               (2, 4, "a", "MatMul.1", dense), (3, 5, "b", "MatMul.2", dense),  # products 2..5
               (4, 6, "a", "select_fusion", bn),           # BatchNorm 4..6
               (6.5, 7, "a", "Conv2D.1", conv),            # XLA launched a convolution: its work runs until 7.5
               (7.5, 9, "a", "BcAdamUpdate:BcAdamUpdate", upd), (7.5, 8, "b", "BcAdamUpdate_1:BcAdamUpdate", upd),
               (11, 12, "a", "MatMul.3", dense)]           # after the step: left out
    got = ps.summarize(kernels, 0, 10)
    assert got == {**{part: 0 for part in ps.PARTS}, dense: 4, conv: 1, bn: 2, upd: 1.5, "step": 10,
                   "some kernel running": 7, "launched products (no event)": 0.5, "no kernel event": 2.5}


@pytest.mark.slow
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="on one CPU core the profiler records no XLA kernel events")
def test_smoke_run_prints_a_timeline_and_a_summary(capsys):
    # An XLA convolution compiled earlier in the process: the profiler's trace keeps every module
    # the process compiled, and only the profiled step's own may be reported (an MLP has no conv).
    conv = tf.function(lambda x: tf.nn.conv2d(x, tf.ones((3, 3, 1, 2)), 1, "SAME"), jit_compile=True)
    conv(tf.ones((1, 4, 4, 1)))
    ps.main(["--hidden", "32", "--steps", "3", "--timeline", "--min-ms", "0"])
    out = capsys.readouterr().out
    assert "median of 3 profiled steps" in out
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines()
            if line.startswith("| ") and line.count("|") == 3 and line.split("|")[2].strip()[:1].isdigit()}
    assert rows["dense products"] > 0 and rows["step"] > 0
    assert rows["some kernel running"] <= rows["step"] + 1e-9
    parts = rows["some kernel running"] + rows["launched products (no event)"] + rows["no kernel event"]
    assert abs(parts - rows["step"]) < 0.03  # printed to 0.01 ms
    assert "| dense products | MatMul" in out  # the timeline shows the products and their part
    assert out.rstrip().endswith("products run by: XLA dot (f32)")


@pytest.mark.slow
def test_a_cnn_step_is_attributed_to_its_parts(capsys):
    ps.main(["--preset", "cifar10", "--conv", "4,4", "--hidden", "8", "--steps", "2", "--jit", "false"])
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): float(line.split("|")[2]) for line in out.splitlines()
            if line.startswith("| ") and line.count("|") == 3 and line.split("|")[2].strip()[:1].isdigit()}
    for part in ("conv products", "dense products", "pooling", "BatchNorm", "ReLU", "binarization", "update"):
        assert rows[part] > 0, part
    assert "TensorFlow Conv2DBackpropFilter" in out and "TensorFlow Conv2DBackpropInput" in out


def test_bad_step_count_is_refused(capsys):
    with pytest.raises(SystemExit) as exc:
        ps.main(["--steps", "0"])
    assert exc.value.code == 2 and "--steps must be at least 1" in capsys.readouterr().err
