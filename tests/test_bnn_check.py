"""benchmarks.bnn_check: the three variants differ only in the fields they name (everything else is
the mnist-bnn recipe at the given width and epochs)."""
import dataclasses

from benchmarks.bnn_check import VARIANTS, config
from bctrain.config import PRESETS


def test_the_variants_are_the_recipe_with_one_or_two_fields_changed():
    cfgs = {name: config(name, 64, 5, 2, "mnist-sample") for name in VARIANTS}
    base = dataclasses.replace(PRESETS["mnist-bnn"], dataset="mnist-sample", hidden=(64, 64, 64), epochs=5, seed=2)
    assert cfgs["binarynet"] == base
    assert cfgs["binaryconnect"] == dataclasses.replace(base, binarize_act="none")
    assert cfgs["float"] == dataclasses.replace(base, binarize="none", binarize_act="none")
    assert all(c.dropout_in == 0.2 and c.dropout_hidden == 0.5 and c.preprocess == "pm1" for c in cfgs.values())
