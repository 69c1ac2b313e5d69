"""The run directory: recipe check, runtime changes on resume, data identity, the JSON-lines history.

Everything a run writes goes through a temporary file and a rename (bccommon.atomic), so an
interrupted run never leaves a half-written file; a directory that holds a different run (another
recipe, `bctrain.config`) is refused, never overwritten. A resume may change the runtime: it is
recorded in config.json and each change is named in one line, saying whether the results stay
bit-identical to an uninterrupted run.
"""
import dataclasses
import hashlib
import json
import os
import stat
import zipfile

import numpy as np

from bccommon import runfiles
from bccommon import atomic
from bctrain import choices
from bctrain.config import Config, ConfigError, load_config
from bctrain.data.preprocess import params_sha256
from bctrain.run import leftovers


def _recipe_differences(a: Config, b: Config) -> str:
    a, b = a.recipe(), b.recipe()
    return ", ".join(f"{name} {a[name]!r} != {b[name]!r}" for name in a if a[name] != b[name])


def runtime_changes(stored: Config, cfg: Config) -> list:
    """One line per runtime field that `cfg` changes from the stored run's, saying whether the
    results stay bit-identical to an uninterrupted run (`Config` field metadata `resume_note`)."""
    lines = []
    for f in dataclasses.fields(Config):
        old, new = getattr(stored, f.name), getattr(cfg, f.name)
        if f.metadata.get("runtime") and old != new:
            note = f.metadata.get("resume_note")
            lines.append(f"resuming with {f.name} {new!r} (the run had {old!r}): "
                         + (f"the results will differ slightly from an uninterrupted run's ({note})" if note
                            else "the same steps and results"))
    return lines


def data_record(splits, params: dict) -> dict:
    """What identifies the data of a run: a resume must see the same (recorded as data.json).
    `params` are the fitted preprocessing parameters (bctrain.data.preprocess), of any kind."""
    return {"dataset": splits.name, "n_train": len(splits.y_train), "n_val": len(splits.y_val),
            "n_test": len(splits.y_test), "train_sha256": hashlib.sha256(splits.x_train.tobytes()).hexdigest(),
            "params_sha256": params_sha256(params)}


# Keys of `data_record` that data.json written by an earlier release may lack. params_sha256 came
# with the preprocessing table; before it, the only fitted parameter was kind "mean"'s training mean,
# fixed by train_sha256 and the config, which are still compared.
ADDED_KEYS = ("params_sha256",)


def check_same_data(run_dir: str, stored: dict, data: dict):
    """Refuse a resume whose data differ from the recorded ones (`stored`, its data.json): every
    key of `data` is compared; keys only `stored` has (an earlier release's `mean_sha256`) are not,
    and a key it lacks is refused unless it is one of ADDED_KEYS."""
    path = os.path.join(run_dir, runfiles.DATA_JSON)
    missing = [k for k in data if k not in stored and k not in ADDED_KEYS]
    if missing:
        raise ConfigError(f"{path}: no {', '.join(missing)}, so a resume cannot check that the data are the "
                          "same; nothing was changed (start a new --run-dir)")
    diffs = "; ".join(f"{k} {_short(stored[k])} then, {_short(data[k])} now"
                      for k in data if k in stored and stored[k] != data[k])
    if diffs:
        raise ConfigError(f"{run_dir} was trained on other data ({diffs}); "
                          "resume with the same data (--dataset, --data-dir)")


def _refuse_non_directory(run_dir: str):
    """A path that exists (or cannot be looked at) but is no directory is refused by name."""
    if not run_dir:
        raise ConfigError("run directory: empty path")
    try:
        mode = os.stat(run_dir).st_mode
    except FileNotFoundError:
        if os.path.islink(run_dir):
            raise ConfigError(f"{run_dir}: a symbolic link to nothing; expected a directory") from None
        return
    except OSError as exc:  # a symbolic link loop, a permission problem on the way
        raise ConfigError(f"{run_dir}: {exc.strerror}; expected a directory") from None
    if not stat.S_ISDIR(mode):
        raise ConfigError(f"{run_dir}: exists and is not a directory")


RUN_DIR_ADVICE = "choose another --run-dir (RUN_DIR=...) or the same settings"


def check_same_config(stored: Config, cfg: Config, where: str, advice: str = RUN_DIR_ADVICE):
    """Refuse (one-line ConfigError naming `where` and the differing fields) a recorded config that
    holds another recipe than `cfg` (the runtime may differ): the one comparison of configurations.
    A run that draws random bits in its steps (stochastic weights, dropout) also keeps its random-bit
    algorithm, which follows jit (bctrain.choices.draw_algorithm)."""
    if stored.recipe() != cfg.recipe():
        raise ConfigError(f"{where} holds a different run ({_recipe_differences(stored, cfg)}); {advice}")
    draws = [what for what, yes in (("stochastic weights", cfg.binarize == "stoch"),
                                    ("dropout masks", cfg.dropout_in or cfg.dropout_hidden)) if yes]
    if draws and choices.draw_algorithm(stored.jit) != choices.draw_algorithm(cfg.jit):
        raise ConfigError(f"jit={cfg.jit}: {where} draws its {' and '.join(draws)} with "
                          f"{choices.draw_algorithm(stored.jit)}, which needs jit={stored.jit}; "
                          "resume with the jit it had")


