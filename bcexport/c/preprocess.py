"""Preprocessing in the generated C: the pixel entry point of each kind, one table (paper §6, §9).

`PREPROCESS` maps a kind of `bctrain.data.preprocess.KINDS` to the function of
`csrc/bcnn_preprocess.h` that computes what `KINDS[kind].apply` computes, and says what that function
is given: constants (sizes, the kind's fixed `settings`), arrays made from the run's fitted
parameters (`Deployment.params`) and the floats of working memory it needs from the scratch. The
generated call is `function(m, *constants, p, *arrays, x[, work])`, x [m, D] from pixels p [m, D].

    mean     x = pixels / 255 − mean             float32
    none     x = pixels / 255                    float32
    pm1      x = pixels / 255 · 2 − 1            float32: two roundings as NumPy (BinaryNet's inputs)
    gcn_zca  x = zca(gcn(pixels, 55))            double, rounded once: P (float32 [D, D]) transposed,
                                                 as little-endian bytes in string literals, and two
                                                 double vectors (bcnn_preprocess.h says why)
    gcn_lcn  x = lcn(gcn(pixels, 1))             GCN in double, LCN in float32 as NumPy does it

A kind without an entry, or whose entry needs images [H, W, C] the run does not have, gets no pixel
entry point (`pixel_step` says why). The accuracy of each kind is stated in bcnn_preprocess.h and
measured in tests/test_c_preprocess.py. TensorFlow-free.
"""
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from bctrain.data import lcn
from bctrain.data.preprocess import KINDS
from bcexport.c.emit import array, byte_strings, call, double_literal, float_literal
from bcexport.pack import Deployment


@dataclass(frozen=True)
class CArray:
    """A constant array of the generated model: "float", "double", or "f32le" (float32 values as
    the little-endian bytes of their IEEE-754 form, in string literals: for matrices too large to
    compile as a list of literals; the C side reads them with bcnn_load_f32le)."""

    ctype: str
    values: np.ndarray

    def definition(self, name: str) -> str:
        if self.ctype == "f32le":
            return byte_strings(name, np.ascontiguousarray(self.values, "<f4").tobytes())
        return array(self.ctype, name, self.values)

    def reference(self, name: str) -> str:
        return f"(const unsigned char *){name}" if self.ctype == "f32le" else name

    @property
    def nbytes(self) -> int:
        return np.asarray(self.values).size * (8 if self.ctype == "double" else 4)


@dataclass(frozen=True)
class CPreprocess:
    function: str          # of bcnn_preprocess.h
    constants: Callable    # (image shape, settings) -> [C expression]: after the sample count
    arrays: Callable       # (Deployment, settings) -> {C name: CArray}: after the pixels
    work: Callable         # image shape -> C expression: floats of working memory ("0": none)
    formula: Callable      # settings -> the formula, for the header's comment
    image: bool = False    # needs images [H, W, C]


def _zca_arrays(dep: Deployment, settings: dict) -> dict:
    """P transposed (row j = column j of P), its column sums and zca_mean · P, in float64."""
    p = np.asarray(dep.params["zca_p"], np.float32)
    p64 = p.astype(np.float64)
    zca_mean = np.asarray(dep.params["zca_mean"], np.float32).astype(np.float64)
    return {"pre_zca_pt": CArray("f32le", p.T), "pre_zca_colsum": CArray("double", p64.sum(axis=0)),
            "pre_zca_bias": CArray("double", zca_mean @ p64)}


def _gcn(settings: dict) -> list:
    return [double_literal(settings["gcn_scale"]), double_literal(settings["gcn_min_divisor"])]


PREPROCESS = {
    "mean": CPreprocess("bcnn_pre_mean", lambda shape, s: [math.prod(shape)],
                        lambda dep, s: {"pre_mean": CArray("float", dep.params["mean"])}, lambda shape: "0",
                        lambda s: "pixels / 255 - mean (float32)"),
    "none": CPreprocess("bcnn_pre_unit", lambda shape, s: [math.prod(shape)], lambda dep, s: {},
                        lambda shape: "0", lambda s: "pixels / 255 (float32)"),
    "pm1": CPreprocess("bcnn_pre_pm1", lambda shape, s: [math.prod(shape)], lambda dep, s: {},
                       lambda shape: "0", lambda s: "pixels / 255 * 2 - 1 (float32)"),
    "gcn_zca": CPreprocess("bcnn_pre_gcn_zca", lambda shape, s: [math.prod(shape), *_gcn(s)], _zca_arrays,
                           lambda shape: f"BCNN_ZCA_WORK_FLOATS({math.prod(shape)})",
                           lambda s: f"zca(gcn(pixels, {s['gcn_scale']:g})), in double, rounded once to float32 "
                                     "(the ZCA matrix is a dense float32 matrix: float multiply-adds)"),
    "gcn_lcn": CPreprocess("bcnn_pre_gcn_lcn",
                           lambda shape, s: [*shape, *_gcn(s), s["lcn_kernel"], float_literal(s["lcn_threshold"])],
                           lambda dep, s: {"pre_lcn_g": CArray("float", lcn.gaussian_1d(
                               s["lcn_kernel"], s["lcn_sigma"]).astype(np.float32))},
                           lambda shape: f"BCNN_LCN_WORK_FLOATS({shape[0]}, {shape[1]})",
                           lambda s: f"lcn(gcn(pixels, {s['gcn_scale']:g})): GCN in double, then LeCun LCN "
                                     f"({s['lcn_kernel']}x{s['lcn_kernel']} Gaussian, sigma {s['lcn_sigma']:g}) "
                                     "per channel in float32", image=True),
}


def pixel_image(dep: Deployment) -> tuple:
    """The image the pixel entry point takes: the run's raw image when it has the network's input
    size (what model.raw.onnx takes), else the network's input shape; a grey image [H, W] is
    [H, W, 1], as `KINDS` treats it."""
    image = tuple(dep.image_shape) if dep.image_shape and math.prod(dep.image_shape) == math.prod(
        dep.input_shape) else tuple(dep.input_shape)
    return image + (1,) if len(image) == 2 else image


@dataclass(frozen=True)
class PixelStep:
    """The preprocessing of one deployment's pixel entry point, ready to generate."""

    entry: CPreprocess
    image: tuple
    arrays: dict     # C name -> CArray
    settings: dict

    @property
    def work(self) -> str:
        return self.entry.work(self.image)

    @property
    def formula(self) -> str:
        return self.entry.formula(self.settings)

    def definitions(self) -> list:
        return [a.definition(name) for name, a in self.arrays.items()]

    @property
    def nbytes(self) -> int:
        """Bytes of its constant arrays in the compiled model."""
        return sum(a.nbytes for a in self.arrays.values())

    def call(self, m: str, pixels: str, x: str, work: str) -> str:
        args = [m, *self.entry.constants(self.image, self.settings), pixels,
                *(a.reference(name) for name, a in self.arrays.items()), x]
        return call(self.entry.function, *args, *([work] if self.work != "0" else []))


def pixel_step(dep: Deployment) -> tuple:
    """(PixelStep, None), or (None, why the deployment gets no pixel entry point)."""
    entry = PREPROCESS.get(dep.preprocess)
    if entry is None:
        return None, f"preprocessing {dep.preprocess!r} has no C form yet"
    image = pixel_image(dep)
    if entry.image and len(image) != 3:
        return None, f"preprocessing {dep.preprocess!r} needs images [H, W, C], the network takes {list(image)}"
    settings = KINDS[dep.preprocess].settings
    return PixelStep(entry, image, entry.arrays(dep, settings), settings), None
