"""bcexport.c.plan: products and scratch regions of the generated C, from hand-computed sizes."""
import dataclasses

import numpy as np
import pytest

from bctrain.config import with_overrides
from bcexport import ExportError
from bcexport.c.plan import PATCH_FLOATS, ROW_SET, make_plan
from bcexport.pack import Block, Deployment, load_deployment
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
    assert PATCH_FLOATS // 27 == 606 and ROW_SET == 8
    assert conv.rows == 608 and plan.patch_floats == 608 * 27   # rounded up to the row set; 16416 = 1026 * 16
    assert plan.image_floats == 64 * 64 * 5 and plan.flat_size == 32 * 32 * 5


@pytest.mark.parametrize("height, c_in, rows", [(8, 512, 8), (16, 256, 8), (32, 128, 16), (2, 512, 4)])
def test_deep_convs_get_a_whole_row_set(height, c_in, rows):
    """The cifar10 preset's convs (9 * 512 inputs: 3 rows in the 64 KB budget) get at least one
    set of 8 rows, except on an image with fewer pixels."""
    conv = Block("conv", (3, 3, c_in, 16), np.zeros(9 * c_in * 2, np.uint8), np.ones(16, np.float32),
                 np.zeros(16, np.float32), False, True)
    dense = Block("dense", (height * height * 16, 10), np.zeros(height * height * 20, np.uint8),
                  np.ones(10, np.float32), np.zeros(10, np.float32), False, False)
    cfg = with_overrides("cifar10", epochs=1)
    dep = Deployment(cfg, (conv, dense), (height, height, c_in), "none")
    plan = make_plan(dep)
    assert plan.steps[0].rows == rows and plan.patch_floats == rows * 9 * c_in


def test_unsupported_blocks_are_export_errors(tmp_path):
    _, dep = awkward_run(tmp_path, "mlp")
    pooled = dataclasses.replace(dep.blocks[0], pool=True)
    with pytest.raises(ExportError, match="block 0: dense block with pool"):
        make_plan(dataclasses.replace(dep, blocks=(pooled,) + dep.blocks[1:]))
