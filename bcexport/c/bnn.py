"""C99 inference code of a BinaryNet network: XNOR-popcount on bit rows (issue 21 §3).

`generate_bnn(dep, run_name, prefix, tile)` returns the files of `RUN_DIR/c/` for a deployment with
binary activations, as `bcexport.c.generate.generate` does for BinaryConnect (same header, harness,
entry points and facts; the shapes of `bcexport.c.plan`), with the blocks of `bcnn_bnn.h` and
`bcnn_xconv.h`:

    block 0 (real inputs)   u = x · wb (dense) or conv3x3(x, wb) [+ float max-pool] by the
                            add/subtract kernels (bcnn_bgemm, bcnn_conv3), then the float32
                            thresholds of bcexport.threshold -> bit rows (bcexport.c.bitrows)
    hidden conv blocks      XNOR-popcount over the taps inside the image (zero padding exact),
                            [integer max-pool], integer thresholds -> one bit row per pixel
    hidden dense blocks     XNOR-popcount on bit rows, integer thresholds -> bit rows
    output block            XNOR-popcount, then logits = a · u + c

Conv blocks run one sample at a time, their bit images ping-ponging between `img0` and `img1`;
the last one is flattened (NHWC) into row s of `bits0`. Dense blocks take the whole tile, their
rows ping-ponging between `bits0` and `bits1` (TILE rows of the widest bit row). Block 0's float u
has a region of its own (`u`, one image or TILE rows), as have the first conv's work (`conv`) and
the pixel entry point's preprocessed input (`in`). `PREFIX_predict_hidden` (and
`PREFIX_predict_pixels_hidden` where there is a pixel entry point) also write every hidden block's
bits, per sample `PREFIX_HIDDEN_BYTES` bytes: block by block, ceil(values / 8) bytes each (values
in NHWC order), LSB first (1 = +1): what `bcexport verify` compares with TensorFlow's
(`facts["hidden"]`). TensorFlow-free.
"""
import math

from bcexport import ExportError
from bcexport.c import bitrows
from bcexport.c.emit import array, comment, define, identifier, render
from bcexport.c.plan import Plan, Step, make_plan, round_up
from bcexport.c.preprocess import pixel_step
from bcexport.pack import Deployment


def bnn_plan(dep: Deployment) -> Plan:
    """The shapes of bcexport.c.plan (conv rows included); a network that is not BinaryNet's pattern
    (a sign on every block but the last, ±1 inputs to every block but the first) is an ExportError."""
    plan = make_plan(dep)
    last = len(dep.blocks) - 1
    for i, b in enumerate(dep.blocks):
        if (b.sign is None) != (i == last) or b.input != ("real" if i == 0 else "binary") or last < 1:
            raise ExportError(f"block {i}: expected real inputs and a sign on the first block, ±1 inputs on "
                              "the others, and no sign on the last")
    return plan


