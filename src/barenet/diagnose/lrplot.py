"""The picture of a learning-rate range test: loss against lr on a log axis."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..viz.style import closes_on_error, new_figure, save_figure
from .lrfind import LRFindResult


@closes_on_error
def plot_lr_find(res: LRFindResult, path: str | Path, title: str = "LR range test") -> Path:
    """Raw and smoothed loss vs lr, the good range shaded, suggested and configured lr marked."""
    fig, axes = new_figure(figsize=(8, 5))
    ax = axes[0, 0]
    lrs = np.array(res.lrs)
    raw = np.array([v if math.isfinite(v) else np.nan for v in res.losses])
    smooth = np.array([v if math.isfinite(v) else np.nan for v in res.smoothed])
    ax.plot(lrs, raw, color="0.65", lw=1, label="batch loss")
    ax.plot(lrs, smooth, color="C0", lw=2.2, label="smoothed loss (EMA 0.98)")
    lo, hi = res.good_range
    ax.axvspan(lo, hi, color="C2", alpha=0.12, label=f"good range {lo:.2g} - {hi:.2g}")
    ax.axvline(res.suggested_lr, color="C2", lw=2, ls="--", label=f"suggested {res.suggested_lr:g}")
    if math.isfinite(res.configured_lr):
        ax.axvline(
            res.configured_lr, color="C3", lw=1.5, ls=":", label=f"configured {res.configured_lr:g}"
        )
    if res.diverged_at is not None:
        ax.axvline(
            res.diverged_at,
            color="0.3",
            lw=1,
            label=f"stopped: loss blew up at {res.diverged_at:.2g}",
        )
    ax.set_xscale("log")
    finite = smooth[np.isfinite(smooth)]
    if finite.size:
        top = max(float(np.nanmax(raw[: max(3, len(raw) // 5)])), float(finite[0])) * 1.3
        ax.set_ylim(0, top)
    ax.set_xlabel("learning rate (log scale; one optimizer step per batch)")
    ax.set_ylabel("training loss")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="lower left")
    return save_figure(fig, path)
