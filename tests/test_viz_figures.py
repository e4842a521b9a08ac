"""Plot functions return open figures when given no path (for Jupyter), and the figure flaws
found by looking at the PNGs stay fixed."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from barenet import nn
from barenet.experiment.spec import Experiment
from barenet.viz import html, style
from barenet.viz.confusion import plot_confusion, plot_per_class
from barenet.viz.curves import plot_curves
from barenet.viz.experiment_report import draw_accuracy
from barenet.viz.predictions import plot_predictions
from barenet.viz.style import plt
from barenet.viz.watch import plot_watch
from barenet.viz.weights import plot_histograms

CLASSES = [str(i) for i in range(10)]


def test_no_path_returns_the_open_figure():
    fig = plot_curves({"epoch": np.array([1.0, 2.0]), "loss": np.array([1.0, 0.5])})
    assert isinstance(fig, Figure) and fig.number in plt.get_fignums()
    plt.close(fig)


def test_one_epoch_run_has_integer_epoch_ticks():
    h = {
        "epoch": np.array([1.0]),
        "loss": np.array([0.9]),
        "val_loss": np.array([0.8]),
        "accuracy": np.array([0.7]),
        "grad_norm": np.array([2.0]),
    }
    fig = plot_curves(h)
    for ax in fig.axes:
        if ax.get_xlabel() == "epoch" and ax.get_title() != "Learning rate":
            assert list(ax.get_xticks()) == [1.0], ax.get_title()
    plt.close(fig)


def test_row_normalised_colour_bar_is_in_percent_like_the_cells():
    rng = np.random.default_rng(0)
    cm = rng.integers(0, 50, (10, 10)) + np.diag(rng.integers(100, 200, 10))
    fig = plot_confusion(cm, CLASSES)
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(bars) == 2
    assert bars[1].get_ylim() == (0.0, 100.0)
    labels = [t.get_text() for t in fig.axes[1].texts]
    assert max(float(t) for t in labels) <= 100 and max(float(t) for t in labels) > 1
    plt.close(fig)


def test_per_class_axis_shows_the_differences_and_labels_sit_above_the_line():
    acc = np.array([0.97, 0.99, 0.95, 0.96, 0.98, 0.94, 0.97, 0.96, 0.93, 0.95])
    fig = plot_per_class(acc, CLASSES, overall=0.96)
    ax = fig.axes[0]
    assert 0.85 <= ax.get_xlim()[0] < 0.93  # starts just below the worst class, not at 0
    line = next(ln for ln in ax.lines if ln.get_linestyle() == "--")
    assert all(t.get_zorder() > line.get_zorder() and t.get_bbox_patch() for t in ax.texts)
    plt.close(fig)


def test_prediction_grid_frames_are_whole_and_fashion_images_are_not_negatives():
    images = np.zeros((12, 28, 28), np.uint8)
    images[:, 8:20, 8:20] = 255  # a bright garment on a black background
    probs = np.full((12, 10), 0.1)
    fig = plot_predictions(
        images, np.zeros(12, int), probs, CLASSES, cmap=style.image_cmap("fashion-mnist")
    )
    ax = fig.axes[0]
    canvas = ax.images[0].get_array()
    bottom = max(r.get_y() + r.get_height() for r in ax.patches)
    right = max(r.get_x() + r.get_width() for r in ax.patches)
    assert canvas.shape[0] - 0.5 > bottom and canvas.shape[1] - 0.5 > right  # frames inside
    x0, y0 = ax.patches[0].get_xy()
    cell = canvas[int(y0 + 0.5) : int(y0 + 0.5) + 28, int(x0 + 0.5) : int(x0 + 0.5) + 28]
    assert cell[0, 0, :3].max() < 0.05 and cell[14, 14, :3].min() > 0.95  # black bg, white garment
    assert style.image_cmap("mnist") == "gray_r"  # digits stay ink on paper
    plt.close(fig)


def _covers(ax, line) -> bool:
    """True if the axes' legend box covers any part of ``line`` (sampled along its segments)."""
    box = ax.get_legend().get_window_extent()
    xy = ax.transData.transform(np.column_stack(line.get_data()).astype(float))
    xy = xy[np.isfinite(xy).all(axis=1)]
    t = np.linspace(0, 1, 50)[:, None]
    pts = np.concatenate([a + t * (b - a) for a, b in zip(xy[:-1], xy[1:], strict=True)] or [xy])
    inside = (pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1)
    return bool((inside & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)).any())


def test_watch_legends_never_cover_the_gradient_lines():
    # the values of a real 3-epoch MLP run, whose gradient norm ran under the legend
    layer = [
        {"grad_norm": g, "update_ratio": r, "mean": 0.4, "std": 0.9, "dead": 0.01}
        for g, r in ((4.0, None), (0.7, 7e-3), (0.25, 5e-3), (0.2, 1e-3))
    ]
    data = {
        "layers": ["Linear 784->512 + ReLU", "Linear 512->10"],
        "records": [{"epoch": e, "layers": [layer[e], layer[e]]} for e in range(4)],
    }
    fig = plot_watch(data, None)
    fig.canvas.draw()
    grad_axes = [ax for ax in fig.axes if ax.get_title(loc="left").startswith("gradient")]
    assert len(grad_axes) == 2
    for ax in grad_axes:
        assert not any(_covers(ax, line) for line in ax.lines)
    plt.close(fig)


def test_wide_tables_scroll_inside_the_page_not_the_page():
    # a phone (390 px) showed the per-epoch table past the page's right edge
    out = html.table(["a", "b"], [[1, 2]])
    assert out.startswith('<div class="table"><table>') and out.endswith("</table></div>")
    assert ".table { overflow-x: auto; max-width: 100%; }" in html.CSS


def test_experiment_accuracy_axis_holds_the_whole_std_bar(monkeypatch):
    # two seeds at 40.2% and 52.8% (a smoke run): mean 46.5 +- 8.9 ran off both edges
    exp = Experiment("init", {}, {}, {"xavier": {}, "he": {}}, (0, 1))
    rows = [
        {"status": "ok", "variant": v, "final_val_accuracy": a}
        for v, a in (("xavier", 0.31), ("xavier", 0.34), ("he", 0.402), ("he", 0.528))
    ]
    figs = []
    monkeypatch.setattr(
        "barenet.viz.experiment_report.save_figure", lambda fig, path: figs.append(fig)
    )
    draw_accuracy(exp, rows, None, columns=["final_val_accuracy"])
    ax = figs[0].axes[0]
    lo, hi = ax.get_xlim()
    mean, std = 46.5, np.std([40.2, 52.8], ddof=1)
    assert lo < mean - std and hi > mean + std
    plt.close(figs[0])


def test_histogram_counts_have_whole_number_ticks():
    # LeNet's 6 conv biases drew a count axis of 0.0, 0.5, 1.0, 1.5, 2.0
    fig = plot_histograms(nn.Sequential(nn.Conv2d(1, 6, 5, rng=0), nn.ReLU(), nn.Flatten()))
    fig.canvas.draw()
    for ax in fig.axes:
        ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ax.get_title()
        # the n/mean/std box sits above the tallest bar (it covered one of 16 conv biases)
        box = ax.texts[0].get_window_extent()
        top = max(
            ax.transData.transform((0, p.get_path().vertices[:, 1].max()))[1] for p in ax.patches
        )
        assert box.y0 > top, ax.get_title()
    plt.close(fig)
