"""Networks built from a Config: a list of blocks (paper §6, authors' mnist.py / cifar10.py).

A block is binary linear (dense or 3x3 conv) -> optional 2x2 max-pool -> BatchNorm -> ReLU; the last
block (10 units) has no activation: its BatchNorm output is the "L2-SVM" score (squared hinge loss).
`layer_specs` is the one description of the architecture; training and export both call it.
"""
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from bctrain import layers
from bctrain.binarize import glorot_h, glorot_lr_scale
from bctrain.config import Config

WEIGHT_KEYS = ("w", "b", "gamma", "beta", "mean", "std")


@dataclass(frozen=True)
class LayerSpec:
    kind: str          # "dense" | "conv"
    n_in: int          # inputs, or input channels
    n_out: int         # units, or filters
    kernel: int        # 3 for conv, 1 for dense
    pool: bool         # 2x2 max-pool after the linear part
    relu: bool         # ReLU after BatchNorm (all blocks but the last)
    h: float           # binarization scale: wb in {-h, +h}
    lr_scale: float    # step scale of the binary weights


def _fans(kind, n_in, n_out, kernel):
    k2 = kernel * kernel if kind == "conv" else 1
    return n_in * k2, n_out * k2


def _spec(cfg: Config, kind, n_in, n_out, kernel, pool, relu) -> LayerSpec:
    fan_in, fan_out = _fans(kind, n_in, n_out, kernel)
    h = glorot_h(fan_in, fan_out) if cfg.h == "glorot" else float(cfg.h)
    scale = glorot_lr_scale(fan_in, fan_out) if cfg.lr_scale == "glorot" else float(cfg.lr_scale)
    return LayerSpec(kind, n_in, n_out, kernel, bool(pool), relu, h, scale)


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


def init_limit(spec: LayerSpec, mode: str) -> float:
    """Latent weights start U(-H, H) (paper §3); a float baseline starts Glorot-uniform,
    U(±sqrt(6 / (fan_in + fan_out))), Lasagne's default that the authors' non-binary layers use."""
    if mode != "none":
        return spec.h
    fan_in, fan_out = _fans(spec.kind, spec.n_in, spec.n_out, spec.kernel)
    return math.sqrt(6.0 / (fan_in + fan_out))


def count_binary_weights(specs) -> int:
    return sum(s.kernel * s.kernel * s.n_in * s.n_out for s in specs)


class Net(tf.Module):
    """The BinaryConnect network of a Config; weights from `seed`, stochastic draws from `gen`."""

    def __init__(self, cfg: Config, seed: int, name=None):
        super().__init__(name=name)
        self.specs = layer_specs(cfg)
        self.mode = cfg.binarize
        init = tf.random.Generator.from_seed(seed)
        # Stochastic binarization draws: threefry is faster than philox under XLA on CPU, but
        # TensorFlow runs it only in XLA-compiled code.
        self.gen = tf.random.Generator.from_seed(seed + 1, alg="threefry" if cfg.jit else "philox")
        self.linear, self.bn = [], []
        for i, s in enumerate(self.specs):
            kw = dict(mode=cfg.binarize, h=s.h, lr_scale=s.lr_scale, gen=self.gen,
                      init_gen=init, init_limit=init_limit(s, cfg.binarize), name=f"{s.kind}{i}")
            if s.kind == "conv":
                self.linear.append(layers.BinaryConv2D(s.n_in, s.n_out, kernel=s.kernel, **kw))
            else:
                self.linear.append(layers.BinaryDense(s.n_in, s.n_out, **kw))
            self.bn.append(layers.BatchNorm(s.n_out, alpha=cfg.bn_alpha, eps=cfg.bn_eps, name=f"bn{i}"))

    def __call__(self, x, training, eval_mode="binary"):
        for spec, lin, bn in zip(self.specs, self.linear, self.bn):
            if spec.kind == "dense" and len(x.shape) > 2:
                x = tf.reshape(x, [-1, math.prod(x.shape[1:])])
            x = lin(x, training=training, eval_mode=eval_mode)
            if spec.pool:
                x = layers.max_pool2(x)
            x = bn(x, training=training)
            if spec.relu:
                x = layers.relu(x)
        return x

    def binary_params(self):
        """(w, lr_scale, h) of every binary layer: the scaled and clipped parameter group."""
        if self.mode == "none":
            return []
        return [(lin.w, s.lr_scale, s.h) for s, lin in zip(self.specs, self.linear)]

    def other_params(self):
        """Everything else trainable: biases, BN gamma/beta (and w of a float baseline)."""
        out = []
        for lin, bn in zip(self.linear, self.bn):
            out += ([lin.w] if self.mode == "none" else []) + [lin.b, bn.gamma, bn.beta]
        return out

    def weights_dict(self) -> dict:
        """All weights as float32 NumPy arrays, keyed `{i}/{w,b,gamma,beta,mean,std}` (best.npz)."""
        out = {}
        for i, (lin, bn) in enumerate(zip(self.linear, self.bn)):
            for key, var in zip(WEIGHT_KEYS, (lin.w, lin.b, bn.gamma, bn.beta, bn.mean, bn.std)):
                out[f"{i}/{key}"] = var.numpy().astype(np.float32)
        return out

    def load_weights_dict(self, weights: dict):
        for i, (lin, bn) in enumerate(zip(self.linear, self.bn)):
            for key, var in zip(WEIGHT_KEYS, (lin.w, lin.b, bn.gamma, bn.beta, bn.mean, bn.std)):
                value = np.asarray(weights[f"{i}/{key}"], dtype=np.float32)
                if value.shape != tuple(var.shape):
                    raise ValueError(f"weight {i}/{key}: shape {value.shape}, expected {tuple(var.shape)}")
                var.assign(value)
