"""The figure of the CNN learning check (benchmarks/cnn_check.py): one row per preset; on the left the
validation (solid) and test (dashed) error of every run against the epoch, on the right its
training loss. Drawn from the results JSON only, so it can be redrawn without training."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from bccommon import atomic  # noqa: E402
from bctrain.run.plots import error_axis_top  # noqa: E402

SELECTION_MODE = {"none": "real", "det": "binary", "stoch": "real"}  # bctrain.train.eval_modes, first


def figure(results: dict):
    presets = list(results["presets"].items())
    fig, axes = plt.subplots(len(presets), 2, figsize=(13, 4.6 * len(presets)), squeeze=False)
    for (preset, p), (ax_err, ax_loss) in zip(presets, axes):
        tops = []
        for i, (name, r) in enumerate(p["runs"].items()):
            mode = SELECTION_MODE[r["binarize"]]
            keys = (f"val_error_{mode}", f"test_error_{mode}")
            epochs = [c["epoch"] for c in r["curve"]]
            for key, style in zip(keys, ("-", "--")):
                label = f"{name} {key.split('_')[0]}"
                if key.startswith("test"):
                    label += f": {100 * r['test_error']:.2f} % at epoch {r['selected_epoch']}"
                ax_err.plot(epochs, [100 * c[key] for c in r["curve"]], style, color=f"C{i}", lw=1.2, label=label)
            ax_loss.plot(epochs, [c["train_loss"] for c in r["curve"]], color=f"C{i}", lw=1.2, label=name)
            tops.append(error_axis_top(r["curve"], keys))
        ax_err.set(xlabel="epoch", ylabel="error (%)", ylim=(0, max(tops, default=1.0)),
                   title=f"{preset} format, {p['preprocess']}: validation (solid) and test (dashed) error")
        ax_err.legend(fontsize="small", ncol=2)
        ax_loss.set(xlabel="epoch", ylabel="squared hinge loss", yscale="log", title=f"{preset}: training loss")
        ax_loss.legend(fontsize="small")
        for ax in (ax_err, ax_loss):
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"CNN learning check: {results['images']:,} real MNIST digits, {results['machine']}", y=0.995)
    fig.tight_layout()
    return fig


def save_figure(results: dict, path: str):
    fig = figure(results)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())
