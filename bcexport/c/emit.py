"""Small helpers that turn Python values into C99 text for the generated inference code (paper §9).

Every piece of generated C that depends on data goes through one of these (identifiers, comments,
string literals, #defines, constant arrays, function calls); the rest of the text lives in the
templates of `bcexport/c/csrc/` (`render` fills them). Each helper escapes or checks its input, so
no run name, path or value can break the generated file. Pure Python and NumPy.
"""
import re
import string

import numpy as np

from bcexport.c.csrc import CSRC

# C99 keywords (and the reserved words of C11 that a C99 compiler may still reject): never identifiers.
C_KEYWORDS = frozenset("""auto break case char const continue default do double else enum extern float
    for goto if inline int long register restrict return short signed sizeof static struct switch
    typedef union unsigned void volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic
    _Generic _Noreturn _Static_assert _Thread_local""".split())
PER_LINE = {"uint8_t": 16, "float": 6, "double": 4, "int8_t": 16, "int32_t": 8}
# Bytes per string literal of `byte_strings`: a C99 compiler need accept no longer literal than
# 4,095 characters (and -pedantic says so).
STRING_BYTES = 4092
# Characters written as an escape in a C string literal: all but printable ASCII, and '"', '\\'
# and '?' (so that no trigraph can form). Octal escapes have three digits, so a digit that
# follows one is never taken into it.
_ESCAPES = {**{i: f"\\{i:03o}" for i in range(256) if not 32 <= i < 127},
            **{ord(c): "\\" + c for c in '"\\?'}}


class TemplateError(ValueError):
    """A template placeholder without a value (a bug in the generator, not user input)."""


def identifier(text: str) -> str:
    """A valid, non-reserved C identifier derived from `text`: runs of other characters become '_',
    leading and trailing '_' are dropped (C reserves names starting with one), a leading digit gets
    an 'm' prefix and a keyword a '_' suffix. The same text always gives the same identifier."""
    name = re.sub(r"[^0-9A-Za-z_]+", "_", str(text)).strip("_")
    if not name:
        name = "model"
    if name[0].isdigit():
        name = "m" + name
    if name in C_KEYWORDS:
        name += "_"
    return name


def comment(text: str) -> str:
    """A /* ... */ block comment holding `text` (one ' * ' line per line; '*/' cannot close it)."""
    lines = str(text).replace("*/", "* /").splitlines() or [""]
    return "/* " + "\n * ".join(line.rstrip() for line in lines) + "\n */"


def string_literal(text: str) -> str:
    """A C string literal of `text` in UTF-8 (printable ASCII kept, everything else as octal escapes)."""
    return bytes_literal(str(text).encode("utf-8"))


def bytes_literal(data: bytes) -> str:
    """A C string literal whose characters are exactly the bytes `data` (escapes: `_ESCAPES`)."""
    return '"' + bytes(data).decode("latin-1").translate(_ESCAPES) + '"'


def float_literal(value) -> str:
    """The shortest decimal float literal that reads back as exactly this float32 (finite only)."""
    v = np.float32(value)
    if not np.isfinite(v):
        raise ValueError(f"no C literal for the non-finite float {value!r}")
    return np.format_float_scientific(v, unique=True, trim="0") + "f"


def double_literal(value) -> str:
    """The shortest decimal double literal that reads back as exactly this float64 (finite only)."""
    v = np.float64(value)
    if not np.isfinite(v):
        raise ValueError(f"no C literal for the non-finite double {value!r}")
    return np.format_float_scientific(v, unique=True, trim="0")


def define(name: str, value) -> str:
    """#define NAME VALUE (NAME must already be an identifier)."""
    if identifier(name) != name:
        raise ValueError(f"{name!r} is not a C identifier")
    return f"#define {name} {value}"


