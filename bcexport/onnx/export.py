"""`bcexport onnx RUN_DIR`: model.onnx, model.packed.onnx, model.raw.onnx and export.json (§9).

model.onnx         input "x" float32 [N, *input_shape] (preprocessed) -> "logits" float32 [N, classes];
                   binary weights as float32 ±1 initializers (tf2onnx.convert.from_function).
model.packed.onnx  the same graph with the binary weights as 1-bit uint8 initializers
                   (bcexport.onnx.packed); outputs identical to model.onnx.
model.raw.onnx     input "pixels" uint8 [N, *image_shape] (the run's dataset: [N, 28, 28] for MNIST,
                   [N, 32, 32, 3] NHWC for CIFAR-10 and SVHN) -> "logits"; the run's preprocessing in
                   the graph (pixels / 255 − mean; GCN then ZCA; GCN then LCN), with the parameters of
                   preprocess.npz (only when the images have as many values as the network's input).
bn_stats.npz       only when BatchNorm statistics are re-estimated (`bcexport.bn_restat`; by default for
                   a stochastic run, on its first 2,000 training images): every block's mean and std
                   under sign(w), which every back end then deploys; export.json records its SHA-256
                   and the number of images ("bn_statistics"). Otherwise the trained running
                   statistics are deployed, no bn_stats.npz is left and export.json has no such key.
Every file is checked by onnx.checker and loaded by onnxruntime before it is renamed into place.
The statistics are computed, and bad input (a negative count, more images than the training split,
a missing dataset) refused, before anything is written.
The command holds the run directory's lock (`bcexport.lock`) and first removes what a killed
`bcexport onnx` left behind (its files' temporaries), in one line.
"""
import math
import os
import sys

import numpy as np
import onnx
import onnxruntime
import tensorflow as tf
import tf2onnx

from bccommon import runfiles
from bccommon import atomic
from bcexport import ExportError, bn_restat, lock
from bccommon import digests
from bcexport.onnx import packed as packed_onnx
from bcexport.pack import BIT_ORDER, Deployment, binary_run, deployment
from bcexport.rundir import load_best, load_preprocess, read_data_json, run_splits
from bctrain.paper.arch import layer_specs
from bcexport.tfmodel import has_raw_model, inference_function, raw_inference_function

OPSET = 18  # the highest tf2onnx 1.17 converts to; BitwiseAnd (packed model) needs 18
WRITTEN = (runfiles.MODEL_ONNX, runfiles.MODEL_PACKED_ONNX, runfiles.MODEL_RAW_ONNX, runfiles.BN_STATS_NPZ,
           runfiles.EXPORT_JSON)
OUTPUT_NAME = "logits"

STOCH_NOTE = ("stochastic run: the reported test error used the real-valued weights (paper §2); "
              "the export deploys sign(w), whose error bcexport verify measures")
RESTAT_NOTE = "with BatchNorm statistics re-estimated under sign(w) on the first {n} training images"


def convert(fn) -> onnx.ModelProto:
    """A tf.function with an input_signature -> checked ModelProto whose one output is 'logits'."""
    model, _ = tf2onnx.convert.from_function(fn, input_signature=fn.input_signature, opset=OPSET)
    if len(model.graph.output) != 1:
        raise ExportError(f"converted graph has {len(model.graph.output)} outputs, expected 1")
    old = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [OUTPUT_NAME if o == old else o for o in node.output]
        node.input[:] = [OUTPUT_NAME if i == old else i for i in node.input]
    model.graph.output[0].name = OUTPUT_NAME
    onnx.checker.check_model(model)
    return model


