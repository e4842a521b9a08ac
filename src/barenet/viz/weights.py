"""Weight and bias histograms per layer, and first-layer weights of an MLP drawn as images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .. import nn
from .inference import layers_of
from .style import (
    blank_figure,
    closes_on_error,
    draw_tiles,
    grid_shape,
    new_figure,
    save_figure,
    symmetric_limit,
)

STATS_ROOM = 0.38  # top fraction of a histogram kept free for its n/mean/std box


def parameter_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(label, layer) for every top-level layer holding parameters, in order."""
    out = []
    for i, layer in enumerate(layers_of(model)):
        if layer.parameters():
            w = getattr(layer, "weight", None)
            shape = "x".join(map(str, w.shape)) if w is not None else ""
            out.append((f"layer {i}: {type(layer).__name__} {shape}".rstrip(), layer))
    return out


@closes_on_error
def plot_histograms(
    model: nn.Module, out_path: str | Path | None = None, bins: int = 60
) -> Path | Figure:
    """One row per parameterised layer: histogram of its weights (left) and biases (right)."""
    layers = parameter_layers(model)
    rows = max(len(layers), 1)
    fig, axes = new_figure(rows, 2, figsize=(11.0, 2.3 * rows + 0.6))
    for r, (label, layer) in enumerate(layers):
        params = dict(layer.named_parameters())
        # Linear/Conv: weight + bias; BatchNorm: its scale and shift play those roles.
        pairs = [(k, params.get(k)) for k in ("weight", "bias")]
        for c, (kind, p) in enumerate(pairs):
            ax = axes[r, c]
            if p is None:
                ax.text(
                    0.5,
                    0.5,
                    f"no {kind}",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                    color="0.4",
                )
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                v = np.asarray(p.data, dtype=np.float64).ravel()
                nb = min(bins, max(8, 2 * int(np.sqrt(v.size))))  # few values: few bins
                counts, _, _ = ax.hist(
                    v,
                    bins=nb,
                    histtype="stepfilled",
                    color="tab:blue" if c == 0 else "tab:orange",
                    alpha=0.85,
                )
                ax.axvline(0.0, color="0.3", lw=0.8, ls=":")
                ax.set_ylabel("count")
                ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # no "2.5" parameters
                ax.set_ylim(0, max(float(counts.max()), 1.0) / (1 - STATS_ROOM))
                ax.set_xlabel("value")
                ax.text(
                    0.98,
                    0.95,
                    f"n={v.size:,}\nmean={v.mean():+.3g}\nstd={v.std():.3g}",
                    ha="right",
                    va="top",
                    transform=ax.transAxes,
                    fontsize=8,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "0.8"},
                )
            ax.set_title(f"{label} — {kind}", fontsize=9)
    if not layers:
        axes[0, 0].text(0.5, 0.5, "no parameters", ha="center", va="center")
    fig.suptitle("Weight and bias distributions per layer")
    return save_figure(fig, out_path)


def first_linear(model: nn.Module) -> nn.Module | None:
    """The first layer of an MLP if it is a Linear (None for a CNN, whose first layer is conv)."""
    layers = [layer for layer in layers_of(model) if layer.parameters()]
    if layers and isinstance(layers[0], nn.Linear):
        return layers[0]
    return None


@closes_on_error
def plot_first_layer(
    model: nn.Module,
    out_path: str | Path | None = None,
    image_shape: tuple[int, int] = (28, 28),
    max_units: int = 100,
    class_names: list[str] | None = None,
) -> Path | Figure:
    """First-layer weights of an MLP, one ``image_shape`` image per unit (first ``max_units``).

    A diverging map centred on zero with one shared symmetric scale: red pixels excite the
    unit, blue ones inhibit it, white ones do not matter.
    """
    layer = first_linear(model)
    if layer is None:
        raise ValueError("first-layer weight images need an MLP whose first layer is Linear")
    w = np.asarray(layer.weight.data, dtype=np.float64)
    h, wd = image_shape
    if w.shape[1] != h * wd:
        raise ValueError(f"first layer has {w.shape[1]} inputs, not a {h}x{wd} image")
    units = min(len(w), max_units)
    imgs = w[:units].reshape(units, h, wd)
    # With no hidden layer the units are the classes: name them.
    linears = [m for m in layers_of(model) if isinstance(m, nn.Linear)]
    is_output = class_names is not None and len(linears) == 1 and len(w) == len(class_names)
    titles = list(class_names) if is_output else [f"unit {i}" for i in range(units)]
    rows, cols = grid_shape(units, 10) if units > 10 else (-(-units // 5), min(units, 5))
    fig = blank_figure(figsize=(max(cols * 1.0 + 1.6, 6.5), rows * 1.25 + 1.1))
    ax = fig.subplots()
    # Shared scale at the 99.5th percentile of |w|: a few outliers do not wash out the rest.
    limit = float(np.percentile(np.abs(imgs), 99.5)) or symmetric_limit(imgs)
    im = draw_tiles(ax, imgs, cols, titles=titles, limit=limit, fontsize=8)
    fig.colorbar(im, ax=ax, shrink=0.7, label="weight (clipped at 99.5th pct of |w|)")
    shown = f"first {units} of {len(w)}" if units < len(w) else f"all {units}"
    kind = "output units = classes" if is_output else "hidden units"
    fig.suptitle(
        f"First-layer weights, one {h}x{wd} image per unit\n({shown} {kind}; red +, blue -)"
    )
    return save_figure(fig, out_path)
