"""bctrain.paper.arch: the architecture as plain data, importable without TensorFlow."""
import subprocess
import sys

import pytest

from bctrain.paper.arch import count_binary_weights, fans, layer_specs
from bctrain.config import PRESETS, with_overrides


@pytest.mark.parametrize("module", ["bctrain.paper.arch", "bcexport.pack", "bcexport.reference"])
def test_deployment_core_imports_without_tensorflow(module):
    code = f"import sys, {module}; sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_weight_shapes_follow_the_block_kind():
    cfg = with_overrides("mnist", input_shape=(6, 5, 3), conv=(4, 8), pool=(1, 0), hidden=(16,))
    specs = layer_specs(cfg)
    assert [s.w_shape for s in specs] == [(3, 3, 3, 4), (3, 3, 4, 8), (3 * 2 * 8, 16), (16, 10)]
    assert count_binary_weights(specs) == 108 + 288 + 768 + 160
    assert fans("conv", 3, 4, 3) == (27, 36) and fans("dense", 7, 5, 1) == (7, 5)


def test_mnist_preset_counts_the_paper_weights():
    assert count_binary_weights(layer_specs(PRESETS["mnist"])) == 784 * 2048 + 2 * 2048 * 2048 + 2048 * 10
