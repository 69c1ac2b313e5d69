"""bcexport.stored_weights: the C reader finds exactly the trained signs in bcnn_model.c, or names the
array that differs (the ONNX readers are tested through verify: tests/test_verify.py) (paper §9)."""
import re

import pytest

from bcexport import stored_weights
from bcexport.c.generate import generate
from bcexport.c.layout import pack_matrix
from c_fixtures import awkward_run


@pytest.fixture(params=["mlp", "cnn"])
def source(request, tmp_path):
    """(deployment, path of its generated bcnn_model.c)."""
    _, dep = awkward_run(tmp_path, request.param)
    path = tmp_path / "bcnn_model.c"
    path.write_text(generate(dep, "awkward").files["bcnn_model.c"])
    return dep, str(path)


def _edit(path, pattern, replacement):
    with open(path) as fh:
        text = fh.read()
    new = re.sub(pattern, replacement, text, count=1, flags=re.S)
    assert new != text
    with open(path, "w") as fh:
        fh.write(new)


def test_generated_source_stores_exactly_the_trained_signs(source):
    dep, path = source
    found = stored_weights.c_bits(path, dep)
    # Oracle: the packing of bcexport.c.layout, checked against its inverse in test_c_layout.py.
    expected = sum(pack_matrix(b.wb.reshape(-1, b.wb.shape[-1])).size for b in dep.blocks)
    assert found.problems == [] and found.bytes == expected and found.form == "bits"


def test_the_last_padding_byte_counts_too(source):
    dep, path = source
    last = len(dep.blocks) - 1
    # The last byte of a block with n_out % 32 not in 1..16 holds padding in its high nibble.
    _edit(path, rf"(block{last}_w\[\d+\] = \{{.*?)0x([0-9a-f])([0-9a-f])\n\}};",
          lambda m: f"{m.group(1)}0x{int(m.group(2), 16) ^ 8:x}{m.group(3)}\n}};")
    assert stored_weights.c_bits(path, dep).problems[0].startswith(f"block{last}_w (block {last}): 1 of ")


@pytest.mark.parametrize("edit, problem", [
    ((r"block1_w\[", "blockX_w["), ["block1_w (block 1): defined 0 times, expected once",
                                    "blockX_w: a uint8_t array that holds no block's weights"]),
    ((r"(block0_w\[\d+\] = \{\s*)0x..,", r"\g<1>"), ["block0_w (block 0): not a list of 0xNN bytes as long as "
                                                     "its declared length"]),
    ((r"(block0_w\[\d+\] = \{\s*)0x..,", r"\g<1>1,"), ["block0_w (block 0): not a list of 0xNN bytes as long "
                                                       "as its declared length"]),
    ((r"(block0_w\[)\d+(\] = \{\s*)0x..,", r"\g<1>1\g<2>0x00}; static const uint8_t spare[1] = {"),
     ["block0_w (block 0): 1 bytes, expected", "spare: a uint8_t array that holds no block's weights"]),
])
def test_a_source_not_holding_the_trained_signs_is_named(source, edit, problem):
    dep, path = source
    _edit(path, *edit)
    found = stored_weights.c_bits(path, dep).problems
    assert len(found) == len(problem) and all(f.startswith(p) for f, p in zip(found, problem)), found
