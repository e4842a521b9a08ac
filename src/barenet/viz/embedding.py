"""2-D PCA scatter of the last hidden layer's activations, coloured by true class.

PCA rather than t-SNE: linear, deterministic and fast; distances and cluster overlap read
directly as the geometry the final (linear) classifier has to separate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse.linalg
from matplotlib.figure import Figure

from .style import CLASS_CMAP, closes_on_error, new_figure, plt, save_figure

EMBEDDING_SIZE = (9.0, 7.5)


def project_2d(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (n, 2) on the top two principal components and their variance ratios (2,).

    Same maths as ``pca`` (centred), but only the top two eigenvectors of the covariance are
    computed, by Lanczos iteration: a full SVD of thousands of samples is needlessly slow.
    """
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(axis=0)
    d = x.shape[1]
    k = min(2, d)
    if d > 8:
        # Lanczos on v -> X^T (X v) for the top two only: the (D, D) covariance is never
        # formed. A fixed start vector keeps the result reproducible.
        op = scipy.sparse.linalg.LinearOperator(
            (d, d), matvec=lambda v: x.T @ (x @ v), dtype=np.float64
        )
        v0 = np.random.default_rng(0).standard_normal(d)
        vals, vecs = scipy.sparse.linalg.eigsh(op, k=k, which="LA", v0=v0)
    else:
        vals, vecs = np.linalg.eigh(x.T @ x)
    order = np.argsort(-vals)[:k]
    vals, vecs = vals[order], vecs[:, order]
    vecs *= np.sign(vecs[np.abs(vecs).argmax(axis=0), np.arange(k)])
    total = float(np.einsum("ij,ij->", x, x))  # trace of X^T X
    ratio = np.clip(vals, 0, None) / total if total > 0 else np.zeros(k)
    xy = x @ vecs
    if k < 2:  # a 1-wide layer: pad so the scatter still draws
        xy, ratio = np.pad(xy, ((0, 0), (0, 2 - k))), np.pad(ratio, (0, 2 - k))
    return xy, ratio


@closes_on_error
def plot_embedding(
    features: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    out_path: str | Path | None = None,
    title: str = "Last hidden layer",
) -> Path | Figure:
    """Scatter of ``features`` (n, D) projected on their top two principal components."""
    xy, ratio = project_2d(features)
    fig, axes = new_figure(1, 1, figsize=EMBEDDING_SIZE)
    ax = axes[0, 0]
    cmap = plt.get_cmap(CLASS_CMAP)
    for c, name in enumerate(classes):
        m = labels == c
        if m.any():
            ax.scatter(
                xy[m, 0], xy[m, 1], s=7, alpha=0.6, color=cmap(c % 10), label=name, linewidths=0
            )
            # The class centroid, labelled, so clusters can be named without the legend.
            cx, cy = xy[m].mean(axis=0)
            ax.text(
                cx,
                cy,
                name,
                fontsize=9,
                weight="bold",
                ha="center",
                va="center",
                bbox={
                    "boxstyle": "round,pad=0.2",
                    "fc": "white",
                    "ec": cmap(c % 10),
                    "alpha": 0.85,
                },
            )
    ax.set_xlabel(f"PC1 ({100 * ratio[0]:.1f}% of variance)")
    ax.set_ylabel(f"PC2 ({100 * ratio[1]:.1f}% of variance)")
    ax.legend(
        loc="center left",
        bbox_to_anchor=(1.01, 0.5),
        markerscale=3,
        frameon=False,
        title="true class",
    )
    ax.grid(True, alpha=0.3)
    ax.set_title(f"{title}: {features.shape[1]}-D, {len(labels):,} test images, PCA to 2-D")
    return save_figure(fig, out_path)
