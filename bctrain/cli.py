"""Command line: `bctrain train --preset mnist --binarize det ...`.

Every Config field is a flag (`--lr-start`, `--hidden 2048,2048,2048`, ...) that overrides the preset.
"""
import argparse
import dataclasses
import os
import sys

# TensorFlow's start-up INFO lines (oneDNN, XLA) are noise for users; a user setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from bctrain.config import PRESETS, Config, ConfigError, with_overrides

EXIT_STOPPED = 1  # training stopped by a non-finite loss or weight
EXIT_USAGE = 2    # unusable input: one line on stderr, nothing changed
EXIT_INTERRUPTED = 130


def _parse_tuple(text: str) -> tuple:
    return tuple(int(v) for v in text.split(",") if v.strip()) if text.strip() else ()


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_config_flags(parser):
    group = parser.add_argument_group("configuration (each overrides the preset)")
    for f in dataclasses.fields(Config):
        if f.name == "preset":
            continue
        default = f.default
        kind = {tuple: _parse_tuple, bool: _parse_bool}.get(type(default), type(default))
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=kind, default=None,
                           metavar=f.name.upper(), help=f"{f.metadata['help']} (mnist preset: {shown})")


def build_parser():
    parser = argparse.ArgumentParser(prog="bctrain", description="BinaryConnect training (arXiv:1511.00363).")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a network", description="Train a BinaryConnect network; "
                           "writes config.json, history.jsonl, metrics.json, plots, TensorBoard events and "
                           "checkpoints into the run directory.")
    train.add_argument("--preset", default="mnist", choices=sorted(PRESETS), help="named recipe (default: mnist)")
    train.add_argument("--run-dir", help="run directory (default: runs/<preset>-<binarize>)")
    train.add_argument("--data-dir", help="directory with the four MNIST IDX files, instead of the cache "
                       "or the download")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last "
                       "checkpoint (refused if its config differs)")
    _add_config_flags(train)
    sub.add_parser("presets", help="list the presets and their settings")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "presets":
        for name, cfg in PRESETS.items():
            print(f"{name}: {cfg.to_json()}")
        return 0
    names = {f.name for f in dataclasses.fields(Config)} - {"preset"}
    try:
        cfg = with_overrides(args.preset, **{n: getattr(args, n) for n in names})
        run_dir = args.run_dir or os.path.join("runs", f"{cfg.preset}-{cfg.binarize}")
        from bctrain.data import DataError  # imported late: TensorFlow loads with training
        from bctrain.finite import NonFiniteError
        from bctrain.train import train
        try:
            train(cfg, run_dir, data_dir=args.data_dir, resume=args.resume)
        except DataError as exc:
            raise ConfigError(str(exc)) from None
        except NonFiniteError as exc:
            print(f"bctrain: error: {exc}", file=sys.stderr)
            return EXIT_STOPPED
    except ConfigError as exc:
        print(f"bctrain: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("bctrain: interrupted; continue with --resume (RESUME=1)", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


if __name__ == "__main__":
    sys.exit(main())
