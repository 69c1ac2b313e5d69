"""PNG plots of a run: error and loss curves per epoch, and the first layer's latent weights."""
import io
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402
from matplotlib.ticker import FormatStrFormatter, MaxNLocator  # noqa: E402

from bctrain import runfiles  # noqa: E402
from bctrain.rundir import atomic_write_bytes  # noqa: E402


def _save(fig, path):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_curves(history: list, path: str):
    """Error rates (%) and training loss against the epoch number."""
    epochs = [r["epoch"] for r in history]
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    series = [("train_error", "train (training-mode weights)")]
    for key in sorted(history[-1]):
        if key.startswith(("val_error", "test_error")):
            series.append((key, key.replace("_error", "").replace("_", " ")))
    for key, label in series:
        ax_err.plot(epochs, [100 * r[key] for r in history], marker=".", label=label)
    selected = [r["epoch"] for r in history if r.get("selected")]
    if selected:
        ax_err.axvline(selected[-1], color="grey", linestyle=":", label=f"selected (epoch {selected[-1]})")
    ax_err.set(xlabel="epoch", ylabel="error (%)", yscale="log", title="error rate")
    ax_err.legend()
    ax_loss.plot(epochs, [r["train_loss"] for r in history], marker=".")
    ax_loss.set(xlabel="epoch", ylabel="squared hinge loss", yscale="log", title="training loss")
    for ax in (ax_err, ax_loss):
        ax.grid(True, which="both", alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%g"))
    fig.tight_layout()
    _save(fig, path)


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
