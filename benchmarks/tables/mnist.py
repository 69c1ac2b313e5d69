"""mnist_sample.json as Markdown: the `mnist` recipe on the bundled sample, one row per binarization."""
from benchmarks.provenance import line

LABELS = {"none": "none (float baseline)", "det": "det", "stoch": "stoch"}


def _percent(value) -> str:
    return "–" if value is None else f"{100 * value:.2f} %"


def render_sample(r: dict) -> str:
    rows = r["rows"]
    n = rows[0]
    lines = [line(r) + f" The `{r['preset']}` recipe, {r['epochs']} epochs, on the bundled sample "
             f"({n['n_train']:,} training, {n['n_val']:,} validation, {n['n_test']:,} test digits; MNIST has "
             "50,000 / 10,000 / 10,000): **not** MNIST results.", "",
             "| binarization | selected epoch | validation error | test error | test error, ±1 weights | s/epoch |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        real = " (real weights)" if row["binarize"] == "stoch" else ""
        binary = "–" if row["binarize"] == "none" else _percent(row["test_error_binary"])
        lines.append(f"| {LABELS.get(row['binarize'], row['binarize'])} | {row['best_epoch']} of {row['epochs_run']} | "
                     f"{_percent(row['val_error'])} | {_percent(row['test_error'])}{real} | {binary} | "
                     f"{row['seconds_per_epoch']:.1f} |")
    lines += ["", f"Each row: `{r['train_command']}` (MODE: the row's binarization)."]
    return "\n".join(lines)
