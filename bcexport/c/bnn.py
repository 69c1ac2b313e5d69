"""C99 inference code of a BinaryNet network: XNOR-popcount on bit rows (issue 21 §3).

`generate_bnn(dep, run_name, prefix, tile)` returns the files of `RUN_DIR/c/` for a deployment with
binary activations, as `bcexport.c.generate.generate` does for BinaryConnect (same header, harness,
entry points and facts), with the block operations of `bcnn_bnn.h`:

    block 0 (real inputs)   u = x · wb by bcnn_bgemm (weights in bcexport.c.layout), then the float32
                            thresholds of bcexport.threshold -> bit rows (bcexport.c.bitrows)
    hidden blocks           XNOR-popcount on bit rows, integer thresholds -> bit rows
    output block            XNOR-popcount, then logits = a · u + c

Per tile the bits ping-pong between two regions of the scratch (`bits0`, `bits1`, each TILE rows
of the widest bit row); block 0's float u has a region of its own (`u`), as has the pixel entry
point's preprocessed input (`in`). `PREFIX_predict_hidden` (and `PREFIX_predict_pixels_hidden`
where there is a pixel entry point) also write every hidden block's bits, per sample
`PREFIX_HIDDEN_BYTES` bytes: block by block, ceil(n_out / 8) bytes each, LSB first (1 = +1), what
`bcexport verify` compares with TensorFlow's (`facts["hidden"]`). Dense networks only: a BinaryNet
CNN is an ExportError. TensorFlow-free.
"""
import math

from bcexport import ExportError
from bcexport.c import bitrows
from bcexport.c.emit import array, comment, define, identifier, render
from bcexport.c.plan import ALIGN_FLOATS, round_up
from bcexport.c.preprocess import pixel_step
from bcexport.pack import Deployment


def _dense_widths(dep: Deployment) -> list:
    """[(K, N)] of the blocks; an architecture without a C form is an ExportError."""
    if any(b.kind != "dense" or b.pool for b in dep.blocks):
        raise ExportError("binary activations in a convolutional network: the C back end has only the "
                          "BinaryNet MLP so far (issue 21 §3); `bcexport onnx` exports it")
    widths, k = [], math.prod(dep.input_shape)
    for i, b in enumerate(dep.blocks):
        if b.shape[0] != k:
            raise ExportError(f"block {i}: dense {b.shape} after an output of {k} values")
        if (b.sign is None) != (i == len(dep.blocks) - 1) or b.input != ("real" if i == 0 else "binary"):
            raise ExportError(f"block {i}: expected real inputs and a sign on the first block, ±1 inputs on "
                              "the others, and no sign on the last")
        widths.append(b.shape)
        k = b.shape[1]
    if len(widths) < 2:
        raise ExportError("a BinaryNet network has at least one hidden block")
    return widths


def block_arrays(i: int, dep: Deployment) -> str:
    from bcexport.c.generate import packed_weights, weight_array
    b = dep.blocks[i]
    k, n = b.shape
    if i == 0:
        what = (f"block 0: dense {k} -> {n} on real inputs; weights in the layout of bcexport/c/layout.py, "
                "out = +1 where dir * u >= thr (float32)")
    elif b.sign is not None:
        what = (f"block {i}: dense {k} -> {n} on ±1 inputs; weights as {n} bit rows of {k} "
                "(bcexport/c/bitrows.py), out = +1 where dir * u >= thr, u = K - 2 popcount(x XOR w)")
    else:
        what = f"block {i}: output, dense {k} -> {n} on ±1 inputs; weights as bit rows, logits = a * u + c"
    parts = [comment(what), array("uint8_t", weight_array(i), packed_weights(b))]
    if b.sign is not None:
        parts += [array("float" if i == 0 else "int32_t", f"block{i}_thr", b.sign.threshold),
                  array("int8_t", f"block{i}_dir", b.sign.direction)]
    else:
        parts += [array("float", f"block{i}_a", b.a), array("float", f"block{i}_c", b.c)]
    return "\n".join(parts)


