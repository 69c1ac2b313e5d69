"""bnn_check.json as Markdown: BinaryNet against BinaryConnect and float at a reduced width."""
from benchmarks.provenance import line

LABELS = {"binarynet": "BinaryNet (±1 weights and activations)", "binaryconnect": "BinaryConnect (±1 weights, ReLU)",
          "float": "float (same net)"}


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def render(r: dict) -> str:
    lines = [line(r) + f" The `mnist-bnn` recipe with 3 × {r['width']} hidden units, {r['epochs']} epochs, on "
             f"`{r['dataset']}`, {r['seeds']} seed{'s' if r['seeds'] > 1 else ''} per row"
             + (" (the bundled sample: 6,000 training digits, **not** MNIST results)." if r["dataset"] == "mnist-sample"
                else "."), "",
             "| variant | test error (mean) | std over seeds | selected epochs | s per run |", "|---|---|---|---|---|"]
    for name, v in r["variants"].items():
        runs = v["runs"]
        lines.append(f"| {LABELS.get(name, name)} | {_percent(v['test_error_mean'])} | {_percent(v['test_error_std'])} "
                     f"| {', '.join(str(x['best_epoch']) for x in runs)} | "
                     f"{sum(x['seconds'] for x in runs) / len(runs):.0f} |")
    lines += ["", "Per-epoch curves (train loss and error, validation and test error) are in the results file."]
    return "\n".join(lines)
