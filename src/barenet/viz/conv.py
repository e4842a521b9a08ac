"""Convolution kernels per layer, and the feature maps each conv layer produces for test images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import nn
from .inference import conv_feature_maps, conv_indices, layers_of
from .style import blank_figure, closes_on_error, colorize, draw_tiles, save_figure, symmetric_limit

MAX_KERNELS = 64  # first layer: kernels drawn
MAX_OUT = 16  # deeper layers: output channels (rows) drawn
MAX_IN = 16  # deeper layers: input channels (columns) drawn


@closes_on_error
def plot_kernels(model: nn.Module, out_dir: str | Path, prefix: str = "kernels") -> list[Path]:
    """One PNG per conv layer: ``{prefix}_conv{k}.png``.

    A layer with one input channel is a grid of its kernels; deeper layers are a matrix with one
    row per output channel and one column per input channel (first 16 of each). One symmetric
    diverging scale per layer, so the kernels of a layer compare directly.
    """
    out = Path(out_dir)
    paths = []
    layers = layers_of(model)
    for n, i in enumerate(conv_indices(model), start=1):
        w = np.asarray(layers[i].weight.data, dtype=np.float64)  # (out, in, kh, kw)
        c_out, c_in, kh, kw = w.shape
        if c_in == 1:
            k = min(c_out, MAX_KERNELS)
            cells, cols = w[:k, 0], min(8, k)
            titles = [f"#{j}" for j in range(k)]
            shown = f" (first {k} shown)" if k < c_out else ""
        else:
            r, cols = min(c_out, MAX_OUT), min(c_in, MAX_IN)
            cells, titles = w[:r, :cols].reshape(r * cols, kh, kw), None
            shown = f" (first {r} out x {cols} in shown)" if (r, cols) != (c_out, c_in) else ""
        rows = -(-len(cells) // cols)
        cell = 1.0 if c_in == 1 else 0.55
        fig = blank_figure(
            figsize=(max(cols * cell + 2.0, 5.5), rows * cell * (1.25 if c_in == 1 else 1.0) + 1.2)
        )
        ax = fig.subplots()
        im = draw_tiles(ax, cells, cols, titles=titles, limit=symmetric_limit(w), fontsize=7)
        if titles is None:
            ax.set_axis_on()
            step_x, step_y = kw + max(2, kw // 10), kh + 2
            xt = np.arange(cols) * step_x + (kw - 1) / 2
            yt = np.arange(rows) * step_y + (kh - 1) / 2
            ax.set_xticks(xt, [f"in {c}" for c in range(cols)], fontsize=7, rotation=90)
            ax.set_yticks(yt, [f"out {r}" for r in range(rows)], fontsize=7)
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
        fig.colorbar(im, ax=ax, shrink=0.7, label="weight")
        fig.suptitle(
            f"Conv layer {n} (layer {i}): {c_out} kernels of {c_in}x{kh}x{kw}{shown}", fontsize=11
        )
        paths.append(save_figure(fig, out / f"{prefix}_conv{n}.png"))
    return paths


def _display_images(images: np.ndarray, n: int, cmap: str) -> np.ndarray:
    """(n, H, W) grey through ``cmap``, or (n, H, W, 3|4) colour (alpha dropped), as RGBA
    (n, H, W, 4) in [0, 1]; each image scaled to its own range."""
    colour = images.ndim == 4 and images.shape[3] in (3, 4)
    if not (images.ndim == 3 or colour) or len(images) != n:
        raise ValueError(
            f"images must be the {n} inputs for display, (n, H, W) grey or (n, H, W, 3|4) "
            f"colour, got shape {images.shape}"
        )
    if not colour:
        return colorize(images, cmap)
    rgb = images[..., :3].astype(np.float64)
    lo = rgb.min(axis=(1, 2, 3), keepdims=True)
    span = np.maximum(rgb.max(axis=(1, 2, 3), keepdims=True) - lo, 1e-12)
    return np.concatenate([(rgb - lo) / span, np.ones_like(rgb[..., :1])], axis=3)


@closes_on_error
def plot_feature_maps(
    model: nn.Module,
    x: np.ndarray,
    images: np.ndarray,
    out_dir: str | Path,
    labels: list[str] | None = None,
    max_channels: int = 12,
    prefix: str = "feature_maps",
    cmap: str = "gray_r",
) -> list[Path]:
    """One PNG per conv layer: for each input (row) the image and its first ``max_channels``
    maps after the block's activation. ``x`` is the model input (n, C, H, W) of a few images,
    ``images`` the same images for display: (n, H, W) grey (drawn through ``cmap``) or
    (n, H, W, 3|4) colour. Each map is scaled to its own range (channels differ a lot in
    scale), brighter = stronger activation."""
    out = Path(out_dir)
    n = len(x)
    inputs = _display_images(np.asarray(images), n, cmap)
    h, w = inputs.shape[1:3]
    maps = conv_feature_maps(model, x)
    paths = []
    for k, (name, m) in enumerate(maps, start=1):
        ch = min(m.shape[1], max_channels)
        hm, wm = m.shape[2:]
        # Maps are enlarged (nearest neighbour, blocky but faithful) to the input's size.
        ys, xs = (np.arange(h) * hm // h)[:, None], (np.arange(w) * wm // w)[None, :]
        fmaps = colorize(m[:, :ch, ys, xs].reshape(n * ch, h, w), "magma").reshape(n, ch, h, w, 4)
        cells = np.concatenate([inputs[:, None], fmaps], axis=1).reshape(n * (ch + 1), h, w, 4)
        titles = []
        for r in range(n):
            titles.append(labels[r] if labels else "input")
            # A constant map (a dead ReLU channel, say) would draw as one flat colour: say so.
            flat = m[r, :ch].max(axis=(1, 2)) == m[r, :ch].min(axis=(1, 2))
            titles += [f"ch {c}" + (" (flat)" if flat[c] else "") for c in range(ch)]
        cols = ch + 1
        fig = blank_figure(figsize=(max(cols * 1.0 + 0.4, 6.0), n * 1.25 + 1.0))
        ax = fig.subplots()
        draw_tiles(ax, cells, cols, titles=titles, fontsize=7)
        shown = f"first {ch} of {m.shape[1]}" if ch < m.shape[1] else f"all {ch}"
        fig.suptitle(
            f"Feature maps of {name}: {hm}x{wm}, {shown} channels, after the activation\n"
            "(each map scaled to its own range; bright = strong)",
            fontsize=10,
        )
        paths.append(save_figure(fig, out / f"{prefix}_conv{k}.png"))
    return paths