def session(model_or_path, threads=None) -> onnxruntime.InferenceSession:
    """An onnxruntime CPU session (intra- and inter-op `threads` if given); a file onnxruntime
    refuses is an ExportError."""
    src = model_or_path if isinstance(model_or_path, (str, bytes)) else model_or_path.SerializeToString()
    opts = onnxruntime.SessionOptions()
    opts.log_severity_level = 3  # errors only: its warnings (an unused initializer removed) are noise here
    if threads:
        opts.intra_op_num_threads = opts.inter_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(src, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own, unexported exception types
        where = model_or_path if isinstance(model_or_path, str) else "model"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{where}: onnxruntime refuses it ({first})") from None


def _remove_stale(run_dir: str):
    """A new export invalidates an earlier verification, and until export.json is written again
    (last) the directory holds no complete export."""
    for name in (runfiles.VERIFY_JSON, runfiles.EXPORT_JSON, runfiles.BN_STATS_NPZ):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            os.remove(path)


def export_models(dep: Deployment) -> dict:
    """{file name: ModelProto} for a deployment, plus the packing details under key 'packing'."""
    model = convert(inference_function(dep))
    packed, packing = packed_onnx.pack_model(model, dep)
    models = {runfiles.MODEL_ONNX: model, runfiles.MODEL_PACKED_ONNX: packed}
    if has_raw_model(dep):
        models[runfiles.MODEL_RAW_ONNX] = convert(raw_inference_function(dep))
    return {"models": models, "packing": packing}


def restat_weights(run_dir: str, cfg, weights: dict, n: int, data_dir=None, load_train=None) -> dict:
    """Statistics of `bcexport.bn_restat.restat` on the run's first `n` training images.
    `load_train(run_dir, data_dir) -> Splits` defaults to the run's dataset (`run_splits`)."""
    splits = (load_train or run_splits)(run_dir, data_dir)
    kind, params = load_preprocess(run_dir, math.prod(cfg.input_shape))
    x = bn_restat.training_inputs(cfg, n, splits, kind, params, read_data_json(run_dir))
    return bn_restat.restat(layer_specs(cfg), weights, x, cfg.bn_eps)


def export_run(run_dir: str, err=None, bn_restat_images=None, data_dir=None, load_train=None) -> dict:
    """Write the ONNX files and export.json into a finished run directory; return export.json. Holds
    the run directory's lock (`bcexport.lock`); under it, first removes what a killed `bcexport onnx`
    left (`.model*.onnx.*.tmp`, `.export.json.*.tmp`), saying so on `err` (stderr).

    `bn_restat_images`: training images to re-estimate the BatchNorm statistics on (0: keep the
    trained ones; None: `bn_restat.default_images`, 2,000 for a stochastic run), from `data_dir`
    (default: the directory metrics.json records) through `load_train` (see `restat_weights`)."""
    cfg = binary_run(run_dir)
    n = bn_restat.default_images(cfg.binarize) if bn_restat_images is None else bn_restat_images
    if n < 0:
        raise ExportError(f"--bn-restat-images {n}: expected 0 (keep the trained statistics) or a number "
                          "of training images")
    weights, stats = load_best(run_dir, cfg), None
    if n:
        stats = restat_weights(run_dir, cfg, weights, n, data_dir, load_train)
        weights = bn_restat.with_statistics(weights, stats)
    dep = deployment(run_dir, cfg, weights)
    with lock.hold(run_dir):
        lock.report_removed(atomic.remove_temporaries(run_dir, WRITTEN), run_dir, "`bcexport onnx`",
                            err or sys.stderr)
        return _export(run_dir, dep, (n, stats) if stats else None)


def _export(run_dir: str, dep: Deployment, restat=None) -> dict:
    """`restat`: (images, statistics) re-estimated, written to bn_stats.npz before the models."""
    out = export_models(dep)
    # All or nothing: every model must load in onnxruntime before any file is replaced.
    blobs = {name: m.SerializeToString() for name, m in out["models"].items()}
    for data in blobs.values():
        session(data)
    _remove_stale(run_dir)
    if restat:
        atomic.save_npz(os.path.join(run_dir, runfiles.BN_STATS_NPZ), **restat[1])
    for name, data in blobs.items():
        atomic.write_bytes(os.path.join(run_dir, name), data)
    sizes = {name: len(data) for name, data in blobs.items()}
    float_bytes = sum(v[1] for v in out["packing"].values())
    packed_bytes = sum(v[2] for v in out["packing"].values())
    summary = {
        "files": sizes,
        "sha256": digests.record(run_dir, blobs),
        "binary_weights": dep.n_binary_weights,
        "binary_weight_bytes": {"float32": float_bytes, "packed": packed_bytes,
                                "ratio": packed_bytes / float_bytes},
        "file_ratio_packed_to_float": sizes[runfiles.MODEL_PACKED_ONNX] / sizes[runfiles.MODEL_ONNX],
        "packed_initializers": {k: v[0] for k, v in sorted(out["packing"].items())},
        "bit_order": f"row-major over each initializer, {BIT_ORDER}-endian bits, 1 = +1",
        "inputs": {runfiles.MODEL_ONNX: "x float32 [N, " + ", ".join(map(str, dep.input_shape)) + "]",
                   runfiles.MODEL_RAW_ONNX: "pixels uint8 [N, " + ", ".join(map(str, dep.image_shape)) + "]"},
        "output": f"{OUTPUT_NAME} float32 [N, {dep.cfg.n_classes}]",
        "opset": OPSET,
        "preset": dep.cfg.preset,
        "binarize": dep.cfg.binarize,
        "binarize_act": dep.cfg.binarize_act,
        "preprocess": dep.preprocess,
        "versions": {"tensorflow": tf.__version__, "tf2onnx": tf2onnx.__version__,
                     "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                     "numpy": np.__version__},
    }
    if runfiles.MODEL_RAW_ONNX not in sizes:
        del summary["inputs"][runfiles.MODEL_RAW_ONNX]
    if restat:
        summary["bn_statistics"] = {"file": runfiles.BN_STATS_NPZ, "images": restat[0],
                                    "sha256": digests.sha256_file(os.path.join(run_dir, runfiles.BN_STATS_NPZ))}
    if dep.cfg.binarize == "stoch":
        summary["note"] = STOCH_NOTE + (", " + RESTAT_NOTE.format(n=restat[0]) if restat else "")
    atomic.write_json(os.path.join(run_dir, runfiles.EXPORT_JSON), summary)
    return summary
