"""Every plot of one run folder, from the folder alone (plus the dataset for test images).

``plot_run`` loads what each requested plot needs, once: the history for the curves, the model
for weights and kernels, and one batched pass over the test set for the confusion matrix,
predictions, feature maps and the embedding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..rundir import PLOTS_DIR
from .confusion import plot_confusion, plot_per_class
from .conv import plot_feature_maps, plot_kernels
from .curves import plot_curves
from .embedding import plot_embedding
from .inference import Outputs, conv_indices, last_linear_index, layers_of, run_batches
from .pca import first_layer_matrix, plot_pca
from .predictions import plot_confident_errors, plot_predictions, sample_indices
from .rundata import check_run_dir, read_config, read_history, read_metrics
from .schedule import lr_per_step, steps_per_epoch
from .weights import first_linear, plot_first_layer, plot_histograms

# Groups accepted by --what, in report order.
PLOTS = ("curves", "weights", "pca", "conv", "confusion", "predictions", "embedding")
NEEDS_TEST_DATA = {"conv", "confusion", "predictions", "embedding"}


@dataclass
class PlotResult:
    """``files``: group -> PNG paths written; ``skipped``: group -> why it was not drawn."""

    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)

    def all_files(self) -> list[Path]:
        return [p for g in PLOTS for p in self.files.get(g, [])]


def parse_what(what: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``None``/"all" -> every group; else the named groups (comma-separated or a list)."""
    if what is None:
        return list(PLOTS)
    items = what.split(",") if isinstance(what, str) else list(what)
    names = [w.strip().lower() for w in items if w.strip()]
    if not names or names == ["all"]:
        return list(PLOTS)
    bad = [n for n in names if n not in PLOTS]
    if bad:
        raise UserError(f"unknown plot {bad[0]!r}; choose from {', '.join(PLOTS)} (or all)")
    return [p for p in PLOTS if p in names]


@dataclass
class _Context:
    """What the plots of one run share: loaded once."""

    cfg: Any
    model: Any
    classes: list[str]
    out: Path
    seed: int
    images: np.ndarray | None = None  # uint8 (n, H, W) test images, for display
    x: np.ndarray | None = None  # the same, preprocessed and shaped for the model
    y: np.ndarray | None = None
    outputs: Outputs | None = None  # probabilities and last-hidden features of x

    def rng(self, group: str) -> np.random.Generator:
        """One generator per group: a group's samples do not depend on which others ran."""
        return np.random.default_rng([self.seed, PLOTS.index(group)])


def _load_test(ctx: _Context, data_dir: str | None, max_test: int | None) -> None:
    from ..data import load
    from ..runner import load_split

    cfg = ctx.cfg
    images, _ = load(cfg.data.dataset, split="test", data_dir=data_dir or cfg.data.data_dir)
    split = load_split(cfg, "test", data_dir)
    n = len(split.y) if max_test is None else min(max_test, len(split.y))
    ctx.images, ctx.x, ctx.y = images[:n], split.x[:n], np.asarray(split.y[:n])


def _weights(ctx: _Context, **_: Any) -> list[Path]:
    files = [plot_histograms(ctx.model, ctx.out / "weight_histograms.png")]
    if first_linear(ctx.model) is not None:
        hw = tuple(ctx.cfg.model.input_shape[1:])
        files.append(
            plot_first_layer(
                ctx.model,
                ctx.out / "first_layer_weights.png",
                image_shape=hw,
                class_names=ctx.classes,
            )
        )
    return files


def _pca(ctx: _Context, **_: Any) -> list[Path] | str:
    w, shape, label = first_layer_matrix(ctx.model)
    if len(w) < 2:
        return "the first layer has fewer than 2 units"
    return [plot_pca(w, ctx.out / "pca_first_layer.png", image_shape=shape, label=label)]


def _conv(ctx: _Context, n_feature_images: int, **_: Any) -> list[Path] | str:
    if not conv_indices(ctx.model):
        return "the model has no conv layers"
    idx = sample_indices(len(ctx.y), n_feature_images, ctx.rng("conv"))
    labels = [f"true {ctx.classes[int(t)]}" for t in ctx.y[idx]]
    return plot_kernels(ctx.model, ctx.out) + plot_feature_maps(
        ctx.model, ctx.x[idx], ctx.images[idx], ctx.out, labels=labels
    )


def _confusion(ctx: _Context, **_: Any) -> list[Path]:
    k = len(ctx.classes)
    pred = ctx.outputs.probs.argmax(axis=1)
    cm = np.bincount(ctx.y * k + pred, minlength=k * k).reshape(k, k)  # row: true class
    counts = cm.sum(axis=1)
    acc = np.diag(cm) / np.maximum(counts, 1)
    return [
        plot_confusion(cm, ctx.classes, ctx.out / "confusion_matrix.png"),
        plot_per_class(
            acc,
            ctx.classes,
            ctx.out / "per_class_accuracy.png",
            counts=counts,
            overall=np.trace(cm) / cm.sum(),
        ),
    ]


