"""curves.png readable at a glance: a continuous training error, no overlapping tick labels."""
import numpy as np
import pytest

from bctrain.run.plots import curves_figure, error_axis_top, plot_curves


def history(n_epochs, modes=("binary",), seed=0):
    """A synthetic run: training error reaching 0, validation and test errors settling near 3 %."""
    rng = np.random.default_rng(seed)
    out = []
    for e in range(1, n_epochs + 1):
        r = {"epoch": e, "train_loss": 0.6 * np.exp(-e / 15) + 0.002,
             "train_error": 0.0 if e > 60 and rng.random() < 0.8 else max(0.0, 0.08 * np.exp(-e / 12)),
             "selected": e == min(n_epochs, 160)}
        for i, m in enumerate(modes):
            r[f"val_error_{m}"] = 0.06 * np.exp(-e / 20) + 0.033 - 0.002 * i + rng.normal(0, 0.001)
            r[f"test_error_{m}"] = r[f"val_error_{m}"] + 0.003
        out.append(r)
    return out


def labels_overlap(fig, ax) -> bool:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    lo, hi = ax.get_ylim()
    boxes = sorted((t.get_window_extent(renderer) for t in ax.get_yticklabels(which="both")
                    if t.get_text() and lo <= t.get_position()[1] <= hi), key=lambda b: b.y0)
    return any(a.y1 > b.y0 for a, b in zip(boxes, boxes[1:]))


@pytest.mark.parametrize("n_epochs, modes", [(250, ("binary",)), (250, ("binary", "real")), (3, ("binary",)), (1, ("real",))])
def test_long_and_short_runs_are_readable(n_epochs, modes):
    h = history(n_epochs, modes)
    fig = curves_figure(h)
    ax_err, ax_loss = fig.axes
    assert ax_err.get_yscale() == "linear"  # so that a training error of 0 is on the axis
    train = ax_err.get_lines()[0].get_ydata()
    assert np.all(np.isfinite(train)) and list(train) == [100 * r["train_error"] for r in h]
    assert ax_loss.get_yscale() == ("log" if n_epochs > 30 else "linear")  # the loss falls 100x or 2x
    assert not any(t.get_text() for t in ax_loss.get_yticklabels(minor=True))
    assert not labels_overlap(fig, ax_err) and not labels_overlap(fig, ax_loss)
    lo, hi = ax_loss.get_ylim()
    assert sum(lo <= t.get_position()[1] <= hi for t in ax_loss.get_yticklabels() if t.get_text()) >= 3
    settled = [100 * r[k] for r in h[len(h) // 10:] for k in r if k.startswith(("val_", "test_"))]
    assert max(settled) < ax_err.get_ylim()[1] <= 2 * max(settled)  # the settled curves fill the panel


@pytest.mark.parametrize("largest, top", [(0.05, 7.5), (0.0334, 5.5), (0.8, 100.0), (0.001, 0.15), (0.0, 1.0)])
def test_error_axis_top_is_one_and_a_half_times_the_largest_settled_error_rounded_up(largest, top):
    h = [{"val_error_binary": largest}]
    assert error_axis_top(h, ["val_error_binary"]) == pytest.approx(top)


def test_curves_png_is_written(tmp_path):
    plot_curves(history(5), str(tmp_path / "curves.png"))
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
