"""One frozen configuration per run, with named presets (paper §6 recipes).

A configuration has two parts (`Config.recipe`, `Config.runtime`):
- the recipe: everything that determines the results (architecture, data, preprocessing, optimizer,
  schedule, binarization, seed, precision); a resume must see the same recipe;
- the runtime: how the same training is carried out (XLA, steps per call, update kernel, evaluation
  batch, strategy, replicas); a resume may change it. Where a change keeps the results bit-identical
  (steps per call, update kernel, evaluation batch) it is taken silently; where it does not (XLA,
  strategy, replicas: other kernels, sums in another order), the resume says so in one line
  (`bctrain.run.rundir`).
A run directory records both in `config.json` (`{"recipe": {...}, "runtime": {...}}`); export and
resume read it back, so the architecture is never described twice. A recipe field added after
release (`_added`: binary activations and dropout, BinaryNet §10) may be absent from an earlier
run's config.json: it takes its default there, which is the behaviour before it existed.
Command-line flags override preset fields. Every named choice is the key of one table
(`bctrain.choices`, the precision, dataset and preprocessing tables), read here for the flags'
choices and the validation.
"""
import dataclasses
import json
import math
import os
from dataclasses import dataclass, field

from bccommon import runfiles
from bctrain import choices
from bctrain.data.preprocess import KINDS
from bctrain.data.registry import DATASETS
from bctrain.step.precision import PRECISIONS


class ConfigError(ValueError):
    """A configuration or run directory that cannot be used (one-line message)."""


def _f(default, help_text, **kw):
    return field(default=default, metadata={"help": help_text, **kw})


def _runtime(default, help_text, resume_note=None, **kw):
    """A runtime field: how the training runs, not what it computes (may change on resume).
    `resume_note`: why a change keeps the results from being bit-identical (None: they are)."""
    return _f(default, help_text, runtime=True, resume_note=resume_note, **kw)


def _added(recipe_field):
    """A recipe field added after release: an earlier config.json without it means its default."""
    return field(default=recipe_field.default, metadata={**recipe_field.metadata, "absent_means_default": True})


def _choice(default, what, table, **runtime):
    """A field whose value is a key of `table` (a bctrain.choices table): help and choices from it;
    `runtime` (resume_note=...) makes it a runtime field."""
    return (_runtime if runtime else _f)(default, f"{what}: {choices.describe(table)}", choices=tuple(table),
                                         **runtime)


_SUMS = "several replicas add gradients and BatchNorm's sums in another order"


