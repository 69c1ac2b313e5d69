"""`bcexport verify RUN_DIR`: the parity gate over the whole test set (paper §9).

Back ends (the table in `bcexport.backends`), each compared with the NumPy float64 reference over
the packed weights (`bcexport.reference`):
    tf_net       the training code path: bctrain.paper.models.Net(training=False, eval_mode="binary")
                 on the latent best.npz weights (unfolded BN, its own sign), TensorFlow float32, with
                 the BatchNorm statistics every back end deploys (`bcexport.rundir.deployed_weights`)
    onnx         onnxruntime on model.onnx            (preprocessed float32 input)
    onnx_packed  onnxruntime on model.packed.onnx     (preprocessed float32 input)
    onnx_raw     onnxruntime on model.raw.onnx        (raw uint8 pixels, preprocessing in-graph)
    c            the generated C (c/bcnn_model.c, `bcexport c`), built natively (-O2 -march=native)
                 and called through ctypes               (preprocessed float32 input)
    c_raw        its pixel entry point                  (raw uint8 pixels, preprocessing in C)
Every back end whose file exists is verified, whatever export.json lists; the C entries record the
kernel path they ran. Re-estimated BatchNorm statistics (bcexport.bn_restat: a stochastic run's, by
default) must be in bn_stats.npz with the SHA-256 export.json records, else verify stops with one
line (exit 2) before running anything; a C export generated with other statistics than export.json
records is named and fails. A C export that export.c.json records must be there whole
(`bcexport.c.swap`).

With binary activations (BinaryNet, PAPER.md §10) every back end also gives the ±1 outputs of its
hidden blocks, checked block by block, each fed the back end's own bits of the block before: exactly
equal on ±1 inputs, equal on the first block (real inputs) except where float32 summation in another
order can move the product across the threshold; the logits are compared as below with the output
block computed on the back end's own last hidden bits (bcexport.hidden; verify.json: each back end's
`hidden`, and `binary_activations`).

The test data is the run's dataset (metrics.json, `bctrain.data.registry`), preprocessed with the
run's kind and parameters (preprocess.npz, `bctrain.data.preprocess.KINDS`). Each back end is
compared with the float64 reference of what it is fed: back ends fed "x" with the reference on
that float32 x; back ends fed raw "pixels" with the reference on the preprocessing computed in
float64 from the pixels, so the preprocessing inside model.raw.onnx is checked too.

Tolerance, per test sample (row of logits) and per feed:
    scale = max(1, max_j |ref_j|),   tol = K · s · scale,   K = 16,
    s = max(4u, max over the test set of max_j |ref32_j − ref_j| / scale),   u = 2^-24,
where ref32 is the same reference pass run in float32 (NumPy/BLAS summation order) on the float32
x (for the pixels feed: x from the float32 NumPy preprocessing, the one training used). A float32
back end differs from the float64 oracle only by rounding; how much depends on the network (fan-in,
cancellation between a ⊙ u and c, depth) more than on the summation order, so the tolerance is
the float32 rounding noise of *this* network on *this* test set, measured with a back end that
shares no code with the ones under test, times a safety factor. BatchNorm keeps logits O(1), hence
the relative form with an absolute floor of 1. Observed: every back end (TF, onnxruntime) stays
within 1.6·s on trained and random MNIST-sized MLPs and small CNNs, so K = 16 leaves a 10x margin,
while in a trained MNIST MLP a single flipped sign bit in any hidden or output layer moved some
logit by more than 600·s (about 40·tol) in every trial (a flip that only meets always-zero inputs
is invisible to any test set).

A back end passes when every logit is within tol and its argmax agrees with the reference on every
sample except genuine ties: samples whose two largest reference logits differ by at most 2·tol
(the only ones whose order two within-tol results can swap); ties are counted separately. Below any
logit tolerance, and whatever the logits, the binary weights each back end's file stores must be
exactly the trained signs: read by the reader its entry of the back-end table names
(`bcexport.stored_weights`: the bits of model.packed.onnx and of the `block<i>_w` arrays of
c/bcnn_model.c, the ±1 floats of model.onnx and model.raw.onnx), so one flipped bit fails even where
no test input can see it; each entry of verify.json records its reader's result (`stored_weights`,
`weight_problems`). The packed model must also store its binary weights in at most 1/30 of their
float32 bytes. And every file the export wrote must still have the SHA-256 recorded in export.json
or c/export.json (`bccommon.digests`); a verified file that the record does not cover, or that
changed since export, is named and fails. A network whose measured rtol K·s exceeds 1e-4 is refused
(exit 2): such a tolerance would no longer test parity. Results go to verify.json; the exit code of
the CLI is non-zero on any failure.
"""
import math
import os
import sys

import numpy as np

