"""PNG plots of a run: error and loss curves per epoch, and the first layer's latent weights."""
import io
import math
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from bccommon import runfiles  # noqa: E402
from bccommon import atomic  # noqa: E402


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic.write_bytes(path, buf.getvalue())


MARKERS_UP_TO = 30  # epochs; beyond this, markers only clutter the lines
LOG_LOSS_RANGE = 10  # a loss falling by less than this factor is clearer on a linear axis


def error_axis_top(history: list, keys) -> float:
    """Top of the linear error axis (%): 1.5 x the largest validation or test error after the first
    tenth of the epochs, rounded up to two significant digits (ending in 0 or 5). The curves then
    fill the panel below the legend; the first epochs and a high training error leave it at the top."""
    settled = history[len(history) // 10:]
    value = 1.5 * max((100 * r[k] for r in settled for k in keys), default=0.0)
    if value <= 0:
        return 1.0
    step = 5 * 10.0 ** (math.floor(math.log10(value)) - 1)
    return min(100.0, math.ceil(round(value / step, 9)) * step)  # round: 0.15 / 0.05 is not 3.0


def plot_curves(history: list, path: str):
    _save(curves_figure(history), path)


def curves_figure(history: list):
    """Error rates (%) on a linear axis, training loss on a log axis (once it spans a decade), against
    the epoch number.

    Linear error axis: the training error reaches 0, which a log axis cannot show (the curve broke
    at every error-free epoch), and validation and test errors differ by tenths of a percent, which
    a linear axis sized to them shows best. Log loss axis with labels at 1-2-5 steps only."""
    epochs = [r["epoch"] for r in history]
    marker = "." if len(history) <= MARKERS_UP_TO else None
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(12, 5))
    evaluated = [k for k in sorted(history[-1]) if k.startswith(("val_error", "test_error"))]
    selected = [r for r in history if r.get("selected")]
    best = selected[-1] if selected else None
    ax_err.plot(epochs, [100 * r["train_error"] for r in history], marker=marker, lw=1, color="0.55",
                label="train (training-mode weights)")
    modes = sorted({k.split("_error_")[1] for k in evaluated})
    for key in evaluated:  # a colour per evaluation mode; validation solid, test dashed
        split, mode = key.split("_error_")
        label = f"{split} {mode}"
        ax_err.plot(epochs, [100 * r[key] for r in history], marker=marker, lw=1.2, color=f"C{modes.index(mode)}",
                    linestyle="-" if split == "val" else "--",
                    label=f"{label}: {100 * best[key]:.2f}% at the selected epoch" if best else label)
    if best:
        ax_err.axvline(best["epoch"], color="0.3", linestyle=":", lw=1, label=f"selected epoch {best['epoch']}")
    ax_err.set(xlabel="epoch", ylabel="error (%)", title="error rate", ylim=(0, error_axis_top(history, evaluated)))
    ax_err.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize="small", frameon=False)
    losses = [r["train_loss"] for r in history]
    ax_loss.plot(epochs, losses, marker=marker, lw=1.2)
    ax_loss.set(xlabel="epoch", ylabel="squared hinge loss", title="training loss")
    if min(losses) > 0 and max(losses) >= LOG_LOSS_RANGE * min(losses):
        ax_loss.set_yscale("log")
        ax_loss.yaxis.set_major_locator(LogLocator(base=10, subs=(1, 2, 5)))
        ax_loss.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax_loss.yaxis.set_minor_formatter(NullFormatter())
    for ax in (ax_err, ax_loss):
        ax.grid(True, which="major", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    return fig


def plot_weight_histogram(w: np.ndarray, h: float, epoch: int, path: str):
    """Histogram of latent weights: BinaryConnect keeps them real, inside [-h, h]."""
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(np.ravel(w), bins=101, range=(-h, h), color="tab:blue")
    ax.set(xlabel="latent weight w", ylabel="count", title=f"first layer latent weights, epoch {epoch}")
    fig.tight_layout()
    _save(fig, path)


def save_all(run_dir: str, history: list, first_w: np.ndarray, h: float):
    plot_curves(history, os.path.join(run_dir, runfiles.CURVES_PNG))
    plot_weight_histogram(first_w, h, history[-1]["epoch"], os.path.join(run_dir, runfiles.WEIGHTS_PNG))
