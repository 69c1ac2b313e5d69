"""bench_cnn.json and bench_preprocess.json as Markdown: the CNN step against its roofline, epochs, preprocessing."""
from benchmarks.provenance import line

SVHN_IMAGES = 598_388 + 6_000 + 26_032  # every SVHN image is preprocessed: train + extra, test


KIND_LABELS = {"forward": "conv forward", "input gradient": "conv gradient wrt input",
               "kernel gradient": "conv gradient wrt kernel", "dense": "dense (3 products per layer)"}
COLUMNS = ("float32_kernels", "float32_xla", "mixed_bfloat16_kernels", "mixed_bfloat16_xla")
COLUMN_LABELS = ("float32, TensorFlow's kernels", "float32, XLA", "bfloat16, TensorFlow's kernels", "bfloat16, XLA")


def cpu_line(r: dict) -> str:
    """The CPU's flags, and whether its bfloat16 figures ran on bfloat16 instructions."""
    flags = ", ".join(f"{f} {'yes' if on else 'no'}" for f, on in r["cpu_flags"].items())
    if r["bf16_kernels"]:
        return f"CPU flags: {flags}: TensorFlow's bfloat16 products run on bfloat16 instructions (oneDNN)."
    return (f"CPU flags: {flags}. **This CPU has no bfloat16 instructions** (avx512_bf16, amx_bf16): its bfloat16 "
            "products are emulated (converted to float32, or TensorFlow's generic kernel), so the bfloat16 rows "
            "say nothing of a CPU that has them.")


def _ms_rate(seconds, flops) -> str:
    return "" if seconds is None else f"{1e3 * seconds:,.0f} ms, {flops / seconds / 1e9:.0f} GFLOP/s"


def render_preset(name: str, p: dict, r: dict) -> list:
    """The roofline table and the step table of one preset."""
    roof, flops = p["roofline"], p["kind_flops"]
    total = sum(flops.values())
    lines = ["", f"`{name}`: {p['binary_weights']:,} binary weights, {total / 1e9:.0f} GFLOP of products per step "
             f"(batch {r['batch_size']}).", "",
             "| products alone | GFLOP | " + " | ".join(COLUMN_LABELS) + " |", "|---|---|---|---|---|---|"]
    for kind, label in KIND_LABELS.items():
        lines.append(f"| {label} | {flops[kind] / 1e9:.1f} | "
                     + " | ".join(_ms_rate(roof[c].get(kind), flops[kind]) for c in COLUMNS) + " |")
    sums = [sum(roof[c].values()) if len(roof[c]) == len(KIND_LABELS) else None for c in COLUMNS]
    lines.append(f"| all products | {total / 1e9:.1f} | " + " | ".join(_ms_rate(t, total) for t in sums) + " |")
    traffic = r["update_bytes_per_weight"] * p["binary_weights"] / (roof["stream_gbps"] * 1e9)
    lines += ["", f"Least update traffic: {r['update_bytes_per_weight']} B × {p['binary_weights']:,} weights at "
              f"{roof['stream_gbps']:.1f} GB/s streaming = {1e3 * traffic:.1f} ms. Floor (the faster back end's "
              "products + that traffic): " + "; ".join(
                  f"{prec} {1e3 * p['floor_seconds'][prec]:,.0f} ms ({'XLA' if p['floor_backend'][prec] == 'xla' else 'TensorFlow kernels'})"
                  for prec in p["floor_seconds"]) + ".", "",
              "| step | plan | s / step | × its floor | vs the float32 det step |", "|---|---|---|---|---|"]
    base = next(s["seconds_per_step"] for s in p["steps"] if s["default"] and s["name"] == "float32 det")
    for step in p["steps"]:
        name = step["name"] + (" (as `bctrain train` runs it)" if step["default"] else "")
        lines.append(f"| {name} | {step['plan']} | {step['seconds_per_step']:.2f} | {1 / step['of_floor']:.2f}× | "
                     f"{base / step['seconds_per_step']:.2f}× |")
    return lines


def render_epochs(r: dict) -> list:
    """Seconds per epoch and the full schedule of each preset, precision and mode; the GPU estimate."""
    lines = ["", "| preset | precision | mode | s / epoch (extrapolated) | epochs | full schedule |",
             "|---|---|---|---|---|---|"]
    for name, p in r["presets"].items():
        for e in p["per_epoch"]:
            lines.append(f"| `{name}` | {e['precision']} | {e['binarize']} | {e['seconds_per_epoch']:,.0f} | "
                         f"{p['epochs']} | {duration(e['schedule_hours'])} |")
    if r.get("on_paper"):
        lines += ["", f"On paper, an estimate, not a measurement: the FLOPs of the products over the peak of an "
                  f"{r['gpu']} (no batch of 50 comes near it): " + "; ".join(
                      f"`{name}` {e['precision']} ({e['peak_tflops']:g} TFLOP/s) {e['seconds_per_epoch']:.1f} s per "
                      f"epoch, {duration(e['schedule_hours'])} for the schedule"
                      for name, rows in r["on_paper"].items() for e in rows) + "."]
    return lines


def duration(hours: float) -> str:
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h" if hours >= 1 else f"{60 * hours:.0f} min"


def render_cnn(r: dict) -> str:
    """The CNN step against its roofline per preset, then the epochs and the GPU estimate."""
    lines = [line(r) + f" TensorFlow {r['tensorflow']}, op determinism on, batch {r['batch_size']}, {r['steps']} "
             f"timed steps per measurement after {r['warmup']} untimed, {r['rounds']} interleaved rounds (medians); "
             f"cores used by other processes in each round: {', '.join(f'{v:.2f}' for v in r['other_processes_cores'])}.",
             "", cpu_line(r)]
    if r["loaded"]:
        lines += ["", "**Measured on a loaded machine**: other processes were running; compare ratios within this "
                  "table only, and re-measure on a quiet one."]
    for name, p in r["presets"].items():
        lines += render_preset(name, p, r)
    return "\n".join(lines + render_epochs(r))


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
