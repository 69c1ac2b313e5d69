"""bcexport.c_plan: products and scratch regions of the generated C, from hand-computed sizes."""
import dataclasses

import pytest

from bctrain.config import with_overrides
from bcexport import ExportError
from bcexport.c_plan import PATCH_FLOATS, make_plan
from bcexport.pack import load_deployment
from c_fixtures import awkward_run
from export_fixtures import make_run_dir


def test_mlp_plan(tmp_path):
    _, dep = awkward_run(tmp_path, "mlp")
    plan = make_plan(dep)
    assert [(s.kind, s.k, s.n, s.relu) for s in plan.steps] == [
        ("dense", 784, 37, True), ("dense", 37, 70, True), ("dense", 70, 10, False)]
    assert plan.act_width == 784 and plan.image_floats == plan.patch_floats == 0
    assert [name for name, _, _ in plan.regions("T")] == ["act0", "act1", "kernel"]
    assert plan.regions("T")[-1][1] == "T * 784 + T * 784"
    assert plan.products("T") == [("T", 784), ("T", 37), ("T", 70)]


def test_cnn_plan_pools_odd_sizes(tmp_path):
    _, dep = awkward_run(tmp_path, "cnn")
    plan = make_plan(dep)
    conv0, conv1, dense0, dense1 = plan.steps
    assert (conv0.k, conv0.n, conv0.height, conv0.width, conv0.pool, conv0.out_pixels) == (27, 5, 7, 5, True, 6)
    assert (conv1.k, conv1.n, conv1.height, conv1.width, conv1.out_pixels) == (45, 6, 3, 2, 6)
    assert (dense0.k, dense0.n) == (36, 19) and plan.flat_size == 36
    assert conv0.rows == 35 and conv1.rows == 6      # whole images fit the patch budget
    assert plan.image_floats == 176                   # 7 * 5 * 5 = 175, rounded up to 16 floats
    assert plan.patch_floats == 960                   # 35 * 27 = 945
    assert plan.act_width == 112                      # max(105 inputs, 36, 19), rounded up


def test_patch_rows_follow_the_budget(tmp_path):
    cfg = with_overrides("mnist", input_shape=(64, 64, 3), conv=(5,), pool=(1,), hidden=(), epochs=1)
    plan = make_plan(load_deployment(make_run_dir(tmp_path / "run", cfg)))
    conv = plan.steps[0]
    assert conv.rows == PATCH_FLOATS // 27 == 606 and plan.patch_floats == 16368  # 606 * 27 = 16362, rounded up
    assert plan.image_floats == 64 * 64 * 5 and plan.flat_size == 32 * 32 * 5


def test_unsupported_blocks_are_export_errors(tmp_path):
    _, dep = awkward_run(tmp_path, "mlp")
    pooled = dataclasses.replace(dep.blocks[0], pool=True)
    with pytest.raises(ExportError, match="block 0: dense block with pool"):
        make_plan(dataclasses.replace(dep, blocks=(pooled,) + dep.blocks[1:]))
