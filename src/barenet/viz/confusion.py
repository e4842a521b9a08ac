"""Confusion matrix (counts and row-normalised) and per-class accuracy bars with class names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from .style import closes_on_error, new_figure, save_figure

CONFUSION_SIZE = (15.0, 6.6)
PER_CLASS_SIZE = (13.0, 5.0)


def row_normalise(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the true class count); empty rows stay zero."""
    cm = np.asarray(cm, dtype=np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)


def _matrix(
    ax: Axes, m: np.ndarray, classes: list[str], fmt, vmax: float, title: str, fig, cbar_fmt=None
):
    k = len(classes)
    im = ax.imshow(m, cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    if max(len(c) for c in classes) > 2:  # garment names need the room; digits do not
        ax.set_xticks(range(k), classes, rotation=40, ha="right", rotation_mode="anchor")
    else:
        ax.set_xticks(range(k), classes)
    ax.set_yticks(range(k), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    size = 8 if k <= 10 else 6
    for i in range(k):
        for j in range(k):
            if m[i, j] == 0:
                continue
            dark = m[i, j] > 0.55 * vmax
            ax.text(
                j,
                i,
                fmt(m[i, j]),
                ha="center",
                va="center",
                fontsize=size,
                color="white" if dark else "0.15",
            )
    fig.colorbar(im, ax=ax, shrink=0.8, format=cbar_fmt)


@closes_on_error
def plot_confusion(
    cm: np.ndarray, classes: list[str], out_path: str | Path | None = None
) -> Path | Figure:
    """Counts (left) and row-normalised rates (right: row i = where true class i went)."""
    cm = np.asarray(cm)
    fig, axes = new_figure(1, 2, figsize=CONFUSION_SIZE)
    total = int(cm.sum())
    acc = np.trace(cm) / total if total else 0.0
    _matrix(
        axes[0, 0],
        cm,
        classes,
        lambda v: f"{int(v)}",
        max(float(cm.max()), 1.0),
        f"Counts ({total:,} test images)",
        fig,
    )
    pct = 100 * row_normalise(cm)  # cells and colour bar on the same 0-100 % scale
    _matrix(
        axes[0, 1],
        pct,
        classes,
        lambda v: f"{v:.0f}" if v >= 0.95 else f"{v:.1f}",  # never a bare "0"
        100.0,
        "Row-normalised (% of each true class)",
        fig,
        cbar_fmt=PercentFormatter(100),
    )
    fig.suptitle(f"Confusion matrix — accuracy {100 * acc:.2f}%")
    return save_figure(fig, out_path)


@closes_on_error
def plot_per_class(
    per_class_accuracy: np.ndarray,
    classes: list[str],
    out_path: str | Path | None = None,
    counts: np.ndarray | None = None,
    overall: float | None = None,
) -> Path | Figure:
    """Accuracy per class (left) on an axis starting just below the worst class, so the
    differences show, and the error rate per class on a zero-based axis (right). The dashed
    overall line passes behind the value labels, never through them. A NaN accuracy (a
    class without test images) draws no bar, says so, and is never among the worst."""
    acc = np.asarray(per_class_accuracy, dtype=np.float64)
    y = np.arange(len(classes))
    fig, axes = new_figure(1, 2, figsize=PER_CLASS_SIZE)
    ax = axes[0, 0]
    bars = ax.barh(y, acc, color="tab:blue", alpha=0.85)
    ax.set_yticks(y, classes)
    ax.invert_yaxis()
    finite = acc[np.isfinite(acc)]
    worst = float(finite.min()) if finite.size else 0.0
    lo = max(0.0, np.floor((worst - 0.05) * 20) / 20)  # 5 % below the worst, on a 5 % step
    ax.set_xlim(lo, 1.0 + (1.0 - lo) * 0.14)  # room for the labels right of a 100 % bar
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlabel("accuracy")
    ax.set_title(
        "Per-class accuracy"
        + (f" (dashed: overall {100 * overall:.2f}%)" if overall is not None else "")
    )
    pad = (1.0 - lo) * 0.01
    for b, a in zip(bars, acc, strict=True):
        ax.text(
            (b.get_width() if np.isfinite(a) else lo) + pad,
            b.get_y() + b.get_height() / 2,
            f"{100 * a:.1f}%" if np.isfinite(a) else "no images",
            va="center",
            fontsize=8,
            zorder=4,
            bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.9},
        )
    if overall is not None:
        ax.axvline(overall, color="tab:red", ls="--", lw=1, zorder=3)

    ax = axes[0, 1]
    err = 1 - acc
    worst = np.argsort(-err)[: min(3, int(np.isfinite(err).sum()))]  # argsort puts NaN last
    colors = ["tab:red" if i in worst else "tab:orange" for i in range(len(err))]
    ax.barh(y, err, color=colors, alpha=0.85)
    ax.set_yticks(
        y,
        classes
        if counts is None
        else [f"{c} (n={int(n)})" for c, n in zip(classes, counts, strict=True)],
    )
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xlim(0, max(float(np.nanmax(err, initial=0.0)) * 1.25, 0.01))
    ax.set_xlabel("error rate (1 - accuracy); the three worst in red")
    ax.set_title("Per-class error rate")
    for ax in axes.ravel():
        ax.grid(True, axis="x", alpha=0.3)
        ax.set_ylim(len(classes) - 0.5, -0.5)  # every row, also the last one without a bar
    fig.suptitle("Test accuracy by class")
    return save_figure(fig, out_path)
