"""The internals a ``train.watch: true`` run recorded (``watch.json``), one row per layer.

Columns, over epochs (0 = at initialisation): activation mean and std; the dead
(ReLU) or saturated (sigmoid/tanh) fraction; gradient norm and update-to-weight ratio on a
log axis, with the ~1e-3 rule of thumb for the ratio shaded.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..diagnose.probe import UPDATE_RATIO_HEALTHY
from ..errors import FileError
from ..fileio import load_json
from ..rundir import WATCH_FILE
from .style import closes_on_error, new_figure, save_figure

WATCH_PNG = "watch.png"
GRAD_KEYS = ("grad_norm", "update_ratio")
MAX_BYTES = 64 * 2**20  # a run of 10k epochs x 20 layers is ~30 MB
LEGEND_ROOM = 0.35  # fraction of a gradient panel's height above the data, for the legend


def read_watch(run_dir: str | Path) -> dict[str, Any] | None:
    """The record of a run folder, None if it has none; FileError if it is not one."""
    path = Path(run_dir) / WATCH_FILE
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_BYTES:
        raise FileError(f"{path} is larger than {MAX_BYTES >> 20} MB: not a watch record")
    data = load_json(path)
    recs = data.get("records") if isinstance(data, dict) else None
    if not isinstance(recs, list) or not all(
        isinstance(r, dict) and isinstance(r.get("layers"), list) for r in recs
    ):
        raise FileError(f"{path} is not a barenet watch record")
    return data


def _series(records: list[dict], k: int, key: str) -> np.ndarray:
    out = []
    for r in records:
        layers = r["layers"]
        v = layers[k].get(key) if k < len(layers) and isinstance(layers[k], dict) else None
        out.append(float(v) if isinstance(v, int | float) and math.isfinite(v) else np.nan)
    return np.array(out, dtype=np.float64)


def _positive(a: np.ndarray) -> np.ndarray:
    return np.where(a > 0, a, np.nan)


@closes_on_error
def plot_watch(data: dict[str, Any], path: str | Path, title: str = "Inside the network") -> Path:
    """One row per weight layer, three panels per row (see module doc)."""
    records = data["records"]
    labels = [str(s) for s in data.get("layers", [])] or [
        str(g.get("label", f"layer {i + 1}")) for i, g in enumerate(records[0]["layers"])
    ]
    epochs = np.array([r.get("epoch", i) for i, r in enumerate(records)], dtype=float)
    n = max(len(labels), 1)
    fig, axes = new_figure(n, 3, figsize=(13, 2.5 * n + 0.7), sharex=True)
    for k, label in enumerate(labels):
        a_ax, f_ax, g_ax = axes[k]
        mean, std = _series(records, k, "mean"), _series(records, k, "std")
        a_ax.plot(epochs, mean, "o-", color="C0", ms=3, label="mean")
        a_ax.plot(epochs, std, "s--", color="C1", ms=3, label="std")
        a_ax.axhline(0, color="0.5", lw=0.8)
        a_ax.set_ylabel(f"layer {k + 1}", fontsize=10, fontweight="bold")
        what = "activations" if k < len(labels) - 1 else "outputs (logits)"
        a_ax.set_title(f"{label}: {what}", fontsize=10, loc="left")
        a_ax.legend(loc="best", fontsize=8)

        dead, sat = _series(records, k, "dead"), _series(records, k, "saturated")
        drawn = False
        for vals, name, color in ((dead, "dead units", "C3"), (sat, "saturated outputs", "C1")):
            if np.isfinite(vals).any():
                f_ax.plot(epochs, 100 * vals, "o-", color=color, ms=3, label=name)
                drawn = True
        f_ax.set_ylim(-3, 103)
        f_ax.set_ylabel("%")
        if drawn:
            f_ax.legend(loc="best", fontsize=8)
            f_ax.set_title("dead / saturated", fontsize=10, loc="left")
        else:
            f_ax.set_title("no ReLU / sigmoid / tanh here", fontsize=10, loc="left", color="0.4")

        grad, ratio = _series(records, k, "grad_norm"), _series(records, k, "update_ratio")
        g_ax.axhspan(*UPDATE_RATIO_HEALTHY, color="C2", alpha=0.1, label="healthy update ratio")
        g_ax.plot(epochs, _positive(grad), "o-", color="C4", ms=3, label="gradient norm")
        g_ax.plot(
            epochs, _positive(ratio), "s--", color="C2", ms=3, label="update / weight (first steps)"
        )
        g_ax.set_yscale("log")
        g_ax.set_title("gradient norm, update / weight (log)", fontsize=10, loc="left")
        g_ax.legend(loc="upper right", fontsize=8)
    # one log scale for the whole column: a gradient vanishing layer by layer shows as a slope;
    # the top LEGEND_ROOM of each panel is left empty for its legend, which never covers a line
    vals = np.concatenate(
        [_positive(_series(records, k, key)) for k in range(len(labels)) for key in GRAD_KEYS]
    )
    vals = vals[np.isfinite(vals)]
    if vals.size:
        band_lo, band_hi = UPDATE_RATIO_HEALTHY
        lo, hi = min(vals.min(), band_lo) / 2, max(vals.max(), band_hi) * 2
        for ax in axes[:, 2]:
            ax.set_ylim(lo, lo * (hi / lo) ** (1 / (1 - LEGEND_ROOM)))
    for ax in axes[-1]:
        ax.set_xlabel("epoch (0 = at init)")
    if len(epochs) and epochs.max() <= 30:
        for ax in axes[-1]:
            ax.set_xticks(epochs)
    for ax in axes.ravel():
        ax.grid(True, alpha=0.25)
    fig.suptitle(title)
    return save_figure(fig, path)


def draw_watch(run: Path, out: Path, requested: bool) -> list[Path] | str | None:
    """The watch figure of a run folder; why not (a string) if it was asked for and there is
    no record; None when it was not asked for and there is none."""
    try:
        data = read_watch(run)
    except FileError as err:  # a damaged side file must not take the other plots down
        return str(err)
    if data is None or not data["records"]:
        return "no watch.json (train with --set train.watch=true)" if requested else None
    return [plot_watch(data, out / WATCH_PNG, title=f"Inside the network: {run.name}")]
