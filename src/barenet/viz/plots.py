"""Every plot of one run folder, from the folder alone (plus the dataset for test images).

The plots are a registry, ``REGISTRY``: one ``Plot`` entry per group, in report order, naming
its draw function, report section and captions. ``barenet plot --what``, ``plot_run`` and the
HTML report all read it, so a new plot is one function plus one entry. A draw function takes
the run's ``Context`` (whose model, test images and model outputs are loaded on first use,
once) and returns the PNG paths it wrote, or a string saying why it does not apply.
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
from .context import Context
from .conv import plot_feature_maps, plot_kernels
from .curves import plot_curves
from .embedding import plot_embedding
from .inference import conv_indices, last_linear_index, layers_of
from .pca import first_layer_matrix, plot_pca
from .predictions import plot_confident_errors, plot_predictions, sample_indices
from .rundata import check_run_dir, read_config, read_history, read_metrics
from .schedule import lr_per_step, steps_per_epoch
from .watch import draw_watch
from .weights import first_linear, plot_first_layer, plot_histograms


@dataclass(frozen=True)
class Plot:
    """One plot group. ``captions`` maps a PNG name (or a name prefix ending in ``*``) to
    the report's caption; ``needs_data``: it draws test images (needs the data set)."""

    name: str
    title: str
    draw: Callable[..., list[Path] | str]
    captions: dict[str, str] = field(default_factory=dict)
    needs_data: bool = False


@dataclass
class PlotResult:
    """``files``: group -> PNG paths written; ``skipped``: group -> why it was not drawn.

    In Jupyter, a ``PlotResult`` displays its PNGs inline."""

    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    context: Context | None = field(default=None, repr=False)  # what the plots were drawn from

    def all_files(self) -> list[Path]:
        return [p for g in plot_names() for p in self.files.get(g, [])]

    def _ipython_display_(self) -> None:
        from IPython.display import Image, display

        for path in self.all_files():
            display(Image(filename=str(path)))
        for group, why in self.skipped.items():
            print(f"skipped {group}: {why}")


def _curves(ctx: Context, **_: Any) -> list[Path] | str:
    history = read_history(ctx.run)
    if not history:
        return "no history.csv"
    lr = _lr_steps(ctx.run, history, ctx.data_dir)
    return [plot_curves(history, ctx.out / "curves.png", title=_title(ctx.run), lr_steps=lr)]


def _watch(ctx: Context, requested: bool = False, **_: Any) -> list[Path] | str | None:
    return draw_watch(ctx.run, ctx.out, requested=requested)


def _weights(ctx: Context, **_: Any) -> list[Path]:
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


def _pca(ctx: Context, **_: Any) -> list[Path] | str:
    w, shape, label = first_layer_matrix(ctx.model)
    if len(w) < 2:
        return "the first layer has fewer than 2 units"
    return [plot_pca(w, ctx.out / "pca_first_layer.png", image_shape=shape, label=label)]


def _conv(ctx: Context, n_feature_images: int, **_: Any) -> list[Path] | str:
    if not conv_indices(ctx.model):
        return "the model has no conv layers"
    idx = sample_indices(len(ctx.y), n_feature_images, ctx.rng("conv"))
    labels = [f"true {ctx.classes[int(t)]}" for t in ctx.y[idx]]
    return plot_kernels(ctx.model, ctx.out) + plot_feature_maps(
        ctx.model, ctx.x[idx], ctx.images[idx], ctx.out, labels=labels, cmap=ctx.image_cmap
    )


def _confusion(ctx: Context, **_: Any) -> list[Path]:
    cm = ctx.confusion_matrix
    counts = cm.sum(axis=1)
    # A class without test images has no accuracy (NaN), not 0%: data of one's own may use
    # only some of the ten classes.
    acc = np.divide(np.diag(cm), counts, out=np.full(len(counts), np.nan), where=counts > 0)
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


def _predictions(ctx: Context, n_images: int, **_: Any) -> list[Path]:
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
            cmap=ctx.image_cmap,
        ),
        plot_confident_errors(
            ctx.images,
            ctx.y,
            p,
            ctx.classes,
            ctx.out / "confident_errors.png",
            k=n_images,
            cmap=ctx.image_cmap,
        ),
    ]


def _embedding(ctx: Context, max_points: int, **_: Any) -> list[Path]:
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


