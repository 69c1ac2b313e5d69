"""cnn_check.json as Markdown: the CNN learning check (float, det, stoch, bfloat16 det) per preset."""
from benchmarks.provenance import line

GAPS = {"det_minus_float_pp": "det − float", "stoch_minus_det_pp": "stoch − det",
        "det_mixed_bfloat16_minus_det_pp": "bfloat16 det − float32 det"}


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def render(r: dict) -> str:
    """The table of selected errors (one row per run) and, per preset, the gaps in points."""
    epochs = {run["epochs"] for p in r["presets"].values() for run in p["runs"].values()}
    lines = [line(r) + f" Real digits (the bundled MNIST sample, {r['images']:,} images) in each preset's "
             f"official format, {'/'.join(map(str, sorted(epochs))) or r['epochs']} epochs; "
             "the narrowed layouts are in [docs/CNN_CHECK.md](docs/CNN_CHECK.md).", "",
             "| preset | run | test error | test error, ±1 weights | selected epoch | s per epoch |",
             "|---|---|---|---|---|---|"]
    for preset, p in r["presets"].items():
        for name, run in p["runs"].items():
            binary = _percent(run["test_error_binary"]) if run["test_error_binary"] is not None else ""
            lines.append(f"| `{preset}` | {name} | {_percent(run['test_error'])} | {binary} | "
                         f"{run['selected_epoch']} of {run['epochs']} | {run['seconds_per_epoch']:.0f} |")
    gaps = [f"`{preset}`: " + ", ".join(f"{GAPS.get(k, k)} {v:+.2f} pp" for k, v in p["gaps"].items())
            for preset, p in r["presets"].items() if p["gaps"]]
    if gaps:
        lines += ["", "Test-error gaps: " + "; ".join(gaps) + "."]
    return "\n".join(lines)
