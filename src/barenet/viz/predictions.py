"""Grids of test images with predicted vs true label and confidence: a sample, and the most
confidently wrong predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .style import blank_figure, closes_on_error, colorize, draw_tiles, grid_shape, save_figure

CORRECT, WRONG = "tab:green", "tab:red"


def sample_indices(n_total: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct indices in [0, n_total), sorted, drawn from ``rng``."""
    return np.sort(rng.choice(n_total, size=min(k, n_total), replace=False))


def most_confident_errors(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Indices of up to ``k`` misclassified samples, highest predicted probability first."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != labels)
    conf = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-conf, kind="stable")[:k]]


@closes_on_error
def plot_predictions(
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    out_path: str | Path | None = None,
    title: str = "Test predictions",
    ncols: int = 8,
    count: bool = True,
    cmap: str = "gray_r",
) -> Path | Figure:
    """Each cell: the image, "pred (confidence)" and "true"; green if right, red if wrong.

    ``images`` (n, H, W) for display, ``labels`` (n,), ``probs`` (n, K) softmax outputs;
    ``cmap`` draws the images (``style.image_cmap(dataset)``).
    """
    n = len(images)
    rows, cols = grid_shape(max(n, 1), ncols)
    fig = blank_figure(figsize=(cols * 1.45 + 0.3, rows * 1.75 + 0.7))
    ax = fig.subplots()
    pred = probs.argmax(axis=1) if n else np.zeros(0, int)
    if n:
        titles = [
            f"pred {classes[p]} ({100 * probs[k, p]:.0f}%)\ntrue {classes[t]}"
            for k, (p, t) in enumerate(zip(pred, labels, strict=True))
        ]
        colors = [CORRECT if p == t else WRONG for p, t in zip(pred, labels, strict=True)]
        rgba = colorize(images, cmap, per_image=False)
        draw_tiles(ax, rgba, cols, titles=titles, colors=colors, fontsize=8, title_rows=2)
    else:
        ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=14)
        ax.set_axis_off()
    right = int((pred == labels).sum()) if n else 0
    fig.suptitle(f"{title} ({right}/{n} correct)" if count else title)
    return save_figure(fig, out_path)


@closes_on_error
def plot_confident_errors(
    images: np.ndarray,
    labels: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    out_path: str | Path | None = None,
    k: int = 24,
    cmap: str = "gray_r",
) -> Path | Figure:
    """The ``k`` misclassified test images the model was most sure about."""
    idx = most_confident_errors(probs, labels, k)
    n_wrong = int((probs.argmax(axis=1) != labels).sum())
    if len(idx) == 0:
        fig = blank_figure(figsize=(6.0, 2.5))
        ax = fig.subplots()
        ax.text(
            0.5,
            0.5,
            f"no misclassified images among {len(labels):,}",
            ha="center",
            va="center",
            fontsize=13,
        )
        ax.set_axis_off()
        fig.suptitle("Most confident mistakes")
        return save_figure(fig, out_path)
    return plot_predictions(
        images[idx],
        labels[idx],
        probs[idx],
        classes,
        out_path,
        title=f"Most confident mistakes (top {len(idx)} of {n_wrong:,} errors)",
        count=False,
        cmap=cmap,
    )