# The plots, in report order. A new plot: its draw function above, and one entry here.
REGISTRY: tuple[Plot, ...] = (
    Plot(
        "curves",
        "Training curves",
        _curves,
        {
            "curves.png": "Loss and accuracy per epoch (train: running mean over the epoch in "
            "training mode; validation: end of epoch), learning rate at the start of each "
            "epoch, and mean gradient norm. The dotted line marks the best validation epoch "
            "(the weights kept)."
        },
    ),
    Plot(
        "watch",
        "Inside the network",
        _watch,
        {
            "watch.png": "Inside the network per layer and epoch (recorded with train.watch: "
            "true, on a fixed batch of training images; epoch 0 is the initialisation): "
            "activation mean and spread, dead ReLU units or saturated sigmoid/tanh outputs, "
            "gradient norm and the update-to-weight ratio of the first steps of each epoch "
            "(about 1e-3 is healthy)."
        },
    ),
    Plot(
        "confusion",
        "Per-class results (test set)",
        _confusion,
        {
            "per_class_accuracy.png": "Test accuracy per class, and the error rate on a scale "
            "that shows the differences.",
            "confusion_matrix.png": "Rows are true classes, columns predictions: raw counts and "
            "each row as a percentage of its class.",
        },
        needs_data=True,
    ),
    Plot(
        "predictions",
        "Predictions",
        _predictions,
        {
            "predictions.png": "Random test images with predicted label, confidence and true "
            "label.",
            "confident_errors.png": "The misclassified test images the model was most "
            "confident about.",
        },
        needs_data=True,
    ),
    Plot(
        "weights",
        "Weights",
        _weights,
        {
            "weight_histograms.png": "Distribution of weights and biases in each layer.",
            "first_layer_weights.png": "Incoming weights of each first-layer unit drawn as an "
            "image: red pixels excite the unit, blue ones inhibit it.",
        },
    ),
    Plot(
        "pca",
        "First-layer PCA",
        _pca,
        {
            "pca_first_layer.png": "PCA of the first layer's weight vectors (one sample per "
            "unit, centred): the patterns along which units differ most, and how much variance "
            "each explains."
        },
    ),
    Plot(
        "conv",
        "Convolutions",
        _conv,
        {
            "kernels_*": "Learned convolution kernels (one symmetric colour scale per layer).",
            "feature_maps_*": "What this conv layer responds to on a few test images (after "
            "the activation).",
        },
        needs_data=True,
    ),
    Plot(
        "embedding",
        "Hidden representation",
        _embedding,
        {
            "embedding_pca.png": "The input of the final linear layer for a sample of test "
            "images, projected on its top two principal components and coloured by true class."
        },
        needs_data=True,
    ),
)


def plot_names(needs_data: bool | None = None) -> tuple[str, ...]:
    """The names ``--what`` accepts, in report order (only those that do / do not need the
    data set, if ``needs_data`` is given). Read from ``REGISTRY`` at each call."""
    return tuple(p.name for p in REGISTRY if needs_data in (None, p.needs_data))


def get_plot(name: str) -> Plot:
    return next(p for p in REGISTRY if p.name == name)


def caption(png: str | Path) -> str:
    """The registry's caption for a PNG written by ``plot_run`` ("" if it has none)."""
    name = Path(png).name
    for plot in REGISTRY:
        for key, text in plot.captions.items():
            if name == key or (key.endswith("*") and name.startswith(key[:-1])):
                return text
    return ""


def parse_what(what: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``None``/"all" -> every group; else the named groups (comma-separated or a list)."""
    names_all = plot_names()
    if what is None:
        return list(names_all)
    items = what.split(",") if isinstance(what, str) else list(what)
    names = [w.strip().lower() for w in items if w.strip()]
    if not names or names == ["all"]:
        return list(names_all)
    bad = [n for n in names if n not in names_all]
    if bad:
        raise UserError(f"unknown plot {bad[0]!r}; choose from {', '.join(names_all)} (or all)")
    return [p for p in names_all if p in names]


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
    (default ``run_dir/plots``) and return what was written (shown inline in Jupyter).

    Groups that do not apply (conv plots for an MLP) are listed in ``skipped``; if nothing at
    all could be drawn a ValueError says why. ``max_test`` limits the test images used (None:
    the whole test set); ``n_images`` per prediction grid, ``n_feature_images`` rows of feature
    maps, ``max_points`` in the embedding scatter; samples are drawn from ``seed``.
    """
    if max_test is not None and max_test < 1:
        raise UserError(f"max_test must be at least 1, got {max_test}")
    run = check_run_dir(run_dir)
    out = Path(out_dir) if out_dir is not None else run / PLOTS_DIR
    opts = {"n_images": n_images, "n_feature_images": n_feature_images, "max_points": max_points}
    opts["requested"] = what not in (None, "all")  # asked by name: say why a plot is missing
    ctx = Context(run, out, data_dir, max_test, seed)
    res = PlotResult(out, context=ctx)
    for name in parse_what(what):
        drawn = get_plot(name).draw(ctx, **opts)
        if drawn is None:  # does not apply to this run and was not asked for
            continue
        if isinstance(drawn, str):
            res.skipped[name] = drawn
        else:
            res.files[name] = drawn
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