from bctrain.data.preprocess import KINDS
from bccommon import runfiles
from bccommon import atomic
from bcexport import ExportError, backends, hidden, lock, reference
from bccommon import digests
from bcexport.c import swap
from bcexport.c.export import read_c_export
from bcexport.pack import Deployment, load_deployment
from bcexport.rundir import read_export, run_splits
from bcexport.tolerance import K_TOL, U32, checked_noise, compare, noise_level, tolerance

MAX_WEIGHT_BYTES_RATIO = 1 / 30
N_PROBES = 256  # random images checked after the test set


def load_test_data(run_dir: str, data_dir=None) -> tuple:
    """(pixels uint8 [N, *image_shape], labels int64 [N], dataset name) of the data the run used."""
    splits = run_splits(run_dir, data_dir)
    return splits.x_test, splits.y_test, splits.name


def verify_run(run_dir: str, data_dir=None, load_test=None, out=None, err=None) -> dict:
    """Run every back end on the whole test set, write verify.json, return it (key 'passed').

    `load_test(run_dir, data_dir) -> (pixels uint8, labels, name)` defaults to `load_test_data`.
    Holds the run directory's lock (`bcexport.lock`) throughout; under it, a `c/` that a killed
    `bcexport c` left moved aside is restored first (`bcexport.c.swap.recover`), with a notice on
    `err` (stderr), and what a killed verify left (`.verify.json.*.tmp`) is removed.
    """
    stale = os.path.join(run_dir, runfiles.VERIFY_JSON)
    if os.path.exists(stale):  # a failed or refused verification must not leave an old pass behind
        os.remove(stale)
    dep = load_deployment(run_dir)
    err = err or sys.stderr
    with lock.hold(run_dir):
        restored = swap.recover(run_dir)
        if restored:
            print(restored, file=err)
        lock.report_removed(atomic.remove_temporaries(run_dir, [runfiles.VERIFY_JSON]), run_dir,
                            "`bcexport verify`", err)
        return _verify(run_dir, dep, data_dir, load_test, out)


def _verify(run_dir: str, dep: Deployment, data_dir, load_test, out) -> dict:
    exported, c_exported = read_export(run_dir), read_c_export(run_dir) or {}
    recorded = {**exported["sha256"], **c_exported.get("sha256", {})}
    todo = backends.present(run_dir, list(exported["files"]) + list(c_exported.get("files", {})))
    pixels, labels, dataset = (load_test or load_test_data)(run_dir, data_dir)
    if math.prod(pixels.shape[1:]) != math.prod(dep.input_shape) or len(pixels) != len(labels):
        raise ExportError(f"test data {dataset}: images {pixels.shape[1:]} and {len(labels)} labels do "
                          f"not fit a network taking {dep.input_shape}")
    # Random images after the test set: every input pixel is non-zero in them, so a weight that
    # only meets always-zero test pixels is checked too.
    probes = np.random.default_rng(0).integers(0, 256, (N_PROBES,) + pixels.shape[1:], dtype=np.uint8)
    pixels = np.concatenate([pixels, probes])
    kind = KINDS[dep.preprocess]
    x = kind.apply(pixels, dep.params).reshape((len(pixels),) + dep.input_shape)
    batch = dep.cfg.eval_batch_size

    feeds = {"x": x, "pixels": pixels}
    exact = {"x": x}  # what each feed's reference computes from
    if any(b.feed == "pixels" for b, _ in todo):
        exact["pixels"] = kind.apply(pixels, dep.params, np.float64)
    if dep.binary_activations:
        results, ref, noise = hidden.compare_backends(run_dir, dep, todo, feeds, exact, labels, batch)
    else:
        outputs = {b.name: b.logits(path, dep, feeds[b.feed], batch, run_dir) for b, path in todo}
        ref32 = reference.forward(dep, x, dtype=np.float32)
        refs = {feed: reference.forward(dep, xe) for feed, xe in exact.items()}
        noise = {feed: checked_noise(run_dir, feed, noise_level(dep, x, r, ref32)) for feed, r in refs.items()}
        tols = {feed: tolerance(r, noise[feed]) for feed, r in refs.items()}
        results = {b.name: compare(refs[b.feed], outputs[b.name], tols[b.feed], labels) for b, _ in todo}
        ref = refs["x"]
    stored = {}  # (reader, path) -> stored_weights.Stored: c and c_raw read one file
    for b, path in todo:
        if b.stored:
            if (b.stored, path) not in stored:
                stored[b.stored, path] = b.stored(path, dep)
            found = stored[b.stored, path]
            results[b.name].update(stored_weights=found.summary(), weight_problems=found.problems,
                                   passed=results[b.name]["passed"] and not found.problems)
        if b.details:
            results[b.name]["details"] = b.details(run_dir)
    changed = (digests.changed(run_dir, recorded)
               + digests.unrecorded(sorted({b.file for b, _ in todo if b.file}), recorded))
    if c_exported and c_exported.get("bn_statistics") != exported.get("bn_statistics"):
        changed.append(f"{runfiles.C_DIR}/: generated with other BatchNorm statistics than "
                       f"{runfiles.EXPORT_JSON} records; run `bcexport c {run_dir}` again")

    bits = results["onnx_packed"]["stored_weights"]["bytes"]
    float_bytes = 4 * dep.n_binary_weights
    sizes = {"files": {b.file: os.path.getsize(path) for b, path in todo if path},
             "binary_weights": dep.n_binary_weights, "binary_weight_bytes_float32": float_bytes,
             "binary_weight_bytes_packed": bits, "binary_weight_bytes_ratio": bits / float_bytes}
    sizes["file_ratio_packed_to_float"] = (sizes["files"][runfiles.MODEL_PACKED_ONNX]
                                           / sizes["files"][runfiles.MODEL_ONNX])
    size_ok = 0 < bits <= MAX_WEIGHT_BYTES_RATIO * float_bytes
    report = {
        "dataset": dataset, "n_test": int(len(labels)), "n_random_probes": N_PROBES,
        "tolerance": {"formula": "K * s * max(1, max_j |ref_j|) per sample; s = max(4u, max over "
                                 "samples of max_j |ref32_j - ref_j| / max(1, max_j |ref_j|))",
                      "K": K_TOL, "s": noise["x"], "u": U32, "rtol": K_TOL * noise["x"], "floor": 1.0,
                      "tie": "two largest reference logits within 2 * tol",
                      **({"s_pixels": noise["pixels"], "rtol_pixels": K_TOL * noise["pixels"]}
                         if "pixels" in noise else {})},
        "preprocess": dep.preprocess,
        **({"binary_activations": {"hidden_blocks": hidden.hidden_blocks(dep), "rule": hidden.RULE}}
           if dep.binary_activations else {}),
        "reference": {"accuracy": float(np.mean(ref[:len(labels)].argmax(axis=1) == labels)),
                      "arithmetic": "float64"},
        "backends": results, "sizes": sizes, "size_passed": bool(size_ok), "changed_since_export": changed,
        "passed": bool(size_ok and not changed and all(b["passed"] for b in results.values())),
    }
    atomic.write_json(os.path.join(run_dir, runfiles.VERIFY_JSON), report)
    print_table(report, out or sys.stdout)
    return report