def array(ctype: str, name: str, values, static=True) -> str:
    """A `const` array definition with its values, `PER_LINE[ctype]` per line (uint8_t as hex)."""
    values = np.asarray(values).reshape(-1)
    if ctype == "uint8_t":
        items = [f"0x{int(v):02x}" for v in values.astype(np.uint8)]
    elif ctype == "float":
        items = [float_literal(v) for v in values]
    elif ctype == "double":
        items = [double_literal(v) for v in values]
    elif ctype in ("int8_t", "int32_t"):  # decimal; INT32_MIN is outside every threshold's range
        cast = values.astype(ctype[:-2])
        if not np.array_equal(cast, values):
            raise ValueError(f"array {name}: values outside {ctype}")
        items = [str(int(v)) for v in cast]
    else:
        raise ValueError(f"no array format for C type {ctype!r}")
    if not items:
        raise ValueError(f"array {name} would be empty (C99 forbids zero-length arrays)")
    per = PER_LINE[ctype]
    rows = [", ".join(items[i:i + per]) for i in range(0, len(items), per)]
    head = ("static " if static else "") + f"const {ctype} {name}[{len(items)}]"
    return head + " = {\n    " + ",\n    ".join(rows) + "\n};"


def byte_strings(name: str, data: bytes) -> str:
    """`static const unsigned char name[R][STRING_BYTES]` holding `data` in string literals, one per
    row (the last one shorter, zero-padded); a program reads it as `(const unsigned char *)name`,
    which may walk every byte of the array. For large arrays: compilers read a string far faster
    than a list of literals (a matrix of 9.4 M float32 took gcc 44 s and 2.7 GB as float literals,
    3 s and 0.5 GB as the bytes in strings)."""
    data = bytes(data)
    if not data:
        raise ValueError(f"array {name} would be empty (C99 forbids zero-length arrays)")
    rows = [bytes_literal(data[i:i + STRING_BYTES]) for i in range(0, len(data), STRING_BYTES)]
    return (f"static const unsigned char {name}[{len(rows)}][{STRING_BYTES}] = {{\n"
            + ",\n".join(rows) + "\n};")


# Comments and string or character literals, skipped when reading C text back.
_NOT_CODE = re.compile(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', re.S)
_BYTE_ARRAY = re.compile(r"\bconst\s+uint8_t\s+(\w+)\s*\[([^\]]*)\]\s*=\s*\{([^}]*)\}\s*;")


def read_byte_arrays(source: str) -> dict:
    """The `const uint8_t` arrays defined in C text (outside comments and strings), read back:
    {name: [one entry per definition: its bytes, or None if it is not in the form `array` writes
    (a declared length equal to the number of values, each `0xNN`)]}. The inverse of `array` for
    the 1-bit weights, so that verify reads what a compiler would (a few MB of source per second)."""
    code = _NOT_CODE.sub(lambda m: " " if m.group(0)[0] == "/" else '""', source)
    found = {}
    for m in _BYTE_ARRAY.finditer(code):
        name, length, body = m.groups()
        try:  # two hex digits per value: anything else (decimal, 0x123, 0X12) fails or changes the count
            data = bytes.fromhex(body.replace("0x", " ").replace(",", " "))
        except ValueError:
            data = None
        ok = data is not None and length.strip() == str(body.count("0x")) == str(len(data))
        found.setdefault(name, []).append(data if ok else None)
    return found


def call(function: str, *args) -> str:
    """`function(arg, arg, ...);` with each argument already C text (ints formatted as is)."""
    return f"{function}({', '.join(str(a) for a in args)});"


def render(template_name: str, **values) -> str:
    """The template `bcexport/c/csrc/<template_name>` with every ${name} replaced; a missing value is
    a TemplateError, so no placeholder can reach a generated file."""
    text = (CSRC / template_name).read_text()
    try:
        return string.Template(text).substitute(values)
    except (KeyError, ValueError) as exc:
        raise TemplateError(f"template {template_name}: no value for {exc}") from None
