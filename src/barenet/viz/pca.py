"""PCA of first-layer weights: which input patterns the hidden units, taken together, vary along.

Each unit's incoming weight vector is one sample. The samples are centred (the mean unit is
subtracted) before the SVD; without centring the first "component" is mostly the mean.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .. import nn
from .inference import layers_of
from .style import (
    DIVERGING,
    blank_figure,
    closes_on_error,
    draw_tiles,
    save_figure,
    symmetric_limit,
)


def pca(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCA of the rows of ``weights`` (units, features).

    X = W - mean (mean over units), X = U S V^T. Returns ``components`` (k, features): rows of
    V^T sorted by decreasing singular value, each signed so its largest-|.| entry is positive;
    ``explained_variance_ratio`` (k,) = S^2 / sum(S^2); ``mean`` (features,). k = min(units,
    features).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < 1:
        raise ValueError(f"pca expects a (units, features) matrix, got shape {w.shape}")
    mean = w.mean(axis=0)
    _, s, vt = np.linalg.svd(w - mean, full_matrices=False)
    order = np.argsort(-s, kind="stable")  # LAPACK already sorts; make it explicit
    s, vt = s[order], vt[order]
    # Singular vectors are defined up to sign: fix one so images do not flip between runs.
    pivots = np.abs(vt).argmax(axis=1)
    vt *= np.sign(vt[np.arange(len(vt)), pivots])[:, None]
    var = s**2
    total = var.sum()
    ratio = var / total if total > 0 else np.zeros_like(var)
    return vt, ratio, mean


def first_layer_matrix(model: nn.Module) -> tuple[np.ndarray, tuple[int, int] | None, str]:
    """The first parameterised layer's weights as (units, features), the per-unit image shape
    (or None if a unit is not one image), and a label."""
    for i, layer in enumerate(layers_of(model)):
        w = getattr(layer, "weight", None)
        if w is None:
            continue
        w = np.asarray(w.data, dtype=np.float64)
        if w.ndim == 4:  # conv (out, in, kh, kw): one kernel (all input channels) per unit
            shape = (w.shape[2], w.shape[3]) if w.shape[1] == 1 else None
            return w.reshape(len(w), -1), shape, f"layer {i} conv kernel"
        side = int(round(np.sqrt(w.shape[1])))
        return w, (side, side) if side * side == w.shape[1] else None, f"layer {i} Linear"
    raise ValueError("the model has no weight layer")


@closes_on_error
def plot_pca(
    weights: np.ndarray,
    out_path: str | Path | None = None,
    image_shape: tuple[int, int] | None = (28, 28),
    n_show: int = 10,
    label: str = "first layer",
) -> Path | Figure:
    """Mean unit and the top ``n_show`` components as images, plus the explained-variance curve.

    Without an ``image_shape`` (e.g. multi-channel conv kernels) the components are drawn as
    line plots.
    """
    comps, ratio, mean = pca(weights)
    # n units centred have rank <= n - 1: components with no variance carry no pattern.
    k = max(1, min(n_show, int((ratio > 1e-9).sum())))
    fig = blank_figure(figsize=(13.0, 4.0))
    gs = fig.add_gridspec(1, 3, width_ratios=[1.1, 4.6, 3.6])
    ax_mean, ax_pc, ax = (fig.add_subplot(gs[0, i]) for i in range(3))
    titles = [f"PC{j + 1} ({100 * ratio[j]:.1f}%)" for j in range(k)]
    if image_shape is not None:
        v = symmetric_limit(mean)
        ax_mean.imshow(
            mean.reshape(image_shape), cmap=DIVERGING, vmin=-v, vmax=v, interpolation="nearest"
        )
        ax_mean.set_axis_off()
        ax_mean.set_title("mean unit\n(own scale)", fontsize=9)
        # Components are unit vectors: one shared scale compares them.
        imgs = comps[:k].reshape(k, *image_shape)
        im = draw_tiles(
            ax_pc, imgs, ncols=min(5, k), titles=titles, fontsize=8.5, limit=symmetric_limit(imgs)
        )
        fig.colorbar(im, ax=ax_pc, shrink=0.75, label="component loading")
    else:
        ax_mean.plot(mean, lw=0.8)
        ax_mean.set_title("mean unit", fontsize=9)
        for j in range(min(k, 3)):
            ax_pc.plot(comps[j], lw=0.8, label=titles[j])
        ax_pc.legend(fontsize=8)
        ax_pc.set_xlabel("input feature")
    ax_pc.set_title(f"Top principal components of {label} weights (centred)", fontsize=11)

    idx = np.arange(1, len(ratio) + 1)
    ax.bar(idx, ratio, color="tab:blue", alpha=0.6, label="per component")
    ax.plot(idx, np.cumsum(ratio), "-", color="tab:red", lw=1.8, label="cumulative")
    for level in (0.9,):
        n90 = int(np.searchsorted(np.cumsum(ratio), level) + 1)
        if n90 <= len(ratio):
            ax.axhline(level, color="0.5", ls=":", lw=1)
            ax.annotate(
                f"{int(level * 100)}% of variance: {n90} components",
                (n90, level),
                textcoords="offset points",
                xytext=(-4, 4),
                ha="right",
                fontsize=9,
            )
    ax.set_xlabel("component")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("fraction of variance explained")
    ax.set_ylim(0, 1.02)
    ax.set_xlim(0.3, len(ratio) + 0.7)
    if len(ratio) > 100:
        ax.set_xscale("log")
        ax.set_xlim(0.8, len(ratio) * 1.1)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="center right")
    ax.set_title(f"Explained variance ({len(weights)} units)")
    return save_figure(fig, out_path)