def regions(widths, input_size: int, tile: str, pre_floats: str | None) -> list:
    """[(name, offset, floats)] of the scratch as C expressions of the tile size; the last one,
    "kernel", is bcnn_bgemm's scratch (module docstring)."""
    bits = max(bitrows.row_bytes(n) for _, n in widths[:-1])
    sizes = [("u", f"{tile} * {round_up(widths[0][1])}"),
             ("bits0", f"(({tile} * {bits} + 63) / 64 * 16)"), ("bits1", f"(({tile} * {bits} + 63) / 64 * 16)")]
    if pre_floats is not None:
        sizes.append(("in", f"{tile} * {round_up(input_size)}"))
        if pre_floats != "0":
            sizes.append(("pre", f"(({pre_floats}) + {ALIGN_FLOATS - 1}) / {ALIGN_FLOATS} * {ALIGN_FLOATS}"))
    out, offset = [], "0"
    for name, size in sizes:
        out.append((name, offset, size))
        offset = f"{offset} + {size}" if offset != "0" else size
    return out + [("kernel", offset, None)]


def forward_body(widths, P: str, offsets: dict) -> str:
    """The statements of forward_hidden(), the scratch regions at `offsets` (name -> C expression)."""
    k0, n0 = widths[0]
    lines = [f"float *u = scratch + {offsets['u']};",
             f"uint8_t *bits0 = (uint8_t *)(scratch + {offsets['bits0']});",
             f"uint8_t *bits1 = (uint8_t *)(scratch + {offsets['bits1']});",
             f"float *kernel = scratch + {offsets['kernel']};",
             "size_t at = 0;    /* where the next block's bits go in a sample's hidden bytes */",
             f"bcnn_bgemm(m, {k0}, {n0}, x, {P}_INPUT_SIZE, block0_w, u, {round_up(n0)}, kernel);",
             f"bcnn_sign_real(m, {n0}, u, {round_up(n0)}, block0_thr, block0_dir, bits0, {bitrows.row_bytes(n0)});"]
    src = "bits0"

    def keep(n):
        return ["if (hidden != NULL)",
                f"    bcnn_copy_bits(m, {math.ceil(n / 8)}, {src}, {bitrows.row_bytes(n)}, hidden + at, "
                f"{P}_HIDDEN_BYTES);",
                f"at += {math.ceil(n / 8)};"]
    lines += keep(n0)
    for i, (k, n) in enumerate(widths[1:], start=1):
        if i < len(widths) - 1:
            dst = "bits1" if src == "bits0" else "bits0"
            lines.append(f"bcnn_xnor_sign(m, {k}, {n}, {src}, {bitrows.row_bytes(k)}, block{i}_w, block{i}_thr, "
                         f"block{i}_dir, {dst}, {bitrows.row_bytes(n)});")
            src = dst
            lines += keep(n)
        else:
            lines += ["(void)at;",
                      f"bcnn_xnor_affine(m, {k}, {n}, {src}, {bitrows.row_bytes(k)}, block{i}_w, block{i}_a, "
                      f"block{i}_c, logits, {P}_N_CLASSES);"]
    return "\n".join("    " + line for line in lines)


