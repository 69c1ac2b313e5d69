"""`bctrain repeat`: one configuration trained over several seeds, summarised as mean ± std (paper §7).

The paper's MNIST figures are means ± standard deviations over 6 runs (1.29 ± 0.08 % for
deterministic BinaryConnect). Seed n trains in its own run directory `DIR/seed-<n>` (bctrain.train):
a finished seed (metrics.json present) is skipped, an interrupted one resumed, so the same command
can be re-run until every seed is done. Before anything trains, every seed directory holding a
config.json (finished or not) and an existing summary.json are compared with the requested
configuration (`bctrain.run.rundir.check_same_run`, the comparison `bctrain train` makes): old
runs are never summarised under new settings. Every call then writes `summary.json` and `summary.md`: each
finished seed's selected errors and epoch time, and their mean and sample standard deviation (n - 1
in the denominator), with the seeds still missing named.

Under `--strategy multiworker` every worker runs the same seeds together (the collectives need
them all) and only the chief writes the summary.

Side by side (several GPUs or hosts sharing the directory): `--shard i/k` trains only the seeds
whose position is i modulo k, e.g. one process per GPU with CUDA_VISIBLE_DEVICES set; a last call
without --shard finds every seed finished and writes the complete summary.
"""
import dataclasses
import json
import math
import os
import sys

from bccommon import atomic, runfiles
from bctrain.run import rundir
from bctrain.config import SEED_MAX, Config, ConfigError

# (metrics.json key, column title, shown as a percentage)
COLUMNS = (("val_error", "val error", True), ("test_error", "test error", True),
           ("test_error_binary", "test error, ±1 weights", True), ("seconds_per_epoch", "s/epoch", False))
ADVICE = "choose another --root-dir (REPEAT_DIR=...) or the same settings"


def seeds_of(cfg: Config, n: int) -> list:
    """The seeds of a repeat of `n` runs: cfg.seed, cfg.seed + 1, ..., each at most SEED_MAX."""
    if n < 1:
        raise ConfigError(f"seeds={n}: expected at least 1")
    if cfg.seed + n - 1 > SEED_MAX:
        raise ConfigError(f"seeds={n} from seed={cfg.seed}: the last seed would be {cfg.seed + n - 1}, "
                          f"above {SEED_MAX}; expected seed + seeds - 1 <= {SEED_MAX}")
    return [cfg.seed + i for i in range(n)]


def seed_dir(root: str, seed: int) -> str:
    return os.path.join(root, runfiles.SEED_DIR.format(seed=seed))


def parse_shard(text: str) -> tuple:
    """'i/k' -> (i, k) with 0 <= i < k."""
    try:
        i, k = (int(v) for v in text.split("/"))
        if not 0 <= i < k:
            raise ValueError
    except ValueError:
        raise ConfigError(f"shard={text!r}: expected i/k with 0 <= i < k, e.g. 0/2") from None
    return i, k


def summary_config(root: str):
    """The Config recorded in ROOT/summary.json, or None if there is none."""
    path = os.path.join(root, runfiles.SUMMARY_JSON)
    if not os.path.lexists(path):
        return None
    try:
        with open(path) as fh:
            summary = json.load(fh)
        if not isinstance(summary, dict) or "config" not in summary:
            raise ValueError("expected a JSON object with \"config\"")
        return Config.from_dict(summary["config"])
    except (OSError, ValueError) as exc:  # JSONDecodeError and ConfigError are ValueErrors
        raise ConfigError(f"{path}: unreadable summary ({exc}); move it away or {ADVICE}") from None


def check(cfg: Config, root: str, n_seeds: int) -> list:
    """The seeds of the repeat, once nothing would be mislabelled: a seed directory holding another
    run (finished or not) or a summary.json of another configuration is refused (one line naming it
    and the differing fields). Reads only config.json and summary.json files; changes nothing."""
    seeds = seeds_of(cfg, n_seeds)
    for seed in seeds:
        run_dir = seed_dir(root, seed)
        if os.path.isfile(os.path.join(run_dir, runfiles.CONFIG_JSON)):
            rundir.check_same_run(run_dir, dataclasses.replace(cfg, seed=seed), advice=ADVICE)
    stored = summary_config(root)
    if stored is not None:
        rundir.check_same_config(stored, cfg, os.path.join(root, runfiles.SUMMARY_JSON), ADVICE)
    return seeds


