"""`bcexport`: export a finished BinaryConnect run and verify the export (paper §9).

    bcexport onnx RUN_DIR [--bn-restat-images N] [--data-dir D]
                                            model.onnx, model.packed.onnx, model.raw.onnx, export.json
                                            (and bn_stats.npz: a stochastic run's BatchNorm statistics)
    bcexport c RUN_DIR [--prefix P] [--tile T]  C99 sources in RUN_DIR/c/ (bcnn_model.h/.c, harness.c)
    bcexport verify RUN_DIR [--data-dir D]  parity of TF, NumPy, ONNX and C back ends on the test set

Exit codes: 0 success, 1 verification failed, 2 unusable input (one line on stderr).
"""
import argparse
import sys

from bctrain.config import ConfigError
from bctrain.data import DataError
from bctrain.run.startup import load_tensorflow
from bcexport import ExportError, bn_restat
from bcexport.c.plan import DEFAULT_TILE

EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bcexport", description="Export a trained BinaryConnect run to ONNX and verify it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)  # flags of every command: parents=[common]
    common.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up lines (absl, oneDNN, CUDA probing), hidden by default")
    p = sub.add_parser("onnx", parents=[common],
                       help="write model.onnx, model.packed.onnx, model.raw.onnx and export.json",
                       description="Fold BatchNorm, pack sign(w) as bits and write the ONNX models "
                                   "and export.json into RUN_DIR (a finished bctrain run).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="finished run directory (config.json, best.npz, "
                                                      "preprocess.npz, metrics.json)")
    p.add_argument("--bn-restat-images", type=int, default=None, metavar="N",
                   help="re-estimate every block's BatchNorm mean and std under sign(w) on the first N "
                        "training images (preprocessed as in training) and deploy those, written to "
                        f"bn_stats.npz; 0 keeps the trained running statistics (default: "
                        f"{bn_restat.DEFAULT_IMAGES} for a --binarize stoch run, whose statistics are of its "
                        "sampled weights, 0 otherwise)")
    p.add_argument("--data-dir", default=None, metavar="D",
                   help="directory with the run's dataset files, for the re-estimation (default: the one "
                        "recorded in metrics.json, else the download cache)")
    p = sub.add_parser("c", parents=[common], help="write the C99 inference code into RUN_DIR/c/",
                       description="Generate bcnn_model.h, bcnn_model.c (1-bit weights, add/subtract "
                                   "kernels, no malloc) and harness.c into RUN_DIR/c/, compile them with "
                                   "strict warnings and write c/export.json (sizes, kernel path, Cortex-M4 "
                                   "flash and RAM).")
    p.add_argument("run_dir", metavar="RUN_DIR", help="finished run directory")
    p.add_argument("--prefix", default="bcnn", help="start of every public C name (default: bcnn)")
    p.add_argument("--tile", type=int, default=DEFAULT_TILE,
                   help=f"samples per tile: rows of the dense products (default: {DEFAULT_TILE}; "
                        "the header lets a build override it)")
    p = sub.add_parser("verify", parents=[common], help="compare every back end with the NumPy reference; write verify.json",
                       description="Run TF (training code path), the NumPy reference, onnxruntime on "
                                   "model.onnx, model.packed.onnx and model.raw.onnx, and the C model (if "
                                   "exported) over the whole test set; exit 1 if any back end disagrees "
                                   "beyond the tolerance.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="run directory exported with `bcexport onnx`")
    p.add_argument("--data-dir", default=None, metavar="D",
                   help="directory with the run's dataset files (default: the one recorded in metrics.json, "
                        "else the download cache)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "onnx":
            load_tensorflow(args.verbose)  # quietly: its start-up lines are noise (bctrain.run.startup)
            from bcexport.onnx.export import export_run
            summary = export_run(args.run_dir, bn_restat_images=args.bn_restat_images, data_dir=args.data_dir)
            files = ", ".join(f"{k} ({v:,} B)" for k, v in summary["files"].items())
            bn = summary.get("bn_statistics")
            restat = (f", {bn['file']} (BatchNorm statistics re-estimated under sign(w) on {bn['images']:,} "
                      "training images)" if bn else "")
            print(f"wrote {files}{restat} and export.json to {args.run_dir}; binary weights stored in "
                  f"1/{1 / summary['binary_weight_bytes']['ratio']:.1f} of their float32 bytes")
            return 0
        if args.command == "c":
            from bcexport.c.export import export_c
            summary = export_c(args.run_dir, prefix=args.prefix, tile=args.tile)
            mcu = summary["microcontroller"]
            sizes = (f"; Cortex-M4: flash {mcu['flash']:,} B, RAM {mcu['ram']:,} B" if "flash" in mcu
                     else f"; no Cortex-M4 sizes ({mcu['skipped']})")
            print(f"wrote {len(summary['files'])} files to {args.run_dir}/c: weights {summary['weight_bytes']:,} B "
                  f"(1 bit each), compiled with {', '.join(summary['compiled_with']) or 'no compiler'}{sizes}")
            if "note" in summary:
                print(f"note: {summary['note']}")
            return 0
        load_tensorflow(args.verbose)  # `bcexport c` needs no TensorFlow; verify's tf_net back end does
        from bcexport.verify import verify_run
        report = verify_run(args.run_dir, data_dir=args.data_dir)
        return 0 if report["passed"] else EXIT_FAILED
    except (ExportError, ConfigError, DataError) as exc:
        print(f"bcexport {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a read-only run directory, a full disk, permissions, ...
        where = f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc)
        print(f"bcexport {args.command}: error: {where}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