def generate_bnn(dep: Deployment, run_name: str, prefix: str, tile: int):
    """The CSources of a BinaryNet deployment (module docstring)."""
    from bcexport.c.generate import HARNESS, HEADER, HEADERS, SOURCE, CSources, banner, kernel_headers, packed_weights
    from bcexport.c.csrc import CSRC
    widths = _dense_widths(dep)
    pre, why_not = pixel_step(dep)
    p = identifier(prefix)
    P = p.upper()
    names = {"prefix": p, "PREFIX": P}
    input_size = math.prod(dep.input_shape)
    hidden_bytes = sum(math.ceil(n / 8) for _, n in widths[:-1])
    layout = regions(widths, input_size, f"{P}_TILE", pre.work if pre else None)
    defines = [
        define(f"{P}_INPUT_SIZE", input_size) + "    /* values per sample: "
        + " x ".join(map(str, dep.input_shape)) + " (NHWC) */",
        define(f"{P}_N_CLASSES", widths[-1][1]),
        define(f"{P}_HAS_PIXELS", int(pre is not None)) + "    /* 1 if " + p + "_predict_pixels exists */",
        define(f"{P}_HIDDEN_BYTES", hidden_bytes) + "    /* bytes of a sample's hidden bits (predict_hidden) */",
        f"#ifndef {P}_TILE    /* samples per tile; -D{P}_TILE=1 for least RAM */",
        define(f"{P}_TILE", tile), "#endif",
        f"#if {P}_TILE < 1\n#error {P}_TILE must be at least 1\n#endif",
        define(f"{P}_SCRATCH_FLOATS", f"({layout[-1][1]} + BCNN_BGEMM_SCRATCH_FLOATS({P}_TILE, {widths[0][0]}))"),
        define(f"{P}_SCRATCH_BYTES", f"({P}_SCRATCH_FLOATS * sizeof(float))"),
    ]
    hidden_decl = "\n".join([
        comment(f"As {p}_predict, and the bits of every hidden block: hidden [n, {P}_HIDDEN_BYTES], per sample "
                "block after block, ceil(units / 8) bytes each, unit j in bit j % 8 of byte j / 8, 1 = +1."),
        f"int {p}_predict_hidden(const float *x, int n, float *logits, uint8_t *hidden, float *scratch, "
        "size_t scratch_bytes);"])
    arrays = [block_arrays(i, dep) for i in range(len(dep.blocks))]
    offsets = {name: off for name, off, _ in layout}
    if pre is None:
        pixels_decl, pixels_def = comment(f"No {p}_predict_pixels: {why_not}."), ""
    else:
        arrays += [comment(f"Preprocessing {dep.preprocess!r}: {pre.formula}")] + pre.definitions()
        pixels_decl = "\n".join([
            comment(f"As {p}_predict (and {p}_predict_hidden), from raw images: uint8 pixels [n, {P}_INPUT_SIZE] "
                    f"({' x '.join(map(str, pre.image))}, NHWC), preprocessed in C as in training: {pre.formula}."),
            f"int {p}_predict_pixels(const uint8_t *pixels, int n, float *logits, float *scratch, "
            "size_t scratch_bytes);",
            f"int {p}_predict_pixels_hidden(const uint8_t *pixels, int n, float *logits, uint8_t *hidden, "
            "float *scratch, size_t scratch_bytes);"])
        work = f"scratch + {offsets['pre']}" if "pre" in offsets else ""
        values = dict(input_offset=offsets["in"], preprocess=pre.call("m", "p", "x", work), **names)
        pixels_def = render("bcnn_pixels.c.in", **values) + render("bcnn_bnn_pixels.c.in", **values)
    files = {
        HEADER: render(HEADER + ".in", banner=banner(HEADER, run_name, dep).replace("BinaryConnect", "BinaryNet"),
                       guard=f"{P}_MODEL_H", defines="\n".join(defines),
                       pixels_decl=hidden_decl + "\n" + pixels_decl, **names),
        SOURCE: render("bcnn_bnn_model.c.in", banner=banner(SOURCE, run_name, dep).replace("BinaryConnect", "BinaryNet"),
                       arrays="\n\n".join(arrays), forward=forward_body(widths, P, offsets),
                       layout=", ".join(f"{n} at {o}" for n, o, _ in layout), pixels_def=pixels_def, **names),
        HARNESS: render(HARNESS + ".in", banner=banner(HARNESS, run_name, dep), **names),
    }
    for name in list(HEADERS) + kernel_headers() + xnor_headers():
        files[name] = (CSRC / name).read_text()
    entry = {"x": f"{p}_predict"} | ({"pixels": f"{p}_predict_pixels"} if pre else {})
    facts = {"prefix": p, "tile": tile, "network": describe(widths, dep),
             "entry_points": entry, "weight_bytes": sum(packed_weights(b).size for b in dep.blocks),
             "preprocess_bytes": pre.nbytes if pre else 0,
             "binary_weights": dep.n_binary_weights, "preprocess": dep.preprocess,
             "input_shape": list(dep.input_shape), "n_classes": widths[-1][1],
             "hidden": {"entry_points": {"x": f"{p}_predict_hidden"}
                        | ({"pixels": f"{p}_predict_pixels_hidden"} if pre else {}),
                        "bytes": hidden_bytes, "units": [n for _, n in widths[:-1]]}}
    if pre is None:
        facts["note"] = f"no pixel entry point: {why_not}"
    return CSources(files, facts)


def xnor_headers() -> list:
    from bcexport.c.csrc import CSRC
    return sorted(p.name for p in CSRC.glob("bcnn_xnor*.h")) + ["bcnn_bnn.h"]


def describe(widths, dep: Deployment) -> str:
    """One line, e.g. 'input 784 -> dense(256)+sign dense(256)+sign dense(10) (XNOR-popcount)'."""
    parts = [f"dense({n})+sign" for _, n in widths[:-1]] + [f"dense({widths[-1][1]})"]
    return f"input {'x'.join(map(str, dep.input_shape))} -> " + " ".join(parts) + " (XNOR-popcount)"
