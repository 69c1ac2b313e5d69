"""The architecture of a BinaryConnect network as plain data (paper §6; authors' mnist.py / cifar10.py).

A network is a list of blocks: binary linear (dense, or 3x3 conv "same") -> optional 2x2 max-pool ->
BatchNorm -> activation (ReLU, or BinaryNet's sign: `binarize_act`, PAPER.md §10); the last block
(n_classes units) has no activation, its BatchNorm output is the "L2-SVM" score. `layer_specs(cfg)` is the one description of it: training (`bctrain.paper.models`), export,
the NumPy reference and the C generator all call it. TensorFlow-free (stdlib, plus NumPy through
the tables `bctrain.config` takes its choices from), so that packing, the reference and code
generators never load TensorFlow.

The Glorot value of §3, H = sqrt(1.5 / (fan_in + fan_out)), is `glorot_h`; its inverse is the step
scale of binary weights (`glorot_lr_scale`). Fans count the kernel area for convolutions.
"""
import math
from dataclasses import dataclass

from bctrain import choices
from bctrain.config import Config

# Per-block arrays of a weights dict (best.npz): latent w, bias b, BatchNorm gamma, beta and the
# running mean and std.
WEIGHT_KEYS = ("w", "b", "gamma", "beta", "mean", "std")


def glorot_h(fan_in, fan_out) -> float:
    """sqrt(1.5 / (fan_in + fan_out)): the authors' "Glorot" H (paper §3)."""
    return math.sqrt(1.5 / (fan_in + fan_out))


def glorot_lr_scale(fan_in, fan_out) -> float:
    """1 / glorot_h(fan_in, fan_out): the per-layer step scale of binary weights (paper §3)."""
    return 1.0 / glorot_h(fan_in, fan_out)


@dataclass(frozen=True)
class LayerSpec:
    kind: str          # "dense" | "conv"
    n_in: int          # inputs, or input channels
    n_out: int         # units, or filters
    kernel: int        # 3 for conv, 1 for dense
    pool: bool         # 2x2 max-pool after the linear part
    act: str           # after BatchNorm: "relu" | "sign" (hidden blocks, `binarize_act`) | "none" (the last)
    h: float           # binarization scale: wb in {-h, +h}
    lr_scale: float    # step scale of the binary weights

    @property
    def relu(self) -> bool:
        return self.act == "relu"

    @property
    def hidden(self) -> bool:
        """A hidden block: an activation follows its BatchNorm (every block but the output)."""
        return self.act != "none"

    @property
    def w_shape(self) -> tuple:
        """Latent weight shape: HWIO (k, k, c_in, c_out) for conv, (n_in, n_out) for dense."""
        if self.kind == "conv":
            return (self.kernel, self.kernel, self.n_in, self.n_out)
        return (self.n_in, self.n_out)

    @property
    def n_weights(self) -> int:
        return math.prod(self.w_shape)


def fans(kind, n_in, n_out, kernel) -> tuple:
    """(fan_in, fan_out) of a block: a conv counts its kernel area."""
    k2 = kernel * kernel if kind == "conv" else 1
    return n_in * k2, n_out * k2


def _spec(cfg: Config, kind, n_in, n_out, kernel, pool, hidden) -> LayerSpec:
    fan_in, fan_out = fans(kind, n_in, n_out, kernel)
    h = glorot_h(fan_in, fan_out) if cfg.h == "glorot" else float(cfg.h)
    scale = glorot_lr_scale(fan_in, fan_out) if cfg.lr_scale == "glorot" else float(cfg.lr_scale)
    act = choices.BINARIZE_ACT[cfg.binarize_act].act if hidden else "none"
    return LayerSpec(kind, n_in, n_out, kernel, bool(pool), act, h, scale)


def layer_specs(cfg: Config) -> list:
    """The blocks of the network described by `cfg`, in order."""
    specs = []
    shape = tuple(cfg.input_shape)
    if cfg.conv:
        height, width, channels = shape
        for c_out, pool in zip(cfg.conv, cfg.pool):
            specs.append(_spec(cfg, "conv", channels, c_out, 3, pool, True))
            channels = c_out
            if pool:
                height, width = height // 2, width // 2
        n_in = height * width * channels
    else:
        n_in = math.prod(shape)
    for units in cfg.hidden:
        specs.append(_spec(cfg, "dense", n_in, units, 1, False, True))
        n_in = units
    specs.append(_spec(cfg, "dense", n_in, cfg.n_classes, 1, False, False))
    return specs


def output_shapes(cfg: Config) -> list:
    """Each block's output shape after pooling, without the batch: (height, width, channels) or (units,)."""
    shapes, shape = [], tuple(cfg.input_shape)
    for s in layer_specs(cfg):
        if s.kind == "conv":
            height, width = shape[0], shape[1]
            shape = (height // 2, width // 2, s.n_out) if s.pool else (height, width, s.n_out)
        else:
            shape = (s.n_out,)
        shapes.append(shape)
    return shapes


def init_limit(spec: LayerSpec, mode: str) -> float:
    """Latent weights start U(-H, H) (paper §3); a float baseline starts Glorot-uniform,
    U(±sqrt(6 / (fan_in + fan_out))), Lasagne's default that the authors' non-binary layers use."""
    if mode != "none":
        return spec.h
    fan_in, fan_out = fans(spec.kind, spec.n_in, spec.n_out, spec.kernel)
    return math.sqrt(6.0 / (fan_in + fan_out))


def count_binary_weights(specs) -> int:
    return sum(s.n_weights for s in specs)
