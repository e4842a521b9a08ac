"""Shared plotting setup: the Agg backend (selected here, once), figure helpers, atomic PNGs.

Every plot module imports ``plt`` from here, so the non-interactive backend is chosen before
pyplot is first imported and no display is ever needed; in a Jupyter kernel the notebook's
own (inline) backend is kept, so figures returned by the plot functions show in the notebook.
Figures are saved with a fixed DPI and without ``bbox_inches="tight"``, so a PNG is exactly
``figsize * DPI`` pixels; constrained layout keeps labels inside that canvas.
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

from ..train.progress import in_notebook

if not in_notebook():
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from ..fileio import atomic_write_bytes  # noqa: E402

__all__ = [
    "DIVERGING",
    "image_cmap",
    "DPI",
    "SEQUENTIAL",
    "blank_figure",
    "closes_on_error",
    "colorize",
    "draw_tiles",
    "grid_shape",
    "hide_axes",
    "new_figure",
    "plt",
    "save_figure",
    "symmetric_limit",
    "tile_images",
]

DPI = 100
DIVERGING = "RdBu_r"  # red positive, blue negative, white at zero
SEQUENTIAL = "viridis"
# Ten clearly distinct colours for the ten classes.
CLASS_CMAP = "tab10"
# How test images are drawn: MNIST as ink on paper; Fashion-MNIST as its photos are (light
# garments on black), since gray_r would show every garment as a negative.
IMAGE_CMAPS = {"mnist": "gray_r", "fashion-mnist": "gray"}


def image_cmap(dataset: str) -> str:
    return IMAGE_CMAPS.get(dataset, "gray")


plt.rcParams.update(
    {
        "figure.dpi": DPI,
        "savefig.dpi": DPI,
        "axes.grid": False,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "figure.titlesize": 13,
    }
)


def new_figure(
    nrows: int = 1, ncols: int = 1, figsize: tuple[float, float] = (6.4, 4.8), **kwargs
) -> tuple[Figure, np.ndarray]:
    """A figure with constrained layout and a 2-D array of axes (always ``(nrows, ncols)``)."""
    fig, axes = plt.subplots(
        nrows, ncols, figsize=figsize, layout="constrained", squeeze=False, **kwargs
    )
    return fig, axes


F = TypeVar("F", bound=Callable[..., Any])


def closes_on_error(fn: F) -> F:
    """Decorate a plot function: figures it opened are closed if it raises (a failed plot in a
    long-running process, e.g. a study drawing hundreds of figures, must not leak them)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        before = set(plt.get_fignums())
        try:
            return fn(*args, **kwargs)
        except BaseException:
            for num in set(plt.get_fignums()) - before:
                plt.close(num)
            raise

    return wrapper  # type: ignore[return-value]


def blank_figure(figsize: tuple[float, float]) -> Figure:
    """A figure without axes (grids add their own), constrained layout."""
    return plt.figure(figsize=figsize, layout="constrained")


def save_figure(fig: Figure, path: str | Path | None) -> Path | Figure:
    """Render ``fig`` to PNG at ``DPI``, write it atomically to ``path``, close the figure,
    and return the path. ``path=None`` returns the open figure instead (Jupyter shows it
    inline; the caller closes it).

    The figure is closed even if rendering fails, so a failing plot never leaks memory.
    """
    if path is None:
        return fig
    try:
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=DPI)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def grid_shape(n: int, max_cols: int = 10) -> tuple[int, int]:
    """(rows, cols) of a near-square grid holding ``n`` cells, at most ``max_cols`` wide."""
    if n <= 0:
        return 1, 1
    cols = min(max_cols, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


def symmetric_limit(a: np.ndarray) -> float:
    """``max|a|`` (1 if all zero or empty): vmin=-v, vmax=v centres a diverging map on zero."""
    a = np.asarray(a)
    v = float(np.max(np.abs(a[np.isfinite(a)]))) if a.size and np.isfinite(a).any() else 0.0
    return v if v > 0 else 1.0


def hide_axes(axes: np.ndarray) -> None:
    """Remove ticks and frames from image cells (and hide unused ones entirely)."""
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)


