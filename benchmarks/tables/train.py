"""bench_train.json as Markdown: the roofline, then every step row against its floor."""
from benchmarks.provenance import line

DEFAULT_ROW = "bctrain float32 (default: XLA forward and backward, update kernel auto)"
BF16_ROW = "bctrain mixed_bfloat16 (default: products oneDNN, fused update writes the next ±1 weights)"


def floor_key(row: str) -> str:
    """Which floor a row is measured against: its precision's."""
    return "mixed_bfloat16" if "bfloat16" in row else "float32"


def default_rate(r: dict) -> float:
    """samples/s of the default float32 row (earlier files labelled it differently)."""
    return next(v for k, v in r["samples_per_second"].items()
                if k == DEFAULT_ROW or k.startswith("bctrain float32 (default"))


def fraction_of_floor(r: dict, name: str) -> float:
    """The row's paired fraction of its floor (earlier files: the ratio of the medians)."""
    paired = r.get("of_floor", {})
    if name in paired:
        return paired[name]
    return r["samples_per_second"][name] * r["floor_seconds"][floor_key(name)] / r["batch_size"]


def row_order(name: str) -> tuple:
    """Rows as the report reads them (results files keep keys sorted): the default float32 step, the
    other float32 arrangements, the default mixed_bfloat16 step, its other arrangements, the references."""
    group = (0 if name == DEFAULT_ROW or name.startswith("bctrain float32 (default") else
             1 if name.startswith("bctrain float32") else 2 if name == BF16_ROW else
             3 if name.startswith("bctrain mixed_bfloat16") else 4)
    return group, name


def render(r: dict) -> str:
    roof, floors, batch = r["roofline"], r["floor_seconds"], r["batch_size"]
    gflop = r["flops_per_sample"] * batch / 1e9
    traffic_s = r["update_bytes_per_weight"] * r["binary_weights"] / (roof["stream_gbps"] * 1e9)
    lines = [line(r) + f" TensorFlow {r['tensorflow']}, op determinism {'on' if r['determinism'] else 'off'}, "
             f"{r['binarize']}, batch {batch}, {r['steps']} timed steps per measurement, "
             f"{len(r['other_processes_cores'])} rounds; update kernel of the default rows: "
             f"{r.get('default_update_kernel', 'fused')}; cores used by other processes in each round: "
             f"{', '.join(f'{v:.2f}' for v in r['other_processes_cores'])}."]
    if r["loaded"]:
        lines.append("**Measured on a loaded machine**: other processes were running; re-measure on a quiet one.")
    lines += ["", "| roofline | ms per step | GFLOP/s or GB/s |", "|---|---|---|"]
    for key, label in (("products_float32_xla_s", "11 products, float32, XLA"),
                       ("products_float32_onednn_s", "11 products, float32, oneDNN"),
                       ("products_bfloat16_onednn_s", "11 products, bfloat16, oneDNN")):
        lines.append(f"| {label} | {1e3 * roof[key]:.1f} | {gflop / roof[key]:.0f} GFLOP/s |")
    lines += [f"| least update traffic, {r['update_bytes_per_weight']} B x {r['binary_weights']:,} weights | "
              f"{1e3 * traffic_s:.1f} | {roof['stream_gbps']:.1f} GB/s streaming |",
              f"| Adam update alone (bctrain.paper.optim, XLA) | {1e3 * roof['update_s']:.1f} | |",
              "| Adam update alone (fused, bctrain.step.fused_update) | " + (
                  "not available | |" if roof["update_fused_s"] is None else f"{1e3 * roof['update_fused_s']:.1f} | |")]
    lines += [f"| floor, {name} | {1e3 * s:.1f} | {batch / s:,.0f} samples/s |" for name, s in floors.items()]
    base = default_rate(r)
    lines += ["", "| step | samples/s | vs bctrain float32 | GFLOP/s | of its floor |", "|---|---|---|---|---|"]
    for name, rate in sorted(r["samples_per_second"].items(), key=lambda item: row_order(item[0])):
        lines.append(f"| {name} | {rate:,.0f} | {rate / base:.2f}x | {rate * r['flops_per_sample'] / 1e9:.0f} | "
                     f"{fraction_of_floor(r, name):.0%} |")
    lines += [f"| {name} | not measured: {error} | | | |" for name, error in r["unavailable"].items()]
    if DEFAULT_ROW in r.get("of_floor", {}):
        per_round = [rate * f["float32"] / batch
                     for rate, f in zip(r["rounds"][DEFAULT_ROW], r["floor_seconds_rounds"])]
        lines += ["", "\"of its floor\": the median over rounds of the step against the same round's floor. "
                  f"float32 default, per round: {', '.join(f'{v:.1%}' for v in per_round)} (as a time, "
                  f"{', '.join(f'{1 / v:.3f}x' for v in per_round)} the floor); the ratio of the medians: "
                  f"{base * floors['float32'] / batch:.1%}."]
    return "\n".join(lines)