def read_metrics(run_dir: str):
    """metrics.json of a finished run, or None while it is not finished."""
    path = os.path.join(run_dir, runfiles.METRICS_JSON)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: unreadable metrics ({exc})") from None


def mean_std(values) -> dict:
    """{"n", "mean", "std"}: std is the sample standard deviation (None below 2 values)."""
    n = len(values)
    mean = sum(values) / n if n else None
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"n": n, "mean": mean, "std": std}


def summarise(cfg: Config, root: str, seeds) -> dict:
    runs = {seed: read_metrics(seed_dir(root, seed)) for seed in seeds}
    done = {seed: m for seed, m in runs.items() if m is not None}
    keys = ("best_epoch", "epochs_run") + tuple(key for key, _, _ in COLUMNS)
    return {"config": json.loads(cfg.to_json()), "seeds": list(seeds),
            "missing": [seed for seed, m in runs.items() if m is None],
            "runs": {str(seed): {k: m.get(k) for k in keys} for seed, m in done.items()},
            "stats": {key: mean_std([m[key] for m in done.values() if m.get(key) is not None])
                      for key, _, _ in COLUMNS}}


def _cell(value, percent) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.2f} %" if percent else f"{value:.1f}"


def table(summary: dict) -> str:
    """summary.md: one row per finished seed, then mean ± std."""
    lines = ["| seed | best epoch | epochs run | " + " | ".join(t for _, t, _ in COLUMNS) + " |",
             "|---" * (3 + len(COLUMNS)) + "|"]
    for seed, run in summary["runs"].items():
        lines.append(f"| {seed} | {run['best_epoch']} | {run['epochs_run']} | "
                     + " | ".join(_cell(run[k], p) for k, _, p in COLUMNS) + " |")
    stats = []
    for key, _, percent in COLUMNS:
        s = summary["stats"][key]
        scale = 100 if percent else 1
        if s["mean"] is None:
            stats.append("–")
        elif s["std"] is None:
            stats.append(_cell(s["mean"], percent))
        else:
            stats.append(f"{scale * s['mean']:.2f} ± {scale * s['std']:.2f}" + (" %" if percent else ""))
    lines.append(f"| mean ± std (n = {len(summary['runs'])}) | | | " + " | ".join(stats) + " |")
    if summary["missing"]:
        lines += ["", "Not finished: seeds " + ", ".join(map(str, summary["missing"])) + "."]
    return "\n".join(lines) + "\n"


def repeat(cfg: Config, root: str, n_seeds: int, data_dir=None, shard=(0, 1), out=None) -> dict:
    """Train (or resume, or skip) each seed of the repeat, then write and return the summary."""
    seeds = check(cfg, root, n_seeds)
    from bctrain.step.strategy import task_writes_results
    from bctrain.train import train  # TensorFlow loads here, after the arguments are checked
    writes = task_writes_results(cfg.strategy)  # multiworker: the chief only
    out = out or sys.stdout
    if not writes:
        out = open(os.devnull, "w")
    index, count = shard
    for position, seed in enumerate(seeds):
        run_dir = seed_dir(root, seed)
        if position % count != index:
            continue
        if read_metrics(run_dir) is not None:
            print(f"seed {seed}: finished ({run_dir}), skipped", file=out)
            continue
        resume = os.path.isfile(os.path.join(run_dir, runfiles.CONFIG_JSON))
        print(f"seed {seed}: {'resuming' if resume else 'training'} in {run_dir}", file=out, flush=True)
        train(dataclasses.replace(cfg, seed=seed), run_dir, data_dir=data_dir, resume=resume, out=out)
    summary = summarise(cfg, root, seeds)
    if not writes:
        return summary
    os.makedirs(root, exist_ok=True)
    atomic.write_json(os.path.join(root, runfiles.SUMMARY_JSON), summary)
    text = table(summary)
    atomic.write_text(os.path.join(root, runfiles.SUMMARY_MD), text)
    print(text, file=out, end="")
    return summary
