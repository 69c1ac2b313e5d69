"""Deployment weights: sign bits packed 8 per byte and BatchNorm folded into an affine (paper §9).

A trained block computes z = x ∗ wb + b with wb = h·sign(w) (sign(0) = +1), an optional 2x2
max-pool, then the authors' BatchNorm (z − mean)·γ/(std + ε) + β (§4), and ReLU on all but the last
block. With h > 0 (so pooling commutes with the positive scale and the per-channel bias):

    y = a ⊙ pool(x ∗ sign(w)) + c,   a = γ·h/(std + ε),   c = β + γ·(b − mean)/(std + ε).

With binary activations (BinaryNet, PAPER.md §10) each hidden block's BatchNorm + sign is instead one
comparison per unit (`bcexport.threshold`): out = +1 where direction · pool(x ∗ sign(w)) >= threshold;
the blocks after the first take ±1 inputs, so their products are exact integers; the output block
keeps a ⊙ u + c. The Deployment format (fields, zero padding) is documented in docs/BINARYNET.md.

Bit order of `pack_bits`: the ±1 array is flattened row-major (C order) in its own layout (HWIO for
conv kernels, [n_in, n_out] for dense); element k is bit (k mod 8) of byte k // 8, least significant
bit first (numpy.packbits with bitorder="little"); bit 1 means +1, bit 0 means −1. The last byte is
zero-padded.
"""
import math
from dataclasses import dataclass, field

import numpy as np

from bctrain.config import Config
from bctrain.paper.arch import layer_specs
from bctrain.data.registry import DATASETS
from bcexport import ExportError, threshold
from bcexport.rundir import deployed_weights, load_preprocess, require_finished

BIT_ORDER = "little"


def sign_pm1(w) -> np.ndarray:
    """+1 where w >= 0, else −1 (sign(0) = +1), as int8."""
    return np.where(np.asarray(w) >= 0, 1, -1).astype(np.int8)


def pack_bits(wb) -> np.ndarray:
    """±1 array -> uint8 [ceil(size / 8)], bit = 1 for +1 (bit order: module docstring)."""
    wb = np.asarray(wb)
    if not np.all(np.abs(wb) == 1):
        raise ValueError("pack_bits expects an array of ±1 values")
    return np.packbits(wb.reshape(-1) > 0, bitorder=BIT_ORDER)