def check_same_run(run_dir: str, cfg: Config, advice: str = RUN_DIR_ADVICE) -> Config:
    """Refuse a run directory whose config.json holds another recipe than `cfg`; return the stored
    config. `bctrain train` and `bctrain repeat` (for each seed) both ask this."""
    stored = load_config(run_dir)
    check_same_config(stored, cfg, run_dir, advice)
    return stored


def check(run_dir: str, cfg: Config, resume: bool):
    """Refuse a run directory that `prepare` would refuse for its config; change nothing."""
    _refuse_non_directory(run_dir)
    config_path = os.path.join(run_dir, runfiles.CONFIG_JSON)
    if os.path.isfile(config_path):
        check_same_run(run_dir, cfg)
        if not resume:
            raise ConfigError(f"{run_dir} already holds this run; pass --resume (RESUME=1) to continue "
                              "it or choose another --run-dir (RUN_DIR=...)")
    elif resume:
        raise ConfigError(f"{run_dir}: nothing to resume (no config.json)")
    elif os.path.isdir(run_dir) and {n for n in os.listdir(run_dir) if not leftovers.is_leftover(n)} - {
            runfiles.LOCK, runfiles.DATA_JSON}:
        # (a start that failed before config.json, e.g. on a full disk or killed, may have left those
        # two and temporaries, which the run removes)
        raise ConfigError(f"{run_dir} is not empty and is not a run directory; choose another --run-dir")


def prepare(run_dir: str, cfg: Config, resume: bool, data: dict | None = None) -> list:
    """Create `run_dir` for `cfg`, or check that it holds the same recipe (and data) when resuming.
    Return the lines to show about a resume's changed runtime (`record_runtime` writes it, once the
    checkpoint is restored)."""
    check(run_dir, cfg, resume)
    data_path = os.path.join(run_dir, runfiles.DATA_JSON)
    config_path = os.path.join(run_dir, runfiles.CONFIG_JSON)
    if resume:
        if data is not None:
            check_same_data(run_dir, read_data_record(run_dir), data)
        return runtime_changes(load_config(run_dir), cfg)
    os.makedirs(run_dir, exist_ok=True)
    if data is not None:
        atomic.write_json(data_path, data)
    atomic.write_text(config_path, cfg.to_json())
    return []


def record_runtime(run_dir: str, cfg: Config):
    """config.json records the runtime of the latest session (a resume may change it; same recipe)."""
    check_same_run(run_dir, cfg)
    path = os.path.join(run_dir, runfiles.CONFIG_JSON)
    if load_config(run_dir) != cfg:
        atomic.write_text(path, cfg.to_json())


def _short(value) -> str:
    """A value for a one-line message: digests cut to 12 hex digits."""
    return f"{value[:12]}..." if isinstance(value, str) and len(value) == 64 else repr(value)


def read_data_record(run_dir: str) -> dict:
    """data.json: a resume must find it, since it is how the same data is recognised."""
    path = os.path.join(run_dir, runfiles.DATA_JSON)
    try:
        with open(path) as fh:
            record = json.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing, so a resume cannot check that the data are the same; "
                          "nothing was changed (start a new --run-dir)") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc}); nothing was changed") from None
    if not isinstance(record, dict):
        raise ConfigError(f"{path}: expected a JSON object; nothing was changed")
    return record


def saved_best_epoch(run_dir: str):
    """The epoch stored in best.npz (None if there is no best.npz)."""
    path = os.path.join(run_dir, runfiles.BEST_NPZ)
    if not os.path.isfile(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as weights:
            return int(weights["epoch"]) if "epoch" in weights.files else None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})") from None


def history_path(run_dir: str) -> str:
    return os.path.join(run_dir, runfiles.HISTORY_JSONL)


def _no_constant(token):
    raise ValueError(f"{token} is not a number")


def read_history(run_dir: str) -> list:
    """The records of history.jsonl: JSON objects of epochs 1, 2, ... in order (else ConfigError)."""
    path = history_path(run_dir)
    if not os.path.isfile(path):
        return []
    records = []
    with open(path) as fh:
        for n, line in enumerate(fh, 1):
            try:
                record = json.loads(line, parse_constant=_no_constant)
            except ValueError as exc:  # JSONDecodeError, NaN or Infinity
                raise ConfigError(f"{path}: line {n} unreadable ({exc}); start a new run directory") from None
            epoch = record.get("epoch") if isinstance(record, dict) else None
            if type(epoch) is not int or epoch != len(records) + 1:
                raise ConfigError(f"{path}: line {n} is not the record of epoch {len(records) + 1} "
                                  f"(a JSON object with \"epoch\": {len(records) + 1}); start a new run directory")
            records.append(record)
    return records


def write_history(run_dir: str, records: list):
    atomic.write_text(history_path(run_dir), "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n"
                                                     for r in records))