def _fraction(ratio: float) -> str:
    """1/N for a ratio; 0 when there is nothing (a float model in place of the packed one)."""
    return f"1/{1 / ratio:.1f}" if ratio > 0 else "0"


def print_table(report: dict, out):
    t = report["tolerance"]
    pixels = f" (raw pixels, {report['preprocess']} in the graph: {t['rtol_pixels']:.2e})" if "rtol_pixels" in t else ""
    print(f"{report['n_test']} test samples ({report['dataset']}) + {report['n_random_probes']} random images; "
          f"reference accuracy "
          f"{100 * report['reference']['accuracy']:.2f}%, rtol {t['rtol']:.2e}{pixels}", file=out)
    print(f"{'back end':<12} {'accuracy':>9} {'max|dlogit|':>12} {'/tol':>8} {'argmax≠':>8} {'ties':>5}",
          file=out)
    for name, b in report["backends"].items():
        diff, over = (b[k] if b[k] is not None else math.inf for k in ("max_abs_logit_diff", "max_diff_over_tol"))
        print(f"{name:<12} {100 * b['accuracy']:>8.2f}% {diff:>12.3e} "
              f"{over:>8.3g} {b['argmax_disagreements']:>8d} {b['tie_disagreements']:>5d}  "
              f"{'ok' if b['passed'] else 'FAIL'}", file=out)
    for name, b in report["backends"].items():
        if "hidden" in b:
            print(f"{name}: {hidden.describe(b['hidden'], report['n_test'] + report['n_random_probes'])}", file=out)
    for name, b in report["backends"].items():
        if "details" in b:
            print(f"{name}: " + ", ".join(f"{k} {v}" for k, v in b["details"].items()), file=out)
    s = report["sizes"]
    print(f"binary weights {s['binary_weights']}: {s['binary_weight_bytes_packed']} packed bytes = "
          f"{_fraction(s['binary_weight_bytes_ratio'])} of float32; packed file "
          f"{_fraction(s['file_ratio_packed_to_float'])} of model.onnx  "
          f"{'ok' if report['size_passed'] else 'FAIL'}", file=out)
    for name, b in report["backends"].items():
        for problem in b.get("weight_problems", ()):
            print(f"{name}: {problem}", file=out)
    for problem in report["changed_since_export"]:
        print(f"export record: {problem}", file=out)
    print("verify: " + ("PASSED" if report["passed"] else "FAILED"), file=out)
