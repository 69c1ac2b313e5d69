"""Command line: `bctrain train --preset mnist --binarize det ...`, `bctrain repeat --seeds 6 ...`.

Every Config field is a flag (`--lr-start`, `--hidden 2048,2048,2048`, ...) that overrides the preset.
"""
import argparse
import dataclasses
import os
import signal
import sys

from bccommon import runfiles
from bctrain.config import PRESETS, Config, ConfigError, with_overrides

EXIT_STOPPED = 1  # training stopped by a non-finite loss or weight
EXIT_USAGE = 2    # unusable input: one line on stderr, nothing changed
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143  # 128 + SIGTERM, what the shell reports for a process SIGTERM ended


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that it stops as Ctrl-C does: temporary files
    removed, the lock released, one line saying how to go on."""


def _terminate(signum, frame):
    raise Terminated()


def _parse_tuple(text: str) -> tuple:
    """"2048,2048" -> (2048, 2048); "" -> (); an empty or non-integer item is refused."""
    if not text.strip():
        return ()
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_config_flags(parser):
    group = parser.add_argument_group("configuration (each overrides the preset)")
    runtime = parser.add_argument_group("runtime (how the same training runs; a resume may change these)")
    for f in dataclasses.fields(Config):
        if f.name == "preset":
            continue
        default = f.default
        kind = {tuple: _parse_tuple, bool: _parse_bool}.get(type(default), type(default))
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        (runtime if f.metadata.get("runtime") else group).add_argument(
            "--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                           metavar=f.name.upper(), help=f"{f.metadata['help']} (mnist preset: {shown})")


def _add_verbose_flag(parser):
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's start-up lines "
                        "(absl, oneDNN, CUDA probing), hidden by default")


def build_parser():
    parser = argparse.ArgumentParser(prog="bctrain", description="BinaryConnect training (arXiv:1511.00363).")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a network", description="Train a BinaryConnect network; "
                           "writes config.json, history.jsonl, metrics.json, plots, TensorBoard events and "
                           "checkpoints into the run directory.")
    train.add_argument("--preset", default="mnist", choices=sorted(PRESETS), help="named recipe (default: mnist)")
    train.add_argument("--run-dir", help="run directory (default: runs/<preset>-<binarize>)")
    train.add_argument("--data-dir", help="directory with the dataset's official files, instead of the cache or "
                       "the download (MNIST: the four IDX files; CIFAR-10: cifar-10-python.tar.gz or "
                       "cifar-10-batches-py/; SVHN: train_32x32.mat, extra_32x32.mat, test_32x32.mat)")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last "
                       "checkpoint (refused if its recipe differs; the runtime may change)")
    _add_verbose_flag(train)
    _add_config_flags(train)
    rep = sub.add_parser("repeat", help="train one configuration over several seeds and summarise",
                         description="Train the same configuration with seeds SEED, SEED+1, ... each in "
                         "ROOT_DIR/seed-<n> (finished seeds are skipped, interrupted ones resumed), then "
                         "write ROOT_DIR/summary.json and summary.md (mean ± std of the selected errors).")
    rep.add_argument("--preset", default="mnist", choices=sorted(PRESETS), help="named recipe (default: mnist)")
    rep.add_argument("--seeds", type=int, default=6, help="number of seeds (default: 6, as the paper)")
    rep.add_argument("--shard", default="0/1", help="i/k: train only the seeds at positions i mod k, to run "
                     "k processes side by side (default: 0/1, every seed)")
    rep.add_argument("--root-dir", help="directory of the seeds' run directories (default: "
                     "runs/<preset>-<binarize>-seeds)")
    rep.add_argument("--data-dir", help="directory with the dataset's official files (as for train)")
    _add_verbose_flag(rep)
    _add_config_flags(rep)
    sub.add_parser("presets", help="list the presets and their settings")
    return parser


def _started(run_dir) -> bool:
    """Whether the run directory holds this run (so --resume continues it)."""
    return bool(run_dir) and os.path.isfile(os.path.join(run_dir, runfiles.CONFIG_JSON))


def _writes_results() -> bool:
    """Whether this multiworker task writes the run directory (TF_CONFIG: the chief, else worker 0)."""
    from bctrain.step import cluster
    try:
        return cluster.from_env().writes_results
    except ConfigError:
        return True


def main(argv=None) -> int:
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return _run(build_parser().parse_args(argv))
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args) -> int:
    if args.command == "presets":
        for name, cfg in PRESETS.items():
            print(f"{name}: {cfg.to_json()}")
        return 0
    names = {f.name for f in dataclasses.fields(Config)} - {"preset"}
    run_dir, strategy = None, args.strategy or "default"
    try:
        cfg = with_overrides(args.preset, **{n: getattr(args, n) for n in names})
        strategy = cfg.strategy
        if args.command == "train":
            if args.run_dir == "":
                raise ConfigError("--run-dir: empty; expected a directory path")
            run_dir = args.run_dir or os.path.join("runs", f"{cfg.preset}-{cfg.binarize}")
        else:
            from bctrain.run.repeat import check, parse_shard
            shard = parse_shard(args.shard)
            root = args.root_dir or os.path.join("runs", f"{cfg.preset}-{cfg.binarize}-seeds")
            check(cfg, root, args.seeds)
        from bctrain.data import DataError, registry
        try:  # what needs no TensorFlow is checked before it loads (seconds)
            registry.check_data_dir(cfg.dataset, args.data_dir)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        if cfg.strategy == "multiworker":  # TF_CONFIG checked whole before TensorFlow loads
            from bctrain.step import cluster
            cluster.from_env()
            cluster.peer_timeout()
        from bctrain.run.startup import load_tensorflow
        tf = load_tensorflow(args.verbose)
        from bctrain.run.finite import NonFiniteError
        try:
            if args.command == "repeat":
                from bctrain.run.repeat import repeat
                repeat(cfg, root, args.seeds, data_dir=args.data_dir, shard=shard)
                return 0
            from bctrain.train import train
            train(cfg, run_dir, data_dir=args.data_dir, resume=args.resume)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        except NonFiniteError as exc:
            print(f"bctrain: error: {exc}", file=sys.stderr)
            return EXIT_STOPPED
        except tf.errors.UnavailableError:
            if cfg.strategy != "multiworker":
                raise
            raise ConfigError("TF_CONFIG: another worker stopped or became unreachable (UnavailableError); start "
                              "every worker again, with --resume (RESUME=1) once the run directory holds the run") from None
    except ConfigError as exc:
        print(f"bctrain: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the run directory: read-only, a full disk, permissions, ...
        where = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        then = "continue with --resume (RESUME=1)" if _started(run_dir) else "run the same command again"
        print(f"bctrain: error: {where}; fix this, then {then}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        stopped = "terminated" if isinstance(exc, Terminated) else "interrupted"
        if strategy == "multiworker" and not _writes_results():
            then = "start every worker again, with --resume (RESUME=1) once the chief's run directory holds the run"
        elif args.command == "repeat":
            then = "run the same command again (finished seeds are skipped, the others resumed)"
        elif _started(run_dir):
            then = "continue with --resume (RESUME=1)"
        else:
            then = "nothing was written; run the same command again"
        print(f"bctrain: {stopped}; {then}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
