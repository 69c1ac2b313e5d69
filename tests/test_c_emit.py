"""bcexport.c.emit: the helpers that write C text escape or refuse what could break a C file."""
import ctypes
import subprocess

import numpy as np
import pytest

from bcexport.c import emit as c_emit
from bcexport.c.emit import (array, byte_strings, bytes_literal, call, comment, define, double_literal,
                             float_literal, identifier, string_literal)
from c_fixtures import require


@pytest.mark.parametrize("text, expected", [
    ("bcnn", "bcnn"), ("my model-v2", "my_model_v2"), ("2048x3", "m2048x3"), ("__x__", "x"),
    ("", "model"), ("*/", "model"), ("int", "int_"), ("é-net", "net"),
])
def test_identifier(text, expected):
    assert identifier(text) == expected


def test_comment_cannot_be_closed_early():
    text = comment("run a*/b\nsecond line")
    assert text.count("*/") == 1 and text.endswith("*/")
    assert "a* /b" in text and "\n * second line" in text


def test_string_literal_escapes():
    assert string_literal('a"b\\c??=') == r'"a\"b\\c\?\?="'
    assert string_literal("é\n") == '"\\303\\251\\012"'


def test_float_literals_read_back_exactly():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 1, 200), 10.0 ** rng.uniform(-40, 38, 200),
                             [0.0, -0.0, 1e-45, 3.4028235e38, 1 / 3]]).astype(np.float32)
    for v in values:
        text = float_literal(v)
        assert text.endswith("f") and np.float32(text[:-1]) == v
    with pytest.raises(ValueError):
        float_literal(np.inf)


def test_c_compiler_reads_the_literals_exactly(tmp_path):
    cc, = require("cc")
    values = np.float32([0.1, -1 / 3, 1e-45, 1.1754944e-38, 3.4028235e38, 123456.7, -0.0])
    src = tmp_path / "f.c"
    src.write_text("#include <stdint.h>\n" + array("float", "vals", values, static=False) + "\n")
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC",
                    str(src), "-o", str(tmp_path / "f.so")], check=True)
    got = np.ctypeslib.as_array((ctypes.c_float * len(values)).in_dll(ctypes.CDLL(str(tmp_path / "f.so")),
                                                                      "vals"))
    assert got.tobytes() == values.tobytes()


def test_c_compiler_reads_double_literals_and_byte_strings_exactly(tmp_path):
    """Doubles read back exactly; bytes in string literals (every byte value, digits right after
    an octal escape, '?' pairs, rows of STRING_BYTES and a short last one) come back as written."""
    cc, = require("cc")
    doubles = np.array([0.1, -1 / 3, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 55.0])
    assert all(np.float64(double_literal(v)) == v for v in doubles)
    noise = bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8))
    data = bytes(range(256)) * 40 + b"\0011??=?\"\\" + noise
    assert bytes_literal(b"\0" + b"12?") == '"\\00012\\?"'
    src = tmp_path / "b.c"
    src.write_text(array("double", "dbl", doubles, static=False) + "\n"
                   + byte_strings("blob", data).replace("static const", "const") + "\n")
    subprocess.run([cc, "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-shared", "-fPIC",
                    str(src), "-o", str(tmp_path / "b.so")], check=True)
    lib = ctypes.CDLL(str(tmp_path / "b.so"))
    got = np.ctypeslib.as_array((ctypes.c_double * len(doubles)).in_dll(lib, "dbl"))
    assert got.tobytes() == doubles.tobytes()
    rows = -(-len(data) // c_emit.STRING_BYTES)
    blob = bytes((ctypes.c_ubyte * (rows * c_emit.STRING_BYTES)).in_dll(lib, "blob"))
    assert blob == data + bytes(rows * c_emit.STRING_BYTES - len(data))


def test_array_and_call_and_define():
    text = array("uint8_t", "w", np.arange(18))
    assert text.startswith("static const uint8_t w[18] = {\n    0x00, 0x01,")
    assert text.count("\n") == 3 and text.endswith("0x10, 0x11\n};")
    assert call("f", "m", 3, "x") == "f(m, 3, x);"
    assert define("N_IN", 7) == "#define N_IN 7"
    with pytest.raises(ValueError):
        define("N IN", 7)
    with pytest.raises(ValueError):
        array("float", "empty", [])


def test_missing_template_value_is_an_error():
    with pytest.raises(c_emit.TemplateError, match="harness.c.in"):
        c_emit.render("harness.c.in", banner="/* */")


def test_byte_arrays_read_back_exactly_and_only_in_the_form_array_writes():
    data = np.random.default_rng(0).integers(0, 256, 1000).astype(np.uint8)
    source = "\n".join([
        comment("static const uint8_t block1_w[1] = {0x00};"),        # in a comment: not code
        'const char *s = "const uint8_t quoted[1] = {0x01};";',        # in a string: not code
        array("uint8_t", "block0_w", data),
        "static const uint8_t short_[3] = {0x01, 0x02};",             # C fills the rest with 0
        "static const uint8_t decimal[2] = {18, 0x02};",
        "static const uint8_t wide[1] = {0x123};",
        "static const uint8_t upper[1] = {0X12};",
        array("uint8_t", "twice", [1]), array("uint8_t", "twice", [2]),
    ])
    found = c_emit.read_byte_arrays(source)
    assert found == {"block0_w": [data.tobytes()], "short_": [None], "decimal": [None], "wide": [None],
                     "upper": [None], "twice": [b"\x01", b"\x02"]}