@dataclass(frozen=True)
class Config:
    preset: str = _f("mnist", "preset the other fields started from")
    dataset: str = _choice("mnist", "dataset (mnist falls back to the bundled sample if it cannot be had)", DATASETS)
    binarize: str = _choice("det", "weight binarization", choices.BINARIZE)
    binarize_act: str = _added(_choice("none", "hidden activations", choices.BINARIZE_ACT))
    dropout_in: float = _added(_f(0.0, "dropout probability of the network's input, in training only (0: none; "
                                       "BinaryNet's MNIST: 0.2)"))
    dropout_hidden: float = _added(_f(0.0, "dropout probability after each hidden block's activation, in training "
                                           "only (0: none; BinaryNet's MNIST: 0.5)"))
    input_shape: tuple = _f((784,), "input shape of one preprocessed sample")
    n_classes: int = _f(10, "number of classes")
    conv: tuple = _f((), "channels of the 3x3 binary conv layers (CNN presets)")
    pool: tuple = _f((), "for each conv layer: 1 if a 2x2 max-pool follows it")
    hidden: tuple = _f((2048, 2048, 2048), "units of the hidden binary dense layers")
    h: str = _f("1", "binarization scale H: a number, or 'glorot' for sqrt(1.5/(fan_in+fan_out))")
    lr_scale: str = _f("glorot", "per-layer step scale of binary weights: 'glorot' (1/sqrt(1.5/(fan_in+fan_out))) or '1'")
    optimizer: str = _choice("adam", "optimizer", choices.OPTIMIZERS)
    lr_start: float = _f(1e-3, "learning rate of the first epoch")
    lr_end: float = _f(3e-6, "learning rate reached after the last epoch (decays geometrically per epoch)")
    epochs: int = _f(250, "epochs to run (all are run unless --patience; selection at the best validation epoch)")
    patience: int = _f(0, "stop when the validation error has not fallen below its best for this many epochs "
                       "(0: run every epoch, the paper's schedule; the learning rate still decays over --epochs)")
    batch_size: int = _f(100, "training batch size (the remainder of an epoch is dropped)")
    bn_alpha: float = _f(0.15, "BatchNorm running-average weight alpha")
    bn_eps: float = _f(1e-4, "BatchNorm epsilon, added to the standard deviation")
    bn_stats: str = _choice("global", "BatchNorm batch statistics under several replicas (--strategy)",
                            choices.BN_STATS)
    beta1: float = _f(0.9, "Adam beta1")
    beta2: float = _f(0.999, "Adam beta2")
    adam_eps: float = _f(1e-8, "Adam epsilon")
    preprocess: str = _choice("mean", "input preprocessing", KINDS)
    seed: int = _f(1, "seed of weights, batch order and stochastic binarization")
    precision: str = _choice("float32", "dtype of the products (latent weights and optimizer state stay float32)",
                             PRECISIONS)
    # -- runtime: how the same training runs (a resume may change these) --
    jit: bool = _runtime(True, "compile the training step with XLA (jit_compile)",
                         resume_note="XLA and TensorFlow's kernels round the products differently")
    update_kernel: str = _choice("auto", "Adam update", choices.UPDATE_KERNELS, resume_note=None)
    eval_batch_size: int = _runtime(1000, "batch size for validation and test passes")
    steps_per_call: int = _runtime(8, "training steps per call of the compiled step (1 to 64, unrolled in one "
                                   "function, as Keras' steps_per_execution: fewer round trips through Python, the "
                                   "same steps and results; --strategy default only, 1 under the others)")
    strategy: str = _choice("default", "where the step runs (a run may resume under another; multiworker waits up "
                            "to BCTRAIN_PEER_TIMEOUT seconds, default 120, for the other workers)", choices.STRATEGIES,
                            resume_note=_SUMS)
    replicas: int = _runtime(0, "mirrored: number of devices (0: every GPU; without a GPU the CPU is split into "
                             "this many logical devices)", resume_note=_SUMS)

    @staticmethod
    def runtime_fields() -> tuple:
        return tuple(f.name for f in dataclasses.fields(Config) if f.metadata.get("runtime"))

    @staticmethod
    def recipe_fields() -> tuple:
        return tuple(f.name for f in dataclasses.fields(Config) if not f.metadata.get("runtime"))

    def recipe(self) -> dict:
        """The fields that determine the results."""
        return {name: getattr(self, name) for name in Config.recipe_fields()}

    def runtime(self) -> dict:
        """The fields that say how the training runs."""
        return {name: getattr(self, name) for name in Config.runtime_fields()}

    def to_json(self) -> str:
        return json.dumps({"recipe": _plain(self.recipe()), "runtime": _plain(self.runtime())},
                          indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_dict(d: dict) -> "Config":
        """From config.json's {"recipe": ..., "runtime": ...}, or the flat object of earlier releases
        (a missing runtime field takes its default)."""
        if not isinstance(d, dict):
            raise ConfigError(f"expected a JSON object of config fields, got {type(d).__name__}")
        if "recipe" in d or "runtime" in d:
            if set(d) != {"recipe", "runtime"}:
                raise ConfigError(f"expected the keys \"recipe\" and \"runtime\" only, got {', '.join(sorted(d))}")
            if not all(isinstance(d[k], dict) for k in d):
                raise ConfigError("expected JSON objects under \"recipe\" and \"runtime\"")
            misplaced = sorted(set(d["recipe"]) & set(Config.runtime_fields())) + sorted(
                set(d["runtime"]) & set(Config.recipe_fields()))
            if misplaced:
                raise ConfigError(f"fields under the wrong heading: {', '.join(misplaced)}")
            d = {**d["recipe"], **d["runtime"]}
        names = {f.name: f for f in dataclasses.fields(Config)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        missing = sorted(set(Config.recipe_fields()) - set(d) - {
            name for name, f in names.items() if f.metadata.get("absent_means_default")})
        if missing:
            raise ConfigError(f"missing recipe fields: {', '.join(missing)}")
        fixed = {k: tuple(v) if isinstance(names[k].default, tuple) and isinstance(v, list) else v
                 for k, v in d.items()}
        return validate(Config(**fixed))


def _plain(fields: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in fields.items()}


PRESETS = {
    # Authors' final MNIST recipe (mnist.py, lasagne branch): 3x2048, Adam, h = 1 with Glorot scaling.
    "mnist": Config(),
    # The paper's own MNIST experiment: 3x1024, plain SGD, batch 200, 1000 epochs, h = Glorot value and
    # no step scaling (the 2015 form); LR 3.0 -> 0.1 and alpha 0.33 are the closest released settings.
    "mnist-paper": Config(preset="mnist-paper", hidden=(1024, 1024, 1024), optimizer="sgd",
                          batch_size=200, epochs=1000, lr_start=3.0, lr_end=0.1, bn_alpha=0.33,
                          h="glorot", lr_scale="1"),
    # Authors' cifar10.py / svhn.py (lasagne branch): binary 3x3 "same" convs, max-pool -> BN -> ReLU,
    # two binary dense 1024, binary dense 10 + BN; Adam, batch 50, alpha 0.1, h = 1 with Glorot scaling.
    "cifar10": Config(preset="cifar10", dataset="cifar10", input_shape=(32, 32, 3),
                      conv=(128, 128, 256, 256, 512, 512), pool=(0, 1, 0, 1, 0, 1), hidden=(1024, 1024),
                      lr_start=3e-3, lr_end=2e-6, epochs=500, batch_size=50, bn_alpha=0.1,
                      preprocess="gcn_zca", eval_batch_size=500),
    "svhn": Config(preset="svhn", dataset="svhn", input_shape=(32, 32, 3),
                   conv=(64, 64, 128, 128, 256, 256), pool=(0, 1, 0, 1, 0, 1), hidden=(1024, 1024),
                   lr_start=1e-2, lr_end=3e-6, epochs=200, batch_size=50, bn_alpha=0.1,
                   preprocess="gcn_lcn", eval_batch_size=500),
    # The mnist recipe on a network small enough for a 256 KB-flash microcontroller (bcexport c):
    # 784-3x256-10, 334,336 binary weights, 42 KB of 1-bit weights.
    "mnist-small": Config(preset="mnist-small", hidden=(256, 256, 256)),
    # BinaryNet (arXiv:1602.02830; the authors' Train-time/mnist.py, cifar10.py, svhn.py; PAPER.md §10):
    # binary activations, inputs 2x/255 - 1, alpha 0.1; the MLP 784-3x4096-10 with dropout (in .2,
    # hidden .5), the CNNs of the BinaryConnect presets without GCN/ZCA/LCN and at other learning rates.
    "mnist-bnn": Config(preset="mnist-bnn", binarize_act="sign", hidden=(4096, 4096, 4096), lr_start=3e-3,
                        lr_end=3e-7, epochs=1000, bn_alpha=0.1, dropout_in=0.2, dropout_hidden=0.5,
                        preprocess="pm1"),
    "cifar10-bnn": Config(preset="cifar10-bnn", dataset="cifar10", binarize_act="sign", input_shape=(32, 32, 3),
                          conv=(128, 128, 256, 256, 512, 512), pool=(0, 1, 0, 1, 0, 1), hidden=(1024, 1024),
                          lr_start=1e-3, lr_end=3e-7, epochs=500, batch_size=50, bn_alpha=0.1,
                          preprocess="pm1", eval_batch_size=500),
    "svhn-bnn": Config(preset="svhn-bnn", dataset="svhn", binarize_act="sign", input_shape=(32, 32, 3),
                       conv=(64, 64, 128, 128, 256, 256), pool=(0, 1, 0, 1, 0, 1), hidden=(1024, 1024),
                       lr_start=1e-3, lr_end=1e-6, epochs=200, batch_size=50, bn_alpha=0.1,
                       preprocess="pm1", eval_batch_size=500),
}


SEED_MAX = 2 ** 32 - 1
# Open or closed ranges of the numeric fields: (low, high, low included, high included).
RANGES = {
    "n_classes": (2, math.inf, True, False), "epochs": (1, math.inf, True, False),
    "batch_size": (1, math.inf, True, False), "eval_batch_size": (1, math.inf, True, False),
    "patience": (0, math.inf, True, False), "steps_per_call": (1, 64, True, True),
    "replicas": (0, math.inf, True, False),
    "seed": (0, SEED_MAX, True, True),
    "lr_start": (0, math.inf, False, False), "lr_end": (0, math.inf, False, False),
    "bn_alpha": (0, 1, False, True), "bn_eps": (0, math.inf, False, False),
    "dropout_in": (0, 1, True, False), "dropout_hidden": (0, 1, True, False),
    "beta1": (0, 1, True, False), "beta2": (0, 1, True, False), "adam_eps": (0, math.inf, False, False),
}


def _type_problem(value, default) -> str | None:
    """What is wrong with the type of `value` for a field whose default is `default` (None: nothing)."""
    kind = type(default)
    if kind is tuple:
        if not isinstance(value, tuple) or any(type(v) is not int for v in value):
            return "expected a list of integers"
    elif kind is float:
        if type(value) not in (int, float):
            return "expected a number"
    elif type(value) is not kind:
        return {int: "expected an integer", bool: "expected true or false", str: "expected a string"}[kind]
    return None


def _in_range(value, low, high, low_in, high_in) -> bool:
    return (low <= value if low_in else low < value) and (value <= high if high_in else value < high)


def validate(cfg: Config) -> Config:
    """Check every field (type, choices, finite and in range); raise ConfigError naming the field.

    Everything a later stage would fail on or turn into NaN is refused here, before a run directory
    is touched."""
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        problem = _type_problem(value, f.default)
        if problem:
            raise ConfigError(f"{f.name}={value!r}: {problem}")
        names = f.metadata.get("choices")
        if names and value not in names:
            raise ConfigError(f"{f.name}={value!r}: expected one of {', '.join(names)}")
    if cfg.preset not in PRESETS:
        raise ConfigError(f"unknown preset {cfg.preset!r}: expected one of {', '.join(PRESETS)}")
    for name, (low, high, low_in, high_in) in RANGES.items():
        value = getattr(cfg, name)
        if not (math.isfinite(value) and _in_range(value, low, high, low_in, high_in)):
            bounds = f"{'[' if low_in else '('}{low:g}, {high:g}{']' if high_in else ')'}"
            raise ConfigError(f"{name}={value!r}: expected a finite number in {bounds}")
    if len(cfg.pool) != len(cfg.conv):
        raise ConfigError(f"pool has {len(cfg.pool)} entries but conv has {len(cfg.conv)}")
    if any(p not in (0, 1) for p in cfg.pool):
        raise ConfigError(f"pool={cfg.pool}: expected 0 or 1 for each conv layer")
    if len(cfg.input_shape) not in (1, 3) or any(n < 1 for n in cfg.input_shape):
        raise ConfigError(f"input_shape={cfg.input_shape}: expected n or height,width,channels, each at least 1")
    if cfg.conv and len(cfg.input_shape) != 3:
        raise ConfigError("conv layers need input_shape height,width,channels")
    if any(n < 1 for n in tuple(cfg.hidden) + tuple(cfg.conv)):
        raise ConfigError("hidden and conv sizes must be at least 1")
    for name in ("h", "lr_scale"):
        value = getattr(cfg, name)
        if value != "glorot":
            try:
                if not (math.isfinite(float(value)) and float(value) > 0):
                    raise ValueError
            except ValueError:
                raise ConfigError(f"{name}={value!r}: expected 'glorot' or a finite positive number") from None
    if choices.BINARIZE_ACT[cfg.binarize_act].act == "sign" and choices.BINARIZE[cfg.binarize].binary and not (
            cfg.h != "glorot" and math.frexp(float(cfg.h))[0] == 0.5):
        raise ConfigError(f"h={cfg.h!r}: binary activations (binarize_act={cfg.binarize_act}) need h a power of two "
                          "(1 in the BinaryNet presets), so that the hidden products are exact in float32 and "
                          "their BatchNorm + sign folds into exact integer thresholds (bcexport)")
    return cfg


def with_overrides(preset: str, **overrides) -> Config:
    """The named preset with some fields replaced (None values are ignored)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")
    changes = {k: v for k, v in overrides.items() if v is not None}
    return validate(dataclasses.replace(PRESETS[preset], **changes))


def load_config(run_dir: str) -> Config:
    """Read `config.json` of a run directory."""
    path = os.path.join(run_dir, runfiles.CONFIG_JSON)
    if not os.path.isdir(run_dir):
        raise ConfigError(f"{run_dir}: {'not a directory' if os.path.lexists(run_dir) else 'no such run directory'}")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir}: not a run directory (no config.json)")
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable config ({exc})") from None
    try:
        return Config.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
