"""README's speed figures: the few a user compares, from bench_train, bench_infer_mnist and bench_cnn.

Each row names the command, machine and date of its results file; a file not measured yet gives a
row saying which command writes it.
"""
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


def inference_rows(r: dict) -> list:
    run = next((run for run in runs_of(r) if run["threads"] == 1), runs_of(r)[0])
    c, ort = run["results"].get("C"), run["results"]["ORT"]
    if c is None:
        return [("inference, `mnist` MLP", "no C row: export the C first (`make export-c`)")]
    rate = f"batch{BATCH}_samples_per_s"
    return [(f"inference, `mnist` MLP, {run['threads']} thread: generated C against onnxruntime",
             f"batch 1: {c['batch1_ms_median']:.3f} ms against {ort['batch1_ms_median']:.3f} ms "
             f"({ort['batch1_ms_median'] / c['batch1_ms_median']:.1f}x lower); batch {BATCH}: "
             f"{c[rate]:,.0f} against {ort[rate]:,.0f} images/s; weights held "
             f"{ort['weight_bytes'] / c['weight_bytes']:.0f}x smaller")]


def cnn_rows(r: dict) -> list:
    rows = []
    for preset in dict.fromkeys(row["preset"] for row in r["rows"]):
        best = min((row for row in r["rows"] if row["preset"] == preset), key=lambda row: row["seconds_per_epoch"])
        rows.append((f"training, `{preset}` on this machine (extrapolated)",
                     f"{best['seconds_per_epoch']:,.0f} s per epoch, {best['schedule_hours'] / 24:.1f} days for "
                     f"{best['epochs']} epochs (XLA {'on' if best['xla'] else 'off'})"))
    return rows


PARTS = (  # (results file, what its rows show, the command that writes it, rows)
    ("bench_train", "training step, `mnist` MLP", "make bench-train", training_rows),
    ("bench_infer_mnist", "inference, `mnist` MLP: generated C against onnxruntime",
     "make train-mnist EPOCHS=5 && make export export-c bench-infer", inference_rows),
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