def _predictions(ctx: _Context, n_images: int, **_: Any) -> list[Path]:
    p = ctx.outputs.probs
    idx = sample_indices(len(ctx.y), n_images, ctx.rng("predictions"))
    return [
        plot_predictions(
            ctx.images[idx],
            ctx.y[idx],
            p[idx],
            ctx.classes,
            ctx.out / "predictions.png",
            title="Random test images: predicted vs true",
        ),
        plot_confident_errors(
            ctx.images, ctx.y, p, ctx.classes, ctx.out / "confident_errors.png", k=n_images
        ),
    ]


def _embedding(ctx: _Context, max_points: int, **_: Any) -> list[Path]:
    idx = sample_indices(len(ctx.y), max_points, ctx.rng("embedding"))
    cut = last_linear_index(ctx.model)
    if not any(m.parameters() for m in layers_of(ctx.model)[:cut]):
        title = "Input pixels (the model has no hidden layer)"
    elif conv_indices(ctx.model) and not ctx.cfg.model.dense[:-1]:
        title = "Flattened conv features (input of the classifier)"
    else:
        title = "Last hidden layer"
    return [
        plot_embedding(
            ctx.outputs.features[idx],
            ctx.y[idx],
            ctx.classes,
            ctx.out / "embedding_pca.png",
            title=title,
        )
    ]


DRAW: dict[str, Callable[..., list[Path] | str]] = {
    "weights": _weights,
    "pca": _pca,
    "conv": _conv,
    "confusion": _confusion,
    "predictions": _predictions,
    "embedding": _embedding,
}


def plot_run(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    what: str | list[str] | None = None,
    data_dir: str | None = None,
    n_images: int = 24,
    n_feature_images: int = 4,
    max_points: int = 2000,
    max_test: int | None = None,
    seed: int = 0,
) -> PlotResult:
    """Write the requested plot groups (default: all that apply) as PNGs into ``out_dir``
    (default ``run_dir/plots``) and return what was written.

    Groups that do not apply (conv plots for an MLP) are listed in ``skipped``; if nothing at
    all could be drawn a ValueError says why. ``max_test`` limits the test images used (None:
    the whole test set); ``n_images`` per prediction grid, ``n_feature_images`` rows of feature
    maps, ``max_points`` in the embedding scatter; samples are drawn from ``seed``.
    """
    if max_test is not None and max_test < 1:
        raise UserError(f"max_test must be at least 1, got {max_test}")
    run = check_run_dir(run_dir)
    out = Path(out_dir) if out_dir is not None else run / PLOTS_DIR
    groups = parse_what(what)
    res = PlotResult(out)

    if "curves" in groups:
        history = read_history(run)
        if history:
            lr = _lr_steps(run, history, data_dir)
            curve = plot_curves(history, out / "curves.png", title=_title(run), lr_steps=lr)
            res.files["curves"] = [curve]
        else:
            res.skipped["curves"] = "no history.csv"
    rest = [g for g in groups if g != "curves"]
    if rest:
        from ..data import CLASS_NAMES
        from ..runner import load_run

        cfg, model = load_run(run)
        ctx = _Context(cfg, model, CLASS_NAMES[cfg.data.dataset], out, seed)
        if NEEDS_TEST_DATA & set(rest):
            _load_test(ctx, data_dir, max_test)
        if {"confusion", "predictions", "embedding"} & set(rest):
            ctx.outputs = run_batches(model, ctx.x)
        opts = {
            "n_images": n_images,
            "n_feature_images": n_feature_images,
            "max_points": max_points,
        }
        for g in rest:
            drawn = DRAW[g](ctx, **opts)
            if isinstance(drawn, str):
                res.skipped[g] = drawn
            else:
                res.files[g] = drawn
    if not res.files:
        raise UserError(
            "nothing to plot: " + "; ".join(f"{k}: {v}" for k, v in res.skipped.items())
        )
    return res


def _lr_steps(run: Path, history, data_dir: str | None):
    """The exact per-step schedule, or None if it cannot be rebuilt (no data set, a config
    this version cannot read, a schedule that disagrees with the logged values...)."""
    try:
        cfg = read_config(run)
        spe = read_metrics(run).get("steps_per_epoch") or steps_per_epoch(cfg, data_dir)
        return lr_per_step(cfg, history, int(spe))
    except (ValueError, OSError, KeyError):
        return None


def _title(run: Path) -> str:
    metrics = read_metrics(run)
    name = metrics.get("name") or run.name
    dataset = f" ({metrics['dataset']})" if metrics.get("dataset") else ""
    return f"Training curves: {name}{dataset}"
