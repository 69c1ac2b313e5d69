"""One frozen configuration per run, with named presets (paper §6 recipes).

A run directory records its `Config` as `config.json`; export and resume read it back, so the
architecture is never described twice. Command-line flags override preset fields.
"""
import dataclasses
import json
import os
from dataclasses import dataclass, field

from bctrain import runfiles


class ConfigError(ValueError):
    """A configuration or run directory that cannot be used (one-line message)."""


def _f(default, help_text, **kw):
    return field(default=default, metadata={"help": help_text, **kw})


@dataclass(frozen=True)
class Config:
    preset: str = _f("mnist", "preset the other fields started from")
    dataset: str = _f("mnist", "dataset: mnist (full MNIST, or the bundled sample if it cannot be had) | "
                      "mnist-sample (the bundled sample)", choices=("mnist", "mnist-sample"))
    binarize: str = _f("det", "weight binarization: det | stoch | none (float baseline)",
                       choices=("det", "stoch", "none"))
    input_shape: tuple = _f((784,), "input shape of one preprocessed sample")
    n_classes: int = _f(10, "number of classes")
    conv: tuple = _f((), "channels of the 3x3 binary conv layers (CNN presets)")
    pool: tuple = _f((), "for each conv layer: 1 if a 2x2 max-pool follows it")
    hidden: tuple = _f((2048, 2048, 2048), "units of the hidden binary dense layers")
    h: str = _f("1", "binarization scale H: a number, or 'glorot' for sqrt(1.5/(fan_in+fan_out))")
    lr_scale: str = _f("glorot", "per-layer step scale of binary weights: 'glorot' (1/sqrt(1.5/(fan_in+fan_out))) or '1'")
    optimizer: str = _f("adam", "adam | sgd (plain, no momentum)", choices=("adam", "sgd"))
    lr_start: float = _f(1e-3, "learning rate of the first epoch")
    lr_end: float = _f(3e-6, "learning rate reached after the last epoch (decays geometrically per epoch)")
    epochs: int = _f(250, "epochs to run (all are run; selection at the best validation epoch)")
    batch_size: int = _f(100, "training batch size (the remainder of an epoch is dropped)")
    bn_alpha: float = _f(0.15, "BatchNorm running-average weight alpha")
    bn_eps: float = _f(1e-4, "BatchNorm epsilon, added to the standard deviation")
    beta1: float = _f(0.9, "Adam beta1")
    beta2: float = _f(0.999, "Adam beta2")
    adam_eps: float = _f(1e-8, "Adam epsilon")
    preprocess: str = _f("mean", "input preprocessing: mean (pixels/255 minus per-pixel training mean) | none",
                         choices=("mean", "none"))
    seed: int = _f(1, "seed of weights, batch order and stochastic binarization")
    jit: bool = _f(True, "compile the training step with XLA (jit_compile)")
    eval_batch_size: int = _f(1000, "batch size for validation and test passes")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @staticmethod
    def from_dict(d: dict) -> "Config":
        names = {f.name: f for f in dataclasses.fields(Config)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        fixed = {k: tuple(v) if isinstance(names[k].default, tuple) else v for k, v in d.items()}
        return validate(Config(**fixed))


PRESETS = {
    # Authors' final MNIST recipe (mnist.py, lasagne branch): 3x2048, Adam, h = 1 with Glorot scaling.
    "mnist": Config(),
    # The paper's own MNIST experiment: 3x1024, plain SGD, batch 200, 1000 epochs, h = Glorot value and
    # no step scaling (the 2015 form); LR 3.0 -> 0.1 and alpha 0.33 are the closest released settings.
    "mnist-paper": Config(preset="mnist-paper", hidden=(1024, 1024, 1024), optimizer="sgd",
                          batch_size=200, epochs=1000, lr_start=3.0, lr_end=0.1, bn_alpha=0.33,
                          h="glorot", lr_scale="1"),
    # The mnist recipe on a network small enough for a 256 KB-flash microcontroller (bcexport c):
    # 784-3x256-10, 334,336 binary weights, 42 KB of 1-bit weights.
    "mnist-small": Config(preset="mnist-small", hidden=(256, 256, 256)),
}


def validate(cfg: Config) -> Config:
    """Check field values; raise ConfigError with one line naming the field."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices and getattr(cfg, f.name) not in choices:
            raise ConfigError(f"{f.name}={getattr(cfg, f.name)!r}: expected one of {', '.join(choices)}")
    if cfg.preset not in PRESETS:
        raise ConfigError(f"unknown preset {cfg.preset!r}: expected one of {', '.join(PRESETS)}")
    for name in ("epochs", "batch_size", "eval_batch_size", "n_classes"):
        if getattr(cfg, name) < 1:
            raise ConfigError(f"{name}={getattr(cfg, name)}: must be at least 1")
    if not (0 < cfg.lr_end and 0 < cfg.lr_start):
        raise ConfigError("lr_start and lr_end must be positive")
    if not 0 < cfg.bn_alpha <= 1:
        raise ConfigError(f"bn_alpha={cfg.bn_alpha}: expected 0 < alpha <= 1")
    if len(cfg.pool) != len(cfg.conv):
        raise ConfigError(f"pool has {len(cfg.pool)} entries but conv has {len(cfg.conv)}")
    if cfg.conv and len(cfg.input_shape) != 3:
        raise ConfigError("conv layers need input_shape height,width,channels")
    if any(n < 1 for n in tuple(cfg.hidden) + tuple(cfg.conv)):
        raise ConfigError("hidden and conv sizes must be at least 1")
    for name in ("h", "lr_scale"):
        value = getattr(cfg, name)
        if value != "glorot":
            try:
                if float(value) <= 0:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"{name}={value!r}: expected 'glorot' or a positive number") from None
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
        raise ConfigError(f"{run_dir}: no such run directory")
    if not os.path.isfile(path):
        raise ConfigError(f"{run_dir}: not a run directory (no config.json)")
    try:
        with open(path) as fh:
            data = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable config ({exc})") from None
    return Config.from_dict(data)
