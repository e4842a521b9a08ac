"""Training curves of one run: loss, accuracy, learning rate and gradient norm per epoch.

Train and validation values share one epoch axis (1..E, the ``epoch`` column); losses are
never clipped; the best validation epoch is marked on every panel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from .rundata import History, as_history, has_values
from .style import closes_on_error, new_figure, save_figure

CURVES_SIZE = (12.0, 8.0)


def spans_decades(values: np.ndarray, ratio: float = 30.0) -> bool:
    """True if the positive finite values span more than ``ratio`` (use a log axis)."""
    v = values[np.isfinite(values) & (values > 0)]
    return v.size > 1 and float(v.max() / v.min()) > ratio


def best_epoch(history: History) -> float | None:
    """Epoch of the highest validation accuracy (else lowest val loss), or None."""
    e = history.get("epoch")
    if e is None:
        return None
    if has_values(history, "val_accuracy"):
        return float(e[np.nanargmax(history["val_accuracy"])])
    if has_values(history, "val_loss"):
        return float(e[np.nanargmin(history["val_loss"])])
    return None


def epoch_axis(ax: Axes, epochs: np.ndarray | None = None) -> None:
    """Integer epoch ticks; a run of one or two epochs gets a half-epoch margin so the
    locator has whole numbers to show (not 0.945 ... 1.05)."""
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    e = np.asarray(epochs if epochs is not None else [], dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size and e.max() - e.min() < 2:
        ax.set_xlim(e.min() - 0.5, e.max() + 0.5)
        ax.set_xticks(np.unique(e))


def _empty(ax: Axes, what: str) -> None:
    ax.text(
        0.5,
        0.5,
        f"{what} not recorded",
        ha="center",
        va="center",
        transform=ax.transAxes,
        color="0.4",
    )


def _pair(ax: Axes, h: History, key: str, label: str, best: float | None) -> None:
    e = h["epoch"]
    drawn = False
    for col, name, style in ((key, "train", "-o"), (f"val_{key}", "validation", "-s")):
        if has_values(h, col):
            ax.plot(e, h[col], style, ms=3, lw=1.5, label=name)
            drawn = True
    ax.set_title(label)
    ax.set_ylabel(label.lower())
    epoch_axis(ax, e)
    if not drawn:
        _empty(ax, label.lower())
        return
    if best is not None:
        ax.axvline(best, color="0.5", ls=":", lw=1, label=f"best val (epoch {best:g})")
    ax.legend(loc="best")


def _single(ax: Axes, h: History, key: str, title: str, ylabel: str, color: str) -> None:
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    epoch_axis(ax, h.get("epoch"))
    if not has_values(h, key):
        _empty(ax, title.lower())
        return
    ax.plot(h["epoch"], h[key], "-o", ms=3, color=color)
    if spans_decades(h[key]):
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0, top=float(np.nanmax(h[key])) * 1.15 or None)


def lr_log_scale(lr: np.ndarray) -> bool:
    """Log axis if the rate spends a quarter of training 30x below its peak (step decays);
    a cosine that only touches zero at the end stays linear."""
    v = lr[np.isfinite(lr)]
    return v.size > 1 and (v > 0).all() and float(np.mean(v < v.max() / 30)) > 0.25


def _schedule(ax: Axes, h: History, x: np.ndarray, lr: np.ndarray) -> None:
    """Per-step rate at x = (step + 1) / steps_per_epoch: epoch e's updates span (e-1, e], so
    the metrics drawn at x = e are those of the model these steps produced."""
    # Step s's rate holds over (s / spe, (s + 1) / spe]: a staircase, not a ramp.
    ax.plot(
        x,
        lr,
        "-",
        lw=1.4,
        color="tab:green",
        drawstyle="steps-pre",
        label="per step (rebuilt schedule)",
    )
    spe = 1.0 / x[0]
    starts = h["epoch"] - 1 + 1.0 / spe
    ax.plot(starts, h["lr"], "o", ms=4, color="0.25", label="logged at epoch start")
    ax.set_title("Learning rate")
    ax.set_ylabel("learning rate")
    epoch_axis(ax)
    ax.set_xlim(0, float(x[-1]) + 0.05 * float(x[-1]))
    if lr_log_scale(lr):
        ax.set_yscale("log")
    else:
        ax.set_ylim(0, float(np.nanmax(lr)) * 1.15)
    ax.legend(loc="best")


@closes_on_error
def plot_curves(
    history: object,
    out_path: str | Path | None = None,
    title: str | None = None,
    lr_steps: tuple[np.ndarray, np.ndarray] | None = None,
) -> Path | Figure:
    """2x2 panels: loss, accuracy (train and validation), learning rate, gradient norm.

    ``lr_steps`` = (x, lr) of every optimizer step (see ``schedule.lr_per_step``) draws the
    exact schedule instead of one value per epoch.
    """
    h = as_history(history)
    fig, axes = new_figure(2, 2, figsize=CURVES_SIZE)
    best = best_epoch(h)
    _pair(axes[0, 0], h, "loss", "Loss", best)
    _pair(axes[0, 1], h, "accuracy", "Accuracy", best)
    if has_values(h, "accuracy") or has_values(h, "val_accuracy"):
        axes[0, 1].yaxis.set_major_formatter(PercentFormatter(1.0))
    if lr_steps is None:
        _single(axes[1, 0], h, "lr", "Learning rate", "learning rate (epoch start)", "tab:green")
    else:
        _schedule(axes[1, 0], h, *lr_steps)
    _single(axes[1, 1], h, "grad_norm", "Gradient norm", "mean global L2 gradient norm", "tab:red")
    fig.suptitle(title or "Training curves")
    return save_figure(fig, out_path)