def out_shape(s: Step) -> tuple:
    """A block's output (NHWC without the batch): (H', W', N) for a conv, (N,) for a dense block."""
    if s.kind == "conv":
        return (s.height // 2, s.width // 2, s.n) if s.pool else (s.height, s.width, s.n)
    return (s.n,)


def hidden_bytes(plan: Plan) -> list:
    """Bytes of each hidden block's bits in a sample's predict_hidden output."""
    return [math.ceil(math.prod(out_shape(s)) / 8) for s in plan.steps[:-1]]


def block_arrays(i: int, dep: Deployment) -> str:
    from bcexport.c.generate import packed_weights, weight_array
    b = dep.blocks[i]
    k, n = math.prod(b.shape[:-1]), b.shape[-1]
    what = f"block {i}: {b.kind} {k} -> {n}{', pool' if b.pool else ''}"
    if i == 0:
        what += "; real inputs, weights in the layout of bcexport/c/layout.py, out = +1 where dir * u >= thr (float32)"
    elif b.kind == "conv":
        what += ("; ±1 inputs, weights as 9 bit rows (taps) of the input channels per output "
                 "(bcexport/c/bitrows.py), out = +1 where dir * u >= thr")
    else:
        what += f"; ±1 inputs, weights as {n} bit rows (bcexport/c/bitrows.py), u = K - 2 popcount(x XOR w)"
    parts = [comment(what + ("" if b.sign is not None else "; logits = a * u + c")),
             array("uint8_t", weight_array(i), packed_weights(b))]
    if b.sign is not None:
        parts += [array("float" if i == 0 else "int32_t", f"block{i}_thr", b.sign.threshold),
                  array("int8_t", f"block{i}_dir", b.sign.direction)]
    else:
        parts += [array("float", f"block{i}_a", b.a), array("float", f"block{i}_c", b.c)]
    return "\n".join(parts)


def _floats(nbytes) -> str:
    """C expression: floats holding `nbytes` bytes (a C expression), rounded up to 16."""
    return f"((({nbytes}) + 63) / 64 * 16)"


def row_stride(plan: Plan) -> int:
    """Bytes per sample of the dense blocks' bit rows (bits0, bits1): the widest input of a dense
    block on ±1 inputs (the outputs of the hidden dense blocks are the next block's inputs)."""
    return max(bitrows.row_bytes(s.k) for s in plan.dense_steps if s.index > 0)


def regions(plan: Plan, tile: str, pre_floats: str | None) -> list:
    """[(name, offset, floats)] of the scratch as C expressions of the tile size; the last one,
    "kernel", is bcnn_bgemm's scratch (module docstring)."""
    first, convs = plan.steps[0], plan.conv_steps
    rb = row_stride(plan)
    sizes = [("u", round_up(first.height * first.width * first.n) if first.kind == "conv"
              else f"{tile} * {round_up(first.n)}")]
    if convs:
        sizes += [("conv", f"BCNN_CONV3_WORK_FLOATS({first.width}, {first.c_in}, {first.n}, {first.rows})")]
        img = max(math.prod(out_shape(s)[:-1]) * bitrows.row_bytes(s.n) for s in convs)
        sizes += [("img0", _floats(img)), ("img1", _floats(img))]
    sizes += [("bits0", _floats(f"{tile} * {rb}")), ("bits1", _floats(f"{tile} * {rb}"))]
    if pre_floats is not None:
        sizes.append(("in", f"{tile} * {round_up(plan.input_size)}"))
        if pre_floats != "0":
            sizes.append(("pre", _floats(f"4 * ({pre_floats})")))
    out, offset = [], "0"
    for name, size in sizes:
        out.append((name, offset, size))
        offset = f"{offset} + {size}" if offset != "0" else str(size)
    return out + [("kernel", offset, None)]


def _conv_lines(plan: Plan, P: str, hb: list, at: list, rb: int) -> list:
    """The per-sample loop of the conv blocks, ending in the flatten into row s of bits0."""
    first = plan.steps[0]
    lines = ["for (int s = 0; s < m; ++s) {"]
    inner = [f"const float *xs = x + (size_t)s * {P}_INPUT_SIZE;",
             f"uint8_t *hs = hidden != NULL ? hidden + (size_t)s * {P}_HIDDEN_BYTES : NULL;",
             f"bcnn_conv3({first.height}, {first.width}, {first.c_in}, {first.n}, {first.rows}, xs, block0_w, u, "
             "conv, kernel);"]
    if first.pool:
        inner.append(f"bcnn_maxpool2({first.height}, {first.width}, {first.n}, u);")
    inner.append(f"bcnn_sign_real({first.out_pixels}, {first.n}, u, {first.n}, block0_thr, block0_dir, img0, "
                 f"{bitrows.row_bytes(first.n)});")
    img = "img0"
    for j, s in enumerate(plan.conv_steps):
        if j > 0:
            dst = "img1" if img == "img0" else "img0"
            inner.append(f"bcnn_xconv_sign({s.height}, {s.width}, {s.c_in}, {s.n}, {int(s.pool)}, {img}, "
                         f"block{s.index}_w, block{s.index}_thr, block{s.index}_dir, {dst});")
            img = dst
        inner += ["if (hs != NULL)",
                  f"    bcnn_flatten_bits({s.out_pixels}, {s.n}, {img}, hs + {at[s.index]}, {hb[s.index]});"]
    last = plan.conv_steps[-1]
    inner.append(f"bcnn_flatten_bits({last.out_pixels}, {last.n}, {img}, bits0 + (size_t)s * {rb}, {rb});")
    return lines + ["    " + line for line in inner] + ["}"]


def forward_body(plan: Plan, P: str, offsets: dict) -> str:
    """The statements of forward_hidden(), the scratch regions at `offsets` (name -> C expression)."""
    hb = hidden_bytes(plan)
    at = [sum(hb[:i]) for i in range(len(hb))]
    rb = row_stride(plan)
    lines = [f"float *{name} = scratch + {offsets[name]};" for name in ("u", "conv", "kernel") if name in offsets]
    lines += [f"uint8_t *{name} = (uint8_t *)(scratch + {offsets[name]});"
              for name in ("img0", "img1", "bits0", "bits1") if name in offsets]
    first = plan.steps[0]
    if first.kind == "conv":
        lines += _conv_lines(plan, P, hb, at, rb)
    else:
        lines += [f"bcnn_bgemm(m, {first.k}, {first.n}, x, {P}_INPUT_SIZE, block0_w, u, {round_up(first.n)}, kernel);",
                  f"bcnn_sign_real(m, {first.n}, u, {round_up(first.n)}, block0_thr, block0_dir, bits0, {rb});",
                  "if (hidden != NULL)",
                  f"    bcnn_copy_bits(m, {hb[0]}, bits0, {rb}, hidden + {at[0]}, {P}_HIDDEN_BYTES);"]
    src = "bits0"
    for s in plan.dense_steps:
        if s.index == 0:
            continue
        if s is not plan.steps[-1]:
            dst = "bits1" if src == "bits0" else "bits0"
            lines += [f"bcnn_xnor_sign(m, {s.k}, {s.n}, {src}, {rb}, block{s.index}_w, block{s.index}_thr, "
                      f"block{s.index}_dir, {dst}, {rb});",
                      "if (hidden != NULL)",
                      f"    bcnn_copy_bits(m, {hb[s.index]}, {dst}, {rb}, hidden + {at[s.index]}, {P}_HIDDEN_BYTES);"]
            src = dst
        else:
            lines.append(f"bcnn_xnor_affine(m, {s.k}, {s.n}, {src}, {rb}, block{s.index}_w, block{s.index}_a, "
                         f"block{s.index}_c, logits, {P}_N_CLASSES);")
    return "\n".join("    " + line for line in lines)


def generate_bnn(dep: Deployment, run_name: str, prefix: str, tile: int):
    """The CSources of a BinaryNet deployment (module docstring)."""
    from bcexport.c.generate import HARNESS, HEADER, HEADERS, SOURCE, CSources, banner, kernel_headers, packed_weights
    from bcexport.c.csrc import CSRC
    plan = bnn_plan(dep)
    pre, why_not = pixel_step(dep)
    p = identifier(prefix)
    P = p.upper()
    names = {"prefix": p, "PREFIX": P}
    hb = hidden_bytes(plan)
    layout = regions(plan, f"{P}_TILE", pre.work if pre else None)
    first = plan.steps[0]
    kernel_m = first.rows if first.kind == "conv" else f"{P}_TILE"
    defines = [
        define(f"{P}_INPUT_SIZE", plan.input_size) + "    /* values per sample: "
        + " x ".join(map(str, dep.input_shape)) + " (NHWC) */",
        define(f"{P}_N_CLASSES", plan.n_classes),
        define(f"{P}_HAS_PIXELS", int(pre is not None)) + "    /* 1 if " + p + "_predict_pixels exists */",
        define(f"{P}_HIDDEN_BYTES", sum(hb)) + "    /* bytes of a sample's hidden bits (predict_hidden) */",
        f"#ifndef {P}_TILE    /* samples per tile; -D{P}_TILE=1 for least RAM */",
        define(f"{P}_TILE", tile), "#endif",
        f"#if {P}_TILE < 1\n#error {P}_TILE must be at least 1\n#endif",
        define(f"{P}_SCRATCH_FLOATS", f"({layout[-1][1]} + BCNN_MATMUL_SCRATCH_FLOATS({kernel_m}, {first.k}))"),
        define(f"{P}_SCRATCH_BYTES", f"({P}_SCRATCH_FLOATS * sizeof(float))"),
    ]
    hidden_decl = "\n".join([
        comment(f"As {p}_predict, and the bits of every hidden block: hidden [n, {P}_HIDDEN_BYTES], per sample "
                "block after block, ceil(values / 8) bytes each (its output in NHWC order), value j in bit j % 8 "
                "of byte j / 8, 1 = +1."),
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
        SOURCE: render("bcnn_bnn_model.c.in",
                       banner=banner(SOURCE, run_name, dep).replace("BinaryConnect", "BinaryNet"),
                       arrays="\n\n".join(arrays), forward=forward_body(plan, P, offsets),
                       layout=", ".join(f"{n} at {o}" for n, o, _ in layout), pixels_def=pixels_def, **names),
        HARNESS: render(HARNESS + ".in", banner=banner(HARNESS, run_name, dep), **names),
    }
    for name in list(HEADERS) + kernel_headers() + xnor_headers():
        files[name] = (CSRC / name).read_text()
    entry = {"x": f"{p}_predict"} | ({"pixels": f"{p}_predict_pixels"} if pre else {})
    facts = {"prefix": p, "tile": tile, "network": describe(plan),
             "entry_points": entry, "weight_bytes": sum(packed_weights(b).size for b in dep.blocks),
             "preprocess_bytes": pre.nbytes if pre else 0,
             "binary_weights": dep.n_binary_weights, "preprocess": dep.preprocess,
             "input_shape": list(dep.input_shape), "n_classes": plan.n_classes,
             "hidden": {"entry_points": {"x": f"{p}_predict_hidden"}
                        | ({"pixels": f"{p}_predict_pixels_hidden"} if pre else {}),
                        "bytes": sum(hb), "shapes": [list(out_shape(s)) for s in plan.steps[:-1]]}}
    if pre is None:
        facts["note"] = f"no pixel entry point: {why_not}"
    return CSources(files, facts)


def xnor_headers() -> list:
    from bcexport.c.csrc import CSRC
    return sorted(p.name for p in CSRC.glob("bcnn_xnor*.h")) + ["bcnn_xconv.h", "bcnn_xconv_x86.h", "bcnn_bnn.h"]


def describe(plan: Plan) -> str:
    """One line, e.g. 'input 784 -> dense(256)+sign dense(10) (XNOR-popcount)'."""
    parts = [f"{'conv3x3' if s.kind == 'conv' else 'dense'}({s.n}){'+pool' if s.pool else ''}"
             f"{'+sign' if s is not plan.steps[-1] else ''}" for s in plan.steps]
    return f"input {plan.input_size} -> " + " ".join(parts) + " (XNOR-popcount)"
