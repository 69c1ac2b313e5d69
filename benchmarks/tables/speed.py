"""README's speed figures: the few a user compares, from bench_train, bench_infer_*, bench_bnn_c and bench_cnn.

Each row names the command, machine and date of its results file; a file not measured yet gives a
row saying which command writes it.
"""
from benchmarks.tables.cnn import duration
from benchmarks.tables.infer import BATCH, runs_of
from benchmarks.tables.train import BF16_ROW, DEFAULT_ROW, default_rate, fraction_of_floor

KERAS_ROW = "Keras 3 fit (float), no XLA"
LARQ_ROW = "larq fit (BinaryConnect, tf-keras)"


def source(r: dict) -> str:
    return f"`{r.get('command', '?')}`, {r.get('machine') or r.get('device')}, {(r.get('date') or '?')[:10]}"


def training_rows(r: dict) -> list:
    rates, base = r["samples_per_second"], default_rate(r)
    versus = [f"{base / rates[name]:.2f}x {label}" for name, label in
              ((KERAS_ROW, "Keras 3 `fit` (float, no XLA)"), (LARQ_ROW, "larq `fit`")) if name in rates]
    rows = [("training step, `mnist` MLP, float32, batch 100",
             f"{base:,.0f} samples/s, {fraction_of_floor(r, DEFAULT_ROW):.0%} of the step's floor"
             + (f"; {', '.join(versus)}" if versus else ""))]
    if BF16_ROW in rates:
        rows.append(("training step, `--precision mixed_bfloat16`",
                     f"{rates[BF16_ROW]:,.0f} samples/s, {rates[BF16_ROW] / base:.2f}x float32"))
    return rows


def inference_rows(r: dict, net: str = "`mnist` MLP") -> list:
    run = next((run for run in runs_of(r) if run["threads"] == 1), runs_of(r)[0])
    c, ort = run["results"].get("C"), run["results"]["ORT"]
    if c is None:
        return [(f"inference, {net}", "no C row: export the C first (`make export-c`)")]
    rate = f"batch{BATCH}_samples_per_s"
    return [(f"inference, {net}, {run['threads']} thread: generated C against onnxruntime",
             f"batch 1: {c['batch1_ms_median']:.3f} ms against {ort['batch1_ms_median']:.3f} ms "
             f"({ort['batch1_ms_median'] / c['batch1_ms_median']:.1f}x lower); batch {BATCH}: "
             f"{c[rate]:,.0f} against {ort[rate]:,.0f} images/s; weights held "
             f"{ort['weight_bytes'] / c['weight_bytes']:.0f}x smaller")]


def bnn_rows(r: dict) -> list:
    """The BinaryNet C at batch 1 against its BinaryConnect twin and onnxruntime (bench_bnn_c)."""
    v, q = r["variants"]["binarynet"], r["ratios"]
    return [("inference, `mnist-bnn` BinaryNet MLP (3 × 4096), 1 thread: XNOR-popcount C",
             f"batch 1: {v['C_batch1_ms_median']:.3f} ms, {q['bc_c_over_bnn_c_batch1']:.1f}x lower than the "
             f"BinaryConnect C of the same shape and {q['ort_over_bnn_c_batch1']:.0f}x lower than onnxruntime; "
             f"batch {BATCH}: {v['C_batch256_samples_per_s']:,.0f} images/s")]


def cnn_rows(r: dict) -> list:
    """Per CNN preset and precision: the det epoch and schedule here, and the GPU estimate."""
    if "presets" not in r:  # results of an earlier bench_cnn (no roofline, no precisions)
        return [("training, CNN presets", "re-run `make bench-cnn`: this results file predates its current form")]
    rows = []
    gpu = {(name, e["precision"]): e for name, entries in r.get("on_paper", {}).items() for e in entries}
    for name, p in r["presets"].items():
        for e in (e for e in p["per_epoch"] if e["binarize"] == "det"):
            paper = gpu.get((name, e["precision"]))
            rows.append((f"training, `{name}`, {e['precision']}, on this machine (extrapolated)",
                         f"{e['seconds_per_epoch']:,.0f} s per epoch, {duration(e['schedule_hours'])} for "
                         f"{p['epochs']} epochs" + (f"; on paper on an {r['gpu']} at its peak (an estimate): "
                                                    f"{paper['seconds_per_epoch']:.1f} s per epoch, "
                                                    f"{duration(paper['schedule_hours'])}" if paper else "")))
    if not r["bf16_kernels"]:
        rows.append(("training, CNN presets, bfloat16", "this CPU has no bfloat16 instructions: its bfloat16 rows are "
                     "emulated (docs/BENCHMARKS.md)"))
    return rows


PARTS = (  # (results file, what its rows show, the command that writes it, rows)
    ("bench_train", "training step, `mnist` MLP", "make bench-train", training_rows),
    ("bench_infer_mnist", "inference, `mnist` MLP: generated C against onnxruntime",
     "make train-mnist EPOCHS=5 && make export export-c bench-infer", inference_rows),
    ("bench_infer_cifar10", "inference, `cifar10` CNN: generated C against onnxruntime", "make bench-infer-cnn",
     lambda r: inference_rows(r, "`cifar10` CNN")),
    ("bench_infer_svhn", "inference, `svhn` CNN: generated C against onnxruntime", "make bench-infer-cnn",
     lambda r: inference_rows(r, "`svhn` CNN")),
    ("bench_bnn_c", "inference, `mnist-bnn` BinaryNet MLP: XNOR-popcount C", "make bench-bnn-c", bnn_rows),
    ("bench_cnn", "training, `cifar10` and `svhn` on this machine", "make bench-cnn", cnn_rows))


def render_speed(results: dict) -> str:
    """`results`: results-file name -> its contents, or None where it does not exist yet."""
    lines = ["| what | figure | measured by, on, date |", "|---|---|---|"]
    for name, what, command, rows in PARTS:
        r = results.get(name)
        if r is None:
            lines.append(f"| {what} | not measured yet: run `{command}` | |")
            continue
        lines += [f"| {what} | {figure} | {source(r)} |" for what, figure in rows(r)]
    return "\n".join(lines)