def tile_images(
    images: np.ndarray, ncols: int, pad: tuple[int, int] = (2, 2), fill: float = np.nan
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Lay ``images`` (n, h, w[, channels]) on one canvas, ``ncols`` per row.

    ``pad`` = (x, y) pixels between cells, filled with ``fill`` (NaN draws as background).
    Returns the canvas and each cell's top-left (x, y) in canvas pixels. One image on one axes
    renders far faster than one axes per cell.
    """
    n, h, w = images.shape[:3]
    rows, cols = -(-max(n, 1) // ncols), min(ncols, max(n, 1))
    px, py = pad
    shape = (rows * (h + py) - py, cols * (w + px) - px, *images.shape[3:])
    canvas = np.full(shape, fill, dtype=np.float64)
    origins = []
    for k in range(n):
        y0, x0 = (k // cols) * (h + py), (k % cols) * (w + px)
        canvas[y0 : y0 + h, x0 : x0 + w] = images[k]
        origins.append((x0, y0))
    return canvas, origins


def colorize(images: np.ndarray, cmap: str, per_image: bool = True) -> np.ndarray:
    """(n, h, w) -> RGBA (n, h, w, 4) through ``cmap``, each image scaled to its own range (or
    all to the joint range), so differently scaled maps can share one canvas."""
    x = np.asarray(images, dtype=np.float64)
    axes = (1, 2) if per_image else None
    lo = np.nanmin(x, axis=axes, keepdims=per_image)
    hi = np.nanmax(x, axis=axes, keepdims=per_image)
    span = np.where(hi > lo, hi - lo, 1.0)
    return plt.get_cmap(cmap)((x - lo) / span)


def draw_tiles(
    ax,
    images: np.ndarray,
    ncols: int,
    titles: list[str] | None = None,
    colors: list[str] | None = None,
    cmap: str = DIVERGING,
    limit: float | None = None,
    fontsize: float = 7,
    title_rows: int = 1,
):
    """Draw a grid of images on one axes; returns the AxesImage (for a colour bar).

    Scalar images: a diverging ``cmap`` gets symmetric limits ``+-limit`` (default
    ``max|images|``), so zero is white; other maps use the data range. RGBA images are drawn
    as they are. Titles sit above each cell; ``colors`` colour titles and frame the cells.
    """
    h, w = images.shape[1:3]
    gap_y = int(np.ceil(h * 0.2 * title_rows)) + 2 if titles else 2
    canvas, origins = tile_images(images, ncols, pad=(max(2, w // 10), gap_y))
    top = gap_y if titles else 0
    # a one-pixel margin right and below, so the last row's and column's frames are whole
    canvas = np.concatenate([np.full((top, *canvas.shape[1:]), np.nan), canvas])
    canvas = np.concatenate([canvas, np.full((1, *canvas.shape[1:]), np.nan)])
    canvas = np.concatenate([canvas, np.full((canvas.shape[0], 1, *canvas.shape[2:]), np.nan)], 1)
    kwargs = {}
    if images.ndim == 3:
        if cmap == DIVERGING:
            v = symmetric_limit(images) if limit is None else limit
            kwargs = {"vmin": -v, "vmax": v}
        else:
            kwargs = {"vmin": float(np.nanmin(images)), "vmax": float(np.nanmax(images))}
        kwargs["cmap"] = plt.get_cmap(cmap).with_extremes(bad="white")
    else:
        canvas = np.where(np.isnan(canvas), 1.0, canvas)  # white background for RGBA
    im = ax.imshow(canvas, interpolation="nearest", **kwargs)
    for k, (x0, y0) in enumerate(origins):
        color = colors[k] if colors else "black"
        if titles:
            ax.text(
                x0 + w / 2,
                y0 + top - 0.8,
                titles[k],
                ha="center",
                va="bottom",
                fontsize=fontsize,
                color=color,
                linespacing=1.0,
            )
        if colors:
            ax.add_patch(
                plt.Rectangle((x0 - 0.5, y0 + top - 0.5), w, h, fill=False, edgecolor=color, lw=1.5)
            )
    ax.set_axis_off()
    return im