def unpack_bits(bits, shape) -> np.ndarray:
    """Inverse of `pack_bits`: uint8 bytes -> ±1 float32 array of `shape`."""
    bits = np.asarray(bits, dtype=np.uint8)
    count = math.prod(shape)
    if bits.shape != ((count + 7) // 8,):
        raise ValueError(f"{bits.shape[0]} bytes cannot hold shape {tuple(shape)}")
    flat = np.unpackbits(bits, count=count, bitorder=BIT_ORDER)
    return (flat.astype(np.float32) * 2 - 1).reshape(shape)


def fold_bn(h, b, gamma, beta, mean, std, eps):
    """(a, c) float32 with a ⊙ u + c == BN(h·u + b) for every u (formula: module docstring).

    Computed in float64 and rounded once, so a and c are the nearest float32 to the exact values.
    """
    b, gamma, beta, mean, std = (np.asarray(v, dtype=np.float64) for v in (b, gamma, beta, mean, std))
    scale = gamma / (std + eps)
    a = scale * h
    c = beta + scale * (b - mean)
    return a.astype(np.float32), c.astype(np.float32)


@dataclass(frozen=True)
class Block:
    """One deployed block: u = pool(x ∗ unpack(bits)); y = a ⊙ u + c, then ReLU if `relu`, or, with
    binary activations, y = ±1 by `sign` (a `bcexport.threshold.Threshold`; a and c are then only
    the same BatchNorm as an affine, for information)."""

    kind: str            # "dense" | "conv"
    shape: tuple         # weight shape: (k, k, c_in, c_out) HWIO or (n_in, n_out)
    bits: np.ndarray     # uint8 [ceil(prod(shape) / 8)]
    a: np.ndarray        # float32 [n_out]
    c: np.ndarray        # float32 [n_out]
    pool: bool
    relu: bool
    sign: threshold.Threshold | None = None  # BinaryNet's hidden blocks: BatchNorm + sign as thresholds
    input: str = "real"  # "real" | "binary": the block's inputs are ±1 (those after a sign block)
    tap_sums: np.ndarray | None = None  # int32 [3, 3, c_out] for a conv on ±1 inputs (zero padding)

    @property
    def wb(self) -> np.ndarray:
        return unpack_bits(self.bits, self.shape)

    @property
    def n_weights(self) -> int:
        return math.prod(self.shape)

    @property
    def fan_in(self) -> int:
        """Inputs of one output value: n_in, or k·k·c_in."""
        return math.prod(self.shape[:-1])


@dataclass(frozen=True)
class Deployment:
    """Everything inference needs: blocks, input shape and the preprocessing of raw pixels.

    `preprocess` is a kind of `bctrain.data.preprocess.KINDS` and `params` its fitted parameters
    (float32 arrays: {"mean"} for "mean", {"zca_mean", "zca_p"} for "gcn_zca", none for "none" and
    "gcn_lcn"): `KINDS[preprocess].apply(pixels, params)` is the network's input. `image_shape` is
    the raw image of the run's dataset (what model.raw.onnx takes).
    """

    cfg: Config
    blocks: tuple
    input_shape: tuple
    preprocess: str          # a key of bctrain.data.preprocess.KINDS
    params: dict = field(default_factory=dict)
    image_shape: tuple = ()  # uint8 pixels of one raw image, e.g. (28, 28) or (32, 32, 3)

    @property
    def n_binary_weights(self) -> int:
        return sum(b.n_weights for b in self.blocks)

    @property
    def binary_activations(self) -> bool:
        """BinaryNet: the hidden blocks output ±1 (`Block.sign`)."""
        return any(b.sign is not None for b in self.blocks)


def build_blocks(cfg: Config, weights: dict) -> tuple:
    """Blocks from `layer_specs(cfg)` and a best.npz-style dict of float32 arrays."""
    blocks, inputs = [], "real"
    for i, s in enumerate(layer_specs(cfg)):
        w = weights[f"{i}/w"]
        bn = [weights[f"{i}/{k}"] for k in ("b", "gamma", "beta", "mean", "std")]
        a, c = fold_bn(s.h, *bn, eps=cfg.bn_eps)
        wb = sign_pm1(w)
        sign = None
        if s.act == "sign":
            params = threshold.BatchNormParams.of(s.h, *bn, eps=cfg.bn_eps)
            sign = threshold.fold(params, inputs, math.prod(w.shape[:-1]))
        taps = threshold.tap_sums(wb) if s.kind == "conv" and inputs == "binary" else None
        blocks.append(Block(s.kind, tuple(w.shape), pack_bits(wb), a, c, s.pool, s.relu, sign, inputs, taps))
        inputs = "binary" if s.act == "sign" else "real"
    return tuple(blocks)


def binary_run(run_dir: str) -> Config:
    """The Config of a finished binary run (float baselines are refused)."""
    cfg = require_finished(run_dir)
    if cfg.binarize == "none":
        raise ExportError(f"{run_dir}: run is a float baseline (binarize=none): nothing to binarize")
    return cfg


def deployment(run_dir: str, cfg: Config, weights: dict) -> Deployment:
    """The deployment form of `weights` (a best.npz-style dict) with the run's preprocessing."""
    kind, params = load_preprocess(run_dir, math.prod(cfg.input_shape))
    return Deployment(cfg, build_blocks(cfg, weights), tuple(cfg.input_shape), kind, params,
                      DATASETS[cfg.dataset].image_shape)


def load_deployment(run_dir: str) -> Deployment:
    """The deployment form of a finished run directory: its `deployed_weights` (best.npz, with the
    BatchNorm statistics export.json records if re-estimated; bcexport.bn_restat)."""
    cfg = binary_run(run_dir)
    return deployment(run_dir, cfg, deployed_weights(run_dir, cfg))
