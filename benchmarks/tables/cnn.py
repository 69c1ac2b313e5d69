"""bench_cnn.json and bench_preprocess.json as Markdown: CNN training time, preprocessing cost."""
from benchmarks.provenance import line

SVHN_IMAGES = 598_388 + 6_000 + 26_032  # every SVHN image is preprocessed: train + extra, test


def render_cnn(r: dict) -> str:
    """Seconds per step, epoch and schedule (extrapolated) with and without XLA; the on-paper GPU rows."""
    lines = [line(r) + f" TensorFlow {r['tensorflow']}; {r['steps']} timed steps per row after {r['warmup']} "
             f"untimed ones, extrapolated to an epoch; load average {r['load_average_before']:.1f} before, "
             f"{r['load_average_after'][0]:.1f} after.", "",
             "| preset | XLA | s / step | s / epoch | epochs | full schedule | GFLOP/s | matmul peak | conv peak "
             "| of matmul peak | of conv peak |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        lines.append(f"| `{row['preset']}` | {'on' if row['xla'] else 'off'} | {row['seconds_per_step']:.2f} | "
                     f"{row['seconds_per_epoch']:,.0f} | {row['epochs']} | {row['schedule_hours'] / 24:.1f} days | "
                     f"{row['train_gflops']:.0f} | {row['matmul_peak_gflops']:.0f} | {row['conv_peak_gflops']:.0f} | "
                     f"{row['of_matmul_peak']:.0%} | {row['of_conv_peak']:.0%} |")
    if r.get("on_paper"):
        lines += ["", "On paper (arithmetic, not a measurement): " + "; ".join(
            f"`{p['preset']}` {p['epoch_tflop']:.0f} TFLOP per epoch, {p['schedule_hours']:.1f} h for its "
            f"schedule at a sustained {p['assumed_tflops']:g} TFLOP/s" for p in r["on_paper"]) + "."]
    return "\n".join(lines)


def render_preprocess(r: dict) -> str:
    """Fit and apply times and the peak memory of the CNN preprocessing at full size."""
    return "\n".join([
        line(r) + f" Synthetic smooth 32×32×3 images; load average {r['load_average'][0]:.1f}.", "",
        "| step | images | seconds | peak memory of the process |", "|---|---|---|---|",
        f"| `gcn_zca` fit (GCN ×55, covariance + 0.1·I, eigh of 3,072×3,072) | {r['gcn_zca_fit_images']:,} | "
        f"{r['gcn_zca_fit_seconds']:.0f} | {r['peak_rss_gb']:.1f} GB (whole run) |",
        f"| `gcn_zca` apply (float64 product, rounded to float32) | {r['gcn_zca_apply_images']:,} | "
        f"{r['gcn_zca_apply_seconds']:.0f} | |",
        f"| `gcn_lcn` apply | {r['gcn_lcn_images']:,} | {r['gcn_lcn_seconds']:.0f} | |",
        f"| `gcn_lcn`, all of SVHN (extrapolated) | {SVHN_IMAGES:,} | {r['gcn_lcn_svhn_seconds_extrapolated']:.0f} | |"])
