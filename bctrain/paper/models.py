"""Networks built from a Config: a list of blocks (paper §6, authors' mnist.py / cifar10.py).

A block is binary linear (dense or 3x3 conv) -> optional 2x2 max-pool -> BatchNorm -> ReLU, or
sign with binary activations (BinaryNet, PAPER.md §10: `BatchNorm.sign`); the last block (10 units)
has no activation: its BatchNorm output is the "L2-SVM" score (squared hinge loss). The first block
takes the real inputs. With dropout (BinaryNet's MLP) the input and each hidden block's activation
are dropped in training (`bctrain.paper.layers.dropout`), from a generator of its own, seeded from the
run's seed and checkpointed with the network (made only when a dropout probability is above 0, so
that earlier checkpoints restore unchanged).
The architecture itself is plain data in `bctrain.paper.arch` (`layer_specs`, TensorFlow-free); this module
builds the tf.Modules from it.
"""
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from bctrain import choices
from bctrain.paper import layers
from bctrain.paper.arch import WEIGHT_KEYS, init_limit, layer_specs, output_shapes
from bctrain.config import Config
from bctrain.step.precision import PRECISIONS


@dataclass(frozen=True)
class BinaryParam:
    """A binary layer's latent weights and what the paper's update needs of them (§1, §3)."""
    layer: int           # index in Net.linear
    w: tf.Variable       # latent weights, clipped to [-h, h]
    lr_scale: float      # multiplies the optimizer's step (Glorot scaling, §3)
    h: float             # binarization scale and clip bound


class Net(tf.Module):
    """The BinaryConnect network of a Config; weights from `seed`, stochastic draws from `gen`."""

    def __init__(self, cfg: Config, seed: int, name=None):
        super().__init__(name=name)
        self.specs = layer_specs(cfg)
        self.mode = cfg.binarize
        self.precision = PRECISIONS[cfg.precision]
        self.compute_dtype = tf.as_dtype(self.precision.compute)
        init = tf.random.Generator.from_seed(seed)
        # Stochastic binarization draws (bctrain.choices.draw_algorithm)
        self.gen = tf.random.Generator.from_seed(seed + 1, alg=choices.draw_algorithm(cfg.jit))
        # Dropout probabilities of the input and of each block's output (0 after the last block)
        self.drop = [cfg.dropout_in] + [cfg.dropout_hidden if s.hidden else 0.0 for s in self.specs]
        self.drop_shapes = [tuple(cfg.input_shape)] + output_shapes(cfg)
        if any(self.drop):
            self.dropout_gen = tf.random.Generator.from_seed(seed + 2, alg=choices.draw_algorithm(cfg.jit))
        self.linear, self.bn = [], []
        for i, s in enumerate(self.specs):
            kw = dict(mode=cfg.binarize, h=s.h, lr_scale=s.lr_scale, gen=self.gen,
                      init_gen=init, init_limit=init_limit(s, cfg.binarize), name=f"{s.kind}{i}",
                      compute_dtype=self.compute_dtype)
            if s.kind == "conv":
                self.linear.append(layers.BinaryConv2D(s.n_in, s.n_out, kernel=s.kernel, **kw))
            else:
                self.linear.append(layers.BinaryDense(s.n_in, s.n_out, **kw))
            self.bn.append(layers.BatchNorm(s.n_out, alpha=cfg.bn_alpha, eps=cfg.bn_eps, name=f"bn{i}",
                                            stats=cfg.bn_stats))

    def __call__(self, x, training, eval_mode="binary", weights=None, keep=None, taps=None):
        """Scores [N, n_classes]; `weights` (one per layer, from `product_weights`) replaces the
        binarization of this call (the split step binarizes outside the gradient tape), `keep`
        (from `dropout_keep`) the dropout draws; `taps`, a list, receives each hidden block's
        activation."""
        if training and any(self.drop) and keep is None:
            keep = self.dropout_keep(x.shape[0])
        x = self._dropped(x, 0, training, keep)
        for i, (spec, lin, bn) in enumerate(zip(self.specs, self.linear, self.bn)):
            if spec.kind == "dense" and len(x.shape) > 2:
                x = tf.reshape(x, [-1, math.prod(x.shape[1:])])
            # Each part in a name scope of its own, so that a profile can say where a step's time
            # goes (benchmarks.profile_step); names change no arithmetic.
            wb = lin.product_weights(training, eval_mode) if weights is None else weights[i]
            with tf.name_scope(spec.kind):
                x = lin.apply(x, wb)
            if spec.pool:
                with tf.name_scope("pool"):
                    x = layers.max_pool2(x)
            with tf.name_scope("batchnorm"):
                x = bn.sign(x, training=training) if spec.act == "sign" else bn(x, training=training)
            if spec.act != "sign" and spec.relu:
                with tf.name_scope("relu"):
                    x = layers.relu(x)
            if taps is not None and spec.hidden:
                taps.append(x)
            x = self._dropped(x, i + 1, training, keep)
        return x

    def _dropped(self, x, where, training, keep):
        """x after the dropout at `where` (0: the input, i + 1: block i's output)."""
        if not training or not self.drop[where]:
            return x
        return layers.dropout(x, keep[where], self.drop[where])

    def dropout_keep(self, rows: int) -> list:
        """Dropout keep masks of a batch of `rows` samples, one per place (None where p = 0), drawn
        in order from the network's dropout generator."""
        return [layers.dropout_keep(self.dropout_gen, [rows, *shape], p) if p else None
                for p, shape in zip(self.drop, self.drop_shapes)]

    def product_weights(self, training, eval_mode="binary"):
        """The weights each layer's product uses in this pass (`_BinaryLinear.product_weights`)."""
        return [lin.product_weights(training, eval_mode) for lin in self.linear]

    def binary_params(self) -> list:
        """A `BinaryParam` per binary layer: the scaled and clipped parameter group."""
        if not choices.BINARIZE[self.mode].binary:
            return []
        return [BinaryParam(i, lin.w, s.lr_scale, s.h) for i, (s, lin) in enumerate(zip(self.specs, self.linear))]

    def other_params(self):
        """Everything else trainable: biases, BN gamma/beta (and w of a float baseline)."""
        out = []
        for lin, bn in zip(self.linear, self.bn):
            out += ([] if choices.BINARIZE[self.mode].binary else [lin.w]) + [lin.b, bn.gamma, bn.beta]
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
